"""Pseudo-depth for haze when no depth map exists: position prior + image cues + smooth random field.

Outdoor photos are usually far at the top and near at the bottom; bright, low-saturation, smooth
areas (sky, distant hills) tend to be far. The three cues are mixed with random weights and
smoothed, giving d in [0, 1] (1 = far).
"""
import numpy as np
import torch

from .kernels import gaussian_blur, smooth_field


def pseudo_depth(img: torch.Tensor, rng: np.random.Generator) -> torch.Tensor:
    """img (3, H, W) in [0, 1] -> depth (1, H, W) in [0, 1]."""
    _, h, w = img.shape
    horizon = rng.uniform(0.2, 0.7)
    rows = torch.linspace(0, 1, h)[:, None].expand(h, w)
    position = torch.clamp(1 - (rows - horizon) / (1 - horizon + 1e-6), 0, 1) ** rng.uniform(0.6, 1.6)
    position = position + rng.normal(0, 0.15) * torch.linspace(-1, 1, w)[None, :]   # a tilted scene
    bright = img.mean(0)
    saturation = img.amax(0) - img.amin(0)
    cue = gaussian_blur((bright * (1 - saturation))[None], max(h, w) / 40)[0]
    field = smooth_field(rng, h, w, cells=int(rng.integers(2, 6)))[0]
    weights = rng.dirichlet([3.0, 1.5, 1.0])
    depth = weights[0] * position + weights[1] * cue + weights[2] * field
    depth = gaussian_blur(depth[None], max(h, w) / 60)
    depth = depth - depth.amin()
    return (depth / depth.amax().clamp_min(1e-6)).clamp(0, 1)
