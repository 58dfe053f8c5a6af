"""glibc malloc settings for restoring on the CPU: keep freed memory for the next tile.

A 512 px tile allocates and frees maps of 20-45 MiB dozens of times. With glibc's default, adaptive
settings the heap is handed back to the system whenever more than about 64 MiB lies free at its
top, and every map over 32 MiB gets fresh pages from the kernel, so the next tile page-faults its
way through the same memory again. Fixing the mmap threshold at 32 MiB (the most every 64-bit glibc accepts) and
trimming only beyond 256 MiB made a 1 MP restore of weather-m-v4.6 about 15 % faster on two cores
(docs/BENCHMARKS.md, Speed). The cost: up to 256 MiB of freed memory stays with the process.

Applied once per process, on Linux with glibc, by `pipeline.restore.restore_batch` when the network
runs on the CPU (so the command line and the ComfyUI nodes alike). Left alone when the user set
glibc's own MALLOC_*_ variables, or where the C library has no `mallopt` or refuses the values;
turned off with WEATHER_RESTORE_MALLOC_TUNING=0.
"""
import ctypes
import logging
import os
import sys
from typing import Optional

log = logging.getLogger(__name__)

OPT_OUT = "WEATHER_RESTORE_MALLOC_TUNING"
M_TRIM_THRESHOLD, M_MMAP_THRESHOLD, M_MMAP_MAX = -1, -3, -4   # mallopt parameter numbers (malloc.h)
MMAP_THRESHOLD = 32 << 20                         # the largest every 64-bit glibc accepts
TRIM_THRESHOLD = 256 << 20
# training keeps maps of 50-80 MiB (a batch of activations) that no mmap threshold covers: there no map comes
# from mmap at all, and up to TRAINING_TRIM_THRESHOLD of freed memory stays (the raindrop stage on two cores:
# 0.92 -> 0.60 s a step, system time 50 % -> 0; docs/EXPERIMENTS.md)
TRAINING_TRIM_THRESHOLD = 1 << 30
USER_SETTINGS = ("MALLOC_TRIM_THRESHOLD_", "MALLOC_MMAP_THRESHOLD_", "MALLOC_TOP_PAD_", "MALLOC_MMAP_MAX_")

_applied: Optional[bool] = None


def tune_cpu_allocator() -> bool:
    """Set the two thresholds once per process; True when they are in force (now or before)."""
    global _applied
    if _applied is None:
        _applied = _apply()
    return _applied


def tune_cpu_allocator_for_training() -> bool:
    """For a training process on the CPU: no mmap, freed memory kept up to TRAINING_TRIM_THRESHOLD (after
    which the restore settings are not applied: this process keeps these); True when in force."""
    global _applied
    _applied = _apply(training=True)
    return _applied


def _apply(training: bool = False) -> bool:
    if os.environ.get(OPT_OUT, "1").strip() == "0" or not sys.platform.startswith("linux"):
        return False
    if any(k in os.environ for k in USER_SETTINGS):
        return False                              # the user tuned glibc already: theirs wins
    try:
        mallopt = ctypes.CDLL(None).mallopt       # absent under musl builds without it
    except (OSError, AttributeError):
        return False
    mallopt.argtypes, mallopt.restype = (ctypes.c_int, ctypes.c_int), ctypes.c_int
    if training:
        return mallopt(M_MMAP_MAX, 0) == 1 and mallopt(M_TRIM_THRESHOLD, TRAINING_TRIM_THRESHOLD) == 1
    ok = mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD) == 1 and mallopt(M_TRIM_THRESHOLD, TRIM_THRESHOLD) == 1
    if ok:
        log.debug("glibc malloc: mmap threshold %d MiB, trim threshold %d MiB (%s=0 turns this off)",
                  MMAP_THRESHOLD >> 20, TRIM_THRESHOLD >> 20, OPT_OUT)
    return ok
