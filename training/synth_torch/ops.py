"""Batched image operators for the torch weather synthesizer: seeded draws, streak kernels on the
wrapped (FFT) grid, circular FFT convolution, per-sample Gaussian blur, smooth random fields, box
mean. Everything runs on the device of its inputs; randomness comes only from the caller's
torch.Generator, which lives on that device.
"""
import math

import torch
import torch.nn.functional as F


def uniform(g: torch.Generator, shape, lo=0.0, hi=1.0) -> torch.Tensor:
    """U(lo, hi) of `shape` on the generator's device; lo / hi may be tensors that broadcast."""
    shape = (shape,) if isinstance(shape, int) else tuple(shape)
    return lo + (hi - lo) * torch.rand(shape, generator=g, device=g.device)


def normal(g: torch.Generator, shape, mean=0.0, std=1.0) -> torch.Tensor:
    shape = (shape,) if isinstance(shape, int) else tuple(shape)
    return mean + std * torch.randn(shape, generator=g, device=g.device)


def bernoulli(g: torch.Generator, shape, p) -> torch.Tensor:
    """Bool tensor, True with probability p (a float or a tensor that broadcasts)."""
    return uniform(g, shape) < p


def gamma_int_half(g: torch.Generator, n: int, shape2: int) -> torch.Tensor:
    """Gamma(k / 2) draws, (n,), for a positive integer k = shape2: a sum of exponentials plus half
    a squared normal (torch's own gamma sampler takes no generator)."""
    whole, half = divmod(int(shape2), 2)
    out = torch.zeros(n, device=g.device)
    if whole:
        out = out - torch.log(uniform(g, (n, whole)).clamp_min(1e-12)).sum(1)
    if half:
        out = out + 0.5 * normal(g, n) ** 2
    return out


def dirichlet(g: torch.Generator, n: int, alphas2) -> torch.Tensor:
    """Dirichlet draws (n, K) for concentrations given as twice their value (integers): (8, 4, 3)
    is Dirichlet(4, 2, 1.5)."""
    x = torch.stack([gamma_int_half(g, n, a) for a in alphas2], dim=1).clamp_min(1e-12)
    return x / x.sum(1, keepdim=True)


def wrapped_offsets(n: int, device) -> torch.Tensor:
    """Pixel offsets of the circular grid, 0, 1, ..., -2, -1 (the FFT's layout of a centred kernel)."""
    r = torch.arange(n, device=device, dtype=torch.float32)
    return torch.where(r >= (n + 1) // 2, r - n, r)


def streak_kernels(h: int, w: int, length, angle_deg, width, taper, blur=None) -> torch.Tensor:
    """Streak kernels (M, H, W) laid out on the wrapped grid (centre at pixel (0, 0)), for circular
    FFT convolution. The profile is training/synth/kernels.streak_kernels': peak 1 on the centre line,
    Gaussian sigma `width` across, ends fading over `taper` of the half length, angle from vertical
    (positive: x grows with y). `blur` (sigma, px) folds a Gaussian blur into the kernel (wider and
    softer, the same light), so a defocused layer costs nothing extra. All arguments (M,) tensors."""
    length, angle, width, taper = (t.float().view(-1, 1, 1) for t in (length, angle_deg, width, taper))
    dev = length.device
    yy, xx = wrapped_offsets(h, dev).view(1, -1, 1), wrapped_offsets(w, dev).view(1, 1, -1)
    a = torch.deg2rad(angle)
    along = (xx * torch.sin(a) + yy * torch.cos(a)).abs()
    across = xx * torch.cos(a) - yy * torch.sin(a)
    core = length / 2 * (1 - taper)
    fade = torch.maximum(taper * length / 2, width.clamp_min(0.7))
    gain = 1.0
    if blur is not None:
        b2 = blur.float().view(-1, 1, 1) ** 2
        wide, longer = torch.sqrt(width ** 2 + b2), torch.sqrt(fade ** 2 + b2)
        reach = lambda f: 2 * core + math.sqrt(2 * math.pi) * f          # noqa: E731 - integral along
        gain, width, fade = width / wide * reach(fade) / reach(longer), wide, longer
    return gain * torch.exp(-0.5 * (((along - core).clamp_min(0) / fade) ** 2 + (across / width) ** 2))


def convolve_wrap(x: torch.Tensor, kernels: torch.Tensor) -> torch.Tensor:
    """Circular convolution of (..., H, W) maps with wrapped-grid kernels of the same shape, by FFT."""
    h, w = x.shape[-2:]
    return torch.fft.irfft2(torch.fft.rfft2(x) * torch.fft.rfft2(kernels), s=(h, w))


def gaussian_blur(x: torch.Tensor, sigma) -> torch.Tensor:
    """Separable Gaussian blur of (N, C, H, W) with a sigma per sample ((N,) tensor or a float),
    reflect padding (replicate where the image is too small)."""
    n, c, h, w = x.shape
    sigma = torch.as_tensor(sigma, dtype=torch.float32, device=x.device).expand(n).clamp_min(1e-3)
    radius = max(1, int(math.ceil(3 * float(sigma.max()))))
    t = torch.arange(-radius, radius + 1, device=x.device, dtype=torch.float32)
    k = torch.exp(-0.5 * (t.view(1, -1) / sigma.view(-1, 1)) ** 2)
    k = (k / k.sum(1, keepdim=True)).repeat_interleave(c, 0)              # (N * C, 2r + 1)
    mode = "reflect" if radius < min(h, w) else "replicate"
    y = F.pad(x.reshape(1, n * c, h, w), (radius, radius, radius, radius), mode=mode)
    y = F.conv2d(y, k.view(n * c, 1, 1, -1), groups=n * c)
    y = F.conv2d(y, k.view(n * c, 1, -1, 1), groups=n * c)
    return y.view(n, c, h, w)


def smooth_field(g: torch.Generator, n: int, h: int, w: int, cells, octaves: int = 1) -> torch.Tensor:
    """Smooth random fields (N, 1, H, W), each scaled to [0, 1]: bicubic upsampling of coarse noise,
    `cells` (an int, or one per sample as an (N,) tensor) across the longer side, each further
    octave twice as fine and half as strong."""
    if torch.is_tensor(cells):
        out = torch.empty(n, 1, h, w, device=g.device)
        for c in cells.unique().tolist():                       # one group per cell count, in order
            idx = (cells == c).nonzero()[:, 0]
            out[idx] = smooth_field(g, len(idx), h, w, int(c), octaves)
        return out
    field = torch.zeros(n, 1, h, w, device=g.device)
    for o in range(octaves):
        m = cells * 2 ** o
        gh, gw = max(2, m * h // max(h, w) + 2), max(2, m * w // max(h, w) + 2)
        field += 0.5 ** o * F.interpolate(normal(g, (n, 1, gh, gw)), size=(h, w), mode="bicubic", align_corners=True)
    flat = field.view(n, -1)
    lo, hi = flat.amin(1).view(n, 1, 1, 1), flat.amax(1).view(n, 1, 1, 1)
    return (field - lo) / (hi - lo).clamp_min(1e-6)


def _box_sum(x: torch.Tensor, r: int, dim: int) -> torch.Tensor:
    n = x.shape[dim]
    c = torch.cumsum(x, dim)
    c = torch.cat([torch.zeros_like(c.narrow(dim, 0, 1)), c], dim)
    idx = torch.arange(n, device=x.device)
    hi, lo = (idx + r + 1).clamp(max=n), (idx - r).clamp(min=0)
    return c.index_select(dim, hi) - c.index_select(dim, lo)


def box_mean(x: torch.Tensor, r: int) -> torch.Tensor:
    """Mean over a (2r+1)^2 window of (N, C, H, W), shrunk at the borders; O(1) per pixel (cumsums)."""
    h, w = x.shape[-2:]
    count = lambda n: ((torch.arange(n, device=x.device) + r + 1).clamp(max=n)           # noqa: E731
                       - (torch.arange(n, device=x.device) - r).clamp(min=0)).float()
    return _box_sum(_box_sum(x, r, -1), r, -2) / (count(h).view(-1, 1) * count(w).view(1, -1))


def per_sample(v: torch.Tensor) -> torch.Tensor:
    """(N,) -> (N, 1, 1, 1), to broadcast over images."""
    return v.view(-1, 1, 1, 1)
