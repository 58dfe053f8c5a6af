"""CLIP teacher of soft residual distillation (CLIP-SRD, TIP 2024, arXiv 2306.09008).

The soft target of the SAR encoder's degradation attention is where CLIP sees the weathered image
differ from its clean version: the cosine distance between their dense patch features
(dense.py, MaskCLIP value path) per token, normalised per image to [0, 1] by its min and max.
How this differs from the paper: the paper distils CLIP's residual features into the SAR encoder;
here the restorer's SAR attention (B, 1, h, w) is the student, so the teacher gives a map, which
training/losses.srd_loss resizes to every level.
"""
from typing import Optional, Sequence

import torch

from .dense import check_image, encode_dense


class ClipSRDTeacher:
    def __init__(self, clip_model, mean: Optional[Sequence[float]] = None,
                 std: Optional[Sequence[float]] = None, scale: float = 1.0, max_batch: int = 32):
        """clip_model: an open_clip model, or a ClipBundle (hub/clip_loader.py) whose mean / std are
        used where none are given. scale: short side in CLIP input sizes (1 = the model's size)."""
        if hasattr(clip_model, "model") and hasattr(clip_model, "tokenizer"):   # a ClipBundle
            mean = mean if mean is not None else clip_model.mean
            std = std if std is not None else clip_model.std
            clip_model = clip_model.model
        if mean is None or std is None:
            raise ValueError("ClipSRDTeacher needs the CLIP's normalisation mean and std "
                             "(ClipBundle.mean / .std from hub.clip_loader.load_clip)")
        self.model, self.mean, self.std = clip_model, tuple(mean), tuple(std)
        self.scale, self.max_batch = scale, max_batch

    @torch.no_grad()
    def targets(self, clean: torch.Tensor, weathered: torch.Tensor) -> torch.Tensor:
        """clean, weathered (B, 3, H, W) in [0, 1] -> (B, 1, h, w) in [0, 1] on the token grid
        (h / w ~ H / W), finite; identical images give all zeros."""
        check_image(clean, "clean image")
        check_image(weathered, "weathered image")
        if clean.shape != weathered.shape:
            raise ValueError(f"clean {tuple(clean.shape)} and weathered {tuple(weathered.shape)} must have "
                             f"the same shape")
        B = clean.shape[0]
        f = encode_dense(self.model, torch.cat([clean, weathered]), self.mean, self.std,
                         self.scale, self.max_batch)                           # (2B, E, h, w), unit norm
        d = (1 - (f[:B] * f[B:]).sum(1, keepdim=True)).clamp_min(0)           # (B, 1, h, w) in [0, 2]
        lo = d.amin(dim=(2, 3), keepdim=True)
        span = d.amax(dim=(2, 3), keepdim=True) - lo
        t = torch.where(span > 1e-4, (d - lo) / span.clamp_min(1e-4), torch.zeros_like(d))
        return torch.nan_to_num(t, nan=0.0).clamp(0, 1).to(clean.device)
