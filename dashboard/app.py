"""sweepscope dashboard: the entry file Streamlit runs (`sweepscope dashboard`).

It opens the store named by $SWEEPSCOPE_STORE, draws the sidebar every page shares, and
runs the chosen page from views/.
"""

from __future__ import annotations

import streamlit as st

from dashboard import ui

st.set_page_config(page_title="sweepscope", page_icon=":material/show_chart:", layout="wide")

page = st.navigation(
    [
        st.Page("views/sweeps.py", title="Sweeps", icon=":material/list:", default=True),
        st.Page("views/live.py", title="Live sweep", icon=":material/show_chart:", url_path="live"),
        st.Page(
            "views/compare.py",
            title="BN vs no-BN",
            icon=":material/compare_arrows:",
            url_path="compare",
        ),
        st.Page("views/trial.py", title="Trial detail", icon=":material/search:", url_path="trial"),
        st.Page(
            "views/hparams.py", title="Hyperparameters", icon=":material/tune:", url_path="hparams"
        ),
        st.Page(
            "views/versus.py",
            title="Sweep vs sweep",
            icon=":material/difference:",
            url_path="versus",
        ),
    ]
)
store = ui.store()
ui.sidebar(store)
page.run()
