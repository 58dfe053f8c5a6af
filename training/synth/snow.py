"""Snow: flakes of several sizes and opacities over 2-4 depth layers, some motion-blurred.

Near layers have few, large, soft, fast (blurred) flakes; far layers many small sharp ones.
Flakes are alpha-composited in a near-white, so they also hide what is behind them.
"""
import numpy as np
import torch

from .kernels import convolve, gaussian_blur, line_kernel


def add_snow(img: torch.Tensor, rng: np.random.Generator):
    """img (3, H, W) -> (snowy image, coverage (1, H, W), severity in [0, 1])."""
    _, h, w = img.shape
    out, alpha_total = img, torch.zeros(1, h, w)
    fall_angle = rng.normal(0, 20)
    for depth in range(int(rng.integers(2, 5))):
        near = depth / 3                                          # 0 = far, 1 = near
        count = rng.uniform(0.0008, 0.004) * (1.5 - near)
        flakes = torch.from_numpy((rng.random((1, h, w)) < count).astype(np.float32))
        size = 0.4 + near * rng.uniform(0.8, 2.5)
        alpha = gaussian_blur(flakes, size) * (2 * np.pi * size ** 2)
        if rng.random() < 0.5:
            alpha = convolve(alpha, line_kernel(2 + near * rng.uniform(3, 12), fall_angle, 1.5 + size))
        alpha = (alpha * rng.uniform(0.6, 1.0)).clamp(0, 1)
        colour = float(rng.uniform(0.85, 1.0))
        out = out * (1 - alpha) + colour * alpha
        alpha_total = torch.maximum(alpha_total, alpha)
    severity = float(np.clip(alpha_total.mean().item() * 8, 0.2, 1.0))
    return out.clamp(0, 1), alpha_total.clamp(0, 1), severity
