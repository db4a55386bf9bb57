"""Real faults for reliability tests and benchmarks: a private PostgreSQL server that can be
stopped and started mid-sweep, and another process that holds an SQLite store's write lock.

Nothing here imports pytest: the benchmark scripts use these helpers too.

`PrivatePostgres` runs its own server (initdb + pg_ctl from /usr/lib/postgresql/<newest>/bin,
or from PATH) in a temporary directory, on a free port of 127.0.0.1, with trust auth (or,
given a password, scram-sha-256 as a real deployment has) and its unix sockets in that
directory. As root it runs the PostgreSQL programs as the `postgres` user
(initdb refuses root). Used as a context manager it always stops the server and removes the
directory; a watchdog process does the same if this process dies without unwinding (SIGKILL,
os._exit), so a failed or killed test never leaves a server behind.

`hold_sqlite_lock` starts another Python process that runs `BEGIN EXCLUSIVE` on a store file.
The store runs in WAL mode, where BEGIN EXCLUSIVE takes the single write lock (as BEGIN
IMMEDIATE does): every other writer waits for its busy timeout (the store's is 60 s) and then
fails with "database is locked", while readers go on reading the last committed snapshot.
Hold it longer than 60 s to make the store's own writes fail.
"""

from __future__ import annotations

import contextlib
import json
import os
import pwd
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType

import sqlalchemy as sa

from tests.helpers.ports import free_port, port_open
from tests.helpers.stores import run_sql

__all__ = [
    "Outage",
    "PostgresError",
    "PrivatePostgres",
    "SqliteLock",
    "find_postgres_bin",
    "frozen_postgres",
    "hold_sqlite_lock",
    "hold_table_lock",
]

PG_USER = "postgres"
_DEBIAN_PG = Path("/usr/lib/postgresql")


class PostgresError(RuntimeError):
    """A PostgreSQL program failed; the message carries its output and the server log."""


def find_postgres_bin() -> Path | None:
    """The directory holding initdb and pg_ctl: the newest /usr/lib/postgresql/N/bin, else PATH.

    None where PostgreSQL's server programs are not installed.
    """
    versions = []
    for initdb in _DEBIAN_PG.glob("*/bin/initdb"):
        version = initdb.parent.parent.name
        if re.fullmatch(r"\d+(\.\d+)?", version) and (initdb.parent / "pg_ctl").exists():
            versions.append((tuple(int(p) for p in version.split(".")), initdb.parent))
    if versions:
        return max(versions)[1]
    on_path = shutil.which("initdb")
    if on_path and shutil.which("pg_ctl", path=str(Path(on_path).parent)):
        return Path(on_path).parent
    return None


def require_postgres_bin() -> None:
    """Skip where PostgreSQL's server programs are missing; in CI (env CI set), fail instead."""
    import pytest

    if find_postgres_bin() is None:
        reason = (
            "PostgreSQL server programs (initdb, pg_ctl) are not in /usr/lib/postgresql/*/bin "
            "or on PATH; install the postgresql server package to run the PostgreSQL fault tests"
        )
        if os.environ.get("CI"):
            pytest.fail(f"CI must run the PostgreSQL fault tests: {reason}")
        pytest.skip(reason)


def _make_traversable(path: Path) -> None:
    """Let other users pass through `path` and its parents (o+x, not o+r) to reach a child."""
    for p in [path, *path.parents]:
        mode = p.stat().st_mode
        if not mode & 0o001:
            p.chmod(mode | 0o001)


# Stops the server and removes its directory once stdin closes: when the owner calls close(),
# or when the owner dies and the kernel closes the pipe. SIGINT (Ctrl-C on the process group)
# must not kill it before it has cleaned up.
_WATCHDOG = """
import json, shutil, signal, subprocess, sys
signal.signal(signal.SIGINT, signal.SIG_IGN)
stop, base = json.loads(sys.argv[1]), sys.argv[2]
sys.stdin.read()
subprocess.run(stop, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=60, cwd="/")
shutil.rmtree(base, ignore_errors=True)
"""


@dataclass
class Outage:
    """One stop-wait-start of a `PrivatePostgres`; times are `time.time()` seconds."""

    seconds: float
    after: float = 0.0
    stop_requested_at: float | None = None
    down_at: float | None = None  # the server had fully stopped
    up_at: float | None = None  # it accepted connections again
    error: BaseException | None = None
    _thread: threading.Thread | None = field(default=None, repr=False)

    @property
    def down_seconds(self) -> float | None:
        """How long the server was fully down (None until it is up again)."""
        if self.down_at is None or self.up_at is None:
            return None
        return self.up_at - self.down_at

    def join(self, timeout: float | None = None) -> Outage:
        """Wait for a background outage to end; re-raise what went wrong in it."""
        if self._thread is not None:
            self._thread.join(timeout)
            if self._thread.is_alive():
                raise TimeoutError(f"outage still running after {timeout} s")
        if self.error is not None:
            raise self.error
        return self


class PrivatePostgres:
    """A PostgreSQL server of one test or benchmark, in its own temporary directory.

    Use as a context manager: `with PrivatePostgres() as pg: url = pg.url()`. Entering runs
    initdb and starts the server; leaving stops it and removes the directory, even on failure.

    Args:
        parent: where to make the temporary directory (default: the system temp dir). As root,
            its parents are made traversable (o+x) so the postgres user can reach it.
        bin_dir: the directory of initdb and pg_ctl (default: `find_postgres_bin()`).
        password: the superuser's password. Given, the server checks passwords as a real
            deployment does (`initdb -A scram-sha-256 --pwfile`, on its sockets and TCP
            alike) and `url()` carries it; None (the default) trusts every connection.
    """

    def __init__(
        self,
        *,
        parent: str | Path | None = None,
        bin_dir: Path | None = None,
        password: str | None = None,
    ) -> None:
        if password is not None and (not password or "\n" in password):
            raise PostgresError("the superuser's password must be one non-empty line")
        self.password = password
        found = bin_dir or find_postgres_bin()
        if found is None:
            raise PostgresError("PostgreSQL server programs (initdb, pg_ctl) are not installed")
        self.bin_dir = found
        self.as_root = os.geteuid() == 0
        if self.as_root:
            try:
                self._pg_ids = pwd.getpwnam(PG_USER)[2:4]
            except KeyError as exc:
                raise PostgresError(
                    f"running as root needs the {PG_USER!r} system user, since initdb refuses "
                    "root; it comes with the PostgreSQL server package"
                ) from exc
        self._parent = Path(parent) if parent is not None else None
        self.base: Path | None = None
        self.port = 0
        self.timings: dict[str, list[float]] = {"initdb": [], "start": [], "stop": []}
        self._lock = threading.RLock()
        self._closed = threading.Event()
        self._watchdog: subprocess.Popen[bytes] | None = None

    @property
    def data_dir(self) -> Path:
        """The cluster's data directory."""
        return self._base() / "data"

    @property
    def log_path(self) -> Path:
        """The server log (pg_ctl -l)."""
        return self._base() / "server.log"

    def _base(self) -> Path:
        if self.base is None:
            raise PostgresError("the server has not been set up: call setup() or use `with`")
        return self.base

    def _cmd(self, program: str, *args: str) -> list[str]:
        argv = [str(self.bin_dir / program), *args]
        return ["runuser", "-u", PG_USER, "--", *argv] if self.as_root else argv

    def _run(
        self, program: str, *args: str, timeout: float = 120
    ) -> subprocess.CompletedProcess[str]:
        cmd = self._cmd(program, *args)
        proc = subprocess.run(
            cmd, cwd=self._base(), capture_output=True, text=True, timeout=timeout, check=False
        )
        if proc.returncode != 0:
            raise PostgresError(
                f"{' '.join(cmd)} exited {proc.returncode}\n{proc.stdout}{proc.stderr}"
                f"\n--- server log ---\n{self.server_log()}"
            )
        return proc

    def server_log(self, tail: int = 4000) -> str:
        """The last `tail` characters of the server log ('' where there is none yet)."""
        try:
            return self.log_path.read_text(errors="replace")[-tail:]
        except (OSError, PostgresError):
            return ""

    def setup(self) -> PrivatePostgres:
        """Make the directory, run initdb and start the server (what entering `with` does)."""
        try:
            self._init()
            for attempt in range(3):
                try:
                    self.start()
                    break
                except PostgresError:
                    # Another process may have taken the free port since it was picked.
                    if attempt == 2 or "could not bind" not in self.server_log():
                        raise
                    self._set_port(free_port())
        except BaseException:
            self.close()
            raise
        return self

    def _init(self) -> None:
        if self._parent is not None:
            self._parent.mkdir(parents=True, exist_ok=True)
        self.base = Path(tempfile.mkdtemp(prefix="sweepscope-pg-", dir=self._parent))
        if self.as_root:
            _make_traversable(self.base.parent)
            os.chown(self.base, *self._pg_ids)
        stop = self._cmd("pg_ctl", "stop", "-D", str(self.data_dir), "-m", "immediate", "-w")
        self._watchdog = subprocess.Popen(
            [sys.executable, "-c", _WATCHDOG, json.dumps(stop), str(self.base)],
            stdin=subprocess.PIPE,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        t0 = time.monotonic()
        auth = ["--auth=trust"]
        if self.password is not None:
            # initdb reads the superuser's password from a file: never on a command line,
            # where `ps` shows it. The file goes as soon as initdb has read it.
            pwfile = self.base / "pwfile"
            pwfile.touch(mode=0o600)
            if self.as_root:
                os.chown(pwfile, *self._pg_ids)
            pwfile.write_text(self.password + "\n")
            auth = ["--auth=scram-sha-256", f"--pwfile={pwfile}"]
        try:
            self._run(
                "initdb",
                *("-D", str(self.data_dir), "-U", PG_USER, *auth),
                *("--encoding=UTF8", "--locale=C", "--no-sync", "--no-instructions"),
            )
        finally:
            if self.password is not None:
                (self.base / "pwfile").unlink(missing_ok=True)
        self.timings["initdb"].append(time.monotonic() - t0)
        with (self.data_dir / "postgresql.conf").open("a") as conf:
            conf.write(
                "\n# PrivatePostgres (tests): loopback only, sockets in the temp dir, no fsync\n"
                "listen_addresses = '127.0.0.1'\n"
                f"unix_socket_directories = '{self.base}'\n"
                "fsync = off\nsynchronous_commit = off\nfull_page_writes = off\n"
                "shared_buffers = 32MB\n"
            )
        self._set_port(free_port())

    def _set_port(self, port: int) -> None:
        self.port = port
        with (self.data_dir / "postgresql.conf").open("a") as conf:
            conf.write(f"port = {port}\n")

    def start(self) -> None:
        """Start the server and wait until it accepts connections."""
        with self._lock:
            if self._closed.is_set():
                raise PostgresError("the server has been closed")
            t0 = time.monotonic()
            self._run(
                "pg_ctl", "start", "-D", str(self.data_dir), "-l", str(self.log_path),
                "-w", "-t", "60",
            )  # fmt: skip
            self.timings["start"].append(time.monotonic() - t0)

    def stop(self) -> None:
        """Stop the server (fast mode: open connections are cut) and wait until it is down."""
        with self._lock:
            t0 = time.monotonic()
            self._run("pg_ctl", "stop", "-D", str(self.data_dir), "-m", "fast", "-w", "-t", "60")
            while port_open(self.port):  # pg_ctl waits for the pid file; make sure of the port
                if time.monotonic() - t0 > 30:
                    raise PostgresError(f"port {self.port} still open 30 s after pg_ctl stop")
                time.sleep(0.05)
            self.timings["stop"].append(time.monotonic() - t0)

    def is_running(self) -> bool:
        """Whether the server process is up (pg_ctl status)."""
        if self.base is None:
            return False
        proc = subprocess.run(
            self._cmd("pg_ctl", "status", "-D", str(self.data_dir)),
            cwd=self.base,
            capture_output=True,
            check=False,
        )
        return proc.returncode == 0

    def outage(self, seconds: float) -> Outage:
        """Stop the server, keep it down for `seconds`, start it again; blocks throughout.

        close() cuts the wait short (and the server then stays down).
        """
        record = Outage(seconds=seconds)
        self._outage(record)
        return record.join()

    def start_outage(self, seconds: float, *, after: float = 0.0) -> Outage:
        """Run `outage(seconds)` in a background thread, `after` seconds from now.

        Returns at once; `join()` the result to wait and to see any error.
        """
        record = Outage(seconds=seconds, after=after)
        record._thread = threading.Thread(
            target=self._outage, args=(record,), name="postgres-outage", daemon=True
        )
        record._thread.start()
        return record

    def _outage(self, record: Outage) -> None:
        try:
            if self._closed.wait(record.after):
                return
            record.stop_requested_at = time.time()
            self.stop()
            record.down_at = time.time()
            if self._closed.wait(record.seconds):
                return
            self.start()
            record.up_at = time.time()
        except BaseException as exc:  # handed to join()
            record.error = exc

    def url(
        self,
        database: str = "postgres",
        password: str | None = None,
        *,
        user: str = PG_USER,
    ) -> str:
        """A SQLAlchemy URL for `database` as `user` (default: the superuser, with the
        server's password where it checks passwords; trust auth accepts any)."""
        if password is None and user == PG_USER:
            password = self.password
        return sa.engine.URL.create(
            "postgresql+psycopg",
            username=user,
            password=password,
            host="127.0.0.1",
            port=self.port,
            database=database,
        ).render_as_string(hide_password=False)

    def execute(self, *statements: str, database: str = "postgres") -> None:
        """Run SQL statements as the superuser, each in its own transaction (CREATE ROLE,
        CREATE DATABASE, ALTER ROLE ... PASSWORD)."""
        run_sql(self.url(database), *statements)

    def create_database(self, name: str) -> str:
        """Create database `name`; return its URL."""
        engine = sa.create_engine(self.url(), isolation_level="AUTOCOMMIT")
        try:
            with engine.connect() as conn:
                quoted = conn.dialect.identifier_preparer.quote_identifier(name)
                conn.execute(sa.text(f"CREATE DATABASE {quoted}"))
        finally:
            engine.dispose()
        return self.url(name)

    def close(self) -> None:
        """Stop the server if it runs and remove the directory; safe to call twice."""
        self._closed.set()  # ends the wait of any outage thread, which then starts nothing
        with self._lock:
            if self.base is not None:
                if self.is_running():
                    with contextlib.suppress(PostgresError, subprocess.TimeoutExpired):
                        self._run("pg_ctl", "stop", "-D", str(self.data_dir), "-m", "immediate")
                shutil.rmtree(self.base, ignore_errors=True)
            if self._watchdog is not None:
                with contextlib.suppress(OSError, subprocess.TimeoutExpired):
                    self._watchdog.communicate(timeout=60)
                self._watchdog = None

    def __enter__(self) -> PrivatePostgres:
        return self.setup()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


# Takes the write lock of an existing SQLite file and prints one line when it holds it and one
# when it let go. It lets go after `seconds`, or earlier when a line arrives on stdin or stdin
# closes (the owner asked, or died: no orphan keeps a store locked).
_HOLDER = """
import select, sqlite3, sys, time
path, seconds, busy = sys.argv[1], float(sys.argv[2]), float(sys.argv[3])
conn = sqlite3.connect(f"file:{path}?mode=rw", uri=True, timeout=busy, isolation_level=None)
conn.execute("BEGIN EXCLUSIVE")
print("locked", time.time(), flush=True)
ready, _, _ = select.select([sys.stdin], [], [], seconds)
conn.execute("ROLLBACK")
conn.close()
print("released", time.time(), "early" if ready else "timeout", flush=True)
"""


class SqliteLock:
    """Handle on a process that holds an SQLite file's write lock; see `hold_sqlite_lock`.

    `locked_at` and `released_at` are the holder's `time.time()` when it took and let go of
    the lock (None until then).
    """

    def __init__(self, path: Path, seconds: float, busy_timeout: float) -> None:
        self.path = path
        self.seconds = seconds
        self.locked_at: float | None = None
        self.released_at: float | None = None
        self.released_early = False
        self._locked = threading.Event()
        self._done = threading.Event()
        self._stderr = ""
        self.proc = subprocess.Popen(
            [sys.executable, "-c", _HOLDER, str(path), str(seconds), str(busy_timeout)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        self._reader = threading.Thread(target=self._read, name="sqlite-lock", daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None and self.proc.stderr is not None
        for line in self.proc.stdout:
            word, stamp, *rest = line.split()
            if word == "locked":
                self.locked_at = float(stamp)
                self._locked.set()
            elif word == "released":
                self.released_at = float(stamp)
                self.released_early = rest == ["early"]
        self._stderr = self.proc.stderr.read()
        self.proc.wait()
        self._done.set()
        self._locked.set()  # wake wait_locked() when the holder died before locking

    @property
    def held(self) -> bool:
        """Whether the holder has the lock now."""
        return self.locked_at is not None and not self._done.is_set() and self.released_at is None

    def wait_locked(self, timeout: float = 30.0) -> float:
        """Wait until the holder has the lock; return `locked_at`."""
        if not self._locked.wait(timeout):
            self.kill()
            raise TimeoutError(f"no write lock on {self.path} after {timeout} s")
        if self.locked_at is None:
            raise RuntimeError(
                f"the lock holder on {self.path} exited {self.proc.returncode} without the lock:"
                f"\n{self._stderr}"
            )
        return self.locked_at

    def wait(self, timeout: float | None = None) -> float:
        """Wait until the holder has let go and exited; return `released_at`."""
        if not self._done.wait(timeout):
            raise TimeoutError(f"the lock on {self.path} still held after {timeout} s")
        if self.released_at is None:
            raise RuntimeError(
                f"the lock holder on {self.path} exited {self.proc.returncode} without "
                f"releasing cleanly:\n{self._stderr}"
            )
        return self.released_at

    def release(self, timeout: float = 30.0) -> float:
        """Let go now rather than after `seconds`; return `released_at`."""
        if not self._done.is_set():
            with contextlib.suppress(OSError, ValueError):
                assert self.proc.stdin is not None
                self.proc.stdin.write("release\n")
                self.proc.stdin.flush()
        return self.wait(timeout)

    def kill(self) -> None:
        """End the holder at once (the OS drops its lock)."""
        if self.proc.poll() is None:
            self.proc.kill()
        self._done.wait(10)

    def __enter__(self) -> SqliteLock:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self.proc.poll() is None:
            try:
                self.release(timeout=10)
            except (TimeoutError, RuntimeError):
                self.kill()
        with contextlib.suppress(OSError):
            assert self.proc.stdin is not None
            self.proc.stdin.close()


def hold_sqlite_lock(
    path: str | Path, seconds: float, *, busy_timeout: float = 60.0, wait: float = 90.0
) -> SqliteLock:
    """Make another process hold `path`'s write lock (BEGIN EXCLUSIVE) for `seconds`.

    Returns once the lock is held. In WAL mode, which the store uses, this blocks every other
    writer (they wait out their busy timeout, then fail with "database is locked") but no
    reader. The holder itself waits up to `busy_timeout` for a writer that has the lock now;
    `wait` bounds how long this call waits for it. The file must exist (nothing is created).
    Use the result as a context manager so the holder never outlives the caller's block.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no SQLite file at {path}")
    lock = SqliteLock(path, seconds, busy_timeout)
    try:
        lock.wait_locked(wait)
    except BaseException:
        lock.kill()
        raise
    return lock


def _server_pids(pg: PrivatePostgres) -> list[int]:
    """The server's postmaster and every process it started (backends, walwriter, ...)."""
    master = int((pg.data_dir / "postmaster.pid").read_text().split()[0])
    children = []
    for status in Path("/proc").glob("[0-9]*/status"):
        with contextlib.suppress(OSError, ValueError):
            fields = dict(
                line.split(":\t", 1) for line in status.read_text().splitlines() if ":\t" in line
            )
            if int(fields.get("PPid", "0").strip()) == master:
                children.append(int(status.parent.name))
    return [master, *children]


@contextlib.contextmanager
def frozen_postgres(pg: PrivatePostgres) -> Iterator[list[int]]:
    """A server that stops answering without closing anything: every one of its processes
    is sent SIGSTOP (as a hung host or a stalled VM looks from outside: connections stay
    open, the kernel still acknowledges TCP, no reply comes), and SIGCONT at the block's
    end, even on failure. Yields the stopped PIDs."""
    pids = _server_pids(pg)
    for pid in pids:
        os.kill(pid, signal.SIGSTOP)
    try:
        yield pids
    finally:
        for pid in pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGCONT)


@contextlib.contextmanager
def hold_table_lock(url: str, table: str) -> Iterator[None]:
    """Another session holds an ACCESS EXCLUSIVE lock on `table` (as a long `ALTER TABLE`,
    a `LOCK TABLE` in psql, or a migration would) until the block ends."""
    engine = sa.create_engine(url)
    try:
        with engine.connect() as conn:
            conn.execute(sa.text(f"LOCK TABLE {table} IN ACCESS EXCLUSIVE MODE"))
            try:
                yield
            finally:
                conn.rollback()
    finally:
        engine.dispose()
