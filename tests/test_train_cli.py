"""`python weather.py train`: config file, stop and --resume, log file and curve (synthesizer replaced
by the in-memory stand-in so the test does not depend on it)."""
import json

import pytest
import torch

from weather_restore.cli.main import main
from weather_restore.training import trainer as trainer_mod
from weather_restore.training.checkpoint import load_checkpoint

import train_helpers as _helpers


@pytest.fixture(autouse=True)
def fake_synth(monkeypatch):
    n = torch.get_num_threads()
    monkeypatch.setattr(trainer_mod, "build_dataset", lambda cfg: _helpers.FakeWeather(n=4, crop=cfg.crop))
    yield
    torch.set_num_threads(n)


def test_train_stop_resume_and_records(tmp_path):
    cfg = tmp_path / "t.json"
    cfg.write_text(json.dumps({"model": "tiny", "crop": 32, "batch": 2, "steps": 4, "warmup": 1, "threads": 1,
                               "log_every": 1, "ckpt_every_steps": 100}))
    out = tmp_path / "run"
    base = ["train", "--config", str(cfg), "--out", str(out), "--no-progress"]
    assert main(base + ["--stop-at", "2"]) == 0
    assert load_checkpoint(out / "last.pt")["step"] == 2
    with pytest.raises(SystemExit, match="--resume"):
        main(base)                                             # would overwrite the run
    assert main(base + ["--resume"]) == 0
    ck = load_checkpoint(out / "last.pt")
    assert ck["step"] == 4 and ck["config"]["name"] == "t"
    log = (out / "train.log").read_text()
    assert "resumed from" in log and "step 4/4" in log
    curve = [json.loads(ln) for ln in (out / "curve.jsonl").read_text().splitlines()]
    assert [r["step"] for r in curve] == [1, 2, 3, 4]
    assert curve[-1]["elapsed_s"] >= curve[0]["elapsed_s"] > 0 and "pixel" in curve[-1]["losses"]


def test_train_refuses_bad_input(tmp_path):
    with pytest.raises(FileNotFoundError, match="known"):
        main(["train", "--config", "no-such-config", "--out", str(tmp_path / "r")])
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"model": "tiny", "loss": {"pixl": 1.0}}))
    with pytest.raises(ValueError, match="pixl"):
        main(["train", "--config", str(bad), "--out", str(tmp_path / "r")])
    ok = tmp_path / "ok.json"
    ok.write_text(json.dumps({"model": "tiny"}))
    with pytest.raises(SystemExit, match="does not exist"):
        main(["train", "--config", str(ok), "--out", str(tmp_path / "r"), "--resume"])


def test_resume_from_a_damaged_checkpoint_is_a_message_naming_file_and_key(tmp_path):
    cfg = tmp_path / "t.json"
    cfg.write_text(json.dumps({"model": "tiny", "crop": 32, "batch": 2, "steps": 2, "warmup": 1, "threads": 1,
                               "ckpt_every_steps": 100}))
    base = ["train", "--config", str(cfg), "--out", str(tmp_path / "run"), "--no-progress"]
    assert main(base + ["--stop-at", "1"]) == 0
    ck = load_checkpoint(tmp_path / "run" / "last.pt")
    lost = sorted(ck["model"])[-1]
    del ck["model"][lost]
    torch.save(ck, tmp_path / "run" / "last.pt")
    with pytest.raises(SystemExit, match=r"train: .*last\.pt") as e:
        main(base + ["--resume"])
    assert lost in str(e.value)
