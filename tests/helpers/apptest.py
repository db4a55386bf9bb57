"""The dashboard under streamlit.testing.v1.AppTest: open a page, read what it shows.

Streamlit keeps caches (and the stores they hold) per process: `fresh_dashboard` clears them
around a test and binds the app to loopback, so no test sees another's store.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import numpy as np
import streamlit as st
from streamlit import config
from streamlit.testing.v1 import AppTest

from tests.helpers.paths import REPO

__all__ = [
    "APP",
    "chart",
    "chart_steps",
    "fresh_dashboard",
    "live_panels",
    "open_page",
    "plotly_array",
    "texts",
]

APP = REPO / "dashboard" / "app.py"


@contextmanager
def fresh_dashboard() -> Iterator[None]:
    """Empty Streamlit caches and server.address 127.0.0.1 for the block; afterwards the
    caches go (closing the stores the app opened) and the address is put back."""
    before = config.get_option("server.address")
    config.set_option("server.address", "127.0.0.1")
    st.cache_data.clear()
    st.cache_resource.clear()
    try:
        yield
    finally:
        st.cache_data.clear()
        st.cache_resource.clear()
        config.set_option("server.address", before)


def open_page(page: str | None = None, *, timeout: float = 60, **query: str) -> AppTest:
    """Run the app with `query` parameters, switch to views/`page`.py (None: the first
    page), and check that it raised nothing. The store is $SWEEPSCOPE_STORE."""
    at = AppTest.from_file(str(APP), default_timeout=timeout)
    at.query_params.update(query)
    at.run()
    if page is not None:
        at.switch_page(f"views/{page}.py").run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def texts(at: AppTest, kind: str) -> str:
    """Every element of `kind` ("error", "caption", ...) on the page, joined by " | "."""
    return " | ".join(str(e.value) for e in getattr(at, kind))


def chart(at: AppTest, key: str) -> dict[str, Any]:
    """The Plotly spec of the first chart whose element id contains `key`."""
    found = [c for c in at.get("plotly_chart") if key in c.proto.id]
    assert found, f"no chart {key}"
    spec: dict[str, Any] = json.loads(found[0].proto.spec)
    return spec


def plotly_array(value: Any) -> np.ndarray:
    """A Plotly JSON array: a list, or the typed form {"dtype", "bdata": base64, "shape"}."""
    if isinstance(value, dict):
        data = np.frombuffer(base64.b64decode(value["bdata"]), dtype=value["dtype"])
        shape = value.get("shape")
        return data.reshape([int(n) for n in str(shape).split(",")]) if shape else data
    return np.array([v for v in value if v is not None])


def live_panels(at: AppTest) -> dict[str, dict[str, Any]]:
    """The Live sweep page's panels: metric -> plotly spec."""
    return {
        c.proto.id.split("live_chart_", 1)[1]: json.loads(c.proto.spec)
        for c in at.get("plotly_chart")
        if "live_chart_" in c.proto.id
    }


def chart_steps(panel: dict[str, Any]) -> dict[int, list[int]]:
    """Trial store id -> the steps its curve in a panel passes through (the panel's click
    targets, one per point of a short curve; their customdata rows are (store id, number))."""
    (targets,) = [t for t in panel["data"] if t.get("name") == "click to highlight"]
    ids = plotly_array(targets["customdata"])
    ids = ids[:, 0] if ids.ndim == 2 else ids
    steps: dict[int, list[int]] = {}
    for x, trial in zip(plotly_array(targets["x"]), ids, strict=True):
        steps.setdefault(int(trial), []).append(int(x))
    return steps
