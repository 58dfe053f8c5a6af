"""`python weather.py model-cost`: parameters, GMACs/MP, CPU seconds/MP, effective GMAC/s and peak
memory per config (effective GMAC/s = counted MACs / wall time: how well the work fits the hardware).

GMACs are counted with torch.utils.flop_counter (one multiply-add = 2 FLOPs). Timing is the median
of several whole-image forward passes after a warm-up, each size in a fresh process so that the
peak resident memory (ru_maxrss) belongs to that size alone.
"""
import json
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

LAUNCHER = Path(__file__).resolve().parents[1] / "weather.py"


def add_parser(sub):
    p = sub.add_parser("model-cost", help="measure parameters, GMACs/MP, speed and memory per config")
    p.add_argument("--configs", default="s,m,l", help="comma-separated config names or JSON paths")
    p.add_argument("--sizes", default="512,1024", help="square image sides to time")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--measure-one", metavar="CONFIG:SIDE", help=argparse_hidden())
    p.set_defaults(run=run)


def argparse_hidden():
    import argparse
    return argparse.SUPPRESS


def _gmacs_per_mp(model, side=256):
    import torch
    from torch.utils.flop_counter import FlopCounterMode
    with FlopCounterMode(display=False) as counter, torch.no_grad():
        model(torch.rand(1, 3, side, side))
    return counter.get_total_flops() / 2 / 1e9 * 1e6 / (side * side)


def _time_one(config, side, threads, repeats):
    """Runs in a fresh process (see `measure`); prints one JSON line."""
    import torch
    from ..models import WeatherRestorer, load_config
    torch.set_num_threads(threads)
    torch.manual_seed(0)
    model = WeatherRestorer(load_config(config)).eval()
    x = torch.rand(1, 3, side, side)
    rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    times = []
    with torch.no_grad():
        model(x)                                                  # warm-up
        for _ in range(repeats):
            t0 = time.perf_counter()
            model(x)
            times.append(time.perf_counter() - t0)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps({"seconds": statistics.median(times), "rss_before_mb": rss_before, "peak_mb": peak}))


def measure(config, side, threads, repeats):
    cmd = [sys.executable, str(LAUNCHER), "model-cost", "--measure-one", f"{config}:{side}",
           "--threads", str(threads), "--repeats", str(repeats)]
    out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
    r = json.loads(out.strip().splitlines()[-1])
    return r["seconds"], r["rss_before_mb"], r["peak_mb"]


def run(args):
    if args.measure_one:
        config, side = args.measure_one.rsplit(":", 1)
        _time_one(config, int(side), args.threads, args.repeats)
        return 0
    import torch
    from ..models import WeatherRestorer, load_config
    sizes = [int(s) for s in args.sizes.split(",")]
    print(f"torch {torch.__version__}, CPU, {args.threads} threads, median of {args.repeats} runs\n")
    header = "| config | params | GMACs/MP | " + " | ".join(
        f"s/MP @{s}² | GMAC/s @{s}² | peak RSS MB @{s}²" for s in sizes) + " |"
    print(header)
    print("|" + "---|" * (3 + 3 * len(sizes)))
    for name in args.configs.split(","):
        model = WeatherRestorer(load_config(name)).eval()
        params = sum(p.numel() for p in model.parameters())
        gmacs = _gmacs_per_mp(model)
        row = [name, f"{params / 1e6:.3f} M", f"{gmacs:.1f}"]
        for side in sizes:
            seconds, _, peak = measure(name, side, args.threads, args.repeats)
            s_per_mp = seconds / (side * side / 1e6)
            row += [f"{s_per_mp:.2f}", f"{gmacs / s_per_mp:.1f}", f"{peak:.0f}"]
        print("| " + " | ".join(row) + " |", flush=True)
    return 0
