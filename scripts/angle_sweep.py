"""How much of the synthetic light rain weights remove as its fall angle grows (slanted by wind):
8 photos of Kodak24 + Set14 (top-left 480x320), the torch synthesizer's `rain_light` with every
sample's dominant angle forced to +-A degrees (alternating sides, seed 5), Y-PSNR of input and output.

    .venv/bin/python scripts/angle_sweep.py weights/weather_m_v4_8.safetensors [0,12,20,28,36]
The inputs depend on the synthesizer's code: compare weights in runs of the same commit.
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
from weather_restore.models.tiling import restore_image  # noqa: E402
from weather_restore.training.synth.dataset import find_images, load_photo  # noqa: E402
from weather_restore.training.synth_torch import rain  # noqa: E402
from weather_restore.training.synth_torch.compose import synthesize_batch  # noqa: E402

DATA = ROOT.parent / "shared" / "data" / "train" / "clean"


def main(weights: str, angles: str = "0,12,20,28,36") -> None:
    torch.set_num_threads(2)
    model, _ = load_model(weights, device="cpu", precision="fp32")
    photos = [load_photo(str(p))[:, :320, :480].float() / 255 for p in find_images([DATA / "kodak24", DATA / "set14"])[:8]]
    clean = torch.stack([p for p in photos if p.shape[1:] == (320, 480)])
    light = rain._light
    try:
        for angle in (float(a) for a in angles.split(",")):
            def forced(g, n, angle=angle):
                p = light(g, n)
                side = torch.where(torch.arange(n) % 2 == 0, 1.0, -1.0).view(n, 1)
                p["angle"] = angle * side + torch.randn(n, rain.SUBLAYERS, generator=g) * 2.0
                return p
            rain._light = forced
            batch = synthesize_batch(clean, 5, recipe="rain_light")
            ins, outs = [], []
            for w, c in zip(batch["weathered"], batch["clean"]):
                with torch.no_grad():
                    y = restore_image(model, w[None])[0]
                cq = quantize(c.permute(1, 2, 0))
                ins.append(score_pair(quantize(w.permute(1, 2, 0)), cq)["y_psnr"])
                outs.append(score_pair(quantize(y.permute(1, 2, 0)), cq)["y_psnr"])
            print(f"angle {angle:g}: input {np.mean(ins):.2f} dB, restored {np.mean(outs):.2f} dB ({len(ins)} images)")
    finally:
        rain._light = light


if __name__ == "__main__":
    main(*sys.argv[1:])
