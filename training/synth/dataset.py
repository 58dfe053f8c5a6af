"""Clean photos -> a reproducible stream of weathered training crops.

Item i is a pure function of (seed, epoch, i): the photo (from a per-epoch permutation, so every
photo is used equally often), the scale, the crop, the flip and the weather. Photos are decoded
lazily (JPEG draft mode, so a 2048 px photo decodes at reduced size) and kept, downscaled, in an
LRU cache of CACHE_BYTES per training run. Every crop sees the photo at a random scale whose long side is 360-900 px, the
scale of Rain100L (480 px) and of typical phone photos viewed whole.
"""
import collections
import logging
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from torch.utils.data import Dataset

from .compose import RECIPES, WeatherSample, draw_recipe, synthesize

log = logging.getLogger(__name__)

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".webp"}
CACHE_SIDE = 1024            # cached photos are downscaled so that the longest side is at most this
# decoded photos kept per training run, shared out among the DataLoader's processes: the 665 photos of
# ../shared/data/train/clean take 0.7 GB, and decoding one costs 6-8 ms, ~60 ms of a batch of 8 crops
CACHE_BYTES = 1 << 30
SCALE_RANGE = (360, 900)     # long side of the whole photo as the crop sees it, log-uniform
DEFAULT_LENGTH = 100_000


def find_images(roots) -> list:
    """All jpg/png/bmp/webp files under `roots` (folders, searched recursively), sorted."""
    roots = [roots] if isinstance(roots, (str, Path)) else list(roots)
    missing = [str(r) for r in roots if not Path(r).is_dir()]
    if missing:
        raise FileNotFoundError(f"photo folder(s) not found: {', '.join(missing)}")
    files = sorted(p for r in roots for p in Path(r).rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES)
    if not files:
        raise FileNotFoundError(f"no images (jpg/png/bmp/webp) under {', '.join(map(str, roots))}")
    return files


def decode_photo(path: str) -> torch.Tensor:
    """(3, H, W) uint8 of a photo, longest side at most CACHE_SIDE."""
    with Image.open(path) as im:
        im.draft("RGB", (CACHE_SIDE, CACHE_SIDE))                 # JPEG: decode at 1/2, 1/4 ... size
        img = im.convert("RGB")
    if max(img.size) > CACHE_SIDE:
        img.thumbnail((CACHE_SIDE, CACHE_SIDE), Image.Resampling.BICUBIC)
    return torch.from_numpy(np.asarray(img).copy()).permute(2, 0, 1)    # (H, W, 3) -> (3, H, W)


class PhotoCache:
    """Decoded photos by path; the least recently used go once they hold more than `budget` bytes."""

    def __init__(self, budget: int):
        self.budget, self.held, self._photos = int(budget), 0, collections.OrderedDict()

    def get(self, path: str, decode=decode_photo) -> torch.Tensor:
        if path in self._photos:
            self._photos.move_to_end(path)
            return self._photos[path]
        img = decode(path)
        self._photos[path] = img
        self.held += img.numel() * img.element_size()
        self.trim()
        return img

    def trim(self) -> None:
        while self.held > self.budget and len(self._photos) > 1:
            _, old = self._photos.popitem(last=False)
            self.held -= old.numel() * old.element_size()


_CACHE = PhotoCache(CACHE_BYTES)


def set_photo_cache_budget(nbytes: int) -> None:
    """This process's share of CACHE_BYTES (the trainer sets it before its DataLoader forks workers)."""
    _CACHE.budget = int(nbytes)
    _CACHE.trim()


def load_photo(path: str) -> torch.Tensor:
    """Decode a photo once: (3, H, W) uint8, longest side at most CACHE_SIDE (cached; do not modify)."""
    return _CACHE.get(path)


class SyntheticWeatherDataset(Dataset):
    """Weathered crops of clean photos; item i is deterministic given (seed, epoch, i).

    __getitem__ returns a dict: weathered, clean (3, crop, crop), prior (4,), density (1, crop, crop),
    severity (float tensor), recipe_index (long tensor, index into RECIPES)."""

    def __init__(self, roots, crop=128, seed=0, recipes=None, recipe_weights=None, length=None, epoch=0):
        self.files = find_images(roots)
        if crop < 8:
            raise ValueError(f"crop must be at least 8 px; got {crop}")
        self.crop, self.seed, self.epoch = int(crop), int(seed), int(epoch)
        self.recipes = tuple(recipes or RECIPES)
        self.recipe_weights = recipe_weights
        draw_recipe(np.random.default_rng(0), self.recipes, recipe_weights)     # fail early on bad names
        self.length = int(length or DEFAULT_LENGTH)
        self._order = None

    def set_epoch(self, epoch: int):
        self.epoch = int(epoch)

    def __len__(self):
        return self.length

    def _photo_index(self, i: int) -> int:
        n = len(self.files)
        if self._order is None or self._order[0] != self.epoch:
            perm = np.random.default_rng([self.seed, self.epoch, 0x5EED]).permutation(n)
            self._order = (self.epoch, perm)
        return int(self._order[1][i % n])

    def clean_crop(self, i: int, rng: np.random.Generator) -> torch.Tensor:
        """The clean (3, crop, crop) float crop of item i: random scale, position, horizontal flip."""
        img = load_photo(str(self.files[self._photo_index(i)]))
        _, h, w = img.shape
        lo, hi = SCALE_RANGE
        long_side = min(float(np.exp(rng.uniform(np.log(lo), np.log(hi)))), max(h, w))
        side = min(h, w, max(1, round(self.crop * max(h, w) / long_side)))   # region of the cached photo
        y, x = int(rng.integers(0, h - side + 1)), int(rng.integers(0, w - side + 1))
        patch = img[:, y:y + side, x:x + side].float()[None] / 255           # (1, 3, side, side)
        if side != self.crop:
            patch = F.interpolate(patch, size=(self.crop, self.crop), mode="bilinear",
                                  antialias=side > self.crop, align_corners=False)
        patch = patch[0]
        if rng.random() < 0.5:
            patch = patch.flip(-1)
        return patch.clamp(0, 1).contiguous()

    def sample(self, i: int, recipe: str = None) -> WeatherSample:
        """Item i as a WeatherSample; `recipe` overrides the drawn recipe (the draw still happens,
        so the crop and weather parameters do not depend on it)."""
        rng = np.random.default_rng([self.seed, self.epoch, int(i)])
        drawn = draw_recipe(rng, self.recipes, self.recipe_weights)
        return synthesize(self.clean_crop(int(i), rng), rng, recipe or drawn)

    def __getitem__(self, i):
        if not -self.length <= int(i) < self.length:
            raise IndexError(f"item {i} out of range for a dataset of {self.length}")
        s = self.sample(int(i) % self.length)
        return {"weathered": s.weathered, "clean": s.clean, "prior": s.prior, "density": s.density,
                "severity": torch.tensor(s.severity, dtype=torch.float32),
                "recipe_index": torch.tensor(RECIPES.index(s.recipe), dtype=torch.long)}
