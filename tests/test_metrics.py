"""Metrics against hand-computed values and an independent, loop-based SSIM."""
import math

import numpy as np
import pytest
import torch

from weather_restore.evaluation.metrics import (gaussian_window, psnr, quantize, rgb_to_y, score_pair,
                                                ssim_matlab)


def _pixel(r, g, b):
    return np.array([[[r, g, b]]], dtype=np.uint8)                 # (1, 1, 3)


@pytest.mark.parametrize("rgb, y", [((0, 0, 0), 16), ((255, 255, 255), 235), ((255, 0, 0), 81),
                                    ((0, 255, 0), 145), ((0, 0, 255), 41), ((128, 64, 32), 84)])
def test_rgb_to_y_hand_values(rgb, y):
    # 16 + (65.481 R + 128.553 G + 24.966 B) / 255, rounded: red 81.481, green 144.553, blue 40.966,
    # (128, 64, 32) -> 16 + 17407.872 / 255 = 84.2662
    assert rgb_to_y(_pixel(*rgb))[0, 0] == y


def test_rgb_to_y_unrounded_and_float_input_agree():
    img = np.array([[[128, 64, 32], [10, 200, 90]]], dtype=np.uint8)
    exact = rgb_to_y(img, round_output=False)
    assert exact[0, 0] == pytest.approx(16 + 17407.872 / 255, abs=1e-9)
    np.testing.assert_allclose(rgb_to_y(img.astype(np.float32) / 255, round_output=False), exact, atol=1e-4)
    np.testing.assert_array_equal(rgb_to_y(img.astype(np.float64) / 255), rgb_to_y(img))


def test_rgb_to_y_rejects_ambiguous_input():
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        rgb_to_y(np.full((2, 2, 3), 200.0))                       # float on a 0..255 scale
    with pytest.raises(ValueError, match="dtype"):
        rgb_to_y(np.zeros((2, 2, 3), dtype=np.int32))
    with pytest.raises(ValueError, match="shape"):
        rgb_to_y(np.zeros((2, 2), dtype=np.uint8))


def test_psnr_identical_and_known_offset():
    a = np.random.default_rng(0).integers(0, 250, size=(9, 7)).astype(np.float64)
    assert psnr(a, a) == math.inf
    assert psnr(a, a + 5) == pytest.approx(20 * math.log10(255 / 5), abs=1e-12)      # MSE 25: 34.1514 dB
    assert psnr(a / 255, (a + 5) / 255, data_range=1.0) == pytest.approx(34.15140352195873, abs=1e-9)
    # MSE of a half-and-half error: 0.5 * 10^2 = 50
    b = a.copy()
    b[:, ::2] += 10
    b_mse = np.mean((a - b) ** 2)
    assert psnr(a, b) == pytest.approx(10 * math.log10(255 ** 2 / b_mse))
    with pytest.raises(ValueError, match="same shape"):
        psnr(a, a[:-1])


def test_gaussian_window_is_fspecial():
    g = gaussian_window(11, 1.5)
    assert g.sum() == pytest.approx(1.0)
    np.testing.assert_allclose(g, g[::-1])
    assert g[5] / g[6] == pytest.approx(math.exp(1 / (2 * 1.5 ** 2)))
    assert np.outer(g, g)[5, 5] == pytest.approx(0.0708, abs=1e-4)   # fspecial('gaussian', 11, 1.5) centre


def _ssim_loops(a, b):
    """Independent reference: explicit 11x11 windows at every 'valid' position, like ssim_index.m."""
    x = np.arange(11) - 5
    w = np.exp(-(x[:, None] ** 2 + x[None, :] ** 2) / (2 * 1.5 ** 2))
    w /= w.sum()
    c1, c2 = (0.01 * 255) ** 2, (0.03 * 255) ** 2
    vals = []
    for i in range(a.shape[0] - 10):
        for j in range(a.shape[1] - 10):
            pa, pb = a[i:i + 11, j:j + 11], b[i:i + 11, j:j + 11]
            ma, mb = (w * pa).sum(), (w * pb).sum()
            va, vb = (w * pa * pa).sum() - ma ** 2, (w * pb * pb).sum() - mb ** 2
            cov = (w * pa * pb).sum() - ma * mb
            vals.append((2 * ma * mb + c1) * (2 * cov + c2) / ((ma ** 2 + mb ** 2 + c1) * (va + vb + c2)))
    return float(np.mean(vals))


@pytest.mark.parametrize("shape, noise", [((16, 20), 20.0), ((13, 11), 60.0), ((24, 17), 5.0)])
def test_ssim_matches_loop_reference(shape, noise):
    rng = np.random.default_rng(shape[0])
    a = rng.integers(0, 256, size=shape).astype(np.float64)
    b = np.clip(a + rng.normal(0, noise, size=shape), 0, 255).round()
    ours = ssim_matlab(a, b)
    assert ours == pytest.approx(_ssim_loops(a, b), abs=1e-12)
    assert 0 < ours < 1


def test_ssim_known_values():
    a = np.random.default_rng(1).integers(0, 256, size=(20, 20)).astype(np.float64)
    assert ssim_matlab(a, a) == pytest.approx(1.0, abs=1e-12)
    c1 = (0.01 * 255) ** 2                                       # constant images: only the luminance term
    assert ssim_matlab(np.full((12, 12), 100.0), np.full((12, 12), 110.0)) == pytest.approx(
        (2 * 100 * 110 + c1) / (100 ** 2 + 110 ** 2 + c1), abs=1e-12)
    assert ssim_matlab(a, 255 - a) < 0                           # anti-correlated
    with pytest.raises(ValueError, match="at least 11"):
        ssim_matlab(a[:10], a[:10])


def test_quantize_rounds_and_clips():
    x = torch.tensor([0.0, 1.0, -0.1, 1.2, 0.2, 0.5, 3.4 / 255, 3.6 / 255])
    np.testing.assert_array_equal(quantize(x), [0, 255, 0, 255, 51, 128, 3, 4])
    assert quantize(x).dtype == np.uint8
    u8 = np.arange(256, dtype=np.uint8)
    np.testing.assert_array_equal(quantize(torch.from_numpy(u8).float() / 255), u8)   # exact round trip


def test_score_pair():
    rng = np.random.default_rng(2)
    target = rng.integers(0, 256, size=(16, 18, 3), dtype=np.uint8)
    s = score_pair(target, target)
    assert s["y_psnr"] == math.inf and s["rgb_psnr"] == math.inf and s["y_ssim"] == pytest.approx(1.0)
    pred = np.clip(target.astype(int) + 3, 0, 255).astype(np.uint8)
    s = score_pair(pred, target)
    assert s["rgb_psnr"] == pytest.approx(psnr(pred, target))
    assert s["y_psnr"] == pytest.approx(psnr(rgb_to_y(pred), rgb_to_y(target)))
    with pytest.raises(ValueError, match="uint8"):
        score_pair(pred.astype(np.float32), target)
    with pytest.raises(ValueError, match="shape"):
        score_pair(pred[:-1], target[:-1].transpose(1, 0, 2))
