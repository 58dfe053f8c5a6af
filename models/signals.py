"""The CLIP-agnostic interface between signal providers and the restorer (DESIGN.md, "the three signals").

weather prior p : (B, K) in [0, 1], one column per WEATHER_TYPES entry
density D       : (B, 1, H, W) in [0, 1], how strongly each pixel is degraded
quality         : (B, 3) probabilities over QUALITY_TIERS, score = P(high) + 0.5 * P(medium)
"""
import torch

WEATHER_TYPES = ("rain_streaks", "raindrops", "snow", "haze")
QUALITY_TIERS = ("low", "medium", "high")


def quality_score(probs: torch.Tensor) -> torch.Tensor:
    """(B, 3) tier probabilities -> (B,) score in [0, 1]: 0 = degraded, 1 = clean."""
    return probs[:, 2] + 0.5 * probs[:, 1]


def check_prior(p: torch.Tensor, batch: int) -> torch.Tensor:
    if p.ndim != 2 or p.shape[1] != len(WEATHER_TYPES) or p.shape[0] not in (1, batch):
        raise ValueError(
            f"weather prior must have shape (B, {len(WEATHER_TYPES)}) with B = 1 or {batch} "
            f"(columns {', '.join(WEATHER_TYPES)}); got {tuple(p.shape)}")
    return p.clamp(0, 1).expand(batch, -1)


def check_density(d: torch.Tensor, batch: int, size=None) -> torch.Tensor:
    """d clamped to [0, 1] and expanded to the batch; `size` (H, W), if given, is the image's size."""
    if d.ndim != 4 or d.shape[1] != 1 or d.shape[0] not in (1, batch):
        raise ValueError(
            f"density map must have shape (B, 1, H, W) with B = 1 or {batch}; got {tuple(d.shape)}")
    if size is not None and tuple(d.shape[-2:]) != tuple(size):
        raise ValueError(f"density map is {tuple(d.shape[-2:])} but the image is {tuple(size)}; "
                         f"resize the density (mask) to the image size first")
    return d.clamp(0, 1).expand(batch, -1, -1, -1)
