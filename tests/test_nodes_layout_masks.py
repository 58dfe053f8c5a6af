"""pipeline.layout and pipeline.masks: what the nodes do to IMAGE and MASK inputs (no ComfyUI needed)."""
import pytest
import torch

from weather_restore.pipeline.layout import InputError, as_image_batch, to_comfy, to_network
from weather_restore.pipeline.masks import bounding_box, feather_mask, fit_mask, gaussian_kernel, same_aspect


# -- layout ------------------------------------------------------------------------------------
def test_rgb_round_trip_and_layout():
    img = torch.rand(2, 5, 7, 3)                                # (B, H, W, C)
    x, alpha = to_network(img)
    assert x.shape == (2, 3, 5, 7) and alpha is None and x.dtype == torch.float32
    assert torch.equal(x[1, 2, 4, 6], img[1, 4, 6, 2])          # channel moved, pixels kept
    assert torch.equal(to_comfy(x), img)


def test_grey_becomes_rgb():
    img = torch.rand(1, 4, 4, 1)
    x, alpha = to_network(img)
    assert x.shape == (1, 3, 4, 4) and alpha is None
    assert torch.equal(x[:, 0], x[:, 2]) and torch.equal(x[0, 1], img[0, ..., 0])


def test_rgba_alpha_passes_through():
    img = torch.rand(2, 4, 6, 4)
    x, alpha = to_network(img)
    assert x.shape == (2, 3, 4, 6) and alpha.shape == (2, 4, 6, 1)
    out = to_comfy(x * 0.5, alpha)
    assert out.shape == (2, 4, 6, 4)
    assert torch.equal(out[..., 3], img[..., 3])
    assert torch.allclose(out[..., :3], img[..., :3] * 0.5)


def test_out_of_range_values_are_clamped():
    x, _ = to_network(torch.tensor([[[[-0.5, 0.5, 1.5]]]]))
    assert x.flatten().tolist() == [0.0, 0.5, 1.0]


@pytest.mark.parametrize("channels", [2, 5])
def test_bad_channel_count_names_input_and_fix(channels):
    with pytest.raises(InputError, match=rf"image has {channels} channels.*convert it first"):
        to_network(torch.rand(1, 4, 4, channels))


def test_wrong_rank_and_integer_images_are_refused():
    with pytest.raises(InputError, match=r"\(B, H, W, C\)"):
        to_network(torch.rand(4, 4))
    with pytest.raises(InputError, match="float"):
        to_network(torch.zeros(1, 4, 4, 3, dtype=torch.uint8))


def test_image_list_of_one_size_is_stacked_mixed_sizes_refused():
    assert as_image_batch([torch.rand(4, 5, 3), torch.rand(1, 4, 5, 3)]).shape == (2, 4, 5, 3)
    with pytest.raises(InputError, match=r"mixed sizes 4x5, 6x5.*resize them to one size"):
        as_image_batch([torch.rand(1, 4, 5, 3), torch.rand(1, 6, 5, 3)])


# -- masks -------------------------------------------------------------------------------------
@pytest.mark.parametrize("shape", [(6, 8), (1, 6, 8), (1, 1, 6, 8)])
def test_mask_layouts_accepted(shape):
    m = torch.rand(shape)
    out = fit_mask(m, batch=3, size=(6, 8), name="density")
    assert out.shape == (3, 1, 6, 8)
    assert torch.equal(out[2, 0], m.reshape(6, 8))              # one mask broadcast to every image


def test_mask_per_image_kept_in_order():
    m = torch.stack([torch.full((4, 4), 0.1 * i) for i in range(3)])
    out = fit_mask(m, 3, (4, 4), "region")
    assert [round(v, 3) for v in out[:, 0, 0, 0].tolist()] == [0.0, 0.1, 0.2]


def test_mask_batch_mismatch_is_an_error():
    with pytest.raises(InputError, match=r"density has a batch of 2 masks but the image batch has 3"):
        fit_mask(torch.rand(2, 4, 4), 3, (4, 4), "density")


def test_constant_mask_fits_any_size():
    out = fit_mask(torch.zeros(1, 64, 64), 2, (30, 50), "region")   # LoadImage's mask without alpha
    assert out.shape == (2, 1, 30, 50) and out.abs().sum() == 0
    out = fit_mask(torch.full((1, 64, 64), 0.7), 1, (30, 50), "region")
    assert torch.allclose(out, torch.full((1, 1, 30, 50), 0.7))


def test_same_aspect_mask_is_resized():
    m = torch.zeros(1, 4, 6)
    m[:, :, 3:] = 1.0                                           # right half
    out = fit_mask(m, 1, (8, 12), "density")
    assert out.shape == (1, 1, 8, 12)
    assert out[0, 0, :, :5].max() == 0 and out[0, 0, :, 7:].min() == 1   # still the right half
    assert same_aspect(192, 256, 384, 512) and same_aspect(37, 50, 75, 100) and not same_aspect(64, 64, 30, 50)


def test_other_aspect_mask_is_an_error_naming_input_and_fix():
    m = torch.rand(1, 10, 10)
    with pytest.raises(InputError, match=r"region is 10x10 \(H x W\) but the image is 20x40.*resize or crop"):
        fit_mask(m, 1, (20, 40), "region")


def test_mask_values_clamped():
    out = fit_mask(torch.tensor([[[2.0, -1.0]]]), 1, (1, 2), "density")
    assert out.flatten().tolist() == [1.0, 0.0]


def test_gaussian_kernel_sums_to_one_and_is_symmetric():
    k = gaussian_kernel(4)
    assert k.shape == (9,) and abs(k.sum().item() - 1) < 1e-6
    assert torch.allclose(k, k.flip(0)) and k.argmax().item() == 4


def test_feather_softens_only_near_the_edge():
    m = torch.zeros(1, 1, 40, 40)
    m[..., 10:30, 10:30] = 1
    f = feather_mask(m, 4)
    assert torch.equal(feather_mask(m, 0), m)
    assert f[0, 0, 20, 20] == pytest.approx(1.0, abs=1e-6)      # deep inside
    assert f[0, 0, 2, 2] == 0 and f[0, 0, 20, 3] == 0           # far outside (beyond the radius)
    row = f[0, 0, 20, 4:16]
    assert torch.all(row[1:] >= row[:-1])                        # a monotone ramp across the edge
    assert 0.4 < f[0, 0, 20, 10].item() < 0.8 and 0.2 < f[0, 0, 20, 9].item() < 0.6


def test_feather_keeps_mask_at_image_border():
    m = torch.ones(1, 1, 12, 12)
    assert torch.allclose(feather_mask(m, 5), m)               # replicated edges: no dark frame


def test_bounding_box_margin_alignment_and_clipping():
    m = torch.zeros(64, 80)
    assert bounding_box(m, margin=4) is None
    m[20:25, 30:33] = 1
    assert bounding_box(m, margin=0) == (20, 25, 30, 33)
    assert bounding_box(m, margin=4) == (16, 29, 26, 37)
    assert bounding_box(m, margin=4, align=8) == (16, 32, 24, 40)
    assert bounding_box(m, margin=100, align=8) == (0, 64, 0, 80)
    m2 = torch.zeros(64, 80)
    m2[63, 79] = 1                                               # a corner pixel still gets min_size
    assert bounding_box(m2, margin=0, align=8, min_size=16) == (48, 64, 64, 80)
