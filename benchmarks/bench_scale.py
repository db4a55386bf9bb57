"""Costs as sweeps grow: wall time against the number of trivial trials, `sweepscope run`
against plain Ray Tune with reuse_actors=True, the driver's per-report and the store's
per-write cost against the points already stored, and the dashboard's pages on a sweep of
that size.

    python -m benchmarks.bench_scale [--sizes 18 96 384 2000] [--timeout S] [--points N]
        [--page-sizes 1000 10000] [--page-repeats 3] [--pages-only] [--browser]

1. For each size, one pair of fresh processes (which runs first alternates by size): a
   sweep of N trials of benchmarks.trainables:trivial (ten epochs of 10 ms asleep, ten
   losses a step, every point stored; over 1,000 trials need --allow-large) and plain Ray
   Tune running benchmarks.trainables:trivial_plain (one tune.report per epoch) on the same
   grid. A run that takes over --timeout is stopped (its whole process group) and counts
   as not finished: the table says how many of its trials had completed by then (for
   plain Ray Tune, the trials whose result.json holds all ten epochs) and the sizes after
   it still run. A least-squares line through each system's walls (pairs that both
   finished) gives its fixed cost and its cost per trial.
2. In this process, without Ray: the driver's StoreCallback and StoreWriter fed results of
   100 points each (a trial's report) on a fresh SQLite store, in windows, until --points are
   stored. Per window: the callback's time per report (what the Tune loop waits for) and the
   writer's time per point written. Neither may grow with the points already stored.
3. Last, in this process, without Ray: a SQLite store holding a finished sweep of N trivial
   trials as `sweepscope run` leaves it (110 points a trial; built through the Store API),
   for each --page-sizes N, and the Sweeps, Live sweep and Hyperparameters pages run on it
   under streamlit.testing's AppTest: the server's whole work for a page (its script, the
   store reads, the data and the figures), cold (every cache empty, as the first visitor
   after a start finds it) and warm (the page run again, as a rerun or a second visitor).
   Target: at most PAGE_SECONDS each at 10,000 trials. The store reads a cold large
   page makes are timed apart too (`read_costs`), against reading every point. With
   --browser, the same pages are then opened in headless Chromium (`browser_times`).

With --pages-only, only part 3 runs, and it rewrites only the dashboard's section of
benchmarks/results/scale.md (the runs' and the driver's figures stay as they were).
"""

from __future__ import annotations

import argparse
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import yaml

from benchmarks._common import (
    REPO,
    RESULTS,
    SWEEPSCOPE,
    markdown_table,
    stamp,
    write_fragment,
)

SIZES = [18, 96, 384, 2000]
PAGE_SIZES = [1000, 10000]
PAGES = {"sweeps": "Sweeps", "live": "Live sweep", "hparams": "Hyperparameters"}
PAGE_SECONDS = 1.0  # the ceiling for a page's server-side work at 10,000 trials
FLAT = 1.5  # last window / first beyond this counts as growing
EPOCHS, STEPS_PER_EPOCH = 10, 10  # benchmarks.trainables:trivial's shape


def spec_text(n: int) -> str:
    return yaml.safe_dump(
        {
            "name": f"scale_{n}",
            "trainable": "benchmarks.trainables:trivial",
            "metric": "loss",
            "mode": "min",
            "stop": {"epochs": EPOCHS},
            "checkpoint_every": 0,
            "resources": {"cpu": 1},
            "fixed": {"epoch_seconds": 0.01},
            "grid": {"i": list(range(n))},
        },
        sort_keys=False,
    )


@dataclass(frozen=True)
class Run:
    """One timed command: its wall, whether it ran to its end within the timeout, and how
    many of its trials had completed (all of them when it finished)."""

    wall: float
    finished: bool
    completed: int


def bounded(
    args: list[str], *, timeout: float, env: dict[str, str] | None = None
) -> tuple[float, bool]:
    """Run `args` from the repo root in a process group of its own: (wall, whether it
    ended within `timeout`). Past it, the whole group (the driver and Ray's processes) is
    stopped, SIGTERM first."""
    env = {**os.environ, "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0", **(env or {})}
    start = time.perf_counter()
    proc = subprocess.Popen(
        args,
        cwd=REPO,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        wall = time.perf_counter() - start
        for sig, wait in ((signal.SIGTERM, 20.0), (signal.SIGKILL, 20.0)):
            try:
                os.killpg(proc.pid, sig)
                proc.communicate(timeout=wait)
                break
            except ProcessLookupError:
                break
            except subprocess.TimeoutExpired:
                continue
        return wall, False
    wall = time.perf_counter() - start
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(args)} failed ({proc.returncode}):\n{err[-4000:]}")
    return wall, True


def sweepscope(n: int, timeout: float) -> Run:
    from runner.store import open_store

    with tempfile.TemporaryDirectory() as tmp:
        path = f"{tmp}/scale_{n}.yaml"
        with open(path, "w") as out:
            out.write(spec_text(n))
        url = f"sqlite:///{tmp}/scale.db"
        args = [SWEEPSCOPE, "run", path, "--store", url, "--storage-path", f"{tmp}/ray"]
        wall, finished = bounded([*args, *(["--allow-large"] if n > 1000 else [])], timeout=timeout)
        with open_store(url) as store:  # the run names its sweep: the store holds only it
            completed = sum(
                t["status"] == "completed" for s in store.sweeps() for t in store.trials(s["id"])
            )
    if finished and completed != n:
        raise RuntimeError(f"the {n}-trial sweep ended with {completed} of {n} completed")
    return Run(wall, finished, completed)


def plain(n: int, timeout: float) -> Run:
    """Plain Ray Tune on `n` trivial trials; its temporary files (Ray's session, Tune's
    trial folders) in a folder of its own, to count the trials done if it is stopped."""
    with tempfile.TemporaryDirectory(prefix="bs") as tmp:  # short: Ray's socket paths
        args = [sys.executable, "-m", "benchmarks.baselines", "trivial", str(n), "--reuse-actors"]
        wall, finished = bounded(args, timeout=timeout, env={"TMPDIR": tmp})
        completed = n if finished else _tune_completed(Path(tmp))
    return Run(wall, finished, completed)


def _tune_completed(folder: Path) -> int:
    """Trials of a stopped Tune run that reported all their epochs (their result.json).
    Tune writes a trial's results in Ray's session folder and copies them to the storage
    path, both under `folder`: a trial counts once, by its folder's name."""
    done = set()
    for result in folder.rglob("result.json"):
        with result.open() as lines:
            if sum(1 for line in lines if line.strip()) >= EPOCHS:
                done.add(result.parent.name)
    return len(done)


def fit(sizes: list[int], walls: list[float]) -> tuple[float, float]:
    """Least-squares wall = fixed + per_trial * n."""
    slope, intercept = statistics.linear_regression(sizes, walls)
    return intercept, slope


# -- the driver's and the store's costs against the points stored ---------------------------
def driver_costs(total_points: int, per_report: int = 100, windows: int = 10) -> list[dict]:
    """Feed StoreCallback results of `per_report` points until `total_points` are stored;
    per window, the callback's seconds per report and the writer's seconds per point."""
    from runner.driver.callback import StoreCallback
    from runner.driver.stopper import StoreStopper
    from runner.driver.writer import StoreWriter
    from runner.spec import parse_spec
    from runner.store import open_store

    spec = parse_spec(
        {
            "name": "costs",
            "trainable": "benchmarks.trainables:trivial",
            "metric": "loss",
            "mode": "min",
            "stop": {"epochs": 10},
            "grid": {"i": list(range(10))},
        }
    )
    reports_per_window = max(1, total_points // per_report // windows)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        store = open_store(f"sqlite:///{tmp}/costs.db", create=True)
        store.create_sweep("costs", name="costs", spec={}, metric="loss", mode="min", n_trials=0)
        writer = StoreWriter(store, "costs")
        stopper = StoreStopper(writer=writer, stop=spec.stop)
        callback = StoreCallback(writer=writer, spec=spec, stopper=stopper)
        stored, step = 0, 0
        trial: Any = None  # a stand-in for Tune's Trial: the callback reads its id and config
        for _ in range(windows):
            reported = 0.0
            started = time.perf_counter()
            for r in range(reports_per_window):
                if r % 10 == 0:  # ten reports a trial, as the trivial trials make
                    trial = SimpleNamespace(
                        trial_id=f"t{stored + r}", config={"i": r}, temporary_state=None
                    )
                    callback.on_trial_start(0, [], trial)
                    step = 0
                now = time.time()
                points = [("train_loss", step + k, 1.0 / (k + 1), now) for k in range(per_report)]
                step += per_report
                result = {"_points": points, "epoch": r % 10 + 1, "step": step, "loss": 0.5}
                t0 = time.perf_counter()
                callback.on_trial_result(0, [], trial, result)
                reported += time.perf_counter() - t0
            queued = time.perf_counter()
            assert writer.flush(timeout=600), "the writer did not drain"
            written = time.perf_counter() - started
            n_points = reports_per_window * per_report
            rows.append(
                {
                    "stored_before": stored,
                    "report_us": reported / reports_per_window * 1e6,
                    "point_us": written / n_points * 1e6,
                    "drain_s": time.perf_counter() - queued,
                }
            )
            stored += n_points
        assert writer.close()
        store.close()
    return rows


# -- the dashboard's pages on a sweep of N trials --------------------------------------------
def build_sweep(store: Any, n: int) -> str:
    """A finished sweep of `n` trivial trials as `sweepscope run` leaves it (the grid's
    spec and configs, every trial completed, ten train_loss points an epoch and one loss),
    written through the Store API in batches of 500 trials. Each trial's losses carry a
    factor of its own (1 to 2), so that trials rank as real ones do. Returns its id."""
    sweep_id = f"scale_{n}"
    spec = yaml.safe_load(spec_text(n))
    store.create_sweep(sweep_id, name=sweep_id, spec=spec, metric="loss", mode="min", n_trials=n)
    origin = store.now() - 60 - n * 0.05
    last = EPOCHS * STEPS_PER_EPOCH
    for low in range(0, n, 500):
        with store.batch():
            for i in range(low, min(n, low + 500)):
                at = origin + i * 0.05
                factor = 1.0 + (i * 0.6180339887) % 1.0
                config = {"epoch_seconds": 0.01, "epochs": EPOCHS, "i": i}
                trial = store.add_trial(sweep_id, f"trial_{i:05d}", config, at=at)
                store.set_trial_status(trial, "running", at=at, device="cpu", node="bench")
                points = [("train_loss", s, factor / s, at + s * 1e-3) for s in range(1, last + 1)]
                points += [
                    ("loss", s, factor * STEPS_PER_EPOCH / s, at + s * 1e-3)
                    for s in range(STEPS_PER_EPOCH, last + 1, STEPS_PER_EPOCH)
                ]
                store.add_points(trial, points)
                store.set_trial_status(
                    trial, "completed", at=at + 0.2, last_step=last, last_epoch=EPOCHS
                )
    store.finish_sweep(sweep_id, "completed")
    return sweep_id


def read_costs(url: str, sweep_id: str) -> dict[str, float]:
    """Seconds of the store reads a cold page makes on a large sweep, each on fresh
    SweepPoints: the trials, the sweep's metric of every trial, every metric of the live
    page's drawn trials (its band sample, the best ones), and for comparison every point."""
    from dashboard import live
    from dashboard.data import SweepPoints
    from runner.store import open_store

    found = {}
    with open_store(url) as store:
        sweep = store.sweep(sweep_id, best=False)
        assert sweep is not None
        t0 = time.perf_counter()
        trials = store.trials(sweep_id)
        found["trials"] = time.perf_counter() - t0
        metric = SweepPoints(sweep_id, only_metrics=(str(sweep["metric"]),))
        t0 = time.perf_counter()
        metric.refresh(store)
        found["metric"] = time.perf_counter() - t0
        frame = live.refresh(store, metric, sweep)
        drawing = SweepPoints(sweep_id, only_included=True)
        ids, _ = live.drawn_trials(frame, [int(t["id"]) for t in trials])
        drawing.include(ids)
        t0 = time.perf_counter()
        drawing.refresh(store)
        found["drawn"] = time.perf_counter() - t0
        found["n_drawn"] = len(ids)
        every = SweepPoints(sweep_id)
        t0 = time.perf_counter()
        every.refresh(store)
        found["every"] = time.perf_counter() - t0
    return found


def page_times(n: int, repeats: int, browser: bool = False) -> dict[str, dict[str, float]]:
    """Each page's server-side seconds on a store built by `build_sweep(n)`: cold (every
    cache empty) and warm (run again), medians of `repeats`; and what the live page sends
    to the browser (its figures' bytes). Under the key "reads", `read_costs`; with
    `browser`, under "browser", `browser_times`."""
    from streamlit.testing.v1 import AppTest

    from runner.store import open_store
    from tests.helpers.apptest import APP, fresh_dashboard

    found: dict[str, dict[str, float]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        url = f"sqlite:///{tmp}/pages.db"
        started = time.perf_counter()
        with open_store(url, create=True) as store:
            build_sweep(store, n)
        print(f"{n:,} trials: store built in {time.perf_counter() - started:.1f} s", flush=True)
        found["reads"] = read_costs(url, f"scale_{n}")
        print(f"{n:,} trials, reads: {found['reads']}", flush=True)
        before = os.environ.get("SWEEPSCOPE_STORE")
        os.environ["SWEEPSCOPE_STORE"] = url
        try:
            with fresh_dashboard():  # the imports, done before a server listens (dashboard.warm)
                AppTest.from_file(str(APP), default_timeout=600).run()
            for page in PAGES:
                cold, warm, sent = [], [], 0
                for _ in range(repeats):
                    with fresh_dashboard():
                        at = AppTest.from_file(str(APP), default_timeout=600)
                        if page != "sweeps":  # the Sweeps page first, then a link to this one
                            at.run()
                            at.switch_page(f"views/{page}.py")
                        t0 = time.perf_counter()
                        at.run()
                        t1 = time.perf_counter()
                        at.run()
                        warm.append(time.perf_counter() - t1)
                        cold.append(t1 - t0)
                        if at.exception:
                            raise RuntimeError(f"the {page} page failed: {at.exception[0].value}")
                        sent = sum(len(c.proto.spec) for c in at.get("plotly_chart"))
                found[page] = {
                    "cold": statistics.median(cold),
                    "warm": statistics.median(warm),
                    "bytes": sent,
                }
                print(
                    f"{n:,} trials, {PAGES[page]} page: cold {found[page]['cold']:.2f} s, "
                    f"warm {found[page]['warm']:.2f} s, figures {sent / 1e6:.2f} MB",
                    flush=True,
                )
        finally:
            if before is None:
                os.environ.pop("SWEEPSCOPE_STORE", None)
            else:
                os.environ["SWEEPSCOPE_STORE"] = before
        if browser:
            found["browser"] = browser_times(url, repeats)
            print(f"{n:,} trials, in Chromium: {found['browser']}", flush=True)
    return found


# In the browser: each page's sign that it is usable, read on the page's own clock.
SHOWN = {
    "sweeps": "document.querySelector('[data-testid=\"stDataFrame\"] canvas, .stDataFrame')",
    "hparams": "[...document.querySelectorAll('.js-plotly-plot')].find("
    "(el) => el._fullLayout && el.querySelector('.parcoords, .gl-canvas'))",
}


def browser_times(url: str, repeats: int) -> dict[str, float]:
    """Seconds from navigation, in headless Chromium against `sweepscope dashboard`'s
    server on `url` (benchmarks.bench_browser's server and probe): the live page's first
    drawn trace, first after the server started, cold (fresh profile; median) and warm
    (again in that profile); the Sweeps page's table and the Hyperparameters page's
    parallel coordinates, cold. Leaves a screenshot of the live page in the temp folder."""
    from playwright.sync_api import sync_playwright

    from benchmarks.bench_browser import PROBE, dashboard, open_once
    from tests.helpers.browser import BROWSER_ARGS, CHROMIUM

    runs: dict[str, list[float]] = {"cold": [], "warm": [], "sweeps": [], "hparams": []}
    with dashboard(url) as base, sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=BROWSER_ARGS)
        try:
            for k in range(repeats):
                context = browser.new_context(viewport={"width": 1400, "height": 1000})
                context.add_init_script(PROBE)
                page = context.new_page()
                runs["cold"].append(open_once(page, f"{base}/live")["drawn"])
                if k == 0:
                    shot = Path(tempfile.gettempdir()) / "bench_scale_live.png"
                    page.screenshot(path=str(shot), full_page=True)
                    print(f"live page: {shot}", flush=True)
                page.goto("about:blank")
                runs["warm"].append(open_once(page, f"{base}/live")["drawn"])
                context.close()
                for name, path in (("sweeps", ""), ("hparams", "hparams")):
                    context = browser.new_context(viewport={"width": 1400, "height": 1000})
                    page = context.new_page()
                    page.goto(f"{base}/{path}")
                    page.wait_for_function(f"() => {SHOWN[name]}", timeout=120_000)
                    runs[name].append(page.evaluate("() => performance.now()") / 1000)
                    context.close()
        finally:
            browser.close()
    found = {name: statistics.median(times) for name, times in runs.items()}
    found["first"] = runs["cold"][0]
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=SIZES)
    parser.add_argument("--timeout", type=float, default=1800, help="seconds per run at most")
    parser.add_argument("--points", type=int, default=1_000_000, help="for the driver's costs")
    parser.add_argument("--page-sizes", type=int, nargs="*", default=PAGE_SIZES)
    parser.add_argument("--page-repeats", type=int, default=3)
    parser.add_argument(
        "--pages-only", action="store_true", help="only the dashboard's pages (part 3)"
    )
    parser.add_argument(
        "--browser", action="store_true", help="the pages in Chromium too (Playwright)"
    )
    args = parser.parse_args()
    browser = " --browser" if args.browser else ""
    if args.pages_only:
        command = (
            f"python -m benchmarks.bench_scale --pages-only --page-sizes "
            f"{' '.join(map(str, args.page_sizes))} --page-repeats {args.page_repeats}{browser}"
        )
        pages = {n: page_times(n, args.page_repeats, args.browser) for n in args.page_sizes}
        write_pages(pages, command)
        return
    cores = len(os.sched_getaffinity(0))
    command = (
        f"python -m benchmarks.bench_scale --sizes {' '.join(map(str, args.sizes))} "
        f"--timeout {args.timeout:g} --points {args.points} --page-sizes "
        f"{' '.join(map(str, args.page_sizes))} --page-repeats {args.page_repeats}{browser}"
    )

    loads = [os.getloadavg()[0]]
    costs = driver_costs(args.points)
    measured: list[tuple[int, Run, Run]] = []
    for k, n in enumerate(args.sizes):
        loads.append(os.getloadavg()[0])
        runs = {
            "ours": lambda n=n: sweepscope(n, args.timeout),
            "tune": lambda n=n: plain(n, args.timeout),
        }
        order = ["ours", "tune"] if k % 2 == 0 else ["tune", "ours"]
        got = {name: runs[name]() for name in order}
        measured.append((n, got["ours"], got["tune"]))
        print(
            f"{n} trials: sweepscope {_wall(got['ours'], n)}, plain Ray Tune "
            f"{_wall(got['tune'], n)}, load {loads[-1]:.1f}",
            flush=True,
        )
        rest = [*args.sizes[k + 1 :]]
        note = f"{', '.join(map(str, rest))} trials: still running when this was written."
        write_scale(cores, measured, loads, costs, command, note if rest else "", {})
    pages = {n: page_times(n, args.page_repeats, args.browser) for n in args.page_sizes}
    write_scale(cores, measured, loads, costs, command, "", pages)


def _wall(run: Run, n: int) -> str:
    if run.finished:
        return f"{run.wall:.1f} s"
    return f"over {run.wall:.0f} s: stopped, {run.completed:,} of {n:,} trials done"


def _ratio(n: int, ours: Run, tune: Run) -> tuple[str, float | None]:
    """The ratio's cell, and the ratio or its bound (None: neither finished)."""
    if ours.finished and tune.finished:
        return f"**{ours.wall / tune.wall:.2f}**", ours.wall / tune.wall
    if ours.finished:  # plain Tune would have taken longer than its timeout
        return f"**< {ours.wall / tune.wall:.2f}**", ours.wall / tune.wall
    if tune.finished:
        return f"**> {ours.wall / tune.wall:.2f}**", ours.wall / tune.wall
    return "-", None


def write_scale(
    cores: int,
    measured: list[tuple[int, Run, Run]],
    loads: list[float],
    costs: list[dict],
    command: str,
    note: str,
    pages: dict[int, dict[str, dict[str, float]]],
) -> None:
    """The fragment, from the sizes measured so far (rewritten after each size)."""
    rows, ratios, stopped = [], [], []
    for n, o, t in measured:
        cell, ratio = _ratio(n, o, t)
        if ratio is not None:
            ratios.append(ratio)
        both = o.finished and t.finished
        rows.append(
            f"| {n:,} | {_wall(o, n)} | {_wall(t, n)} | {cell} | "
            f"{f'{(o.wall - t.wall) / n * 1e3:+.0f} ms' if both else '-'} |"
        )
        for name, run in (("sweepscope", o), ("plain Ray Tune", t)):
            if not run.finished:
                rate = run.completed / run.wall
                eta = f"{n / rate:,.0f} s" if rate > 0 else "no estimate"
                stopped.append(
                    f"{name} at {n:,} trials was stopped after {run.wall:.0f} s (the timeout) "
                    f"with {run.completed:,} trials done, {rate:.2f} trials/s: at that rate "
                    f"all {n:,} would take about {eta}."
                )
    worst = max(ratios) if ratios else float("nan")
    verdict = (
        "met at every size measured (a stopped plain Ray Tune run counts at its timeout, "
        "a lower bound on its wall)"
        if worst <= 1.0
        else f"**missed**: at worst {worst:.2f}, {worst - 1:.2f} over"
    )
    pairs = [(n, o.wall, t.wall) for n, o, t in measured if o.finished and t.finished]
    if len(pairs) >= 2:
        sizes = [n for n, _, _ in pairs]
        fixed_o, per_o = fit(sizes, [o for _, o, _ in pairs])
        fixed_t, per_t = fit(sizes, [t for _, _, t in pairs])
        fitted = f"""Fitted wall = fixed + per trial x N: sweepscope {fixed_o:.1f} s + {per_o * 1e3:.0f} ms x N,
plain Ray Tune {fixed_t:.1f} s + {per_t * 1e3:.0f} ms x N: per trial sweepscope costs
{(per_o - per_t) * 1e3:+.0f} ms against plain Ray Tune ({per_o / per_t:.2f}x). Plain Ray Tune
makes ten reports a trial (one an epoch), sweepscope about one (its points travel in one report
per half second or at the trial's end): per report, plain Ray Tune's cost is
{per_t / 10 * 1e3:.1f} ms of its {per_t * 1e3:.0f} ms a trial."""
    else:
        fitted = "(fewer than two sizes where both finished: no line fitted)"
    cost_rows = "\n".join(
        f"| {c['stored_before']:,} | {c['report_us']:.0f} µs | {c['point_us']:.2f} µs |"
        for c in costs
    )
    # The first window pays the store's warm-up (its first transactions, the file's growth):
    # compare the next three windows' median with the last three's.
    early, late = costs[1:4], costs[-3:]

    def growth(key: str) -> float:
        return statistics.median(c[key] for c in late) / statistics.median(c[key] for c in early)

    growth_report, growth_point = growth("report_us"), growth("point_us")
    grows = [
        name
        for name, g in (("the callback", growth_report), ("the writer", growth_point))
        if g > FLAT
    ]
    flat = (
        f"**{' and '.join(grows)} grow** with the points stored (more than {FLAT:.1f}x)."
        if grows
        else f"neither grows with the points stored (within {FLAT:.1f}x, the noise of a shared "
        "machine): no term grows faster than the number of trials."
    )
    total = costs[-1]["stored_before"] + (costs[-1]["stored_before"] - costs[-2]["stored_before"])
    table = "\n".join(rows)
    stops = "\n\n".join(stopped)
    write_fragment(
        "scale",
        f"""## Costs as sweeps grow: trivial trials, {cores} cores

Wall time of the whole command (a fresh process each, timed from outside) for N trials of a
trivial trainable (ten epochs of 10 ms asleep; sweepscope stores ten losses a step and one an
epoch, 110 points a trial; plain Ray Tune reports once per epoch), sweepscope against plain
Ray Tune with `reuse_actors=True`, one pair per size, the order alternating; a run over the
timeout is stopped and the table says how far it got. Load average (1 min) at the start,
before each size: {", ".join(f"{x:.1f}" for x in loads)}.

| trials | sweepscope run | plain Ray Tune, reuse_actors | sweepscope / Tune | difference per trial |
|---:|---:|---:|---:|---:|
{table}

{stops}

{note}

Target sweepscope / plain Ray Tune <= 1.00 at every size: {verdict}.

{fitted}

The driver's cost per report and the store's per point, against the points already stored
(StoreCallback and StoreWriter in one process on a fresh SQLite store, no Ray; reports of
100 points, ten per trial; {total:,} points in all):

| points stored before | callback per report | writer per point |
|---:|---:|---:|
{cost_rows}

Median of the last three windows / of the second to fourth: {growth_report:.2f}x per
report, {growth_point:.2f}x per point: {flat}

{page_section(pages)}

{stamp(command, ("ray", "streamlit", "plotly", "sqlalchemy", "pandas"))}""",
    )


PAGE_HEADING = "### The dashboard on a sweep of that size"
PAGE_END = "\n\nsweepscope alone,"  # the hand-written run that follows the section


def write_pages(pages: dict[int, dict[str, dict[str, float]]], command: str) -> None:
    """Rewrite only the dashboard's section of scale.md (from its heading up to the
    paragraph after it), stamped with this command."""
    path = RESULTS / "scale.md"
    text = path.read_text()
    start = text.index(PAGE_HEADING)
    end = text.index(PAGE_END, start) if PAGE_END in text[start:] else len(text)
    section = page_section(pages)
    section += (
        f"\n\nThis section: `{command}`, {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}."
    )
    path.write_text(text[:start] + section + text[end:])
    print(section)
    print(f"written to {path.relative_to(REPO)}")


def page_section(pages: dict[int, dict[str, dict[str, float]]]) -> str:
    """The dashboard's pages on the built sweeps, the verdict at the largest, and where
    the largest's cold reads go."""
    from dashboard import live

    if not pages:
        return "(the dashboard's pages: measured after the runs)"
    rows = [
        [
            f"{n:,}",
            f"{n * (EPOCHS * STEPS_PER_EPOCH + EPOCHS):,}",
            PAGES[page],
            f"**{t['cold']:.2f} s**",
            f"{t['warm']:.2f} s",
            f"{t['bytes'] / 1e6:.2f} MB",
        ]
        for n, found in pages.items()
        for page, t in found.items()
        if page in PAGES
    ]
    largest = max(pages)
    over = [PAGES[p] for p, t in pages[largest].items() if p in PAGES and t["cold"] > PAGE_SECONDS]
    verdict = f"**over** on {', '.join(over)}" if over else "met by every page (cold and warm)"
    table = markdown_table(
        ["trials", "points", "page", "cold", "warm", "figures sent"], rows, "rrlrrr"
    )
    return f"""### The dashboard on a sweep of that size

A finished sweep of N trivial trials as `sweepscope run` leaves it (110 points a trial, every
trial completed), written to a SQLite store through the Store API; each page run under
Streamlit's AppTest: the server's whole work for the page (its script, the store reads, the
tables and figures). Cold: every cache empty, the first visitor after a start (the modules
already imported, as `dashboard.warm` does before the server listens); warm: the page run
again (a rerun, or a second visitor: the points are held once per server). Medians of the
repeats; figures sent: the live page's panels as JSON. Over {live.MANY_TRIALS:,} trials the live
page draws no curve per trial: each colour group is its median and interquartile band over a
fixed random {live.BAND_SAMPLE:,} of the trials (the caption and legend say so), and the
{live.TOP_CURVES} best trials by the sweep's metric (with the best and any highlighted one) are
curves on top (`dashboard.live.MANY_TRIALS`, `BAND_SAMPLE`, `TOP_CURVES`); it reads every
metric of only those trials, and the sweep's metric of every trial (the table, the ranking,
the best). The Hyperparameters page reads the chosen metric of every trial (the finals) and
takes the metric names from {live.NAMES_SAMPLE} of the same sample; it computes a large sweep's
importance on a background thread, from a random 2,000 of its finished trials, and draws the
rest of the page meanwhile.

{table}

Target at {largest:,} trials, at most {PAGE_SECONDS:.0f} s server side cold: {verdict}.

{read_paragraph(largest, pages[largest].get("reads"))}{browser_section(pages)}"""


def browser_section(pages: dict[int, dict[str, dict[str, float]]]) -> str:
    """The pages in Chromium (`browser_times`), where they were measured."""
    rows = [
        [
            f"{n:,}",
            f"{b['first']:.2f} s",
            f"**{b['cold']:.2f} s**",
            f"{b['warm']:.2f} s",
            f"{b['sweeps']:.2f} s",
            f"{b['hparams']:.2f} s",
        ]
        for n, found in pages.items()
        if (b := found.get("browser"))
    ]
    if not rows:
        return ""
    table = markdown_table(
        ["trials", "Live: first", "Live: cold", "Live: warm", "Sweeps", "Hyperparameters"],
        rows,
        "rrrrrr",
    )
    return f"""

#### In Chromium

Headless Chromium (Playwright, software rendering) against `sweepscope dashboard`'s server on
the same store, on the page's own clock from navigation (`benchmarks.bench_browser`'s server
and probe): the live page's first drawn trace, the first opening after the server started,
then cold (a fresh profile) and warm (opened again in it); the Sweeps page until its table
is drawn and the Hyperparameters page until its parallel coordinates are, cold. Medians of
the repeats.

{table}"""


def read_paragraph(n: int, reads: dict[str, float] | None) -> str:
    """Where a cold large page's store reads go, from `read_costs`."""
    if not reads:
        return ""
    points = n * (EPOCHS * STEPS_PER_EPOCH + EPOCHS)
    return f"""The store reads of a cold page at {n:,} trials (fresh SweepPoints each, in this
process): the trials {reads["trials"]:.2f} s; the sweep's metric of every trial
{reads["metric"]:.2f} s; every metric of the {int(reads["n_drawn"]):,} trials the live page
draws {reads["drawn"]:.2f} s. Reading all {points:,} points instead, as the page did before it
sampled, takes {reads["every"]:.2f} s. The rest of a cold page is its tables and figures."""


if __name__ == "__main__":
    main()
