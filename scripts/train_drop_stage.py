"""Train the raindrop stage (training/drop_stage.py) in the background, resumable, scored every
eval_every steps on the held-out synthetic recipes of scripts/synth_recipe_eval.py: the 16 `raindrops`
photos (the stage alone, Y-PSNR against the clean photo) and, as the do-no-harm check, `rain_light`
and `haze` (Y-PSNR of the stage's output against its own input: high means it left them alone).

    .venv/bin/python scripts/train_drop_stage.py runs/drop_stage [steps] [threads] [clean photos folder]
        [--init runs/drop_stage_old/last.pt | weights/weather_m_v4_17.safetensors] [--drop-share 0.85] [--lr 1e-3]
        [--amp auto|bf16|off]
Trains on CUDA where there is one (the synthesizer runs there too), else on the CPU. --init starts a new
run from another run's raw stage or from the stage inside a network's file (a fresh optimiser and
schedule); a run that has a last.pt resumes it and ignores --init.
"""
import argparse
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


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("out")
    ap.add_argument("steps", nargs="?", type=int, default=5000)
    ap.add_argument("threads", nargs="?", type=int, default=2)
    ap.add_argument("data", nargs="?", default=str(ROOT.parent / "shared" / "data" / "train" / "clean"))
    ap.add_argument("--init", default="")
    ap.add_argument("--drop-share", type=float, default=DropStageConfig.drop_share)
    ap.add_argument("--lr", type=float, default=DropStageConfig.lr)
    ap.add_argument("--amp", default=DropStageConfig.amp, choices=("auto", "bf16", "off"))
    a = ap.parse_args(argv)
    torch.set_num_threads(a.threads)
    cfg = DropStageConfig(data_root=a.data, steps=a.steps, init=a.init, drop_share=a.drop_share, lr=a.lr, amp=a.amp)
    train_drop_stage(cfg, Path(a.out), evaluate=held_out_scores, log=lambda m: print(m, flush=True))


if __name__ == "__main__":
    main()
