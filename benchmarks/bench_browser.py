"""Opening the live page in a real browser: from navigation to the first drawn chart.

Serves the dashboard (`dashboard.serve.streamlit_command`, as `sweepscope dashboard` does)
on two stores and opens /live in Chromium, driven by Playwright:

- the seed grid (`experiments/sweeps/seed_grid.yaml`, 18 trials): `--seed-store URL`, or
  run into a temporary store first (about a minute or more);
- a 1,000-trial sweep of 1M points, filled through the store API
  (`benchmarks.bench_dashboard.fill`); `--trials 0` leaves it out.

Each store is opened on a quiet machine and, with `--busy N` (default 2, one per core
here), again while N processes keep a core each busy as a sweep's trials do: started in
the dashboard's session, as `make run` starts the trials beside it, at the nice level
trials run at (`--trial-nice`, runner.trial.entry's TRIAL_NICE where it has one, else 0).
With `--baseline DIR` (an earlier checkout, e.g. `git worktree add /tmp/base HEAD~3`),
every case is also served from that tree and printed beside (its own trial nice: pass
`--baseline-nice`).

Every time is read in the page, on its own clock (performance.now(), zero at navigation
start), by a script added before the page loads: when the WebSocket to Streamlit opens,
when each message arrives, and the first animation frame in which a plotly chart has a
drawn trace. Where the time goes:

- page and JavaScript: navigation until the WebSocket opens;
- script start: until Streamlit's first message (it has started the page's script);
- server and transfer: until the message carrying the first chart (the largest before it
  appears) has arrived; the store
  reads and figure building inside it are timed separately, in this process, by running the
  page's data path (`dashboard.live`) on the same store, and the rest is transfer;
- drawing: from that message to the first drawn chart.

Cold: a fresh browser profile (nothing cached); warm: the same page opened again in that
profile (Streamlit's and plotly's JavaScript cached, as for anyone who opened it before);
first: the first cold opening after the server started (it pays for what the server does
on its first page). Medians; the load average is printed beside them (the machines these
run on are shared).

    .venv/bin/python -m benchmarks.bench_browser [--seed-store URL] [--trials 1000]
        [--steps 1000] [--repeats 3] [--busy 2] [--trial-nice N]
        [--baseline DIR] [--baseline-nice N]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shlex
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import plotly.io

from benchmarks._common import REPO, run_cli, stamp, write_fragment
from benchmarks.bench_dashboard import fill
from dashboard import live
from dashboard.data import SweepPoints
from dashboard.serve import STORE_ENV, streamlit_command
from runner.store import open_store
from tests.helpers.browser import BROWSER_ARGS, CHROMIUM
from tests.helpers.ports import free_port

# Seconds to the first drawn chart (cold) of the seed grid, quiet and busy (issue 18), and
# of any bigger sweep (1M points) on a quiet machine; twice that busy.
BUDGETS = {("seed grid", False): 2.0, ("seed grid", True): 4.0}
BIG_BUDGET = 4.0
PACKAGES = ("streamlit", "plotly", "playwright", "pandas")

# Added to the page before it loads: records, on the page's own clock, the WebSocket's
# opening and messages, and the first frame with a drawn chart.
PROBE = """
(() => {
  const t = (window.__probe = {frames: [], wsOpen: null, plot: null, drawn: null});
  const Native = window.WebSocket;
  window.WebSocket = function (...args) {
    const ws = new Native(...args);
    ws.addEventListener('open', () => { if (t.wsOpen === null) t.wsOpen = performance.now(); });
    ws.addEventListener('message', (e) => {
      const n = e.data.byteLength ?? e.data.size ?? e.data.length ?? 0;
      t.frames.push([performance.now(), n]);
    });
    return ws;
  };
  window.WebSocket.prototype = Native.prototype;
  for (const k of ['CONNECTING', 'OPEN', 'CLOSING', 'CLOSED']) window.WebSocket[k] = Native[k];
  const watch = () => {
    const el = document.querySelector('.js-plotly-plot');
    if (el && t.plot === null) t.plot = performance.now();
    if (el && el._fullLayout && el.querySelector('.scatterlayer .trace, canvas.gl-canvas')) {
      t.drawn = performance.now();
      return;
    }
    requestAnimationFrame(watch);
  };
  requestAnimationFrame(watch);
})();
"""


def load_average() -> float:
    return os.getloadavg()[0]


def trial_nice() -> int:
    """The nice level trials run at: runner.trial.entry's TRIAL_NICE, 0 where it has none."""
    try:
        from runner.trial import entry
    except ImportError:
        return 0
    return int(getattr(entry, "TRIAL_NICE", 0))


# One trial's worth of work: a core kept busy with numpy, one thread, as Ray gives a
# `cpu: 1` trial (OMP_NUM_THREADS=1).
BURNER = "import numpy as np\na = np.random.rand(200, 200)\nwhile True:\n    a = np.tanh(a @ a)\n"


def served_command(repo: Path, host: str, port: int) -> list[str]:
    """`streamlit_command` as the tree at `repo` builds it (an older tree serves its own
    way); this tree's when `repo` is this one."""
    if repo == REPO:
        return streamlit_command(host, port)
    code = (
        "import json, sys; from dashboard.serve import streamlit_command; "
        f"print(json.dumps(streamlit_command({host!r}, {port})))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code],
        cwd=repo,
        env={**os.environ, "PYTHONPATH": str(repo)},
        capture_output=True,
        text=True,
        check=True,
    )
    return list(json.loads(out.stdout))


@contextmanager
def dashboard(store_url: str, *, repo: Path = REPO, busy: int = 0, nice: int = 0) -> Iterator[str]:
    """The dashboard of the tree at `repo` served for `store_url`, as `sweepscope dashboard`
    serves it; with `busy`, that many processes keep a core each busy beside it, in its
    session (as `make run` starts a sweep's trials) at nice level `nice`."""
    port = free_port()
    env = {**os.environ, STORE_ENV: store_url, "PYTHONPATH": str(repo)}
    env.pop("SWEEPSCOPE_TOKEN", None)
    burn = shlex.join(["nice", "-n", str(nice), sys.executable, "-c", BURNER])
    serve = shlex.join(served_command(repo, "127.0.0.1", port))
    script = f"for _ in $(seq {busy}); do OMP_NUM_THREADS=1 {burn} & done; exec {serve}"
    proc = subprocess.Popen(
        ["bash", "-c", script],
        env=env,
        cwd=repo,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,  # its own process group: the burners end with it
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 90
        while True:
            try:
                with urllib.request.urlopen(f"{base}/_stcore/health", timeout=2) as r:
                    if r.status == 200:
                        break
            except OSError:
                pass
            if time.monotonic() > deadline or proc.poll() is not None:
                raise RuntimeError("the dashboard did not start within 90 s")
            time.sleep(0.3)
        yield base
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)  # a burner left behind


def open_once(page: Any, url: str) -> dict[str, float]:
    """Navigate to the live page and read the probe: seconds since navigation start."""
    page.goto(url)
    page.wait_for_function("() => window.__probe && window.__probe.drawn !== null", timeout=120_000)
    probe = page.evaluate("() => window.__probe")
    frames = [(at / 1000, n) for at, n in probe["frames"]]
    plot = probe["plot"] / 1000
    before = [(n, -at) for at, n in frames if at <= plot]  # the largest, then the first
    ws_open = probe["wsOpen"] / 1000
    return {
        "ws open": ws_open,
        "first message": min(at for at, _ in frames),
        "chart message": -max(before)[1] if before else plot,
        "drawn": probe["drawn"] / 1000,
        "bytes": float(sum(n for at, n in frames if at <= plot)),
    }


def server_side(store_url: str) -> dict[str, float]:
    """The page's data path on this store, in this process: store reads, figure building
    and serialising (what Streamlit's script does between its start and its messages)."""
    with open_store(store_url) as store:
        sweep = store.sweeps()[0]
        points = SweepPoints(str(sweep["id"]))
        t0 = time.perf_counter()
        frame = live.refresh(store, points, sweep)
        t1 = time.perf_counter()
        _, drawn = live.shown_trials(frame)
        colour = "batch_norm" if "batch_norm" in frame.params else None
        grid = live.panels(
            points,
            drawn,
            live.LiveOptions(color_by=colour),
            params=frame.params,
            best=live.best_trial(frame),
        )
        t2 = time.perf_counter()
        for p in grid:
            plotly.io.to_json(p.figure.to_dict(), validate=False)
        t3 = time.perf_counter()
    return {"reads": t1 - t0, "figures": t2 - t1, "serialise": t3 - t2}


def measure(
    store_url: str, repeats: int, *, repo: Path = REPO, busy: int = 0, nice: int = 0
) -> dict[str, dict[str, float]]:
    """Medians of `open_once` on the live page of the store's sweep: "cold" (a fresh
    profile) and "warm" (opened again in it), and "first", the first cold opening after
    the server started (it pays what the server does on its first page)."""
    from playwright.sync_api import sync_playwright

    runs: dict[str, list[dict[str, float]]] = {"cold": [], "warm": []}
    with (
        dashboard(store_url, repo=repo, busy=busy, nice=nice) as base,
        sync_playwright() as p,
    ):
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=BROWSER_ARGS)
        try:
            for _ in range(repeats):
                context = browser.new_context(viewport={"width": 1400, "height": 1000})
                context.add_init_script(PROBE)
                page = context.new_page()
                runs["cold"].append(open_once(page, f"{base}/live"))
                page.goto("about:blank")
                runs["warm"].append(open_once(page, f"{base}/live"))
                context.close()
        finally:
            browser.close()
    medians = {
        kind: {k: statistics.median(r[k] for r in rs) for k in rs[0]} for kind, rs in runs.items()
    }
    return {"first": runs["cold"][0], **medians}


def seed_grid_store(tmp: Path) -> str:
    url = f"sqlite:///{tmp / 'seed.db'}"
    spec = REPO / "experiments" / "sweeps" / "seed_grid.yaml"
    print(f"running the seed grid into {url} ...", flush=True)
    run_cli("run", str(spec), "--store", url)
    return url


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seed-store", help="a store holding the seed grid (else run it)")
    parser.add_argument("--trials", type=int, default=1000, help="0: no big sweep")
    parser.add_argument("--steps", type=int, default=1000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--busy", type=int, default=2, help="busy cores; 0: quiet only")
    parser.add_argument("--trial-nice", type=int, default=None, help="default: TRIAL_NICE")
    parser.add_argument("--baseline", type=Path, help="an earlier checkout to compare with")
    parser.add_argument("--baseline-nice", type=int, default=0)
    args = parser.parse_args(argv)
    if not CHROMIUM.exists():
        print(f"needs Debian's chromium at {CHROMIUM}: apt-get install -y chromium")
        return 1
    nice = trial_nice() if args.trial_nice is None else args.trial_nice
    trees = {"now": (REPO, nice)}
    if args.baseline is not None:
        trees = {"baseline": (args.baseline.resolve(), args.baseline_nice), **trees}
    machines = {"quiet": 0, f"{args.busy} cores busy": args.busy} if args.busy else {"quiet": 0}
    results: dict[tuple[str, str, str], dict[str, dict[str, float]]] = {}
    servers, loads = {}, {}
    with tempfile.TemporaryDirectory() as tmp:
        cases = {"seed grid": args.seed_store or seed_grid_store(Path(tmp))}
        if args.trials:
            big = f"sqlite:///{Path(tmp) / 'big.db'}"
            with open_store(big, create=True) as store:
                fill(store, "bench", args.trials, args.steps)
            cases[f"{args.trials:,} trials x {args.steps:,} steps"] = big
        for name, url in cases.items():
            servers[name] = server_side(url)
            for machine, busy in machines.items():
                for tree, (repo, tree_nice) in trees.items():
                    print(f"== {name}, {machine}, {tree}", flush=True)
                    loads[name, machine, tree] = load_average()
                    t = measure(url, args.repeats, repo=repo, busy=busy, nice=tree_nice)
                    results[name, machine, tree] = t
                    print({k: round(v["drawn"], 2) for k, v in t.items()}, flush=True)

    command = " ".join(
        [
            "python -m benchmarks.bench_browser",
            *(shlex.quote(a) for a in (argv if argv is not None else sys.argv[1:])),
        ]
    )
    write_fragment("browser", report(results, servers, loads, trees, args, command))
    over = [
        key
        for key, t in results.items()
        if key[2] == "now" and t["cold"]["drawn"] > budget(key[0], key[1])
    ]
    return 1 if over else 0


def budget(sweep: str, machine: str) -> float:
    """Seconds allowed to the first chart (cold): the seed grid's by load, else BIG_BUDGET."""
    busy = machine != "quiet"
    return BUDGETS.get((sweep, busy), BIG_BUDGET * (2 if busy else 1))


def report(
    results: dict[tuple[str, str, str], dict[str, dict[str, float]]],
    servers: dict[str, dict[str, float]],
    loads: dict[tuple[str, str, str], float],
    trees: dict[str, tuple[Path, int]],
    args: argparse.Namespace,
    command: str,
) -> str:
    """The fragment: first-chart times side by side, then where the time goes."""
    names = list(trees)
    lines = [
        "## Dashboard: opening the live page in a browser",
        "",
        "Navigation to the first drawn chart of /live in headless Chromium (Playwright, "
        "software WebGL), read in the page on its own clock. Cold: a fresh browser profile; "
        f"warm: the page opened again in it; medians of {args.repeats}. First: the first "
        "cold opening after the server started. Busy: "
        f"{args.busy} processes keep a core each busy in the dashboard's session, as "
        "`make run` starts a sweep's trials, at the trials' nice level "
        f"({', '.join(f'{t}: {trees[t][1]}' for t in names)}).",
        "",
        "| sweep | machine | "
        + " | ".join(f"{t}: first / cold / warm" for t in names)
        + " | budget (cold) |",
        "|---|---|" + "---:|" * len(names) + "---:|",
    ]
    for name, machine in dict.fromkeys((k[0], k[1]) for k in results):
        cells = []
        for tree in names:
            t = results[name, machine, tree]
            cells.append(
                f"{t['first']['drawn']:.2f} / **{t['cold']['drawn']:.2f}** / "
                f"{t['warm']['drawn']:.2f} s"
            )
        limit = budget(name, machine)
        verdict = "within" if results[name, machine, "now"]["cold"]["drawn"] <= limit else "OVER"
        lines.append(f"| {name} | {machine} | {' | '.join(cells)} | {limit:g} s ({verdict}) |")
    lines += [
        "",
        "Where the time goes (server: the page's data path timed in the "
        "benchmark's process on the same store: reads / figures / serialise; transfer is the "
        "rest of the wait for the chart's message):",
        "",
        "| sweep | machine | tree | profile | page + JS | script start | server | transfer "
        "| drawing | **first chart** | sent before it | load avg |",
        "|---|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for (name, machine, tree), timings in results.items():
        server = servers[name]
        work = server["reads"] + server["figures"] + server["serialise"]
        for kind, probe in timings.items():
            wait = probe["chart message"] - probe["first message"]
            lines.append(
                f"| {name} | {machine} | {tree} | {kind} | {probe['ws open']:.2f} s | "
                f"{probe['first message'] - probe['ws open']:.2f} s | "
                f"{server['reads']:.2f} / {server['figures']:.2f} / {server['serialise']:.2f} s | "
                f"{max(0.0, wait - work):.2f} s | {probe['drawn'] - probe['chart message']:.2f} s | "
                f"**{probe['drawn']:.2f} s** | {probe['bytes'] / 1e6:.2f} MB | "
                f"{loads[name, machine, tree]:.1f} |"
            )
    lines += [
        "",
        "What the page does for a quick first chart (issue 18): the server imports the "
        "pages' modules before it listens (`dashboard.warm`), so the first page after a "
        "start no longer waits for pandas, SciPy, SQLAlchemy and plotly; trials run at a "
        "lower priority than the dashboard beside them (the busy rows' nice level). Sending "
        "an empty chart first, so that the browser starts on plotly.js while the server "
        "reads the store, was tried and made no difference: the browser's main thread is "
        "busy all along. What is left "
        "of a cold opening is the browser's own work, one task after the other on its main "
        "thread: Streamlit's JavaScript until the WebSocket opens, then plotly.js (4.7 MB) "
        "evaluated and its first figure drawn with nothing compiled yet; a warm profile "
        "has that code compiled. A browser in a session of its own (a desktop's) shares "
        "the CPU with the sweep's session as Linux's autogroups share it, whatever the "
        "trials' nice level.",
        "",
        stamp(command, PACKAGES),
    ]
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
