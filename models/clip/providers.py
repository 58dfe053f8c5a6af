"""The CLIP provider of the three signals (models/signals.py): zero-shot, or with learned prompts.

    prior    (B, 4)       p_k = sigmoid(t (s_k - s_clear)): a two-way CLIP softmax of weather type k
                          against "clear" per type (CLIP-SRD/CWP's weather prior from the image encoder)
    density  (B, 1, H, W) P(hazy) per patch from dense features vs hazy/clear prompts (CLIPHaze),
                          smoothed on the token grid and upsampled bilinearly to the image
    quality  (B, 3)       softmax(t s_tier) over low / medium / high tier prompts (Perceive-IR)
s are cosine similarities, t is the model's own logit scale (CLIP's softmax temperature). Input is
RGB in [0, 1]; resizing and normalising with the CLIP's mean / std happen here, batched, on the
model's device; results come back on the input's device and dtype. Text embeddings are computed
once per model (text.py cache). Learned prompts replace the ensembles of density and quality.
"""
import logging
from typing import Dict, Optional, Sequence

import torch
import torch.nn.functional as F

from ..signals import QUALITY_TIERS, WEATHER_TYPES, quality_score
from . import text as T
from .dense import check_image, encode_dense, encode_global, gaussian_blur
from .prompt_io import PROMPT_TASKS, PromptContext

log = logging.getLogger(__name__)


class ClipSignals:
    def __init__(self, clip_model, tokenizer, mean: Sequence[float], std: Sequence[float],
                 learned_prompts: Optional[Dict[str, PromptContext]] = None,
                 density_scale: float = 2.0, density_smooth: float = 1.0, max_batch: int = 32):
        """density_scale: the short side is resized to this many CLIP input sizes for the density map
        (2 gives a 14-token short side with ViT-B/32); density_smooth: Gaussian sigma in tokens."""
        self.model, self.tokenizer = clip_model, tokenizer
        self.mean, self.std = tuple(mean), tuple(std)
        self.density_scale, self.density_smooth, self.max_batch = density_scale, density_smooth, max_batch
        self.learned = dict(learned_prompts or {})
        for task, p in self.learned.items():
            if task not in PROMPT_TASKS or len(p.classes) != PROMPT_TASKS[task]:
                raise ValueError(f"learned prompts for {task!r} with classes {p.classes} do not fit; "
                                 f"tasks and class counts are {PROMPT_TASKS}")
            width = T.token_embedding(clip_model).weight.shape[1]
            if p.ctx.shape[1] != width:
                raise ValueError(f"learned {task} prompts have width {p.ctx.shape[1]} but this CLIP's text "
                                 f"width is {width}: they were learned with another CLIP; drop them or "
                                 f"learn new ones with `python weather.py learn-prompts`")
        self.prompts = T.load_prompts()

    # -- text side (cached per model) ----------------------------------------------------------
    @property
    def temperature(self) -> float:
        scale = getattr(self.model, "logit_scale", None)
        return 100.0 if scale is None else float(scale.detach().float().exp().clamp(max=100).item())

    def _classes(self, task: str, names: Sequence[str]) -> torch.Tensor:
        if task in self.learned:
            p = self.learned[task]
            return T.learned_classes(self.model, self.tokenizer, p.ctx, p.classes)
        return T.class_ensembles(self.model, self.tokenizer, [self.prompts[task][n] for n in names])

    def weather_text(self) -> torch.Tensor:
        """(K + 1, E): one ensemble per WEATHER_TYPES entry, then 'clear'."""
        classes = [self.prompts["weather"][k] for k in WEATHER_TYPES] + [self.prompts["clear"]]
        return T.class_ensembles(self.model, self.tokenizer, classes)

    def density_text(self) -> torch.Tensor:
        return self._classes("density", ("hazy", "clear"))                     # (2, E)

    def quality_text(self) -> torch.Tensor:
        return self._classes("quality", QUALITY_TIERS)                         # (3, E)

    # -- the three signals ---------------------------------------------------------------------
    def _back(self, t: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        return t.to(device=x.device, dtype=x.dtype if x.is_floating_point() else torch.float32)

    @torch.no_grad()
    def prior(self, x: torch.Tensor) -> torch.Tensor:
        """x (B, 3, H, W) in [0, 1] -> (B, 4) in [0, 1], columns in WEATHER_TYPES order."""
        img = encode_global(self.model, x, self.mean, self.std, self.max_batch)   # (B, E)
        s = img @ self.weather_text().T                                            # (B, K + 1)
        p = torch.sigmoid(self.temperature * (s[:, :-1] - s[:, -1:]))
        return self._back(p, x)

    @torch.no_grad()
    def density_logits(self, x: torch.Tensor) -> torch.Tensor:
        """(B, 2, Hg, Wg) hazy / clear logits on the token grid (aspect of x, before smoothing)."""
        g = encode_dense(self.model, x, self.mean, self.std, self.density_scale, self.max_batch)
        return self.temperature * torch.einsum("behw,ce->bchw", g, self.density_text())

    @torch.no_grad()
    def density(self, x: torch.Tensor) -> torch.Tensor:
        """x (B, 3, H, W) in [0, 1] -> (B, 1, H, W) in [0, 1]: P(hazy) per pixel."""
        check_image(x)
        d = torch.softmax(self.density_logits(x), dim=1)[:, :1]                    # (B, 1, Hg, Wg)
        d = gaussian_blur(d, self.density_smooth)
        d = F.interpolate(d, size=x.shape[-2:], mode="bilinear", align_corners=False).clamp(0, 1)
        return self._back(d, x)

    @torch.no_grad()
    def quality(self, x: torch.Tensor) -> torch.Tensor:
        """x (B, 3, H, W) in [0, 1] -> (B, 3) probabilities over QUALITY_TIERS."""
        img = encode_global(self.model, x, self.mean, self.std, self.max_batch)
        probs = torch.softmax(self.temperature * img @ self.quality_text().T, dim=-1)
        return self._back(probs, x)

    def quality_score(self, x: torch.Tensor) -> torch.Tensor:
        """(B,) in [0, 1]: P(high) + 0.5 P(medium)."""
        return quality_score(self.quality(x))
