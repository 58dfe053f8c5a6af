"""Prompt learning for the CLIP providers: CoOp context vectors, CLIP frozen, synthesizer labels.

    density (CLIPHaze)      "X..X hazy." / "X..X clear." vs dense patch features (models/clip/dense.py)
                            of the weathered and the clean image; soft per-patch labels: the
                            synthesizer's density map pooled to the token grid (0 on the clean image);
                            binary cross-entropy on the two-way softmax.
    quality (Perceive-IR)   "X..X low / medium / high quality." vs image embeddings of the weathered
                            image (low), a blend alpha * clean + (1 - alpha) * weathered with
                            alpha ~ U(0.3, 0.7) (medium) and the clean image (high); cross-entropy.
Only the context vectors (n_ctx, width) per task are trained; the CLIP's own temperature is used.
Image features are computed without gradients (CLIP is frozen), text features with gradients.
The result is saved by models/clip/prompt_io.save_prompts and used by ClipSignals.
"""
import dataclasses
import logging
from typing import Dict, Iterable, Optional, Sequence, Tuple

import torch
import torch.nn as nn
import torch.nn.functional as F

from ..models.clip.dense import encode_dense, encode_global
from ..models.clip.prompt_io import PROMPT_TASKS, PromptContext
from ..models.clip.text import context_tokens, encode_with_context, load_prompts, token_embedding

log = logging.getLogger(__name__)


@dataclasses.dataclass
class PromptLearningConfig:
    tasks: Tuple[str, ...] = ("density", "quality")
    n_ctx: int = 8                         # context vectors per task (CoOp uses 4-16)
    lr: float = 2e-3
    weight_decay: float = 0.0
    init_std: float = 0.02                 # CoOp's random initialisation
    density_scale: float = 1.0             # short side of the dense features, in CLIP input sizes
    medium_blend: Tuple[float, float] = (0.3, 0.7)
    seed: int = 0

    def __post_init__(self):
        bad = [t for t in self.tasks if t not in PROMPT_TASKS]
        if bad or not self.tasks:
            raise ValueError(f"prompt-learning tasks must be among {tuple(PROMPT_TASKS)}; got {self.tasks}")


class PromptLearner(nn.Module):
    """The learnable context vectors; the CLIP is held outside the module so `parameters()` is only them."""

    def __init__(self, clip_model, tokenizer, tasks: Sequence[str], n_ctx: int = 8,
                 init_std: float = 0.02, seed: int = 0):
        super().__init__()
        emb = token_embedding(clip_model)
        g = torch.Generator().manual_seed(seed)
        names = load_prompts()["learned_classes"]
        self.classes = {t: tuple(names[t]) for t in tasks}
        self.ctx = nn.ParameterDict({
            t: nn.Parameter((torch.randn(n_ctx, emb.weight.shape[1], generator=g) * init_std)
                            .to(emb.weight.device)) for t in tasks})
        self._tokens = {t: context_tokens(tokenizer, n_ctx, self.classes[t]) for t in tasks}
        self._clip = (clip_model,)                                             # not a submodule

    def text_features(self, task: str) -> torch.Tensor:
        """(C, E) normalised, differentiable in ctx[task]."""
        return encode_with_context(self._clip[0], self._tokens[task], self.ctx[task])

    def export(self) -> Dict[str, PromptContext]:
        return {t: PromptContext(p.detach().float().cpu().clone(), self.classes[t]) for t, p in self.ctx.items()}


def density_targets(density: torch.Tensor, grid: Tuple[int, int]) -> torch.Tensor:
    """(B, 1, H, W) in [0, 1] -> (B, 1, Hg, Wg): the mean density under each token."""
    return F.adaptive_avg_pool2d(density.float(), grid).clamp(0, 1)


def quality_batch(clean: torch.Tensor, weathered: torch.Tensor, blend: Tuple[float, float],
                  generator: torch.Generator):
    """-> images (3B, 3, H, W) = [weathered; blend; clean], labels (3B,) = [0..; 1..; 2..]."""
    B = clean.shape[0]
    a = torch.empty(B, 1, 1, 1).uniform_(*blend, generator=generator).to(clean)
    medium = a * clean + (1 - a) * weathered
    labels = torch.arange(3, device=clean.device).repeat_interleave(B)
    return torch.cat([weathered, medium, clean]), labels


class PromptTrainer:
    def __init__(self, clip_model, tokenizer, mean, std, cfg: Optional[PromptLearningConfig] = None):
        self.cfg = cfg or PromptLearningConfig()
        self.model = clip_model.eval().requires_grad_(False)
        self.mean, self.std = tuple(mean), tuple(std)
        self.learner = PromptLearner(clip_model, tokenizer, self.cfg.tasks, self.cfg.n_ctx,
                                     self.cfg.init_std, self.cfg.seed)
        self.opt = torch.optim.AdamW(self.learner.parameters(), lr=self.cfg.lr, weight_decay=self.cfg.weight_decay)
        self.gen = torch.Generator().manual_seed(self.cfg.seed)
        scale = getattr(clip_model, "logit_scale", None)
        self.temperature = 100.0 if scale is None else float(scale.detach().float().exp().clamp(max=100))
        self.steps_done = 0

    def losses(self, batch: dict) -> Dict[str, torch.Tensor]:
        """batch: weathered, clean (B, 3, H, W) in [0, 1] and, for density, density (B, 1, H, W)."""
        device = self.learner.ctx[self.cfg.tasks[0]].device
        clean, weathered = batch["clean"].to(device).float(), batch["weathered"].to(device).float()
        parts = {}
        if "density" in self.cfg.tasks:
            if "density" not in batch:
                raise KeyError("the density task needs batch['density'] (B, 1, H, W) from the synthesizer")
            with torch.no_grad():
                g = encode_dense(self.model, torch.cat([weathered, clean]), self.mean, self.std,
                                 self.cfg.density_scale)                       # (2B, E, Hg, Wg)
            d = density_targets(batch["density"].to(device), g.shape[-2:])
            target = torch.cat([d, torch.zeros_like(d)])                       # clean image: no weather
            logits = self.temperature * torch.einsum("behw,ce->bchw", g, self.learner.text_features("density"))
            parts["density"] = F.binary_cross_entropy_with_logits(logits[:, :1] - logits[:, 1:], target)
        if "quality" in self.cfg.tasks:
            images, labels = quality_batch(clean, weathered, self.cfg.medium_blend, self.gen)
            with torch.no_grad():
                img = encode_global(self.model, images, self.mean, self.std)     # (3B, E)
            logits = self.temperature * img @ self.learner.text_features("quality").T
            parts["quality"] = F.cross_entropy(logits, labels)
        parts["total"] = sum(parts.values())
        return parts

    def step(self, batch: dict) -> Dict[str, float]:
        parts = self.losses(batch)
        self.opt.zero_grad(set_to_none=True)
        parts["total"].backward()
        self.opt.step()
        self.steps_done += 1
        return {k: float(v.detach()) for k, v in parts.items()}

    def fit(self, batches: Iterable[dict], steps: int, on_step=None) -> Dict[str, float]:
        """Run `steps` steps over `batches` (cycled); returns the mean losses of the last 10% of steps."""
        tail, n_tail = {}, max(1, steps // 10)
        it = iter(batches)
        for i in range(steps):
            try:
                batch = next(it)
            except StopIteration:
                it = iter(batches)
                batch = next(it)
            losses = self.step(batch)
            if i >= steps - n_tail:
                for k, v in losses.items():
                    tail[k] = tail.get(k, 0.0) + v / n_tail
            if on_step is not None:
                on_step(i, losses)
        return tail
