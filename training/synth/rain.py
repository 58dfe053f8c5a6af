"""Rain streaks: sparse noise, motion-blurred along a dominant angle, screen-blended onto the photo.

This is how Rain100L/Rain100H were made (Photoshop-style: noise -> motion blur -> levels -> screen),
so the light recipe reproduces their statistics: streaks only ever brighten, 10-40 % of pixels
touched, mean added brightness 0.06-0.16 where touched. Heavy rain stacks 2-3 layers at different
angles, widths and lengths, with a light veil.
"""
import numpy as np
import torch

from .kernels import convolve, gaussian_blur, line_kernel


def streak_layer(rng: np.random.Generator, h: int, w: int, density: float, length: float,
                 angle: float, width: float, brightness: float, blur: float) -> torch.Tensor:
    """One layer of streaks, (1, H, W) in [0, 1]."""
    pad = int(length) + 2                                         # streaks enter from outside the crop
    noise = torch.from_numpy((rng.random((1, h + 2 * pad, w + 2 * pad)) < density).astype(np.float32))
    noise = noise * torch.from_numpy(rng.uniform(0.5, 1.0, noise.shape).astype(np.float32))
    layer = convolve(noise, line_kernel(length, angle, width)) * length / 1.5
    layer = gaussian_blur(layer, blur)[:, pad:pad + h, pad:pad + w]
    return (layer.clamp(0, 1) * brightness).clamp(0, 1)


def add_rain(img: torch.Tensor, rng: np.random.Generator, heavy: bool):
    """img (3, H, W) -> (rainy image, coverage (1, H, W) in [0, 1], severity in [0, 1])."""
    _, h, w = img.shape
    base_angle = rng.normal(0, 12 if not heavy else 20)
    if heavy:
        layers = [streak_layer(rng, h, w, density=rng.uniform(0.004, 0.012), length=rng.uniform(15, 45),
                               angle=base_angle + rng.normal(0, 8), width=rng.uniform(1.0, 3.0),
                               brightness=rng.uniform(0.5, 0.95), blur=rng.uniform(0.3, 1.2))
                  for _ in range(rng.integers(2, 4))]
        rain = torch.stack(layers).amax(0)
        severity = float(np.clip(0.55 + rain.mean().item() * 3, 0.55, 1.0))
    else:
        rain = streak_layer(rng, h, w, density=rng.uniform(0.0015, 0.006), length=rng.uniform(10, 35),
                            angle=base_angle, width=rng.uniform(0.8, 1.8),
                            brightness=rng.uniform(0.35, 0.9), blur=rng.uniform(0.2, 0.8))
        severity = float(np.clip(0.2 + rain.mean().item() * 4, 0.2, 0.6))
    tint = torch.from_numpy(rng.uniform(0.92, 1.0, (3, 1, 1)).astype(np.float32))
    out = 1 - (1 - img) * (1 - rain * tint)                      # screen blend: only brightens
    if heavy:                                                     # a light veil of fine spray
        veil = rng.uniform(0.0, 0.12)
        out = out * (1 - veil) + veil * rng.uniform(0.7, 0.95)
    coverage = (rain * 4).clamp(0, 1)
    return out.clamp(0, 1), coverage, severity
