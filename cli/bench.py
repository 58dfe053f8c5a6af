"""`python weather.py bench`: seconds per megapixel and peak memory of a restorer on this machine.

    python weather.py bench --sizes 1,4 --threads 2 --repeats 3          (the bundled default weights)
    python weather.py bench --config s --sizes 1,4                        (random weights: speed only)

Each size runs in a fresh subprocess, so its peak memory (the process's peak resident set,
`ru_maxrss`; on CUDA also `torch.cuda.max_memory_allocated`) belongs to that size alone. An image
of the size (4:3, random pixels) is restored exactly as `restore` does it (pipeline.restore_batch:
signals at the fixed analysis size, then tiles with feathered overlap). The time is the median of --repeats runs after a one-tile warm-up.
Page faults / image: the minor page faults of one timed run (`ru_minflt`), i.e. fresh pages the
allocator took from the kernel; pipeline/allocator.py exists to keep that number small on the CPU.
Prints a Markdown table with the device, threads, precision and torch version.
"""
import argparse
import json
import logging
import math
import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path

import torch

from ..models.config import load_config
from ..models.restorer import WeatherRestorer
from ..models.tiling import plan_tiles
from ..models.weights_io import WeightsError
from ..pipeline.restore import restore_batch
from .model_loading import WeightsChoice, add_ensemble_argument, add_weather_scale_argument, add_model_arguments, add_tile_arguments, apply_threads, describe, load_model, pick_device, pick_dtype

log = logging.getLogger(__name__)
LAUNCHER = Path(__file__).resolve().parents[1] / "weather.py"


def add_parser(sub):
    p = sub.add_parser("bench", help="seconds per megapixel and peak memory of a restorer",
                       description="Seconds per megapixel and peak memory of a restorer at the given sizes, "
                                   "each size in a fresh process, tiled as `restore` does; prints a Markdown table.")
    add_model_arguments(p)
    p.add_argument("--config", default=None, metavar="NAME",
                   help="time a randomly initialised network of this config instead of weights (speed only)")
    p.add_argument("--sizes", default="1,4", help="comma-separated image sizes in megapixels (default 1,4)")
    p.add_argument("--repeats", type=int, default=3, help="timed runs per size; the median is reported (default 3)")
    add_tile_arguments(p)
    add_ensemble_argument(p)
    add_weather_scale_argument(p)
    p.add_argument("--worker", type=float, default=None, help=argparse.SUPPRESS)   # one size, JSON out
    p.set_defaults(run=run)


def image_shape(megapixels: float):
    """(H, W) of a 4:3 image of about `megapixels` million pixels."""
    W = max(1, round(math.sqrt(megapixels * 1e6 * 4 / 3)))
    return max(1, round(W * 3 / 4)), W


def _rusage():
    """This process's resource usage, or None where the `resource` module is missing (Windows)."""
    try:
        import resource
    except ImportError:
        return None
    return resource.getrusage(resource.RUSAGE_SELF)


def _peak_rss_mib() -> float:
    usage = _rusage()
    if usage is None:
        return float("nan")
    return usage.ru_maxrss / (2 ** 20 if sys.platform == "darwin" else 2 ** 10)   # bytes on macOS, KiB on Linux


def _minor_faults() -> float:
    """Page faults served without I/O so far: fresh pages the allocator got from the kernel."""
    usage = _rusage()
    return float("nan") if usage is None else float(usage.ru_minflt)


def _build(args):
    if args.config:
        dev = pick_device(args.device)
        torch.manual_seed(0)
        model = WeatherRestorer(load_config(args.config)).to(dev, pick_dtype(args.precision, dev)).eval()
        return model, WeightsChoice(Path(f"random {args.config}"), {"id": f"random-init '{args.config}'"})
    return load_model(args.weights, args.device, args.precision)


def _sync(device):
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    elif device.type == "mps":
        torch.mps.synchronize()


def worker(args) -> dict:
    """Time one size in this process; returns the row as a dict."""
    apply_threads(args.threads)
    model, choice = _build(args)
    device = next(model.parameters()).device
    H, W = image_shape(args.worker)
    gen = torch.Generator().manual_seed(0)
    x = torch.rand(1, 3, H, W, generator=gen)
    rss_before = _peak_rss_mib()
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)

    def once(img):                          # exactly what `restore` and the Restore node run
        restore_batch(model, img, tile=args.tile, overlap=args.overlap, mirror_ensemble=args.mirror_ensemble,
                      weather_scale=args.weather_scale)
        _sync(device)

    once(x[..., :min(H, args.tile), :min(W, args.tile)])                # warm-up: one tile
    times, faults = [], _minor_faults()
    for _ in range(args.repeats):
        t0 = time.perf_counter()
        once(x)
        times.append(time.perf_counter() - t0)
    faults = (_minor_faults() - faults) / args.repeats
    mp = H * W / 1e6
    return dict(megapixels=mp, height=H, width=W, tiles=len(plan_tiles(H, W, args.tile, args.overlap,
                                                                       model.cfg.stride)),
                seconds=statistics.median(times), s_per_mp=statistics.median(times) / mp, times=times,
                rss_before_mib=rss_before, peak_rss_mib=_peak_rss_mib(), page_faults=faults,
                peak_gpu_mib=torch.cuda.max_memory_allocated(device) / 2 ** 20 if device.type == "cuda" else None,
                device=str(device), device_name=_device_name(device), threads=torch.get_num_threads(),
                dtype=str(next(model.parameters()).dtype).replace("torch.", ""), model=describe(model, choice),
                torch=torch.__version__)


def _device_name(device) -> str:
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    try:
        with open("/proc/cpuinfo") as f:
            name = next((line.split(":", 1)[1].strip() for line in f if line.startswith("model name")), "")
    except OSError:
        name = ""
    return f"{name or platform.processor() or platform.machine()}, {os.cpu_count()} cores"


def _worker_cmd(args, size: float):
    cmd = [sys.executable, str(LAUNCHER), "bench", "--worker", str(size), "--device", args.device,
           "--precision", args.precision, "--repeats", str(args.repeats), "--tile", str(args.tile),
           "--overlap", str(args.overlap)]
    if args.mirror_ensemble:
        cmd.append("--mirror-ensemble")
    if args.weather_scale != 1.0:
        cmd += ["--weather-scale", str(args.weather_scale)]
    if args.config:
        cmd += ["--config", args.config]
    elif args.weights:
        cmd += ["--weights", args.weights]
    if args.threads:
        cmd += ["--threads", str(args.threads)]
    return cmd


def _fmt(v, digits=0):
    return "n/a" if v is None or (isinstance(v, float) and math.isnan(v)) else f"{v:.{digits}f}"


def table(rows, args) -> str:
    first = rows[0]
    lines = [f"model: {first['model']}",
             f"device: {first['device']} ({first['device_name']}), {first['threads']} threads, "
             f"{first['dtype']}, torch {first['torch']}, tile {args.tile} overlap {args.overlap}, "
             f"{'mirror ensemble (2 passes a tile), ' if args.mirror_ensemble else ''}"
             f"{f'weather scale {args.weather_scale:g} (a coarse pass first), ' if args.weather_scale != 1.0 else ''}"
             f"median of {args.repeats} after a one-tile warm-up",
             "",
             "| megapixels | size (W x H) | tiles | s / MP | s / image | peak RSS (MiB) | RSS before image (MiB) "
             "| peak GPU alloc (MiB) | page faults / image |",
             "|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for r in rows:
        lines.append(f"| {r['megapixels']:.2f} | {r['width']} x {r['height']} | {r['tiles']} | "
                     f"{r['s_per_mp']:.2f} | {r['seconds']:.2f} | {_fmt(r['peak_rss_mib'])} | "
                     f"{_fmt(r['rss_before_mib'])} | {_fmt(r['peak_gpu_mib'])} | {_fmt(r.get('page_faults'))} |")
    return "\n".join(lines)


def run(args) -> int:
    if args.repeats < 1:
        log.error("--repeats %d: need at least 1", args.repeats)
        return 2
    if not 0 <= args.overlap < args.tile:
        log.error("--tile %d --overlap %d: need 0 <= overlap < tile", args.tile, args.overlap)
        return 2
    if args.worker is not None:
        print(json.dumps(worker(args)))
        return 0
    try:
        sizes = [float(s) for s in args.sizes.split(",") if s.strip()]
    except ValueError:
        log.error("--sizes %r: give megapixels separated by commas, e.g. 1,4", args.sizes)
        return 2
    if not sizes or min(sizes) <= 0:
        log.error("--sizes %r: need at least one size above 0", args.sizes)
        return 2
    if not args.config:
        try:
            load_model(args.weights, "cpu", "fp32")      # fail here, once, with a clear message
        except (WeightsError, ValueError) as e:
            log.error("%s", e)
            return 1
    env = dict(os.environ)
    if args.threads:
        env["OMP_NUM_THREADS"] = str(args.threads)
    rows = []
    for size in sizes:
        log.info("benchmarking %.2f MP in a fresh process ...", size)
        res = subprocess.run(_worker_cmd(args, size), capture_output=True, text=True, env=env)
        if res.returncode != 0:
            log.error("the %.2f MP run failed (exit %d):\n%s", size, res.returncode, res.stderr[-3000:])
            return 1
        rows.append(json.loads(res.stdout.strip().splitlines()[-1]))
    print(table(rows, args))
    return 0
