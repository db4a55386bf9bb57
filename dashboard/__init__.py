"""The live dashboard: a Streamlit app that reads the store (and writes only stop requests).

`app.py` is the entry (`st.navigation`), `views/` holds one thin file per page, and the
logic the pages draw lives in importable modules that tests call directly:

- `data`: incremental point reads, downsampled curves, the trial and sweep tables.
- `compare`: pairing trials by every hyperparameter but one (or two sweeps' trials on
  what they share), bootstrap intervals, steps to a target.
- `bands`: a group's centre line and band (interquartile range by default).
- `importance`: which hyperparameter matters for a final metric, over bootstrap resamples.
- `paired`: the paired-analysis sections the BN and sweep-vs-sweep pages share.
- `stopping`: the stop controls (confirmed 'Stop trial' and 'Stop sweep').
- `charts`: the figures of trials' curves (the live and trial pages, parallel coordinates).
- `compare_figures`: the figures comparing two groups (BN vs no BN, sweep vs sweep).
- `control`: who may stop trials, and the stop request itself.
- `serve`: `sweepscope dashboard` runs Streamlit on `app.py` as a subprocess.
- `warm`: that subprocess: the pages' imports first, then Streamlit's command line.
"""

from __future__ import annotations

__all__: list[str] = []
