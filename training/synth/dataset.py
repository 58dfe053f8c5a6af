"""Clean photos -> an endless, reproducible stream of weathered training crops."""
import functools
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torch.utils.data import Dataset

from .compose import RECIPES, draw_recipe, synthesize

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".webp"}
CACHE_SIDE = 768          # photos are decoded once, downscaled so the longest side is at most this


def find_images(roots):
    files = sorted(p for r in roots for p in Path(r).rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES)
    if not files:
        raise FileNotFoundError(f"no images (jpg/png/bmp/webp) under {', '.join(map(str, roots))}")
    return files


@functools.lru_cache(maxsize=160)
def _load(path: str) -> torch.Tensor:
    img = Image.open(path).convert("RGB")
    img.thumbnail((CACHE_SIDE, CACHE_SIDE), Image.BICUBIC)
    return torch.from_numpy(np.asarray(img).copy()).permute(2, 0, 1)     # (3, H, W) uint8


class SyntheticWeatherDataset(Dataset):
    """Item i is a function of (seed, epoch, i) only, so runs and resumes are reproducible."""

    def __init__(self, roots, crop=128, seed=0, recipes=None, recipe_weights=None, length=None, epoch=0):
        self.files = find_images([roots] if isinstance(roots, (str, Path)) else roots)
        self.crop, self.seed, self.epoch = crop, seed, epoch
        self.recipes = tuple(recipes or RECIPES)
        self.recipe_weights = recipe_weights
        self.length = length or 100_000

    def set_epoch(self, epoch: int):
        self.epoch = epoch

    def __len__(self):
        return self.length

    def _crop(self, img: torch.Tensor, rng: np.random.Generator) -> torch.Tensor:
        _, h, w = img.shape
        # scale: the network sees photos from 40 % to 100 % of the cached size (Rain100L-like scale)
        side = int(min(h, w, max(self.crop, self.crop / rng.uniform(0.4, 1.0))))
        y, x = int(rng.integers(0, h - side + 1)), int(rng.integers(0, w - side + 1))
        patch = img[:, y:y + side, x:x + side].float()[None] / 255
        if side != self.crop:
            patch = torch.nn.functional.interpolate(patch, size=(self.crop, self.crop), mode="bilinear",
                                                    antialias=True, align_corners=False)
        patch = patch[0]
        if rng.random() < 0.5:
            patch = patch.flip(-1)
        return patch.clamp(0, 1)

    def __getitem__(self, i):
        rng = np.random.default_rng([self.seed, self.epoch, int(i)])
        img = _load(str(self.files[int(rng.integers(len(self.files)))]))
        if min(img.shape[-2:]) < self.crop:
            img = torch.nn.functional.interpolate(img[None].float(), scale_factor=self.crop / min(img.shape[-2:]) + 1e-3,
                                                  mode="bilinear")[0].round().clamp(0, 255).to(torch.uint8)
        sample = synthesize(self._crop(img, rng), rng, draw_recipe(rng, self.recipes, self.recipe_weights))
        return {"weathered": sample.weathered, "clean": sample.clean, "prior": sample.prior,
                "density": sample.density, "severity": torch.tensor(sample.severity),
                "recipe_index": torch.tensor(RECIPES.index(sample.recipe))}
