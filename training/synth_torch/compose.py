"""Batched recipes and labels on the training device, with training/synth/compose.py's semantics:
the same RECIPES, DEFAULT_WEIGHTS and recipe overrides, the same layer order (rain in the scene,
haze over it, snow in front) and labels:
- prior (B, 4), order models.signals.WEATHER_TYPES: each present type's severity, 0 when absent;
- density (B, 1, H, W): union 1 - prod(1 - D_k) of the layers' densities;
- severity (B,): 1 - prod(1 - p_k), 0 for a clean photo; recipe_index (B,) into RECIPES.
Same clean batch, same generator seed, same device -> the same output.
"""
import torch

from ..synth.compose import (DROPS, DROPS_RECIPES, HAZE, HAZE_RECIPES, HAZE_STRENGTH, MIXED_HAZE_STRENGTH, RAIN,
                             RAIN_HAZE_HEAVY, RAIN_RECIPES, RECIPES, SNOW, SNOW_RECIPES, recipe_probabilities)
from .camera import degrade_camera
from .drops import add_raindrops
from .haze import add_haze
from .ops import per_sample, uniform
from .rain import apply_rain, make_rain, rain_labels
from .snow import add_snow


def _ids(names, device) -> torch.Tensor:
    return torch.tensor([RECIPES.index(n) for n in names], device=device)


def _union(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    return 1 - (1 - a) * (1 - b)


def _check(clean, generator):
    if not isinstance(clean, torch.Tensor) or clean.ndim != 4 or clean.shape[1] != 3:
        got = tuple(clean.shape) if isinstance(clean, torch.Tensor) else type(clean).__name__
        raise ValueError(f"synthesize_batch expects clean crops (B, 3, H, W) in [0, 1]; got {got}")
    if min(clean.shape[-2:]) < 8:
        raise ValueError(f"synthesize_batch needs crops of at least 8 x 8 px; got {tuple(clean.shape[-2:])}")
    if isinstance(generator, int):
        return torch.Generator(device=clean.device).manual_seed(generator)
    if not isinstance(generator, torch.Generator):
        raise ValueError(f"synthesize_batch needs a torch.Generator or an int seed; got {type(generator).__name__}")
    if torch.device(generator.device).type != clean.device.type:
        raise ValueError(f"the generator is on {generator.device} but the crops are on {clean.device}; "
                         f"make it with torch.Generator(device=clean.device)")
    return generator


@torch.no_grad()
def synthesize_batch(clean: torch.Tensor, generator, recipes=None, recipe_weights=None, recipe=None) -> dict:
    """clean (B, 3, H, W) in [0, 1] on any device -> dict weathered, clean, prior, density, severity,
    recipe_index (the keys of SyntheticWeatherDataset items, batched). `generator`: a torch.Generator
    on the crops' device, or an int seed. Recipes are drawn from `recipes` with `recipe_weights` as
    compose.draw_recipe draws them; `recipe` (a name, or one per sample) overrides the draw."""
    g = _check(clean, generator)
    clean = clean.float().clamp(0, 1)
    b, _, h, w = clean.shape
    dev = clean.device
    names, p = recipe_probabilities(recipes, recipe_weights)
    probs = torch.tensor(p, dtype=torch.float32, device=dev).expand(b, len(names))
    index = _ids(names, dev)[torch.multinomial(probs, 1, generator=g)[:, 0]]
    if recipe is not None:
        forced = [recipe] * b if isinstance(recipe, str) else list(recipe)
        bad = [r for r in forced if r not in RECIPES]
        if bad or len(forced) != b:
            raise ValueError(f"recipe must be one of {', '.join(RECIPES)} or a list of {b} of them; got {recipe}")
        index = _ids(forced, dev)
    has = lambda group: torch.isin(index, _ids(group, dev)).nonzero()[:, 0]     # noqa: E731 - sample indices

    img = clean.clone()
    prior = torch.zeros(b, 4, device=dev)
    density = torch.zeros(b, 1, h, w, device=dev)
    rain_haze, haze_alone = RECIPES.index("rain_haze"), RECIPES.index("haze")
    i = has(RAIN_RECIPES)
    if len(i):
        r = index[i]
        heavy = (r == RECIPES.index("rain_heavy")) | ((r == rain_haze) & (uniform(g, len(i)) < RAIN_HAZE_HEAVY))
        layer = make_rain(g, len(i), h, w, heavy)
        density[i], prior[i, RAIN] = rain_labels(layer, img[i])
        img[i] = apply_rain(img[i], layer)
    i = has(HAZE_RECIPES)
    if len(i):
        r = index[i]
        strength = torch.where(r == haze_alone, HAZE_STRENGTH, MIXED_HAZE_STRENGTH)
        img[i], d, sev = add_haze(img[i], g, strength, depth_from=clean[i])
        behind = per_sample(r == rain_haze)                       # streaks behind the haze fade with it
        density[i] = torch.where(behind, density[i] * (1 - d), density[i])
        fade = torch.where(behind.view(-1), 0.5 + 0.5 * (1 - d).mean((1, 2, 3)), torch.ones_like(sev))
        prior[i, RAIN] = prior[i, RAIN] * fade
        density[i], prior[i, HAZE] = _union(density[i], d), sev
    i = has(DROPS_RECIPES)
    if len(i):
        img[i], density[i], prior[i, DROPS] = add_raindrops(img[i], g)
    i = has(SNOW_RECIPES)
    if len(i):
        img[i], d, prior[i, SNOW] = add_snow(img[i], g)
        density[i] = _union(density[i], d)
    weather = index != RECIPES.index("clean")
    img = torch.where(per_sample(weather), degrade_camera(img, g, weather), clean)
    prior = prior.clamp(0, 1)
    return {"weathered": img.contiguous(), "clean": clean, "prior": prior, "density": density.clamp(0, 1),
            "severity": 1 - torch.prod(1 - prior, dim=1), "recipe_index": index.long()}
