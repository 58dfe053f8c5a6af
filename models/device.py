"""The one device rule of the command line and the trainer (ComfyUI nodes use comfy.model_management)."""
import torch


DEVICE_CHOICES = "auto, cpu, cuda, cuda:N, mps"


def parse_device(name: str) -> torch.device:
    """A --device spelling other than 'auto' -> torch.device, ValueError listing the choices for any other."""
    try:
        dev = torch.device(name)
    except (RuntimeError, TypeError, ValueError):
        dev = None
    if dev is None or dev.type not in ("cpu", "cuda", "mps"):
        raise ValueError(f"--device {name}: not a device; choose one of {DEVICE_CHOICES}")
    return dev


def pick_device(name: str = "auto", cuda_index: int = 0) -> torch.device:
    """'auto' -> CUDA (device `cuda_index`), else Apple MPS, else CPU; otherwise the device torch spells
    (`cpu`, `cuda:1`), refused with a clear error when it is no device or this machine does not have it."""
    if name != "auto":
        dev = parse_device(name)
        if dev.type == "cuda" and not torch.cuda.is_available():
            raise ValueError(f"--device {name}: this torch build sees no CUDA GPU; use --device cpu or auto")
        if dev.type == "mps" and not torch.backends.mps.is_available():
            raise ValueError(f"--device {name}: MPS is not available here; use --device cpu or auto")
        return dev
    if torch.cuda.is_available():
        return torch.device("cuda", cuda_index)
    if torch.backends.mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")


def empty_cache(device: torch.device) -> None:
    """Give cached, unused accelerator memory back before an out-of-memory retry (the command line's
    `on_oom`; inside ComfyUI comfy.model_management.soft_empty_cache does this)."""
    if device.type == "cuda":
        torch.cuda.empty_cache()
    elif device.type == "mps":
        torch.mps.empty_cache()
