"""scripts/stitch_curve.py: a stage's curve continues the total step and time of the curve before it."""
import json
from pathlib import Path

import pytest
from scripts_loader import load_script


def _module():
    return load_script("stitch_curve")


def _write(path: Path, lines):
    path.write_text("".join(json.dumps(ln) + "\n" for ln in lines))


def test_stages_continue_the_total_step_and_time(tmp_path):
    S = _module()
    _write(tmp_path / "a.jsonl", [{"step": 20, "elapsed_s": 30.0, "lr": 1e-3}, {"step": 40, "elapsed_s": 61.5}])
    _write(tmp_path / "b.jsonl", [{"step": 20, "elapsed_s": 40.0, "eval": {"model": {"y_psnr": 30.1}}}])
    S.main("-", str(tmp_path / "a.jsonl"), "first", str(tmp_path / "ab0.jsonl"))
    S.main(str(tmp_path / "ab0.jsonl"), str(tmp_path / "b.jsonl"), "second", str(tmp_path / "ab.jsonl"))
    lines = [json.loads(ln) for ln in (tmp_path / "ab.jsonl").read_text().splitlines()]
    assert [ln["stage"] for ln in lines] == ["first", "first", "second"]
    assert [ln["total_step"] for ln in lines] == [20, 40, 60]
    assert lines[-1]["total_elapsed_s"] == pytest.approx(101.5)
    assert lines[-1]["stage_step"] == 20 and lines[-1]["eval"]["model"]["y_psnr"] == 30.1
    assert "step" not in lines[0] and lines[0]["lr"] == 1e-3


def test_refuses_to_overwrite(tmp_path):
    S = _module()
    _write(tmp_path / "a.jsonl", [{"step": 1, "elapsed_s": 1.0}])
    with pytest.raises(SystemExit, match="exists"):
        S.main("-", str(tmp_path / "a.jsonl"), "x", str(tmp_path / "a.jsonl"))
