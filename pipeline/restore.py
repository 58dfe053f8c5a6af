"""Restore a batch the way the Restore node and `weather.py restore` do: masks fitted, region
feathered, strength blended, large images tiled, a smaller tile tried when the device runs out of
memory, and a NaN / infinity check on what the network returns.

    x (B, 3, H, W) in [0, 1]
    w = strength * feather(region)                     (B, 1, H, W), or strength everywhere
    y = x + w * (restore(x_crop) - x_crop)             only the region's bounding box is restored
With weather_scale > 1, x_crop first gets the coarse pass of pipeline/coarse.py (weather larger than
the network learned it, removed on a smaller copy); the blend still starts from the input. With
keep_brightness, restore(x_crop) first loses the smooth part of its change (pipeline/tone.py).
Each item is restored on its own (one tile of one item in the network at a time). Missing learned
signals come from `pipeline.signals.learned_prior_density` on the whole image, at the fixed analysis
size, before the first tile: a crop, a smaller tile or an out-of-memory retry restores with the
same prior and density. Progress counts those signal calls and the tiles from the first moment;
`should_stop` is asked before every network call and between the network's layers.
"""
import logging
from typing import Callable, List, Optional, Sequence, Type

import torch

from ..models.signals import WEATHER_TYPES
from ..models.tiling import ANALYSIS_SIZE, plan_tiles, restore_image, signal_steps
from .allocator import tune_cpu_allocator
from .coarse import check_weather_scale, coarse_size, remove_coarse_weather
from .layout import InputError
from .masks import bounding_box, feather_mask, fit_mask
from .memory import MIN_TILE, OOM_ERRORS, OutOfMemory, shrink_on_oom  # noqa: F401 (OutOfMemory: part of the API)
from .signals import learned_prior_density
from .stopping import stop_between_layers
from .tone import take_back_brightness

log = logging.getLogger(__name__)

STRENGTH_RANGE = (0.0, 1.0)
# the one default tiling of restore, evaluate, export's scores, bench and the Restore node: 512 px tiles
# measured faster per pixel than 1024 px ones for the v4 'm' net on CPU (9.9 vs 16.0 s/MP, 1 thread)
DEFAULT_TILE, DEFAULT_OVERLAP = 512, 64


class NumericalError(RuntimeError):
    """The network returned NaN or infinite values (usually fp16 overflow)."""


def check_restore_args(strength: float, tile: int, overlap: int, min_tile: int = 1) -> None:
    """The one check of strength, tile and overlap (InputError naming the input and the fix)."""
    lo, hi = STRENGTH_RANGE
    if not lo <= strength <= hi:
        raise InputError(f"strength must be in [{lo:g}, {hi:g}] (0 = the input, 1 = fully restored); got {strength}")
    if tile < max(1, min_tile):
        raise InputError(f"tile_size {tile} is too small: use at least {max(1, min_tile)} pixels")
    if overlap < 0 or overlap >= tile:
        raise InputError(f"need tile_size >= 1 and 0 <= tile_overlap < tile_size; got {tile} and {overlap}")


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


def check_finite(y: torch.Tensor, model, what: str) -> None:
    """NumericalError when y has NaN / inf; the advice fits the weights' dtype (only half precision overflows)."""
    if torch.isfinite(y).all():
        return
    dtype = next(model.parameters()).dtype
    if dtype in (torch.float16, torch.bfloat16):
        fix = "choose precision fp32 (Load Weather Model, or --precision fp32)"
    else:
        fix = ("the weights are fp32, so this is not a precision problem: check that the input image has no "
               "NaN / infinite pixels and that the weights file verifies (Load Weather Model checks its sha256)")
    raise NumericalError(f"the network returned NaN or infinite values for {what} (weights dtype {dtype}); {fix}")


def restore_tiled(model, x: torch.Tensor, prior=None, density=None, tile: int = DEFAULT_TILE, overlap: int = DEFAULT_OVERLAP,
                  min_tile: int = MIN_TILE, on_tile: Optional[Callable[[int, int], None]] = None,
                  should_stop: Optional[Callable[[], bool]] = None,
                  oom_errors: Sequence[Type[BaseException]] = OOM_ERRORS,
                  on_oom: Optional[Callable[[int], None]] = None, mirror_ensemble: bool = False):
    """models.tiling.restore_image with shrink_on_oom -> (restored, tile used). The first try uses
    min(tile, longest side), so a retry always makes the tiles smaller; the overlap shrinks to a
    quarter of a smaller tile."""
    H, W = x.shape[-2:]
    first = max(2, min(tile, max(H, W)))                       # restore_image's smallest tile is 2

    def run(t: int) -> torch.Tensor:
        ov = min(overlap, t // 2 if t == first else t // 4, t - 1)
        return restore_image(model, x, prior=prior, density=density, tile=t, overlap=ov,
                             on_tile=on_tile, should_stop=should_stop, mirror_ensemble=mirror_ensemble)

    return shrink_on_oom(run, first, min(min_tile, first), f"a {H}x{W} image", oom_errors, on_oom)


def _count_tiles(h: int, w: int, tile: int, overlap: int, stride: int) -> int:
    t = min(tile, max(h, w))
    return len(plan_tiles(h, w, t, min(overlap, t // 2, t - 1), align=stride))


class _Progress:
    """on_progress(done, total) over phases (signals, tiles) of every item; a phase reports its own
    (done, total) and the plan of the later phases is revised as counts become known."""

    def __init__(self, callback, plans: List[List[int]]):
        self.callback, self.plans = callback, plans

    def report(self, item: int, phase: int) -> Callable[[int, int], None]:
        def on_step(done: int, total: int) -> None:
            self.plans[item][phase] = total
            if self.callback is not None:
                before = sum(map(sum, self.plans[:item])) + sum(self.plans[item][:phase])
                after = sum(self.plans[item][phase + 1:]) + sum(map(sum, self.plans[item + 1:]))
                self.callback(before + done, before + total + after)
        return on_step

    def start(self) -> None:
        if self.callback is not None:
            self.callback(0, max(1, sum(map(sum, self.plans))))


def restore_batch(model, x: torch.Tensor, prior: Optional[torch.Tensor] = None,
                  density: Optional[torch.Tensor] = None, region: Optional[torch.Tensor] = None,
                  strength: float = 1.0, tile: int = DEFAULT_TILE, overlap: int = DEFAULT_OVERLAP, feather: int = 16,
                  min_tile: int = MIN_TILE, on_progress: Optional[Callable[[int, int], None]] = None,
                  should_stop: Optional[Callable[[], bool]] = None,
                  oom_errors: Sequence[Type[BaseException]] = OOM_ERRORS,
                  on_oom: Optional[Callable[[int], None]] = None, mirror_ensemble: bool = False,
                  weather_scale: float = 1.0, keep_brightness: bool = False) -> torch.Tensor:
    """x (B, 3, H, W) in [0, 1] -> restored (B, 3, H, W) float32 in [0, 1] on x's device.

    prior (1 or B, K) in [0, 1]; density and region are MASKs (1 or B, H, W), fitted by `fit_mask`.
    `on_progress(done, total)` counts the signal calls and tiles of the whole batch, starting with
    (0, total) before any work; `should_stop()` -> True stops with InterruptedError.
    `mirror_ensemble`: every tile is the mean of the network on it and on its mirror image (2x the
    time; models.tiling.restore_image).
    `weather_scale` s > 1: a first pass on a copy shrunk by s removes rain drawn s times larger than the
    network learned it (pipeline/coarse.py); 1 skips it.
    `keep_brightness`: the smooth brightness change (a veil lifted, a photo darkened) is taken back and the
    fine one (streaks, flakes) kept: for rain and snow without mist (pipeline/tone.py).
    """
    if x.ndim != 4 or x.shape[1] != 3:
        raise InputError(f"image must be (B, 3, H, W) after layout conversion; got {tuple(x.shape)}")
    check_restore_args(strength, tile, overlap)
    check_weather_scale(weather_scale)
    B, _, H, W = x.shape
    stride = model.cfg.stride
    if next((p.device.type for p in model.parameters()), "cpu") == "cpu":
        tune_cpu_allocator()                                    # keep freed tile memory (pipeline/allocator.py)
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

    def needs_signals(box) -> bool:
        """Signals computed before the tiles, unless the model's single call on the whole image
        predicts the same ones itself."""
        if prior is not None and density is not None:
            return False
        return box != (0, H, 0, W) or max(H, W) > min(tile, ANALYSIS_SIZE) or mirror_ensemble

    # the coarse copy of each item's box (None: no coarse pass), decided once for the plan and the restore
    smalls = [None if b is None else coarse_size(b[1] - b[0], b[3] - b[2], weather_scale) for b in boxes]

    def plan(box, small, t: int) -> List[int]:
        """Progress steps of one item: coarse-pass tiles, signal calls, tiles."""
        if box is None:
            return [0, 0, 0]
        y0, y1, x0, x1 = box
        return [0 if small is None else _count_tiles(*small, t, overlap, stride),
                signal_steps(H, W, stride=stride) if needs_signals(box) else 0,
                _count_tiles(y1 - y0, x1 - x0, t, overlap, stride)]

    progress = _Progress(on_progress, [plan(b, s, tile) for b, s in zip(boxes, smalls)])
    progress.start()
    with stop_between_layers(model, should_stop):
        return _restore_items(model, x, boxes, prior, density, w, strength, tile, overlap, min_tile, stride,
                              progress, plan, needs_signals, should_stop, oom_errors, on_oom, mirror_ensemble,
                              smalls, keep_brightness)


def _restore_items(model, x, boxes, prior, density, w, strength, tile, overlap, min_tile, stride, progress, plan,
                   needs_signals, should_stop, oom_errors, on_oom, mirror_ensemble, smalls,
                   keep_brightness) -> torch.Tensor:
    B, _, H, W = x.shape
    out = x.clone()
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
        small = smalls[i]
        if small is not None:                                   # the full pass and its signals see x'
            def restore_small(s, d):
                return restore_tiled(model, s, pi, d, tile, overlap, min_tile, progress.report(i, 0), should_stop,
                                     oom_errors, on_oom, mirror_ensemble)[0]
            xi = xi.clone()
            xi[..., y0:y1, x0:x1] = remove_coarse_weather(
                restore_small, xi[..., y0:y1, x0:x1], None if di is None else di[..., y0:y1, x0:x1], small)
        if needs_signals(box):
            gp, gd = learned_prior_density(model, xi, on_progress=progress.report(i, 1), should_stop=should_stop,
                                           oom_errors=oom_errors, on_oom=on_oom, min_tile=min_tile)
            pi = gp if pi is None else pi
            di = gd if di is None else di
        crop = xi[..., y0:y1, x0:x1]
        dc = None if di is None else di[..., y0:y1, x0:x1]
        restored, used = restore_tiled(model, crop, pi, dc, tile, overlap, min_tile, progress.report(i, 2),
                                       should_stop, oom_errors, on_oom, mirror_ensemble)     # (1, 3, h, w)
        if used < min(tile, max(y1 - y0, x1 - x0)):             # it ran out of memory: later items start smaller
            tile = used
            for j in range(i + 1, B):
                progress.plans[j] = plan(boxes[j], smalls[j], tile)
        restored = restored.float()
        check_finite(restored, model, f"image {i + 1}")
        wi = strength if w is None else w[i:i + 1, :, y0:y1, x0:x1]
        source = x[i:i + 1, :, y0:y1, x0:x1]                    # the input, not the coarse pass's x'
        if keep_brightness:
            restored = take_back_brightness(source, restored)
        out[i:i + 1, :, y0:y1, x0:x1] = torch.lerp(source, restored, wi)   # exact at weights 0 and 1
    return out.clamp(0, 1)
