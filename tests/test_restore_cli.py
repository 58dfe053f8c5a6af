"""`python weather.py restore` and `bench` on a tiny-config weights file: outputs, names, modes, bad input."""
import argparse
import hashlib
import json
import logging
import sys

import numpy as np
import pytest
import torch
from PIL import Image

from weather_restore.cli import bench, model_loading, restore
from weather_restore.cli import inputs as cli_inputs
from weather_restore.cli.inputs import OutputPlanner, collect_inputs
from weather_restore.imagefiles.image_io import read_image, write_image
from weather_restore.imagefiles.png16 import png_header, read_png16, write_png16
from weather_restore.models import WEATHER_TYPES, WeatherRestorer
from weather_restore.models.restorer import Signals
from weather_restore.models.tiling import global_signals, restore_image
from weather_restore.models.weights_io import WeightsError, load_restorer, save_restorer

RNG = np.random.default_rng(1)


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    """The tiny network is overhead-bound: one thread is many times faster on a busy two-core machine."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def weights(tmp_path_factory):
    from weather_restore.models import load_config
    torch.manual_seed(0)
    return save_restorer(WeatherRestorer(load_config("tiny")).eval(), tmp_path_factory.mktemp("w") / "tiny.safetensors")


def cli(command, *argv):
    parser = argparse.ArgumentParser()
    sub = parser.add_subparsers(dest="command", required=True)
    {"restore": restore, "bench": bench}[command].add_parser(sub)
    args = parser.parse_args([command, *map(str, argv)])
    return args.run(args)


def save(path, a, mode=None):
    Image.fromarray(a, mode).save(path)
    return path


def digest(path):
    return hashlib.sha256(path.read_bytes()).hexdigest()


def rand8(*shape):
    return RNG.integers(0, 256, shape, dtype=np.uint8)


def test_commands_are_registered():
    from weather_restore.cli.main import COMMANDS
    assert COMMANDS["restore"] == "restore" and COMMANDS["bench"] == "bench"


def test_restores_a_folder_next_to_the_inputs_in_their_formats_and_modes(tmp_path, weights):
    save(tmp_path / "rgb.jpg", rand8(5, 7, 3))
    save(tmp_path / "gray.png", rand8(9, 4), "L")
    save(tmp_path / "alpha.png", rand8(6, 6, 4), "RGBA")
    save(tmp_path / "one.png", rand8(1, 1, 3))
    write_png16(tmp_path / "deep.png", RNG.integers(0, 65536, (8, 5, 3), dtype=np.uint16))
    before = {p.name: digest(p) for p in tmp_path.iterdir()}

    assert cli("restore", tmp_path, "--weights", weights, "--tile", 64, "--overlap", 8) == 0

    assert {p.name: digest(p) for p in tmp_path.iterdir() if p.name in before} == before    # inputs untouched
    jpg = Image.open(tmp_path / "rgb_restored.jpg")
    assert jpg.format == "JPEG" and jpg.size == (7, 5)
    gray = Image.open(tmp_path / "gray_restored.png")
    assert gray.mode == "L" and gray.size == (4, 9)
    rgba = Image.open(tmp_path / "alpha_restored.png")
    assert rgba.mode == "RGBA"
    np.testing.assert_array_equal(np.asarray(rgba)[..., 3], np.asarray(Image.open(tmp_path / "alpha.png"))[..., 3])
    assert Image.open(tmp_path / "one_restored.png").size == (1, 1)
    head = png_header(tmp_path / "deep_restored.png")
    assert (head["bit_depth"], head["color_type"], head["width"], head["height"]) == (16, 2, 5, 8)
    assert len([p for p in tmp_path.iterdir() if "_restored" in p.name]) == 5


def test_cli_output_is_the_tiled_restoration_of_the_image(tmp_path, weights, monkeypatch):
    a = rand8(150, 200, 3)
    save(tmp_path / "in.png", a)
    model = load_restorer(weights)
    x = torch.from_numpy(a).permute(2, 0, 1)[None].float() / 255
    p, d = global_signals(model, x)                                         # at the analysis size, not the tile
    expected = restore_image(model, x, prior=p, density=d, tile=64, overlap=16)
    seen, own_restore = [], model.restore
    model.register_forward_pre_hook(lambda m, inp: seen.append(tuple(inp[0].shape[-2:])))

    def spy(x, *args):                      # tiles given both signals run `restore` (no heads), not forward
        seen.append(tuple(x.shape[-2:]))
        return own_restore(x, *args)
    monkeypatch.setattr(model, "restore", spy)
    monkeypatch.setattr(restore, "load_model", lambda *a: (model, model_loading.WeightsChoice(weights, None)))

    assert cli("restore", tmp_path / "in.png", "--weights", weights, "--tile", 64, "--overlap", 16,
               "--out", tmp_path / "out") == 0
    got = np.asarray(Image.open(tmp_path / "out" / "in_restored.png")).astype(int)
    assert got.shape == (150, 200, 3)
    want = (expected[0].permute(1, 2, 0) * 255).round().numpy().astype(int)
    assert np.abs(got - want).max() <= 1
    assert np.abs(got - a).mean() > 1                                        # it did change the image
    assert len(seen) > 4 and max(max(s) for s in seen) <= 64                 # only tiles went through the net


class PointwiseModel(torch.nn.Module):
    """Stand-in network: y = 1 - x per pixel, so any tiling must give exactly 1 - x."""

    def __init__(self):
        super().__init__()
        self.w = torch.nn.Parameter(torch.ones(()))
        self.cfg = argparse.Namespace(stride=8, name="pointwise")
        self.largest = 0

    def predict_signals(self, x):
        B, _, H, W = x.shape
        return Signals(torch.zeros(B, len(WEATHER_TYPES)), torch.zeros(B, 1, H, W), torch.zeros(B, 3))

    def predict_density(self, x):
        return self.predict_signals(x).density_logits

    def forward(self, x, prior=None, density=None):
        self.largest = max(self.largest, *x.shape[-2:])
        return argparse.Namespace(image=self.w - x)


def test_a_big_image_is_tiled_without_seams(tmp_path, monkeypatch):
    fake = PointwiseModel()
    monkeypatch.setattr(restore, "load_model", lambda *a: (fake, model_loading.WeightsChoice(tmp_path, None)))
    a = rand8(500, 700, 3)
    save(tmp_path / "big.png", a)
    assert cli("restore", tmp_path / "big.png", "--tile", 128, "--overlap", 32) == 0
    np.testing.assert_array_equal(np.asarray(Image.open(tmp_path / "big_restored.png")), 255 - a)
    assert fake.largest == 128


def test_strength_zero_gives_back_the_input(tmp_path, weights):
    a = rand8(5, 7, 3)
    save(tmp_path / "s.png", a)
    assert cli("restore", tmp_path / "s.png", "--weights", weights, "--strength", 0) == 0
    np.testing.assert_array_equal(np.asarray(Image.open(tmp_path / "s_restored.png")), a)


def test_density_and_prior_are_saved(tmp_path, weights):
    a = rand8(12, 16, 3)
    save(tmp_path / "w.png", a)
    assert cli("restore", tmp_path / "w.png", "--weights", weights, "--save-density", "--save-prior") == 0
    dens = Image.open(tmp_path / "w_density.png")
    assert dens.mode == "L" and dens.size == (16, 12)
    prior = json.loads((tmp_path / "w_prior.json").read_text())
    assert prior["source"] == "learned" and list(prior["weather"]) == list(WEATHER_TYPES)
    model = load_restorer(weights)
    p, d = global_signals(model, torch.from_numpy(a).permute(2, 0, 1)[None].float() / 255, 512)
    np.testing.assert_allclose(list(prior["weather"].values()), p[0].tolist(), atol=1e-4)
    np.testing.assert_allclose(np.asarray(dens) / 255, d[0, 0].numpy(), atol=1 / 255)


def test_weather_set_by_hand_is_the_prior_the_restoration_uses(tmp_path, weights, capsys):
    a = rand8(12, 16, 3)
    save(tmp_path / "h.png", a)
    assert cli("restore", tmp_path / "h.png", "--weights", weights, "--weather", "haze=0,rain=1", "--save-prior") == 0
    prior = json.loads((tmp_path / "h_prior.json").read_text())
    assert prior["source"] == "learned+manual"
    model = load_restorer(weights)
    x = torch.from_numpy(a).permute(2, 0, 1)[None].float() / 255
    p, d = global_signals(model, x, 512)
    p[0, WEATHER_TYPES.index("haze")], p[0, WEATHER_TYPES.index("rain_streaks")] = 0.0, 1.0
    assert prior["weather"]["haze"] == 0.0 and prior["weather"]["rain_streaks"] == 1.0
    np.testing.assert_allclose(prior["weather"]["snow"], p[0, WEATHER_TYPES.index("snow")].item(), atol=1e-4)
    with torch.no_grad():
        want = restore_image(model, x, prior=p, density=d)[0].permute(1, 2, 0).numpy()
    got = np.asarray(Image.open(tmp_path / "h_restored.png")).astype(np.float32) / 255
    assert np.abs(got - want).max() <= 0.5 / 255 + 1e-5                      # 8-bit rounding only
    with pytest.raises(SystemExit):
        cli("restore", tmp_path / "h.png", "--weights", weights, "--weather", "fog=0")
    assert "--weather" in capsys.readouterr().err


def test_bad_inputs_are_reported_and_the_rest_of_the_batch_runs(tmp_path, weights, caplog):
    (tmp_path / "broken.png").write_text("no pixels here")
    (tmp_path / "empty").mkdir()
    save(tmp_path / "good.png", rand8(4, 4, 3))
    with caplog.at_level(logging.ERROR):
        rc = cli("restore", tmp_path / "broken.png", tmp_path / "empty", tmp_path / "nope.jpg",
                 str(tmp_path / "*.tif"), tmp_path / "good.png", "--weights", weights)
    assert rc == 1
    assert (tmp_path / "good_restored.png").is_file()
    text = caplog.text
    assert "broken.png" in text and "not an image" in text
    assert "empty has no images" in text and "nope.jpg: no such file" in text and "*.tif has no images" in text


def test_nothing_to_restore_exits_1(tmp_path, weights, caplog):
    with caplog.at_level(logging.ERROR):
        assert cli("restore", tmp_path, "--weights", weights) == 1
    assert "has no images" in caplog.text and "nothing to restore" in caplog.text


def test_inputs_are_never_overwritten_and_outputs_only_on_request(tmp_path, weights):
    save(tmp_path / "x.png", rand8(4, 4, 3))
    save(tmp_path / "x_restored.png", rand8(4, 4, 3))                        # an input named like an output
    inputs = {p: digest(p) for p in tmp_path.iterdir()}
    assert cli("restore", tmp_path / "x.png", tmp_path / "x_restored.png", "--weights", weights,
               "--overwrite-outputs") == 0
    assert {p: digest(p) for p in inputs} == inputs
    assert (tmp_path / "x_restored_1.png").is_file() and (tmp_path / "x_restored_restored.png").is_file()

    first = digest(tmp_path / "x_restored_1.png")
    older = read_image(tmp_path / "x_restored_1.png")
    write_image(tmp_path / "x_restored_1.png", older.with_tensor(1 - older.to_tensor()))   # an older result
    second = digest(tmp_path / "x_restored_1.png")
    assert cli("restore", tmp_path / "x.png", tmp_path / "x_restored.png", "--weights", weights) == 0
    assert digest(tmp_path / "x_restored_1.png") == second                         # skipped, kept
    assert cli("restore", tmp_path / "x.png", tmp_path / "x_restored.png", "--weights", weights,
               "--overwrite-outputs") == 0
    assert digest(tmp_path / "x_restored_1.png") == first                          # replaced, same result
    assert {p: digest(p) for p in inputs} == inputs


def test_overwrite_outputs_never_replaces_a_file_this_tool_did_not_write(tmp_path, monkeypatch, caplog):
    """Issue 16: `restore "*.gif" --suffix '' --out . --overwrite-outputs` replaced the user's own c.png."""
    fake = PointwiseModel()
    monkeypatch.setattr(restore, "load_model", lambda *a: (fake, model_loading.WeightsChoice(tmp_path, None)))
    a = rand8(6, 5, 3)
    save(tmp_path / "c.gif", a)
    save(tmp_path / "c.png", rand8(6, 5, 3))                                   # the user's own photo
    mine = digest(tmp_path / "c.png")
    with caplog.at_level(logging.ERROR):
        assert cli("restore", str(tmp_path / "*.gif"), "--suffix", "", "--out", tmp_path,
                   "--overwrite-outputs") == 1
    assert digest(tmp_path / "c.png") == mine
    assert "c.png already exists and was not written by weather-restore" in caplog.text
    assert "--out folder or --suffix" in caplog.text and "--overwrite-outputs" not in caplog.text

    out = tmp_path / "out"                                                     # a result of ours is replaced
    assert cli("restore", tmp_path / "c.gif", "--out", out, "--save-density", "--save-prior") == 0
    gif = np.asarray(Image.open(tmp_path / "c.gif").convert("RGB"))
    write_image(out / "c_restored.png", read_image(tmp_path / "c.gif"))            # an older result of ours
    assert cli("restore", tmp_path / "c.gif", "--out", out, "--save-density", "--save-prior",
               "--overwrite-outputs") == 0                                     # density and prior too
    np.testing.assert_array_equal(np.asarray(Image.open(out / "c_restored.png")), 255 - gif)


def _no_model(*a):
    raise AssertionError("the model was loaded before the output folder was checked")


def test_output_folder_problems_surface_before_any_work(tmp_path, monkeypatch, caplog):
    monkeypatch.setattr(restore, "load_model", _no_model)
    save(tmp_path / "a.png", rand8(3, 3, 3))
    (tmp_path / "file.txt").write_text("x")
    with caplog.at_level(logging.ERROR):
        assert cli("restore", tmp_path / "a.png", "--out", tmp_path / "file.txt") == 2
        assert cli("restore", tmp_path / "a.png", "--out", tmp_path / "file.txt" / "sub") == 2
    assert "file.txt is a file, not a folder" in caplog.text and "cannot write into" in caplog.text

    def read_only(*a, **k):                                                   # as a read-only folder answers
        raise PermissionError(13, "Permission denied")
    monkeypatch.setattr(cli_inputs.tempfile, "TemporaryFile", read_only)
    caplog.clear()
    with caplog.at_level(logging.ERROR):
        assert cli("restore", tmp_path / "a.png") == 2                        # next to the input: that folder
    assert f"cannot write into {tmp_path} (Permission denied)" in caplog.text and "--out" in caplog.text
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.png", "file.txt"]


def test_ctrl_c_prints_a_summary_exits_130_and_leaves_no_partial_file(tmp_path, monkeypatch, capsys):
    class StopOnSecond(PointwiseModel):
        calls = 0

        def forward(self, x, prior=None, density=None):
            StopOnSecond.calls += 1
            if StopOnSecond.calls == 2:
                raise KeyboardInterrupt
            return super().forward(x, prior, density)
    fake = StopOnSecond()
    monkeypatch.setattr(restore, "load_model", lambda *a: (fake, model_loading.WeightsChoice(tmp_path, None)))
    for name in ("a.png", "b.png", "c.png"):
        save(tmp_path / name, rand8(8, 8, 3))
    try:
        rc = cli("restore", tmp_path, "--out", tmp_path / "out", "--tile", 64, "--overlap", 8)
    except KeyboardInterrupt:
        pytest.fail("Ctrl-C came out as a traceback, not a summary")
    assert rc == 130
    out = capsys.readouterr().out
    assert "interrupted: restored 1 of 3 image(s); not restored: " in out and "b.png and 1 more" in out
    assert "no partial file was left" in out
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["a_restored.png"]      # no .part file


def test_same_names_from_two_folders_get_distinct_outputs(tmp_path, weights):
    for d in ("a", "b"):
        (tmp_path / d).mkdir()
        save(tmp_path / d / "photo.png", rand8(3, 3, 3))
    assert cli("restore", tmp_path / "a", tmp_path / "b", "--out", tmp_path / "out", "--weights", weights) == 0
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["photo_restored.png", "photo_restored_1.png"]


def test_folder_expansion_leaves_out_earlier_results(tmp_path):
    for name in ("a.png", "a_restored.png", "a_restored_2.png", "a_density.png", "notes.txt", "b.JPG"):
        (tmp_path / name).write_bytes(b"x")
    files, problems = collect_inputs([str(tmp_path)])
    assert [p.name for p in files] == ["a.png", "b.JPG"] and problems == []
    files, problems = collect_inputs([str(tmp_path / "a_*.png")])
    assert files == [] and "earlier results" in problems[0]


def test_planner_refuses_input_paths(tmp_path):
    src = tmp_path / "p.png"
    plan = OutputPlanner(None, [src, tmp_path / "p_restored.png"], overwrite=True)
    assert plan.path(src, "_restored", ".png").name == "p_restored_1.png"
    assert plan.path(src, "_restored", ".png").name == "p_restored_2.png"      # claimed ones are skipped too


def test_exif_orientation_is_applied(tmp_path, weights):
    im = Image.fromarray(rand8(4, 10, 3))
    exif = im.getexif()
    exif[0x0112] = 8                                                           # stored turned by 90 degrees
    im.save(tmp_path / "turned.png", exif=exif)
    assert cli("restore", tmp_path / "turned.png", "--weights", weights) == 0
    out = Image.open(tmp_path / "turned_restored.png")
    assert out.size == (4, 10) and out.getexif().get(0x0112) is None


def test_16bit_values_survive_strength_zero(tmp_path, weights):
    a = RNG.integers(0, 65536, (6, 5, 4), dtype=np.uint16)
    write_png16(tmp_path / "d.png", a)
    assert cli("restore", tmp_path / "d.png", "--weights", weights, "--strength", 0) == 0
    np.testing.assert_array_equal(read_png16(tmp_path / "d_restored.png"), a)


def test_missing_default_weights_say_how_to_fix_it(tmp_path, monkeypatch, caplog):
    m = tmp_path / "manifest.json"
    m.write_text(json.dumps({"schema": 1, "weights": []}))
    monkeypatch.setattr(restore, "load_model", lambda spec, device, precision: model_loading.load_model(
        spec, device, precision, m))
    save(tmp_path / "a.png", rand8(3, 3, 3))
    with caplog.at_level(logging.ERROR):
        assert cli("restore", tmp_path / "a.png") == 1
    assert "no bundled restorer weights" in caplog.text and "--weights FILE" in caplog.text
    assert not (tmp_path / "a_restored.png").exists()


def _restorer_entry(weights, id_: str, **extra) -> dict:
    """A manifest entry that vouches for `weights` (its real sha256 and size)."""
    from weather_restore.hub.manifest import sha256_file
    return {"id": id_, "kind": "restorer", "path": str(weights), "sha256": sha256_file(weights),
            "bytes": weights.stat().st_size, **extra}


def test_default_entry_is_verified_before_loading(tmp_path, weights):
    good = _restorer_entry(weights, "good", default=True)
    other = dict(good, id="other", default=False)
    m = weights.parent / "manifest_default_entry.json"          # a bundled path lies inside the manifest's folder
    m.write_text(json.dumps({"schema": 1, "weights": [other, good]}))
    model, choice = model_loading.load_model(None, "cpu", "fp32", m)
    assert choice.entry["id"] == "good" and model.cfg.name == "tiny"
    m.write_text(json.dumps({"schema": 1, "weights": [other, dict(good, sha256="0" * 64)]}))
    with pytest.raises(WeightsError, match="sha256"):
        model_loading.load_model(None, "cpu", "fp32", m)


@pytest.mark.parametrize("native", [True, False])
def test_loading_sets_the_autocast_of_auto_precision(monkeypatch, tmp_path, weights, native):
    """auto on a CPU with native bf16: fp32 weights that compute in bf16 under autocast, said by describe."""
    from weather_restore.pipeline import precision
    monkeypatch.setattr(precision, "cpu_has_native_bf16", lambda: native)
    m = weights.parent / f"manifest_autocast_{native}.json"     # a bundled path lies inside the manifest's folder
    m.write_text(json.dumps({"schema": 1, "weights": [_restorer_entry(weights, "tiny-v1", default=True)]}))
    model, choice = model_loading.load_model(None, "cpu", "auto", m)
    assert next(model.parameters()).dtype == torch.float32
    assert model.autocast_dtype == (torch.bfloat16 if native else None)
    assert ("bfloat16 autocast" in model_loading.describe(model, choice)) == native
    assert model_loading.load_model(None, "cpu", "fp32", m)[0].autocast_dtype is None


def test_a_corrupt_bundled_file_given_by_path_is_refused(tmp_path, weights):
    """--weights PATH goes through the same check as a node's user file: a manifest file name with
    another sha256 is refused, not loaded unverified."""
    m = tmp_path / "manifest.json"
    m.write_text(json.dumps({"schema": 1, "weights": [
        _restorer_entry(weights, "tiny-v1", file_name="tiny.safetensors", default=True)]}))
    copy = tmp_path / "copy" / "tiny.safetensors"
    copy.parent.mkdir()
    data = bytearray(weights.read_bytes())
    data[-1] ^= 0xFF
    copy.write_bytes(bytes(data))
    with pytest.raises(WeightsError, match="corrupt or a different version"):
        model_loading.load_model(str(copy), "cpu", "fp32", m)
    assert model_loading.load_model(str(weights), "cpu", "fp32", m)[1].entry["id"] == "tiny-v1"


def test_unknown_weights_id_is_a_clear_error(tmp_path):
    with pytest.raises(WeightsError, match="neither a file nor a manifest id"):
        model_loading.choose_weights("no-such-id")
    with pytest.raises(WeightsError, match="no such file"):
        model_loading.choose_weights(str(tmp_path / "missing.safetensors"))


def test_nan_output_is_an_error_not_a_black_image(tmp_path, monkeypatch, caplog):
    class NaNModel(PointwiseModel):
        def forward(self, x, prior=None, density=None):
            return argparse.Namespace(image=x * float("nan"))
    fake = NaNModel()
    monkeypatch.setattr(restore, "load_model", lambda *a: (fake, model_loading.WeightsChoice(tmp_path, None)))
    save(tmp_path / "n.png", rand8(20, 20, 3))
    with caplog.at_level(logging.ERROR):
        assert cli("restore", tmp_path / "n.png") == 1
    assert "NaN or infinite" in caplog.text and "not a precision problem" in caplog.text      # fp32 weights
    assert not (tmp_path / "n_restored.png").exists()


def test_region_mask_restores_only_inside(tmp_path, monkeypatch):
    fake = PointwiseModel()
    monkeypatch.setattr(restore, "load_model", lambda *a: (fake, model_loading.WeightsChoice(tmp_path, None)))
    a = rand8(64, 96, 3)
    save(tmp_path / "r.png", a)
    mask = np.zeros((32, 48), np.uint8)                                        # half size, same aspect: resized
    mask[:, 24:] = 255
    save(tmp_path / "mask.png", mask, "L")
    assert cli("restore", tmp_path / "r.png", "--region", tmp_path / "mask.png", "--feather", 0,
               "--out", tmp_path / "out") == 0
    got = np.asarray(Image.open(tmp_path / "out" / "r_restored.png")).astype(int)
    np.testing.assert_array_equal(got[:, :44], a[:, :44])                      # outside: untouched
    np.testing.assert_array_equal(got[:, 52:], 255 - a[:, 52:].astype(int))   # inside: restored


def test_bad_arguments_are_refused(tmp_path, weights):
    save(tmp_path / "a.png", rand8(3, 3, 3))
    assert cli("restore", tmp_path / "a.png", "--weights", weights, "--tile", 16) == 2
    assert cli("restore", tmp_path / "a.png", "--weights", weights, "--overlap", 512) == 2
    assert cli("restore", tmp_path / "a.png", "--weights", weights, "--strength", 1.5) == 2   # as the node: [0, 1]
    assert cli("restore", tmp_path / "a.png", "--weights", weights, "--suffix", "") == 2
    assert not (tmp_path / "a_restored.png").exists()


def test_mirror_ensemble_reaches_the_restoration(tmp_path, weights):
    a = rand8(24, 40, 3)
    save(tmp_path / "f.png", a)
    assert cli("restore", tmp_path / "f.png", "--weights", weights, "--mirror-ensemble", "--suffix", "_ens") == 0
    assert cli("restore", tmp_path / "f.png", "--weights", weights) == 0
    model = load_restorer(weights)
    x = torch.from_numpy(a).permute(2, 0, 1)[None].float() / 255
    with torch.no_grad():
        want = restore_image(model, x, mirror_ensemble=True)[0].permute(1, 2, 0).numpy()
    ens = np.asarray(Image.open(tmp_path / "f_ens.png")).astype(np.float32) / 255
    plain = np.asarray(Image.open(tmp_path / "f_restored.png")).astype(np.float32) / 255
    assert np.abs(ens - want).max() <= 0.5 / 255 + 1e-5                       # 8-bit rounding only
    assert np.abs(ens - plain).max() > 2 / 255                                # the option is not ignored


def test_bench_prints_a_markdown_table(weights, capsys):
    assert bench.image_shape(1) == (866, 1155) and bench.image_shape(4) == (1732, 2309)
    assert cli("bench", "--weights", weights, "--sizes", "0.01", "--repeats", 1, "--threads", 1,
               "--tile", 64, "--overlap", 8) == 0
    out = capsys.readouterr().out
    assert "| megapixels | size (W x H) | tiles | s / MP |" in out
    row = [line for line in out.splitlines() if line.startswith("| 0.01 ")]
    assert len(row) == 1 and "115 x 86" in row[0] and "| 4 |" in row[0]
    faults = row[0].rstrip(" |").rsplit("|", 1)[1].strip()           # the last column: a count, measured
    assert "page faults / image" in out and (faults == "n/a" if sys.platform == "win32" else int(faults) >= 0)
    assert "cpu" in out and f"torch {torch.__version__}" in out and "1 threads" in out
