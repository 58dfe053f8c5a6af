"""Raindrops on the lens: round/elliptic blobs that show a blurred, flipped, magnified view of the
scene (a drop is a small lens), with soft edges and a bright rim."""
import numpy as np
import torch
import torch.nn.functional as F

from .kernels import gaussian_blur


def add_raindrops(img: torch.Tensor, rng: np.random.Generator):
    """img (3, H, W) -> (image with drops, coverage (1, H, W), severity in [0, 1])."""
    _, h, w = img.shape
    scene = gaussian_blur(img, rng.uniform(1.5, 4.0))
    refracted = F.interpolate(scene.flip(1)[None], scale_factor=1.0, mode="bilinear")[0]   # drops flip the view
    alpha = torch.zeros(1, h, w)
    yy, xx = torch.meshgrid(torch.arange(h, dtype=torch.float32), torch.arange(w, dtype=torch.float32), indexing="ij")
    scale = max(h, w)
    for _ in range(int(rng.integers(3, 12))):
        cy, cx = rng.uniform(0, h), rng.uniform(0, w)
        ry = rng.uniform(0.02, 0.08) * scale
        rx = ry * rng.uniform(0.7, 1.3)
        r = ((yy - cy) / ry) ** 2 + ((xx - cx) / rx) ** 2
        drop = torch.clamp((1 - r) * rng.uniform(3, 8), 0, 1)     # soft edge
        alpha = torch.maximum(alpha, drop[None])
    alpha = gaussian_blur(alpha, 1.0)
    rim = (alpha * (1 - alpha) * 4) * rng.uniform(0.05, 0.2)      # bright edge where light refracts
    out = img * (1 - alpha) + (refracted * 1.05 + 0.03) * alpha + rim
    severity = float(np.clip(alpha.mean().item() * 5, 0.2, 1.0))
    return out.clamp(0, 1), alpha.clamp(0, 1), severity
