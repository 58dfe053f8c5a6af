"""weather_scale: the coarse pass of pipeline/coarse.py under restore_batch, the restore command and the
Restore node (rain drawn larger than the network learned it, removed on a shrunk copy first)."""
import argparse

import numpy as np
import pytest
import torch
from PIL import Image

from fake_comfy import fake_comfy
from weather_restore.cli import restore as restore_cli
from weather_restore.models import WeatherRestorer, load_config
from weather_restore.models.tiling import restore_image
from weather_restore.pipeline.coarse import (MIN_COARSE_SIDE, check_weather_scale, coarse_size,
                                             remove_coarse_weather, resize)
from weather_restore.pipeline.layout import InputError
from weather_restore.pipeline.restore import restore_batch
from weather_restore.pipeline.weights import DEFAULT_CHOICE
from weather_restore.evaluation.metrics import quantize, score_pair
from weather_restore.training.synth.compose import synthesize


@pytest.fixture(scope="module")
def tiny():
    torch.manual_seed(0)
    return WeatherRestorer(load_config("tiny")).eval()


def rand(H, W, seed=0):
    return torch.rand(1, 3, H, W, generator=torch.Generator().manual_seed(seed))


def test_coarse_size_shrinks_by_the_scale_and_keeps_small_images_usable():
    assert coarse_size(320, 480, 1.0) is None                       # off
    assert coarse_size(960, 1440, 3.0) == (320, 480)
    assert coarse_size(300, 200, 2.5) == (120, 80)
    assert coarse_size(96, 200, 4.0) == (MIN_COARSE_SIDE, 133)      # lowered to 1.5 so 64 px remain
    assert coarse_size(MIN_COARSE_SIDE, 500, 2.0) is None           # nothing to shrink


@pytest.mark.parametrize("bad", [0.0, 0.99, 8.5, float("nan")])
def test_weather_scale_out_of_range_is_refused_with_the_fix(bad):
    with pytest.raises(InputError, match=r"weather_scale must be in \[1, 8\].*2-3 for large photos"):
        check_weather_scale(bad)


def test_only_the_change_is_enlarged():
    """The fine detail of the photo survives the coarse pass: an identity restoration changes nothing, and a
    restoration that lowers the small copy by 0.1 lowers the full image by 0.1 (a constant enlarges exactly)."""
    x = rand(90, 120).clamp(0.2, 1)
    same = remove_coarse_weather(lambda s, d: s, x, None, (30, 40))
    assert torch.equal(same, x)
    seen = {}

    def darker(s, d):
        seen["size"], seen["d"] = tuple(s.shape[-2:]), d
        return s - 0.1
    density = torch.full((1, 1, 90, 120), 0.25)
    out = remove_coarse_weather(darker, x, density, (30, 40))
    assert seen["size"] == (30, 40) and seen["d"].shape == (1, 1, 30, 40)
    torch.testing.assert_close(seen["d"], torch.full((1, 1, 30, 40), 0.25), atol=1e-6, rtol=0)
    torch.testing.assert_close(out, x - 0.1, atol=1e-5, rtol=0)


def test_restore_batch_runs_the_coarse_pass_then_the_full_one(tiny):
    x = rand(160, 224, seed=1)
    with torch.no_grad():
        got = restore_batch(tiny, x, weather_scale=2.0)
        small = resize(x, (80, 112)).clamp(0, 1)
        x2 = (x + resize(restore_image(tiny, small) - small, (160, 224))).clamp(0, 1)
        want = restore_image(tiny, x2).clamp(0, 1)
        plain = restore_batch(tiny, x)
    torch.testing.assert_close(got, want, atol=1e-5, rtol=0)
    assert (got - plain).abs().max() > 1e-3                          # the option is not ignored
    with torch.no_grad():                                            # the blend starts from the input, not x'
        half = restore_batch(tiny, x, strength=0.5, weather_scale=2.0)
    torch.testing.assert_close(half, torch.lerp(x, want, 0.5), atol=1e-5, rtol=0)


def test_region_outside_stays_the_input_and_progress_counts_the_coarse_tiles(tiny):
    x = rand(200, 240, seed=2)
    region = torch.zeros(1, 200, 240)
    region[:, 100:, 120:] = 1
    calls = []
    with torch.no_grad():
        y = restore_batch(tiny, x, region=region, feather=0, tile=64, overlap=8, weather_scale=2.0,
                          on_progress=lambda d, t: calls.append((d, t)))
        plain_calls = []
        restore_batch(tiny, x, region=region, feather=0, tile=64, overlap=8,
                      on_progress=lambda d, t: plain_calls.append((d, t)))
    assert torch.equal(y[..., :60, :], x[..., :60, :])               # far outside the box: untouched
    assert (y[..., 100:, 120:] - x[..., 100:, 120:]).abs().max() > 1e-3
    assert calls[0][0] == 0 and calls[-1][0] == calls[-1][1]
    assert [d for d, _ in calls] == sorted(d for d, _ in calls)
    assert calls[-1][1] > plain_calls[-1][1]                         # the coarse tiles are counted too


def test_bundled_weights_remove_enlarged_streaks_better_with_the_coarse_pass():
    """The reason for the option: rain drawn 3x larger than the training scale (the synthesizer's rain on a
    small copy, enlarged onto the photo) is removed better with weather_scale 3 than in one full pass by weights
    trained at that scale only (v4.13); the default, trained with larger rain too (v4.14 on), takes more of it in
    one pass."""
    from weather_restore.cli.model_loading import load_model
    yy, xx = torch.meshgrid(torch.linspace(0, 1, 360), torch.linspace(0, 1, 480), indexing="ij")
    clean = torch.stack([0.25 + 0.5 * xx, 0.3 + 0.3 * yy, 0.6 - 0.3 * xx * yy])[None]
    clean[..., 200:300, 100:220] = torch.tensor([0.7, 0.5, 0.3]).view(1, 3, 1, 1)     # a few edges
    clean[..., 60:140, 300:420] = torch.tensor([0.2, 0.25, 0.35]).view(1, 3, 1, 1)
    small = resize(clean, (120, 160)).clamp(0, 1)
    s = synthesize(small[0], np.random.default_rng(5), "rain_heavy")
    rain = resize(s.weathered[None] - small, (360, 480))
    rainy = (clean + rain).clamp(0, 1)

    def psnr(y):
        q = lambda t: quantize(t[0].permute(1, 2, 0))                   # noqa: E731
        return score_pair(q(y), q(clean))["y_psnr"]
    older, _ = load_model("weather-m-v4.13")
    default, _ = load_model(None)                                     # the manifest's default, as `restore`
    with torch.no_grad():
        one = psnr(restore_batch(older, rainy))
        coarse = psnr(restore_batch(older, rainy, weather_scale=3.0))
        one_default = psnr(restore_batch(default, rainy))
    assert psnr(rainy) < one < coarse - 3.0, (psnr(rainy), one, coarse)       # measured 19.98 < 25.14 < 32.59
    assert one_default > one + 3.0, (one, one_default)                        # v4.16: 33.14 in one pass


def test_restore_command_takes_weather_scale(tmp_path, tiny):
    from weather_restore.models.weights_io import save_restorer
    weights = save_restorer(tiny, tmp_path / "tiny.safetensors")
    a = np.random.default_rng(3).integers(0, 256, (80, 96, 3), dtype=np.uint8)
    Image.fromarray(a).save(tmp_path / "f.png")

    def cli(*argv):
        parser = argparse.ArgumentParser()
        restore_cli.add_parser(parser.add_subparsers(dest="command", required=True))
        args = parser.parse_args(["restore", *map(str, argv)])
        return args.run(args)
    assert cli(tmp_path / "f.png", "--weights", weights, "--weather-scale", "0.5") == 2
    assert not (tmp_path / "f_restored.png").exists()
    assert cli(tmp_path / "f.png", "--weights", weights, "--weather-scale", "2") == 0
    got = np.asarray(Image.open(tmp_path / "f_restored.png")).astype(np.float32) / 255
    x = torch.from_numpy(a).permute(2, 0, 1)[None].float() / 255
    with torch.no_grad():
        want = restore_batch(tiny, x, weather_scale=2.0)[0].permute(1, 2, 0).numpy()
    assert np.abs(got - want).max() <= 0.5 / 255 + 1e-5


def test_restore_node_weather_scale_is_the_pipelines(tmp_path):
    with fake_comfy(tmp_path) as comfy:
        model = comfy.nodes.LoadWeatherModel.execute(DEFAULT_CHOICE, "none", "auto").values[0]
        schema = {i.name: i for i in comfy.nodes.Restore.define_schema().inputs}
        assert schema["weather_scale"].default == 1.0 and schema["weather_scale"].optional
        rgb = torch.rand(1, 72, 100, 3, generator=torch.Generator().manual_seed(4))
        on = comfy.nodes.Restore.execute(model, rgb, 1.0, 16, 512, 64, weather_scale=2.0).values[0]
        with torch.no_grad():
            want = restore_batch(model.restorer, rgb.permute(0, 3, 1, 2), weather_scale=2.0)
        torch.testing.assert_close(on, want.permute(0, 2, 3, 1), atol=1e-6, rtol=0)
