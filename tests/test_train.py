"""Trainer: overfits a fixed batch; a run killed at any moment resumes to the same parameters."""
import json

import pytest
import torch

from weather_restore.training import checkpoint as ckpt_mod
from weather_restore.training import losses as L_mod
from weather_restore.training.checkpoint import load_checkpoint
from weather_restore.training.trainer import Trainer

import train_helpers as _helpers
FakeWeather, tiny_train_config = _helpers.FakeWeather, _helpers.tiny_train_config



def _params(trainer):
    return {k: v.detach().clone() for k, v in trainer.model.state_dict().items()}


def test_overfits_a_fixed_batch(tmp_path):
    cfg = tiny_train_config(steps=48, batch=2, flips=False, lr=3e-3, warmup=2, ckpt_every_steps=1000,
                            loss={"difficulty_start": 0, "gt_signal_prob": 1.0})
    tr = Trainer(cfg, tmp_path, dataset=FakeWeather(n=2), show_progress=False)
    tr.fit()
    curve = [json.loads(ln) for ln in (tmp_path / "curve.jsonl").read_text().splitlines()]
    first, last = curve[0]["losses"], curve[-1]["losses"]
    assert last["pixel"] < 0.5 * first["pixel"], (first, last)
    assert last["total"] < 0.6 * first["total"], (first, last)
    assert [r["step"] for r in curve] == list(range(1, 49))
    assert (tmp_path / "last.pt").is_file() and load_checkpoint(tmp_path / "last.pt")["step"] == 48


def test_resume_after_a_kill_matches_an_uninterrupted_run(tmp_path, monkeypatch):
    cfg = tiny_train_config(steps=6)
    straight = Trainer(cfg, tmp_path / "a", dataset=FakeWeather(), show_progress=False)
    straight.fit()

    killed = Trainer(tiny_train_config(steps=6), tmp_path / "b", dataset=FakeWeather(), show_progress=False)
    killed.fit(3)                     # checkpoints at step 2, and at 3 when fit returns
    good = (tmp_path / "b" / "last.pt").read_bytes()

    def dies_while_writing(obj, f):   # the process is killed half-way through the next checkpoint
        f.write(b"PK\x03\x04 half a checkpoint")
        raise KeyboardInterrupt("killed")
    with monkeypatch.context() as m, pytest.raises(KeyboardInterrupt):
        m.setattr(ckpt_mod.torch, "save", dies_while_writing)
        killed.fit(4)
    assert (tmp_path / "b" / "last.pt").read_bytes() == good       # the old checkpoint is intact
    assert (tmp_path / "b" / "last.pt.tmp").is_file()               # the torn write went to the temp file

    resumed = Trainer(tiny_train_config(steps=6), tmp_path / "b", dataset=FakeWeather(), show_progress=False)
    resumed.resume()
    assert resumed.step == 3
    resumed.fit()
    a, b = _params(straight), _params(resumed)
    assert all(torch.equal(a[k], b[k]) for k in a), "resumed parameters differ from the uninterrupted run"
    ema_a, ema_b = straight.ema.model.state_dict(), resumed.ema.model.state_dict()
    assert all(torch.equal(ema_a[k], ema_b[k]) for k in ema_a)
    steps = [json.loads(ln)["step"] for ln in (tmp_path / "b" / "curve.jsonl").read_text().splitlines()]
    assert steps == list(range(1, 7))                                # no duplicated curve lines


def test_unreadable_or_foreign_checkpoint_is_refused(tmp_path):
    (tmp_path / "last.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(RuntimeError, match="unreadable"):
        load_checkpoint(tmp_path / "last.pt")
    torch.save({"model": {}}, tmp_path / "other.pt")
    with pytest.raises(RuntimeError, match="missing"):
        load_checkpoint(tmp_path / "other.pt")
    with pytest.raises(FileNotFoundError, match="without --resume"):
        load_checkpoint(tmp_path / "absent.pt")


@pytest.mark.parametrize("native", [True, False])
def test_auto_amp_trains_in_bf16_on_a_cpu_with_native_bf16(tmp_path, monkeypatch, native):
    """"amp": "auto" is bf16 autocast on a CPU that computes bf16 natively (and on CUDA with bf16), fp32
    elsewhere; "off" and "bf16" say so everywhere. Steps in bf16 keep finite float32 losses (psnr, ssim)."""
    from weather_restore.pipeline import precision
    monkeypatch.setattr(precision, "cpu_has_native_bf16", lambda: native)
    tr = Trainer(tiny_train_config(steps=3, loss={"difficulty_start": 0, "psnr": 0.01}), tmp_path / "auto",
                 dataset=FakeWeather(n=2), show_progress=False)
    assert tr.amp == native
    assert not Trainer(tiny_train_config(amp="off"), tmp_path / "off", dataset=FakeWeather(n=2), show_progress=False).amp
    assert Trainer(tiny_train_config(amp="bf16"), tmp_path / "on", dataset=FakeWeather(n=2), show_progress=False).amp
    tr.fit()
    last = json.loads((tmp_path / "auto" / "curve.jsonl").read_text().splitlines()[-1])["losses"]
    assert all(v == v and abs(v) < 1e6 for v in last.values()), last


def test_non_finite_gradients_stop_before_they_reach_the_weights(tmp_path):
    """A finite loss with NaN gradients (a broken kernel) would write NaN into every weight at the
    optimizer step; the trainer stops with the step named and the weights untouched."""
    torch.manual_seed(0)
    tr = Trainer(tiny_train_config(steps=2), tmp_path / "run", dataset=FakeWeather(), show_progress=False)
    before = {k: v.clone() for k, v in tr.model.state_dict().items()}
    tr.model.out.weight.register_hook(lambda g: g * float("nan"))
    with pytest.raises(FloatingPointError, match="gradients are not finite at step 0"):
        tr.fit()
    assert all(torch.equal(before[k], v) for k, v in tr.model.state_dict().items())


def test_step_losses_use_the_labels_and_quality_tiers(tmp_path):
    """One step's parts: the quality term is the cross-entropy of (weathered -> low, clean -> high,
    partly restored -> medium); the heads and SAR attention all receive gradients."""
    cfg = tiny_train_config(loss={"difficulty_start": 0, "quality": 1.0, "quality_fraction": 1.0,
                                  "gt_signal_prob": 0.0, "medium_range": [0.4, 0.4]})
    tr = Trainer(cfg, tmp_path, dataset=FakeWeather(n=2), show_progress=False)
    items = [FakeWeather(n=2)[i] for i in range(2)]
    batch = {k: torch.stack([it[k] for it in items]) for k in ("weathered", "clean", "prior", "density")}
    parts = tr.losses(batch, step=0)
    assert {"pixel", "freq", "ssim", "image", "prior", "density", "quality", "srd", "total"} <= set(parts)
    w, c = batch["weathered"], batch["clean"]
    with torch.no_grad():
        q = torch.cat([tr.model.predict_signals(x).quality_logits for x in (w, c, c + 0.4 * (w - c))])
    expected = torch.nn.functional.cross_entropy(q, torch.tensor([0, 0, 2, 2, 1, 1]))
    assert parts["quality"].item() == pytest.approx(expected.item(), rel=1e-4)
    parts["total"].backward()
    for name in ("quality_head", "prior_head", "density_head", "sar"):
        grads = [p.grad for n, p in tr.model.named_parameters() if n.startswith(name)]
        assert grads and all(g is not None and g.abs().sum() > 0 for g in grads), name


def test_streak_term_joins_the_image_loss_from_the_weathered_batch(tmp_path):
    cfg = tiny_train_config(loss={"difficulty": 0.0, "streak": 0.5, "gt_signal_prob": 1.0})
    tr = Trainer(cfg, tmp_path, dataset=FakeWeather(n=2), show_progress=False)
    items = [FakeWeather(n=2)[i] for i in range(2)]
    batch = {k: torch.stack([it[k] for it in items]) for k in ("weathered", "clean", "prior", "density")}
    parts = tr.losses(batch, step=0)
    y = tr.net(batch["weathered"], batch["prior"].float(), batch["density"].float())["image"]
    want = 0.5 * L_mod.streak_charbonnier(y.float(), batch["clean"], batch["weathered"], 0.02).mean()
    assert parts["streak"].item() == pytest.approx(want.item(), rel=1e-4) and parts["streak"] > 0
    assert parts["image"].item() == pytest.approx(sum(parts[k] for k in ("pixel", "freq", "ssim", "streak")).item(), rel=1e-5)


@pytest.mark.parametrize("teacher", [{"kind": "none"}, {"kind": "clip", "clip": "tiny-random"}])
def test_pluggable_srd_teachers(tmp_path, teacher):
    cfg = tiny_train_config(steps=1, teacher=teacher)
    tr = Trainer(cfg, tmp_path, dataset=FakeWeather(n=2), show_progress=False)
    items = [FakeWeather(n=2)[i] for i in range(2)]
    batch = {k: torch.stack([it[k] for it in items]) for k in ("weathered", "clean", "prior", "density")}
    parts = tr.losses(batch, step=0)
    if teacher["kind"] == "none":
        assert tr.teacher is None and "srd" not in parts
    else:
        target = tr.teacher.targets(batch["clean"], batch["weathered"])
        assert target.shape[:2] == (2, 1) and 0 <= target.min() and target.max() <= 1
        assert torch.isfinite(parts["srd"]) and parts["srd"] > 0


def test_resume_from_a_checkpoint_with_missing_weights_names_the_file_and_keys(tmp_path):
    from weather_restore.models.weights_io import WeightsError
    tr = Trainer(tiny_train_config(steps=2), tmp_path, dataset=FakeWeather(), show_progress=False)
    tr.fit()
    ck = load_checkpoint(tmp_path / "last.pt")
    lost = sorted(ck["model"])[0]
    del ck["model"][lost]
    torch.save(ck, tmp_path / "last.pt")
    again = Trainer(tiny_train_config(steps=2), tmp_path, dataset=FakeWeather(), show_progress=False)
    with pytest.raises(WeightsError, match="last.pt") as e:
        again.resume()
    assert lost in str(e.value)


def test_a_stop_signal_checkpoints_and_resumes(tmp_path):
    """SIGTERM / Ctrl-C: the step in flight finishes, a checkpoint is written, the run resumes there."""
    import os
    import signal
    tr = Trainer(tiny_train_config(steps=6, ckpt_every_steps=100), tmp_path, dataset=FakeWeather(), show_progress=False)
    step = tr.train_step

    def step_then_signal(batch):
        out = step(batch)
        if tr.step == 2:
            os.kill(os.getpid(), signal.SIGTERM)
        return out
    tr.train_step = step_then_signal
    tr.fit()
    assert tr.step == 2 and load_checkpoint(tmp_path / "last.pt")["step"] == 2
    assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL        # handlers restored


def test_evaluation_during_training_goes_to_the_curve(tmp_path):
    import numpy as np
    from PIL import Image
    g = np.random.default_rng(0)
    for sub in ("input", "target"):
        (tmp_path / "pairs" / sub).mkdir(parents=True)
    for i in range(2):
        clean = g.integers(0, 256, (24, 24, 3), dtype=np.uint8)
        Image.fromarray(clean).save(tmp_path / "pairs" / "target" / f"{i}.png")
        Image.fromarray(np.clip(clean.astype(int) + 40, 0, 255).astype(np.uint8)).save(tmp_path / "pairs" / "input" / f"{i}.png")
    cfg = tiny_train_config(steps=2, log_every=100, eval={"folder": str(tmp_path / "pairs"), "every_steps": 2, "tile": 64, "overlap": 16})
    tr = Trainer(cfg, tmp_path / "run", dataset=FakeWeather(), show_progress=False)
    tr.fit()
    lines = [json.loads(ln) for ln in (tmp_path / "run" / "curve.jsonl").read_text().splitlines()]
    ev = [ln["eval"] for ln in lines if "eval" in ln]
    assert len(ev) == 1 and ev[0]["count"] == 2
    assert 0 < ev[0]["model"]["y_psnr"] < 100 and 0 < ev[0]["input"]["y_psnr"] < 100


@pytest.mark.parametrize("perceiver", ["learned", "clip"])
def test_difficulty_weights_come_from_the_quality_perceiver(tmp_path, perceiver, monkeypatch):
    cfg = tiny_train_config(steps=1, teacher={"kind": "none", "clip": "tiny-random"},
                            loss={"difficulty": 1.0, "difficulty_start": 0, "difficulty_perceiver": perceiver,
                                  "gt_signal_prob": 1.0})
    tr = Trainer(cfg, tmp_path, dataset=FakeWeather(n=2), show_progress=False)
    assert (tr.perceiver is not None) == (perceiver == "clip")
    items = [FakeWeather(n=2)[i] for i in range(2)]
    batch = {k: torch.stack([it[k] for it in items]) for k in ("weathered", "clean", "prior", "density")}
    seen = []
    real = L_mod.difficulty_weights
    monkeypatch.setattr(L_mod, "difficulty_weights", lambda s, k: seen.append(s) or real(s, k))
    parts = tr.losses(batch, step=0)
    (score,) = seen
    assert score.shape == (2,) and 0 <= score.min() and score.max() <= 1
    assert torch.isfinite(parts["image"])


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_resume_on_cuda(tmp_path):
    """The checkpoint is loaded with map_location=cuda; its RNG states must go back to the CPU."""
    first = Trainer(tiny_train_config(steps=4), tmp_path, device="cuda", dataset=FakeWeather(), show_progress=False)
    first.fit(2)
    resumed = Trainer(tiny_train_config(steps=4), tmp_path, device="cuda", dataset=FakeWeather(), show_progress=False)
    resumed.resume()
    assert resumed.step == 2
    resumed.fit()
    assert resumed.step == 4 and load_checkpoint(tmp_path / "last.pt")["step"] == 4


def test_config_base_chain_merges_sections_and_replaces_the_rest(tmp_path):
    from weather_restore.training.train_config import load_train_config
    (tmp_path / "a.json").write_text(json.dumps({"lr": 1e-3, "steps": 50, "recipe_weights": {"rain_light": 0.5, "haze": 0.5},
                                                 "loss": {"pixel": 0.7, "ssim": 0.3}}))
    (tmp_path / "b.json").write_text(json.dumps({"base": str(tmp_path / "a.json"), "lr": 2e-4,
                                                 "recipe_weights": {"haze": 1.0}, "loss": {"psnr": 0.01}}))
    (tmp_path / "c.json").write_text(json.dumps({"base": str(tmp_path / "b.json"), "steps": 7}))
    c = load_train_config(tmp_path / "c.json")
    assert (c.name, c.lr, c.steps) == ("c", 2e-4, 7)
    assert c.recipe_weights == {"haze": 1.0}                       # replaced whole, not merged
    assert (c.loss["pixel"], c.loss["ssim"], c.loss["psnr"], c.loss["freq"]) == (0.7, 0.3, 0.01, 0.05)
    (tmp_path / "a.json").write_text(json.dumps({"base": str(tmp_path / "c.json")}))
    with pytest.raises(ValueError, match="loop"):
        load_train_config(tmp_path / "c.json")
    (tmp_path / "d.json").write_text(json.dumps({"base": "no_such_config"}))
    with pytest.raises(FileNotFoundError, match="no_such_config"):
        load_train_config(tmp_path / "d.json")


def test_stage_configs_resolve_through_their_bases():
    from weather_restore.training.train_config import load_train_config
    low = load_train_config("s_psnr_lowlr")                        # -> s_psnr_ft -> s_rain_ft2
    assert (low.name, low.lr, low.steps, low.init_weights) == ("s_psnr_lowlr", 4e-5, 1600, "weights/weather_s_v2.safetensors")
    assert low.loss["psnr"] == 0.01 and low.recipe_weights["rain_light"] == 0.6 and low.eval["every_steps"] == 400
    own = load_train_config("s_own_density")                       # -> s_rain_ft2, restores with its own map
    assert (own.loss["gt_signal_prob"], own.ema_warmup, own.lr, own.init_weights) == \
        (0.0, False, 1e-4, "weights/weather_s_v2.safetensors")
    assert own.recipe_weights == load_train_config("s_rain_ft2").recipe_weights


def test_srd_runs_every_k_steps_and_a_bad_k_is_refused(tmp_path):
    """loss.srd_every k: the teacher's encoder pass and the SRD term on steps 0, k, 2k ... only."""
    cfg = tiny_train_config(loss={"srd_every": 3, "difficulty": 0.0})
    tr = Trainer(cfg, tmp_path, dataset=FakeWeather(n=2), show_progress=False)
    items = [FakeWeather(n=2)[i] for i in range(2)]
    batch = {k: torch.stack([it[k] for it in items]) for k in ("weathered", "clean", "prior", "density")}
    calls = []
    real = tr.teacher.targets
    tr.teacher.targets = lambda c, w: calls.append(1) or real(c, w)
    has = [("srd" in tr.losses(batch, step=s)) for s in range(7)]
    assert has == [True, False, False, True, False, False, True] and len(calls) == 3
    for bad in (0, 1.5):
        with pytest.raises(ValueError, match="srd_every"):
            tiny_train_config(loss={"srd_every": bad})


def test_mirror_teacher_is_the_restore_commands_mirror_ensemble(tmp_path):
    """The distillation target is what `restore --mirror-ensemble` returns for the crop (one tile)."""
    from weather_restore.models import WeatherRestorer, load_config
    from weather_restore.models.tiling import restore_image
    from weather_restore.models.weights_io import save_restorer
    from weather_restore.training.teachers import MirrorEnsembleTeacher
    torch.manual_seed(0)
    model = WeatherRestorer(load_config("tiny")).eval()
    with torch.no_grad():
        model.out.weight.normal_(0, 0.2)          # a restorer whose two views differ visibly
    path = save_restorer(model, tmp_path / "teacher.safetensors")
    x = torch.rand(2, 3, 40, 56)
    got = MirrorEnsembleTeacher(path, "cpu")(x)
    want = restore_image(model, x, mirror_ensemble=True)
    plain = restore_image(model, x)
    assert got.dtype == torch.float32 and got.shape == x.shape
    assert torch.allclose(got, want, atol=1e-5)
    assert (got - plain).abs().max() > 1e-3      # the second view changes it


def test_mirror_distill_term_pulls_towards_the_teacher(tmp_path):
    from weather_restore.models import WeatherRestorer, load_config
    from weather_restore.models.weights_io import save_restorer
    torch.manual_seed(1)
    path = save_restorer(WeatherRestorer(load_config("tiny")), tmp_path / "teacher.safetensors")
    cfg = tiny_train_config(loss={"difficulty": 0.0, "gt_signal_prob": 1.0, "mirror_distill": 0.7,
                                  "mirror_teacher": str(path)})
    tr = Trainer(cfg, tmp_path / "run", dataset=FakeWeather(n=2), show_progress=False)
    items = [FakeWeather(n=2)[i] for i in range(2)]
    batch = {k: torch.stack([it[k] for it in items]) for k in ("weathered", "clean", "prior", "density")}
    parts = tr.losses(batch, step=0)
    y = tr.net(batch["weathered"], batch["prior"].float(), batch["density"].float())["image"]
    want = 0.7 * L_mod.charbonnier(y.float(), tr.mirror_teacher(batch["weathered"])).mean()
    assert parts["mirror_distill"].item() == pytest.approx(want.item(), rel=1e-4) and parts["mirror_distill"] > 0
    assert parts["image"].item() == pytest.approx(
        sum(parts[k] for k in ("pixel", "freq", "ssim", "mirror_distill")).item(), rel=1e-5)
    assert Trainer(tiny_train_config(), tmp_path / "plain", dataset=FakeWeather(n=2),
                   show_progress=False).mirror_teacher is None
    with pytest.raises(ValueError, match="mirror_teacher"):
        tiny_train_config(loss={"mirror_distill": 1.0})
