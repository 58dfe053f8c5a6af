"""Haze by the atmospheric scattering model: I = J t + A (1 - t), t = exp(-beta d).

d is a pseudo-depth (depth.py). Homogeneous haze has one beta; non-homogeneous haze modulates
beta with a smooth random field. The airlight A is bright and slightly tinted (blue-grey or warm),
as in RESIDE's outdoor sets. The density label is 1 - t.
"""
import numpy as np
import torch

from .depth import pseudo_depth
from .kernels import smooth_field

MAX_BETA = 3.0


def add_haze(img: torch.Tensor, rng: np.random.Generator, strength: float = 1.0):
    """img (3, H, W) -> (hazy image, density = 1 - t (1, H, W), severity in [0, 1])."""
    _, h, w = img.shape
    depth = pseudo_depth(img, rng)
    beta = rng.uniform(0.4, MAX_BETA) * strength
    if rng.random() < 0.4:                                        # non-homogeneous
        beta = beta * (0.4 + 1.2 * smooth_field(rng, h, w, cells=int(rng.integers(2, 5))))
    near = rng.uniform(0.0, 0.35)                                 # even the nearest pixel has some haze
    t = torch.exp(-torch.as_tensor(beta) * (near + depth))
    airlight = rng.uniform(0.7, 1.0) + rng.normal(0, 0.03, (3, 1, 1))
    airlight = torch.from_numpy(np.clip(airlight, 0.55, 1.0).astype(np.float32))
    hazy = img * t + airlight * (1 - t)
    density = (1 - t).clamp(0, 1)
    return hazy.clamp(0, 1), density, float(density.mean().clamp(0, 1))
