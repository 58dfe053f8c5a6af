"""Haze by the atmospheric scattering model: I = J t + A (1 - t), t = exp(-beta d).

d is a pseudo-depth (depth.py) shifted so that even the nearest pixel has a little haze. Beta is
set through the transmission of the farthest pixel, fitted to RESIDE's outdoor haze (HSTS, by
fitting this model to its hazy/clear pairs here: airlight 0.80-0.98, near grey; t between ~0.4
and ~0.85, median ~0.65), with a tail to thick haze. Non-homogeneous haze modulates beta with a
smooth random field (patches of fog). The airlight is bright and slightly tinted (blue-grey or
warm). The density label is 1 - t.
"""
import numpy as np
import torch

from .depth import pseudo_depth
from .kernels import smooth_field

SEVERITY_SCALE = 0.7         # severity = mean(1 - t) / SEVERITY_SCALE


def make_haze(img: torch.Tensor, rng: np.random.Generator, strength: float = 1.0):
    """-> (transmission t (1, H, W) in (0, 1], airlight A (3, 1, 1)). `strength` < 1 thins the haze
    (used under rain or snow, where the haze is a second weather)."""
    _, h, w = img.shape
    depth = pseudo_depth(img, rng)
    t_far = rng.uniform(0.2, 0.65) if rng.random() < 0.85 else rng.uniform(0.06, 0.2)
    t_far = t_far ** strength
    near = rng.uniform(0.05, 0.4)                                 # depth of the nearest pixel
    beta = -np.log(t_far)
    if rng.random() < 0.35:                                       # non-homogeneous: patches of fog
        field = smooth_field(rng, h, w, cells=int(rng.integers(2, 6)), octaves=2)
        beta = beta * (0.35 + 1.3 * field)
    t = torch.exp(-torch.as_tensor(beta, dtype=torch.float32) * (near + (1 - near) * depth))
    level = rng.uniform(0.7, 1.0)
    tint = rng.normal(0, 0.02, 3) + rng.choice([0.0, 1.0, -1.0], p=[0.6, 0.25, 0.15]) * np.array([-0.03, 0.0, 0.03])
    airlight = torch.from_numpy(np.clip(level * (1 + tint), 0.55, 1.0).astype(np.float32)).view(3, 1, 1)
    return t.clamp(1e-3, 1), airlight


def apply_haze(img: torch.Tensor, t: torch.Tensor, airlight: torch.Tensor) -> torch.Tensor:
    return (img * t + airlight * (1 - t)).clamp(0, 1)


def add_haze(img: torch.Tensor, rng: np.random.Generator, strength: float = 1.0, depth_from: torch.Tensor = None):
    """img (3, H, W) -> (hazy image, density = 1 - t (1, H, W), severity in [0.05, 1]).
    depth_from: the image the pseudo-depth is read from (default img), e.g. the clean photo when
    img already carries rain streaks."""
    t, airlight = make_haze(img if depth_from is None else depth_from, rng, strength)
    density = (1 - t).clamp(0, 1)
    severity = float(np.clip(density.mean().item() / SEVERITY_SCALE, 0.05, 1.0))
    return apply_haze(img, t, airlight), density, severity
