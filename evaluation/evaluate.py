"""Score a restorer (or none) on a paired folder: Y-PSNR, Y-SSIM (MATLAB), RGB-PSNR per image and mean.

    for each (degraded, clean) pair, both read as uint8 RGB:
        input row   score(degraded, clean)
        model row   score(quantize(restore_batch(model, degraded)), clean)     (tiled when large)
The model row runs the restore service of `weather.py restore` and the Restore node
(pipeline.restore.restore_batch), so a score is what a user of either front end gets.

Library entry point for the CLI, the trainer and the export: `evaluate_folder(model_or_none, folder)`.
"""
import logging
import time
from pathlib import Path
from typing import Optional

import numpy as np
import torch
from PIL import Image
from tqdm import tqdm

from ..pipeline.restore import DEFAULT_OVERLAP, DEFAULT_TILE, restore_batch
from .metrics import quantize, score_pair
from .pairs import find_layout, match_pairs

log = logging.getLogger(__name__)

METRICS = ("y_psnr", "y_ssim", "rgb_psnr")
PROTOCOL = ("Y = BT.601 luma, 16-235 (MATLAB rgb2ycbcr on uint8, rounded); SSIM = ssim_index.m "
            "(11x11 Gaussian, sigma 1.5, K1 0.01, K2 0.03, L 255, valid); RGB PSNR over all channels; "
            "model output rounded to uint8; means over images")
INPUT_ROW = "input vs target"


def read_rgb(path: Path) -> np.ndarray:
    """An image file -> (H, W, 3) uint8 RGB."""
    try:
        with Image.open(path) as im:
            return np.array(im.convert("RGB"))                     # writable copy
    except OSError as e:
        raise ValueError(f"cannot read image {path} ({e}); replace or remove the file") from e


def _mean_row(name: str, scores: list) -> dict:
    row = {"name": name}
    for k in METRICS:
        row[k] = float(np.mean([s[k] for s in scores]))           # inf if any pair is identical
    row["count"] = len(scores)
    return row


def evaluate_folder(model: Optional[torch.nn.Module], folder, input_dir=None, target_dir=None,
                    tile: int = DEFAULT_TILE, overlap: int = DEFAULT_OVERLAP, limit: Optional[int] = None,
                    name: Optional[str] = None, progress: bool = True, mirror_ensemble: bool = False,
                    weather_scale: float = 1.0, keep_brightness: bool = False) -> dict:
    """Score `model` (None: the input-vs-target row only) on a paired folder.

    The model runs on its own device/dtype in eval mode (its mode is restored afterwards), through
    `restore_batch` (the service of the restore command and the Restore node) with `tile`/`overlap`,
    `mirror_ensemble`, `weather_scale` and `keep_brightness`.
    Returns a JSON-ready dict: folder, input_dir, target_dir, protocol, count, rows (input row, then
    the model row named `name`), images (per-file scores) and seconds.
    """
    inp_dir, tgt_dir = find_layout(folder, input_dir, target_dir)
    pairs = match_pairs(inp_dir, tgt_dir, limit)
    name = name or ("model" if model is not None else None)
    device = next(model.parameters()).device if model is not None else None
    was_training = model.training if model is not None else False
    if model is not None:
        model.eval()
    input_scores, model_scores, images = [], [], []
    t0 = time.perf_counter()
    try:
        for inp_path, tgt_path in tqdm(pairs, desc=f"evaluate {Path(folder or inp_dir).name}",
                                       unit="img", disable=not progress):
            degraded, clean = read_rgb(inp_path), read_rgb(tgt_path)
            if degraded.shape != clean.shape:
                raise ValueError(f"{inp_path.name}: input {degraded.shape} and target {clean.shape} differ "
                                 f"in size ({inp_path} vs {tgt_path}); crop them to the same size")
            entry = {"file": inp_path.name, "input": score_pair(degraded, clean)}
            input_scores.append(entry["input"])
            if model is not None:
                x = torch.from_numpy(degraded).permute(2, 0, 1)[None].to(device).float() / 255  # (1, 3, H, W)
                restored = restore_batch(model, x, tile=tile, overlap=overlap, mirror_ensemble=mirror_ensemble,
                                         weather_scale=weather_scale, keep_brightness=keep_brightness)
                pred = quantize(restored[0].permute(1, 2, 0))                         # (H, W, 3) uint8
                entry["model"] = score_pair(pred, clean)
                model_scores.append(entry["model"])
            images.append(entry)
    finally:
        if model is not None and was_training:
            model.train()
    rows = [_mean_row(INPUT_ROW, input_scores)]
    if model is not None:
        rows.append(_mean_row(name, model_scores))
    result = {"folder": str(folder) if folder is not None else None, "input_dir": str(inp_dir),
              "target_dir": str(tgt_dir), "protocol": PROTOCOL, "count": len(pairs),
              "tile": tile, "overlap": overlap, "mirror_ensemble": mirror_ensemble, "weather_scale": weather_scale,
              "keep_brightness": keep_brightness, "rows": rows, "images": images,
              "seconds": round(time.perf_counter() - t0, 2)}
    for row in rows:
        log.debug("%s: Y-PSNR %.2f dB, Y-SSIM %.4f, RGB-PSNR %.2f dB (%d images)",
                 row["name"], row["y_psnr"], row["y_ssim"], row["rgb_psnr"], row["count"])
    return result
