"""What a sweep needs from a Ray cluster beyond one machine: shared storage.

Ray Tune writes each trial's checkpoints to `storage_path` from whichever node runs the
trial, and reads them back on the driver (and on any node a trial restarts on). On one
machine a local directory does; on several nodes it must be storage every node sees:
a cloud URI (s3://, gs://, abfss://, ...) or a directory mounted on every node (NFS, ...).
"""

from __future__ import annotations

from runner.errors import SweepscopeError

__all__ = ["alive_nodes", "check_storage"]


def alive_nodes() -> int:
    """How many nodes of the connected Ray cluster are alive (ray.init must have run)."""
    import ray

    return sum(1 for node in ray.nodes() if node.get("Alive"))


def check_storage(storage_path: str | None) -> None:
    """Refuse, before any trial starts, a multi-node sweep without shared storage.

    Call right after ray.init with the storage path the user gave (--storage-path or the
    spec's storage_path), None when they gave none. The rule:

    - one alive node: anything goes (the default .sweepscope/ray is fine);
    - several nodes and a URI (s3://bucket/sweeps, gs://..., file:///mnt/nfs/...): fine;
    - several nodes and an explicit local path: fine, taken as a mount shared by every
      node (NFS or the like); Ray cannot tell a shared mount from a local disk;
    - several nodes and nothing given: SweepscopeError, because each node would write its
      checkpoints to its own disk and a restored or restarted trial would fail late.
    """
    given = (storage_path or "").strip()
    if given:
        return
    nodes = alive_nodes()
    if nodes <= 1:
        return
    raise SweepscopeError(
        f"the Ray cluster has {nodes} nodes but no shared storage was given "
        f"(--storage-path / spec storage_path is {storage_path!r}): each node would keep its "
        "trials' checkpoints on its own disk. Fix: pass --storage-path (or set storage_path "
        "in the spec) to storage every node sees, e.g. --storage-path s3://bucket/sweeps or "
        "a directory mounted on every node such as --storage-path /mnt/nfs/sweeps."
    )
