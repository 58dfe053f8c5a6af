"""Weather synthesizer: determinism, label ranges, the physics each layer promises, the dataset."""
import argparse
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from weather_restore.training.synth import RECIPES, SyntheticWeatherDataset, synthesize
from weather_restore.training.synth import compose
from weather_restore.training.synth.haze import apply_haze, make_haze
from weather_restore.training.synth.kernels import convolve_wrap, streak_kernels
from weather_restore.training.synth.rain import add_rain

SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"   # as conftest.py

RAIN, DROPS, SNOW, HAZE = range(4)


def _photo(h=64, w=80, seed=0):
    g = torch.Generator().manual_seed(seed)
    base = torch.rand(3, h // 8, w // 8, generator=g)
    return torch.nn.functional.interpolate(base[None], size=(h, w), mode="bilinear")[0]


@pytest.fixture
def no_camera(monkeypatch):
    """Switch off the low-rate noise / JPEG so the physics can be checked exactly."""
    monkeypatch.setattr(compose, "NOISE_RATE", 0.0)
    monkeypatch.setattr(compose, "JPEG_RATE", 0.0)


@pytest.mark.parametrize("recipe", RECIPES)
def test_recipe_shapes_ranges_and_determinism(recipe):
    img = _photo()
    a = synthesize(img, np.random.default_rng(5), recipe)
    b = synthesize(img, np.random.default_rng(5), recipe)
    assert torch.equal(a.weathered, b.weathered) and torch.equal(a.density, b.density)
    assert torch.equal(a.prior, b.prior) and a.severity == b.severity and a.recipe == recipe
    assert a.weathered.shape == (3, 64, 80) and a.density.shape == (1, 64, 80) and a.prior.shape == (4,)
    for t in (a.weathered, a.density, a.prior):
        assert t.dtype == torch.float32 and t.min() >= 0 and t.max() <= 1
    assert torch.equal(a.clean, img)
    if recipe == "clean":
        assert torch.equal(a.weathered, img) and a.prior.sum() == 0 and a.density.sum() == 0 and a.severity == 0
    else:
        assert a.prior.max() > 0.05 and a.density.mean() > 0.001
        assert a.severity == pytest.approx(float(1 - torch.prod(1 - a.prior)), abs=1e-6)
        assert 0 < a.severity <= 1
        assert (a.weathered - img).abs().mean() > 0.003


@pytest.mark.parametrize("recipe", [r for r in RECIPES if r != "clean"])
def test_different_seeds_differ(recipe):
    img = _photo()
    a = synthesize(img, np.random.default_rng(1), recipe)
    b = synthesize(img, np.random.default_rng(2), recipe)
    assert not torch.equal(a.weathered, b.weathered)


@pytest.mark.parametrize("recipe, present", [
    ("rain_light", {RAIN}), ("rain_heavy", {RAIN}), ("raindrops", {DROPS}), ("snow", {SNOW}),
    ("haze", {HAZE}), ("rain_haze", {RAIN, HAZE}), ("snow_haze", {SNOW, HAZE})])
def test_prior_marks_the_right_weather(recipe, present):
    for seed in range(3):
        p = synthesize(_photo(seed=seed), np.random.default_rng(seed), recipe).prior
        assert all(p[k] >= 0.05 for k in present) and all(p[k] == 0 for k in range(4) if k not in present), (recipe, p)


def test_unknown_recipe_and_bad_shape_are_refused():
    with pytest.raises(ValueError, match="unknown recipe 'fog'"):
        synthesize(_photo(), np.random.default_rng(0), "fog")
    with pytest.raises(ValueError, match=r"\(3, H, W\)"):
        synthesize(torch.rand(1, 3, 8, 8), np.random.default_rng(0), "haze")


def test_default_draw_favours_rain_light_and_haze_and_keeps_clean_near_ten_percent():
    rng = np.random.default_rng(0)
    draws = [compose.draw_recipe(rng) for _ in range(4000)]
    share = {r: draws.count(r) / len(draws) for r in RECIPES}
    assert 0.07 < share["clean"] < 0.13
    assert share["rain_light"] == max(share.values())
    assert share["haze"] > max(share[r] for r in RECIPES if r not in ("rain_light", "haze"))


def test_haze_follows_the_scattering_model(no_camera):
    """weathered = clean * t + A * (1 - t) with density = 1 - t: every strongly hazed pixel gives
    the same airlight A, and the model rebuilt from A and D reproduces the image."""
    img = _photo(48, 56)
    s = synthesize(img, np.random.default_rng(3), "haze")
    d = s.density
    airlight = (s.weathered - img * (1 - d)) / d.clamp_min(1e-3)      # (3, H, W) per-pixel estimate of A
    strong = d[0] > 0.3
    assert strong.sum() > 100
    est = airlight[:, strong]
    assert est.std(dim=1).max() < 1e-3
    a = est.mean(dim=1).view(3, 1, 1)
    assert 0.55 <= a.min() and a.max() <= 1.0
    torch.testing.assert_close(s.weathered, (img * (1 - d) + a * d).clamp(0, 1), atol=2e-3, rtol=0)


def test_haze_transmission_is_in_the_reside_range():
    """RESIDE outdoor haze (HSTS): median t about 0.5-0.8. Typical draws stay in a wide band around it."""
    img = _photo(64, 64)
    medians = [make_haze(img, np.random.default_rng(s))[0].median().item() for s in range(30)]
    assert 0.35 < float(np.median(medians)) < 0.8
    assert min(medians) > 0.02 and max(medians) < 0.97
    t, a = make_haze(img, np.random.default_rng(0))
    assert t.shape == (1, 64, 64) and a.shape == (3, 1, 1) and (a >= 0.55).all() and (a <= 1).all()
    assert torch.equal(apply_haze(img, torch.ones_like(t), a), img)        # t = 1: no haze


@pytest.mark.parametrize("recipe", ["rain_light", "rain_heavy"])
def test_rain_brightens_where_density_is_set(recipe, no_camera):
    img = _photo(96, 96) * 0.6
    for seed in range(4):
        s = synthesize(img, np.random.default_rng(seed), recipe)
        diff = (s.weathered - img).mean(0)
        dens = s.density[0]
        hi, lo = dens.quantile(0.9), dens.quantile(0.1)           # (heavy rain has a veil: D > 0 everywhere)
        assert hi > lo and diff[dens >= hi].mean() > diff[dens <= lo].mean() + 0.03, seed
        if recipe == "rain_light":                                 # no veil: streaks only ever brighten
            assert diff.min() >= -1e-6


def test_rain_that_cannot_show_is_not_labelled():
    white = torch.ones(3, 40, 40)
    out, density, severity = add_rain(white, np.random.default_rng(0), heavy=False)
    assert torch.equal(out, white) and density.max() == 0 and severity == 0.1


def test_light_rain_matches_rain100l_statistics():
    """Measured on Rain100L (input - target): 11-16 % of pixels brightened by > 0.05, 0.11-0.14 on
    average over them, grey. Synthetic light rain on a mid-grey 320x480 image stays near that."""
    img = torch.full((3, 320, 480), 0.4)
    covered, brightness = [], []
    for seed in range(6):
        out, _, sev = add_rain(img, np.random.default_rng(seed), heavy=False)
        r = out - img
        assert (r.amax(0) - r.amin(0)).max() < 0.1                   # near-grey streaks
        rm = r.mean(0)
        covered.append((rm > 0.05).float().mean().item())
        brightness.append(rm[rm > 0.05].mean().item())
        assert 0.1 <= sev <= 0.8
    assert 0.06 < np.mean(covered) < 0.25 and 0.08 < np.mean(brightness) < 0.2


def test_raindrops_only_change_pixels_under_drops(no_camera):
    img = _photo(80, 80)
    s = synthesize(img, np.random.default_rng(2), "raindrops")
    outside = s.density[0] == 0
    assert outside.float().mean() > 0.2
    assert torch.equal(s.weathered[:, outside], img[:, outside])
    assert (s.weathered - img).abs().mean(0)[s.density[0] > 0.9].mean() > 0.01


def test_snow_is_white_flakes_over_a_dark_scene(no_camera):
    img = torch.full((3, 96, 96), 0.1)
    s = synthesize(img, np.random.default_rng(4), "snow")
    flakes = s.density[0] > 0.8
    assert flakes.any() and (s.weathered[:, flakes] > 0.6).all()
    assert torch.allclose(s.weathered[:, s.density[0] == 0], img[:, s.density[0] == 0])


def test_fft_convolution_matches_direct_circular_convolution():
    x = torch.rand(2, 30, 41)
    k = streak_kernels([9, 13], [0, 25], [0.8, 1.5], [0.5, 0.5])
    assert k.shape[0] == 2 and k.shape[1] == k.shape[2] and k.shape[1] % 2 == 1
    r = k.shape[-1] // 2
    padded = torch.nn.functional.pad(x[None], (r, r, r, r), mode="circular")[0]
    direct = torch.stack([torch.nn.functional.conv2d(padded[i][None, None], k[i].flip(0, 1)[None, None])[0, 0]
                          for i in range(2)])
    torch.testing.assert_close(convolve_wrap(x, k), direct, atol=1e-5, rtol=1e-4)


def test_streak_kernel_is_a_line_at_its_angle():
    k = streak_kernels([15], [0], [0.8], [0.3])[0]
    c = k.shape[-1] // 2
    assert k[c, c] == pytest.approx(1.0, abs=1e-6)
    assert k[:, c].sum() > 6 * k[c, :].sum()                      # vertical: ~length along, ~2 px across
    tilted = streak_kernels([15], [30], [0.8], [0.3])[0]
    ys, xs = torch.nonzero(tilted > 0.5, as_tuple=True)
    slope = ((xs - c).float() * (ys - c).float()).sum() / ((ys - c).float() ** 2).sum()
    assert slope.item() == pytest.approx(np.tan(np.radians(30)), abs=0.1)


def _photo_folder(tmp_path, n=3):
    for i in range(n):
        arr = (_photo(90, 120, seed=i).permute(1, 2, 0).numpy() * 255).astype(np.uint8)
        Image.fromarray(arr).save(tmp_path / f"{i}.png")
    return tmp_path


def test_dataset_items_are_reproducible(tmp_path):
    root = _photo_folder(tmp_path)
    ds = SyntheticWeatherDataset([root], crop=48, seed=1, length=20)
    a, b = ds[7], ds[7]
    assert set(a) == {"weathered", "clean", "prior", "density", "severity", "recipe_index"}
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert torch.equal(SyntheticWeatherDataset([root], crop=48, seed=1)[7]["weathered"], a["weathered"])
    assert a["weathered"].shape == a["clean"].shape == (3, 48, 48) and a["density"].shape == (1, 48, 48)
    assert a["prior"].shape == (4,) and a["severity"].dtype == torch.float32 and a["severity"].ndim == 0
    assert a["recipe_index"].dtype == torch.long and 0 <= a["recipe_index"] < len(RECIPES)
    assert len(ds) == 20
    other = SyntheticWeatherDataset([root], crop=48, seed=2)[7]
    assert not torch.equal(other["weathered"], a["weathered"])
    ds.set_epoch(1)
    assert not torch.equal(ds[7]["weathered"], a["weathered"])
    ds.set_epoch(0)
    assert torch.equal(ds[7]["weathered"], a["weathered"])
    with pytest.raises(IndexError):
        ds[20]


def test_dataset_recipes_and_errors(tmp_path):
    root = _photo_folder(tmp_path)
    ds = SyntheticWeatherDataset([root], crop=32, recipes=["haze"])
    assert {ds[i]["recipe_index"].item() for i in range(5)} == {RECIPES.index("haze")}
    ds = SyntheticWeatherDataset([root], crop=32, recipes=["clean", "snow"], recipe_weights={"clean": 0.0})
    assert {ds[i]["recipe_index"].item() for i in range(5)} == {RECIPES.index("snow")}
    with pytest.raises(ValueError, match="fog"):
        SyntheticWeatherDataset([root], recipes=["fog"])
    with pytest.raises(FileNotFoundError, match="not found"):
        SyntheticWeatherDataset([tmp_path / "missing"])
    (tmp_path / "empty").mkdir()
    with pytest.raises(FileNotFoundError, match="no images"):
        SyntheticWeatherDataset([tmp_path / "empty"])


def test_synth_sheet_command_writes_the_grid(tmp_path):
    from weather_restore.cli import synth_sheet
    root = _photo_folder(tmp_path)
    parser = argparse.ArgumentParser()
    synth_sheet.add_parser(parser.add_subparsers())
    out = tmp_path / "sheet.png"
    args = parser.parse_args(["synth-sheet", "--data", str(root), "--out", str(out), "--n", "3",
                              "--size", "40", "--recipes", "clean,haze"])
    assert args.run(args) == 0
    sheet = np.asarray(Image.open(out))
    assert sheet.shape == (3 * 40, 3 * 40, 3)
    assert sheet[14:40, 80:].max() == 0 and sheet[94:, 80:].max() == 0   # clean rows: density column black
    assert sheet[54:80, 80:].mean() > 10                                  # haze row: density shows


@pytest.mark.data
def test_dataset_on_the_shared_photos():
    root = SHARED_DATA / "train" / "clean"
    if not root.is_dir():
        pytest.skip(f"{root} not present")
    ds = SyntheticWeatherDataset([root], crop=64, seed=0)
    assert len(ds.files) > 100
    for i in range(4):
        item = ds[i]
        assert item["weathered"].shape == (3, 64, 64) and 0 <= item["weathered"].min() <= item["weathered"].max() <= 1
        assert 0 <= item["density"].min() and item["density"].max() <= 1


def test_photo_cache_keeps_the_recent_photos_within_its_budget():
    from weather_restore.training.synth.dataset import PhotoCache
    decoded = []

    def decode(path):
        decoded.append(path)
        return torch.zeros(3, 10, 10, dtype=torch.uint8)         # 300 bytes each

    cache = PhotoCache(budget=700)                             # room for two
    a = cache.get("a", decode)
    assert cache.get("a", decode) is a and decoded == ["a"]      # a hit decodes nothing
    cache.get("b", decode)
    cache.get("a", decode)                                     # a is now the most recent
    cache.get("c", decode)                                     # evicts b, the least recent
    assert cache.held == 600 and list(cache._photos) == ["a", "c"]
    cache.get("b", decode)
    assert decoded == ["a", "b", "c", "b"]
    cache.budget = 100
    cache.trim()                                               # a smaller budget keeps the newest only
    assert list(cache._photos) == ["b"] and cache.held == 300
