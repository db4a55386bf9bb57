"""`python -m dashboard.warm run app.py ...`: Streamlit's own command line, started once
the modules the pages use are imported and plotly and Arrow have done one small job each.

Streamlit imports a page's modules on its first run, in the script thread of the first
browser to connect: pandas, SciPy, SQLAlchemy, plotly and Streamlit's own elements, about
2.5 s on a quiet 2-core machine and 4 s while a sweep keeps both cores busy, all of it
before that browser's first chart (benchmarks/bench_browser.py, "first"). Done here,
before the server listens, the first page opens as quickly as any later one, and
`sweepscope dashboard` takes that long to answer instead (`serve.streamlit_command`).
"""

from __future__ import annotations

import signal
import sys

__all__ = ["main", "warm"]


def warm() -> None:
    """Import what the pages import, and serialise a figure and a table as they do."""
    import pandas as pd
    import plotly.graph_objects as go
    import plotly.io
    import pyarrow as pa

    # Not dashboard.ui: its caches made outside a running server log a warning (it imports
    # nothing heavy the others do not).
    from dashboard import (  # noqa: F401  (imported for their import cost alone)
        charts,
        compare,
        compare_figures,
        control,
        importance,
        live,
        paired,
        stopping,
        urlstate,
    )

    plotly.io.to_json(go.Figure(go.Scatter(x=[0, 1], y=[0, 1])).to_dict(), validate=False)
    pa.Table.from_pandas(pd.DataFrame({"trial": [0], "val_acc": [0.5]}))


def main() -> None:
    """Warm, then hand over to Streamlit's command line; a Ctrl-C or SIGTERM while warming
    ends it cleanly (exit 0), as Streamlit's own handlers do once it runs."""
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    try:
        warm()
    except KeyboardInterrupt:
        sys.exit(0)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    from streamlit.web import cli

    cli.main(prog_name="streamlit")


if __name__ == "__main__":
    main()
