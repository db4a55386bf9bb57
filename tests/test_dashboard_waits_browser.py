"""A dashboard opened before any sweep, in a real browser: `make run` prints the page's
address before the sweep has made its store, and a user who opens it then must not have to
reload. The page waits for the store, then for the first sweep, and shows it on its own."""

from __future__ import annotations

from pathlib import Path

import pytest

from runner.store import open_store
from tests.helpers.browser import BROWSER_ARGS, CHROMIUM, require_chromium
from tests.helpers.served import served_dashboard

pytestmark = pytest.mark.browser


def test_page_opened_before_the_store_shows_the_first_sweep_on_its_own(tmp_path: Path) -> None:
    from playwright.sync_api import expect, sync_playwright

    require_chromium()
    db = tmp_path / "store.db"
    url = f"sqlite:///{db}"
    with (
        served_dashboard(url, tmp_path / "dashboard.log") as base,
        sync_playwright() as p,
    ):
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=BROWSER_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1300, "height": 900})
            page.goto(base)
            expect(page.get_by_text("Waiting for a sweep to make the store.")).to_be_visible(
                timeout=60_000
            )
            expect(page.get_by_text(f"No sweepscope store at {url}")).to_be_visible()
            assert not db.exists()  # the dashboard never makes a store

            with open_store(url, create=True):  # what a sweep's driver does first
                pass
            expect(page.get_by_text("holds no sweeps yet")).to_be_visible(timeout=30_000)

            with open_store(url) as store:
                store.create_sweep(
                    "waited-1",
                    name="waited",
                    spec={"name": "waited"},
                    metric="val_loss",
                    mode="min",
                    n_trials=2,
                )
            expect(page.get_by_text("Chosen: waited-1")).to_be_visible(timeout=30_000)
        finally:
            browser.close()
