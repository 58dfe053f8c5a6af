"""The precision choice of Load Weather Model: auto / fp32 / fp16 / bf16 -> torch dtype of the
weights, and the autocast dtype the network computes its convolutions and matrix products in.

auto is what is safe and fast for the device:
- CPU: fp32 weights; where the CPU has native bf16 instructions (AVX512-BF16 or AMX: AMD Zen 4,
  Intel Sapphire Rapids and later) the convolutions and matrix products run in bf16 under
  autocast, everything else in fp32. On such a CPU (AMD EPYC, 2 threads, weather-m-v4.7, 1 MP) that
  restored in 2.32-2.40 s against 2.72-2.93 s in fp32 (about 1.2x) with 15-20 % less peak memory,
  Rain100L +0.003 dB, HSTS -0.012 dB, a mean difference of 0.06 8-bit levels
  (docs/BENCHMARKS.md, "bf16 on the CPU").
- MPS: fp32.
- other accelerators: fp16 where the device runs it well (inside ComfyUI its own judgement, passed
  in as fp16_ok; on the command line `device_support`: CUDA compute capability 7 or above), else fp32.
auto never stores the weights in bf16: its 8-bit mantissa shows in the output (on the "s" config with
random weights and a 96x96 image, fp16 stayed within 0.002 of fp32 and bf16 within 0.017, four
8-bit levels; weather-m-v4.7 in bf16 weights on the CPU lost 0.074 dB on HSTS).
"""
import functools
import logging
from typing import Optional

import torch

from .layout import InputError

log = logging.getLogger(__name__)

PRECISIONS = ("auto", "fp32", "fp16", "bf16")
DTYPES = {"fp32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}


def native_bf16_in(cpuinfo: str) -> bool:
    """The CPU that a Linux `/proc/cpuinfo` file describes computes bf16 natively (AVX512-BF16 or
    AMX-BF16); False where the file cannot be read."""
    try:
        with open(cpuinfo, encoding="utf-8", errors="replace") as f:
            flags = next((line.split(":", 1)[1].split() for line in f if line.startswith("flags")), [])
    except OSError:
        return False
    return "avx512_bf16" in flags or "amx_bf16" in flags


@functools.lru_cache(maxsize=1)
def cpu_has_native_bf16() -> bool:
    """This machine's CPU computes bf16 natively (read once; False off Linux: fp32 stays the choice there)."""
    return native_bf16_in("/proc/cpuinfo")


def device_support(device: torch.device):
    """(fp16_ok, bf16_ok) of a device outside ComfyUI: fp16 on CUDA GPUs with tensor cores
    (compute capability >= 7) and on MPS, bf16 where torch says the device has it (on the CPU:
    where it has native bf16 instructions)."""
    if device.type == "cuda":
        return torch.cuda.get_device_capability(device)[0] >= 7, torch.cuda.is_bf16_supported()
    if device.type == "mps":
        return True, False
    if device.type == "cpu":
        return False, cpu_has_native_bf16()
    return False, True


def pick_dtype(precision: str, device: torch.device) -> torch.dtype:
    """choose_dtype for a torch device, with `device_support` as the judgement (the command line)."""
    return choose_dtype(precision, device.type, *device_support(device))


def choose_autocast(precision: str, device_type: str) -> Optional[torch.dtype]:
    """The dtype the network computes its convolutions and matrix products in under autocast, or
    None (its weights' dtype throughout): bf16 for auto on a CPU that computes bf16 natively. The
    same judgement inside ComfyUI and out: ComfyUI's own bf16 judgement is about bf16 weights, which
    it keeps off the CPU (as auto does)."""
    return torch.bfloat16 if precision == "auto" and device_type == "cpu" and cpu_has_native_bf16() else None


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
        log.warning("precision %s weights on the CPU are slower and coarser than auto (fp32 weights%s)", precision,
                    ", bf16 convolutions: this CPU computes bf16 natively" if cpu_has_native_bf16() else "")
    elif precision == "bf16" and not bf16_ok:
        raise InputError(f"precision bf16 is not supported on this {device_type} device; choose auto, fp16 or fp32")
    elif precision == "fp16" and not fp16_ok:
        log.warning("precision fp16 may be slow or inaccurate on this %s device; auto picks fp32 here", device_type)
    return DTYPES[precision]
