"""Losses of the restorer: image terms, head terms, and Perceive-IR's difficulty-adaptive weights.

Image terms return one value per sample (B,) so that difficulty-adaptive weighting can scale
each sample before the mean:
    pixel     Charbonnier  sqrt((y - t)^2 + eps^2)                       (robust L1)
    frequency L1 between rfft2(y) and rfft2(t), real and imaginary parts  (sharp edges, streak spectra)
    ssim      1 - SSIM, Gaussian window 11x11, sigma 1.5, on each RGB channel
    psnr      10 log10(MSE + eps), i.e. minus the PSNR of the sample: the benchmark's own measure.
              Its gradient is scaled by 1 / MSE, so every sample counts in dB as the mean PSNR of a
              test set does, and a bright leftover streak costs more than under an L1
    streak    Charbonnier on the pixels the weather changed (|weathered - clean| > threshold in any
              channel), averaged over all pixels: those pixels weigh (pixel + streak) / pixel as much.
              On Rain100L most of a restorer's remaining error sits there (scripts/streak_error_split.py)
Head terms supervise the learned signal providers with the synthesizer's exact labels.
"""
from typing import Optional

import torch
import torch.nn.functional as F

TIER_LOW, TIER_MEDIUM, TIER_HIGH = 0, 1, 2


def charbonnier_map(y: torch.Tensor, t: torch.Tensor, eps: float = 1e-3) -> torch.Tensor:
    """(B, C, H, W) x2 -> (B, C, H, W): sqrt((y - t)^2 + eps^2) per pixel and channel."""
    return torch.sqrt((y - t) ** 2 + eps * eps)


def charbonnier(y: torch.Tensor, t: torch.Tensor, eps: float = 1e-3) -> torch.Tensor:
    """(B, C, H, W) x2 -> (B,)"""
    return charbonnier_map(y, t, eps).mean(dim=(1, 2, 3))


def streak_charbonnier(y: torch.Tensor, t: torch.Tensor, weathered: torch.Tensor, threshold: float,
                       eps: float = 1e-3) -> torch.Tensor:
    """(B, C, H, W) x3 -> (B,): Charbonnier on the pixels where weathered and t differ by more than
    `threshold` in any channel (all channels of such a pixel), zero elsewhere, averaged over all pixels."""
    changed = ((weathered - t).abs().amax(dim=1, keepdim=True) > threshold).to(y.dtype)     # (B, 1, H, W)
    return (charbonnier_map(y, t, eps) * changed).mean(dim=(1, 2, 3))


def frequency_l1(y: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    """(B, C, H, W) x2 -> (B,): mean |FFT(y) - FFT(t)| over real and imaginary parts (orthonormal FFT)."""
    fy = torch.fft.rfft2(y.float(), norm="ortho")
    ft = torch.fft.rfft2(t.float(), norm="ortho")
    d = torch.view_as_real(fy - ft).abs()                      # (B, C, H, W//2+1, 2)
    return d.mean(dim=(1, 2, 3, 4))


def psnr_loss(y: torch.Tensor, t: torch.Tensor, eps: float = 1e-5) -> torch.Tensor:
    """(B, C, H, W) x2 -> (B,): 10 log10(MSE + eps), minus the PSNR in dB (data range 1). eps caps
    a sample's PSNR at 50 dB, so a flat crop restored nearly exactly does not take over the batch."""
    return 10 * torch.log10(((y - t) ** 2).mean(dim=(1, 2, 3)) + eps)


def _gaussian_window(size: int, sigma: float, channels: int, device, dtype) -> torch.Tensor:
    x = torch.arange(size, device=device, dtype=dtype) - (size - 1) / 2
    g = torch.exp(-x ** 2 / (2 * sigma ** 2))
    g = g / g.sum()
    return (g[:, None] * g[None, :]).expand(channels, 1, size, size).contiguous()  # (C, 1, k, k)


def ssim(y: torch.Tensor, t: torch.Tensor, window: int = 11, sigma: float = 1.5,
         data_range: float = 1.0) -> torch.Tensor:
    """(B, C, H, W) x2 -> (B,) mean SSIM (valid region, no padding). Images smaller than the
    window use a window that fits."""
    C = y.shape[1]
    window = min(window, y.shape[-1], y.shape[-2])
    w = _gaussian_window(window, sigma, C, y.device, y.dtype)
    c1, c2 = (0.01 * data_range) ** 2, (0.03 * data_range) ** 2
    mu_y = F.conv2d(y, w, groups=C)
    mu_t = F.conv2d(t, w, groups=C)
    syy = F.conv2d(y * y, w, groups=C) - mu_y ** 2
    stt = F.conv2d(t * t, w, groups=C) - mu_t ** 2
    syt = F.conv2d(y * t, w, groups=C) - mu_y * mu_t
    s = ((2 * mu_y * mu_t + c1) * (2 * syt + c2)) / ((mu_y ** 2 + mu_t ** 2 + c1) * (syy + stt + c2))
    return s.mean(dim=(1, 2, 3))


def image_losses(y: torch.Tensor, t: torch.Tensor, w: dict, weathered: Optional[torch.Tensor] = None) -> dict:
    """Per-sample (B,) image terms, each already multiplied by its weight from the loss config
    (computed in float32 even under autocast: SSIM's E[y^2] - mu^2 in bf16 cancels to zero or below, and
    its -inf once ended a CPU bf16 run at step 4). The streak term needs the weathered input."""
    with torch.autocast(y.device.type, enabled=False):
        return _image_losses(y.float(), t.float(), w, None if weathered is None else weathered.float())


def _image_losses(y: torch.Tensor, t: torch.Tensor, w: dict, weathered: Optional[torch.Tensor]) -> dict:
    out = {"pixel": w["pixel"] * charbonnier(y, t, w.get("charbonnier_eps", 1e-3))}
    if w.get("streak", 0):
        if weathered is None:
            raise ValueError("the streak loss needs the weathered input: image_losses(y, t, w, weathered)")
        out["streak"] = w["streak"] * streak_charbonnier(y, t, weathered, w.get("streak_threshold", 0.02),
                                                         w.get("charbonnier_eps", 1e-3))
    if w.get("freq", 0):
        out["freq"] = w["freq"] * frequency_l1(y, t)
    if w.get("ssim", 0):
        out["ssim"] = w["ssim"] * (1 - ssim(y, t))
    if w.get("psnr", 0):
        out["psnr"] = w["psnr"] * psnr_loss(y, t)
    return out


def prior_loss(logits: torch.Tensor, prior: torch.Tensor) -> torch.Tensor:
    """Prior head (B, K) logits vs the synthesizer's (B, K) labels in [0, 1]."""
    if logits.shape != prior.shape:
        raise ValueError(f"prior logits {tuple(logits.shape)} and labels {tuple(prior.shape)} differ; "
                         f"the dataset must give prior (B, 4) in the order of WEATHER_TYPES")
    return F.binary_cross_entropy_with_logits(logits, prior.to(logits))


def density_loss(logits: torch.Tensor, density: torch.Tensor, recall: float = 0.0) -> torch.Tensor:
    """Density head (B, 1, H, W) logits vs the synthesizer's density map (B, 1, H, W) in [0, 1].
    `recall` > 0 weights each pixel by 1 + recall x its label (normalised to mean 1): the restorer
    removes what the map points at, and rain the map misses costs more than rain it sees where there
    is none (docs/EXPERIMENTS.md, "What the density map misses")."""
    if density.shape[-2:] != logits.shape[-2:]:
        density = F.interpolate(density, size=logits.shape[-2:], mode="bilinear", align_corners=False)
    density = density.to(logits)
    if not recall:
        return F.binary_cross_entropy_with_logits(logits, density)
    weight = 1 + recall * density
    return F.binary_cross_entropy_with_logits(logits, density, weight=weight / weight.mean())


def quality_loss(logits: torch.Tensor, tiers: torch.Tensor) -> torch.Tensor:
    """Quality head (N, 3) logits vs integer tiers (N,) in {low, medium, high}."""
    return F.cross_entropy(logits, tiers)


def quality_tiers(weathered: torch.Tensor, clean: torch.Tensor, n: int) -> torch.Tensor:
    """Tier labels of [weathered (B), clean[:n], medium[:n]]: low, high, medium, except that a
    sample the synthesizer left clean (the `clean` recipe: weathered == clean to 1/255) is high in
    all three, so the head is never told that one image is both degraded and clean."""
    is_clean = (weathered - clean).abs().flatten(1).amax(1) < 1 / 255                  # (B,)
    high = torch.full_like(is_clean, TIER_HIGH, dtype=torch.long)
    low = torch.where(is_clean, high, torch.full_like(high, TIER_LOW))
    medium = torch.where(is_clean[:n], high[:n], torch.full_like(high[:n], TIER_MEDIUM))
    return torch.cat([low, high[:n], medium])


def medium_tier(clean: torch.Tensor, weathered: torch.Tensor, u_range, generator: Optional[torch.Generator] = None):
    """Partly restored images: clean + u * (weathered - clean), one u per sample in u_range."""
    lo, hi = u_range
    u = lo + (hi - lo) * torch.rand(clean.shape[0], 1, 1, 1, generator=generator)
    return clean + u.to(clean) * (weathered - clean)


def difficulty_weights(quality_score: torch.Tensor, strength: float) -> torch.Tensor:
    """Perceive-IR difficulty-adaptive weights from the quality score (B,) in [0, 1] of the
    current outputs: w = 1 + strength * (1 - score), normalised to mean 1, so badly restored
    (hard) samples weigh more. strength = 0 gives all ones."""
    w = 1.0 + strength * (1.0 - quality_score.detach().clamp(0, 1))
    return w / w.mean()


def srd_loss(attentions, target: torch.Tensor) -> torch.Tensor:
    """Soft residual distillation: each SAR attention map (B, 1, h_i, w_i) vs the teacher's soft
    degradation map (B, 1, h, w) in [0, 1], resized to each level (area for shrinking)."""
    total = 0.0
    for a in attentions:
        t = target
        if t.shape[-2:] != a.shape[-2:]:
            mode = "area" if t.shape[-1] >= a.shape[-1] else "bilinear"
            t = F.interpolate(t, size=a.shape[-2:], mode=mode,
                              **({} if mode == "area" else {"align_corners": False}))
        with torch.autocast(a.device.type, enabled=False):          # CUDA autocast refuses binary_cross_entropy
            total = total + F.binary_cross_entropy(a.float().clamp(1e-6, 1 - 1e-6), t.float().clamp(0, 1))
    return total / max(1, len(attentions))


def feature_distill_loss(student_feats, teacher_feats) -> torch.Tensor:
    """L1 between the student's SAR features on the weathered image and the teacher encoder's
    features on the clean one, normalised per level by the teacher's mean magnitude."""
    total = 0.0
    for s, t in zip(student_feats, teacher_feats):
        total = total + (s - t).abs().mean() / (t.abs().mean() + 1e-6)
    return total / max(1, len(student_feats))

