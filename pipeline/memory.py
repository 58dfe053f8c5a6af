"""Out-of-memory back-off, shared by the signals and the restoration: halve the tile and try again.

    shrink_on_oom(run, tile, min_tile, what)  -> (run(t), t) for the first t that fits

Only the errors in `oom_errors` count as out-of-memory (torch's by default; ComfyUI adds its own),
so a bug is never retried. `on_oom(new_tile)` frees the device's cache before each retry: the
nodes pass comfy.model_management.soft_empty_cache, the command line models.device.empty_cache.
"""
import logging
from typing import Callable, Optional, Sequence, Tuple, Type

import torch

log = logging.getLogger(__name__)

MIN_TILE = 64                                   # the smallest tile a user may ask for, and the retry floor
OOM_ERRORS: Tuple[Type[BaseException], ...] = tuple(
    e for e in (getattr(torch, "OutOfMemoryError", None), getattr(torch.cuda, "OutOfMemoryError", None)) if e)


class OutOfMemory(RuntimeError):
    """Even the smallest tile did not fit in the device's memory."""


def shrink_on_oom(run: Callable[[int], torch.Tensor], tile: int, min_tile: int, what: str,
                  oom_errors: Sequence[Type[BaseException]] = OOM_ERRORS,
                  on_oom: Optional[Callable[[int], None]] = None):
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
                    f"choose precision fp16 (Load Weather Model, or --precision fp16), or make the image "
                    f"smaller") from e
            t = max(min_tile, t // 2)
            log.warning("out of memory on %s; retrying with %dpx tiles", what, t)
            if on_oom is not None:
                on_oom(t)
