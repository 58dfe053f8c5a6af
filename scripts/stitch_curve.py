"""Append one training stage's curve to the curve of the weights it started from, so a shipped
`weights/<id>.training_curve.jsonl` shows score against total training time over every stage.

    .venv/bin/python scripts/stitch_curve.py weights/weather_s_v2.training_curve.jsonl \
        runs/s_psnr_lowlr/curve.jsonl s_psnr_lowlr weights/weather_s_v3.training_curve.jsonl

Each line of a run's `curve.jsonl` has `step` and `elapsed_s` (of that run); the stitched line gets
`stage`, `stage_step`, `stage_elapsed_s`, and `total_step` / `total_elapsed_s` counted on from the
base curve's last line. A base of '-' starts a new curve. The output must not exist yet.
"""
import json
import sys
from pathlib import Path


def read_lines(path: Path):
    return [json.loads(ln) for ln in path.read_text().splitlines() if ln.strip()]


def stitch(base, run, stage: str):
    """base: stitched lines (may be empty); run: a run's curve lines -> base + the run's stitched lines."""
    step0 = base[-1]["total_step"] if base else 0
    time0 = base[-1]["total_elapsed_s"] if base else 0.0
    out = list(base)
    for line in run:
        line = dict(line)
        step, elapsed = int(line.pop("step")), float(line.pop("elapsed_s"))
        out.append({"stage": stage, "stage_step": step, "stage_elapsed_s": elapsed,
                    "total_step": step0 + step, "total_elapsed_s": round(time0 + elapsed, 2), **line})
    return out


def main(base: str, run: str, stage: str, out: str) -> None:
    out_path = Path(out)
    if out_path.exists():
        raise SystemExit(f"stitch_curve: {out_path} exists; choose a new file (the base is never changed)")
    lines = stitch([] if base == "-" else read_lines(Path(base)), read_lines(Path(run)), stage)
    out_path.write_text("".join(json.dumps(ln) + "\n" for ln in lines))
    print(f"{out_path}: {len(lines)} lines, last total_step {lines[-1]['total_step']}")


if __name__ == "__main__":
    if len(sys.argv) != 5:
        raise SystemExit(__doc__)
    main(*sys.argv[1:])
