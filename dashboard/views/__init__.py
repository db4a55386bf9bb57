"""The dashboard pages: thin scripts that Streamlit runs (see dashboard/app.py)."""
