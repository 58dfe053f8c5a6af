"""Haze, batched: I = J t + A (1 - t), t = exp(-beta d), with training/synth/haze.py's draws and a
pseudo-depth d built as training/synth/depth.py builds it (horizon position prior, sky / dark-channel
cues, a smooth random field, random weights, a guided filter on the photo), on a copy at most
WORK_SIDE px and upsampled.
"""
import torch
import torch.nn.functional as F

from ..synth.depth import WORK_SIDE
from ..synth.haze import SEVERITY_SCALE
from .ops import box_mean, dirichlet, gaussian_blur, normal, per_sample, smooth_field, uniform


def _min_filter(x: torch.Tensor, r: int) -> torch.Tensor:
    k = 2 * r + 1                                     # separable
    x = -F.max_pool2d(-x, (1, k), stride=1, padding=(0, r))
    return -F.max_pool2d(x, (k, 1), stride=1, padding=(r, 0))


def _grad(gray: torch.Tensor) -> torch.Tensor:
    gx = F.pad((gray[..., :, 1:] - gray[..., :, :-1]).abs(), (0, 1, 0, 0), mode="replicate")
    gy = F.pad((gray[..., 1:, :] - gray[..., :-1, :]).abs(), (0, 0, 0, 1), mode="replicate")
    return gx + gy


def _normalise(x: torch.Tensor) -> torch.Tensor:
    flat = x.flatten(1)
    lo, hi = flat.amin(1).view(-1, 1, 1, 1), flat.amax(1).view(-1, 1, 1, 1)
    return (x - lo) / (hi - lo).clamp_min(1e-3)


def pseudo_depth(img: torch.Tensor, g: torch.Generator) -> torch.Tensor:
    """img (N, 3, H, W) in [0, 1] -> depth (N, 1, H, W) in [0, 1], 1 = far."""
    n, _, full_h, full_w = img.shape
    step = max(1, -(-max(full_h, full_w) // WORK_SIDE))
    small = F.avg_pool2d(img, step, ceil_mode=True) if step > 1 else img
    h, w = small.shape[-2:]
    scale = max(h, w)
    rows = torch.linspace(0, 1, h, device=img.device).view(1, 1, h, 1)
    cols = torch.linspace(-1, 1, w, device=img.device).view(1, 1, 1, w)
    horizon = per_sample(uniform(g, n, 0.15, 0.65)) + per_sample(normal(g, n, 0, 0.08)) * cols   # tilted
    below = ((rows - horizon) / (1 - horizon).clamp_min(0.05)).clamp(0, 1)
    position = 1 - below ** per_sample(uniform(g, n, 0.5, 1.5))                 # (N, 1, H, W)

    gray = small.mean(1, keepdim=True)
    saturation = small.amax(1, keepdim=True) - small.amin(1, keepdim=True)
    dark = _min_filter(small.amin(1, keepdim=True), 3)                         # dark channel, 7x7
    grad = _grad(gray)
    grad_mean = grad.mean((1, 2, 3), keepdim=True)
    sky = gray * (1 - saturation) * torch.exp(-gaussian_blur(grad, 1.0) / (grad_mean + 1e-3))
    cue = _normalise(gaussian_blur(0.5 * dark + 0.5 * sky, scale / 50))

    cells = torch.randint(2, 5, (n,), generator=g, device=g.device)
    field = smooth_field(g, n, h, w, cells=cells, octaves=2)
    wp, wc, wf = (per_sample(c) for c in dirichlet(g, n, (8, 4, 3)).unbind(1))  # Dirichlet(4, 2, 1.5)
    depth = wp * position + wc * cue + wf * field
    # guided filter with the photo as guide (He et al.), coefficients on the small grid
    r, eps = max(2, scale // 24), 1e-2
    mean_i, mean_p = box_mean(gray, r), box_mean(depth, r)
    a = (box_mean(gray * depth, r) - mean_i * mean_p) / (box_mean(gray * gray, r) - mean_i ** 2 + eps)
    b = mean_p - a * mean_i
    a, b = box_mean(a, r), box_mean(b, r)
    if step > 1:
        up = lambda c: F.interpolate(c, size=(full_h, full_w), mode="bilinear", align_corners=False)  # noqa: E731
        a, b, coarse = up(a), up(b), up(gray)
        depth = a * (coarse + (img.mean(1, keepdim=True) - coarse).clamp(-0.1, 0.1)) + b
    else:
        depth = a * gray + b
    sub = depth.flatten(1)[:, :: max(1, full_h * full_w // 4096)]
    q = torch.quantile(sub, torch.tensor([0.01, 0.99], device=img.device), dim=1)   # (2, N)
    lo, hi = per_sample(q[0]), per_sample(q[1])
    return ((depth - lo) / (hi - lo).clamp_min(1e-3)).clamp(0, 1)


def add_haze(img: torch.Tensor, g: torch.Generator, strength: torch.Tensor, depth_from: torch.Tensor):
    """img (N, 3, H, W) -> (hazy images, density = 1 - t (N, 1, H, W), severity (N,) in [0.05, 1]).
    strength (N,): < 1 thins the haze (a second weather); depth_from: the photos the depth is read
    from (the clean ones when img already carries rain)."""
    n, _, h, w = img.shape
    depth = pseudo_depth(depth_from, g)
    t_far = torch.where(uniform(g, n) < 0.85, uniform(g, n, 0.2, 0.65), uniform(g, n, 0.06, 0.2)) ** strength
    near = per_sample(uniform(g, n, 0.05, 0.4))                                # depth of the nearest pixel
    beta = per_sample(-torch.log(t_far))
    patchy = per_sample(uniform(g, n) < 0.35)                                  # non-homogeneous: fog patches
    field = smooth_field(g, n, h, w, cells=torch.randint(2, 6, (n,), generator=g, device=g.device), octaves=2)
    beta = torch.where(patchy, beta * (0.35 + 1.3 * field), beta)
    t = torch.exp(-beta * (near + (1 - near) * depth)).clamp(1e-3, 1)
    level = uniform(g, (n, 1), 0.7, 1.0)
    side = torch.tensor([0.0, 1.0, -1.0], device=img.device)[torch.multinomial(
        torch.tensor([0.6, 0.25, 0.15], device=img.device).expand(n, 3), 1, generator=g)]   # (N, 1)
    tint = normal(g, (n, 3), 0, 0.02) + side * torch.tensor([-0.03, 0.0, 0.03], device=img.device)
    airlight = (level * (1 + tint)).clamp(0.55, 1.0).view(n, 3, 1, 1)
    density = (1 - t).clamp(0, 1)
    severity = (density.mean((1, 2, 3)) / SEVERITY_SCALE).clamp(0.05, 1.0)
    return (img * t + airlight * (1 - t)).clamp(0, 1), density, severity
