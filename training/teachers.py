"""Teachers for soft residual distillation (CLIP-SRD, TIP 2024, arXiv 2306.09008).

Protocol: `targets(clean, weathered) -> (B, 1, h, w)` in [0, 1], a soft map of where the two
images differ in the teacher's feature space; the SAR attention maps are pulled toward it.
    none  no distillation
    ema   the EMA copy of the restorer's own encoder (no CLIP needed): the channel mean of
          |E(weathered) - E(clean)| per level, normalised per sample by its 98th percentile,
          upsampled to the finest level and averaged over levels. `features(clean)` also gives
          the encoder's features on the clean image for the optional feature term.
    clip  real CLIP (models/clip.ClipSRDTeacher); imported only when chosen, because its
          weights are not available everywhere.
Unlike the paper, which distils from CLIP only, `ema` lets the method run where CLIP weights
cannot be downloaded; its targets sharpen as the encoder learns.

`MirrorEnsembleTeacher` is another kind of teacher, for the image: a frozen restorer's mirror
ensemble as a second target of the output (`loss.mirror_distill`).
"""
import logging
from typing import List, Optional

import torch
import torch.nn.functional as F

from ..models.restorer import WeatherRestorer, pad_to_multiple
from ..models.tiling import mean_over_views
from ..models.weights_io import load_restorer
from .train_config import resolve_path

log = logging.getLogger(__name__)


def _normalise(d: torch.Tensor, q: float = 0.98) -> torch.Tensor:
    """(B, 1, h, w) >= 0 -> [0, 1], per sample divided by its q-quantile."""
    flat = d.flatten(1).float()
    scale = torch.quantile(flat, q, dim=1).clamp_min(1e-4)[:, None, None, None]
    return (d / scale.to(d)).clamp(0, 1)


class EMATeacher:
    kind = "ema"

    def __init__(self, model: WeatherRestorer):
        self.model = model          # the EMA model, updated in place by training.ema.EMA

    @torch.no_grad()
    def features(self, x: torch.Tensor) -> List[torch.Tensor]:
        feats, _ = self.model.encode(pad_to_multiple(x, self.model.cfg.stride))
        return feats

    @torch.no_grad()
    def targets(self, clean: torch.Tensor, weathered: torch.Tensor) -> torch.Tensor:
        B = clean.shape[0]
        feats = self.features(torch.cat([clean, weathered]))
        size = feats[0].shape[-2:]
        maps = []
        for f in feats:
            d = (f[B:] - f[:B]).abs().mean(dim=1, keepdim=True)          # (B, 1, h_i, w_i)
            d = _normalise(d)
            if d.shape[-2:] != size:
                d = F.interpolate(d, size=size, mode="bilinear", align_corners=False)
            maps.append(d)
        return torch.stack(maps).mean(0)                                  # (B, 1, h_0, w_0)


class ClipTeacher:
    """Real CLIP: `choice` is a manifest id or a weights file (hub/clip_loader.load_clip), or
    "tiny-random", a random tiny open_clip for smoke runs (its targets mean nothing)."""
    kind = "clip"

    def __init__(self, choice: str, device, mean=None, std=None, search_dirs=(), allow_download: bool = True):
        try:
            from ..models.clip import ClipSRDTeacher
        except ImportError as e:
            raise ImportError(f"teacher.kind='clip' needs models/clip and open_clip ({e}); "
                              f"pip install open_clip_torch, or use teacher.kind='ema' or 'none'") from e
        if choice == "tiny-random":
            from ..models.clip.tiny import TINY_MEAN, TINY_STD, build_tiny_clip
            model, _ = build_tiny_clip(seed=0)
            self.teacher = ClipSRDTeacher(model.to(device), mean or TINY_MEAN, std or TINY_STD)
        else:
            from ..hub.clip_loader import load_clip
            bundle = load_clip(choice, device, torch.float32, search_dirs=search_dirs, allow_download=allow_download)
            self.teacher = ClipSRDTeacher(bundle, mean, std)
        log.info("SRD teacher: CLIP %s", choice)

    @torch.no_grad()
    def targets(self, clean: torch.Tensor, weathered: torch.Tensor) -> torch.Tensor:
        return self.teacher.targets(clean, weathered).clamp(0, 1)

    def features(self, x):
        return None                 # no feature term with CLIP: its features are not the student's


class MirrorEnsembleTeacher:
    """A frozen restorer's mirror ensemble (`restore --mirror-ensemble`: the mean of the network on the
    image as it is and mirrored left-right, both with the signals its heads predict on the image as
    it is) as a second target for the student: `loss.mirror_distill`. The ensemble scores above the
    single pass it is made of (weather-m-v4.12: Rain100L 34.03 against 33.87), so the student is
    pulled towards what two views agree on. Whole crops, batched; bf16 autocast where the trainer
    uses it."""

    def __init__(self, path, device, autocast: bool = False):
        self.model = load_restorer(path, device=device).eval().requires_grad_(False)
        self.autocast = autocast
        log.info("mirror-ensemble teacher: %s", path)

    @torch.no_grad()
    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        """x (B, 3, H, W) in [0, 1] -> the ensemble's restoration (B, 3, H, W), float32, clamped."""
        m = self.model
        with torch.autocast(x.device.type, dtype=torch.bfloat16, enabled=self.autocast):
            sig = m.predict_signals(x)
            p, d = torch.sigmoid(sig.prior_logits), torch.sigmoid(sig.density_logits)
            y = mean_over_views(lambda c, dc: m.restore(c, p, dc), x, d)
        return y.clamp(0, 1)


def build_teacher(spec: dict, ema_model: Optional[WeatherRestorer], device):
    kind = spec.get("kind", "ema")
    if kind == "none":
        return None
    if kind == "ema":
        if ema_model is None:
            raise ValueError("teacher.kind='ema' needs the EMA model")
        return EMATeacher(ema_model)
    if kind == "clip":
        if not spec.get("clip"):
            raise ValueError("teacher.kind='clip' needs teacher.clip (a CLIP choice or a local weights file)")
        return ClipTeacher(spec["clip"], device, spec.get("clip_mean"), spec.get("clip_std"),
                           [str(resolve_path(d)) for d in spec.get("clip_dirs") or []],
                           bool(spec.get("allow_download", True)))
    raise ValueError(f"unknown teacher kind {kind!r}; use none, ema or clip")


def build_clip_quality_perceiver(spec: dict, device):
    """Perceive-IR's quality perceiver from CLIP (tier prompts, learned ones where the CLIP has
    them): a callable x (B, 3, H, W) in [0, 1] -> quality score (B,) in [0, 1]. Uses the CLIP of
    `teacher.clip`."""
    from ..models.clip import ClipSignals
    choice = spec.get("clip")
    if not choice:
        raise ValueError("loss.difficulty_perceiver='clip' needs teacher.clip (a CLIP choice or weights file)")
    if choice == "tiny-random":
        from ..models.clip.tiny import TINY_MEAN, TINY_STD, build_tiny_clip
        model, tok = build_tiny_clip(seed=0)
        signals = ClipSignals(model.to(device), tok, TINY_MEAN, TINY_STD)
    else:
        from ..hub.clip_loader import load_clip
        b = load_clip(choice, device, torch.float32, search_dirs=[str(resolve_path(d)) for d in spec.get("clip_dirs") or []],
                      allow_download=bool(spec.get("allow_download", True)))
        signals = ClipSignals(b.model, b.tokenizer, b.mean, b.std, b.learned_prompts)
    return signals.quality_score
