"""Synthetic rain of the torch synthesizer next to real rainy photos, at the real photos' scale, to
judge it by eye, plus streak statistics measured the same way on both.

    .venv/bin/python scripts/rain_sheet.py /tmp/rain_sheet.png [recipe ...]

Rows alternate: 3 real photos of ../shared/data/train/real_rain | 3 clean photos with synthetic
rain (BSDS500 scenes, 481 x 321, the real photos' size; recipes in turn, default rain_light, rain_heavy,
rain_haze). Keep the sheet out of the repository (the real photos may not be shipped).
Statistics, per image, of the bright thin structure s = max(0, gray - 5x5 box mean):
- fraction of pixels with s > 0.03 (streak coverage) and their mean s (streak contrast);
- orientation: mean |d/dx s| / mean |d/dy s| (> 1: near-vertical lines);
- length: autocorrelation of s 8 px along the streaks' direction (the best of -30..30 deg).
Clean photos are measured too, as the baseline the rain adds to.
"""
import sys
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
import weather  # noqa: E402

weather.load_pack()
from weather_restore.training.synth.dataset import find_images  # noqa: E402
from weather_restore.training.synth_torch import synthesize_batch  # noqa: E402

DATA = ROOT.parent / "shared" / "data" / "train"
SIZE = (321, 481)            # (H, W) of the real rainy photos


def _load(path) -> torch.Tensor:
    im = Image.open(path).convert("RGB")
    if im.width < im.height:
        im = im.rotate(90, expand=True)
    im = im.resize(SIZE[::-1], Image.Resampling.BICUBIC)
    return torch.from_numpy(np.asarray(im).copy()).permute(2, 0, 1).float() / 255


def streak_stats(img: torch.Tensor) -> dict:
    """img (3, H, W) -> the statistics of the module docstring."""
    gray = img.mean(0)[None, None]
    s = (gray - F.avg_pool2d(gray, 5, stride=1, padding=2, count_include_pad=False)).clamp_min(0)[0, 0]
    on = s > 0.03
    gx = (s[:, 1:] - s[:, :-1]).abs().mean()
    gy = (s[1:] - s[:-1]).abs().mean()
    z = (s - s.mean()) / s.std().clamp_min(1e-6)
    best = -1.0
    for deg in range(-30, 31, 5):
        dy, dx = 8 * np.cos(np.radians(deg)), 8 * np.sin(np.radians(deg))
        a, b = int(round(dy)), int(round(dx))
        shifted = torch.roll(z, shifts=(a, b), dims=(0, 1))
        best = max(best, float((z * shifted)[16:-16, 16:-16].mean()))
    return {"coverage": float(on.float().mean()), "contrast": float(s[on].mean()) if on.any() else 0.0,
            "orientation": float(gx / gy.clamp_min(1e-6)), "length_corr": best}


def _summary(name, rows):
    keys = rows[0].keys()
    print(f"{name:28s} " + "  ".join(f"{k} {np.mean([r[k] for r in rows]):.3f}" for k in keys))


def main(out: str, *recipes: str) -> None:
    recipes = list(recipes) or ["rain_light", "rain_heavy", "rain_haze"]
    torch.set_num_threads(2)
    real = [_load(p) for p in find_images(DATA / "real_rain")]
    clean = [_load(p) for p in find_images(DATA / "clean" / "bsds500")[::20][:24]]
    x = torch.stack(clean)
    synth = {r: synthesize_batch(x, 0, recipe=r)["weathered"] for r in recipes}
    _summary("real rain (100)", [streak_stats(im) for im in real])
    _summary("clean bsds500 (24)", [streak_stats(im) for im in clean])
    for r, batch in synth.items():
        _summary(f"synthetic {r} (24)", [streak_stats(im) for im in batch])
    tiles = []
    for i in range(len(recipes) * 2):
        tiles.append(np.concatenate([t.permute(1, 2, 0).numpy() for t in real[i * 3 * 5 % 97:][:3]], 1))
        r = recipes[i % len(recipes)]
        tiles.append(np.concatenate([t.permute(1, 2, 0).numpy() for t in synth[r][3 * i:3 * i + 3]], 1))
    Image.fromarray((np.concatenate(tiles, 0) * 255 + 0.5).astype(np.uint8)).save(out)
    print(f"wrote {out}: rows alternate real | synthetic ({', '.join(recipes)} in turn)")


if __name__ == "__main__":
    main(*sys.argv[1:])
