"""Small image operators shared by the weather layers: streak kernels, FFT convolution, blurs,
smooth random fields, box and guided filters.

All work on float32 CPU tensors and are deterministic; randomness comes only from the numpy
Generator that the caller passes in.
"""
import math

import numpy as np
import torch
import torch.nn.functional as F


def streak_kernels(lengths, angles_deg, widths, taper) -> torch.Tensor:
    """A batch of anti-aliased streak kernels, (K, k, k), peak 1 on the centre line.

    lengths: full length in px; angles_deg: from vertical, positive leans the top to the left
    (x grows with y); widths: Gaussian sigma across the streak (px); taper: fraction of the half
    length over which the ends fade out (0 = hard ends, 1 = spindle shaped). All (K,) array-likes.
    """
    length, angle, width, taper = (torch.as_tensor(np.asarray(v, dtype=np.float32)).view(-1, 1, 1)
                                   for v in (lengths, angles_deg, widths, taper))
    half = int(math.ceil(float(length.max()) / 2 + 3 * float(width.max()) + 1))
    r = torch.arange(-half, half + 1, dtype=torch.float32)
    yy, xx = r.view(1, -1, 1), r.view(1, 1, -1)
    a = torch.deg2rad(angle)
    along = (xx * torch.sin(a) + yy * torch.cos(a)).abs()           # (K, k, k) distance along the streak
    across = xx * torch.cos(a) - yy * torch.sin(a)
    core = length / 2 * (1 - taper)
    fade = torch.maximum(taper * length / 2, width.clamp_min(0.7))    # length 0: a round blob
    profile = torch.exp(-0.5 * ((along - core).clamp_min(0) / fade) ** 2)
    return profile * torch.exp(-0.5 * (across / width) ** 2)


def convolve_wrap(x: torch.Tensor, kernels: torch.Tensor) -> torch.Tensor:
    """Circular convolution of (K, H, W) with (K, k, k) centred kernels (or one (k, k)) by FFT.

    Wrap-around is what the weather layers want: a streak leaving the bottom enters at the top,
    so stationary layers have no empty borders and need no padding."""
    _, h, w = x.shape
    if kernels.ndim == 2:
        kernels = kernels[None]
    k = kernels.shape[-1]
    if k > min(h, w):                                            # crop an over-large kernel (odd size)
        c, m = k // 2, (min(h, w) - 1) // 2
        kernels, k = kernels[:, c - m:c + m + 1, c - m:c + m + 1], 2 * m + 1
    padded = torch.zeros(kernels.shape[0], h, w)
    padded[:, :k, :k] = kernels
    padded = torch.roll(padded, shifts=(-(k // 2), -(k // 2)), dims=(-2, -1))   # centre -> (0, 0)
    out = torch.fft.irfft2(torch.fft.rfft2(x) * torch.fft.rfft2(padded), s=(h, w))
    return out


def gaussian_kernel1d(sigma: float) -> torch.Tensor:
    radius = max(1, int(math.ceil(3 * sigma)))
    x = torch.arange(-radius, radius + 1, dtype=torch.float32)
    k = torch.exp(-0.5 * (x / sigma) ** 2)
    return k / k.sum()


def gaussian_blur(img: torch.Tensor, sigma: float) -> torch.Tensor:
    """Separable Gaussian blur of (C, H, W) with reflect padding. Large sigmas run on a
    downsampled copy (the result is smooth anyway), so the cost stays flat."""
    if sigma <= 0:
        return img
    c, h, w = img.shape
    step = int(sigma // 3)
    if step >= 2 and min(h, w) // step >= 4:
        small = F.avg_pool2d(img[None], step, ceil_mode=True)[0]
        small = gaussian_blur(small, sigma / step)
        return F.interpolate(small[None], size=(h, w), mode="bilinear", align_corners=False)[0]
    k = gaussian_kernel1d(sigma)
    pad = len(k) // 2
    mode = "reflect" if pad < min(h, w) else "replicate"
    x = F.conv2d(F.pad(img[None], (pad, pad, 0, 0), mode=mode), k.view(1, 1, 1, -1).expand(c, 1, 1, -1), groups=c)
    x = F.conv2d(F.pad(x, (0, 0, pad, pad), mode=mode), k.view(1, 1, -1, 1).expand(c, 1, -1, 1), groups=c)
    return x[0]


def smooth_field(rng: np.random.Generator, h: int, w: int, cells: int, octaves: int = 1) -> torch.Tensor:
    """Smooth random field in [0, 1], (1, H, W): bicubic upsampling of coarse noise grids, `cells`
    across the longer side, each further octave twice as fine and half as strong."""
    field = torch.zeros(1, 1, h, w)
    for o in range(octaves):
        n = cells * 2 ** o
        gh, gw = max(2, n * h // max(h, w) + 2), max(2, n * w // max(h, w) + 2)
        coarse = torch.from_numpy(rng.standard_normal((1, 1, gh, gw)).astype(np.float32))
        field += 0.5 ** o * F.interpolate(coarse, size=(h, w), mode="bicubic", align_corners=True)
    field = field[0] - field.amin()
    return field / field.amax().clamp_min(1e-6)


def _box_sum(x: torch.Tensor, r: int, dim: int) -> torch.Tensor:
    n = x.shape[dim]
    c = F.pad(torch.cumsum(x, dim), (1, 0) if dim in (-1, x.ndim - 1) else (0, 0, 1, 0))
    idx = torch.arange(n)
    hi, lo = (idx + r + 1).clamp(max=n), (idx - r).clamp(min=0)
    return c.index_select(dim, hi) - c.index_select(dim, lo)


def box_mean(x: torch.Tensor, r: int) -> torch.Tensor:
    """Mean over a (2r+1)^2 window of (..., H, W), shrunk at the borders; O(1) per pixel (cumsums)."""
    s = _box_sum(_box_sum(x, r, -1), r, -2)
    ones = torch.ones(x.shape[-2:])
    return s / _box_sum(_box_sum(ones, r, -1), r, -2)


def guided_coefficients(guide: torch.Tensor, src: torch.Tensor, r: int, eps: float):
    """He et al.'s guided filter as its smoothed linear coefficients (a, b), each (H, W):
    output = a * guide + b smooths `src` while keeping the guide's edges. Computing (a, b) on a
    small copy and applying them to the full-size guide is the fast guided filter."""
    mean_i, mean_p = box_mean(guide, r), box_mean(src, r)
    var_i = box_mean(guide * guide, r) - mean_i ** 2
    cov_ip = box_mean(guide * src, r) - mean_i * mean_p
    a = cov_ip / (var_i + eps)
    b = mean_p - a * mean_i
    return box_mean(a, r), box_mean(b, r)


def guided_filter(guide: torch.Tensor, src: torch.Tensor, r: int, eps: float) -> torch.Tensor:
    """Guided filter, gray guide (H, W), source (H, W) -> (H, W)."""
    a, b = guided_coefficients(guide, src, r, eps)
    return a * guide + b


def smoothstep(edge0, edge1, x: torch.Tensor) -> torch.Tensor:
    """0 below edge0, 1 above edge1 (edge0 > edge1 reverses), Hermite in between."""
    t = ((x - edge0) / (edge1 - edge0)).clamp(0, 1)
    return t * t * (3 - 2 * t)
