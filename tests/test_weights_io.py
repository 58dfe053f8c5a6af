"""Weights files: exact round trip, config in metadata, clear errors, manifest verification."""
import json

import pytest
import torch
from safetensors.torch import save_file

from weather_restore.hub.manifest import find_entry, sha256_file, verify_file
from weather_restore.models.weights_io import (WeightsError, load_restorer, read_metadata,
                                               save_restorer)


def test_round_trip_is_exact(tiny_model, tmp_path):
    path = save_restorer(tiny_model, tmp_path / "w.safetensors", {"trained_on": "test", "steps": 3})
    loaded = load_restorer(path)
    assert loaded.cfg == tiny_model.cfg
    for (k, a), (_, b) in zip(tiny_model.state_dict().items(), loaded.state_dict().items()):
        assert torch.equal(a, b), k
    x = torch.rand(1, 3, 19, 23)
    with torch.no_grad():
        assert torch.equal(tiny_model(x).image, loaded(x).image)
    meta = read_metadata(path)
    assert meta["trained_on"] == "test" and json.loads(meta["steps"]) == 3


def test_load_with_dtype(tiny_model, tmp_path):
    path = save_restorer(tiny_model, tmp_path / "w.safetensors")
    assert next(load_restorer(path, dtype=torch.bfloat16).parameters()).dtype == torch.bfloat16


def test_missing_file(tmp_path):
    with pytest.raises(WeightsError, match="not found"):
        load_restorer(tmp_path / "absent.safetensors")


def test_corrupt_file(tiny_model, tmp_path):
    path = save_restorer(tiny_model, tmp_path / "w.safetensors")
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(WeightsError, match="copy it again"):
        load_restorer(path)
    path.write_bytes(b"not a safetensors file at all")
    with pytest.raises(WeightsError, match="not a readable"):
        load_restorer(path)


def test_other_safetensors_is_refused(tmp_path):
    path = tmp_path / "other.safetensors"
    save_file({"w": torch.zeros(2)}, str(path))
    with pytest.raises(WeightsError, match="not weather-restorer weights"):
        load_restorer(path)


def test_mismatched_weights_list_keys(tiny_model, tmp_path):
    path = save_restorer(tiny_model, tmp_path / "w.safetensors")
    from safetensors.torch import load_file
    state = load_file(str(path))
    state["extra.weight"] = torch.zeros(1)
    del state["out.bias"]
    save_file(state, str(path), metadata=read_metadata(path))
    with pytest.raises(WeightsError, match=r"1 missing keys \['out.bias'\].*1 unexpected keys \['extra.weight'\]"):
        load_restorer(path)


def test_shape_mismatch_is_refused(tiny_model, tmp_path):
    """Weights of one config under the metadata of another: the error says so."""
    path = save_restorer(tiny_model, tmp_path / "w.safetensors")
    meta = read_metadata(path)
    cfg = json.loads(meta["config"])
    cfg["dims"] = [24, 48]
    meta["config"] = json.dumps(cfg)
    from safetensors.torch import load_file
    save_file(load_file(str(path)), str(path), metadata=meta)
    with pytest.raises(WeightsError, match="does not fit the network"):
        load_restorer(path)


def test_manifest_verification(tiny_model, tmp_path):
    path = save_restorer(tiny_model, tmp_path / "w.safetensors")
    entry = {"id": "t", "sha256": sha256_file(path), "bytes": path.stat().st_size}
    verify_file(path, entry)
    with pytest.raises(WeightsError, match="sha256"):
        verify_file(path, dict(entry, sha256="0" * 64))
    with pytest.raises(WeightsError, match="bytes"):
        verify_file(path, dict(entry, bytes=entry["bytes"] + 1))
    with pytest.raises(KeyError, match="known ids"):
        find_entry("no-such-weights")
