"""Architecture configs are data: one JSON per variant in `configs/`, loaded into this dataclass.

A weights file stores its config in its metadata, so a file alone rebuilds its network
(see `weights_io.py`). Bigger variants are new JSON files, not new code.
"""
import dataclasses
import json
from pathlib import Path
from typing import List

CONFIG_DIR = Path(__file__).parent / "configs"


@dataclasses.dataclass(frozen=True)
class RestorerConfig:
    name: str = "s"
    dims: List[int] = (24, 48, 96)         # channels per U-Net level; the last level is the bottleneck
    enc_blocks: List[int] = (1, 1, 2)      # dual-aggregation blocks per encoder level (last = bottleneck)
    dec_blocks: List[int] = (1, 1)         # blocks per decoder level, from deep to shallow (len = levels - 1)
    head_dim: int = 16                     # channels per attention head (local path and CWP)
    window: int = 8                        # side of the local self-attention window
    mlp_ratio: float = 2.0                 # hidden width of the gated feed-forward, relative to dim
    ssm_state: int = 8                     # N, state size of the selective scan (global path)
    ssm_chunk: int = 32                    # chunk length of the parallel scan (memory vs speed, same result)
    density_level: int = 1                 # encoder level whose features feed the density head
    density_refine: int = 0                # channels of the full-resolution density refiner (0 = none)
    density_refine_blocks: int = 2         # its dilated residual blocks (dilations 1, 2, 4, ...)
    sar_hidden_ratio: float = 1.0          # width of the SAR residual branch, relative to dim

    def __post_init__(self):
        object.__setattr__(self, "dims", list(self.dims))
        object.__setattr__(self, "enc_blocks", list(self.enc_blocks))
        object.__setattr__(self, "dec_blocks", list(self.dec_blocks))
        levels = len(self.dims)
        if levels < 2 or len(self.enc_blocks) != levels or len(self.dec_blocks) != levels - 1:
            raise ValueError(
                f"config '{self.name}': need >= 2 levels, len(enc_blocks) == len(dims) and "
                f"len(dec_blocks) == len(dims) - 1; got dims={self.dims}, "
                f"enc_blocks={self.enc_blocks}, dec_blocks={self.dec_blocks}")
        bad = [d for d in self.dims if d % self.head_dim]
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

    @property
    def stride(self) -> int:
        """Input sides are padded to a multiple of this (down-sampling times the window)."""
        return self.window * 2 ** (self.levels - 1)

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
