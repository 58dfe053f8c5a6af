"""pipeline.signals and pipeline.precision: sources, overrides, summaries, quality tiers, heat map,
and the CLIP provider path with a tiny random open_clip model."""
import pytest
import torch

from weather_restore.pipeline.layout import InputError
from weather_restore.pipeline.precision import choose_dtype
from weather_restore.pipeline.signals import (HEATMAP_SCALES, apply_overrides, clip_signal, combine_sources, heatmap,
                                              learned_prior_density, learned_quality, parse_weather, quality_report,
                                              resolve_source, summarize_prior)


def test_resolve_source():
    assert resolve_source("auto", has_clip=True) == "clip"
    assert resolve_source("auto", has_clip=False) == "learned"
    assert resolve_source("learned", has_clip=True) == "learned"
    with pytest.raises(InputError, match=r"without CLIP.*ComfyUI/models/clip"):
        resolve_source("clip", has_clip=False)
    with pytest.raises(InputError, match="source must be one of"):
        resolve_source("magic", has_clip=True)


def test_overrides_replace_columns_and_minus_one_keeps():
    p = torch.tensor([[0.1, 0.2, 0.3, 0.4], [0.5, 0.6, 0.7, 0.8]])
    q, changed = apply_overrides(p, {"rain_streaks": -1.0, "raindrops": None, "snow": 0.0, "haze": 1.0})
    assert changed == ["snow", "haze"]
    assert torch.allclose(q, torch.tensor([[0.1, 0.2, 0.0, 1.0], [0.5, 0.6, 0.0, 1.0]]))
    assert p[0, 3].item() == pytest.approx(0.4)                  # the input is not changed in place
    with pytest.raises(InputError, match="manual haze must be in"):
        apply_overrides(p, {"haze": 1.5})
    with pytest.raises(InputError, match="unknown weather type 'fog'"):
        apply_overrides(p, {"fog": 0.5})
    for bad in (float("nan"), float("inf"), float("-inf")):                 # NaN passes both < 0 and > 1
        with pytest.raises(InputError, match="manual snow must be in"):
            apply_overrides(p, {"snow": bad})


def test_weather_text_parses_full_and_short_names():
    assert parse_weather("haze=0") == {"haze": 0.0}
    assert parse_weather(" rain=0.8, snow = 1 ,raindrops=0.25,") == {"rain_streaks": 0.8, "snow": 1.0, "raindrops": 0.25}
    assert parse_weather("rain_streaks=0.5,rain=0.7") == {"rain_streaks": 0.7}           # the last one wins
    for bad, msg in (("fog=0", "'fog=0': write TYPE=VALUE"), ("haze", "'haze': write TYPE=VALUE"),
                     ("haze=lots", "must be a number"), ("haze=1.5", "must be in \\[0, 1\\]"),
                     ("haze=nan", "must be in"), ("haze=-1", "must be in"), (" , ", "at least one")):
        with pytest.raises(InputError, match=msg):
            parse_weather(bad)


def test_summary_reads_like_the_design():
    p = torch.tensor([[0.82, 0.05, 0.0, 0.31]])
    assert summarize_prior(p, "clip") == "rain 0.82, haze 0.31 (clip)"
    two = summarize_prior(torch.tensor([[0.0, 0.0, 0.0, 0.0], [0.0, 0.4, 0.9, 0.0]]), "learned+manual")
    assert two.splitlines() == ["#1: clear (all below 0.10) (learned+manual)", "#2: snow 0.90, raindrops 0.40 (learned+manual)"]
    assert combine_sources(["learned", "manual", "learned"]) == "learned+manual"


def test_quality_report_scores_and_tiers():
    probs = torch.tensor([[0.8, 0.2, 0.0], [0.1, 0.3, 0.6]])
    scores, tiers, texts = quality_report(probs)
    assert scores == pytest.approx([0.1, 0.75])
    assert tiers == ["low", "high"]
    assert texts[1] == "low 0.10, medium 0.30, high 0.60"


def test_heatmap_colours_and_layout():
    d = torch.tensor([0.0, 0.5, 1.0]).view(1, 1, 1, 3)
    h = heatmap(d)
    assert h.shape == (1, 3, 1, 3)
    assert h[0, :, 0, 0].tolist() == pytest.approx([0, 0, 4 / 255])            # dark for clear
    assert h[0, :, 0, 2].tolist() == pytest.approx([252 / 255, 1.0, 164 / 255])  # pale yellow for dense
    assert h[0, :, 0, 1].tolist() == pytest.approx([188 / 255, 55 / 255, 84 / 255])
    lum = (h[0] * torch.tensor([0.3, 0.6, 0.1]).view(3, 1, 1)).sum(0).flatten()
    assert lum[0] < lum[1] < lum[2]


@pytest.mark.parametrize("scale", HEATMAP_SCALES)
def test_heatmap_of_a_nan_density_is_dark_not_a_crash(scale):
    d = torch.tensor([float("nan"), 0.0, float("inf"), 1.0]).view(1, 1, 2, 2)
    h = heatmap(d, scale)
    assert torch.isfinite(h).all() and h.shape == (1, 3, 2, 2)
    assert torch.equal(h[0, :, 0, 0], h[0, :, 0, 1])                       # NaN reads as clear
    assert torch.equal(h[0, :, 1, 0], h[0, :, 1, 1])                       # +inf reads as dense


def test_learned_signals_of_the_tiny_model(tiny_model):
    torch.manual_seed(0)
    x = torch.rand(2, 3, 40, 56)
    p, d = learned_prior_density(tiny_model, x, size=32)       # analysed on a copy of at most 32 px
    assert p.shape == (2, 4) and d.shape == (2, 1, 40, 56)
    assert 0 <= p.min() and p.max() <= 1 and 0 <= d.min() and d.max() <= 1
    q = learned_quality(tiny_model, x, size=32)
    assert q.shape == (2, 3) and torch.allclose(q.sum(-1), torch.ones(2), atol=1e-5)
    assert torch.allclose(learned_quality(tiny_model, x[1:], size=32), q[1:], atol=1e-6)   # per item
    assert not torch.allclose(q[0], q[1])                        # different images, different scores


def test_clip_provider_with_tiny_clip():
    pytest.importorskip("open_clip")
    from weather_restore.models.clip import ClipSignals
    from weather_restore.models.clip.tiny import TINY_MEAN, TINY_STD, build_tiny_clip
    model, tok = build_tiny_clip()
    clip = ClipSignals(model, tok, TINY_MEAN, TINY_STD)
    x = torch.rand(2, 3, 40, 50)
    p = clip_signal(clip, "prior", x, model)
    d = clip_signal(clip, "density", x, model)
    q = clip_signal(clip, "quality", x, model)
    assert p.shape == (2, 4) and 0 <= p.min() and p.max() <= 1
    assert d.shape == (2, 1, 40, 50) and 0 <= d.min() and d.max() <= 1
    assert q.shape == (2, 3) and torch.allclose(q.sum(-1), torch.ones(2), atol=1e-4)


@pytest.mark.parametrize("precision, device, fp16_ok, bf16_ok, expected", [
    ("auto", "cpu", True, True, torch.float32),
    ("auto", "mps", True, True, torch.float32),
    ("auto", "cuda", True, True, torch.float16),
    ("auto", "cuda", False, True, torch.float32),
    ("fp32", "cuda", True, True, torch.float32),
    ("bf16", "cuda", True, True, torch.bfloat16),
    ("fp16", "cpu", False, False, torch.float16),
])
def test_choose_dtype(precision, device, fp16_ok, bf16_ok, expected):
    assert choose_dtype(precision, device, fp16_ok, bf16_ok) == expected


def test_choose_dtype_refuses_unsupported_bf16_and_unknown_names():
    with pytest.raises(InputError, match="bf16 is not supported on this cuda device"):
        choose_dtype("bf16", "cuda", True, False)
    with pytest.raises(InputError, match="precision must be one of auto, fp32, fp16, bf16"):
        choose_dtype("int8", "cuda", True, True)


def test_command_line_precision_is_the_nodes_choice():
    from weather_restore.cli.model_loading import pick_dtype as cli_pick
    from weather_restore.pipeline.precision import device_support, pick_dtype
    cpu = torch.device("cpu")
    assert cli_pick is pick_dtype                                # one function, not a copy
    assert device_support(cpu) == (False, precision_module().cpu_has_native_bf16())
    assert pick_dtype("auto", cpu) == torch.float32 == choose_dtype("auto", "cpu", True, True)
    assert pick_dtype("bf16", cpu) == torch.bfloat16
    with pytest.raises(InputError, match="precision must be one of"):
        pick_dtype("half", cpu)


def precision_module():
    from weather_restore.pipeline import precision
    return precision


def test_native_bf16_is_read_from_the_cpu_flags(tmp_path):
    read = precision_module().native_bf16_in
    zen4 = tmp_path / "zen4"
    zen4.write_text("processor\t: 0\nflags\t\t: fpu avx2 avx512f avx512_bf16 avx512_vnni\n\nflags\t: fpu\n")
    spr = tmp_path / "spr"
    spr.write_text("flags\t\t: fpu avx2 avx512f amx_bf16 amx_tile\n")
    old = tmp_path / "old"
    old.write_text("flags\t\t: fpu avx2 avx512f avx512bw\n")          # AVX-512 without bf16: emulated, slow
    assert read(str(zen4)) and read(str(spr))
    assert not read(str(old)) and not read(str(tmp_path / "absent"))


@pytest.mark.parametrize("native", [True, False])
def test_auto_computes_in_bf16_under_autocast_only_on_a_native_bf16_cpu(monkeypatch, native):
    """fp32 weights always; bf16 autocast for auto on a CPU with native bf16, never on other devices or
    for an explicit precision (the command line and the node ask the same function)."""
    p = precision_module()
    monkeypatch.setattr(p, "cpu_has_native_bf16", lambda: native)
    assert p.choose_dtype("auto", "cpu", False, native) == torch.float32
    assert p.choose_autocast("auto", "cpu") == (torch.bfloat16 if native else None)
    assert all(p.choose_autocast(q, "cpu") is None for q in ("fp32", "fp16", "bf16"))
    assert all(p.choose_autocast("auto", d) is None for d in ("cuda", "mps", "xpu"))


def test_normalised_heatmap_spans_the_colours_of_a_faint_map():
    d = torch.zeros(2, 1, 100, 100)
    d[0, 0] = torch.linspace(0, 0.27, 10000).view(100, 100)    # 0.27: the peak of a real map on the sample
    d[1, 0, 0, 0] = 0.01                                       # a clear image: below the floor
    absolute, normalised = heatmap(d, "absolute"), heatmap(d, "normalised")
    q99 = torch.quantile(d[0].flatten(), 0.99).item()
    colour = lambda v: heatmap(torch.full((1, 1, 1, 1), v))[0, :, 0, 0]
    assert torch.allclose(normalised[0, :, 99, 99], colour(1.0), atol=1e-6)   # the densest 1 % is yellow
    row, col = divmod(int(q99 / 2 / 0.27 * 9999), 100)
    assert torch.allclose(normalised[0, :, row, col], colour(0.5), atol=0.02)  # half the 99th percentile: mid-colour
    assert absolute[0, :, 99, 99].sum() < 1.5                  # absolute: 0.27 stays dark purple
    assert torch.allclose(normalised[1, :, 0, 0], colour(0.2), atol=1e-6)     # 0.01 / floor 0.05
    with pytest.raises(InputError, match="heatmap_scale must be one of"):
        heatmap(d, "log")


def test_quality_text_is_what_the_node_shows():
    from weather_restore.pipeline.signals import quality_text
    scores, tiers, texts = quality_report(torch.tensor([[0.1, 0.3, 0.6]]))
    assert quality_text(scores, tiers, texts, "learned") == "score 0.750 (high) - low 0.10, medium 0.30, high 0.60 (learned)"
    two = quality_text(*quality_report(torch.tensor([[0.8, 0.2, 0.0], [0.0, 0.0, 1.0]])), "clip").splitlines()
    assert two == ["#1: score 0.100 (low) - low 0.80, medium 0.20, high 0.00 (clip)",
                   "#2: score 1.000 (high) - low 0.00, medium 0.00, high 1.00 (clip)"]
