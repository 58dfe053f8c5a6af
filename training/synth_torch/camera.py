"""Camera degradations on the device: sensor noise, and JPEG compression as its arithmetic (YCbCr,
4:2:0 chroma, 8x8 DCT, the standard quantization tables scaled by quality, rounding; no entropy
coding, which is lossless). Rates and ranges are training/synth/compose.py's."""
import math

import torch
import torch.nn.functional as F

from ..synth.compose import JPEG_QUALITY, JPEG_RATE, NOISE_RATE, NOISE_SIGMA
from .ops import per_sample, uniform

# JPEG standard (ITU T.81 Annex K) quantization tables, the ones libjpeg scales by quality
_LUMA = [16, 11, 10, 16, 24, 40, 51, 61, 12, 12, 14, 19, 26, 58, 60, 55, 14, 13, 16, 24, 40, 57, 69, 56,
         14, 17, 22, 29, 51, 87, 80, 62, 18, 22, 37, 56, 68, 109, 103, 77, 24, 35, 55, 64, 81, 104, 113, 92,
         49, 64, 78, 87, 103, 121, 120, 101, 72, 92, 95, 98, 112, 100, 103, 99]
_CHROMA = [17, 18, 24, 47] + [99] * 4 + [18, 21, 26, 66] + [99] * 4 + [24, 26, 56] + [99] * 5 + [47, 66] + [99] * 38


def _dct_matrix(device) -> torch.Tensor:
    k, x = torch.arange(8, device=device).view(-1, 1).float(), torch.arange(8, device=device).view(1, -1).float()
    d = torch.cos((2 * x + 1) * k * math.pi / 16) * math.sqrt(2 / 8)
    d[0] /= math.sqrt(2)
    return d                                                     # orthonormal DCT-II, rows = frequencies


def _tables(quality: torch.Tensor, base) -> torch.Tensor:
    """libjpeg's quality scaling: (N,) qualities -> (N, 1, 1, 1, 8, 8) quantization steps."""
    q = quality.float()
    scale = torch.where(q < 50, 5000 / q, 200 - 2 * q).view(-1, 1)
    t = torch.floor((torch.tensor(base, device=q.device).float().view(1, 64) * scale + 50) / 100).clamp(1, 255)
    return t.view(-1, 1, 1, 1, 8, 8)


def _quantize_blocks(x: torch.Tensor, steps: torch.Tensor) -> torch.Tensor:
    """(N, C, H, W) in 0..255 -> the same after 8x8 DCT quantization (padded by replication)."""
    n, c, h, w = x.shape
    ph, pw = -h % 8, -w % 8
    x = F.pad(x, (0, pw, 0, ph), mode="replicate") - 128
    hb, wb = x.shape[-2] // 8, x.shape[-1] // 8
    blocks = x.view(n, c, hb, 8, wb, 8).permute(0, 1, 2, 4, 3, 5)        # (N, C, hb, wb, 8, 8)
    d = _dct_matrix(x.device)
    coef = d @ blocks @ d.T
    blocks = d.T @ (torch.round(coef / steps) * steps) @ d
    x = blocks.permute(0, 1, 2, 4, 3, 5).reshape(n, c, hb * 8, wb * 8) + 128
    return x[..., :h, :w]


def jpeg(img: torch.Tensor, quality: torch.Tensor) -> torch.Tensor:
    """img (N, 3, H, W) in [0, 1], quality (N,) 1-100 -> the decoded JPEG, (N, 3, H, W) in [0, 1]."""
    x = img.clamp(0, 1) * 255
    r, g, b = x.unbind(1)
    y = 0.299 * r + 0.587 * g + 0.114 * b
    cb = -0.168736 * r - 0.331264 * g + 0.5 * b + 128
    cr = 0.5 * r - 0.418688 * g - 0.081312 * b + 128
    h, w = img.shape[-2:]
    y = _quantize_blocks(y[:, None], _tables(quality, _LUMA))
    chroma = F.avg_pool2d(torch.stack([cb, cr], 1), 2, ceil_mode=True)    # 4:2:0
    chroma = _quantize_blocks(chroma, _tables(quality, _CHROMA))
    cb, cr = F.interpolate(chroma, size=(h, w), mode="bilinear", align_corners=False).unbind(1)
    y = y[:, 0]
    rgb = torch.stack([y + 1.402 * (cr - 128), y - 0.344136 * (cb - 128) - 0.714136 * (cr - 128),
                       y + 1.772 * (cb - 128)], 1)
    return (torch.round(rgb.clamp(0, 255)) / 255).clamp(0, 1)


def degrade_camera(img: torch.Tensor, g: torch.Generator, active: torch.Tensor) -> torch.Tensor:
    """Mild noise and/or JPEG, each at its low rate, on the samples where `active` (N,) is set."""
    n = img.shape[0]
    noisy = per_sample(active & (uniform(g, n) < NOISE_RATE))
    sigma = per_sample(uniform(g, n, *NOISE_SIGMA))
    noise = torch.randn(img.shape, generator=g, device=img.device) * sigma
    img = torch.where(noisy, img + noise, img)
    coded = active & (uniform(g, n) < JPEG_RATE)
    quality = torch.randint(*JPEG_QUALITY, (n,), generator=g, device=img.device)
    if bool(coded.any()):
        idx = coded.nonzero()[:, 0]
        img = img.clone()
        img[idx] = jpeg(img[idx], quality[idx])
    return img.clamp(0, 1)
