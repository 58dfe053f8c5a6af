"""Score weights on held-out synthetic weather of one recipe (no paired benchmark exists for snow or
raindrops here): 16 photos of Kodak24 + Set14, top-left 480x320, weather drawn with seed 123.

    .venv/bin/python scripts/synth_recipe_eval.py weights/weather_s_v2.safetensors snow [--mirror-ensemble]
    .venv/bin/python scripts/synth_recipe_eval.py weather-m-v4.17 raindrops 2 raindrops=1   (threads, then weather
                                                                     set by hand, as `restore --weather`)
    .venv/bin/python scripts/synth_recipe_eval.py weather-m-v4.17 haze --keep-brightness
Prints the mean Y-PSNR of the weathered input and of the restored output against the clean photo
(--mirror-ensemble, --keep-brightness: restored as `restore` does with them).
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
from weather_restore.pipeline.restore import restore_batch  # noqa: E402
from weather_restore.pipeline.signals import apply_overrides, learned_prior_density, parse_weather  # noqa: E402
from weather_restore.training.synth.compose import synthesize  # noqa: E402
from weather_restore.training.synth.dataset import find_images, load_photo  # noqa: E402

DATA = ROOT.parent / "shared" / "data" / "train" / "clean"


def held_out(recipe: str):
    """The held-out samples of one recipe (also read by prior_check.py): the same photos and weather each call."""
    rng = np.random.default_rng(123)
    for p in find_images([DATA / "kodak24", DATA / "set14"])[:16]:
        yield synthesize(load_photo(str(p))[:, :320, :480].float() / 255, rng, recipe)


def main(weights: str, recipe: str = "rain_light", threads: int = 2, weather: str = "",
         mirror_ensemble: bool = False, keep_brightness: bool = False) -> None:
    torch.set_num_threads(int(threads))
    manual = parse_weather(weather) if weather else {}
    model, _ = load_model(weights)
    ins, outs = [], []
    for s in held_out(recipe):
        clean = quantize(s.clean.permute(1, 2, 0))
        with torch.no_grad():
            prior = density = None
            if manual:                                   # the learned signals with the hand-set types, as `restore`
                prior, density = learned_prior_density(model, s.weathered[None])
                prior, _ = apply_overrides(prior, manual)
            restored = restore_batch(model, s.weathered[None], prior=prior,
                                     density=None if density is None else density[:, 0],
                                     mirror_ensemble=mirror_ensemble, keep_brightness=keep_brightness)
        ins.append(score_pair(quantize(s.weathered.permute(1, 2, 0)), clean)["y_psnr"])
        outs.append(score_pair(quantize(restored[0].permute(1, 2, 0)), clean)["y_psnr"])
    print(f"{recipe}: input {np.mean(ins):.2f} dB, restored {np.mean(outs):.2f} dB (Y-PSNR, {len(ins)} images)")


FLAGS = {"--mirror-ensemble": "mirror_ensemble", "--keep-brightness": "keep_brightness"}


def run_from_argv(main) -> None:
    """main(*positional arguments, mirror_ensemble=..., keep_brightness=...) from sys.argv, the flags anywhere."""
    args = sys.argv[1:]
    main(*[a for a in args if a not in FLAGS], **{name: flag in args for flag, name in FLAGS.items()})


if __name__ == "__main__":
    run_from_argv(main)
