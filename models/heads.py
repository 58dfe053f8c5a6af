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
    """Bottleneck features (and optionally finer levels') -> weather prior p (B, K) in [0, 1].

    `extra_dims` are the channels of finer encoder levels whose pooled features add a correction to
    the bottleneck's logits (the `extra` MLP, zero at initialisation, so a head trained without it
    predicts the same until the correction is trained)."""

    def __init__(self, dim: int, extra_dims=(), device=None, dtype=None):
        super().__init__()
        kw = dict(device=device, dtype=dtype)
        self.mlp = nn.Sequential(nn.Linear(2 * dim, dim, **kw), nn.GELU(), nn.Linear(dim, len(WEATHER_TYPES), **kw))
        self.extra = None
        if extra_dims:
            fine = 2 * sum(extra_dims)
            self.extra = nn.Sequential(nn.Linear(fine, fine, **kw), nn.GELU(), nn.Linear(fine, len(WEATHER_TYPES), **kw))
            with torch.no_grad():
                self.extra[-1].weight.zero_()
                self.extra[-1].bias.zero_()

    def forward(self, f, extra=()):
        logits = self.mlp(_pooled(f))                             # logits; sigmoid gives p
        if self.extra is not None:
            logits = logits + self.extra(torch.cat([_pooled(e) for e in extra], dim=1))
        return logits


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
    """Refines the coarse density map at full resolution. The restorer reads D as "how much weather is
    here" (given the synthesizer's exact map it removes nearly all the rain), so D must follow 1-3 px
    streaks and their brightness; the coarse head sees them at half resolution. A 3x3 stem over
    [image, full-resolution encoder features, coarse logits], `blocks` dilated depthwise-separable
    residual blocks (dilations 1, 2, 4, 8, ... for a receptive field along the streaks), and a 3x3
    projection add a correction to the coarse logits. With `scale` 2 or 4 the stem and blocks run on the
    pixel-unshuffled input at that fraction of the resolution (configs' `density_refine_scale`)."""

    def __init__(self, feat_dim: int, hidden: int, blocks: int = 2, scale: int = 1, device=None, dtype=None):
        super().__init__()
        kw = dict(device=device, dtype=dtype)
        self.scale = scale
        # scale s > 1: the blocks run at 1/s resolution on the pixel-unshuffled input (nothing thrown away) and
        # the projection gives s*s channels that pixel-shuffle back to a full-resolution correction
        self.stem = nn.Sequential(nn.Conv2d((3 + feat_dim + 1) * scale ** 2, hidden, 3, padding=1, **kw), nn.GELU())
        self.blocks = nn.ModuleList(
            nn.Sequential(nn.Conv2d(hidden, hidden, 3, padding=2 ** i, dilation=2 ** i, groups=hidden, **kw),
                          nn.GELU(), nn.Conv2d(hidden, hidden, 1, **kw))
            for i in range(blocks))
        self.proj = nn.Conv2d(hidden, scale ** 2, 3, padding=1, **kw)
        with torch.no_grad():               # starts as the identity on the coarse map
            self.proj.weight.zero_()
            self.proj.bias.zero_()

    def forward(self, x: torch.Tensor, feat: torch.Tensor, coarse_logits: torch.Tensor) -> torch.Tensor:
        if x.device.type == "cpu" and torch.is_grad_enabled() and torch.is_autocast_enabled("cpu"):
            # torch 2.14's CPU backward of bf16 depthwise convolutions on channels_last maps segfaults from
            # dilation 8 on and gives NaN gradients now and then below it (AVX512-BF16; the forward is right):
            # training computes this small module in fp32 (1.2x faster steps than all-fp32, EXPERIMENTS.md)
            with torch.autocast("cpu", enabled=False):
                return self.forward(x.float(), feat.float(), coarse_logits.float())
        inp = torch.cat([x, feat, coarse_logits], dim=1)
        if self.scale > 1:
            inp = F.pixel_unshuffle(inp, self.scale)
        # channels_last like the encoder (the CPU's depthwise kernels are ~8x slower on NCHW maps at 16 channels)
        h = self.stem(inp.contiguous(memory_format=torch.channels_last))
        for depthwise, act, pointwise in self.blocks:
            h = h + pointwise(act(dilated_depthwise(depthwise, h)))
        correction = self.proj(h)
        return coarse_logits + (F.pixel_shuffle(correction, self.scale) if self.scale > 1 else correction)


POLYPHASE_FROM = 16     # dilations from which the interleaved form is used


def dilated_depthwise(conv: nn.Conv2d, x: torch.Tensor) -> torch.Tensor:
    """conv(x) for a 3x3 depthwise `conv` with padding = dilation = d. PyTorch's CPU kernel for channels_last
    maps takes a slow path at large dilations (512x448x16, 2 threads: d = 4 1.3 ms, d = 16 or 32 65-72 ms), so
    from POLYPHASE_FROM on, where d divides H and W, the same sums run as a dilation-1 convolution on the
    d x d interleaved sub-images (x[..., i*d + py, j*d + px] for each phase py, px): 4.5x faster there."""
    d = conv.dilation[0]
    B, C, H, W = x.shape
    if d < POLYPHASE_FROM or H % d or W % d:
        return conv(x)
    h, w = H // d, W // d
    # in channels_last order (B, H, W, C) throughout: one copy in, one copy out, nothing else moves
    nhwc = x.permute(0, 2, 3, 1).reshape(B, h, d, w, d, C)
    sub = nhwc.permute(0, 2, 4, 1, 3, 5).reshape(B * d * d, h, w, C).permute(0, 3, 1, 2)
    y = F.conv2d(sub, conv.weight, conv.bias, padding=1, groups=conv.groups)
    y = y.permute(0, 2, 3, 1).reshape(B, d, d, h, w, C).permute(0, 3, 1, 4, 2, 5).reshape(B, H, W, C)
    return y.permute(0, 3, 1, 2)


def upsample_to(t: torch.Tensor, size) -> torch.Tensor:
    return F.interpolate(t, size=size, mode="bilinear", align_corners=False)
