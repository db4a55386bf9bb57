"""A view you can share: the page's state lives in the URL's query string.

The convention: a widget whose key begins with `q_` is view state (the metric shown, the
smoothing, the grouping, a filter, the highlighted trials, the compared factor). It is
bound to the query parameter of the same name with Streamlit's own binding
(`bind="query-params"`): changing the widget rewrites the URL, and opening a copied URL
sets the widget. The page is the URL's path (`/live`, `/compare`) and the sweep its
`sweep` parameter (dashboard.ui's sidebar).

Streamlit drops a URL value that is not one of a widget's options without a word; `bound`
checks the value first, so a stale link (a metric this sweep does not have, a trial that
is gone) shows a short notice and the page carries on with the default:

    metric = st.selectbox("Metric", metrics, **urlstate.bound("q_metric", metrics))
    smooth = st.slider("Smoothing", 0.0, 0.99, 0.8, **urlstate.bound_number("q_smooth", 0, 0.99))
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any, Final

import streamlit as st

__all__ = [
    "BIND",
    "PREFIX",
    "bound",
    "bound_number",
    "bound_toggle",
    "notice",
    "stale_values",
]

PREFIX: Final = "q_"
BIND: Final = "query-params"
_SEEN = "_urlstate_noticed"  # (key, value) pairs already reported in this session
_BOUND = "_urlstate_bound"  # keys already bound in this session


def _first_binding(key: str) -> bool:
    """Whether this session binds `key` for the first time: only then does the URL's value
    come from a link (later, the URL holds what the widget wrote, and options that change
    with the data, such as another sweep's trials, are not the link's fault)."""
    if not key.startswith(PREFIX):
        raise ValueError(
            f"widget key {key!r} is not view state. Fix: view-state keys begin with {PREFIX!r}."
        )
    bound_keys: set[str] = st.session_state.setdefault(_BOUND, set())
    first = key not in bound_keys
    bound_keys.add(key)
    return first


def stale_values(
    raw: Sequence[str], options: Sequence[Any], format_func: Callable[[Any], str] = str
) -> list[str]:
    """The values a URL gives for a widget that are not among its options (compared as the
    widget shows them, `format_func(option)`, which is also how Streamlit writes the URL)."""
    shown = {format_func(o) for o in options}
    return [v for v in raw if v not in shown]


def notice(key: str, value: str, why: str) -> None:
    """Say once per session that the link's `key=value` was ignored, and why."""
    seen: set[tuple[str, str]] = st.session_state.setdefault(_SEEN, set())
    if (key, value) in seen:
        return
    seen.add((key, value))
    st.toast(f"Ignored `{key}={value}` from the link: {why}", icon=":material/link_off:")


def bound(
    key: str,
    options: Sequence[Any] | None = None,
    *,
    format_func: Callable[[Any], str] = str,
    why: str = "not one of the choices on this page",
) -> dict[str, Any]:
    """Keyword arguments that bind a selection widget (selectbox, multiselect, radio,
    segmented control) to the URL parameter `key`; pass the same `options` and
    `format_func` as to the widget, before it is created. Values the URL gives that are not
    options are reported with `notice` (Streamlit then ignores them)."""
    if _first_binding(key) and options is not None and key in st.query_params:
        for value in stale_values(st.query_params.get_all(key), options, format_func):
            if value != "":  # `?key=` clears a clearable widget: not a stale value
                notice(key, value, why)
    return {"key": key, "bind": BIND}


def bound_number(key: str, low: float, high: float) -> dict[str, Any]:
    """Keyword arguments that bind a slider or number input to the URL parameter `key`;
    a value that is not a number, or outside [low, high], is reported with `notice`."""
    value = st.query_params.get(key) if _first_binding(key) else None
    if value is not None:
        try:
            number = float(value)
        except ValueError:
            notice(key, value, "not a number")
        else:
            if not math.isfinite(number) or not low <= number <= high:
                notice(key, value, f"outside {low:g}..{high:g}")
    return {"key": key, "bind": BIND}


def bound_toggle(key: str) -> dict[str, Any]:
    """Keyword arguments that bind a toggle or checkbox to the URL parameter `key`."""
    value = st.query_params.get(key) if _first_binding(key) else None
    if value is not None and value.lower() not in ("true", "false"):
        notice(key, value, "not true or false")
    return {"key": key, "bind": BIND}
