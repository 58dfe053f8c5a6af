"""The prior head may pool finer encoder levels (config `prior_extra_levels`): their correction starts
at zero, so weights trained without it predict exactly as before until it is trained; it then
reads fine detail the bottleneck cannot; bad level lists are refused by name."""
import dataclasses

import pytest
import torch

from weather_restore.models import WeatherRestorer, load_config
from weather_restore.models.config import RestorerConfig
from weather_restore.models.weights_io import load_state_strict
from weather_restore.training.trainer import freeze_except

TINY_V4 = dict(name="tiny_v4", dims=[8, 16, 32], enc_blocks=[0, 1, 1], dec_blocks=[1, 1],
               block_types=["conv", "conv", "dual"], cwp_levels=[1, 2], head_dim=8, window=4,
               mlp_ratio=1.5, ssm_state=4, ssm_chunk=4, density_level=0)


def _pair():
    torch.manual_seed(0)
    old = WeatherRestorer(RestorerConfig(**TINY_V4)).eval()
    new = WeatherRestorer(RestorerConfig(**TINY_V4, prior_extra_levels=[0, 1])).eval()
    load_state_strict(new, old.state_dict(), "old", new_modules=["prior_head.extra"])
    return old, new


def test_an_added_fine_head_starts_as_the_old_head():
    old, new = _pair()
    assert old.prior_head.extra is None
    # pooled mean + max of levels 0 and 1 (8 + 16 channels) in, one logit per weather type out
    assert new.prior_head.extra[0].in_features == 2 * (8 + 16) and new.prior_head.extra[-1].out_features == 4
    x = torch.rand(2, 3, 48, 40)
    with torch.no_grad():
        a, b = old(x), new(x)
    assert torch.equal(a.pred_prior_logits, b.pred_prior_logits) and torch.equal(a.image, b.image)


def test_the_trained_fine_head_reads_full_resolution_detail():
    _, new = _pair()
    freeze_except(new, ["prior_head"])
    opt = torch.optim.Adam([p for p in new.parameters() if p.requires_grad], lr=1e-2)
    x = torch.rand(4, 3, 32, 32)
    target = torch.tensor([[1.0, 0, 0, 0], [0, 0, 0, 1.0]] * 2)
    x[0::2, :, ::4] = 1.0                                   # thin bright lines on the "rainy" pair
    first = None
    for _ in range(40):
        logits = new.signals(x).prior_logits
        loss = torch.nn.functional.binary_cross_entropy_with_logits(logits, target)
        first = loss.item() if first is None else first
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert loss.item() < 0.5 * first
    assert new.prior_head.extra[-1].weight.abs().sum() > 0   # the correction moved off zero
    # the prior now depends on level-0 features: a change there moves it
    feats = new.encode(x)[0]
    with torch.no_grad():
        base = new.prior_head(feats[-1], [feats[0], feats[1]])
        moved = new.prior_head(feats[-1], [feats[0] + 1.0, feats[1]])
    assert (base - moved).abs().max() > 1e-4


@pytest.mark.parametrize("levels", [[2], [0, 0], [-1], [5], ["a"], [True]])
def test_bad_extra_levels_are_refused_by_name(levels):
    with pytest.raises(ValueError, match="prior_extra_levels"):
        RestorerConfig(**TINY_V4, prior_extra_levels=levels)


def test_m_keeps_the_bottleneck_head_and_the_experiment_pools_three_fine_levels():
    m, fine = load_config("m"), load_config("m_fine_prior")
    assert m.prior_extra_levels == [] and WeatherRestorer(m, device="meta").prior_head.extra is None
    assert fine.prior_extra_levels == [0, 1, 2]
    assert dataclasses.replace(fine, name="m", prior_extra_levels=[]) == m      # otherwise the same network
    assert RestorerConfig.from_json(fine.to_json()) == fine                     # round trip through weights metadata
