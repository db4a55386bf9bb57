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
