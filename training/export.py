"""Trained checkpoint -> `.safetensors` (EMA weights, config in metadata) and its manifest entry.

The entry records what DESIGN.md asks of every weight file: id, file, full sha256, bytes,
architecture config, licence, training data and setup (steps, teacher, CLIP used, NLCL), and the
scores that `evaluate_folder` measured on the given paired folders (input-vs-target beside them).
`write_manifest_entry` adds it to weights_manifest.json, replacing an entry with the same id.
"""
import dataclasses
import json
import logging
import os
from pathlib import Path
from typing import Dict, Optional, Sequence, Tuple

import torch

from ..hub.manifest import MANIFEST_PATH, PACK_ROOT, sha256_file
from ..models import WeatherRestorer
from ..models.config import RestorerConfig
from ..models.weights_io import WeightsError, load_restorer, load_state_strict, save_restorer
from ..pipeline.restore import DEFAULT_OVERLAP, DEFAULT_TILE
from .checkpoint import load_checkpoint
from .drop_stage import load_stage_checkpoint

log = logging.getLogger(__name__)
SCORE_KEYS = ("y_psnr", "y_ssim", "rgb_psnr")
DEFAULT_LICENCE = "research-only"
DEFAULT_NOTES = ("Trained by this pack on weather synthesized over research-licensed photos (BSDS500, Urban100, "
                 "Sun-Hays 80, Set5/14, Kodak) and CC-BY/GPL wallpapers; see `trained_on`.")


def model_from_checkpoint(path, ema: bool = True):
    """(WeatherRestorer in eval mode with the checkpoint's EMA or raw weights, the checkpoint dict)."""
    ck = load_checkpoint(path)
    try:
        cfg = RestorerConfig.from_json(ck.get("model_config", "null"))
    except ValueError as e:
        raise WeightsError(f"{path}: no valid model_config in the checkpoint ({e}); export a checkpoint "
                           f"written by `python weather.py train`") from None
    state = ck["model"]
    if ema:
        state = ck["ema"].get("model") if isinstance(ck["ema"], dict) else None
    model = WeatherRestorer(cfg)
    load_state_strict(model, state, f"{path} ({'EMA' if ema else 'raw'} weights)")
    return model.eval(), ck


def training_summary(ck: dict, ema: bool = True) -> dict:
    """What the weights were trained on and how, from the checkpoint's train config."""
    tc = ck["config"]
    nlcl = tc.get("nlcl", {})
    teacher = tc.get("teacher", {})
    return {
        "train_config": tc.get("name"),
        "steps": int(ck["step"]),
        "train_seconds": round(float(ck.get("elapsed", 0.0)), 1),
        "crop": tc.get("crop"), "batch": tc.get("batch"),
        "weights": "EMA" if ema else "raw",
        "data": [str(r) for r in tc.get("data_roots", [])],
        "synthesis_recipes": tc.get("recipe_weights") or "synthesizer defaults",
        "real_unpaired": nlcl.get("real_root") if nlcl.get("enabled") else None,
        "teacher": teacher.get("kind"),
        "clip": teacher.get("clip") if teacher.get("kind") == "clip" else None,
        "init_weights": tc.get("init_weights"),
        **({"blended_with": ck["blended_with"]} if "blended_with" in ck else {}),
        **({"drop_stage": ck["drop_stage"]} if "drop_stage" in ck else {}),
    }


# config fields of modules a checkpoint may add on top of the network it blends with (they keep its weights)
ADDED_MODULE_FIELDS = {"density_refiner": ("density_refine", "density_refine_blocks", "density_refine_scale"),
                       "drop_stage": ("drop_stage",)}


def _without_added_modules(cfg: RestorerConfig) -> str:
    fields = {f: getattr(RestorerConfig(), f) for group in ADDED_MODULE_FIELDS.values() for f in group}
    return dataclasses.replace(cfg, name="", **fields).to_json()


def blend_weights(model: WeatherRestorer, blends: Sequence[Tuple[str, float]]) -> WeatherRestorer:
    """model's floating-point weights <- (1 - sum of shares) x its own + share_i x those of weights file i,
    each of the same network (a model soup: weights of one lineage, averaged, often keep the strengths of
    all). Buffers that are not floating point stay model's. A file's network may lack a module that the
    model adds on top of it (ADDED_MODULE_FIELDS: the density refiner); that module keeps the model's weights."""
    shares = [float(share) for _, share in blends]
    if not blends or not all(0 < s < 1 for s in shares) or sum(shares) >= 1:
        raise ValueError(f"blend shares must each be between 0 and 1 and leave the checkpoint a share; "
                         f"got {shares}, which sum to {sum(shares):g}")
    added, theirs = set(), []
    for path, share in blends:
        other = load_restorer(path)
        lacks = {m for m in ADDED_MODULE_FIELDS if getattr(model, m, None) is not None and getattr(other, m, None) is None}
        # nothing added: the very same config; else the same apart from the added modules' fields (and the name)
        same = _without_added_modules(other.cfg) == _without_added_modules(model.cfg) if lacks else \
            other.cfg.to_json() == model.cfg.to_json()
        if not same:
            raise WeightsError(f"{path} is a '{other.cfg.name}' network with another config than the checkpoint's "
                               f"'{model.cfg.name}'; blend only weights of the same network")
        added |= lacks
        theirs.append((other.state_dict(), share))
    own = 1 - sum(shares)
    with torch.no_grad():
        for name, value in model.state_dict().items():
            if value.is_floating_point() and name.split(".")[0] not in added:
                value.mul_(own)
                for state, share in theirs:
                    value.add_(state[name].to(value.dtype), alpha=share)
    return model


def attach_drop_stage(model: WeatherRestorer, checkpoint, ema: bool = True) -> Tuple[WeatherRestorer, dict]:
    """model with the EMA (or, ema=False, the raw) raindrop stage of a training/drop_stage.py checkpoint added
    (its config gets the stage's channels) -> (the new model in eval mode, what the entry records of the stage)."""
    state = load_stage_checkpoint(checkpoint)
    stage = state["ema" if ema else "stage"]
    dims, i = [], 0
    while f"enc.{i}.0.weight" in stage:
        dims.append(int(stage[f"enc.{i}.0.weight"].shape[0]))
        i += 1
    name = model.cfg.name if model.cfg.drop_stage else f"{model.cfg.name}+drops"
    staged = WeatherRestorer(dataclasses.replace(model.cfg, name=name, drop_stage=dims))
    own = {k: v for k, v in model.state_dict().items() if not k.startswith("drop_stage.")}
    load_state_strict(staged, {**own, **{f"drop_stage.{k}": v for k, v in stage.items()}}, checkpoint)
    return staged.eval(), {"checkpoint": str(checkpoint), "steps": int(state["step"]), "dims": dims,
                           "weights": "EMA" if ema else "raw"}


def export_checkpoint(checkpoint, out, entry_id: str, ema: bool = True, blend: Sequence[Tuple[str, float]] = (),
                      drop_stage=None, drop_stage_ema: bool = True):
    """Write the `.safetensors` file; returns (path, model, checkpoint dict). blend = [(weights file,
    share), ...]: the exported weights are the checkpoint's blended with those files' (blend_weights);
    drop_stage: a raindrop stage checkpoint added to them (attach_drop_stage)."""
    model, ck = model_from_checkpoint(checkpoint, ema)
    if blend:
        blend_weights(model, blend)
        ck = {**ck, "blended_with": [{"weights": str(path), "share": float(share)} for path, share in blend]}
    if drop_stage is not None:
        model, stage = attach_drop_stage(model, drop_stage, drop_stage_ema)
        ck = {**ck, "drop_stage": stage}
    meta = {"id": entry_id, "training": training_summary(ck, ema)}
    path = save_restorer(model, out, meta)
    log.info("wrote %s (%s weights of step %d)", path, "EMA" if ema else "raw", ck["step"])
    return path, model, ck


def measure_scores(model, folders: Dict[str, str], tile: int = DEFAULT_TILE, overlap: int = DEFAULT_OVERLAP,
                   limit: Optional[int] = None, progress: bool = True, clean: bool = False) -> dict:
    """name -> {folder, count, protocol, tile, overlap, input: {...}, model: {...}} from evaluate_folder.

    clean=True: do-no-harm scores; each folder holds clean photos, fed in and compared with
    themselves (input = target), so there is no input row and a model that harms nothing scores high.
    """
    from ..evaluation.evaluate import evaluate_folder
    scores = {}
    for name, folder in folders.items():
        kw = dict(tile=tile, overlap=overlap, limit=limit, name=name, progress=progress)
        if clean:
            res = evaluate_folder(model, None, input_dir=folder, target_dir=folder, **kw)
            entry = {"folder": f"{folder} (input = target)",
                     "what": "do-no-harm: clean photos in, compared with themselves"}
        else:
            res = evaluate_folder(model, folder, **kw)
            entry = {"folder": str(folder), "input": {k: round(res["rows"][0][k], 4) for k in SCORE_KEYS}}
        scores[name] = {**entry, "count": res["count"], "protocol": res["protocol"], "tile": tile,
                        "overlap": overlap, "model": {k: round(res["rows"][-1][k], 4) for k in SCORE_KEYS}}
    return scores


def manifest_entry(path, entry_id: str, model: WeatherRestorer, ck: dict, scores: dict, ema: bool = True,
                   licence: str = DEFAULT_LICENCE, notes: str = DEFAULT_NOTES) -> dict:
    path = Path(path).resolve()
    entry = {"id": entry_id, "kind": "restorer", "file_name": path.name}
    try:
        entry["path"] = path.relative_to(PACK_ROOT).as_posix()          # bundled with the pack
    except ValueError:
        entry["path"] = None
    trained_on = training_summary(ck, ema)
    entry.update({
        "sha256": sha256_file(path), "bytes": path.stat().st_size,
        "config": json.loads(model.cfg.to_json()), "licence": licence,
        "trained_on": trained_on, "clip": trained_on["clip"],
        "scores": scores, "notes": notes,
    })
    if entry["path"] is None:
        del entry["path"]
    return entry


def write_manifest_entry(entry: dict, manifest_path=MANIFEST_PATH, make_default: bool = False) -> Path:
    """Add `entry` to the manifest (replacing one with the same id), written atomically.
    make_default: it becomes the default restorer (the flag is taken off the other restorers)."""
    manifest_path = Path(manifest_path)
    data = json.loads(manifest_path.read_text())
    weights = data.setdefault("weights", [])
    if make_default:
        for other in weights:
            if other.get("kind") == entry["kind"]:
                other.pop("default", None)
        entry = {**entry, "default": True}
    ids = [e.get("id") for e in weights]
    if entry["id"] in ids:
        weights[ids.index(entry["id"])] = entry
    else:
        weights.append(entry)
    tmp = manifest_path.with_name(manifest_path.name + ".tmp")
    tmp.write_text(json.dumps(data, indent=2) + "\n")
    os.replace(tmp, manifest_path)
    log.info("%s entry '%s' in %s", "replaced" if entry["id"] in ids else "added", entry["id"], manifest_path)
    return manifest_path
