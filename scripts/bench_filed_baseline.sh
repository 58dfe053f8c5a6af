#!/usr/bin/env bash
# Speed of the default restorer against weather-s-v3 twice, in turn, in one run: s-v3 run by the code
# of the day issue 13 was filed (commit 97303a1, before the v4 work; its s-v3 took 12-17 s/MP then) and
# by today's code (whose scan, allocator and tiling speed-ups made s-v3 itself about 2x faster).
#     bash scripts/bench_filed_baseline.sh [ROUNDS] [WEIGHTS]       (defaults: 2, the default restorer)
# fp32, 2 threads, 1 MP tiled as `restore` does; one line per bench: label | MP | size | tiles | s/MP | ...
set -euo pipefail
cd "$(dirname "$0")/.."
ROUNDS=${1:-2}
WEIGHTS=${2:-}
FILED=97303a1
PY=$PWD/.venv/bin/python
old=$(mktemp -d)
trap 'git worktree remove --force "$old/filed" >/dev/null 2>&1 || true; rm -rf "$old"' EXIT
git worktree add --detach "$old/filed" "$FILED" >/dev/null 2>&1
bench() { "$PY" weather.py bench ${1:+--weights "$1"} --sizes 1 --threads 2 --repeats 2 --precision fp32 | tail -1; }
for r in $(seq "$ROUNDS"); do
    echo "round $r s-v3, code of $FILED $(cd "$old/filed" && bench weather-s-v3)"
    echo "round $r s-v3, this code      $(bench weather-s-v3)"
    echo "round $r ${WEIGHTS:-default}, this code    $(bench "$WEIGHTS")"
done
