"""`sweepscope dashboard`: Streamlit as a child process that Ctrl-C ends cleanly, with its
XSRF and CORS protections, its Host allow-list (against DNS rebinding) and, beyond loopback,
no error details, whatever the environment says, and no guessable token."""

from __future__ import annotations

import base64
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from dashboard import control
from dashboard.serve import ALLOWED_HOSTS_ENV, APP, allowed_hosts, serve, streamlit_command
from runner.errors import SweepscopeError
from runner.store import open_store
from tests.helpers.paths import REPO
from tests.helpers.ports import free_port

FOREIGN = "http://evil.example"
# What a careless or hostile setup would use to switch Streamlit's protections off.
HOSTILE_ENV = {
    "STREAMLIT_SERVER_ENABLE_XSRF_PROTECTION": "false",
    "STREAMLIT_SERVER_ENABLE_CORS": "false",
    "STREAMLIT_SERVER_ALLOWED_HOSTS": "*",
    "STREAMLIT_CLIENT_SHOW_ERROR_DETAILS": "full",
}
HOSTILE_TOML = """\
[server]
enableXsrfProtection = false
enableCORS = false
allowedHosts = ["*"]

[client]
showErrorDetails = "full"
"""


def test_command_binds_where_asked_and_pins_the_protections() -> None:
    cmd = streamlit_command("127.0.0.1", 8555)
    assert cmd[:5] == [sys.executable, "-m", "dashboard.warm", "run", str(APP)]
    flags = dict(zip(cmd[5::2], cmd[6::2], strict=True))
    assert flags["--server.address"] == "127.0.0.1" and flags["--server.port"] == "8555"
    assert flags["--server.headless"] == "true"
    assert flags["--browser.gatherUsageStats"] == "false"
    assert flags["--server.enableXsrfProtection"] == "true"
    assert flags["--server.enableCORS"] == "true"
    assert flags["--global.developmentMode"] == "false"
    exposed = streamlit_command("0.0.0.0", 8555)
    for pinned in ("--server.enableXsrfProtection", "--server.enableCORS"):  # on any address
        assert exposed[exposed.index(pinned) + 1] == "true"
    assert _values(cmd, "--server.allowedHosts") == ["localhost", "127.0.0.1", "::1"]
    assert "--client.showErrorDetails" not in cmd  # loopback: the user's own setting
    assert _values(exposed, "--client.showErrorDetails") == ["none"]  # remote viewers


def _values(cmd: list[str], flag: str) -> list[str]:
    return [value for key, value in zip(cmd, cmd[1:], strict=False) if key == flag]


def test_allowed_hosts(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(ALLOWED_HOSTS_ENV, raising=False)
    assert allowed_hosts("127.0.0.1") == ["localhost", "127.0.0.1", "::1"]
    assert allowed_hosts("[::1]") == ["localhost", "127.0.0.1", "::1"]
    assert allowed_hosts("127.0.0.2") == ["localhost", "127.0.0.1", "::1", "127.0.0.2"]
    assert allowed_hosts("10.1.2.3") == ["localhost", "127.0.0.1", "::1", "10.1.2.3"]
    every = allowed_hosts("0.0.0.0")  # every interface: this machine's names and addresses
    assert socket.gethostname().lower() in every and "*" not in every
    assert allowed_hosts("::")[:3] == ["localhost", "127.0.0.1", "::1"]
    environ = {ALLOWED_HOSTS_ENV: "Dash.Example.org, *.lab.example.org  proxy"}
    assert allowed_hosts("127.0.0.1", environ)[3:] == [
        "dash.example.org",
        "*.lab.example.org",
        "proxy",
    ]
    for bad in ("https://dash.example.org", "dash.example.org:8501", "*", "dash/x"):
        with pytest.raises(SweepscopeError) as refused:
            allowed_hosts("127.0.0.1", {ALLOWED_HOSTS_ENV: bad})
        message = str(refused.value)
        assert message.startswith(f"{ALLOWED_HOSTS_ENV} holds {bad!r}, which is not a host")
        assert "Fix:" in message


def test_a_bad_allowed_host_stops_the_dashboard_before_it_starts(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from runner.cli import main

    def no_streamlit(*args: object, **kwargs: object) -> None:
        raise AssertionError("Streamlit must not start")

    monkeypatch.setattr(subprocess, "Popen", no_streamlit)
    monkeypatch.setenv(ALLOWED_HOSTS_ENV, "https://dash.example.org/")
    url = f"sqlite:///{tmp_path / 'store.db'}"
    assert main(["dashboard", "--store", url]) == 2
    assert f"{ALLOWED_HOSTS_ENV} holds 'https://dash.example.org/'" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("host", "port", "message"),
    [
        ("127.0.0.1", 70000, "--port 70000 is not a TCP port"),
        ("", 8501, "--host is empty"),
    ],
)
def test_bad_arguments(host: str, port: int, message: str) -> None:
    with pytest.raises(SweepscopeError, match=message):
        serve(store_url="sqlite:///x.db", host=host, port=port)


def test_a_short_token_is_refused_beyond_loopback(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    token = "Sh0rt-but-set"  # 13 characters
    monkeypatch.setenv(control.TOKEN_ENV, token)

    def no_streamlit(*args: object, **kwargs: object) -> None:
        raise AssertionError("Streamlit must not start with a short token")

    monkeypatch.setattr(subprocess, "Popen", no_streamlit)
    with pytest.raises(SweepscopeError) as refused:
        serve(store_url="sqlite:///x.db", host="0.0.0.0", port=8501)
    message = str(refused.value)
    assert f"{control.TOKEN_ENV} is shorter than 16 characters" in message
    assert "secrets.token_urlsafe(24)" in message and "\n" not in message
    assert token not in message

    from runner.cli import main

    url = f"sqlite:///{tmp_path / 'store.db'}"
    assert main(["dashboard", "--store", url, "--host", "0.0.0.0"]) == 2
    out, err = capsys.readouterr()
    assert "shorter than 16 characters" in err and token not in out + err


def test_check_token() -> None:
    control.check_token("127.0.0.1", "short")  # only this machine reaches it
    control.check_token("localhost", "short")
    control.check_token("0.0.0.0", None)  # unset: the stop controls are off instead
    control.check_token("0.0.0.0", "")
    control.check_token("0.0.0.0", "x" * control.TOKEN_MIN_LENGTH)
    for host in ("0.0.0.0", "10.1.2.3", "::", None):
        with pytest.raises(SweepscopeError, match="shorter than 16"):
            control.check_token(host, "x" * (control.TOKEN_MIN_LENGTH - 1))


def _health(port: int) -> bool:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/_stcore/health", timeout=2) as r:
            return r.status == 200
    except OSError:
        return False


def _wait_healthy(proc: subprocess.Popen[bytes], port: int, log: Path) -> None:
    deadline = time.monotonic() + 60
    while not _health(port):
        assert proc.poll() is None, log.read_text() if log.exists() else ""
        assert time.monotonic() < deadline, "the dashboard did not answer in 60 s"
        time.sleep(0.3)


def _stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


@pytest.mark.slow  # a real Streamlit server: ~3 s
def test_serve_runs_streamlit_and_ctrl_c_ends_it(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'store.db'}"
    open_store(url, create=True).close()
    port = free_port()
    code = (
        "import sys; from dashboard.serve import serve; "
        f"sys.exit(serve(store_url={url!r}, port={port}))"
    )
    proc = subprocess.Popen(
        [sys.executable, "-c", code],
        cwd=REPO,
        start_new_session=True,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    try:
        deadline = time.monotonic() + 60
        while not _health(port):
            assert proc.poll() is None, proc.stdout.read().decode() if proc.stdout else ""
            assert time.monotonic() < deadline, "the dashboard did not answer in 60 s"
            time.sleep(0.3)
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=5) as r:
            assert r.status == 200
        proc.send_signal(signal.SIGINT)  # to serve() only, as scripts/demo.sh does
        assert proc.wait(30) == 0
        assert not _health(port)  # Streamlit went with it
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


# -- the running server's own behaviour, in a hostile environment ---------------------------
def _hostile_dashboard(
    tmp_path: Path, *, pinned: bool, host: str = "0.0.0.0", app: Path | None = None
) -> Iterator[int]:
    """`serve()` on `host` with every config source set to switch the protections off:
    the STREAMLIT_* variables, ./.streamlit/config.toml and ~/.streamlit/config.toml.
    With pinned=False, serve() runs without its PINNED_OPTIONS flags (the control
    experiment); with `app`, it serves that script instead of the dashboard."""
    url = f"sqlite:///{tmp_path / 'store.db'}"
    open_store(url, create=True).close()
    home, work = tmp_path / "home", tmp_path / "work"
    for where in (home, work):
        (where / ".streamlit").mkdir(parents=True)
        (where / ".streamlit" / "config.toml").write_text(HOSTILE_TOML)
    port = free_port()
    unpin = "" if pinned else "dashboard.serve.PINNED_OPTIONS.clear(); "
    swap = "" if app is None else f"dashboard.serve.APP = {str(app)!r}; "
    code = (
        f"import sys, dashboard.serve; {unpin}{swap}"
        "sys.exit(dashboard.serve.serve("
        f"store_url={url!r}, host={host!r}, port={port}))"
    )
    env = {
        **os.environ,
        **HOSTILE_ENV,
        "HOME": str(home),
        "PYTHONPATH": str(REPO),
        control.TOKEN_ENV: secrets.token_urlsafe(24),
    }
    log = tmp_path / "dashboard.log"
    proc = subprocess.Popen(
        [sys.executable, "-c", code],
        cwd=work,
        env=env,
        start_new_session=True,
        stdout=log.open("wb"),
        stderr=subprocess.STDOUT,
    )
    try:
        _wait_healthy(proc, port, log)
        yield port
    finally:
        _stop(proc)


@pytest.fixture
def pinned_dashboard(tmp_path: Path) -> Iterator[int]:
    yield from _hostile_dashboard(tmp_path, pinned=True)


@pytest.fixture
def unpinned_dashboard(tmp_path: Path) -> Iterator[int]:
    yield from _hostile_dashboard(tmp_path, pinned=False)


def _get(port: int, path: str, origin: str) -> tuple[int, dict[str, list[str]]]:
    req = urllib.request.Request(f"http://127.0.0.1:{port}{path}", headers={"Origin": origin})
    with urllib.request.urlopen(req, timeout=10) as r:
        headers: dict[str, list[str]] = {}
        for key, value in r.headers.items():
            headers.setdefault(key.lower(), []).append(value)
        return r.status, headers


def _upload_without_xsrf_token(port: int) -> int:
    """Status of a file upload (a state-changing PUT) that carries no XSRF token."""
    req = urllib.request.Request(
        f"http://127.0.0.1:{port}/_stcore/upload_file/some-session/some-file",
        data=b"payload",
        method="PUT",
        headers={"Origin": FOREIGN, "Content-Type": "application/octet-stream"},
    )
    try:
        with urllib.request.urlopen(req, timeout=10) as r:
            return r.status
    except urllib.error.HTTPError as exc:
        return exc.code


def _websocket_handshake(port: int, origin: str, host: str = "127.0.0.1") -> int:
    """Status of a WebSocket upgrade to the app's stream from a page on `origin`, through
    the name `host` (the Host header a browser sends: a rebinding name resolves here)."""
    key = base64.b64encode(secrets.token_bytes(16)).decode()
    request = (
        "GET /_stcore/stream HTTP/1.1\r\n"
        f"Host: {host}:{port}\r\n"
        "Upgrade: websocket\r\nConnection: Upgrade\r\n"
        f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n"
        "Sec-WebSocket-Protocol: streamlit\r\n"
        f"Origin: {origin}\r\n\r\n"
    )
    with socket.create_connection(("127.0.0.1", port), timeout=20) as s:
        s.sendall(request.encode())
        reply = b""
        while b"\r\n" not in reply:
            chunk = s.recv(4096)
            if not chunk:
                break
            reply += chunk
    return int(reply.split(b" ", 2)[1])


@pytest.mark.slow  # a real Streamlit server: ~3 s
def test_exposed_dashboard_keeps_xsrf_and_cors_on_whatever_the_config_says(
    pinned_dashboard: int,
) -> None:
    port = pinned_dashboard
    status, headers = _get(port, "/_stcore/health", FOREIGN)
    assert status == 200
    # XSRF: the server hands out the double-submit token ...
    assert any(c.startswith("_streamlit_xsrf=") for c in headers.get("set-cookie", [])), headers
    # ... and refuses a state-changing request without it (403 before it looks at the session).
    assert _upload_without_xsrf_token(port) == 403
    # CORS: another site's page may not read the responses ...
    assert "access-control-allow-origin" not in headers
    _, config = _get(port, "/_stcore/host-config", FOREIGN)
    assert "access-control-allow-origin" not in config
    # ... nor open the app's WebSocket, which a page of the app's own origin may.
    assert _websocket_handshake(port, FOREIGN) == 403
    assert _websocket_handshake(port, f"http://127.0.0.1:{port}") == 101
    # Host: only this machine's names, though the config says "*"
    name = socket.gethostname()
    assert _websocket_handshake(port, f"http://{name}:{port}", host=name) == 101
    assert _websocket_handshake(port, f"{REBOUND}:{port}", host="rebind.evil.example") == 403


REBOUND = "http://rebind.evil.example"  # a name its owner points at 127.0.0.1 after loading


@pytest.fixture
def loopback_dashboard(tmp_path: Path) -> Iterator[int]:
    yield from _hostile_dashboard(tmp_path, pinned=True, host="127.0.0.1")


@pytest.mark.slow  # a real Streamlit server: ~3 s
def test_loopback_dashboard_refuses_a_rebound_host_name(loopback_dashboard: int) -> None:
    """DNS rebinding: a page from rebind.evil.example, whose name then resolves to
    127.0.0.1, opens the WebSocket same-origin (Origin and Host agree), and on loopback
    stopping needs no token. The Host allow-list refuses it, whatever the config says; the
    loopback names are served."""
    port = loopback_dashboard
    assert _websocket_handshake(port, f"{REBOUND}:{port}", host="rebind.evil.example") == 403
    assert _websocket_handshake(port, f"http://localhost:{port}", host="localhost") == 101
    assert _websocket_handshake(port, f"http://127.0.0.1:{port}") == 101
    assert _websocket_handshake(port, f"http://[::1]:{port}", host="[::1]") == 101


FAILING_APP = """\
import streamlit as st

st.write("before")
raise RuntimeError("connection to db.internal.example:5432 failed at /srv/lab/secret-path")
"""


def _exceptions(port: int) -> list[Any]:
    """The exception elements a browser would get for one run of the app."""
    from streamlit.proto.BackMsg_pb2 import BackMsg
    from streamlit.proto.ForwardMsg_pb2 import ForwardMsg
    from websockets.sync.client import connect

    found = []
    sock = socket.create_connection(("127.0.0.1", port), timeout=20)
    with connect(
        f"ws://127.0.0.1:{port}/_stcore/stream", sock=sock, subprotocols=["streamlit"]
    ) as ws:  # type: ignore[arg-type]
        rerun = BackMsg()
        rerun.rerun_script.query_string = ""
        ws.send(rerun.SerializeToString())
        while True:
            message = ForwardMsg()
            message.ParseFromString(ws.recv(timeout=30))
            kind = message.WhichOneof("type")
            if kind == "delta" and message.delta.new_element.WhichOneof("type") == "exception":
                found.append(message.delta.new_element.exception)
            if kind == "script_finished":
                return found


@pytest.mark.slow  # a real Streamlit server: ~3 s
@pytest.mark.parametrize("host", ["0.0.0.0", "127.0.0.1"])
def test_remote_viewers_get_no_error_details(tmp_path: Path, host: str) -> None:
    """An uncaught exception's message and traceback (hosts, paths, queries) are shown to
    no one beyond loopback, whatever the config says; on loopback the user's own setting
    (here "full") stands."""
    app = tmp_path / "failing_app.py"
    app.write_text(FAILING_APP)
    for port in _hostile_dashboard(tmp_path, pinned=True, host=host, app=app):
        (shown,) = _exceptions(port)
        text = f"{shown.type} {shown.message} {list(shown.stack_trace)}"
        if host == "0.0.0.0":
            assert "secret-path" not in text and "RuntimeError" not in text
            assert not shown.stack_trace and "redacted" in shown.message
        else:
            assert "secret-path" in shown.message and shown.type == "RuntimeError"


@pytest.mark.slow  # a real Streamlit server: ~3 s
def test_the_hostile_config_does_switch_off_an_unpinned_streamlit(
    unpinned_dashboard: int,
) -> None:
    """The control experiment: without the pinned flags, the same environment turns both
    protections off, so the test above shows the pins at work and not a harmless setup."""
    port = unpinned_dashboard
    _, headers = _get(port, "/_stcore/health", FOREIGN)
    assert not any(c.startswith("_streamlit_xsrf=") for c in headers.get("set-cookie", []))
    assert _upload_without_xsrf_token(port) != 403
    assert headers.get("access-control-allow-origin") == ["*"]
    assert _websocket_handshake(port, FOREIGN) == 101
