#!/usr/bin/env bash
# `make run`: a warm runtime (Ray and the dashboard, which stay up), then a sweep on it into
# the same store. Ctrl-C stops the sweep; `make down` (sweepscope down) stops the runtime.
set -euo pipefail
spec=${1:-experiments/sweeps/seed_grid.yaml}
port=${2:-8501}
bin=.venv/bin

"$bin/sweepscope" up --port "$port" # says so, and changes nothing, when it is up already
echo "dashboard: http://127.0.0.1:$port  (Ctrl-C stops the sweep; \`make down\` stops Ray and the dashboard)"
"$bin/sweepscope" run "$spec"
