"""NLCL stage: self-similar positives, the InfoNCE value, real-rain crops, and a trainer step."""
import math
from pathlib import Path

import pytest
import torch

from weather_restore.training.nlcl import info_nce, lowpass_fidelity, nlcl_loss, self_similar_positives
from weather_restore.training.real_rain import RealRainCrops
from weather_restore.training.train_config import DEFAULT_NLCL
from weather_restore.training.trainer import Trainer

import train_helpers as _helpers
SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"



def test_positives_are_the_self_similar_patches_inside_the_window():
    g = torch.Generator().manual_seed(0)
    p = 4
    img = torch.rand(1, 3, 8 * p, 8 * p, generator=g)            # an 8 x 8 grid of random patches
    twin = img[..., 0:p, 0:p].clone()
    img[..., 2 * p:3 * p, 1 * p:2 * p] = twin + 0.01              # cell (2, 1) copies cell (0, 0)
    img[..., 7 * p:8 * p, 7 * p:8 * p] = twin                     # cell (7, 7) copies it exactly, but far away
    anchors = torch.tensor([[0]])
    near = self_similar_positives(img, p, anchors, window=2 * p, k=1)
    assert near.tolist() == [[[2 * 8 + 1]]]
    wide = self_similar_positives(img, p, anchors, window=8 * p, k=2)
    assert wide.tolist() == [[[7 * 8 + 7, 2 * 8 + 1]]]
    assert 0 not in self_similar_positives(img, p, anchors, window=8 * p, k=10).flatten().tolist()


def test_info_nce_value():
    q = torch.tensor([[[1.0, 0.0]]])                              # (N=1, A=1, C=2)
    pos = torch.tensor([[[[1.0, 0.0]]]])                          # identical: s = 1
    neg = torch.tensor([[[[0.0, 1.0], [-1.0, 0.0]]]])             # s = 0 and -1
    t = 0.5
    expected = -math.log(math.exp(2) / (math.exp(2) + math.exp(0) + math.exp(-2)))
    assert info_nce(q, pos, neg, t).item() == pytest.approx(expected, rel=1e-6)
    assert info_nce(q, -pos, neg, t) > info_nce(q, pos, neg, t)


def test_nlcl_loss_trains_the_output_not_the_frozen_encoder(tiny_model):
    for p in tiny_model.parameters():
        p.requires_grad_(False)
    rainy = torch.rand(2, 3, 32, 32)
    restored = (rainy * 0.8).requires_grad_(True)
    opts = {**DEFAULT_NLCL, "patch": 4, "window": 8, "anchors": 8, "negatives": 4}
    loss = nlcl_loss(tiny_model, rainy, restored, opts, torch.Generator().manual_seed(0))
    loss.backward()
    assert torch.isfinite(loss) and loss > 0
    assert restored.grad is not None and restored.grad.abs().sum() > 0
    again = nlcl_loss(tiny_model, rainy, restored, opts, torch.Generator().manual_seed(0))
    assert again.item() == loss.item()                            # seeded sampling


def test_lowpass_fidelity_sees_a_colour_cast_not_thin_streaks():
    rainy = torch.rand(1, 3, 32, 32) * 0.8
    assert lowpass_fidelity(rainy, rainy, 16).item() == 0
    darker = rainy - 2 / 255                                           # a 2-level brightness shift
    assert abs(lowpass_fidelity(rainy, darker, 16).item() - 2 / 255) < 1e-6
    streaks = rainy.clone()
    streaks[..., :, ::8] += 0.2                                        # one-pixel streaks, 1 column in 8
    # removing them moves each 16x16 block's mean by 0.2/8: a tenth of the cost of the same change everywhere
    removed = lowpass_fidelity(streaks, rainy, 16).item()
    assert abs(removed - 0.2 / 8) < 1e-6
    assert removed < 0.2 * 0.2
    with pytest.raises(ValueError, match="lowpass_block"):
        lowpass_fidelity(rainy, rainy, 64)


def test_real_rain_crops_are_seeded_and_padded():
    imgs = [torch.randint(0, 256, (3, 40, 50), dtype=torch.uint8), torch.randint(0, 256, (3, 20, 20), dtype=torch.uint8)]
    crops = RealRainCrops(crop=24, seed=3, images=imgs)
    a, b = crops.batch_at(7, 4), crops.batch_at(7, 4)
    assert a.shape == (4, 3, 24, 24) and a.dtype == torch.float32
    assert torch.equal(a, b) and not torch.equal(a, crops.batch_at(8, 4))
    assert 0 <= a.min() and a.max() <= 1


def test_trainer_with_the_nlcl_stage(tmp_path):
    imgs = [torch.randint(0, 256, (3, 48, 48), dtype=torch.uint8) for _ in range(3)]
    cfg = _helpers.tiny_train_config(steps=2, nlcl={"enabled": True, "crop": 32, "batch": 2, "patch": 4,
                                                    "window": 8, "anchors": 8, "negatives": 4})
    tr = Trainer(cfg, tmp_path, dataset=_helpers.FakeWeather(), real_crops=RealRainCrops(crop=32, images=imgs),
                 show_progress=False)
    stats = tr.fit()
    assert stats["nlcl"] > 0 and math.isfinite(stats["total"])
    assert "lowpass" not in stats                                      # off unless weighted
    assert tr.step == 2


def test_nlcl_stage_adds_the_weighted_lowpass_term(tmp_path):
    imgs = [torch.randint(0, 256, (3, 48, 48), dtype=torch.uint8) for _ in range(3)]
    nlcl = {"enabled": True, "crop": 32, "batch": 2, "patch": 4, "window": 8, "anchors": 8, "negatives": 4,
            "lowpass_weight": 2.0, "lowpass_block": 8}
    cfg = _helpers.tiny_train_config(steps=1, nlcl=nlcl)
    tr = Trainer(cfg, tmp_path, dataset=_helpers.FakeWeather(), real_crops=RealRainCrops(crop=32, images=imgs),
                 show_progress=False)
    real = tr.nlcl.batch(0, tr.device)
    restored = real * 0.9
    parts = tr.nlcl.loss(real, restored, tr.model, tr.ema.model, 0)
    assert set(parts) == {"nlcl", "lowpass"}
    assert abs(parts["lowpass"].item() - 2.0 * lowpass_fidelity(real, restored, 8).item()) < 1e-6
    assert parts["lowpass"].item() > 0


@pytest.mark.data
@pytest.mark.skipif(not (SHARED_DATA / "train" / "real_rain").is_dir(), reason="needs ../shared/data")
def test_real_rain_folder_loads():
    crops = RealRainCrops(SHARED_DATA / "train" / "real_rain", crop=96, seed=0)
    assert len(crops) == 100
    assert crops.batch_at(0, 2).shape == (2, 3, 96, 96)
