"""Tiled inference: tile plans, exact blending, agreement with whole-image inference, callbacks."""
import math
from types import SimpleNamespace

import pytest
import torch
import torch.nn.functional as F

from weather_restore.models.tiling import ANALYSIS_SIZE, global_signals, plan_tiles, restore_image, signal_steps


@pytest.mark.parametrize("H, W, tile, overlap, align", [
    (1, 1, 64, 16, 8), (64, 64, 64, 16, 8), (65, 64, 64, 16, 8), (150, 190, 64, 16, 8),
    (1000, 333, 128, 32, 32), (97, 301, 40, 10, 8), (50, 50, 10, 9, 8), (31, 17, 5, 0, 1),
    (2160, 3840, 512, 64, 32), (866, 1155, 512, 64, 64), (1080, 1920, 512, 64, 64), (600, 700, 512, 64, 8)])
def test_plan_tiles_covers_every_pixel_within_bounds(H, W, tile, overlap, align):
    tiles = plan_tiles(H, W, tile, overlap, align)
    count = torch.zeros(H, W, dtype=torch.int32)
    for y0, y1, x0, x1 in tiles:
        assert 0 <= y0 < y1 <= H and 0 <= x0 < x1 <= W
        assert y1 - y0 <= tile and x1 - x0 <= tile
        count[y0:y1, x0:x1] += 1
    assert int(count.min()) >= 1
    ys = sorted({(y0, y1) for y0, y1, _, _ in tiles})
    xs = sorted({(x0, x1) for _, _, x0, x1 in tiles})
    assert len(tiles) == len(ys) * len(xs)
    for spans, size in ((ys, H), (xs, W)):
        for (s0, e0), (s1, e1) in zip(spans, spans[1:]):
            assert s1 > s0 and e0 - s1 >= overlap                  # neighbours overlap enough
        assert spans[0][0] == 0 and spans[-1][1] == size
        aligned = [s for s, _ in spans[:-1] if s % align]
        if tile - overlap >= align:
            assert aligned == []                                   # all but the last start on the grid


def padded_work(tiles, align):
    up = lambda n: -(-n // align) * align                       # the network pads each tile to its stride
    return sum(up(y1 - y0) * up(x1 - x0) for y0, y1, x0, x1 in tiles)


@pytest.mark.parametrize("H, W, full_size_work", [(866, 1155, 1024 * 1536), (1080, 1920, 1536 * 2560),
                                                  (600, 700, 1024 * 1024)])
def test_balanced_tiles_cost_less_than_full_size_ones(H, W, full_size_work):
    """As many tiles as full-size ones need, but shorter: 1155 px costs 3 x 448 px, not 3 x 512 px."""
    tiles = plan_tiles(H, W, 512, 64, align=64)
    assert padded_work(tiles, 64) <= 0.88 * full_size_work
    assert max(max(y1 - y0, x1 - x0) for y0, y1, x0, x1 in tiles) <= 512


def test_plan_tiles_counts_and_errors():
    assert plan_tiles(64, 64, 64, 16) == [(0, 64, 0, 64)]
    assert len(plan_tiles(150, 190, 64, 16, 8)) == 3 * 4
    for bad in [dict(tile=0, overlap=0), dict(tile=16, overlap=16), dict(tile=16, overlap=-1)]:
        with pytest.raises(ValueError, match="overlap"):
            plan_tiles(100, 100, **bad)
    with pytest.raises(ValueError, match="1 x 1"):
        plan_tiles(0, 5, 64, 16)


class PixelModel(torch.nn.Module):
    """A pointwise 'restorer' (y = x^2 * (1 + p_0) + 0.1 D): tiling must reproduce it exactly."""

    def __init__(self):
        super().__init__()
        self.w = torch.nn.Parameter(torch.ones(()))
        self.cfg = SimpleNamespace(stride=8)
        self.signal_calls = 0

    def forward(self, x, prior=None, density=None):
        assert prior is not None and density is not None and density.shape[-2:] == x.shape[-2:]
        return SimpleNamespace(image=self.w * x ** 2 * (1 + prior[:, :1, None, None]) * 0.5 + 0.1 * density)

    def predict_signals(self, x):
        self.signal_calls += 1
        B, _, H, W = x.shape
        return SimpleNamespace(prior_logits=x.mean(dim=(1, 2, 3))[:, None].repeat(1, 4),
                               density_logits=x.mean(dim=1, keepdim=True) - 0.5, quality_logits=None)

    def predict_density(self, x):
        self.signal_calls += 1
        return x.mean(dim=1, keepdim=True) - 0.5


def test_blending_is_exact_for_a_pointwise_model():
    torch.manual_seed(0)
    m = PixelModel()
    x = torch.rand(2, 3, 70, 95)
    prior, density = torch.rand(2, 4), torch.rand(2, 1, 70, 95)
    expected = m(x, prior, density).image.clamp(0, 1)
    out = restore_image(m, x, prior, density, tile=32, overlap=8)
    torch.testing.assert_close(out, expected, atol=1e-6, rtol=0)


def test_signals_once_per_image_prior_downscaled_density_at_full_resolution():
    m = PixelModel()
    x = torch.rand(2, 3, 70, 95, generator=torch.Generator().manual_seed(1))
    out = restore_image(m, x, tile=32, overlap=8)
    assert m.signal_calls == 2                                     # once per item at the analysis size, not per tile
    assert ANALYSIS_SIZE == 512 and max(x.shape[-2:]) < ANALYSIS_SIZE
    torch.testing.assert_close(out, restore_image(m, x, *global_signals(m, x), tile=32, overlap=8))
    torch.testing.assert_close(restore_image(m, x, tile=48, overlap=8),     # another tile: the same signals
                               restore_image(m, x, *global_signals(m, x), tile=48, overlap=8))
    m.signal_calls = 0
    p, d = global_signals(m, x, 32)                                # a 32-px analysis, to see it tile
    density_tiles = len(plan_tiles(70, 95, 32, 8, align=8))
    assert density_tiles > 1 and m.signal_calls == 2 * (1 + density_tiles)
    assert p.shape == (2, 4) and d.shape == (2, 1, 70, 95)
    # the pointwise density comes back exactly as the whole full-resolution image would give it ...
    torch.testing.assert_close(d, torch.sigmoid(x.mean(dim=1, keepdim=True) - 0.5), atol=1e-6, rtol=0)
    # ... while the prior sees the whole scene once, downscaled (antialiased, so the mean is kept)
    torch.testing.assert_close(p, x.mean(dim=(1, 2, 3))[:, None].repeat(1, 4).sigmoid(), atol=2e-3, rtol=0)
    m.signal_calls = 0
    small = torch.rand(1, 3, 20, 30)
    global_signals(m, small, 32)
    assert m.signal_calls == 1                                     # fits in one tile: one call
    given = torch.full((1, 4), 0.25)                              # a caller-given prior wins
    torch.testing.assert_close(restore_image(m, x, given, d, tile=32, overlap=8),
                               m(x, given.expand(2, 4), d).image.clamp(0, 1), atol=1e-6, rtol=0)


def test_signals_of_a_bf16_model_on_the_cpu(tiny_model):
    """`--precision bf16` on the CPU: the downscaled copy for the prior is made in float32 (antialiased
    resizing has no bf16 CPU kernel) and the signals match the float32 model's."""
    import copy
    x = torch.rand(1, 3, 48, 72, generator=torch.Generator().manual_seed(2))
    p32, d32 = global_signals(tiny_model, x, 32)
    p16, d16 = global_signals(copy.deepcopy(tiny_model).to(torch.bfloat16), x, 32)
    assert p16.shape == (1, 4) and d16.shape == (1, 1, 48, 72)
    torch.testing.assert_close(p16.float(), p32, atol=0.03, rtol=0)
    torch.testing.assert_close(d16.float(), d32, atol=0.03, rtol=0)


def test_a_model_with_an_autocast_dtype_computes_in_it_and_returns_float32(tiny_model):
    """models.tiling.network_autocast: every network call of the signals and the tiles runs under
    autocast in model.autocast_dtype (the convolutions in bf16), the image comes back float32 and
    close to the float32 restoration; without the attribute (any nn.Module) autocast stays off."""
    x = torch.rand(1, 3, 40, 52, generator=torch.Generator().manual_seed(3))
    ref = restore_image(tiny_model, x, tile=32, overlap=8)
    seen = []
    hook = tiny_model.shallow.register_forward_hook(lambda m, i, o: seen.append(o.dtype))
    try:
        tiny_model.autocast_dtype = torch.bfloat16
        out = restore_image(tiny_model, x, tile=32, overlap=8)
        p, d = global_signals(tiny_model, x, 32)
    finally:
        tiny_model.autocast_dtype = None
        hook.remove()
    assert out.dtype == torch.float32 and p.dtype == d.dtype == torch.float32
    assert seen and set(seen) == {torch.bfloat16}
    torch.testing.assert_close(out, ref, atol=0.03, rtol=0)
    assert (out - ref).abs().mean() < 3e-3
    assert PixelModel().__dict__.get("autocast_dtype") is None          # a plain module: no autocast


def _psnr(a, b):
    return 10 * math.log10(1 / float(((a - b) ** 2).mean()))


def test_tiled_equals_whole_image_with_tiny_model(tiny_model):
    torch.manual_seed(0)
    g = torch.Generator().manual_seed(1)
    clean = F.interpolate(torch.rand(1, 3, 19, 24, generator=g), size=(150, 190), mode="bicubic").clamp(0, 1)
    x = (clean + 0.4 * (torch.rand(1, 1, 150, 190, generator=g) > 0.97)).clamp(0, 1)   # sparse "rain"
    prior, density = global_signals(tiny_model, x, 64)
    with torch.no_grad():
        whole = tiny_model(x, prior, density).image.clamp(0, 1)
    tiled = restore_image(tiny_model, x, prior, density, tile=64, overlap=16)
    assert tiled.shape == whole.shape == (1, 3, 150, 190)
    assert _psnr(tiled, whole) > 45                                # unaligned tiles give ~32 dB here
    # scored against a target close to the whole-image output, the two agree within 0.05 dB
    target = (whole + 0.03 * torch.randn(whole.shape, generator=g)).clamp(0, 1)
    assert abs(_psnr(tiled, target) - _psnr(whole, target)) < 0.05


def test_callbacks_progress_and_stop(tiny_model):
    x = torch.rand(2, 3, 40, 50, generator=torch.Generator().manual_seed(2))
    calls = []
    out = restore_image(tiny_model, x, tile=32, overlap=8, on_tile=lambda d, t: calls.append((d, t)))
    n = len(plan_tiles(40, 50, 32, 8, tiny_model.cfg.stride))
    assert calls == [(i, 2 * n) for i in range(1, 2 * n + 1)]
    assert out.shape == x.shape
    seen = []
    with pytest.raises(InterruptedError, match="2 of"):
        restore_image(tiny_model, x, tile=32, overlap=8, on_tile=lambda d, t: seen.append(d),
                      should_stop=lambda: len(seen) >= 2)
    assert seen == [1, 2]


def test_every_batch_item_any_size_keeps_dtype(tiny_model):
    g = torch.Generator().manual_seed(3)
    x = torch.rand(2, 3, 45, 37, generator=g, dtype=torch.float64)
    out = restore_image(tiny_model, x, tile=24, overlap=6)
    assert out.dtype == torch.float64 and out.shape == x.shape
    assert float(out.min()) >= 0 and float(out.max()) <= 1
    for i in range(2):                                             # item i alone gives the same
        torch.testing.assert_close(out[i:i + 1], restore_image(tiny_model, x[i:i + 1], tile=24, overlap=6))
    assert not torch.equal(out[0], out[1])
    one = restore_image(tiny_model, torch.rand(1, 3, 1, 1))        # whole image in one tile
    assert one.shape == (1, 3, 1, 1)
    small = torch.rand(1, 3, 20, 30, generator=g)
    with torch.no_grad():
        whole = tiny_model(small).image.clamp(0, 1)
    torch.testing.assert_close(restore_image(tiny_model, small, tile=64), whole)
    # overlap 64 with a 16 px tile (e.g. halved after out-of-memory) is cut to 8
    assert restore_image(tiny_model, small, tile=16, overlap=64).shape == small.shape


def test_bad_inputs_name_the_problem(tiny_model):
    with pytest.raises(ValueError, match=r"\(B, 3, H, W\)"):
        restore_image(tiny_model, torch.rand(3, 20, 20))
    with pytest.raises(ValueError, match="tile >= 2"):
        restore_image(tiny_model, torch.rand(1, 3, 20, 20), tile=1)
    with pytest.raises(ValueError, match="resize"):
        restore_image(tiny_model, torch.rand(1, 3, 20, 20), density=torch.rand(1, 1, 10, 20))
