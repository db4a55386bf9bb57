"""The live page of a seeded sweep in a real browser: `sweepscope dashboard` over a store
holding a running seeded sweep (tests.test_dashboard_live_seeds), and Chromium driven by
Playwright. The panels show one median curve with a band per configuration that has
points, and "Each seed" expands them to the single trials. Set SWEEPSCOPE_SCREENSHOT to a
.png path to keep a picture of the collapsed page."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from runner.store import open_store
from tests.helpers.browser import BROWSER_ARGS, CHROMIUM, require_chromium
from tests.helpers.served import served_dashboard
from tests.helpers.waiting import wait_for
from tests.test_dashboard_live_seeds import SWEEP, seeded_live_sweep

pytestmark = pytest.mark.browser


@pytest.fixture
def dashboard(tmp_path: Path) -> Iterator[str]:
    require_chromium()
    url = f"sqlite:///{tmp_path / 'store.db'}"
    with open_store(url, create=True) as store:
        seeded_live_sweep(store)
    with served_dashboard(url, tmp_path / "dashboard.log") as base:
        yield base


def trace_names(page: Any) -> list[list[str]]:
    """The names of each drawn panel's traces."""
    return list(
        page.evaluate("""() => [...document.querySelectorAll('.js-plotly-plot')]
            .filter(p => p._fullData).map(p => p._fullData.map(t => t.name || ''))""")
    )


def test_live_page_collapses_seeds_and_expands(dashboard: str) -> None:
    from playwright.sync_api import expect, sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=BROWSER_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1500, "height": 1500})
            page.goto(f"{dashboard}/live?sweep={SWEEP}")
            expect(page.get_by_role("heading", name="Live sweep")).to_be_visible(timeout=60_000)

            def collapsed() -> list[list[str]]:
                panels = trace_names(page)
                return panels if len(panels) == 2 else []

            for names in wait_for("the collapsed panels", collapsed, 60):
                centres = [n for n in names if n.endswith("seeds)")]
                assert centres == ["lr=0.1 (3/3 seeds)", "lr=0.01 (2/3 seeds)"]
            expect(page.get_by_text("no points yet: lr=0.001")).to_be_visible()
            shot = os.environ.get("SWEEPSCOPE_SCREENSHOT")
            if shot:
                page.wait_for_timeout(1500)  # the figures finish drawing
                page.screenshot(path=shot, full_page=True)

            page.get_by_text("Each seed: every trial's own curve and row").click()

            def expanded() -> bool:
                panels = trace_names(page)
                return len(panels) == 2 and all(
                    not any(n.endswith("seeds)") for n in names)
                    and any(n.startswith("best so far") for n in names)
                    for names in panels
                )

            wait_for("the expanded panels", expanded, 60)
            assert "q_seeds=true" in page.url
        finally:
            browser.close()
