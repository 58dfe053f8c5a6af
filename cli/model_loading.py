"""Get a ready restorer for a command: the same choices and checks as Load Weather Model.

    --weights ID_OR_FILE   a manifest id (bundled file) or a .safetensors path; default: the
                           manifest's default restorer (pipeline.weights.default_restorer, the entry
                           marked "default": true). Every file is verified against the manifest
                           (pipeline.weights.load_verified): a bundled file, or any file carrying a
                           manifest file name, must match its sha256.
    --device auto|cpu|cuda|cuda:N|mps     auto = cuda, then mps, then cpu (models.device)
    --precision auto|fp32|fp16|bf16       pipeline.precision: auto = fp32 on cpu and mps, fp16 on
                                          GPUs with tensor cores, else fp32; never bf16
"""
import dataclasses
import logging
from pathlib import Path
from typing import Optional

import torch

from ..hub import manifest
from ..models.device import pick_device
from ..pipeline.memory import MIN_TILE
from ..pipeline.precision import PRECISIONS, choose_autocast, pick_dtype
from ..pipeline.restore import DEFAULT_OVERLAP, DEFAULT_TILE
from ..pipeline.weights import choose_cli_weights, load_verified

log = logging.getLogger(__name__)

__all__ = ["WeightsChoice", "add_ensemble_argument", "add_model_arguments", "add_tile_arguments", "apply_threads", "choose_weights", "describe", "load_model",
           "pick_device", "pick_dtype"]


@dataclasses.dataclass
class WeightsChoice:
    path: Path
    entry: Optional[dict]               # the manifest entry, None for a file outside the manifest

    @property
    def label(self) -> str:
        return self.entry["id"] if self.entry else str(self.path)


def choose_weights(spec: Optional[str], manifest_path: Path = manifest.MANIFEST_PATH) -> WeightsChoice:
    """--weights -> WeightsChoice (not yet verified); see pipeline.weights.choose_cli_weights."""
    return WeightsChoice(*choose_cli_weights(spec, manifest_path))


def load_model(spec: Optional[str], device: str = "auto", precision: str = "auto",
               manifest_path: Path = manifest.MANIFEST_PATH):
    """-> (WeatherRestorer in eval mode, WeightsChoice with the entry that vouches for the file)."""
    choice = choose_weights(spec, manifest_path)
    dev = pick_device(device)
    model, entry = load_verified(choice.path, choice.entry, dev, pick_dtype(precision, dev), manifest_path)
    model.autocast_dtype = choose_autocast(precision, dev.type)
    return model, WeightsChoice(choice.path, entry)


def add_model_arguments(p, weights_help: str = "") -> None:
    p.add_argument("--weights", default=None, metavar="ID_OR_FILE",
                   help=weights_help or "manifest id or .safetensors file (default: the manifest's default restorer)")
    p.add_argument("--device", default="auto", help="auto (cuda, then mps, then cpu) | cpu | cuda | cuda:N | mps")
    p.add_argument("--precision", default="auto", choices=list(PRECISIONS),
                   help="auto = fp32 weights on cpu (bf16 convolutions under autocast where the CPU computes bf16 natively) "
                        "and mps, fp16 on GPUs with tensor cores (never bf16 weights)")
    p.add_argument("--threads", type=int, default=None, help="CPU threads for torch (default: torch's choice)")


def add_tile_arguments(p, overlap: bool = True) -> None:
    """--tile (and --overlap) with the pipeline's defaults, the same for every command."""
    p.add_argument("--tile", type=int, default=DEFAULT_TILE,
                   help=f"tile side in pixels (default {DEFAULT_TILE}, at least {MIN_TILE}; smaller = less memory)")
    if overlap:
        p.add_argument("--overlap", type=int, default=DEFAULT_OVERLAP,
                       help=f"overlap of neighbouring tiles in pixels (default {DEFAULT_OVERLAP})")


def add_ensemble_argument(p) -> None:
    """--mirror-ensemble, the same for restore, evaluate and bench (pipeline.restore.restore_batch's mirror_ensemble)."""
    p.add_argument("--mirror-ensemble", action="store_true",
                   help="restore every tile as it is and mirrored left-right and average the two: "
                        "a little cleaner (Rain100L +0.2 dB) for 2x the time (docs/BENCHMARKS.md)")


def add_weather_scale_argument(p) -> None:
    """--weather-scale, the same for restore, evaluate and bench (restore_batch's weather_scale)."""
    p.add_argument("--weather-scale", type=float, default=1.0, metavar="S",
                   help="rain drawn S times larger than the network learned it (about 480x320 photos): a first pass "
                        "on a copy shrunk by S removes it, then the full-resolution pass; 2-3 for large photos "
                        "whose streaks are several pixels wide (default 1: off; docs/BENCHMARKS.md)")


def add_keep_brightness_argument(p) -> None:
    """--keep-brightness, the same for restore and evaluate (restore_batch's keep_brightness)."""
    p.add_argument("--keep-brightness", action="store_true",
                   help="take back the smooth brightness change and keep the fine one (streaks, flakes): real rainy "
                        "photos otherwise come back up to 19 grey levels darker; it also undoes haze "
                        "removal, so not for misty photos (docs/BENCHMARKS.md)")


def apply_threads(threads) -> None:
    if threads is not None:
        if threads < 1:
            raise ValueError(f"--threads {threads}: need at least 1")
        torch.set_num_threads(threads)


def dtype_name(dtype: torch.dtype) -> str:
    """torch.bfloat16 -> 'bfloat16'."""
    return str(dtype).replace("torch.", "")


def describe(model, choice: WeightsChoice) -> str:
    p = next(model.parameters())
    n = sum(t.numel() for t in model.parameters())
    dt = getattr(model, "autocast_dtype", None)
    mixed = f", {dtype_name(dt)} autocast" if dt else ""
    return f"{choice.label} (config {model.cfg.name}, {n / 1e6:.2f} M params) on {p.device}, {dtype_name(p.dtype)}{mixed}"
