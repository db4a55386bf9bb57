"""The Streamlit glue the pages share: the store connection, the chosen sweep, live
settings, and errors shown as messages instead of tracebacks (the stop controls are
dashboard.stopping)."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import streamlit as st

from dashboard import control
from dashboard.data import SweepPoints, sweep_progress
from dashboard.stopping import TOKEN_KEY, permission
from runner.errors import StoreMissing, StoreUnavailable, SweepscopeError
from runner.redact import mask_url
from runner.store import Store, SweepStatus, default_url, open_store, sweep_status

__all__ = [
    "DEFAULT_REFRESH_SECONDS",
    "SWEEP_KEY",
    "current_sweep",
    "drawn_points",
    "guard",
    "is_running",
    "live_settings",
    "loaded_sweep",
    "metric_points",
    "redacted",
    "refreshed",
    "show_error",
    "sidebar",
    "store",
    "sweep_header",
    "sweep_points",
    "wait_for_first_sweep",
]

DEFAULT_REFRESH_SECONDS = 2.0
WAIT_SECONDS = 2.0  # how often a page with no store, or no sweep, looks again
SWEEP_KEY = "sweep_id"


def redacted(url: str) -> str:
    """The store URL with any password hidden, for display (runner.redact does the
    masking for every output, the CLI's too)."""
    return mask_url(url)


def show_error(exc: Exception) -> None:
    text = str(exc)
    if isinstance(exc, StoreUnavailable):
        st.warning(
            f"**The store is unreachable:** {text} Reload the page to try again (an open live "
            "page retries on its own); a running sweep goes on and holds its points until the "
            "store is back.",
            icon=":material/cloud_off:",
        )
        return
    if "Fix:" not in text:
        text += (
            " Fix: check that the database is up and the URL is right, e.g. "
            "`sweepscope dashboard --store sqlite:///sweepscope.db`."
        )
    st.error(text, icon=":material/error:")


@contextlib.contextmanager
def guard() -> Iterator[None]:
    """Show a store failure in the middle of a page as a message, not a traceback."""
    try:
        yield
    except SweepscopeError as exc:
        show_error(exc)


# -- the store ---------------------------------------------------------------------------
def _close(s: Store) -> None:
    s.close()


@st.cache_resource(show_spinner=False, max_entries=4, on_release=_close)
def _open(url: str) -> Store:
    return open_store(url)  # read-only: never creates or alters the schema


def store() -> Store:
    """The store at $SWEEPSCOPE_STORE, opened once per process; stops the page with a
    message when it does not open (a failed open is retried on the next run). Where no
    sweep has made the store yet, the page waits for it and then runs again on its own."""
    url = default_url()
    try:
        return _open(url)
    except StoreMissing as exc:
        text = str(exc)
        st.title("sweepscope")
        st.info(
            f"**Waiting for a sweep to make the store.** {text[:1].upper()}{text[1:]} This "
            "page opens it on its own once it exists.",
            icon=":material/hourglass_empty:",
        )
        _open_when_made()
        st.stop()
        raise  # unreachable: st.stop() raises
    except SweepscopeError as exc:
        st.title("sweepscope")
        show_error(exc)
        st.stop()
        raise  # unreachable: st.stop() raises


@st.cache_data(ttl=2.0, show_spinner=False)
def _sweeps(url: str) -> list[dict[str, Any]]:
    return _open(url).sweeps()


@st.fragment(run_every=WAIT_SECONDS)
def _open_when_made() -> None:
    """Look for the store every WAIT_SECONDS; once it is there (or fails otherwise, which
    the page then shows), run the page again."""
    try:
        _open(default_url())
    except StoreMissing:
        return
    except SweepscopeError:
        pass
    st.rerun(scope="app")


@st.fragment(run_every=WAIT_SECONDS)
def wait_for_first_sweep() -> None:
    """On a page that found no sweep: look again every WAIT_SECONDS, and run the page
    again once the store holds one (a store that stops answering meanwhile: keep waiting)."""
    try:
        found = bool(_sweeps(default_url()))
    except SweepscopeError:
        return
    if found:
        st.rerun(scope="app")


def sweeps(s: Store) -> list[dict[str, Any]]:
    """The store's sweeps, newest first, from the cache the sidebar fills (2 s).

    Keyed by the URL the store was opened with, never by `s.url`: that one is masked
    (`***` for the password), so reopening from it fails on a server that checks
    passwords."""
    return _sweeps(default_url())


@st.cache_resource(show_spinner=False, max_entries=8)
def _points(url: str, sweep_id: str) -> SweepPoints:
    return SweepPoints(sweep_id)


def sweep_points(sweep_id: str) -> SweepPoints:
    """The points of a sweep seen so far, shared by every session; call `.refresh(store)`."""
    return _points(default_url(), sweep_id)


@st.cache_resource(show_spinner=False, max_entries=8)
def _drawn_points(url: str, sweep_id: str) -> SweepPoints:
    return SweepPoints(sweep_id, only_included=True)


def drawn_points(sweep_id: str) -> SweepPoints:
    """Every metric of only the trials a large sweep's page draws (`.include(ids)` asks
    for more), shared by every session; call `.refresh(store)`."""
    return _drawn_points(default_url(), sweep_id)


@st.cache_resource(show_spinner=False, max_entries=8)
def _metric_points(url: str, sweep_id: str, metric: str) -> SweepPoints:
    return SweepPoints(sweep_id, only_metrics=(metric,))


def metric_points(sweep_id: str, metric: str) -> SweepPoints:
    """One metric of every trial of a sweep (a large sweep's ranking and finals), shared by
    every session; call `.refresh(store)`."""
    return _metric_points(default_url(), sweep_id, metric)


# -- sidebar: sweep, live settings, token ------------------------------------------------
def _forget_unknown() -> None:
    st.session_state.pop("unknown_sweep", None)


def sidebar(s: Store) -> None:
    """The sweep picker, live-update settings and (when needed) the stop token."""
    try:
        sweeps = _sweeps(default_url())
    except SweepscopeError as exc:
        show_error(exc)
        st.stop()
    ids = [sw["id"] for sw in sweeps]
    if "query_read" not in st.session_state:  # a link with ?sweep=ID picks that sweep once
        st.session_state["query_read"] = True
        requested = st.query_params.get("sweep")
        if requested and requested in ids:
            st.session_state[SWEEP_KEY] = requested
        elif requested:
            st.session_state["unknown_sweep"] = requested
    if ids and st.session_state.get(SWEEP_KEY) not in ids:
        st.session_state[SWEEP_KEY] = ids[0]
    with st.sidebar:
        if ids:
            st.selectbox("Sweep", ids, key=SWEEP_KEY, on_change=_forget_unknown)
            st.query_params["sweep"] = st.session_state[SWEEP_KEY]
        st.toggle("Live updates", value=True, key="live")
        st.number_input(
            "Refresh every (s)",
            min_value=0.5,
            max_value=60.0,
            value=DEFAULT_REFRESH_SECONDS,
            step=0.5,
            key="refresh_s",
        )
        if permission().needs_token and permission().enabled:
            st.text_input(
                f"Token to stop trials ({control.TOKEN_ENV})", type="password", key=TOKEN_KEY
            )
        st.caption(f"Store: `{redacted(s.url)}`")


def is_running(sweep: Mapping[str, Any]) -> bool:
    """Whether the sweep may still change: its status in the store is `running` (an
    interrupted one too, whose driver may yet write)."""
    return sweep.get("status") == SweepStatus.RUNNING


def live_settings() -> float | None:
    """Seconds between live refreshes, or None while updates are paused."""
    if not st.session_state.get("live", True):
        return None
    return float(st.session_state.get("refresh_s", DEFAULT_REFRESH_SECONDS))


def current_sweep(s: Store) -> dict[str, Any]:
    """The sweep chosen in the sidebar; stops the page with a message when there is none."""
    sweep_id = st.session_state.get(SWEEP_KEY)
    unknown = st.session_state.get("unknown_sweep")
    if unknown:
        instead = f" Showing {sweep_id} instead." if sweep_id else ""
        st.error(
            f"No sweep {unknown!r} in the store {redacted(s.url)}.{instead} Fix: check "
            "the link, or pick a sweep in the sidebar or on the Sweeps page.",
            icon=":material/error:",
        )
    if sweep_id is None:
        if not unknown:
            st.info(
                f"The store {redacted(s.url)} holds no sweeps yet. Start one with "
                "`sweepscope run experiments/sweeps/smoke.yaml`; it appears here on its "
                "own."
            )
            wait_for_first_sweep()
        st.stop()
    try:
        sweep = s.sweep(sweep_id, best=False)
    except SweepscopeError as exc:
        show_error(exc)
        st.stop()
    if sweep is None:
        st.error(
            f"No sweep {sweep_id!r} in the store {redacted(s.url)}. Fix: pick a sweep "
            "in the sidebar.",
            icon=":material/error:",
        )
        st.stop()
    return sweep


def loaded_sweep(
    s: Store, *, sweep: dict[str, Any] | None = None, read_points: bool = True
) -> tuple[dict[str, Any], list[dict[str, Any]], SweepPoints]:
    """The chosen sweep (`sweep` when the page read it already: `current_sweep`), its
    trials and its points brought up to date (not read with `read_points=False`: a page
    that reads only some, see `refreshed`), under the page's header; stops the page with
    the reason when the store cannot be read."""
    sweep = current_sweep(s) if sweep is None else sweep
    points = sweep_points(sweep["id"])
    try:
        trials = s.trials(sweep["id"])
        if read_points:
            points.refresh(s)
    except SweepscopeError as exc:
        show_error(exc)
        st.stop()
    sweep_header(sweep, trials)
    return sweep, trials, points


def refreshed(s: Store, points: SweepPoints) -> SweepPoints:
    """`points` brought up to date; stops the page with the reason when the store cannot
    be read."""
    try:
        points.refresh(s)
    except SweepscopeError as exc:
        show_error(exc)
        st.stop()
    return points


def sweep_header(sweep: Mapping[str, Any], trials: Sequence[Mapping[str, Any]]) -> None:
    counts: dict[str, int] = {}
    for t in trials:
        counts[t["status"]] = counts.get(t["status"], 0) + 1
    st.caption(
        f"**{sweep['id']}** · {sweep_status(dict(sweep))} · "
        f"{sweep_progress(counts, int(sweep['n_trials']))} · metric "
        f"{sweep['metric']} ({sweep['mode']})"
    )
