#!/usr/bin/env bash
# The image's entrypoint. `docker compose run ray-head sweepscope run SPEC` starts a one-off
# container that is not yet part of the Ray cluster; a Ray driver needs a raylet on its own
# machine, so that container first joins the cluster as a node without CPUs or GPUs (no trial
# runs there), then runs the sweep against the cluster and its shared storage, and leaves the
# cluster when the sweep ends. Flags given on the command line win over these defaults.
# Any other command (ray start ..., sweepscope dashboard ...) runs as given.
set -euo pipefail

if [ "${1:-}" = sweepscope ] && [ "${2:-}" = run ] && [ -n "${RAY_ADDRESS:-}" ]; then
    shift 2
    ray start --address="$RAY_ADDRESS" --num-cpus=0 --num-gpus=0 --disable-usage-stats >/dev/null
    trap 'ray stop --force >/dev/null 2>&1 || true' EXIT
    defaults=(--address "$RAY_ADDRESS")
    if [ -n "${SWEEPSCOPE_STORAGE_PATH:-}" ]; then
        defaults+=(--storage-path "$SWEEPSCOPE_STORAGE_PATH")
    fi
    status=0
    sweepscope run "${defaults[@]}" "$@" || status=$?
    exit "$status"
fi
exec "$@"
