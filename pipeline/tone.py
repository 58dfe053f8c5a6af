"""take_back_brightness (restore's keep_brightness): take back the smooth brightness change of a restore and keep the fine one.

The network learned to lift the veil of spray that synthetic downpours and haze carry. A real rainy
photo without mist has no veil, and it comes back darker (0.2-9 grey levels on the real photos of
scripts/real_rain_check.py, 19 on a misty one) while its streaks are taken out at a scale of a few
pixels. This undoes the first and keeps the second (all 8 photos within 0.7 levels, the same change
at the streaks' scale):

    d = after - before                           per channel
    m = median of d in 16 x 16 blocks            the shift most pixels of a block share: a streak that
                                                 was taken away covers few of them, a veil all of them
    s = m smoothed over 3 x 3 blocks, upsampled bilinearly to the image
    out = clamp(after - s, 0, 1)

It also takes back what haze removal is for, and dense rain's own glow: use it on photos with rain or
snow and no mist. On the held-out synthetic recipes (weather-m-v4.17) it costs light rain 0.25 dB, snow
0.9, downpours (which carry a veil) 7.1 and haze 10.1 (docs/BENCHMARKS.md, "Keep brightness").
"""
import torch
import torch.nn.functional as F

BLOCK = 16
BAND_ROWS = 64           # block rows per median call: 1024 px of a 8192 px wide image is 24 M values


def take_back_brightness(before: torch.Tensor, after: torch.Tensor, block: int = BLOCK) -> torch.Tensor:
    """before, after (B, C, H, W) in [0, 1], the same shape -> after without the smooth part of after - before."""
    if before.shape != after.shape or before.ndim != 4:
        raise ValueError(f"take_back_brightness needs two (B, C, H, W) images of one shape; got {tuple(before.shape)} "
                         f"and {tuple(after.shape)}")
    B, C, H, W = after.shape
    d = F.pad((after - before).float(), (0, (-W) % block, 0, (-H) % block), mode="replicate")
    h, w = d.shape[-2] // block, d.shape[-1] // block
    shift = torch.empty(B, C, h, w, device=d.device)
    for r in range(0, h, BAND_ROWS):                       # in bands: the sort's copies stay a band's size
        band = d[..., r * block:(r + BAND_ROWS) * block, :]
        n = band.shape[-2] // block
        cells = band.reshape(B, C, n, block, w, block).permute(0, 1, 2, 4, 3, 5).reshape(B, C, n, w, block * block)
        shift[..., r:r + n, :] = cells.median(dim=-1).values     # torch.quantile refuses over 16 M values
    shift = F.avg_pool2d(F.pad(shift, (1, 1, 1, 1), mode="replicate"), 3, stride=1)
    smooth = F.interpolate(shift, size=d.shape[-2:], mode="bilinear", align_corners=False)[..., :H, :W]
    return (after - smooth.to(after.dtype)).clamp(0, 1)
