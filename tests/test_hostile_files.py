"""Hostile inputs are refused early and cheaply, with errors naming the file: 16-bit PNG bombs,
weights whose config metadata is out of range, manifest paths escaping the pack."""
import json
import struct
import time
import tracemalloc
import zlib

import numpy as np
import pytest
from PIL import Image

from weather_restore.imagefiles.png16 import PngError, _chunk, read_png16, write_png16
from weather_restore.imagefiles.png16 import SIGNATURE


def _png16(path, width, height, idat: bytes):
    """A 16-bit RGB PNG with the given header size and raw IDAT body."""
    ihdr = _chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 16, 2, 0, 0, 0))
    path.write_bytes(SIGNATURE + ihdr + _chunk(b"IDAT", idat) + _chunk(b"IEND", b""))
    return path


def test_png16_bomb_is_refused_without_inflating_it(tmp_path):
    """A 16x16 header (1.5 KB of pixels) over an IDAT of 64 MiB of zeros (~64 KB compressed)."""
    z = zlib.compressobj(9)
    zeros = bytes(1 << 20)
    idat = b"".join(z.compress(zeros) for _ in range(64)) + z.flush()
    path = _png16(tmp_path / "bomb.png", 16, 16, idat)
    assert path.stat().st_size < 200_000
    tracemalloc.start()
    t0 = time.perf_counter()
    try:
        with pytest.raises(PngError, match=r"bomb\.png: image data inflates past the 1552 bytes"):
            read_png16(path)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 4 << 20 and time.perf_counter() - t0 < 2


def test_png16_declared_size_over_pillows_bomb_limit_is_refused(tmp_path, monkeypatch):
    path = _png16(tmp_path / "huge.png", 100_000, 100_000, zlib.compress(b""))
    with pytest.raises(PngError, match=r"huge\.png: the header declares 100000x100000 .*MAX_IMAGE_PIXELS"):
        read_png16(path)
    small = write_png16(tmp_path / "ok.png", np.zeros((10, 20, 3), np.uint16))
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 100)         # Pillow's rule: refused above 2 x the limit
    assert read_png16(small).shape == (10, 20, 3)
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 50)
    with pytest.raises(PngError, match=r"ok\.png: .*200 pixels, over the limit of 100"):
        read_png16(small)


def test_png16_round_trip_still_exact(tmp_path):
    a = np.random.default_rng(0).integers(0, 65536, (7, 9, 4), dtype=np.uint16)
    assert np.array_equal(read_png16(write_png16(tmp_path / "a.png", a)), a)


# --- restorer configs from a weights file's metadata ------------------------------------------------

def _with_config(tiny_model, tmp_path, change, name="hostile.safetensors"):
    """The tiny model's file with its metadata config changed (a dict update, or raw text)."""
    from safetensors.torch import load_file, save_file
    from weather_restore.models.weights_io import read_metadata, save_restorer
    path = save_restorer(tiny_model, tmp_path / name)
    meta = read_metadata(path)
    meta["config"] = change if isinstance(change, str) else json.dumps({**json.loads(meta["config"]), **change})
    save_file(load_file(str(path)), str(path), metadata=meta)
    return path


@pytest.mark.parametrize("change,field", [
    (dict(dims=[10 ** 6, 2 * 10 ** 6]), "dims"),                   # 4 TiB of weights if built
    (dict(enc_blocks=[10 ** 7, 1]), "enc_blocks"),                 # minutes of module building
    (dict(dec_blocks=[-1]), "dec_blocks"),
    (dict(head_dim=0), "head_dim"),
    (dict(window=0), "window"),
    (dict(dims="16, 32"), "dims"),
    (dict(dims=[16.0, 32]), "dims"),
    (dict(mlp_ratio="1.5"), "mlp_ratio"),
    (dict(mlp_ratio=float("nan")), "mlp_ratio"),
    (dict(channels_last="yes"), "channels_last"),
    (dict(block_types=["dual", 3]), "block_types"),
    (dict(cwp_levels=[True]), "cwp_levels"),
    (dict(window=64, dims=[16] * 8, enc_blocks=[1] * 8, dec_blocks=[1] * 7), "stride"),
    (dict(name=["x"]), "name"),
    ("{not json", "not valid JSON"),
    ("[16, 32]", "JSON object"),
])
def test_bad_config_metadata_is_refused_naming_file_and_field(tiny_model, tmp_path, change, field):
    from weather_restore.models.weights_io import WeightsError, load_restorer
    path = _with_config(tiny_model, tmp_path, change)
    t0 = time.perf_counter()
    with pytest.raises(WeightsError, match=rf"hostile\.safetensors: bad restorer config in its metadata: .*{field}"):
        load_restorer(path)
    assert time.perf_counter() - t0 < 5


def test_a_file_that_does_not_fit_its_config_builds_nothing_real(tiny_model, tmp_path, monkeypatch):
    """Names and shapes are matched on the meta device before any weight memory is allocated."""
    from weather_restore.models import weights_io
    path = _with_config(tiny_model, tmp_path, dict(dims=[24, 48]))
    built, real = [], weights_io.WeatherRestorer
    monkeypatch.setattr(weights_io, "WeatherRestorer", lambda cfg, device=None: built.append(device) or real(cfg, device))
    with pytest.raises(weights_io.WeightsError, match=r"hostile\.safetensors does not fit the network: .*shape"):
        weights_io.load_restorer(path)
    assert built == ["meta"]


def test_every_shipped_config_and_bundled_weights_file_validates():
    from weather_restore.models import WeatherRestorer, list_configs, load_config
    from weather_restore.models.weights_io import load_restorer
    from weather_restore.hub import manifest
    names = list_configs()
    assert {"tiny", "s", "s_dr", "m", "l"} <= set(names)
    for name in names:
        WeatherRestorer(load_config(name), device="meta")
    bundled = [e for e in manifest.entries("restorer") if e.get("path")]
    assert {"weather-s-v1", "weather-s-v2", "weather-s-v3", "weather-m-v4-preview", "weather-m-v4"} <= {e["id"] for e in bundled}
    for e in bundled:
        path = manifest.bundled_path(e)
        manifest.verify_file(path, e)
        assert load_restorer(path).cfg.name == e["config"]["name"]


def test_a_bad_config_file_names_the_file(tmp_path):
    from weather_restore.models import load_config
    (tmp_path / "mine.json").write_text('{"dims": [16, 32], "enc_blocks": [1, 1], "dec_blocks": [1], "head_dim": 0}')
    with pytest.raises(ValueError, match=r"mine\.json: config 's': head_dim must be an integer in \[1, 4096\]; got 0"):
        load_config(str(tmp_path / "mine.json"))


# --- weights_manifest.json paths and hashes -------------------------------------------------------

def _manifest(folder, entries):
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "weights_manifest.json"
    path.write_text(json.dumps({"schema": 1, "weights": entries}))
    return path


@pytest.mark.parametrize("escape", ["../secret.safetensors", "weights/../../secret.safetensors", "{secret}"])
def test_manifest_paths_cannot_leave_the_pack(tmp_path, tiny_model, escape):
    from weather_restore.hub.manifest import sha256_file
    from weather_restore.models.weights_io import WeightsError, save_restorer
    from weather_restore.pipeline.weights import resolve_weights
    secret = save_restorer(tiny_model, tmp_path / "secret.safetensors")         # outside the pack folder
    entry = {"id": "evil", "kind": "restorer", "path": escape.format(secret=secret),
             "sha256": sha256_file(secret), "bytes": secret.stat().st_size}
    m = _manifest(tmp_path / "pack", [entry])
    with pytest.raises(WeightsError, match=r"manifest entry 'evil': path .* leaves .*pack; a bundled file must lie inside"):
        resolve_weights("bundled/evil", lambda n: None, [], m)
    inside = _manifest(tmp_path, [dict(entry, path="secret.safetensors")])     # the same file, inside
    assert resolve_weights("bundled/evil", lambda n: None, [], inside)[0] == secret


def test_the_shipped_manifest_escape_is_refused():
    from weather_restore.hub.manifest import bundled_path
    from weather_restore.models.weights_io import WeightsError
    with pytest.raises(WeightsError, match=r"'x': path '\.\./\.\./etc/passwd' leaves"):
        bundled_path({"id": "x", "path": "../../etc/passwd"})
    with pytest.raises(WeightsError, match=r"'x': path '/etc/passwd' leaves"):
        bundled_path({"id": "x", "path": "/etc/passwd"})


@pytest.mark.parametrize("missing", ["sha256", "bytes"])
def test_a_bundled_entry_without_hashes_is_not_verified(tmp_path, tiny_model, missing):
    from weather_restore.hub.manifest import sha256_file
    from weather_restore.models.weights_io import WeightsError, save_restorer
    from weather_restore.pipeline.weights import load_verified, resolve_weights
    w = save_restorer(tiny_model, tmp_path / "weights" / "w.safetensors")
    entry = {"id": "nohash", "kind": "restorer", "path": "weights/w.safetensors",
             "sha256": sha256_file(w), "bytes": w.stat().st_size, missing: None}
    m = _manifest(tmp_path, [entry])
    path, e = resolve_weights("bundled/nohash", lambda n: None, [], m)
    with pytest.raises(WeightsError, match="entry 'nohash' is bundled but has no sha256 or bytes"):
        load_verified(path, e, manifest_path=m)
