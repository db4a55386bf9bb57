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

Two more pins depend on the address (pinned_options):
- server.allowedHosts: the Host names Streamlit accepts on the app's WebSocket, which
  carries every page's data and every button press (stop requests included). Pinned to the
  loopback names and the bound address (on 0.0.0.0 or ::, this machine's own names and
  addresses), plus any in $SWEEPSCOPE_ALLOWED_HOSTS (a reverse proxy's name). A page on
  another site whose DNS name rebinds to this machine then gets 403 on the WebSocket,
  although its Origin matches its Host; on loopback, where stopping needs no token, that is
  what keeps such a page from stopping trials. Streamlit 1.67 checks the Host only there
  (and on its agent API, off here): its static files, which hold no data, are served to any.
- client.showErrorDetails: "none" beyond loopback, so a remote viewer sees no exception
  message or traceback (which could name paths, hosts or queries); on loopback the user's
  own setting stands.
"""

from __future__ import annotations

import contextlib
import ipaddress
import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Mapping
from pathlib import Path
from types import FrameType

from dashboard.control import TOKEN_ENV, check_token, is_loopback
from runner.errors import SweepscopeError

__all__ = [
    "ALLOWED_HOSTS_ENV",
    "APP",
    "LOOPBACK_NAMES",
    "PINNED_OPTIONS",
    "allowed_hosts",
    "pinned_options",
    "serve",
    "streamlit_command",
]

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


# Host names that reach only this machine: the browser never asks DNS for them.
LOOPBACK_NAMES = ("localhost", "127.0.0.1", "::1")
# More Host names the dashboard answers to (a reverse proxy's), comma- or space-separated.
ALLOWED_HOSTS_ENV = "SWEEPSCOPE_ALLOWED_HOSTS"
_HOST_NAME = re.compile(r"^(\*\.)?[a-z0-9]([a-z0-9\-.]*[a-z0-9])?$|^[0-9a-f:.]+$")


def _this_machine() -> list[str]:
    """This machine's names and addresses, for a dashboard bound to every interface."""
    names = [socket.gethostname(), socket.getfqdn()]
    for name in list(names):
        with contextlib.suppress(OSError):
            names += [str(info[4][0]) for info in socket.getaddrinfo(name, None)]
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        try:  # the address of the default route's interface; connect() sends nothing
            probe.connect(("192.0.2.1", 9))
            names.append(probe.getsockname()[0])
        except OSError:
            pass
    return names


def allowed_hosts(host: str, environ: Mapping[str, str] | None = None) -> list[str]:
    """The Host names the dashboard bound to `host` answers to (server.allowedHosts): the
    loopback names, the bound address (this machine's names and addresses when it is every
    interface) and those in $SWEEPSCOPE_ALLOWED_HOSTS.

    Raises:
        SweepscopeError: $SWEEPSCOPE_ALLOWED_HOSTS holds something that is not a host name.
    """
    extras = (os.environ if environ is None else environ).get(ALLOWED_HOSTS_ENV, "")
    bound = host.strip().strip("[]").lower()
    names = list(LOOPBACK_NAMES)
    try:
        every = ipaddress.ip_address(bound).is_unspecified
    except ValueError:
        every = False
    names += _this_machine() if every else [bound]
    for extra in re.split(r"[\s,]+", extras.strip()):
        if not extra:
            continue
        name = extra.lower().strip("[]").rstrip(".")
        if not _HOST_NAME.match(name):
            raise SweepscopeError(
                f"{ALLOWED_HOSTS_ENV} holds {extra!r}, which is not a host name. Fix: list the "
                "names browsers use to reach the dashboard, without scheme, port or path, "
                "separated by commas, e.g. dashboard.example.org,*.lab.example.org."
            )
        names.append(name)
    unique: dict[str, None] = {}
    for name in names:
        unique.setdefault(name.lower().strip("[]").rstrip("."), None)
    return [name for name in unique if name]


def pinned_options(host: str) -> dict[str, str | list[str]]:
    """Every option pinned for a dashboard bound to `host`: PINNED_OPTIONS, the Host
    allow-list, and no error details beyond loopback (see the module's docstring)."""
    options: dict[str, str | list[str]] = {
        **PINNED_OPTIONS,
        "server.allowedHosts": allowed_hosts(host),
    }
    if not is_loopback(host):
        options["client.showErrorDetails"] = "none"
    return options


def streamlit_command(host: str, port: int) -> list[str]:
    """The command line that serves the dashboard, with pinned_options as flags (a list
    option as one flag per value, as Streamlit's command line takes it). Streamlit's own
    command line, run by dashboard.warm: the pages' imports are done before it listens."""
    pinned = [
        part
        for key, value in pinned_options(host).items()
        for item in ([value] if isinstance(value, str) else value)
        for part in (f"--{key}", item)
    ]
    return [
        sys.executable,
        "-m",
        "dashboard.warm",
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
        SweepscopeError: the port is outside 1..65535, the host is empty, the host is not
            loopback and $SWEEPSCOPE_TOKEN is set but too short to be a secret, or
            $SWEEPSCOPE_ALLOWED_HOSTS holds something that is not a host name.
    """
    if not 0 < port < 65536:
        raise SweepscopeError(f"--port {port} is not a TCP port. Fix: use 1..65535, e.g. 8501.")
    if not host:
        raise SweepscopeError("--host is empty. Fix: use 127.0.0.1 (the default) or an address.")
    if not is_loopback(host):
        check_token(host, os.environ.get(TOKEN_ENV))
    command = streamlit_command(host, port)  # refuses a bad $SWEEPSCOPE_ALLOWED_HOSTS
    if not is_loopback(host):
        state = (
            "need the token in it"
            if os.environ.get(TOKEN_ENV)
            else f"are disabled: set {TOKEN_ENV} to enable them"
        )
        print(
            f"sweepscope dashboard: listening on {host}, which other machines can reach; "
            f"the stop controls {state}. It answers to the host names "
            f"{', '.join(allowed_hosts(host))} (add more in {ALLOWED_HOSTS_ENV}).",
            file=sys.stderr,
        )
    env = {**os.environ, STORE_ENV: store_url}
    child = subprocess.Popen(command, env=env)
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
