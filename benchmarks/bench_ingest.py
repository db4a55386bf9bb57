"""Store ingest: metric points per second into SQLite through the store API, next to raw
SQLAlchemy executemany into the same table (and MLflow's SQLite tracking store, if installed).

    python -m benchmarks.bench_ingest [--points N] [--repeats R]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import sqlalchemy as sa

from benchmarks._common import stamp, write_fragment
from runner.store import _schema as schema
from runner.store import open_store

BATCH = 1000  # points per write: about what one trial's report carries


def _batches(n: int) -> list[list[tuple[str, int, float, float]]]:
    now = time.time()
    rows = [("train_loss", s, 1.0 / (s + 1), now) for s in range(n)]
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
        conn.execute(schema.sweeps.insert().values(
            id="bench", name="bench", spec="{}", status="running", metric="m", mode="max",
            n_trials=1, created_at=0.0))
        trial = conn.execute(schema.trials.insert().values(
            sweep_id="bench", ray_id="t0", config="{}", status="running", created_at=0.0,
        )).inserted_primary_key[0]  # type: ignore[index]
    batches = [[{"trial_id": trial, "metric": m, "step": s, "value": v, "wall_time": w}
                for m, s, v, w in batch] for batch in _batches(n)]
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
        client.log_batch(run.info.run_id, metrics=[
            Metric(m, v, int(w * 1000), s) for m, s, v, w in batch])
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--points", type=int, default=500_000)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    ours = _median_rate(store_api, args.points, args.repeats)
    raw = _median_rate(raw_executemany, args.points, args.repeats)
    mlflow = _median_rate(mlflow_log_batch, min(args.points, 50_000), 1)
    assert ours is not None and raw is not None
    mlflow_row = (
        f"| MLflow SQLite tracking store, `log_batch` of {BATCH} | {mlflow:,.0f} | {mlflow / raw:.2f} |"
        if mlflow else "| MLflow SQLite tracking store | not installed (`pip install mlflow` to add this row) | |"
    )
    write_fragment("ingest", f"""## Store ingest: points per second into SQLite

{args.points:,} points in writes of {BATCH} (one trial report's worth), one transaction each,
into a fresh SQLite file in WAL mode with synchronous=NORMAL (both writers); medians of
{args.repeats} runs. Raw `executemany` goes through SQLAlchemy's insertmanyvalues path (a
plain INSERT on a table with an autoincrement key); the store's idempotent
`INSERT ... ON CONFLICT DO NOTHING` is sent as one DBAPI executemany.

| writer | points/s | vs raw executemany |
|---|---:|---:|
| **store API** (`add_points`: idempotent insert, NaN handling) | **{ours:,.0f}** | {ours / raw:.2f} |
| raw SQLAlchemy `executemany` into the same table | {raw:,.0f} | 1.00 |
{mlflow_row}

Target: >= 100,000 points/s through the store API.

{stamp(f"python -m benchmarks.bench_ingest --points {args.points} --repeats {args.repeats}")}""")


if __name__ == "__main__":
    main()
