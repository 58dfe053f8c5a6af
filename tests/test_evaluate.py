"""Paired-folder evaluation: layouts, errors, the model row, the CLI, and the published Rain100L row."""
import json
import math
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from PIL import Image

from weather_restore.cli.main import main
from weather_restore.evaluation import evaluate_folder, markdown_table, score_pair
from weather_restore.evaluation.pairs import find_layout, match_pairs
from weather_restore.hub.manifest import sha256_file
from weather_restore.models.weights_io import WeightsError, load_restorer, save_restorer

SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"   # as conftest.SHARED_DATA
RAIN100L = SHARED_DATA / "eval" / "rain100L"
HSTS = SHARED_DATA / "eval" / "hsts"


def _write_pairs(root, inp="input", tgt="target", names=("1.png", "2.png", "10.png"), size=(24, 20), seed=0):
    """Random clean targets and noisy inputs; returns {name: (input, target)} uint8 arrays."""
    rng = np.random.default_rng(seed)
    (root / inp).mkdir(parents=True)
    (root / tgt).mkdir(parents=True)
    out = {}
    for name in names:
        clean = rng.integers(0, 256, size=(size[1], size[0], 3), dtype=np.uint8)
        noisy = np.clip(clean.astype(int) + rng.integers(-30, 31, size=clean.shape), 0, 255).astype(np.uint8)
        Image.fromarray(noisy).save(root / inp / name)
        Image.fromarray(clean).save(root / tgt / name)
        out[name] = (noisy, clean)
    return out


class Passthrough(torch.nn.Module):
    """Returns its input: the model row must equal the input row exactly (lossless uint8 round trip)."""

    def __init__(self):
        super().__init__()
        self.w = torch.nn.Parameter(torch.ones(()))
        self.cfg = SimpleNamespace(stride=8, name="passthrough")

    def forward(self, x, prior=None, density=None):
        return SimpleNamespace(image=x * self.w)


def test_input_row_and_per_image_scores(tmp_path):
    pairs = _write_pairs(tmp_path)
    result = evaluate_folder(None, tmp_path, progress=False)
    assert result["count"] == 3 and len(result["rows"]) == 1
    assert [im["file"] for im in result["images"]] == ["1.png", "2.png", "10.png"]   # natural order
    expected = [score_pair(*pairs[n]) for n in ("1.png", "2.png", "10.png")]
    row = result["rows"][0]
    assert row["name"] == "input vs target" and row["count"] == 3
    for k in ("y_psnr", "y_ssim", "rgb_psnr"):
        assert row[k] == pytest.approx(np.mean([e[k] for e in expected]))
    assert 15 < row["rgb_psnr"] < 30 and 0 < row["y_ssim"] < 1
    assert evaluate_folder(None, tmp_path, limit=2, progress=False)["count"] == 2


def test_model_row_passthrough_equals_input_row(tmp_path):
    _write_pairs(tmp_path, "hazy", "gt", names=("0586.jpg", "1352.jpg"))
    model = Passthrough().train()
    result = evaluate_folder(model, tmp_path, name="pass", progress=False)
    inp, mod = result["rows"]
    assert result["input_dir"].endswith("hazy") and mod["name"] == "pass"
    for k in ("y_psnr", "y_ssim", "rgb_psnr"):
        assert mod[k] == inp[k]
    assert model.training                                           # mode restored


def test_tiny_model_row(tmp_path, tiny_model):
    _write_pairs(tmp_path, names=("a.png",), size=(40, 33))
    result = evaluate_folder(tiny_model, tmp_path, tile=32, overlap=8, progress=False)
    row = result["rows"][1]
    assert row["count"] == 1 and all(math.isfinite(row[k]) for k in ("y_psnr", "y_ssim", "rgb_psnr"))
    assert row["y_psnr"] != result["rows"][0]["y_psnr"]
    assert "| model |" in markdown_table(result) and "| input vs target |" in markdown_table(result)


def test_layout_errors_name_the_problem(tmp_path):
    (tmp_path / "photos").mkdir()
    with pytest.raises(ValueError, match="--input-dir"):
        find_layout(tmp_path)
    with pytest.raises(FileNotFoundError):
        find_layout(tmp_path / "missing")
    _write_pairs(tmp_path / "a", names=("1.png", "2.png"))
    (tmp_path / "a" / "target" / "2.png").rename(tmp_path / "a" / "target" / "3.png")
    with pytest.raises(ValueError, match=r"do not match.*\['2.png'\].*\['3'\]"):
        match_pairs(*find_layout(tmp_path / "a"))
    (tmp_path / "e" / "input").mkdir(parents=True)
    (tmp_path / "e" / "target").mkdir()
    with pytest.raises(ValueError, match="no images"):
        evaluate_folder(None, tmp_path / "e", progress=False)


def test_generic_dirs_stem_matching_and_size_mismatch(tmp_path):
    pairs = _write_pairs(tmp_path, "rainy_imgs", "clean_imgs", names=("x1.png", "x2.png"))
    for name in pairs:                                               # targets as .bmp: pair by stem
        p = tmp_path / "clean_imgs" / name
        Image.open(p).save(p.with_suffix(".bmp"))
        p.unlink()
    result = evaluate_folder(None, tmp_path, input_dir="rainy_imgs", target_dir="clean_imgs", progress=False)
    assert result["count"] == 2
    Image.fromarray(np.zeros((5, 5, 3), np.uint8)).save(tmp_path / "clean_imgs" / "x2.bmp")
    with pytest.raises(ValueError, match="x2.png.*differ in size"):
        evaluate_folder(None, None, input_dir=tmp_path / "rainy_imgs", target_dir=tmp_path / "clean_imgs",
                        progress=False)


def test_cli_writes_table_and_json(tmp_path, tiny_model, capsys):
    _write_pairs(tmp_path / "data", names=("1.png", "2.png"), size=(30, 26))
    weights = save_restorer(tiny_model, tmp_path / "tiny_test.safetensors")
    out = tmp_path / "res.json"
    assert main(["evaluate", "--weights", str(weights), "--data", str(tmp_path / "data"), "--out", str(out),
                 "--tile", "32", "--overlap", "8", "--device", "cpu", "--limit", "1"]) == 0
    printed = capsys.readouterr().out
    assert "| input vs target |" in printed and "| tiny_test |" in printed
    result = json.loads(out.read_text())
    assert [r["name"] for r in result["rows"]] == ["input vs target", "tiny_test"]
    assert result["count"] == 1 and result["manifest_id"] is None and len(result["sha256"]) == 64
    assert main(["evaluate", "--weights", "none", "--data", str(tmp_path / "data")]) == 0
    assert "tiny_test" not in capsys.readouterr().out
    with pytest.raises(SystemExit, match="weights file not found.*missing.safetensors"):
        main(["evaluate", "--weights", str(tmp_path / "missing.safetensors"), "--data", str(tmp_path / "data")])
    with pytest.raises(SystemExit, match="no known paired layout"):
        main(["evaluate", "--weights", "none", "--data", str(tmp_path)])


@pytest.mark.parametrize("native", [False, True])
def test_cli_precision_scores_what_restore_computes(tmp_path, tiny_model, monkeypatch, native):
    """--precision follows restore's rule: auto on a native-bf16 CPU computes in bf16 under autocast."""
    from weather_restore.pipeline import precision
    monkeypatch.setattr(precision, "cpu_has_native_bf16", lambda: native)
    _write_pairs(tmp_path / "data", names=("1.png",), size=(30, 26))
    weights = save_restorer(tiny_model, tmp_path / "tiny_test.safetensors")
    rows = {}
    for prec in ("fp32", "auto", "bf16"):
        out = tmp_path / f"{prec}.json"
        assert main(["evaluate", "--weights", str(weights), "--data", str(tmp_path / "data"), "--out", str(out),
                     "--device", "cpu", "--precision", prec]) == 0
        result = json.loads(out.read_text())
        rows[prec] = result["rows"][1]["y_psnr"]
        want = "float32" if prec == "fp32" or (prec == "auto" and not native) else "bfloat16"
        assert (result["precision"], result["computes_in"]) == (prec, want)
    assert rows["fp32"] == pytest.approx(rows["auto"], abs=0.3)       # bf16 convolutions: close, not equal
    assert (rows["auto"] == rows["fp32"]) == (not native)


def test_cli_verifies_against_manifest(tmp_path, tiny_model):
    import weather_restore.cli.evaluate as cli_eval
    weights = save_restorer(tiny_model, tmp_path / "w.safetensors")
    entry = {"id": "tiny-v1", "kind": "restorer", "path": str(weights), "sha256": sha256_file(weights),
             "bytes": weights.stat().st_size}
    m = tmp_path / "manifest.json"
    m.write_text(json.dumps({"schema": 1, "weights": [entry]}))
    for spec in (str(weights), "tiny-v1"):                            # by path or by id
        _, _, info = cli_eval.load_for_scoring(spec, "cpu", m)
        assert info["manifest_id"] == "tiny-v1" and info["sha256"] == entry["sha256"]
    m.write_text(json.dumps({"schema": 1, "weights": [dict(entry, sha256="0" * 64)]}))
    with pytest.raises(WeightsError, match="tiny-v1"):               # same file name, other content
        cli_eval.load_for_scoring(str(weights), "cpu", m)


@pytest.mark.data
@pytest.mark.skipif(not RAIN100L.is_dir(), reason=f"{RAIN100L} not present")
def test_rain100l_input_row_matches_published_numbers():
    row = evaluate_folder(None, RAIN100L, progress=False)["rows"][0]
    assert row["count"] == 100
    assert round(row["y_psnr"], 2) == 26.90                         # as published for Rain100L
    assert round(row["y_ssim"], 3) == 0.838
    assert round(row["rgb_psnr"], 2) == 25.52


@pytest.mark.data
@pytest.mark.skipif(not HSTS.is_dir(), reason=f"{HSTS} not present")
def test_hsts_layout_and_psnr():
    result = evaluate_folder(None, HSTS, progress=False)
    assert result["input_dir"].endswith("hazy") and result["target_dir"].endswith("gt")
    assert result["count"] == 10 and round(result["rows"][0]["y_psnr"], 2) == 16.40


def test_cli_out_refuses_an_image_a_folder_and_foreign_files_before_any_work(tmp_path, monkeypatch):
    """Issue 16: `evaluate --out input/1.png` overwrote an image with JSON; `--out DIR` crashed at the end."""
    import weather_restore.cli.evaluate as cli_eval
    _write_pairs(tmp_path / "data", names=("1.png",))
    image = tmp_path / "data" / "input" / "1.png"
    before = image.read_bytes()
    notes = tmp_path / "notes.json"
    notes.write_text('{"mine": true}\n')

    def no_work(*a, **k):
        raise AssertionError("evaluation started before --out was checked")
    monkeypatch.setattr(cli_eval, "load_for_scoring", no_work)
    monkeypatch.setattr(cli_eval, "evaluate_folder", no_work)
    base = ["evaluate", "--weights", "w.safetensors", "--data", str(tmp_path / "data"), "--out"]
    with pytest.raises(SystemExit, match=r"1.png.*not written by weather-restore.*results.json"):
        main(base + [str(image)])
    assert image.read_bytes() == before
    with pytest.raises(SystemExit, match=r"is a folder"):
        main(base + [str(tmp_path)])
    with pytest.raises(SystemExit, match=r"notes.json.*never replaced"):
        main(base + [str(notes)])
    assert notes.read_text() == '{"mine": true}\n'
    with pytest.raises(SystemExit, match=r"is a file, not a folder"):
        main(base + [str(notes / "res.json")])


def test_cli_replaces_its_own_report_atomically(tmp_path, monkeypatch):
    import weather_restore.imagefiles.image_io as image_io
    _write_pairs(tmp_path / "data", names=("1.png",))
    out = tmp_path / "res.json"
    argv = ["evaluate", "--weights", "none", "--data", str(tmp_path / "data"), "--out", str(out)]
    assert main(argv) == 0 and main(argv) == 0                        # the second run replaces its report
    report = out.read_text()
    assert json.loads(report)["written_by"] == "weather-restore"

    def half_written(self, text):
        Path.write_bytes(self, text[:10].encode())
        raise KeyboardInterrupt
    monkeypatch.setattr(image_io.Path, "write_text", half_written)
    with pytest.raises(KeyboardInterrupt):
        main(argv)
    assert out.read_text() == report and sorted(p.name for p in tmp_path.iterdir()) == ["data", "res.json"]


def test_two_files_of_one_stem_are_refused_not_paired_by_chance(tmp_path):
    _write_pairs(tmp_path, names=("1.png", "2.png"))
    Image.open(tmp_path / "input" / "1.png").save(tmp_path / "input" / "1.jpg")
    with pytest.raises(ValueError, match=r"input/1.jpg and .*input/1.png share the name '1'"):
        match_pairs(*find_layout(tmp_path))
    (tmp_path / "input" / "1.jpg").unlink()
    Image.open(tmp_path / "target" / "1.png").save(tmp_path / "target" / "1.bmp")
    with pytest.raises(ValueError, match=r"target/1.bmp and .*target/1.png share the name '1'"):
        match_pairs(*find_layout(tmp_path))


@pytest.mark.parametrize("ensemble, scale, size, keep", [(False, 1.0, (100, 60), False), (True, 1.0, (100, 60), False),
                                                        (False, 2.0, (160, 136), False), (False, 1.0, (100, 60), True)])
def test_scores_are_those_of_the_restore_commands_output(tmp_path, tiny_model, ensemble, scale, size, keep):
    """The benchmark numbers are what a user gets: each model score equals the score of the file that
    `weather.py restore` writes for the same input, weights, tile, overlap, flip ensemble, weather scale and
    keep-brightness, here with several tiles."""
    pairs = _write_pairs(tmp_path / "data", names=("a.png", "b.png"), size=size, seed=3)
    weights = save_restorer(tiny_model, tmp_path / "tiny.safetensors")
    model = load_restorer(weights)
    result = evaluate_folder(model, tmp_path / "data", tile=64, overlap=16, progress=False, mirror_ensemble=ensemble,
                             weather_scale=scale, keep_brightness=keep)
    assert result["mirror_ensemble"] is ensemble and result["weather_scale"] == scale
    assert result["keep_brightness"] is keep
    assert main(["restore", str(tmp_path / "data" / "input"), "--weights", str(weights), "--tile", "64",
                 "--overlap", "16", "--out", str(tmp_path / "out"), "--device", "cpu", "--weather-scale", str(scale)]
                + (["--mirror-ensemble"] if ensemble else []) + (["--keep-brightness"] if keep else [])) == 0
    for entry in result["images"]:
        written = np.asarray(Image.open(tmp_path / "out" / entry["file"].replace(".png", "_restored.png")))
        assert not np.array_equal(written, pairs[entry["file"]][0])             # it did restore
        assert entry["model"] == score_pair(written, pairs[entry["file"]][1])
