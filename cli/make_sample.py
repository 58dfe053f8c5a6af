"""`python weather.py make-sample`: rebuild the bundled sample `assets/sample_rain.png`, reproducibly.

    python weather.py make-sample          # reads ../shared/data/train/clean/wallpapers/plasma_Path.jpg

The photo is "Path" by Risto Saukonpää from KDE's plasma-workspace-wallpapers, licensed LGPL-3.0,
so the pack may ship it (attribution and licence in assets/README.md). It is downscaled to
960 pixels wide (Lanczos, gamma-naive like every photo resize in the pack), weathered by the
synthesizer with a fixed recipe and seed, and saved as an 8-bit PNG. Same photo, recipe and seed:
the same pixels.
"""
import logging
from pathlib import Path

import numpy as np
import torch
from PIL import Image

log = logging.getLogger(__name__)

PACK_ROOT = Path(__file__).resolve().parents[1]
SOURCE = PACK_ROOT.parent / "shared" / "data" / "train" / "clean" / "wallpapers" / "plasma_Path.jpg"
OUT = PACK_ROOT / "assets" / "sample_rain.png"
WIDTH, SEED, RECIPE = 960, 7, "rain_haze"
MAX_BYTES = 1_500_000


def add_parser(sub):
    p = sub.add_parser("make-sample", help="rebuild assets/sample_rain.png from its licensed source photo",
                       description="Downscale the source photo, weather it with the synthesizer (fixed recipe "
                                   "and seed) and save the bundled sample image.")
    p.add_argument("--source", type=Path, default=SOURCE, help=f"clean photo (default {SOURCE})")
    p.add_argument("--out", type=Path, default=OUT, help=f"output PNG (default {OUT.relative_to(PACK_ROOT)})")
    p.add_argument("--width", type=int, default=WIDTH, help=f"output width in pixels (default {WIDTH})")
    p.add_argument("--recipe", default=RECIPE, help=f"synthesizer recipe (default {RECIPE})")
    p.add_argument("--seed", type=int, default=SEED, help=f"synthesizer seed (default {SEED})")
    p.set_defaults(run=run)


def clean_tensor(source: Path, width: int) -> torch.Tensor:
    """The source photo, upright, downscaled to `width` -> (3, H, W) float32 in [0, 1]."""
    from PIL import ImageOps
    with Image.open(source) as im:
        im = ImageOps.exif_transpose(im).convert("RGB")
        if im.width > width:
            im = im.resize((width, round(im.height * width / im.width)), Image.Resampling.LANCZOS)
        a = np.asarray(im, dtype=np.float32) / 255                   # (H, W, 3)
    return torch.from_numpy(a).permute(2, 0, 1).contiguous()          # (H, W, 3) -> (3, H, W)


def weathered(clean: torch.Tensor, recipe: str, seed: int) -> torch.Tensor:
    from ..training.synth import synthesize
    sample = synthesize(clean, np.random.default_rng(seed), recipe)
    return sample.weathered.clamp(0, 1)                               # (3, H, W)


def run(args) -> int:
    if not args.source.is_file():
        log.error("source photo %s not found; it is in ../shared/data (see /work/shared/data/README.md), "
                  "or pass --source PATH", args.source)
        return 1
    clean = clean_tensor(args.source, args.width)
    img = weathered(clean, args.recipe, args.seed)
    a = (img.permute(1, 2, 0) * 255).round().to(torch.uint8).numpy()  # (3, H, W) -> (H, W, 3)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(a, "RGB").save(args.out, format="PNG", optimize=True)
    size = args.out.stat().st_size
    print(f"wrote {args.out} ({a.shape[1]}x{a.shape[0]}, {size / 1e6:.2f} MB) from {args.source.name}, "
          f"recipe {args.recipe}, seed {args.seed}")
    if size > MAX_BYTES:
        log.warning("%s is %.2f MB, above the %.1f MB the pack wants to ship; use a smaller --width",
                    args.out, size / 1e6, MAX_BYTES / 1e6)
    return 0
