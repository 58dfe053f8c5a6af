"""The CLIP teacher of soft residual distillation, on a tiny random open_clip model."""
import pytest
import torch
import torch.nn.functional as F

from weather_restore.models.clip import ClipSRDTeacher
from weather_restore.models.clip.tiny import TINY_MEAN, TINY_STD, build_tiny_clip



@pytest.fixture(scope="module")
def teacher():
    model, _ = build_tiny_clip(seed=0)
    return ClipSRDTeacher(model, TINY_MEAN, TINY_STD)


def _pair(b, h, w, seed=0):
    g = torch.Generator().manual_seed(seed)
    clean = torch.rand(b, 3, h, w, generator=g)
    weathered = clean.clone()
    weathered[..., : h // 2, :] = 0.6 * weathered[..., : h // 2, :] + 0.4 * 0.9      # haze on the top half
    return clean, weathered


@pytest.mark.parametrize("b,h,w,grid", [(2, 45, 29, (6, 4)), (1, 32, 96, (4, 12))])
def test_targets_are_finite_maps_in_unit_range(teacher, b, h, w, grid):
    clean, weathered = _pair(b, h, w)
    t = teacher.targets(clean, weathered)
    assert t.shape == (b, 1) + grid and torch.isfinite(t).all()
    assert t.min() >= 0 and t.max() <= 1
    flat = t.flatten(1)
    torch.testing.assert_close(flat.amin(1), torch.zeros(b))                # normalised per image
    torch.testing.assert_close(flat.amax(1), torch.ones(b))


def test_identical_images_give_zero_targets(teacher):
    clean, _ = _pair(2, 40, 40)
    t = teacher.targets(clean, clean)
    assert torch.isfinite(t).all() and t.abs().max() == 0


def test_each_image_is_its_own(teacher):
    clean, weathered = _pair(3, 32, 48, seed=4)
    torch.testing.assert_close(teacher.targets(clean, weathered)[1:2],
                               teacher.targets(clean[1:2], weathered[1:2]), atol=1e-5, rtol=0)


def test_shape_mismatch_is_named(teacher):
    with pytest.raises(ValueError, match=r"\(1, 3, 32, 32\).*\(1, 3, 32, 40\)"):
        teacher.targets(torch.rand(1, 3, 32, 32), torch.rand(1, 3, 32, 40))


def test_accepts_a_clip_bundle():
    from weather_restore.hub.clip_loader import ClipBundle
    model, tok = build_tiny_clip(seed=0)
    t = ClipSRDTeacher(ClipBundle(model, tok, TINY_MEAN, TINY_STD, "tiny", None))
    assert t.mean == TINY_MEAN and t.model is model
    with pytest.raises(ValueError, match="mean and std"):
        ClipSRDTeacher(model)


def test_student_sar_attention_learns_the_targets(teacher, tiny_model):
    """The restorer's SAR attention trained on the teacher's targets: the SRD loss falls."""
    from weather_restore.training.losses import srd_loss
    torch.manual_seed(0)
    clean, weathered = _pair(2, 32, 32, seed=2)
    target = teacher.targets(clean, weathered)
    model = tiny_model.train()
    params = [p for n, p in model.named_parameters() if n.startswith(("shallow", "sar", "enc_down"))]
    opt = torch.optim.Adam(params, lr=1e-2)

    def gap(attns):                    # mean |A - target| at each level's resolution
        return sum(float((a.detach() - F.interpolate(target, size=a.shape[-2:], mode="area")).abs().mean())
                   for a in attns) / len(attns)

    losses, gaps = [], []
    for _ in range(30):
        feats, attns = model.encode(weathered)
        loss = srd_loss(attns, target)
        gaps.append(gap(attns))
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(float(loss.detach()))
    assert all(torch.isfinite(torch.tensor(losses)))
    assert losses[-1] < losses[0] - 0.05, losses               # BCE with soft targets: its floor is > 0
    assert gaps[-1] < 0.75 * gaps[0], gaps
