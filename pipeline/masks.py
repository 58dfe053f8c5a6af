"""MASK inputs (density and region): shape checks, batch broadcast, unambiguous resizing, feathering.

ComfyUI MASK tensors are float (B, H, W) in [0, 1]; (H, W) and (B, 1, H, W) are accepted too.
A mask is fitted to an image batch of B items of H x W pixels when that is unambiguous:
  batch    a batch of 1 is used for every image; otherwise it must equal B
  size     equal sizes pass; a constant mask fits any size (LoadImage gives a 64x64 zero mask for
           images without alpha); a mask with the image's aspect ratio is resized bilinearly;
           any other size is an error that says how to fix it
"""
import logging
import math
from typing import Optional, Tuple

import torch
import torch.nn.functional as F

from .layout import InputError

log = logging.getLogger(__name__)


def _as_bhw(mask: torch.Tensor, name: str) -> torch.Tensor:
    if not isinstance(mask, torch.Tensor):
        raise InputError(f"{name} must be a MASK tensor (B, H, W); got {type(mask).__name__}")
    if mask.ndim == 2:                                          # (H, W) -> (1, H, W)
        mask = mask[None]
    elif mask.ndim == 4 and mask.shape[1] == 1:                 # (B, 1, H, W) -> (B, H, W)
        mask = mask[:, 0]
    if mask.ndim != 3 or 0 in mask.shape:
        raise InputError(f"{name} must be a MASK of shape (B, H, W); got {tuple(mask.shape)}")
    return mask.float()


def same_aspect(h: int, w: int, H: int, W: int) -> bool:
    """True when one scale s maps H x W to h x w within a pixel of rounding: |s H - h| < 1 and |s W - w| < 1."""
    return max((h - 1) / H, (w - 1) / W) < min((h + 1) / H, (w + 1) / W)


def fit_mask(mask: torch.Tensor, batch: int, size: Tuple[int, int], name: str) -> torch.Tensor:
    """MASK (B', h, w) -> (B, 1, H, W) float32 in [0, 1] on the mask's device, or InputError."""
    H, W = size
    m = _as_bhw(mask, name)
    mb, h, w = m.shape
    if mb not in (1, batch):
        raise InputError(
            f"{name} has a batch of {mb} masks but the image batch has {batch}; give one mask for all "
            f"images or exactly one per image (e.g. 'Repeat Mask Batch' / 'Rebatch')")
    m = m.clamp(0, 1)
    if (h, w) != (H, W):
        lo, hi = m.amin(dim=(1, 2), keepdim=True), m.amax(dim=(1, 2), keepdim=True)
        if torch.equal(lo, hi):                                 # constant: the same at any size
            m = lo.expand(mb, H, W)
        elif same_aspect(h, w, H, W):
            log.info("%s: resizing the %dx%d mask to the image size %dx%d", name, h, w, H, W)
            m = F.interpolate(m[:, None], size=(H, W), mode="bilinear", align_corners=False)[:, 0]
        else:
            raise InputError(
                f"{name} is {h}x{w} (H x W) but the image is {H}x{W}, with another aspect ratio; resize or "
                f"crop the mask to the image size (e.g. paint it on this image in the mask editor)")
    return m.expand(batch, H, W)[:, None].contiguous()         # (B, H, W) -> (B, 1, H, W)


def gaussian_kernel(radius: int) -> torch.Tensor:
    """1-D Gaussian (2 * radius + 1,) with sigma = radius / 2, summing to 1."""
    sigma = max(radius / 2.0, 1e-6)
    t = torch.arange(-radius, radius + 1, dtype=torch.float32)
    k = torch.exp(-0.5 * (t / sigma) ** 2)
    return k / k.sum()


def feather_mask(m: torch.Tensor, radius: int) -> torch.Tensor:
    """Soften the edges of m (B, 1, H, W) with a separable Gaussian of `radius` pixels.

    Edge pixels of the image are replicated, so a mask touching the border stays 1 there.
    radius 0 returns m unchanged.
    """
    if radius <= 0:
        return m
    k = gaussian_kernel(radius).to(m)
    y = F.pad(m, (radius, radius, 0, 0), mode="replicate")
    y = F.conv2d(y, k.view(1, 1, 1, -1))                       # along W
    y = F.pad(y, (0, 0, radius, radius), mode="replicate")
    y = F.conv2d(y, k.view(1, 1, -1, 1))                       # along H
    return y.clamp(0, 1)


def bounding_box(m: torch.Tensor, margin: int, align: int = 1,
                 min_size: int = 1) -> Optional[Tuple[int, int, int, int]]:
    """(y0, y1, x0, x1) of the nonzero pixels of m (H, W), grown by `margin`, outwards to multiples
    of `align` and to at least `min_size` per side (all clipped to the image); None when m is all 0."""
    ys = torch.nonzero(m.amax(dim=1) > 0).flatten()
    xs = torch.nonzero(m.amax(dim=0) > 0).flatten()
    if ys.numel() == 0:
        return None
    H, W = m.shape

    def grow(lo: int, hi: int, size: int) -> Tuple[int, int]:
        lo = max(0, (lo - margin) // align * align)
        hi = min(size, math.ceil((hi + margin) / align) * align)
        if hi - lo < min_size:
            hi = min(size, lo + min_size)
            lo = max(0, hi - min_size)
        return lo, hi

    y0, y1 = grow(int(ys[0]), int(ys[-1]) + 1, H)
    x0, x1 = grow(int(xs[0]), int(xs[-1]) + 1, W)
    return y0, y1, x0, x1
