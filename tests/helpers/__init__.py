"""One home for test helpers: what tests, benchmarks and scripts share.

- apptest: the dashboard under Streamlit's AppTest (open a page, read it, fresh caches)
- browser: the Chromium that drives the dashboard (tests, benchmarks, `make screenshots`)
- ci: skip a test outside CI only (in CI a missing tool or server fails it)
- docs: the code blocks of the README and the docs pages, with their test marks
- faults: real faults: a private PostgreSQL server to stop and start, held locks
- cli: the `sweepscope` command as a user runs it
- fakes: stand-ins for Ray's objects (a trial) for tests without a Ray runtime
- paths: where the repository is
- ports: free ports of 127.0.0.1
- stores: SQLite and PostgreSQL stores, and a database that checks passwords
- waiting: wait for what another process does

Fixtures stay in tests/conftest.py, built on these.
"""
