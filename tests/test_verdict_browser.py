"""The BN page's verdict in a real browser: a seeded sweep with a known effect, the
dashboard as `sweepscope dashboard` serves it, and Chromium driven by Playwright. The page
says BN on is better and names the noise floor. Set SWEEPSCOPE_SCREENSHOT to a .png path to
keep a picture of the verdict."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from runner.store import open_store
from tests.helpers.browser import BROWSER_ARGS, CHROMIUM, require_chromium
from tests.helpers.served import served_dashboard
from tests.test_verdict_pages import seeded_bn_sweep

pytestmark = pytest.mark.browser


@pytest.fixture
def dashboard(tmp_path: Path) -> Iterator[str]:
    """`sweepscope dashboard` on a store holding a seeded sweep where BN adds 0.1; yields
    its base URL (tests.helpers.served stops it afterwards)."""
    require_chromium()
    url = f"sqlite:///{tmp_path / 'store.db'}"
    with open_store(url, create=True) as store:
        seeded_bn_sweep(store, effect=0.1)
    with served_dashboard(url, tmp_path / "dashboard.log") as base:
        yield base


def test_bn_page_shows_the_verdict_and_the_noise_floor(dashboard: str) -> None:
    from playwright.sync_api import expect, sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=BROWSER_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 1100})
            page.goto(f"{dashboard}/compare?sweep=bn_seeded-1")
            expect(page.get_by_role("heading", name="BN vs no-BN")).to_be_visible(timeout=60_000)
            verdict = page.get_by_text("BN on is better than BN off at 95% confidence")
            expect(verdict).to_be_visible(timeout=60_000)
            expect(page.get_by_text("are noise on this sweep")).to_be_visible()
            expect(page.get_by_text("Noise floor ±")).to_be_visible()
            shot = os.environ.get("SWEEPSCOPE_SCREENSHOT")
            if shot:
                page.wait_for_timeout(1500)  # the figures finish drawing
                page.screenshot(path=shot)
        finally:
            browser.close()
