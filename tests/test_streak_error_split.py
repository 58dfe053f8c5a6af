"""scripts/streak_error_split.py: the split of a restorer's error between streak pixels and the rest."""
import numpy as np
import pytest
from scripts_loader import load_script


def _module():
    return load_script("streak_error_split")


def _gray(levels):
    return np.repeat(np.asarray(levels, np.uint8)[..., None], 3, axis=-1)       # Y follows the gray level


def test_half_the_rain_left_is_all_the_error_and_explained_by_the_rain():
    S = _module()
    rng = np.random.default_rng(0)
    target = rng.integers(60, 120, (32, 32)).astype(np.uint8)
    rain = np.zeros_like(target)
    rain[:, ::4] = 80                                                             # a streak every 4th column
    r = S.split(_gray(target + rain), _gray(target), _gray(target + rain // 2))
    assert r["streak_pixels"] == pytest.approx(0.25)
    assert r["streak_share"] == pytest.approx(1.0)
    assert r["left"] == pytest.approx(0.5, abs=0.02) and r["left_explains"] == pytest.approx(1.0, abs=1e-3)
    assert r["rest_perfect"] == pytest.approx(r["psnr"])                          # the rest has no error
    assert r["streaks_perfect"] == pytest.approx(S.psnr(1e-12))


def test_error_beside_the_streaks_is_not_counted_as_rain_left():
    S = _module()
    target = np.full((16, 16), 100, np.uint8)
    inp = target.copy()
    inp[:, 0] = 200                                                               # one streak column, removed
    out = target.copy()
    out[:, 8] = 110                                                               # an error elsewhere
    r = S.split(_gray(inp), _gray(target), _gray(out))
    assert r["streak_share"] == pytest.approx(0.0) and r["left"] == pytest.approx(0.0)
    assert r["streaks_perfect"] == pytest.approx(r["psnr"])
