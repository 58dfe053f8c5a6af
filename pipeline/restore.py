"""Restore a batch the way the Restore node does: masks fitted, region feathered, strength blended,
large images tiled, and a smaller tile tried when the device runs out of memory.

    x (B, 3, H, W) in [0, 1]
    w = strength * feather(region)                     (B, 1, H, W), or strength everywhere
    y = x + w * (restore(x_crop) - x_crop)             only the region's bounding box is restored
Each item is restored on its own (one tile of one item in the network at a time); the learned
prior and density are computed on the whole image, so a crop sees the same signals as the image.
"""
import logging
from typing import Callable, Optional, Sequence, Tuple, Type

import torch

from ..models.tiling import global_signals, plan_tiles, restore_image
from ..models.signals import WEATHER_TYPES
from .layout import InputError, check_min_size
from .masks import bounding_box, feather_mask, fit_mask

log = logging.getLogger(__name__)

OOM_ERRORS: Tuple[Type[BaseException], ...] = tuple(
    e for e in (getattr(torch, "OutOfMemoryError", None), getattr(torch.cuda, "OutOfMemoryError", None)) if e)


class OutOfMemory(RuntimeError):
    """Even the smallest tile did not fit in the device's memory."""


class NumericalError(RuntimeError):
    """The network returned NaN or infinite values (usually fp16 overflow)."""


def check_prior_rows(prior: torch.Tensor, batch: int, name: str = "prior") -> torch.Tensor:
    """(1 or B, K) -> (B, K) float32 in [0, 1], or InputError naming the mismatch."""
    K = len(WEATHER_TYPES)
    if prior.ndim != 2 or prior.shape[1] != K:
        raise InputError(f"{name} must have shape (B, {K}) ({', '.join(WEATHER_TYPES)}); got {tuple(prior.shape)}")
    if prior.shape[0] not in (1, batch):
        raise InputError(
            f"{name} was computed for {prior.shape[0]} images but the image batch has {batch}; compute it "
            f"on the same images (connect the same IMAGE to CLIP Weather Prior)")
    return prior.float().clamp(0, 1).expand(batch, K)


def shrink_on_oom(run: Callable[[int], torch.Tensor], tile: int, min_tile: int, what: str,
                  oom_errors: Sequence[Type[BaseException]] = OOM_ERRORS,
                  on_oom: Optional[Callable[[int], None]] = None) -> Tuple[torch.Tensor, int]:
    """run(tile), halving the tile (down to `min_tile`) on out-of-memory; returns (result, the tile
    that worked). `on_oom(new_tile)` runs before each retry (free caches there)."""
    t = tile
    while True:
        try:
            return run(t), t
        except tuple(oom_errors) as e:
            if t <= min_tile:
                raise OutOfMemory(
                    f"out of memory even with {t}px tiles on {what}; free memory (unload other models), "
                    f"choose precision fp16 in Load Weather Model, or make the image smaller") from e
            t = max(min_tile, t // 2)
            log.warning("out of memory on %s; retrying with %dpx tiles", what, t)
            if on_oom is not None:
                on_oom(t)


def restore_tiled(model, x: torch.Tensor, prior=None, density=None, tile: int = 512, overlap: int = 64,
                  min_tile: int = 64, on_tile: Optional[Callable[[int, int], None]] = None,
                  should_stop: Optional[Callable[[], bool]] = None,
                  oom_errors: Sequence[Type[BaseException]] = OOM_ERRORS,
                  on_oom: Optional[Callable[[int], None]] = None) -> Tuple[torch.Tensor, int]:
    """models.tiling.restore_image with shrink_on_oom. The first try uses min(tile, longest side), so
    a retry always makes the tiles smaller; the overlap shrinks to a quarter of a smaller tile."""
    H, W = x.shape[-2:]
    first = min(tile, max(H, W))

    def run(t: int) -> torch.Tensor:
        ov = min(overlap, t // 2 if t == first else t // 4, t - 1)
        return restore_image(model, x, prior=prior, density=density, tile=t, overlap=ov,
                             on_tile=on_tile, should_stop=should_stop)

    return shrink_on_oom(run, first, min_tile, f"a {H}x{W} image", oom_errors, on_oom)


def _count_tiles(h: int, w: int, tile: int, overlap: int, stride: int) -> int:
    t = min(tile, max(h, w))
    return len(plan_tiles(h, w, t, min(overlap, t // 2, t - 1), align=stride))


def restore_batch(model, x: torch.Tensor, prior: Optional[torch.Tensor] = None,
                  density: Optional[torch.Tensor] = None, region: Optional[torch.Tensor] = None,
                  strength: float = 1.0, tile: int = 512, overlap: int = 64, feather: int = 16,
                  min_tile: int = 64, on_progress: Optional[Callable[[int, int], None]] = None,
                  should_stop: Optional[Callable[[], bool]] = None,
                  oom_errors: Sequence[Type[BaseException]] = OOM_ERRORS,
                  on_oom: Optional[Callable[[int], None]] = None) -> torch.Tensor:
    """x (B, 3, H, W) in [0, 1] -> restored (B, 3, H, W) float32 in [0, 1] on x's device.

    prior (1 or B, K) in [0, 1]; density and region are MASKs (1 or B, H, W), fitted by `fit_mask`.
    `on_progress(done, total)` counts tiles over the whole batch; `should_stop()` -> True stops
    with InterruptedError.
    """
    if x.ndim != 4 or x.shape[1] != 3:
        raise InputError(f"image must be (B, 3, H, W) after layout conversion; got {tuple(x.shape)}")
    if not 0.0 <= strength <= 1.0:
        raise InputError(f"strength must be in [0, 1]; got {strength}")
    if tile < 1 or overlap < 0 or overlap >= tile:
        raise InputError(f"need tile_size >= 1 and 0 <= tile_overlap < tile_size; got {tile} and {overlap}")
    B, _, H, W = x.shape
    stride = model.cfg.stride
    check_min_size(H, W, stride)
    x = x.float()
    if prior is not None:
        prior = check_prior_rows(prior.to(x.device), B)
    if density is not None:
        density = fit_mask(density.to(x.device), B, (H, W), "density")
    w = None
    if region is not None:
        w = feather_mask(fit_mask(region.to(x.device), B, (H, W), "region"), feather) * strength
    if strength == 0.0:
        return x.clone()

    boxes = []
    for i in range(B):
        if w is None:
            boxes.append((0, H, 0, W))
        else:                                                   # context around the region, stride-aligned
            boxes.append(bounding_box(w[i, 0], margin=max(overlap, 2 * stride), align=stride, min_size=stride))
    out = x.clone()
    done_before = 0
    for i, box in enumerate(boxes):
        if should_stop is not None and should_stop():
            raise InterruptedError(f"restore stopped before image {i + 1} of {B}")
        if box is None:                                         # empty region: nothing to restore
            log.info("region mask of image %d is empty: image left as it is", i + 1)
            continue
        y0, y1, x0, x1 = box
        xi = x[i:i + 1]
        pi = None if prior is None else prior[i:i + 1]
        di = None if density is None else density[i:i + 1]
        if (y1 - y0, x1 - x0) != (H, W) and (pi is None or di is None):
            (gp, gd), tile = shrink_on_oom(lambda t: global_signals(model, xi, t), tile, min_tile,
                                           f"the {H}x{W} image's signals", oom_errors, on_oom)   # for the crop
            pi = gp if pi is None else pi
            di = gd if di is None else di
        crop = xi[..., y0:y1, x0:x1]
        dc = None if di is None else di[..., y0:y1, x0:x1]
        rest = sum(_count_tiles(b[1] - b[0], b[3] - b[2], tile, overlap, stride) for b in boxes[i + 1:] if b)

        def on_tile(done: int, total: int, _before=done_before, _rest=rest):
            if on_progress is not None:
                on_progress(_before + done, _before + total + _rest)

        restored, used = restore_tiled(model, crop, pi, dc, tile, overlap, min_tile, on_tile, should_stop,
                                       oom_errors, on_oom)     # (1, 3, h, w)
        if used < min(tile, max(y1 - y0, x1 - x0)):             # it ran out of memory: later items start smaller
            tile = used
        restored = restored.float()
        if not torch.isfinite(restored).all():
            raise NumericalError(
                f"the network returned NaN or infinite values for image {i + 1} (weights dtype "
                f"{next(model.parameters()).dtype}); choose precision fp32 in Load Weather Model")
        wi = strength if w is None else w[i:i + 1, :, y0:y1, x0:x1]
        out[i:i + 1, :, y0:y1, x0:x1] = crop + wi * (restored - crop)
        done_before += _count_tiles(y1 - y0, x1 - x0, tile, overlap, stride)
    return out.clamp(0, 1)
