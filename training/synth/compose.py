"""Recipes: which weather goes on a photo, the labels the restorer's heads learn from, and the
low-rate noise / JPEG that make the restorer robust to real photos."""
import dataclasses
import io

import numpy as np
import torch
from PIL import Image

from .haze import add_haze
from .rain import add_rain
from .raindrops import add_raindrops
from .snow import add_snow

# order of the prior vector = models.signals.WEATHER_TYPES
RAIN, DROPS, SNOW, HAZE = range(4)
RECIPES = ("clean", "rain_light", "rain_heavy", "raindrops", "snow", "haze", "rain_haze", "snow_haze")
DEFAULT_WEIGHTS = {"clean": 0.10, "rain_light": 0.26, "rain_heavy": 0.12, "raindrops": 0.08,
                   "snow": 0.10, "haze": 0.18, "rain_haze": 0.08, "snow_haze": 0.08}


@dataclasses.dataclass
class WeatherSample:
    weathered: torch.Tensor   # (3, H, W) float32 in [0, 1]
    clean: torch.Tensor       # (3, H, W) float32 in [0, 1]
    prior: torch.Tensor       # (4,) presence x severity per weather type, 0 = absent
    density: torch.Tensor     # (1, H, W) in [0, 1]
    severity: float
    recipe: str


def _degrade_camera(img: torch.Tensor, rng: np.random.Generator) -> torch.Tensor:
    """Mild sensor noise or JPEG, each at a low rate."""
    if rng.random() < 0.1:
        img = img + torch.from_numpy(rng.normal(0, rng.uniform(0.003, 0.015), img.shape).astype(np.float32))
    if rng.random() < 0.1:
        buf = io.BytesIO()
        arr = (img.clamp(0, 1).permute(1, 2, 0).numpy() * 255 + 0.5).astype(np.uint8)
        Image.fromarray(arr).save(buf, format="JPEG", quality=int(rng.integers(75, 96)))
        img = torch.from_numpy(np.asarray(Image.open(buf), dtype=np.float32) / 255).permute(2, 0, 1)
    return img.clamp(0, 1)


def draw_recipe(rng: np.random.Generator, recipes=None, weights=None) -> str:
    names = list(recipes or RECIPES)
    w = np.array([(weights or DEFAULT_WEIGHTS).get(n, 1.0) for n in names], dtype=np.float64)
    return names[rng.choice(len(names), p=w / w.sum())]


def synthesize(clean: torch.Tensor, rng: np.random.Generator, recipe: str = None) -> WeatherSample:
    """clean (3, H, W) in [0, 1] -> WeatherSample. `recipe` None draws one from DEFAULT_WEIGHTS."""
    if clean.ndim != 3 or clean.shape[0] != 3:
        raise ValueError(f"synthesize expects a (3, H, W) image; got {tuple(clean.shape)}")
    recipe = recipe or draw_recipe(rng)
    if recipe not in RECIPES:
        raise ValueError(f"unknown recipe '{recipe}'; choose one of {', '.join(RECIPES)}")
    clean = clean.float().clamp(0, 1)
    _, h, w = clean.shape
    prior = torch.zeros(4)
    density = torch.zeros(1, h, w)
    img = clean
    if recipe == "clean":
        return WeatherSample(clean.clone(), clean, prior, density, 0.0, recipe)
    # haze first (it lies behind the rain/snow), then the near layers on top
    if recipe in ("haze", "rain_haze", "snow_haze"):
        img, d, sev = add_haze(img, rng, strength=1.0 if recipe == "haze" else 0.6)
        prior[HAZE] = sev
        density = torch.maximum(density, d)
    if recipe in ("rain_light", "rain_heavy", "rain_haze"):
        img, d, sev = add_rain(img, rng, heavy=(recipe == "rain_heavy"))
        prior[RAIN] = sev
        density = torch.maximum(density, d)
    if recipe == "raindrops":
        img, d, sev = add_raindrops(img, rng)
        prior[DROPS] = sev
        density = torch.maximum(density, d)
    if recipe in ("snow", "snow_haze"):
        img, d, sev = add_snow(img, rng)
        prior[SNOW] = sev
        density = torch.maximum(density, d)
    img = _degrade_camera(img, rng)
    return WeatherSample(img, clean, prior.clamp(0, 1), density.clamp(0, 1), float(prior.max()), recipe)
