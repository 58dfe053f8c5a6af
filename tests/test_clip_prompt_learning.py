"""Prompt learning (CoOp context vectors, CLIP frozen) and the learn-prompts command, on a tiny random CLIP."""
import json

import pytest
import torch
from safetensors.torch import save_file

from weather_restore.models.clip import ClipSignals, PromptFileError, load_prompts, save_prompts
from weather_restore.models.clip.tiny import TINY_CLIP_CONFIG, TINY_MEAN, TINY_STD, build_tiny_clip
from weather_restore.training.prompt_learning import (PromptLearningConfig, PromptTrainer, density_targets,
                                                      quality_batch)



def _batch(b=4, h=40, w=40, seed=0):
    """Synthesizer-like items: haze of known density on the left part of the image."""
    g = torch.Generator().manual_seed(seed)
    clean = torch.rand(b, 3, h, w, generator=g)
    density = torch.zeros(b, 1, h, w)
    density[..., : w // 2] = torch.rand(b, 1, 1, 1, generator=g) * 0.5 + 0.5
    weathered = clean * (1 - density) + 0.85 * density
    return {"clean": clean, "weathered": weathered, "density": density, "prior": torch.zeros(b, 4)}


def test_only_the_prompt_vectors_change_and_the_loss_falls():
    model, tok = build_tiny_clip(seed=0)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    trainer = PromptTrainer(model, tok, TINY_MEAN, TINY_STD, PromptLearningConfig(n_ctx=4, lr=1e-2, seed=0))
    assert [n for n, _ in trainer.learner.named_parameters()] == ["ctx.density", "ctx.quality"]
    ctx0 = {t: p.detach().clone() for t, p in trainer.learner.ctx.items()}
    batch = _batch()
    with torch.no_grad():
        first = {k: float(v) for k, v in trainer.losses(batch).items()}
    for _ in range(15):
        trainer.step(batch)
    with torch.no_grad():
        last = {k: float(v) for k, v in trainer.losses(batch).items()}
    assert last["density"] < first["density"] - 0.1 and last["quality"] < first["quality"] - 0.1, (first, last)
    for k, v in model.state_dict().items():
        assert torch.equal(v, before[k]), k                             # CLIP untouched
    assert all(not p.requires_grad for p in model.parameters())
    assert all((trainer.learner.ctx[t].detach() - ctx0[t]).abs().max() > 1e-3 for t in ctx0)


def test_one_task_alone_and_bad_tasks():
    model, tok = build_tiny_clip(seed=0)
    trainer = PromptTrainer(model, tok, TINY_MEAN, TINY_STD, PromptLearningConfig(tasks=("quality",), n_ctx=2))
    parts = trainer.step({k: v for k, v in _batch(2).items() if k != "density"})
    assert set(parts) == {"quality", "total"}
    with pytest.raises(ValueError, match="tasks must be among"):
        PromptLearningConfig(tasks=("weather",))
    trainer = PromptTrainer(model, tok, TINY_MEAN, TINY_STD, PromptLearningConfig(tasks=("density",), n_ctx=2))
    with pytest.raises(KeyError, match="density"):
        trainer.losses({k: v for k, v in _batch(2).items() if k != "density"})


def test_labels_of_the_tiers_and_the_patches():
    b = _batch(2, 16, 24)
    images, labels = quality_batch(b["clean"], b["weathered"], (0.3, 0.7), torch.Generator().manual_seed(0))
    assert images.shape == (6, 3, 16, 24) and labels.tolist() == [0, 0, 1, 1, 2, 2]
    torch.testing.assert_close(images[:2], b["weathered"])
    torch.testing.assert_close(images[4:], b["clean"])
    medium = images[2:4]                                    # strictly between weathered and clean where they differ
    diff = (b["clean"] - b["weathered"]).abs() > 1e-3
    t = ((medium - b["weathered"]) / (b["clean"] - b["weathered"]))[diff]
    assert t.min() >= 0.3 - 1e-4 and t.max() <= 0.7 + 1e-4
    d = density_targets(b["density"], (2, 3))
    assert d.shape == (2, 1, 2, 3) and (d[..., 0] > 0.5).all() and (d[..., 2] == 0).all()


def test_saved_prompts_round_trip_and_drive_the_provider(tmp_path):
    model, tok = build_tiny_clip(seed=0)
    trainer = PromptTrainer(model, tok, TINY_MEAN, TINY_STD, PromptLearningConfig(n_ctx=3, lr=1e-2))
    trainer.step(_batch(2))
    path = save_prompts(tmp_path / "p.safetensors", trainer.learner.export(), {"clip": "tiny", "steps": 1})
    loaded = load_prompts(path)
    assert set(loaded) == {"density", "quality"} and loaded["quality"].classes[0] == "low quality"
    torch.testing.assert_close(loaded["density"].ctx, trainer.learner.ctx["density"].detach())
    x = _batch(2, 33, 45, seed=5)["weathered"]
    with torch.no_grad():
        expected = trainer.learner.text_features("density")
    s = ClipSignals(model, tok, TINY_MEAN, TINY_STD, learned_prompts=loaded)
    torch.testing.assert_close(s.density_text(), expected)
    assert s.density(x).shape == (2, 1, 33, 45)
    other = tmp_path / "other.safetensors"
    save_file({"x": torch.zeros(1)}, str(other), metadata={"format": "weather-restorer"})
    with pytest.raises(PromptFileError, match="not a learned-prompts file"):
        load_prompts(other)


def test_learn_prompts_command_end_to_end(tmp_path, monkeypatch, capsys):
    """`python weather.py learn-prompts` with a tiny CLIP from a manifest and synthetic items."""
    import open_clip
    from weather_restore.cli import learn_prompts
    from weather_restore.cli.main import build_parser
    from weather_restore.hub import clip_loader as CL
    from weather_restore.hub.manifest import sha256_file

    name = "weather-test-tiny-clip-cli"
    (tmp_path / f"{name}.json").write_text(json.dumps(TINY_CLIP_CONFIG))
    open_clip.add_model_config(tmp_path / f"{name}.json")
    model, _ = build_tiny_clip(seed=2)
    weights = tmp_path / "clip" / "tiny.safetensors"
    weights.parent.mkdir()
    save_file({k: v.contiguous() for k, v in model.state_dict().items()}, str(weights))
    manifest = tmp_path / "manifest.json"
    manifest.write_text(json.dumps({"schema": 1, "weights": [{
        "id": "tiny-clip", "kind": "clip", "open_clip_model": name, "pretrained": None, "file_name": "tiny.safetensors",
        "sha256": sha256_file(weights), "bytes": weights.stat().st_size, "licence": "test"}]}))
    monkeypatch.setattr(CL.M, "MANIFEST_PATH", manifest)
    items = [{k: v[0] for k, v in _batch(1, 36, 36, seed=i).items()} for i in range(4)]
    monkeypatch.setattr(learn_prompts, "make_dataset", lambda roots, crop, seed: items)
    CL.clear_clip_cache()
    out = tmp_path / "prompts.safetensors"
    args = build_parser().parse_args(["learn-prompts", "--clip", "tiny-clip", "--clip-dir", str(weights.parent),
                                      "--data", str(tmp_path), "--out", str(out), "--steps", "3",
                                      "--batch-size", "2", "--n-ctx", "2", "--device", "cpu"])
    try:
        assert args.run(args) == 0
    finally:
        CL.clear_clip_cache()
    entry = json.loads(capsys.readouterr().out)                 # the manifest entry, printed on stdout
    assert entry["kind"] == "clip_prompts" and entry["clip"] == "tiny-clip" and entry["tasks"] == ["density", "quality"]
    assert entry["sha256"] == sha256_file(out) and entry["bytes"] == out.stat().st_size
    loaded = load_prompts(out)
    assert set(loaded) == {"density", "quality"} and loaded["density"].ctx.shape == (2, 32)
