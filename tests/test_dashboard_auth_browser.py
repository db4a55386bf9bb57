"""The dashboard's own PostgreSQL role, through the dashboard, in a real browser, on a server
that checks passwords (scram-sha-256): `sweepscope migrate --grant-dashboard` gives the role
its rights, `sweepscope dashboard` logs in as it with its password in the URL, the pages list
the sweep and draw a trial's curves, a stop request from the page lands in the store, and a
write the role may not do is refused by the database."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from runner.store import TrialStatus, open_store
from tests.helpers.browser import BROWSER_ARGS

from .conftest import REPO, SECRET, SecuredDatabase
from .test_dashboard_data import make_sweep
from .test_dashboard_e2e import chromium, processes, serve, wait_for  # noqa: F401 (fixtures)
from .test_plain_tune import cli, cli_env

pytestmark = [pytest.mark.browser, pytest.mark.postgres]

ROLE = "sweepscope_dashboard"
ROLE_PASSWORD = "Dash@b0ard/%:pw"  # characters a URL must escape
PERMISSION_DENIED = "42501"  # SQLSTATE insufficient_privilege


def curves_drawn(page: Any) -> int:
    """How many points the line traces of the page's charts hold (read from plotly's data)."""
    return int(
        page.evaluate("""() => {
        let n = 0;
        for (const plot of document.querySelectorAll('.js-plotly-plot')) {
            for (const t of plot._fullData || []) {
                if (t.mode && t.mode.includes('lines') && t.x) n += t.x.length;
            }
        }
        return n;
    }""")
    )


def test_the_dashboard_role_reads_and_stops_through_the_dashboard(
    chromium: Path,  # noqa: F811
    secured_db: SecuredDatabase,
    tmp_path: Path,
    processes: list[subprocess.Popen[bytes]],  # noqa: F811
) -> None:
    from playwright.sync_api import expect, sync_playwright

    owner_url = secured_db.url()
    with open_store(owner_url, create=True) as owner:
        ids = make_sweep(owner, running=[0, 1], steps=200)
    secured_db.add_role(ROLE, ROLE_PASSWORD)
    granted = cli(
        "migrate", "--store", owner_url, "--grant-dashboard", ROLE,
        env=cli_env(PYTHONPATH=str(REPO)),
    )  # fmt: skip
    assert granted.returncode == 0, granted.stderr
    assert SECRET not in granted.stdout + granted.stderr

    dashboard_url = secured_db.url(user=ROLE, password=ROLE_PASSWORD)
    base = serve(dashboard_url, tmp_path, processes)
    victim = ids[0]
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(chromium), args=BROWSER_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 1500})
            page.goto(base)
            expect(page.get_by_role("heading", name="Sweeps")).to_be_visible(timeout=60_000)
            # the sweep table (a canvas) and the sidebar's picker both name the sweep
            expect(page.get_by_text("bn_demo-1").first).to_be_visible(timeout=60_000)
            expect(page.get_by_text(f"{ROLE}:***@").first).to_be_visible()

            page.goto(f"{base}/trial?sweep=bn_demo-1&trial={ids.index(victim) + 1}")
            expect(page.get_by_role("heading", name="Trial detail")).to_be_visible(timeout=60_000)
            page.wait_for_selector(".js-plotly-plot", timeout=60_000)
            assert wait_for("the trial's curves", lambda: curves_drawn(page) > 0, 30)
            page.get_by_role("button", name="Stop trial").click()
            page.get_by_role("button", name="Confirm stop").click()
            number = ids.index(victim) + 1  # the page names trials by number within the sweep
            expect(page.get_by_text(f"Stop requested for trial {number}")).to_be_visible(
                timeout=30_000
            )
            page.screenshot(path=str(tmp_path / "trial_stop_as_dashboard_role.png"))
            shown = page.content()
            assert "password authentication failed" not in shown
            assert SECRET not in shown
        finally:
            browser.close()

    with open_store(owner_url) as owner:
        # the stop request landed on that trial's row, and nothing else changed
        assert owner.stop_requests("bn_demo-1") == (False, {"t00000"})
        trials = {t["id"]: t for t in owner.trials("bn_demo-1")}
        assert trials[victim]["status"] == TrialStatus.RUNNING  # the runner acts on it
        sweep = owner.sweep("bn_demo-1")
        assert sweep is not None and sweep["status"] == "running"

    # What the dashboard logs in as may set stop requests and nothing else.
    engine = sa.create_engine(dashboard_url)
    try:
        for statement in (
            f"UPDATE trials SET status = 'completed' WHERE id = {victim}",
            "DELETE FROM points",
            "UPDATE sweeps SET stop_requested_at = 1",  # allowed: the one column it may set
        ):
            if statement.startswith("UPDATE sweeps"):
                with engine.begin() as conn:
                    conn.execute(sa.text(statement))
                continue
            with pytest.raises(sa.exc.ProgrammingError) as denied, engine.begin() as conn:
                conn.execute(sa.text(statement))
            assert getattr(denied.value.orig, "sqlstate", None) == PERMISSION_DENIED, statement
    finally:
        engine.dispose()
    with open_store(owner_url) as owner:
        assert {t["id"]: t["status"] for t in owner.trials("bn_demo-1")}[victim] == "running"
        assert owner.stop_requests("bn_demo-1")[0] is True
