"""Webhook alerts, against a local HTTP server each test starts: the posts a sweep's end,
failure, a diverged and a failed trial make; the spec's check of the URL; and webhooks that
refuse, answer 500 or hang, which are logged and never disturb the sweep."""

from __future__ import annotations

import email.utils
import itertools
import json
import logging
import os
import signal
import subprocess
import threading
import time
from collections.abc import Iterator, Sequence
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from runner.driver import notify
from runner.driver.callback import StoreCallback
from runner.driver.notify import Notifier
from runner.driver.stopper import StoreStopper
from runner.driver.writer import StoreWriter
from runner.errors import SpecError, SweepscopeError
from runner.protocol import POINTS_KEY, STATUS_KEY
from runner.redact import mask_url, remember_secret
from runner.spec import parse_spec, restore_webhook, stored_spec
from runner.store import Store, open_store
from tests.helpers.cli import SWEEPSCOPE, cli, cli_env, write_spec
from tests.helpers.fakes import fake_trial
from tests.helpers.paths import REPO


class Hook:
    """A webhook on 127.0.0.1: keeps each JSON body posted (and its raw bytes and arrival
    time); answers the codes of `script` first, in order, then `code`, after `delay` s
    (`slow` s for trial events)."""

    def __init__(
        self,
        code: int = 200,
        delay: float = 0.0,
        *,
        script: Sequence[tuple[int, dict[str, str]]] = (),
        slow: float = 0.0,
        port: int = 0,
    ) -> None:
        self.posts: list[dict[str, Any]] = []
        self.bodies: list[bytes] = []
        self.times: list[float] = []
        self.code, self.delay, self.slow = code, delay, slow
        self.script = list(script)
        lock = threading.Lock()
        hook = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                post = json.loads(body)
                with lock:
                    hook.times.append(time.monotonic())
                    hook.bodies.append(body)
                    hook.posts.append(post)
                    code, headers = hook.script.pop(0) if hook.script else (hook.code, {})
                time.sleep(hook.slow if post["event"].startswith("trial_") else hook.delay)
                self.send_response(code)
                for key, value in headers.items():
                    self.send_header(key, value)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_port}/hooks/T0/secret-token"
        # Polled often, so that `close` (server.shutdown) returns at once, not after 0.5 s.
        self._thread = threading.Thread(
            target=self.server.serve_forever, kwargs={"poll_interval": 0.01}, daemon=True
        )
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
    assert sorted(hook.events()) == ["sweep_ended", "trial_diverged", "trial_failed"]
    by_event = {p["event"]: p for p in hook.posts}
    diverged, failed, ended = (
        by_event[e] for e in ("trial_diverged", "trial_failed", "sweep_ended")
    )
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
    server = Hook(code=500) if kind == "500" else Hook(delay=3.0, slow=3.0)
    url = _refused_url() if kind == "refused" else server.url
    try:
        notifier = Notifier(url, sweep_id="s", name="n", timeout=0.5, budget=1.0)
        started = time.monotonic()
        with caplog.at_level(logging.WARNING, logger="runner.driver.notify"):
            notifier.trial("trial_failed", "a", "error")  # the caller never waits
            assert time.monotonic() - started < 0.1
            notifier.sweep("completed")
            notifier.close()
        # bounded, even when it hangs: the budget and a second (close's default wait)
        assert time.monotonic() - started < 1.0 + 1.0 + 0.5
        assert notifier.failed == 2 and notifier.sent == 0
        logged = "\n".join(r.getMessage() for r in caplog.records)
        assert "the sweep goes on" in logged
        assert f"http://127.0.0.1:{url.split(':')[2].split('/')[0]}" in logged
        assert "secret-token" not in logged  # the URL's path may be its token
        if kind == "500":
            assert "answered 500" in logged
    finally:
        server.close()


# -- delivery: the end first, retries, Retry-After, a bounded total -------------------------
@pytest.mark.slow  # waits out slow posts: ~3.5 s
def test_the_end_post_goes_first_and_is_not_dropped_behind_slow_trial_posts(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Six trial posts wait for a webhook that takes 2 s to answer each; the sweep ends.
    Its post goes out at once, not after 12 s of trial posts, and `close` ends in time."""
    server = Hook(slow=2.0)
    try:
        notifier = Notifier(server.url, sweep_id="s", name="n")
        for i in range(6):
            notifier.trial("trial_failed", f"t{i}", "error")
        time.sleep(0.2)  # the first trial post is in flight
        ended_at = time.monotonic()
        notifier.sweep("completed", counts={"completed": 4, "error": 6})
        with caplog.at_level(logging.WARNING, logger="runner.driver.notify"):
            notifier.close(wait=3.0)
        assert time.monotonic() - ended_at < 3.5
        assert "sweep_ended" in server.events()
        arrived = server.times[server.events().index("sweep_ended")]
        assert arrived - ended_at < 1.0  # not behind the trial posts
        assert server.events().index("sweep_ended") == 1  # only the one in flight before it
        assert notifier.sent >= 2 and notifier.sent + notifier.failed == 7
        assert "unsent posts are dropped" in caplog.text
        assert "the end of the sweep among them" not in caplog.text
    finally:
        server.close()


def test_429_is_retried_after_the_seconds_retry_after_asks(hook: Hook) -> None:
    hook.script = [(429, {"Retry-After": "2"})]
    notifier = Notifier(hook.url, sweep_id="s", name="n")
    notifier.sweep("completed")
    notifier.close()
    assert hook.events() == ["sweep_ended", "sweep_ended"]  # refused once, then taken
    assert 2.0 <= hook.times[1] - hook.times[0] < 3.0
    assert notifier.sent == 1 and notifier.failed == 0


def test_retry_after_as_an_http_date(hook: Hook) -> None:
    when = email.utils.formatdate(time.time() + 3, usegmt=True)  # whole seconds: 2..3 s away
    hook.script = [(503, {"Retry-After": when})]
    notifier = Notifier(hook.url, sweep_id="s", name="n")
    notifier.sweep("completed")
    notifier.close()
    assert len(hook.posts) == 2 and notifier.sent == 1
    assert 1.5 <= hook.times[1] - hook.times[0] < 4.0


def test_a_long_retry_after_is_capped(hook: Hook, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(notify, "MAX_RETRY_AFTER", 1.0)
    hook.script = [(429, {"Retry-After": "3600"})]
    notifier = Notifier(hook.url, sweep_id="s", name="n")
    notifier.sweep("completed")
    notifier.close()
    assert len(hook.posts) == 2 and notifier.sent == 1
    assert 1.0 <= hook.times[1] - hook.times[0] < 2.0


@pytest.mark.slow  # waits out the growing pauses: ~3.5 s
def test_5xx_is_retried_with_growing_pauses(hook: Hook) -> None:
    hook.script = [(503, {}), (502, {}), (500, {})]
    notifier = Notifier(hook.url, sweep_id="s", name="n")
    notifier.trial("trial_failed", "a", "error")
    notifier.close()
    assert hook.events() == ["trial_failed"] * 4 and notifier.sent == 1
    gaps = [b - a for a, b in itertools.pairwise(hook.times)]
    assert gaps[0] >= notify.BACKOFF and gaps[1] >= 2 * notify.BACKOFF
    assert gaps[2] >= 4 * notify.BACKOFF


def test_a_refused_connection_is_retried_until_the_webhook_is_up() -> None:
    gone = Hook()
    port, url = gone.server.server_port, gone.url
    gone.close()  # nothing listens there now ...
    later: list[Hook] = []
    starter = threading.Timer(1.2, lambda: later.append(Hook(port=port)))  # ... for 1.2 s
    starter.start()
    try:
        notifier = Notifier(url, sweep_id="s", name="n")
        notifier.sweep("failed", message="every trial failed")
        notifier.close()
        starter.join()
        (server,) = later
        assert server.events() == ["sweep_failed"] and notifier.sent == 1
    finally:
        starter.cancel()
        for server in later:
            server.close()


def test_a_4xx_other_than_429_is_not_retried(hook: Hook, caplog: pytest.LogCaptureFixture) -> None:
    hook.code = 404
    notifier = Notifier(hook.url, sweep_id="s", name="n")
    with caplog.at_level(logging.WARNING, logger="runner.driver.notify"):
        notifier.sweep("completed")
        notifier.close()
    assert len(hook.posts) == 1 and notifier.failed == 1
    assert "answered 404" in caplog.text and "secret-token" not in caplog.text


def test_retries_end_within_the_budget(hook: Hook, caplog: pytest.LogCaptureFixture) -> None:
    hook.code = 503
    notifier = Notifier(hook.url, sweep_id="s", name="n", budget=2.0)
    started = time.monotonic()
    with caplog.at_level(logging.WARNING, logger="runner.driver.notify"):
        notifier.sweep("completed")
        notifier.close()
    assert time.monotonic() - started < 2.0 + 0.5
    assert 2 <= len(hook.posts) <= 4 and notifier.sent == 0 and notifier.failed == 1
    assert f"after {len(hook.posts)} tries; the sweep goes on" in caplog.text


def test_passwords_are_masked_before_the_post_is_encoded(hook: Hook) -> None:
    """Masked after JSON encoding, a password with a quote or a non-ASCII letter no longer
    matches itself (it reads \\" and \\u00e9 there) and leaves in the post."""
    password = 'Zoë"q\\uote-pw'
    mask_url(f"postgresql+psycopg://owner:{password}@db.example/sweeps")  # the store opened
    notifier = Notifier(hook.url, sweep_id="s", name="n")
    detail = f"OperationalError: could not log in to db.example with {password}"
    notifier.trial("trial_failed", "a", "error", config={"note": password}, detail=detail)
    notifier.sweep("failed", message=f"store said: {password}")
    notifier.close()
    assert len(hook.bodies) == 2
    for body in hook.bodies:
        assert b"uote-pw" not in body, body
    failed, ended = sorted(hook.posts, key=lambda p: p["event"], reverse=True)
    assert failed["detail"].endswith("with ***") and failed["config"] == {"note": "***"}
    assert ended["message"] == "store said: ***"


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


BASE = {"name": "t", "trainable": "m:f", "stop": {"epochs": 1}, "grid": {"lr": [0.1]}}
WEBHOOK = "https://hooks.example.com/services/T0/B0/SecretToken"


def test_a_webhook_with_a_user_and_password_is_refused() -> None:
    """urllib would not send them (it cannot even resolve such a host) and its errors would
    carry them into the log: refused at spec check, shown masked, with the fix."""
    for url, shown in (
        (
            "https://bot:Hunter2Pw@hooks.example.com/services/T0",
            "https://bot:***@hooks.example.com",
        ),
        ("https://bot@hooks.example.com:8443/services/T0", "https://***@hooks.example.com:8443"),
    ):
        with pytest.raises(SpecError) as caught:
            parse_spec({**BASE, "notify": {"webhook": url}})
        text = str(caught.value)
        assert text.startswith("<spec>: problem: notify.webhook: "), text
        assert repr(shown) in text and "Fix: remove the user:password@ part" in text, text
        assert "Hunter2Pw" not in text and "services" not in text.split("Fix:")[0], text


def test_the_store_keeps_the_webhook_as_scheme_and_host() -> None:
    spec = parse_spec({**BASE, "notify": {"webhook": WEBHOOK}})
    stored = stored_spec(spec)
    assert stored["notify"] == {"webhook": "https://hooks.example.com/***"}
    assert "SecretToken" not in json.dumps(stored)
    assert stored_spec(parse_spec(stored)) == stored  # the stored form parses, idempotent
    assert {k: v for k, v in stored.items() if k != "notify"} == {
        k: v for k, v in spec.model_dump(mode="json").items() if k != "notify"
    }
    assert stored_spec(parse_spec(BASE)) == parse_spec(BASE).model_dump(mode="json")


def test_resume_takes_the_webhook_from_the_spec_file_or_the_environment() -> None:
    full = parse_spec({**BASE, "notify": {"webhook": WEBHOOK}})
    stored = parse_spec(stored_spec(full))
    # --spec: the file's full URL
    spec, note = restore_webhook(stored, full, {})
    assert spec == full and note is None
    # $SWEEPSCOPE_WEBHOOK, when no --spec
    spec, note = restore_webhook(stored, None, {notify.WEBHOOK_ENV: WEBHOOK})
    assert spec == full and note is None
    # neither: no alerts for this run, said in one line, with how to turn them on
    spec, note = restore_webhook(stored, None, {})
    assert spec.notify is None and note is not None and "\n" not in note
    assert "alerts are off for this run" in note and "https://hooks.example.com/***" in note
    assert "--spec" in note and notify.WEBHOOK_ENV in note
    # a variable for another webhook, or not a URL at all: refused, masked
    for value, problem in (
        ("https://other.example.org/services/T9/OtherToken", "points at 'https://other.example"),
        ("hooks.example.com/x", "is not an http or https URL"),
    ):
        with pytest.raises(SpecError) as caught:
            restore_webhook(stored, None, {notify.WEBHOOK_ENV: value})
        text = str(caught.value)
        assert text.startswith(f"${notify.WEBHOOK_ENV}: problem: ") and problem in text, text
        assert "OtherToken" not in text and "Fix:" in text
    # nothing to restore: a sweep without alerts, or a store from before the masking
    assert restore_webhook(parse_spec(BASE), None, {notify.WEBHOOK_ENV: WEBHOOK})[0].notify is None
    assert restore_webhook(full, None, {}) == (full, None)
    rotated = parse_spec({**BASE, "notify": {"webhook": WEBHOOK.replace("Secret", "New")}})
    assert restore_webhook(full, rotated, {}) == (rotated, None)  # the file's URL wins
    assert restore_webhook(stored, rotated, {}) == (rotated, None)


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
    a, b, c = fake_trial("a"), fake_trial("b", "RuntimeError: boom", tmp_path), fake_trial("c")
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
    assert set(server.events()) == {"sweep_ended", "trial_diverged"}  # tried, refused ...
    assert server.events().count("sweep_ended") > 1  # ... and tried again, within the budget
    assert "answered 500" in done.stderr and "tries; the sweep goes on" in done.stderr
    with open_store(url) as store:
        (sweep,) = store.sweeps()
        statuses = sorted(t["status"] for t in store.trials(sweep["id"]))
    assert sweep["status"] == "completed" and statuses == ["completed", "diverged"]


RESUMABLE = """
name: alerts
trainable: tests.trainables:checkpointed
metric: val_acc
stop: {{epochs: 4}}
max_concurrent: 1
resources: {{cpu: 1}}
system_metrics: false
notify: {{webhook: "{url}"}}
fixed: {{steps_per_epoch: 10, sleep: 0.1}}
grid: {{scale: [1.0, 2.0, 3.0]}}
"""


def _interrupted(
    args: list[str], url: str, env: dict[str, str]
) -> subprocess.CompletedProcess[str]:
    """Run `sweepscope ARGS` until the sweep's trials have made some new progress, then
    press Ctrl-C (SIGINT to the driver, as a terminal does)."""

    def steps() -> int:
        try:
            with open_store(url) as store:
                sweeps = store.sweeps()
                trials = store.trials(sweeps[0]["id"]) if sweeps else []
        except SweepscopeError:
            return 0
        return sum(t["last_step"] or 0 for t in trials)

    before = steps()
    proc = subprocess.Popen(
        [SWEEPSCOPE, *args], cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        text=True, start_new_session=True,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 120
        while steps() < before + 10:
            assert proc.poll() is None, proc.communicate()
            assert time.monotonic() < deadline, "no progress in 120 s"
            time.sleep(0.2)
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    return subprocess.CompletedProcess(proc.args, proc.returncode, out, err)


@pytest.mark.ray
def test_the_store_never_holds_the_webhook_token_and_resume_asks_for_it(
    hook: Hook, tmp_path: Path
) -> None:
    db = tmp_path / "alerts.db"
    url = f"sqlite:///{db}"
    spec = write_spec(tmp_path, RESUMABLE.format(url=hook.url))
    env = {k: v for k, v in cli_env().items() if k != notify.WEBHOOK_ENV}
    run = _interrupted(["run", str(spec), "--store", url], url, env)
    assert run.returncode == 130, run.stderr
    with open_store(url) as store:
        (sweep,) = store.sweeps()
    port = hook.url.split(":")[2].split("/")[0]
    assert sweep["status"] == "stopped"
    assert sweep["spec"]["notify"] == {"webhook": f"http://127.0.0.1:{port}/***"}
    for path in tmp_path.glob("alerts.db*"):  # the database, its WAL and journal
        assert b"secret-token" not in path.read_bytes(), path
    assert [(p["event"], p["status"]) for p in hook.posts] == [("sweep_ended", "stopped")]

    resume = ["resume", sweep["id"], "--store", url]
    # $SWEEPSCOPE_WEBHOOK for another webhook, or a --spec whose webhook moved: refused
    wrong = cli(*resume, env={**env, notify.WEBHOOK_ENV: "https://other.example/T/OtherToken"})
    assert wrong.returncode == 2, wrong.stderr
    assert "points at 'https://other.example/***'" in wrong.stderr
    assert "OtherToken" not in wrong.stderr
    moved = tmp_path / "moved.yaml"  # the same spec, but the webhook's host changed
    moved.write_text(RESUMABLE.format(url=hook.url.replace("127.0.0.1", "localhost")))
    refused = cli(*resume, "--spec", str(moved), env=env)
    assert refused.returncode == 2 and "notify: differs from the spec" in refused.stderr
    assert "secret-token" not in refused.stderr and f"localhost:{port}/***" in refused.stderr

    # neither --spec nor the variable: it resumes, says in one line that alerts are off
    quiet = _interrupted(resume, url, env)
    assert quiet.returncode == 130, quiet.stderr
    (note,) = [line for line in quiet.stderr.splitlines() if "alerts are off" in line]
    assert f"http://127.0.0.1:{port}/***" in note and "--spec" in note
    assert len(hook.posts) == 1  # nothing posted to the masked URL

    # --spec with the same spec: not a changed spec, although the store's webhook is masked
    done = cli(*resume, "--spec", str(spec), env=env, timeout=240)
    assert done.returncode == 0, done.stderr
    assert "alerts are off" not in done.stderr
    assert [(p["event"], p["status"]) for p in hook.posts][1:] == [("sweep_ended", "completed")]
    assert hook.posts[1]["counts"] == {"completed": 3}
