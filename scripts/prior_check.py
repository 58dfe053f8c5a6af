"""How well does a restorer's learned weather prior p read the weather? (diagnostic, never trained on)

    .venv/bin/python scripts/prior_check.py WEIGHTS [N]
Prints, per weather type (rain_streaks, raindrops, snow, haze):
  - held-out synthetic weather (the 16 photos and seed of synth_recipe_eval.py, one recipe at a time):
    the mean label the synthesizer gives against the mean prior the weights predict;
  - the mean predicted prior on the first N Rain100L inputs, the HSTS hazy photos and every 12th real
    rainy photo (no labels: Rain100L is rain only, HSTS haze only).
The prior comes from `global_signals`, exactly as `restore` computes it (whole image, at most
ANALYSIS_SIZE px).
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
from weather_restore.evaluation.evaluate import read_rgb  # noqa: E402
from weather_restore.models.tiling import global_signals  # noqa: E402
from weather_restore.evaluation.pairs import find_layout, match_pairs  # noqa: E402
from real_rain_check import checked_photos  # noqa: E402  (scripts/, this script's folder)
from synth_recipe_eval import held_out  # noqa: E402

DATA = ROOT.parent / "shared" / "data"
RECIPES = ("rain_light", "rain_heavy", "raindrops", "snow", "haze")


def _prior(model, x: torch.Tensor) -> np.ndarray:
    return global_signals(model, x[None])[0][0].numpy()


def main(weights: str, n: str = "20", threads: str = "2") -> None:
    torch.set_num_threads(int(threads))
    model, _ = load_model(weights)
    print("| data | label (rain, drops, snow, haze) | predicted |\n|---|---|---|")
    for recipe in RECIPES:
        labels, preds = [], []
        for s in held_out(recipe):
            labels.append(s.prior.numpy())
            preds.append(_prior(model, s.weathered))
        print(f"| synthetic {recipe} | {np.round(np.mean(labels, 0), 2)} | {np.round(np.mean(preds, 0), 2)} |")
    sets = {"Rain100L": [i for i, _ in match_pairs(*find_layout(DATA / "eval" / "rain100L"), int(n))],
            "HSTS": [i for i, _ in match_pairs(*find_layout(DATA / "eval" / "hsts"))],
            "real rain": checked_photos()}
    for name, paths in sets.items():
        preds = [_prior(model, torch.from_numpy(read_rgb(p)).permute(2, 0, 1).float() / 255) for p in paths]
        print(f"| {name} ({len(paths)}) | - | {np.round(np.mean(preds, 0), 2)} |")


if __name__ == "__main__":
    main(*sys.argv[1:])
