"""pipeline.weights: the weights choices of Load Weather Model and their checks against the manifest."""
import json

import pytest
import torch

from weather_restore.hub.manifest import sha256_file
from weather_restore.models import WeatherRestorer
from weather_restore.models.weights_io import WeightsError, load_restorer, save_restorer
from weather_restore.pipeline.weights import (DEFAULT_CHOICE, default_restorer, entry_file_name, load_verified,
                                              resolve_weights, verify_weights,
                                              weight_choices)


@pytest.fixture
def weights_file(tmp_path, tiny_cfg):
    torch.manual_seed(0)
    return save_restorer(WeatherRestorer(tiny_cfg), tmp_path / "bundled" / "tiny.safetensors")


def write_manifest(tmp_path, entries):
    path = tmp_path / "manifest.json"
    path.write_text(json.dumps({"schema": 1, "weights": entries}))
    return path


def entry_for(path, entry_id="tiny-v1", **kw):
    return {"id": entry_id, "kind": "restorer", "path": str(path), "sha256": sha256_file(path),
            "bytes": path.stat().st_size, **kw}


def test_choices_default_bundled_then_user_files(tmp_path, weights_file):
    m = write_manifest(tmp_path, [entry_for(weights_file), {"id": "clip-x", "kind": "clip"}])
    assert weight_choices(["b.safetensors", "a.safetensors", "notes.txt"], m) == [
        DEFAULT_CHOICE, "bundled/tiny-v1", "a.safetensors", "b.safetensors"]
    assert weight_choices([], write_manifest(tmp_path, [])) == [DEFAULT_CHOICE]


def test_default_resolves_to_first_bundled_and_verifies(tmp_path, weights_file):
    m = write_manifest(tmp_path, [entry_for(weights_file)])
    path, entry = resolve_weights(DEFAULT_CHOICE, lambda n: None, [], m)
    assert path == weights_file and entry["id"] == "tiny-v1"
    assert verify_weights(path, entry, m)["id"] == "tiny-v1"
    assert resolve_weights("bundled/tiny-v1", lambda n: None, [], m)[0] == weights_file


def test_default_without_bundled_weights_says_where_to_put_files(tmp_path):
    m = write_manifest(tmp_path, [])
    with pytest.raises(WeightsError, match=r"no bundled restorer weights.*\['/x/models/weather'\]"):
        resolve_weights(DEFAULT_CHOICE, lambda n: None, ["/x/models/weather"], m)


def test_missing_bundled_file_and_missing_user_file(tmp_path, weights_file):
    e = entry_for(weights_file)
    e["path"] = str(tmp_path / "gone.safetensors")
    m = write_manifest(tmp_path, [e])
    with pytest.raises(WeightsError, match="missing at .*gone.safetensors.*git lfs pull"):
        resolve_weights(DEFAULT_CHOICE, lambda n: None, [], m)
    with pytest.raises(WeightsError, match=r"'mine.safetensors' not found in \['/w'\].*extra_model_paths.yaml"):
        resolve_weights("mine.safetensors", lambda n: None, ["/w"], m)


def test_corrupt_bundled_file_is_refused(tmp_path, weights_file):
    m = write_manifest(tmp_path, [entry_for(weights_file)])
    data = bytearray(weights_file.read_bytes())
    data[-1] ^= 0xFF                                            # same size, one bit pattern changed
    weights_file.write_bytes(bytes(data))
    path, entry = resolve_weights(DEFAULT_CHOICE, lambda n: None, [], m)
    with pytest.raises(WeightsError, match="corrupt or a different version"):
        verify_weights(path, entry, m)


def test_user_file_known_by_sha256_unknown_or_clashing_name(tmp_path, weights_file, tiny_cfg):
    m = write_manifest(tmp_path, [entry_for(weights_file, file="tiny.safetensors")])
    user = tmp_path / "user"
    user.mkdir()
    same = user / "renamed.safetensors"
    same.write_bytes(weights_file.read_bytes())
    path, entry = resolve_weights("renamed.safetensors", lambda n: str(user / n), [str(user)], m)
    assert entry is None and verify_weights(path, entry, m)["id"] == "tiny-v1"   # found by hash

    torch.manual_seed(5)
    other = save_restorer(WeatherRestorer(tiny_cfg), user / "mine.safetensors")
    assert verify_weights(other, None, m) is None                # unknown file: loaded unverified
    assert isinstance(load_restorer(other), WeatherRestorer)

    clash = save_restorer(WeatherRestorer(tiny_cfg), user / "sub" / "tiny.safetensors")
    with pytest.raises(WeightsError, match="entry 'tiny-v1' with this file name expects"):
        verify_weights(clash, None, m)


def test_entry_file_name_from_any_field():
    assert entry_file_name({"file_name": "a.safetensors", "path": "weights/x.safetensors"}) == "a.safetensors"
    assert entry_file_name({"file": "a.safetensors"}) == "a.safetensors"
    assert entry_file_name({"path": "weights/b.safetensors"}) == "b.safetensors"
    assert entry_file_name({"hub": {"repo": "r", "file": "dir/c.safetensors"}}) == "c.safetensors"


def test_default_is_the_entry_marked_default_for_nodes_and_cli(tmp_path, weights_file, tiny_cfg):
    from weather_restore.cli.model_loading import choose_weights
    torch.manual_seed(3)
    newer = save_restorer(WeatherRestorer(tiny_cfg), tmp_path / "bundled" / "tiny_v2.safetensors")
    m = write_manifest(tmp_path, [entry_for(weights_file), entry_for(newer, "tiny-v2", default=True)])
    node_path, node_entry = resolve_weights(DEFAULT_CHOICE, lambda n: None, [], m)
    cli_choice = choose_weights(None, m)
    assert node_entry["id"] == cli_choice.entry["id"] == default_restorer(m)["id"] == "tiny-v2"
    assert node_path == cli_choice.path == newer


def test_nodes_and_cli_pick_the_same_file_from_the_shipped_manifest():
    """Whatever entry the real weights_manifest.json marks default (v3 today, a v4 later)."""
    from weather_restore.cli.model_loading import choose_weights
    from weather_restore.hub import manifest
    marked = [e for e in manifest.entries("restorer") if e.get("default") and e.get("path")]
    assert len(marked) == 1
    node_path, node_entry = resolve_weights(DEFAULT_CHOICE, lambda n: None, [])
    cli_choice = choose_weights(None)
    assert node_entry["id"] == cli_choice.entry["id"] == marked[0]["id"]
    assert node_path == cli_choice.path == manifest.bundled_path(marked[0])


def test_load_verified_is_the_one_loading_path(tmp_path, weights_file):
    m = write_manifest(tmp_path, [entry_for(weights_file)])
    model, entry = load_verified(weights_file, None, "cpu", torch.float32, m)   # found by its sha256
    assert entry["id"] == "tiny-v1" and not model.training and next(model.parameters()).dtype == torch.float32
    with pytest.raises(WeightsError, match="is a clip file, not a restorer"):
        resolve_weights("bundled/clip-x", lambda n: None, [],
                        write_manifest(tmp_path, [entry_for(weights_file), {"id": "clip-x", "kind": "clip"}]))
