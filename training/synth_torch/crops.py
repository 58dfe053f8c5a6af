"""The data path of the torch synthesizer: the DataLoader yields clean crops only (CleanCrops, the
numpy dataset's crops of the same items), and TorchWeather puts a step's weather on them on the
training device, as a pure function of (seed, step, rank) -- so a resumed run draws the same weather."""
import numpy as np
import torch

from ..data import generator_for
from ..synth.compose import draw_recipe
from ..synth.dataset import SyntheticWeatherDataset
from .compose import synthesize_batch


class CleanCrops(SyntheticWeatherDataset):
    """Item i -> {"clean": (3, crop, crop)}: the crop SyntheticWeatherDataset's item i is made from
    (same photo, scale, position and flip; the recipe draw still happens so the crop does not move)."""

    def __getitem__(self, i):
        if not -self.length <= int(i) < self.length:
            raise IndexError(f"item {i} out of range for a dataset of {self.length}")
        i = int(i) % self.length
        rng = np.random.default_rng([self.seed, self.epoch, i])
        draw_recipe(rng, self.recipes, self.recipe_weights)
        return {"clean": self.clean_crop(i, rng)}


class TorchWeather:
    """weather(clean (B, 3, H, W) on the device, step, rank) -> the training batch dict
    (weathered, clean, prior, density, severity, recipe_index), seeded by (seed, step, rank)."""

    def __init__(self, seed: int = 0, recipes=None, recipe_weights=None):
        self.seed, self.recipes, self.recipe_weights = int(seed), recipes, recipe_weights
        synthesize_batch(torch.zeros(1, 3, 8, 8), 0, recipes, recipe_weights)     # fail early on bad names

    def __call__(self, clean: torch.Tensor, step: int, rank: int = 0) -> dict:
        g = generator_for(self.seed, step, rank, 4, device=clean.device)
        return synthesize_batch(clean, g, self.recipes, self.recipe_weights)
