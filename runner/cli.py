"""The `sweepscope` command line: run, resume, ls, status, export, stop, migrate, dashboard.

Exit status: 0 completed, 2 a mistake in the input (a bad spec, an unknown sweep, a store
URL that holds no store: one paragraph naming the field, the value and the fix), 1 a
failure of the infrastructure (a store that does not answer) or an unexpected error (one
paragraph; the traceback goes to a log file it names), 130 stopped.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
import traceback
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from runner.errors import InfrastructureError, SpecError, SweepscopeError
from runner.redact import mask_url, redact
from runner.store import (
    DEFAULT_LOCK_TIMEOUT,
    DEFAULT_OUTAGE_LIMIT,
    Store,
    TrialStatus,
    default_url,
    open_store,
    require_sweep,
    sweep_status,
)

__all__ = ["main"]

EXIT_FAILED = 1
EXIT_USAGE = 2
EXIT_INTERRUPTED = 130
LOG_DIR = Path(".sweepscope") / "logs"


def _when(ts: float | None) -> str:
    return "-" if ts is None else time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(ts))


# -- commands ----------------------------------------------------------------------------
def cmd_run(args: argparse.Namespace) -> int:
    from runner.driver.launch import run_sweep
    from runner.spec import load_spec
    from runner.store import reconcile

    spec = load_spec(args.spec, allow_large=args.allow_large)  # everything checked first
    if args.name:
        spec = spec.renamed(args.name)
    store = _open_for_writing(args.store)
    for sweep_id in reconcile(store):
        print(
            f"note: sweep {sweep_id} had lost its driver: marked stopped (should that driver "
            f"still run, it stops at its next heartbeat); resume with `sweepscope resume "
            f"{sweep_id}`"
        )

    def announce(sweep_id: str) -> None:
        print(f"sweep {sweep_id}: {spec.n_trials} trials of {spec.trainable}")
        print(f"store: {store.url}")
        print(f"watch: sweepscope dashboard --store {store.url}   stop: sweepscope stop {sweep_id}")
        sys.stdout.flush()

    return _finish(
        store,
        args.store,
        args.spec,
        lambda: run_sweep(
            spec,
            store=store,
            address=args.address,
            max_concurrent=args.max_concurrent,
            storage_path=args.storage_path,
            outage_limit=args.store_outage_limit,
            on_start=announce,
        ),
    )


def cmd_resume(args: argparse.Namespace) -> int:
    from runner.driver.launch import resume_sweep
    from runner.spec import load_spec

    spec_file = load_spec(args.spec) if args.spec else None
    store = _open_for_writing(args.store)

    def announce(sweep_id: str) -> None:
        print(f"resuming sweep {sweep_id}; store: {store.url}")
        sys.stdout.flush()

    return _finish(
        store,
        args.store,
        f"the spec of sweep {args.sweep}",
        lambda: resume_sweep(
            args.sweep,
            store=store,
            address=args.address,
            spec_file=spec_file,
            outage_limit=args.store_outage_limit,
            on_start=announce,
        ),
    )


def _open_for_writing(url: str | None) -> Store:
    """The runner's store: created where the URL holds none. A store of an earlier schema
    is refused with the `sweepscope migrate` command to run (exit 2): upgrading a shared
    store under older readers and drivers is for the user to decide, never a side effect."""
    return open_store(url, create=True)


def cmd_migrate(args: argparse.Namespace) -> int:
    """Create the store's schema, or upgrade an earlier one in place (refused while a sweep
    on it has a live driver, unless --force); optionally grant a PostgreSQL role the
    dashboard's rights (read, and set stop requests)."""
    from runner.store import migrate_store

    def waiting(line: str) -> None:
        print(line, file=sys.stderr, flush=True)

    with migrate_store(
        args.store, force=args.force, lock_timeout=args.lock_timeout, on_wait=waiting
    ) as store:
        for step in store.migrated:
            print(f"store {store.url}: upgraded the schema in place ({step})")
        if store.migrated:
            print(
                "note: sweepscope versions older than this one now refuse this store "
                "(written by a newer sweepscope): upgrade every runner and dashboard "
                "that uses it"
            )
        print(f"store {store.url}: schema version {store.schema_version}")
        if args.grant_dashboard:
            from runner.store._roles import grant_dashboard_role

            grant_dashboard_role(args.store or default_url(), args.grant_dashboard)
            print(f"role {args.grant_dashboard}: may read the store and set stop requests")
    return 0


def _finish(store: Store, url: str | None, source: str, start: Any) -> int:
    """Run or resume, then print the summary; the exit status follows the sweep's status.

    `source` names the spec in the error for a metric the trials do not report."""
    from runner.status import SweepStatus

    try:
        outcome = start()
    except KeyboardInterrupt:  # before the sweep's trials started (run_sweep handles later)
        print(
            "interrupted before the sweep's trials ran. Writes the store had not taken, if "
            "any, stay in the sweep's spill file; run the same command again (or `sweepscope "
            "resume SWEEP`) to go on.",
            file=sys.stderr,
        )
        return EXIT_INTERRUPTED
    finally:
        store.close()
    for note in outcome.notes:
        print(f"note: {note}", file=sys.stderr)
    if isinstance(outcome.error, SpecError):
        raise SpecError(source, outcome.error.problems)  # main() prints it: exit 2
    if outcome.error is not None:
        raise outcome.error  # the store stayed away: exit 1
    resume = f"sweepscope resume {outcome.sweep_id}" + (f" --store {mask_url(url)}" if url else "")
    if outcome.spill is not None:  # interrupted while the store was away: do not read it
        counts = ", ".join(f"{n} {s}" for s, n in sorted(outcome.counts.items()))
        held = f"{outcome.held_points:,} points and " if outcome.held_points else ""
        print(
            f"interrupted: sweep {outcome.sweep_id} stopped, resumable ({counts}). The store "
            f"{store.url} has not taken {held}the status changes of the sweep's end in time: "
            f"they are kept in {outcome.spill}, not in the store yet. When the store answers, "
            f"`{resume}` writes them first, then continues the sweep.",
            file=sys.stderr,
        )
        return EXIT_INTERRUPTED
    with open_store(url) as reader:
        _print_summary(reader, outcome.sweep_id)
    if outcome.status == SweepStatus.STOPPED:
        print(f"resume with: {resume}")
        return EXIT_INTERRUPTED
    return 0 if outcome.status == SweepStatus.COMPLETED else EXIT_FAILED


def _print_summary(store: Store, sweep_id: str) -> None:
    sweep = require_sweep(store, sweep_id)
    counts = ", ".join(f"{n} {s}" for s, n in sorted(sweep["counts"].items()))
    took = (sweep["ended_at"] or time.time()) - sweep["created_at"]
    print(f"sweep {sweep_id} {sweep['status']} in {took:.1f}s: {counts}")
    if _seed_key(sweep) is not None:
        _print_configurations(store, sweep, head=5)
        return
    table = _trial_table(store, sweep)
    if not table.empty:
        print(f"best trials by {sweep['metric']} ({sweep['mode']}):")
        print(table.head(5).to_string(index=False))


def _seed_key(sweep: dict[str, Any]) -> str | None:
    from runner.configurations import seed_key

    return seed_key(sweep["spec"])


def _varied(sweep: dict[str, Any]) -> list[str]:
    spec = sweep["spec"]
    return list(spec.get("grid", {})) + list(spec.get("sample", {}))


def _print_configurations(store: Store, sweep: dict[str, Any], head: int | None = None) -> None:
    """A seeded sweep: the best configuration by its mean over seeds, with its interval and
    the configurations it cannot be told apart from, then one row per configuration."""
    from runner.configurations import (
        best_configuration,
        configuration_label,
        configuration_table,
        final_values,
    )

    trials = store.trials(sweep["id"])
    points = store.points(sweep["id"], metrics=[sweep["metric"]])
    best = best_configuration(sweep, trials, points)
    if best is not None:
        interval = "" if best.low != best.low else f" [{best.low:.4g}, {best.high:.4g}]"
        print(
            f"best configuration by mean final {sweep['metric']} over seeds ({sweep['mode']}): "
            f"{configuration_label(str(best.config), _varied(sweep))}: {best.mean:.4g}"
            f"{interval} over {best.n} seeds"
        )
        if best.tied_with:
            print(f"  tied with {len(best.tied_with)} more within seed noise (95% confidence)")
    table = configuration_table(
        trials,
        final_values(points),
        varied=_varied(sweep),
        seed_key=_seed_key(sweep),
        metric=sweep["metric"],
        mode=sweep["mode"],
    )
    if not table.empty:
        print(f"configurations by mean final {sweep['metric']} over seeds:")
        print((table.head(head) if head else table).to_string(index=False))


def _trial_table(store: Store, sweep: dict[str, Any]) -> Any:
    """One row per trial: id, status, the varied hyperparameters, epochs, best metric."""
    import pandas as pd

    trials = store.trials(sweep["id"])
    if not trials:
        return pd.DataFrame()
    seed_key = _seed_key(sweep)
    varied = _varied(sweep) + ([seed_key] if seed_key is not None else [])
    points = store.points(sweep["id"], metrics=[sweep["metric"]])
    agg = "max" if sweep["mode"] == "max" else "min"
    best = (
        points.groupby("trial_id")["value"].agg(agg) if not points.empty else pd.Series(dtype=float)
    )
    rows = []
    for t in trials:
        row = {"trial": t["id"], "status": t["status"]}
        row.update({k: t["config"].get(k) for k in varied})
        row["epochs"] = t["last_epoch"]
        row[f"best {sweep['metric']}"] = best.get(t["id"])
        rows.append(row)
    frame = pd.DataFrame(rows)
    return frame.sort_values(f"best {sweep['metric']}", ascending=agg == "min", na_position="last")


def cmd_ls(args: argparse.Namespace) -> int:
    with open_store(args.store) as store:
        sweeps = store.sweeps()
    if not sweeps:
        print(f"no sweeps in {mask_url(args.store or default_url())}")
        return 0
    print(f"{'sweep':<44} {'status':<12} {'done/total':>10} {'best':>8}  started")
    for s in sweeps:
        done = sum(n for st, n in s["counts"].items() if st in TrialStatus.finished())
        best = "-" if s["best"] is None else f"{s['best']:.4g}"
        progress = f"{done}/{s['n_trials']}"
        print(
            f"{s['id']:<44} {sweep_status(s):<12} {progress:>10} "
            f"{best:>8}  {_when(s['created_at'])}"
        )
    return 0


def cmd_status(args: argparse.Namespace) -> int:
    with open_store(args.store) as store:
        sweep = require_sweep(store, args.sweep)
        counts = (
            ", ".join(f"{n} {s}" for s, n in sorted(sweep["counts"].items())) or "no trials yet"
        )
        print(
            f"sweep {sweep['id']} ({sweep['name']}): {sweep_status(sweep)}; {counts}; "
            f"{sweep['n_trials']} planned"
        )
        print(f"started {_when(sweep['created_at'])}, ended {_when(sweep['ended_at'])}")
        if sweep["message"]:
            print(f"message: {sweep['message']}")
        if _seed_key(sweep) is not None:
            _print_configurations(store, sweep)
        table = _trial_table(store, sweep)
        if not table.empty:
            print(table.sort_values("trial").to_string(index=False))
    return 0


def cmd_export(args: argparse.Namespace) -> int:
    import pandas as pd

    out = Path(args.output)
    if out.suffix not in (".csv", ".parquet"):
        raise SweepscopeError(
            f"-o {args.output!r}: unknown file type {out.suffix or '(none)'!r}. "
            "Fix: end the file name with .csv or .parquet."
        )
    with open_store(args.store) as store:
        sweep = require_sweep(store, args.sweep)
        trials = store.trials(sweep["id"])
        points = store.points(sweep["id"])
    info = pd.DataFrame(
        [{"trial_id": t["id"], "status": t["status"], **t["config"]} for t in trials]
    )
    frame = (
        points.drop(columns="id").merge(info, on="trial_id", how="left") if len(info) else points
    )
    frame.insert(0, "sweep_id", sweep["id"])
    if out.suffix == ".csv":
        frame.to_csv(out, index=False)
    else:
        try:
            frame.to_parquet(out, index=False)
        except ImportError as exc:
            raise SweepscopeError(
                "parquet export needs pyarrow. Fix: pip install 'sweepscope[parquet]' or use .csv."
            ) from exc
    print(f"wrote {len(frame)} points of {len(trials)} trials to {out}")
    return 0


def cmd_stop(args: argparse.Namespace) -> int:
    with open_store(args.store) as store:
        require_sweep(store, args.sweep)
        changed = store.request_stop(args.sweep, args.trial)
    target = f"trial {args.trial} of sweep {args.sweep}" if args.trial else f"sweep {args.sweep}"
    if changed:
        print(f"stop requested for {target}; the runner ends it within a few seconds.")
    else:
        print(f"{target} has already finished; nothing to stop.")
    return 0


def cmd_dashboard(args: argparse.Namespace) -> int:
    from dashboard.login import check_login
    from dashboard.serve import serve

    url = args.store or default_url()
    check_login(url)  # a refused password is said here, not first on a page
    return serve(store_url=url, host=args.host, port=args.port)


# -- parser ------------------------------------------------------------------------------
def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="sweepscope",
        description="Run hyperparameter sweeps on Ray Tune and watch them live.",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    store_help = "store URL (default: $SWEEPSCOPE_STORE or sqlite:///sweepscope.db)"
    outage: dict[str, Any] = {
        "type": _positive_seconds,
        "default": DEFAULT_OUTAGE_LIMIT,
        "metavar": "SECONDS",
        "help": "how long the store may stay away before the sweep stops, resumable "
        f"(default {DEFAULT_OUTAGE_LIMIT:g}); its writes are held meanwhile",
    }

    run = sub.add_parser("run", help="run a sweep from a YAML spec")
    run.add_argument("spec", help="sweep spec, e.g. experiments/sweeps/seed_grid.yaml")
    run.add_argument("--store", help=store_help)
    run.add_argument("--address", help="Ray cluster address (default: start Ray on this machine)")
    run.add_argument("--max-concurrent", type=_positive_int, help="most trials at once")
    run.add_argument("--name", help="sweep name (default: the spec's name)")
    run.add_argument(
        "--storage-path",
        default=os.environ.get("SWEEPSCOPE_STORAGE_PATH"),
        help="Ray Tune storage for checkpoints and resume; on a multi-node cluster, "
        "storage every node sees (default: $SWEEPSCOPE_STORAGE_PATH or .sweepscope/ray)",
    )
    run.add_argument(
        "--allow-large", action="store_true", help="allow grids larger than the trial limit"
    )
    run.add_argument("--store-outage-limit", **outage)
    run.set_defaults(func=cmd_run)

    resume = sub.add_parser("resume", help="continue a stopped or interrupted sweep")
    resume.add_argument("sweep")
    resume.add_argument("--store", help=store_help)
    resume.add_argument("--address", help="Ray cluster address (default: this machine)")
    resume.add_argument(
        "--spec",
        help="the sweep's spec file: refused if it changed since; also gives the webhook's "
        "full URL, which the store keeps as scheme and host only (or set SWEEPSCOPE_WEBHOOK)",
    )
    resume.add_argument("--store-outage-limit", **outage)
    resume.set_defaults(func=cmd_resume)

    migrate = sub.add_parser(
        "migrate",
        help="create the store's schema, or upgrade an earlier one in place (the only "
        "command that upgrades a store)",
    )
    migrate.add_argument("--store", help=store_help)
    migrate.add_argument(
        "--force",
        action="store_true",
        help="upgrade even while a sweep on the store has a live driver (it may fail; "
        "resume it afterwards)",
    )
    migrate.add_argument(
        "--lock-timeout",
        type=_positive_seconds,
        default=DEFAULT_LOCK_TIMEOUT,
        metavar="SECONDS",
        help="how long to wait for another process creating or upgrading the store, and on "
        f"PostgreSQL for each table the upgrade locks (default {DEFAULT_LOCK_TIMEOUT:g})",
    )
    migrate.add_argument(
        "--grant-dashboard",
        metavar="ROLE",
        help="PostgreSQL: let ROLE read the store and set stop requests, nothing else",
    )
    migrate.set_defaults(func=cmd_migrate)

    ls = sub.add_parser("ls", help="list the sweeps in the store")
    ls.add_argument("--store", help=store_help)
    ls.set_defaults(func=cmd_ls)

    status = sub.add_parser("status", help="show a sweep and its trials")
    status.add_argument("sweep")
    status.add_argument("--store", help=store_help)
    status.set_defaults(func=cmd_status)

    export = sub.add_parser("export", help="write a sweep's points to CSV or Parquet")
    export.add_argument("sweep")
    export.add_argument("-o", "--output", required=True, help="FILE.csv or FILE.parquet")
    export.add_argument("--store", help=store_help)
    export.set_defaults(func=cmd_export)

    stop = sub.add_parser("stop", help="stop a running sweep, or one trial of it")
    stop.add_argument("sweep")
    stop.add_argument("--trial", type=_positive_int, help="trial id (see `sweepscope status`)")
    stop.add_argument("--store", help=store_help)
    stop.set_defaults(func=cmd_stop)

    dash = sub.add_parser("dashboard", help="serve the live dashboard")
    dash.add_argument("--store", help=store_help)
    dash.add_argument("--port", type=_positive_int, default=8501)
    dash.add_argument(
        "--host",
        default="127.0.0.1",
        help="address to bind (default 127.0.0.1; others need SWEEPSCOPE_TOKEN to stop trials)",
    )
    dash.set_defaults(func=cmd_dashboard)
    return parser


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"{value} is not positive; give 1 or more")
    return value


def _positive_seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of seconds") from None
    if not 0 < value < float("inf"):
        raise argparse.ArgumentTypeError(f"{text} is not a positive number of seconds, e.g. 900")
    return value


def _log_failure(command: str) -> Path:
    """Write the traceback being handled to a log file (passwords masked); return its path."""
    LOG_DIR.mkdir(parents=True, exist_ok=True)
    path = LOG_DIR / f"{command}-{time.strftime('%Y%m%d-%H%M%S')}-{os.getpid()}.log"
    path.write_text(redact(traceback.format_exc()))
    return path.resolve()


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    prefix = f"sweepscope {args.command}: error:"
    try:
        return int(args.func(args))
    except InfrastructureError as exc:
        log = _log_failure(args.command)
        print(f"{prefix} {redact(str(exc))} (details: {log})", file=sys.stderr)
        return EXIT_FAILED
    except SweepscopeError as exc:
        print(f"{prefix} {redact(str(exc))}", file=sys.stderr)
        return EXIT_USAGE
    except Exception as exc:
        log = _log_failure(args.command)
        first = redact(str(exc)).strip().splitlines()[0] if str(exc).strip() else ""
        print(
            f"{prefix} unexpected failure: {exc.__class__.__name__}: {first}. The traceback is "
            f"in {log}. Fix: if the cause is not clear from it, report it with that file.",
            file=sys.stderr,
        )
        return EXIT_FAILED


if __name__ == "__main__":
    sys.exit(main())
