"""Channel LayerNorm for (B, C, H, W) maps and the gated feed-forward used by every block."""
import torch
import torch.nn as nn
import torch.nn.functional as F


class LayerNorm2d(nn.LayerNorm):
    """LayerNorm over channels of a (B, C, H, W) tensor."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x.permute(0, 2, 3, 1)                                 # (B, C, H, W) -> (B, H, W, C)
        x = F.layer_norm(x, self.normalized_shape, self.weight, self.bias, self.eps)
        return x.permute(0, 3, 1, 2)                              # -> (B, C, H, W)


class GatedFeedForward(nn.Module):
    """1x1 expand -> 3x3 depthwise -> GELU gate (NAFNet's SimpleGate with a GELU) -> 1x1 project."""

    def __init__(self, dim: int, ratio: float, device=None, dtype=None):
        super().__init__()
        hidden = int(dim * ratio)
        kw = dict(device=device, dtype=dtype)
        self.expand = nn.Conv2d(dim, 2 * hidden, 1, **kw)
        self.dwconv = nn.Conv2d(2 * hidden, 2 * hidden, 3, padding=1, groups=2 * hidden, **kw)
        self.project = nn.Conv2d(hidden, dim, 1, **kw)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        a, b = self.dwconv(self.expand(x)).chunk(2, dim=1)
        if not a.is_contiguous():       # a channel half of a channels_last map: GELU's vectorised kernel
            a = a.contiguous(memory_format=torch.channels_last)   # needs it dense (7x faster with the copy)
        return self.project(F.gelu(a) * b)
