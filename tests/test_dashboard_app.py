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
from tests.helpers.apptest import chart, open_page, texts
from tests.helpers.faults import PrivatePostgres
from tests.test_dashboard_data import make_sweep


@pytest.fixture
def filled(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, fresh_dashboard: None
) -> Iterator[Store]:
    url = f"sqlite:///{tmp_path / 'store.db'}"
    monkeypatch.setenv("SWEEPSCOPE_STORE", url)
    with open_store(url, create=True) as s:
        make_sweep(s, steps=200, running=[0, 6])
        yield s


# -- messages instead of tracebacks ---------------------------------------------------------
def test_missing_store_says_how_to_fix_and_waits(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, fresh_dashboard: None
) -> None:
    monkeypatch.setenv("SWEEPSCOPE_STORE", f"sqlite:///{tmp_path / 'nothing.db'}")
    at = open_page()
    shown = texts(at, "info")  # the page waits for a sweep to make it (browser test: it does)
    assert "Waiting for a sweep" in shown and "does not exist" in shown and "Fix:" in shown
    assert not texts(at, "error")
    assert not (tmp_path / "nothing.db").exists()  # the dashboard never creates a store


def test_store_that_does_not_connect(
    monkeypatch: pytest.MonkeyPatch, fresh_dashboard: None
) -> None:
    monkeypatch.setenv("SWEEPSCOPE_STORE", "postgresql+psycopg://nobody:pw-x1y2z3@127.0.0.1:9/none")
    at = open_page()
    shown = texts(at, "warning")
    assert "The store is unreachable" in shown and "OperationalError" in shown
    assert "pw-x1y2z3" not in shown + texts(at, "error") + texts(at, "caption")


@pytest.mark.postgres
def test_store_going_away_while_the_page_is_open(
    pg: PrivatePostgres, monkeypatch: pytest.MonkeyPatch, fresh_dashboard: None
) -> None:
    """A real PostgreSQL server stopped under an open dashboard: every page says the store
    is unreachable (no traceback), and shows the sweep again once the server is back."""
    url = pg.url()
    monkeypatch.setenv("SWEEPSCOPE_STORE", url)
    with open_store(url, create=True) as s:
        make_sweep(s, steps=20)
    assert not open_page("live").warning
    pg.stop()
    st.cache_data.clear()  # the next refresh, not a cached read
    for page in (None, "live", "compare", "trial", "hparams"):
        at = open_page(page)
        assert "The store is unreachable" in texts(at, "warning"), page
    pg.start()
    st.cache_data.clear()
    at = open_page("live")
    assert not at.warning and len(at.dataframe[0].value) == 12


def test_store_url_that_is_not_a_url(
    monkeypatch: pytest.MonkeyPatch, fresh_dashboard: None
) -> None:
    monkeypatch.setenv("SWEEPSCOPE_STORE", "mysql://x@y/z")
    assert "does not support" in texts(open_page(), "error")


def test_empty_store(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, fresh_dashboard: None
) -> None:
    url = f"sqlite:///{tmp_path / 'store.db'}"
    open_store(url, create=True).close()
    monkeypatch.setenv("SWEEPSCOPE_STORE", url)
    assert "holds no sweeps yet" in texts(open_page(), "info")
    assert "holds no sweeps yet" in texts(open_page("live"), "info")


def test_unknown_sweep(filled: Store) -> None:
    with open_store(filled.url) as s:
        s.create_sweep("other", name="other", spec={}, metric="val_acc", mode="max", n_trials=1)
    at = open_page("live", sweep="nope")
    assert "No sweep 'nope'" in texts(at, "error") and "Showing other instead" in texts(at, "error")
    at.selectbox(key=ui.SWEEP_KEY).set_value("bn_demo-1").run()
    assert not at.error and len(at.dataframe[0].value) == 12


def test_sweep_without_points(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, fresh_dashboard: None
) -> None:
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
        assert "no trials yet" in texts(open_page("live"), "info")
        s.add_trial("fresh", "a", {"batch_norm": True})
        s.add_trial("fresh", "b", {"batch_norm": False})
        for page in ("live", "compare", "hparams", "trial"):
            at = open_page(page)
            shown = texts(at, "info")
            assert "No points yet" in shown or "Nothing to draw" in shown, page


# -- pages ----------------------------------------------------------------------------------
def test_sweeps_page(filled: Store) -> None:
    at = open_page()
    table = at.dataframe[0].value
    assert list(table["sweep"]) == ["bn_demo-1"]
    assert table.loc[0, "progress"] == "10 done · 2 running · 1 failed of 12"


def _panels(at: AppTest) -> dict[str, dict]:
    """The live page's panels: metric -> plotly spec."""
    found = {}
    for element in at.get("plotly_chart"):
        if "live_chart_" in element.proto.id:
            metric = element.proto.id.split("live_chart_", 1)[1]
            found[metric] = json.loads(element.proto.spec)
    return found


def _targets(spec: dict) -> dict:
    """The invisible markers along the curves that carry the hover and take clicks."""
    return next(t for t in spec["data"] if t.get("name") == "click to highlight")


def test_live_page_panel_grid_table_and_filters(filled: Store) -> None:
    at = open_page("live", sweep="bn_demo-1")
    table = at.dataframe[0].value
    assert len(table) == 12 and table.loc[0, "status"] == "running"
    assert table.loc[0, "steps"] == 100
    panels = _panels(at)
    assert list(panels) == ["train_loss", "val_loss", "val_acc"]  # every metric, losses first
    train = panels["train_loss"]
    names = {t["name"] for t in train["data"] if t.get("mode") == "lines"}
    assert {"BN on", "BN off"} <= names
    best = [t for t in train["data"] if str(t.get("name", "")).startswith("best so far")]
    assert len(best) == 1 and best[0]["line"]["width"] > 2  # the best trial, drawn thick
    hover = " ".join(_targets(train)["hovertext"])
    assert "lr=0.1" in hover and "batch_norm=True" in hover  # the hover names the settings
    markers = {t["name"] for t in train["data"] if t.get("mode") == "markers"}
    assert {"diverged", "error", "pruned", "stopped by user"} <= markers
    # per-step curves are smoothed by default, the raw ones faint behind (12 trials: only
    # the best trial's raw curve); validation metrics, reported every 50 steps, are not
    assert "EMA" in texts(at, "caption")
    raw = [t for t in train["data"] if t.get("opacity", 1) < 0.2 and t.get("mode") == "lines"]
    assert len(raw) == 1
    assert not [t for t in panels["val_acc"]["data"] if t.get("opacity", 1) < 0.2]
    at.multiselect(key="q_f_batch_norm").set_value([True]).run()
    assert len(at.dataframe[0].value) == 6
    hover = _targets(_panels(at)["val_acc"])["hovertext"]
    assert hover and all("batch_norm=True" in h for h in hover)
    at.selectbox(key="q_colour").set_value("lr").run()
    names = {t["name"] for t in _panels(at)["val_loss"]["data"] if t.get("mode") == "lines"}
    assert {"lr=0.1", "lr=0.01", "lr=0.001"} <= names
    at.slider(key="q_smooth").set_value(0.0).run()
    train = _panels(at)["train_loss"]
    assert not [t for t in train["data"] if t.get("opacity", 1) < 0.2]  # smoothing off: no raw


def test_live_page_log_axis_auto_and_per_panel(filled: Store) -> None:
    """Losses spanning decades get a log axis by themselves; each panel can be switched."""
    trial = filled.trials("bn_demo-1")[1]["id"]
    filled.add_points(trial, [("val_loss", 400 + k, 10.0**-k, 2e6) for k in range(1, 6)])
    at = open_page("live", sweep="bn_demo-1")
    assert _panels(at)["val_loss"]["layout"]["yaxis"]["type"] == "log"
    assert _panels(at)["val_acc"]["layout"]["yaxis"]["type"] == "linear"
    at.button_group(key="q_y_val_loss").set_value("linear").run()
    at.button_group(key="q_y_val_acc").set_value("log").run()
    panels = _panels(at)
    assert panels["val_loss"]["layout"]["yaxis"]["type"] == "linear"
    assert panels["val_acc"]["layout"]["yaxis"]["type"] == "log"


def test_live_page_a_spike_does_not_flatten_the_panel(filled: Store) -> None:
    trial = filled.trials("bn_demo-1")[1]["id"]
    filled.add_points(trial, [("val_acc", 301, -500.0, 2e6)])  # one absurd value
    at = open_page("live", sweep="bn_demo-1")
    layout = _panels(at)["val_acc"]["layout"]["yaxis"]
    low, high = layout["range"]
    assert layout["type"] == "linear" and -1.0 < low < 0.5 and 0.9 < high < 1.2
    edge = [t for t in _panels(at)["val_acc"]["data"] if t.get("name") == "beyond the axis"]
    assert len(edge) == 1 and edge[0]["y"] == [low]  # still shown, at the edge


def test_live_page_groups_with_a_band(filled: Store) -> None:
    at = open_page("live", sweep="bn_demo-1", q_group="batch_norm", q_band="min–max")  # as shown
    assert not at.selectbox(key="q_band").disabled
    spec = _panels(at)["val_acc"]
    fills = [t for t in spec["data"] if t.get("fill") == "toself"]
    centres = [t["name"] for t in spec["data"] if "median, min–max" in str(t.get("name"))]
    assert len(fills) == 2 and sorted(centres) == [
        "BN off (median, min–max)",
        "BN on (median, min–max)",
    ]
    assert "grouped by batch_norm: median, min–max" in texts(at, "caption")


def test_live_page_state_comes_from_the_url(filled: Store) -> None:
    """Opening a copied URL shows the same view: every q_ widget takes the link's value."""
    third = filled.trials("bn_demo-1")[2]
    trial, number = third["id"], third["number"]  # the URL and the legend name the number
    at = open_page(
        "live",
        sweep="bn_demo-1",
        q_colour="lr",
        q_smooth="0.5",
        q_x="wall time",
        q_trials=str(number),
        q_f_status="completed",
        q_y_val_acc="log",
    )
    assert at.selectbox(key="q_colour").value == "lr"
    assert at.slider(key="q_smooth").value == 0.5
    assert at.multiselect(key="q_trials").value == [trial]
    assert set(at.dataframe[0].value["status"]) == {"completed"}
    panels = _panels(at)
    assert panels["val_acc"]["layout"]["yaxis"]["type"] == "log"
    assert (
        panels["val_acc"]["layout"]["xaxis"]["title"]["text"] == "seconds since the trial started"
    )
    thick = [t for t in panels["val_loss"]["data"] if t.get("name") == f"trial {number}"]
    assert len(thick) == 1 and thick[0]["line"]["width"] > 2  # highlighted in every panel
    assert "EMA 0.5" in texts(at, "caption")
    assert not at.toast


def test_live_page_ignores_stale_url_values_with_a_notice(filled: Store) -> None:
    at = open_page("live", sweep="bn_demo-1", q_colour="momentum", q_smooth="7", q_trials="999")
    notices = texts(at, "toast")
    assert "q_colour=momentum" in notices and "q_smooth=7" in notices
    assert "q_trials=999" in notices and "no such trial" in notices
    assert at.selectbox(key="q_colour").value == "batch_norm"  # the default instead
    assert at.multiselect(key="q_trials").value == []
    assert len(_panels(at)) == 3


def test_live_page_announces_trials_that_end_badly_once(filled: Store) -> None:
    at = open_page("live", sweep="bn_demo-1")
    assert not at.toast  # trials that ended before the page opened: already in the table
    running = filled.trials("bn_demo-1")[0]
    filled.set_trial_status(running["id"], "diverged", detail="loss is inf", last_step=100)
    at.run()
    assert f"Trial {running['id']} diverged at step 100" in texts(at, "toast")
    assert "lr=0.1" in texts(at, "toast")
    at.run()
    assert not at.toast  # once per trial


def test_live_page_without_points_for_the_filter(filled: Store) -> None:
    at = open_page("live", sweep="bn_demo-1", q_f_status="pending")
    assert len(at.dataframe[0].value) == 0 and not _panels(at)
    assert "validation accuracy: no points from the trials shown" in texts(at, "caption")


def test_live_page_reads_only_new_points(filled: Store) -> None:
    at = open_page("live", sweep="bn_demo-1")
    points = ui._points(filled.url, "bn_demo-1")
    seen, last = points.n_points, points.last_id
    trial = filled.trials("bn_demo-1")[0]["id"]
    filled.add_points(trial, [("train_loss", 101, 0.3, 2e6), ("train_loss", 102, 0.2, 2e6)])
    at.run()
    assert points.n_points == seen + 2 and points.last_id > last
    assert at.dataframe[0].value.loc[0, "steps"] == 102


def test_stop_trial_from_the_live_page(filled: Store) -> None:
    at = open_page("live", sweep="bn_demo-1")
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
    at = open_page("live", sweep="bn_demo-1")
    at.button(key="live_stop_sweep").click().run()
    at.button(key="live_confirm_no").click().run()
    assert filled.stop_requests("bn_demo-1")[0] is False
    at.button(key="live_stop_sweep").click().run()
    at.button(key="live_confirm_yes").click().run()
    assert filled.stop_requests("bn_demo-1")[0] is True


def test_stopping_a_finished_trial_is_a_no_op(filled: Store) -> None:
    done = filled.trials("bn_demo-1")[1]
    at = open_page("trial", sweep="bn_demo-1")
    at.selectbox(key="trial_id").set_value(done["id"]).run()
    assert "has finished (completed); there is nothing to stop" in texts(at, "caption")
    assert at.button(key="trial_stop_trial").disabled
    outcome = control.request_stop(
        filled, "bn_demo-1", done["id"], permission=control.stop_permission("127.0.0.1")
    )
    assert not outcome.changed and "already finished (completed)" in outcome.message


def test_stop_disabled_on_a_public_address_without_token(filled: Store) -> None:
    config.set_option("server.address", "0.0.0.0")
    at = open_page("live", sweep="bn_demo-1")
    assert "SWEEPSCOPE_TOKEN is not set" in texts(at, "info")
    assert not [b for b in at.button if b.key == "live_stop_trial"]


def test_stop_on_a_public_address_needs_the_token(
    filled: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    token = "s3cret-long-enough-token"
    monkeypatch.setenv(control.TOKEN_ENV, token)
    config.set_option("server.address", "0.0.0.0")
    at = open_page("live", sweep="bn_demo-1")
    at.text_input(key=ui.TOKEN_KEY).input("wrong").run()
    at.button(key="live_stop_trial").click().run()
    at.button(key="live_confirm_yes").click().run()
    assert "does not match" in texts(at, "error")
    assert filled.stop_requests("bn_demo-1") == (False, set())
    at.text_input(key=ui.TOKEN_KEY).input(token).run()
    at.button(key="live_stop_trial").click().run()
    at.button(key="live_confirm_yes").click().run()
    assert len(filled.stop_requests("bn_demo-1")[1]) == 1


def test_compare_page(filled: Store) -> None:
    at = open_page("compare", sweep="bn_demo-1")
    metrics = {m.label: m.value for m in at.metric}
    assert set(metrics) == {"mean BN on − BN off", "speed-up of BN on"}
    assert float(metrics["speed-up of BN on"].rstrip("×")) > 1
    assert "6 pairs that differ only in batch_norm" in texts(at, "caption")
    for key in ("cmp_band", "cmp_pairs", "cmp_diffs", "cmp_speed", "cmp_lr"):
        chart(at, key)
    at.selectbox(key="q_cmp_factor").set_value("lr").run()
    assert "4 pairs that differ only in lr" in texts(at, "caption")
    at.selectbox(key="q_cmp_b").set_value(0.001).run()  # the same as A
    assert "Fix: pick two different values" in texts(at, "warning")


def test_trial_page(filled: Store) -> None:
    errored = filled.trials("bn_demo-1")[5]
    at = open_page("trial", sweep="bn_demo-1")
    at.selectbox(key="trial_id").set_value(errored["id"]).run()
    assert "CUDA out of memory" in at.code[0].value
    events = at.dataframe[0].value
    assert list(events["status"]) == ["pending", "running", "error"]
    assert {m.label: m.value for m in at.metric}["Node"] == "testhost"
    chart(at, "trial_chart")


def test_hparams_page(filled: Store) -> None:
    at = open_page("hparams", sweep="bn_demo-1")
    spec = chart(at, "hp_parcoords")
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
    token = "t" * control.TOKEN_MIN_LENGTH
    on = control.stop_permission("0.0.0.0", token)
    assert on.needs_token and on.accepts(token) and not on.accepts(token + "2")
    assert not on.accepts(None)
    # Streamlit started without `sweepscope dashboard` (which refuses a short token): the
    # page itself keeps the controls off, and says why without showing the token.
    short = control.stop_permission("0.0.0.0", "Zq9-short")
    assert not short.enabled and not short.accepts("Zq9-short")
    assert "shorter than 16 characters" in short.reason and "Zq9" not in short.reason
    assert control.stop_permission("127.0.0.1", "Zq9-short").accepts(None)  # loopback
    with pytest.raises(PermissionError, match="SWEEPSCOPE_TOKEN is not set"):
        control.request_stop(None, "s", 1, permission=off)  # type: ignore[arg-type]
