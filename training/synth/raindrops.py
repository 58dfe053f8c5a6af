"""Raindrops on the lens or windscreen: out-of-focus water blobs that refract the scene.

A drop is a small convex lens: it shows a demagnified, upside-down and blurred view of a wider
patch of the scene around it, has a soft (defocused) outline, a darker rim where light is bent away
and a small specular highlight. Drops are rendered all at once: every drop gets a fixed-size patch
of local coordinates, (N, P, P), and the patches are scattered into the image with index_add, so
overlapping drops merge (as they do on glass) and the cost does not grow with a Python loop.
"""
import math

import numpy as np
import torch
import torch.nn.functional as F

from .kernels import gaussian_blur, smoothstep

SEVERITY_SCALE = 0.3         # severity = sqrt(mean alpha / SEVERITY_SCALE)
MAX_DROPS = 120


def add_raindrops(img: torch.Tensor, rng: np.random.Generator):
    """img (3, H, W) -> (image with drops, coverage alpha (1, H, W) in [0, 1], severity in [0.1, 1])."""
    _, h, w = img.shape
    r_min, r_max = 3.0, max(4.0, min(28.0, 0.16 * min(h, w)))
    u = rng.random(MAX_DROPS)
    radii = r_min * (r_max / r_min) ** (u ** 1.6)                # more small drops than large ones
    coverage = rng.uniform(0.06, 0.35)
    n = int(np.clip(np.searchsorted(np.cumsum(np.pi * radii ** 2), coverage * h * w) + 1, 2, MAX_DROPS))
    radii = torch.from_numpy(radii[:n].astype(np.float32)).view(n, 1, 1)
    ry = radii * torch.from_numpy(rng.uniform(1.0, 1.3, (n, 1, 1)).astype(np.float32))   # drops sag downwards
    rx = radii * torch.from_numpy(rng.uniform(0.8, 1.0, (n, 1, 1)).astype(np.float32))
    cy = torch.from_numpy(rng.integers(0, h, (n, 1, 1)))
    cx = torch.from_numpy(rng.integers(0, w, (n, 1, 1)))

    half = int(math.ceil(1.45 * float(ry.max())))
    off = torch.arange(-half, half + 1, dtype=torch.float32)
    dy, dx = off.view(1, -1, 1), off.view(1, 1, -1)               # (1, P, 1), (1, 1, P)
    qy, qx = dy / ry, dx / rx                                    # (N, P, P) drop-local coordinates
    phi = torch.atan2(qy, qx)
    wobble = torch.from_numpy(rng.uniform(0, 0.09, (n, 2, 1, 1)).astype(np.float32))
    phase = torch.from_numpy(rng.uniform(0, 2 * np.pi, (n, 2, 1, 1)).astype(np.float32))
    outline = 1 + wobble[:, 0] * torch.cos(2 * phi + phase[:, 0]) + wobble[:, 1] * torch.cos(3 * phi + phase[:, 1])
    q = torch.sqrt(qx ** 2 + qy ** 2) / outline                   # 1 on the drop's outline
    edge = torch.from_numpy(rng.uniform(0.12, 0.45, (n, 1, 1)).astype(np.float32))
    opacity = torch.from_numpy(rng.uniform(0.75, 1.0, (n, 1, 1)).astype(np.float32))
    alpha = smoothstep(1.0, 1.0 - edge, q) * opacity

    # refraction: an inverted, demagnified view of the surroundings, stronger towards the rim
    zoom = torch.from_numpy(rng.uniform(1.5, 3.5, (n, 1, 1)).astype(np.float32))
    sy = cy - dy * zoom * (1 + 0.35 * q ** 2) - ry * rng.uniform(0, 1.0)
    sx = cx - dx * zoom * (1 + 0.35 * q ** 2)
    grid = torch.stack([sx / (w - 1) * 2 - 1, sy / (h - 1) * 2 - 1], dim=-1).view(1, n, -1, 2)
    scene = gaussian_blur(img, rng.uniform(1.0, 3.0))
    seen = F.grid_sample(scene[None], grid, mode="bilinear", padding_mode="reflection", align_corners=True)[0]
    seen = seen.view(3, n, *q.shape[1:])                          # (3, N, P, P)
    shade = 1 - rng.uniform(0.15, 0.45) * smoothstep(0.55, 1.0, q)
    glint = torch.exp(-((qx + 0.3) ** 2 + (qy + 0.4) ** 2) / (2 * 0.12 ** 2)) * rng.uniform(0.1, 0.4)
    colour = (seen * rng.uniform(0.95, 1.12) * shade + glint).clamp(0, 1)

    # scatter the patches into the image; overlapping drops merge: alpha = 1 - prod(1 - a)
    py, px = cy + dy.long(), cx + dx.long()                       # (N, P, P) target pixels
    inside = ((py >= 0) & (py < h) & (px >= 0) & (px < w)).expand_as(alpha) & (alpha > 0)
    idx = (py * w + px).expand_as(alpha)[inside]
    a = alpha[inside].clamp(max=0.999)
    log_clear = torch.zeros(h * w).index_add_(0, idx, torch.log1p(-a))
    weight = torch.zeros(h * w).index_add_(0, idx, a)
    col = torch.zeros(3, h * w).index_add_(1, idx, colour[:, inside] * a)
    cover = (1 - torch.exp(log_clear)).view(1, h, w)
    col = (col / weight.clamp_min(1e-6)).view(3, h, w)
    out = img * (1 - cover) + col * cover
    severity = float(np.clip(np.sqrt(cover.mean().item() / SEVERITY_SCALE), 0.1, 1.0))
    return out.clamp(0, 1), cover.clamp(0, 1), severity
