"""Time the global (four-direction selective scan) path at the shapes a config gives it, per chunk size.

    .venv/bin/python scripts/scan_bench.py --config m --tile 512 --chunks 8,16,32,64 --threads 2

For every level of the config that has "dual" blocks, a GlobalScan of that width runs on the map a
`tile`-pixel tile has there; the median of --repeats forward passes (and forward + backward with
--backward) is printed per chunk size, so the chunk can be chosen by measurement. Compare numbers
from one run only: this machine's speed varies by 20 % between runs.
"""
import argparse
import statistics
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from weather import load_pack  # noqa: E402

pack = load_pack()
from weather_restore.models.config import load_config  # noqa: E402
from weather_restore.models.global_scan import GlobalScan  # noqa: E402


def time_scan(block, x, repeats, backward):
    times = []
    for i in range(repeats + 1):
        x_ = x.detach().requires_grad_(backward)
        t0 = time.perf_counter()
        if backward:
            block(x_).sum().backward()
        else:
            with torch.no_grad():
                block(x_)
        if i:                                            # the first run is a warm-up
            times.append(time.perf_counter() - t0)
    return statistics.median(times)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--config", default="m")
    ap.add_argument("--tile", type=int, default=512)
    ap.add_argument("--batch", type=int, default=1)
    ap.add_argument("--chunks", default="8,16,32,64")
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--backward", action="store_true", help="time forward + backward (training)")
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    cfg = load_config(args.config)
    print(f"config {cfg.name}, tile {args.tile}, batch {args.batch}, {args.threads} threads, "
          f"{'forward+backward' if args.backward else 'forward'}, median of {args.repeats}")
    print("| level | map | dim | " + " | ".join(f"chunk {c} (ms)" for c in args.chunks.split(",")) + " |")
    print("|---|---|---|" + "---|" * len(args.chunks.split(",")))
    for level in range(cfg.levels):
        if cfg.block_type(level) != "dual":
            continue
        side, dim = args.tile // 2 ** level, cfg.dims[level]
        torch.manual_seed(0)
        x = torch.randn(args.batch, dim, side, side)
        row = []
        for chunk in (int(c) for c in args.chunks.split(",")):
            block = GlobalScan(dim, cfg.head_dim, cfg.ssm_state, chunk)
            row.append(f"{1e3 * time_scan(block, x, args.repeats, args.backward):.1f}")
        print(f"| {level} | {side}x{side} | {dim} | " + " | ".join(row) + " |", flush=True)


if __name__ == "__main__":
    main()
