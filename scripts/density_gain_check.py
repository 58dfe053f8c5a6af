"""How weights behave when their own density map is scaled, on three sets: the first 20 Rain100L pairs,
held-out synthetic light rain and clean photos (16 photos each, as scripts/synth_recipe_eval.py draws
them). Also prints, at gain 1, the mean |Y offset| (restored minus target mean luma, per image): a large
offset means whole-image brightness changes rather than local rain removal; and the share of the rain
left, <out - target, in - target> / |in - target|^2 on Y (0 = all removed, 1 = untouched).

    .venv/bin/python scripts/density_gain_check.py weights/weather_s_v2.safetensors 1.3
Whole images are restored in one pass (no tiles). A diagnostic, not a setting of the pack.
"""
import sys

import numpy as np
import torch

import synth_recipe_eval as S   # puts the pack on sys.path; its photos and synthesis
from weather_restore.evaluation.evaluate import read_rgb  # noqa: E402
from weather_restore.evaluation.metrics import rgb_to_y  # noqa: E402

RAIN100L = S.ROOT.parent / "shared" / "data" / "eval" / "rain100L"


def restore(model, x: torch.Tensor, gain: float) -> np.ndarray:
    """x (1, 3, H, W) in [0, 1] -> uint8 (H, W, 3), with the model's density map times `gain`."""
    with torch.no_grad():
        d = torch.sigmoid(model(x).pred_density_logits)[..., :x.shape[-2], :x.shape[-1]]
        return S.quantize(model(x, None, (d * gain).clamp(0, 1)).image[0].permute(1, 2, 0))


def pairs(recipe: str):
    """(weathered (1, 3, H, W) float, clean uint8 (H, W, 3)) for Rain100L or a synthetic recipe."""
    if recipe == "rain100L":
        for i in range(1, 21):
            x = read_rgb(RAIN100L / "input" / f"{i}.png")
            yield torch.from_numpy(x).permute(2, 0, 1)[None].float() / 255, read_rgb(RAIN100L / "target" / f"{i}.png")
        return
    rng = np.random.default_rng(123)
    for p in S.find_images([S.DATA / "kodak24", S.DATA / "set14"])[:16]:
        s = S.synthesize(S.load_photo(str(p))[:, :320, :480].float() / 255, rng, recipe)
        yield s.weathered[None], S.quantize(s.clean.permute(1, 2, 0))


def main(weights: str, gain: str = "1.3", threads: int = 2) -> None:
    torch.set_num_threads(int(threads))
    model, _ = S.load_model(weights)
    for recipe in ("rain100L", "rain_light", "clean"):
        psnr, offset, left = {1.0: [], float(gain): []}, [], []
        for x, clean in pairs(recipe):
            for g in psnr:
                out = restore(model, x, g)
                psnr[g].append(S.score_pair(out, clean)["y_psnr"])
                if g == 1.0:
                    y_out, y_clean = rgb_to_y(out, False), rgb_to_y(clean, False)
                    offset.append(abs(float(y_out.mean() - y_clean.mean())))
                    rain = rgb_to_y(S.quantize(x[0].permute(1, 2, 0)), False) - y_clean
                    if (rain ** 2).sum() > 0:
                        left.append(float(((y_out - y_clean) * rain).sum() / (rain ** 2).sum()))
        print(f"{recipe}: " + ", ".join(f"density x{g}: {np.mean(v):.2f} dB" for g, v in psnr.items()) +
              f"; mean |Y offset| {np.mean(offset):.2f}" + (f", rain left {np.mean(left):.2f}" if left else "") + " (x1.0)")


if __name__ == "__main__":
    main(*sys.argv[1:])
