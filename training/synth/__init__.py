"""Weather synthesizer: clean photo -> (weathered, clean, labels p / D / severity). Seeded, reproducible."""
from .compose import DEFAULT_WEIGHTS, RECIPES, WeatherSample, synthesize
from .dataset import SyntheticWeatherDataset, find_images

__all__ = ["RECIPES", "DEFAULT_WEIGHTS", "WeatherSample", "synthesize", "SyntheticWeatherDataset", "find_images"]
