"""End to end in a real browser: the dashboard and Chromium driven by Playwright.

With a real sweep: curves appear and grow, 'Stop trial' ends one trial as stopped_by_user
while the others go on, and the BN page draws. With sweeps written through the store API:
the importance chart ranks what the analysis ranks, and sweep against sweep pairs two
partly overlapping sweeps. Pictures go to the test's temporary directory; the README's
come from `make screenshots` (scripts/screenshots.py)."""

from __future__ import annotations

import os
import signal
import subprocess
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from runner.store import TrialStatus, open_store
from tests.helpers.browser import BROWSER_ARGS, require_chromium
from tests.helpers.paths import REPO
from tests.helpers.ports import free_port
from tests.helpers.stores import sqlite_made
from tests.helpers.waiting import wait_for

# Four trials, two at a time: long enough (about a minute each) to watch and to stop.
SPEC = """\
name: e2e
trainable: experiments.train:train
metric: val_acc
mode: max
stop: {epochs: 400}
resources: {cpu: 1}
max_concurrent: 2
fixed: {dataset: synthetic, hidden: 512, layers: 4, batch_size: 64}
grid:
  lr: [0.003, 0.001]
  batch_norm: [true, false]
"""

pytestmark = pytest.mark.browser


@pytest.fixture
def chromium() -> Path:
    return require_chromium()


def end(proc: subprocess.Popen[bytes], grace: float = 30.0) -> None:
    """Ctrl-C, then SIGKILL to the process group if it does not finish in `grace` s."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(grace)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


@pytest.fixture
def processes() -> Iterator[list[subprocess.Popen[bytes]]]:
    started: list[subprocess.Popen[bytes]] = []
    try:
        yield started
    finally:
        for proc in reversed(started):
            end(proc)


def start(
    cmd: list[str], log: Path, procs: list[subprocess.Popen[bytes]]
) -> subprocess.Popen[bytes]:
    env = {**os.environ, "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0", "PYTHONUNBUFFERED": "1"}
    env.pop("SWEEPSCOPE_TOKEN", None)
    proc = subprocess.Popen(
        cmd,
        cwd=REPO,
        env=env,
        stdout=log.open("wb"),
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    procs.append(proc)
    return proc


def serve(url: str, tmp_path: Path, procs: list[subprocess.Popen[bytes]]) -> str:
    """`sweepscope dashboard` on the store at `url`; returns its base URL once it answers."""
    port = free_port()
    start(
        [
            str(REPO / ".venv" / "bin" / "sweepscope"),
            "dashboard",
            "--store",
            url,
            "--port",
            str(port),
        ],
        tmp_path / "dashboard.log",
        procs,
    )
    base = f"http://127.0.0.1:{port}"

    def healthy() -> bool:
        try:
            with urllib.request.urlopen(f"{base}/_stcore/health", timeout=2) as r:
                return r.status == 200
        except OSError:
            return False

    wait_for("the dashboard to answer", healthy, 60)
    return base


def max_step_drawn(page: Any) -> float:
    """The largest x of the live chart's curves, read from plotly's data in the page."""
    return float(
        page.evaluate("""() => {
        const plot = document.querySelector('.js-plotly-plot');
        if (!plot || !plot._fullData) return -1;
        let best = -1;
        for (const t of plot._fullData) {  // x decoded from plotly's typed arrays
            if (t.mode !== 'lines') continue;
            for (const x of t.x) if (x !== null && !Number.isNaN(x) && x > best) best = x;
        }
        return best;
    }""")
    )


def test_live_dashboard_in_a_browser(
    chromium: Path, tmp_path: Path, processes: list[subprocess.Popen[bytes]]
) -> None:
    from playwright.sync_api import expect, sync_playwright

    spec = tmp_path / "e2e.yaml"
    spec.write_text(SPEC)
    url = f"sqlite:///{tmp_path / 'store.db'}"
    bin_ = REPO / ".venv" / "bin"
    sweep_proc = start(
        [str(bin_ / "sweepscope"), "run", str(spec), "--store", url],
        tmp_path / "sweep.log",
        processes,
    )

    def running_with_points() -> Any:
        if sweep_proc.poll() is not None:
            raise AssertionError(f"the sweep ended early:\n{(tmp_path / 'sweep.log').read_text()}")
        if not sqlite_made(tmp_path / "store.db"):
            return None
        with open_store(url) as s:
            sweeps = s.sweeps()
            if not sweeps:
                return None
            running = [t for t in s.trials(sweeps[0]["id"]) if t["status"] == TrialStatus.RUNNING]
            if len(running) >= 2 and len(s.points(sweeps[0]["id"])) > 0:
                return sweeps[0]["id"]
        return None

    sweep_id = wait_for("two running trials with points", running_with_points, 180)
    base = serve(url, tmp_path, processes)
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(chromium), args=BROWSER_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 1500})
            page.goto(f"{base}/live?sweep={sweep_id}")
            expect(page.get_by_role("heading", name="Live sweep")).to_be_visible(timeout=60_000)
            page.wait_for_selector(".js-plotly-plot", timeout=60_000)
            first = wait_for("curves in the live chart", lambda: max_step_drawn(page) > 0, 30)
            assert first
            before = max_step_drawn(page)
            # A point a trial reports shows within the refresh interval (2 s) + 1 s; allow
            # for the runner's own 1 s flush and a busy 2-core machine.
            grown = wait_for(
                "the curves to grow", lambda: max_step_drawn(page) > before, 15, every=0.25
            )
            assert grown
            page.screenshot(path=str(tmp_path / "live.png"))

            with open_store(url) as s:
                trials = s.trials(sweep_id)
            victim = next(t for t in trials if t["status"] == TrialStatus.RUNNING)
            page.get_by_label("Running trial").click()
            page.get_by_role("option", name=f"trial {victim['number']} (running").click()
            page.get_by_role("button", name="Stop trial").click()
            page.get_by_role("button", name="Confirm stop").click()
            expect(page.get_by_text("Stop requested for trial")).to_be_visible(timeout=15_000)

            def victim_status() -> str | None:
                with open_store(url) as s:
                    status = next(
                        t["status"] for t in s.trials(sweep_id) if t["id"] == victim["id"]
                    )
                return status if status != TrialStatus.RUNNING else None

            assert wait_for("the trial to stop", victim_status, 60) == TrialStatus.STOPPED_BY_USER
            with open_store(url) as s:
                others = [t for t in s.trials(sweep_id) if t["id"] != victim["id"]]
                counts = {t["id"]: len(s.points(sweep_id, trial_ids=[t["id"]])) for t in others}
            assert all(t["status"] != TrialStatus.STOPPED_BY_USER for t in others)

            def others_went_on() -> bool:
                with open_store(url) as s:
                    now = {t["id"]: len(s.points(sweep_id, trial_ids=[t["id"]])) for t in others}
                return any(now[i] > counts[i] for i in counts)

            assert wait_for("the other trials to go on", others_went_on, 60)
            # the live chart marks where the trial ended, its reason in the legend (the table
            # also says it, but its cells are drawn on a canvas, with hidden copies for a11y)
            legend = page.locator(".js-plotly-plot .legendtext", has_text="stopped by user")
            expect(legend.first).to_be_visible(timeout=45_000)

            page.goto(f"{base}/compare?sweep={sweep_id}")
            expect(page.get_by_role("heading", name="BN vs no-BN")).to_be_visible(timeout=60_000)
            page.wait_for_selector(".js-plotly-plot", timeout=60_000)
            page.wait_for_timeout(3000)  # let every chart draw
            page.screenshot(path=str(tmp_path / "bn_vs_no_bn.png"))
        finally:
            browser.close()
    # The dashboard wrote no schema, only stop requests: the store has exactly the tables,
    # columns, indexes and unique keys that the runner creates in a new store (the runner
    # created this one so; the dashboard and this test only read it).
    import sqlalchemy as sa

    def schema(store_url: str) -> dict[str, Any]:
        engine = sa.create_engine(store_url)
        try:
            inspector = sa.inspect(engine)
            return {
                table: {
                    "columns": [
                        (c["name"], str(c["type"]), c["nullable"], c.get("default"))
                        for c in inspector.get_columns(table)
                    ],
                    "indexes": sorted(
                        repr(sorted(i.items())) for i in inspector.get_indexes(table)
                    ),
                    "unique": sorted(
                        repr(sorted(u.items())) for u in inspector.get_unique_constraints(table)
                    ),
                }
                for table in inspector.get_table_names()
            }
        finally:
            engine.dispose()

    fresh = f"sqlite:///{tmp_path / 'fresh.db'}"
    open_store(fresh, create=True).close()
    assert schema(url) == schema(fresh)
    with open_store(url) as s:
        assert s.sweep(sweep_id) is not None


# -- pages over sweeps written through the store API (no Ray) ------------------------------------
@pytest.fixture
def browser_page(chromium: Path) -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(chromium), args=BROWSER_ARGS)
        try:
            yield browser.new_page(viewport={"width": 1400, "height": 1600})
        finally:
            browser.close()


def plotly_data(page: Any, trace_type: str) -> list[dict[str, Any]]:
    """The traces of `trace_type` drawn on the page, read from plotly's data in the DOM."""
    data: list[dict[str, Any]] = page.evaluate(
        """(kind) => {
        const out = [];
        for (const plot of document.querySelectorAll('.js-plotly-plot')) {
            for (const t of plot._fullData || []) {
                if (t.type !== kind) continue;
                out.push({name: t.name, x: Array.from(t.x || []), y: Array.from(t.y || []),
                          error: t.error_x ? Array.from(t.error_x.array || []) : [],
                          title: (plot._fullLayout.title || {}).text || ''});
            }
        }
        return out;
    }""",
        trace_type,
    )
    return data


def test_importance_chart_in_a_browser(
    browser_page: Any, tmp_path: Path, processes: list[subprocess.Popen[bytes]]
) -> None:
    """The bar chart beside the parallel coordinates draws the ranking the analysis
    computes, most important on top, with whiskers and the method named; the method chosen
    in the URL is the one drawn."""
    from playwright.sync_api import expect

    from dashboard import compare, importance
    from dashboard.data import SweepPoints, hyperparameters
    from tests.test_dashboard_data import make_sweep

    url = f"sqlite:///{tmp_path / 'store.db'}"
    with open_store(url, create=True) as s:
        make_sweep(s, steps=200)
        sweep = s.sweep("bn_demo-1")
        assert sweep is not None
        trials = s.trials("bn_demo-1")
        points = SweepPoints("bn_demo-1")
        points.refresh(s)
    params = hyperparameters(trials, sweep["spec"])
    finals = compare.final_values(points, [int(t["id"]) for t in trials], "val_acc").to_dict()
    base = serve(url, tmp_path, processes)
    page = browser_page
    for method in importance.available_methods():
        expected = importance.importance(trials, params, finals, "val_acc", method=method)
        label = importance.METHODS[method]
        page.goto(f"{base}/hparams?sweep=bn_demo-1&q_hp_method={label}")
        expect(page.get_by_role("heading", name="Which hyperparameter matters")).to_be_visible(
            timeout=60_000
        )
        page.wait_for_function(
            "[...document.querySelectorAll('.js-plotly-plot')].some("
            "p => (p._fullData || []).some(t => t.type === 'bar'))",
            timeout=60_000,
        )
        (bars,) = plotly_data(page, "bar")
        assert label in bars["title"]  # (the Streamlit theme sets titles in bold)
        drawn = list(reversed(bars["y"]))  # plotly draws the last category on top
        assert drawn == list(expected.table["parameter"])
        assert drawn[-1] == "seed"  # the seed only changes the noise of the made-up curves
        assert bars["x"] == pytest.approx(list(reversed(expected.table["importance"])))
        assert len(bars["error"]) == len(params) and max(bars["error"]) > 0
        expect(page.get_by_text("bootstrap resamples").first).to_be_visible()
    page.screenshot(path=str(tmp_path / "hparams.png"))


def test_sweep_against_sweep_in_a_browser(
    browser_page: Any, tmp_path: Path, processes: list[subprocess.Popen[bytes]]
) -> None:
    """Two sweeps whose grids share two of three learning rates: the page pairs those,
    names the trials left over, and overlays both sweeps' curves."""
    from playwright.sync_api import expect

    from tests.test_versus import _two_sweeps

    url = f"sqlite:///{tmp_path / 'store.db'}"
    with open_store(url, create=True) as s:
        _two_sweeps(s)
    base = serve(url, tmp_path, processes)
    page = browser_page
    page.goto(f"{base}/versus?q_vs_a=bn_demo-1&q_vs_b=bn_demo-2&q_vs_band=min–max")
    expect(page.get_by_role("heading", name="Sweep against sweep")).to_be_visible(timeout=60_000)
    expect(page.get_by_text("8 pairs of trials with the same")).to_be_visible(timeout=60_000)
    expect(page.get_by_text("4 trials of bn_demo without a partner")).to_be_visible()
    expect(page.get_by_text("dataset synthetic → synthetic-v2")).to_be_visible()
    page.wait_for_function(  # the band chart drawn
        "[...document.querySelectorAll('.js-plotly-plot')].some("
        "p => (p._fullData || []).some(t => t.name === 'bn_demo: median'))",
        timeout=60_000,
    )
    lines = {t["name"] for t in plotly_data(page, "scatter")}
    assert {"bn_demo: median", "bn_demo_v2: median", "bn_demo_v2: min–max"} <= lines
    expect(page.get_by_text("mean bn_demo_v2 − bn_demo")).to_be_visible()
    page.screenshot(path=str(tmp_path / "versus.png"))
    # A stale link: the sweep is gone. A short notice, and the page carries on.
    page.goto(f"{base}/versus?q_vs_a=gone-1&q_vs_b=bn_demo-2")
    notice = page.get_by_text("from the link: no such sweep in this store")
    expect(notice).to_be_visible(timeout=60_000)
    assert "q_vs_a=gone-1" in notice.inner_text()
    expect(page.get_by_text("8 pairs of trials with the same")).to_be_visible(timeout=60_000)
