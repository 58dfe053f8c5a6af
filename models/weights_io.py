"""Save and load the restorer as `.safetensors`, config in the file's metadata, strictly.

A file alone rebuilds its network: metadata["config"] is the RestorerConfig JSON. Loading is
strict; a mismatch raises WeightsError listing the missing and unexpected keys.
"""
import json
from pathlib import Path
from typing import Optional

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file, safe_open

from .config import RestorerConfig
from .restorer import WeatherRestorer

FORMAT = "weather-restorer"


class WeightsError(RuntimeError):
    """A weights file is missing, corrupt, or does not fit the network; the message says which and why."""


def save_restorer(model: WeatherRestorer, path, metadata: Optional[dict] = None) -> Path:
    """Write the model's weights (float32 unless the model is another dtype) and config."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    meta = {"format": FORMAT, "config": model.cfg.to_json()}
    meta.update({k: v if isinstance(v, str) else json.dumps(v) for k, v in (metadata or {}).items()})
    state = {k: v.detach().contiguous().cpu() for k, v in model.state_dict().items()}
    tmp = path.with_suffix(path.suffix + ".tmp")
    save_file(state, str(tmp), metadata=meta)
    tmp.replace(path)                                           # atomic: no half-written weights
    return path


def read_metadata(path) -> dict:
    path = Path(path)
    if not path.is_file():
        raise WeightsError(f"weights file not found: {path}")
    try:
        with safe_open(str(path), framework="pt") as f:
            return dict(f.metadata() or {})
    except (SafetensorError, OSError, ValueError) as e:
        raise WeightsError(f"{path} is not a readable .safetensors file ({e}); download or copy it again") from e


def read_config(path) -> RestorerConfig:
    meta = read_metadata(path)
    if meta.get("format") != FORMAT or "config" not in meta:
        raise WeightsError(
            f"{path} is a .safetensors file but not weather-restorer weights (no 'config' in its metadata); "
            f"choose a file written by `python weather.py export` or bundled with the pack")
    return RestorerConfig.from_json(meta["config"])


def in_modules(name: str, modules) -> bool:
    """Whether a parameter / state key belongs to one of the named modules (prefixes, e.g. "density_head")."""
    return any(name.startswith(m + ".") for m in modules)


def load_state_strict(model: torch.nn.Module, state: dict, source, new_modules=()) -> None:
    """Load every key strictly; keys under `new_modules` (name prefixes, modules added on top of the
    file's network and trained from their own initialisation) may be absent from the file."""
    expected, given = set(model.state_dict()), set(state)
    missing = sorted(k for k in expected - given if not in_modules(k, new_modules))
    unexpected = sorted(given - expected)
    if missing or unexpected:
        raise WeightsError(
            f"{source} does not fit the network: {len(missing)} missing keys {missing[:8]}, "
            f"{len(unexpected)} unexpected keys {unexpected[:8]}; the file was made for another config")
    try:
        model.load_state_dict({**model.state_dict(), **state}, strict=True)
    except RuntimeError as e:                                   # shape mismatches
        raise WeightsError(f"{source} does not fit the network: {e}") from e


def load_restorer(path, device=None, dtype: Optional[torch.dtype] = None) -> WeatherRestorer:
    """Rebuild the network from the file's config and load its weights strictly (eval mode)."""
    cfg = read_config(path)
    try:
        state = load_file(str(path))
    except (SafetensorError, OSError, ValueError) as e:
        raise WeightsError(f"{path} is corrupt ({e}); download or copy it again") from e
    model = WeatherRestorer(cfg)
    load_state_strict(model, state, path)
    return model.to(device=device, dtype=dtype).eval()
