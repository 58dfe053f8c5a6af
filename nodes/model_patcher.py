"""Devices through ComfyUI's memory manager only (STYLE.md habit 6), never by hand.

A network is built on the offload device and wrapped in a ModelPatcher; before use, the nodes
ask comfy.model_management to load it (fully: these are plain torch modules, not comfy.ops ones,
so they cannot run half on the CPU) with room for one tile of activations.
"""
import logging

import torch
import comfy.model_management as mm
import comfy.model_patcher

from ..pipeline.precision import choose_dtype

log = logging.getLogger(__name__)

# rough activation bytes per pixel and per first-level channel of one tile; an out-of-memory
# error halves the tile anyway, so this only decides how much memory to free beforehand
ACTIVATION_FACTOR = 64


def load_device() -> torch.device:
    return mm.get_torch_device()


def offload_device() -> torch.device:
    return mm.unet_offload_device()


def pick_dtype(precision: str) -> torch.dtype:
    dev = load_device()
    return choose_dtype(precision, dev.type, fp16_ok=mm.should_use_fp16(dev), bf16_ok=mm.should_use_bf16(dev))


def wrap(module: torch.nn.Module, dtype: torch.dtype):
    """module on the offload device in `dtype`, inside a new ModelPatcher."""
    module = module.to(device=offload_device(), dtype=dtype).eval()
    return comfy.model_patcher.ModelPatcher(module, load_device=load_device(), offload_device=offload_device())


# hub.clip_loader caches CLIP models for the life of the process; two patchers moving one module
# behind each other's back would leave it on the wrong device, so such a module gets one patcher
_shared = {}


def wrap_shared(module: torch.nn.Module, dtype: torch.dtype):
    """wrap() for a module that lives in a process-wide cache: the same patcher every time."""
    if id(module) not in _shared:
        _shared[id(module)] = wrap(module, dtype)
    return _shared[id(module)]


def activation_bytes(restorer, tile: int) -> int:
    elem = next(restorer.parameters()).element_size()
    return tile * tile * restorer.cfg.dims[0] * elem * ACTIVATION_FACTOR


def load(patchers, memory_required: int = 0) -> None:
    """Put the patchers' models on the load device, freeing `memory_required` more bytes."""
    mm.load_models_gpu(list(patchers), memory_required=memory_required, force_full_load=True)


def intermediate(t: torch.Tensor) -> torch.Tensor:
    return t.to(mm.intermediate_device())
