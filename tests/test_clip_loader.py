"""CLIP lookup, verification and caching (hub/clip_loader.py), offline, with a tiny registered open_clip config."""
import json

import pytest
import torch
from safetensors.torch import save_file

from weather_restore.hub import clip_loader as CL
from weather_restore.hub.manifest import load_manifest, sha256_file
from weather_restore.models.clip import ClipSignals, save_prompts, PromptContext
from weather_restore.models.clip.tiny import TINY_CLIP_CONFIG, build_tiny_clip
from weather_restore.models.weights_io import WeightsError

TINY_NAME = "weather-test-tiny-clip"



@pytest.fixture(autouse=True)
def offline(monkeypatch, tmp_path):
    """No test here may reach the network: offline, and an empty Hugging Face cache."""
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hf-cache"))
    CL.clear_clip_cache()
    yield
    CL.clear_clip_cache()


@pytest.fixture(scope="module")
def tiny_file(tmp_path_factory):
    import open_clip
    d = tmp_path_factory.mktemp("tiny-clip")
    (d / f"{TINY_NAME}.json").write_text(json.dumps(TINY_CLIP_CONFIG))
    open_clip.add_model_config(d / f"{TINY_NAME}.json")
    model, _ = build_tiny_clip(seed=1)
    path = d / "tiny_clip.safetensors"
    save_file({k: v.contiguous() for k, v in model.state_dict().items()}, str(path))
    return path, model


def _manifest(tmp_path, entries):
    path = tmp_path / "manifest.json"
    path.write_text(json.dumps({"schema": 1, "weights": entries}))
    return path


def _entry(path, **kw):
    e = {"id": "tiny-clip", "kind": "clip", "open_clip_model": TINY_NAME, "pretrained": None,
         "file_name": "tiny_clip.safetensors", "sha256": sha256_file(path), "bytes": path.stat().st_size,
         "licence": "test", "hub": {"repo": "example/tiny-clip", "revision": None, "file": "open_clip_model.safetensors"}}
    e.update(kw)
    return e


def test_manifest_has_the_clip_entries():
    clips = [e for e in load_manifest()["weights"] if e.get("kind") == "clip"]
    by_id = {e["id"]: e for e in clips}
    openai, laion = by_id["openclip-vit-b-32-openai"], by_id["openclip-vit-b-32-laion2b-s34b-b79k"]
    assert openai["pretrained"] == "openai" and openai["quick_gelu"] is True and openai["default"] is True
    assert laion["pretrained"] == "laion2b_s34b_b79k"
    for e in (openai, laion):
        assert e["open_clip_model"] == "ViT-B-32" and e["licence"] and e["file_name"].endswith(".safetensors")
        assert set(e["hub"]) == {"repo", "revision", "file"} and len(e["hub"]["revision"]) == 40
        assert e["sha256"] is None or len(e["sha256"]) == 64
    assert CL.default_clip_id() == "openclip-vit-b-32-openai"
    assert CL.list_clip_choices()[0] == "openclip-vit-b-32-openai"


def test_manifest_hub_sources_match_open_clip():
    import open_clip
    for e in CL.clip_entries():
        cfg = open_clip.get_pretrained_cfg(e["open_clip_model"], e["pretrained"])
        assert cfg["hf_hub"].rstrip("/") == e["hub"]["repo"]
        assert bool(cfg.get("quick_gelu", False)) == e["quick_gelu"]


def test_list_choices_adds_unknown_files_from_extra_dirs(tmp_path, tiny_file):
    path, _ = tiny_file
    clip_dir = tmp_path / "clip"
    (clip_dir / "sub").mkdir(parents=True)
    (clip_dir / "tiny_clip.safetensors").write_bytes(b"x")            # a manifest file: listed by id only
    (clip_dir / "sub" / "other.bin").write_bytes(b"x")
    (clip_dir / "notes.txt").write_text("x")
    m = _manifest(tmp_path, [_entry(path)])
    assert CL.list_clip_choices([clip_dir], manifest=m) == ["tiny-clip", "sub/other.bin"]


def test_offline_and_absent_error_names_the_file_and_where_to_put_it(tmp_path, tiny_file):
    path, _ = tiny_file
    clip_dir = tmp_path / "ComfyUI" / "models" / "clip"
    clip_dir.mkdir(parents=True)
    m = _manifest(tmp_path, [_entry(path)])
    with pytest.raises(CL.ClipUnavailableError) as err:
        CL.load_clip("tiny-clip", search_dirs=[clip_dir], manifest=m)
    msg = str(err.value)
    assert "tiny_clip.safetensors" in msg and str(clip_dir) in msg and "offline" in msg
    assert "https://huggingface.co/example/tiny-clip" in msg and "open_clip_model.safetensors" in msg


def test_real_entry_offline_error_says_where(tmp_path):
    with pytest.raises(CL.ClipUnavailableError, match=r"open_clip_ViT-B-32_openai\.safetensors.*ComfyUI/models/clip"):
        CL.load_clip("openclip-vit-b-32-openai")


def test_download_refused_when_switched_off(tmp_path, tiny_file, monkeypatch):
    path, _ = tiny_file
    monkeypatch.delenv("HF_HUB_OFFLINE")
    m = _manifest(tmp_path, [_entry(path)])
    with pytest.raises(CL.ClipUnavailableError, match="downloads are off unless asked for: switch download_clip on"):
        CL.load_clip("tiny-clip", manifest=m)                         # the default: never download unasked


def test_wrong_sha256_is_refused(tmp_path, tiny_file):
    path, _ = tiny_file
    m = _manifest(tmp_path, [_entry(path, sha256="0" * 64)])
    with pytest.raises(WeightsError, match="sha256"):
        CL.load_clip("tiny-clip", search_dirs=[path.parent], manifest=m)
    assert not CL._cache


def test_loads_from_search_dir_verified_and_cached(tmp_path, tiny_file):
    path, reference = tiny_file
    m = _manifest(tmp_path, [_entry(path)])
    b = CL.load_clip("tiny-clip", search_dirs=[path.parent], manifest=m)
    assert b.entry_id == "tiny-clip" and b.path == path and not b.model.training
    assert all(not p.requires_grad for p in b.model.parameters())
    x = torch.rand(2, 3, 32, 32)
    torch.testing.assert_close(b.model.encode_image(x), reference.encode_image(x))
    assert CL.load_clip("tiny-clip", search_dirs=[path.parent], manifest=m) is b
    half = CL.load_clip("tiny-clip", dtype=torch.bfloat16, search_dirs=[path.parent], manifest=m)
    assert half is not b and next(half.model.parameters()).dtype == torch.bfloat16
    assert ClipSignals(b.model, b.tokenizer, b.mean, b.std).density(torch.rand(1, 3, 20, 28)).shape == (1, 1, 20, 28)


def test_found_in_hub_cache_without_network(tmp_path, tiny_file):
    path, _ = tiny_file
    snap = tmp_path / "hf-cache" / "models--example--tiny-clip" / "snapshots" / "abc123"
    snap.mkdir(parents=True)
    (snap / "open_clip_model.safetensors").write_bytes(path.read_bytes())
    (tmp_path / "hf-cache" / "models--example--tiny-clip" / "refs").mkdir()
    (tmp_path / "hf-cache" / "models--example--tiny-clip" / "refs" / "main").write_text("abc123")
    m = _manifest(tmp_path, [_entry(path)])
    b = CL.load_clip("tiny-clip", manifest=m)
    assert b.path == snap / "open_clip_model.safetensors"
    pinned = _manifest(tmp_path, [_entry(path, hub={"repo": "example/tiny-clip", "revision": "def456",
                                                    "file": "open_clip_model.safetensors"})])
    with pytest.raises(CL.ClipUnavailableError):                       # another revision is not accepted
        CL.load_clip("tiny-clip", manifest=pinned)


def test_a_renamed_file_is_matched_by_sha256_and_an_unknown_one_refused(tmp_path, tiny_file):
    path, _ = tiny_file
    m = _manifest(tmp_path, [_entry(path)])
    renamed = tmp_path / "my clip.safetensors"
    renamed.write_bytes(path.read_bytes())
    assert CL.load_clip(str(renamed), manifest=m).entry_id == "tiny-clip"
    stranger = tmp_path / "stranger.safetensors"
    stranger.write_bytes(b"not a clip")
    with pytest.raises(CL.ClipUnavailableError, match="not a CLIP file of the manifest"):
        CL.load_clip("stranger.safetensors", search_dirs=[tmp_path], manifest=m)
    with pytest.raises(CL.ClipUnavailableError, match="neither a manifest id"):
        CL.load_clip("nothing-here", search_dirs=[tmp_path], manifest=m)


def test_learned_prompts_found_through_the_manifest(tmp_path, tiny_file):
    path, model = tiny_file
    width = model.token_embedding.weight.shape[1]
    prompts = tmp_path / "prompts.safetensors"
    save_prompts(prompts, {"density": PromptContext(torch.ones(3, width), ("hazy", "clear"))}, {"clip": "tiny-clip"})
    entry = {"id": "tiny-prompts", "kind": "clip_prompts", "clip": "tiny-clip", "file_name": prompts.name,
             "sha256": sha256_file(prompts), "bytes": prompts.stat().st_size, "licence": "test"}
    m = _manifest(tmp_path, [_entry(path), entry])
    b = CL.load_clip("tiny-clip", search_dirs=[path.parent, tmp_path], manifest=m)
    assert set(b.learned_prompts) == {"density"} and torch.equal(b.learned_prompts["density"].ctx, torch.ones(3, width))
    CL.clear_clip_cache()
    bad = _manifest(tmp_path, [_entry(path), dict(entry, sha256="f" * 64)])
    with pytest.raises(WeightsError):
        CL.load_clip("tiny-clip", search_dirs=[path.parent, tmp_path], manifest=bad)


def test_a_file_of_another_architecture_is_refused(tmp_path, tiny_file):
    path, _ = tiny_file
    model, _ = build_tiny_clip(seed=0, config=dict(TINY_CLIP_CONFIG, embed_dim=16))
    other = tmp_path / "other.safetensors"
    save_file({k: v.contiguous() for k, v in model.state_dict().items()}, str(other))
    m = _manifest(tmp_path, [_entry(other, file_name="other.safetensors")])
    with pytest.raises(WeightsError, match="does not fit open_clip model"):
        CL.load_clip("tiny-clip", search_dirs=[tmp_path], manifest=m)


def test_download_goes_through_huggingface_hub_and_is_verified(tmp_path, tiny_file, monkeypatch):
    """Online: hf_hub_download is called with the manifest's repo / file / revision (a fake here: no network)."""
    import sys
    import types
    path, _ = tiny_file
    monkeypatch.delenv("HF_HUB_OFFLINE")
    calls = []

    def fake_download(repo_id, filename, revision=None):
        calls.append((repo_id, filename, revision))
        if repo_id == "example/broken":
            raise OSError("connection refused")
        dest = tmp_path / "downloaded" / filename
        dest.parent.mkdir(exist_ok=True)
        dest.write_bytes(path.read_bytes())
        return str(dest)

    monkeypatch.setitem(sys.modules, "huggingface_hub", types.SimpleNamespace(hf_hub_download=fake_download))
    hub = {"repo": "example/tiny-clip", "revision": "abc", "file": "open_clip_model.safetensors"}
    b = CL.load_clip("tiny-clip", manifest=_manifest(tmp_path, [_entry(path, hub=hub)]), allow_download=True)
    assert calls == [("example/tiny-clip", "open_clip_model.safetensors", "abc")]
    assert b.path == tmp_path / "downloaded" / "open_clip_model.safetensors"
    broken = dict(hub, repo="example/broken")
    with pytest.raises(CL.ClipUnavailableError, match=r"could not be downloaded \(OSError.*tiny_clip\.safetensors"):
        CL.load_clip("tiny-clip", manifest=_manifest(tmp_path, [_entry(path, hub=broken)]), allow_download=True)
    CL.clear_clip_cache()
    with pytest.raises(WeightsError, match="sha256"):                     # a downloaded file is verified too
        CL.load_clip("tiny-clip", manifest=_manifest(tmp_path, [_entry(path, hub=hub, sha256="1" * 64)]),
                     allow_download=True)


def test_missing_huggingface_hub_says_how_to_install(tmp_path, tiny_file, monkeypatch):
    import sys
    path, _ = tiny_file
    monkeypatch.delenv("HF_HUB_OFFLINE")
    monkeypatch.setitem(sys.modules, "huggingface_hub", None)            # import fails
    with pytest.raises(CL.ClipUnavailableError, match="pip install huggingface_hub.*tiny_clip.safetensors"):
        CL.load_clip("tiny-clip", manifest=_manifest(tmp_path, [_entry(path)]), allow_download=True)
