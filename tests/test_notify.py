"""Webhook alerts, against a local HTTP server each test starts: the posts a sweep's end,
failure, a diverged and a failed trial make; the spec's check of the URL; and webhooks that
refuse, answer 500 or hang, which are logged and never disturb the sweep."""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from runner.callback import StoreCallback
from runner.errors import SpecError
from runner.notify import Notifier
from runner.redact import remember_secret
from runner.report import POINTS_KEY, STATUS_KEY
from runner.spec import parse_spec
from runner.stopper import StoreStopper
from runner.store import Store, open_store
from runner.writer import StoreWriter

from .test_callback import _trial
from .test_plain_tune import cli, write_spec


class Hook:
    """A webhook on 127.0.0.1: keeps each JSON body posted; answers `code` after `delay` s."""

    def __init__(self, code: int = 200, delay: float = 0.0) -> None:
        self.posts: list[dict[str, Any]] = []
        self.code, self.delay = code, delay
        hook = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                hook.posts.append(json.loads(body))
                time.sleep(hook.delay)
                self.send_response(hook.code)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_port}/hooks/T0/secret-token"
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self._thread.start()

    def events(self) -> list[str]:
        return [p["event"] for p in self.posts]

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def hook() -> Iterator[Hook]:
    server = Hook()
    yield server
    server.close()


def _refused_url() -> str:
    """A loopback URL nothing listens on: a server that stopped."""
    gone = Hook()
    gone.close()
    return gone.url


def test_posts_once_per_trial_and_at_the_end(hook: Hook) -> None:
    remember_secret("hunter2-store-password")
    notifier = Notifier(hook.url, sweep_id="s-1", name="demo")
    notifier.trial("trial_diverged", "a1", "diverged", config={"lr": 1.0})
    notifier.trial("trial_diverged", "a1", "diverged")  # once per trial
    notifier.trial(
        "trial_failed",
        "b2",
        "error",
        detail="Traceback ...\nOSError: postgresql://u:hunter2-store-password@db failed",
    )
    notifier.sweep("completed", counts={"completed": 3, "diverged": 1}, best=0.97)
    notifier.close()
    assert hook.events() == ["trial_diverged", "trial_failed", "sweep_ended"]
    diverged, failed, ended = hook.posts
    assert diverged["sweep"] == "s-1" and diverged["name"] == "demo"
    assert diverged["trial"] == "a1" and diverged["config"] == {"lr": 1.0}
    assert diverged["text"] == "sweepscope s-1: trial a1 diverged"
    assert "hunter2" not in json.dumps(failed) and "u:***@db" in failed["detail"]
    assert failed["text"].endswith("OSError: postgresql://u:***@db failed")
    assert ended["status"] == "completed" and ended["best"] == 0.97
    assert ended["counts"] == {"completed": 3, "diverged": 1}
    assert notifier.sent == 3 and notifier.failed == 0


def test_a_failed_sweep_says_so(hook: Hook) -> None:
    notifier = Notifier(hook.url, sweep_id="s-2", name="demo")
    notifier.sweep("failed", message="every trial failed", counts={"error": 2})
    notifier.close()
    (post,) = hook.posts
    assert post["event"] == "sweep_failed" and post["message"] == "every trial failed"
    assert post["text"] == "sweepscope s-2 failed: every trial failed (2 error)"


def test_without_a_webhook_nothing_happens() -> None:
    notifier = Notifier(None, sweep_id="s", name="n")
    notifier.trial("trial_failed", "a", "error")
    notifier.sweep("completed")
    notifier.close()
    assert notifier.sent == notifier.failed == 0


@pytest.mark.parametrize("kind", ["refused", "500", "hangs"])
def test_a_failing_webhook_is_logged_and_returns_at_once(
    kind: str, caplog: pytest.LogCaptureFixture
) -> None:
    server = Hook(code=500) if kind == "500" else Hook(delay=3.0)
    url = _refused_url() if kind == "refused" else server.url
    try:
        notifier = Notifier(url, sweep_id="s", name="n", timeout=0.5)
        started = time.monotonic()
        with caplog.at_level(logging.WARNING, logger="runner.notify"):
            notifier.trial("trial_failed", "a", "error")  # the caller never waits
            assert time.monotonic() - started < 0.1
            notifier.sweep("completed")
            notifier.close()
        assert time.monotonic() - started < 2 * 0.5 + 1.5  # bounded, even when it hangs
        assert notifier.failed == 2 and notifier.sent == 0
        logged = "\n".join(r.getMessage() for r in caplog.records)
        assert "the sweep goes on" in logged
        assert f"http://127.0.0.1:{url.split(':')[2].split('/')[0]}" in logged
        assert "secret-token" not in logged  # the URL's path may be its token
        if kind == "500":
            assert "answered 500" in logged
    finally:
        server.close()


def test_the_spec_checks_the_webhook_url() -> None:
    base = {"name": "t", "trainable": "m:f", "stop": {"epochs": 1}, "grid": {"lr": [0.1]}}
    spec = parse_spec({**base, "notify": {"webhook": "https://hooks.example.com/x"}})
    assert spec.notify is not None and spec.notify.webhook == "https://hooks.example.com/x"
    assert parse_spec(base).notify is None
    for bad in ("ftp://hooks.example.com/x", "hooks.example.com", "https:///no-host", "http://a b"):
        with pytest.raises(SpecError) as caught:
            parse_spec({**base, "notify": {"webhook": bad}})
        text = str(caught.value)
        assert "notify.webhook:" in text and "Fix:" in text, text
    with pytest.raises(SpecError, match=r"'ftp://hooks.example.com' is not an http or https URL"):
        parse_spec({**base, "notify": {"webhook": "ftp://hooks.example.com/secret"}})
    with pytest.raises(SpecError, match=r"notify.webhook: is required"):
        parse_spec({**base, "notify": {}})


def test_the_callback_tells_of_diverged_and_failed_trials(
    sqlite_store: Store, hook: Hook, tmp_path: Path
) -> None:
    spec = parse_spec(
        {"name": "t", "trainable": "tests.trainables:steady", "stop": {"epochs": 2},
         "grid": {"lr": [0.1, 0.01]}, "notify": {"webhook": hook.url}}
    )  # fmt: skip
    sqlite_store.create_sweep("s", name="t", spec={}, metric="val_acc", mode="max", n_trials=3)
    writer = StoreWriter(sqlite_store, "s", poll_seconds=0.01)
    notifier = Notifier(hook.url, sweep_id="s", name="t")
    cb = StoreCallback(
        writer=writer,
        spec=spec,
        stopper=StoreStopper(writer=writer, stop=spec.stop),
        notifier=notifier,
    )
    a, b, c = _trial("a"), _trial("b", "RuntimeError: boom", tmp_path), _trial("c")
    for t in (a, b, c):
        cb.on_trial_start(0, [], t)
    cb.on_trial_result(0, [], a, {"step": 7, POINTS_KEY: [], STATUS_KEY: "diverged"})
    cb.on_trial_complete(0, [], a)
    cb.on_trial_error(0, [], b)
    cb.on_trial_result(0, [], c, {"step": 1, "epoch": 2, "val_acc": 0.9, POINTS_KEY: []})
    cb.on_trial_complete(0, [], c)  # completed: nothing to tell
    writer.close()
    notifier.close()
    assert hook.events() == ["trial_diverged", "trial_failed"]
    assert hook.posts[0]["trial"] == "a" and hook.posts[0]["config"] == {"lr": 0.1, "epochs": 2}
    assert hook.posts[1]["detail"] == "RuntimeError: boom"


# -- real sweeps -----------------------------------------------------------------------------
SPEC = """
name: alerts
trainable: tests.trainables:mixed
metric: val_acc
stop: {{epochs: 2}}
resources: {{cpu: 1}}
system_metrics: false
notify: {{webhook: "{url}"}}
fixed: {{steps_per_epoch: 5}}
grid: {{kind: {kinds}}}
"""


@pytest.mark.ray
def test_a_sweep_posts_its_diverged_and_failed_trials_and_its_end(
    hook: Hook, tmp_path: Path
) -> None:
    url = f"sqlite:///{tmp_path / 'alerts.db'}"
    spec = write_spec(tmp_path, SPEC.format(url=hook.url, kinds="[steady, diverges, raises]"))
    done = cli("run", str(spec), "--store", url, timeout=240)
    assert done.returncode == 0, done.stderr
    assert sorted(hook.events()) == ["sweep_ended", "trial_diverged", "trial_failed"]
    assert hook.events()[-1] == "sweep_ended"
    by_event = {p["event"]: p for p in hook.posts}
    with open_store(url) as store:
        (sweep,) = store.sweeps()
        trials = {t["config"]["kind"]: t for t in store.trials(sweep["id"])}
    assert by_event["sweep_ended"]["sweep"] == sweep["id"]
    assert by_event["sweep_ended"]["status"] == "completed"
    assert by_event["sweep_ended"]["counts"] == {"completed": 1, "diverged": 1, "error": 1}
    assert by_event["trial_diverged"]["trial"] == trials["diverges"]["ray_id"]
    assert by_event["trial_failed"]["trial"] == trials["raises"]["ray_id"]
    assert "boom at step 5" in by_event["trial_failed"]["detail"]


@pytest.mark.ray
def test_a_failing_webhook_does_not_disturb_the_sweep(tmp_path: Path) -> None:
    server = Hook(code=500)
    try:
        url = f"sqlite:///{tmp_path / 'alerts.db'}"
        spec = write_spec(tmp_path, SPEC.format(url=server.url, kinds="[steady, diverges]"))
        done = cli("run", str(spec), "--store", url, timeout=240)
    finally:
        server.close()
    assert done.returncode == 0, done.stderr
    assert sorted(server.events()) == ["sweep_ended", "trial_diverged"]  # tried, refused
    assert "answered 500" in done.stderr and "the sweep goes on" in done.stderr
    with open_store(url) as store:
        (sweep,) = store.sweeps()
        statuses = sorted(t["status"] for t in store.trials(sweep["id"]))
    assert sweep["status"] == "completed" and statuses == ["completed", "diverged"]
