"""Raindrops on the lens, batched: soft round masks that show a blurred, inverted, demagnified view
of the scene around them, with a darker rim and a glint (training/synth/raindrops.py's drops).

Every live drop of the batch gets a patch of local coordinates, its size set by the drop's size
class (most drops are small, so small patches), and the patches are summed into the images with
index_add. The sums are taken in fixed point (int64, 2^-24 steps): integer addition does not
depend on the order, so the result is bit-identical on every run, GPUs' atomic adds included.
Overlapping drops merge as on glass: alpha = 1 - prod(1 - a).
"""
import math

import torch

from ..synth.kernels import smoothstep
from ..synth.raindrops import MAX_DROPS, SEVERITY_SCALE
from .ops import gaussian_blur, uniform

SIZE_CLASSES = (6.0, 12.0)   # vertical radius bounds (px) of the patch size classes
FIXED_POINT = float(1 << 24)


def _reflect(v: torch.Tensor, n: int) -> torch.Tensor:
    """Coordinates reflected into [0, n - 1] (grid_sample's reflection padding, align_corners)."""
    if n == 1:
        return torch.zeros_like(v)
    period = 2 * (n - 1)
    v = torch.remainder(v.abs(), period)
    return torch.where(v > n - 1, period - v, v)


def _bilinear(scene_flat: torch.Tensor, sample: torch.Tensor, y: torch.Tensor, x: torch.Tensor, h: int, w: int):
    """scene_flat (N * H * W, 3); sample, y, x (M, P, P) -> (M, P, P, 3), bilinear, reflected borders."""
    y, x = _reflect(y, h), _reflect(x, w)
    y0, x0 = y.floor().clamp(0, h - 1), x.floor().clamp(0, w - 1)
    wy, wx = (y - y0)[..., None], (x - x0)[..., None]
    y0, x0 = y0.long(), x0.long()
    y1, x1 = (y0 + 1).clamp(max=h - 1), (x0 + 1).clamp(max=w - 1)
    base = sample * (h * w)
    at = lambda yy, xx: scene_flat[base + yy * w + xx]                          # noqa: E731
    return (at(y0, x0) * (1 - wx) + at(y0, x1) * wx) * (1 - wy) + (at(y1, x0) * (1 - wx) + at(y1, x1) * wx) * wy


def add_raindrops(img: torch.Tensor, g: torch.Generator):
    """img (N, 3, H, W) -> (images with drops, coverage (N, 1, H, W) in [0, 1], severity (N,) in [0.1, 1])."""
    n, _, h, w = img.shape
    dev = img.device
    r_min, r_max = 3.0, max(4.0, min(28.0, 0.16 * min(h, w)))
    radii = r_min * (r_max / r_min) ** (uniform(g, (n, MAX_DROPS)) ** 1.6)   # more small drops than large
    coverage = uniform(g, (n, 1), 0.06, 0.35)
    count = ((torch.cumsum(math.pi * radii ** 2, 1) < coverage * h * w).sum(1) + 1).clamp(2, MAX_DROPS)
    live = torch.arange(MAX_DROPS, device=dev).view(1, -1) < count.view(-1, 1)     # (N, D)
    drop = {"ry": radii * uniform(g, (n, MAX_DROPS), 1.0, 1.3),                  # drops sag downwards
            "rx": radii * uniform(g, (n, MAX_DROPS), 0.8, 1.0),
            "cy": torch.randint(0, h, (n, MAX_DROPS), generator=g, device=dev).float(),
            "cx": torch.randint(0, w, (n, MAX_DROPS), generator=g, device=dev).float()}
    wobble, phase = uniform(g, (n, MAX_DROPS, 2), 0, 0.09), uniform(g, (n, MAX_DROPS, 2), 0, 2 * math.pi)
    drop.update(w2=wobble[..., 0], w3=wobble[..., 1], c2=torch.cos(phase[..., 0]), s2=torch.sin(phase[..., 0]),
                c3=torch.cos(phase[..., 1]), s3=torch.sin(phase[..., 1]),
                edge=uniform(g, (n, MAX_DROPS), 0.12, 0.45), opacity=uniform(g, (n, MAX_DROPS), 0.75, 1.0),
                zoom=uniform(g, (n, MAX_DROPS), 1.5, 3.5))
    per_image = {"lift": uniform(g, n, 0, 1.0), "rim": uniform(g, n, 0.15, 0.45),     # as raindrops.py
                 "glint": uniform(g, n, 0.1, 0.4), "gain": uniform(g, n, 0.95, 1.12)}
    scene = gaussian_blur(img, uniform(g, n, 1.0, 3.0)).permute(0, 2, 3, 1).reshape(n * h * w, 3)

    sample, which = live.nonzero(as_tuple=True)                                  # the batch's live drops
    d = {k: v[sample, which] for k, v in drop.items()}
    d.update({k: v[sample] for k, v in per_image.items()})
    sums = torch.zeros(n * h * w, 5, dtype=torch.int64, device=dev)             # log clear, weight, colour
    size = torch.bucketize(d["ry"], torch.tensor(SIZE_CLASSES, device=dev))
    for cls in range(len(SIZE_CLASSES) + 1):
        m = (size == cls).nonzero()[:, 0]
        if len(m) == 0:
            continue
        e = {k: v[m].view(-1, 1, 1) for k, v in d.items()}
        half = int(math.ceil(1.45 * float(d["ry"][m].max())))
        off = torch.arange(-half, half + 1, device=dev, dtype=torch.float32)
        dy, dx = off.view(1, -1, 1), off.view(1, 1, -1)
        qy, qx = dy / e["ry"], dx / e["rx"]                                      # (M, P, P) drop-local
        rho = torch.sqrt(qx ** 2 + qy ** 2)
        c, s = qx / rho.clamp_min(1e-6), qy / rho.clamp_min(1e-6)               # cos, sin of the polar angle
        c2, s2, c3, s3 = c * c - s * s, 2 * c * s, c * (4 * c * c - 3), s * (3 - 4 * s * s)
        outline = 1 + e["w2"] * (c2 * e["c2"] - s2 * e["s2"]) + e["w3"] * (c3 * e["c3"] - s3 * e["s3"])
        q = rho / outline                                                       # 1 on the outline
        py, px = e["cy"] + dy, e["cx"] + dx
        inside = (py >= 0) & (py < h) & (px >= 0) & (px < w)
        alpha = (smoothstep(1.0, 1.0 - e["edge"], q) * e["opacity"]).clamp(max=0.999) * inside
        # refraction: an inverted, demagnified view of the surroundings, stronger towards the rim
        bend = e["zoom"] * (1 + 0.35 * q ** 2)
        seen = _bilinear(scene, sample[m].view(-1, 1, 1), e["cy"] - dy * bend - e["ry"] * e["lift"],
                         e["cx"] - dx * bend, h, w)                              # (M, P, P, 3)
        shade = 1 - e["rim"] * smoothstep(0.55, 1.0, q)
        glint = torch.exp(-((qx + 0.3) ** 2 + (qy + 0.4) ** 2) / (2 * 0.12 ** 2)) * e["glint"]
        colour = (seen * (e["gain"] * shade)[..., None] + glint[..., None]).clamp(0, 1)
        vals = torch.cat([torch.log1p(-alpha)[..., None], alpha[..., None], colour * alpha[..., None]], -1)
        idx = sample[m].view(-1, 1, 1) * (h * w) + (py.clamp(0, h - 1) * w + px.clamp(0, w - 1)).long()
        sums.index_add_(0, idx.reshape(-1), torch.round(vals.reshape(-1, 5) * FIXED_POINT).long())
    sums = (sums.double() / FIXED_POINT).float().view(n, h, w, 5).permute(0, 3, 1, 2)
    cover = 1 - torch.exp(sums[:, :1])
    col = sums[:, 2:] / sums[:, 1:2].clamp_min(1e-6)
    out = img * (1 - cover) + col * cover
    severity = torch.sqrt(cover.mean((1, 2, 3)) / SEVERITY_SCALE).clamp(0.1, 1.0)
    return out.clamp(0, 1), cover.clamp(0, 1), severity
