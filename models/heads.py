"""Learned providers of the three signals: small heads on the SAR encoder's features.

They are trained with the exact labels the weather synthesizer knows, so the restorer works with
no CLIP at all; a CLIP provider can replace any of them through the same interface (signals.py).
"""
import torch
import torch.nn as nn
import torch.nn.functional as F

from .signals import QUALITY_TIERS, WEATHER_TYPES


def _pooled(f: torch.Tensor) -> torch.Tensor:
    """(B, C, h, w) -> (B, 2C): mean and max over space (max sees sparse streaks, mean sees haze)."""
    return torch.cat([f.mean(dim=(2, 3)), f.amax(dim=(2, 3))], dim=1)


class PriorHead(nn.Module):
    """Bottleneck features -> weather prior p (B, K) in [0, 1]."""

    def __init__(self, dim: int, device=None, dtype=None):
        super().__init__()
        kw = dict(device=device, dtype=dtype)
        self.mlp = nn.Sequential(nn.Linear(2 * dim, dim, **kw), nn.GELU(), nn.Linear(dim, len(WEATHER_TYPES), **kw))

    def forward(self, f):
        return self.mlp(_pooled(f))                               # logits; sigmoid gives p


class QualityHead(nn.Module):
    """Bottleneck features -> logits over QUALITY_TIERS (low / medium / high), as in Perceive-IR."""

    def __init__(self, dim: int, device=None, dtype=None):
        super().__init__()
        kw = dict(device=device, dtype=dtype)
        self.mlp = nn.Sequential(nn.Linear(2 * dim, dim, **kw), nn.GELU(), nn.Linear(dim, len(QUALITY_TIERS), **kw))

    def forward(self, f):
        return self.mlp(_pooled(f))


class DensityHead(nn.Module):
    """Encoder features (B, C, h, w) -> density logits (B, 1, h, w), with a pooled global term
    because haze density varies slowly across the image."""

    def __init__(self, dim: int, device=None, dtype=None):
        super().__init__()
        kw = dict(device=device, dtype=dtype)
        self.local = nn.Sequential(nn.Conv2d(dim, dim, 3, padding=1, groups=dim, **kw), nn.Conv2d(dim, dim, 1, **kw),
                                   nn.GELU(), nn.Conv2d(dim, 1, 1, **kw))
        self.globl = nn.Linear(dim, 1, **kw)

    def forward(self, f):
        return self.local(f) + self.globl(f.mean(dim=(2, 3)))[:, :, None, None]


class DensityRefiner(nn.Module):
    """Sharpens the coarse density map at full resolution. Rain streaks are 1-3 px wide; the coarse
    head sees them at half resolution or less, which blurs where the rain is (the restorer removes
    rain well when told exactly where it is). Three 3x3 convolutions over [image, full-resolution
    encoder features, coarse logits] add a correction to the coarse logits."""

    def __init__(self, feat_dim: int, hidden: int, device=None, dtype=None):
        super().__init__()
        kw = dict(device=device, dtype=dtype)
        self.body = nn.Sequential(
            nn.Conv2d(3 + feat_dim + 1, hidden, 3, padding=1, **kw), nn.GELU(),
            nn.Conv2d(hidden, hidden, 3, padding=1, **kw), nn.GELU(),
            nn.Conv2d(hidden, 1, 3, padding=1, **kw))
        with torch.no_grad():               # starts as the identity on the coarse map
            self.body[-1].weight.zero_()
            self.body[-1].bias.zero_()

    def forward(self, x: torch.Tensor, feat: torch.Tensor, coarse_logits: torch.Tensor) -> torch.Tensor:
        return coarse_logits + self.body(torch.cat([x, feat, coarse_logits], dim=1))


def upsample_to(t: torch.Tensor, size) -> torch.Tensor:
    return F.interpolate(t, size=size, mode="bilinear", align_corners=False)
