"""`sweepscope dashboard`: Streamlit as a child process that Ctrl-C ends cleanly, with its
XSRF and CORS protections on whatever the environment says, and no guessable token."""

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

import pytest

from dashboard import control
from dashboard.serve import APP, serve, streamlit_command
from runner.errors import SweepscopeError
from runner.store import open_store

REPO = Path(__file__).resolve().parents[1]
FOREIGN = "http://evil.example"
# What a careless or hostile setup would use to switch Streamlit's protections off.
HOSTILE_ENV = {
    "STREAMLIT_SERVER_ENABLE_XSRF_PROTECTION": "false",
    "STREAMLIT_SERVER_ENABLE_CORS": "false",
}
HOSTILE_TOML = """\
[server]
enableXsrfProtection = false
enableCORS = false
"""


def test_command_binds_where_asked_and_pins_the_protections() -> None:
    cmd = streamlit_command("127.0.0.1", 8555)
    assert cmd[:5] == [sys.executable, "-m", "streamlit", "run", str(APP)]
    flags = dict(zip(cmd[5::2], cmd[6::2], strict=True))
    assert flags["--server.address"] == "127.0.0.1" and flags["--server.port"] == "8555"
    assert flags["--server.headless"] == "true"
    assert flags["--browser.gatherUsageStats"] == "false"
    assert flags["--server.enableXsrfProtection"] == "true"
    assert flags["--server.enableCORS"] == "true"
    assert flags["--global.developmentMode"] == "false"
    assert streamlit_command("0.0.0.0", 8555)[7:] == cmd[7:]  # the same pins on any address


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


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


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


def test_serve_runs_streamlit_and_ctrl_c_ends_it(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'store.db'}"
    open_store(url, create=True).close()
    port = _free_port()
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
def _hostile_dashboard(tmp_path: Path, *, pinned: bool) -> Iterator[int]:
    """`serve()` on 0.0.0.0 with every config source set to switch the protections off:
    the STREAMLIT_* variables, ./.streamlit/config.toml and ~/.streamlit/config.toml.
    With pinned=False, serve() runs without its pinned flags (the control experiment)."""
    url = f"sqlite:///{tmp_path / 'store.db'}"
    open_store(url, create=True).close()
    home, work = tmp_path / "home", tmp_path / "work"
    for where in (home, work):
        (where / ".streamlit").mkdir(parents=True)
        (where / ".streamlit" / "config.toml").write_text(HOSTILE_TOML)
    port = _free_port()
    unpin = "" if pinned else "dashboard.serve.PINNED_OPTIONS.clear(); "
    code = (
        f"import sys, dashboard.serve; {unpin}"
        "sys.exit(dashboard.serve.serve("
        f"store_url={url!r}, host='0.0.0.0', port={port}))"
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


def _websocket_handshake(port: int, origin: str) -> int:
    """Status of a WebSocket upgrade to the app's stream from a page on `origin`."""
    key = base64.b64encode(secrets.token_bytes(16)).decode()
    request = (
        "GET /_stcore/stream HTTP/1.1\r\n"
        f"Host: 127.0.0.1:{port}\r\n"
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
