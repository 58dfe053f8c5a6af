"""Does the restorer want more (or less) of one weather type than its prior head says? (diagnostic)

    .venv/bin/python scripts/prior_gain_check.py WEIGHTS FOLDER COLUMN N GAIN [GAIN ...]
    .venv/bin/python scripts/prior_gain_check.py weather-m-v4.1 ../shared/data/eval/rain100L rain_streaks 20 1 2 3
On the first N pairs of a paired folder, the learned prior's COLUMN (one of WEATHER_TYPES) is scaled
by each GAIN (clipped to [0, 1]); the density map and the other columns stay the learned ones.
Prints the mean Y-PSNR per gain: a gain above 1 that scores better means the head reads that weather
weaker than the body needs it.
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
from weather_restore.evaluation.metrics import quantize, score_pair  # noqa: E402
from weather_restore.evaluation.pairs import find_layout, match_pairs  # noqa: E402
from weather_restore.models.signals import WEATHER_TYPES  # noqa: E402
from weather_restore.models.tiling import global_signals, restore_image  # noqa: E402


def main(weights: str, folder: str, column: str, n: str, *gains: str) -> None:
    if column not in WEATHER_TYPES or not gains:
        raise SystemExit(f"COLUMN must be one of {', '.join(WEATHER_TYPES)}, followed by N and gains; see --help")
    model, _ = load_model(weights)
    k = WEATHER_TYPES.index(column)
    scores = {float(g): [] for g in gains}
    for inp, tgt in match_pairs(*find_layout(folder), int(n)):
        x = torch.from_numpy(read_rgb(inp)).permute(2, 0, 1)[None].float() / 255
        target = read_rgb(tgt)
        prior, density = global_signals(model, x)
        for g in scores:
            p = prior.clone()
            p[:, k] = (p[:, k] * g).clamp(0, 1)
            y = restore_image(model, x, prior=p, density=density)
            scores[g].append(score_pair(quantize(y[0].permute(1, 2, 0)), target)["y_psnr"])
    for g, s in scores.items():
        print(f"{column} x {g:g}: Y-PSNR {np.mean(s):.2f} dB over {len(s)} pairs")


if __name__ == "__main__":
    main(*sys.argv[1:])
