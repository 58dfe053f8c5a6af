"""Look at weights on real rainy photos (no ground truth): restore every 12th photo of
../shared/data/train/real_rain (8 photos), print how much each changed (all of it, and at the
scale of streaks) and the mean colour shift,
and write a before | after sheet (keep it out of the repository: the photos may not be shipped).

    .venv/bin/python scripts/real_rain_check.py weights/weather_s_v2.safetensors /tmp/real_rain_sheet.png
    .venv/bin/python scripts/real_rain_check.py weather-m-v4.8 /tmp/sheet.png haze=0    (weather set by hand,
                                                                          as `weather.py restore --weather`)
    .venv/bin/python scripts/real_rain_check.py weather-m-v4.9 /tmp/sheet.png --mirror-ensemble
    .venv/bin/python scripts/real_rain_check.py weather-m-v4.17 /tmp/sheet.png --keep-brightness
"""
import sys
from pathlib import Path

import numpy as np
import torch
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
import weather  # noqa: E402

weather.load_pack()
from weather_restore.cli.model_loading import load_model  # noqa: E402
from weather_restore.evaluation.metrics import quantize  # noqa: E402
from weather_restore.imagefiles.image_io import LUMA  # noqa: E402
from weather_restore.pipeline.restore import restore_batch  # noqa: E402
from weather_restore.pipeline.signals import apply_overrides, learned_prior_density, parse_weather  # noqa: E402
from weather_restore.training.synth.kernels import gaussian_blur  # noqa: E402

REAL_RAIN = ROOT.parent / "shared" / "data" / "train" / "real_rain"


def checked_photos():
    """The real rainy photos looked at (also read by prior_check.py): every 12th, 8 in all."""
    return sorted(REAL_RAIN.glob("*.png"))[::12][:8]


def fine_change(before: np.ndarray, after: np.ndarray, sigma: float = 4.0) -> float:
    """Mean |change| of the luma above the scale of a Gaussian of `sigma` px: streaks taken away (1-3 px wide)
    count, a smooth brightness shift (mist lifted, the whole photo darkened) does not."""
    y = lambda im: torch.from_numpy(im.astype(np.float32) @ np.array(LUMA, np.float32))[None]  # noqa: E731
    d = y(after) - y(before)
    return float((d - gaussian_blur(d, sigma)).abs().mean())


def main(weights: str, sheet: str, weather: str = "", threads: int = 2, mirror_ensemble: bool = False,
         keep_brightness: bool = False) -> None:
    torch.set_num_threads(int(threads))
    manual = parse_weather(weather) if weather else {}
    model, _ = load_model(weights)
    rows = []
    for path in checked_photos():
        before = np.asarray(Image.open(path).convert("RGB"))                          # (H, W, 3) uint8
        x = torch.from_numpy(before).permute(2, 0, 1)[None].float() / 255
        with torch.no_grad():
            prior, density = learned_prior_density(model, x)
            prior, _ = apply_overrides(prior, manual)
            after = quantize(restore_batch(model, x, prior=prior, density=density[:, 0], mirror_ensemble=mirror_ensemble,
                                           keep_brightness=keep_brightness)[0].permute(1, 2, 0))
        change = np.abs(after.astype(int) - before.astype(int))
        shift = after.reshape(-1, 3).mean(0) - before.reshape(-1, 3).mean(0)
        fine = fine_change(before, after)
        print(f"{path.name}: prior {np.round(prior[0].numpy(), 2).tolist()}, mean |change| {change.mean():.2f}, pixels changed by >10: "
              f"{100 * (change.max(-1) > 10).mean():.1f} %, fine-scale |change| {fine:.2f}, mean RGB shift {np.round(shift, 2).tolist()}")
        rows.append(np.concatenate([before, after], axis=1))
    height = min(r.shape[0] for r in rows)
    Image.fromarray(np.concatenate([r[:height] for r in rows], axis=0)).save(sheet)
    print(f"wrote {sheet} (before | after)")


if __name__ == "__main__":
    from synth_recipe_eval import run_from_argv
    run_from_argv(main)
