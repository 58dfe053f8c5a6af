"""Small image operators shared by the weather layers: motion-blur lines, Gaussian blur, smooth fields.

All work on float32 tensors (..., H, W) on the CPU and are deterministic given the numpy Generator.
"""
import math

import numpy as np
import torch
import torch.nn.functional as F


def line_kernel(length: float, angle_deg: float, width: float = 1.0) -> torch.Tensor:
    """Anti-aliased line of `length` px at `angle_deg` from vertical, normalised to sum 1: (k, k)."""
    k = int(math.ceil(length)) | 1
    r = (k - 1) / 2
    yy, xx = torch.meshgrid(torch.arange(k) - r, torch.arange(k) - r, indexing="ij")
    a = math.radians(angle_deg)
    along = xx * math.sin(a) + yy * math.cos(a)                  # distance along the streak
    across = xx * math.cos(a) - yy * math.sin(a)                 # distance across it
    kernel = torch.clamp(width / 2 + 0.5 - across.abs(), 0, 1) * (along.abs() <= length / 2)
    return kernel / kernel.sum().clamp_min(1e-6)


def gaussian_kernel1d(sigma: float) -> torch.Tensor:
    radius = max(1, int(math.ceil(3 * sigma)))
    x = torch.arange(-radius, radius + 1, dtype=torch.float32)
    k = torch.exp(-0.5 * (x / sigma) ** 2)
    return k / k.sum()


def gaussian_blur(img: torch.Tensor, sigma: float) -> torch.Tensor:
    """Separable Gaussian blur of (C, H, W) with reflect padding."""
    if sigma <= 0:
        return img
    k = gaussian_kernel1d(sigma)
    c = img.shape[0]
    pad = len(k) // 2
    x = img[None]
    mode = "reflect" if pad < min(img.shape[-2:]) else "replicate"
    x = F.conv2d(F.pad(x, (pad, pad, 0, 0), mode=mode), k.view(1, 1, 1, -1).expand(c, 1, 1, -1), groups=c)
    x = F.conv2d(F.pad(x, (0, 0, pad, pad), mode=mode), k.view(1, 1, -1, 1).expand(c, 1, -1, 1), groups=c)
    return x[0]


def convolve(img: torch.Tensor, kernel: torch.Tensor) -> torch.Tensor:
    """(C, H, W) convolved with one (k, k) kernel per channel, zero padding ('same' size).
    Done with FFTs: streak kernels are up to ~45 px wide, where direct convolution is 50x slower."""
    _, h, w = img.shape
    k = kernel.shape[-1]
    fh, fw = h + k - 1, w + k - 1
    spectrum = torch.fft.rfft2(img, s=(fh, fw)) * torch.fft.rfft2(kernel, s=(fh, fw))
    full = torch.fft.irfft2(spectrum, s=(fh, fw))
    r = k // 2
    return full[:, r:r + h, r:r + w]


def smooth_field(rng: np.random.Generator, h: int, w: int, cells: int) -> torch.Tensor:
    """Smooth random field in [0, 1], (1, H, W): bicubic upsampling of a coarse noise grid."""
    gh, gw = max(2, cells * h // max(h, w) + 1), max(2, cells * w // max(h, w) + 1)
    coarse = torch.from_numpy(rng.random((1, 1, gh, gw)).astype(np.float32))
    field = F.interpolate(coarse, size=(h, w), mode="bicubic", align_corners=False)[0]
    field = field - field.amin()
    return field / field.amax().clamp_min(1e-6)
