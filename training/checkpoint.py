"""Resumable training checkpoints, written atomically.

A checkpoint holds everything that decides what the next step does: model, EMA, optimizer,
scheduler, step, RNG states (python, numpy, torch, cuda) and the train config. It is written to
`<name>.tmp` in the same folder, flushed to disk, then moved over `<name>` with os.replace, so a
run killed at any moment leaves either the old checkpoint or the new one, never half of one.
"""
import logging
import os
import random
from pathlib import Path

import numpy as np
import torch

log = logging.getLogger(__name__)


def rng_state() -> dict:
    # numpy's key array travels as a tensor, so the checkpoint loads with weights_only=True
    name, keys, pos, has_gauss, cached = np.random.get_state()
    state = {"python": random.getstate(), "numpy": (name, torch.from_numpy(keys.astype(np.int64)), int(pos),
                                                    int(has_gauss), float(cached)),
             "torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict) -> None:
    random.setstate(state["python"])
    name, keys, pos, has_gauss, cached = state["numpy"]
    keys = keys.numpy() if torch.is_tensor(keys) else np.asarray(keys)
    np.random.set_state((name, keys.astype(np.uint32), pos, has_gauss, cached))
    # RNG states are CPU byte tensors; a checkpoint loaded with map_location="cuda" moved them
    torch.set_rng_state(state["torch"].cpu())
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all([s.cpu() for s in state["cuda"]])


def save_atomic(obj, path) -> Path:
    """torch.save to a temp file, fsync, then os.replace over `path`."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "wb") as f:
        torch.save(obj, f)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
    return path


def load_checkpoint(path, map_location="cpu") -> dict:
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint not found: {path}; train without --resume to start a new run")
    try:
        ckpt = torch.load(path, map_location=map_location, weights_only=True)   # never unpickle code
    except Exception as e:  # noqa: BLE001 - any unpickling failure means a bad file
        raise RuntimeError(f"checkpoint {path} is unreadable ({e}); resume from another checkpoint "
                           f"or start again") from e
    if not isinstance(ckpt, dict):
        raise RuntimeError(f"{path} is not a training checkpoint of this pack (it holds a {type(ckpt).__name__})")
    missing = [k for k in ("model", "ema", "optimizer", "scheduler", "step", "rng", "config") if k not in ckpt]
    if missing:
        raise RuntimeError(f"{path} is not a training checkpoint of this pack (missing {missing})")
    return ckpt
