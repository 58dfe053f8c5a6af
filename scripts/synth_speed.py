"""Crops per second of the training data path, numpy synthesizer (weathered crops from the
DataLoader) against the torch one (clean crops from the DataLoader, weather on the device), and
optionally whole training steps per second of a train config with each.

    .venv/bin/python scripts/synth_speed.py                       # data path, batch 4, 128 px, 2 threads
    .venv/bin/python scripts/synth_speed.py --train s --steps 12  # + training steps/s of config s
    .venv/bin/python scripts/synth_speed.py --train m_near --batch 8 --synth torch --amp off,bf16  # fp32 vs bf16
    .venv/bin/python scripts/synth_speed.py --device cuda --batch 32 --crop 256
    .venv/bin/python scripts/synth_speed.py --train m --synth torch --batch 8 --amp bf16 \
        --loss '{"srd_every": 1};{"srd_every": 4}' --rounds 3     # loss settings timed in turn

Photos come from ../shared/data/train/clean (as the train configs); the first batches are warm-up
(photo decoding fills the cache in both paths alike) and are not timed.
"""
import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
import weather  # noqa: E402

weather.load_pack()
from weather_restore.training.data import EpochView, StepBatchSampler  # noqa: E402
from weather_restore.training.synth import SyntheticWeatherDataset  # noqa: E402
from weather_restore.training.synth_torch import CleanCrops, TorchWeather  # noqa: E402

DATA = ROOT.parent / "shared" / "data" / "train" / "clean"


def _sync(device):
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def data_path(kind: str, batch: int, crop: int, batches: int, warmup: int, device) -> float:
    """Crops/s of `batches` batches (after `warmup`) of the numpy or torch data path."""
    cls = SyntheticWeatherDataset if kind == "numpy" else CleanCrops
    ds = EpochView(cls([DATA], crop=crop, seed=0), seed=0)
    weather_fn = TorchWeather(seed=0) if kind == "torch" else None
    loader = torch.utils.data.DataLoader(ds, batch_sampler=StepBatchSampler(len(ds), batch, 0, 0, warmup + batches))
    t0 = None
    for step, b in enumerate(loader):
        if step == warmup:
            _sync(device)
            t0 = time.perf_counter()
        b = {k: v.to(device) for k, v in b.items()}
        if weather_fn is not None:
            b = weather_fn(b["clean"], step)
    _sync(device)
    return batches * batch / (time.perf_counter() - t0)


def train_speed(config: str, synth: str, steps: int, warmup: int, device: str, amp: str = None,
                batch: int = None, crop: int = None, loss: dict = None) -> float:
    """Training steps/s of `config` with the given synthesizer, optionally another autocast (`amp`),
    batch, crop or loss settings (checkpoints go to a temp folder)."""
    from weather_restore.training.train_config import load_train_config
    from weather_restore.training.trainer import Trainer
    cfg = load_train_config(config)
    cfg.synth, cfg.threads = synth, 0
    cfg.amp, cfg.batch, cfg.crop = amp or cfg.amp, batch or cfg.batch, crop or cfg.crop
    cfg.eval = {**cfg.eval, "folder": None}
    cfg.loss.update(loss or {})
    with tempfile.TemporaryDirectory() as out:
        tr = Trainer(cfg, out, device=device, show_progress=False)
        it = iter(tr.loader(warmup + steps))
        for _ in range(warmup):
            tr.train_step(next(it))
        _sync(tr.device)
        t0 = time.perf_counter()
        for _ in range(steps):
            tr.train_step(next(it))
        _sync(tr.device)
        return steps / (time.perf_counter() - t0)


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--batch", type=int, default=4)
    p.add_argument("--crop", type=int, default=128)
    p.add_argument("--batches", type=int, default=40, help="timed batches of the data path")
    p.add_argument("--warmup", type=int, default=4)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--device", default="cpu")
    p.add_argument("--train", default=None, help="also time training steps of this train config")
    p.add_argument("--steps", type=int, default=10, help="timed training steps (with --train)")
    p.add_argument("--synth", default="numpy,torch", help="synthesizers to time training with (with --train)")
    p.add_argument("--amp", default=None,
                   help="autocast settings to time training with, e.g. off,bf16 (with --train; default: the config's); "
                        "the training crops are --batch x --crop")
    p.add_argument("--loss", default=None,
                   help="loss settings to time training with, JSON objects separated by ';' (with --train)")
    p.add_argument("--rounds", type=int, default=1, help="repeat the timed settings, in turn, this many times")
    a = p.parse_args(argv)
    torch.set_num_threads(a.threads)
    device = torch.device(a.device)
    print(f"data path, batch {a.batch} x {a.crop} px, {a.threads} threads, {device}:")
    speeds = {k: data_path(k, a.batch, a.crop, a.batches, a.warmup, device) for k in ("numpy", "torch")}
    for k, v in speeds.items():
        print(f"  {k:5s} synthesizer: {v:7.1f} crops/s")
    print(f"  torch / numpy: {speeds['torch'] / speeds['numpy']:.1f}x")
    if a.train:
        print(f"training, config {a.train}, batch {a.batch} x {a.crop} px:")
        losses = [json.loads(t) for t in a.loss.split(";")] if a.loss else [None]
        for r in range(a.rounds):
            for k in a.synth.split(","):
                for amp in (a.amp.split(",") if a.amp else [None]):
                    for loss in losses:
                        s = train_speed(a.train, k, a.steps, 2, a.device, amp, a.batch, a.crop, loss)
                        what = f", loss {json.dumps(loss)}" if loss else ""
                        print(f"  round {r + 1}, {k:5s} synthesizer, amp {amp or 'as configured'}{what}: "
                              f"{s:.3f} steps/s, {s * a.batch:.1f} crops/s", flush=True)


if __name__ == "__main__":
    main()
