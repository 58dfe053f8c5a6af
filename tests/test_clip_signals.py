"""CLIP provider of the three signals, on a tiny random open_clip model (no download)."""
import pytest
import torch
import torch.nn.functional as F

from weather_restore.models.clip import ClipSignals, PromptContext
from weather_restore.models.clip import dense as D
from weather_restore.models.clip import text as T
from weather_restore.models.clip.tiny import TINY_MEAN, TINY_STD, build_tiny_clip
from weather_restore.models.signals import QUALITY_TIERS, WEATHER_TYPES



@pytest.fixture(scope="module")
def clip():
    return build_tiny_clip(seed=0)


@pytest.fixture
def signals(clip):
    model, tok = clip
    return ClipSignals(model, tok, TINY_MEAN, TINY_STD)


def _images(b, h, w, seed=0):
    return torch.rand(b, 3, h, w, generator=torch.Generator().manual_seed(seed))


@pytest.mark.parametrize("b,h,w", [(1, 17, 45), (3, 61, 29), (2, 32, 32), (1, 200, 7)])
def test_signal_shapes_and_ranges_at_odd_sizes(signals, b, h, w):
    x = _images(b, h, w)
    p, d, q = signals.prior(x), signals.density(x), signals.quality(x)
    assert p.shape == (b, len(WEATHER_TYPES)) and d.shape == (b, 1, h, w) and q.shape == (b, len(QUALITY_TIERS))
    for t in (p, d, q):
        assert torch.isfinite(t).all() and t.min() >= 0 and t.max() <= 1 and t.dtype == torch.float32
    torch.testing.assert_close(q.sum(1), torch.ones(b))
    score = signals.quality_score(x)
    assert score.shape == (b,) and (score >= 0).all() and (score <= 1).all()


def test_batch_items_are_independent_and_deterministic(signals):
    x = _images(3, 40, 56, seed=1)
    one = signals.density(x[1:2])
    torch.testing.assert_close(signals.density(x)[1:2], one, atol=1e-5, rtol=0)
    torch.testing.assert_close(signals.prior(x)[2:], signals.prior(x[2:]), atol=1e-5, rtol=0)
    torch.testing.assert_close(signals.quality(x), signals.quality(x), atol=0, rtol=0)
    # different images give different maps (the map is not a constant)
    assert (signals.density(x)[0] - signals.density(x)[2]).abs().max() > 1e-4


def test_outputs_follow_input_dtype(signals):
    x = _images(2, 33, 47).double()
    assert signals.prior(x).dtype == torch.float64 and signals.density(x).dtype == torch.float64


def test_density_grid_keeps_aspect_and_resolution(clip):
    model, _ = clip                                            # input 32, patch 8 -> 4x4 tokens per window
    g = D.encode_dense(model, _images(2, 30, 90), TINY_MEAN, TINY_STD, scale=2.0)
    assert g.shape[0] == 2 and g.shape[2] == 8 and g.shape[3] == 24    # short side 2 x 4 tokens, aspect 1:3
    torch.testing.assert_close(g.norm(dim=1), torch.ones(2, 8, 24))
    (Hs, Ws), ys, xs = D.window_layout(30, 90, (32, 32), (8, 8), 2.0)
    assert (Hs, Ws) == (64, 192) and ys == [0, 16, 32] and xs[0] == 0 and xs[-1] == 160
    assert all(b - a == 16 for a, b in zip(xs, xs[1:]))


def test_value_path_is_self_attention_only(clip):
    """MaskCLIP's value path equals the block's own attention when every token may attend only to itself."""
    model, _ = clip
    block = model.visual.transformer.resblocks[-1]
    x = torch.randn(2, 5, block.ln_1.normalized_shape[0])
    mask = torch.full((5, 5), float("-inf")).fill_diagonal_(0)
    y = block.ln_1(x)
    expected = block.ls_1(block.attn(y, y, y, need_weights=False, attn_mask=mask)[0])
    torch.testing.assert_close(D._value_path(block, x), expected, atol=1e-5, rtol=1e-5)


def test_value_path_of_open_clip_custom_blocks():
    """Same check for open_clip's custom attention block (head scales, inner and outer norms)."""
    from weather_restore.models.clip.tiny import TINY_CLIP_CONFIG
    vision = dict(TINY_CLIP_CONFIG["vision_cfg"], block_type="custom", scale_heads=True, scale_attn_inner=True,
                  scale_attn=True)
    model, tok = build_tiny_clip(seed=0, config=dict(TINY_CLIP_CONFIG, vision_cfg=vision))
    block = model.visual.transformer.resblocks[-1]
    with torch.no_grad():
        block.attn.head_scale.uniform_(0.5, 2.0)
    x = torch.randn(2, 5, 32)
    mask = torch.full((5, 5), float("-inf")).fill_diagonal_(0)
    expected = block.ls_1(block.ln_attn(block.attn(block.ln_1(x), attn_mask=mask)))
    torch.testing.assert_close(D._value_path(block, x), expected, atol=1e-5, rtol=1e-5)
    d = ClipSignals(model, tok, TINY_MEAN, TINY_STD).density(_images(1, 30, 50))
    assert d.shape == (1, 1, 30, 50) and torch.isfinite(d).all()


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
def test_half_precision_models_agree_with_float32(clip, signals, dtype):
    model, tok = build_tiny_clip(seed=0)
    half = ClipSignals(model.to(dtype), tok, TINY_MEAN, TINY_STD)
    x = _images(2, 45, 31)
    for name in ("prior", "density", "quality"):
        out, ref = getattr(half, name)(x), getattr(signals, name)(x)
        assert out.dtype == torch.float32 and torch.isfinite(out).all()
        assert (out - ref).abs().max() < 0.05, name


def test_hooked_tokens_match_open_clip_intermediates(clip):
    """The pre-hook reads the same tokens that open_clip's forward_intermediates gives for the second-to-last block."""
    model, _ = clip
    x = torch.randn(2, 3, 32, 32)
    pooled, patches = D.encode_windows(model, x)
    inter = model.visual.forward_intermediates(x, indices=[len(model.visual.transformer.resblocks) - 2],
                                               output_fmt="NLC")
    torch.testing.assert_close(pooled, inter["image_features"])
    block = model.visual.transformer.resblocks[-1]
    manual = model.visual.ln_post(D._value_path(block, inter["image_intermediates"][0])) @ model.visual.proj
    torch.testing.assert_close(patches.flatten(1, 2), manual, atol=1e-5, rtol=1e-5)


def test_text_embeddings_are_computed_once_per_model(clip, signals):
    model, tok = clip
    calls = []
    handle = model.token_embedding.register_forward_hook(lambda *a: calls.append(1))
    try:
        T._cache.pop(model, None)
        x = _images(1, 32, 32)
        signals.prior(x), signals.density(x), signals.quality(x)
        n = len(calls)
        assert n == 3                                          # weather, density, quality ensembles
        ClipSignals(model, tok, TINY_MEAN, TINY_STD).prior(x)  # a new provider on the same model
        signals.density(x), signals.quality(x)
        assert len(calls) == n
    finally:
        handle.remove()


def test_learned_prompts_replace_ensembles(clip, signals):
    model, tok = clip
    width = model.token_embedding.weight.shape[1]
    g = torch.Generator().manual_seed(3)
    learned = {"density": PromptContext(torch.randn(4, width, generator=g), ("hazy", "clear")),
               "quality": PromptContext(torch.randn(4, width, generator=g),
                                        ("low quality", "medium quality", "high quality"))}
    s2 = ClipSignals(model, tok, TINY_MEAN, TINY_STD, learned_prompts=learned)
    x = _images(2, 41, 23)
    assert (s2.density(x) - signals.density(x)).abs().max() > 1e-3
    assert (s2.quality(x) - signals.quality(x)).abs().max() > 1e-4
    torch.testing.assert_close(s2.prior(x), signals.prior(x))  # the prior has no learned prompts
    expected = T.encode_with_context(model, T.context_tokens(tok, 4, ("hazy", "clear")), learned["density"].ctx)
    torch.testing.assert_close(s2.density_text(), expected)


def test_learned_prompts_of_another_clip_are_refused(clip):
    model, tok = clip
    wrong = {"density": PromptContext(torch.zeros(4, 7), ("hazy", "clear"))}
    with pytest.raises(ValueError, match="width 7"):
        ClipSignals(model, tok, TINY_MEAN, TINY_STD, learned_prompts=wrong)


def test_bad_input_is_named(signals):
    with pytest.raises(ValueError, match=r"\(B, 3, H, W\).*\(3, 32, 32\)"):
        signals.density(torch.rand(3, 32, 32))


def test_gaussian_blur_keeps_constants_and_mass():
    m = torch.full((1, 1, 5, 9), 0.25)
    torch.testing.assert_close(D.gaussian_blur(m, 1.0), m)
    spike = torch.zeros(1, 1, 9, 9)
    spike[..., 4, 4] = 1
    out = D.gaussian_blur(spike, 1.0)
    assert abs(float(out.sum()) - 1) < 1e-5 and out[..., 4, 4] < 0.2 and F.relu(-out).sum() == 0
