"""Store ingest and size: metric points per second into SQLite through the store API, next
to raw SQLAlchemy executemany into the same table (and MLflow's SQLite tracking store, if
installed); bytes per stored point for a seed-grid-shaped sweep, on SQLite and (with
--postgres or $SWEEPSCOPE_TEST_POSTGRES) PostgreSQL, in this schema and in the version-2
layout it replaced.

    python -m benchmarks.bench_ingest [--points N] [--repeats R] [--postgres URL]
        [--baseline-code DIR]

With --baseline-code (a checkout of an earlier version), the store API's rate is also
measured with that code, each version in fresh processes taking turns: the "before" row.
"""

from __future__ import annotations

import argparse
import os
import secrets
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import sqlalchemy as sa

from benchmarks._common import stamp, write_fragment
from runner.store import _migrate, open_store
from runner.store import _schema as schema

BATCH = 1000  # points per write: about what one trial's report carries
SIZE_TARGET = 35.0  # bytes per stored point on SQLite
RATE_TARGET = 150_000  # points per second through the store API

# The seed grid's shape: 18 trials, two at a time on 2 cores, each 4,500 training steps and
# 25 evaluations of two metrics (81,900 points), written one report (150 steps) at a time.
GRID_TRIALS, GRID_STEPS, GRID_EVALS, GRID_REPORT, GRID_PARALLEL = 18, 4500, 25, 150, 2


def _batches(n: int) -> list[list[tuple[str, int, float, float]]]:
    now = time.time()
    rows = [("train_loss", s, 1.0 / (s + 1), now + s * 0.001) for s in range(n)]
    return [rows[i : i + BATCH] for i in range(0, n, BATCH)]


def store_api(path: Path, n: int) -> float:
    store = open_store(f"sqlite:///{path}", create=True)
    store.create_sweep("bench", name="bench", spec={}, metric="val_acc", mode="max", n_trials=1)
    trial = store.add_trial("bench", "t0", {})
    batches = _batches(n)
    start = time.perf_counter()
    for batch in batches:
        store.add_points(trial, batch)
    elapsed = time.perf_counter() - start
    store.close()
    return n / elapsed


def raw_executemany(path: Path, n: int) -> float:
    engine = sa.create_engine(f"sqlite:///{path}")

    @sa.event.listens_for(engine, "connect")
    def _same_pragmas(dbapi_conn: object, _record: object) -> None:  # as the store sets them
        for pragma in ("journal_mode=WAL", "synchronous=NORMAL"):
            dbapi_conn.execute(f"PRAGMA {pragma}")  # type: ignore[attr-defined]

    schema.metadata.create_all(engine)
    with engine.begin() as conn:
        conn.execute(
            schema.sweeps.insert().values(
                id="bench",
                name="bench",
                spec="{}",
                status="running",
                metric="m",
                mode="max",
                n_trials=1,
                created_at=0.0,
            )
        )
        trial = conn.execute(
            schema.trials.insert().values(
                sweep_id="bench",
                ray_id="t0",
                config="{}",
                status="running",
                created_at=0.0,
            )
        ).inserted_primary_key[0]  # type: ignore[index]
        metric = conn.execute(
            schema.metrics.insert().values(name="train_loss")
        ).inserted_primary_key[0]  # type: ignore[index]
    batches = [
        [
            {
                "trial_id": trial,
                "metric_id": metric,
                "step": s,
                "value": v,
                "wall_ms": round(w * 1000),
            }
            for _, s, v, w in batch
        ]
        for batch in _batches(n)
    ]
    start = time.perf_counter()
    for batch in batches:
        with engine.begin() as conn:
            conn.execute(schema.points.insert(), batch)
    elapsed = time.perf_counter() - start
    engine.dispose()
    return n / elapsed


def mlflow_log_batch(path: Path, n: int) -> float | None:
    try:
        from mlflow.entities import Metric
        from mlflow.tracking import MlflowClient
    except ImportError:
        return None
    client = MlflowClient(tracking_uri=f"sqlite:///{path}")
    run = client.create_run(client.create_experiment("bench"))
    batches = _batches(n)
    start = time.perf_counter()
    for batch in batches:
        client.log_batch(
            run.info.run_id, metrics=[Metric(m, v, int(w * 1000), s) for m, s, v, w in batch]
        )
    return n / (time.perf_counter() - start)


def _median_rate(fn: Callable[[Path, int], float | None], n: int, repeats: int) -> float | None:
    rates = []
    for _ in range(repeats):
        with tempfile.TemporaryDirectory() as tmp:
            rate = fn(Path(tmp) / "ingest.db", n)
        if rate is None:
            return None
        rates.append(rate)
    return statistics.median(rates)


_CHILD = """
import sys, tempfile
from pathlib import Path
from benchmarks.bench_ingest import store_api
with tempfile.TemporaryDirectory() as tmp:
    print(store_api(Path(tmp) / "ingest.db", int(sys.argv[1])))
"""


def side_by_side(codes: dict[str, Path], n: int, repeats: int) -> dict[str, float]:
    """Median store-API rate per code version, each run in a fresh process, in turns."""
    rates: dict[str, list[float]] = {name: [] for name in codes}
    for _ in range(repeats):
        for name, code in codes.items():
            done = subprocess.run(
                [sys.executable, "-c", _CHILD, str(n)],
                cwd=code,
                env={**os.environ, "PYTHONPATH": str(code)},
                capture_output=True,
                text=True,
                timeout=1800,
                check=True,
            )
            rates[name].append(float(done.stdout.strip().splitlines()[-1]))
    return {name: statistics.median(r) for name, r in rates.items()}


# -- store size ------------------------------------------------------------------------------
Report = tuple[int, list[tuple[str, int, float, float]]]  # (trial index, points of one write)


def grid_writes() -> Iterator[Report]:
    """The writes of a seed-grid-shaped sweep, in the order its driver makes them."""
    epoch_steps = GRID_STEPS // GRID_EVALS
    for first in range(0, GRID_TRIALS, GRID_PARALLEL):
        running = range(first, min(first + GRID_PARALLEL, GRID_TRIALS))
        for lo in range(1, GRID_STEPS + 1, GRID_REPORT):
            for i in running:
                t0 = 1_700_000_000.0 + i * 60
                steps = range(lo, min(lo + GRID_REPORT, GRID_STEPS + 1))
                points = [
                    ("train_loss", s, 2.3 / (1 + s * (i + 1) / 900), t0 + s * 0.0107) for s in steps
                ]
                points += [
                    (m, s, 0.5 + s / (3 * GRID_STEPS), t0 + s * 0.0107)
                    for s in steps
                    if s % epoch_steps == 0
                    for m in ("val_loss", "val_acc")
                ]
                yield i, points


def _v2_writer(conn: sa.Connection) -> Callable[[int, list[tuple[str, int, float, float]]], None]:
    """Writes in the version-2 layout (a row id, the metric name, a float wall time)."""
    from sqlalchemy.dialects import postgresql, sqlite

    dialect = sqlite if conn.dialect.name == "sqlite" else postgresql
    insert = dialect.insert(_migrate._V2_POINTS).on_conflict_do_nothing(  # type: ignore[attr-defined]
        index_elements=["trial_id", "metric", "step"]
    )

    def write(trial: int, points: list[tuple[str, int, float, float]]) -> None:
        conn.execute(
            insert,
            [
                {"trial_id": trial, "metric": m, "step": s, "value": v, "wall_time": w}
                for m, s, v, w in points
            ],
        )
        conn.commit()

    return write


def fill_grid(url: str, layout: str) -> int:
    """Fill the store at `url` with the seed-grid-shaped sweep; returns its points."""
    n = 0
    if layout == "v3":
        with open_store(url, create=True) as store:
            store.create_sweep(
                "grid", name="grid", spec={}, metric="val_acc", mode="max", n_trials=GRID_TRIALS
            )
            ids = [
                store.add_trial("grid", f"t{i}", {"i": i}, at=1_700_000_000.0 + i * 60)
                for i in range(GRID_TRIALS)
            ]
            for i, points in grid_writes():
                store.add_points(ids[i], points)
                n += len(points)
        return n
    engine = sa.create_engine(url)
    try:
        _migrate._v2.create_all(engine)
        with engine.connect() as conn:
            write = _v2_writer(conn)
            for i, points in grid_writes():
                write(i + 1, points)
                n += len(points)
    finally:
        engine.dispose()
    return n


def sqlite_bytes(layout: str) -> tuple[int, int]:
    """(points, bytes of the whole SQLite file) of the seed-grid-shaped sweep."""
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "grid.db"
        url = f"sqlite:///{path}"
        if layout == "v2":  # the store's pragmas, as version 2 wrote
            import sqlite3

            sqlite3.connect(path).execute("PRAGMA journal_mode=WAL").close()
        n = fill_grid(url, layout)
        engine = sa.create_engine(url)
        with engine.connect() as conn:
            conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
        engine.dispose()
        return n, path.stat().st_size


def postgres_bytes(base: str, layout: str) -> tuple[int, int]:
    """(points, bytes of the point tables with their indexes) in a scratch database."""
    name = f"sweepscope_bench_{secrets.token_hex(4)}"
    admin = sa.create_engine(base, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    url = sa.engine.make_url(base).set(database=name).render_as_string(hide_password=False)
    try:
        n = fill_grid(url, layout)
        tables = ["points", "metrics", "point_writes"] if layout == "v3" else ["points"]
        engine = sa.create_engine(url, isolation_level="AUTOCOMMIT")
        with engine.connect() as conn:
            conn.exec_driver_sql("VACUUM ANALYZE")  # settle the free space map and visibility
            size = sum(
                int(
                    conn.execute(
                        sa.text("SELECT pg_total_relation_size(:t)"), {"t": table}
                    ).scalar_one()
                )
                for table in tables
            )
        engine.dispose()
        return n, size
    finally:
        with admin.connect() as conn:
            conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--points", type=int, default=500_000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument(
        "--postgres",
        default=os.environ.get("SWEEPSCOPE_TEST_POSTGRES"),
        help="a PostgreSQL URL whose user may create databases (for its size)",
    )
    parser.add_argument(
        "--baseline-code", type=Path, default=None, help="an earlier version, side by side"
    )
    args = parser.parse_args()
    ours = _median_rate(store_api, args.points, args.repeats)
    raw = _median_rate(raw_executemany, args.points, args.repeats)
    mlflow = _median_rate(mlflow_log_batch, min(args.points, 50_000), 1)
    assert ours is not None and raw is not None
    print(f"store API {ours:,.0f} points/s, raw executemany {raw:,.0f}", flush=True)
    mlflow_row = (
        f"| MLflow SQLite tracking store, `log_batch` of {BATCH} | {mlflow:,.0f} | {mlflow / raw:.2f} |"
        if mlflow
        else "| MLflow SQLite tracking store | not installed (`pip install mlflow` to add this row) | |"
    )
    before_row = ""
    if args.baseline_code is not None:
        here = Path(__file__).resolve().parents[1]
        turns = side_by_side(
            {"before": args.baseline_code.resolve(), "now": here}, args.points, args.repeats
        )
        before_row = (
            f"| side by side, fresh processes in turns: store API before this change | "
            f"{turns['before']:,.0f} | now {turns['now']:,.0f} "
            f"({turns['now'] / turns['before']:.2f}x) |\n"
        )
        print(before_row, flush=True)
    sizes = {layout: sqlite_bytes(layout) for layout in ("v2", "v3")}
    pg = (
        {layout: postgres_bytes(args.postgres, layout) for layout in ("v2", "v3")}
        if args.postgres
        else {}
    )
    size_rows = []
    for layout, label in (
        ("v2", "version 2 (before): row id, metric name, float wall time"),
        ("v3", "**version 3**: metric id, wall time in ms, no row id"),
    ):
        n, sqlite_size = sizes[layout]
        pg_cell = f"{pg[layout][1] / pg[layout][0]:.1f} B" if pg else "not measured (no --postgres)"
        size_rows.append(
            f"| {label} | {n:,} | {sqlite_size / 1e6:.2f} MB | "
            f"**{sqlite_size / n:.1f} B** | {pg_cell} |"
        )
        print(size_rows[-1], flush=True)
    per_point = sizes["v3"][1] / sizes["v3"][0]
    size_verdict = (
        "met" if per_point <= SIZE_TARGET else f"MISSED by {per_point - SIZE_TARGET:.1f} B"
    )
    rate_verdict = "met" if ours >= RATE_TARGET else f"MISSED by {RATE_TARGET - ours:,.0f} points/s"
    write_fragment(
        "ingest",
        f"""## Store ingest and size

{args.points:,} points in writes of {BATCH} (one trial report's worth), one transaction each,
into a fresh SQLite file in WAL mode with synchronous=NORMAL (both writers); medians of
{args.repeats} runs. Raw `executemany` is a plain INSERT into the same table through
SQLAlchemy; the store API also looks up the trial and metric ids, skips points already
stored (one primary-key range probe per metric), and logs the write for incremental reads.

| writer | points/s | vs raw executemany |
|---|---:|---:|
| **store API** (`add_points`: idempotent insert, NaN handling, write log) | **{ours:,.0f}** | {ours / raw:.2f} |
| raw SQLAlchemy `executemany` into the same table | {raw:,.0f} | 1.00 |
{before_row}{mlflow_row}

Target: >= {RATE_TARGET:,} points/s through the store API: {rate_verdict}. Load average
during this run: {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores (the machine is shared); absolute rates
fall with the load, so the side-by-side ratio, where measured, is the comparable figure.

Store size of a sweep shaped like the seed grid ({GRID_TRIALS} trials, {GRID_PARALLEL} at a time,
each {GRID_STEPS:,} training-loss steps and {GRID_EVALS} evaluations of val_loss and val_acc,
written one report of {GRID_REPORT} steps at a time, as the driver does). SQLite: the whole
file after a WAL checkpoint (sweeps, trials and events included). PostgreSQL: the point
tables with their indexes (`pg_total_relation_size`), after `VACUUM ANALYZE`.

| layout | points | SQLite file | SQLite per point | PostgreSQL per point |
|---|---:|---:|---:|---:|
{chr(10).join(size_rows)}

Target: <= {SIZE_TARGET:.0f} bytes per point on SQLite: {size_verdict}. A SQLite point is one
row of the (trial, metric, step) key's own B-tree: the key, the value (8 bytes), the wall
time as milliseconds after the trial's creation (2-4 bytes), about 25 bytes with the cell's
bookkeeping. PostgreSQL keeps a 24-byte header per row and a separate primary-key index, so
its figure stays higher; it falls by the same columns.

{stamp(f"python -m benchmarks.bench_ingest --points {args.points} --repeats {args.repeats}" + (" --postgres URL" if args.postgres else "") + (" --baseline-code DIR" if args.baseline_code else ""))}""",
    )


if __name__ == "__main__":
    main()
