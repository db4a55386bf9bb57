#!/usr/bin/env bash
# GPU check of the system metrics (runner/trial/sysmetrics.py), about a minute on one GPU machine:
#   1. a trial without Ray: the seed grid's trainable on CUDA (experiments.train:train,
#      device cuda) for STEPS steps through runner.trial.report, with the trial's sampler running
#      every second, as a sampled trial runs; checks that sys/gpu_util and sys/gpu_mem_mb
#      were sampled, utilisation within 0..100 and above 0 at least once, GPU memory above
#      0, beside sys/cpu_percent and sys/rss_mb;
#   2. if Ray is importable, a tiny sweep through `sweepscope run` with resources {gpu: 1}
#      and system_metrics_every: 1: each trial's sys/gpu_util and sys/gpu_mem_mb must be in
#      the store, and a trial of the same sweep run with gpu: 0 must have none;
# and writes the results as markdown to benchmarks/results/gpu_sysmetrics.md.
#
#   benchmarks/gpu_sysmetrics.sh [WHEEL_DIR]
#
# Needs python3 with torch (a CUDA build), numpy, scikit-learn, PyYAML, and NVIDIA's
# nvidia-ml-py (module pynvml). Where pynvml is missing, WHEEL_DIR (a directory holding the
# nvidia-ml-py wheel, e.g. made with `pip download --no-deps -d wheels nvidia-ml-py`; it is
# pure Python) is installed from, offline, into a directory of its own on PYTHONPATH.
# STEPS (default 3000) sets the steps of the trial in 1.
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$PWD
wheels=${1:-}
export STEPS=${STEPS:-3000}
export PYTHONPATH="$repo${PYTHONPATH:+:$PYTHONPATH}"
export RAY_USAGE_STATS_ENABLED=0 RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=0
python=${PYTHON:-python3}

if ! "$python" -c "import torch, numpy, sklearn, yaml" 2>/dev/null; then
    echo "gpu_sysmetrics: $python lacks torch, numpy, scikit-learn or PyYAML." >&2
    echo "Fix: run where they are installed (PYTHON=/path/to/python to choose one)." >&2
    exit 2
fi
if ! "$python" -c "import pynvml" 2>/dev/null; then
    if [ -z "$wheels" ]; then
        echo "gpu_sysmetrics: $python lacks pynvml (NVIDIA's nvidia-ml-py)." >&2
        echo "Fix: pass a directory holding its wheel: benchmarks/gpu_sysmetrics.sh WHEEL_DIR" >&2
        exit 2
    fi
    target=${TMPDIR:-/tmp}/sweepscope-gpu-sysmetrics-lib
    "$python" -m pip install --quiet --no-index --find-links "$wheels" --target "$target" \
        nvidia-ml-py
    export PYTHONPATH="$PYTHONPATH:$target"
fi

"$python" - <<'PY'
"""The checks; see the comment at the top of benchmarks/gpu_sysmetrics.sh."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pynvml
import torch
import yaml

from experiments.train import train
from runner import report
from runner.trial.sysmetrics import Sampler

STEPS = int(os.environ["STEPS"])
SPEC = Path("experiments/sweeps/seed_grid.yaml")
RESULTS = Path("benchmarks/results/gpu_sysmetrics.md")
failures: list[str] = []

if not torch.cuda.is_available():
    sys.exit("gpu_sysmetrics: torch sees no CUDA device. Fix: run on a GPU machine with a "
             "CUDA build of torch.")
pynvml.nvmlInit()
driver = pynvml.nvmlSystemGetDriverVersion()
pynvml.nvmlShutdown()
gpu_name = torch.cuda.get_device_name(0)
spec = yaml.safe_load(SPEC.read_text())

# -- 1. a sampled trial without Ray ---------------------------------------------------------
config = {**spec["fixed"], "lr": 0.01, "beta1": 0.9, "batch_norm": True, "max_steps": STEPS,
          "device": "cuda", "hidden": 1024}
sampler = Sampler(1.0).start()  # every GPU CUDA_VISIBLE_DEVICES shows, as outside Ray
started = time.perf_counter()
with report.collect() as reports:
    train(config)
took = time.perf_counter() - started
sampler.sample()  # one more, in case the run was short
sampler.stop()
samples = sampler.take()
by_name: dict[str, list[float]] = {}
for name, _step, value, _wall in samples:
    by_name.setdefault(name, []).append(value)
device = next((r["_info"]["device"] for r in reports if r.get("_info", {}).get("device")), "?")
lines = [
    "## GPU check: system metrics",
    "",
    f"`benchmarks/gpu_sysmetrics.sh` on {gpu_name} (driver {driver}, torch {torch.__version__},"
    f" nvidia-ml-py {getattr(pynvml, '__version__', '?')}), {time.strftime('%Y-%m-%d')}.",
    "",
    f"1. The seed grid's trainable (hidden 1024) on {device} for {STEPS} steps ({took:.1f} s),"
    " sampled every second without Ray:",
    "",
    "| metric | samples | min | max |",
    "| --- | ---: | ---: | ---: |",
]
for name in sorted(by_name):
    values = by_name[name]
    lines.append(f"| {name} | {len(values)} | {min(values):.1f} | {max(values):.1f} |")
for name in ("sys/cpu_percent", "sys/rss_mb", "sys/gpu_util", "sys/gpu_mem_mb"):
    if name not in by_name:
        failures.append(f"the trial without Ray has no {name}")
util, memory = by_name.get("sys/gpu_util", []), by_name.get("sys/gpu_mem_mb", [])
if util and not (all(0 <= u <= 100 for u in util) and max(util) > 0):
    failures.append(f"sys/gpu_util out of range or never above 0: {util}")
if memory and not max(memory) > 0:
    failures.append(f"sys/gpu_mem_mb never above 0: {memory}")
if not str(device).startswith("cuda"):
    failures.append(f"the trial ran on {device}, not CUDA")

# -- 2. a Ray sweep ------------------------------------------------------------------------
try:
    import ray  # noqa: F401
except ImportError:
    lines += ["", "2. Ray is not importable here: the Ray sweep was skipped."]
else:
    with tempfile.TemporaryDirectory() as tmp:
        store = f"sqlite:///{tmp}/gpu_sysmetrics.db"
        counts = {}
        for gpu in (1, 0):
            sweep = {**spec, "name": f"gpu_sysmetrics_{gpu}", "stop": {"steps": 1500},
                     "resources": {"cpu": 1, "gpu": gpu}, "system_metrics_every": 1,
                     "grid": {"lr": [0.01]},
                     "fixed": {**spec["fixed"], "batch_norm": True, "hidden": 1024,
                               "device": "cuda" if gpu else "cpu"}}
            spec_file = Path(tmp, f"gpu_{gpu}.yaml")
            spec_file.write_text(yaml.safe_dump(sweep))
            subprocess.run([sys.executable, "-m", "runner.cli", "run", str(spec_file),
                            "--store", store, "--storage-path", f"{tmp}/ray"], check=True)
        from runner.store import open_store

        with open_store(store) as s:
            for sweep_row in s.sweeps():
                points = s.points(sweep_row["id"])
                load = points[points.metric.str.startswith("sys/")]
                counts[sweep_row["name"]] = load.groupby("metric").size().to_dict()
        on, off = counts.get("gpu_sysmetrics_1", {}), counts.get("gpu_sysmetrics_0", {})
        lines += [
            "",
            f"2. Ray sweeps through `sweepscope run`, one trial each: with gpu: 1, sys/ points "
            f"{on}; with gpu: 0, {off}.",
        ]
        if not (on.get("sys/gpu_util") and on.get("sys/gpu_mem_mb")):
            failures.append(f"the gpu: 1 trial stored no sys/gpu_util or sys/gpu_mem_mb: {on}")
        if any(name.startswith("sys/gpu") for name in off):
            failures.append(f"the gpu: 0 trial stored GPU metrics: {off}")
        if not off.get("sys/cpu_percent"):
            failures.append(f"the gpu: 0 trial stored no sys/cpu_percent: {off}")

lines += ["", "Result: " + ("OK." if not failures else "FAILED: " + "; ".join(failures) + ".")]
text = "\n".join(lines) + "\n"
RESULTS.parent.mkdir(parents=True, exist_ok=True)
RESULTS.write_text(text)
print(text)
print(f"written to {RESULTS}")
sys.exit(1 if failures else 0)
PY
