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
    String,
    Table,
    Text,
    UniqueConstraint,
)

from runner.report import MAX_INFO, MAX_METRIC_NAME

metadata = MetaData()

# 1: every store written before the version table existed; 2: adds `sweepscope_meta`.
SCHEMA_VERSION = 2

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
    Column("driver", String(256)),  # "host:pid" of the process running the sweep
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

# One row per (trial, metric, step): the unique key makes a repeated point a no-op.
# `id` grows with every insert, so "what is new since id N" is one index range scan.
points = Table(
    "points",
    metadata,
    Column("id", _Id, primary_key=True, autoincrement=True),
    Column("trial_id", _Id, ForeignKey("trials.id"), nullable=False),
    Column("metric", String(MAX_METRIC_NAME), nullable=False),  # report refuses longer names
    Column("step", Integer, nullable=False),  # report refuses steps beyond 32 bits
    Column("value", Float),  # NULL for NaN (SQLite cannot store NaN); read back as NaN
    Column("wall_time", Float, nullable=False),
    UniqueConstraint("trial_id", "metric", "step", name="uq_points_trial_metric_step"),
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

# Key-value facts about the store itself: ("schema_version", "2").
meta = Table(
    "sweepscope_meta",
    metadata,
    Column("key", String(64), primary_key=True),
    Column("value", Text, nullable=False),
)

Index("ix_trials_sweep", trials.c.sweep_id)
Index("ix_events_trial", events.c.trial_id)
