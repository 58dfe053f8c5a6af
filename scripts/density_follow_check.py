"""Does the density map follow the rain? On the first N Rain100L pairs (diagnostic only, never trained
on), compare each weights' own density map D with where the rain really is: the streak layer
r = max(input - target, 0) on Y. Prints, per weights file:
  max D, mean D; mean D on streak pixels (r > 0.05) and off them, and their ratio; the Pearson
  correlation of D with r over all pixels. A map that follows the rain has a high ratio and correlation.

    .venv/bin/python scripts/density_follow_check.py 10 weights/weather_s_v3.safetensors weights/weather_m_v4.safetensors
"""
import sys

import numpy as np
import torch

import synth_recipe_eval as S   # puts the pack on sys.path; model loading
from weather_restore.cli.model_loading import load_model  # noqa: E402
from weather_restore.evaluation.evaluate import read_rgb  # noqa: E402
from weather_restore.evaluation.metrics import rgb_to_y  # noqa: E402
from weather_restore.models.tiling import global_signals  # noqa: E402

RAIN100L = S.ROOT.parent / "shared" / "data" / "eval" / "rain100L"
STREAK = 0.05            # Y difference that counts as a streak pixel


def check(weights: str, n: int) -> dict:
    model, _ = load_model(weights)
    ds, rs = [], []
    for path in sorted((RAIN100L / "input").glob("*.png"), key=lambda p: int(p.stem))[:n]:
        inp, target = read_rgb(path), read_rgb(RAIN100L / "target" / path.name)      # uint8 (H, W, 3)
        x = torch.from_numpy(inp).permute(2, 0, 1)[None].float() / 255
        with torch.no_grad():
            _, d = global_signals(model, x)
        ds.append(d[0, 0].float().numpy().ravel())
        rs.append(np.clip((rgb_to_y(inp, False) - rgb_to_y(target, False)) / 255, 0, None).ravel())
    d, r = np.concatenate(ds), np.concatenate(rs)
    on, off = d[r > STREAK].mean(), d[r <= STREAK].mean()
    return {"max": float(d.max()), "mean": float(d.mean()), "on_streaks": float(on), "off_streaks": float(off),
            "ratio": float(on / max(off, 1e-6)), "pearson": float(np.corrcoef(d, r)[0, 1])}


def main(n: str, *weights: str) -> None:
    torch.set_num_threads(2)
    print(f"first {n} Rain100L pairs; streak pixels: Y(input) - Y(target) > {STREAK}")
    print("| weights | max D | mean D | D on streaks | D off | ratio | Pearson(D, rain) |")
    print("|---|---|---|---|---|---|---|")
    for w in weights:
        r = check(w, int(n))
        print(f"| {w} | {r['max']:.3f} | {r['mean']:.3f} | {r['on_streaks']:.3f} | {r['off_streaks']:.3f} | "
              f"{r['ratio']:.2f} | {r['pearson']:.3f} |", flush=True)


if __name__ == "__main__":
    main(*sys.argv[1:])
