"""Inputs and steps shared by the nodes: the model and image sockets, the source choice, and
turning an IMAGE into the network layout with the checks every node makes."""
from typing import Optional, Tuple

import torch
from comfy_api.latest import io

from ..pipeline.layout import to_network
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
