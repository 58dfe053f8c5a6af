"""Tiled inference: restore images of any size one tile at a time, blended with feathered weights.

    signals   prior p and density D once for the whole image (caller-given ones win), at the fixed
              ANALYSIS_SIZE whatever the restoring tile: the prior from a copy whose longest side is
              at most ANALYSIS_SIZE, D at full resolution in ANALYSIS_SIZE tiles (so a smaller tile,
              e.g. after out-of-memory, restores with the same signals)
    tiles     plan_tiles(H, W, tile, overlap): overlapping windows of at most `tile` pixels that cover
              every pixel, as few as possible and no longer than needed (balanced), starts aligned
              to the network stride where possible (same window grid as the whole image)
    blend     out = sum_t w_t * model(x_t, p, D_t) / sum_t w_t, w_t a raised-cosine ramp over the
              `overlap` pixels of each side that meets another tile (1 inside, never 0)
    drops     a network with a raindrop stage (models/drop_stage.py) first takes the drops off the whole
              image, in the same tiles, for the items whose prior reads raindrops: the stage's change
              weighted by drop_gate(p), 0 below DROP_GATE[0] (the stage is skipped) and 1 from DROP_GATE[1]
    mirror    optionally model(x_t, ...) is the mean of the network on the tile as it is and mirrored
              left-right (then mirrored back), with the same prior and the mirrored density: 2x the
              network time (docs/BENCHMARKS.md, "Mirror ensemble"). Only the view training showed the
              network: upside-down views remove rain well but lift haze wrongly (haze thickens
              towards the top of a photo, and training never flips vertically; training/data.py)

Every tile sees the same global prior and its own crop of the global density, so tiles agree with
each other and with whole-image inference (tests/test_tiling.py). Only one tile of one batch item
is in the network at a time. Pure PyTorch: ComfyUI plugs in through `on_tile` and `should_stop`.
"""
import math
from typing import Callable, List, Optional, Tuple

import torch
import torch.nn.functional as F

from .signals import WEATHER_TYPES, check_density, check_prior

Tile = Tuple[int, int, int, int]                # (y0, y1, x0, x1), end-exclusive
ANALYSIS_SIZE = 512                             # the one size the learned signals are computed at
MIRROR_VIEWS = ((), (-1,))                      # the mirror ensemble's views: as is, mirrored left-right
# the raindrops reading of the prior from which the drop stage starts to act and acts fully. The heads do not
# tell drops from rain well enough for a lower gate: they read 0.03-0.75 (median 0.13) on held-out synthetic
# drops but up to 0.46 on Rain100L's rain, and with a gate at (0.05, 0.15) the stage cost Rain100L 0.05 dB and
# its clean targets 4.8 dB (weather-m-v4.17; docs/EXPERIMENTS.md). So it acts where the reading is high or set
# by hand (raindrops=1: `restore --weather`, CLIP Weather Prior's raindrops input).
DROP_GATE = (0.5, 0.75)
DROPS = WEATHER_TYPES.index("raindrops")


def _axis_spans(size: int, tile: int, overlap: int, align: int) -> List[Tuple[int, int]]:
    """Spans [s, e) of at most `tile` pixels covering [0, size), neighbours overlapping >= `overlap`;
    starts are multiples of `align` where possible. Of full-size tiles and balanced ones (as few
    tiles, each as short as covering allows, rounded up to `align`), the plan with less padded work
    wins: 1155 px in 512 px tiles costs 3 x 448 px instead of 3 x 512 px at the network's stride 64."""
    if size <= tile:
        return [(0, size)]
    n = _ceil_div(size - overlap, tile - overlap)               # fewest tiles that can cover
    short = min(tile, _ceil_div(_ceil_div(size + (n - 1) * overlap, n), align) * align)
    plans = [_spans_of(size, t, overlap, align) for t in dict.fromkeys((short, tile))]
    return min(plans, key=lambda spans: sum(_ceil_div(e - s, align) * align for s, e in spans))


def _ceil_div(a: int, b: int) -> int:
    return -(-a // b)


def _spans_of(size: int, tile: int, overlap: int, align: int) -> List[Tuple[int, int]]:
    """Spans of `tile` pixels (the last may be shorter) at aligned steps; see _axis_spans."""
    if size <= tile:
        return [(0, size)]
    if tile - overlap < align:                  # alignment would leave gaps: give it up
        align = 1
    step = (tile - overlap) // align * align    # 1 <= step <= tile - overlap
    starts = list(range(0, size - tile, step))  # every start with start + tile < size
    last = _ceil_div(size - tile, align) * align  # aligned start whose tile reaches the end
    if last > starts[-1] + tile - overlap:      # too little overlap with its neighbour: unalign it
        last = size - tile
    starts.append(last)
    return [(s, min(s + tile, size)) for s in starts]


def plan_tiles(H: int, W: int, tile: int, overlap: int, align: int = 1) -> List[Tile]:
    """Tiles (y0, y1, x0, x1) of at most tile x tile pixels, row-major, covering every pixel of H x W.

    Neighbouring tiles overlap by at least `overlap` pixels (the last one of a row/column may overlap
    more). Starts are multiples of `align` (the network stride, so tiles share the whole image's
    window grid) except the last one of a row/column where that would cost overlap.
    """
    if H < 1 or W < 1:
        raise ValueError(f"image size must be at least 1 x 1 pixels; got H={H}, W={W}")
    if tile < 1 or not 0 <= overlap < tile:
        raise ValueError(f"need tile >= 1 and 0 <= overlap < tile; got tile={tile}, overlap={overlap}")
    if align < 1:
        raise ValueError(f"align must be >= 1; got {align}")
    return [(y0, y1, x0, x1)
            for y0, y1 in _axis_spans(H, tile, overlap, align)
            for x0, x1 in _axis_spans(W, tile, overlap, align)]


def _ramp(n: int, start: int, end: int, size: int, overlap: int) -> torch.Tensor:
    """1-D feather weights (n,) for a span [start, end) of an axis of `size` pixels: a raised cosine
    rising over the first / last `overlap` pixels on each side that meets another tile, else 1."""
    w = torch.ones(n, dtype=torch.float32)
    r = min(overlap, n // 2)
    if r > 0:
        rise = 0.5 - 0.5 * torch.cos(math.pi * (torch.arange(r, dtype=torch.float32) + 0.5) / r)  # in (0, 1)
        if start > 0:
            w[:r] = rise
        if end < size:
            w[n - r:] = torch.minimum(w[n - r:], rise.flip(0))
    return w


def _blend_weights(tiles: List[Tile], H: int, W: int, overlap: int, device) -> Tuple[List[torch.Tensor], torch.Tensor]:
    """Feather weights (h, w) per tile and their sum over the image (H, W), on `device`."""
    weights = [(_ramp(y1 - y0, y0, y1, H, overlap)[:, None] * _ramp(x1 - x0, x0, x1, W, overlap)[None, :]
                ).to(device) for y0, y1, x0, x1 in tiles]
    norm = torch.zeros(H, W, dtype=torch.float32, device=device)
    for (y0, y1, x0, x1), w in zip(tiles, weights):
        norm[y0:y1, x0:x1] += w
    return weights, norm


def model_place(model: torch.nn.Module) -> Tuple[torch.device, torch.dtype]:
    """The device and dtype of a module's weights: where its inputs must go."""
    p = next(model.parameters())
    return p.device, p.dtype


def network_autocast(model: torch.nn.Module):
    """The autocast every inference call of the network runs under: on in `model.autocast_dtype`
    where the loader set one (pipeline/precision.py: auto on a CPU with native bf16), else off."""
    dtype = getattr(model, "autocast_dtype", None)
    return torch.autocast(model_place(model)[0].type, dtype=dtype or torch.bfloat16, enabled=dtype is not None)


def mean_over_views(net: Callable, x: torch.Tensor, density: Optional[torch.Tensor],
                    views=MIRROR_VIEWS) -> torch.Tensor:
    """The mean over `views` (tuples of dims to flip; () = as it is) of net(view of x, view of density), each
    flipped back -> float32, not clamped: the mirror ensemble of `restore_image` and of training's
    MirrorEnsembleTeacher. The density (or None) is flipped with the image; other signals stay as given."""
    summed = None
    for dims in views:
        flip = (lambda t: t.flip(dims)) if dims else (lambda t: t)    # noqa: E731 - its own inverse
        y = flip(net(flip(x), None if density is None else flip(density)).float())
        summed = y if summed is None else summed + y
    return summed / len(views)


def drop_gate(prior: torch.Tensor) -> torch.Tensor:
    """(B, K) prior -> (B,) weight of the drop stage's change in [0, 1], from the raindrops column."""
    lo, hi = DROP_GATE
    return ((prior[:, DROPS].float() - lo) / (hi - lo)).clamp(0, 1)


def remove_drops(model, x: torch.Tensor, prior: torch.Tensor, tile: int = 512, overlap: int = 64) -> torch.Tensor:
    """x (B, 3, H, W) in [0, 1] with the raindrop stage's change added, weighted by drop_gate(prior),
    on x's device and dtype; items with a zero weight (and every item of a network without the stage)
    are returned as they are, without running it. Tiled like the restorer (a tile halved after
    out-of-memory halves the stage's too)."""
    stage = getattr(model, "drop_stage", None)
    gate = drop_gate(prior.to(x.device))
    if stage is None or not bool((gate > 0).any()):
        return x
    device, dtype = model_place(stage)
    B, _, H, W = x.shape
    tiles = plan_tiles(H, W, tile, overlap, align=stage.stride)
    weights, norm = _blend_weights(tiles, H, W, overlap, x.device)
    out = x.clone()
    for i in (gate > 0).nonzero()[:, 0].tolist():
        change = torch.zeros(3, H, W, dtype=torch.float32, device=x.device)
        for (y0, y1, x0, x1), w in zip(tiles, weights):
            crop = x[i:i + 1, :, y0:y1, x0:x1].to(device=device, dtype=dtype)
            with torch.no_grad(), network_autocast(model):
                change[:, y0:y1, x0:x1] += stage.residual(crop)[0].float().to(x.device) * w
        out[i] = (x[i].float() + gate[i] * change / norm).clamp(0, 1).to(x.dtype)
    return out


def _forward_without_drops(model, x: torch.Tensor, prior: Optional[torch.Tensor], density: Optional[torch.Tensor],
                          tile: int, overlap: int) -> torch.Tensor:
    """model(x, prior, density).image, the missing signals predicted in the same call; where the model has a
    raindrop stage and those signals read drops, x is restored again without its drops, with the same signals
    (the one extra pass only there: the gate is rarely open)."""
    o = model(x, prior=prior, density=density)
    if getattr(model, "drop_stage", None) is None or not bool((drop_gate(o.prior) > 0).any()):
        return o.image
    return model.restore(remove_drops(model, x, o.prior, tile, overlap), o.prior, o.density)


def _density_tiles(H: int, W: int, tile: int, stride: int) -> Tuple[List[Tile], int]:
    overlap = min(64, tile // 4)
    return plan_tiles(H, W, tile, overlap, align=stride), overlap


def signal_steps(H: int, W: int, size: int = ANALYSIS_SIZE, tile: Optional[int] = None, stride: int = 1) -> int:
    """How many network calls `global_signals` makes per image (its progress total per item)."""
    tiles, _ = _density_tiles(H, W, tile or size, stride)
    return 1 if len(tiles) == 1 and max(H, W) <= size else 1 + len(tiles)


@torch.no_grad()
def global_signals(model, x: torch.Tensor, size: int = ANALYSIS_SIZE, tile: Optional[int] = None,
                   on_step: Optional[Callable[[int, int], None]] = None,
                   should_stop: Optional[Callable[[], bool]] = None) -> Tuple[torch.Tensor, torch.Tensor]:
    """Learned prior (B, K) and density (B, 1, H, W) in [0, 1] of x (B, 3, H, W).

    The prior comes from the whole image, shrunk so that its longest side is at most `size` (the
    head looks at the whole scene at the cost of one tile). The density is predicted at full
    resolution, in tiles of `tile` (default `size`) pixels with feathered blending: rain streaks are
    1-3 px wide, and a map from a downscaled copy would blur them away before the restorer (which
    runs at full resolution) is told where they are. An image that fits in one tile of `size`
    takes one network call for both; the density tiles run only the encoder levels the density
    head reads (`predict_density`). `on_step(done, total)` after each call (total counts the
    batch), `should_stop()` -> True raises InterruptedError before the next one."""
    B, _, H, W = x.shape
    device, dtype = model_place(model)
    stride = getattr(getattr(model, "cfg", None), "stride", 1)
    tiles, overlap = _density_tiles(H, W, tile or size, stride)
    per_item = signal_steps(H, W, size, tile, stride)
    weights, norm = _blend_weights(tiles, H, W, overlap, x.device) if len(tiles) > 1 else (None, None)
    done = 0

    def call(predict, inp: torch.Tensor):
        nonlocal done
        if should_stop is not None and should_stop():
            raise InterruptedError(f"signals stopped after {done} of {B * per_item} steps")
        with network_autocast(model):
            out = predict(inp)
        done += 1
        if on_step is not None:
            on_step(done, B * per_item)
        return out

    priors, densities = [], []
    for i in range(B):                          # one item at a time: one tile's worth of activations
        xi = x[i:i + 1].to(device=device, dtype=dtype)
        if per_item == 1:
            sig = call(model.predict_signals, xi)
            priors.append(torch.sigmoid(sig.prior_logits.float()).to(x.device))
            densities.append(torch.sigmoid(sig.density_logits.float()).to(x.device))   # (1, 1, H, W)
            continue
        whole = xi
        if max(H, W) > size:
            scale = size / max(H, W)
            small = (max(1, round(H * scale)), max(1, round(W * scale)))
            # shrunk in float32: antialiased resizing has no bf16 / fp16 kernel on the CPU
            whole = F.interpolate(x[i:i + 1].to(device=device, dtype=torch.float32), size=small, mode="bilinear",
                                  align_corners=False, antialias=True).to(dtype)
        priors.append(torch.sigmoid(call(model.predict_signals, whole).prior_logits.float()).to(x.device))
        if len(tiles) == 1:
            densities.append(torch.sigmoid(call(model.predict_density, xi).float()).to(x.device))
            continue
        acc = torch.zeros(1, 1, H, W, dtype=torch.float32, device=x.device)
        for (y0, y1, x0, x1), w in zip(tiles, weights):
            logits = call(model.predict_density, xi[..., y0:y1, x0:x1]).float().to(x.device)
            acc[..., y0:y1, x0:x1] += torch.sigmoid(logits) * w
        densities.append(acc / norm)
    return torch.cat(priors), torch.cat(densities)


@torch.no_grad()
def restore_image(model, x: torch.Tensor, prior: Optional[torch.Tensor] = None,
                  density: Optional[torch.Tensor] = None, tile: int = 512, overlap: int = 64,
                  on_tile: Optional[Callable[[int, int], None]] = None,
                  should_stop: Optional[Callable[[], bool]] = None, mirror_ensemble: bool = False) -> torch.Tensor:
    """Restore x (B, 3, H, W) in [0, 1] -> (B, 3, H, W) in [0, 1], same dtype and device as x.

    prior (B or 1, K) and density (B or 1, 1, H, W) in [0, 1] are optional; missing ones come from
    `global_signals` at ANALYSIS_SIZE (whatever `tile` is) and every tile gets the global prior and its
    density crop. An image that fits in one tile and in ANALYSIS_SIZE runs once per item and the model
    predicts missing signals itself (the same values: the same single call of its heads).
    The network runs on its own device and dtype; x may stay on another one (e.g. offloaded).
    `on_tile(done, total)` is called after each tile (total counts all batch items);
    `should_stop()` returning True stops the work with InterruptedError. An overlap above half the
    tile is reduced to half the tile. `mirror_ensemble` restores every tile as the mean over
    MIRROR_VIEWS (signals computed once, on the image as it is, so both views get the same ones).
    """
    if x.ndim != 4 or x.shape[1] != 3:
        raise ValueError(f"restore_image needs x of shape (B, 3, H, W); got {tuple(x.shape)}")
    B, _, H, W = x.shape
    if B == 0 or H == 0 or W == 0:
        raise ValueError(f"restore_image got an empty image batch of shape {tuple(x.shape)}")
    if tile < 2 or overlap < 0:
        raise ValueError(f"restore_image needs tile >= 2 and overlap >= 0; got tile={tile}, overlap={overlap}")
    overlap = min(overlap, tile // 2)           # e.g. a tile halved after out-of-memory keeps working
    stride = getattr(getattr(model, "cfg", None), "stride", 1)
    tiles = plan_tiles(H, W, tile, overlap, align=stride)
    if prior is not None:
        prior = check_prior(prior.to(x.device), B)
    if density is not None:
        density = check_density(density.to(x.device), B, (H, W))
    if (len(tiles) > 1 or max(H, W) > ANALYSIS_SIZE or mirror_ensemble) and (prior is None or density is None):
        p, d = global_signals(model, x, ANALYSIS_SIZE)
        prior = p if prior is None else prior
        density = d if density is None else density
    if prior is not None and density is not None:   # else one tile, whose call predicts them: _forward_without_drops
        x = remove_drops(model, x, prior, tile, overlap)

    device, dtype = model_place(model)
    total, done = B * len(tiles), 0
    out = torch.empty_like(x)

    def step():
        nonlocal done
        done += 1
        if on_tile is not None:
            on_tile(done, total)

    def check_stop():
        if should_stop is not None and should_stop():
            raise InterruptedError(f"restore_image stopped after {done} of {total} tiles")

    def run(i: int, y0: int, y1: int, x0: int, x1: int) -> torch.Tensor:
        """The model on item i's crop -> (1, 3, h, w) float32 on x's device, not clamped."""
        crop = x[i:i + 1, :, y0:y1, x0:x1].to(device=device, dtype=dtype)
        p = None if prior is None else prior[i:i + 1].to(device=device, dtype=dtype)
        d = None if density is None else density[i:i + 1, :, y0:y1, x0:x1].to(device=device, dtype=dtype)
        views = MIRROR_VIEWS if mirror_ensemble else ((),)
        # given both signals, a network with `restore` skips its heads (WeatherRestorer.restore)
        if p is not None and d is not None and hasattr(model, "restore"):
            net = lambda c, dc: model.restore(c, p, dc)                      # noqa: E731
        else:
            net = lambda c, dc: _forward_without_drops(model, c, p, dc, tile, overlap)   # noqa: E731
        with network_autocast(model):
            return mean_over_views(net, crop, d, views).to(x.device)

    if len(tiles) == 1:
        for i in range(B):
            check_stop()
            out[i:i + 1] = run(i, 0, H, 0, W).clamp(0, 1).to(x.dtype)
            step()
        return out

    weights, norm = _blend_weights(tiles, H, W, overlap, x.device)
    for i in range(B):
        acc = torch.zeros(3, H, W, dtype=torch.float32, device=x.device)
        for (y0, y1, x0, x1), w in zip(tiles, weights):
            check_stop()
            acc[:, y0:y1, x0:x1] += run(i, y0, y1, x0, x1)[0] * w              # (3, h, w)
            step()
        out[i] = (acc / norm).clamp(0, 1).to(x.dtype)
    return out
