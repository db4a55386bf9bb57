"""The stop controls a page shows: 'Stop trial' and 'Stop sweep', each confirmed first.

They write a stop request to the store (dashboard.control), the one way control flows
back to a running sweep; the runner's stopper acts on it within seconds. Whether they are
enabled, and whether they need the token, depends on the address the server is bound to.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import streamlit as st

from dashboard import control
from dashboard.data import status_label, trial_number, trial_numbers
from runner.errors import SweepscopeError
from runner.store import Store, SweepStatus, TrialStatus, sweep_status

__all__ = ["TOKEN_KEY", "permission", "stop_controls"]

TOKEN_KEY = "stop_token"


def permission() -> control.StopPermission:
    """Stop controls for the address this server is bound to (see dashboard.control)."""
    return control.stop_permission(st.get_option("server.address"))


def _describe(t: Mapping[str, Any], params: Sequence[str]) -> str:
    settings = ", ".join(f"{p}={t['config'].get(p)}" for p in params)
    shown = f"{status_label(t['status'])}{'; ' + settings if settings else ''}"
    return f"trial {trial_number(t)} ({shown})"


def stop_controls(
    s: Store,
    sweep: Mapping[str, Any],
    trials: Sequence[Mapping[str, Any]],
    *,
    key: str,
    params: Sequence[str] = (),
    only: int | None = None,
) -> None:
    """'Stop trial' and 'Stop sweep' buttons, each asking for confirmation first.

    With `only`, the controls act on that one trial (the trial detail page).
    """
    note = st.empty()  # the outcome of the last request, kept until the next one
    try:
        _stop_controls(s, sweep, trials, key=key, params=params, only=only)
    finally:
        if (message := st.session_state.get(f"{key}_message")) is not None:
            kind, text = message
            with note:
                {"success": st.success, "info": st.info, "error": st.error}[kind](text)


def _stop_controls(
    s: Store,
    sweep: Mapping[str, Any],
    trials: Sequence[Mapping[str, Any]],
    *,
    key: str,
    params: Sequence[str],
    only: int | None,
) -> None:
    perm = permission()
    if not perm.enabled:
        st.info(perm.reason, icon=":material/lock:")
        return
    _stop_buttons(sweep, trials, key=key, params=params, only=only)
    numbers = trial_numbers(trials)
    target = _confirmed_target(sweep, key=key, numbers=numbers)
    if target is None:
        return
    try:
        outcome = control.request_stop(
            s,
            str(sweep["id"]),
            None if target == "sweep" else int(target),
            permission=perm,
            given_token=st.session_state.get(TOKEN_KEY),
            number=None if target == "sweep" else numbers.get(int(target)),
        )
    except PermissionError as exc:
        st.session_state[f"{key}_message"] = ("error", f"Not stopped: {exc}")
        return
    except SweepscopeError as exc:
        st.session_state[f"{key}_message"] = ("error", str(exc))
        return
    kind = "success" if outcome.changed else "info"
    st.session_state[f"{key}_message"] = (kind, outcome.message)


def _stop_buttons(
    sweep: Mapping[str, Any],
    trials: Sequence[Mapping[str, Any]],
    *,
    key: str,
    params: Sequence[str],
    only: int | None,
) -> None:
    """The trial to stop (or why there is none) and the two buttons; a click asks for
    confirmation (`_confirmed_target`) through the session state."""
    by_id = {int(t["id"]): t for t in trials}
    active = [
        int(t["id"]) for t in trials if t["status"] in (TrialStatus.PENDING, TrialStatus.RUNNING)
    ]
    trial: int | None
    left, mid, right = st.columns([4, 1, 1], vertical_alignment="bottom")
    if only is not None:
        trial = only if only in active else None
        if trial is None and only in by_id:
            left.caption(
                f"Trial {trial_number(by_id[only])} has finished "
                f"({status_label(by_id[only]['status'])}); there is nothing to stop."
            )
    elif active:
        trial = left.selectbox(
            "Running trial",
            active,
            key=f"{key}_trial",
            format_func=lambda i: _describe(by_id[i], params),
        )
    else:
        trial = None
        left.caption("No trial is running or waiting; there is nothing to stop.")
    if mid.button("Stop trial", key=f"{key}_stop_trial", disabled=trial is None):
        st.session_state[f"{key}_confirm"] = trial
    sweep_running = sweep_status(dict(sweep)) == SweepStatus.RUNNING  # not an interrupted one
    if right.button(
        "Stop sweep",
        key=f"{key}_stop_sweep",
        disabled=not sweep_running,
        help=None if sweep_running else "The sweep is not running.",
    ):
        st.session_state[f"{key}_confirm"] = "sweep"


def _confirmed_target(
    sweep: Mapping[str, Any], *, key: str, numbers: Mapping[int, int]
) -> int | str | None:
    """The trial id, or "sweep", once the user confirms the stop a button asked for; None
    while no stop is asked for, the question is open, or it was cancelled. The question
    names the trial by its number (`numbers`: id -> number)."""
    confirm_key = f"{key}_confirm"
    if confirm_key not in st.session_state:
        return None
    target = st.session_state[confirm_key]
    slot = st.empty()
    with slot.container(border=True):
        what = (
            f"every running and waiting trial of sweep {sweep['id']}"
            if target == "sweep"
            else f"trial {numbers.get(int(target), target)}"
        )
        st.warning(
            f"Stop {what}? The runner ends it within a few seconds as “stopped by "
            "user”; it cannot be resumed."
        )
        yes, no = st.columns(2)
        confirmed = yes.button("Confirm stop", key=f"{key}_confirm_yes", type="primary")
        cancelled = no.button("Cancel", key=f"{key}_confirm_no")
    if not (confirmed or cancelled):
        return None
    del st.session_state[confirm_key]
    slot.empty()
    return target if confirmed else None
