"""The weather restorer: SAR encoder -> density-aware dual-aggregation U-Net with CWP -> residual.

    x (B, 3, H, W) in [0, 1], padded to a multiple of cfg.stride
    encoder  E_i = SAR_i(down(E_{i-1}))           multi-scale features + degradation attention A_i
    signals  p, D, quality from heads on E        (replaced by caller-given p / D when passed)
    body     h_i = Blocks_i(E_i + down(h_{i-1}), D)       last level: + CWP(p)
    decoder  d_i = Blocks_i(up(d_{i+1}) + h_i, D, CWP(p))
    output   y = x + conv(d_0), cropped back to (H, W)
"""
import dataclasses
from typing import List, Optional

import torch
import torch.nn as nn
import torch.nn.functional as F

from .config import RestorerConfig
from .conv_block import GatedConvBlock
from .cwp import WeatherTokens
from .drop_stage import DropStage
from .dual_aggregation import DualAggregationBlock
from .heads import DensityHead, DensityRefiner, PriorHead, QualityHead, upsample_to
from .sar import Downsample, SARUnit, Upsample
from .signals import WEATHER_TYPES, check_density, check_prior


@dataclasses.dataclass
class RestorerOutput:
    image: torch.Tensor                 # (B, 3, H, W) restored, not clamped
    prior: torch.Tensor                 # (B, K) the prior used (given or predicted)
    density: torch.Tensor               # (B, 1, H, W) the density used (given or predicted)
    pred_prior_logits: torch.Tensor     # (B, K) the head's own prediction, always
    pred_density_logits: torch.Tensor   # (B, 1, H, W) the head's own prediction, always
    quality_logits: torch.Tensor        # (B, 3) quality tier of the *input*
    sar_attention: List[torch.Tensor]   # per level (B, 1, h_i, w_i), on the padded grid
    sar_features: List[torch.Tensor]    # per level (B, C_i, h_i, w_i), on the padded grid


@dataclasses.dataclass
class Signals:
    prior_logits: torch.Tensor          # (B, K)
    density_logits: torch.Tensor        # (B, 1, H, W) cropped to the input size
    quality_logits: torch.Tensor        # (B, 3)


BLOCKS = {"dual": DualAggregationBlock, "conv": GatedConvBlock}


def pad_to_multiple(x: torch.Tensor, multiple: int) -> torch.Tensor:
    """Pad the bottom/right of (B, C, H, W) so H and W divide `multiple`; reflect where possible."""
    H, W = x.shape[-2:]
    ph, pw = (-H) % multiple, (-W) % multiple
    if not (ph or pw):
        return x
    mode = "reflect" if ph < H and pw < W else "replicate"
    return F.pad(x, (0, pw, 0, ph), mode=mode)


class WeatherRestorer(nn.Module):
    def __init__(self, cfg: RestorerConfig, device=None, dtype=None):
        super().__init__()
        kw = dict(device=device, dtype=dtype)
        self.cfg = cfg
        # inference computes under autocast in this dtype where the loader sets one (models.tiling.network_autocast)
        self.autocast_dtype: Optional[torch.dtype] = None
        dims, L = cfg.dims, cfg.levels
        self.shallow = nn.Conv2d(3, dims[0], 3, padding=1, **kw)
        self.sar = nn.ModuleList(SARUnit(d, cfg.sar_hidden_ratio, **kw) for d in dims)
        self.enc_down = nn.ModuleList(Downsample(dims[i], dims[i + 1], **kw) for i in range(L - 1))
        self.prior_head = PriorHead(dims[-1], [dims[i] for i in cfg.prior_extra_levels], **kw)
        self.quality_head = QualityHead(dims[-1], **kw)
        self.density_head = DensityHead(dims[cfg.density_level], **kw)
        self.density_refiner = DensityRefiner(dims[0], cfg.density_refine, cfg.density_refine_blocks,
                                              cfg.density_refine_scale, **kw) \
            if cfg.density_refine else None
        self.weather_tokens = WeatherTokens(len(WEATHER_TYPES), dims[-1], **kw)
        token_dim = dims[-1]

        self.body_down = nn.ModuleList(Downsample(dims[i], dims[i + 1], **kw) for i in range(L - 1))
        def block(level: int, cwp: bool):
            return BLOCKS[cfg.block_type(level)](dims[level], cfg, token_dim if cwp else 0, **kw)

        # CWP in the bottleneck's encoder blocks and the decoder blocks, at the levels cfg allows
        self.body = nn.ModuleList(
            nn.ModuleList(block(i, i == L - 1 and cfg.has_cwp(i)) for _ in range(cfg.enc_blocks[i]))
            for i in range(L))
        # decoder levels L-2 .. 0, stored in that order
        self.up = nn.ModuleList(Upsample(dims[i + 1], dims[i], **kw) for i in reversed(range(L - 1)))
        self.decoder = nn.ModuleList(
            nn.ModuleList(block(i, cfg.has_cwp(i)) for _ in range(n))
            for i, n in zip(reversed(range(L - 1)), cfg.dec_blocks))
        self.out = nn.Conv2d(dims[0], 3, 3, padding=1, **kw)
        with torch.no_grad():                  # start close to the identity: a small residual
            self.out.weight.mul_(0.05)
            self.out.bias.zero_()
        # trained on its own (training/drop_stage.py) and run by the pipeline, not by forward / restore:
        # models/tiling.py takes the drops off the whole image first, where the prior reads raindrops
        self.drop_stage = DropStage(cfg.drop_stage, **kw) if cfg.drop_stage else None

    def _padded(self, x: torch.Tensor) -> torch.Tensor:
        """x padded to cfg.stride, in the network's memory layout: what encode and the heads read."""
        xp = pad_to_multiple(x, self.cfg.stride)
        return xp.contiguous(memory_format=torch.channels_last) if self.cfg.channels_last else xp

    # -- encoder and heads (public: training code, the SRD teacher and NLCL use them) ---------
    def encode(self, xp: torch.Tensor, levels: Optional[int] = None):
        """SAR encoder on an input padded to cfg.stride: (features, attention maps), one per level;
        `levels` stops after the first that many levels (a level never reads a deeper one)."""
        feats, attns = [], []
        f = self.shallow(xp)
        for i, sar in enumerate(self.sar[:levels]):
            if i:
                f = self.enc_down[i - 1](f)
            f, a = sar(f)
            feats.append(f)
            attns.append(a)
        return feats, attns

    def heads(self, feats, xp):
        """(prior, density, quality) logits from `encode`'s features; density on xp's padded grid."""
        prior_logits = self.prior_head(feats[-1], [feats[i] for i in self.cfg.prior_extra_levels])
        quality_logits = self.quality_head(feats[-1])
        return prior_logits, self._density_logits(feats, xp), quality_logits

    def _density_logits(self, feats, xp):
        d = upsample_to(self.density_head(feats[self.cfg.density_level]), xp.shape[-2:])
        return d if self.density_refiner is None else self.density_refiner(xp, feats[0], d)

    def signals(self, x: torch.Tensor) -> Signals:
        """Only the encoder and heads (cheap), with gradients: the learned provider of p, D and quality."""
        H, W = x.shape[-2:]
        xp = self._padded(x)
        p, d, q = self.heads(self.encode(xp)[0], xp)
        return Signals(p, d[..., :H, :W], q)

    def quality_logits(self, x: torch.Tensor) -> torch.Tensor:
        """`signals(x).quality_logits` without the prior and density heads (the density refiner
        runs at full resolution): training's difficulty weights and quality tiers read only this."""
        xp = self._padded(x)
        return self.quality_head(self.encode(xp)[0][-1])

    @torch.no_grad()
    def predict_signals(self, x: torch.Tensor) -> Signals:
        """`signals` without gradients, for inference."""
        return self.signals(x)

    @torch.no_grad()
    def predict_density(self, x: torch.Tensor) -> torch.Tensor:
        """The density logits of `predict_signals` (B, 1, H, W), from the encoder levels the density
        head reads only: the full-resolution density tiles skip the deep levels and the other heads."""
        H, W = x.shape[-2:]
        xp = self._padded(x)
        feats, _ = self.encode(xp, levels=self.cfg.density_level + 1)
        return self._density_logits(feats, xp)[..., :H, :W]

    # -- full forward ---------------------------------------------------------------------
    def forward(self, x: torch.Tensor, prior: Optional[torch.Tensor] = None,
                density: Optional[torch.Tensor] = None) -> RestorerOutput:
        """x (B, 3, H, W) in [0, 1]; optional prior (B, K) and density (B, 1, H, W) in [0, 1]."""
        B, H, W = self._check_input(x)
        xp = self._padded(x)
        feats, attns = self.encode(xp)
        prior_logits, density_logits, quality_logits = self.heads(feats, xp)
        p = torch.sigmoid(prior_logits) if prior is None else check_prior(prior.to(x), B)
        d = torch.sigmoid(density_logits[..., :H, :W]) if density is None else self._given_density(density, x)
        y, d = self._body(xp, feats, p, d, H, W)
        return RestorerOutput(
            image=y, prior=p, density=d[..., :H, :W],
            pred_prior_logits=prior_logits, pred_density_logits=density_logits[..., :H, :W],
            quality_logits=quality_logits, sar_attention=attns, sar_features=feats)

    def restore(self, x: torch.Tensor, prior: torch.Tensor, density: torch.Tensor) -> torch.Tensor:
        """`forward(x, prior, density).image` without the heads, whose predictions a caller that gives
        both signals never reads (models/tiling.py's tiles: the density head and refiner run at full
        resolution)."""
        B, H, W = self._check_input(x)
        xp = self._padded(x)
        feats, _ = self.encode(xp)
        return self._body(xp, feats, check_prior(prior.to(x), B), self._given_density(density, x), H, W)[0]

    @staticmethod
    def _check_input(x: torch.Tensor):
        if x.ndim != 4 or x.shape[1] != 3:
            raise ValueError(f"restorer input must be (B, 3, H, W) RGB; got {tuple(x.shape)}")
        return x.shape[0], x.shape[2], x.shape[3]

    @staticmethod
    def _given_density(density: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        return check_density(density.to(x), x.shape[0], x.shape[-2:])

    def _body(self, xp, feats, p, d, H: int, W: int):
        """The U-Net body on the encoder features -> (image (B, 3, H, W), d padded like xp)."""
        # padded like the image, so a given map and the head's own map take the same path
        d = pad_to_multiple(d, self.cfg.stride)
        tokens = self.weather_tokens(p)
        skips, h = [], None
        for i, blocks in enumerate(self.body):
            h = feats[i] if i == 0 else feats[i] + self.body_down[i - 1](h)
            for blk in blocks:
                h = blk(h, d, tokens)
            skips.append(h)
        for up, blocks, skip in zip(self.up, self.decoder, reversed(skips[:-1])):
            h = up(h) + skip
            for blk in blocks:
                h = blk(h, d, tokens)
        return (xp + self.out(h))[..., :H, :W].contiguous(), d
