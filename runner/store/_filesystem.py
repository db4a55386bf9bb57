"""SQLite only on a local disk: the guard `open_store` runs before it opens a SQLite file.

SQLite's locking is unreliable on network filesystems (its documentation warns against
them): two processes writing one store there can corrupt it. A store shared between hosts
belongs on PostgreSQL.
"""

from __future__ import annotations

from pathlib import Path

from runner.errors import StoreError
from runner.redact import mask_url

__all__ = ["NETWORK_FILESYSTEMS", "filesystem_type", "refuse_network_filesystem"]

# Filesystem types (as /proc/mounts names them) whose locks SQLite cannot trust.
NETWORK_FILESYSTEMS = frozenset(
    {
        "nfs",
        "nfs4",
        "cifs",
        "smb3",
        "smbfs",
        "9p",
        "afs",
        "ceph",
        "glusterfs",
        "lustre",
        "fuse.sshfs",
        "fuse.glusterfs",
        "fuse.cephfs",
    }
)


def filesystem_type(path: Path, mounts: str = "/proc/mounts") -> str | None:
    """The type of the filesystem holding `path` (longest mount point that contains it);
    None where `mounts` cannot be read (not Linux) or names no mount point above it."""
    try:
        lines = Path(mounts).read_text().splitlines()
    except OSError:
        return None
    target = path.resolve()
    best: tuple[int, str] | None = None
    for line in lines:
        fields = line.split()
        if len(fields) < 3:
            continue
        point = Path(fields[1].replace("\\040", " "))
        if (target == point or point in target.parents) and (
            best is None or len(str(point)) > best[0]
        ):
            best = (len(str(point)), fields[2])
    return best[1] if best else None


def refuse_network_filesystem(url: str, database: str | None, mounts: str = "/proc/mounts") -> None:
    """Refuse a SQLite store file on a network filesystem.

    Args:
        url: the store URL, for the message (its password is masked).
        database: the SQLite database of the URL: a file path, ":memory:" or a "file:" URI
            (those two are let through: nothing to check).
        mounts: the mount table to read (tests pass their own).

    Raises:
        StoreError: the file's directory is on one of NETWORK_FILESYSTEMS.
    """
    if not database or database == ":memory:" or database.startswith("file:"):
        return
    kind = filesystem_type(Path(database).parent, mounts)
    if kind in NETWORK_FILESYSTEMS:
        raise StoreError(
            f"store URL {mask_url(url)!r} puts SQLite on a network filesystem ({kind}), where "
            "its locks are unreliable and a sweep can corrupt the file. Fix: put the file on a "
            "local disk, or use PostgreSQL (postgresql+psycopg://user@host:5432/db) to share "
            "a store."
        )
