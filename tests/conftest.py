"""Import the pack as `weather_restore`, as `weather.py` does, and keep tests on CPU and small."""
import importlib.util
import sys
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parents[1]
_spec = importlib.util.spec_from_file_location("_weather_launcher", ROOT / "weather.py")
_launcher = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_launcher)
_launcher.load_pack()

SHARED_DATA = ROOT.parent / "shared" / "data"

# test helper modules (train_helpers, comfy_api_format, fake_comfy) import by name
sys.path.insert(0, str(Path(__file__).parent))

torch.set_num_threads(1)  # tiny tensors: one thread is fastest and steady on a shared 2-core machine


@pytest.fixture(autouse=True)
def _fp32_on_every_cpu(monkeypatch):
    """Tests compute the same on every CPU: `auto` precision's bf16 autocast (CPUs with native bf16)
    is off unless a test turns it on (monkeypatch cpu_has_native_bf16)."""
    from weather_restore.pipeline import precision
    monkeypatch.setattr(precision, "cpu_has_native_bf16", lambda: False)


@pytest.fixture
def tiny_cfg():
    from weather_restore.models import load_config
    return load_config("tiny")


@pytest.fixture
def tiny_model(tiny_cfg):
    from weather_restore.models import WeatherRestorer
    torch.manual_seed(0)
    return WeatherRestorer(tiny_cfg).eval()
