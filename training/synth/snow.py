"""Snow: flakes of several sizes and opacities over 2-4 depth layers, some motion-blurred.

Far layers have many small, faint, sharp flakes; near layers few large, soft, opaque ones (out of
focus), and fast near flakes are smeared along the fall direction (the shutter is open while they
move). Every layer is sparse seeds convolved (FFT) with one flake kernel: a Gaussian blob, or a
short streak for blurred flakes. Flakes are alpha-composited in near-white from far to near, so
they also hide what lies behind them.
"""
import numpy as np
import torch

from .kernels import convolve_wrap, streak_kernels

SEVERITY_SCALE = 0.25        # severity = sqrt(mean alpha / SEVERITY_SCALE)


def make_snow(rng: np.random.Generator, h: int, w: int):
    """-> (alpha (K, H, W) per layer far to near, colour (K,) grey level per layer)."""
    k = int(rng.integers(2, 5))
    near = np.linspace(0, 1, k)                                  # 0 = far, 1 = near
    sigma = 0.45 + near * rng.uniform(1.2, 4.0) * rng.uniform(0.7, 1.0, k)
    angle = float(np.clip(rng.normal(0, 18), -50, 50)) + rng.normal(0, 4, k)
    blurred = rng.random(k) < 0.45
    length = np.where(blurred, rng.uniform(2, 6, k) + near * rng.uniform(4, 18, k), 0.0)
    coverage = rng.uniform(0.03, 0.12, k) * (1.2 - 0.5 * near) * rng.uniform(0.5, 1.5)
    footprint = np.pi * (1.6 * sigma) ** 2 + length * 3.2 * sigma     # px covered by one flake
    seeds = rng.random((k, h, w)) < (coverage / footprint)[:, None, None]
    amp = seeds * rng.uniform(0.45, 1.0, (k, h, w))
    # a smeared flake spreads the same light over a longer path: fainter per pixel
    amp *= (2.5 * sigma / (length + 2.5 * sigma))[:, None, None] ** 0.5
    kernels = streak_kernels(length, angle, sigma, np.full(k, 0.5))
    flakes = convolve_wrap(torch.from_numpy(amp.astype(np.float32)), kernels)
    gain = torch.from_numpy((rng.uniform(1.2, 2.0, k) * rng.uniform(0.55, 0.9, k) ** (1 - near)).astype(np.float32))
    alpha = (flakes * gain[:, None, None]).clamp(0, 1)            # flat-topped, soft-edged flakes
    colour = rng.uniform(0.86, 1.0, k)
    return alpha, colour


def apply_snow(img: torch.Tensor, alpha: torch.Tensor, colour) -> torch.Tensor:
    out = img
    for a, c in zip(alpha, colour):                               # 2-4 depth layers, far to near
        out = out * (1 - a) + float(c) * a
    return out.clamp(0, 1)


def add_snow(img: torch.Tensor, rng: np.random.Generator):
    """img (3, H, W) -> (snowy image, coverage (1, H, W) in [0, 1], severity in [0.1, 1])."""
    _, h, w = img.shape
    alpha, colour = make_snow(rng, h, w)
    coverage = 1 - torch.prod(1 - alpha, dim=0, keepdim=True)
    severity = float(np.clip(np.sqrt(coverage.mean().item() / SEVERITY_SCALE), 0.1, 1.0))
    return apply_snow(img, alpha, colour), coverage.clamp(0, 1), severity
