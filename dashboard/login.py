"""Whether the store's server lets the dashboard log in, checked before it serves a page.

`sweepscope dashboard` starts even where the store is not there yet (`make run` starts it
before the sweep creates the tables; a database server may still be starting): each page
says so and picks the store up when it appears. A refused login is different: it never
heals on its own, and a user who started the command should hear it there, as every other
command says it (exit 2, one paragraph), rather than find it on a page later.
"""

from __future__ import annotations

import sqlalchemy as sa

from runner.errors import StoreError
from runner.redact import mask_url, redact
from runner.store._sql import LOGIN_REFUSED

__all__ = ["check_login", "login_refused"]


def login_refused(exc: BaseException) -> bool:
    """Whether `exc` (a driver error, or the store's error raised from one) is the server
    refusing the user or its password: SQLSTATE class 28, or libpq's own words for it."""
    seen: BaseException | None = exc
    while seen is not None:
        orig = getattr(seen, "orig", None) or seen
        state = str(getattr(orig, "sqlstate", None) or "")
        if state.startswith("28") or any(r in str(orig).lower() for r in LOGIN_REFUSED):
            return True
        seen = seen.__cause__
    return False


def check_login(url: str, *, timeout: int = 10) -> None:
    """Log in to the PostgreSQL server at `url` once, with the credentials a page will use
    (the URL's password, ?password=, $PGPASSWORD or the password file).

    Does nothing for other backends, and for a server that does not answer or has no such
    database yet: the pages say those and retry.

    Raises:
        StoreError: the server refused the user or the password.
    """
    try:
        parsed = sa.engine.make_url(url)
    except sa.exc.ArgumentError:
        return  # the page names what is wrong with the URL
    if parsed.get_backend_name() != "postgresql":
        return
    try:
        engine = sa.create_engine(parsed, connect_args={"connect_timeout": timeout})
    except ModuleNotFoundError:
        return  # the page says which package to install
    try:
        with engine.connect():
            pass
    except sa.exc.DBAPIError as exc:
        if not login_refused(exc):
            return
        cause = redact(str(exc.orig or exc)).strip().splitlines()
        reason = cause[0] if cause else "login refused"
        raise StoreError(
            f"the store {mask_url(url)} refused the login: {reason}. Fix: check the user "
            "and its password, wherever it is given: in the URL (user:password@host, with "
            "characters such as @ : / % written as %40 %3A %2F %25), as ?password=, in "
            "PGPASSWORD, or in the password file (PGPASSFILE, else ~/.pgpass)."
        ) from exc
    finally:
        engine.dispose()
