"""The `sweepscope` command line: run, resume, extend, ls, status, export, stop, migrate,
import, mcp, dashboard, and up / down (the warm runtime, runner.driver.runtime).

Exit status: 0 completed, 2 a mistake in the input (a bad spec, an unknown sweep, a store
URL that holds no store: one paragraph naming the field, the value and the fix), 1 a
failure of the infrastructure (a store that does not answer) or an unexpected error (one
paragraph; the traceback goes to a log file it names), 130 stopped.

For programs: `ls`, `status` and `export` take --json (one document, runner.views), `run`
and `resume` take --progress json (JSON lines, runner.driver.progress); the schemas are in
runner/schemas/, described in docs/json.md. A trial is named everywhere by its number in
its sweep, never by the store's id.
"""

from __future__ import annotations

import argparse
import math
import os
import subprocess
import sys
import time
import traceback
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

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

if TYPE_CHECKING:
    from runner.driver.progress import JsonProgress
    from runner.driver.runtime import Runtime

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
    events = _events(args, total=spec.n_trials, metric=spec.metric)
    for sweep_id in reconcile(store):
        note = (
            f"sweep {sweep_id} had lost its driver: marked stopped (should that driver "
            f"still run, it stops at its next heartbeat); resume with `sweepscope resume "
            f"{sweep_id}`"
        )
        if events is None:
            print(f"note: {note}")
        else:
            events.note(note)

    def announce(sweep_id: str) -> None:
        if events is not None:
            events.emit(
                "sweep_started",
                schema=_progress_schema(),
                sweep_id=sweep_id,
                name=spec.name,
                resumed=False,
                n_trials=spec.n_trials,
                trainable=spec.trainable,
                metric=spec.metric,
                mode=spec.mode,
                store=store.url,
            )
            return
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
            progress=True if events is None else events,
        ),
        events,
    )


def cmd_resume(args: argparse.Namespace) -> int:
    from runner.driver.launch import resume_sweep
    from runner.spec import load_spec

    spec_file = load_spec(args.spec) if args.spec else None
    store = _open_for_writing(args.store)
    events = None
    if args.progress == "json":
        sweep = require_sweep(store, args.sweep)
        events = _events(args, total=sweep["n_trials"], metric=sweep["metric"])

    def announce(sweep_id: str) -> None:
        if events is not None:
            sweep = require_sweep(store, sweep_id)
            events.emit(
                "sweep_started",
                schema=_progress_schema(),
                sweep_id=sweep_id,
                name=sweep["name"],
                resumed=True,
                n_trials=sweep["n_trials"],
                trainable=sweep["spec"].get("trainable"),
                metric=sweep["metric"],
                mode=sweep["mode"],
                store=store.url,
            )
            return
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
            progress=True if events is None else events,
        ),
        events,
    )


def cmd_extend(args: argparse.Namespace) -> int:
    from runner.driver.launch import extend_sweep
    from runner.extensions import (
        epochs_plan,
        grid_plan,
        parse_grid_values,
        refuse_unfinished,
        seeds_plan,
    )
    from runner.store import reconcile

    _check_extend_flags(args)
    store = _open_for_writing(args.store)
    reconcile(store)  # a sweep whose driver is gone is stopped, and says it has trials left
    sweep = require_sweep(store, args.sweep)
    trials = store.trials(sweep["id"])
    refuse_unfinished(sweep, trials)
    finals = store.points(sweep["id"], metrics=[sweep["metric"]])
    if args.seeds is not None:
        where = "top" if args.top else ("all" if args.all else args.where or "all")
        plan = seeds_plan(
            sweep,
            trials,
            finals,
            n=args.seeds,
            where=where,
            top=args.top,
            margin=args.margin,
            allow_large=args.allow_large,
        )
    elif args.grid:
        plan = grid_plan(sweep, trials, parse_grid_values(args.grid), allow_large=args.allow_large)
    else:
        plan = epochs_plan(sweep, trials, finals, n=args.epochs, top=args.top)
    if not plan.points:
        store.close()
        print(f"sweep {sweep['id']}: {plan.note}")
        return 0
    events = _events(args, total=len(plan.points), metric=sweep["metric"])

    def announce(sweep_id: str, round_: int) -> None:
        if events is not None:
            events.emit(
                "sweep_started",
                schema=_progress_schema(),
                sweep_id=sweep_id,
                name=sweep["name"],
                resumed=False,
                n_trials=len(plan.points),
                trainable=plan.spec.trainable,
                metric=sweep["metric"],
                mode=sweep["mode"],
                store=store.url,
            )
            return
        print(f"sweep {sweep_id}, round {round_}: {plan.detail}")
        print(f"store: {store.url}")
        print(f"stop: sweepscope stop {sweep_id}   resume: sweepscope resume {sweep_id}")
        sys.stdout.flush()

    return _finish(
        store,
        args.store,
        f"the spec of sweep {sweep['id']}",
        lambda: extend_sweep(
            sweep["id"],
            plan,
            store=store,
            address=args.address,
            max_concurrent=args.max_concurrent,
            outage_limit=args.store_outage_limit,
            on_start=announce,
            progress=True if events is None else events,
        ),
        events,
    )


def _check_extend_flags(args: argparse.Namespace) -> None:
    """One kind of extension per round, and only the options that go with it."""
    kinds = [args.seeds is not None, bool(args.grid), args.epochs is not None]
    if sum(kinds) != 1:
        raise SweepscopeError(
            "extend: give one of --seeds N, --grid KEY=V1,V2 or --epochs N (a round adds one "
            "kind). Fix: e.g. sweepscope extend SWEEP --seeds 2 --where undecided"
        )
    if (args.where or args.all) and args.seeds is None:
        raise SweepscopeError(
            "extend: --where goes with --seeds (which configurations get more seeds). Fix: "
            "use --top K to choose which trials --epochs continues"
        )
    if args.margin is not None and args.seeds is None:
        raise SweepscopeError(
            f"extend: --margin {args.margin:g} goes with --seeds N --where undecided (when a "
            "configuration is tied with the best). Fix: drop --margin, or add those flags"
        )
    if args.top and args.grid:
        raise SweepscopeError(
            "extend: --top goes with --seeds or --epochs; --grid runs every new combination. "
            "Fix: drop --top"
        )


def _progress_schema() -> str:
    from runner.views import schema_id

    return schema_id("progress")


def _events(args: argparse.Namespace, *, total: int, metric: str) -> JsonProgress | None:
    """With `--progress json`: the JSON progress, written to the stream main() set aside
    for it (stdout); None for the human line."""
    if args.progress != "json":
        return None
    from runner.driver.progress import JsonProgress

    return JsonProgress(total=total, metric=metric, stream=args.json_stream)


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


def _finish(
    store: Store, url: str | None, source: str, start: Any, events: JsonProgress | None = None
) -> int:
    """Run or resume, then print the summary (with `events`: the sweep_ended event); the
    exit status follows the sweep's status.

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
        if events is not None:
            events.emit("error", message="interrupted before the sweep's trials ran", exit=130)
        return EXIT_INTERRUPTED
    finally:
        store.close()
    for note in outcome.notes:
        print(f"note: {note}", file=sys.stderr)
        if events is not None:
            events.note(note)
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
        if events is not None:
            _sweep_ended(events, outcome, None, resume)
        return EXIT_INTERRUPTED
    with open_store(url) as reader:
        if events is None:
            _print_summary(reader, outcome.sweep_id)
        else:
            _sweep_ended(events, outcome, reader, resume)
    if outcome.status == SweepStatus.STOPPED:
        if events is None:
            print(f"resume with: {resume}")
        return EXIT_INTERRUPTED
    return 0 if outcome.status == SweepStatus.COMPLETED else EXIT_FAILED


def _sweep_ended(events: JsonProgress, outcome: Any, reader: Store | None, resume: str) -> None:
    """The last progress event: the sweep's status, its trials' counts and its best trial,
    as the store has them (`reader`), else as the driver saw them (the store was away)."""
    from runner.status import SweepStatus
    from runner.views import best_values, finite

    counts = {str(s): int(n) for s, n in sorted(outcome.counts.items())}
    best, best_trial, message = finite(outcome.best), None, None
    if reader is not None:
        sweep = require_sweep(reader, outcome.sweep_id)
        counts = {str(s): int(n) for s, n in sorted(sweep["counts"].items())}
        best, message = finite(sweep["best"]), sweep["message"]
        values = {k: v for k, v in best_values(reader, sweep).items() if math.isfinite(v)}
        if values:
            pick = max if sweep["mode"] == "max" else min
            store_id = pick(values, key=lambda k: values[k])
            number = {t["id"]: t["number"] for t in reader.trials(outcome.sweep_id)}
            best_trial = {"number": number[store_id], "value": finite(values[store_id])}
    events.emit(
        "sweep_ended",
        sweep_id=outcome.sweep_id,
        status=str(outcome.status),
        counts=counts,
        n_trials=events.total if reader is None else sweep["n_trials"],
        best=best,
        best_trial=best_trial,
        elapsed=round(outcome.elapsed, 3),
        message=message,
        spill=outcome.spill,
        resume=resume if outcome.status == SweepStatus.STOPPED else None,
    )


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


def _print_configurations(store: Store, sweep: dict[str, Any], head: int | None = None) -> None:
    """A seeded sweep: the best configuration by its mean over seeds, with its interval and
    the configurations it cannot be told apart from, then one row per configuration."""
    from runner.configurations import (
        best_configuration,
        configuration_label,
        configuration_table,
        final_values,
    )
    from runner.views import varied

    trials = store.trials(sweep["id"])
    points = store.points(sweep["id"], metrics=[sweep["metric"]])
    best = best_configuration(sweep, trials, points)
    if best is not None:
        interval = "" if best.low != best.low else f" [{best.low:.4g}, {best.high:.4g}]"
        print(
            f"best configuration by mean final {sweep['metric']} over seeds ({sweep['mode']}): "
            f"{configuration_label(str(best.config), varied(sweep))}: {best.mean:.4g}"
            f"{interval} over {best.n} seeds"
        )
        if best.tied_with:
            print(f"  tied with {len(best.tied_with)} more within seed noise (95% confidence)")
    table = configuration_table(
        trials,
        final_values(points),
        varied=varied(sweep),
        seed_key=_seed_key(sweep),
        metric=sweep["metric"],
        mode=sweep["mode"],
    )
    if not table.empty:
        print(f"configurations by mean final {sweep['metric']} over seeds:")
        print((table.head(head) if head else table).to_string(index=False))


def _trial_table(store: Store, sweep: dict[str, Any]) -> Any:
    """One row per trial: its number in the sweep (and its round, once the sweep was
    extended), status, the varied hyperparameters, epochs, best metric; best first."""
    import pandas as pd

    from runner.views import trial_views, varied

    trials = trial_views(store, sweep)
    if not trials:
        return pd.DataFrame()
    seed_key = _seed_key(sweep)
    shown = varied(sweep) + ([seed_key] if seed_key is not None else [])
    extended = any(t["round"] > 1 for t in trials)
    rows = []
    for t in trials:
        row = {"trial": t["number"]} | ({"round": t["round"]} if extended else {})
        row["status"] = t["status"]
        row.update({k: t["config"].get(k) for k in shown})
        row["epochs"] = t["last_epoch"]
        row[f"best {sweep['metric']}"] = t["best"]
        rows.append(row)
    frame = pd.DataFrame(rows)
    ascending = sweep["mode"] != "max"
    return frame.sort_values(f"best {sweep['metric']}", ascending=ascending, na_position="last")


def _print_json(document: dict[str, Any]) -> None:
    from runner.views import dumps

    print(dumps(document))


def cmd_ls(args: argparse.Namespace) -> int:
    with open_store(args.store) as store:
        sweeps = store.sweeps()
    if args.json:
        from runner.views import ls_view

        _print_json(ls_view(args.store or default_url(), sweeps))
        return 0
    if not sweeps:
        print(f"no sweeps in {mask_url(args.store or default_url())}")
        return 0
    print(f"{'sweep':<44} {'status':<12} {'done/total':>10} {'best':>8}  started")
    means = _best_means(args.store, sweeps)
    for s in sweeps:
        done = sum(n for st, n in s["counts"].items() if st in TrialStatus.finished())
        best = "-" if s["best"] is None else f"{s['best']:.4g}"
        if s["id"] in means:  # seeded: the best configuration's mean, not the luckiest trial
            best = "-" if means[s["id"]] is None else f"{means[s['id']]:.4g}*"
        progress = f"{done}/{s['n_trials']}"
        print(
            f"{s['id']:<44} {sweep_status(s):<12} {progress:>10} "
            f"{best:>8}  {_when(s['created_at'])}"
        )
    if means:
        print("* a seeded sweep: the best configuration's mean final over its seeds")
    return 0


def _best_means(url: str | None, sweeps: list[dict[str, Any]]) -> dict[str, float | None]:
    """For each seeded sweep, its best configuration's mean final value (None before any
    configuration has one): what `ls` shows as its best, never its luckiest trial."""
    from runner.configurations import best_configuration

    seeded = [s for s in sweeps if _seed_key(s) is not None]
    means: dict[str, float | None] = {}
    if not seeded:
        return means
    with open_store(url) as store:
        for s in seeded:
            points = store.points(s["id"], metrics=[s["metric"]])
            best = best_configuration(s, store.trials(s["id"]), points)
            means[s["id"]] = None if best is None else best.mean
    return means


def cmd_status(args: argparse.Namespace) -> int:
    with open_store(args.store) as store:
        sweep = require_sweep(store, args.sweep)
        if args.json:
            from runner.views import status_view

            _print_json(status_view(store, sweep))
            return 0
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


def _export_to(args: argparse.Namespace) -> int:
    """`--to tensorboard DIR` or `--to mlflow URI`: one run per trial (runner.exporters)."""
    from runner.exporters import export_sweep

    if args.json:
        raise SweepscopeError(
            "--json: only with -o (it describes the table written). Fix: leave out --json."
        )
    target, dest = args.to
    with open_store(args.store) as store:
        print(export_sweep(store, args.sweep, target, dest))
    return 0


def cmd_export(args: argparse.Namespace) -> int:
    """Every point of the sweep, one row each, with its trial's number, round, status and
    config (the store's internal ids left out: they mean nothing outside it)."""
    if args.to:
        return _export_to(args)
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
        [
            {
                "trial_id": t["id"],
                "trial": t["number"],
                "round": t["round"],
                "status": t["status"],
                **t["config"],
            }
            for t in trials
        ]
    )
    if info.empty:  # no trials yet: the same columns, no rows
        info = pd.DataFrame(columns=["trial_id", "trial", "round", "status"], dtype="int64")
    frame = points.drop(columns="id").merge(info, on="trial_id", how="left")
    frame.insert(0, "trial", frame.pop("trial"))
    frame = frame.drop(columns="trial_id")
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
    if args.json:
        from runner.views import export_view

        _print_json(
            export_view(
                sweep["id"],
                out,
                points=len(frame),
                trials=len(trials),
                columns=[str(c) for c in frame.columns],
            )
        )
    else:
        print(f"wrote {len(frame)} points of {len(trials)} trials to {out}")
    return 0


def cmd_stop(args: argparse.Namespace) -> int:
    with open_store(args.store) as store:
        require_sweep(store, args.sweep)
        store_id = None if args.trial is None else _trial_id(store, args.sweep, args.trial)
        changed = store.request_stop(args.sweep, store_id)
    target = f"trial {args.trial} of sweep {args.sweep}" if args.trial else f"sweep {args.sweep}"
    if changed:
        print(f"stop requested for {target}; the runner ends it within a few seconds.")
    else:
        print(f"{target} has already finished; nothing to stop.")
    return 0


def _trial_id(store: Store, sweep_id: str, number: int) -> int:
    """The store's id of the sweep's trial `number` (as `sweepscope status` shows it)."""
    ids = {t["number"]: t["id"] for t in store.trials(sweep_id)}
    if number in ids:
        return int(ids[number])
    valid = f"1 to {max(ids)}" if ids else "none yet: the sweep has no trials"
    raise SweepscopeError(
        f"--trial {number}: sweep {sweep_id} has no trial {number} (its trials: {valid}). "
        f"Fix: pass a trial number that `sweepscope status {sweep_id}` lists."
    )


def cmd_dashboard(args: argparse.Namespace) -> int:
    from dashboard.login import check_login
    from dashboard.serve import serve

    url = args.store or default_url()
    check_login(url)  # a refused password is said here, not first on a page
    return serve(store_url=url, host=args.host, port=args.port)


def cmd_up(args: argparse.Namespace) -> int:
    from runner.driver import runtime

    with runtime.changing():
        found, note = runtime.find()
        if note is not None:
            print(f"note: {note}", file=sys.stderr)
        if found is not None:
            print(
                f"the runtime is already up since {_when(found.started_at)}: {_runtime_text(found)}"
            )
            print("`sweepscope down` stops it")
            return 0
        url = args.store or default_url()
        if not args.no_dashboard:
            from dashboard.login import check_login

            runtime.check_dashboard_port(args.port)
            check_login(url)  # a refused password is said here, not first on a page
        started = time.monotonic()
        up = runtime.start(num_cpus=args.num_cpus)
        if not args.no_dashboard:
            up = _start_dashboard(up, url, args.port)
    print(f"runtime up in {time.monotonic() - started:.1f} s: {_runtime_text(up)}")
    print("`sweepscope run` on this machine now uses it; `sweepscope down` stops it")
    return 0


def _start_dashboard(up: Runtime, url: str, port: int) -> Runtime:
    """The dashboard beside the runtime, in a session of its own (the store's URL passed in
    the environment, never on a command line others can list)."""
    from dataclasses import replace

    from runner.driver import runtime

    log = (runtime.runtime_dir() / "dashboard.log").open("ab")
    child = subprocess.Popen(
        [sys.executable, "-m", "runner.cli", "dashboard", "--port", str(port)],
        env={**os.environ, "SWEEPSCOPE_STORE": url},
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    up = replace(
        up, dashboard_url=f"http://127.0.0.1:{port}", dashboard_pid=child.pid, store=mask_url(url)
    )
    runtime.record(up)  # `down` stops it even if it never answers
    deadline = time.monotonic() + runtime.START_TIMEOUT
    while not runtime.answers(port):
        if child.poll() is not None or time.monotonic() > deadline:
            raise InfrastructureError(
                f"the dashboard did not start on port {port} (see "
                f"{runtime.runtime_dir() / 'dashboard.log'}); Ray's runtime is up. Fix: read "
                "that log, then `sweepscope down` and `sweepscope up` again."
            )
        time.sleep(0.2)
    return up


def _runtime_text(up: Runtime) -> str:
    text = f"Ray at {up.address} (this machine only, token auth)"
    if up.dashboard_url:
        text += f", dashboard at {up.dashboard_url} (store {up.store})"
    return text


def cmd_down(args: argparse.Namespace) -> int:
    from runner.driver import runtime

    with runtime.changing():
        gone = runtime.stop(force=args.force)
    if gone is None:
        print("no runtime is up")
        return 0
    print(f"runtime stopped: {_runtime_text(gone)}")
    return 0


# -- parser ------------------------------------------------------------------------------
def build_parser() -> argparse.ArgumentParser:
    """Every command and its options. Long on purpose: the command line in one place, read
    top to bottom as `--help` lists it; commands with option groups of their own are added by
    their own functions (_add_extend, runner.importer.register, runner.mcp_server.register)."""
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
    progress: dict[str, Any] = {
        "choices": ["line", "json"],
        "default": "line",
        "help": "line: one live line on stderr (default); json: JSON lines on stdout, one "
        "object an event, and nothing else there (docs/json.md)",
    }
    as_json = "print one JSON document instead (schema: docs/json.md)"

    run = sub.add_parser("run", help="run a sweep from a YAML spec")
    run.add_argument("spec", help="sweep spec, e.g. experiments/sweeps/seed_grid.yaml")
    run.add_argument("--store", help=store_help)
    run.add_argument(
        "--address",
        help="Ray cluster address (default: the runtime of `sweepscope up` if it is up, else "
        "a Ray of the sweep's own on this machine; `local`: always one of its own)",
    )
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
    run.add_argument("--progress", **progress)
    run.set_defaults(func=cmd_run)

    resume = sub.add_parser("resume", help="continue a stopped or interrupted sweep")
    resume.add_argument("sweep")
    resume.add_argument("--store", help=store_help)
    resume.add_argument(
        "--address",
        help="Ray cluster address (default: the runtime of `sweepscope up` if it is up, else "
        "a Ray of its own on this machine)",
    )
    resume.add_argument(
        "--spec",
        help="the sweep's spec file: refused if it changed since; also gives the webhook's "
        "full URL, which the store keeps as scheme and host only (or set SWEEPSCOPE_WEBHOOK)",
    )
    resume.add_argument("--store-outage-limit", **outage)
    resume.add_argument("--progress", **progress)
    resume.set_defaults(func=cmd_resume)

    _add_extend(sub, store_help, {"outage": outage, "progress": progress})

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
    ls.add_argument("--json", action="store_true", help=as_json)
    ls.set_defaults(func=cmd_ls)

    status = sub.add_parser("status", help="show a sweep and its trials")
    status.add_argument("sweep")
    status.add_argument("--store", help=store_help)
    status.add_argument("--json", action="store_true", help=as_json)
    status.set_defaults(func=cmd_status)

    export = sub.add_parser(
        "export", help="write a sweep's points to CSV or Parquet, or to TensorBoard or MLflow"
    )
    export.add_argument("sweep")
    where = export.add_mutually_exclusive_group(required=True)
    where.add_argument("-o", "--output", help="FILE.csv or FILE.parquet: one row per point")
    where.add_argument(
        "--to",
        nargs=2,
        metavar=("TARGET", "DEST"),
        help="tensorboard DIR (a new or empty log directory) or mlflow TRACKING_URI (e.g. "
        "sqlite:///mlflow.db): one run per trial",
    )
    export.add_argument("--store", help=store_help)
    export.add_argument("--json", action="store_true", help=f"after writing, {as_json}")
    export.set_defaults(func=cmd_export)

    stop = sub.add_parser("stop", help="stop a running sweep, or one trial of it")
    stop.add_argument("sweep")
    stop.add_argument(
        "--trial",
        type=_positive_int,
        metavar="N",
        help="the sweep's trial number N (as `sweepscope status` lists them)",
    )
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
    up = sub.add_parser(
        "up",
        help="start a runtime that stays: Ray on this machine and the dashboard; later runs "
        "here use it and start faster",
    )
    up.add_argument("--store", help=f"the dashboard's {store_help}")
    up.add_argument("--port", type=_positive_int, default=8501, help="dashboard port (8501)")
    up.add_argument("--no-dashboard", action="store_true", help="Ray only")
    up.add_argument("--num-cpus", type=_positive_int, help="CPUs for trials (default: all)")
    up.set_defaults(func=cmd_up)
    down = sub.add_parser("down", help="stop the runtime `sweepscope up` started")
    down.add_argument(
        "--force",
        action="store_true",
        help="stop it even while sweeps run on it (their trials end; resume continues them)",
    )
    down.set_defaults(func=cmd_down)
    from runner.importer import register as register_import
    from runner.mcp_server import register as register_mcp

    register_import(sub, store_help)
    register_mcp(sub, store_help)
    return parser


def _add_extend(sub: Any, store_help: str, shared: dict[str, dict[str, Any]]) -> None:
    """The `extend` command's options: one kind of round, and which configurations or
    trials it is for."""
    extend = sub.add_parser(
        "extend",
        help="add seeds, grid values or epochs to a finished sweep, as its next round",
    )
    extend.add_argument("sweep")
    what = extend.add_argument_group("what the round adds (one of)")
    what.add_argument(
        "--seeds", type=_positive_int, metavar="N", help="N more seeds per chosen configuration"
    )
    what.add_argument(
        "--grid",
        action="append",
        metavar="KEY=V1,V2",
        help="more values for a grid key (repeatable): only the new combinations run",
    )
    what.add_argument(
        "--epochs",
        type=_positive_int,
        metavar="N",
        help="continue completed trials from their last checkpoint for N more epochs",
    )
    which = extend.add_mutually_exclusive_group()
    which.add_argument(
        "--where",
        choices=["undecided", "all"],
        help="with --seeds: 'undecided' = the best configuration and those that could still "
        "beat it by more than --margin (significance-gated replication; a sweep where each is "
        "worse or tied within the margin gets none); 'all' (the default) = every one",
    )
    which.add_argument("--all", action="store_true", help="with --seeds: every configuration")
    which.add_argument(
        "--top",
        type=_positive_int,
        metavar="K",
        help="only the K best configurations (--seeds), or trials (--epochs; with seeds: "
        "every seed of the K best configurations)",
    )
    extend.add_argument(
        "--margin",
        type=float,
        metavar="DELTA",
        help="with --where undecided: the largest difference in the metric not worth telling "
        "apart; a configuration that cannot beat the best by more than it (95%% confidence) "
        "needs no more seeds (default: 0.75 x the typical seed sd; 0: tell every one apart)",
    )
    extend.add_argument("--store", help=store_help)
    extend.add_argument(
        "--address",
        help="Ray cluster address (default: the runtime of `sweepscope up` if it is up, else "
        "a Ray of its own on this machine)",
    )
    extend.add_argument("--max-concurrent", type=_positive_int, help="most trials at once")
    extend.add_argument(
        "--allow-large", action="store_true", help="allow the sweep beyond the trial limit"
    )
    extend.add_argument("--store-outage-limit", **shared["outage"])
    extend.add_argument("--progress", **shared["progress"])
    extend.set_defaults(func=cmd_extend)


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


def _set_aside_stdout() -> TextIO:
    """stdout for the JSON progress alone: the stream the events go to, while whatever else
    this process (Ray, a library, a C extension) would print on file descriptor 1 goes to
    stderr instead. Where stdout has no descriptor (a test's capture), stdout itself."""
    try:
        fd = sys.stdout.fileno()
    except (AttributeError, OSError, ValueError):
        return sys.stdout
    sys.stdout.flush()
    events = os.fdopen(os.dup(fd), "w", buffering=1, encoding="utf-8")
    os.dup2(sys.stderr.fileno(), fd)
    return events


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    prefix = f"sweepscope {args.command}: error:"
    args.json_stream = _set_aside_stdout() if getattr(args, "progress", None) == "json" else None

    def failed(text: str, status: int) -> int:
        print(f"{prefix} {text}", file=sys.stderr)
        if args.json_stream is not None:  # the last event says why the sweep did not end
            from runner.driver.progress import event_line

            args.json_stream.write(event_line("error", message=text, exit=status))
            args.json_stream.flush()
        return status

    try:
        return int(args.func(args))
    except InfrastructureError as exc:
        log = _log_failure(args.command)
        return failed(f"{redact(str(exc))} (details: {log})", EXIT_FAILED)
    except SweepscopeError as exc:
        return failed(redact(str(exc)), EXIT_USAGE)
    except Exception as exc:
        log = _log_failure(args.command)
        first = redact(str(exc)).strip().splitlines()[0] if str(exc).strip() else ""
        return failed(
            f"unexpected failure: {exc.__class__.__name__}: {first}. The traceback is "
            f"in {log}. Fix: if the cause is not clear from it, report it with that file.",
            EXIT_FAILED,
        )


if __name__ == "__main__":
    sys.exit(main())
