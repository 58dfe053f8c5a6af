"""pipeline.restore: strength, region, masks, batches, tiling, out-of-memory fallback, interrupts."""
from types import SimpleNamespace

import pytest
import torch
import torch.nn as nn

from weather_restore.models.tiling import plan_tiles, restore_image
from weather_restore.pipeline.layout import InputError
from weather_restore.pipeline.masks import feather_mask, fit_mask
from weather_restore.pipeline.restore import (NumericalError, OutOfMemory, check_prior_rows, restore_batch,
                                              restore_tiled)


class LocalModel(nn.Module):
    """A stand-in restorer with a per-pixel output y = 0.5 x + 0.25 (so tiles and crops agree exactly
    with the whole image); it records every call and can fake out-of-memory above a tile size."""

    def __init__(self, stride: int = 8, oom_above: int = 0, nan: bool = False):
        super().__init__()
        self.zero = nn.Parameter(torch.zeros(1))
        self.cfg = SimpleNamespace(stride=stride, dims=[8])
        self.oom_above, self.nan = oom_above, nan
        self.calls, self.ooms = [], 0

    def forward(self, x, prior=None, density=None):
        if self.oom_above and max(x.shape[-2:]) > self.oom_above:
            self.ooms += 1
            raise torch.OutOfMemoryError("fake: CUDA out of memory")
        self.calls.append(SimpleNamespace(shape=tuple(x.shape), mean=x.mean().item(), prior=prior, density=density))
        y = x * 0.5 + 0.25 + self.zero
        return SimpleNamespace(image=y * float("nan") if self.nan else y)

    def predict_signals(self, x):
        B, _, H, W = x.shape
        return SimpleNamespace(prior_logits=torch.zeros(B, 4), density_logits=torch.zeros(B, 1, H, W),
                               quality_logits=torch.zeros(B, 3))

    def predict_density(self, x):
        B, _, H, W = x.shape
        return torch.zeros(B, 1, H, W)


def f(x):
    return x * 0.5 + 0.25


def test_full_strength_is_the_restored_image():
    x = torch.rand(2, 3, 20, 24)
    out = restore_batch(LocalModel(), x)
    assert out.shape == x.shape and out.dtype == torch.float32
    assert torch.allclose(out, f(x), atol=1e-6)


def test_strength_blends_linearly_and_zero_skips_the_network():
    x = torch.rand(1, 3, 16, 16)
    m = LocalModel()
    assert torch.equal(restore_batch(m, x, strength=0.0), x) and not m.calls
    half = restore_batch(m, x, strength=0.5)
    assert torch.allclose(half, 0.5 * x + 0.5 * f(x), atol=1e-6)


def test_every_batch_item_is_processed_with_its_own_pixels():
    x = torch.stack([torch.full((3, 16, 16), v) for v in (0.1, 0.5, 0.9)])
    m = LocalModel()
    out = restore_batch(m, x)
    assert [round(c.mean, 4) for c in m.calls] == [0.1, 0.5, 0.9]
    assert [round(v, 4) for v in out[:, 0, 0, 0].tolist()] == [0.3, 0.5, 0.7]


def test_region_restores_only_inside_feathered():
    x = torch.rand(1, 3, 96, 128)
    region = torch.zeros(1, 96, 128)
    region[:, 40:56, 50:80] = 1
    m = LocalModel()
    out = restore_batch(m, x, region=region, feather=4, overlap=8)
    w = feather_mask(fit_mask(region, 1, (96, 128), "region"), 4)
    assert torch.allclose(out, x + w * (f(x) - x), atol=1e-6)
    assert torch.equal(out[..., :8, :], x[..., :8, :])         # far outside: untouched, bit for bit
    assert torch.allclose(out[..., 44:52, 60:70], f(x)[..., 44:52, 60:70], atol=1e-6)
    H, W = m.calls[0].shape[-2:]
    assert H < 96 and W < 128 and H % 8 == 0 and W % 8 == 0    # only the region's box went through the network


def test_region_crop_gets_whole_image_signals():
    x = torch.rand(1, 3, 64, 64)
    region = torch.zeros(1, 64, 64)
    region[:, 40:, 40:] = 1
    m = LocalModel()
    restore_batch(m, x, region=region, feather=0, overlap=8)
    call = m.calls[-1]
    assert call.prior is not None and call.prior.shape == (1, 4)      # from global_signals, not the crop
    assert call.density is not None and call.density.shape[-2:] == call.shape[-2:]


def test_empty_region_leaves_the_image_and_skips_the_network():
    x = torch.rand(2, 3, 32, 32)
    m = LocalModel()
    out = restore_batch(m, x, region=torch.zeros(1, 64, 64))   # LoadImage's default mask, other size
    assert torch.equal(out, x) and not m.calls


def test_region_per_item():
    x = torch.rand(2, 3, 32, 32)
    region = torch.stack([torch.zeros(32, 32), torch.ones(32, 32)])
    out = restore_batch(LocalModel(), x, region=region, feather=0)
    assert torch.equal(out[0], x[0]) and torch.allclose(out[1], f(x[1]), atol=1e-6)


def test_prior_and_density_reach_the_network():
    x = torch.rand(2, 3, 16, 16)
    prior = torch.tensor([[0.9, 0.0, 0.0, 0.2]])
    density = torch.full((1, 8, 8), 0.25)                      # same aspect: resized
    density[:, :, 4:] = 0.75
    m = LocalModel()
    restore_batch(m, x, prior=prior, density=density)
    assert len(m.calls) == 2
    for c in m.calls:
        assert torch.allclose(c.prior, prior)
        assert c.density.shape == (1, 1, 16, 16)
        assert c.density[0, 0, 0, 0].item() == pytest.approx(0.25) and c.density[0, 0, 0, 15].item() == pytest.approx(0.75)


def test_bad_inputs_name_themselves():
    x = torch.rand(2, 3, 16, 16)
    m = LocalModel()
    with pytest.raises(InputError, match="prior was computed for 3 images but the image batch has 2"):
        restore_batch(m, x, prior=torch.rand(3, 4))
    with pytest.raises(InputError, match=r"prior must have shape \(B, 4\)"):
        restore_batch(m, x, prior=torch.rand(2, 3))
    with pytest.raises(InputError, match="density has a batch of 3"):
        restore_batch(m, x, density=torch.rand(3, 16, 16))
    with pytest.raises(InputError, match="region is 10x30"):
        restore_batch(m, x, region=torch.rand(1, 10, 30))
    with pytest.raises(InputError, match="strength must be in"):
        restore_batch(m, x, strength=1.5)
    with pytest.raises(InputError, match="tile_overlap < tile_size"):
        restore_batch(m, x, tile=64, overlap=64)
    assert not m.calls


def test_images_smaller_than_the_stride_are_restored(tiny_model):
    x = torch.rand(1, 3, 3, 5)                                  # the network pads to its stride (8)
    out = restore_batch(tiny_model, x)
    assert out.shape == (1, 3, 3, 5) and torch.isfinite(out).all() and not torch.equal(out, x)


def test_check_prior_rows_broadcasts_one_row():
    p = check_prior_rows(torch.tensor([[1.5, 0.2, 0.0, -1.0]]), 3)
    assert p.shape == (3, 4) and p[2].tolist() == pytest.approx([1.0, 0.2, 0.0, 0.0])


def test_tiles_and_progress_cover_the_batch():
    x = torch.rand(2, 3, 40, 56)
    m = LocalModel()
    seen = []
    out = restore_batch(m, x, tile=24, overlap=8, on_progress=lambda d, t: seen.append((d, t)))
    per_item = len(plan_tiles(40, 56, 24, 8, align=8))
    assert per_item > 1 and len(m.calls) == 2 * per_item
    steps = 2 * (1 + per_item)                                  # per item: one signals call, then its tiles
    assert seen[0] == (0, steps)                                # shown before any work
    assert [d for d, _ in seen] == list(range(0, steps + 1))
    assert all(t == steps for _, t in seen)
    assert torch.allclose(out, f(x), atol=1e-6)                 # feathered blend of a local op is exact


def test_oom_halves_the_tile_and_keeps_it_for_later_items():
    x = torch.rand(2, 3, 100, 100)
    m = LocalModel(oom_above=32)
    tiles_tried = []
    out = restore_batch(m, x, tile=512, overlap=16, min_tile=16, on_oom=tiles_tried.append)
    assert tiles_tried == [50, 25]                              # 100 (whole image) -> 50 -> 25
    assert m.ooms == 2                                          # the second item starts at 25
    assert max(max(c.shape[-2:]) for c in m.calls) <= 25
    assert torch.allclose(out, f(x), atol=1e-6)


def test_oom_at_the_smallest_tile_is_a_clear_error():
    m = LocalModel(oom_above=8)
    with pytest.raises(OutOfMemory, match=r"even with 32px tiles on a 64x64 image.*fp16"):
        restore_tiled(m, torch.rand(1, 3, 64, 64), tile=64, overlap=8, min_tile=32)


def test_other_errors_are_not_taken_for_oom():
    class Broken(LocalModel):
        def forward(self, x, prior=None, density=None):
            raise ValueError("not memory")
    with pytest.raises(ValueError, match="not memory"):
        restore_tiled(Broken(), torch.rand(1, 3, 32, 32), tile=32, overlap=8)


def test_should_stop_interrupts_between_tiles():
    x = torch.rand(1, 3, 48, 48)
    m = LocalModel()
    calls = iter([False] * 4 + [True])                          # the item, its signals call, two tiles
    with pytest.raises(InterruptedError):
        restore_batch(m, x, tile=16, overlap=4, should_stop=lambda: next(calls, True))
    assert len(m.calls) == 2 < len(plan_tiles(48, 48, 16, 4, align=8))


def test_should_stop_is_asked_before_the_first_tile():
    """The whole-image signals phase (minutes on a large image on CPU) stops too, and shows progress."""
    class Counting(LocalModel):
        signal_calls = 0

        def predict_signals(self, x):
            self.signal_calls += 1
            return super().predict_signals(x)

        def predict_density(self, x):
            self.signal_calls += 1
            return super().predict_density(x)

    m = Counting()
    seen = []
    stop = iter([False, False, False, True])                    # item, prior, first density tile, second
    with pytest.raises(InterruptedError, match="signals stopped"):
        restore_batch(m, torch.rand(1, 3, 600, 700), should_stop=lambda: next(stop, True),
                      on_progress=lambda d, t: seen.append((d, t)))
    assert m.signal_calls == 2 and not m.calls                  # no tile was restored
    total = 1 + len(plan_tiles(600, 700, 512, 64, align=8)) + len(plan_tiles(600, 700, 512, 64, align=8))
    assert seen == [(0, total), (1, total), (2, total)]


def test_nan_output_advice_follows_the_weights_dtype():
    with pytest.raises(NumericalError, match="not a precision problem") as fp32:
        restore_batch(LocalModel(nan=True), torch.rand(1, 3, 16, 16))
    assert "choose precision fp32" not in str(fp32.value)
    with pytest.raises(NumericalError, match="choose precision fp32"):
        restore_batch(LocalModel(nan=True).half(), torch.rand(1, 3, 16, 16).half())


def test_real_tiny_model_matches_restore_image(tiny_model):
    torch.manual_seed(1)
    x = torch.rand(2, 3, 24, 36)
    out = restore_batch(tiny_model, x, tile=24, overlap=8)
    ref = restore_image(tiny_model, x, tile=24, overlap=8)
    assert out.shape == (2, 3, 24, 36) and torch.isfinite(out).all()
    assert 0 <= out.min() and out.max() <= 1
    assert torch.allclose(out, ref, atol=1e-6)
    one = restore_batch(tiny_model, x[1:], tile=24, overlap=8)
    assert torch.allclose(out[1:], one, atol=1e-5)              # items do not see each other


def test_oom_while_analysing_the_whole_image_for_a_region_also_shrinks():
    class Analysing(LocalModel):
        n = 0

        def predict_signals(self, x):                           # the prior's copy fits
            self.n += 1
            return super().predict_signals(x)

        def predict_density(self, x):                           # the first density tile does not
            self.n += 1
            if self.n == 2:
                assert max(x.shape[-2:]) == 336                     # 600 px in two balanced tiles of <= 512 px
                self.ooms += 1
                raise torch.OutOfMemoryError("fake")
            return super().predict_density(x)

    x = torch.rand(1, 3, 600, 600)
    region = torch.zeros(1, 600, 600)
    region[:, 40:50, 40:50] = 1
    m = Analysing()
    tiles_tried = []
    out = restore_batch(m, x, region=region, feather=0, overlap=8, tile=128, min_tile=16, on_oom=tiles_tried.append)
    assert tiles_tried == [256] and m.ooms == 1
    assert torch.allclose(out[..., 42:48, 42:48], f(x)[..., 42:48, 42:48], atol=1e-6)


def test_a_small_crop_does_not_shrink_the_tiles_of_later_items():
    x = torch.rand(2, 3, 96, 96)
    region = torch.zeros(2, 96, 96)
    region[0, 40:44, 40:44] = 1                                 # item 1: a small crop
    region[1] = 1                                               # item 2: everything
    m = LocalModel()
    restore_batch(m, x, region=region, feather=0, overlap=8, tile=512)
    assert m.calls[-1].shape == (1, 3, 96, 96)                  # item 2 still in one tile
    assert max(m.calls[0].shape[-2:]) < 96


class Recorder(nn.Module):
    """The tiny restorer, recording the prior every restoring call receives; fakes out-of-memory
    for inputs above `oom_above` pixels."""

    def __init__(self, inner, oom_above: int = 0):
        super().__init__()
        self.inner, self.cfg, self.seen, self.oom_above, self.ooms = inner, inner.cfg, [], oom_above, 0

    def predict_signals(self, x):
        return self.inner.predict_signals(x)

    def predict_density(self, x):
        return self.inner.predict_density(x)

    def forward(self, x, prior=None, density=None):
        if self.oom_above and max(x.shape[-2:]) > self.oom_above:
            self.ooms += 1
            raise torch.OutOfMemoryError("fake")
        self.seen.append(prior)
        return self.inner(x, prior=prior, density=density)


def test_signals_do_not_depend_on_the_tile_and_match_the_density_map(tiny_model):
    """A smaller tile (chosen, or after out-of-memory) restores with the same prior and density, and
    that density is what Density Map (pipeline.signals.learned_prior_density) shows."""
    from weather_restore.pipeline.signals import learned_prior_density
    torch.manual_seed(2)
    x = torch.rand(1, 3, 80, 120)
    p, d = learned_prior_density(tiny_model, x)
    for tile in (64, 32):
        m = Recorder(tiny_model)
        out = restore_batch(m, x, tile=tile, overlap=8)
        assert len(m.seen) == len(plan_tiles(80, 120, tile, 8, align=8)) > 1
        assert all(torch.allclose(prior, p) for prior in m.seen)
        given = restore_batch(tiny_model, x, prior=p, density=d[:, 0], tile=tile, overlap=8)
        assert torch.allclose(out, given, atol=1e-6)          # it restored with Density Map's own map
    whole = restore_batch(Recorder(tiny_model), x, tile=128)  # one tile: the model's own heads, same values
    assert torch.allclose(whole, restore_batch(tiny_model, x, prior=p, density=d[:, 0], tile=128), atol=1e-5)
    m = Recorder(tiny_model, oom_above=64)
    restore_batch(m, x, tile=128, overlap=8, min_tile=16)      # 120 px -> out of memory -> 60 px tiles
    assert m.ooms == 1 and len(m.seen) > 1 and all(torch.allclose(prior, p) for prior in m.seen)


def test_stop_is_asked_inside_a_tile_between_layers(tiny_model):
    """One tile of the real network is many layer calls: Cancel does not wait for the tile to end."""
    from weather_restore.pipeline.stopping import stop_between_layers
    asked = []

    def should_stop():
        asked.append(1)
        return len(asked) > 5                                   # yes after a few layers of the first call
    with pytest.raises(InterruptedError, match="inside the network"):
        restore_batch(tiny_model, torch.rand(1, 3, 24, 24), should_stop=should_stop)
    assert len(asked) == 6
    n_hooks = sum(len(m._forward_pre_hooks) for m in tiny_model.modules())
    assert n_hooks == 0                                         # removed again
    with stop_between_layers(tiny_model, lambda: False):
        with stop_between_layers(tiny_model, lambda: False):     # nested: registered once
            assert sum(len(m._forward_pre_hooks) for m in tiny_model.modules()) == len(list(tiny_model.modules())) - 1
