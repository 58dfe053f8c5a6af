"""Weather synthesizer: clean photo -> (weathered, clean, labels p / D / severity). Seeded, reproducible.

One file per weather (rain, raindrops, snow, haze + depth), recipes and labels in compose.py,
the training crops in dataset.py. `python weather.py synth-sheet` shows what it makes.
"""
from .compose import DEFAULT_WEIGHTS, RECIPES, WeatherSample, draw_recipe, synthesize
from .dataset import SyntheticWeatherDataset, find_images, load_photo

__all__ = ["RECIPES", "DEFAULT_WEIGHTS", "WeatherSample", "synthesize", "draw_recipe",
           "SyntheticWeatherDataset", "find_images", "load_photo"]
