"""The dashboard under streamlit.testing.v1.AppTest: open a page, read what it shows.

Streamlit keeps caches (and the stores they hold) per process: `fresh_dashboard` clears them
around a test and binds the app to loopback, so no test sees another's store.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import streamlit as st
from streamlit import config
from streamlit.testing.v1 import AppTest

from tests.helpers.paths import REPO

__all__ = ["APP", "chart", "fresh_dashboard", "open_page", "texts"]

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
