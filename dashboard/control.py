"""Stopping trials from the browser: who may, and the stop request itself.

On a loopback address only this machine's users reach the page, so the stop buttons work
as they are. Bound to any other address, they need the token in $SWEEPSCOPE_TOKEN, which
the page asks for; without that variable they are off, and the page says why. A token
shorter than TOKEN_MIN_LENGTH could be guessed: `sweepscope dashboard` refuses to start
with one there (check_token), and the page, however Streamlit was started, keeps the stop
controls off with it (stop_permission, where the token is checked).
"""

from __future__ import annotations

import hmac
import ipaddress
import os
from dataclasses import dataclass

from dashboard.data import status_label, trial_number
from runner.errors import SweepscopeError
from runner.store import Store, TrialStatus

__all__ = [
    "TOKEN_ENV",
    "TOKEN_MIN_LENGTH",
    "StopOutcome",
    "StopPermission",
    "check_token",
    "is_loopback",
    "request_stop",
    "stop_permission",
]

TOKEN_ENV = "SWEEPSCOPE_TOKEN"
# 16 random URL-safe characters carry 96 bits: beyond guessing through the page.
TOKEN_MIN_LENGTH = 16


def is_loopback(host: str | None) -> bool:
    """Whether `host` reaches only this machine. None or "" means every interface: no."""
    if not host:
        return False
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def check_token(host: str | None, token: str | None) -> None:
    """Refuse a token too short to be a secret on an address other machines reach.

    An unset (or empty) token is fine: the stop controls are then off. The message never
    contains the token.

    Raises:
        SweepscopeError: `host` is not loopback and `token` is shorter than TOKEN_MIN_LENGTH.
    """
    if (problem := _short_token(host, token)) is not None:
        raise SweepscopeError(problem)


def _short_token(host: str | None, token: str | None) -> str | None:
    """Why `token` is too short for a dashboard bound to `host`, or None when it is not."""
    if is_loopback(host) or not token or len(token) >= TOKEN_MIN_LENGTH:
        return None
    where = host or "every interface"
    return (
        f"{TOKEN_ENV} is shorter than {TOKEN_MIN_LENGTH} characters, too short to keep "
        f"strangers from stopping trials on a dashboard listening on {where}, which other "
        f"machines can reach. Fix: set {TOKEN_ENV} to a random secret of at least "
        f"{TOKEN_MIN_LENGTH} characters, e.g. the output of "
        "python -c 'import secrets; print(secrets.token_urlsafe(24))', "
        "or unset it (the stop controls are then off), or bind to 127.0.0.1 (the default)."
    )


@dataclass(frozen=True)
class StopPermission:
    """Whether the stop controls work, whether they need a token, and why not if not."""

    enabled: bool
    needs_token: bool
    reason: str = ""
    token: str | None = None

    def accepts(self, given: str | None) -> bool:
        """Whether a stop may go ahead with the token the user typed."""
        if not self.enabled:
            return False
        if not self.needs_token:
            return True
        if self.token is None:
            return False
        return hmac.compare_digest((given or "").encode(), self.token.encode())


def stop_permission(host: str | None, token: str | None = None) -> StopPermission:
    """The stop controls' state for a dashboard bound to `host`, with `token` from
    $SWEEPSCOPE_TOKEN (read from the environment when not given). A token too short to be
    a secret (check_token) turns them off, whoever started Streamlit."""
    if is_loopback(host):
        return StopPermission(enabled=True, needs_token=False)
    token = os.environ.get(TOKEN_ENV) if token is None else token
    if (problem := _short_token(host, token)) is not None:
        return StopPermission(
            enabled=False, needs_token=True, reason=f"Stopping is disabled: {problem}"
        )
    if not token:
        where = host or "every interface"
        return StopPermission(
            enabled=False,
            needs_token=True,
            reason=(
                f"Stopping is disabled: this dashboard listens on {where}, which other "
                f"machines can reach, and {TOKEN_ENV} is not set. Fix: restart it with "
                f"{TOKEN_ENV}=<a secret> in its environment and type that secret here, "
                "or bind it to 127.0.0.1 (the default)."
            ),
        )
    return StopPermission(enabled=True, needs_token=True, token=token)


@dataclass(frozen=True)
class StopOutcome:
    changed: bool
    message: str


def request_stop(
    store: Store,
    sweep_id: str,
    trial_id: int | None,
    *,
    permission: StopPermission,
    given_token: str | None = None,
    number: int | None = None,
) -> StopOutcome:
    """Write a stop request for a trial (or the whole sweep, trial_id None) to the store.
    The message names the trial by `number`, its number within the sweep (None: looked up).

    Idempotent; a finished target is a no-op and the message says so.

    Raises:
        PermissionError: the controls are disabled, or the token is wrong.
        StoreError: no such sweep or trial, or the store cannot be written.
    """
    if not permission.enabled:
        raise PermissionError(permission.reason)
    if not permission.accepts(given_token):
        raise PermissionError(
            f"the token does not match {TOKEN_ENV}. Fix: type the value of {TOKEN_ENV} that "
            "the dashboard was started with."
        )
    if trial_id is not None and number is None:
        found = [t for t in store.trials(sweep_id) if int(t["id"]) == trial_id]
        number = trial_number(found[0]) if found else trial_id
    target = f"trial {number}" if trial_id is not None else f"sweep {sweep_id}"
    if store.request_stop(sweep_id, trial_id):
        return StopOutcome(
            True,
            f"Stop requested for {target}; the runner ends it within a "
            "few seconds, and it shows as “stopped by user”.",
        )
    status = ""
    if trial_id is not None:
        found = [t for t in store.trials(sweep_id) if int(t["id"]) == trial_id]
        if found and found[0]["status"] in TrialStatus.finished():
            status = f" ({status_label(found[0]['status'])})"
    return StopOutcome(
        False, f"{target.capitalize()} has already finished{status}; there is nothing to stop."
    )
