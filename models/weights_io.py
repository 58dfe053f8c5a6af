"""Save and load the restorer as `.safetensors`, config in the file's metadata, strictly.

A file alone rebuilds its network: metadata["config"] is the RestorerConfig JSON. Loading is
strict; a mismatch raises WeightsError listing the missing and unexpected keys. Metadata is
untrusted: the config is validated (types and ranges) and the network is first built on the meta
device and matched against the file's tensor names and shapes, so no memory is spent on a file
that does not fit.
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
    try:
        return RestorerConfig.from_json(meta["config"])
    except ValueError as e:                                     # names the field and the value
        raise WeightsError(f"{path}: bad restorer config in its metadata: {e}; the file is damaged or not "
                           f"written by this pack; download it again or re-export it") from None


def in_modules(name: str, modules) -> bool:
    """Whether a parameter / state key belongs to one of the named modules (prefixes, e.g. "density_head")."""
    return any(name.startswith(m + ".") for m in modules)


def check_fits(expected: dict, given: dict, source, new_modules=()) -> None:
    """WeightsError unless `given` {key: shape} has every key and shape of `expected` and no other
    key; keys under `new_modules` (name prefixes, modules added on top of the file's network and
    trained from their own initialisation) may be absent."""
    missing = sorted(k for k in set(expected) - set(given) if not in_modules(k, new_modules))
    unexpected = sorted(set(given) - set(expected))
    if missing or unexpected:
        raise WeightsError(
            f"{source} does not fit the network: {len(missing)} missing keys {missing[:8]}, "
            f"{len(unexpected)} unexpected keys {unexpected[:8]}; the file was made for another config")
    shapes = [f"{k} {tuple(given[k])} (network {tuple(expected[k])})" for k in sorted(given)
              if tuple(given[k]) != tuple(expected[k])]
    if shapes:
        raise WeightsError(f"{source} does not fit the network: {len(shapes)} tensors of another shape, "
                           f"{shapes[:4]}; the file was made for another config")


def load_state_strict(model: torch.nn.Module, state: dict, source, new_modules=()) -> None:
    """Load every key strictly (`check_fits`), then the weights. Modules under `new_modules` keep the
    network's own initialisation even where the file has them (e.g. a wider refiner than the file's)."""
    if not isinstance(state, dict) or not all(torch.is_tensor(v) for v in state.values()):
        raise WeightsError(f"{source} holds no state dict of tensors; choose a checkpoint or weights file of this pack")
    state = {k: v for k, v in state.items() if not in_modules(k, new_modules)}
    own = model.state_dict()
    check_fits({k: v.shape for k, v in own.items()}, {k: v.shape for k, v in state.items()}, source, new_modules)
    model.load_state_dict({**own, **state}, strict=True)


def load_restorer(path, device=None, dtype: Optional[torch.dtype] = None) -> WeatherRestorer:
    """Rebuild the network from the file's config and load its weights strictly (eval mode)."""
    cfg = read_config(path)
    try:
        with safe_open(str(path), framework="pt") as f:         # names and shapes only, no tensor data
            shapes = {k: f.get_slice(k).get_shape() for k in f.keys()}
        blueprint = WeatherRestorer(cfg, device="meta")         # allocates nothing
        check_fits({k: v.shape for k, v in blueprint.state_dict().items()}, shapes, path)
        state = load_file(str(path))
    except (SafetensorError, OSError, ValueError) as e:
        raise WeightsError(f"{path} is corrupt ({e}); download or copy it again") from e
    model = WeatherRestorer(cfg)
    model.load_state_dict(state, strict=True)                  # keys and shapes were checked on the blueprint
    return model.to(device=device, dtype=dtype).eval()
