"""The coarse pass of `restore_batch`: weather drawn larger than the network learned it, removed at a
lower resolution.

The network learned rain streaks of 1-5 px on photos of about 480x320 (Rain100L's size). In a large
photo the same rain is several times wider, and one full-resolution pass takes much less of it away
(Rain100L upscaled 3x: 30.2 dB against 34.6 at its own size; scripts/weather_scale_check.py). With
`weather_scale` s > 1 the image is first shrunk by s, restored there, and the change the network
made is enlarged and added to the full-resolution image:

    x' = x + up(R(down(x)) - down(x))        then the usual full-resolution pass R(x')
Only the change is enlarged, so the photo keeps its own fine detail; the full-resolution pass then
takes what is left (fine streaks the small copy could not show). s = 1 (the default) skips it.
"""
import logging
from typing import Optional, Tuple

import torch
import torch.nn.functional as F

from .layout import InputError

log = logging.getLogger(__name__)

WEATHER_SCALE_RANGE = (1.0, 8.0)
MIN_COARSE_SIDE = 64          # the coarse copy keeps at least this many pixels on its short side


def check_weather_scale(scale: float) -> None:
    lo, hi = WEATHER_SCALE_RANGE
    if not lo <= scale <= hi:
        raise InputError(f"weather_scale must be in [{lo:g}, {hi:g}] (1 = off; 2-3 for large photos whose rain "
                         f"streaks are several pixels wide); got {scale}")


def coarse_size(h: int, w: int, scale: float) -> Optional[Tuple[int, int]]:
    """The (h, w) of the coarse copy, or None when there is no coarse pass: scale 1, or an image too
    small to shrink (the scale is lowered so the short side keeps MIN_COARSE_SIDE pixels)."""
    s = min(float(scale), min(h, w) / MIN_COARSE_SIDE)
    if s <= 1.0:
        return None
    if s < scale:
        log.info("weather_scale %.2f lowered to %.2f for a %dx%d image (coarse copy at least %d px)",
                 scale, s, h, w, MIN_COARSE_SIDE)
    return max(1, round(h / s)), max(1, round(w / s))


def resize(x: torch.Tensor, size: Tuple[int, int]) -> torch.Tensor:
    """(B, C, H, W) float32 -> (B, C, h, w): antialiased when shrinking, bicubic either way."""
    return F.interpolate(x, size=size, mode="bicubic", align_corners=False, antialias=x.shape[-2] > size[0])


def remove_coarse_weather(restore, x: torch.Tensor, density: Optional[torch.Tensor], size: Tuple[int, int]):
    """x (1, 3, H, W) float32 in [0, 1] -> x + up(restore(down(x), down(density)) - down(x)), in [0, 1].
    `restore(image, density)` is the caller's restoration of the small copy (its tiles, memory and
    progress); a given density map (1, 1, H, W) is shrunk with the image."""
    small = resize(x, size).clamp(0, 1)
    d = None if density is None else resize(density, size).clamp(0, 1)
    change = restore(small, d).float() - small
    return (x + resize(change, tuple(x.shape[-2:]))).clamp(0, 1)
