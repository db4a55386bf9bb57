"""Opening a store: the URL's scheme chooses the backend, and SQLite stays off network
filesystems. Fast: nothing here connects to a server."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from runner.errors import StoreError
from runner.store import BACKENDS, migrate_store, open_store
from runner.store import _filesystem as filesystem
from runner.store._sql import _make_engine
from runner.store._url import parse_store_url

ACCEPTED = "sqlite (sqlite:///path/to/file.db) or postgresql[+driver]"


@pytest.mark.parametrize(
    ("url", "backend"),
    [
        ("sqlite:///sweeps.db", "sqlite"),
        ("sqlite+pysqlite:///sweeps.db", "sqlite"),
        ("sqlite://", "sqlite"),
        ("postgresql://u@h/db", "postgresql"),
        ("postgresql+psycopg://u:pw@h:5432/db", "postgresql"),
        ("postgresql+psycopg2://u@h/db", "postgresql"),
    ],
)
def test_the_scheme_chooses_the_backend(url: str, backend: str) -> None:
    chosen, parsed = parse_store_url(url)
    assert chosen == backend and chosen in BACKENDS
    assert parsed.drivername.startswith(backend)


@pytest.mark.parametrize(
    ("url", "scheme"),
    [
        ("mysql://root:hunter2-secret@127.0.0.1/test", "mysql"),
        ("mysql+pymysql://root:hunter2-secret@127.0.0.1/test", "mysql+pymysql"),
        ("postgres://me:hunter2-secret@db/sweeps", "postgres"),  # libpq's, not SQLAlchemy's
        ("SQLite:///sweeps.db", "SQLite"),
        ("duckdb:///sweeps.duckdb", "duckdb"),
    ],
)
@pytest.mark.parametrize("opener", [open_store, migrate_store])
def test_an_unknown_scheme_is_named_with_the_accepted_ones(
    url: str, scheme: str, opener: object
) -> None:
    with pytest.raises(StoreError) as raised:
        opener(url)  # type: ignore[operator]
    message = str(raised.value)
    assert f"has the scheme {scheme!r}" in message
    assert ACCEPTED in message
    assert "hunter2-secret" not in message
    if "hunter2" in url:
        assert "***" in message


@pytest.mark.parametrize("url", ["not a url", "/tmp/sweeps.db", "sweeps.db", " "])
def test_a_path_or_other_text_is_not_a_store_url(url: str) -> None:
    with pytest.raises(
        StoreError, match=r"is not a database URL \(scheme://...\)\. Fix: use sqlite"
    ):
        open_store(url, create=True)


def test_an_unknown_driver_is_named(tmp_path: Path) -> None:
    with pytest.raises(StoreError, match="names the driver 'sqlite\\+nosuch'"):
        open_store(f"sqlite+nosuch:///{tmp_path / 'store.db'}", create=True)
    with pytest.raises(StoreError, match="names the driver 'postgresql\\+nosuch'"):
        open_store("postgresql+nosuch://me:hunter2-secret@127.0.0.1:1/db")
    assert not (tmp_path / "store.db").exists()


def test_only_sqlite_urls_go_through_the_filesystem_guard(
    store_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    checked: list[tuple[str, str | None]] = []
    monkeypatch.setattr(
        "runner.store.refuse_network_filesystem", lambda url, db: checked.append((url, db))
    )
    with open_store(store_url, create=True):
        pass
    if store_url.startswith("sqlite"):
        assert checked == [(store_url, store_url.removeprefix("sqlite:///"))]
    else:
        assert checked == []


def _mounts(tmp_path: Path, *lines: str) -> str:
    path = tmp_path / "mounts"
    path.write_text("".join(f"{line}\n" for line in lines))
    return str(path)


def test_filesystem_type_takes_the_longest_mount_point(tmp_path: Path) -> None:
    root = tmp_path.resolve()
    mounts = _mounts(
        tmp_path,
        "/dev/sda1 / ext4 rw 0 0",
        f"server:/export {root}/share nfs4 rw 0 0",
        f"/dev/sdb1 {root}/share/local ext4 rw 0 0",
        f"server:/b {root}/with\\040space cifs rw 0 0",
        "garbage",
    )
    assert filesystem.filesystem_type(root / "share" / "runs", mounts) == "nfs4"
    assert filesystem.filesystem_type(root / "share", mounts) == "nfs4"
    assert filesystem.filesystem_type(root / "share" / "local" / "x", mounts) == "ext4"
    assert filesystem.filesystem_type(root / "with space" / "x", mounts) == "cifs"
    assert filesystem.filesystem_type(root / "elsewhere", mounts) == "ext4"
    assert filesystem.filesystem_type(root, str(tmp_path / "no-such-file")) is None


def test_sqlite_on_a_network_filesystem_is_refused(tmp_path: Path) -> None:
    root = tmp_path.resolve()
    mounts = _mounts(tmp_path, "/dev/sda1 / ext4 rw 0 0", f"server:/x {root}/nfs nfs rw 0 0")
    url = f"sqlite:///{root}/nfs/store.db"
    with pytest.raises(StoreError, match=r"network filesystem \(nfs\).*Fix: put the file"):
        filesystem.refuse_network_filesystem(url, f"{root}/nfs/store.db", mounts)
    filesystem.refuse_network_filesystem(url, f"{root}/local/store.db", mounts)
    for nothing_to_check in (None, "", ":memory:", "file:store.db?mode=memory"):
        filesystem.refuse_network_filesystem(url, nothing_to_check, mounts)


def test_open_store_refuses_sqlite_on_a_network_filesystem(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(filesystem, "filesystem_type", lambda path, mounts="": "fuse.sshfs")
    url = f"sqlite:///{tmp_path / 'store.db'}"
    for opener in (open_store, migrate_store):
        with pytest.raises(StoreError, match=r"network filesystem \(fuse.sshfs\)"):
            opener(url)
    assert not (tmp_path / "store.db").exists()


def test_psycopgs_teardown_warning_after_a_lost_connection_is_dropped(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A server lost inside a batch write makes psycopg log a second, ignored error; the runner
    already says the store is away, so that line must not reach the user's stderr."""
    pytest.importorskip("psycopg")
    _make_engine("postgresql+psycopg://user@127.0.0.1:1/sweeps")  # no connection is made
    psycopg_log = logging.getLogger("psycopg")
    with caplog.at_level(logging.WARNING, logger="psycopg"):
        psycopg_log.warning("error ignored terminating %r: %s", "<Pipeline>", "connection lost")
        psycopg_log.warning("some other psycopg warning")
    assert [r.getMessage() for r in caplog.records] == ["some other psycopg warning"]
