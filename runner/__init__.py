"""sweepscope's runner: sweep specs, the Ray Tune launch, the store, and the CLI.

Folders say on which side of the Ray boundary code runs:

- runner.trial: what runs inside a Ray worker for each trial (the report API, the entry
  Ray Tune runs, system sampling);
- runner.driver: what runs in the driver process (launch, extend and resume, the Tune
  callbacks, the writer, the stopper, progress, alerts);
- shared by both, and by the dashboard and the Python API (every other module here, and
  runner.store and runner.exporters): the spec (runner.spec), the store (runner.store),
  statuses (runner.status), what a result carries (runner.protocol), errors, secrets'
  masking (runner.redact), seeds and verdicts (runner.configurations, runner.verdicts),
  what an extension runs (runner.extensions), imports and exports, the MCP server, and
  every reach into Ray's private parts (runner._ray_private).

A training function needs only `from runner import report` (see runner.trial.report).
"""

from __future__ import annotations

from runner.trial import report

__all__ = ["report"]
