"""Unpaired real rainy photos for the NLCL stage: random crops drawn as a function of (seed, step).

Images are decoded once and kept as uint8 (the 100 photos of `train/real_rain` take ~46 MB).
Crops smaller than the photo are taken at random; photos smaller than the crop are padded by
reflection. Random horizontal flips.
"""
import logging
from pathlib import Path
from typing import List

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from .data import generator_for

log = logging.getLogger(__name__)
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".webp", ".tif", ".tiff")


def list_images(root) -> List[Path]:
    root = Path(root)
    if not root.is_dir():
        raise FileNotFoundError(f"real rain folder {root} not found; set nlcl.real_root in the train config")
    files = sorted(p for p in root.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES)
    if not files:
        raise FileNotFoundError(f"no images ({', '.join(IMAGE_SUFFIXES)}) under {root}")
    return files


class RealRainCrops:
    def __init__(self, root=None, crop: int = 96, seed: int = 0, images: List[torch.Tensor] = None):
        """`images`: optional list of (3, H, W) uint8 tensors instead of a folder (tests)."""
        if images is None:
            images = []
            for p in list_images(root):
                with Image.open(p) as im:
                    images.append(torch.from_numpy(np.asarray(im.convert("RGB")).copy()).permute(2, 0, 1))
            log.info("NLCL: %d real rainy photos from %s", len(images), root)
        if not images:
            raise ValueError("RealRainCrops needs at least one image")
        self.images, self.crop, self.seed = images, crop, seed

    def __len__(self) -> int:
        return len(self.images)

    def _crop(self, img: torch.Tensor, g: torch.Generator) -> torch.Tensor:
        c = self.crop
        x = img.float().div(255)[None]                                        # (1, 3, H, W)
        H, W = x.shape[-2:]
        if H < c or W < c:
            ph, pw = max(0, c - H), max(0, c - W)
            mode = "reflect" if ph < H and pw < W else "replicate"
            x = F.pad(x, (0, pw, 0, ph), mode=mode)
            H, W = x.shape[-2:]
        top = int(torch.randint(0, H - c + 1, (1,), generator=g))
        left = int(torch.randint(0, W - c + 1, (1,), generator=g))
        x = x[..., top:top + c, left:left + c]
        if bool(torch.rand(1, generator=g) < 0.5):
            x = torch.flip(x, (-1,))
        return x[0]

    def batch_at(self, step: int, n: int, rank: int = 0) -> torch.Tensor:
        """(n, 3, crop, crop) in [0, 1], the same for the same (seed, step, rank)."""
        g = generator_for(self.seed, step, rank, 5)
        idx = torch.randint(0, len(self.images), (n,), generator=g).tolist()
        return torch.stack([self._crop(self.images[i], g) for i in idx])
