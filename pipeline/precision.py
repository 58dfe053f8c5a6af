"""The precision choice of Load Weather Model: auto / fp32 / fp16 / bf16 -> torch dtype.

auto is what is safe for the device: fp32 on CPU and MPS; on other accelerators fp16 where the
device runs it well (inside ComfyUI its own judgement, passed in as fp16_ok; on the command line
`device_support`: CUDA compute capability 7 or above), else fp32. auto never picks
bf16: its 8-bit mantissa shows in the output (on the "s" config with random weights and a 96x96
image, fp16 stayed within 0.002 of fp32 and bf16 within 0.017, four 8-bit levels).
"""
import logging

import torch

from .layout import InputError

log = logging.getLogger(__name__)

PRECISIONS = ("auto", "fp32", "fp16", "bf16")
DTYPES = {"fp32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}


def device_support(device: torch.device):
    """(fp16_ok, bf16_ok) of a device outside ComfyUI: fp16 on CUDA GPUs with tensor cores
    (compute capability >= 7) and on MPS, bf16 where torch says the device has it."""
    if device.type == "cuda":
        return torch.cuda.get_device_capability(device)[0] >= 7, torch.cuda.is_bf16_supported()
    if device.type == "mps":
        return True, False
    return False, True


def pick_dtype(precision: str, device: torch.device) -> torch.dtype:
    """choose_dtype for a torch device, with `device_support` as the judgement (the command line)."""
    return choose_dtype(precision, device.type, *device_support(device))


def choose_dtype(precision: str, device_type: str, fp16_ok: bool, bf16_ok: bool) -> torch.dtype:
    if precision not in PRECISIONS:
        raise InputError(f"precision must be one of {', '.join(PRECISIONS)}; got '{precision}'")
    if precision == "auto":
        if device_type in ("cpu", "mps"):
            return torch.float32
        return torch.float16 if fp16_ok else torch.float32
    if precision == "fp32":
        return torch.float32
    if device_type == "cpu":
        log.warning("precision %s on the CPU is slow; auto (fp32) is faster there", precision)
    elif precision == "bf16" and not bf16_ok:
        raise InputError(f"precision bf16 is not supported on this {device_type} device; choose auto, fp16 or fp32")
    elif precision == "fp16" and not fp16_ok:
        log.warning("precision fp16 may be slow or inaccurate on this %s device; auto picks fp32 here", device_type)
    return DTYPES[precision]
