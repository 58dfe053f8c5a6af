"""Export round trip: checkpoint -> .safetensors (EMA weights, config in metadata) -> load ->
evaluate, and the manifest entry (sha256, bytes, config, training data, scores)."""
import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from weather_restore.evaluation.evaluate import evaluate_folder
from weather_restore.hub.manifest import find_entry, verify_file
from weather_restore.models.weights_io import load_restorer, read_metadata
from weather_restore.training import export as E
from weather_restore.training.trainer import Trainer

import train_helpers as _helpers



@pytest.fixture
def checkpoint(tmp_path):
    tr = Trainer(_helpers.tiny_train_config(steps=3, ema_decay=0.5), tmp_path / "run",
                 dataset=_helpers.FakeWeather(), show_progress=False)
    tr.fit()
    return tmp_path / "run" / "last.pt", tr


def _paired_folder(root: Path, n: int = 2) -> Path:
    g = np.random.default_rng(0)
    for sub in ("input", "target"):
        (root / sub).mkdir(parents=True)
    for i in range(n):
        clean = g.integers(0, 256, (20, 28, 3), dtype=np.uint8)
        rain = np.clip(clean.astype(int) + g.integers(0, 60, (20, 28, 3)), 0, 255).astype(np.uint8)
        Image.fromarray(clean).save(root / "target" / f"{i}.png")
        Image.fromarray(rain).save(root / "input" / f"{i}.png")
    return root


def test_export_load_evaluate_round_trip(checkpoint, tmp_path):
    ckpt_path, trainer = checkpoint
    out = tmp_path / "w" / "weather-tiny-test.safetensors"
    path, model, ck = E.export_checkpoint(ckpt_path, out, "weather-tiny-test")
    loaded = load_restorer(path)
    ema_state, raw_state = trainer.ema.model.state_dict(), trainer.model.state_dict()
    assert all(torch.equal(v, ema_state[k]) for k, v in loaded.state_dict().items())
    assert any(not torch.equal(v, raw_state[k]) for k, v in loaded.state_dict().items())   # EMA, not raw
    meta = read_metadata(path)
    assert meta["id"] == "weather-tiny-test" and json.loads(meta["training"])["steps"] == 3

    folder = _paired_folder(tmp_path / "pairs")
    scores = E.measure_scores(loaded, {"toy": str(folder)}, tile=64, overlap=16, progress=False)
    direct = evaluate_folder(loaded, folder, tile=64, overlap=16, progress=False)
    assert scores["toy"]["count"] == 2
    assert scores["toy"]["model"]["y_psnr"] == pytest.approx(direct["rows"][1]["y_psnr"], abs=1e-4)
    assert scores["toy"]["input"]["y_psnr"] == pytest.approx(direct["rows"][0]["y_psnr"], abs=1e-4)

    entry = E.manifest_entry(path, "weather-tiny-test", loaded, ck, scores)
    assert entry["kind"] == "restorer" and entry["bytes"] == path.stat().st_size and len(entry["sha256"]) == 64
    assert entry["config"]["name"] == "tiny" and entry["trained_on"]["steps"] == 3
    assert entry["trained_on"]["teacher"] == "ema" and entry["scores"]["toy"]["count"] == 2
    verify_file(path, entry)                                   # the entry vouches for the file

    manifest = tmp_path / "manifest.json"
    manifest.write_text(json.dumps({"schema": 1, "weights": [{"id": "other", "kind": "clip"}]}))
    E.write_manifest_entry(entry, manifest)
    E.write_manifest_entry({**entry, "notes": "second export"}, manifest)   # same id: replaced
    ids = [e["id"] for e in json.loads(manifest.read_text())["weights"]]
    assert ids == ["other", "weather-tiny-test"]
    assert find_entry("weather-tiny-test", manifest)["notes"] == "second export"


def test_export_command_prints_the_entry(checkpoint, tmp_path, capsys):
    from weather_restore.cli.main import main
    ckpt_path, _ = checkpoint
    out = tmp_path / "x.safetensors"
    manifest = tmp_path / "m.json"
    old = {"id": "old", "kind": "restorer", "default": True}
    clip = {"id": "c", "kind": "clip", "default": True}
    manifest.write_text(json.dumps({"schema": 1, "weights": [old, clip]}))
    folder = _paired_folder(tmp_path / "pairs")
    rc = main(["export", "--checkpoint", str(ckpt_path), "--out", str(out), "--id", "t1", "--raw",
               "--eval", f"toy={folder}", "--eval-clean", f"clean={folder / 'target'}", "--tile", "64",
               "--overlap", "16", "--device", "cpu", "--write-manifest", "--default", "--manifest", str(manifest),
               "--entry-out", str(tmp_path / "e.json")])
    assert rc == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed == json.loads((tmp_path / "e.json").read_text())
    assert printed["trained_on"]["weights"] == "raw" and printed["scores"]["toy"]["count"] == 2
    written = {e["id"]: e for e in json.loads(manifest.read_text())["weights"]}
    assert written["t1"]["sha256"] == printed["sha256"] and written["t1"]["default"] is True
    assert "default" not in written["old"] and written["c"]["default"] is True   # only restorers change
    clean = printed["scores"]["clean"]
    assert clean["count"] == 2 and "input" not in clean
    direct = evaluate_folder(load_restorer(out), None, input_dir=folder / "target", target_dir=folder / "target",
                             tile=64, overlap=16, progress=False)
    assert clean["model"]["y_psnr"] == pytest.approx(direct["rows"][1]["y_psnr"], abs=1e-4)


def test_export_blends_with_a_weights_file_of_the_same_network(checkpoint, tmp_path, capsys):
    from weather_restore.cli.main import main
    from weather_restore.models import WeatherRestorer, load_config
    from weather_restore.models.weights_io import save_restorer
    ckpt_path, trainer = checkpoint
    torch.manual_seed(3)
    other = save_restorer(WeatherRestorer(load_config("tiny")).eval(), tmp_path / "other.safetensors")
    out = tmp_path / "blend.safetensors"
    assert main(["export", "--checkpoint", str(ckpt_path), "--out", str(out), "--id", "b",
                 "--blend", f"{other}=0.25"]) == 0
    entry = json.loads(capsys.readouterr().out)
    assert entry["trained_on"]["blended_with"] == [{"weights": str(other), "share": 0.25}]
    got, ema, theirs = (m.state_dict() for m in (load_restorer(out), trainer.ema.model, load_restorer(other)))
    for k, v in got.items():
        assert torch.allclose(v, 0.75 * ema[k] + 0.25 * theirs[k], atol=1e-6), k
    assert any(not torch.allclose(ema[k], theirs[k]) for k in got)            # the blend moved the weights
    import dataclasses
    small = WeatherRestorer(dataclasses.replace(load_config("tiny"), dims=[16, 48]))
    with pytest.raises(SystemExit, match="another config"):
        main(["export", "--checkpoint", str(ckpt_path), "--out", str(tmp_path / "x.safetensors"), "--id", "x",
              "--blend", f"{save_restorer(small, tmp_path / 'small.safetensors')}=0.5"])
    for bad in (f"{other}=1", f"{other}=half", str(other)):
        with pytest.raises(SystemExit):
            main(["export", "--checkpoint", str(ckpt_path), "--out", str(tmp_path / "y.safetensors"), "--id", "y",
                  "--blend", bad])
    assert "SHARE between 0 and 1" in capsys.readouterr().err


def test_export_soups_several_weights_files(checkpoint, tmp_path, capsys):
    """--blend repeated: a uniform soup of the checkpoint and two files; shares that leave it nothing are refused."""
    from weather_restore.cli.main import main
    from weather_restore.models import WeatherRestorer, load_config
    from weather_restore.models.weights_io import save_restorer
    ckpt_path, trainer = checkpoint
    files = []
    for seed in (3, 4):
        torch.manual_seed(seed)
        files.append(save_restorer(WeatherRestorer(load_config("tiny")).eval(), tmp_path / f"o{seed}.safetensors"))
    out = tmp_path / "soup.safetensors"
    assert main(["export", "--checkpoint", str(ckpt_path), "--out", str(out), "--id", "s",
                 "--blend", f"{files[0]}=0.25", "--blend", f"{files[1]}=0.5"]) == 0
    entry = json.loads(capsys.readouterr().out)
    assert entry["trained_on"]["blended_with"] == [{"weights": str(files[0]), "share": 0.25},
                                                   {"weights": str(files[1]), "share": 0.5}]
    got, ema = load_restorer(out).state_dict(), trainer.ema.model.state_dict()
    a, b = (load_restorer(f).state_dict() for f in files)
    for k, v in got.items():
        if v.is_floating_point():
            assert torch.allclose(v, 0.25 * ema[k] + 0.25 * a[k] + 0.5 * b[k], atol=1e-6), k
    with pytest.raises(SystemExit, match="sum to 1"):
        main(["export", "--checkpoint", str(ckpt_path), "--out", str(tmp_path / "z.safetensors"), "--id", "z",
              "--blend", f"{files[0]}=0.5", "--blend", f"{files[1]}=0.5"])
    assert not (tmp_path / "z.safetensors").exists()


def test_export_default_needs_write_manifest(tmp_path):
    from weather_restore.cli.main import main
    with pytest.raises(SystemExit, match="--default only applies with --write-manifest"):   # before any work
        main(["export", "--checkpoint", str(tmp_path / "never_read.pt"), "--out", str(tmp_path / "x.safetensors"),
              "--id", "t", "--default"])
    assert not (tmp_path / "x.safetensors").exists()


def test_export_refuses_a_bad_checkpoint(tmp_path):
    bad = tmp_path / "bad.pt"
    bad.write_bytes(b"nope")
    with pytest.raises(RuntimeError, match="unreadable"):
        E.export_checkpoint(bad, tmp_path / "x.safetensors", "x")


def test_blend_keeps_a_density_refiner_the_other_network_lacks(tmp_path):
    import dataclasses
    from weather_restore.models import WeatherRestorer, load_config
    from weather_restore.models.weights_io import WeightsError, save_restorer
    from weather_restore.training.export import blend_weights
    plain_cfg = load_config("tiny")
    refined_cfg = dataclasses.replace(plain_cfg, name="tiny_dr", density_refine=8, density_refine_blocks=2,
                                      density_refine_scale=2)
    torch.manual_seed(5)
    plain = WeatherRestorer(plain_cfg).eval()
    refined = WeatherRestorer(refined_cfg).eval()
    with torch.no_grad():
        for v in refined.density_refiner.parameters():
            v.normal_()
    before = {k: v.clone() for k, v in refined.state_dict().items()}
    plain_file = save_restorer(plain, tmp_path / "plain.safetensors")
    blend_weights(refined, [(plain_file, 0.25)])
    theirs, got = plain.state_dict(), refined.state_dict()
    shared = [k for k in got if not k.startswith("density_refiner.")]
    assert len(shared) == len(theirs)
    for k in shared:
        if got[k].is_floating_point():
            assert torch.allclose(got[k], 0.75 * before[k] + 0.25 * theirs[k], atol=1e-6), k
    for k in got:
        if k.startswith("density_refiner."):
            assert torch.equal(got[k], before[k]), k                     # the refiner stays the checkpoint's
    assert any(not torch.allclose(got[k], before[k]) for k in shared)
    # the other way round (the file has a refiner, the network does not) is refused
    with pytest.raises(WeightsError, match="another config"):
        blend_weights(WeatherRestorer(plain_cfg), [(save_restorer(refined, tmp_path / "refined.safetensors"), 0.5)])
