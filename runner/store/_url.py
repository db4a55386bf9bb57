"""Store URLs: the backend a URL names, read from its scheme before anything connects."""

from __future__ import annotations

from typing import Literal

import sqlalchemy as sa

from runner.errors import StoreError
from runner.redact import mask_url

__all__ = ["BACKENDS", "Backend", "parse_store_url"]

Backend = Literal["sqlite", "postgresql"]
# The schemes a store URL may have, as `backend` or `backend+driver` (SQLAlchemy's form):
# sqlite:///file.db, postgresql+psycopg://user@host:5432/db.
BACKENDS: tuple[Backend, ...] = ("sqlite", "postgresql")
_ACCEPTED = (
    "sqlite (sqlite:///path/to/file.db) or postgresql[+driver] "
    "(postgresql+psycopg://user@host:5432/dbname)"
)


def parse_store_url(url: str) -> tuple[Backend, sa.URL]:
    """The backend `url` names, by its scheme, and the URL as SQLAlchemy reads it.

    Args:
        url: a store URL; its password never reaches a message (runner.redact.mask_url).

    Returns:
        ("sqlite" or "postgresql", the parsed URL). The driver after "+" is not checked
        here: opening the store says when it is not installed.

    Raises:
        StoreError: `url` is not a URL, or its scheme names another backend; the message
            names the scheme and the schemes accepted.
    """
    try:
        parsed = sa.engine.make_url(url)
    except sa.exc.ArgumentError as exc:
        raise StoreError(
            f"store URL {mask_url(url)!r} is not a database URL (scheme://...). Fix: use "
            f"{_ACCEPTED}."
        ) from exc
    scheme = parsed.drivername
    backend = scheme.partition("+")[0]
    for known in BACKENDS:
        if backend == known:
            return known, parsed
    raise StoreError(
        f"store URL {mask_url(url)!r} has the scheme {scheme!r}, which names a backend "
        f"sweepscope does not support. Fix: use {_ACCEPTED}."
    )
