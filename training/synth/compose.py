"""Recipes: which weather goes on a photo, the labels the restorer's heads learn from, and the
low-rate noise / JPEG that make the restorer robust to real photos.

Layer order follows the physics of the mixtures: rain streaks are in the scene, so haze covers
them too (I = t (J + R) + A (1 - t), the Outdoor-Rain model); snow flakes fall close to the camera,
in front of the haze. Labels:
- prior p (4,), order models.signals.WEATHER_TYPES: each present type's severity, 0 when absent;
- density D (1, H, W): union of the layers' densities, 1 - prod(1 - D_k) (haze: 1 - t; snow and
  drops: the layer's coverage; rain: the brightness it visibly adds, plus its veil);
- severity: 1 - prod(1 - p_k), 0 for a clean photo.
"""
import dataclasses
import io

import numpy as np
import torch
from PIL import Image

from .haze import add_haze
from .rain import apply_rain, make_rain, rain_labels
from .raindrops import add_raindrops
from .snow import add_snow

RAIN, DROPS, SNOW, HAZE = range(4)   # columns of the prior = models.signals.WEATHER_TYPES
RECIPES = ("clean", "rain_light", "rain_heavy", "raindrops", "snow", "haze", "rain_haze", "snow_haze")
# rain_light (the Rain100L look) and haze (the RESIDE look) a little favoured, clean about 10 %
DEFAULT_WEIGHTS = {"clean": 0.10, "rain_light": 0.24, "rain_heavy": 0.11, "raindrops": 0.08,
                   "snow": 0.10, "haze": 0.18, "rain_haze": 0.10, "snow_haze": 0.09}
NOISE_RATE, JPEG_RATE = 0.1, 0.1
NOISE_SIGMA, JPEG_QUALITY = (0.003, 0.02), (60, 96)   # sensor noise sigma range, JPEG quality range [lo, hi)
# which layers each recipe draws (shared with the torch synthesizer, training/synth_torch/)
RAIN_RECIPES, HAZE_RECIPES = ("rain_light", "rain_heavy", "rain_haze"), ("haze", "rain_haze", "snow_haze")
DROPS_RECIPES, SNOW_RECIPES = ("raindrops",), ("snow", "snow_haze")
RAIN_HAZE_HEAVY = 0.35       # share of rain_haze samples whose rain is heavy
HAZE_STRENGTH, MIXED_HAZE_STRENGTH = 1.0, 0.7   # haze alone / haze as a second weather


@dataclasses.dataclass
class WeatherSample:
    weathered: torch.Tensor   # (3, H, W) float32 in [0, 1]
    clean: torch.Tensor       # (3, H, W) float32 in [0, 1]
    prior: torch.Tensor       # (4,) float32 in [0, 1], presence x severity per weather type, 0 = absent
    density: torch.Tensor     # (1, H, W) float32 in [0, 1]
    severity: float           # overall, in [0, 1]
    recipe: str


def degrade_camera(img: torch.Tensor, rng: np.random.Generator) -> torch.Tensor:
    """Mild sensor noise and/or JPEG compression, each at a low rate (NOISE_RATE, JPEG_RATE)."""
    if rng.random() < NOISE_RATE:
        sigma = rng.uniform(*NOISE_SIGMA)
        img = img + torch.from_numpy(rng.normal(0, sigma, img.shape).astype(np.float32))
    if rng.random() < JPEG_RATE:
        buf = io.BytesIO()
        arr = (img.clamp(0, 1).permute(1, 2, 0).numpy() * 255 + 0.5).astype(np.uint8)    # (H, W, 3)
        Image.fromarray(arr).save(buf, format="JPEG", quality=int(rng.integers(*JPEG_QUALITY)))
        img = torch.from_numpy(np.asarray(Image.open(buf), dtype=np.float32) / 255).permute(2, 0, 1)
    return img.clamp(0, 1).contiguous()


def recipe_probabilities(recipes=None, weights=None):
    """-> (names, probabilities (float64 array)) of drawing each of `recipes` (default all) with
    `weights` (name -> weight; names it leaves out keep their DEFAULT_WEIGHTS value). Shared with
    the torch synthesizer (training/synth_torch/)."""
    names = list(recipes or RECIPES)
    unknown = [n for n in names if n not in RECIPES]
    if unknown:
        raise ValueError(f"unknown recipe(s) {unknown}; choose from {', '.join(RECIPES)}")
    table = {**DEFAULT_WEIGHTS, **(weights or {})}
    w = np.array([float(table[n]) for n in names], dtype=np.float64)
    if w.sum() <= 0 or (w < 0).any():
        raise ValueError(f"recipe weights must be >= 0 with a positive sum; got {dict(zip(names, w))}")
    return names, w / w.sum()


def draw_recipe(rng: np.random.Generator, recipes=None, weights=None) -> str:
    """A recipe from `recipes` (default all), drawn with `weights` (see recipe_probabilities)."""
    names, p = recipe_probabilities(recipes, weights)
    return names[rng.choice(len(names), p=p)]


def _union(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    return 1 - (1 - a) * (1 - b)


def synthesize(clean: torch.Tensor, rng: np.random.Generator, recipe: str = None) -> WeatherSample:
    """clean (3, H, W) in [0, 1] -> WeatherSample. `recipe` None draws one from DEFAULT_WEIGHTS;
    "clean" returns the photo unchanged with zero labels. Same rng state and photo, same sample."""
    if not isinstance(clean, torch.Tensor) or clean.ndim != 3 or clean.shape[0] != 3:
        raise ValueError(f"synthesize expects a (3, H, W) tensor in [0, 1]; got "
                         f"{tuple(clean.shape) if isinstance(clean, torch.Tensor) else type(clean).__name__}")
    recipe = recipe or draw_recipe(rng)
    if recipe not in RECIPES:
        raise ValueError(f"unknown recipe '{recipe}'; choose one of {', '.join(RECIPES)}")
    clean = clean.float().clamp(0, 1).contiguous()
    _, h, w = clean.shape
    prior = torch.zeros(4)
    density = torch.zeros(1, h, w)
    if recipe == "clean":
        return WeatherSample(clean.clone(), clean, prior, density, 0.0, recipe)

    img = clean
    if recipe in RAIN_RECIPES:
        heavy = recipe == "rain_heavy" or (recipe == "rain_haze" and rng.random() < RAIN_HAZE_HEAVY)
        layer = make_rain(rng, h, w, heavy)
        density, prior[RAIN] = rain_labels(layer, img)
        img = apply_rain(img, layer)
    if recipe in HAZE_RECIPES:
        strength = HAZE_STRENGTH if recipe == "haze" else MIXED_HAZE_STRENGTH
        img, d, sev = add_haze(img, rng, strength=strength, depth_from=clean)
        if recipe == "rain_haze":                                  # streaks behind the haze fade with it
            density = density * (1 - d)
            prior[RAIN] = prior[RAIN] * float(0.5 + 0.5 * (1 - d).mean())
        density, prior[HAZE] = _union(density, d), sev
    if recipe in DROPS_RECIPES:
        img, density, prior[DROPS] = add_raindrops(img, rng)
    if recipe in SNOW_RECIPES:
        img, d, prior[SNOW] = add_snow(img, rng)
        density = _union(density, d)
    img = degrade_camera(img, rng)
    prior = prior.clamp(0, 1)
    severity = float(1 - torch.prod(1 - prior))
    return WeatherSample(img, clean, prior, density.clamp(0, 1).float(), severity, recipe)
