"""Writes example_workflows/<name>.jpg, the thumbnails ComfyUI's template browser shows beside each
example workflow, from what the workflow does to the bundled sample with the default weights.

    .venv/bin/python scripts/make_workflow_thumbnails.py

Each thumbnail is 400 x 400 px: a square crop of assets/sample_rain.png, the left half as it came
in and the right half as the workflow leaves it (restored, heat map, region, ...), with a caption.
Everything runs through the same pipeline functions as the nodes (pipeline.weights,
pipeline.restore, pipeline.signals), on the CPU, in a few seconds.
"""
import sys
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageDraw

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from weather import load_pack  # noqa: E402

load_pack()
from weather_restore.pipeline.restore import restore_batch  # noqa: E402
from weather_restore.pipeline.signals import (heatmap, learned_prior_density, learned_quality,  # noqa: E402
                                              quality_report, summarize_prior)
from weather_restore.pipeline.weights import DEFAULT_CHOICE, load_verified, resolve_weights  # noqa: E402

SIDE = 400
OUT_DIR = ROOT / "example_workflows"


def sample() -> torch.Tensor:
    im = Image.open(ROOT / "assets" / "sample_rain.png").convert("RGB")
    s = min(im.size)
    left, top = (im.width - s) // 2, (im.height - s) // 2
    im = im.crop((left, top, left + s, top + s)).resize((SIDE, SIDE), Image.LANCZOS)
    return torch.from_numpy(np.asarray(im).copy()).permute(2, 0, 1)[None].float() / 255     # (1, 3, H, W)


def to_pil(x: torch.Tensor) -> Image.Image:
    return Image.fromarray((x[0].permute(1, 2, 0).clamp(0, 1).numpy() * 255).round().astype(np.uint8))


def split(before: torch.Tensor, after: torch.Tensor) -> Image.Image:
    """Left half of `before`, right half of `after`, a white line between."""
    out = before.clone()
    out[..., SIDE // 2:] = after[..., SIDE // 2:]
    out[..., SIDE // 2 - 1:SIDE // 2 + 1] = 1.0
    return to_pil(out)


def caption(im: Image.Image, lines, corner_left: str = "", corner_right: str = "") -> Image.Image:
    draw = ImageDraw.Draw(im)
    h = 16 * len(lines) + 10
    draw.rectangle((0, SIDE - h, SIDE, SIDE), fill=(20, 20, 28))
    for i, line in enumerate(lines):
        draw.text((10, SIDE - h + 5 + 16 * i), line, fill=(255, 255, 255))
    for text, x in ((corner_left, 8), (corner_right, SIDE // 2 + 8)):
        if text:
            box = draw.textbbox((x, 8), text)
            draw.rectangle((box[0] - 4, box[1] - 3, box[2] + 4, box[3] + 3), fill=(20, 20, 28))
            draw.text((x, 8), text, fill=(255, 230, 120))
    return im


def main() -> int:
    torch.manual_seed(0)
    path, entry = resolve_weights(DEFAULT_CHOICE, lambda name: None, [])
    model, entry = load_verified(path, entry, "cpu", torch.float32)
    x = sample()
    prior, density = learned_prior_density(model, x)
    restored = restore_batch(model, x, prior=prior, density=density[:, 0])
    coarse = restore_batch(model, x, weather_scale=2.0)
    region = torch.zeros(1, SIDE, SIDE)
    region[:, 120:300, 140:340] = 1
    in_region = restore_batch(model, x, prior=prior, density=density[:, 0], region=region, feather=24)
    (q_before, q_after), tiers, _ = quality_report(learned_quality(model, torch.cat([x, restored])))
    summary = summarize_prior(prior, "learned")
    heat = heatmap(density, "normalised")
    name = entry["id"]
    thumbs = {
        "remove-rain-snow-and-haze-from-a-photo": caption(
            split(x, restored), ["Remove rain, snow and haze from a photo", f"weights {name}"], "input", "restored"),
        "restore-a-large-photo-with-weather-scale": caption(
            split(x, coarse), ["Large photo: weather_scale 2 removes wide streaks",
                               "on a half-size copy first, then at full size"], "input", "weather_scale 2"),
        "restore-first-then-upscale-2x": caption(
            split(x, restored), ["Restore first, then upscale x2 (lanczos)"], "input", "restored, then x2"),
        "score-image-quality-before-and-after-restoring": caption(
            split(x, restored), ["Quality Perceiver before and after Restore", "0 = degraded, 1 = clean"],
            f"score {q_before:.2f} ({tiers[0]})", f"score {q_after:.2f} ({tiers[1]})"),
        "see-where-the-weather-is-with-a-density-heat-map": caption(
            split(x, heat), ["Density Map: where the weather is", "heat map normalised: the densest 1 % is yellow"],
            "input", "density"),
        "guide-the-restorer-by-hand-with-a-prior-and-a-density": caption(
            split(x, restored), ["Guide Restore with a weather prior and a density map", summary],
            "input", "guided"),
        "clip-guided-restore-needs-a-clip-file": caption(
            split(x, restored), ["CLIP estimates the prior and the density (needs the",
                                 "ViT-B/32 file in models/clip; shown: the learned heads)"], "input", "restored"),
    }
    painted = caption(to_pil(in_region), ["Restore only inside a painted mask", "paint it in Load Image's MaskEditor"])
    ImageDraw.Draw(painted).rectangle((140, 120, 340, 300), outline=(255, 230, 120), width=2)
    thumbs["restore-only-inside-a-painted-mask"] = painted
    missing = {p.stem for p in OUT_DIR.glob("*.json")} - set(thumbs)
    if missing:
        raise SystemExit(f"no thumbnail recipe for {sorted(missing)}")
    for stem, im in thumbs.items():
        out = OUT_DIR / f"{stem}.jpg"
        tmp = out.with_name(f".{out.name}.part")
        im.save(tmp, format="JPEG", quality=85)
        tmp.replace(out)
        print(f"wrote {out.relative_to(ROOT)} ({out.stat().st_size // 1024} KB)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
