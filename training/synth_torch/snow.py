"""Snow, batched: 2-4 depth layers of flakes per image (training/synth/snow.py's draws), far layers
many small faint sharp flakes, near ones few large soft opaque ones, some smeared along the fall
direction; seeds FFT-convolved with one flake kernel per layer, composited far to near in near-white.
"""
import math

import torch

from ..synth.snow import SEVERITY_SCALE
from .ops import convolve_wrap, normal, streak_kernels, uniform

LAYERS = 4                   # the most layers an image has; images with fewer leave the rest empty


def make_snow(g: torch.Generator, n: int, h: int, w: int):
    """-> (alpha (N, LAYERS, H, W) far to near, grey level (N, LAYERS))."""
    dev = g.device
    k = torch.randint(2, 5, (n, 1), generator=g, device=dev)
    j = torch.arange(LAYERS, device=dev).view(1, -1)
    on = j < k
    near = (j / (k - 1)).clamp(max=1.0)                                   # 0 = far, 1 = near
    sigma = 0.45 + near * uniform(g, (n, 1), 1.2, 4.0) * uniform(g, (n, LAYERS), 0.7, 1.0)
    angle = normal(g, (n, 1), 0, 18).clamp(-50, 50) + normal(g, (n, LAYERS), 0, 4)
    blurred = uniform(g, (n, LAYERS)) < 0.45
    length = torch.where(blurred, uniform(g, (n, LAYERS), 2, 6) + near * uniform(g, (n, LAYERS), 4, 18),
                         torch.zeros((), device=dev))
    coverage = uniform(g, (n, LAYERS), 0.03, 0.12) * (1.2 - 0.5 * near) * uniform(g, (n, 1), 0.5, 1.5)
    footprint = math.pi * (1.6 * sigma) ** 2 + length * 3.2 * sigma       # px covered by one flake
    rate = (coverage / footprint * on).view(n, LAYERS, 1, 1)
    amp = (uniform(g, (n, LAYERS, h, w)) < rate) * uniform(g, (n, LAYERS, h, w), 0.45, 1.0)
    # a smeared flake spreads the same light over a longer path: fainter per pixel
    amp = amp * ((2.5 * sigma / (length + 2.5 * sigma)) ** 0.5).view(n, LAYERS, 1, 1)
    m = n * LAYERS
    kernels = streak_kernels(h, w, length.reshape(m), angle.reshape(m), sigma.reshape(m),
                             torch.full((m,), 0.5, device=dev)).view(n, LAYERS, h, w)
    flakes = convolve_wrap(amp, kernels)
    gain = uniform(g, (n, LAYERS), 1.2, 2.0) * uniform(g, (n, LAYERS), 0.55, 0.9) ** (1 - near)
    alpha = (flakes * gain.view(n, LAYERS, 1, 1)).clamp(0, 1)             # flat-topped, soft-edged flakes
    return alpha, uniform(g, (n, LAYERS), 0.86, 1.0)


def add_snow(img: torch.Tensor, g: torch.Generator):
    """img (N, 3, H, W) -> (snowy images, coverage (N, 1, H, W) in [0, 1], severity (N,) in [0.1, 1])."""
    n, _, h, w = img.shape
    alpha, colour = make_snow(g, n, h, w)
    out = img
    for i in range(LAYERS):                                               # far to near
        a = alpha[:, i:i + 1]
        out = out * (1 - a) + colour[:, i].view(n, 1, 1, 1) * a
    coverage = 1 - torch.prod(1 - alpha, dim=1, keepdim=True)
    severity = torch.sqrt(coverage.mean((1, 2, 3)) / SEVERITY_SCALE).clamp(0.1, 1.0)
    return out.clamp(0, 1), coverage.clamp(0, 1), severity
