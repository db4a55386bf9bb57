#!/usr/bin/env bash
# `make run`: serve the dashboard and run a sweep into the same store; Ctrl-C ends both.
set -euo pipefail
spec=${1:-experiments/sweeps/seed_grid.yaml}
port=${2:-8501}
bin=.venv/bin

"$bin/sweepscope" dashboard --port "$port" &
dashboard=$!
trap 'kill -INT $dashboard 2>/dev/null; wait $dashboard 2>/dev/null' EXIT
echo "dashboard: http://127.0.0.1:$port  (Ctrl-C stops the sweep and the dashboard)"

status=0
"$bin/sweepscope" run "$spec" || status=$?
if [ "$status" -eq 0 ] && [ -t 0 ]; then
    echo "sweep done; the dashboard stays up at http://127.0.0.1:$port until Ctrl-C"
    wait $dashboard || true
fi
exit "$status"
