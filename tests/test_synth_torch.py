"""Torch weather synthesizer (training/synth_torch/): label ranges, determinism, the numpy
synthesizer's recipes and statistics, the device data path in the trainer."""
import io

import numpy as np
import pytest
import torch
from PIL import Image

from weather_restore.training.synth import RECIPES, SyntheticWeatherDataset, synthesize
from weather_restore.training.synth.compose import DEFAULT_WEIGHTS
from weather_restore.training.synth_torch import CleanCrops, TorchWeather, synthesize_batch
from weather_restore.training.synth_torch.camera import jpeg
from weather_restore.training.synth_torch.ops import box_mean, convolve_wrap, streak_kernels
from weather_restore.training.synth.kernels import box_mean as box_mean_np
from weather_restore.training.synth.kernels import convolve_wrap as convolve_wrap_np
from weather_restore.training.synth.kernels import streak_kernels as streak_kernels_np

RAIN, DROPS, SNOW, HAZE = range(4)
PRESENT = {"clean": set(), "rain_light": {RAIN}, "rain_heavy": {RAIN}, "raindrops": {DROPS}, "snow": {SNOW},
           "haze": {HAZE}, "rain_haze": {RAIN, HAZE}, "snow_haze": {SNOW, HAZE}}
KEYS = {"weathered", "clean", "prior", "density", "severity", "recipe_index"}


def _photos(n=3, h=40, w=48, seed=0):
    """Smooth random colour photos (B, 3, H, W), as test_synth.py's."""
    g = torch.Generator().manual_seed(seed)
    base = torch.rand(n, 3, h // 8, w // 8, generator=g)
    return torch.nn.functional.interpolate(base, size=(h, w), mode="bilinear")


@pytest.mark.parametrize("recipe", RECIPES)
def test_labels_shapes_ranges_and_the_present_weather(recipe):
    x = _photos()
    out = synthesize_batch(x, 3, recipe=recipe)
    assert set(out) == KEYS
    assert out["weathered"].shape == (3, 3, 40, 48) and out["density"].shape == (3, 1, 40, 48)
    assert out["prior"].shape == (3, 4) and out["severity"].shape == (3,) and out["recipe_index"].shape == (3,)
    for k in ("weathered", "clean", "prior", "density", "severity"):
        assert out[k].dtype == torch.float32 and out[k].min() >= 0 and out[k].max() <= 1, k
    assert out["recipe_index"].dtype == torch.long and (out["recipe_index"] == RECIPES.index(recipe)).all()
    assert torch.equal(out["clean"], x)
    torch.testing.assert_close(out["severity"], 1 - torch.prod(1 - out["prior"], dim=1), atol=1e-6, rtol=0)
    if recipe == "clean":
        assert torch.equal(out["weathered"], x) and out["prior"].sum() == 0 and out["density"].sum() == 0
        assert out["severity"].sum() == 0
        return
    for k in range(4):
        if k in PRESENT[recipe]:
            assert (out["prior"][:, k] >= 0.05).all(), (recipe, out["prior"])
        else:
            assert (out["prior"][:, k] == 0).all(), (recipe, out["prior"])
    assert (out["density"].mean((1, 2, 3)) > 0.001).all()
    assert ((out["weathered"] - x).abs().mean((1, 2, 3)) > 0.001).all()


def test_same_seed_same_batch_other_seed_other_batch():
    x = _photos(6)
    a, b = synthesize_batch(x, 11), synthesize_batch(x, torch.Generator().manual_seed(11))
    assert all(torch.equal(a[k], b[k]) for k in KEYS)
    c = synthesize_batch(x, 12)
    assert not torch.equal(a["weathered"], c["weathered"])
    for recipe in RECIPES[1:]:                     # every weather, not only the mix, depends on the seed
        assert not torch.equal(synthesize_batch(x, 1, recipe=recipe)["weathered"],
                               synthesize_batch(x, 2, recipe=recipe)["weathered"]), recipe


def test_recipe_draw_follows_the_weights_and_the_overrides():
    x = _photos(1, 8, 8).expand(3000, -1, -1, -1)
    idx = synthesize_batch(x, 0, recipes=["clean", "haze", "snow"])["recipe_index"]
    share = {r: (idx == RECIPES.index(r)).float().mean().item() for r in ("clean", "haze", "snow")}
    total = DEFAULT_WEIGHTS["clean"] + DEFAULT_WEIGHTS["haze"] + DEFAULT_WEIGHTS["snow"]
    for r, s in share.items():                     # 3000 draws: 3 sigma is at most 0.027
        assert s == pytest.approx(DEFAULT_WEIGHTS[r] / total, abs=0.03), share
    idx = synthesize_batch(x[:50], 0, recipes=["clean", "snow"], recipe_weights={"clean": 0.0})["recipe_index"]
    assert (idx == RECIPES.index("snow")).all()


def test_bad_inputs_are_refused_with_the_fix():
    with pytest.raises(ValueError, match=r"\(B, 3, H, W\)"):
        synthesize_batch(torch.rand(3, 16, 16), 0)
    with pytest.raises(ValueError, match="at least 8"):
        synthesize_batch(torch.rand(1, 3, 4, 16), 0)
    with pytest.raises(ValueError, match="fog"):
        synthesize_batch(_photos(), 0, recipes=["fog"])
    with pytest.raises(ValueError, match="fog"):
        synthesize_batch(_photos(), 0, recipe="fog")
    with pytest.raises(ValueError, match="torch.Generator"):
        synthesize_batch(_photos(), np.random.default_rng(0))
    with pytest.raises(ValueError, match="fog"):
        TorchWeather(0, recipes=["fog"])


# per recipe, the torch batch against the numpy synthesizer on the same 48 crops: the means of the
# brightness change, of |change|, of the density and of each prior column agree within
# REL * |numpy mean| + ABS. Sampling noise alone (two independent draws of 48) is about 0.3 of that.
# The torch synthesizer's own variants are off here, as the numpy one has none: dense light rain (its
# extra, longer streaks raise the light-rain density, on purpose) and rain drawn larger; each variant has
# its own test below.
STAT_CROPS, REL, ABS = 48, 0.25, 0.01


@pytest.mark.parametrize("recipe", RECIPES[1:])
def test_recipe_statistics_match_the_numpy_synthesizer(recipe, monkeypatch):
    from weather_restore.training.synth_torch import rain
    monkeypatch.setattr(rain, "DENSE_LIGHT_SHARE", 0.0)
    monkeypatch.setattr(rain, "LARGE_SHARE", 0.0)
    x = _photos(STAT_CROPS, 48, 48, seed=1)
    ref = [synthesize(x[i], np.random.default_rng(1000 + i), recipe) for i in range(STAT_CROPS)]
    out = synthesize_batch(x, 5, recipe=recipe)
    stats = {
        "change": (torch.stack([(s.weathered - s.clean).mean() for s in ref]).mean(),
                   (out["weathered"] - x).mean()),
        "abs_change": (torch.stack([(s.weathered - s.clean).abs().mean() for s in ref]).mean(),
                       (out["weathered"] - x).abs().mean()),
        "density": (torch.stack([s.density.mean() for s in ref]).mean(), out["density"].mean()),
    }
    prior_np = torch.stack([s.prior for s in ref]).mean(0)
    for k in range(4):
        stats[f"prior{k}"] = (prior_np[k], out["prior"][:, k].mean())
    for name, (a, b) in stats.items():
        assert abs(float(b) - float(a)) <= REL * abs(float(a)) + ABS, (recipe, name, float(a), float(b))


def test_streak_kernels_and_box_mean_match_the_numpy_operators():
    x = torch.rand(2, 30, 41)
    kw = dict(length=torch.tensor([9.0, 13.0]), angle_deg=torch.tensor([0.0, 25.0]),
              width=torch.tensor([0.8, 1.5]), taper=torch.tensor([0.2, 0.2]))
    ours = convolve_wrap(x, streak_kernels(30, 41, **kw))      # (short tapers: numpy's square box holds the tails)
    ref = convolve_wrap_np(x, streak_kernels_np([9, 13], [0, 25], [0.8, 1.5], [0.2, 0.2]))
    torch.testing.assert_close(ours, ref, atol=1e-4, rtol=1e-4)
    # a folded-in blur keeps the streak's light and widens it
    blurred = streak_kernels(30, 41, **kw, blur=torch.tensor([1.0, 1.0]))
    sharp = streak_kernels(30, 41, **kw)
    torch.testing.assert_close(blurred.sum((1, 2)), sharp.sum((1, 2)), rtol=0.08, atol=0)
    assert (blurred.amax((1, 2)) < sharp.amax((1, 2))).all()
    y = torch.rand(2, 1, 23, 31)
    torch.testing.assert_close(box_mean(y, 4)[1, 0], box_mean_np(y[1, 0], 4), atol=1e-5, rtol=0)


def test_jpeg_arithmetic_is_close_to_pillow():
    x = _photos(1, 64, 64, seed=4)[0]
    x = (x + 0.15 * torch.rand(3, 64, 64, generator=torch.Generator().manual_seed(0))).clamp(0, 1)
    x = torch.round(x * 255) / 255
    buf = io.BytesIO()
    Image.fromarray((x.permute(1, 2, 0).numpy() * 255 + 0.5).astype(np.uint8)).save(buf, format="JPEG", quality=70)
    pil = torch.from_numpy(np.asarray(Image.open(buf), dtype=np.float32) / 255).permute(2, 0, 1)
    ours = jpeg(x[None], torch.tensor([70]))[0]
    err_pil, err_ours = (pil - x).pow(2).mean().item(), (ours - x).pow(2).mean().item()
    assert err_ours > 1e-5 and 0.5 < err_ours / err_pil < 2.0, (err_ours, err_pil)   # as lossy as Pillow
    assert 10 * np.log10(1 / (ours - pil).pow(2).mean().item()) > 35                 # and nearly the same image


def _photo_folder(tmp_path, n=3):
    root = tmp_path / "photos"
    root.mkdir()
    for i in range(n):
        arr = (_photos(1, 90, 120, seed=i)[0].permute(1, 2, 0).numpy() * 255).astype(np.uint8)
        Image.fromarray(arr).save(root / f"{i}.png")
    return root


def test_clean_crops_are_the_numpy_datasets_crops(tmp_path):
    root = _photo_folder(tmp_path)
    crops = CleanCrops([root], crop=32, seed=2, length=10)
    full = SyntheticWeatherDataset([root], crop=32, seed=2, length=10)
    for i in (0, 7):
        item = crops[i]
        assert set(item) == {"clean"} and torch.equal(item["clean"], full[i]["clean"])
    crops.set_epoch(1)
    assert not torch.equal(crops[0]["clean"], full[0]["clean"])
    with pytest.raises(IndexError):
        crops[10]


def test_torch_weather_is_a_function_of_seed_step_and_rank():
    x = _photos(4)
    weather = TorchWeather(seed=3)
    a, b = weather(x, 5), weather(x, 5)
    assert all(torch.equal(a[k], b[k]) for k in KEYS)
    assert not torch.equal(weather(x, 6)["weathered"], a["weathered"])
    assert not torch.equal(weather(x, 5, rank=1)["weathered"], a["weathered"])
    only = TorchWeather(seed=3, recipes=["snow"])(x, 5)
    assert (only["recipe_index"] == RECIPES.index("snow")).all()


def test_trainer_with_torch_synth_runs_and_resumes_identically(tmp_path):
    from weather_restore.training.trainer import Trainer
    import train_helpers
    root = _photo_folder(tmp_path)
    cfg = lambda: train_helpers.tiny_train_config(steps=4, synth="torch", data_roots=[str(root)])  # noqa: E731
    straight = Trainer(cfg(), tmp_path / "a", show_progress=False)
    assert isinstance(straight.dataset.base, CleanCrops)
    seen = []
    step = straight.train_step
    straight.train_step = lambda batch: (seen.append(batch), step(batch))[1]
    straight.fit()
    assert set(seen[0]) == {"clean"} and seen[0]["clean"].shape == (2, 3, 32, 32)   # the loader: clean only
    part = Trainer(cfg(), tmp_path / "b", show_progress=False)
    part.fit(2)
    resumed = Trainer(cfg(), tmp_path / "b", show_progress=False)
    resumed.resume()
    assert resumed.step == 2
    resumed.fit()
    a, b = straight.model.state_dict(), resumed.model.state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a), "resumed parameters differ from the uninterrupted run"
    with pytest.raises(ValueError, match="synth must be numpy or torch"):
        train_helpers.tiny_train_config(synth="cuda")
    # the config's recipe_weights reach the device synthesizer as they reach the numpy dataset
    snowy = Trainer(train_helpers.tiny_train_config(synth="torch", data_roots=[str(root)],
                                                    recipe_weights={"snow": 1.0, "haze": 0.0}),
                    tmp_path / "c", show_progress=False)
    assert snowy.dataset.base.recipes == ("snow",)
    assert (snowy.weather(_photos(4, 32, 32), 0)["recipe_index"] == RECIPES.index("snow")).all()


def test_downpour_is_one_direction_of_streaks_under_a_patchy_veil(monkeypatch):
    from weather_restore.training.synth_torch import rain
    from weather_restore.training.synth_torch.rain import apply_rain, make_rain, rain_labels
    monkeypatch.setattr(rain, "WIND_SHARE", 0.0)          # near-vertical: the direction shows in gradients
    img = torch.full((4, 3, 96, 96), 0.3)
    g = torch.Generator().manual_seed(0)
    yes = torch.ones(4, dtype=torch.bool)
    layer = make_rain(g, 4, 96, 96, heavy=yes, downpour=yes)
    veil = layer.veil.flatten(1)
    assert (veil.std(1) > 0.05 * veil.mean(1)).all() and (veil.amax(1) <= 0.45).all()   # patches of spray
    streaks = layer.streaks[:, 0]
    gx = (streaks[..., 1:] - streaks[..., :-1]).abs().mean((1, 2))
    gy = (streaks[..., 1:, :] - streaks[..., :-1, :]).abs().mean((1, 2))
    assert (gx > 1.5 * gy).all(), (gx, gy)                                      # long near-vertical lines
    density, severity = rain_labels(layer, img)
    out = apply_rain(img, layer)
    assert (density >= layer.veil - 1e-6).all() and (severity >= 0.1).all()
    bright = (out - img).mean(1)
    assert bright[density[:, 0] > 0.6].mean() > bright[density[:, 0] < 0.3].mean() + 0.03


DEVICES = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])


@pytest.mark.parametrize("device", DEVICES)
def test_each_device_is_deterministic_and_matches_the_numpy_statistics(device):
    """On a GPU too (skipped without one): same generator seed, same batch, bit for bit (the
    raindrops' fixed-point sums do not depend on the order of atomic adds); haze and raindrops
    statistics within the tolerance of test_recipe_statistics_match_the_numpy_synthesizer."""
    x = _photos(STAT_CROPS, 48, 48, seed=1).to(device)
    for recipe in ("raindrops", "haze"):
        a = synthesize_batch(x, torch.Generator(device=device).manual_seed(9), recipe=recipe)
        b = synthesize_batch(x, torch.Generator(device=device).manual_seed(9), recipe=recipe)
        assert all(torch.equal(a[k], b[k]) for k in KEYS) and a["weathered"].device.type == device
        ref = [synthesize(x[i].cpu(), np.random.default_rng(1000 + i), recipe) for i in range(STAT_CROPS)]
        dens = float(torch.stack([s.density.mean() for s in ref]).mean())
        assert abs(float(a["density"].mean()) - dens) <= REL * dens + ABS, (recipe, dens)
    elsewhere = x.to("meta") if device == "cpu" else x.cpu()
    with pytest.raises(ValueError, match="generator is on"):
        synthesize_batch(elsewhere, torch.Generator(device=device))


def test_light_rain_has_a_near_layer_in_half_of_the_samples(monkeypatch):
    """Depth in light rain: about half of the samples get a 4th sublayer of few, wide, long, bright
    streaks at the far layers' angle; the others none. The brightest rain is brighter with it."""
    from weather_restore.training.synth_torch import rain
    monkeypatch.setattr(rain, "DENSE_LIGHT_SHARE", 0.0)      # the dense variant brightens (DENSE_WIDEN: widens) the far layers
    monkeypatch.setattr(rain, "LARGE_SHARE", 0.0)            # and the larger rain widens every layer
    n = 400
    p = rain._light(torch.Generator().manual_seed(3), n)
    has = p["seeds"][:, 3] > 0
    assert 0.4 < has.float().mean() < 0.6 and (p["seeds"][:, 4] == 0).all()
    far_len = p["length"][:, :3]
    assert (p["width"][has, 3] >= 1.0).all() and (p["width"][:, :3] < 1.0).all()
    assert (p["length"][has, 3] > far_len[has].mean(1)).all() and (p["amp"][has, 3] >= 0.45).all()
    assert ((p["angle"][has, 3] - p["angle"][has, 1]).abs() < 15).all()
    assert (p["blur"][:, :3] == 0).all() and (p["blur"][has, 3] <= 0.6).all()

    def brightest(share):
        monkeypatch.setattr(rain, "NEAR_LIGHT_SHARE", share)
        layer = rain.make_rain(torch.Generator().manual_seed(4), 16, 96, 96, torch.zeros(16, dtype=torch.bool))
        return torch.quantile(layer.streaks.flatten(), 0.999)
    assert brightest(1.0) > 1.2 * brightest(0.0)


def test_light_rain_and_downpours_also_fall_slanted_by_wind():
    """Half of the samples fall near vertically (the numpy synthesizer's angles), half anywhere within
    +-WIND_LIMIT: without slanted rain the network left light rain at 28 degrees and more."""
    from weather_restore.training.synth_torch import rain
    n = 4000
    for draw, limit in ((rain._light, 28), (rain._downpour, 35)):
        a = draw(torch.Generator().manual_seed(5), n)["angle"][:, 1]       # a far layer: dominant angle + jitter
        assert a.abs().max() <= rain.WIND_LIMIT + 12
        steep = (a.abs() > limit + 8).float().mean()                       # only windy draws get there
        assert 0.5 * 0.6 * (rain.WIND_LIMIT - limit - 8) / rain.WIND_LIMIT < steep < 0.5 * (rain.WIND_LIMIT - limit) / rain.WIND_LIMIT + 0.05
        assert (a.abs() < 10).float().mean() > 0.35                        # most of the calm half and some windy
    angles = rain._fall_angle(torch.Generator().manual_seed(6), n, 9, 28)
    assert angles.shape == (n, 1) and angles.abs().max() <= rain.WIND_LIMIT
    assert 0.12 < (angles.abs() > 28).float().mean() < 0.26               # 0.5 * 17 / 45 = 0.19


def test_light_rain_is_dense_and_bright_in_a_share_of_the_samples(monkeypatch):
    """DENSE_LIGHT_SHARE of the light-rain samples draw longer, brighter and denser streaks; the rest as before."""
    from weather_restore.training.synth_torch import rain
    n, share = 2000, rain.DENSE_LIGHT_SHARE

    def draw(share):
        monkeypatch.setattr(rain, "DENSE_LIGHT_SHARE", share)
        return rain._light(torch.Generator().manual_seed(7), n)
    calm, dense, mixed = draw(0.0), draw(1.0), draw(share)
    assert (calm["amp"][:, :3] <= 0.45).all() and (dense["amp"][:, :3] > 0.45 * 1.0).float().mean() > 0.5
    assert (dense["amp"] <= 0.9).all() and torch.allclose(dense["length"][:, :4], calm["length"][:, :4] * 1.4)
    assert (dense["seeds"][:, :3] > calm["seeds"][:, :3]).all()
    assert share == 0.3 and 0.25 < (mixed["length"][:, 0] > calm["length"][:, 0] * 1.2).float().mean() < 0.35
    # thin by default, as Rain100L's brightest rain is; DENSE_WIDEN widens the far streaks under 1 px
    assert rain.DENSE_WIDEN == 1.0 and torch.equal(dense["width"], calm["width"])
    monkeypatch.setattr(rain, "DENSE_WIDEN", 1.3)
    wide = draw(1.0)
    thin = calm["width"][:, :3] < 1.0
    assert thin.all() and torch.allclose(wide["width"][:, :3], calm["width"][:, :3] * 1.3)
    assert torch.equal(wide["width"][:, 3:], calm["width"][:, 3:]) and torch.equal(wide["amp"], dense["amp"])


def test_faint_light_rain_is_off_by_default_and_dims_a_share_of_the_samples(monkeypatch):
    """FAINT_LIGHT_SHARE (0: nothing drawn, the random stream as before) draws 0.6x the brightness and seeds in a
    share of the light-rain samples that are not dense; lengths, widths and angles stay."""
    from weather_restore.training.synth_torch import rain
    assert rain.FAINT_LIGHT_SHARE == 0.0
    n = 2000

    def draw(share):
        monkeypatch.setattr(rain, "FAINT_LIGHT_SHARE", share)
        return rain._light(torch.Generator().manual_seed(7), n)
    plain, faint = draw(0.0), draw(1.0)
    for k in ("length", "width", "angle"):                   # drawn before the faint choice: unchanged
        assert torch.equal(plain[k], faint[k]), k
    dimmed = torch.isclose(faint["amp"][:, 0] / plain["amp"][:, 0], torch.tensor(0.6))
    assert 0.6 < dimmed.float().mean() < 0.8                  # all but the dense 30 %
    assert torch.equal(faint["amp"][~dimmed], plain["amp"][~dimmed])
    assert torch.allclose(faint["seeds"][dimmed], plain["seeds"][dimmed] * 0.6)


def test_a_share_of_the_rain_is_drawn_as_a_larger_photo_shows_it(monkeypatch):
    """LARGE_SHARE of the samples: streaks k times longer, wider and more blurred from k^2 times fewer seeds
    (k in LARGE_RANGE, one per sample), so the mean brightness stays; angles and brightness per streak stay."""
    from weather_restore.training.synth_torch import rain
    assert rain.LARGE_SHARE == 0.3 and rain.LARGE_RANGE == (1.5, 3.0)
    n = 2000
    p = rain._light(torch.Generator().manual_seed(8), n)

    def larger(share):
        monkeypatch.setattr(rain, "LARGE_SHARE", share)
        return rain._seen_larger(torch.Generator().manual_seed(9), p, n, 192, 200)
    assert larger(0.0) is p
    big = larger(1.0)
    k = big["length"] / p["length"]
    assert torch.allclose(k, k[:, :1].expand_as(k)) and 1.5 - 1e-4 <= k.min() and k.max() <= 3.0 + 1e-4
    assert 0.4 < (k[:, 0] < 2.12).float().mean() < 0.6                   # log-uniform: sqrt(1.5 * 3) = 2.12
    assert torch.allclose(big["width"], p["width"] * k) and torch.allclose(big["blur"], p["blur"] * k)
    assert torch.allclose(big["seeds"], p["seeds"] / k ** 2)
    assert torch.equal(big["angle"], p["angle"]) and torch.equal(big["amp"], p["amp"])
    scaled = (larger(0.3)["length"][:, 0] / p["length"][:, 0] > 1.01).float().mean()
    assert 0.26 < scaled < 0.34
    small = rain._seen_larger(torch.Generator().manual_seed(9), p, n, 96, 400)     # a 96 px crop: k <= 1.5
    assert (small["length"] / p["length"]).max() <= 1.5 + 1e-4
    assert rain._seen_larger(torch.Generator().manual_seed(9), p, n, 40, 48)["length"].equal(p["length"])

    def mean_rain(share, heavy):
        monkeypatch.setattr(rain, "LARGE_SHARE", share)
        return rain.make_rain(torch.Generator().manual_seed(10), 64, 192, 192, torch.full((64,), heavy)).streaks.mean()
    for heavy in (False, True):
        assert abs(mean_rain(1.0, heavy) / mean_rain(0.0, heavy) - 1) < 0.12, heavy      # measured 0.91-1.0
