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
        # The two halves run as separate convolutions on slices of the same weights: each half is a
        # dense map (GELU's vectorised kernel needs that; on a channel half of a channels_last map it
        # ran 7x slower), and no 2 x hidden map is ever allocated. At a 512 px tile's full resolution
        # that map was 42 MiB, above glibc's default mmap threshold cap (32 MiB), so every call paid
        # fresh page faults for it.
        h = self.project.in_channels
        e, d = self.expand, self.dwconv
        a, b = (F.conv2d(F.conv2d(x, e.weight[s], e.bias[s]), d.weight[s], d.bias[s], padding=1, groups=h)
                for s in (slice(0, h), slice(h, 2 * h)))
        return self.project(F.gelu(a) * b)
