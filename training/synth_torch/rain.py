"""Rain streaks, batched: sparse random seeds per depth sublayer, FFT-convolved with tapered
streak kernels (blur folded in), summed, added to (or screened over) the photo, plus a spray veil.

Light rain (fitted to Rain100L) draws as training/synth/rain.py does, plus a near layer of a few
wide, bright streaks in half of the samples, and dense, bright streaks in 30 % of them; Rain100H-like
heavy rain draws as rain.py does. Light rain and downpours fall near vertically in half of the
samples (rain.py's angles) and slanted by wind, anywhere within +-45 degrees, in the other half.
In 30 % of the rain samples every kind is drawn 1.5-3x larger, as a larger photo shows it.
The downpour (the other heavy kind) is closer to the real rainy photos than rain.py's: four depth
sublayers along one direction, widths, lengths, brightness and defocus growing with nearness,
splashes or bokeh discs, gusts (a patchy seed rate) and a patchy spray veil; its mean brightness and
coverage stay those of rain.py's downpour (tests/test_synth_torch.py compares the recipes). Every
sample carries SUBLAYERS sublayers (unused ones have no seeds), so a whole batch is one FFT. Labels
use rain.py's DENSITY_SCALE / SEVERITY_SCALE.
"""
import dataclasses
import math

import torch

from ..synth.rain import DENSITY_SCALE, SEVERITY_SCALE
from .ops import convolve_wrap, normal, per_sample, smooth_field, streak_kernels, uniform

SUBLAYERS = 5


@dataclasses.dataclass
class RainLayers:
    streaks: torch.Tensor    # (N, 1, H, W) added brightness, >= 0
    veil: torch.Tensor       # (N, 1, H, W) spray veil opacity, 0 = none (patchy in a downpour)
    veil_light: torch.Tensor # (N,)
    screen: torch.Tensor     # (N,) bool: screen blend instead of plain addition
    tint: torch.Tensor       # (N, 3, 1, 1) streak colour, near grey


def _pad(x: torch.Tensor, value=0.0) -> torch.Tensor:
    """(N, k) -> (N, SUBLAYERS), unused sublayers filled with `value`."""
    return torch.cat([x, x.new_full((x.shape[0], SUBLAYERS - x.shape[1]), value)], 1)


NEAR_LIGHT_SHARE = 0.5        # light-rain samples that also get a near layer
NEAR_COVERAGE_TAKEN = 0.25    # the far layers give up this share of their coverage when it is there
DENSE_LIGHT_SHARE = 0.3       # light-rain samples drawn dense and bright: more, brighter, longer streaks
DENSE_WIDEN = 1.0             # ... their far streaks (under 1 px) this much wider: 1.3 up to weather-m-v4.14, but
                              # Rain100L's brightest rain is as thin as its faint rain (docs/EXPERIMENTS.md)
FAINT_LIGHT_SHARE = 0.0       # faint, sparse light rain (0.6x brightness, seeds); 0 draws nothing (a probe: EXPERIMENTS.md)
WIND_SHARE = 0.5              # light rain and downpours slanted by wind: fall angle uniform in +-WIND_LIMIT
WIND_LIMIT = 45.0
LARGE_SHARE = 0.3             # rain samples drawn as a larger photo shows them (0 draws nothing)
LARGE_RANGE = (1.5, 3.0)      # ... streaks this many times longer, wider and more blurred, k^2 times fewer
LARGE_CROP = 64               # ... and at most (crop side / this) times: 3x needs crops of 192 px


def _fall_angle(g, n, std, limit):
    """(N, 1) dominant fall angle in degrees from vertical: near vertical, normal(0, std) within
    +-limit, or in WIND_SHARE of the samples anywhere in +-WIND_LIMIT. Trained on near-vertical rain
    only, weather-m-v4.7 kept 7.9 dB of light rain at 0 degrees and 2.4 dB at 28, none at 36
    (docs/EXPERIMENTS.md, "Slanted rain")."""
    calm = normal(g, n, 0, std).clamp(-limit, limit)
    windy = uniform(g, n, -WIND_LIMIT, WIND_LIMIT)
    return torch.where(uniform(g, n) < WIND_SHARE, windy, calm).view(n, 1)


def _light(g, n):
    """Rain100L-like: 3 sublayers of one dominant angle, ~2 px wide, 7-50 px long; in half of the
    samples a 4th, near layer (depth, as in a downpour): a few streaks 2.5-4 px wide, 30-100 px long,
    brighter and slightly defocused, as the nearest drops show in real rain (and in some Rain100L
    images). The far layers then give up 25 % of their coverage, so the mean brightness stays within
    the numpy synthesizer's (tests/test_synth_torch.py compares the recipes)."""
    dev = g.device
    angle = _fall_angle(g, n, 9, 28)
    base = uniform(g, (n, 1), 12, 30)
    lengths = base * torch.tensor([0.55, 1.0, 1.6], device=dev) * uniform(g, (n, 3), 0.85, 1.15)
    widths = uniform(g, (n, 1), 0.55, 0.85) * torch.tensor([0.9, 1.0, 1.15], device=dev)
    coverage = uniform(g, (n, 1), 0.09, 0.24)                      # Rain100L: 0.11-0.16 over 0.05
    near = uniform(g, (n, 1)) < NEAR_LIGHT_SHARE
    coverage = torch.where(near, coverage * (1 - NEAR_COVERAGE_TAKEN), coverage)
    seeds = coverage / (2.4 * lengths.mean(1, keepdim=True))
    share = (1 / lengths) / (1 / lengths).sum(1, keepdim=True)
    near_len, near_width = base * uniform(g, (n, 1), 2.2, 3.5), uniform(g, (n, 1), 1.0, 1.7)
    near_seeds = torch.where(near, uniform(g, (n, 1), 0.008, 0.02) / (2.4 * near_width * near_len), 0.0)
    cat = lambda far, nr: torch.cat([far, nr], 1)                  # noqa: E731 - far layers | near layer
    p = dict(length=cat(lengths, near_len), angle=cat(angle + normal(g, (n, 3), 0, 2.5), angle + normal(g, (n, 1), 0, 1.5)),
             width=cat(widths, near_width), taper=uniform(g, (n, 4), 0.4, 0.9), seeds=cat(seeds * share, near_seeds),
             amp=cat(uniform(g, (n, 1), 0.25, 0.45).expand(n, 3), uniform(g, (n, 1), 0.45, 0.8)),
             spread=torch.tensor([[0.75, 0.75, 0.75, 0.5]], device=dev).expand(n, 4),
             blur=cat(torch.zeros(n, 3, device=dev), uniform(g, (n, 1), 0.0, 0.6)))
    # dense and bright in DENSE_LIGHT_SHARE of the samples (Rain100L's downpour-like images; the probes in
    # docs/EXPERIMENTS.md): streaks 1.4x longer, far ones DENSE_WIDEN x wider, all 1.5x brighter (at most 0.9),
    # seeds x1.8/1.3 (coverage x1.8 when the streaks were 1.3x wide; kept as v4.15 learned it)
    dense = uniform(g, (n, 1)) < DENSE_LIGHT_SHARE
    p["seeds"] = torch.where(dense, p["seeds"] * (1.8 / 1.3), p["seeds"])
    p["amp"] = torch.where(dense, (p["amp"] * 1.5).clamp(max=0.9), p["amp"])
    p["width"] = torch.where(dense & (p["width"] < 1.0), p["width"] * DENSE_WIDEN, p["width"])
    p["length"] = torch.where(dense, p["length"] * 1.4, p["length"])
    if FAINT_LIGHT_SHARE > 0:   # Rain100L's faintest images (docs/EXPERIMENTS.md); no draw at 0 keeps the stream
        faint = (uniform(g, (n, 1)) < FAINT_LIGHT_SHARE) & ~dense
        p["amp"] = torch.where(faint, p["amp"] * 0.6, p["amp"])
        p["seeds"] = torch.where(faint, p["seeds"] * 0.6, p["seeds"])
    return {k: _pad(v, 1.0 if k in ("length", "width") else 0.0) for k, v in p.items()}


def _rain100h(g, n):
    """Rain100H-like: 2-4 directions, wide, bright, dense, slightly blurred."""
    k = torch.randint(2, 5, (n, 1), generator=g, device=g.device)
    on = torch.arange(SUBLAYERS, device=g.device).view(1, -1) < k     # (N, 4) active sublayers
    angle = normal(g, (n, 1), 0, 12)
    angles = (angle + uniform(g, (n, SUBLAYERS), -1, 1) * uniform(g, (n, 1), 8, 30)).clamp(-45, 45)
    lengths = uniform(g, (n, SUBLAYERS), 20, 60)
    widths = uniform(g, (n, SUBLAYERS), 0.9, 2.2)
    mean = lambda v: (v * on).sum(1, keepdim=True) / k               # noqa: E731 - over active sublayers
    coverage = uniform(g, (n, 1), 0.25, 0.55)
    seeds = coverage / (2.5 * mean(widths) * mean(lengths))
    share = (on / lengths) / (on / lengths).sum(1, keepdim=True)
    return dict(length=lengths, angle=angles, width=widths, taper=uniform(g, (n, SUBLAYERS), 0.3, 0.8),
                seeds=seeds * share, amp=uniform(g, (n, 1), 0.35, 0.75).expand(n, SUBLAYERS),
                spread=torch.full((n, SUBLAYERS), 0.6, device=g.device),
                blur=uniform(g, (n, 1), 0.3, 1.0).expand(n, SUBLAYERS))


def _downpour(g, n):
    """A real downpour, as the photos of train/real_rain show it: four depth sublayers along one
    direction (far: dense, thin, short, faint, softened by the air; near: few, wide, long, defocused),
    plus splashes (small bright specks) or bokeh (large faint out-of-focus discs)."""
    dev = g.device
    depth = torch.tensor([0.15, 0.3, 0.55, 1.0], device=dev)                 # 1 = nearest
    angle = _fall_angle(g, n, 12, 35)
    lengths = uniform(g, (n, 1), 18, 50) * (0.5 + 0.9 * depth) * uniform(g, (n, 4), 0.85, 1.15)
    widths = 0.45 + depth ** 1.5 * uniform(g, (n, 1), 1.2, 2.8)
    blur = torch.cat([uniform(g, (n, 1), 0.1, 0.4), uniform(g, (n, 1), 0.1, 0.3), uniform(g, (n, 1), 0.0, 0.3),
                      uniform(g, (n, 1), 0.6, 2.0)], 1)
    amp = torch.cat([uniform(g, (n, 2), 0.1, 0.25), uniform(g, (n, 1), 0.15, 0.3), uniform(g, (n, 1), 0.1, 0.25)], 1)
    coverage = uniform(g, (n, 1), 0.35, 0.8) * torch.tensor([0.4, 0.3, 0.2, 0.1], device=dev)
    seeds = coverage / (2.4 * torch.sqrt(widths ** 2 + blur ** 2) * lengths)
    splash = uniform(g, (n, 1)) < 0.5                                         # else bokeh
    extra = dict(length=torch.where(splash, uniform(g, (n, 1), 2, 4), torch.zeros(n, 1, device=dev)),
                 angle=uniform(g, (n, 1), -60, 60),
                 width=torch.where(splash, uniform(g, (n, 1), 0.6, 0.9), uniform(g, (n, 1), 3, 7)),
                 taper=torch.ones(n, 1, device=dev), blur=torch.zeros(n, 1, device=dev),
                 amp=torch.where(splash, uniform(g, (n, 1), 0.25, 0.5), uniform(g, (n, 1), 0.04, 0.12)))
    extra["seeds"] = torch.where(splash, uniform(g, (n, 1), 0.005, 0.02) / (2.4 * extra["width"] * (extra["length"] + 1)),
                                 uniform(g, (n, 1), 0.02, 0.08) / (4 * math.pi * extra["width"] ** 2))
    cat = lambda a, k: torch.cat([a, extra[k]], 1)                         # noqa: E731 - streaks | extra
    return dict(length=cat(lengths, "length"), angle=cat(angle + normal(g, (n, 4), 0, 2), "angle"),
                width=cat(widths, "width"), taper=cat(uniform(g, (n, 4), 0.5, 0.9), "taper"),
                seeds=cat(seeds, "seeds"), amp=cat(amp, "amp"),
                spread=torch.tensor([[0.9, 0.9, 0.7, 0.5, 0.5]], device=dev).expand(n, SUBLAYERS),
                blur=cat(blur, "blur"))


def _seen_larger(g, p: dict, n: int, h: int, w: int) -> dict:
    """In LARGE_SHARE of the samples, the rain as a larger photo of the same scene shows it: streaks k times
    longer, wider and more blurred (k log-uniform in LARGE_RANGE, at most min(h, w) / LARGE_CROP so a crop holds
    enough streaks) from k^2 times fewer seeds, so coverage and mean brightness stay. The network learned 1-5 px
    streaks and left most of the rain of photos enlarged 2-3x (docs/EXPERIMENTS.md); the other samples are
    unchanged. No draw at 0 keeps the random stream."""
    if LARGE_SHARE <= 0:
        return p
    lo, hi = LARGE_RANGE
    k = lo * (hi / lo) ** uniform(g, (n, 1))                      # as many 1.5-2.1x as 2.1-3x
    k = torch.where(uniform(g, (n, 1)) < LARGE_SHARE, k, torch.ones_like(k)).clamp(max=max(1.0, min(h, w) / LARGE_CROP))
    return dict(p, length=p["length"] * k, width=p["width"] * k, blur=p["blur"] * k, seeds=p["seeds"] / k ** 2)


def make_rain(g: torch.Generator, n: int, h: int, w: int, heavy: torch.Tensor, downpour=None) -> RainLayers:
    """Rain layers for N images of (H, W); heavy (N,) bool: Rain100H-like (55 %) or a downpour;
    `downpour` (N,) bool, if given, decides that instead (contact sheets). Every kind's parameters
    are drawn for every sample (cheap), each keeps its own kind's: the draws do not depend on the mix."""
    dev = g.device
    light, r100h, pour = _light(g, n), _rain100h(g, n), _downpour(g, n)
    is_pour = heavy & (uniform(g, n) >= 0.55)
    if downpour is not None:
        is_pour = heavy & downpour
    is_100h = heavy & ~is_pour
    pick = lambda k: torch.where(is_pour.view(-1, 1), pour[k], torch.where(is_100h.view(-1, 1), r100h[k], light[k]))  # noqa: E731
    p = _seen_larger(g, {k: pick(k) for k in light}, n, h, w)
    m = n * SUBLAYERS
    amp = p["amp"].view(n, SUBLAYERS, 1, 1) * (1 - p["spread"].view(n, SUBLAYERS, 1, 1)
                                               * uniform(g, (n, SUBLAYERS, h, w)) ** 0.6)
    # a downpour falls in gusts: its seed rate follows a smooth field (mean about 1), other rain is even
    gust = torch.where(per_sample(is_pour), 0.4 + 1.2 * smooth_field(g, n, h, w, cells=4), torch.ones((), device=dev))
    seeds = (uniform(g, (n, SUBLAYERS, h, w)) < p["seeds"].view(n, SUBLAYERS, 1, 1) * gust) * amp
    kernels = streak_kernels(h, w, *(p[k].reshape(m) for k in ("length", "angle", "width", "taper", "blur")))
    streaks = convolve_wrap(seeds, kernels.view(n, SUBLAYERS, h, w)).sum(1, keepdim=True).clamp_min(0)
    # brightness varies along and between streaks (drops catch the light unevenly)
    streaks = streaks * (0.55 + 0.9 * smooth_field(g, n, h, w, cells=max(2, max(h, w) // 8)))
    veil = torch.where(is_pour, uniform(g, n, 0.05, 0.22),
                       torch.where(is_100h & (uniform(g, n) < 0.5), uniform(g, n, 0.03, 0.15), torch.zeros(n, device=dev)))
    spray = 0.55 + 0.9 * smooth_field(g, n, h, w, cells=3)                # patches of spray and mist
    veil = (per_sample(veil) * torch.where(per_sample(is_pour), spray, torch.ones((), device=dev))).clamp(0, 0.45)
    screen = uniform(g, n) < torch.where(is_pour, 0.5, torch.where(is_100h, 0.4, 0.3))
    tint = 1 - uniform(g, (n, 3, 1, 1), 0, 0.06)
    return RainLayers(streaks, veil, uniform(g, n, 0.7, 0.95), screen, tint)


def _streaks_on(img: torch.Tensor, layer: RainLayers) -> torch.Tensor:
    s = layer.streaks * layer.tint
    screened = 1 - (1 - img) * (1 - s.clamp(0, 1))
    return torch.where(per_sample(layer.screen), screened, img + s).clamp(0, 1)


def apply_rain(img: torch.Tensor, layer: RainLayers) -> torch.Tensor:
    """img (N, 3, H, W) in [0, 1] -> rainy images; only ever brighten where the veil is absent."""
    v = layer.veil
    return (_streaks_on(img, layer) * (1 - v) + v * per_sample(layer.veil_light)).clamp(0, 1)


def rain_labels(layer: RainLayers, img: torch.Tensor):
    """-> (density (N, 1, H, W) in [0, 1], severity (N,) in [0.1, 1]) of the rain as it shows on
    `img` (a streak over a white wall adds nothing and is not labelled)."""
    visible = (_streaks_on(img, layer) - img).mean(1, keepdim=True).clamp_min(0)
    d = 1 - (1 - (1 - torch.exp(-visible / DENSITY_SCALE))) * (1 - layer.veil)
    sev = torch.sqrt(visible.mean((1, 2, 3)) / SEVERITY_SCALE) + layer.veil.mean((1, 2, 3))
    return d.clamp(0, 1), sev.clamp(0.1, 1.0)
