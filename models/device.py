"""The one device rule of the command line and the trainer (ComfyUI nodes use comfy.model_management)."""
import torch


def pick_device(name: str = "auto", cuda_index: int = 0) -> torch.device:
    """'auto' -> CUDA (device `cuda_index`), else Apple MPS, else CPU; otherwise the device torch spells
    (`cpu`, `cuda:1`), refused with a clear error when this machine does not have it."""
    if name != "auto":
        dev = torch.device(name)
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
