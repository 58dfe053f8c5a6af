"""The raindrop stage: a small convolutional U-Net that takes raindrops on the lens off the image
before the weather restorer sees it.

    x (B, 3, H, W) in [0, 1], padded to a multiple of 2^(levels - 1)
    r = UNet(x)                              levels of `dims` channels, two 3x3 convolutions each,
                                             average-pooled down, bilinear up, skips concatenated
    y = x + r                                a residual, zero where the stage sees no drop

Why a separate stage: the restorer never learned drops (docs/EXPERIMENTS.md, "Raindrops"): trained
with its Charbonnier-led loss it keeps them, and a small U-Net trained alone with plain L1 stays the
identity too, while the same U-Net trained with mean squared error learns them. The stage is trained
on its own (training/drop_stage.py) with MSE: drop samples towards the clean photo, every other kind of
weather towards its own input, so it is the identity where there are no drops. At full resolution: the
same U-Net run at half resolution (a quarter of the cost) learned drops about half as fast per sample.
It costs about twice the restorer's time, and the pipeline runs it only where the prior reads drops.
"""
from typing import Sequence

import torch
import torch.nn as nn
import torch.nn.functional as F


def _block(cin: int, cout: int, **kw) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(cin, cout, 3, padding=1, **kw), nn.GELU(),
                         nn.Conv2d(cout, cout, 3, padding=1, **kw), nn.GELU())


class DropStage(nn.Module):
    def __init__(self, dims: Sequence[int] = (32, 64, 128, 128), device=None, dtype=None):
        super().__init__()
        kw = dict(device=device, dtype=dtype)
        dims = [int(d) for d in dims]
        if len(dims) < 2:
            raise ValueError(f"DropStage needs at least two levels of channels; got {dims}")
        self.dims = dims
        self.enc = nn.ModuleList(_block(3 if i == 0 else dims[i - 1], d, **kw) for i, d in enumerate(dims))
        # decoder levels len-2 .. 0: the upsampled deeper level concatenated with the skip
        self.dec = nn.ModuleList(_block(dims[i + 1] + dims[i], dims[i], **kw) for i in reversed(range(len(dims) - 1)))
        self.out = nn.Conv2d(dims[0], 3, 3, padding=1, **kw)
        with torch.no_grad():                 # starts close to the identity, a small residual (an exact zero
            self.out.weight.mul_(0.1)         # would starve the layers below of gradient at the start)
            self.out.bias.zero_()

    @property
    def stride(self) -> int:
        """Inputs are padded to a multiple of this: one halving per deeper level."""
        return 2 ** (len(self.dims) - 1)

    def residual(self, x: torch.Tensor) -> torch.Tensor:
        """What the stage adds to x (B, 3, H, W): minus the drops it finds, zero elsewhere."""
        H, W = x.shape[-2:]
        s = self.stride
        xp = F.pad(x, (0, (-W) % s, 0, (-H) % s), mode="replicate")
        h = xp.to(self.out.weight.dtype)
        skips = []
        for i, enc in enumerate(self.enc):
            h = enc(h if i == 0 else F.avg_pool2d(h, 2))
            skips.append(h)
        for dec, skip in zip(self.dec, reversed(skips[:-1])):
            h = dec(torch.cat([F.interpolate(h, size=skip.shape[-2:], mode="bilinear", align_corners=False), skip], 1))
        return self.out(h)[..., :H, :W].to(x.dtype)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.residual(x)
