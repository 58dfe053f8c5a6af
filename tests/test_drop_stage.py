"""The raindrop stage: the module, its config field, the gate the pipeline runs it under, its training
(resumable, deterministic, drop samples towards the clean crop and the rest towards their input) and
its export onto a network."""
import dataclasses
import json

import numpy as np
import pytest
import torch
from PIL import Image

from weather_restore.models import WeatherRestorer, load_config
from weather_restore.models.config import RestorerConfig
from weather_restore.models.drop_stage import DropStage
from weather_restore.models import tiling
from weather_restore.models.tiling import drop_gate, remove_drops, restore_image
from weather_restore.models.weights_io import WeightsError, load_restorer, save_restorer
from weather_restore.training import drop_stage as T
from weather_restore.training import export as E

import train_helpers as _helpers


def _staged(dims=(4, 8), seed=0):
    torch.manual_seed(seed)
    model = WeatherRestorer(dataclasses.replace(load_config("tiny"), drop_stage=list(dims))).eval()
    with torch.no_grad():
        model.drop_stage.out.weight.normal_(0, 0.2)          # a stage that changes something
    return model


def test_a_new_stage_is_close_to_the_identity_at_odd_sizes():
    torch.manual_seed(0)
    stage = DropStage((4, 8, 8))
    assert stage.stride == 4
    x = torch.rand(2, 3, 37, 53)
    r = stage.residual(x)
    assert r.shape == x.shape and torch.equal(stage(x), x + r)
    assert 0 < r.abs().mean() < 0.02


def test_config_field_is_checked_and_left_out_of_the_json_when_absent():
    plain = load_config("tiny")
    assert plain.drop_stage is None and "drop_stage" not in plain.to_json()
    staged = dataclasses.replace(plain, drop_stage=[8, 16])
    assert RestorerConfig.from_json(staged.to_json()).drop_stage == [8, 16]
    for bad in ([8], [8, 16, 16, 16, 16, 16, 16], [0, 8], ["8", 16], 8, [8, 4096]):
        with pytest.raises(ValueError, match="drop_stage"):
            dataclasses.replace(plain, drop_stage=bad)


def test_gate_follows_the_raindrops_column():
    p = torch.zeros(4, 4)
    p[:, 1] = torch.tensor([0.0, 0.5, 0.625, 0.9])
    p[0, 0] = 1.0                                            # rain alone does not open it
    assert torch.allclose(drop_gate(p), torch.tensor([0.0, 0.0, 0.5, 1.0]))


def test_restore_runs_the_stage_only_where_the_prior_reads_drops():
    staged = _staged()
    plain = WeatherRestorer(load_config("tiny")).eval()
    plain.load_state_dict({k: v for k, v in staged.state_dict().items() if not k.startswith("drop_stage.")})
    x = torch.rand(3, 3, 40, 56)
    p = torch.zeros(3, 4)
    p[1, 1], p[2, 1] = 1.0, 0.625
    d = torch.zeros(3, 1, 40, 56)
    y, y_plain = restore_image(staged, x, prior=p, density=d), restore_image(plain, x, prior=p, density=d)
    assert torch.equal(y[0], y_plain[0])                     # no drops read: exactly the network without it
    full, half = (y[1] - y_plain[1]).abs().mean(), (y[2] - y_plain[2]).abs().mean()
    assert full > 1e-3 and half > 1e-4
    # what the body was given: the input with the stage's change, weighted by the gate
    dropless = remove_drops(staged, x, p)
    change = staged.drop_stage.residual(x[1:2])[0]
    assert torch.allclose(dropless[1], (x[1] + change).clamp(0, 1), atol=1e-6)
    assert torch.equal(dropless[0], x[0])


def test_one_tile_without_signals_runs_the_network_once_unless_it_reads_drops(monkeypatch):
    staged = _staged()
    plain = WeatherRestorer(load_config("tiny")).eval()
    plain.load_state_dict({k: v for k, v in staged.state_dict().items() if not k.startswith("drop_stage.")})
    x = torch.rand(2, 3, 40, 56)
    calls = []
    real_encode = staged.encode
    staged.encode = lambda *a, **k: calls.append(1) or real_encode(*a, **k)
    monkeypatch.setattr(tiling, "DROP_GATE", (2.0, 3.0))                # no reading opens it
    assert torch.equal(restore_image(staged, x), restore_image(plain, x)) and len(calls) == 2   # once per item
    monkeypatch.setattr(tiling, "DROP_GATE", (-1.0, 0.0))               # every reading opens it fully
    calls.clear()
    y = restore_image(staged, x)
    assert len(calls) == 4                                             # the call, then the tile again
    with torch.no_grad():
        o = staged(x)                                                  # the signals of that call
        want = staged.restore(remove_drops(staged, x, o.prior), o.prior, o.density).clamp(0, 1)
    assert torch.allclose(y, want, atol=1e-6) and not torch.allclose(y, restore_image(plain, x), atol=1e-3)


def test_stage_tiles_agree_with_the_whole_image():
    staged = _staged()
    x = torch.rand(1, 3, 72, 100)
    p = torch.tensor([[0.0, 1.0, 0.0, 0.0]])
    whole = remove_drops(staged, x, p)
    assert len(tiling.plan_tiles(72, 100, 48, 24, align=staged.drop_stage.stride)) > 1
    tiled = remove_drops(staged, x, p, tile=48, overlap=24)
    assert (tiled - whole).abs().max() < 2e-2 and not torch.equal(tiled, x)
    # restore_image hands its tile to the stage: a tiled restore sees the tiled stage's output
    seen = []
    real = staged.drop_stage.residual
    staged.drop_stage.residual = lambda crop: seen.append(tuple(crop.shape[-2:])) or real(crop)
    restore_image(staged, x, prior=p, density=torch.zeros(1, 1, 72, 100), tile=48, overlap=24)
    assert len(seen) > 1 and max(max(s) for s in seen) <= 48


def test_weights_round_trip_with_a_stage(tmp_path):
    staged = _staged()
    path = save_restorer(staged, tmp_path / "s.safetensors")
    back = load_restorer(path)
    assert back.cfg.drop_stage == [4, 8]
    for k, v in staged.state_dict().items():
        assert torch.equal(back.state_dict()[k], v), k


def _photos(root, n=3, size=48):
    g = np.random.default_rng(1)
    for folder in ("a", "kodak24"):
        (root / folder).mkdir(parents=True)
        for i in range(n):
            Image.fromarray(g.integers(0, 256, (size, size + 8, 3), dtype=np.uint8)).save(root / folder / f"{i}.png")
    return root


def _cfg(root, **kw):
    return T.DropStageConfig(data_root=str(root), dims=(4, 8), batch=4, crop=32, save_every=1, eval_every=2,
                             warmup=1, **kw)


def test_training_photos_leave_the_held_out_folders_out(tmp_path):
    photos = T.training_photos(str(_photos(tmp_path / "p")))
    assert len(photos) == 3 and all("kodak24" not in p.parts for p in photos)
    with pytest.raises(FileNotFoundError, match="no training photos"):
        T.training_photos(str(tmp_path / "p" / "kodak24"))


def test_drop_samples_aim_at_the_clean_crop_and_the_rest_at_their_input(tmp_path):
    root = _photos(tmp_path / "p")
    photos = T.training_photos(str(root))
    cfg = _cfg(root, drop_share=0.5, seed=3)
    x, t = T.draw_batch(photos, cfg, step=0)
    x2, t2 = T.draw_batch(photos, cfg, step=0)
    assert torch.equal(x, x2) and torch.equal(t, t2)         # the same (seed, step), the same batch
    assert x.shape == t.shape == (4, 3, 32, 32)
    same = [bool(torch.equal(a, b)) for a, b in zip(x, t)]
    drops = np.random.default_rng([3, 0])
    # the draws of draw_batch, in its order: photo, crop corner and flip per sample, then the drop coin
    for _ in range(4):
        drops.integers(3), drops.integers(0, 17), drops.integers(0, 25), drops.random()
    is_drop = drops.random(4) < 0.5
    assert same == [not d for d in is_drop] and any(is_drop) and not all(is_drop)


def test_training_resumes_exactly_and_the_export_attaches_the_stage(tmp_path, monkeypatch):
    tuned = []
    monkeypatch.setattr(T, "tune_cpu_allocator_for_training", lambda: tuned.append(1))   # not this test process
    root = _photos(tmp_path / "p")
    scores = []
    evaluate = lambda stage: scores.append(1) or {"n": len(scores)}    # noqa: E731
    logs = []
    T.train_drop_stage(_cfg(root, steps=4), tmp_path / "a", evaluate=evaluate, log=logs.append, stop_at=2)
    T.train_drop_stage(_cfg(root, steps=4), tmp_path / "a", evaluate=evaluate, log=logs.append)
    assert "resumed at step 2" in logs and len(tuned) == 2                # on the CPU, every run
    straight = T.train_drop_stage(_cfg(root, steps=4), tmp_path / "b", log=lambda m: None)
    a = torch.load(tmp_path / "a" / "last.pt", weights_only=True)
    assert a["step"] == 4
    for k, v in straight.state_dict().items():
        assert torch.allclose(a["ema"][k], v, atol=1e-6), k          # resumed == straight through
    curve = [json.loads(line) for line in (tmp_path / "a" / "curve.jsonl").read_text().splitlines()]
    assert [c["step"] for c in curve] == [2, 4] and 0 < curve[0]["elapsed_s"] < curve[1]["elapsed_s"]
    assert curve[1]["n"] == 2
    torch.manual_seed(0)
    start = DropStage((4, 8)).state_dict()                    # the stage before training (cfg.seed 0)
    assert all(torch.equal(start[k], v) for k, v in a["ema"].items()) is False

    from weather_restore.training.trainer import Trainer
    Trainer(_helpers.tiny_train_config(steps=1), tmp_path / "run", dataset=_helpers.FakeWeather(),
            show_progress=False).fit()
    path, model, ck = E.export_checkpoint(tmp_path / "run" / "last.pt", tmp_path / "w.safetensors", "t",
                                          drop_stage=tmp_path / "a" / "last.pt")
    back = load_restorer(path)
    assert back.cfg.drop_stage == [4, 8] and ck["drop_stage"]["steps"] == 4
    assert back.cfg.name == f"{load_config('tiny').name}+drops"
    for k, v in a["ema"].items():
        assert torch.equal(back.state_dict()[f"drop_stage.{k}"], v), k
    assert E.training_summary(ck)["drop_stage"]["dims"] == [4, 8] and ck["drop_stage"]["weights"] == "EMA"
    raw, stage = E.attach_drop_stage(model, tmp_path / "a" / "last.pt", ema=False)
    assert stage["weights"] == "raw"
    for k, v in a["stage"].items():
        assert torch.equal(raw.state_dict()[f"drop_stage.{k}"], v), k
    from weather_restore.cli.main import main
    with pytest.raises(SystemExit, match="only applies with --drop-stage"):
        main(["export", "--checkpoint", str(tmp_path / "run" / "last.pt"), "--out", str(tmp_path / "r.safetensors"),
              "--id", "r", "--drop-stage-raw"])
    assert main(["export", "--checkpoint", str(tmp_path / "run" / "last.pt"), "--out", str(tmp_path / "r.safetensors"),
                 "--id", "r", "--drop-stage", str(tmp_path / "a" / "last.pt"), "--drop-stage-raw"]) == 0
    assert load_restorer(tmp_path / "r.safetensors").cfg.drop_stage == [4, 8]
    with pytest.raises(FileNotFoundError):
        E.attach_drop_stage(model, tmp_path / "missing.pt")
    (tmp_path / "junk.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(WeightsError, match="not a readable checkpoint"):
        E.attach_drop_stage(model, tmp_path / "junk.pt")


def test_a_new_run_starts_from_another_runs_stage_and_a_resumed_one_ignores_it(tmp_path, monkeypatch):
    monkeypatch.setattr(T, "tune_cpu_allocator_for_training", lambda: None)
    root = _photos(tmp_path / "p")
    T.train_drop_stage(_cfg(root, steps=2, amp="off"), tmp_path / "a", log=lambda m: None)
    first = torch.load(tmp_path / "a" / "last.pt", weights_only=True)["stage"]
    logs = []
    start = T.train_drop_stage(_cfg(root, steps=4, init=str(tmp_path / "a" / "last.pt")), tmp_path / "b",
                               log=logs.append, stop_at=0)
    assert logs == [f"started from {tmp_path / 'a' / 'last.pt'}"]
    for k, v in first.items():
        assert torch.equal(start.state_dict()[k], v), k                # the raw stage, as EMA and as stage
    T.train_drop_stage(_cfg(root, steps=4, init=str(tmp_path / "a" / "last.pt"), amp="bf16"), tmp_path / "b",
                       log=logs.append, stop_at=2)
    b = torch.load(tmp_path / "b" / "last.pt", weights_only=True)
    assert b["step"] == 2 and not torch.equal(b["stage"]["out.weight"], first["out.weight"])
    assert all(torch.isfinite(v).all() for v in b["stage"].values())      # bf16 autocast trains
    # a run with its own last.pt resumes it and never reads --init (here a file that is gone)
    logs.clear()
    T.train_drop_stage(_cfg(root, steps=4, init=str(tmp_path / "gone.pt")), tmp_path / "b", log=logs.append)
    assert logs[0] == "resumed at step 2"
    with pytest.raises(FileNotFoundError, match="gone.pt"):
        T.train_drop_stage(_cfg(root, steps=4, init=str(tmp_path / "gone.pt")), tmp_path / "c", log=logs.append)
    with pytest.raises(ValueError, match="amp must be"):
        _cfg(root, amp="fp8")
    with pytest.raises(ValueError, match="drop_share"):
        _cfg(root, drop_share=1.5)


def test_a_new_run_starts_from_the_stage_inside_a_networks_file(tmp_path, monkeypatch):
    monkeypatch.setattr(T, "tune_cpu_allocator_for_training", lambda: None)
    root = _photos(tmp_path / "p")
    staged = save_restorer(_staged(), tmp_path / "staged.safetensors")
    start = T.train_drop_stage(_cfg(root, steps=2, init=str(staged)), tmp_path / "a", log=lambda m: None, stop_at=0)
    for k, v in _staged().drop_stage.state_dict().items():
        assert torch.equal(start.state_dict()[k], v), k
    plain = save_restorer(WeatherRestorer(load_config("tiny")), tmp_path / "plain.safetensors")
    with pytest.raises(WeightsError, match="has no raindrop stage"):
        T.train_drop_stage(_cfg(root, steps=2, init=str(plain)), tmp_path / "b", log=lambda m: None)
    with pytest.raises(WeightsError, match=r"does not fit dims \[4, 16\]"):
        T.train_drop_stage(dataclasses.replace(_cfg(root, steps=2, init=str(staged)), dims=(4, 16)), tmp_path / "c",
                           log=lambda m: None)


def test_blend_keeps_the_stage_the_other_network_lacks(tmp_path):
    staged = _staged()
    before = {k: v.clone() for k, v in staged.state_dict().items()}
    plain = WeatherRestorer(load_config("tiny")).eval()
    E.blend_weights(staged, [(save_restorer(plain, tmp_path / "plain.safetensors"), 0.5)])
    got = staged.state_dict()
    for k in got:
        if k.startswith("drop_stage."):
            assert torch.equal(got[k], before[k]), k
    assert any(not torch.equal(got[k], before[k]) for k in got if not k.startswith("drop_stage."))
