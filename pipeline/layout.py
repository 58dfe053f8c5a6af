"""ComfyUI image layout (B, H, W, C) <-> network layout (B, 3, H, W), with the checks a user needs.

ComfyUI IMAGE tensors are float (B, H, W, C) in [0, 1], normally C = 3. A grey image (C = 1) is
repeated to RGB; an RGBA image (C = 4) is restored in RGB and its alpha passed through unchanged.
Other channel counts, empty images and batches of mixed sizes are refused with an error that names
the input and the fix. Any size of at least 1 x 1 works: the network pads to its stride.
"""
from typing import Optional, Sequence, Tuple, Union

import torch


class InputError(ValueError):
    """A node input has the wrong shape, size, batch or value; the message names it and the fix."""


def as_image_batch(image: Union[torch.Tensor, Sequence[torch.Tensor]], name: str = "image") -> torch.Tensor:
    """A (B, H, W, C) tensor, or a list of (H, W, C) / (1, H, W, C) images of one size -> (B, H, W, C)."""
    if isinstance(image, torch.Tensor):
        if image.ndim == 3:                                     # (H, W, C): one image without batch axis
            image = image[None]
        if image.ndim != 4:
            raise InputError(f"{name} must be an IMAGE of shape (B, H, W, C); got {tuple(image.shape)}")
        return image
    items = [as_image_batch(t, name) for t in image]
    if not items:
        raise InputError(f"{name} is an empty list; connect at least one image")
    sizes = sorted({tuple(t.shape[1:3]) for t in items})
    if len(sizes) > 1:
        raise InputError(
            f"{name} is a batch of mixed sizes {', '.join(f'{h}x{w}' for h, w in sizes)} (H x W); resize them to "
            f"one size first (e.g. the 'Upscale Image' node) or run them one at a time")
    channels = sorted({t.shape[-1] for t in items})
    if len(channels) > 1:
        raise InputError(f"{name} mixes images with {channels} channels; convert them all to RGB first")
    return torch.cat(items)


def to_network(image: torch.Tensor, name: str = "image") -> Tuple[torch.Tensor, Optional[torch.Tensor]]:
    """(B, H, W, C) float in [0, 1] -> rgb (B, 3, H, W) float32, alpha (B, H, W, 1) or None."""
    image = as_image_batch(image, name)
    B, H, W, C = image.shape
    if B == 0 or H == 0 or W == 0:
        raise InputError(f"{name} is empty: shape {tuple(image.shape)}")
    if not image.is_floating_point():
        raise InputError(f"{name} must be a float IMAGE in [0, 1]; got dtype {image.dtype}")
    alpha = None
    if C == 1:
        image = image.expand(-1, -1, -1, 3)                     # grey -> RGB
    elif C == 4:
        image, alpha = image[..., :3], image[..., 3:]
    elif C != 3:
        raise InputError(
            f"{name} has {C} channels (shape {tuple(image.shape)}); give an RGB image (3 channels), "
            f"a grey one (1) or RGBA (4): convert it first")
    rgb = image.float().clamp(0, 1).permute(0, 3, 1, 2).contiguous()   # (B, H, W, 3) -> (B, 3, H, W)
    return rgb, alpha


def to_comfy(x: torch.Tensor, alpha: Optional[torch.Tensor] = None) -> torch.Tensor:
    """rgb (B, 3, H, W) -> (B, H, W, 3), or (B, H, W, 4) with the alpha passed through, in [0, 1]."""
    out = x.clamp(0, 1).permute(0, 2, 3, 1)                     # (B, 3, H, W) -> (B, H, W, 3)
    if alpha is not None:
        out = torch.cat([out, alpha.to(out)], dim=-1)           # (B, H, W, 4)
    return out.contiguous()
