"""Pseudo-depth for haze when no depth map exists: position prior + image cues + smooth random field.

- position: outdoor photos are far above a horizon and get nearer towards the bottom (a random
  horizon height, tilt and fall-off);
- image cues: bright, low-saturation, smooth regions (sky, distant hills) and a high dark channel
  are far (the dark channel prior read the other way round);
- a smooth random field, so that no two photos share a depth layout.
The cues are mixed with random weights, then a guided filter with the photo as guide aligns the
depth edges with object outlines (haze then stops at a tree trunk instead of bleeding across it).
RESIDE's own outdoor depth maps are estimated and often wrong; this is no worse and never the same.
"""
import numpy as np
import torch
import torch.nn.functional as F

from .kernels import gaussian_blur, guided_coefficients, smooth_field


WORK_SIDE = 160             # the depth is built on a copy this size (it is smooth) and upsampled


def pseudo_depth(img: torch.Tensor, rng: np.random.Generator) -> torch.Tensor:
    """img (3, H, W) in [0, 1] -> depth (1, H, W) in [0, 1], 1 = far."""
    _, full_h, full_w = img.shape
    step = max(1, int(np.ceil(max(full_h, full_w) / WORK_SIDE)))
    small = F.avg_pool2d(img[None], step, ceil_mode=True)[0] if step > 1 else img
    _, h, w = small.shape
    scale = max(h, w)
    rows = torch.linspace(0, 1, h).view(h, 1)
    cols = torch.linspace(-1, 1, w).view(1, w)
    horizon = rng.uniform(0.15, 0.65) + rng.normal(0, 0.08) * cols            # (1, W), tilted
    below = ((rows - horizon) / (1 - horizon).clamp_min(0.05)).clamp(0, 1)      # 0 at horizon, 1 at bottom
    position = 1 - below ** rng.uniform(0.5, 1.5)                              # (H, W)

    gray = small.mean(0)
    saturation = small.amax(0) - small.amin(0)
    dark = _min_filter(small.amin(0), 3)                                       # dark channel, 7x7
    grad = _grad(gray)
    sky = gray * (1 - saturation) * torch.exp(-gaussian_blur(grad[None], 1.0)[0] / (grad.mean() + 1e-3))
    cue = gaussian_blur((0.5 * dark + 0.5 * sky)[None], scale / 50)[0]
    cue = (cue - cue.amin()) / (cue.amax() - cue.amin()).clamp_min(1e-3)

    field = smooth_field(rng, h, w, cells=int(rng.integers(2, 5)), octaves=2)[0]
    wp, wc, wf = rng.dirichlet([4.0, 2.0, 1.5])
    depth = wp * position + wc * cue + wf * field
    # fast guided filter: coefficients on the small grid, applied to the full-size photo
    a, b = guided_coefficients(gray, depth, r=max(2, scale // 24), eps=1e-2)
    if step > 1:
        a, b, coarse = (F.interpolate(c[None, None], size=(full_h, full_w), mode="bilinear", align_corners=False)[0, 0]
                        for c in (a, b, gray))
        # fine detail of the full-size guide, bounded: a bright speck of sky in a dark canopy must
        # not punch a hole into the depth
        depth = a * (coarse + (img.mean(0) - coarse).clamp(-0.1, 0.1)) + b
    else:
        depth = a * gray + b
    lo, hi = torch.quantile(depth.flatten()[:: max(1, full_h * full_w // 4096)], torch.tensor([0.01, 0.99]))
    return ((depth - lo) / (hi - lo).clamp_min(1e-3)).clamp(0, 1)[None]


def _min_filter(x: torch.Tensor, r: int) -> torch.Tensor:
    """Minimum over a (2r+1)^2 window of (H, W), separable."""
    k = 2 * r + 1
    x = -F.max_pool2d(-x[None, None], (1, k), stride=1, padding=(0, r))
    return -F.max_pool2d(x, (k, 1), stride=1, padding=(r, 0))[0, 0]


def _grad(gray: torch.Tensor) -> torch.Tensor:
    """Gradient magnitude (H, W), forward differences, replicated at the far edges."""
    gx = F.pad((gray[:, 1:] - gray[:, :-1]).abs()[None], (0, 1), mode="replicate")[0]
    gy = F.pad((gray[1:] - gray[:-1]).abs()[None, None], (0, 0, 0, 1), mode="replicate")[0, 0]
    return gx + gy
