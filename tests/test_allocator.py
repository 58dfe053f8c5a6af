"""pipeline/allocator.py: glibc's thresholds set once, only where they apply, never over the user's own."""
import ctypes
import sys

import pytest
import torch

from weather_restore.models import WeatherRestorer
from weather_restore.models.config import RestorerConfig
from weather_restore.pipeline import allocator
from weather_restore.pipeline.restore import restore_batch


@pytest.fixture
def fresh(monkeypatch):
    """A process where the tuning has not run yet, with no MALLOC_* settings and no opt-out."""
    monkeypatch.setattr(allocator, "_applied", None)
    for k in allocator.USER_SETTINGS + (allocator.OPT_OUT,):
        monkeypatch.delenv(k, raising=False)
    calls = []

    class FakeLibc:
        def __init__(self, ok):
            def mallopt(param, value):
                calls.append((param, value))
                return ok
            self.mallopt = mallopt

    def use(ok=1):
        monkeypatch.setattr(allocator.ctypes, "CDLL", lambda name: FakeLibc(ok))
        monkeypatch.setattr(allocator.sys, "platform", "linux")
        return calls
    return use


def test_sets_both_thresholds_once(fresh):
    calls = fresh()
    assert allocator.tune_cpu_allocator() is True
    assert allocator.tune_cpu_allocator() is True
    assert calls == [(allocator.M_MMAP_THRESHOLD, 32 << 20), (allocator.M_TRIM_THRESHOLD, 256 << 20)]


def test_users_own_settings_and_the_opt_out_win(fresh, monkeypatch):
    calls = fresh()
    monkeypatch.setenv("MALLOC_TRIM_THRESHOLD_", "1000")
    assert allocator.tune_cpu_allocator() is False
    monkeypatch.setattr(allocator, "_applied", None)
    monkeypatch.delenv("MALLOC_TRIM_THRESHOLD_")
    monkeypatch.setenv(allocator.OPT_OUT, "0")
    assert allocator.tune_cpu_allocator() is False
    assert calls == []


def test_a_refusing_or_missing_mallopt_is_not_an_error(fresh, monkeypatch):
    calls = fresh(ok=0)
    assert allocator.tune_cpu_allocator() is False and len(calls) == 1
    monkeypatch.setattr(allocator, "_applied", None)
    monkeypatch.setattr(allocator.ctypes, "CDLL", lambda name: object())        # no mallopt attribute
    assert allocator.tune_cpu_allocator() is False
    monkeypatch.setattr(allocator, "_applied", None)
    monkeypatch.setattr(allocator.sys, "platform", "darwin")
    assert allocator.tune_cpu_allocator() is False


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc only")
def test_real_glibc_accepts_the_values():
    try:
        mallopt = ctypes.CDLL(None).mallopt
    except AttributeError:
        pytest.skip("this libc has no mallopt")
    assert mallopt(allocator.M_MMAP_THRESHOLD, allocator.MMAP_THRESHOLD) == 1
    assert mallopt(allocator.M_TRIM_THRESHOLD, allocator.TRIM_THRESHOLD) == 1


def test_restore_batch_tunes_on_cpu(fresh):
    calls = fresh()
    cfg = RestorerConfig(name="t", dims=[8, 16], enc_blocks=[1, 1], dec_blocks=[1], head_dim=8, window=4,
                         ssm_state=4, ssm_chunk=4)
    out = restore_batch(WeatherRestorer(cfg).eval(), torch.rand(1, 3, 16, 16))
    assert out.shape == (1, 3, 16, 16) and len(calls) == 2


def test_training_takes_no_map_from_mmap_and_keeps_freed_memory(fresh, monkeypatch):
    calls = fresh()
    assert allocator.tune_cpu_allocator_for_training() is True
    assert calls == [(allocator.M_MMAP_MAX, 0), (allocator.M_TRIM_THRESHOLD, allocator.TRAINING_TRIM_THRESHOLD)]
    assert allocator.tune_cpu_allocator() is True and len(calls) == 2     # restoring keeps the training settings
    monkeypatch.setenv("MALLOC_MMAP_MAX_", "0")                            # the user's own settings win here too
    calls.clear()
    assert allocator.tune_cpu_allocator_for_training() is False and calls == []
