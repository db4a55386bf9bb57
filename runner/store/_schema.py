"""Tables of the store. The runner creates them; readers never create or alter them.

SCHEMA_VERSION is written into `sweepscope_meta` when the schema is created; a change to
these tables raises it and adds a step to runner.store._migrate.
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Column,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    PrimaryKeyConstraint,
    String,
    Table,
    Text,
    UniqueConstraint,
)

from runner.protocol import MAX_INFO, MAX_METRIC_NAME

metadata = MetaData()

# 1: every store written before the version table existed; 2: adds `sweepscope_meta`;
# 3: compact points (a metric id instead of its name, the wall time as milliseconds since
# the trial was created, no row id) and the `point_writes` log that incremental reads follow.
# 4: `sweeps.spill_path` (where the driver keeps writes its store missed) and
# `sweeps.outage_limit` (how long its driver tolerates the store away: others judge its
# heartbeat by it).
# 5: trials numbered within their sweep (`trials.number`, 1..N: what users see; `id` stays
# internal), `trials.round` (1 for the sweep's own trials, 2.. for each `sweepscope extend`)
# and the `sweep_rounds` table (what each extension runs, for its resume).
SCHEMA_VERSION = 5

# SQLite only auto-increments a column declared exactly INTEGER PRIMARY KEY.
_Id = BigInteger().with_variant(Integer(), "sqlite")

sweeps = Table(
    "sweeps",
    metadata,
    Column("id", String(128), primary_key=True),
    Column("name", String(128), nullable=False),
    Column("spec", Text, nullable=False),  # JSON of the validated spec
    Column("status", String(32), nullable=False),
    Column("metric", String(64), nullable=False),
    Column("mode", String(8), nullable=False),
    Column("n_trials", Integer, nullable=False),
    Column("storage_path", Text),  # Ray Tune's experiment directory parent, for resume
    # who runs the sweep: "host:pid/start" (runner.store._lifecycle.Driver); "host:pid" in
    # rows written before version 4
    Column("driver", String(256)),
    Column("outage_limit", Float),  # the driver's outage limit, seconds (NULL before v4)
    Column("spill_path", Text),  # the driver's spill file of writes the store missed
    Column("created_at", Float, nullable=False),
    Column("ended_at", Float),
    Column("heartbeat_at", Float),
    Column("stop_requested_at", Float),
    Column("message", Text),
)

trials = Table(
    "trials",
    metadata,
    Column("id", _Id, primary_key=True, autoincrement=True),
    Column("sweep_id", String(128), ForeignKey("sweeps.id"), nullable=False),
    Column("ray_id", String(64), nullable=False),
    Column("number", Integer, nullable=False),  # 1..N within the sweep, in creation order
    Column("round", Integer, nullable=False, server_default="1"),  # the round that added it
    Column("config", Text, nullable=False),  # JSON
    Column("status", String(32), nullable=False),
    Column("created_at", Float, nullable=False),
    Column("started_at", Float),
    Column("ended_at", Float),
    Column("device", String(MAX_INFO)),  # report.info refuses longer values
    Column("node", String(MAX_INFO)),
    Column("error", Text),
    Column("last_step", Integer),
    Column("last_epoch", Integer),
    Column("stop_requested_at", Float),
    UniqueConstraint("sweep_id", "ray_id", name="uq_trials_sweep_ray"),
)

# One row per extension of a sweep (`sweepscope extend`): round 2, 3, ...; round 1 is the
# sweep itself. `points` (JSON) are the configurations the round runs, in order: Ray Tune
# resumes the round from them. `experiment` is the round's Ray Tune experiment name.
sweep_rounds = Table(
    "sweep_rounds",
    metadata,
    Column("sweep_id", String(128), ForeignKey("sweeps.id"), nullable=False),
    Column("round", Integer, nullable=False),
    Column("kind", String(16), nullable=False),  # seeds | grid | epochs
    Column("detail", Text, nullable=False),  # what the user asked, in words
    Column("points", Text, nullable=False),
    Column("experiment", String(256), nullable=False),
    Column("created_at", Float, nullable=False),
    PrimaryKeyConstraint("sweep_id", "round", name="pk_sweep_rounds"),
)

# Metric names, once per store: a point carries the small integer id.
metrics = Table(
    "metrics",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("name", String(MAX_METRIC_NAME), nullable=False),  # report refuses longer names
    UniqueConstraint("name", name="uq_metrics_name"),
)

# One row per (trial, metric, step), keyed by exactly that: a repeated point is a no-op, and
# SQLite stores the rows in the key's own B-tree (WITHOUT ROWID), about 25 bytes a point.
# `wall_ms` is the wall time in whole milliseconds after the trial's `created_at`.
points = Table(
    "points",
    metadata,
    Column("trial_id", _Id, ForeignKey("trials.id"), nullable=False),
    Column("metric_id", Integer, ForeignKey("metrics.id"), nullable=False),
    Column("step", Integer, nullable=False),  # report refuses steps beyond 32 bits
    Column("value", Float),  # NULL for NaN (SQLite cannot store NaN); read back as NaN
    Column("wall_ms", BigInteger, nullable=False),
    PrimaryKeyConstraint("trial_id", "metric_id", "step", name="pk_points"),
    sqlite_with_rowid=False,
)

# One row per (write, metric) that stored new points: their trial and step range. `seq`
# grows with every write, so "what is new since write N" is a range scan of this small
# table, then one primary-key range scan of `points` per row found.
point_writes = Table(
    "point_writes",
    metadata,
    Column("seq", _Id, primary_key=True, autoincrement=True),
    Column("trial_id", _Id, ForeignKey("trials.id"), nullable=False),
    Column("metric_id", Integer, ForeignKey("metrics.id"), nullable=False),
    Column("first_step", Integer, nullable=False),
    Column("last_step", Integer, nullable=False),
)

events = Table(
    "trial_events",
    metadata,
    Column("id", _Id, primary_key=True, autoincrement=True),
    Column("trial_id", _Id, ForeignKey("trials.id"), nullable=False),
    Column("at", Float, nullable=False),
    Column("status", String(32), nullable=False),
    Column("detail", Text),
)

# Key-value facts about the store itself: ("schema_version", "3").
meta = Table(
    "sweepscope_meta",
    metadata,
    Column("key", String(64), primary_key=True),
    Column("value", Text, nullable=False),
)

Index("ix_trials_sweep", trials.c.sweep_id)
Index("uq_trials_sweep_number", trials.c.sweep_id, trials.c.number, unique=True)
Index("ix_events_trial", events.c.trial_id)
Index("ix_point_writes_trial", point_writes.c.trial_id, point_writes.c.seq)
