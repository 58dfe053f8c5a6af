"""Spatially-Adaptive Residual (SAR) unit of the encoder, from CLIP-SRD/CWP (TIP 2024, arXiv 2306.09008).

A degradation attention map A = sigmoid(conv(F)) (B, 1, h, w) marks the weathered areas and gates a
residual branch: F <- F + A * R(F). A is returned: soft residual distillation supervises it during
training, and it is a useful picture of where the network sees weather.
"""
import torch
import torch.nn as nn
import torch.nn.functional as F


class SARUnit(nn.Module):
    def __init__(self, dim: int, hidden_ratio: float = 1.0, device=None, dtype=None):
        super().__init__()
        kw = dict(device=device, dtype=dtype)
        hidden = max(8, int(dim * hidden_ratio))
        self.attention = nn.Sequential(
            nn.Conv2d(dim, dim, 3, padding=1, groups=dim, **kw), nn.GELU(), nn.Conv2d(dim, 1, 1, **kw))
        self.residual = nn.Sequential(
            nn.Conv2d(dim, hidden, 1, **kw),
            nn.Conv2d(hidden, hidden, 3, padding=1, groups=hidden, **kw), nn.GELU(),
            nn.Conv2d(hidden, dim, 1, **kw))

    def forward(self, f: torch.Tensor):
        attn = torch.sigmoid(self.attention(f))                  # (B, 1, h, w)
        return f + attn * self.residual(f), attn


class Downsample(nn.Module):
    """Halve H and W: a 2x2 stride-2 convolution (pixel-unshuffle then 1x1, cheaper than Restormer's 3x3)."""

    def __init__(self, dim_in: int, dim_out: int, device=None, dtype=None):
        super().__init__()
        self.body = nn.Conv2d(dim_in, dim_out, 2, stride=2, device=device, dtype=dtype)

    def forward(self, x):
        return self.body(x)


class Upsample(nn.Module):
    """Double H and W: 1x1 conv to out*4 channels, then pixel-shuffle."""

    def __init__(self, dim_in: int, dim_out: int, device=None, dtype=None):
        super().__init__()
        self.body = nn.Sequential(nn.Conv2d(dim_in, dim_out * 4, 1, device=device, dtype=dtype),
                                  nn.PixelShuffle(2))

    def forward(self, x):
        return self.body(x)
