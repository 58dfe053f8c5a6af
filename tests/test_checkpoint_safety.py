"""Checkpoints load without unpickling code (torch.load weights_only=True), RNG states included."""
import pathlib
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


class Touch:
    """Unpickling this calls Path.touch: a checkpoint that runs code when loaded."""

    def __init__(self, target):
        self.target = target

    def __reduce__(self):
        return pathlib.Path.touch, (self.target,)


def test_code_in_a_checkpoint_never_runs(tmp_path):
    target = tmp_path / "pwned"
    path = tmp_path / "evil.pt"
    torch.save(_ckpt(model={"w": Touch(target)}), path)
    torch.load(path, weights_only=False)                     # the payload works when trusted ...
    assert target.exists()
    target.unlink()
    with pytest.raises(RuntimeError, match=r"evil\.pt is unreadable"):
        load_checkpoint(path)                                # ... and never runs here
    assert not target.exists()


def _tiny_checkpoint(tmp_path, tiny_model, **change):
    state = tiny_model.state_dict()
    ck = _ckpt(model=state, ema={"model": state}, model_config=tiny_model.cfg.to_json())
    return save_atomic({**ck, **change}, tmp_path / "run.pt")


def test_checkpoint_weights_that_do_not_fit_name_the_file_and_keys(tmp_path, tiny_model):
    from weather_restore.cli.main import main
    from weather_restore.models.weights_io import WeightsError
    from weather_restore.training.export import model_from_checkpoint
    state = dict(tiny_model.state_dict())
    del state["out.bias"], state["out.weight"]
    path = _tiny_checkpoint(tmp_path, tiny_model, ema={"model": {**state, "stray.weight": torch.zeros(1)}})
    with pytest.raises(WeightsError, match=r"run\.pt \(EMA weights\) does not fit the network: 2 missing keys "
                                           r"\['out.bias', 'out.weight'\], 1 unexpected keys \['stray.weight'\]"):
        model_from_checkpoint(path)
    for change, match in [(dict(model_config="{"), "no valid model_config"),
                          (dict(model_config=None), "no valid model_config"),
                          (dict(ema={}), "holds no state dict"),
                          (dict(ema={"model": [1, 2]}), "holds no state dict")]:
        path = _tiny_checkpoint(tmp_path, tiny_model, **change)
        with pytest.raises(SystemExit, match=rf"export: .*run\.pt.*{match}"):          # a message, no traceback
            main(["export", "--checkpoint", str(path), "--out", str(tmp_path / "x.safetensors"), "--id", "x"])
    assert model_from_checkpoint(_tiny_checkpoint(tmp_path, tiny_model))[0].cfg == tiny_model.cfg
