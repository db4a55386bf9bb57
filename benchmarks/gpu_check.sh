#!/usr/bin/env bash
# GPU check, under 5 minutes on one GPU machine:
#   1. the seed grid's trainable (experiments.train:train with seed_grid.yaml's settings:
#      digits, hidden 128, 3 layers, batch 16, adam) on CUDA and on CPU, with and without
#      batch norm, for a fixed number of steps, run directly through runner.trial.report.collect()
#      (no Ray); checks that the CUDA runs really ran on CUDA and prints steps/s;
#   2. if Ray is importable, a tiny Ray sweep with resources {gpu: 0.25}: 4 trials sharing
#      one GPU, each of which must report a CUDA device;
# and writes the results as markdown to benchmarks/results/gpu.md.
#
#   benchmarks/gpu_check.sh [WHEEL_DIR]
#
# python3 is used as it is when it imports torch, numpy, scikit-learn, PyYAML. Otherwise,
# given WHEEL_DIR (a directory of wheels: torch with CUDA, ray[tune] and the rest of
# sweepscope's dependencies), the script installs them offline into a fresh virtualenv.
# STEPS (default 600) sets the steps per run.
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$PWD
wheels=${1:-}
export STEPS=${STEPS:-600}
export PYTHONPATH="$repo${PYTHONPATH:+:$PYTHONPATH}"
export RAY_USAGE_STATS_ENABLED=0
python=python3

if ! "$python" -c "import torch, numpy, sklearn, yaml" 2>/dev/null; then
    if [ -z "$wheels" ]; then
        echo "gpu_check: python3 lacks torch, numpy, scikit-learn or PyYAML." >&2
        echo "Fix: pass a directory of wheels: benchmarks/gpu_check.sh /path/to/wheels" >&2
        exit 2
    fi
    env_dir=${TMPDIR:-/tmp}/sweepscope-gpu-check-venv
    echo "gpu_check: installing from $wheels into $env_dir"
    python3 -m venv "$env_dir"
    python=$env_dir/bin/python
    "$python" -m pip install --quiet --no-index --find-links "$wheels" \
        torch numpy scikit-learn pyyaml
    # Optional, for the Ray sweep: Ray Tune and the store's needs.
    "$python" -m pip install --quiet --no-index --find-links "$wheels" \
        "ray[tune]" sqlalchemy pandas pydantic \
        || echo "gpu_check: Ray Tune not installable from $wheels; the Ray sweep is skipped"
fi

"$python" - <<'PY'
"""The measurements; see the comment at the top of benchmarks/gpu_check.sh."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch
import yaml

from experiments.train import train
from runner import report

STEPS = int(os.environ["STEPS"])
SPEC = Path("experiments/sweeps/seed_grid.yaml")
RESULTS = Path("benchmarks/results/gpu.md")

if not torch.cuda.is_available():
    sys.exit("gpu_check: torch sees no CUDA device (torch %s, CUDA build %s). Fix: run on a "
             "GPU machine with a CUDA build of torch." % (torch.__version__, torch.version.cuda))
gpu_name = torch.cuda.get_device_name(0)
spec = yaml.safe_load(SPEC.read_text())
base = {**spec["fixed"], "lr": 0.01, "beta1": 0.9, "max_steps": STEPS}


def run(device: str, batch_norm: bool) -> dict[str, object]:
    """Train for STEPS steps; steps/s from the first to the last step's wall time."""
    config = {**base, "device": device, "batch_norm": batch_norm}
    if device == "cuda":
        torch.cuda.reset_peak_memory_stats()
    with report.collect() as reports:
        started = time.perf_counter()
        train(config)
        total = time.perf_counter() - started
    points = [p for r in reports for p in r.get("_points", []) if p[0] == "train_loss"]
    info = {k: v for r in reports for k, v in (r.get("_info") or {}).items()}
    steps = len(points)
    span = points[-1][3] - points[0][3]
    if steps != STEPS:
        sys.exit(f"gpu_check: {device} BN={batch_norm} ran {steps} steps, expected {STEPS}")
    if device == "cuda" and not str(info.get("device", "")).startswith("cuda"):
        sys.exit(f"gpu_check: the CUDA run reported device {info.get('device')!r}")
    if device == "cpu" and info.get("device") != "cpu":
        sys.exit(f"gpu_check: the CPU run reported device {info.get('device')!r}")
    return {
        "device": device, "bn": batch_norm, "reported": info.get("device"),
        "steps_s": (steps - 1) / span if span > 0 else float("nan"), "total_s": total,
        "peak_mib": torch.cuda.max_memory_allocated() / 2**20 if device == "cuda" else 0.0,
        "final_loss": points[-1][2],
    }


rows = [run(device, bn) for device in ("cuda", "cpu") for bn in (False, True)]
speed = {(r["device"], r["bn"]): r["steps_s"] for r in rows}

lines = [
    "## GPU check",
    "",
    f"`benchmarks/gpu_check.sh` on {gpu_name} (torch {torch.__version__}, CUDA "
    f"{torch.version.cuda}), {time.strftime('%Y-%m-%d')}: the seed grid's trainable "
    f"(digits, hidden {base['hidden']}, {base['layers']} layers, batch {base['batch_size']}, "
    f"{base['optimizer']}, lr 0.01) for {STEPS} steps, CPU runs on 1 thread as a 1-CPU trial.",
    "",
    "| device | batch norm | reported device | steps/s | vs CPU | peak GPU MiB | wall s |",
    "| --- | --- | --- | ---: | ---: | ---: | ---: |",
]
for r in rows:
    ratio = r["steps_s"] / speed[("cpu", r["bn"])]
    lines.append(
        f"| {r['device']} | {'on' if r['bn'] else 'off'} | {r['reported']} | "
        f"{r['steps_s']:.0f} | {ratio:.2f}x | {r['peak_mib']:.1f} | {r['total_s']:.1f} |"
    )

try:
    import ray  # noqa: F401
except ImportError:
    lines += ["", "Ray is not importable here: the fractional-GPU sweep was skipped."]
else:
    # A tiny sweep: 4 trials of 0.25 GPU each, all on GPU 0 at once.
    with tempfile.TemporaryDirectory() as tmp:
        sweep = {**spec, "name": "gpu_check", "stop": {"steps": 200},
                 "resources": {"cpu": 1, "gpu": 0.25},
                 "grid": {"lr": [0.1, 0.01, 0.001, 0.0001]}}
        sweep["fixed"] = {**spec["fixed"], "batch_norm": True}
        spec_file = Path(tmp, "gpu_check.yaml")
        spec_file.write_text(yaml.safe_dump(sweep))
        store = f"sqlite:///{tmp}/gpu_check.db"
        started = time.perf_counter()
        subprocess.run([sys.executable, "-m", "runner.cli", "run", str(spec_file),
                        "--store", store, "--storage-path", f"{tmp}/ray"], check=True)
        took = time.perf_counter() - started
        from runner.store import open_store

        with open_store(store) as s:
            sweep_id = s.sweeps()[0]["id"]
            trials = s.trials(sweep_id)
        devices = sorted({str(t["device"]) for t in trials})
        statuses = sorted({str(t["status"]) for t in trials})
        ok = len(trials) == 4 and statuses == ["completed"] and all(
            d.startswith("cuda") for d in devices)
        lines += [
            "",
            f"Ray sweep, `resources: {{gpu: 0.25}}`, 4 trials x 200 steps: {len(trials)} trials "
            f"{', '.join(statuses)} in {took:.0f} s, devices {', '.join(devices)}: "
            f"{'OK' if ok else 'FAILED'}.",
        ]
        if not ok:
            print("\n".join(lines))
            sys.exit("gpu_check: the fractional-GPU Ray sweep did not run 4 trials on CUDA")

text = "\n".join(lines) + "\n"
RESULTS.parent.mkdir(parents=True, exist_ok=True)
RESULTS.write_text(text)
print(text)
print(f"written to {RESULTS}")
PY
