"""The pages, run by streamlit.testing.v1.AppTest against a temporary SQLite store."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
import streamlit as st
from streamlit import config
from streamlit.testing.v1 import AppTest

from dashboard import control, ui
from runner.store import Store, open_store
from tests.faults import PrivatePostgres
from tests.test_dashboard_data import make_sweep

APP = Path(__file__).resolve().parents[1] / "dashboard" / "app.py"


@pytest.fixture
def bind(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Each test starts from fresh caches, bound to loopback, without a token."""
    monkeypatch.delenv(control.TOKEN_ENV, raising=False)
    before = config.get_option("server.address")
    config.set_option("server.address", "127.0.0.1")
    st.cache_data.clear()
    st.cache_resource.clear()
    try:
        yield
    finally:
        st.cache_data.clear()
        st.cache_resource.clear()  # closes the stores the app opened (on_release)
        config.set_option("server.address", before)


@pytest.fixture
def filled(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, bind: None) -> Iterator[Store]:
    url = f"sqlite:///{tmp_path / 'store.db'}"
    monkeypatch.setenv("SWEEPSCOPE_STORE", url)
    with open_store(url, create=True) as s:
        make_sweep(s, steps=200, running=[0, 6])
        yield s


def app(page: str | None = None, **query: str) -> AppTest:
    at = AppTest.from_file(str(APP), default_timeout=60)
    at.query_params.update(query)
    at.run()
    if page is not None:
        at.switch_page(f"views/{page}.py").run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def texts(at: AppTest, kind: str) -> str:
    return " | ".join(str(e.value) for e in getattr(at, kind))


# -- messages instead of tracebacks ---------------------------------------------------------
def test_missing_store_says_how_to_fix(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, bind: None
) -> None:
    monkeypatch.setenv("SWEEPSCOPE_STORE", f"sqlite:///{tmp_path / 'nothing.db'}")
    at = app()
    assert "does not exist" in texts(at, "error") and "Fix:" in texts(at, "error")
    assert not (tmp_path / "nothing.db").exists()  # the dashboard never creates a store


def test_store_that_does_not_connect(monkeypatch: pytest.MonkeyPatch, bind: None) -> None:
    monkeypatch.setenv("SWEEPSCOPE_STORE", "postgresql+psycopg://nobody:pw-x1y2z3@127.0.0.1:9/none")
    at = app()
    shown = texts(at, "warning")
    assert "The store is unreachable" in shown and "OperationalError" in shown
    assert "pw-x1y2z3" not in shown + texts(at, "error") + texts(at, "caption")


@pytest.mark.postgres
def test_store_going_away_while_the_page_is_open(
    pg: PrivatePostgres, monkeypatch: pytest.MonkeyPatch, bind: None
) -> None:
    """A real PostgreSQL server stopped under an open dashboard: every page says the store
    is unreachable (no traceback), and shows the sweep again once the server is back."""
    url = pg.url()
    monkeypatch.setenv("SWEEPSCOPE_STORE", url)
    with open_store(url, create=True) as s:
        make_sweep(s, steps=20)
    assert not app("live").warning
    pg.stop()
    st.cache_data.clear()  # the next refresh, not a cached read
    for page in (None, "live", "compare", "trial", "hparams"):
        at = app(page)
        assert "The store is unreachable" in texts(at, "warning"), page
    pg.start()
    st.cache_data.clear()
    at = app("live")
    assert not at.warning and len(at.dataframe[0].value) == 12


def test_store_url_that_is_not_a_url(monkeypatch: pytest.MonkeyPatch, bind: None) -> None:
    monkeypatch.setenv("SWEEPSCOPE_STORE", "mysql://x@y/z")
    assert "does not support" in texts(app(), "error")


def test_empty_store(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, bind: None) -> None:
    url = f"sqlite:///{tmp_path / 'store.db'}"
    open_store(url, create=True).close()
    monkeypatch.setenv("SWEEPSCOPE_STORE", url)
    assert "holds no sweeps yet" in texts(app(), "info")
    assert "holds no sweeps yet" in texts(app("live"), "info")


def test_unknown_sweep(filled: Store) -> None:
    with open_store(filled.url) as s:
        s.create_sweep("other", name="other", spec={}, metric="val_acc", mode="max", n_trials=1)
    at = app("live", sweep="nope")
    assert "No sweep 'nope'" in texts(at, "error") and "Showing other instead" in texts(at, "error")
    at.selectbox(key=ui.SWEEP_KEY).set_value("bn_demo-1").run()
    assert not at.error and len(at.dataframe[0].value) == 12


def test_sweep_without_points(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, bind: None) -> None:
    url = f"sqlite:///{tmp_path / 'store.db'}"
    monkeypatch.setenv("SWEEPSCOPE_STORE", url)
    with open_store(url, create=True) as s:
        s.create_sweep(
            "fresh",
            name="fresh",
            spec={"grid": {"batch_norm": [True, False]}},
            metric="val_acc",
            mode="max",
            n_trials=2,
        )
        assert "no trials yet" in texts(app("live"), "info")
        s.add_trial("fresh", "a", {"batch_norm": True})
        s.add_trial("fresh", "b", {"batch_norm": False})
        for page in ("live", "compare", "hparams", "trial"):
            at = app(page)
            shown = texts(at, "info")
            assert "No points yet" in shown or "Nothing to draw" in shown, page


# -- pages ----------------------------------------------------------------------------------
def test_sweeps_page(filled: Store) -> None:
    at = app()
    table = at.dataframe[0].value
    assert list(table["sweep"]) == ["bn_demo-1"]
    assert table.loc[0, "progress"] == "10 done · 2 running · 1 failed of 12"


def _chart(at: AppTest, key: str) -> dict:
    charts = [c for c in at.get("plotly_chart") if c.proto.id.endswith(key) or key in c.proto.id]
    assert charts, f"no chart {key}"
    return json.loads(charts[0].proto.spec)


def test_live_page_table_curves_and_filters(filled: Store) -> None:
    at = app("live", sweep="bn_demo-1")
    table = at.dataframe[0].value
    assert len(table) == 12 and table.loc[0, "status"] == "running"
    assert table.loc[0, "steps"] == 100
    spec = _chart(at, "live_chart")
    lines = [t for t in spec["data"] if t["mode"] == "lines"]
    assert {t["type"] for t in spec["data"]} == {"scattergl"}
    assert {t["name"] for t in lines} == {"BN on", "BN off"}
    markers = {t["name"] for t in spec["data"] if t["mode"] == "markers"}
    assert markers == {"diverged", "error", "pruned", "stopped by user"}
    at.multiselect(key="live_f_batch_norm").set_value([True]).run()
    assert len(at.dataframe[0].value) == 6
    at.selectbox(key="live_colour").set_value("lr").run()
    names = {t["name"] for t in _chart(at, "live_chart")["data"] if t["mode"] == "lines"}
    assert names == {"lr=0.1", "lr=0.01", "lr=0.001"}
    at.selectbox(key="live_metric").set_value("val_acc").run()
    at.toggle(key="live_log").set_value(True).run()
    spec = _chart(at, "live_chart")
    assert spec["layout"]["yaxis"]["type"] == "log"
    assert spec["layout"]["yaxis"]["title"]["text"] == "val_acc"


def test_live_page_reads_only_new_points(filled: Store) -> None:
    at = app("live", sweep="bn_demo-1")
    points = ui._points(filled.url, "bn_demo-1")
    seen, last = points.n_points, points.last_id
    trial = filled.trials("bn_demo-1")[0]["id"]
    filled.add_points(trial, [("train_loss", 101, 0.3, 2e6), ("train_loss", 102, 0.2, 2e6)])
    at.run()
    assert points.n_points == seen + 2 and points.last_id > last
    assert at.dataframe[0].value.loc[0, "steps"] == 102


def test_stop_trial_from_the_live_page(filled: Store) -> None:
    at = app("live", sweep="bn_demo-1")
    running = filled.trials("bn_demo-1")[6]
    at.selectbox(key="live_trial").set_value(running["id"]).run()
    at.button(key="live_stop_trial").click().run()
    assert "Stop trial" in texts(at, "warning")
    assert filled.stop_requests("bn_demo-1") == (False, set())  # not before confirming
    at.button(key="live_confirm_yes").click().run()
    assert filled.stop_requests("bn_demo-1") == (False, {running["ray_id"]})
    assert "Stop requested for trial" in texts(at, "success")
    at.button(key="live_stop_trial").click().run()  # again: idempotent
    at.button(key="live_confirm_yes").click().run()
    assert filled.stop_requests("bn_demo-1") == (False, {running["ray_id"]})


def test_stop_sweep_needs_confirmation_and_cancel_works(filled: Store) -> None:
    filled.heartbeat("bn_demo-1")
    at = app("live", sweep="bn_demo-1")
    at.button(key="live_stop_sweep").click().run()
    at.button(key="live_confirm_no").click().run()
    assert filled.stop_requests("bn_demo-1")[0] is False
    at.button(key="live_stop_sweep").click().run()
    at.button(key="live_confirm_yes").click().run()
    assert filled.stop_requests("bn_demo-1")[0] is True


def test_stopping_a_finished_trial_is_a_no_op(filled: Store) -> None:
    done = filled.trials("bn_demo-1")[1]
    at = app("trial", sweep="bn_demo-1")
    at.selectbox(key="trial_id").set_value(done["id"]).run()
    assert "has finished (completed); there is nothing to stop" in texts(at, "caption")
    assert at.button(key="trial_stop_trial").disabled
    outcome = control.request_stop(
        filled, "bn_demo-1", done["id"], permission=control.stop_permission("127.0.0.1")
    )
    assert not outcome.changed and "already finished (completed)" in outcome.message


def test_stop_disabled_on_a_public_address_without_token(filled: Store) -> None:
    config.set_option("server.address", "0.0.0.0")
    at = app("live", sweep="bn_demo-1")
    assert "SWEEPSCOPE_TOKEN is not set" in texts(at, "info")
    assert not [b for b in at.button if b.key == "live_stop_trial"]


def test_stop_on_a_public_address_needs_the_token(
    filled: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(control.TOKEN_ENV, "s3cret")
    config.set_option("server.address", "0.0.0.0")
    at = app("live", sweep="bn_demo-1")
    at.text_input(key=ui.TOKEN_KEY).input("wrong").run()
    at.button(key="live_stop_trial").click().run()
    at.button(key="live_confirm_yes").click().run()
    assert "does not match" in texts(at, "error")
    assert filled.stop_requests("bn_demo-1") == (False, set())
    at.text_input(key=ui.TOKEN_KEY).input("s3cret").run()
    at.button(key="live_stop_trial").click().run()
    at.button(key="live_confirm_yes").click().run()
    assert len(filled.stop_requests("bn_demo-1")[1]) == 1


def test_compare_page(filled: Store) -> None:
    at = app("compare", sweep="bn_demo-1")
    metrics = {m.label: m.value for m in at.metric}
    assert set(metrics) == {"mean BN on − BN off", "speed-up of BN on"}
    assert float(metrics["speed-up of BN on"].rstrip("×")) > 1
    assert "6 pairs that differ only in batch_norm" in texts(at, "caption")
    for key in ("cmp_band", "cmp_pairs", "cmp_diffs", "cmp_speed", "cmp_lr"):
        _chart(at, key)
    at.selectbox(key="cmp_factor").set_value("lr").run()
    assert "4 pairs that differ only in lr" in texts(at, "caption")
    at.selectbox(key="cmp_b_lr").set_value(0.001).run()  # the same as A
    assert "Fix: pick two different values" in texts(at, "warning")


def test_trial_page(filled: Store) -> None:
    errored = filled.trials("bn_demo-1")[5]
    at = app("trial", sweep="bn_demo-1")
    at.selectbox(key="trial_id").set_value(errored["id"]).run()
    assert "CUDA out of memory" in at.code[0].value
    events = at.dataframe[0].value
    assert list(events["status"]) == ["pending", "running", "error"]
    assert {m.label: m.value for m in at.metric}["Node"] == "testhost"
    _chart(at, "trial_chart")


def test_hparams_page(filled: Store) -> None:
    at = app("hparams", sweep="bn_demo-1")
    spec = _chart(at, "hp_parcoords")
    labels = [d["label"] for d in spec["data"][0]["dimensions"]]
    assert labels == ["batch_norm", "log10 lr", "seed", "val_acc"]  # the store sorts keys


# -- the stop permission ----------------------------------------------------------------------
@pytest.mark.parametrize(
    "host,loopback",
    [
        ("127.0.0.1", True),
        ("localhost", True),
        ("::1", True),
        ("[::1]", True),
        ("0.0.0.0", False),
        ("192.168.1.4", False),
        ("", False),
        (None, False),
        ("example.org", False),
    ],
)
def test_is_loopback(host: str | None, loopback: bool) -> None:
    assert control.is_loopback(host) is loopback


def test_stop_permission() -> None:
    assert control.stop_permission("127.0.0.1", "").accepts(None)
    off = control.stop_permission("0.0.0.0", "")
    assert not off.enabled and "SWEEPSCOPE_TOKEN is not set" in off.reason
    on = control.stop_permission("0.0.0.0", "tok")
    assert on.needs_token and on.accepts("tok") and not on.accepts("tok2") and not on.accepts(None)
    with pytest.raises(PermissionError, match="SWEEPSCOPE_TOKEN is not set"):
        control.request_stop(None, "s", 1, permission=off)  # type: ignore[arg-type]
