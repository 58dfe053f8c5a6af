"""keep_brightness (pipeline/tone.py under restore_batch, the restore command and the Restore node): the
smooth brightness change of a restore is taken back, the fine one (streaks taken out) is kept."""
from types import SimpleNamespace

import pytest
import torch
import torch.nn as nn

from fake_comfy import fake_comfy
from weather_restore.pipeline.restore import restore_batch
from weather_restore.pipeline.tone import BLOCK, take_back_brightness
from weather_restore.pipeline.weights import DEFAULT_CHOICE


def streaky(H=96, W=128, seed=0):
    """(clean, rainy, streak mask): a smooth photo in [0.2, 0.6] and 2 px bright streaks every 12 columns."""
    g = torch.Generator().manual_seed(seed)
    yy, xx = torch.meshgrid(torch.linspace(0, 1, H), torch.linspace(0, 1, W), indexing="ij")
    clean = (0.2 + 0.2 * yy + 0.2 * xx + 0.02 * torch.rand(3, H, W, generator=g))[None]
    streak = torch.zeros(1, 1, H, W, dtype=torch.bool)
    streak[..., 5::12] = streak[..., 6::12] = True
    return clean, torch.where(streak, torch.full_like(clean, 0.95), clean), streak


def test_a_veil_lifted_is_taken_back_and_the_streaks_stay_removed():
    clean, rainy, streak = streaky()
    restored = clean - 0.08                                       # streaks removed, and everything 20 levels darker
    out = take_back_brightness(rainy, restored)
    assert out.shape == rainy.shape
    assert (out - clean).abs().max() < 1e-5                       # the photo's brightness, without its streaks
    assert (rainy - out)[streak.expand_as(rainy)].min() > 0.3     # the streaks still gone


def test_a_smooth_ramp_of_darkening_is_taken_back_and_a_fine_change_kept():
    clean, _, _ = streaky(80, 120, seed=1)
    ramp = torch.linspace(-0.12, 0.0, 120).view(1, 1, 1, -1)
    fine = torch.zeros_like(clean)
    fine[..., 40:42, :] = -0.15                                   # a 2 px line the restore took out
    out = take_back_brightness(clean, clean + ramp + fine)
    assert (out - clean - fine)[..., BLOCK:-BLOCK, BLOCK:-BLOCK].abs().max() < 0.012   # within 3 levels
    assert (out - clean)[..., 40:42, BLOCK:-BLOCK].mean() < -0.13


@pytest.mark.parametrize("size", [(5, 7), (17, 33), (1, 1)])
def test_any_size_keeps_its_shape_and_a_constant_shift_goes(size):
    x = torch.rand(2, 3, *size, generator=torch.Generator().manual_seed(2)) * 0.5 + 0.25
    out = take_back_brightness(x, x + 0.1)
    assert out.shape == x.shape and (out - x).abs().max() < 1e-6


def test_mismatched_images_are_refused():
    with pytest.raises(ValueError, match=r"two \(B, C, H, W\) images of one shape"):
        take_back_brightness(torch.zeros(1, 3, 8, 8), torch.zeros(1, 3, 8, 9))


class VeilNet(nn.Module):
    """A stand-in restorer per pixel: everything 0.08 darker, bright (streak) pixels 0.5 of their excess more."""

    def __init__(self):
        super().__init__()
        self.zero = nn.Parameter(torch.zeros(1))
        self.cfg = SimpleNamespace(stride=8, dims=[8])

    def forward(self, x, prior=None, density=None):
        return SimpleNamespace(image=x - 0.08 - 0.5 * (x - 0.8).clamp_min(0) + self.zero)

    def predict_signals(self, x):
        B, _, H, W = x.shape
        return SimpleNamespace(prior_logits=torch.zeros(B, 4), density_logits=torch.zeros(B, 1, H, W),
                               quality_logits=torch.zeros(B, 3))

    def predict_density(self, x):
        return self.predict_signals(x).density_logits


def test_restore_batch_keeps_the_brightness_only_when_asked():
    _, rainy, streak = streaky()
    net = VeilNet()
    with torch.no_grad():
        plain = restore_batch(net, rainy, tile=64, overlap=16)
        kept = restore_batch(net, rainy, tile=64, overlap=16, keep_brightness=True)
        half = restore_batch(net, rainy, tile=64, overlap=16, keep_brightness=True, strength=0.5)
    dry = ~streak.expand_as(rainy)
    assert (plain - rainy)[dry].mean() == pytest.approx(-0.08, abs=1e-4)
    assert (kept - rainy)[dry].abs().max() < 1e-5                 # the brightness kept where there was no streak
    assert (rainy - kept)[~dry].min() > 0.05                      # the streaks still dimmed by the restore
    torch.testing.assert_close(half, torch.lerp(rainy, kept, 0.5), atol=1e-6, rtol=0)


def test_restore_node_keep_brightness_is_the_pipelines(tmp_path):
    with fake_comfy(tmp_path) as comfy:
        model = comfy.nodes.LoadWeatherModel.execute(DEFAULT_CHOICE, "none", "auto").values[0]
        schema = {i.name: i for i in comfy.nodes.Restore.define_schema().inputs}
        assert schema["keep_brightness"].default is False and schema["keep_brightness"].optional
        rgb = torch.rand(1, 72, 100, 3, generator=torch.Generator().manual_seed(4))
        on = comfy.nodes.Restore.execute(model, rgb, 1.0, 16, 512, 64, keep_brightness=True).values[0]
        off = comfy.nodes.Restore.execute(model, rgb, 1.0, 16, 512, 64).values[0]
        with torch.no_grad():
            want = restore_batch(model.restorer, rgb.permute(0, 3, 1, 2), keep_brightness=True)
        torch.testing.assert_close(on, want.permute(0, 2, 3, 1), atol=1e-6, rtol=0)
        assert (on - off).abs().max() > 1 / 255


def test_bands_of_block_rows_give_the_whole_images_answer(monkeypatch):
    from weather_restore.pipeline import tone
    g = torch.Generator().manual_seed(5)
    x, y = torch.rand(2, 3, 100, 70, generator=g), torch.rand(2, 3, 100, 70, generator=g)
    whole = take_back_brightness(x, y)
    monkeypatch.setattr(tone, "BAND_ROWS", 2)                      # 7 block rows: 4 bands, the last one short
    torch.testing.assert_close(take_back_brightness(x, y), whole, atol=0, rtol=0)
