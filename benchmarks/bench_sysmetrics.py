"""System-metrics sampling cost: the same trial with sampling on and off, side by side.

    python -m benchmarks.bench_sysmetrics [--repeats N] [--steps S] [--every SECONDS]

Each run trains the seed grid's trainable (experiments.train:train with seed_grid.yaml's
fixed settings, lr 0.01, beta1 0.9, batch norm on) for S steps through runner.trial.report in this
process, on one thread as a 1-CPU trial does, either with a runner.trial.sysmetrics.Sampler
sampling this process every `every` seconds (on) or without one (off). On and off alternate,
the order swapped each pair; the figures are the medians over pairs of the on/off ratios of
wall time and of the process's CPU time. `every` defaults to 1 s, the shortest the spec
allows (its default is 2 s: half the cost). Beside them: one sample timed alone, as a share
of the interval (the cost with no noise from a shared machine), and the sys/ points a trial
adds per second next to its training points.
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path
from typing import Any

import torch
import yaml

from benchmarks._common import stamp, write_fragment
from experiments.train import train
from runner import report
from runner.trial.sysmetrics import Sampler

SPEC = Path("experiments/sweeps/seed_grid.yaml")


class TimedSampler(Sampler):
    """A Sampler that adds up the CPU time its own thread spends sampling."""

    cpu = 0.0

    def sample(self) -> None:
        start = time.thread_time()
        super().sample()
        self.cpu += time.thread_time() - start


def one_run(config: dict[str, Any], every: float | None) -> dict[str, float]:
    """Train once; wall and CPU seconds, training points and sys/ points made."""
    sampler = TimedSampler(every, gpus=None).start() if every is not None else None
    cpu, wall = time.process_time(), time.perf_counter()
    with report.collect() as reports:
        train(config)
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    samples, sampler_cpu = 0, 0.0
    if sampler is not None:
        sampler.stop()
        samples, sampler_cpu = len(sampler.take()), sampler.cpu
    return {
        "wall": wall,
        "cpu": cpu,
        "points": sum(len(r.get(report.POINTS_KEY, [])) for r in reports),
        "sys_points": samples,
        "sampler_cpu": sampler_cpu,
    }


def sample_cost(repeats: int = 500) -> float:
    """Seconds one sample takes (read and keep), timed alone."""
    sampler = Sampler(1.0)
    sampler.sample()  # NVML's and psutil's first calls set things up
    start = time.perf_counter()
    for _ in range(repeats):
        sampler.sample()
    took = (time.perf_counter() - start) / repeats
    sampler.stop()
    return took


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeats", type=int, default=15, help="on/off pairs")
    parser.add_argument("--steps", type=int, default=1500, help="steps per run")
    parser.add_argument("--every", type=float, default=1.0, help="seconds between samples")
    args = parser.parse_args()
    torch.set_num_threads(1)  # a 1-CPU trial
    spec = yaml.safe_load(SPEC.read_text())
    config = {
        **spec["fixed"],
        "lr": 0.01,
        "beta1": 0.9,
        "batch_norm": True,
        "max_steps": args.steps,
    }
    one_run({**config, "max_steps": 100}, None)  # warm up: imports, the dataset's cache
    runs: dict[str, list[dict[str, float]]] = {"on": [], "off": []}
    for pair in range(args.repeats):
        order = ("on", "off") if pair % 2 == 0 else ("off", "on")
        for mode in order:
            runs[mode].append(one_run(config, args.every if mode == "on" else None))
            last = runs[mode][-1]
            print(
                f"pair {pair + 1}/{args.repeats} {mode:3}: {last['wall']:.2f} s wall, "
                f"{last['cpu']:.2f} s CPU, {last['sys_points']:.0f} sys/ points",
                flush=True,
            )
    wall_ratio = statistics.median(
        on["wall"] / off["wall"] for on, off in zip(runs["on"], runs["off"], strict=True)
    )
    cpu_ratio = statistics.median(
        on["cpu"] / off["cpu"] for on, off in zip(runs["on"], runs["off"], strict=True)
    )
    ratios = sorted(
        on["wall"] / off["wall"] for on, off in zip(runs["on"], runs["off"], strict=True)
    )
    wall_on = statistics.median(r["wall"] for r in runs["on"])
    wall_off = statistics.median(r["wall"] for r in runs["off"])
    per_sample = sample_cost()
    sys_rate = statistics.median(r["sys_points"] / r["wall"] for r in runs["on"])
    train_rate = statistics.median(r["points"] / r["wall"] for r in runs["on"])
    share = per_sample / args.every
    in_situ = statistics.median(r["sampler_cpu"] / r["cpu"] for r in runs["on"])
    low, high = ratios[len(ratios) // 4], ratios[-(len(ratios) // 4) - 1]
    if max(wall_ratio, cpu_ratio) <= 1.01 and in_situ <= 0.01:
        verdict = (
            f"within the budget of 1 % of a trial's time: {wall_ratio - 1:+.2%} wall and "
            f"{cpu_ratio - 1:+.2%} CPU side by side, {in_situ:.4%} sampling's own CPU"
        )
    elif in_situ <= 0.01 and low <= 1.01:
        verdict = (
            f"sampling's own CPU is {in_situ:.4%} of the trial's, within the budget of 1 %; "
            f"the side-by-side medians ({wall_ratio - 1:+.2%} wall, {cpu_ratio - 1:+.2%} CPU) "
            f"lie inside this machine's noise (middle half of the pairs {low:.3f} to {high:.3f})"
        )
    else:
        verdict = (
            f"OVER the budget of 1 % of a trial's time: {wall_ratio - 1:+.2%} wall, "
            f"{cpu_ratio - 1:+.2%} CPU side by side, {in_situ:.4%} sampling's own CPU"
        )
    text = f"""## System metrics: sampling cost

`python -m benchmarks.bench_sysmetrics --repeats {args.repeats} --steps {args.steps} \
--every {args.every:g}`: the seed grid's trainable (digits, hidden {config["hidden"]}, \
{config["layers"]} layers, batch {config["batch_size"]}, batch norm) for {args.steps} steps \
on one thread, with the sampler every {args.every:g} s (on) or without it (off), \
{args.repeats} pairs interleaved; medians of the per-pair on/off ratios.

| | off | on | on/off |
| --- | ---: | ---: | ---: |
| trial wall time | {wall_off:.2f} s | {wall_on:.2f} s | {wall_ratio:.4f} |
| trial CPU time | {statistics.median(r["cpu"] for r in runs["off"]):.2f} s | \
{statistics.median(r["cpu"] for r in runs["on"]):.2f} s | {cpu_ratio:.4f} |

- Wall-time ratio per pair, lowest to highest: {", ".join(f"{r:.3f}" for r in ratios)} \
(the spread is this shared machine's noise; the median is the figure).
- One sample (CPU, memory{", GPU" if Sampler(1.0).has_gpu else ""}) takes \
{per_sample * 1e6:.0f} µs: {share:.4%} of a trial's time at one sample per \
{args.every:g} s, {per_sample / 2:.4%} at the default 2 s.
- Sampling's own CPU (its thread's time, measured in the on runs): {in_situ:.4%} of the \
trial's CPU time (median of the runs).
- Points: {sys_rate:.2f} sys/ points per trial-second beside {train_rate:.0f} training \
points ({sys_rate / train_rate:.2%} more rows for the store).
- Verdict: {verdict}.

{stamp(f"python -m benchmarks.bench_sysmetrics --repeats {args.repeats} --steps {args.steps}")}"""
    write_fragment("sysmetrics", text)


if __name__ == "__main__":
    main()
