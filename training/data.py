"""Data order as a pure function of (seed, step): what makes `--resume` continue exactly.

Global sample position q = step * batch * world + rank * batch + j runs through epoch
e = q // N in the order randperm(N, seed=(seed, e)); item i of epoch e is fetched as the single
index e * N + i from `EpochView`, which sets the synthesizer's epoch (new weather every epoch) and
applies random flips seeded by (seed, e, i). Nothing depends on how many steps ran before, so a
run resumed at step s draws the same batches as an uninterrupted one, with any number of workers.
"""
from typing import Iterator, List

import torch
from torch.utils.data import Dataset, Sampler

_FLIP_KEYS = ("weathered", "clean", "density")


def _mix(*xs: int) -> int:
    """A 63-bit seed from a few integers (stable across runs and platforms)."""
    h = 0x9E3779B97F4A7C15
    for x in xs:
        h = (h ^ (int(x) + 0x9E3779B97F4A7C15 + (h << 6) + (h >> 2))) & 0x7FFFFFFFFFFFFFFF
    return h


def generator_for(*xs: int, device="cpu") -> torch.Generator:
    return torch.Generator(device=device).manual_seed(_mix(*xs))


class EpochView(Dataset):
    """Index e * N + i -> item i of `base` at epoch e, mirrored left-right at random (seeded).
    No vertical flips: an upside-down scene puts haze and sky at the bottom, which photos never do."""

    def __init__(self, base: Dataset, seed: int = 0, flips: bool = True):
        self.base, self.seed, self.flips = base, seed, flips
        self.n = len(base)
        self._epoch = None
        if self.n == 0:
            raise ValueError("the training dataset is empty; check `data_roots` in the train config")

    def __len__(self) -> int:
        return self.n

    def __getitem__(self, k: int) -> dict:
        epoch, i = divmod(int(k), self.n)
        if epoch != self._epoch and hasattr(self.base, "set_epoch"):
            self.base.set_epoch(epoch)
        self._epoch = epoch
        item = dict(self.base[i])
        if self.flips:
            g = generator_for(self.seed, epoch, i, 1)
            if torch.rand(1, generator=g).item() < 0.5:
                for key in _FLIP_KEYS:
                    if key in item:
                        item[key] = torch.flip(item[key], [-1])
        return item


class StepBatchSampler(Sampler[List[int]]):
    """Yields the batches of steps start_step, start_step + 1, ..., total_steps - 1 for one rank."""

    def __init__(self, n: int, batch: int, seed: int, start_step: int, total_steps: int,
                 rank: int = 0, world: int = 1):
        self.n, self.batch, self.seed = n, batch, seed
        self.start_step, self.total_steps, self.rank, self.world = start_step, total_steps, rank, world
        self._perm_epoch, self._perm = None, None

    def _perm_of(self, epoch: int) -> torch.Tensor:
        if epoch != self._perm_epoch:
            self._perm = torch.randperm(self.n, generator=generator_for(self.seed, epoch, 2))
            self._perm_epoch = epoch
        return self._perm

    def batch_at(self, step: int) -> List[int]:
        first = (step * self.world + self.rank) * self.batch
        out = []
        for q in range(first, first + self.batch):
            epoch, pos = divmod(q, self.n)
            out.append(epoch * self.n + int(self._perm_of(epoch)[pos]))
        return out

    def __iter__(self) -> Iterator[List[int]]:
        for step in range(self.start_step, self.total_steps):
            yield self.batch_at(step)

    def __len__(self) -> int:
        return max(0, self.total_steps - self.start_step)
