"""What an AI agent may read from the store, and do to it: the tools `sweepscope mcp`
serves (runner.mcp_server), as plain methods returning JSON-ready dicts.

An agent's context is what is scarce, so every answer is compact and bounded: a sweep's
summary is its counts, its best configurations (a seeded sweep: by their mean over seeds,
with intervals, never the luckiest trial; runner.configurations and runner.verdicts) or its
best trials, and the noise floor, under 2 KB even for 1,000 trials; curves come downsampled
to the number of points asked for. Trials are named by their number within the sweep
(1..N), as users see them.

Control goes the way it always goes here: a stop request in the store (the driver's
stopper acts on it), or a `sweepscope run` / `extend` process started as a user would start
one, detached, so that it outlives the server. Nothing here imports the driver.
"""

from __future__ import annotations

import json
import math
import os
import re
import secrets
import subprocess
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any, TypeVar

import numpy as np
from pydantic import Field

from runner import verdicts
from runner.configurations import config_key, final_values, finals_by_configuration, seed_key
from runner.errors import SweepscopeError
from runner.redact import redact
from runner.store import Store, sweep_status

__all__ = ["CURVE_METHOD", "SUMMARY_BYTES", "AgentTools", "compact_json", "downsample"]

LOG_DIR = Path(".sweepscope") / "logs"  # as the CLI's: where a launched process writes
DIGITS = 6  # significant digits of every number sent: more is noise to a reader
SUMMARY_BYTES = 2048  # the most a sweep's summary takes, as compact JSON
CURVE_METHOD = (
    "MinMaxLTTB (as the dashboard draws curves): the first and last point are kept, and "
    "each bucket's extremes, so peaks, dips and the final value survive; a null value is "
    "the first NaN/inf the trial reported (where it diverged); x is the step"
)

_T = TypeVar("_T")

# What `sweepscope run` and `extend` print once their sweep or round is in the store.
_ANNOUNCED = re.compile(r"^sweep (\S+): \d+ trials of ", re.MULTILINE)
_ROUND = re.compile(r"^sweep \S+, round (\d+): ", re.MULTILINE)


class AgentTools:
    """The tools an agent calls, on one open store. Each returns a JSON-ready dict and
    raises SweepscopeError with the fix for anything the caller can correct.

    Args:
        store: the open store to read (and, for control, to write stop requests to).
        url: the store's URL as given (with its password, if any): what a launched
            `sweepscope` process is pointed at; never shown.
    """

    def __init__(self, store: Store, *, url: str) -> None:
        self.store = store
        self.url = url

    # -- reads -----------------------------------------------------------------------------
    def list_sweeps(
        self, limit: Annotated[int, Field(ge=1, le=500, description="most sweeps")] = 50
    ) -> dict[str, Any]:
        """The sweeps in the store, newest first: id, name, status (running, completed,
        failed, stopped; interrupted: its driver is gone), trial counts by status, planned
        trials, metric and mode, and when it was created (UTC)."""
        sweeps = self.store.sweeps()
        rows = [
            {
                "id": s["id"],
                "name": s["name"],
                "status": sweep_status(s),
                "counts": s["counts"],
                "planned": s["n_trials"],
                "metric": s["metric"],
                "mode": s["mode"],
                "created": _iso(s["created_at"]),
            }
            for s in sweeps[:limit]
        ]
        return {"sweeps": rows, "more": max(0, len(sweeps) - limit)}

    def summarize_sweep(
        self,
        sweep_id: Annotated[str, Field(description="a sweep id from list_sweeps")],
        top: Annotated[int, Field(ge=1, le=20, description="configurations or trials")] = 5,
    ) -> dict[str, Any]:
        """A sweep in brief: status, trial counts, metric and mode, and its best
        configurations (a seeded sweep: by mean final value over seeds, with 95% intervals,
        how many configurations are tied with the best within seed noise) or its best trials
        (no seeds: by best value of the metric, with the final one), and the noise floor: the
        gap between two seeds of one configuration that seed noise alone rarely exceeds (null
        where no configuration ran twice). At most 2 KB: rows that do not fit are left out
        (`left_out` counts them)."""
        sweep = self._sweep(sweep_id)
        trials = self.store.trials(sweep_id)
        points = self.store.points(sweep_id, metrics=[sweep["metric"]])
        key = seed_key(sweep["spec"])
        finals = final_values(points)
        varied = _varied(sweep["spec"])
        summary: dict[str, Any] = {
            "id": sweep["id"],
            "name": sweep["name"],
            "status": sweep_status(sweep),
            "counts": sweep["counts"],
            "planned": sweep["n_trials"],
            "metric": sweep["metric"],
            "mode": sweep["mode"],
            "created": _iso(sweep["created_at"]),
            "ended": _iso(sweep["ended_at"]),
        }
        if sweep["message"]:
            summary["message"] = _clip(redact(str(sweep["message"])), 200)
        if key is not None:
            summary |= _best_configurations(sweep, trials, finals, key, varied, top)
        else:
            summary |= _best_trials(sweep, trials, points, finals, varied, top)
        summary["noise_floor"] = _noise_floor(trials, finals, key)
        return _within(summary, "best_configurations" if key is not None else "best_trials")

    def read_curves(
        self,
        sweep_id: Annotated[str, Field(description="a sweep id from list_sweeps")],
        trials: Annotated[
            list[int],
            Field(min_length=1, max_length=20, description="trial numbers (1..N in the sweep)"),
        ],
        metrics: Annotated[
            list[str] | None,
            Field(max_length=10, description="metric names (default: the sweep's metric)"),
        ] = None,
        max_points: Annotated[int, Field(ge=3, le=1000, description="most points per curve")] = 50,
    ) -> dict[str, Any]:
        """Curves (value by step) of chosen trials and metrics, each downsampled to at most
        `max_points` points by MinMaxLTTB: first and last points kept, and each bucket's
        extremes. `n` is how many points the trial stored; a null value marks where it
        diverged (NaN/inf)."""
        sweep = self._sweep(sweep_id)
        ids = self._trial_ids(sweep_id, trials)
        wanted = list(dict.fromkeys(metrics or [sweep["metric"]]))
        points = self.store.points(sweep_id, trial_ids=list(ids.values()))
        reported = sorted(set(points["metric"])) if len(points) else []
        unknown = [m for m in wanted if m not in reported]
        if unknown:
            raise SweepscopeError(
                f"metrics {unknown}: trials {list(ids)} of sweep {sweep_id!r} reported none. "
                f"Fix: choose among the metrics they report: {reported or 'none yet'}."
            )
        curves = []
        for number, trial_id in ids.items():
            mine = points[points["trial_id"] == trial_id]
            for metric in wanted:
                curve = mine[mine["metric"] == metric].sort_values("step")
                step = curve["step"].to_numpy(np.int64)
                value = curve["value"].to_numpy(np.float64)
                keep = downsample(step, value, max_points)
                curves.append(
                    {
                        "trial": number,
                        "metric": metric,
                        "n": len(step),
                        "step": [int(s) for s in step[keep]],
                        "value": [_num(v) for v in value[keep]],
                    }
                )
        return {"sweep": sweep_id, "downsampling": CURVE_METHOD, "curves": curves}

    # -- control (listed only with --allow-control) ---------------------------------------
    def stop_sweep(
        self, sweep_id: Annotated[str, Field(description="a sweep id from list_sweeps")]
    ) -> dict[str, Any]:
        """Ask a running sweep to stop: its driver ends every trial within seconds and
        leaves the sweep stopped (resumable with `sweepscope resume`)."""
        self._sweep(sweep_id)
        requested = self.store.request_stop(sweep_id)
        return {
            "sweep": sweep_id,
            "stop_requested": requested,
            "note": "the driver stops it within seconds"
            if requested
            else "the sweep had already finished: nothing to stop",
        }

    def stop_trial(
        self,
        sweep_id: Annotated[str, Field(description="a sweep id from list_sweeps")],
        trial: Annotated[int, Field(description="the trial's number (1..N in the sweep)")],
    ) -> dict[str, Any]:
        """Ask the driver of a sweep to stop one of its trials (pending or running); the
        others go on."""
        self._sweep(sweep_id)
        trial_id = self._trial_ids(sweep_id, [trial])[trial]
        requested = self.store.request_stop(sweep_id, trial_id)
        return {
            "sweep": sweep_id,
            "trial": trial,
            "stop_requested": requested,
            "note": "the driver stops it within seconds"
            if requested
            else "the trial had already finished: nothing to stop",
        }

    def launch_sweep(
        self,
        spec: Annotated[str, Field(description="path of a sweep spec YAML on the server")],
        name: Annotated[str | None, Field(description="sweep name (default: spec's)")] = None,
        max_concurrent: Annotated[
            int | None, Field(ge=1, description="most trials at once")
        ] = None,
        wait_seconds: Annotated[
            float, Field(gt=0, le=600, description="most seconds to wait for the sweep id")
        ] = 120,
    ) -> dict[str, Any]:
        """Start `sweepscope run SPEC` on this store as a detached process and return the new
        sweep's id once it is in the store (a bad spec comes back as an error with the fix).
        The sweep goes on after this server ends; stop it with stop_sweep."""
        path = Path(spec).expanduser().resolve()
        if not path.is_file():
            raise SweepscopeError(
                f"spec {spec!r}: no such file ({path}). Fix: give the path of a sweep spec "
                "YAML on the server's machine, absolute or relative to where the server runs."
            )
        args = ["run", str(path)]
        args += ["--name", name] if name else []
        args += ["--max-concurrent", str(max_concurrent)] if max_concurrent else []
        process = _Launched.start(args, self.url, "run")
        match = process.wait_for(_ANNOUNCED.search, wait_seconds)
        return process.report(sweep=match.group(1) if match else None)

    def extend_sweep(
        self,
        sweep_id: Annotated[str, Field(description="a sweep id from list_sweeps")],
        args: Annotated[
            list[str], Field(description="arguments after SWEEP, as `sweepscope extend` takes")
        ],
        wait_seconds: Annotated[
            float, Field(gt=0, le=600, description="most seconds to wait for the round")
        ] = 60,
    ) -> dict[str, Any]:
        """Run `sweepscope extend SWEEP ARGS...` on this store as a detached process (see
        `sweepscope extend --help`: e.g. ["--seeds", "2", "--where", "undecided"]), and
        return the round it started once it runs (or what it said, when there was nothing
        to add). A refusal comes back as an error with its message. The round goes on
        after this server ends; watch it with summarize_sweep."""
        self._sweep(sweep_id)
        process = _Launched.start(["extend", sweep_id, *args], self.url, "extend")
        match = process.wait_for(_ROUND.search, wait_seconds)
        return process.report(sweep=sweep_id, round=int(match.group(1)) if match else None)

    # -- shared ---------------------------------------------------------------------------
    def _sweep(self, sweep_id: str) -> dict[str, Any]:
        sweep = self.store.sweep(sweep_id, best=False)  # `best` is not shown: skip its scan
        if sweep is None:
            raise SweepscopeError(
                f"sweep_id {sweep_id!r}: no such sweep in the store {self.store.url}. "
                "Fix: call list_sweeps for the ids of the sweeps there."
            )
        return sweep

    def _trial_ids(self, sweep_id: str, numbers: Sequence[int]) -> dict[int, int]:
        """Trial numbers (1..N in the sweep) -> store ids, in the order given."""
        by_number = {int(t["number"]): int(t["id"]) for t in self.store.trials(sweep_id)}
        missing = [n for n in numbers if n not in by_number]
        if missing:
            have = f"1..{max(by_number)}" if by_number else "none yet"
            raise SweepscopeError(
                f"trials {missing}: sweep {sweep_id!r} has no such trial numbers (it has "
                f"{have}). Fix: take trial numbers from summarize_sweep."
            )
        return {n: by_number[n] for n in dict.fromkeys(numbers)}


# -- summaries -------------------------------------------------------------------------------
def _within(summary: dict[str, Any], rows: str) -> dict[str, Any]:
    """`summary` cut to SUMMARY_BYTES of JSON: its last `rows` left out until it fits, and
    how many were (`left_out`): long configs or a large `top` must not flood a context."""
    left_out = 0
    while len(compact_json(summary).encode()) > SUMMARY_BYTES and summary[rows]:
        summary[rows].pop()
        left_out += 1
        summary["left_out"] = left_out
    return summary


def _best_configurations(
    sweep: Mapping[str, Any],
    trials: Sequence[Mapping[str, Any]],
    finals: Any,
    key: str,
    varied: Sequence[str],
    top: int,
) -> dict[str, Any]:
    """A seeded sweep's best `top` configurations by mean final over seeds, each with its
    95% interval (null below verdicts.MIN_SEEDS seeds), seeds and trial numbers; and how
    many the best cannot be told apart from (runner.verdicts.best_configuration)."""
    by_config = finals_by_configuration(trials, finals, key)
    numbers: dict[str, list[int]] = {}
    for t in trials:
        numbers.setdefault(config_key(t["config"], key), []).append(int(t["number"]))
    sign = -1.0 if sweep["mode"] == "max" else 1.0
    ranked = []
    for config, values in by_config.items():
        mean, low, high, n = verdicts.mean_interval(values)
        if n:
            ranked.append((sign * mean, config, mean, low, high, n))
    ranked.sort(key=lambda row: row[0])
    shown = [
        {
            "config": _shown(json.loads(config), varied, key),
            "mean": _num(mean),
            "interval": None if math.isnan(low) else [_num(low), _num(high)],
            "seeds": n,
            "trials": numbers[config],
        }
        for _, config, mean, low, high, n in ranked[:top]
    ]
    result: dict[str, Any] = {
        "seeds": {"key": key, "per_configuration": _seeds_per_configuration(sweep["spec"])},
        "configurations": len(numbers),
        "ranked_by": f"mean final {sweep['metric']} over seeds",
        "best_configurations": shown,
    }
    if ranked:
        best = verdicts.best_configuration(by_config, str(sweep["mode"]))
        result["tied_with_best"] = len(best.tied_with)
        result["best_is_distinguishable"] = best.distinguishable
    return result


def _best_trials(
    sweep: Mapping[str, Any],
    trials: Sequence[Mapping[str, Any]],
    points: Any,
    finals: Any,
    varied: Sequence[str],
    top: int,
) -> dict[str, Any]:
    """A sweep without seeds: its best `top` trials by the best value of its metric (as
    `sweepscope status` ranks them), each with its final value and status."""
    if points.empty:
        return {"ranked_by": f"best {sweep['metric']}", "best_trials": []}
    agg = "max" if sweep["mode"] == "max" else "min"
    values = points[np.isfinite(points["value"])]
    best = values.groupby("trial_id")["value"].agg(agg)
    order = best.sort_values(ascending=agg == "min").index[:top]
    by_id = {t["id"]: t for t in trials}
    rows = [
        {
            "trial": int(by_id[i]["number"]),
            "status": by_id[i]["status"],
            "config": _shown(by_id[i]["config"], varied, None),
            "best": _num(best[i]),
            "final": _num(finals.get(i, math.nan)),
            "epochs": by_id[i]["last_epoch"],
        }
        for i in order
        if i in by_id
    ]
    return {"ranked_by": f"best {sweep['metric']}", "best_trials": rows}


def _noise_floor(
    trials: Sequence[Mapping[str, Any]], finals: Any, key: str | None
) -> dict[str, Any] | None:
    """The seed-noise floor over configurations that ran more than once (with seeds, or a
    repeated config), with its note; None before any trial has a final value."""
    by_config = finals_by_configuration(trials, finals, key)
    if not by_config:
        return None
    floor = verdicts.noise_floor(by_config)
    found: dict[str, Any] = {
        "floor": None if floor.floor is None else _num(floor.floor),
        "pooled_sd": None if floor.pooled_sd is None else _num(floor.pooled_sd),
        "df": floor.df,
    }
    if floor.dropped:
        found["diverged"] = floor.dropped
    if floor.message:
        found["note"] = floor.message
    return found


def _varied(spec: Mapping[str, Any]) -> list[str]:
    """The hyperparameters a spec varies (its grid and sample keys)."""
    return list(spec.get("grid") or {}) + list(spec.get("sample") or {})


def _seeds_per_configuration(spec: Mapping[str, Any]) -> int | None:
    seeds = spec.get("seeds")
    return int(seeds["n"]) if isinstance(seeds, Mapping) and "n" in seeds else None


def _shown(config: Mapping[str, Any], varied: Sequence[str], key: str | None) -> dict[str, Any]:
    """A config as an agent needs it: the varied hyperparameters (all of them where the
    spec varies none), the seed left out, long values clipped."""
    kept = {k: v for k, v in config.items() if k in varied and k != key} or {
        k: v for k, v in config.items() if k != key
    }
    return {k: _clip(v, 40) if isinstance(v, str) else _num(v) for k, v in kept.items()}


# -- curves ----------------------------------------------------------------------------------
def downsample(step: np.ndarray, value: np.ndarray, max_points: int) -> np.ndarray:
    """Indexes of at most `max_points` points of a curve (steps ascending) that keep its
    shape: MinMaxLTTB over the finite values (first and last kept), plus the first
    non-finite value where there is one (where the trial diverged)."""
    if len(step) <= max_points:
        return np.arange(len(step))
    finite = np.flatnonzero(np.isfinite(value))
    bad = np.flatnonzero(~np.isfinite(value))[:1]
    budget = max_points - len(bad)
    if len(finite) <= budget:
        chosen = finite
    else:
        from tsdownsample import MinMaxLTTBDownsampler

        picked = MinMaxLTTBDownsampler().downsample(
            np.ascontiguousarray(step[finite], dtype=np.float64),
            np.ascontiguousarray(value[finite]),
            n_out=max(budget, 3),
        )
        chosen = finite[np.asarray(picked, dtype=np.int64)]
    return np.sort(np.concatenate([chosen, bad]))


# -- control: processes ------------------------------------------------------------------------
class _Launched:
    """A `sweepscope` command started detached (its own session, output to a log file), so
    that it outlives this server, as one a user starts in a terminal would."""

    def __init__(self, process: subprocess.Popen[bytes], log: Path, command: str) -> None:
        self.process = process
        self.log = log
        self.command = command

    @classmethod
    def start(cls, args: Sequence[str], url: str, label: str) -> _Launched:
        # One file a launch (two in one second must not share one: each is searched for
        # its own sweep id).
        stamp = f"{time.strftime('%Y%m%d-%H%M%S')}-{os.getpid()}-{secrets.token_hex(3)}"
        log = (LOG_DIR / f"mcp-{label}-{stamp}.log").resolve()
        # The URL goes in the environment, not the command line, where `ps` would show
        # its password to every user of the machine.
        env = {**os.environ, "SWEEPSCOPE_STORE": url}
        try:
            log.parent.mkdir(parents=True, exist_ok=True)
            with log.open("xb") as out:
                process = subprocess.Popen(
                    [sys.executable, "-m", "runner.cli", *args],
                    stdin=subprocess.DEVNULL,
                    stdout=out,
                    stderr=subprocess.STDOUT,
                    env=env,
                    start_new_session=True,
                )
        except OSError as exc:
            raise SweepscopeError(
                f"cannot start `sweepscope {label}` with its log in {log.parent}: {exc}. Fix: "
                "start `sweepscope mcp` in a directory it may write (the sweeps' project: "
                "Ray's storage and the logs go under its .sweepscope/)."
            ) from exc
        return cls(process, log, "sweepscope " + " ".join(args))

    def output(self) -> str:
        return redact(self.log.read_text(errors="replace"))

    def wait_for(self, ready: Callable[[str], _T], seconds: float) -> _T | None:
        """Wait until `ready(output)` is true, the process ends, or `seconds` pass; return
        what `ready` returned last (None when it never ran).

        Raises:
            SweepscopeError: the process ended with a failure before it was ready (its
                output's tail says why).
        """
        deadline = time.monotonic() + seconds
        found: _T | None = None
        while True:
            code = self.process.poll()  # before reading: the output is then complete
            found = ready(self.output())
            if found or code is not None or time.monotonic() > deadline:
                break
            time.sleep(0.2)
        if not found and code not in (None, 0):
            raise SweepscopeError(
                f"`{self.command}` failed (exit {code}): {_tail(self.output())} "
                f"(whole output: {self.log})"
            )
        return found

    def report(self, **fields: Any) -> dict[str, Any]:
        code = self.process.poll()
        return fields | {
            "pid": self.process.pid,
            "running": code is None,
            "exit": code,
            "log": str(self.log),
            "output": _tail(self.output()),
        }


# -- small helpers ------------------------------------------------------------------------------
def compact_json(payload: Mapping[str, Any]) -> str:
    """A tool's answer as the agent reads it: JSON without spaces (NaN/inf are None already)."""
    return json.dumps(payload, separators=(",", ":"), ensure_ascii=False, allow_nan=False)


def _num(value: Any) -> Any:
    """A number rounded to DIGITS significant digits, None for NaN/inf; else as it is."""
    if isinstance(value, bool) or not isinstance(value, int | float | np.number):
        return value
    if isinstance(value, int | np.integer):
        return int(value)
    number = float(value)
    return float(f"{number:.{DIGITS}g}") if math.isfinite(number) else None


def _iso(ts: float | None) -> str | None:
    return None if ts is None else datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _clip(text: str, most: int) -> str:
    return text if len(text) <= most else text[: most - 3] + "..."


def _tail(text: str, most: int = 600) -> str:
    """The end of a process's output, on one line: what says why it failed."""
    flat = " | ".join(line.strip() for line in text.strip().splitlines() if line.strip())
    return flat if len(flat) <= most else "..." + flat[-most:]
