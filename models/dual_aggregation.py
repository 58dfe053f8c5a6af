"""The restorer's block: CLIPHaze's density-aware dual aggregation, plus optional CWP cross-attention.

    x <- x + w_local * Local(LN x) + w_global * Global(LN x)    w = softmax(f(D, LN x)) per pixel
    x <- x + CWP(LN x, tokens)                                   (bottleneck and decoder blocks)
    x <- x + FFN(LN x)
The weights w come from the density map D: CLIPHaze (arXiv 2408.12317) lets dense haze lean on
the global path and light haze on the local one; here that trade-off is learned per pixel from D
and the features.
"""
import torch
import torch.nn as nn
import torch.nn.functional as F

from .cwp import PriorCrossAttention
from .global_scan import GlobalScan
from .norm import GatedFeedForward, LayerNorm2d
from .window_attention import WindowAttention


class DensityAggregation(nn.Module):
    """Per-pixel softmax weights over the two paths from the density map and the features."""

    def __init__(self, dim: int, device=None, dtype=None):
        super().__init__()
        kw = dict(device=device, dtype=dtype)
        self.from_density = nn.Conv2d(1, 2, 3, padding=1, **kw)
        self.from_features = nn.Conv2d(dim, 2, 1, **kw)

    def forward(self, x: torch.Tensor, density: torch.Tensor) -> torch.Tensor:
        d = F.adaptive_avg_pool2d(density.to(x.dtype), x.shape[-2:])   # (B, 1, h, w) at this level
        return torch.softmax(self.from_density(d) + self.from_features(x), dim=1)  # (B, 2, h, w)


class DualAggregationBlock(nn.Module):
    def __init__(self, dim: int, cfg, token_dim: int = 0, device=None, dtype=None):
        super().__init__()
        kw = dict(device=device, dtype=dtype)
        self.norm_mix = LayerNorm2d(dim, **kw)
        self.local = WindowAttention(dim, cfg.head_dim, cfg.window, **kw)
        self.globl = GlobalScan(dim, cfg.head_dim, cfg.ssm_state, cfg.ssm_chunk, **kw)
        self.aggregate = DensityAggregation(dim, **kw)
        self.norm_prior = LayerNorm2d(dim, **kw) if token_dim else None
        self.prior = PriorCrossAttention(dim, token_dim, cfg.head_dim, **kw) if token_dim else None
        self.norm_ffn = LayerNorm2d(dim, **kw)
        self.ffn = GatedFeedForward(dim, cfg.mlp_ratio, **kw)

    def forward(self, x: torch.Tensor, density: torch.Tensor, tokens: torch.Tensor = None) -> torch.Tensor:
        n = self.norm_mix(x)
        w = self.aggregate(n, density)
        x = x + w[:, :1] * self.local(n) + w[:, 1:] * self.globl(n)
        if self.prior is not None:
            x = x + self.prior(self.norm_prior(x), tokens)
        return x + self.ffn(self.norm_ffn(x))
