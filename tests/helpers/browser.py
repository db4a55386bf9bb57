"""The browser that drives the dashboard in tests, benchmarks and `make screenshots`.

Debian's Chromium (`apt-get install chromium`), headless; Playwright never downloads one.
"""

from pathlib import Path

CHROMIUM = Path("/usr/bin/chromium")
BROWSER_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def require_chromium() -> Path:
    """Chromium for a browser test: skipped where it is missing, failed under CI (which
    installs it)."""
    if not CHROMIUM.exists():
        from tests.helpers.ci import skip_outside_ci  # pytest: only in tests

        skip_outside_ci(
            f"the browser test needs Debian's chromium at {CHROMIUM}: apt-get install -y chromium"
        )
    return CHROMIUM
