"""How much of the restorer's deraining is decided by its density map D: restore the first Rain100L
pairs with D from the weights' own heads, with the synthesizer's formula applied to the true rain
(the oracle, D = 1 - exp(-max(input - target, 0) / 0.1), known only for benchmark pairs), with the own
map's misses filled or its false alarms (oracle <= 0.05) cleared, with the oracle scaled or blurred,
and with D = 0. A diagnostic of what to train, not a setting of the pack.

    .venv/bin/python scripts/density_oracle_check.py weights/weather_s_v3.safetensors 10
Prints the mean Y-PSNR of each variant (whole images, one pass).
"""
import sys

import numpy as np
import torch

import synth_recipe_eval as S   # puts the pack on sys.path; model loading and scoring
from weather_restore.evaluation.evaluate import read_rgb  # noqa: E402
from weather_restore.training.synth.kernels import gaussian_blur  # noqa: E402
from weather_restore.training.synth.rain import DENSITY_SCALE  # noqa: E402

RAIN100L = S.ROOT.parent / "shared" / "data" / "eval" / "rain100L"
RAIN_PIXEL = 0.05           # oracle density above which a pixel counts as rain


def variants(model, x: torch.Tensor, clean: torch.Tensor) -> dict:
    oracle = 1 - torch.exp(-(x - clean).mean(1, keepdim=True).clamp_min(0) / DENSITY_SCALE)
    with torch.no_grad():
        own = torch.sigmoid(model.predict_signals(x).density_logits)
    rain = (oracle > RAIN_PIXEL).to(own)
    # which of the own map's errors cost more: rain it misses, or rain it sees where there is none
    return {"own heads": own, "own, misses filled from the oracle": torch.maximum(own, oracle),
            "own, false alarms off": own * rain, "oracle": oracle, "oracle x0.6": 0.6 * oracle,
            "oracle blurred (sigma 1 px)": gaussian_blur(oracle[0], 1.0)[None], "zero": torch.zeros_like(own)}


def main(weights: str, pairs: str = "10", threads: int = 2) -> None:
    torch.set_num_threads(int(threads))
    model, _ = S.load_model(weights)
    scores = {}
    for i in range(1, int(pairs) + 1):
        target = read_rgb(RAIN100L / "target" / f"{i}.png")
        x = torch.from_numpy(read_rgb(RAIN100L / "input" / f"{i}.png")).permute(2, 0, 1)[None].float() / 255
        clean = torch.from_numpy(target).permute(2, 0, 1)[None].float() / 255
        for name, d in variants(model, x, clean).items():
            with torch.no_grad():
                out = S.quantize(model(x, None, d.clamp(0, 1)).image[0].permute(1, 2, 0))
            scores.setdefault(name, []).append(S.score_pair(out, target)["y_psnr"])
    print(f"Rain100L first {pairs} pairs, Y-PSNR by density map: " +
          ", ".join(f"{k} {np.mean(v):.2f} dB" for k, v in scores.items()))


if __name__ == "__main__":
    main(*sys.argv[1:])
