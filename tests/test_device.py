"""The shared device rule (models/device.py) used by the CLI commands and the trainer."""
import pytest
import torch

from weather_restore.models.device import pick_device


def test_explicit_cpu_and_auto():
    assert pick_device("cpu") == torch.device("cpu")
    expected = "cuda" if torch.cuda.is_available() else ("mps" if torch.backends.mps.is_available() else "cpu")
    assert pick_device("auto").type == expected


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has CUDA")
def test_absent_cuda_is_refused_with_the_fix():
    with pytest.raises(ValueError, match="--device cuda:1: this torch build sees no CUDA GPU; use --device cpu"):
        pick_device("cuda:1")
