"""Weather synthesizer: determinism, label ranges, the physics each layer promises."""
import numpy as np
import pytest
import torch

from weather_restore.training.synth import RECIPES, SyntheticWeatherDataset, synthesize
from weather_restore.training.synth.haze import add_haze
from weather_restore.training.synth.rain import add_rain
from weather_restore.training.synth.kernels import convolve, line_kernel


def _photo(h=64, w=80, seed=0):
    g = torch.Generator().manual_seed(seed)
    base = torch.rand(3, h // 8, w // 8, generator=g)
    return torch.nn.functional.interpolate(base[None], size=(h, w), mode="bilinear")[0]


@pytest.mark.parametrize("recipe", RECIPES)
def test_recipe_shapes_ranges_and_determinism(recipe):
    img = _photo()
    a = synthesize(img, np.random.default_rng(5), recipe)
    b = synthesize(img, np.random.default_rng(5), recipe)
    assert torch.equal(a.weathered, b.weathered) and torch.equal(a.density, b.density)
    assert a.weathered.shape == (3, 64, 80) and a.density.shape == (1, 64, 80) and a.prior.shape == (4,)
    for t in (a.weathered, a.density, a.prior):
        assert t.min() >= 0 and t.max() <= 1
    assert torch.equal(a.clean, img)
    if recipe == "clean":
        assert torch.equal(a.weathered, img) and a.prior.sum() == 0 and a.density.sum() == 0
    else:
        assert a.prior.max() > 0.05 and a.density.mean() > 0.001 and 0 < a.severity <= 1
        assert (a.weathered - img).abs().mean() > 0.003


def test_different_seeds_differ():
    img = _photo()
    a = synthesize(img, np.random.default_rng(1), "rain_light")
    b = synthesize(img, np.random.default_rng(2), "rain_light")
    assert not torch.equal(a.weathered, b.weathered)


def test_prior_marks_the_right_weather():
    img = _photo()
    rng = np.random.default_rng(0)
    types = {"rain_light": 0, "raindrops": 1, "snow": 2, "haze": 3}
    for recipe, k in types.items():
        p = synthesize(img, rng, recipe).prior
        assert p[k] > 0 and all(p[j] == 0 for j in range(4) if j != k), (recipe, p)


def test_haze_follows_the_scattering_model():
    """weathered = clean * t + A * (1 - t) with density = 1 - t: two pixels give the same airlight A."""
    img = _photo(48, 48)
    hazy, density, _ = add_haze(img, np.random.default_rng(3))
    t = 1 - density
    airlight = (hazy - img * t) / density.clamp_min(1e-3)        # per pixel estimate of A
    strong = density[0] > 0.3
    est = airlight[:, strong]
    assert est.std(dim=1).max() < 1e-3                            # one airlight for the whole image
    assert 0.5 < est.mean() <= 1.0


def test_rain_only_brightens_where_density_is_set():
    img = _photo()
    rainy, density, _ = add_rain(img, np.random.default_rng(4), heavy=False)
    diff = (rainy - img).mean(0)
    assert diff.min() >= -1e-6                                    # screen blend never darkens
    assert diff[density[0] > 0.5].mean() > diff[density[0] == 0].mean() + 0.02


def test_fft_convolution_matches_direct():
    x = torch.rand(2, 30, 41)
    k = line_kernel(13, 25, 1.5)
    direct = torch.nn.functional.conv2d(x[:, None], k.flip(0, 1)[None, None], padding=6)[:, 0]
    torch.testing.assert_close(convolve(x, k), direct, atol=1e-5, rtol=1e-4)


def test_dataset_items_are_reproducible(tmp_path):
    from PIL import Image
    for i in range(3):
        arr = (_photo(90, 120, seed=i).permute(1, 2, 0).numpy() * 255).astype(np.uint8)
        Image.fromarray(arr).save(tmp_path / f"{i}.png")
    ds = SyntheticWeatherDataset([tmp_path], crop=48, seed=1)
    a, b = ds[7], ds[7]
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert a["weathered"].shape == (3, 48, 48) and a["density"].shape == (1, 48, 48)
    assert a["recipe_index"].dtype == torch.long
    ds.set_epoch(1)
    assert not torch.equal(ds[7]["weathered"], a["weathered"])
