"""Inputs and steps shared by the nodes: the model and image sockets, the source choice, turning
an IMAGE into the network layout with the checks every node makes, and ComfyUI's progress bar and
Cancel button for the pipeline's `on_progress` / `should_stop` callbacks."""
import contextlib
from typing import Callable, Optional, Tuple

import comfy.model_management as mm
import comfy.utils
import torch
from comfy_api.latest import io

from ..pipeline.layout import to_network
from ..pipeline.memory import OOM_ERRORS
from ..pipeline.signals import SOURCES
from .types import WeatherModelType


def model_input() -> io.Input:
    return WeatherModelType.Input("weather_model", tooltip="Output of Load Weather Model.")


def image_input(tooltip: str = "Image batch (B, H, W, C); every image is processed.") -> io.Input:
    return io.Image.Input("image", tooltip=tooltip)


def source_input(what: str) -> io.Input:
    return io.Combo.Input(
        "source", options=list(SOURCES), default="auto",
        tooltip=f"Who estimates the {what}: 'clip' (the CLIP model chosen in Load Weather Model), 'learned' "
                f"(the restorer's own head, no CLIP needed) or 'auto' (CLIP when loaded, else learned).")


def network_image(image: torch.Tensor, model) -> Tuple[torch.Tensor, Optional[torch.Tensor]]:
    """IMAGE (B, H, W, C) -> rgb (B, 3, H, W) float32 and alpha (any size: the network pads to its stride)."""
    return to_network(image, "image")


def progress_bar() -> Callable[[int, int], None]:
    """on_progress(done, total) that moves this node's progress bar (shown from the first call,
    which the pipeline makes with done = 0 before any work)."""
    bar = comfy.utils.ProgressBar(1)
    return lambda done, total: bar.update_absolute(done, max(1, total))


def should_stop() -> bool:
    return mm.processing_interrupted()


@contextlib.contextmanager
def interruptible():
    """Turn the pipeline's InterruptedError (raised when should_stop() said yes) into ComfyUI's own
    interrupt exception, so Cancel reads as a cancel and not as a failed node."""
    try:
        yield
    except InterruptedError:
        mm.throw_exception_if_processing_interrupted()
        raise


def oom_errors() -> tuple:
    """torch's out-of-memory errors plus ComfyUI's, unless ComfyUI's is plain Exception (no CUDA):
    never treat every error as out-of-memory."""
    extra = () if mm.OOM_EXCEPTION is Exception else (mm.OOM_EXCEPTION,)
    return tuple(dict.fromkeys(OOM_ERRORS + extra))


def learned_kwargs() -> dict:
    """The ComfyUI side of pipeline.signals.learned_prior_density: progress, Cancel, memory."""
    return dict(on_progress=progress_bar(), should_stop=should_stop, oom_errors=oom_errors(),
                on_oom=lambda tile: mm.soft_empty_cache())
