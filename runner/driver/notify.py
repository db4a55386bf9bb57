"""Alerts that reach the user: a small JSON post to the spec's `notify: {webhook: URL}`.

One document is posted when the sweep ends (`sweep_ended`: completed or stopped) or fails
(`sweep_failed`), and when a trial diverges (`trial_diverged`) or fails (`trial_failed`, a
timeout too), once per trial:

    {"event": "trial_diverged", "sweep": "seed_grid-20260101-120000-ab12", "name": "seed_grid",
     "status": "diverged", "trial": "a1b2c3d4", "config": {"lr": 0.1}, "detail": null,
     "at": "2026-01-01T12:03:04Z", "text": "sweepscope seed_grid-...: trial a1b2c3d4 diverged"}

`text` is a one-line summary, which chat webhooks (Slack, Mattermost) show as the message.

Delivery: trial posts go out one at a time from a thread of their own; the sweep's end,
the post users wait for, gets a thread of its own and goes first (trial posts still queued
wait for it), so slow trial posts never hold it back. A post is retried, with growing
pauses, on a connection error, a timeout, 429 or 5xx, waiting as long as `Retry-After`
asks (at most MAX_RETRY_AFTER s), within `budget` seconds in all; `close` waits for the end
post at most that long. A webhook that still refuses, hangs or fails is logged (its scheme
and host only: a webhook's path often holds its token) and never fails the sweep.

Secrets: every string of a post passes through runner.redact before it is encoded (once
JSON-escaped, a password with a quote or a non-ASCII letter would no longer match). The
store keeps the webhook as scheme and host only (runner.webhook.mask_webhook): the full URL
lives in the driver's memory, and `sweepscope resume` takes it again from `--spec` or
$SWEEPSCOPE_WEBHOOK. A URL with a user name or password is refused: urllib would not send
them, only log them.
"""

from __future__ import annotations

import email.utils
import http.client
import json
import logging
import threading
import time
import urllib.error
import urllib.request
from collections import deque
from typing import Any

from runner.redact import redact
from runner.webhook import WEBHOOK_ENV, shown_webhook

__all__ = ["WEBHOOK_ENV", "Notifier"]

log = logging.getLogger(__name__)

TIMEOUT = 5.0  # seconds one try of a post may take
BUDGET = 20.0  # seconds a post may take, its retries included
BACKOFF = 0.5  # seconds before the first retry, doubled for each one after
MAX_BACKOFF = 8.0
MAX_RETRY_AFTER = 10.0  # a longer Retry-After is cut to this
QUEUE = 256  # trial posts waiting at most; past this, new ones are dropped (and logged)
MAX_TEXT = 500  # characters of a trial's error kept in `detail`


def _masked(value: Any) -> Any:
    """`value` (a post's document) with every string redacted, before it is encoded."""
    if isinstance(value, str):
        return redact(value)
    if isinstance(value, dict):
        return {_masked(k) if isinstance(k, str) else k: _masked(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [_masked(v) for v in value]
    if value is None or isinstance(value, bool | int | float):
        return value
    return redact(str(value))


def _retry_after(value: str | None) -> float | None:
    """Seconds a `Retry-After` header asks to wait (delta-seconds or an HTTP date), cut to
    0..MAX_RETRY_AFTER; None when absent or unreadable."""
    if not value:
        return None
    value = value.strip()
    try:
        seconds = float(value)
    except ValueError:
        try:
            seconds = email.utils.parsedate_to_datetime(value).timestamp() - time.time()
        except (TypeError, ValueError, IndexError, OverflowError):
            return None
    if seconds != seconds:  # NaN
        return None
    return min(max(seconds, 0.0), MAX_RETRY_AFTER)


class Notifier:
    """Posts events to one webhook from background threads; `close` waits, bounded, for the
    end post first and the trial posts still queued after. Without a webhook every method
    does nothing.

    Args:
        webhook: the URL (checked by runner.webhook.check_webhook), or None.
        sweep_id, name: the sweep the posts are about.
        timeout: seconds one try of a post may take.
        budget: seconds one post may take, retries included.
    """

    def __init__(
        self,
        webhook: str | None,
        *,
        sweep_id: str,
        name: str,
        timeout: float = TIMEOUT,
        budget: float = BUDGET,
    ) -> None:
        self.webhook = webhook
        self.sweep_id = sweep_id
        self.name = name
        self.timeout = timeout
        self.budget = budget
        self.sent = 0  # posts the webhook accepted (2xx)
        self.failed = 0  # posts that failed or were dropped
        self._told: set[tuple[str, str]] = set()  # (event, trial): once per trial
        self._cond = threading.Condition()
        self._trials: deque[dict[str, Any]] = deque()
        self._busy = False  # a trial post is being sent
        self._end: threading.Thread | None = None
        self._end_settled = False  # the end post was sent, or failed for good
        self._worker: threading.Thread | None = None
        self._closing = False
        self._abandoned = threading.Event()  # close gave up: unsent posts are counted failed

    def trial(
        self, event: str, trial: str, status: str, *, config: Any = None, detail: str | None = None
    ) -> None:
        """A trial diverged or failed: post `event` once for this trial."""
        if self.webhook is None or (event, trial) in self._told:
            return
        self._told.add((event, trial))
        text = f"sweepscope {self.sweep_id}: trial {trial} {status.replace('_', ' ')}"
        if detail:
            last = detail.strip().splitlines()[-1] if detail.strip() else ""
            text += f": {last[:200]}"
        document = self._document(
            event=event,
            status=status,
            trial=trial,
            config=config,
            detail=detail[-MAX_TEXT:] if detail else None,
            text=text,
        )
        with self._cond:
            if len(self._trials) >= QUEUE:
                self.failed += 1
                log.warning(
                    "notify: %d posts already wait for the webhook; %s dropped", QUEUE, event
                )
                return
            self._trials.append(document)
            if self._worker is None:
                self._worker = threading.Thread(
                    target=self._run_trials, name="sweepscope-notify", daemon=True
                )
                self._worker.start()
            self._cond.notify_all()

    def sweep(
        self,
        status: str,
        *,
        message: str | None = None,
        counts: dict[str, int] | None = None,
        best: float | None = None,
    ) -> None:
        """The sweep ended with `status`: sweep_failed when it failed, else sweep_ended.
        Posted at once, ahead of any trial post still waiting."""
        if self.webhook is None or self._end is not None:
            return
        event = "sweep_failed" if status == "failed" else "sweep_ended"
        tally = ", ".join(f"{n} {s.replace('_', ' ')}" for s, n in sorted((counts or {}).items()))
        text = f"sweepscope {self.sweep_id} {status}" + (f": {message}" if message else "")
        if tally:
            text += f" ({tally})"
        document = self._document(
            event=event, status=status, message=message, counts=counts or {}, best=best, text=text
        )
        self._end = threading.Thread(
            target=self._run_end, args=(document,), name="sweepscope-notify-end", daemon=True
        )
        self._end.start()

    def close(self, wait: float | None = None) -> None:
        """Let the posts go, waiting at most `wait` seconds in all (default: one post's
        budget and a second): the end post first, then the trial posts still queued."""
        if self._end is None and self._worker is None:
            return
        deadline = time.monotonic() + (self.budget + 1.0 if wait is None else wait)
        if self._end is not None:
            self._end.join(max(0.0, deadline - time.monotonic()))
        with self._cond:
            self._closing = True
            self._cond.notify_all()
        if self._worker is not None:
            self._worker.join(max(0.0, deadline - time.monotonic()))
        with self._cond:
            end_unsent = self._end is not None and not self._end_settled
            unsent = len(self._trials) + int(self._busy) + int(end_unsent)
            if not unsent:
                return
            self._abandoned.set()  # the threads stop retrying, and count nothing more
            self.failed += unsent
            self._trials.clear()
        log.warning(
            "notify: gave up waiting for the webhook at %s; %d unsent posts are dropped%s",
            shown_webhook(self.webhook or ""),
            unsent,
            " (the end of the sweep among them)" if end_unsent else "",
        )

    # -- the posting threads -----------------------------------------------------------------
    def _document(self, **fields: Any) -> dict[str, Any]:
        return {
            "event": fields.pop("event"),
            "sweep": self.sweep_id,
            "name": self.name,
            **fields,
            "at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        }

    def _run_end(self, document: dict[str, Any]) -> None:
        sent = self._deliver(document)
        with self._cond:
            self._settle(sent)
            self._end_settled = True
            self._cond.notify_all()  # the trial posts may go now

    def _run_trials(self) -> None:
        while True:
            with self._cond:
                while not self._trials or (self._end is not None and not self._end_settled):
                    if self._abandoned.is_set() or (self._closing and not self._trials):
                        return
                    self._cond.wait(0.5)
                if self._abandoned.is_set():
                    return
                document = self._trials.popleft()
                self._busy = True
            sent = self._deliver(document)
            with self._cond:
                self._settle(sent)
                self._busy = False

    def _deliver(self, document: dict[str, Any]) -> bool | None:
        """Post `document`, retrying what may pass later, within the budget. Returns whether
        the webhook took it, or None when `close` gave up on it first."""
        assert self.webhook is not None
        body = json.dumps(_masked(document), default=str).encode()
        request = urllib.request.Request(
            self.webhook,
            data=body,
            method="POST",
            headers={"Content-Type": "application/json", "User-Agent": "sweepscope"},
        )
        deadline = time.monotonic() + self.budget
        tries = 0
        while True:
            tries += 1
            timeout = max(0.1, min(self.timeout, deadline - time.monotonic()))
            pause: float | None = None
            try:
                with urllib.request.urlopen(request, timeout=timeout) as response:
                    response.read(1024)
                return True
            except urllib.error.HTTPError as exc:
                retry = exc.code == 429 or 500 <= exc.code < 600
                if retry:
                    pause = _retry_after(exc.headers.get("Retry-After"))
                failure = (
                    f"the webhook at {shown_webhook(self.webhook)} answered {exc.code} "
                    f"{redact(str(exc.reason))} to {document['event']}"
                )
            except (OSError, http.client.HTTPException) as exc:  # refused, timed out, DNS
                retry = True
                reason = getattr(exc, "reason", exc)
                failure = (
                    f"could not post {document['event']} to the webhook at "
                    f"{shown_webhook(self.webhook)} "
                    f"({redact(str(reason) or type(reason).__name__)})"
                )
            except Exception as exc:  # never raised into the sweep
                retry = False
                failure = (
                    f"could not post {document['event']} to the webhook at "
                    f"{shown_webhook(self.webhook)} ({redact(str(exc))})"
                )
            if pause is None:
                pause = min(MAX_BACKOFF, BACKOFF * 2 ** (tries - 1))
            if retry and time.monotonic() + pause < deadline:
                log.debug("notify: %s; retrying in %.1f s", failure, pause)
                if self._abandoned.wait(pause):
                    return None  # close gave up on it and counted it
                continue
            tried = f" after {tries} tries" if tries > 1 else ""
            log.warning("notify: %s%s; the sweep goes on", failure, tried)
            return False

    def _settle(self, sent: bool | None) -> None:
        """Count a post's outcome (under the lock), unless `close` counted it as dropped."""
        if sent is None or self._abandoned.is_set():
            return
        if sent:
            self.sent += 1
        else:
            self.failed += 1
