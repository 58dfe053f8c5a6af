"""Architecture configs are data: one JSON per variant in `configs/`, loaded into this dataclass.

A weights file stores its config in its metadata, so a file alone rebuilds its network
(see `weights_io.py`). Bigger variants are new JSON files, not new code.
"""
import dataclasses
import json
from pathlib import Path
from typing import List, Optional

CONFIG_DIR = Path(__file__).parent / "configs"
BLOCK_TYPES = ("dual", "conv")
MAX_LEVELS = 8
MAX_STRIDE = 1024                          # inputs are padded to the stride: a huge one is a memory bomb
# (low, high) of each number a config may hold: far above every shipped config, low enough that a
# hostile weights file's metadata cannot make building the network exhaust memory or time
RANGES = {"dims": (1, 4096), "enc_blocks": (0, 64), "dec_blocks": (0, 64), "head_dim": (1, 4096),
          "window": (1, 64), "ssm_state": (1, 256), "ssm_chunk": (1, 4096), "density_level": (0, MAX_LEVELS - 1),
          "density_refine": (0, 4096), "density_refine_blocks": (0, 8), "density_refine_scale": (1, 4), "mlp_ratio": (0.0, 16.0),
          "sar_hidden_ratio": (0.0, 16.0), "drop_stage": (1, 1024)}
DROP_STAGE_LEVELS = (2, 6)


def _check_number(cfg: str, key: str, value, integer: bool, label: str = "") -> None:
    low, high = RANGES[key]
    ok_type = isinstance(value, int) if integer else isinstance(value, (int, float))
    if isinstance(value, bool) or not ok_type or not (low <= value <= high) or (not integer and value <= low):
        want = f"an integer in [{low}, {high}]" if integer else f"a number in ({low:g}, {high:g}]"
        raise ValueError(f"config '{cfg}': {label or key} must be {want}; got {value!r}")


def _check_types(c: "RestorerConfig") -> None:
    """Types and ranges of every field, before anything is built from them."""
    if not isinstance(c.name, str):
        raise ValueError(f"config {c.name!r}: name must be a string")
    for key in ("dims", "enc_blocks", "dec_blocks", "block_types", "cwp_levels", "prior_extra_levels"):
        value = getattr(c, key)
        if value is None and key in ("block_types", "cwp_levels"):
            continue
        if not isinstance(value, (list, tuple)) or len(value) > MAX_LEVELS:
            raise ValueError(f"config '{c.name}': {key} must be a list of at most {MAX_LEVELS} items (one per "
                             f"level); got {value!r}")
        if key == "block_types":
            if not all(v in BLOCK_TYPES for v in value):
                raise ValueError(f"config '{c.name}': block_types needs one of {BLOCK_TYPES} per level; got {value!r}")
        elif key in ("cwp_levels", "prior_extra_levels"):
            if not all(isinstance(v, int) and not isinstance(v, bool) for v in value):
                raise ValueError(f"config '{c.name}': {key} must be level indices; got {value!r}")
        else:
            for v in value:
                _check_number(c.name, key, v, integer=True, label=f"each of {key}")
    for key in ("head_dim", "window", "ssm_state", "ssm_chunk", "density_level", "density_refine",
                "density_refine_blocks", "density_refine_scale"):
        _check_number(c.name, key, getattr(c, key), integer=True)
    for key in ("mlp_ratio", "sar_hidden_ratio"):
        _check_number(c.name, key, getattr(c, key), integer=False)
    if c.drop_stage is not None:
        lo, hi = DROP_STAGE_LEVELS
        if not isinstance(c.drop_stage, (list, tuple)) or not lo <= len(c.drop_stage) <= hi:
            raise ValueError(f"config '{c.name}': drop_stage must be null or a list of {lo}-{hi} channel counts "
                             f"(one per level of the raindrop stage); got {c.drop_stage!r}")
        for v in c.drop_stage:
            _check_number(c.name, "drop_stage", v, integer=True, label="each of drop_stage")
    if not isinstance(c.channels_last, bool):
        raise ValueError(f"config '{c.name}': channels_last must be true or false; got {c.channels_last!r}")
    if c.dims and int(min(c.dims) * c.mlp_ratio) < 1:
        raise ValueError(f"config '{c.name}': mlp_ratio {c.mlp_ratio} leaves no hidden channels at {min(c.dims)} "
                         f"channels; raise it")


@dataclasses.dataclass(frozen=True)
class RestorerConfig:
    # the defaults are the `s` variant (configs/s.json), so RestorerConfig() builds a working network
    name: str = "s"
    dims: List[int] = (16, 32, 64)         # channels per U-Net level; the last level is the bottleneck
    enc_blocks: List[int] = (1, 1, 2)      # blocks per encoder level (last = bottleneck)
    dec_blocks: List[int] = (1, 1)         # blocks per decoder level, from deep to shallow (len = levels - 1)
    head_dim: int = 8                      # channels per attention head (local path and CWP)
    window: int = 8                        # side of the local self-attention window
    mlp_ratio: float = 1.5                 # hidden width of the gated feed-forward, relative to dim
    ssm_state: int = 8                     # N, state size of the selective scan (global path)
    ssm_chunk: int = 16                    # chunk length of the parallel scan (memory vs speed, same result)
    # which block each level uses: "dual" (window attention + 4-direction scan mixed by D, CLIPHaze) or
    # "conv" (gated depthwise-conv block, cheap at full resolution). None = every level "dual" (v1-v3).
    block_types: Optional[List[str]] = None
    # levels whose blocks carry CWP cross-attention (bottleneck encoder blocks and decoder blocks).
    # None = all of them (v1-v3).
    cwp_levels: Optional[List[int]] = None
    # run the network on channels-last tensors: ~25 % faster for conv-heavy configs on CPU (measured)
    channels_last: bool = False
    density_level: int = 1                 # encoder level whose features feed the density head
    density_refine: int = 0                # channels of the full-resolution density refiner (0 = none)
    density_refine_blocks: int = 2         # its dilated residual blocks (dilations 1, 2, 4, ...)
    density_refine_scale: int = 1          # the refiner's blocks run at 1 / this resolution (1, 2 or 4)
    # encoder levels pooled into the prior head besides the bottleneck: 1-3 px rain streaks and drops
    # are clear at full resolution and faint at 1/8, where a bottleneck-only head (v1-v4.1) reads
    # their severity at about half its label. Empty = bottleneck only.
    prior_extra_levels: List[int] = ()
    sar_hidden_ratio: float = 1.0          # width of the SAR residual branch, relative to dim
    # channels per level of the raindrop stage (models/drop_stage.py) that the pipeline runs before the
    # network where the prior reads raindrops; None = no stage (every network up to weather-m-v4.16)
    drop_stage: Optional[List[int]] = None

    def __post_init__(self):
        _check_types(self)
        object.__setattr__(self, "dims", list(self.dims))
        object.__setattr__(self, "enc_blocks", list(self.enc_blocks))
        object.__setattr__(self, "dec_blocks", list(self.dec_blocks))
        for key in ("block_types", "cwp_levels", "prior_extra_levels", "drop_stage"):
            if getattr(self, key) is not None:
                object.__setattr__(self, key, list(getattr(self, key)))
        levels = len(self.dims)
        if levels < 2 or len(self.enc_blocks) != levels or len(self.dec_blocks) != levels - 1:
            raise ValueError(
                f"config '{self.name}': need >= 2 levels, len(enc_blocks) == len(dims) and "
                f"len(dec_blocks) == len(dims) - 1; got dims={self.dims}, "
                f"enc_blocks={self.enc_blocks}, dec_blocks={self.dec_blocks}")
        if self.block_types is not None and len(self.block_types) != levels:
            raise ValueError(f"config '{self.name}': block_types needs one of {BLOCK_TYPES} per level "
                             f"({levels}); got {self.block_types}")
        if self.cwp_levels is not None and any(not 0 <= i < levels for i in self.cwp_levels):
            raise ValueError(f"config '{self.name}': cwp_levels must be level indices in [0, {levels - 1}]; "
                             f"got {self.cwp_levels}")
        # levels with attention heads: window attention ("dual") or CWP
        bad = [d for i, d in enumerate(self.dims)
               if d % self.head_dim and (self.block_type(i) == "dual" or self.has_cwp(i))]
        if bad:
            raise ValueError(f"config '{self.name}': dims {bad} are not multiples of head_dim={self.head_dim}")
        if any(not 0 <= i < levels - 1 for i in self.prior_extra_levels) or \
                len(set(self.prior_extra_levels)) != len(self.prior_extra_levels):
            raise ValueError(f"config '{self.name}': prior_extra_levels must be distinct level indices in "
                             f"[0, {levels - 2}] (the bottleneck {levels - 1} always feeds the prior head); "
                             f"got {self.prior_extra_levels}")
        if not 0 <= self.density_level < levels:
            raise ValueError(f"config '{self.name}': density_level must be in [0, {levels - 1}]")
        if self.stride % self.density_refine_scale:
            raise ValueError(f"config '{self.name}': density_refine_scale {self.density_refine_scale} must divide the "
                             f"input stride {self.stride} (use 1, 2 or 4)")
        if self.stride > MAX_STRIDE:
            raise ValueError(f"config '{self.name}': stride {self.stride} (window x 2^level at window-attention "
                             f"levels, 2^(levels - 1)) is over {MAX_STRIDE}; use a smaller window or fewer levels")

    @property
    def levels(self) -> int:
        return len(self.dims)

    def block_type(self, level: int) -> str:
        return "dual" if self.block_types is None else self.block_types[level]

    def has_cwp(self, level: int) -> bool:
        return self.cwp_levels is None or level in self.cwp_levels

    @property
    def stride(self) -> int:
        """Input sides are padded to a multiple of this: the total down-sampling, and the window at
        every level with window attention, so that tiles share the whole image's window grid."""
        dual = [self.window * 2 ** i for i in range(self.levels) if self.block_type(i) == "dual"]
        return max([2 ** (self.levels - 1)] + dual)

    def to_json(self) -> str:
        d = dataclasses.asdict(self)
        if d["drop_stage"] is None:          # a network without the stage keeps the JSON it always had
            del d["drop_stage"]
        return json.dumps(d, sort_keys=True)

    @classmethod
    def from_dict(cls, d: dict) -> "RestorerConfig":
        if not isinstance(d, dict):
            raise ValueError(f"a restorer config must be a JSON object; got {type(d).__name__}")
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(d) - known)
        if unknown:
            raise ValueError(f"unknown restorer config keys {unknown}; known keys: {sorted(known)}")
        return cls(**d)

    @classmethod
    def from_json(cls, text: str) -> "RestorerConfig":
        try:
            d = json.loads(text)
        except (TypeError, ValueError) as e:
            raise ValueError(f"the restorer config is not valid JSON ({e})") from None
        return cls.from_dict(d)


def list_configs() -> List[str]:
    return sorted(p.stem for p in CONFIG_DIR.glob("*.json"))


def load_config(name_or_path: str) -> RestorerConfig:
    """Load a config by variant name ('tiny', 's', ...) or by path to a JSON file."""
    path = Path(name_or_path)
    if not path.suffix:
        path = CONFIG_DIR / f"{name_or_path}.json"
    if not path.is_file():
        raise FileNotFoundError(
            f"restorer config '{name_or_path}' not found; known variants: {', '.join(list_configs())}, "
            f"or give the path of a JSON file")
    try:
        return RestorerConfig.from_json(path.read_text())
    except ValueError as e:
        raise ValueError(f"{path}: {e}; fix the file or start from one in {CONFIG_DIR}") from None
