"""What `weather_scale` (pipeline/coarse.py) does to large rain and to fine rain, restored as `restore` does.

    .venv/bin/python scripts/weather_scale_check.py [WEIGHTS] [N]
Two tables of mean Y-PSNR (dB), one column per weather_scale:
- large rain: the first N Rain100L pairs (default 20) enlarged 2x and 3x (bicubic, input and target alike),
  as the rain of a large photo is wider than the network learned it;
- fine rain: the held-out synthesizer's rain and haze drawn at the full size of 6 Urban100 photos
  (1024x768 crops), where the rain is as fine as in training: what the coarse pass costs when it is not
  needed.
"""
import sys
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
import weather  # noqa: E402

weather.load_pack()
from weather_restore.cli.model_loading import load_model  # noqa: E402
from weather_restore.evaluation.metrics import quantize, score_pair  # noqa: E402
from weather_restore.imagefiles.image_io import read_image  # noqa: E402
from weather_restore.pipeline.coarse import resize  # noqa: E402
from weather_restore.pipeline.restore import restore_batch  # noqa: E402
from weather_restore.training.synth.compose import synthesize  # noqa: E402
from weather_restore.training.synth.dataset import find_images, load_photo  # noqa: E402

DATA = ROOT.parent / "shared" / "data"
SCALES = (1.0, 2.0, 3.0)


def y_psnr(a: torch.Tensor, b: torch.Tensor) -> float:
    q = lambda t: quantize(t[0].clamp(0, 1).permute(1, 2, 0))        # noqa: E731
    return score_pair(q(a), q(b))["y_psnr"]


def row(model, pairs, label: str) -> str:
    scores = {"input": []}
    for x, y in pairs:
        scores["input"].append(y_psnr(x, y))
        for s in SCALES:
            with torch.no_grad():
                scores.setdefault(s, []).append(y_psnr(restore_batch(model, x, weather_scale=s), y))
    cells = " | ".join(f"{np.mean(v):.2f}" for v in scores.values())
    return f"| {label} | {len(pairs)} | {cells} |"


def rain100l(n: int, k: float):
    folder = DATA / "eval" / "rain100L"
    for i in range(1, n + 1):
        x, y = (read_image(folder / sub / f"{i}.png").to_tensor() for sub in ("input", "target"))
        yield resize(x, (round(x.shape[-2] * k), round(x.shape[-1] * k))).clamp(0, 1), \
            resize(y, (round(y.shape[-2] * k), round(y.shape[-1] * k))).clamp(0, 1)


def fine(recipe: str):
    rng = np.random.default_rng(7)
    for p in find_images([DATA / "train" / "clean" / "urban100"])[:6]:
        s = synthesize((load_photo(str(p)).float() / 255)[:, :768, :1024], rng, recipe)
        yield s.weathered[None], s.clean[None]


def main(weights: str = None, n: int = 20) -> None:
    torch.set_num_threads(2)
    model, _ = load_model(weights)
    head = " | ".join(f"weather_scale {s:g}" for s in SCALES)
    print(f"| rain | images | input | {head} |\n|---|---:|---:|" + "---:|" * len(SCALES))
    for k in (2, 3):
        print(row(model, list(rain100l(int(n), k)), f"Rain100L x{k}"), flush=True)
    for recipe in ("rain_light", "rain_heavy", "haze"):
        print(row(model, list(fine(recipe)), f"{recipe}, full size"), flush=True)


if __name__ == "__main__":
    main(*sys.argv[1:])
