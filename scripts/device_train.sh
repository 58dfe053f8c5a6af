#!/usr/bin/env bash
# Train one stage on a rented GPU machine that is lent in calls of at most 10 minutes.
#
#   bash scripts/device_train.sh CONFIG RUN_DIR CALL_SECONDS PLAN_SECONDS [final]
#
# First call (nothing running, no checkpoint): a short probe run measures steps/s, the schedule is
# sized so the stage ends PLAN_SECONDS after this call began, and training goes on in the background
# (setsid), so it keeps running between calls while the machine stays warm. Every call waits until
# CALL_SECONDS have passed and copies last.pt, curve.jsonl and train.log to $OUT; `final` stops the run
# with a checkpoint first. If the machine was given back in between, a call resumes from the
# checkpoint carried in .devdata/ckpt/ (copy the previous call's last.pt and curve.jsonl there).
set -u
CONFIG=${1:?train config}; RUN=${2:?run folder}; CALL_S=${3:?seconds for this call}; PLAN_S=${4:?seconds}
FINAL=${5:-}
PY=${PYTHON:-python3}; PROBE=${PROBE:-300}; OUT=${OUT:-/tmp/out}
START=$(date +%s); PIDFILE=/tmp/weather_train.pid
alive() { [ -f "$PIDFILE" ] && kill -0 "$(cat "$PIDFILE")" 2>/dev/null; }
export PYTHONUNBUFFERED=1

if ! alive; then
  # each call replaces the carried .devdata, so the run reads its own copy of the photos
  rm -rf /tmp/wr_devdata && cp -r .devdata /tmp/wr_devdata
  sed 's#"\.devdata/#"/tmp/wr_devdata/#g' "$CONFIG" >/tmp/wr_config.json && CONFIG=/tmp/wr_config.json
  if [ ! -f "$RUN/last.pt" ] && [ -f .devdata/ckpt/last.pt ]; then
    mkdir -p "$RUN" && cp .devdata/ckpt/* "$RUN"/ && echo "resuming from the carried checkpoint"
  fi
  if [ -f "$RUN/last.pt" ]; then
    ARGS=(--resume ${STEPS:+--steps "$STEPS"})     # STEPS=N re-plans the schedule
  else
    nvidia-smi --query-gpu=name,memory.total --format=csv,noheader 2>/dev/null
    $PY weather.py train --config "$CONFIG" --out "$RUN" --stop-at "$PROBE" --no-progress || exit 1
    STEPS=$($PY - "$RUN/curve.jsonl" "$PROBE" "$(( PLAN_S - $(date +%s) + START ))" <<'PYEOF'
import json, sys
rows = [r for r in map(json.loads, open(sys.argv[1])) if "losses" in r]
a, b = rows[0], rows[-1]
rate = (b["step"] - a["step"]) / max(1e-6, b["elapsed_s"] - a["elapsed_s"])
print(int(sys.argv[2]) + int(rate * max(0, int(sys.argv[3]))), file=sys.stdout)
print(f"probe: {rate:.2f} steps/s", file=sys.stderr)
PYEOF
)
    echo "planned steps: $STEPS"
    ARGS=(--resume --steps "$STEPS")
  fi
  setsid $PY weather.py train --config "$CONFIG" --out "$RUN" "${ARGS[@]}" --no-progress \
    >"$RUN/stdout.log" 2>&1 </dev/null &
  echo $! >"$PIDFILE"
fi

while alive && [ $(( $(date +%s) - START )) -lt "$CALL_S" ]; do sleep 5; done
if [ -n "$FINAL" ] && alive; then
  kill -TERM "$(cat "$PIDFILE")"
  while alive; do sleep 1; done
fi
mkdir -p "$OUT" && cp "$RUN"/curve.jsonl "$RUN"/train.log "$OUT"/
# what comes back from a call is capped at 16 MiB a file: a larger checkpoint (m: model + EMA + Adam,
# ~50 MB) comes back as its EMA weights, which the next stage starts from (its init_weights)
if [ "$(stat -c %s "$RUN/last.pt")" -le $(( 15 * 1024 * 1024 )) ]; then
  cp "$RUN"/last.pt "$OUT"/
else
  $PY weather.py export --checkpoint "$RUN/last.pt" --out "$OUT/ema.safetensors" --id "device-run" >/dev/null
fi
grep -h "eval at\|step [0-9]*/" "$RUN/train.log" | tail -4
alive && echo "still training" || { echo "not running"; tail -3 "$RUN/stdout.log"; }
