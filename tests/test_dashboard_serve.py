"""`sweepscope dashboard`: Streamlit as a child process that Ctrl-C ends cleanly."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from dashboard.serve import APP, serve, streamlit_command
from runner.errors import SweepscopeError
from runner.store import open_store

REPO = Path(__file__).resolve().parents[1]


def test_command_binds_where_asked_and_keeps_xsrf_on() -> None:
    cmd = streamlit_command("127.0.0.1", 8555)
    assert cmd[:5] == [sys.executable, "-m", "streamlit", "run", str(APP)]
    flags = dict(zip(cmd[5::2], cmd[6::2], strict=True))
    assert flags["--server.address"] == "127.0.0.1" and flags["--server.port"] == "8555"
    assert flags["--server.headless"] == "true"
    assert flags["--browser.gatherUsageStats"] == "false"
    assert not any("Xsrf" in c or "CORS" in c for c in cmd)


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
