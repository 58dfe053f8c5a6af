"""Get a ready restorer for a command: weights from the manifest or a file, on a device, in a dtype.

    --weights ID_OR_FILE   a manifest id (bundled file, verified against its sha256) or a
                           .safetensors path; default: the manifest's default restorer entry
    --device auto|cpu|cuda|cuda:N|mps     auto = cuda, then mps, then cpu
    --precision auto|fp32|fp16|bf16       auto = fp32 on cpu, bf16 on cuda where supported else
                                          fp16, fp16 on mps
"""
import dataclasses
import logging
from pathlib import Path
from typing import Optional

import torch

from ..hub import manifest
from ..models.weights_io import WeightsError, load_restorer
from ..models.device import pick_device

log = logging.getLogger(__name__)

DTYPES = {"fp32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}


@dataclasses.dataclass
class WeightsChoice:
    path: Path
    entry: Optional[dict]               # the manifest entry, None for a file outside the manifest

    @property
    def label(self) -> str:
        return self.entry["id"] if self.entry else str(self.path)


def pick_dtype(precision: str, device: torch.device) -> torch.dtype:
    if precision != "auto":
        if precision not in DTYPES:
            raise ValueError(f"--precision {precision!r}: choose auto, {', '.join(DTYPES)}")
        if device.type == "cpu" and precision == "fp16":
            log.warning("fp16 on the CPU is slow and imprecise; fp32 (or bf16) is the better choice there")
        return DTYPES[precision]
    if device.type == "cuda":
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    if device.type == "mps":
        return torch.float16
    return torch.float32


def default_restorer_entry() -> dict:
    found = manifest.entries("restorer")
    if not found:
        raise WeightsError(
            f"no bundled weights: {manifest.MANIFEST_PATH.name} has no entry of kind 'restorer' yet; "
            f"pass --weights FILE (a .safetensors file written by `python weather.py export`)")
    return next((e for e in found if e.get("default")), found[0])


def choose_weights(spec: Optional[str]) -> WeightsChoice:
    """Resolve --weights: None -> default manifest entry; an existing path -> that file; else a manifest id."""
    if spec is None:
        entry = default_restorer_entry()
    else:
        path = Path(spec).expanduser()
        if path.is_file():
            return WeightsChoice(path, None)
        if path.suffix == ".safetensors" or "/" in spec or "\\" in spec:
            raise WeightsError(f"--weights {spec}: no such file")
        try:
            entry = manifest.find_entry(spec)
        except KeyError as e:
            raise WeightsError(f"--weights {spec}: neither a file nor a manifest id ({e.args[0]})") from None
    path = manifest.bundled_path(entry)
    if path is None:
        raise WeightsError(
            f"weights entry '{entry['id']}' is not bundled with the pack (it is downloaded from "
            f"{entry.get('hub', {}).get('repo', 'a model hub')}); download the file and pass --weights FILE")
    return WeightsChoice(path, entry)


def load_model(spec: Optional[str], device: str = "auto", precision: str = "auto"):
    """-> (WeatherRestorer in eval mode, WeightsChoice). Manifest files are verified before loading."""
    choice = choose_weights(spec)
    if choice.entry is not None:
        manifest.verify_file(choice.path, choice.entry)
    dev = pick_device(device)
    model = load_restorer(choice.path, device=dev, dtype=pick_dtype(precision, dev))
    return model, choice


def add_model_arguments(p, weights_help: str = "") -> None:
    p.add_argument("--weights", default=None, metavar="ID_OR_FILE",
                   help=weights_help or "manifest id or .safetensors file (default: the bundled default restorer)")
    p.add_argument("--device", default="auto", help="auto (cuda, then mps, then cpu) | cpu | cuda | cuda:N | mps")
    p.add_argument("--precision", default="auto", choices=["auto", *DTYPES],
                   help="auto = fp32 on cpu, bf16/fp16 on gpu")
    p.add_argument("--threads", type=int, default=None, help="CPU threads for torch (default: torch's choice)")


def apply_threads(threads) -> None:
    if threads is not None:
        if threads < 1:
            raise ValueError(f"--threads {threads}: need at least 1")
        torch.set_num_threads(threads)


def describe(model, choice: WeightsChoice) -> str:
    p = next(model.parameters())
    n = sum(t.numel() for t in model.parameters())
    return f"{choice.label} (config {model.cfg.name}, {n / 1e6:.2f} M params) on {p.device}, {str(p.dtype).replace('torch.', '')}"

