"""The restorer network: shapes, dtypes, determinism, gradients, signals in/out, cost budget."""
import dataclasses

import pytest
import torch

from weather_restore.models import WeatherRestorer, load_config, list_configs
from weather_restore.models.config import RestorerConfig
from weather_restore.models.signals import WEATHER_TYPES


@pytest.mark.parametrize("shape", [(1, 3, 37, 53), (2, 3, 16, 16), (3, 3, 9, 70), (1, 3, 1, 1)])
def test_output_has_input_shape(tiny_model, shape):
    x = torch.rand(shape)
    with torch.no_grad():
        out = tiny_model(x)
    B, _, H, W = shape
    assert out.image.shape == shape
    assert out.prior.shape == (B, len(WEATHER_TYPES))
    assert out.density.shape == (B, 1, H, W)
    assert out.pred_density_logits.shape == (B, 1, H, W)
    assert out.quality_logits.shape == (B, 3)
    assert torch.isfinite(out.image).all()
    assert 0 <= out.prior.min() and out.prior.max() <= 1


def test_batch_items_are_independent(tiny_model):
    x = torch.rand(3, 3, 24, 40)
    with torch.no_grad():
        whole = tiny_model(x).image
        single = tiny_model(x[1:2]).image
    torch.testing.assert_close(whole[1:2], single, atol=1e-5, rtol=1e-4)


def test_bfloat16_on_cpu(tiny_model):
    x = torch.rand(2, 3, 21, 30)
    with torch.no_grad():
        ref = tiny_model(x).image
        out = tiny_model.to(torch.bfloat16)(x.to(torch.bfloat16)).image
    assert out.dtype == torch.bfloat16
    assert torch.isfinite(out.float()).all()
    assert (out.float() - ref).abs().mean() < 0.05


def test_same_seed_same_output(tiny_cfg):
    x = torch.rand(1, 3, 32, 48)
    outs = []
    for _ in range(2):
        torch.manual_seed(123)
        with torch.no_grad():
            outs.append(WeatherRestorer(tiny_cfg).eval()(x).image)
    torch.manual_seed(7)
    with torch.no_grad():
        other = WeatherRestorer(tiny_cfg).eval()(x).image
    assert torch.equal(outs[0], outs[1])
    assert not torch.allclose(outs[0], other)


def test_every_parameter_gets_a_gradient(tiny_model):
    tiny_model.train()
    x = torch.rand(2, 3, 20, 28)
    out = tiny_model(x)
    loss = (out.image.mean() + out.pred_prior_logits.mean() + out.pred_density_logits.mean()
            + out.quality_logits.mean())
    loss.backward()
    missing = [n for n, p in tiny_model.named_parameters() if p.grad is None or not torch.isfinite(p.grad).all()]
    zero = [n for n, p in tiny_model.named_parameters() if p.grad is not None and p.grad.abs().sum() == 0]
    assert not missing, f"no gradient for {missing}"
    assert not zero, f"all-zero gradient for {zero}"


def test_given_signals_change_the_output_and_own_predictions_reproduce_it(tiny_model):
    torch.manual_seed(1)
    x = torch.rand(2, 3, 30, 36)
    with torch.no_grad():
        base = tiny_model(x)
        again = tiny_model(x, prior=base.prior, density=base.density)
        other_prior = tiny_model(x, prior=1 - base.prior)
        other_density = tiny_model(x, density=torch.ones_like(base.density))
    torch.testing.assert_close(again.image, base.image, atol=1e-5, rtol=1e-4)
    assert (other_prior.image - base.image).abs().max() > 1e-4
    assert (other_density.image - base.image).abs().max() > 1e-4
    # the heads still report their own prediction when a signal is given
    torch.testing.assert_close(other_prior.pred_prior_logits, base.pred_prior_logits)


def test_predict_signals_matches_forward(tiny_model):
    x = torch.rand(1, 3, 27, 41)
    with torch.no_grad():
        full = tiny_model(x)
    sig = tiny_model.predict_signals(x)
    torch.testing.assert_close(sig.prior_logits, full.pred_prior_logits)
    torch.testing.assert_close(sig.density_logits, full.pred_density_logits)
    torch.testing.assert_close(sig.quality_logits, full.quality_logits)


def test_predict_density_is_the_signals_map_from_the_levels_it_reads():
    """The density tiles' shortcut: the same logits as predict_signals, without running the levels
    below the density head's (tiny with 3 levels, its density head on level 0, then on level 1)."""
    torch.manual_seed(0)
    base = dataclasses.replace(load_config("tiny"), dims=[8, 16, 24], enc_blocks=[1, 1, 1], dec_blocks=[1, 1])
    x = torch.rand(2, 3, 29, 37)
    for level in (0, 1):
        model = WeatherRestorer(dataclasses.replace(base, density_level=level)).eval()
        deepest = []
        model.sar[-1].register_forward_hook(lambda *a: deepest.append(1))
        d = model.predict_density(x)
        assert d.shape == (2, 1, 29, 37) and not deepest           # the last level never ran
        torch.testing.assert_close(d, model.predict_signals(x).density_logits, atol=0, rtol=0)
        assert deepest                                             # ... which predict_signals needs


def test_bad_signal_shapes_are_named(tiny_model):
    x = torch.rand(2, 3, 16, 16)
    with pytest.raises(ValueError, match="weather prior"):
        tiny_model(x, prior=torch.rand(2, 3))
    with pytest.raises(ValueError, match="density map"):
        tiny_model(x, density=torch.rand(2, 16, 16))
    with pytest.raises(ValueError, match="resize"):
        tiny_model(x, density=torch.rand(2, 1, 8, 8))
    with pytest.raises(ValueError, match="RGB"):
        tiny_model(torch.rand(1, 4, 16, 16))


def test_configs_are_data_and_validated():
    assert {"tiny", "s"} <= set(list_configs())
    cfg = load_config("s")
    assert RestorerConfig.from_json(cfg.to_json()) == cfg
    with pytest.raises(ValueError, match="dec_blocks"):
        RestorerConfig(dims=[16, 32], enc_blocks=[1, 1], dec_blocks=[1, 1])
    with pytest.raises(ValueError, match="unknown restorer config keys"):
        RestorerConfig.from_dict({"dims": [16, 32], "bogus": 1})
    with pytest.raises(FileNotFoundError, match="known variants"):
        load_config("nope")


@pytest.mark.parametrize("name", ["s", "s_dr"])
def test_default_config_within_compute_budget(name):
    """DESIGN.md: the default variant costs at most about 60 GMACs per megapixel (s_dr: s + the refiner)."""
    from torch.utils.flop_counter import FlopCounterMode
    model = WeatherRestorer(load_config(name)).eval()
    x = torch.rand(1, 3, 128, 128)
    with FlopCounterMode(display=False) as counter, torch.no_grad():
        model(x)
    gmacs_per_mp = counter.get_total_flops() / 2 / 1e9 * (1e6 / (128 * 128))
    assert 5 < gmacs_per_mp <= 60


def test_restore_given_both_signals_equals_forward_and_skips_the_heads(tiny_model):
    """What the tiles run: the same image as forward, with the density head, refiner and the other heads
    never called."""
    torch.manual_seed(3)
    x, p, d = torch.rand(2, 3, 40, 56), torch.rand(2, len(WEATHER_TYPES)), torch.rand(2, 1, 40, 56)
    with torch.no_grad():
        want = tiny_model(x, p, d).image
        calls = []
        hooks = [m.register_forward_hook(lambda *a, name=n: calls.append(name)) for n, m in
                 (("density", tiny_model.density_head), ("prior", tiny_model.prior_head),
                  ("quality", tiny_model.quality_head))]
        got = tiny_model.restore(x, p, d)
        for h in hooks:
            h.remove()
    assert got.shape == (2, 3, 40, 56) and calls == []
    assert torch.equal(got, want)
    with pytest.raises(ValueError, match="density map is"):
        tiny_model.restore(x, p, d[..., :20, :])


@pytest.mark.parametrize("d", [1, 4, 16, 32])
def test_dilated_depthwise_equals_the_convolution(d):
    """The interleaved form (from POLYPHASE_FROM on, where d divides the sides) gives the convolution's
    numbers, gradients included; elsewhere the convolution itself runs."""
    from weather_restore.models.heads import dilated_depthwise
    torch.manual_seed(d)
    conv = torch.nn.Conv2d(4, 4, 3, padding=d, dilation=d, groups=4)
    for shape in ((2, 4, 64, 96), (1, 4, 40, 72)):             # 40 x 72: 16 and 32 do not divide it
        x = torch.randn(*shape).contiguous(memory_format=torch.channels_last).requires_grad_()
        got = dilated_depthwise(conv, x)
        got.square().sum().backward()
        gx, gw = x.grad.clone(), conv.weight.grad.clone()
        x.grad, conv.weight.grad = None, None
        want = conv(x)
        want.square().sum().backward()
        assert got.shape == want.shape
        assert torch.allclose(got, want, atol=1e-5)
        assert torch.allclose(gx, x.grad, atol=1e-4) and torch.allclose(gw, conv.weight.grad, atol=1e-3)
        conv.weight.grad = None
