"""The training loop: synthetic pairs -> restorer, with the losses of DESIGN.md "Training".

One step:
    weathered, clean, labels (p, D)  --(random flips, data order = f(seed, step))-->
    out = restorer(weathered, p or None, D or None)        labels fed with prob gt_signal_prob
    loss = sum_i w_i * (pixel + freq + ssim)_i / B          w: Perceive-IR difficulty weights
         + prior BCE + density BCE + quality CE (tiers low / medium / high)
         + SRD (SAR attention vs the teacher's map) [+ feature term]
         [+ Charbonnier to a frozen restorer's mirror ensemble, in the image term: loss.mirror_distill]
         [+ NLCL contrastive loss on real rainy crops, training/nlcl.py]
    AdamW, warm-up + cosine, grad clipping, EMA; atomic checkpoints every k steps and m minutes.
Runs on CPU or GPU, and under torchrun (DDP: gloo on CPU, nccl on CUDA; rank 0 writes).
"""
import contextlib
import gc
import json
import logging
import math
import os
import signal
import time
from pathlib import Path
from typing import Optional

import torch
import torch.distributed as dist
import torch.nn as nn
from torch.utils.data import DataLoader

from ..models import WeatherRestorer, load_config
from ..models.device import pick_device
from ..models.restorer import pad_to_multiple
from ..models.signals import quality_score
from ..models.weights_io import in_modules, load_restorer, load_state_strict
from ..pipeline import precision
from . import losses as L
from .checkpoint import load_checkpoint, rng_state, save_atomic, set_rng_state
from .data import EpochView, StepBatchSampler, generator_for
from .ema import EMA
from .optim import build_optimizer, build_scheduler
from .synth.dataset import CACHE_BYTES, set_photo_cache_budget
from .teachers import MirrorEnsembleTeacher, build_teacher
from .train_config import TrainConfig, resolve_path

log = logging.getLogger(__name__)


def encoder_signals(model: WeatherRestorer, x: torch.Tensor):
    """Encoder + heads with gradients: (prior, density, quality) logits, density cropped to x."""
    s = model.signals(x)
    return s.prior_logits, s.density_logits, s.quality_logits


class TrainNet(nn.Module):
    """Everything that needs gradients in one forward, so DDP sees a single call per step:
    the restorer on the weathered batch, plus encoder + heads on extra images (quality tiers)."""

    def __init__(self, restorer: WeatherRestorer):
        super().__init__()
        self.restorer = restorer

    def forward(self, x, prior=None, density=None, extra: Optional[torch.Tensor] = None,
                real: Optional[torch.Tensor] = None, signals_only: bool = False):
        if signals_only:                       # stage "signals": no restoration body, heads only
            p, d, q = encoder_signals(self.restorer, x)
            return {"pred_prior_logits": p, "pred_density_logits": d,
                    "quality_logits": q}
        out = self.restorer(x, prior, density)
        res = {k: getattr(out, k) for k in out.__dataclass_fields__}
        res["extra_quality_logits"] = self.restorer.quality_logits(extra) if extra is not None else None
        res["real_image"] = self.restorer(real).image if real is not None else None   # NLCL stage
        return res


def recipe_kwargs(cfg: TrainConfig) -> dict:
    """The config's recipe_weights as the synthesizers take them (recipes left out are not drawn)."""
    if not cfg.recipe_weights:
        return {}
    return {"recipes": [k for k, v in cfg.recipe_weights.items() if v > 0],
            "recipe_weights": {k: float(v) for k, v in cfg.recipe_weights.items()}}


def build_dataset(cfg: TrainConfig):
    from .synth import SyntheticWeatherDataset  # the synthesizer, training/synth/
    roots = [str(resolve_path(r)) for r in cfg.data_roots]
    if cfg.synth == "torch":                          # clean crops; the weather is made in train_step
        from .synth_torch import CleanCrops
        return CleanCrops(roots, crop=cfg.crop, seed=cfg.seed, **recipe_kwargs(cfg))
    return SyntheticWeatherDataset(roots, crop=cfg.crop, seed=cfg.seed, **recipe_kwargs(cfg))


def load_init_weights(model: WeatherRestorer, path, new_modules=()) -> None:
    """Start from a `.safetensors` export or a training checkpoint (its EMA weights). Modules named in
    `new_modules` (added on top of the file's network) keep their own initialisation."""
    path = resolve_path(path)
    if not path.is_file():
        raise FileNotFoundError(f"init_weights {path} not found; train the base run first (e.g. runs/s/last.pt) "
                                f"or point init_weights at an exported .safetensors file")
    if path.suffix == ".safetensors":
        src = load_restorer(path)
        if src.cfg != model.cfg and not new_modules:
            raise ValueError(f"init weights {path} are config '{src.cfg.name}', the run uses '{model.cfg.name}'")
        load_state_strict(model, src.state_dict(), path, new_modules)
    else:
        load_state_strict(model, load_checkpoint(path)["ema"]["model"], path, new_modules)
    log.info("initial weights from %s", path)


def freeze_except(model: nn.Module, prefixes) -> None:
    """Only parameters under the named modules train (e.g. ["density_head", "density_refiner"])."""
    names = [n for n, _ in model.named_parameters()]
    unknown = [p for p in prefixes if not any(in_modules(n, [p]) for n in names)]
    if unknown:
        top = sorted({n.split(".")[0] for n in names})
        raise ValueError(f"trainable modules {unknown} are not in the network; its modules: {top}")
    for n, p in model.named_parameters():
        p.requires_grad_(in_modules(n, prefixes))


def auto_bf16(device: torch.device) -> bool:
    """`"amp": "auto"`: bf16 autocast on CUDA GPUs with bf16 and on CPUs that compute bf16 natively.
    On such a CPU (Zen 4, 2 threads) m's stages ran 1.2x faster (1.5x for the steps alone, batch 4 x
    192 px) and scored as fp32 did after 300 steps from v4.8's body (33.61 against 33.60, BENCHMARKS.md)."""
    return device.type in ("cuda", "cpu") and precision.device_support(device)[1]


class Trainer:
    def __init__(self, cfg: TrainConfig, out_dir, device: str = "auto", dataset=None, real_crops=None,
                 show_progress: bool = True):
        self.cfg, self.out = cfg, Path(out_dir)
        self.world = int(os.environ.get("WORLD_SIZE", 1))
        self.rank = int(os.environ.get("RANK", 0))
        self.device = pick_device(device, cuda_index=int(os.environ.get("LOCAL_RANK", 0)))
        if self.world > 1 and not dist.is_initialized():
            dist.init_process_group("nccl" if self.device.type == "cuda" else "gloo")
        if self.device.type == "cuda":
            torch.cuda.set_device(self.device)
        self.is_main = self.rank == 0
        self.amp = (cfg.amp == "bf16") if cfg.amp != "auto" else auto_bf16(self.device)
        self.show_progress = show_progress and self.is_main

        torch.manual_seed(cfg.seed)
        self.model = WeatherRestorer(load_config(cfg.model)).to(self.device)
        if cfg.init_weights:
            load_init_weights(self.model, cfg.init_weights, cfg.new_modules)
        if cfg.trainable is not None:
            freeze_except(self.model, cfg.trainable)
        self.ema = EMA(self.model, cfg.ema_decay, cfg.ema_warmup)
        self.net = TrainNet(self.model)
        if self.world > 1:
            ids = [self.device.index] if self.device.type == "cuda" else None
            w = cfg.loss        # a head without a loss, or skipped on some steps, leaves parameters unused
            every_step = all(w[k] for k in ("prior", "density", "quality")) and int(w["quality_every"]) == 1 \
                and cfg.stage == "full"
            self.net = nn.parallel.DistributedDataParallel(self.net, device_ids=ids,
                                                           find_unused_parameters=not every_step)
        self.opt = build_optimizer(self.model, cfg.lr, cfg.weight_decay, cfg.betas)
        self.sched = build_scheduler(self.opt, cfg.steps, cfg.warmup, cfg.min_lr_ratio)
        full = cfg.stage == "full"              # the signals stage uses neither teacher nor perceiver
        self.teacher = build_teacher(cfg.teacher, self.ema.model, self.device) if full and (
            cfg.loss["srd"] or cfg.loss["srd_feature"]) else None
        self.mirror_teacher = None
        if full and cfg.loss["mirror_distill"]:
            self.mirror_teacher = MirrorEnsembleTeacher(resolve_path(cfg.loss["mirror_teacher"] or cfg.init_weights),
                                                        self.device, autocast=self.amp)
        self.perceiver = None
        if full and cfg.loss["difficulty"] and cfg.loss["difficulty_perceiver"] == "clip":
            from .teachers import build_clip_quality_perceiver
            self.perceiver = build_clip_quality_perceiver(cfg.teacher, self.device)
        self.dataset = EpochView(dataset if dataset is not None else build_dataset(cfg), cfg.seed, cfg.flips)
        self.weather = None                     # synth "torch": weather on the device, f(seed, step, rank)
        if cfg.synth == "torch":
            from .synth_torch import TorchWeather
            self.weather = TorchWeather(cfg.seed, **recipe_kwargs(cfg))
        self.nlcl = None
        if cfg.nlcl["enabled"]:
            from .nlcl import NLCLStage
            self.nlcl = NLCLStage(cfg.nlcl, cfg.seed, self.rank, self.world, real_crops)
        self.step, self.elapsed = 0, 0.0
        self._stop = False

    # -- checkpoints ----------------------------------------------------------------------
    def state(self) -> dict:
        return {"model": self.model.state_dict(), "ema": self.ema.state_dict(),
                "optimizer": self.opt.state_dict(), "scheduler": self.sched.state_dict(),
                "step": self.step, "elapsed": self.elapsed, "rng": rng_state(),
                "config": self.cfg.to_dict(), "model_config": self.model.cfg.to_json(),
                "data": {"seed": self.cfg.seed, "epoch_size": len(self.dataset), "world": self.world,
                         "next_sample": self.step * self.cfg.batch * self.world}}

    def save(self, name: str = "last.pt") -> Optional[Path]:
        if not self.is_main:
            return None
        path = save_atomic(self.state(), self.out / name)
        log.info("checkpoint %s (step %d)", path, self.step)
        return path

    def resume(self, path=None, steps: Optional[int] = None) -> None:
        """Continue from a checkpoint (default <out>/last.pt). The schedule length is the
        checkpoint's unless `steps` replaces it."""
        path = Path(path) if path else self.out / "last.pt"
        ck = load_checkpoint(path, map_location=self.device)
        total = int(steps if steps is not None else ck["config"]["steps"])
        if total != self.cfg.steps:
            self.cfg.steps = total
            self.sched = build_scheduler(self.opt, total, self.cfg.warmup, self.cfg.min_lr_ratio)
        if ck.get("model_config") != self.model.cfg.to_json():
            raise ValueError(f"{path} was trained with another model config; resume with its own train config")
        if ck["data"].get("world", 1) != self.world:
            log.warning("%s was written with %d processes, resuming with %d: the data order changes",
                        path, ck["data"].get("world", 1), self.world)
        load_state_strict(self.model, ck["model"], path)          # names the file and the keys that do not fit
        self.ema.load_state_dict(ck["ema"])
        self.opt.load_state_dict(ck["optimizer"])
        self.sched.load_state_dict(ck["scheduler"])
        self.step, self.elapsed = int(ck["step"]), float(ck.get("elapsed", 0.0))
        set_rng_state(ck["rng"])
        self._truncate_curve()
        log.info("resumed from %s at step %d", path, self.step)

    def _truncate_curve(self) -> None:
        """Drop curve lines written after the checkpoint (they will be written again)."""
        curve = self.out / "curve.jsonl"
        if not (self.is_main and curve.is_file()):
            return
        keep = [ln for ln in curve.read_text().splitlines() if ln.strip() and json.loads(ln)["step"] <= self.step]
        tmp = curve.with_name("curve.jsonl.tmp")
        tmp.write_text("".join(ln + "\n" for ln in keep))
        os.replace(tmp, curve)

    # -- one step -------------------------------------------------------------------------
    def signal_losses(self, batch: dict) -> dict:
        """Stage "signals": the prior and density heads against the synthesizer's labels, nothing else."""
        w = self.cfg.loss
        out = self.net(batch["weathered"], signals_only=True)
        parts = {}
        if w["prior"]:
            parts["prior"] = w["prior"] * L.prior_loss(out["pred_prior_logits"], batch["prior"].float())
        if w["density"]:
            parts["density"] = w["density"] * L.density_loss(out["pred_density_logits"], batch["density"].float(),
                                                            w["density_recall"])
        parts["total"] = sum(parts.values())
        return parts

    def losses(self, batch: dict, step: int) -> dict:
        if self.cfg.stage == "signals":
            return self.signal_losses(batch)
        cfg, w = self.cfg, self.cfg.loss
        g = generator_for(cfg.seed, step, self.rank, 3)
        weathered, clean = batch["weathered"], batch["clean"]
        prior, density = batch["prior"].float(), batch["density"].float()
        B = weathered.shape[0]
        use_gt = bool(torch.rand(1, generator=g) < w["gt_signal_prob"])
        extra, n = None, 0
        if w["quality"] and step % max(1, int(w["quality_every"])) == 0:
            n = max(1, int(math.ceil(B * w["quality_fraction"])))
            medium = L.medium_tier(clean[:n], weathered[:n], w["medium_range"], g)
            extra = torch.cat([clean[:n], medium])
        real = self.nlcl.batch(step, weathered.device) if self.nlcl is not None else None
        out = self.net(weathered, prior if use_gt else None, density if use_gt else None, extra, real)
        y = out["image"]

        terms = L.image_losses(y, clean, w, weathered)                   # each (B,)
        if self.mirror_teacher is not None:
            terms["mirror_distill"] = w["mirror_distill"] * L.charbonnier(
                y.float(), self.mirror_teacher(weathered), w["charbonnier_eps"])
        per_sample = sum(terms.values())
        weights = torch.ones_like(per_sample)
        if w["difficulty"] and step >= w["difficulty_start"]:
            with torch.no_grad():
                if self.perceiver is not None:
                    score = self.perceiver(y.detach().float().clamp(0, 1))
                else:
                    score = quality_score(self.model.quality_logits(y.detach().clamp(0, 1)).float().softmax(-1))
                weights = L.difficulty_weights(score.to(per_sample), w["difficulty"])
        parts = {k: v.mean() for k, v in terms.items()}
        parts["image"] = (weights * per_sample).mean()
        if w["prior"]:
            parts["prior"] = w["prior"] * L.prior_loss(out["pred_prior_logits"], prior)
        if w["density"]:
            parts["density"] = w["density"] * L.density_loss(out["pred_density_logits"], density, w["density_recall"])
        if extra is not None:
            logits = torch.cat([out["quality_logits"], out["extra_quality_logits"]])
            tiers = L.quality_tiers(weathered, clean, n)
            parts["quality"] = w["quality"] * L.quality_loss(logits, tiers)
        if self.teacher is not None and w["srd"] and step % max(1, int(w["srd_every"])) == 0:
            target = self.teacher.targets(pad_to_multiple(clean, self.model.cfg.stride),
                                          pad_to_multiple(weathered, self.model.cfg.stride))
            parts["srd"] = w["srd"] * L.srd_loss(out["sar_attention"], target)
        if self.teacher is not None and w["srd_feature"]:
            tf = self.teacher.features(clean)
            if tf is not None:
                parts["srd_feature"] = w["srd_feature"] * L.feature_distill_loss(out["sar_features"], tf)
        total = parts["image"] + sum(v for k, v in parts.items() if k not in terms and k != "image")
        if self.nlcl is not None:
            real_parts = self.nlcl.loss(real, out["real_image"], self.model, self.ema.model, step)
            parts.update(real_parts)
            total = self.cfg.nlcl["paired_weight"] * total + sum(real_parts.values())
        parts["total"] = total
        return parts

    def train_step(self, batch: dict) -> dict:
        self.net.train()
        batch = {k: v.to(self.device, non_blocking=True) if torch.is_tensor(v) else v for k, v in batch.items()}
        if self.weather is not None:
            batch = self.weather(batch["clean"], self.step, self.rank)
        with torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=self.amp):
            parts = self.losses(batch, self.step)
        if not parts["total"].requires_grad:
            raise ValueError(f"step {self.step}: no loss reaches a trainable module (trainable: "
                             f"{self.cfg.trainable}); give one of them a loss, or with gt_signal_prob 1 "
                             f"train more than the heads (the body never sees their maps)")
        self.opt.zero_grad(set_to_none=True)
        parts["total"].backward()
        gnorm = torch.nn.utils.clip_grad_norm_(self.model.parameters(), self.cfg.grad_clip) \
            if self.cfg.grad_clip > 0 else torch.tensor(0.0)
        if not torch.isfinite(parts["total"]):
            raise FloatingPointError(f"loss is {parts['total'].item()} at step {self.step}; lower the lr "
                                     f"(now {self.sched.get_last_lr()[0]:.3g}) or resume from an earlier checkpoint")
        if not torch.isfinite(gnorm):           # the step would write NaN into every weight
            fp32 = 'train in fp32 ("amp": "off") or ' if self.amp else ""
            raise FloatingPointError(
                f"the gradients are not finite at step {self.step} (loss {parts['total'].item():.4g} is); "
                f"{fp32}lower the lr (now {self.sched.get_last_lr()[0]:.3g}) or resume from an earlier checkpoint")
        self.opt.step()
        self.sched.step()
        self.ema.update(self.model)
        self.step += 1
        stats = {k: float(v.detach()) for k, v in parts.items()}
        stats["grad_norm"] = float(gnorm)
        return stats

    # -- the loop -------------------------------------------------------------------------
    def loader(self, end: int) -> DataLoader:
        sampler = StepBatchSampler(len(self.dataset), self.cfg.batch, self.cfg.seed, self.step, end,
                                   self.rank, self.world)
        nw = int(self.cfg.num_workers)
        set_photo_cache_budget(CACHE_BYTES // max(1, nw))        # each worker process holds its own photos
        return DataLoader(self.dataset, batch_sampler=sampler, num_workers=nw,
                          pin_memory=self.device.type == "cuda", persistent_workers=False,
                          prefetch_factor=2 if nw else None)

    def _install_signal_handlers(self):
        def handler(signum, frame):
            log.warning("signal %d: saving a checkpoint and stopping after this step", signum)
            self._stop = True
        try:
            return {s: signal.signal(s, handler) for s in (signal.SIGTERM, signal.SIGINT)}
        except ValueError:  # not the main thread
            return {}

    def fit(self, steps: Optional[int] = None) -> dict:
        """Train until step `steps` (default cfg.steps); returns the last step's stats."""
        from .runlog import CurveLog, logging_to_bar, progress
        end = min(self.cfg.steps, steps) if steps is not None else self.cfg.steps
        self._curve = CurveLog(self.out / "curve.jsonl") if self.is_main else None
        self._acc, self._last_ckpt = {}, time.time()
        old = self._install_signal_handlers()
        stats, t_prev = {}, time.time()
        bar = progress(self.step, end, self.show_progress)
        try:
            with logging_to_bar() if self.show_progress else contextlib.nullcontext():
                for batch in self.loader(end):
                    if self.step >= end or self._stop:
                        break
                    stats = self.train_step(batch)
                    now = time.time()
                    self.elapsed += now - t_prev          # wall time of this run, summed over resumes
                    t_prev = now
                    bar.update(1)
                    bar.set_postfix(loss=f"{stats['total']:.4f}", lr=f"{self.sched.get_last_lr()[0]:.2e}")
                    self._after_step(stats, end, now)
        finally:
            bar.close()
            for s, h in old.items():
                signal.signal(s, h)
        self.save()
        return stats

    def _after_step(self, stats: dict, end: int, now: float) -> None:
        """Log / curve line every log_every steps, evaluation, checkpoint every k steps or m minutes."""
        for k, v in stats.items():
            self._acc[k] = self._acc.get(k, 0.0) + v
        self._acc["_n"] = self._acc.get("_n", 0) + 1
        if self.step % self.cfg.log_every == 0 or self.step == end:
            n = self._acc.pop("_n")
            mean = {k: v / n for k, v in self._acc.items()}
            log.info("step %d/%d %s", self.step, end, " ".join(f"{k}={v:.4g}" for k, v in mean.items()))
            if self._curve:
                self._curve.write(step=self.step, elapsed_s=round(self.elapsed, 2),
                                  lr=self.sched.get_last_lr()[0], losses=mean)
            self._acc = {}
        ev = self.cfg.eval
        if ev["folder"] and ev["every_steps"] and self.step % ev["every_steps"] == 0 and self._curve:
            self._curve.write(step=self.step, elapsed_s=round(self.elapsed, 2), eval=self.evaluate())
        if self.step % max(1, self.cfg.ckpt_every_steps) == 0 or \
                now - self._last_ckpt >= 60 * self.cfg.ckpt_every_minutes:
            self.save()
            self._last_ckpt = time.time()

    def evaluate(self) -> dict:
        """Score the EMA weights on the configured paired folder (evaluation/evaluate.py); a failure
        is logged, not raised, so a long run never dies of its evaluation."""
        ev = self.cfg.eval
        try:
            from ..evaluation.evaluate import evaluate_folder
            res = evaluate_folder(self.ema.model, str(resolve_path(ev["folder"])), tile=ev["tile"],
                                  overlap=ev["overlap"],
                                  limit=ev["max_images"] or None, name=f"step {self.step}", progress=False)
        except Exception as e:  # noqa: BLE001
            log.error("evaluation at step %d failed: %s", self.step, e)
            return {"error": str(e)}
        scores = {"folder": ev["folder"], "count": res["count"], "seconds": res["seconds"],
                  "input": {k: res["rows"][0][k] for k in ("y_psnr", "y_ssim", "rgb_psnr")},
                  "model": {k: res["rows"][-1][k] for k in ("y_psnr", "y_ssim", "rgb_psnr")}}
        log.info("eval at step %d on %s: Y-PSNR %.2f dB, Y-SSIM %.4f (input %.2f / %.4f)", self.step,
                 ev["folder"], scores["model"]["y_psnr"], scores["model"]["y_ssim"],
                 scores["input"]["y_psnr"], scores["input"]["y_ssim"])
        return scores

    def close(self) -> None:
        """Leave the process group in step with the other ranks. DDP's reducer holds the group:
        freed only at interpreter exit, gloo's threads could abort the process (SIGABRT)."""
        if self.world > 1 and dist.is_initialized():
            dist.barrier()
            if isinstance(self.net, nn.parallel.DistributedDataParallel):
                self.net = self.net.module
            gc.collect()
            dist.destroy_process_group()
