"""Train the raindrop stage (training/drop_stage.py) in the background, resumable, scored every
eval_every steps on the held-out synthetic recipes of scripts/synth_recipe_eval.py: the 16 `raindrops`
photos (the stage alone, Y-PSNR against the clean photo) and, as the do-no-harm check, `rain_light`
and `haze` (Y-PSNR of the stage's output against its own input: high means it left them alone).

    .venv/bin/python scripts/train_drop_stage.py runs/drop_stage [steps] [threads] [clean photos folder]
Trains on CUDA where there is one (the synthesizer runs there too), else on the CPU.
"""
import sys
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "scripts"))
import weather  # noqa: E402

weather.load_pack()
from weather_restore.evaluation.metrics import quantize, score_pair  # noqa: E402
from weather_restore.training.drop_stage import DropStageConfig, train_drop_stage  # noqa: E402
import synth_recipe_eval  # noqa: E402


def held_out_scores(stage) -> dict:
    y_psnr = lambda a, b: score_pair(quantize(a.permute(1, 2, 0)), quantize(b.permute(1, 2, 0)))["y_psnr"]  # noqa: E731
    scores = {}
    was_training = stage.training
    stage.eval()
    dev = next(stage.parameters()).device
    with torch.no_grad():
        for recipe, against in (("raindrops", "clean"), ("rain_light", "weathered"), ("haze", "weathered")):
            r = [y_psnr(stage(s.weathered[None].float().to(dev))[0].clamp(0, 1).cpu(), getattr(s, against))
                 for s in synth_recipe_eval.held_out(recipe)]
            scores[recipe] = round(float(np.mean(r)), 3)
    stage.train(was_training)
    return scores


def main(out: str, steps: str = "5000", threads: str = "2", data: str = "") -> None:
    torch.set_num_threads(int(threads))
    cfg = DropStageConfig(data_root=data or str(ROOT.parent / "shared" / "data" / "train" / "clean"), steps=int(steps))
    train_drop_stage(cfg, Path(out), evaluate=held_out_scores, log=lambda m: print(m, flush=True))


if __name__ == "__main__":
    main(*sys.argv[1:])
