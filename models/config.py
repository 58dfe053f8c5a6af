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
    sar_hidden_ratio: float = 1.0          # width of the SAR residual branch, relative to dim

    def __post_init__(self):
        object.__setattr__(self, "dims", list(self.dims))
        object.__setattr__(self, "enc_blocks", list(self.enc_blocks))
        object.__setattr__(self, "dec_blocks", list(self.dec_blocks))
        for key in ("block_types", "cwp_levels"):
            if getattr(self, key) is not None:
                object.__setattr__(self, key, list(getattr(self, key)))
        levels = len(self.dims)
        if levels < 2 or len(self.enc_blocks) != levels or len(self.dec_blocks) != levels - 1:
            raise ValueError(
                f"config '{self.name}': need >= 2 levels, len(enc_blocks) == len(dims) and "
                f"len(dec_blocks) == len(dims) - 1; got dims={self.dims}, "
                f"enc_blocks={self.enc_blocks}, dec_blocks={self.dec_blocks}")
        if self.block_types is not None and (len(self.block_types) != levels
                                             or set(self.block_types) - set(BLOCK_TYPES)):
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
        if not 0 <= self.density_level < levels:
            raise ValueError(f"config '{self.name}': density_level must be in [0, {levels - 1}]")
        if self.density_refine < 0 or self.density_refine_blocks < 0:
            raise ValueError(f"config '{self.name}': density_refine and density_refine_blocks must be >= 0; "
                             f"got {self.density_refine}, {self.density_refine_blocks}")

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
        return json.dumps(dataclasses.asdict(self), sort_keys=True)

    @classmethod
    def from_dict(cls, d: dict) -> "RestorerConfig":
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(d) - known)
        if unknown:
            raise ValueError(f"unknown restorer config keys {unknown}; known keys: {sorted(known)}")
        return cls(**d)

    @classmethod
    def from_json(cls, text: str) -> "RestorerConfig":
        return cls.from_dict(json.loads(text))


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
    return RestorerConfig.from_json(path.read_text())
