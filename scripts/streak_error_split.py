"""Where does a restorer's remaining error sit on a paired rain folder: under the streaks or beside them? (diagnostic)

    .venv/bin/python scripts/streak_error_split.py WEIGHTS [FOLDER] [N]
    .venv/bin/python scripts/streak_error_split.py weather-m-v4.8 ../shared/data/eval/rain100L 20
On the first N pairs (default 20), restored as `weather.py restore` restores them, the Y channel's pixels
are split into streak pixels (input and target differ by more than 5 levels) and the rest. Per image
and on average it prints:
- the Y-PSNR, and what it would be if the streak pixels (or the rest) were restored perfectly;
- the share of the squared error that sits on streak pixels;
- `left`: the fraction of the rain layer (input - target) still in the output on streak pixels (a least
  squares fit of the error on the rain layer), and how much of the streak pixels' error it explains.
  The rest of that error is the background behind the streaks restored wrong.
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
from weather_restore.evaluation.metrics import quantize, rgb_to_y  # noqa: E402
from weather_restore.evaluation.pairs import find_layout, match_pairs  # noqa: E402
from weather_restore.pipeline.restore import restore_batch  # noqa: E402

STREAK_LEVELS = 5                     # |input - target| in Y above this marks a streak pixel


def psnr(mse: float) -> float:
    return float(10 * np.log10(255.0 ** 2 / max(mse, 1e-12)))


def split(inp: np.ndarray, target: np.ndarray, out: np.ndarray) -> dict:
    """uint8 (H, W, 3) input, target and restored -> the figures listed in the module docstring."""
    yi, yt, yo = (rgb_to_y(a) for a in (inp, target, out))
    streak = np.abs(yi - yt) > STREAK_LEVELS
    se = (yo - yt) ** 2
    rain, err = (yi - yt)[streak], (yo - yt)[streak]
    left = float((err * rain).sum() / max((rain * rain).sum(), 1e-12))
    explained = 1 - float(((err - left * rain) ** 2).sum() / max((err ** 2).sum(), 1e-12))
    return {"psnr": psnr(se.mean()), "streaks_perfect": psnr((se * ~streak).mean()),
            "rest_perfect": psnr((se * streak).mean()), "streak_share": float((se * streak).sum() / max(se.sum(), 1e-12)),
            "streak_pixels": float(streak.mean()), "left": left, "left_explains": explained}


def main(weights: str, folder: str = str(ROOT.parent / "shared" / "data" / "eval" / "rain100L"), n: str = "20") -> None:
    torch.set_num_threads(2)
    model, _ = load_model(weights)
    rows = []
    for inp_path, tgt_path in match_pairs(*find_layout(folder), int(n)):
        inp, target = read_rgb(inp_path), read_rgb(tgt_path)
        x = torch.from_numpy(inp).permute(2, 0, 1)[None].float() / 255
        with torch.no_grad():
            out = quantize(restore_batch(model, x)[0].permute(1, 2, 0))
        rows.append(split(inp, target, out))
        r = rows[-1]
        print(f"{inp_path.name}: {r['psnr']:.2f} dB; streaks perfect {r['streaks_perfect']:.2f}, rest perfect "
              f"{r['rest_perfect']:.2f}; streak share of the error {r['streak_share']:.2f} on "
              f"{100 * r['streak_pixels']:.0f} % of pixels; left {r['left']:.3f} explaining {r['left_explains']:.2f}",
              flush=True)
    mean = {k: float(np.mean([r[k] for r in rows])) for k in rows[0]}
    print(f"mean of {len(rows)}: {mean['psnr']:.2f} dB; streaks perfect {mean['streaks_perfect']:.2f}, rest perfect "
          f"{mean['rest_perfect']:.2f}; streak share {mean['streak_share']:.2f}; left {mean['left']:.3f} "
          f"explaining {mean['left_explains']:.2f}")


if __name__ == "__main__":
    main(*sys.argv[1:])
