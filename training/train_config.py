"""Training hyper-parameters are data: one JSON per run recipe in `training/configs/`, loaded here.

Nested sections (`loss`, `teacher`, `nlcl`, `eval`) are plain dicts merged over the defaults
below, so a config only names what it changes. A config may name a `base` config: it starts from
that one's values (its sections merged key by key the same way, every other key replaced whole), so a
fine-tuning stage is written as what differs from the stage it follows. Relative paths (data roots, init weights, eval
folder) are resolved against the pack root, so `../shared/data/train/clean` works from any cwd.
"""
import copy
import dataclasses
import json
from pathlib import Path
from typing import Optional

from ..pipeline.restore import DEFAULT_OVERLAP

PACK_ROOT = Path(__file__).resolve().parents[1]
TRAIN_CONFIG_DIR = Path(__file__).parent / "configs"

DEFAULT_LOSS = {
    "pixel": 1.0,            # Charbonnier on RGB
    "charbonnier_eps": 1e-3,
    "freq": 0.05,            # L1 between 2-D FFTs (real and imaginary parts)
    "ssim": 0.2,             # 1 - SSIM (Gaussian 11x11, sigma 1.5) on RGB
    "psnr": 0.0,             # 10 log10(MSE): minus the PSNR per sample (negative; only gradients matter)
    "streak": 0.0,           # Charbonnier again on the pixels the weather changed (streaks, flakes, drops)
    "streak_threshold": 0.02,  # ... where |weathered - clean| > this in any channel
    "prior": 0.1,            # BCE-with-logits, prior head vs the synthesizer's labels
    "density": 0.1,          # BCE-with-logits, density head vs the synthesizer's density map
    "density_recall": 0.0,   # ... each pixel weighted 1 + this x its label (rain the map misses costs more)
    "quality": 0.05,         # cross-entropy over tiers low / medium / high
    "quality_every": 1,      # run the extra clean / medium encoder passes every k steps
    "quality_fraction": 0.5, # ... on this fraction of the batch
    "medium_range": [0.25, 0.6],  # medium tier = clean + u * (weathered - clean), u in this range
    "difficulty": 0.5,       # Perceive-IR difficulty-adaptive weighting strength (0 = off)
    "difficulty_start": 500, # steps before the quality head is trusted to weight samples
    "difficulty_perceiver": "learned",  # quality of the outputs from: learned (own head) | clip (teacher.clip)
    "srd": 0.05,             # soft residual distillation: SAR attention vs the teacher's map
    "srd_every": 1,          # ... computed every k steps (the EMA teacher's encoder pass is ~10 % of a CPU step)
    "srd_feature": 0.0,      # optional: student SAR features on weathered vs teacher encoder on clean
    "gt_signal_prob": 0.5,   # probability to feed the synthesizer's labels (not the heads) as p and D
    "mirror_distill": 0.0,   # Charbonnier to a frozen teacher's mirror ensemble (restore --mirror-ensemble)
    "mirror_teacher": None,  # ... that teacher's weights file (default: init_weights)
}
# kind: none | ema | clip; clip: manifest id, weights file, or "tiny-random" (smoke runs only);
# clip_dirs: folders searched for CLIP files (e.g. ComfyUI/models/clip); allow_download: where online
DEFAULT_TEACHER = {"kind": "ema", "clip": None, "clip_mean": None, "clip_std": None, "clip_dirs": [],
                   "allow_download": True}
DEFAULT_NLCL = {
    "enabled": False,
    "real_root": "../shared/data/train/real_rain",
    "crop": 96,
    "batch": 2,              # real rainy crops per step (mixed with the paired synthetic batch)
    "weight": 0.1,           # weight of the non-local contrastive loss
    "paired_weight": 1.0,    # weight of the paired synthetic loss, keeps synthetic scores up
    "patch": 8,              # side of a patch (pixels)
    "anchors": 16,           # anchor patches per image
    "window": 32,            # search window (pixels) for self-similar positives
    "positives": 2,          # most self-similar clean-layer patches per anchor
    "negatives": 16,         # rain-layer patches per anchor
    "temperature": 0.1,
    "level": 0,              # SAR encoder level whose features embed the patches
    "encoder": "ema",        # embed with the EMA encoder (frozen) or the student's own ("shared")
    "lowpass_weight": 0.0,   # L1 between block means of the real crop and its restoration (no colour cast)
    "lowpass_block": 16,     # side (pixels) of those blocks
}
DEFAULT_EVAL = {"folder": None, "every_steps": 0, "tile": 256, "overlap": DEFAULT_OVERLAP, "max_images": 0}


@dataclasses.dataclass
class TrainConfig:
    name: str = "run"
    model: str = "tiny"                   # restorer config name or path
    init_weights: Optional[str] = None    # .safetensors or .pt to start from (NLCL fine-tuning)
    data_roots: list = dataclasses.field(default_factory=lambda: ["../shared/data/train/clean"])
    recipe_weights: Optional[dict] = None # recipe name -> weight, passed to the synthesizer
    synth: str = "numpy"                  # numpy: weathered crops from the DataLoader (training/synth/);
                                          # torch: clean crops, weather made on the training device (synth_torch/)
    crop: int = 128
    batch: int = 4
    lr: float = 2e-4
    min_lr_ratio: float = 0.05            # cosine decays to lr * this
    weight_decay: float = 1e-4
    betas: list = dataclasses.field(default_factory=lambda: [0.9, 0.99])
    steps: int = 10000
    warmup: int = 200
    grad_clip: float = 1.0
    ema_decay: float = 0.999
    ema_warmup: bool = True               # decay ramps as min(decay, (1 + n) / (10 + n))
    seed: int = 0
    flips: bool = True                    # random left-right mirroring (same on every field)
    num_workers: int = 0
    threads: int = 0                      # torch threads; 0 = all cores
    amp: str = "auto"                     # bf16 autocast: auto (CUDA with bf16, CPUs with native bf16), bf16, off
    ckpt_every_steps: int = 500
    ckpt_every_minutes: float = 10.0
    log_every: int = 10
    stage: str = "full"                   # full: the whole restorer; signals: encoder + heads only, head losses
    trainable: Optional[list] = None      # module-name prefixes that train (None = all); the rest is frozen
    new_modules: list = dataclasses.field(default_factory=list)  # prefixes init_weights may lack (added modules)
    loss: dict = dataclasses.field(default_factory=dict)
    teacher: dict = dataclasses.field(default_factory=dict)
    nlcl: dict = dataclasses.field(default_factory=dict)
    eval: dict = dataclasses.field(default_factory=dict)

    def __post_init__(self):
        self.loss = {**DEFAULT_LOSS, **(self.loss or {})}
        self.teacher = {**DEFAULT_TEACHER, **(self.teacher or {})}
        self.nlcl = {**DEFAULT_NLCL, **(self.nlcl or {})}
        self.eval = {**DEFAULT_EVAL, **(self.eval or {})}
        for section, defaults in (("loss", DEFAULT_LOSS), ("teacher", DEFAULT_TEACHER),
                                  ("nlcl", DEFAULT_NLCL), ("eval", DEFAULT_EVAL)):
            unknown = sorted(set(getattr(self, section)) - set(defaults))
            if unknown:
                raise ValueError(f"train config '{self.name}': unknown keys {unknown} in '{section}'; "
                                 f"known: {sorted(defaults)}")
        if self.crop < 8 or self.batch < 1 or self.steps < 0:
            raise ValueError(f"train config '{self.name}': need crop >= 8, batch >= 1, steps >= 0; got "
                             f"crop={self.crop}, batch={self.batch}, steps={self.steps}")
        if self.stage not in ("full", "signals"):
            raise ValueError(f"train config '{self.name}': stage must be full or signals; got {self.stage!r}")
        if self.stage == "signals" and not (self.loss["prior"] or self.loss["density"]):
            raise ValueError(f"train config '{self.name}': stage 'signals' trains the prior and density heads "
                             f"only, so it needs loss.prior or loss.density above 0")
        if self.synth not in ("numpy", "torch"):
            raise ValueError(f"train config '{self.name}': synth must be numpy or torch; got {self.synth!r}")
        if self.amp not in ("auto", "bf16", "off"):
            raise ValueError(f"train config '{self.name}': amp must be auto, bf16 or off; got {self.amp!r}")
        for k in ("quality_every", "srd_every"):
            if int(self.loss[k]) != self.loss[k] or self.loss[k] < 1:
                raise ValueError(f"train config '{self.name}': loss.{k} must be a whole number of steps >= 1 "
                                 f"(1 = every step); got {self.loss[k]}")
        if self.loss["mirror_distill"] and not (self.loss["mirror_teacher"] or self.init_weights):
            raise ValueError(f"train config '{self.name}': loss.mirror_distill needs a teacher: set "
                             f"loss.mirror_teacher (a .safetensors file) or init_weights")
        if self.loss["density_recall"] < 0:
            raise ValueError(f"train config '{self.name}': loss.density_recall must be >= 0 (0 = plain BCE); "
                             f"got {self.loss['density_recall']}")
        if self.loss["difficulty_perceiver"] not in ("learned", "clip"):
            raise ValueError(f"train config '{self.name}': loss.difficulty_perceiver must be learned or clip; "
                             f"got {self.loss['difficulty_perceiver']!r}")
        if self.teacher["kind"] not in ("none", "ema", "clip"):
            raise ValueError(f"train config '{self.name}': teacher.kind must be none, ema or clip; "
                             f"got {self.teacher['kind']!r}")

    def to_dict(self) -> dict:
        return copy.deepcopy(dataclasses.asdict(self))

    @classmethod
    def from_dict(cls, d: dict) -> "TrainConfig":
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(d) - known)
        if unknown:
            raise ValueError(f"unknown train config keys {unknown}; known keys: {sorted(known)}")
        return cls(**d)


def resolve_path(p) -> Optional[Path]:
    """A config path: absolute as is, relative to the pack root otherwise."""
    if p is None:
        return None
    p = Path(p).expanduser()
    return p if p.is_absolute() else (PACK_ROOT / p).resolve()


def load_train_config(name_or_path) -> TrainConfig:
    """Load `training/configs/<name>.json` or any JSON file path."""
    path = Path(name_or_path)
    if not path.suffix:
        path = TRAIN_CONFIG_DIR / f"{name_or_path}.json"
    if not path.is_file():
        known = ", ".join(sorted(p.stem for p in TRAIN_CONFIG_DIR.glob("*.json")))
        raise FileNotFoundError(f"train config '{name_or_path}' not found; known: {known}, or give a JSON path")
    return TrainConfig.from_dict(_read_with_bases(path, ()))


SECTIONS = ("loss", "teacher", "nlcl", "eval")


def _read_with_bases(path: Path, chain: tuple) -> dict:
    """A config file's dict with its `base` chain applied (the base is a config name or a path)."""
    if path in chain:
        raise ValueError(f"train config {path.stem}: 'base' configs form a loop: "
                         f"{' -> '.join(p.stem for p in chain + (path,))}")
    d = json.loads(path.read_text())
    d.setdefault("name", path.stem)
    base = d.pop("base", None)
    if base is None:
        return d
    base_path = Path(base) if Path(base).suffix else TRAIN_CONFIG_DIR / f"{base}.json"
    if not base_path.is_file():
        raise FileNotFoundError(f"train config {d['name']}: base '{base}' not found ({base_path})")
    merged = _read_with_bases(base_path, chain + (path,))
    for key, value in d.items():
        merged[key] = {**merged.get(key, {}), **value} if key in SECTIONS else value
    return merged
