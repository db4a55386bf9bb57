"""Alerts that reach the user: a small JSON post to the spec's `notify: {webhook: URL}`.

One document is posted when the sweep ends (`sweep_ended`: completed or stopped) or fails
(`sweep_failed`), and when a trial diverges (`trial_diverged`) or fails (`trial_failed`, a
timeout too), once per trial:

    {"event": "trial_diverged", "sweep": "seed_grid-20260101-120000-ab12", "name": "seed_grid",
     "status": "diverged", "trial": "a1b2c3d4", "config": {"lr": 0.1}, "detail": null,
     "at": "2026-01-01T12:03:04Z", "text": "sweepscope seed_grid-...: trial a1b2c3d4 diverged"}

`text` is a one-line summary, which chat webhooks (Slack, Mattermost) show as the message.
Posts go out on a thread of their own with a short timeout: a webhook that refuses, hangs or
answers 500 is logged (its scheme and host only: a webhook's path often holds its token) and
never holds up or fails the sweep. Every text passes through runner.redact, so no store
password leaves in a post.
"""

from __future__ import annotations

import contextlib
import json
import logging
import queue
import threading
import time
import urllib.error
import urllib.request
from typing import Any
from urllib.parse import urlsplit

from runner.redact import redact

__all__ = ["Notifier", "check_webhook"]

log = logging.getLogger(__name__)

TIMEOUT = 5.0  # seconds a post may take
QUEUE = 256  # posts waiting at most; past this, new ones are dropped (and logged)
MAX_TEXT = 500  # characters of a trial's error kept in `detail`


def check_webhook(url: str) -> str:
    """`url` if it is an http(s) URL with a host, else ValueError saying why and the fix."""
    try:
        parts = urlsplit(url)
        host = parts.hostname
    except ValueError:
        parts, host = None, None
    if parts is None or parts.scheme not in ("http", "https") or not host or url != url.strip():
        raise ValueError(
            f"{_where(url)!r} is not an http or https URL with a host. Fix: give the webhook's "
            "full URL, e.g. notify: {webhook: https://hooks.example.com/services/T0/B0/X}"
        )
    if any(c.isspace() for c in url):
        raise ValueError(
            f"{_where(url)!r} contains white space. Fix: quote the URL without spaces "
            "(percent-encode a space as %20)"
        )
    return url


def _where(url: str) -> str:
    """What of a webhook URL may be shown: scheme and host, never its path or password."""
    try:
        parts = urlsplit(url.strip())
        host = parts.hostname or ""
        port = f":{parts.port}" if parts.port else ""
    except ValueError:
        return "<a malformed URL>"
    if not parts.scheme:
        return url[:40] if "/" not in url else "<a URL without a scheme>"
    return f"{parts.scheme}://{host}{port}"


class Notifier:
    """Posts events to one webhook from a background thread; `close` waits, bounded, for the
    posts still queued. Without a webhook every method does nothing.

    Args:
        webhook: the URL (checked by check_webhook), or None.
        sweep_id, name: the sweep the posts are about.
        timeout: seconds one post may take.
    """

    def __init__(
        self, webhook: str | None, *, sweep_id: str, name: str, timeout: float = TIMEOUT
    ) -> None:
        self.webhook = webhook
        self.sweep_id = sweep_id
        self.name = name
        self.timeout = timeout
        self.sent = 0  # posts the webhook accepted (2xx)
        self.failed = 0  # posts that failed or were dropped
        self._told: set[tuple[str, str]] = set()  # (event, trial): once per trial
        self._queue: queue.Queue[dict[str, Any] | None] = queue.Queue(QUEUE)
        self._thread: threading.Thread | None = None

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
        self._post(
            event=event,
            status=status,
            trial=trial,
            config=config,
            detail=detail[-MAX_TEXT:] if detail else None,
            text=text,
        )

    def sweep(
        self,
        status: str,
        *,
        message: str | None = None,
        counts: dict[str, int] | None = None,
        best: float | None = None,
    ) -> None:
        """The sweep ended with `status`: sweep_failed when it failed, else sweep_ended."""
        if self.webhook is None:
            return
        event = "sweep_failed" if status == "failed" else "sweep_ended"
        tally = ", ".join(f"{n} {s.replace('_', ' ')}" for s, n in sorted((counts or {}).items()))
        text = f"sweepscope {self.sweep_id} {status}" + (f": {message}" if message else "")
        if tally:
            text += f" ({tally})"
        self._post(
            event=event, status=status, message=message, counts=counts or {}, best=best, text=text
        )

    def close(self, wait: float | None = None) -> None:
        """Let the queued posts go, waiting at most `wait` seconds (default: two timeouts)."""
        if self._thread is None:
            return
        with contextlib.suppress(queue.Full):
            self._queue.put_nowait(None)
        self._thread.join(2 * self.timeout + 1 if wait is None else wait)
        if self._thread.is_alive():
            log.warning(
                "notify: gave up waiting for the webhook at %s; unsent posts are dropped",
                _where(self.webhook or ""),
            )

    # -- the posting thread ------------------------------------------------------------------
    def _post(self, **fields: Any) -> None:
        document = {
            "event": fields.pop("event"),
            "sweep": self.sweep_id,
            "name": self.name,
            **fields,
            "at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        }
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="sweepscope-notify", daemon=True)
            self._thread.start()
        try:
            self._queue.put_nowait(document)
        except queue.Full:
            self.failed += 1
            log.warning(
                "notify: %d posts already wait for the webhook; %s dropped",
                QUEUE,
                document["event"],
            )

    def _run(self) -> None:
        while (document := self._queue.get()) is not None:
            self._send(document)

    def _send(self, document: dict[str, Any]) -> None:
        assert self.webhook is not None
        body = redact(json.dumps(document, default=str)).encode()
        request = urllib.request.Request(
            self.webhook,
            data=body,
            method="POST",
            headers={"Content-Type": "application/json", "User-Agent": "sweepscope"},
        )
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:
                response.read(1024)
            self.sent += 1
        except urllib.error.HTTPError as exc:
            self.failed += 1
            log.warning(
                "notify: the webhook at %s answered %s %s to %s; the sweep goes on",
                _where(self.webhook),
                exc.code,
                redact(str(exc.reason)),
                document["event"],
            )
        except Exception as exc:  # refused, timed out, DNS: logged, never raised into the sweep
            self.failed += 1
            reason = getattr(exc, "reason", exc)
            log.warning(
                "notify: could not post %s to the webhook at %s (%s); the sweep goes on",
                document["event"],
                _where(self.webhook),
                redact(str(reason)),
            )
