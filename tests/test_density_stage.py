"""The full-resolution density refiner and the "signals" training stage that fits it on top of
frozen weights: the refiner starts as the identity on the coarse map, only the named modules train,
the rest of the network stays bit-identical, and weights without the refiner load into it."""
import dataclasses
import json

import pytest
import torch

from weather_restore.models import WeatherRestorer, load_config
from weather_restore.models.weights_io import WeightsError, load_state_strict, save_restorer
from weather_restore.training.train_config import TrainConfig
from weather_restore.training.trainer import Trainer, freeze_except

import train_helpers as _helpers
FakeWeather, tiny_train_config = _helpers.FakeWeather, _helpers.tiny_train_config


def _refined_config(tmp_path, channels=8):
    cfg = dataclasses.replace(load_config("tiny"), name="tiny_dr", density_refine=channels)
    path = tmp_path / "tiny_dr.json"
    path.write_text(json.dumps(dataclasses.asdict(cfg)))
    return path


def _modules_changed_by_fit(trainer) -> set:
    """Top-level modules whose weights differ after trainer.fit()."""
    before = {k: v.clone() for k, v in trainer.model.state_dict().items()}
    trainer.fit()
    return {k.split(".")[0] for k, v in trainer.model.state_dict().items() if not torch.equal(before[k], v)}


def test_refiner_starts_as_the_coarse_map_and_costs_few_parameters(tmp_path):
    torch.manual_seed(0)
    plain = WeatherRestorer(load_config("tiny")).eval()
    refined = WeatherRestorer(load_config(str(_refined_config(tmp_path)))).eval()
    load_state_strict(refined, plain.state_dict(), "plain tiny", new_modules=["density_refiner"])
    x = torch.rand(2, 3, 21, 34)
    a, b = plain.predict_signals(x), refined.predict_signals(x)
    assert b.density_logits.shape == (2, 1, 21, 34)
    assert torch.equal(a.density_logits, b.density_logits)        # zero-initialised last layer
    extra = sum(p.numel() for p in refined.density_refiner.parameters())
    stem, block, proj = (3 + 16 + 1) * 8 * 9 + 8, (8 * 9 + 8) + (8 * 8 + 8), 8 * 9 + 1
    assert extra == stem + 2 * block + proj                      # 2 dilated residual blocks by default
    with torch.no_grad():                                         # once trained, it changes the map
        refined.density_refiner.proj.bias.fill_(1.0)
    assert torch.allclose(refined.predict_signals(x).density_logits, a.density_logits + 1.0, atol=1e-5)


def test_missing_keys_are_refused_unless_they_belong_to_new_modules(tmp_path):
    plain = WeatherRestorer(load_config("tiny"))
    refined = WeatherRestorer(load_config(str(_refined_config(tmp_path))))
    with pytest.raises(WeightsError, match="density_refiner"):
        load_state_strict(refined, plain.state_dict(), "plain tiny")
    state = {k: v for k, v in plain.state_dict().items() if not k.startswith("prior_head.")}
    with pytest.raises(WeightsError, match="prior_head"):
        load_state_strict(refined, state, "plain tiny", new_modules=["density_refiner"])


def test_new_modules_keep_their_own_start_even_where_the_file_has_them(tmp_path):
    """A wider refiner retrained from the identity on weights whose own refiner is narrower."""
    torch.manual_seed(0)
    narrow = WeatherRestorer(load_config(str(_refined_config(tmp_path, channels=8))))
    with torch.no_grad():
        narrow.density_refiner.proj.bias.fill_(2.0)               # a trained refiner: not the identity
    wide_cfg = tmp_path / "wide"
    wide_cfg.mkdir()
    wide = WeatherRestorer(load_config(str(_refined_config(wide_cfg, channels=12)))).eval()
    with pytest.raises(WeightsError, match="another shape"):
        load_state_strict(wide, narrow.state_dict(), "narrow")
    load_state_strict(wide, narrow.state_dict(), "narrow", new_modules=["density_refiner"])
    assert not wide.density_refiner.proj.bias.any()                  # its own (identity) start
    assert torch.equal(wide.density_head.globl.weight, narrow.density_head.globl.weight)
    x = torch.rand(1, 3, 20, 24)
    plain = WeatherRestorer(load_config("tiny")).eval()
    load_state_strict(plain, {k: v for k, v in narrow.state_dict().items() if not k.startswith("density_refiner.")},
                      "narrow without its refiner")
    assert torch.equal(wide.predict_signals(x).density_logits, plain.predict_signals(x).density_logits)


def test_signals_stage_trains_only_the_named_modules(tmp_path):
    torch.manual_seed(1)
    base = save_restorer(WeatherRestorer(load_config("tiny")), tmp_path / "base.safetensors")
    cfg = tiny_train_config(model=str(_refined_config(tmp_path)), init_weights=str(base), steps=30,
                            lr=1e-2, warmup=1, flips=False, stage="signals",
                            trainable=["density_head", "density_refiner"], new_modules=["density_refiner"],
                            loss={"prior": 0.0, "density": 1.0, "quality": 0.0})
    tr = Trainer(cfg, tmp_path / "run", dataset=FakeWeather(n=2), show_progress=False)
    assert _modules_changed_by_fit(tr) == {"density_head", "density_refiner"}
    curve = [json.loads(ln) for ln in (tmp_path / "run" / "curve.jsonl").read_text().splitlines()]
    losses = [r["losses"] for r in curve if "losses" in r]
    assert set(losses[0]) == {"density", "total", "grad_norm"}
    assert losses[-1]["density"] < 0.7 * losses[0]["density"], (losses[0], losses[-1])


def test_full_stage_with_trainable_trains_the_density_modules_through_the_frozen_body(tmp_path):
    """Image loss with the heads' own map (gt_signal_prob 0): gradients reach the density modules
    through the frozen restoration body, which itself does not move."""
    torch.manual_seed(2)
    cfg = tiny_train_config(model=str(_refined_config(tmp_path)), steps=3, lr=1e-2, flips=False,
                            trainable=["density_head", "density_refiner"],
                            loss={"gt_signal_prob": 0.0, "prior": 0.0, "quality": 0.0, "difficulty": 0.0,
                                  "srd": 0.0, "density": 0.0})
    tr = Trainer(cfg, tmp_path / "run", dataset=FakeWeather(n=2), show_progress=False)
    assert _modules_changed_by_fit(tr) == {"density_head", "density_refiner"}


@pytest.mark.parametrize("gt_signal_prob, reaches", [(1.0, False), (0.0, True)])
def test_gt_signal_prob_decides_whether_the_image_loss_trains_the_density_head(tmp_path, gt_signal_prob, reaches):
    """Fed the synthesizer's map (prob 1) the body never sees the head's own map, so with no density
    loss the head cannot move; restoring with its own map (prob 0, as s_own_density trains) it learns
    from the image loss alone."""
    torch.manual_seed(3)
    cfg = tiny_train_config(steps=3, lr=1e-2, flips=False, trainable=["density_head", "out"],
                            loss={"gt_signal_prob": gt_signal_prob, "prior": 0.0, "quality": 0.0,
                                  "difficulty": 0.0, "srd": 0.0, "density": 0.0})
    tr = Trainer(cfg, tmp_path / "run", dataset=FakeWeather(n=2), show_progress=False)
    assert _modules_changed_by_fit(tr) == ({"density_head", "out"} if reaches else {"out"})


def test_losses_that_reach_no_trainable_module_are_named(tmp_path):
    cfg = tiny_train_config(steps=2, flips=False, trainable=["density_head"],
                            loss={"gt_signal_prob": 1.0, "prior": 0.0, "quality": 0.0,
                                  "difficulty": 0.0, "srd": 0.0, "density": 0.0})
    tr = Trainer(cfg, tmp_path / "run", dataset=FakeWeather(n=2), show_progress=False)
    with pytest.raises(ValueError, match="trainable.*density_head"):
        tr.fit()


def test_stage_and_trainable_are_checked():
    with pytest.raises(ValueError, match="stage must be full or signals"):
        TrainConfig(stage="heads")
    with pytest.raises(ValueError, match="loss.prior or loss.density"):
        TrainConfig(stage="signals", loss={"prior": 0.0, "density": 0.0})
    with pytest.raises(ValueError, match="not in the network.*density_head"):
        freeze_except(WeatherRestorer(load_config("tiny")), ["density_heads"])


def test_a_half_resolution_refiner_starts_as_the_coarse_map_and_corrects_every_pixel(tmp_path):
    """density_refine_scale 2: the blocks run on the pixel-unshuffled input at half resolution, and the s*s
    projected channels shuffle back to a full-resolution correction, one value per pixel."""
    torch.manual_seed(0)
    plain = WeatherRestorer(load_config("tiny")).eval()
    cfg = dataclasses.replace(load_config("tiny"), name="tiny_dr2", density_refine=8, density_refine_scale=2)
    path = tmp_path / "tiny_dr2.json"
    path.write_text(json.dumps(dataclasses.asdict(cfg)))
    refined = WeatherRestorer(load_config(str(path))).eval()
    load_state_strict(refined, plain.state_dict(), "plain tiny", new_modules=["density_refiner"])
    x = torch.rand(2, 3, 21, 34)
    a, b = plain.predict_signals(x), refined.predict_signals(x)
    assert b.density_logits.shape == (2, 1, 21, 34) and torch.equal(a.density_logits, b.density_logits)
    assert refined.density_refiner.stem[0].in_channels == (3 + 16 + 1) * 4 and refined.density_refiner.proj.out_channels == 4
    with torch.no_grad():                     # channel k of the projection lands on phase (k // 2, k % 2)
        refined.density_refiner.proj.bias.copy_(torch.tensor([1.0, 2.0, 3.0, 4.0]))
    diff = refined.predict_signals(x).density_logits - a.density_logits
    assert torch.allclose(diff[..., 0::2, 0::2], torch.ones(()), atol=1e-5)
    assert torch.allclose(diff[..., 1::2, 1::2], torch.full((), 4.0), atol=1e-5)
    with pytest.raises(ValueError, match="density_refine_scale 3 must divide"):
        dataclasses.replace(cfg, density_refine_scale=3)


def test_the_refiner_trains_in_fp32_under_cpu_autocast():
    """torch 2.14's CPU backward of bf16 depthwise convolutions on channels_last maps crashes or gives NaN
    (dilation 8 on, and now and then below); under CPU autocast with gradients the refiner computes in
    fp32: the numbers of no autocast and finite gradients. Inference (no gradients) keeps bf16."""
    from weather_restore.models.heads import DensityRefiner
    torch.manual_seed(0)
    ref = DensityRefiner(feat_dim=8, hidden=8, blocks=5, scale=2).to(memory_format=torch.channels_last)
    torch.nn.init.normal_(ref.proj.weight, std=0.1)          # not the identity
    x, feat, coarse = torch.rand(2, 3, 64, 64), torch.randn(2, 8, 64, 64), torch.randn(2, 1, 64, 64)
    want = ref(x, feat, coarse)
    x.requires_grad_()
    with torch.autocast("cpu", dtype=torch.bfloat16):
        got = ref(x, feat, coarse)
    got.square().sum().backward()
    assert got.dtype == torch.float32 and torch.allclose(got, want, atol=1e-5)
    assert torch.isfinite(x.grad).all() and all(torch.isfinite(p.grad).all() for p in ref.parameters())
    with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16):
        fast = ref(x, feat, coarse)
    assert not torch.allclose(fast.float(), want, atol=1e-4) and (fast.float() - want).abs().max() < 0.1
