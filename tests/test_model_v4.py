"""The v4 family (configs m, l): per-level block types and CWP levels are config data, channels-last
is a layout only, the GMAC budget per config, and a tiny v4 network can learn."""
import dataclasses

import pytest
import torch
from torch.utils.flop_counter import FlopCounterMode

from weather_restore.models import WeatherRestorer, load_config
from weather_restore.models.config import RestorerConfig
from weather_restore.models.conv_block import GatedConvBlock
from weather_restore.models.dual_aggregation import DualAggregationBlock

TINY_V4 = dict(name="tiny_v4", dims=[8, 16, 32], enc_blocks=[0, 1, 1], dec_blocks=[1, 1],
               block_types=["conv", "conv", "dual"], cwp_levels=[1, 2], head_dim=8, window=4,
               mlp_ratio=1.5, ssm_state=4, ssm_chunk=4, density_level=0)


def _gmacs_per_mp(model, side=128):
    with FlopCounterMode(display=False) as counter, torch.no_grad():
        model(torch.rand(1, 3, side, side))
    return counter.get_total_flops() / 2 / 1e9 * (1e6 / side ** 2)


@pytest.mark.parametrize("name", ["m", "l"])
@pytest.mark.parametrize("batch,hw", [(1, (70, 97)), (2, (64, 65))])
def test_v4_configs_keep_shapes_at_odd_sizes(name, batch, hw):
    torch.manual_seed(0)
    model = WeatherRestorer(load_config(name)).eval()
    x = torch.rand(batch, 3, *hw)
    with torch.no_grad():
        out = model(x)
    assert out.image.shape == x.shape and out.density.shape == (batch, 1, *hw)
    assert out.prior.shape == (batch, 4) and out.quality_logits.shape == (batch, 3)
    assert torch.isfinite(out.image).all()
    assert len(out.sar_attention) == 4 and out.sar_attention[3].shape[-2:] == (out.sar_features[0].shape[-2] // 8,
                                                                               out.sar_features[0].shape[-1] // 8)


def test_block_types_and_cwp_levels_decide_the_modules():
    model = WeatherRestorer(load_config("m"))
    assert [type(b) for b in model.body[1]] == [GatedConvBlock]
    assert all(isinstance(b, DualAggregationBlock) and b.prior is not None for b in model.body[3])
    # decoder stored deep -> shallow: levels 2, 1, 0; CWP only at level 2 (cwp_levels [2, 3])
    assert [b.prior is not None for blocks in model.decoder for b in blocks] == [True, False, False]
    assert len(model.body[0]) == 0
    # the old configs: every level dual, CWP at the bottleneck and in every decoder block
    s = WeatherRestorer(load_config("s"))
    assert all(isinstance(b, DualAggregationBlock) for blocks in s.body for b in blocks)
    assert all(b.prior is not None for blocks in s.decoder for b in blocks)


def test_stride_counts_only_window_attention_levels():
    assert load_config("s").stride == 32                  # unchanged: window 8 at level 2
    assert load_config("m").stride == 64                  # window 8 at level 3 only
    conv_only = RestorerConfig(**{**TINY_V4, "block_types": ["conv", "conv", "conv"], "cwp_levels": []})
    assert conv_only.stride == 4                          # just the down-sampling


def test_default_config_is_the_s_variant_and_builds():
    cfg = RestorerConfig()
    assert cfg.to_json() == load_config("s").to_json()
    out = WeatherRestorer(cfg)(torch.rand(1, 3, 32, 32))
    assert out.image.shape == (1, 3, 32, 32)


@pytest.mark.parametrize("bad,match", [
    (dict(block_types=["conv", "conv"]), "block_types"),
    (dict(block_types=["conv", "mamba", "dual"]), "block_types"),
    (dict(cwp_levels=[3]), "cwp_levels"),
    (dict(dims=[8, 12, 32]), "head_dim"),          # 12 channels at a conv level that carries CWP (level 1)
])
def test_v4_config_errors_name_the_field(bad, match):
    with pytest.raises(ValueError, match=match):
        RestorerConfig(**{**TINY_V4, **bad})


def test_head_dim_only_binds_levels_with_heads():
    cfg = RestorerConfig(**{**TINY_V4, "dims": [12, 16, 32]})   # level 0: conv, no CWP -> any width
    assert WeatherRestorer(cfg)(torch.rand(1, 3, 20, 20)).image.shape == (1, 3, 20, 20)


def test_channels_last_changes_layout_not_result():
    torch.manual_seed(0)
    plain = WeatherRestorer(RestorerConfig(**TINY_V4)).eval()
    fast = WeatherRestorer(RestorerConfig(**{**TINY_V4, "channels_last": True})).eval()
    for m in plain.modules():                      # non-zero residual scales so every path counts
        if isinstance(m, GatedConvBlock):
            torch.nn.init.normal_(m.beta)
            torch.nn.init.normal_(m.gamma)
    fast.load_state_dict(plain.state_dict())
    x = torch.rand(2, 3, 24, 20)
    with torch.no_grad():
        a, b = plain(x), fast(x)
    torch.testing.assert_close(a.image, b.image, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(a.density, b.density, atol=1e-5, rtol=1e-5)
    assert b.image.is_contiguous()


def test_conv_block_reads_the_density_map_once_trained():
    torch.manual_seed(0)
    block = GatedConvBlock(8, RestorerConfig(**TINY_V4)).eval()
    torch.nn.init.normal_(block.beta)
    x, d0, d1 = torch.randn(1, 8, 6, 6), torch.zeros(1, 1, 12, 12), torch.ones(1, 1, 12, 12)
    with torch.no_grad():
        torch.testing.assert_close(block(x, d0), block(x, d1))      # zero-initialised: D not used yet
        torch.nn.init.normal_(block.from_density.weight)
        assert (block(x, d0) - block(x, d1)).abs().max() > 1e-3


def test_conv_block_fused_update_equals_its_written_out_formula():
    """x + beta (1 + from_density(pool D)) project(h), then + gamma FFN, with every weight random, at a
    level where D is pooled (12 -> 6 px) and at full resolution, where it is not."""
    torch.manual_seed(1)
    block = GatedConvBlock(8, RestorerConfig(**TINY_V4)).eval()
    with torch.no_grad():
        for p in block.parameters():
            p.normal_(0, 0.5)

    def written_out(x, density):
        a, b = block.dwconv(block.expand(block.norm_mix(x))).chunk(2, dim=1)
        h = a * b
        h = h * block.channel_scale(h.mean(dim=(2, 3), keepdim=True))
        d = torch.nn.functional.adaptive_avg_pool2d(density, x.shape[-2:])
        x = x + block.beta * (1 + block.from_density(d)) * block.project(h)
        return x + block.gamma * block.ffn(block.norm_ffn(x))

    with torch.no_grad():
        for size in (6, 12):
            x, d = torch.randn(2, 8, size, size), torch.rand(2, 1, 12, 12)
            torch.testing.assert_close(block(x, d), written_out(x, d), atol=1e-5, rtol=1e-5)


def test_gated_ffn_halves_equal_the_chunked_formula():
    """The FFN runs its halves as two convolutions on weight slices (dense halves, no 2 x hidden map):
    the same values and gradients as expand -> dwconv -> chunk -> GELU gate -> project, also on a
    channels_last input."""
    from weather_restore.models.norm import GatedFeedForward
    torch.manual_seed(3)
    ffn = GatedFeedForward(8, 1.5)
    for p in ffn.parameters():
        torch.nn.init.normal_(p, std=0.3)

    def written_out(x):
        a, b = ffn.dwconv(ffn.expand(x)).chunk(2, dim=1)
        return ffn.project(torch.nn.functional.gelu(a) * b)

    x = torch.randn(2, 8, 9, 7)
    for inp in (x, x.contiguous(memory_format=torch.channels_last)):
        torch.testing.assert_close(ffn(inp), written_out(inp), atol=1e-5, rtol=1e-5)
    ffn(x).square().sum().backward()
    got = {n: p.grad.clone() for n, p in ffn.named_parameters()}
    ffn.zero_grad()
    written_out(x).square().sum().backward()
    for n, p in ffn.named_parameters():
        torch.testing.assert_close(got[n], p.grad, atol=1e-4, rtol=1e-4, msg=n)


# GMACs per megapixel: DESIGN.md's "about 60" for the default m; l is the GPU variant
BUDGETS = {"m": (30, 65), "l": (150, 400)}


@pytest.mark.parametrize("name", sorted(BUDGETS))
def test_v4_compute_budget_and_size(name):
    model = WeatherRestorer(load_config(name)).eval()
    lo, hi = BUDGETS[name]
    assert lo < _gmacs_per_mp(model) <= hi
    params = sum(p.numel() for p in model.parameters())
    s_params = sum(p.numel() for p in WeatherRestorer(load_config("s")).parameters())
    assert params >= 8 * s_params                      # the capacity the architecture issue asks for


def test_tiny_v4_overfits_one_batch():
    torch.manual_seed(0)
    model = WeatherRestorer(RestorerConfig(**TINY_V4))
    clean = torch.nn.functional.interpolate(torch.rand(2, 3, 4, 4), size=(32, 32), mode="bilinear")  # smooth
    weathered = (clean + 0.3 * (torch.rand(2, 1, 32, 32) > 0.9)).clamp(0, 1)   # sparse bright "streaks"
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    first = None
    for _ in range(150):
        loss = (model(weathered).image - clean).abs().mean()
        first = float(loss.detach()) if first is None else first
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert float(loss.detach()) < 0.3 * first


def test_quality_logits_alone_equal_the_signals_quality_logits():
    """Training's difficulty weights read `quality_logits`, which skips the prior and density heads."""
    cfg = dataclasses.replace(load_config("tiny"), density_refine=8, density_refine_blocks=2)
    torch.manual_seed(0)
    net = WeatherRestorer(cfg).eval()
    x = torch.rand(2, 3, 37, 50)
    with torch.no_grad():
        assert torch.allclose(net.quality_logits(x), net.signals(x).quality_logits, atol=1e-6)
