"""`python weather.py synth-sheet`: a contact sheet of the synthesizer's weather, so a person can
judge it. Each row is one training crop: clean | weathered | density D, with the recipe and the
prior written on it; rows cycle through the recipes. Also prints how many samples per second the
synthesizer makes here (one thread, crops of --size)."""
import time
from pathlib import Path

import numpy as np
import torch


def add_parser(sub):
    p = sub.add_parser("synth-sheet", help="write a contact sheet of synthesized weather (clean | weathered | D)",
                       description="One row per sample (recipes in turn): clean | weathered | density.")
    p.add_argument("--data", nargs="+", required=True, help="folders of clean photos (searched recursively)")
    p.add_argument("--out", default="synth_sheet.png", help="PNG to write")
    p.add_argument("--n", type=int, default=8, help="rows (samples); recipes are taken in turn")
    p.add_argument("--recipes", default=None, help="comma-separated recipes (default: all)")
    p.add_argument("--size", type=int, default=256, help="side of each tile = training crop, in pixels")
    p.add_argument("--seed", type=int, default=0)
    p.set_defaults(run=run)


def _label(tile: np.ndarray, text: str) -> np.ndarray:
    from PIL import Image, ImageDraw
    im = Image.fromarray(tile)
    draw = ImageDraw.Draw(im)
    box = draw.textbbox((3, 2), text)
    draw.rectangle((box[0] - 2, box[1] - 1, box[2] + 2, box[3] + 1), fill=(0, 0, 0))
    draw.text((3, 2), text, fill=(255, 255, 0))
    return np.asarray(im)


def run(args):
    from PIL import Image
    from ..models.signals import WEATHER_TYPES
    from ..training.synth import RECIPES, SyntheticWeatherDataset

    recipes = args.recipes.split(",") if args.recipes else list(RECIPES)
    bad = [r for r in recipes if r not in RECIPES]
    if bad:
        raise SystemExit(f"unknown recipe(s) {bad}; choose from {', '.join(RECIPES)}")
    torch.set_num_threads(1)
    ds = SyntheticWeatherDataset(args.data, crop=args.size, seed=args.seed)
    rows, seconds = [], 0.0
    for k in range(args.n):
        recipe = recipes[k % len(recipes)]
        t0 = time.perf_counter()
        s = ds.sample(k, recipe)
        seconds += time.perf_counter() - t0
        tiles = [(t.permute(1, 2, 0).numpy() * 255 + 0.5).astype(np.uint8)
                 for t in (s.clean, s.weathered, s.density.expand(3, -1, -1))]       # (H, W, 3) each
        p = ", ".join(f"{n.split('_')[0]} {v:.2f}" for n, v in zip(WEATHER_TYPES, s.prior.tolist()) if v > 0)
        tiles[1] = _label(tiles[1], f"{recipe}  sev {s.severity:.2f}  {p}")
        tiles[2] = _label(tiles[2], f"D mean {s.density.mean():.2f}")
        rows.append(np.concatenate(tiles, axis=1))
        print(f"{recipe:<11} prior {np.round(s.prior.numpy(), 2).tolist()} severity {s.severity:.2f} "
              f"D mean {s.density.mean():.3f}")
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.concatenate(rows, axis=0)).save(args.out)
    print(f"wrote {args.out} ({len(rows)} rows: clean | weathered | density); "
          f"{len(rows) / seconds:.1f} samples/s at {args.size}x{args.size} (photo loading included, 1 thread)")
    return 0
