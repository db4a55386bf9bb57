"""The warm runtime (`sweepscope up` / `down`): a local Ray that stays between sweeps, and the
dashboard beside it, so that a later `sweepscope run` on this machine attaches to it instead
of starting Ray (runner.driver.ray_env.init_ray asks `find()`).

What stays is Ray's processes (`ray start --head --block`, bound to 127.0.0.1, token auth
with a token of its own) and the dashboard. Each sweep keeps its own driver: its own Ray job,
store rows, Ctrl-C, stop and resume, and its trials' actors end with it, so nothing of one
sweep is left for the next. Trials run in processes the runtime's raylet starts: they see
the environment `sweepscope up` ran in, as they would on a cluster.

The state is one file, runtime.json, with the token beside it, in a folder only this user can
read ($SWEEPSCOPE_RUNTIME_DIR, default ~/.sweepscope/runtime). A runtime is attached to only
while its `ray start` process is the one the file names and its GCS port answers; anything
else is stale (a crash, a reboot, a killed process): `find()` clears it, stopping what is
left of it, and says so, and the sweep starts a Ray of its own as without a runtime.

Each driver that joins notes itself in drivers/ (its pid and start time, forgotten at its
exit), so that `down` refuses to end the trials of sweeps still running (`stop(force=...)`).
"""

from __future__ import annotations

import atexit
import contextlib
import fcntl
import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path

from runner.errors import InfrastructureError, SweepscopeError

__all__ = [
    "Runtime",
    "answers",
    "changing",
    "check_dashboard_port",
    "client_env",
    "drivers",
    "find",
    "free_ports",
    "group_members",
    "note_driver",
    "record",
    "runtime_dir",
    "start",
    "stop",
]

DIR_ENV = "SWEEPSCOPE_RUNTIME_DIR"
STATE_FILE = "runtime.json"
TOKEN_FILE = "auth_token"
LOCK_FILE = "lock"  # held by `up` and `down` while they change the runtime
DRIVERS_DIR = "drivers"  # a file per sweep driver on the runtime, named by its pid
START_TIMEOUT = 60.0  # Ray's start on a loaded 2-core machine takes 3-10 s
STOP_TIMEOUT = 40.0  # Ray drains a node for up to 30 s on SIGTERM
RAY_WORD = "ray start"  # in the command line of the runtime's own processes
DASHBOARD_WORD = "runner.cli dashboard"
READY_LINE = b"Ray runtime started."  # what `ray start` logs once every process is up


@dataclass(frozen=True)
class Runtime:
    address: str  # 127.0.0.1:PORT, Ray's GCS
    pid: int  # the `ray start --block` process, leader of its process group
    token_path: str
    started_at: float
    dashboard_url: str | None = None
    dashboard_pid: int | None = None
    store: str | None = None  # the store the dashboard shows (masked)

    @property
    def port(self) -> int:
        return int(self.address.rsplit(":", 1)[1])


def runtime_dir() -> Path:
    return Path(os.environ.get(DIR_ENV) or Path.home() / ".sweepscope" / "runtime")


@contextlib.contextmanager
def changing() -> Iterator[None]:
    """Held while `up` or `down` changes the runtime: one at a time, so that two `up` at once
    start one runtime, not two with one forgotten (the second waits, then finds it up)."""
    folder = runtime_dir()
    folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    with (folder / LOCK_FILE).open("a") as lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            print("waiting for another `sweepscope up` or `down` to finish...", file=sys.stderr)
            fcntl.flock(lock, fcntl.LOCK_EX)
        yield  # the lock goes with the file's closing, a crash's too


def client_env(runtime: Runtime) -> dict[str, str]:
    """What a driver needs in its environment to join the runtime's Ray."""
    return {"RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN_PATH": runtime.token_path}


def find() -> tuple[Runtime | None, str | None]:
    """The live runtime, or None; and a note when a stale one was found (and cleared)."""
    path = runtime_dir() / STATE_FILE
    if not path.exists():
        return None, None
    try:
        runtime = Runtime(**json.loads(path.read_text()))
    except (ValueError, TypeError) as exc:
        path.unlink(missing_ok=True)
        return None, f"the runtime state {path} was unreadable ({exc}); cleared"
    why = _why_stale(runtime)
    if why is None:
        return runtime, None
    _clear(runtime)
    return None, (
        f"the runtime left by `sweepscope up` at {runtime.address} is gone ({why}): cleared; "
        "this sweep starts a Ray of its own (`sweepscope up` starts a new runtime)"
    )


def start(*, num_cpus: int | None = None) -> Runtime:
    """Start Ray's processes for the runtime and record them (the dashboard is the CLI's)."""
    folder = runtime_dir()
    folder.mkdir(parents=True, exist_ok=True)
    folder.chmod(0o700)
    token = folder / TOKEN_FILE
    token.touch(mode=0o600)
    token.chmod(0o600)
    token.write_text(secrets.token_hex(32))
    # Free ports for the services whose default ports are fixed (another Ray on this host,
    # or a test's, would hold 10001 or 52365).
    port, client_port, agent_port = free_ports(3)
    from runner.driver.ray_env import TUNE_ENV

    env = {
        **TUNE_ENV,
        **os.environ,
        "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0",  # every Ray service on 127.0.0.1
        "RAY_AUTH_MODE": "token",
        "RAY_AUTH_TOKEN_PATH": str(token),
        "RAY_USAGE_STATS_ENABLED": "0",
    }
    env.pop("RAY_ADDRESS", None)
    ray = Path(sys.executable).with_name("ray")
    command = [
        str(ray) if ray.exists() else "ray",
        "start",
        "--head",
        "--block",
        "--node-ip-address=127.0.0.1",
        f"--port={port}",
        f"--ray-client-server-port={client_port}",
        f"--dashboard-agent-listen-port={agent_port}",
        "--include-dashboard=false",
        "--disable-usage-stats",
        *([f"--num-cpus={num_cpus}"] if num_cpus else []),
    ]
    log_path = folder / "ray.log"
    log = log_path.open("ab")
    offset = log.tell()
    child = subprocess.Popen(
        command, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
    )
    runtime = Runtime(
        address=f"127.0.0.1:{port}", pid=child.pid, token_path=str(token), started_at=time.time()
    )
    deadline = time.monotonic() + START_TIMEOUT
    while not _started(log_path, offset):
        if child.poll() is not None or time.monotonic() > deadline:
            _clear(runtime)
            raise InfrastructureError(
                f"Ray did not start for the runtime (see {folder / 'ray.log'}). Fix: read that "
                "log; `sweepscope run` works without a runtime meanwhile."
            )
        time.sleep(0.2)
    record(runtime)
    return runtime


def record(runtime: Runtime) -> None:
    path = runtime_dir() / STATE_FILE
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(asdict(runtime), indent=1))
    tmp.chmod(0o600)
    tmp.replace(path)


def stop(*, force: bool = False) -> Runtime | None:
    """Stop the runtime (the dashboard, then Ray) and forget it; None when none was up.

    Raises:
        SweepscopeError: sweeps still run on it (their trials would end with it), unless
            `force`.
    """
    path = runtime_dir() / STATE_FILE
    if not path.exists():
        return None
    try:
        runtime = Runtime(**json.loads(path.read_text()))
    except (ValueError, TypeError):
        path.unlink(missing_ok=True)
        return None
    running = drivers()
    if running and not force and _why_stale(runtime) is None:
        pids = ", ".join(map(str, running))
        raise SweepscopeError(
            f"{len(running)} sweep driver(s) run on the runtime at {runtime.address} (pid "
            f"{pids}): stopping it now would end their trials. Fix: let the sweeps finish, or "
            "stop them (`sweepscope stop SWEEP`, or Ctrl-C where they run; `sweepscope resume` "
            "continues them), then `sweepscope down`; or `sweepscope down --force`."
        )
    _clear(runtime)
    return runtime


def note_driver() -> None:
    """Note this process as a sweep driver on the runtime, until it exits."""
    folder = runtime_dir() / DRIVERS_DIR
    folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    path = folder / str(os.getpid())
    path.write_text(_started_at(os.getpid()) or "")
    atexit.register(path.unlink, missing_ok=True)


def drivers() -> list[int]:
    """The pids of the sweep drivers on the runtime now; the notes of drivers that are gone
    (killed before they could forget themselves) are removed."""
    running = []
    for path in sorted((runtime_dir() / DRIVERS_DIR).glob("*")):
        if path.name.isdigit() and path.read_text() == _started_at(int(path.name)):
            running.append(int(path.name))
        else:
            path.unlink(missing_ok=True)
    return running


def _started_at(pid: int) -> str | None:
    """When `pid` started (clock ticks since boot): a pid taken again has another."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return stat[stat.rindex(")") + 2 :].split()[19]  # field 22 of proc(5): starttime


def _clear(runtime: Runtime) -> None:
    """Stop what is left of `runtime` (only processes that are its own) and forget it."""
    if runtime.dashboard_pid is not None and _is_ours(runtime.dashboard_pid, DASHBOARD_WORD):
        _end_group(runtime.dashboard_pid, signal.SIGINT)
    if _is_ours(runtime.pid, RAY_WORD):
        _end_group(runtime.pid, signal.SIGTERM)
    for pid in group_members(runtime.pid):  # what a crashed leader left behind
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(pid, signal.SIGKILL)
    (runtime_dir() / STATE_FILE).unlink(missing_ok=True)
    Path(runtime.token_path).unlink(missing_ok=True)


def _started(log: Path, offset: int) -> bool:
    """Whether `ray start` said it is done since `offset` of its log (every process up: the
    GCS answers earlier, before the node that runs trials)."""
    with log.open("rb") as f:
        f.seek(offset)
        return READY_LINE in f.read()


def _why_stale(runtime: Runtime) -> str | None:
    if not _is_ours(runtime.pid, RAY_WORD):
        return f"its Ray process {runtime.pid} is not running"
    if not answers(runtime.port):
        return f"its Ray does not answer on port {runtime.port}"
    if not Path(runtime.token_path).exists():
        return f"its token {runtime.token_path} is missing"
    return None


def _is_ours(pid: int, word: str) -> bool:
    """Whether `pid` runs and is the process the state names (not another that took its
    number): this user's, with `word` in its command line."""
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
        owner = Path(f"/proc/{pid}").stat().st_uid
    except OSError:
        return False
    return owner == os.getuid() and word in cmdline


def group_members(pgid: int) -> list[int]:
    """The live processes (zombies left out) of this user in process group `pgid`."""
    members = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        with contextlib.suppress(OSError, ValueError, IndexError):
            stat = (entry / "stat").read_text()
            fields = stat[stat.rindex(")") + 2 :].split()  # state, ppid, pgrp, ...
            if fields[0] != "Z" and int(fields[2]) == pgid and entry.stat().st_uid == os.getuid():
                members.append(int(entry.name))
    return members


def _end_group(pid: int, sig: int) -> None:
    """Signal `pid`, the leader of its process group, which stops the others in order; wait
    for it, then kill what is left of the group (everything, past the timeout)."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.kill(pid, sig)
    deadline = time.monotonic() + STOP_TIMEOUT
    while _exists(pid) and time.monotonic() < deadline:
        time.sleep(0.1)
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, signal.SIGKILL)


def _exists(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state != "Z"  # a zombie has ended; its parent has not read its status yet


def answers(port: int) -> bool:
    """Whether something accepts connections on 127.0.0.1:port."""
    with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.5):
        return True
    return False


def free_ports(n: int) -> list[int]:
    """`n` distinct ports of 127.0.0.1 that nothing listens on now (held open together)."""
    sockets = [socket.socket() for _ in range(n)]
    try:
        for s in sockets:
            s.bind(("127.0.0.1", 0))
        return [int(s.getsockname()[1]) for s in sockets]
    finally:
        for s in sockets:
            s.close()


def check_dashboard_port(port: int) -> None:
    """Refuse a dashboard port another process holds, before anything starts."""
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            raise SweepscopeError(
                f"--port {port}: another process listens there. Fix: stop it, or pass a free "
                "port, e.g. --port 8502 (or --no-dashboard)."
            ) from None
