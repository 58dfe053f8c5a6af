"""The cheap block for full-resolution levels: gated depthwise convolution, steered by the density map.

    x <- x + beta  * (1 + g(D)) * Mix(LN x)       Mix: 1x1 expand -> 3x3 depthwise -> gate -> SCA -> 1x1
    x <- x + CWP(LN x, tokens)                     (levels listed in cfg.cwp_levels)
    x <- x + gamma * FFN(LN x)
The idea is NAFNet's (Chen et al., ECCV 2022): a product of two halves of the channels replaces the
activation, a pooled per-channel scale ("simplified channel attention") gives a global view, and
learned per-channel residual scales (beta, gamma; zero at the start) keep a deep stack stable.
Window attention and the selective scan run at ~0.4-1.8 GMAC/s on two CPU cores at full
resolution; this block runs several times faster, so the paper modules move to the low levels.
The density map still acts here: g(D) is a per-channel 1x1 map of D (zero at the start), so heavily
weathered pixels can get a stronger correction than clean ones.
"""
import torch
import torch.nn as nn
import torch.nn.functional as F

from .cwp import PriorCrossAttention
from .norm import GatedFeedForward, LayerNorm2d


class GatedConvBlock(nn.Module):
    def __init__(self, dim: int, cfg, token_dim: int = 0, device=None, dtype=None):
        super().__init__()
        kw = dict(device=device, dtype=dtype)
        self.norm_mix = LayerNorm2d(dim, **kw)
        self.expand = nn.Conv2d(dim, 2 * dim, 1, **kw)
        self.dwconv = nn.Conv2d(2 * dim, 2 * dim, 3, padding=1, groups=2 * dim, **kw)
        self.channel_scale = nn.Conv2d(dim, dim, 1, **kw)
        self.project = nn.Conv2d(dim, dim, 1, **kw)
        self.from_density = nn.Conv2d(1, dim, 1, **kw)
        self.beta = nn.Parameter(torch.zeros(1, dim, 1, 1, **kw))
        self.norm_prior = LayerNorm2d(dim, **kw) if token_dim else None
        self.prior = PriorCrossAttention(dim, token_dim, cfg.head_dim, **kw) if token_dim else None
        self.norm_ffn = LayerNorm2d(dim, **kw)
        self.ffn = GatedFeedForward(dim, cfg.mlp_ratio, **kw)
        self.gamma = nn.Parameter(torch.zeros(1, dim, 1, 1, **kw))
        with torch.no_grad():
            self.from_density.weight.zero_()
            self.from_density.bias.zero_()

    def forward(self, x: torch.Tensor, density: torch.Tensor, tokens: torch.Tensor = None) -> torch.Tensor:
        a, b = self.dwconv(self.expand(self.norm_mix(x))).chunk(2, dim=1)
        h = a * b                                                     # the gate
        h = h * self.channel_scale(h.mean(dim=(2, 3), keepdim=True))  # simplified channel attention
        d = density.to(x.dtype)
        if d.shape[-2:] != x.shape[-2:]:
            d = F.adaptive_avg_pool2d(d, x.shape[-2:])                # (B, 1, h, w) at this level
        # beta * (1 + from_density(d)) written out: a 1x1 conv of one channel is w * d + b per channel,
        # and two fused multiply-adds replace five full-size passes (these blocks are memory-bound)
        w, b = self.from_density.weight.view(1, -1, 1, 1), self.from_density.bias.view(1, -1, 1, 1)
        x = torch.addcmul(x, torch.addcmul(self.beta * (1 + b), self.beta * w, d), self.project(h))
        if self.prior is not None:
            x = x + self.prior(self.norm_prior(x), tokens)
        return torch.addcmul(x, self.gamma, self.ffn(self.norm_ffn(x)))
