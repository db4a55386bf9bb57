"""What a trial's Ray Tune result carries to the driver, and the limits of what it may carry.

Both sides of the Ray boundary agree on these: a trial (runner.trial.report, runner.trial.
sysmetrics) adds its points, its description and its own end under the keys below; the
driver (runner.driver.callback) takes them apart and writes them to the store, whose columns
are sized from the limits. The dashboard reads the system-metric names to keep the runner's
load samples apart from a trial's own curves.
"""

from __future__ import annotations

__all__ = [
    "CHECKPOINT_STEP_FILE",
    "CONTINUES_KEY",
    "DEFAULT_SYSTEM_EVERY",
    "INFO_KEY",
    "MAX_INFO",
    "MAX_METRIC_NAME",
    "MAX_STEP",
    "POINTS_KEY",
    "START_CHECKPOINT_KEY",
    "STATUS_KEY",
    "SYSTEM_LABELS",
    "SYSTEM_PREFIX",
    "SYS_KEY",
    "is_system_metric",
]

# What the store's columns hold; the store's schema is sized from these.
MAX_METRIC_NAME = 64  # points.metric
MAX_INFO = 128  # trials.device, trials.node
MAX_STEP = 2**31 - 1  # points.step and trials.last_step/last_epoch: 32-bit on PostgreSQL

# Keys the runner adds to each Ray Tune result; the driver callback takes them apart.
POINTS_KEY = "_points"  # the trial's own points: (metric, step, value, wall time)
INFO_KEY = "_info"  # what the trial says of itself: device, node
STATUS_KEY = "_status"  # a status the trial reported itself (diverged)
SYS_KEY = "_sys"  # system-load samples, apart from the trial's points: never judged

# The step a checkpoint was taken at: a resumed sweep continues from a checkpoint whose
# points the store holds (runner.driver.checkpoints).
CHECKPOINT_STEP_FILE = "sweepscope-step.txt"

# Keys of a continued trial's config (`sweepscope extend --epochs`), taken out before the
# trainable sees it: the store id of the trial it continues (the driver writes to that
# trial), and the checkpoint it starts from when Ray Tune has none for it yet.
CONTINUES_KEY = "__continues"
START_CHECKPOINT_KEY = "__start_checkpoint"

# The runner's own system-load metrics (runner.trial.sysmetrics), sampled every few seconds.
SYSTEM_PREFIX = "sys/"
DEFAULT_SYSTEM_EVERY = 2.0
# What each one is, for the dashboard.
SYSTEM_LABELS = {
    "sys/cpu_percent": "CPU (% of one core)",
    "sys/rss_mb": "memory (RSS, MiB)",
    "sys/gpu_util": "GPU utilisation (%)",
    "sys/gpu_mem_mb": "GPU memory (MiB)",
}


def is_system_metric(name: str) -> bool:
    """True for the runner's own system-load metrics (sys/...), never a trial's."""
    return name.startswith(SYSTEM_PREFIX)
