"""Losses, schedule, EMA, SRD teacher and the (seed, step) data order of the trainer."""
import math

import pytest
import torch

from weather_restore.training import losses as L
from weather_restore.training.data import EpochView, StepBatchSampler
from weather_restore.training.ema import EMA
from weather_restore.training.optim import cosine_lr
from weather_restore.training.teachers import EMATeacher


def test_charbonnier_is_robust_l1():
    x = torch.zeros(2, 3, 8, 8)
    assert torch.allclose(L.charbonnier(x, x, eps=1e-3), torch.full((2,), 1e-3))
    y = x.clone()
    y[1] += 0.5
    v = L.charbonnier(y, x, eps=1e-3)
    assert v[0].item() == pytest.approx(1e-3)
    assert v[1].item() == pytest.approx(math.sqrt(0.25 + 1e-6), rel=1e-6)


def test_frequency_l1_of_a_constant_offset_is_its_dc_term():
    H, W, c = 8, 10, 0.3
    t = torch.rand(1, 3, H, W)
    v = L.frequency_l1(t + c, t)
    # ortho rfft2 of a constant c: only the DC bin, value c * sqrt(H W), real part only
    expected = c * math.sqrt(H * W) / (H * (W // 2 + 1) * 2)
    assert v.item() == pytest.approx(expected, rel=1e-4)
    assert L.frequency_l1(t, t).item() == pytest.approx(0.0, abs=1e-7)


def test_psnr_loss_is_minus_the_psnr_and_weighs_samples_in_db():
    t = torch.rand(2, 3, 8, 8)
    y = t.clone()
    y[0] += 0.1                                   # MSE 0.01 -> 20 dB
    y[1] += 0.01                                  # MSE 1e-4 -> 40 dB
    v = L.psnr_loss(y, t, eps=0.0)
    assert v.tolist() == pytest.approx([-20.0, -40.0], abs=1e-4)
    assert L.psnr_loss(t, t).tolist() == pytest.approx([-50.0, -50.0], abs=1e-4)   # eps caps at 50 dB
    # the gradient is scaled by 1 / MSE: the same relative error costs the same in both samples
    y.requires_grad_(True)
    L.psnr_loss(y, t, eps=0.0).sum().backward()
    g = y.grad.flatten(1).norm(dim=1)
    assert g[1].item() == pytest.approx(10 * g[0].item(), rel=1e-3)
    terms = L.image_losses(y.detach(), t, {"pixel": 1.0, "psnr": 0.01})
    # default eps 1e-5: 10 log10(0.01 + 1e-5), 10 log10(1e-4 + 1e-5), times the weight
    assert terms["psnr"].tolist() == pytest.approx([0.1 * math.log10(0.01001), 0.1 * math.log10(1.1e-4)], abs=1e-4)


def test_streak_term_counts_only_the_pixels_the_weather_changed():
    t = torch.full((2, 3, 8, 8), 0.5)
    weathered = t.clone()
    weathered[0, 1, :, :2] += 0.3                 # sample 0: a 2-column streak in one channel (a quarter of the pixels)
    y = t.clone()
    y[:, :, :, :2] += 0.1                         # both outputs wrong on those columns
    y[:, :, :, 6:] -= 0.2                         # ... and where no weather was
    v = L.streak_charbonnier(y, t, weathered, threshold=0.02, eps=0.0)
    assert v.tolist() == pytest.approx([0.25 * 0.1, 0.0], abs=1e-6)      # every channel of a changed pixel counts
    terms = L.image_losses(y, t, {"pixel": 1.0, "streak": 2.0, "streak_threshold": 0.5}, weathered)
    assert terms["streak"].tolist() == pytest.approx([0.0, 0.0], abs=1e-6)  # 0.3 is under this threshold
    terms = L.image_losses(y, t, {"pixel": 1.0, "streak": 2.0}, weathered)
    assert terms["streak"][0].item() == pytest.approx(2.0 * 0.25 * math.sqrt(0.01 + 1e-6), rel=1e-4)
    with pytest.raises(ValueError, match="needs the weathered input"):
        L.image_losses(y, t, {"pixel": 1.0, "streak": 2.0})
    assert "streak" not in L.image_losses(y, t, {"pixel": 1.0})


def test_ssim_identity_and_constant_images():
    x = torch.rand(2, 3, 16, 16)
    assert torch.allclose(L.ssim(x, x), torch.ones(2), atol=1e-5)
    a, b = 0.2, 0.6
    c1 = 0.01 ** 2
    v = L.ssim(torch.full((1, 3, 16, 16), a), torch.full((1, 3, 16, 16), b))
    assert v.item() == pytest.approx((2 * a * b + c1) / (a * a + b * b + c1), rel=1e-4)
    assert L.ssim(x, torch.rand(2, 3, 16, 16)).max() < 0.2


def test_image_losses_stay_float32_under_bf16_autocast():
    """Under autocast the convolutions of SSIM would run in bf16, where E[y^2] - mu^2 of a nearly
    restored crop cancels to zero or below (-inf once ended a CPU bf16 run): the terms must match
    float32 and stay finite."""
    torch.manual_seed(0)
    t = torch.rand(4, 3, 48, 48) * 0.1 + 0.85                      # bright, flat: the worst case
    y = (t + 1e-3 * torch.randn_like(t)).requires_grad_()
    w = {"pixel": 0.5, "freq": 0.05, "ssim": 0.2, "psnr": 0.01, "streak": 0.5}
    weathered = t + 0.05 * (torch.rand_like(t) > 0.8)
    ref = L.image_losses(y, t, w, weathered)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        got = L.image_losses(y.bfloat16(), t, w, weathered.bfloat16())
        srd = L.srd_loss([torch.full((4, 1, 12, 12), 0.3)], torch.full((4, 1, 48, 48), 0.3))
    for k in ref:
        assert got[k].dtype == torch.float32 and torch.isfinite(got[k]).all(), k
        assert torch.allclose(got[k], ref[k], rtol=0.05, atol=2e-4), (k, got[k], ref[k])
    assert srd.dtype == torch.float32 and srd.item() == pytest.approx(-(0.3 * math.log(0.3) + 0.7 * math.log(0.7)), rel=1e-4)


def test_difficulty_weights_favour_poor_outputs_and_average_one():
    score = torch.tensor([0.9, 0.5, 0.1])
    w = L.difficulty_weights(score, 1.0)
    assert w.mean().item() == pytest.approx(1.0)
    assert w[2] > w[1] > w[0]
    assert w[2].item() / w[0].item() == pytest.approx(1.9 / 1.1)
    assert torch.allclose(L.difficulty_weights(score, 0.0), torch.ones(3))


def test_head_losses_check_shapes_and_targets():
    with pytest.raises(ValueError, match="WEATHER_TYPES"):
        L.prior_loss(torch.zeros(2, 4), torch.zeros(2, 3))
    logits = torch.tensor([[20.0, -20.0, -20.0, 20.0]])
    assert L.prior_loss(logits, torch.tensor([[1.0, 0, 0, 1]])).item() < 1e-6
    d = torch.zeros(1, 1, 8, 8)
    assert L.density_loss(torch.full((1, 1, 16, 16), -20.0), d).item() < 1e-6   # labels resized


def test_medium_tier_lies_between_clean_and_weathered():
    clean, weathered = torch.zeros(64, 3, 4, 4), torch.ones(64, 3, 4, 4)
    m = L.medium_tier(clean, weathered, (0.25, 0.6), torch.Generator().manual_seed(0))
    u = m[:, 0, 0, 0]
    assert u.min() >= 0.25 and u.max() <= 0.6 and u.std() > 0.05
    assert torch.equal(m, m[:, :1, :1, :1].expand_as(m))


def test_srd_loss_is_lowest_at_the_target():
    coarse = (torch.rand(2, 1, 8, 8, generator=torch.Generator().manual_seed(0)) > 0.5).float()
    target = coarse.repeat_interleave(2, -1).repeat_interleave(2, -2)   # (2, 1, 16, 16), 2x2 blocks
    attn_good = [target.clamp(0.01, 0.99), torch.nn.functional.avg_pool2d(target, 2).clamp(0.01, 0.99)]
    attn_bad = [1 - a for a in attn_good]
    assert L.srd_loss(attn_good, target) < 0.1 < L.srd_loss(attn_bad, target)


def test_cosine_schedule():
    assert cosine_lr(0, 100, 10, 0.1) == pytest.approx(0.1)
    assert cosine_lr(9, 100, 10, 0.1) == pytest.approx(1.0)
    assert cosine_lr(10, 100, 10, 0.1) == pytest.approx(1.0)
    assert cosine_lr(55, 100, 10, 0.1) == pytest.approx(0.55)
    assert cosine_lr(100, 100, 10, 0.1) == pytest.approx(0.1)


def test_ema_update_is_the_moving_average():
    model = torch.nn.Linear(2, 2)
    ema = EMA(model, decay=0.9, warmup=False)
    p0 = model.weight.detach().clone()
    with torch.no_grad():
        model.weight.add_(1.0)
    ema.update(model)
    assert torch.allclose(ema.model.weight, 0.9 * p0 + 0.1 * (p0 + 1.0))
    assert not ema.model.weight.requires_grad
    warm = EMA(model, decay=0.999, warmup=True)
    assert warm.current_decay() == pytest.approx(0.1)


def test_ema_teacher_marks_only_the_changed_area(tiny_model):
    clean = torch.rand(2, 3, 32, 32)
    weathered = clean.clone()
    weathered[0, :, :16, :] = 1.0                      # sample 0: top half changed; sample 1: unchanged
    t = EMATeacher(tiny_model).targets(clean, weathered)
    assert t.shape == (2, 1, 32, 32)
    assert 0 <= t.min() and t.max() <= 1
    assert t[1].abs().max() == 0
    assert t[0, :, :12].mean() > 0.5 > t[0, :, 24:].mean()


class _Items(torch.utils.data.Dataset):
    def __init__(self, n):
        self.n, self.epoch = n, 0

    def set_epoch(self, e):
        self.epoch = e

    def __len__(self):
        return self.n

    def __getitem__(self, i):
        return {"clean": torch.arange(4.0).view(1, 2, 2) + 10 * i, "epoch": self.epoch}


def test_data_order_depends_only_on_seed_and_step():
    s = StepBatchSampler(10, 3, seed=5, start_step=0, total_steps=10)
    batches = list(s)
    flat = [k for b in batches for k in b]
    assert sorted(k % 10 for k in flat[:10]) == list(range(10))          # epoch 0 is a permutation
    assert [k // 10 for k in flat[9:11]] == [0, 1]                       # then epoch 1
    late = StepBatchSampler(10, 3, seed=5, start_step=6, total_steps=10)
    assert list(late) == batches[6:]                                     # resuming draws the same
    r0 = StepBatchSampler(10, 2, seed=5, start_step=0, total_steps=2, rank=0, world=2)
    r1 = StepBatchSampler(10, 2, seed=5, start_step=0, total_steps=2, rank=1, world=2)
    shards = [k for b in list(r0) + list(r1) for k in b]
    assert sorted(shards) == sorted(set(shards)) and len(shards) == 8    # ranks never overlap


def test_epoch_view_sets_the_epoch_and_flips_deterministically():
    view = EpochView(_Items(4), seed=1, flips=True)
    a, b = view[4 * 3 + 2], view[4 * 3 + 2]
    assert a["epoch"] == 3 and torch.equal(a["clean"], b["clean"])
    original = _Items(4)[1]["clean"]
    flipped = [not torch.equal(view[4 * e + 1]["clean"], original) for e in range(16)]
    assert 3 < sum(flipped) < 16
    for e in range(16):                          # only ever mirrored left-right, never upside down
        assert any(torch.equal(view[4 * e + 1]["clean"], t) for t in (original, original.flip(-1)))


def test_quality_tiers_never_call_a_clean_sample_degraded():
    clean = torch.rand(3, 3, 8, 8)
    weathered = clean.clone()
    weathered[0] += 0.3                                           # sample 0 weathered, 1 and 2 left clean
    weathered[2] += 0.5 / 255                                     # below one grey level: still clean
    tiers = L.quality_tiers(weathered, clean, n=2)
    assert tiers.tolist() == [L.TIER_LOW, L.TIER_HIGH, L.TIER_HIGH,   # inputs
                              L.TIER_HIGH, L.TIER_HIGH,               # clean images
                              L.TIER_MEDIUM, L.TIER_HIGH]             # partly restored


def test_density_recall_makes_missed_rain_cost_more_than_false_alarms():
    """Half the pixels are rain (label 1). A map that misses them (logit -2 there, right elsewhere) and one
    that lights the dry half (logit +2 there) cost the same plain BCE; with recall 3 the miss costs more,
    and recall 0 is the plain loss."""
    label = torch.zeros(1, 1, 4, 8)
    label[..., :4] = 1.0
    right = torch.where(label > 0, torch.tensor(6.0), torch.tensor(-6.0))
    miss = torch.where(label > 0, torch.tensor(-2.0), right)
    alarm = torch.where(label > 0, right, torch.tensor(2.0))
    assert torch.isclose(L.density_loss(miss, label), L.density_loss(alarm, label))
    assert torch.equal(L.density_loss(miss, label, 0.0), L.density_loss(miss, label))
    m, a = L.density_loss(miss, label, 3.0), L.density_loss(alarm, label, 3.0)
    assert m > 1.5 * a, (m, a)
    # normalised to mean weight 1: a uniform label keeps the plain value
    flat = torch.full((1, 1, 4, 8), 0.5)
    assert torch.isclose(L.density_loss(miss, flat, 3.0), L.density_loss(miss, flat))


def test_a_negative_density_recall_is_refused():
    from weather_restore.training.train_config import TrainConfig
    with pytest.raises(ValueError, match="density_recall must be >= 0"):
        TrainConfig(name="t", loss={"density_recall": -1.0})
    assert TrainConfig(name="t", loss={"density_recall": 3.0}).loss["density_recall"] == 3.0
