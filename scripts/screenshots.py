"""`make screenshots`: the README's screenshots, from the seed grid in a real browser.

    python scripts/screenshots.py [--out docs/screenshots] [--from-store FILE]

Runs experiments/sweeps/seed_grid.yaml (18 trials, about a minute) and
experiments/sweeps/bn_seeds.yaml (BN on/off with 3 seeds each, about a minute) into a new
store in a temporary directory, serves the dashboard on it, opens each page in Chromium
(Playwright with Debian's /usr/bin/chromium; it never downloads a browser) and writes
live.png, bn_vs_no_bn.png, hparams.png, trial.png and versus.png from the seed grid, and
bn_verdict.png (the BN page's first screen: its verdict and noise floor) from bn_seeds. The store is
`sqlite:///sweepscope.db` relative to the temporary directory, so the page shows the
default store URL, not a temporary path. --from-store copies a SQLite file that already
holds a finished seed grid instead of running one (for iterating on the pictures).
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
# Run as a file (`python scripts/screenshots.py`), so the repository root, which holds the
# test helpers, is not on the path by itself.
sys.path.insert(0, str(REPO))

from tests.helpers.browser import BROWSER_ARGS, CHROMIUM  # noqa: E402

BIN = Path(sys.executable).parent
SPEC = REPO / "experiments" / "sweeps" / "seed_grid.yaml"
SEEDED = REPO / "experiments" / "sweeps" / "bn_seeds.yaml"
STORE = "sqlite:///sweepscope.db"  # relative to the temporary directory the tools run in
PORTS = range(8620, 8630)
WIDTH = 1440  # pixels; each page gets the height that shows what it is about
FIRST_SCREEN = 1000  # the height of a shot of what a page shows first


def _env() -> dict[str, str]:
    env = {**os.environ, "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0", "PYTHONUNBUFFERED": "1"}
    env.pop("SWEEPSCOPE_STORE", None)
    env.pop("SWEEPSCOPE_TOKEN", None)
    return env


def _free_port() -> int:
    for port in PORTS:
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise SystemExit(f"no free port in {PORTS.start}-{PORTS.stop - 1}. Fix: free one.")


def _wait_for(what: str, check: Callable[[], Any], timeout: float) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if value := check():
            return value
        time.sleep(0.5)
    raise SystemExit(f"timed out after {timeout:.0f} s waiting for {what}")


def run_seed_grid(workdir: Path, spec: Path = SPEC) -> None:
    """`sweepscope run` the seed grid (or `spec`) into workdir/sweepscope.db."""
    started = time.perf_counter()
    done = subprocess.run(
        [str(BIN / "sweepscope"), "run", str(spec), "--store", STORE, "--storage-path", "ray"],
        cwd=workdir,
        env=_env(),
        capture_output=True,
        text=True,
        timeout=1800,
    )
    if done.returncode != 0:
        raise SystemExit(f"{spec.name} failed ({done.returncode}):\n{done.stderr[-4000:]}")
    print(f"{spec.stem}: {time.perf_counter() - started:.0f} s")


@contextmanager
def dashboard(workdir: Path) -> Iterator[str]:
    """`sweepscope dashboard` on the store in workdir; yields its base URL."""
    port = _free_port()
    log = (workdir / "dashboard.log").open("wb")
    proc = subprocess.Popen(
        [str(BIN / "sweepscope"), "dashboard", "--store", STORE, "--port", str(port)],
        cwd=workdir,
        env=_env(),
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    base = f"http://127.0.0.1:{port}"

    def healthy() -> bool:
        try:
            with urllib.request.urlopen(f"{base}/_stcore/health", timeout=2) as r:
                return r.status == 200
        except OSError:
            return False

    try:
        _wait_for("the dashboard to answer", healthy, 90)
        yield base
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        log.close()


def sweeps_and_best_trial(workdir: Path) -> tuple[list[str], int, str | None]:
    """The seed grid's sweep ids (newest first), the trial of the newest with the best final
    val_acc, and the seeded BN sweep's id (None when the store has none)."""
    sys.path.insert(0, str(REPO))
    from dashboard.compare import final_values
    from dashboard.data import SweepPoints
    from runner.store import open_store

    with open_store(f"sqlite:///{workdir / 'sweepscope.db'}") as store:
        seeded = next((s["id"] for s in store.sweeps() if s["name"] == SEEDED.stem), None)
        ids = [s["id"] for s in store.sweeps() if s["name"] != SEEDED.stem]
        points = SweepPoints(ids[0])
        points.refresh(store)
        trials = [int(t["id"]) for t in store.trials(ids[0])]
    return ids, int(final_values(points, trials, "val_acc").idxmax()), seeded


def settle(page: Any, heading: str, charts: int = 1) -> None:
    """Wait for the page's heading, `charts` drawn plotly charts, and the script to finish."""
    from playwright.sync_api import expect

    expect(page.get_by_role("heading", name=heading)).to_be_visible(timeout=90_000)
    page.wait_for_function(
        f"document.querySelectorAll('.js-plotly-plot .main-svg').length >= {charts}",
        timeout=90_000,
    )
    page.wait_for_function(
        "!document.querySelector('[data-testid=\"stStatusWidget\"]')", timeout=90_000
    )
    page.wait_for_timeout(2500)  # plotly's last transitions


def shoot(base: str, sweeps: list[str], best: int, seeded: str | None, out: Path) -> list[Path]:
    from playwright.sync_api import ViewportSize, sync_playwright

    sweep = sweeps[0]
    shots = [  # file, path, heading, charts to wait for, height (None: the first screen)
        ("live.png", f"/live?sweep={sweep}", "Live sweep", 3, 1500),
        ("bn_vs_no_bn.png", f"/compare?sweep={sweep}", "BN vs no-BN", 5, 1720),
        ("hparams.png", f"/hparams?sweep={sweep}", "Hyperparameters", 2, 1000),
        ("trial.png", f"/trial?sweep={sweep}&trial={best}", "Trial detail", 1, 1900),
    ]
    if seeded is not None:  # the verdict, its interval and the noise floor
        shots.append(("bn_verdict.png", f"/compare?sweep={seeded}", "BN vs no-BN", 5, None))
    if len(sweeps) > 1:
        versus = f"/versus?sweep={sweep}&q_vs_a={sweeps[1]}&q_vs_b={sweep}"
        shots.append(("versus.png", versus, "Sweep against sweep", 3, 1900))
    out.mkdir(parents=True, exist_ok=True)
    written = []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=BROWSER_ARGS)
        try:
            for name, path, heading, charts, height in shots:
                size = ViewportSize(width=WIDTH, height=height or FIRST_SCREEN)
                page = browser.new_page(viewport=size)
                page.goto(base + path)
                settle(page, heading, charts)
                target = out / name
                page.screenshot(path=str(target), full_page=height is not None)
                written.append(target)
                page.close()
                print(
                    f"wrote {target.relative_to(REPO) if target.is_relative_to(REPO) else target}"
                )
        finally:
            browser.close()
    return written


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", type=Path, default=REPO / "docs" / "screenshots")
    parser.add_argument("--from-store", type=Path, help="a SQLite file with a finished seed grid")
    parser.add_argument(
        "--twice", action="store_true", help="run the seed grid twice, for versus.png"
    )
    args = parser.parse_args()
    if not CHROMIUM.exists():
        print(
            f"needs Debian's chromium at {CHROMIUM}: apt-get install -y chromium", file=sys.stderr
        )
        return 2
    with tempfile.TemporaryDirectory(prefix="sweepscope-screenshots-") as tmp:
        workdir = Path(tmp)
        if args.from_store:
            shutil.copyfile(args.from_store, workdir / "sweepscope.db")
        else:
            run_seed_grid(workdir)
        if args.twice:
            run_seed_grid(workdir)
        if not args.from_store:
            run_seed_grid(workdir, SEEDED)
        sweeps, best, seeded = sweeps_and_best_trial(workdir)
        with dashboard(workdir) as base:
            shoot(base, sweeps, best, seeded, args.out.resolve())
    return 0


if __name__ == "__main__":
    sys.exit(main())
