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


@pytest.mark.parametrize("name", ["bogus", "cuda:x", "meta", "CPU", ""])
def test_a_bogus_device_lists_the_choices(name):
    with pytest.raises(ValueError, match=rf"--device {name}: not a device; choose one of auto, cpu, cuda, cuda:N, mps"):
        pick_device(name)


def test_the_command_line_refuses_a_bogus_device_before_any_work(tmp_path, capsys):
    from weather_restore.cli.main import main
    for argv in (["restore", str(tmp_path / "never_read.png")], ["train", "--config", "tiny", "--out", str(tmp_path)]):
        with pytest.raises(SystemExit) as e:
            main(argv + ["--device", "bogus"])
        assert e.value.code == 2
        assert "--device bogus: not a device; choose one of auto, cpu, cuda, cuda:N, mps" in capsys.readouterr().err
