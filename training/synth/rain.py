"""Rain streaks: sparse random seeds, motion-blurred by FFT with tapered streak kernels, added to
the photo (Rain100L/Rain100H were made this way: noise -> motion blur -> add, grey streaks).

Light rain is fitted to Rain100L, measured on input - target of its test pairs: grey additive
residual (channels equal), 11-16 % of pixels brightened by more than 0.05, mean 0.11-0.14 over
them, 99.5th percentile ~0.28, streaks ~2 px wide and 10-40 px long, one dominant angle per image
within about +-25 degrees of vertical and a spread of a few degrees inside it.
Heavy rain is either Rain100H-like (2-4 directions, wide, bright, dense) or a real downpour (dense
long faint streaks, a few blurred near streaks, a veil of spray).
"""
import dataclasses

import numpy as np
import torch

from .kernels import convolve_wrap, gaussian_blur, smooth_field, streak_kernels

DENSITY_SCALE = 0.1          # D = 1 - exp(-R / DENSITY_SCALE), R the visible added brightness: 0.1 -> 0.63
SEVERITY_SCALE = 0.12        # severity = sqrt(mean R / SEVERITY_SCALE) (+ veil): Rain100L ~0.4


@dataclasses.dataclass
class RainLayer:
    streaks: torch.Tensor    # (1, H, W) added brightness, >= 0
    veil: float              # spray veil opacity (0 = none), a thin uniform haze of the streaks' light
    veil_light: float
    screen: bool             # screen blend instead of plain addition
    tint: torch.Tensor       # (3, 1, 1) streak colour, near grey


def _streaks(rng, h, w, density, lengths, angles, widths, tapers, amp, amp_spread) -> torch.Tensor:
    """Sum of K streak sublayers, (1, H, W). density: seeds per pixel over all sublayers, split
    so that each sublayer covers about the same area (fewer seeds for longer streaks)."""
    lengths = np.asarray(lengths, dtype=np.float64)
    share = (1 / lengths) / (1 / lengths).sum()
    k = len(lengths)
    u = rng.random((k, h, w))
    seeds = (u < (density * share)[:, None, None]).astype(np.float32)
    # brightness of each streak: amp * U(1 - amp_spread, 1), skewed to the faint side
    seeds *= amp * (1 - amp_spread * rng.random((k, h, w)) ** 0.6).astype(np.float32)
    kernels = streak_kernels(lengths, angles, widths, tapers)
    return convolve_wrap(torch.from_numpy(seeds), kernels).sum(0, keepdim=True).clamp_min(0)


def _light(rng, h, w):
    angle = float(np.clip(rng.normal(0, 9), -28, 28))
    base = rng.uniform(12, 30)
    lengths = base * np.array([0.55, 1.0, 1.6]) * rng.uniform(0.85, 1.15, 3)
    widths = rng.uniform(0.55, 0.85) * np.array([0.9, 1.0, 1.15])
    coverage = rng.uniform(0.09, 0.24)                            # Rain100L: 0.11-0.16 over 0.05
    density = coverage / (2.4 * lengths.mean())                   # a streak covers ~2.4 px x its length
    return _streaks(rng, h, w, density, lengths, angle + rng.normal(0, 2.5, 3), widths,
                    rng.uniform(0.4, 0.9, 3), amp=rng.uniform(0.25, 0.45), amp_spread=0.75)


def _rain100h(rng, h, w):
    n = int(rng.integers(2, 5))
    angle = rng.normal(0, 12)
    angles = np.clip(angle + rng.uniform(-1, 1, n) * rng.uniform(8, 30), -45, 45)
    lengths = rng.uniform(20, 60, n)
    widths = rng.uniform(0.9, 2.2, n)
    coverage = rng.uniform(0.25, 0.55)
    density = coverage / (2.5 * widths.mean() * lengths.mean())
    layer = _streaks(rng, h, w, density, lengths, angles, widths, rng.uniform(0.3, 0.8, n),
                     amp=rng.uniform(0.35, 0.75), amp_spread=0.6)
    return gaussian_blur(layer, rng.uniform(0.3, 1.0))


def _downpour(rng, h, w):
    angle = float(np.clip(rng.normal(0, 12), -35, 35))
    lengths = rng.uniform(30, 80) * np.array([0.6, 1.0, 1.4])
    far = _streaks(rng, h, w, rng.uniform(0.35, 0.7) / (1.8 * lengths.mean()), lengths,
                   angle + rng.normal(0, 2, 3), rng.uniform(0.5, 0.8, 3), rng.uniform(0.5, 0.9, 3),
                   amp=rng.uniform(0.12, 0.3), amp_spread=0.7)
    near_len = rng.uniform(60, 120)
    near = _streaks(rng, h, w, rng.uniform(0.02, 0.08) / (8 * near_len), [near_len], [angle + rng.normal(0, 3)],
                    [rng.uniform(2.0, 4.0)], [0.8], amp=rng.uniform(0.08, 0.22), amp_spread=0.5)
    return gaussian_blur(far, rng.uniform(0.2, 0.6)) + near


def make_rain(rng: np.random.Generator, h: int, w: int, heavy: bool) -> RainLayer:
    """Draw a rain layer for an (H, W) image."""
    if not heavy:
        streaks = _light(rng, h, w)
        veil, screen = 0.0, rng.random() < 0.3
    elif rng.random() < 0.55:
        streaks = _rain100h(rng, h, w)
        veil, screen = (rng.uniform(0.03, 0.15) if rng.random() < 0.5 else 0.0), rng.random() < 0.4
    else:
        streaks = _downpour(rng, h, w)
        veil, screen = rng.uniform(0.05, 0.22), rng.random() < 0.5
    # brightness varies along and between streaks (drops catch the light unevenly)
    cells = max(2, max(h, w) // 8)
    streaks = streaks * (0.55 + 0.9 * smooth_field(rng, h, w, cells=cells))
    tint = torch.from_numpy((1 - rng.uniform(0, 0.06, (3, 1, 1))).astype(np.float32))
    return RainLayer(streaks, float(veil), float(rng.uniform(0.7, 0.95)), bool(screen), tint)


def _streaks_on(img: torch.Tensor, layer: RainLayer) -> torch.Tensor:
    s = layer.streaks * layer.tint
    return (1 - (1 - img) * (1 - s.clamp(0, 1)) if layer.screen else img + s).clamp(0, 1)


def apply_rain(img: torch.Tensor, layer: RainLayer) -> torch.Tensor:
    """img (3, H, W) in [0, 1] -> rainy image; only ever brightens where the veil is absent."""
    out = _streaks_on(img, layer)
    if layer.veil > 0:
        out = out * (1 - layer.veil) + layer.veil * layer.veil_light
    return out.clamp(0, 1)


def rain_labels(layer: RainLayer, img: torch.Tensor):
    """-> (density (1, H, W) in [0, 1], severity in [0.1, 1]) of the rain as it shows on `img`:
    a streak over a white wall adds nothing and is not labelled (no head could see it)."""
    visible = (_streaks_on(img, layer) - img).mean(0, keepdim=True).clamp_min(0)      # (1, H, W)
    d = 1 - torch.exp(-visible / DENSITY_SCALE)
    d = 1 - (1 - d) * (1 - layer.veil)
    sev = float(np.sqrt(visible.mean().item() / SEVERITY_SCALE) + layer.veil)
    return d.clamp(0, 1), float(np.clip(sev, 0.1, 1.0))


def add_rain(img: torch.Tensor, rng: np.random.Generator, heavy: bool = False):
    """img (3, H, W) -> (rainy image, density (1, H, W) in [0, 1], severity in [0.1, 1])."""
    _, h, w = img.shape
    layer = make_rain(rng, h, w, heavy)
    density, severity = rain_labels(layer, img)
    return apply_rain(img, layer), density, severity
