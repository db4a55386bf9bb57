"""`sweepscope dashboard`: run Streamlit on dashboard/app.py as a child process.

The store URL travels in $SWEEPSCOPE_STORE. Ctrl-C (or SIGTERM, or `kill -INT` from
scripts/demo.sh) is passed on to Streamlit, which shuts down cleanly; serve() returns its
exit status.

Streamlit's XSRF and CORS protections are pinned on with command-line flags, on every
address. Streamlit reads its options from ~/.streamlit/config.toml, then ./.streamlit/
config.toml and the app's own .streamlit/config.toml, then STREAMLIT_* environment
variables, then the command line, each overriding the one before
(streamlit.config.get_config_options); a flag is the one source nothing else overrides, so
no stray config file or variable can switch the protections off.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from types import FrameType

from dashboard.control import TOKEN_ENV, check_token, is_loopback
from runner.errors import SweepscopeError

__all__ = ["APP", "PINNED_OPTIONS", "serve", "streamlit_command"]

APP = Path(__file__).resolve().parent / "app.py"
STORE_ENV = "SWEEPSCOPE_STORE"
# How long Streamlit gets to exit after a signal before it is killed.
GRACE_SECONDS = 10.0
# Streamlit options no config file or STREAMLIT_* variable may change (see the docstring).
PINNED_OPTIONS = {
    # A state-changing request (a file upload) needs the token from the _streamlit_xsrf cookie.
    "server.enableXsrfProtection": "true",
    # No Access-Control-Allow-Origin: * and no WebSocket from another site's page.
    "server.enableCORS": "true",
    # Development mode also sends Access-Control-Allow-Origin: * to every origin.
    "global.developmentMode": "false",
}


def streamlit_command(host: str, port: int) -> list[str]:
    """The command line that serves the dashboard, with PINNED_OPTIONS as flags."""
    pinned = [part for key, value in PINNED_OPTIONS.items() for part in (f"--{key}", value)]
    return [
        sys.executable,
        "-m",
        "streamlit",
        "run",
        str(APP),
        "--server.address",
        host,
        "--server.port",
        str(port),
        "--server.headless",
        "true",
        "--browser.gatherUsageStats",
        "false",
        "--server.fileWatcherType",
        "none",
        "--server.runOnSave",
        "false",
        "--client.toolbarMode",
        "viewer",
        *pinned,
    ]


def serve(*, store_url: str, host: str = "127.0.0.1", port: int = 8501) -> int:
    """Serve the dashboard for `store_url` on host:port until it exits or is interrupted.

    The store need not exist yet (`make run` starts the dashboard before the sweep): the
    page says so and picks it up when it appears.

    Raises:
        SweepscopeError: the port is outside 1..65535, the host is empty, or the host is
            not loopback and $SWEEPSCOPE_TOKEN is set but too short to be a secret.
    """
    if not 0 < port < 65536:
        raise SweepscopeError(f"--port {port} is not a TCP port. Fix: use 1..65535, e.g. 8501.")
    if not host:
        raise SweepscopeError("--host is empty. Fix: use 127.0.0.1 (the default) or an address.")
    if not is_loopback(host):
        check_token(host, os.environ.get(TOKEN_ENV))
        state = (
            "need the token in it"
            if os.environ.get(TOKEN_ENV)
            else f"are disabled: set {TOKEN_ENV} to enable them"
        )
        print(
            f"sweepscope dashboard: listening on {host}, which other machines can reach; "
            f"the stop controls {state}.",
            file=sys.stderr,
        )
    env = {**os.environ, STORE_ENV: store_url}
    child = subprocess.Popen(streamlit_command(host, port), env=env)
    signalled_at: list[float] = []

    def forward(signum: int, frame: FrameType | None) -> None:
        if child.poll() is None:
            child.send_signal(signum)
            signalled_at.append(time.monotonic())

    previous = {sig: signal.signal(sig, forward) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        while (code := child.poll()) is None:
            if signalled_at and time.monotonic() - signalled_at[0] > GRACE_SECONDS:
                child.kill()  # it ignored the signal: do not hang the terminal
            time.sleep(0.1)
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        if child.poll() is None:  # an exception on the way out: do not leave it running
            child.kill()
            child.wait()
    # Streamlit exits 0 on SIGINT/SIGTERM: a Ctrl-C is a clean end, not a failure.
    return code if code >= 0 else 128 - code
