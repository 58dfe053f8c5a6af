"""The node adapters (nodes/) on CPU with the bundled default weights, through a stand-in for
ComfyUI's modules (tests/fake_comfy.py): which weights 'default (bundled)' loads, progress from
the first moment, Cancel, the map Density Map shows, the text Quality Perceiver shows."""
import pytest
import torch

from fake_comfy import Interrupted, fake_comfy
from weather_restore.pipeline.signals import learned_prior_density
from weather_restore.pipeline.weights import DEFAULT_CHOICE, default_restorer


@pytest.fixture(scope="module")
def comfy(tmp_path_factory):
    with fake_comfy(tmp_path_factory.mktemp("comfy")) as fake:
        fake.model = fake.nodes.LoadWeatherModel.execute(DEFAULT_CHOICE, "none", "auto").values[0]
        yield fake


def image(B=1, H=40, W=56, C=3, seed=0):
    return torch.rand(B, H, W, C, generator=torch.Generator().manual_seed(seed))


def test_default_bundled_is_the_manifest_default(comfy):
    assert comfy.model.weights == default_restorer()["id"]
    assert next(comfy.model.restorer.parameters()).dtype == torch.float32       # auto on CPU
    assert comfy.nodes.LoadWeatherModel.define_schema().inputs[0].default == DEFAULT_CHOICE


def test_restore_node_and_every_command_share_one_tiling_default(comfy):
    from weather_restore.cli.main import build_parser
    from weather_restore.pipeline.restore import DEFAULT_OVERLAP, DEFAULT_TILE
    inputs = {i.name: i.default for i in comfy.nodes.Restore.define_schema().inputs if hasattr(i, "default")}
    assert (inputs["tile_size"], inputs["tile_overlap"]) == (DEFAULT_TILE, DEFAULT_OVERLAP)
    parser = build_parser()
    for argv in (["restore", "x.png"], ["evaluate", "--weights", "w", "--data", "d"], ["bench"], ["export", "--checkpoint", "c", "--out", "o", "--id", "i"]):
        args = parser.parse_args(argv)
        assert args.tile == DEFAULT_TILE and getattr(args, "overlap", DEFAULT_OVERLAP) == DEFAULT_OVERLAP, argv


def test_restore_shows_progress_from_the_first_moment_and_keeps_alpha(comfy):
    comfy.progress.clear()
    rgba = image(2, C=4)
    out = comfy.nodes.Restore.execute(comfy.model, rgba, 1.0, 16, 512, 64).values[0]
    assert out.shape == (2, 40, 56, 4) and torch.equal(out[..., 3], rgba[..., 3])
    assert 0 <= out.min() and out.max() <= 1 and not torch.allclose(out[..., :3], rgba[..., :3])
    assert comfy.progress[0][0] == 0 and comfy.progress[-1][0] == comfy.progress[-1][1] > 0
    assert [v for v, _ in comfy.progress] == sorted(v for v, _ in comfy.progress)


def test_restore_node_mirror_ensemble_is_the_pipelines(comfy):
    """Off by default (old workflows restore as before); on, the node returns restore_batch's ensemble."""
    from weather_restore.pipeline.restore import restore_batch
    schema = {i.name: i for i in comfy.nodes.Restore.define_schema().inputs}
    assert schema["mirror_ensemble"].default is False and schema["mirror_ensemble"].optional
    rgb = image(H=36, W=52, seed=4)
    on = comfy.nodes.Restore.execute(comfy.model, rgb, 1.0, 16, 512, 64, mirror_ensemble=True).values[0]
    off = comfy.nodes.Restore.execute(comfy.model, rgb, 1.0, 16, 512, 64).values[0]
    with torch.no_grad():
        want = restore_batch(comfy.model.restorer, rgb.permute(0, 3, 1, 2), mirror_ensemble=True)
    torch.testing.assert_close(on, want.permute(0, 2, 3, 1), atol=1e-6, rtol=0)
    assert (on - off).abs().max() > 1e-4


def test_cancel_raises_comfyuis_interrupt(comfy):
    comfy.interrupt = True
    try:
        with pytest.raises(Interrupted):
            comfy.nodes.Restore.execute(comfy.model, image(H=700, W=600), 1.0, 16, 512, 64)
        with pytest.raises(Interrupted):
            comfy.nodes.DensityMap.execute(comfy.model, image(), "learned")
    finally:
        comfy.interrupt = False


def test_density_map_shows_what_restore_uses_and_a_readable_heatmap(comfy):
    x = image(seed=3)
    mask, heat = comfy.nodes.DensityMap.execute(comfy.model, x, "learned", "normalised").values
    _, d = learned_prior_density(comfy.model.restorer, x.permute(0, 3, 1, 2))
    assert mask.shape == (1, 40, 56) and torch.allclose(mask, d[:, 0], atol=1e-6)
    assert heat.shape == (1, 40, 56, 3)
    peak = mask[0].flatten().argmax()
    if mask.max() >= 0.05:                                          # normalised: the peak is drawn yellow
        assert heat[0].reshape(-1, 3)[peak].tolist() == pytest.approx([252 / 255, 1.0, 164 / 255], abs=1e-5)
    absolute = comfy.nodes.DensityMap.execute(comfy.model, x, "learned", "absolute").values[1]
    assert heat.mean() > absolute.mean()                            # the faint map is drawn brighter


def test_quality_perceiver_puts_score_and_tier_on_the_node(comfy):
    out = comfy.nodes.QualityPerceiver.execute(comfy.model, image(2), "learned")
    scores, tiers, texts = out.values
    lines = out.ui["text"][0].splitlines()
    assert len(scores) == len(lines) == 2
    assert lines[0].startswith(f"#1: score {scores[0]:.3f} ({tiers[0]}) - ") and lines[0].endswith("(learned)")


def test_clip_prior_learned_with_a_manual_override(comfy):
    prior, summary = comfy.nodes.ClipWeatherPrior.execute(comfy.model, image(), "auto", haze=1.0,
                                                           rain_streaks=-1.0, raindrops=-1.0, snow=-1.0).values
    assert prior.values.shape == (1, 4) and prior.values[0, 3] == 1.0
    assert prior.source == "learned+manual" and "haze 1.00" in summary


def test_a_manifest_clip_is_never_downloaded_unasked(comfy, monkeypatch):
    import sys
    import types
    from weather_restore.hub import clip_loader
    calls = []
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.setenv("HF_HUB_CACHE", str(comfy.nodes.paths.clip_dirs()[0]))          # an empty hub cache
    monkeypatch.setitem(sys.modules, "huggingface_hub", types.SimpleNamespace(
        hf_hub_download=lambda **kw: calls.append(kw) or (_ for _ in ()).throw(OSError("no network here"))))
    entry = clip_loader.clip_entries()[0]
    with pytest.raises(RuntimeError) as err:
        comfy.nodes.LoadWeatherModel.execute(DEFAULT_CHOICE, entry["id"], "auto")     # download_clip off
    msg = str(err.value)
    assert not calls
    assert entry["file_name"] in msg and "models/clip" in msg and "download_clip on" in msg and "huggingface.co" in msg
    with pytest.raises(RuntimeError, match="could not be downloaded"):
        comfy.nodes.LoadWeatherModel.execute(DEFAULT_CHOICE, entry["id"], "auto", download_clip=True)
    assert len(calls) == 1                                                             # asked: it tries
