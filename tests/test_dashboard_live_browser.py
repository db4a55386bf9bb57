"""The live page in a real browser: a real sweep, the dashboard, and Chromium driven by
Playwright. A panel per metric appears and grows, a spike does not flatten its panel, a
copied URL reopens the same view, and a trial that diverges while the page is open shows
as a notice."""

from __future__ import annotations

import math
import os
import signal
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from runner import report
from runner.store import TrialStatus, open_store
from tests.helpers.browser import BROWSER_ARGS, require_chromium
from tests.helpers.paths import REPO
from tests.helpers.ports import free_port
from tests.helpers.stores import sqlite_made
from tests.helpers.waiting import wait_for

pytestmark = pytest.mark.browser


SPEC = """\
name: livebrowser
trainable: tests.test_dashboard_live_browser:spiky
metric: val_loss
mode: min
stop: {{epochs: 200}}
resources: {{cpu: 1}}
max_concurrent: 2
fixed: {{flag: "{flag}"}}
grid:
  kind: [spike, diverge]
"""


def spiky(config: dict[str, Any]) -> None:
    """A loss falling as 2/sqrt(step), 20 steps a second. `spike`: one value of 500 at step
    25. `diverge`: inf once the file `flag` exists (the test creates it)."""
    step = 0
    for epoch in range(1, config["epochs"] + 1):
        for _ in range(10):
            step += 1
            loss = 2.0 / math.sqrt(step) * (1.0 + 0.05 * math.sin(step))
            if config["kind"] == "spike" and step == 25:
                loss = 500.0
            if config["kind"] == "diverge" and Path(config["flag"]).exists():
                loss = math.inf
            if not report.step(step, train_loss=loss):
                return
            time.sleep(0.05)
        report.epoch(epoch, step=step, val_loss=loss + 0.1)


@pytest.fixture
def chromium() -> Path:
    return require_chromium()


@pytest.fixture
def processes() -> Iterator[list[subprocess.Popen[bytes]]]:
    """Processes the test starts; each gets Ctrl-C, then SIGKILL to its group after 30 s."""
    started: list[subprocess.Popen[bytes]] = []
    try:
        yield started
    finally:
        for proc in reversed(started):
            if proc.poll() is None:
                proc.send_signal(signal.SIGINT)
                try:
                    proc.wait(30)
                except subprocess.TimeoutExpired:
                    os.killpg(proc.pid, signal.SIGKILL)
                    proc.wait()


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


def panel_state(page: Any) -> list[dict[str, Any]]:
    """Each drawn panel: its y-axis type and range, and the largest x of its curves."""
    return list(
        page.evaluate("""() => [...document.querySelectorAll('.js-plotly-plot')].map(p => {
            if (!p._fullLayout) return null;
            let x = -1;
            for (const t of p._fullData) {
                if (t.mode !== 'lines' || !t.x) continue;
                for (const v of t.x) if (v !== null && !Number.isNaN(v) && v > x) x = v;
            }
            const y = p._fullLayout.yaxis;
            return {type: y.type, range: [...y.range], maxX: x,
                    names: p._fullData.map(t => t.name)};
        }).filter(Boolean)""")
    )


def test_live_page_in_a_browser(
    chromium: Path, tmp_path: Path, processes: list[subprocess.Popen[bytes]]
) -> None:
    from playwright.sync_api import expect, sync_playwright

    flag = tmp_path / "diverge-now"
    spec = tmp_path / "live.yaml"
    spec.write_text(SPEC.format(flag=flag))
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
            sweep_id = sweeps[0]["id"]
            running = [t for t in s.trials(sweep_id) if t["status"] == TrialStatus.RUNNING]
            steps = s.points(sweep_id, metrics=["train_loss"])
            if len(running) == 2 and len(steps) and steps["step"].max() > 40:
                return sweep_id
        return None

    sweep_id = wait_for("two running trials past the spike", running_with_points, 180)
    port = free_port()
    start(
        [str(bin_ / "sweepscope"), "dashboard", "--store", url, "--port", str(port)],
        tmp_path / "dashboard.log",
        processes,
    )
    base = f"http://127.0.0.1:{port}"

    def healthy() -> bool:
        try:
            with urllib.request.urlopen(f"{base}/_stcore/health", timeout=2) as r:
                return r.status == 200
        except OSError:
            return False

    wait_for("the dashboard to answer", healthy, 60)
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(chromium), args=BROWSER_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 1300})
            page.goto(f"{base}/live?sweep={sweep_id}&q_smooth=0")
            expect(page.get_by_role("heading", name="Live sweep")).to_be_visible(timeout=60_000)
            panels = wait_for("two drawn panels", lambda: len(panel_state(page)) >= 2, 90)
            assert panels
            train, val = panel_state(page)[:2]  # train loss per step first, then val loss
            # the spike (500 at step 25) is left at the edge: the axis spans the bulk
            assert train["type"] == "linear", train
            assert train["range"][1] < 10, train["range"]
            assert "beyond the axis" in train["names"]
            before = train["maxX"]
            grown = wait_for(
                "the curves to grow", lambda: panel_state(page)[0]["maxX"] > before, 20, 0.25
            )
            assert grown
            page.screenshot(path=str(tmp_path / "live.png"), full_page=True)

            # a trial diverging while the page is open shows as a notice, once
            flag.touch()
            toast = page.get_by_test_id("stToast").filter(has_text="diverged")
            expect(toast.first).to_be_visible(timeout=45_000)
            text = toast.first.inner_text()
            assert "kind=diverge" in text, text
            with open_store(url) as s:
                diverged = [t for t in s.trials(sweep_id) if t["status"] == TrialStatus.DIVERGED]
            assert len(diverged) == 1 and f"Trial {diverged[0]['id']} diverged" in text

            # a view chosen with the widgets is in the URL; the URL opens the same view
            page.get_by_text("log", exact=True).first.click()  # the train loss panel's y axis
            wait_for("a log axis", lambda: panel_state(page)[0]["type"] == "log", 20)
            wait_for("the URL to follow", lambda: "q_y_train_loss=log" in page.url, 20)
            shared = page.url
            other = browser.new_page(viewport={"width": 1400, "height": 1300})
            other.goto(shared)
            wait_for("the shared view", lambda: len(panel_state(other)) >= 2, 90)
            assert panel_state(other)[0]["type"] == "log"
            assert f"sweep={sweep_id}" in shared and "q_smooth=0" in shared
            # a stale value in a link: a notice, and the page goes on
            other.goto(f"{base}/live?sweep={sweep_id}&q_colour=momentum")
            expect(
                other.get_by_test_id("stToast").filter(has_text="q_colour=momentum").first
            ).to_be_visible(timeout=60_000)
            wait_for("panels despite the stale link", lambda: len(panel_state(other)) >= 2, 90)
        finally:
            browser.close()
