"""The three signals for the nodes and the commands: which provider (auto / clip / learned), manual
overrides, readable summaries, quality tiers and a heat-map preview of the density.

Learned provider: the restorer's own heads at the one fixed analysis size
(models.tiling.ANALYSIS_SIZE, whatever tile the restoration uses): the prior and quality from a copy
whose longest side is at most that size, so a 4K image costs one tile; the density at full resolution
in tiles of that size (models.tiling.global_signals). Density Map, CLIP Weather Prior, Restore and
`weather.py restore` all get their learned signals from `learned_prior_density`, so the map a user
previews is the map the restoration uses. CLIP provider: models.clip.ClipSignals, on whatever device
the caller put the CLIP model.
"""
import math
from typing import Callable, Dict, List, Optional, Sequence, Tuple, Type

import torch
import torch.nn.functional as F

from ..models.signals import QUALITY_TIERS, WEATHER_TYPES, quality_score
from ..models.tiling import ANALYSIS_SIZE, global_signals, model_place, network_autocast
from .layout import InputError
from .memory import MIN_TILE, OOM_ERRORS, shrink_on_oom
from .stopping import stop_between_layers

SOURCES = ("auto", "clip", "learned")
# short names for summaries: "rain 0.82, haze 0.31"
SHORT_NAMES = {"rain_streaks": "rain", "raindrops": "raindrops", "snow": "snow", "haze": "haze"}


def resolve_source(source: str, has_clip: bool) -> str:
    """'auto' -> 'clip' when a CLIP model is loaded, else 'learned'; 'clip' without CLIP is an error."""
    if source not in SOURCES:
        raise InputError(f"source must be one of {', '.join(SOURCES)}; got '{source}'")
    if source == "auto":
        return "clip" if has_clip else "learned"
    if source == "clip" and not has_clip:
        raise InputError(
            "source is 'clip' but the weather model was loaded without CLIP; choose a CLIP model in "
            "Load Weather Model's 'clip' input (put CLIP files in ComfyUI/models/clip) or use source 'learned'")
    return source


def learned_prior_density(model, x: torch.Tensor, size: int = ANALYSIS_SIZE,
                          on_progress: Optional[Callable[[int, int], None]] = None,
                          should_stop: Optional[Callable[[], bool]] = None,
                          oom_errors: Sequence[Type[BaseException]] = OOM_ERRORS,
                          on_oom: Optional[Callable[[int], None]] = None,
                          min_tile: int = MIN_TILE) -> Tuple[torch.Tensor, torch.Tensor]:
    """x (B, 3, H, W) -> prior (B, K), density (B, 1, H, W), both float32 in [0, 1] on x's device.

    `size` is the analysis size (tests shrink it for tiny images; the front ends never pass it).
    Out of memory makes the density tiles smaller (the prior keeps its size); `on_progress(done,
    total)` counts network calls, `should_stop()` -> True raises InterruptedError."""
    H, W = x.shape[-2:]

    def run(t: int):
        return global_signals(model, x, size, tile=t, on_step=on_progress, should_stop=should_stop)

    with stop_between_layers(model, should_stop):
        (p, d), _ = shrink_on_oom(run, size, min(min_tile, size), f"the {H}x{W} image's signals", oom_errors, on_oom)
    return p.float(), d.float()


@torch.no_grad()
def learned_quality(model, x: torch.Tensor, size: int = ANALYSIS_SIZE,
                    should_stop: Optional[Callable[[], bool]] = None) -> torch.Tensor:
    """x (B, 3, H, W) -> tier probabilities (B, 3) float32 on x's device, one item at a time, each
    from a copy whose longest side is at most `size`."""
    device, dtype = model_place(model)
    H, W = x.shape[-2:]
    probs = []
    for i in range(x.shape[0]):
        if should_stop is not None and should_stop():
            raise InterruptedError(f"quality stopped before image {i + 1} of {x.shape[0]}")
        xi = x[i:i + 1].to(device=device, dtype=torch.float32)
        scale = size / max(H, W)
        if scale < 1:                           # in float32: antialiased resizing has no bf16 / fp16 CPU kernel
            xi = F.interpolate(xi, size=(max(1, round(H * scale)), max(1, round(W * scale))),
                               mode="bilinear", align_corners=False, antialias=True)
        with network_autocast(model):
            logits = model.quality_logits(xi.to(dtype)).float()      # the quality head alone
        probs.append(torch.softmax(logits, dim=-1).to(x.device))
    return torch.cat(probs)


@torch.no_grad()
def clip_signal(clip, which: str, x: torch.Tensor, module: torch.nn.Module) -> torch.Tensor:
    """ClipSignals.prior / .density / .quality on x, run where `module` (the CLIP model) lives;
    returns float32 on x's device. Density is resized to the image size."""
    device, dtype = model_place(module)
    out = getattr(clip, which)(x.to(device=device, dtype=dtype)).float().to(x.device)
    if which == "density":
        if out.ndim == 3:                                      # (B, h, w) -> (B, 1, h, w)
            out = out[:, None]
        if out.shape[-2:] != x.shape[-2:]:
            out = F.interpolate(out, size=x.shape[-2:], mode="bilinear", align_corners=False)
        out = out.clamp(0, 1)
    return out


def apply_overrides(p: torch.Tensor, overrides: Dict[str, Optional[float]]) -> Tuple[torch.Tensor, List[str]]:
    """Replace the columns of p (B, K) named in `overrides` by values in [0, 1]; a value below 0
    or None keeps the estimate. Returns (new p, names of the overridden types)."""
    p = p.clone()
    changed = []
    for name, value in overrides.items():
        if name not in WEATHER_TYPES:
            raise InputError(f"unknown weather type '{name}'; known: {', '.join(WEATHER_TYPES)}")
        if value is None or (math.isfinite(value) and value < 0):
            continue
        if not math.isfinite(value) or value > 1:
            raise InputError(f"manual {name} must be in [0, 1] (or -1 to keep the estimate); got {value}")
        p[:, WEATHER_TYPES.index(name)] = float(value)
        changed.append(name)
    return p, changed


def parse_weather(text: str) -> Dict[str, float]:
    """'haze=0,rain=0.8' -> {'haze': 0.0, 'rain_streaks': 0.8}: the command line's form of the manual
    values CLIP Weather Prior takes (full or short names, values in [0, 1]); InputError names the part."""
    short_to_full = {short: full for full, short in SHORT_NAMES.items()}
    out: Dict[str, float] = {}
    for part in filter(None, (s.strip() for s in text.split(","))):
        name, sep, value = part.partition("=")
        name = short_to_full.get(name.strip(), name.strip())
        if not sep or name not in WEATHER_TYPES:
            raise InputError(f"'{part}': write TYPE=VALUE with TYPE one of "
                             f"{', '.join(sorted(set(WEATHER_TYPES) | set(short_to_full)))}, e.g. haze=0")
        try:
            v = float(value)
        except ValueError:
            raise InputError(f"'{part}': the value must be a number in [0, 1], e.g. haze=0") from None
        if not (math.isfinite(v) and 0 <= v <= 1):
            raise InputError(f"'{part}': the value must be in [0, 1]")
        out[name] = v
    if not out:
        raise InputError(f"'{text}': give at least one TYPE=VALUE, e.g. haze=0")
    return out


def summarize_prior(p: torch.Tensor, source: str, threshold: float = 0.1) -> str:
    """'rain 0.82, haze 0.31 (learned)' per image, one line each ('#2: ...' when B > 1);
    types below `threshold` are left out ('clear' when all are)."""
    lines = []
    for i, row in enumerate(p.tolist()):
        parts = sorted(((v, SHORT_NAMES[n]) for n, v in zip(WEATHER_TYPES, row) if v >= threshold), reverse=True)
        text = ", ".join(f"{n} {v:.2f}" for v, n in parts) or f"clear (all below {threshold:.2f})"
        lines.append((f"#{i + 1}: " if p.shape[0] > 1 else "") + f"{text} ({source})")
    return "\n".join(lines)


def quality_report(probs: torch.Tensor) -> Tuple[List[float], List[str], List[str]]:
    """(B, 3) probabilities -> per item: score in [0, 1], most likely tier, 'low 0.10, medium 0.30, high 0.60'."""
    scores = quality_score(probs).clamp(0, 1).tolist()
    tiers = [QUALITY_TIERS[int(i)] for i in probs.argmax(dim=-1)]
    texts = [", ".join(f"{t} {v:.2f}" for t, v in zip(QUALITY_TIERS, row)) for row in probs.tolist()]
    return scores, tiers, texts


def quality_text(scores: List[float], tiers: List[str], texts: List[str], source: str) -> str:
    """What Quality Perceiver shows on the node: 'score 0.812 (high) - low 0.05, medium 0.28, high 0.67
    (learned)', one line per image ('#2: ...' when the batch has more than one)."""
    many = len(scores) > 1
    return "\n".join(f"{f'#{i + 1}: ' if many else ''}score {s:.3f} ({t}) - {p} ({source})"
                     for i, (s, t, p) in enumerate(zip(scores, tiers, texts)))


# inferno-like anchors: dark (clear) -> purple -> red -> orange -> pale yellow (dense)
_HEAT = torch.tensor([[0, 0, 4], [87, 16, 110], [188, 55, 84], [249, 142, 9], [252, 255, 164]],
                     dtype=torch.float32) / 255.0
HEATMAP_SCALES = ("normalised", "absolute")
HEAT_FLOOR = 0.05                               # "normalised" never stretches a map whose peak is below this


def heatmap(d: torch.Tensor, scale: str = "absolute") -> torch.Tensor:
    """density (B, 1, H, W) in [0, 1] -> RGB heat map (B, 3, H, W), piecewise linear through _HEAT.

    "absolute": yellow = density 1. "normalised": each image divided by its own 99th percentile (at
    least HEAT_FLOOR; the densest 1 % is yellow), so a map that never exceeds 0.27 still spans the
    colours, a few bright streaks do not darken the rest, and a clear image stays dark."""
    if scale not in HEATMAP_SCALES:
        raise InputError(f"heatmap_scale must be one of {', '.join(HEATMAP_SCALES)}; got '{scale}'")
    d = torch.nan_to_num(d.float(), nan=0.0, posinf=1.0, neginf=0.0).clamp(0, 1)   # NaN shows as clear, not a crash
    if scale == "normalised":
        step = max(1, int((d.shape[-2] * d.shape[-1] / 2 ** 20) ** 0.5))          # at most ~1 M samples per image
        sub = d[:, 0, ::step, ::step].reshape(d.shape[0], -1).float()
        peak = torch.quantile(sub, 0.99, dim=1).clamp(min=HEAT_FLOOR).view(-1, 1, 1, 1)
        d = (d / peak.to(d.dtype)).clamp(0, 1)
    n = _HEAT.shape[0] - 1
    t = d[:, 0] * n                                            # (B, H, W) in [0, n]
    i = t.floor().long().clamp(max=n - 1)
    f = (t - i)[..., None]                                     # (B, H, W, 1)
    lut = _HEAT.to(d.device)
    rgb = lut[i] * (1 - f) + lut[i + 1] * f                    # (B, H, W, 3)
    return rgb.permute(0, 3, 1, 2).contiguous()                # (B, H, W, 3) -> (B, 3, H, W)


def combine_sources(sources: Sequence[str]) -> str:
    """Unique sources in order, '+'-joined: ('learned', 'manual') -> 'learned+manual'."""
    return "+".join(dict.fromkeys(sources))
