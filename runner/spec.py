"""The sweep spec: a YAML file, validated in full before Ray starts.

name: seed_grid
trainable: experiments.train:train      # module:function, called as fn(config)
metric: val_acc                          # what "best" means, and what schedulers watch
mode: max
stop: {epochs: 20}                       # or {steps: N}; passed to the trainable
resources: {cpu: 1, gpu: 0}              # per trial; gpu may be fractional
max_concurrent: null                     # default: as many as the resources allow
samples: 1                               # draws of `sample` (each crossed with the grid)
search: {type: grid}                     # grid | random | tpe, with trials: N and seed: S
max_failures: 0                          # retries of a failed trial, from its checkpoint
checkpoint_every: 1                      # epochs between checkpoints (0: never)
trial_timeout: null                      # seconds a trial may go without reporting
scheduler: {type: none}                  # none | asha | median
order: null                              # grid | shuffled; default: shuffled with a scheduler
storage_path: null                       # Ray Tune's storage; shared on a cluster
system_metrics: true                     # sample each trial's CPU, memory, GPU (sys/...)
system_metrics_every: 2                  # seconds between those samples
notify: {webhook: https://...}           # optional: a JSON post when the sweep ends, ...
fixed: {dataset: digits}                 # the same in every trial
grid: {lr: [0.1, 0.01], batch_norm: [true, false]}
sample: {weight_decay: {loguniform: [1.0e-5, 1.0e-2]}}

Numbers follow YAML 1.2 (1e-3 is a float). A key given twice, NaN or infinity, and a parameter
name beginning with "__" (the runner's own) are refused like any other mistake.
"""

from __future__ import annotations

import ast
import builtins
import difflib
import importlib
import importlib.util
import itertools
import math
import random
import re
import reprlib
import sys
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from runner import collector
from runner.errors import SpecError
from runner.protocol import DEFAULT_SYSTEM_EVERY, is_system_metric

__all__ = [
    "MAX_TRIALS",
    "POINT_KEY",
    "yaml_value",
    "SEARCH_TYPES",
    "Distribution",
    "Search",
    "Seeds",
    "Spec",
    "configuration",
    "load_spec",
    "locate_trainable",
    "parse_spec",
    "resolve_trainable",
    "restore_webhook",
    "stored_spec",
    "user_config",
    "with_seeds",
]

# A grid beyond this many trials is refused unless the user passes --allow-large.
MAX_TRIALS = 1000
# The param_space key holding a trial's index into Spec.points(); never passed to trainables.
POINT_KEY = "__point"
# How trials are chosen: every grid point, or `trials` of them drawn at random or by TPE.
SEARCH_TYPES = ("grid", "random", "tpe")

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
_TRAINABLE = re.compile(r"^[A-Za-z_][\w.]*:[A-Za-z_]\w*$")
_FINITE_FIX = "give a finite number (.nan, .inf and -.inf are refused)"

# (field path, what is wrong with which value, how to fix it), as SpecError takes them
_Problem = tuple[str, str, str]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=False, frozen=True, allow_inf_nan=False)


def _param_name(name: str) -> str:
    """A parameter name in fixed, grid or sample: `__` names are the runner's own."""
    if name.startswith("__"):
        raise ValueError(
            f"parameter {name!r} begins with '__', which is reserved: the runner adds "
            f"{POINT_KEY} to each trial's config and removes every '__' key before the "
            f"trainable sees it. Fix: rename it, e.g. {name.lstrip('_') or 'param'!r}"
        )
    return name


def _finite(value: Any) -> Any:
    """A parameter value, refused if NaN or infinity hides anywhere in it. Lists and dicts are
    walked, each once, so a YAML alias that refers to itself cannot make the walk loop."""
    todo, seen = [value], set()
    while todo:
        item = todo.pop()
        if isinstance(item, float) and not math.isfinite(item):
            inside = "" if item is value else f" (inside {reprlib.repr(value)})"
            raise ValueError(f"{item!r}{inside} is not a finite number. Fix: {_FINITE_FIX}")
        if isinstance(item, list | tuple | dict) and id(item) not in seen:
            seen.add(id(item))
            todo.extend([*item, *item.values()] if isinstance(item, dict) else item)
    return value


_Param = Annotated[str, AfterValidator(_param_name)]
_Value = Annotated[Any, AfterValidator(_finite)]


class Stop(_Strict):
    epochs: int | None = Field(default=None, gt=0)
    steps: int | None = Field(default=None, gt=0)

    @model_validator(mode="after")
    def _one_given(self) -> Stop:
        if self.epochs is None and self.steps is None:
            raise ValueError("names neither epochs nor steps. Fix: give e.g. stop: {epochs: 20}")
        return self


class Resources(_Strict):
    cpu: float = Field(default=1.0, gt=0)
    gpu: float = Field(default=0.0, ge=0)

    @field_validator("gpu")
    @classmethod
    def _gpu_fraction(cls, v: float) -> float:
        if v > 1 and v != int(v):
            raise ValueError(
                f"{v} GPUs: above 1 a trial takes whole GPUs. "
                "Fix: use a fraction <= 1 or a whole number"
            )
        return v


class Scheduler(_Strict):
    """Early stopping. `asha`: Ray Tune's AsyncHyperBandScheduler; `median`: median stopping."""

    type: Literal["none", "asha", "median"] = "none"
    grace_period: int = Field(default=1, gt=0)  # epochs before a trial can be stopped
    reduction_factor: float = Field(default=3.0, gt=1)  # asha
    max_t: int | None = Field(default=None, gt=0)  # asha; default: stop.epochs
    min_samples: int = Field(default=3, gt=0)  # median


class Search(_Strict):
    """How the trials are chosen. `grid`: every point of the grid (times `samples`), in
    `order`. `random` and `tpe`: `trials` trials, each suggested by Ray Tune's OptunaSearch
    (Optuna's RandomSampler or TPESampler, seeded by `seed`, 0 when not given) as a slot
    frees up, over the grid's values and the sample distributions."""

    type: str = "grid"
    trials: int | None = None
    seed: int | None = Field(default=None, ge=0, lt=2**32)

    @field_validator("type")
    @classmethod
    def _known(cls, v: str) -> str:
        if v not in SEARCH_TYPES:
            close = difflib.get_close_matches(v.lower(), SEARCH_TYPES, n=1, cutoff=0.5)
            hint = f"did you mean {close[0]!r}? Give" if close else "give"
            raise ValueError(
                f"{v!r} is not a search type. Fix: {hint} one of grid (every point), random "
                "or tpe (Optuna's TPE, Bayesian), e.g. search: {type: tpe, trials: 50}"
            )
        return v

    @field_validator("trials")
    @classmethod
    def _some(cls, v: int | None) -> int | None:
        if v is not None and v < 1:
            raise ValueError(f"{v} trials would run nothing. Fix: give at least 1, e.g. trials: 50")
        return v

    @model_validator(mode="after")
    def _fits_type(self) -> Search:
        if self.type == "grid":
            fixes = {
                "trials": "remove trials, or set type: random or tpe to run that many trials "
                "drawn from the space",
                "seed": "remove seed (a grid needs none), or set type: random or tpe with "
                "trials: N",
            }
            for key, fix in fixes.items():
                if getattr(self, key) is not None:
                    raise ValueError(
                        f"{key}: {getattr(self, key)} is for a searcher: a grid runs each of its "
                        f"points once, in a fixed order. Fix: {fix}"
                    )
        elif self.trials is None:
            raise ValueError(
                f"type {self.type!r} needs trials, the number of trials to run. Fix: add it, "
                f"e.g. search: {{type: {self.type}, trials: 50, seed: 0}}"
            )
        return self


class Seeds(_Strict):
    """Every configuration runs once per seed: `seeds: 3` gives the trainable
    config["seed"] = 0, 1 and 2; `seeds: {n: 3, key: random_state, start: 10}` gives
    config["random_state"] = 10, 11 and 12. A configuration is a trial's config without its
    seed: the dashboard, the CLI and the verdicts group trials by it."""

    n: int = Field(gt=0, le=100)
    key: _Param = "seed"
    start: int = Field(default=0, ge=0, lt=2**31)

    @property
    def values(self) -> list[int]:
        return list(range(self.start, self.start + self.n))


class Distribution(_Strict):
    """Exactly one of: uniform [lo, hi], loguniform [lo, hi], int [lo, hi] (inclusive), choice."""

    uniform: tuple[float, float] | None = None
    loguniform: tuple[float, float] | None = None
    int: tuple[builtins.int, builtins.int] | None = None
    choice: list[_Value] | None = Field(default=None, min_length=1)

    @model_validator(mode="after")
    def _exactly_one(self) -> Distribution:
        given = [
            k for k in ("uniform", "loguniform", "int", "choice") if getattr(self, k) is not None
        ]
        if len(given) != 1:
            raise ValueError(
                f"names {given or 'no distribution'}. Fix: give exactly one of uniform: [lo, hi], "
                "loguniform: [lo, hi], int: [lo, hi] or choice: [a, b, ...]"
            )
        kind = given[0]
        if kind != "choice":
            lo, hi = getattr(self, kind)
            if not lo < hi:
                raise ValueError(
                    f"{kind} bounds [{lo}, {hi}] have min >= max. "
                    "Fix: give [min, max] with min < max"
                )
            if kind == "loguniform" and lo <= 0:
                raise ValueError(
                    f"loguniform bounds [{lo}, {hi}] include a value <= 0, which has no logarithm. "
                    "Fix: use positive bounds, e.g. [1.0e-5, 1.0e-1]"
                )
        return self


class Notify(_Strict):
    """Where to tell the user that the sweep ended or failed, or a trial diverged or failed.

    The store keeps the webhook as scheme and host only (stored_spec): its path is usually
    its token, and the dashboard's role reads the store. `sweepscope resume` takes the full
    URL again from --spec or $SWEEPSCOPE_WEBHOOK (restore_webhook)."""

    webhook: str

    @field_validator("webhook")
    @classmethod
    def _webhook(cls, v: str) -> str:
        from runner.webhook import check_webhook

        return check_webhook(v)


class Spec(_Strict):
    name: str
    description: str = ""
    trainable: str
    metric: str = "val_acc"
    mode: Literal["max", "min"] = "max"
    stop: Stop
    resources: Resources = Resources()
    max_concurrent: int | None = Field(default=None, gt=0)
    samples: int = Field(default=1, gt=0)
    max_failures: int = Field(default=0, ge=0)
    checkpoint_every: int = Field(default=1, ge=0)  # epochs between checkpoints; 0: never
    trial_timeout: float | None = Field(default=None, gt=0)  # seconds without a report
    scheduler: Scheduler = Scheduler()
    search: Search = Search()
    order: Literal["grid", "shuffled"] | None = None  # the order trials start in
    storage_path: str | None = None
    system_metrics: bool = True  # each trial samples its CPU, memory, GPU as sys/ metrics
    system_metrics_every: float = Field(default=DEFAULT_SYSTEM_EVERY, ge=1, le=3600)  # s
    notify: Notify | None = None  # {webhook: URL}: posted when the sweep ends, fails, ...
    fixed: dict[_Param, _Value] = {}
    grid: dict[_Param, Annotated[list[_Value], Field(min_length=1)]] = {}
    sample: dict[_Param, Distribution] = {}
    seeds: Seeds | None = None  # runs every configuration with each seed (see Seeds)

    @field_validator("seeds", mode="before")
    @classmethod
    def _seed_count(cls, v: Any) -> Any:
        if isinstance(v, bool):
            raise ValueError(
                f"{v!r} is not a number of seeds. Fix: give a whole number, e.g. seeds: 3"
            )
        return {"n": v} if isinstance(v, int) else v

    @field_validator("metric")
    @classmethod
    def _not_system(cls, v: str) -> str:
        if is_system_metric(v):
            raise ValueError(
                f"{v!r} is a system-load metric (sys/...), sampled by the runner, not reported "
                "by the trials. Fix: name a metric your trainable reports, e.g. val_acc"
            )
        return v

    @field_validator("name")
    @classmethod
    def _name(cls, v: str) -> str:
        if not _NAME.match(v):
            raise ValueError(
                f"{v!r} is not a usable sweep name. Fix: use letters, digits, '_', '-' or '.', "
                "at most 64 characters, e.g. seed_grid"
            )
        return v

    @field_validator("trainable")
    @classmethod
    def _trainable(cls, v: str) -> str:
        if not _TRAINABLE.match(v):
            raise ValueError(
                f"{v!r} is not of the form module:function. Fix: e.g. experiments.train:train"
            )
        return v

    @model_validator(mode="after")
    def _names_unique(self) -> Spec:
        seen: dict[str, str] = {}
        reserved = {"epochs", "max_steps"}
        for section in ("fixed", "grid", "sample"):
            for key in getattr(self, section):
                if key in seen:
                    raise ValueError(
                        f"parameter {key!r} is in both {seen[key]} and {section}. "
                        "Fix: keep it in one of them"
                    )
                if key in reserved:
                    raise ValueError(
                        f"parameter {key!r} in {section} is set by stop. Fix: remove it and use "
                        "stop: {epochs: N} or stop: {steps: N}"
                    )
                seen[key] = section
        return self

    @model_validator(mode="after")
    def _search_fits(self) -> Spec:
        kind = self.search.type
        if kind == "grid":
            return self
        if self.samples != 1:
            raise ValueError(
                f"samples: {self.samples} is for a grid: with search type {kind!r} the trials "
                f"are search.trials ({self.search.trials}). Fix: remove samples"
            )
        if self.order is not None:
            raise ValueError(
                f"order: {self.order} is for a grid: search type {kind!r} suggests each trial "
                "in its own order. Fix: remove order"
            )
        varied = [k for k, v in self.grid.items() if len(v) > 1] + [
            k for k, d in self.sample.items() if d.choice is None or len(d.choice) > 1
        ]
        if not varied:
            raise ValueError(
                f"search type {kind!r} has nothing to search: no grid key has two values or "
                "more and sample is empty, so every trial would be the same. Fix: give the "
                "values to search under grid (e.g. lr: [1.0e-3, 1.0e-2, 1.0e-1]) or sample "
                "(e.g. lr: {loguniform: [1.0e-4, 1.0e-1]}), or remove search"
            )
        return self

    @model_validator(mode="after")
    def _seeds_fit(self) -> Spec:
        if self.seeds is None:
            return self
        key = self.seeds.key
        for section in ("fixed", "grid", "sample"):
            if key in getattr(self, section):
                raise ValueError(
                    f"seeds gives each trial its {key!r}, which {section} sets too. Fix: remove "
                    f"{key} from {section} (seeds: {self.seeds.n} runs seeds "
                    f"{self.seeds.start}..{self.seeds.start + self.seeds.n - 1}), or name "
                    "another config key: seeds: {n: 3, key: random_state}"
                )
        if self.search.type == "tpe":
            raise ValueError(
                "seeds with search type 'tpe': TPE learns from each trial it suggests, and would "
                "take one configuration's seeds for separate suggestions. Fix: use search type "
                "random or a grid with seeds, or remove seeds"
            )
        if self.search.type == "grid" and self.sample:
            raise ValueError(
                f"seeds with sample ({', '.join(self.sample)}) on a grid: a grid draws sample "
                "values anew for every trial, so the seeds of one configuration would differ "
                "in them. Fix: use search: {type: random, trials: N} (each drawn configuration "
                "then runs with every seed), or move those keys to grid"
            )
        if self.samples != 1:
            raise ValueError(
                f"samples: {self.samples} repeats each grid point with the same config, seeds "
                "repeats it with a seed each. Fix: remove samples and keep seeds"
            )
        return self

    @property
    def seed_key(self) -> str | None:
        """The config key that holds a trial's seed, None when the spec has no seeds."""
        return self.seeds.key if self.seeds is not None else None

    def renamed(self, name: str, source: str = "--name") -> Spec:
        """A copy under another name, checked exactly as `name` in a file is (model_copy
        checks nothing)."""
        try:
            return Spec.model_validate({**self.model_dump(), "name": name})
        except ValidationError as exc:
            raise SpecError(source, _problems(exc)) from None

    @property
    def n_trials(self) -> int:
        """Trials the sweep runs: search.trials for a searcher, else every grid point; each
        once per seed."""
        seeds = self.seeds.n if self.seeds is not None else 1
        if self.search.trials is not None:
            return self.search.trials * seeds
        return math.prod(len(v) for v in self.grid.values()) * self.samples * seeds

    @property
    def max_epochs(self) -> int | None:
        return self.stop.epochs

    def points(self) -> list[dict[str, Any]]:
        """Each trial's grid values, in the order the trials start.

        `grid` is Ray Tune's own grid order (keys sorted by name, the first varying fastest),
        repeated `samples` times. `shuffled` is one fixed random permutation of that list. A
        scheduler judges each trial against those that reached the same epoch before it, so a
        grid that reaches its better settings late (the learning rate rising block by block,
        say) lets more trials through: with a scheduler the default order is shuffled.
        With seeds, every configuration runs with the first seed before any runs with the
        second, so a sweep stopped early has seen each configuration.
        """
        slowest_first = sorted(self.grid, reverse=True)
        combos = list(itertools.product(*(self.grid[k] for k in slowest_first)))
        points = [
            dict(zip(slowest_first, combo, strict=True))
            for _ in range(self.samples)
            for combo in combos
        ]
        order = self.order or ("grid" if self.scheduler.type == "none" else "shuffled")
        if order == "shuffled":
            random.Random(0).shuffle(points)
        return with_seeds(points, self.seeds)


def with_seeds(points: list[dict[str, Any]], seeds: Seeds | None) -> list[dict[str, Any]]:
    """`points` once per seed, seed by seed (the seed slowest), each with its seed key."""
    if seeds is None:
        return points
    return [{**point, seeds.key: seed} for seed in seeds.values for point in points]


def configuration(config: dict[str, Any], seed_key: str | None) -> dict[str, Any]:
    """A trial's configuration: its user config without the seed (see Seeds)."""
    return {k: v for k, v in config.items() if k != seed_key}


def user_config(config: dict[str, Any]) -> dict[str, Any]:
    """A trial's config as the user's train function sees it: without the point index (or any
    other key Ray may add that starts with "__")."""
    return {k: v for k, v in config.items() if not k.startswith("__")}


def stored_spec(spec: Spec) -> dict[str, Any]:
    """The spec as the store keeps it: its JSON form, with the webhook as scheme and host
    only (https://hooks.example.com/***). Idempotent."""
    from runner.webhook import mask_webhook

    data = spec.model_dump(mode="json")
    if spec.notify is not None:
        data["notify"] = {**data["notify"], "webhook": mask_webhook(spec.notify.webhook)}
    return data


def restore_webhook(
    spec: Spec, spec_file: Spec | None, environ: Mapping[str, str]
) -> tuple[Spec, str | None]:
    """A resumed sweep's spec with its webhook's full URL again, and a note for the user.

    `spec` comes from the store, which keeps the webhook as scheme and host only. The full
    URL comes from `spec_file` (resume --spec, already checked to be the same spec), else
    from $SWEEPSCOPE_WEBHOOK in `environ`, which must point at the same scheme and host.
    Without either the sweep resumes without alerts, and the note says so and how to turn
    them on. A spec without a webhook comes back as is, as does one a store from before
    the masking kept in full, unless `spec_file` gives the URL.

    Raises:
        SpecError: $SWEEPSCOPE_WEBHOOK is not a usable webhook URL, or not the sweep's.
    """
    from runner.webhook import WEBHOOK_ENV, check_webhook, is_masked_webhook, mask_webhook

    if spec.notify is None:
        return spec, None
    stored = spec.notify.webhook
    if spec_file is not None and spec_file.notify is not None:
        url = spec_file.notify.webhook  # a token rotated since the sweep began included
    elif not is_masked_webhook(stored):
        return spec, None  # stored in full by an earlier sweepscope
    elif url := environ.get(WEBHOOK_ENV, ""):
        try:
            check_webhook(url)
        except ValueError as exc:
            problem, _, fix = str(exc).partition(" Fix: ")
            raise SpecError(f"${WEBHOOK_ENV}", [("", problem + ".", fix)]) from None
        if mask_webhook(url) != stored:
            raise SpecError(
                f"${WEBHOOK_ENV}",
                [
                    (
                        "",
                        f"points at {mask_webhook(url)!r}, but the sweep posts to {stored!r}.",
                        f"set {WEBHOOK_ENV} to the webhook URL of the sweep's spec, or unset "
                        "it (the sweep then resumes without alerts)",
                    )
                ],
            )
    else:
        note = (
            f"note: alerts are off for this run: the store keeps only the webhook's host "
            f"({stored}). To turn them on, resume with --spec SPEC.yaml or set "
            f"{WEBHOOK_ENV} to the webhook's full URL."
        )
        return Spec.model_validate({**spec.model_dump(), "notify": None}), note
    return Spec.model_validate({**spec.model_dump(), "notify": {"webhook": url}}), None


_FIX_BY_TYPE = {
    "missing": "add it",
    "extra_forbidden": "remove it or correct its spelling",
    "literal_error": "use one of the values named",
    "too_short": "give at least one value (an empty grid has no trials)",
    "finite_number": _FINITE_FIX,
}


def _join(path: str, key: str | int) -> str:
    """A field path as users write it: grid.lr[1]."""
    if isinstance(key, int):
        return f"{path}[{key}]"
    return f"{path}.{key}" if path else key


def _problems(exc: ValidationError) -> list[_Problem]:
    problems = []
    for err in exc.errors():
        field = ""
        for part in err["loc"]:
            if part != "[key]":  # pydantic's mark of an error in a dict's key, not its value
                field = _join(field, part)
        msg = str(err["msg"])
        if err["type"] == "value_error":
            text = msg.removeprefix("Value error, ")
            problem, _, fix = text.partition(" Fix: ")
            problems.append((field, problem.rstrip(".") + ".", fix or "correct the value"))
            continue
        given = err.get("input")
        shown = "" if err["type"] == "missing" else f" (got {given!r})"
        fix = _FIX_BY_TYPE.get(err["type"], f"give a value that fits: {msg.lower()}")
        if err["type"] == "extra_forbidden":
            problem = "is not a known key."
        elif err["type"] == "missing":
            problem = "is required."
        else:
            problem = f"{msg}{shown}."
        problems.append((field, problem, fix))
    return problems


def parse_spec(data: Any, source: str = "<spec>") -> Spec:
    """Validate a parsed YAML document; raises SpecError naming every problem."""
    if not isinstance(data, dict):
        raise SpecError(
            source,
            [
                (
                    "",
                    f"the spec must be a mapping of keys, got {type(data).__name__}.",
                    "start from experiments/sweeps/seed_grid.yaml",
                )
            ],
        )
    try:
        return Spec.model_validate(data)
    except ValidationError as exc:
        raise SpecError(source, _problems(exc)) from None


_FLOAT_TAG = "tag:yaml.org,2002:float"
_FLOAT = re.compile(
    r"""^(?:[-+]?(?:[0-9][0-9_]*\.[0-9_]*|\.[0-9][0-9_]*)(?:[eE][-+]?[0-9]+)?  # 0.1, .5, 1.0e-5
    |[-+]?[0-9][0-9_]*[eE][-+]?[0-9]+  # 1e-3, 1E5, +1e3: no dot, which YAML 1.1 wants
    |[-+]?[0-9][0-9_]*(?::[0-5]?[0-9])+\.[0-9_]*  # 1:30.5, base 60, as PyYAML reads it
    |[-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN))$""",
    re.X,
)


class _SpecLoader(yaml.SafeLoader):
    """Safe loading, with YAML 1.2 floats: PyYAML follows YAML 1.1, which wants a dot and a
    signed exponent, so it reads 1e-3 as the string '1e-3'."""


_SpecLoader.yaml_implicit_resolvers = {  # SafeLoader's, less its float rule (left unchanged)
    first: [(tag, regexp) for tag, regexp in resolvers if tag != _FLOAT_TAG]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
_SpecLoader.add_implicit_resolver(_FLOAT_TAG, _FLOAT, list("-+.0123456789"))


def yaml_value(text: str) -> Any:
    """One value written as in a spec file (1e-3 a number, true a boolean, relu a string)."""
    return yaml.load(text, Loader=_SpecLoader)  # noqa: S506 - a SafeLoader


def _read_yaml(text: str) -> tuple[Any, list[_Problem]]:
    """The document, and a problem for each key given twice (PyYAML keeps the last silently)."""
    loader = _SpecLoader(text)
    try:
        node = loader.get_single_node()
        if node is None:
            return None, []
        duplicates = _duplicate_keys(node)  # first: constructing merges `<<` keys into the nodes
        return loader.construct_document(node), duplicates
    finally:
        loader.dispose()


def _duplicate_keys(
    node: yaml.Node, path: str = "", seen: set[int] | None = None
) -> list[_Problem]:
    """Keys given twice in one mapping, anywhere in the document. `seen` holds the nodes walked
    already: an alias refers to a node, maybe one that contains it."""
    seen = set() if seen is None else seen
    if id(node) in seen:
        return []
    seen.add(id(node))
    problems: list[_Problem] = []
    if isinstance(node, yaml.MappingNode):
        lines: dict[str, int] = {}
        for key, value in node.value:
            name, line = str(key.value), key.start_mark.line + 1
            if name in lines:
                problems.append(
                    (
                        _join(path, name),
                        f"key {name!r} is given twice, at lines {lines[name]} and {line} "
                        "(YAML would keep only the last).",
                        "keep one of them",
                    )
                )
            lines.setdefault(name, line)
            problems += _duplicate_keys(value, _join(path, name), seen)
    elif isinstance(node, yaml.SequenceNode):
        for index, item in enumerate(node.value):
            problems += _duplicate_keys(item, _join(path, index), seen)
    return problems


def load_spec(path: str | Path, *, allow_large: bool = False, check_trainable: bool = True) -> Spec:
    """Read, validate and size-check a spec file; check that its trainable exists (without
    importing it where the source says: see locate_trainable)."""
    source = str(path)
    try:
        text = Path(path).read_text()
    except OSError as exc:
        raise SpecError(
            source,
            [
                (
                    "",
                    f"cannot read the spec file ({exc.strerror}).",
                    "check the path, e.g. experiments/sweeps/seed_grid.yaml",
                )
            ],
        ) from None
    try:
        data, duplicates = _read_yaml(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(exc, "problem", None) or str(exc)
        raise SpecError(
            source, [("", f"is not valid YAML{where}: {problem}.", "correct the YAML syntax there")]
        ) from None
    try:
        spec = parse_spec(data, source)
    except SpecError as exc:  # every problem at once, the duplicates' too
        raise SpecError(source, duplicates + exc.problems) from None
    if duplicates:
        raise SpecError(source, duplicates)
    if spec.n_trials > MAX_TRIALS and not allow_large:
        too_many = (
            (
                "search.trials",
                f"asks for {spec.n_trials} trials, more than the limit of {MAX_TRIALS}.",
                "lower search.trials, or pass --allow-large if you mean it",
            )
            if spec.search.type != "grid"
            else (
                "grid",
                f"makes {spec.n_trials} trials, more than the limit of {MAX_TRIALS}.",
                "shrink the grid or samples, or pass --allow-large if you mean it",
            )
        )
        raise SpecError(source, [too_many])
    if check_trainable:
        locate_trainable(spec.trainable, source)
    return spec


def resolve_trainable(ref: str, source: str = "<spec>") -> Callable[[dict[str, Any]], Any]:
    """Import `module:function`; the current directory is importable, as with `python -m`."""
    module_name, _, fn_name = ref.partition(":")
    if "" not in sys.path and str(Path.cwd()) not in sys.path:
        sys.path.insert(0, str(Path.cwd()))
    try:
        with collector.imports():  # torch and its first use quicker (runner.collector)
            module = importlib.import_module(module_name)
    except Exception as exc:  # any import-time failure is the user's to see
        raise SpecError(
            source,
            [
                (
                    "trainable",
                    f"module {module_name!r} does not import ({exc.__class__.__name__}: {exc}).",
                    "check the module path and that it imports from this directory",
                )
            ],
        ) from None
    fn = getattr(module, fn_name, None)
    if not callable(fn):
        raise SpecError(
            source,
            [
                (
                    "trainable",
                    f"module {module_name!r} has no function {fn_name!r}.",
                    f"define def {fn_name}(config): ... in {module_name} or correct the name",
                )
            ],
        )
    return fn  # type: ignore[no-any-return]


def locate_trainable(ref: str, source: str = "<spec>") -> Literal["function", "class", "other"]:
    """Check `module:function` without importing the module: what it imports (torch, say)
    would cost the driver seconds, and only the trials need it.

    The module must be found and parse, the packages its top-level statements import must be
    installed, and it must define the name: as a function ("function"), a class ("class"),
    or some other binding ("other": an assignment or an import, which only importing can
    judge, so the module is imported then, as resolve_trainable does).
    """
    module_name, _, fn_name = ref.partition(":")

    def refused(what: str, fix: str) -> SpecError:
        return SpecError(source, [("trainable", what, fix)])

    def not_importable(exc: BaseException) -> SpecError:
        return refused(
            f"module {module_name!r} does not import ({exc.__class__.__name__}: {exc}).",
            "check the module path and that it imports from this directory",
        )

    if "" not in sys.path and str(Path.cwd()) not in sys.path:
        sys.path.insert(0, str(Path.cwd()))
    try:  # imports the module's parent packages (their __init__), never the module itself
        found = importlib.util.find_spec(module_name)
    except Exception as exc:
        raise not_importable(exc) from None
    if found is None:
        raise not_importable(ModuleNotFoundError(f"No module named {module_name!r}"))
    origin, text = found.origin or "", None
    if origin.endswith(".py"):
        try:
            text = Path(origin).read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError):
            text = None
    if text is None:  # a compiled extension, a namespace package, a zip: import it
        return _kind(resolve_trainable(ref, source))
    try:
        tree = ast.parse(text, filename=origin)
    except SyntaxError as exc:
        raise not_importable(exc) from None
    for package in _top_level_imports(tree):
        try:
            missing = importlib.util.find_spec(package) is None
        except (ImportError, ValueError):
            missing = True
        if missing:
            raise not_importable(ModuleNotFoundError(f"No module named {package!r}"))
    kind = _binding(tree.body, fn_name)
    if kind is None:
        raise refused(
            f"module {module_name!r} has no function {fn_name!r}.",
            f"define def {fn_name}(config): ... in {module_name} or correct the name",
        )
    if kind == "other":
        return _kind(resolve_trainable(ref, source))
    return kind


def _kind(target: Any) -> Literal["function", "class", "other"]:
    return "class" if isinstance(target, type) else "function"


def _top_level_imports(tree: ast.Module) -> list[str]:
    """The packages a module's unconditional top-level imports need (not those inside
    try, if or functions: optional imports are the module's own business)."""
    names: list[str] = []
    for node in tree.body:
        if isinstance(node, ast.Import):
            names += [alias.name.split(".")[0] for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.append(node.module.split(".")[0])
    return list(dict.fromkeys(names))


def _binding(body: list[ast.stmt], name: str) -> Literal["function", "class", "other"] | None:
    """How the module's top level (if and try blocks included) binds `name`, the last
    binding winning; "other" also when a star import or a module __getattr__ may bind it."""
    kind: Literal["function", "class", "other"] | None = None
    for node in body:
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            if node.name == name:
                kind = "function"
            elif node.name == "__getattr__" and kind is None:
                kind = "other"
        elif isinstance(node, ast.ClassDef) and node.name == name:
            kind = "class"
        elif isinstance(node, ast.Import | ast.ImportFrom):
            if any(a.name == "*" or (a.asname or a.name.split(".")[0]) == name for a in node.names):
                kind = "other"
        elif isinstance(node, ast.Assign | ast.AnnAssign | ast.AugAssign):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            if any(isinstance(n, ast.Name) and n.id == name for t in targets for n in ast.walk(t)):
                kind = "other"
        elif isinstance(node, ast.If | ast.Try | ast.With):
            blocks = [node.body, getattr(node, "orelse", [])]
            if isinstance(node, ast.Try):
                blocks += [node.finalbody] + [h.body for h in node.handlers]
            for block in blocks:
                inner = _binding(block, name)
                if inner is not None:
                    kind = inner
    return kind
