"""`make bench`: run every benchmark and reproduction, then assemble benchmarks/RESULTS.md.

    python -m benchmarks.run_all [--only NAME ...] [--assemble]

Each benchmark is a fresh process that writes its fragment to benchmarks/results/; this
script runs them one after another (never two at once: they time the same cores) and joins
the fragments, in a fixed order, under a header with the machine and the date.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time

from benchmarks._common import REPO, RESULTS, machine

# (fragment, command): in the order RESULTS.md shows them.
BENCHMARKS = [
    ("overhead", ["-m", "benchmarks.bench_overhead"]),
    ("warm", ["-m", "benchmarks.bench_overhead", "--warm"]),
    ("scale", ["-m", "benchmarks.bench_scale"]),
    ("streaming", ["-m", "benchmarks.bench_streaming"]),
    ("ingest", ["-m", "benchmarks.bench_ingest"]),
    ("dashboard", ["-m", "benchmarks.bench_dashboard"]),
    ("api", ["-m", "benchmarks.bench_api"]),
    ("browser", ["-m", "benchmarks.bench_browser"]),
    ("asha", ["-m", "benchmarks.bench_asha"]),
    ("search", ["-m", "benchmarks.bench_search"]),
    ("faults", ["-m", "benchmarks.bench_faults"]),
    ("sysmetrics", ["-m", "benchmarks.bench_sysmetrics"]),
    ("importance", ["-m", "benchmarks.bench_importance"]),
    ("decisions", ["-m", "benchmarks.bench_decisions"]),
]
# The reproductions of published results (benchmarks/repro_*.py) come after the measurements.
REPRODUCTIONS = [
    ("repro_fig1", ["-m", "benchmarks.repro_fig1"]),
    ("repro_bn_lr", ["-m", "benchmarks.repro_bn_lr"]),
    ("repro_mnist1d_mlp", ["-m", "benchmarks.repro_mnist1d_mlp"]),
    ("repro_seed_grid", ["-m", "benchmarks.repro_seed_grid"]),
]
# Fragments written elsewhere, included when present: on a GPU machine, gpu.md by
# benchmarks/gpu_check.sh and gpu_sysmetrics.md by benchmarks/gpu_sysmetrics.sh.
EXTRA = ["gpu", "gpu_sysmetrics"]


def assemble() -> None:
    parts = []
    for name in [name for name, _ in BENCHMARKS + REPRODUCTIONS] + EXTRA:
        path = RESULTS / f"{name}.md"
        if path.exists():
            parts.append(path.read_text().strip())
    header = f"""# sweepscope benchmarks

Regenerate everything with `make bench` (`python -m benchmarks.run_all`); each section
names the command that made it, and when. Figures are medians of repeated runs and ratios
measured side by side in one run: these machines are shared and their speed varies from
one to the next, so compare ratios, not seconds, across sections made at different times.
Assembled {time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())} on: {machine()}.

"""
    (REPO / "benchmarks" / "RESULTS.md").write_text(header + "\n\n".join(parts) + "\n")
    print(f"wrote benchmarks/RESULTS.md from {len(parts)} fragments")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--only", nargs="*", help="run only these benchmarks")
    parser.add_argument("--assemble", action="store_true", help="only join the fragments")
    args = parser.parse_args()
    failed = []
    if not args.assemble:
        for name, command in BENCHMARKS + REPRODUCTIONS:
            if args.only and name not in args.only:
                continue
            start = time.perf_counter()
            print(f"== {name}: python {' '.join(command)}", flush=True)
            done = subprocess.run([sys.executable, *command], cwd=REPO)
            print(
                f"== {name}: {time.perf_counter() - start:.0f} s, exit {done.returncode}",
                flush=True,
            )
            if done.returncode != 0:
                failed.append(name)
    assemble()
    if failed:
        print(f"failed: {', '.join(failed)}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
