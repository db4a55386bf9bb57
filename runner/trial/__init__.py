"""What runs inside a Ray worker, for each trial: the report API a trainable calls
(runner.trial.report), the entry Ray Tune runs (runner.trial.entry), and system-load sampling
(runner.trial.sysmetrics).

The rule: a trial imports this package and the shared modules (runner.spec, runner.status,
runner.protocol, runner.errors, runner._ray_private), never runner.driver or runner.store: a
worker never opens the store, and its points reach the driver inside Ray Tune results.
"""
