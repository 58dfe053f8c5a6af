"""Training of the raindrop stage (models/drop_stage.py), on its own and resumable.

Each step draws `batch` crops from the clean photos and weather on them with the torch synthesizer:
`drop_share` of the samples get raindrops and are pulled towards the clean crop, the rest get one of
the other recipes (or none) and are pulled towards their own weathered input, so the stage learns to
take drops off and to leave everything else alone. The loss is the mean squared error: with L1 the
stage stays the identity (docs/EXPERIMENTS.md, "Raindrops").

Every draw comes from (seed, step), so a resumed run continues exactly; the checkpoint (stage, EMA,
optimiser, step) is written atomically every `save_every` steps and holds only tensors and numbers
(loaded with weights_only=True).
"""
import dataclasses
import json
import math
import pickle
import time
from pathlib import Path
from typing import Callable, List, Optional

import numpy as np
import torch

from ..models.drop_stage import DropStage
from ..models.weights_io import WeightsError, load_restorer
from ..pipeline.allocator import tune_cpu_allocator_for_training
from .checkpoint import save_atomic
from .trainer import auto_bf16
from .synth.dataset import find_images, load_photo
from .synth_torch.compose import synthesize_batch

LOSS_SCALE = 255.0 ** 2 / 100
OTHER_RECIPES = ("clean", "rain_light", "rain_heavy", "snow", "haze", "rain_haze", "snow_haze")
# the photos the held-out synthetic recipes are drawn on (scripts/synth_recipe_eval.py) stay out of training
HELD_OUT_FOLDERS = ("kodak24", "set14")


@dataclasses.dataclass
class DropStageConfig:
    data_root: str = "../shared/data/train/clean"
    dims: tuple = (32, 64, 128, 128)
    steps: int = 6000
    batch: int = 8
    crop: int = 160
    drop_share: float = 0.7
    lr: float = 1e-3
    warmup: int = 100
    weight_decay: float = 1e-4
    ema: float = 0.999
    seed: int = 0
    save_every: int = 200
    eval_every: int = 1000
    # bf16 autocast: auto (CUDA with bf16, CPUs with native bf16), bf16, off. Off by default: the one bf16 run
    # (16000 steps from the shipped stage) ended below where it started, and fp32 has not been run beside it
    amp: str = "off"
    init: str = ""             # a new run starts from: a stage checkpoint (last.pt, its raw weights) or the
                               # stage inside a network's .safetensors (e.g. weights/weather_m_v4_17.safetensors)

    def __post_init__(self):
        if self.amp not in ("auto", "bf16", "off"):
            raise ValueError(f"drop stage config: amp must be auto, bf16 or off; got {self.amp!r}")
        if not 0.0 <= self.drop_share <= 1.0:
            raise ValueError(f"drop stage config: drop_share must be in [0, 1]; got {self.drop_share}")


def training_photos(root: str) -> List[Path]:
    photos = [p for p in find_images([root]) if not set(Path(p).parts) & set(HELD_OUT_FOLDERS)]
    if not photos:
        raise FileNotFoundError(f"no training photos under {root} (outside {', '.join(HELD_OUT_FOLDERS)})")
    return photos


def draw_batch(photos, cfg: DropStageConfig, step: int, device="cpu"):
    """(weathered, target) of one step on `device`, the same for the same (seed, step) and device."""
    rng = np.random.default_rng([cfg.seed, step])
    crops = []
    for _ in range(cfg.batch):
        img = load_photo(str(photos[rng.integers(len(photos))]))
        _, h, w = img.shape
        s = min(cfg.crop, h, w)
        y0, x0 = rng.integers(0, h - s + 1), rng.integers(0, w - s + 1)
        c = img[:, y0:y0 + s, x0:x0 + s].float() / 255
        if s < cfg.crop:
            c = torch.nn.functional.interpolate(c[None], size=(cfg.crop, cfg.crop), mode="bilinear",
                                                align_corners=False)[0]
        crops.append(c.flip(-1) if rng.random() < 0.5 else c)
    drops = rng.random(cfg.batch) < cfg.drop_share
    recipes = ["raindrops" if d else OTHER_RECIPES[rng.integers(len(OTHER_RECIPES))] for d in drops]
    out = synthesize_batch(torch.stack(crops).to(device), int(rng.integers(1 << 62)), recipe=recipes)
    keep = torch.from_numpy(~drops).view(-1, 1, 1, 1).to(device)
    return out["weathered"], torch.where(keep, out["weathered"], out["clean"])


def lr_at(cfg: DropStageConfig, step: int) -> float:
    if step < cfg.warmup:
        return cfg.lr * (step + 1) / cfg.warmup
    t = (step - cfg.warmup) / max(1, cfg.steps - cfg.warmup)
    return cfg.lr * 0.5 * (1 + math.cos(math.pi * min(1.0, t)))


def load_stage_checkpoint(path) -> dict:
    """A checkpoint written by train_drop_stage (stage, EMA, optimiser, step), loaded without unpickling;
    FileNotFoundError when it is missing, WeightsError when it is not one."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"raindrop stage checkpoint not found: {path}")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except (RuntimeError, EOFError, pickle.UnpicklingError, ValueError) as e:
        raise WeightsError(f"{path} is not a readable checkpoint ({e})") from None
    if not isinstance(state, dict) or not all(isinstance(state.get(k), dict) for k in ("stage", "ema", "opt")) \
            or "step" not in state:
        raise WeightsError(f"{path} is not a raindrop stage checkpoint (runs/<name>/last.pt of "
                           f"scripts/train_drop_stage.py)")
    return state


def initial_stage_state(path) -> dict:
    """The stage a new run starts from: the raw stage of a stage checkpoint, or the drop stage of a
    network's .safetensors (one that has none is refused, naming the file)."""
    if str(path).endswith(".safetensors"):
        stage = load_restorer(path).drop_stage
        if stage is None:
            raise WeightsError(f"{path} has no raindrop stage; start from a network with one (weather-m-v4.17 "
                               f"or later) or from a stage checkpoint")
        return stage.state_dict()
    return load_stage_checkpoint(path)["stage"]


def train_drop_stage(cfg: DropStageConfig, out: Path, evaluate: Optional[Callable[[DropStage], dict]] = None,
                     log: Callable[[str], None] = print, stop_at: Optional[int] = None, device=None) -> DropStage:
    """Train (or resume) a drop stage in `out`; returns the EMA stage. `evaluate(stage) -> dict` is called
    every cfg.eval_every steps and at the end, its numbers appended to out/curve.jsonl. `stop_at` ends
    this call early (checkpoint written) without changing the schedule of cfg.steps. `device`: where it
    trains (default: CUDA where there is one, else the CPU)."""
    device = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
    if device.type == "cpu":
        tune_cpu_allocator_for_training()
    out.mkdir(parents=True, exist_ok=True)
    photos = training_photos(cfg.data_root)
    torch.manual_seed(cfg.seed)
    stage, ema = DropStage(cfg.dims, device=device), DropStage(cfg.dims, device=device)
    ema.load_state_dict(stage.state_dict())
    ema.requires_grad_(False)
    opt = torch.optim.AdamW(stage.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    # bf16 autocast: on a CPU with native bf16 a step takes 0.36 s instead of 0.58 (8 x 160 px, 2 threads);
    # the residual is added to the input in fp32
    amp = (cfg.amp == "bf16") if cfg.amp != "auto" else auto_bf16(device)
    step, elapsed = 0, 0.0
    ckpt = out / "last.pt"
    if not ckpt.exists() and cfg.init:                 # a new run from another run's raw stage (not its optimiser)
        start = initial_stage_state(cfg.init)
        try:
            stage.load_state_dict(start)
        except RuntimeError as e:                     # tensors of other shapes: another stage size
            raise WeightsError(f"{cfg.init}: its raindrop stage does not fit dims {list(cfg.dims)} ({e})") from None
        ema.load_state_dict(stage.state_dict())
        log(f"started from {cfg.init}")
    if ckpt.exists():
        state = load_stage_checkpoint(ckpt)
        stage.load_state_dict(state["stage"])
        ema.load_state_dict(state["ema"])
        opt.load_state_dict(state["opt"])
        step, elapsed = int(state["step"]), float(state.get("elapsed", 0.0))
        log(f"resumed at step {step}")
    t0, losses = time.time(), []
    end = cfg.steps if stop_at is None else min(cfg.steps, stop_at)
    while step < end:
        tic = time.time()
        x, t = draw_batch(photos, cfg, step, device)
        for group in opt.param_groups:
            group["lr"] = lr_at(cfg, step)
        # in squared 8-bit levels / 100 (about 1-4 here): at [0, 1] scale the gradients are so small that
        # Adam's epsilon damps them, and a stage started as the identity stayed it for 2000 steps
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=amp):
            y = stage(x)
        loss = torch.nn.functional.mse_loss(y.float(), t) * LOSS_SCALE
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        with torch.no_grad():
            for pe, ps in zip(ema.parameters(), stage.parameters()):
                pe.lerp_(ps, 1 - cfg.ema)
        step += 1
        losses.append(loss.item())
        elapsed += time.time() - tic                    # training time only, evaluations not counted
        if step % 50 == 0:
            log(f"step {step} loss {np.mean(losses):.4f} ({(time.time() - t0) / len(losses):.2f} s/step)")
            t0, losses = time.time(), []
        if step % cfg.save_every == 0 or step == end:
            save_atomic({"stage": stage.state_dict(), "ema": ema.state_dict(), "opt": opt.state_dict(),
                          "step": step, "elapsed": elapsed}, ckpt)
        if evaluate is not None and (step % cfg.eval_every == 0 or step == cfg.steps):
            scores = {"step": step, "elapsed_s": round(elapsed, 2), **evaluate(ema)}
            log(f"eval {scores}")
            with open(out / "curve.jsonl", "a", encoding="utf-8") as f:
                f.write(json.dumps(scores) + "\n")
    return ema
