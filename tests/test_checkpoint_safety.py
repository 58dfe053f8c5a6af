"""Checkpoints load without unpickling code (torch.load weights_only=True), RNG states included."""
import random

import numpy as np
import pytest
import torch

from weather_restore.training.checkpoint import load_checkpoint, rng_state, save_atomic, set_rng_state


def _ckpt(**extra):
    return {"model": {}, "ema": {}, "optimizer": {}, "scheduler": {}, "step": 3, "rng": rng_state(),
            "config": {"name": "t"}, **extra}


def test_rng_state_round_trips_through_a_weights_only_checkpoint(tmp_path):
    random.seed(1), np.random.seed(2), torch.manual_seed(3)
    path = save_atomic(_ckpt(), tmp_path / "last.pt")
    expected = (random.random(), np.random.rand(), torch.rand(1).item())
    random.seed(9), np.random.seed(9), torch.manual_seed(9)          # scramble, then restore
    set_rng_state(load_checkpoint(path)["rng"])
    assert (random.random(), np.random.rand(), torch.rand(1).item()) == expected


class Payload:                                                        # any pickled object
    pass


def test_checkpoint_with_pickled_objects_is_refused(tmp_path):
    path = save_atomic(_ckpt(extra=Payload()), tmp_path / "evil.pt")
    with pytest.raises(RuntimeError, match="unreadable"):
        load_checkpoint(path)
