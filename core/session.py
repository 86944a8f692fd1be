"""A Session: the surface, the start point and several runs side by side; to and from JSON.

The file format (version 1), every field declared in SCHEMA below:

    {"format": "optimizer-playground-session", "version": 1,
     "surface": {"name": "rosenbrock"}                      # a built-in, or
                | {"name": ..., "formula": "...", "x_range": [a, b], "y_range": [c, d],
                   "start": [x, y]},
     "start": [x, y],
     "runs": [{"optimizer": "Adam", "hyperparameters": {...}, "frozen": ["y"],
               "label": null, "color": "#1f77b4", "enabled": true, "steps": 200,
               "scheduler": "CosineAnnealingLR(T_max=200)",   # optional, as in PyTorch
               "clip_norm": 1.0,                             # optional, or "clip_value"
               "noise": {"sigma": 0.5, "seed": 0},           # optional
               "changes": [{"step": 120, "kind": "hyperparameters",   # optional: what the
                            "values": {"lr": 0.01}, "rebuilt": false},  # user changed
                           {"step": 300, "kind": "freeze", "name": "y", "frozen": true}],
               "trajectory": {...}}],                        # optional; ignored on load

A run with changes is stored with the settings it started with; the changes (core/run.py
RunChange) are replayed at their steps as the loaded run is stepped, so playing the file to its
saved steps takes the same path bit for bit. Files without "changes" load as before.
     "extra": {...}}                                         # optional: the app's own state

Loading validates everything before building anything: a bad file raises SessionError with a
one-line message that names the field ("run 2: 'color' must be #rrggbb, got '#zzzzzz'"), and
the session in memory is left as it was. Unknown fields are refused, except inside "extra",
which is the app's own free-form state (a preset's title and description, view settings): it
must be a JSON object of finite numbers, text, lists and objects, and "title" and
"description", which the window shows, must be text.

The validation is written by hand rather than with pydantic or msgspec, on purpose: the rules
that matter here are JSON's own corners (a bool is not a number, a 400-digit integer, NaN and
Infinity, which Python's json accepts), each message must be one line in the app's words with
the field's name, and the nested hyperparameters are checked by the optimizer catalogue, which
already knows every torch.optim keyword. A library would add a compiled dependency to a fresh
clone and still need custom messages for most fields.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from core.atomic import write_atomic
from core.errors import PlaygroundError, SessionError, SurfaceError
from core.gradient_tools import GradientClipping, GradientNoise, clipping_from_settings
from core.problems.surface import COORDINATES, SurfaceProblem
from core.run import Run, RunChange
from core.surfaces import SURFACES, Point, Surface, get_surface, \
    surface_from_formula

FORMAT = "optimizer-playground-session"
VERSION = 1
MAX_RUNS = 32
MAX_FILE_BYTES = 10_000_000
MAX_LABEL = 80          # a legend entry, a card title: one short line
MAX_NAME = 80
MAX_TEXT = 4000         # extra's title / description
MAX_STEPS = 1_000_000_000
MAX_CHANGES = 100_000  # a change per step of a long race, dragged sliders merged
MAX_DIGITS = 30         # no field needs a longer integer; json would build a 4000-digit one
DEFAULT_STEPS = 200
# The work one command (`main.py run` / `export`) may ask for, in evaluations of f and its
# gradient over all runs. A plain optimizer costs one per step; L-BFGS up to max_eval + 1
# (its closure, then the engine's own record). At 100-350 us an evaluation here that is well
# under a minute; it is also the trajectory's default capacity, beyond which steps are thinned.
MAX_EVALUATIONS = 200_000

# A colour-blind-friendly palette (Okabe-Ito), given out in turn to new runs; the colours that
# stand out best on the light heatmap come first, the yellow last.
PALETTE = ("#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00", "#56B4E9", "#000000",
           "#F0E442")

DEFAULT_RUNS: tuple[tuple[str, dict[str, Any]], ...] = (
    ("SGD", {"lr": 1e-3}),
    ("SGD", {"lr": 1e-3, "momentum": 0.9}),
    ("RMSprop", {"lr": 1e-2}),
    ("Adam", {"lr": 5e-2}),
)


class Session:
    """The surface, the start point and the runs. Every run starts at `start`.

    `saved_steps` holds each run's step count as read from a file: `play()` runs that many
    steps, so a saved session run again reproduces what was saved.
    """

    def __init__(self, surface: Surface, start: Point | None = None,
                 runs: Iterable[Run] = ()) -> None:
        self.surface = surface
        self.start: Point = start if start is not None else surface.start
        self.runs: list[Run] = []
        self.extra: dict[str, Any] = {}
        self.saved_steps: dict[Run, int] = {}
        for run in runs:
            self._adopt(run)

    @classmethod
    def default(cls, surface_name: str = "rosenbrock") -> Session:
        """The session the app opens with: SGD, SGD with momentum, RMSprop and Adam racing."""
        session = cls(get_surface(surface_name))
        for name, hps in DEFAULT_RUNS:
            session.add_run(name, hps)
        return session

    def _adopt(self, run: Run) -> Run:
        if len(self.runs) >= MAX_RUNS:
            raise SessionError(f"a session holds at most {MAX_RUNS} runs")
        if run.color is None:
            run.color = self.next_color()
        if run.surface is not self.surface or run.start != self.start:
            run.set_surface(self.surface, self.start)
        self.runs.append(run)
        return run

    def next_color(self) -> str:
        used = {r.color for r in self.runs}
        for c in PALETTE:
            if c not in used:
                return c
        return PALETTE[len(self.runs) % len(PALETTE)]

    def add_run(self, optimizer: str, hyperparameters: dict[str, Any] | None = None,
                frozen: Iterable[str] = (), label: str | None = None, color: str | None = None,
                enabled: bool = True, *, scheduler: Any = None,
                clipping: GradientClipping | None = None,
                noise: GradientNoise | None = None) -> Run:
        """A new run on the session's surface and start. scheduler: call text or (name,
        kwargs); clipping and noise: core/gradient_tools.py (each run needs its own noise)."""
        return self._adopt(Run(self.surface, optimizer, hyperparameters, self.start,
                               tuple(frozen), label, color, enabled, scheduler=scheduler,
                               clipping=clipping, noise=noise))

    def duplicate_run(self, run: Run) -> Run:
        c = run.config()
        noise = GradientNoise(run.noise.sigma, run.noise.seed) if run.noise else None
        return self.add_run(c["optimizer"], c["hyperparameters"], c["frozen"], run.label,
                            None, run.enabled, scheduler=run.scheduler_setting,
                            clipping=run.clipping, noise=noise)

    def remove_run(self, run: Run) -> None:
        self.runs.remove(run)
        self.saved_steps.pop(run, None)

    def set_surface(self, surface: Surface, start: Point | None = None) -> None:
        """Replace the surface; every run restarts (at `start`, or the surface's own start)."""
        self.surface = surface
        self.start = start if start is not None else surface.start
        for run in self.runs:
            run.set_surface(surface, self.start)

    def set_start(self, start: Point) -> None:
        """Move the start point; every run restarts there. Raises SurfaceError if not finite."""
        x, y = float(start[0]), float(start[1])
        if not (math.isfinite(x) and math.isfinite(y)):
            raise SurfaceError(f"the start point must be finite, got ({x}, {y})")
        self.start = (x, y)
        for run in self.runs:
            run.reset(self.start)

    def reset(self) -> None:
        for run in self.runs:
            run.reset(self.start)

    @property
    def active_runs(self) -> list[Run]:
        return [r for r in self.runs if r.enabled and r.status.value != "diverged"]

    def step(self, n: int = 1) -> int:
        """Step every enabled run that has not diverged n times; return total steps taken."""
        return sum(run.step(n) for run in self.active_runs)

    # --- a whole race, as the command line runs it ----------------------------------------------

    def steps_for(self, run: Run, steps: int | None = None) -> int:
        """How many steps `play(steps)` gives `run`: `steps` if given, else the file's count
        for it, else DEFAULT_STEPS."""
        if steps is not None:
            return steps
        return self.saved_steps.get(run, DEFAULT_STEPS)

    def check_work(self, steps: int | None = None) -> None:
        """Refuse (SessionError) a race that would evaluate f more than MAX_EVALUATIONS times."""
        work = [(evaluations_per_step(run) * self.steps_for(run, steps), number, run)
                for number, run in enumerate(self.runs, start=1) if run.enabled]
        total = sum(w for w, _, _ in work)
        if total <= MAX_EVALUATIONS:
            return
        most, number, run = max(work, key=lambda w: w[0])
        per_step = evaluations_per_step(run)
        cost = (f"{self.steps_for(run, steps)} steps" if per_step == 1 else
                f"{self.steps_for(run, steps)} steps x up to {per_step} evaluations each "
                f"(max_iter={run.hyperparameters.get('max_iter')})")
        fix = "'steps' or 'max_iter'" if per_step > 1 else "'steps'"
        raise SessionError(f"too much work: the runs would evaluate f up to {total} times, at "
                           f"most {MAX_EVALUATIONS} in all; run {number} ({run.optimizer_name}) "
                           f"asks for {most} ({cost}): lower {fix}")

    def play(self, steps: int | None = None) -> int:
        """Step every enabled run its own count (`steps_for`), after checking the work bound;
        disabled runs stay at the start. Returns the steps taken. Raises SessionError."""
        if steps is not None and not 0 <= steps <= MAX_STEPS:
            raise SessionError(f"steps must be from 0 to {MAX_STEPS}, got {steps}")
        self.check_work(steps)
        return sum(run.step(self.steps_for(run, steps)) for run in self.runs if run.enabled)

    # --- JSON -----------------------------------------------------------------------------------

    def recorded_steps(self, run: Run) -> int:
        """The step count a save records: the run's own, or, for a run not stepped since it was
        loaded, the count its file gave (opening and saving again keeps the race's length)."""
        return run.steps or self.saved_steps.get(run, 0)

    def to_dict(self, include_trajectories: bool = False) -> dict[str, Any]:
        # the settings each run started with and its changes (the same as config() for a run
        # without changes), so a file replays the run's path
        runs = [{**{k: v for k, v in run.to_dict().items() if k not in _TOOL_KEYS},
                 **run.initial_config()} if include_trajectories
                else {**run.initial_config(), "steps": self.recorded_steps(run)}
                for run in self.runs]
        data: dict[str, Any] = {"format": FORMAT, "version": VERSION,
                                "surface": self.surface.to_dict(), "start": list(self.start),
                                "runs": runs}
        if self.extra:
            data["extra"] = self.extra
        return data

    def save(self, path: str | Path, include_trajectories: bool = False) -> None:
        """Write the session as JSON, atomically (core.atomic): a failure keeps the old file
        intact and leaves no temporary file. Raises SessionError."""
        path = Path(path)
        text = json.dumps(self.to_dict(include_trajectories), indent=1, allow_nan=False)
        # The app never writes a file it would refuse to open (a label typed too long, say):
        # the text goes through the same validation as a load, before anything is written.
        try:
            Session._from_dict(parse_json(text), self.surface)
        except SessionError as e:
            raise SessionError(f"cannot save the session: {e}") from None
        try:
            write_atomic(path, text)
        except OSError as e:
            raise SessionError(f"cannot write session to {path}: {e.strerror or e}") from None

    @classmethod
    def from_dict(cls, data: Any) -> Session:
        """Build a session from parsed JSON, validating all of it. Raises SessionError."""
        return cls._from_dict(data)

    @classmethod
    def _from_dict(cls, data: Any, known_surface: Surface | None = None) -> Session:
        # known_surface: the surface the data was just written from (a save checking itself),
        # reused rather than compiled again, which takes long for a long formula.
        if not isinstance(data, dict):
            raise SessionError("not a session: the file must hold a JSON object")
        _reject_unreadable_numbers(data)
        if data.get("format") != FORMAT:
            raise SessionError(f"not a session file: 'format' must be {FORMAT!r}")
        version = data.get("version")
        if not isinstance(version, int) or isinstance(version, bool):
            raise SessionError("missing or bad field 'version' (a whole number)")
        if version > VERSION:
            raise SessionError(f"the file was written by a newer version of the app (format "
                               f"version {version}; this one reads up to {VERSION})")
        if version < 1:
            raise SessionError(f"'version' must be from 1 to {VERSION}, got {version}")
        _check_keys(data, SESSION_FIELDS, "")
        for key in ("surface", "runs"):
            if key not in data:
                raise SessionError(f"missing field {key!r}")
        if known_surface is not None and data["surface"] in (known_surface.to_dict(), {
                **known_surface.describe(), **known_surface.to_dict()}):
            surface = known_surface
        else:
            surface = _surface_from_dict(data["surface"])
        start = _point(data.get("start", list(surface.start)), "start", "")
        runs_data = data["runs"]
        if not isinstance(runs_data, list):
            raise SessionError("field 'runs' must be a list")
        if len(runs_data) > MAX_RUNS:
            raise SessionError(f"too many runs ({len(runs_data)}; at most {MAX_RUNS})")
        built = [_run_from_dict(surface, start, i + 1, r) for i, r in enumerate(runs_data)]
        extra = _extra(data.get("extra", {}))
        session = cls(surface, start, [run for run, _ in built])
        session.saved_steps = {run: steps for run, steps in built if steps is not None}
        session.extra = extra
        return session

    @classmethod
    def load(cls, path: str | Path) -> Session:
        """Read and validate a session file. Raises SessionError with a clear message."""
        path = Path(path)
        try:
            # Read at most one byte past the limit: st_size says 0 for /dev/zero or a pipe.
            with path.open("rb") as f:
                raw = f.read(MAX_FILE_BYTES + 1)
        except OSError as e:
            raise SessionError(f"cannot read {path}: {e.strerror or e}") from None
        if len(raw) > MAX_FILE_BYTES:
            raise SessionError(f"{path.name} is too large to be a session file "
                               f"(more than {MAX_FILE_BYTES // 1_000_000} MB)")
        try:
            text = raw.decode("utf-8-sig")  # a byte-order mark, as some editors write, is fine
        except UnicodeDecodeError:
            raise SessionError(f"{path.name} is not a session file (not text)") from None
        try:
            data = parse_json(text)
        except (json.JSONDecodeError, RecursionError) as e:
            where = f" (line {e.lineno}, column {e.colno})" if isinstance(
                e, json.JSONDecodeError) else ""
            raise SessionError(f"{path.name} is not valid JSON{where}") from None
        try:
            return cls.from_dict(data)
        except SessionError as e:
            raise SessionError(f"{path.name}: {e}") from None


def evaluations_per_step(run: Run) -> int:
    """The most evaluations of f (forward and backward) one step of `run` can make."""
    if not run.spec.needs_closure:
        return 1
    group = run.optimizer.param_groups[0]
    max_eval = group.get("max_eval") or group.get("max_iter", 1) * 5 // 4  # torch's own default
    return int(max_eval) + 1


# --- parsing: numbers JSON cannot hold stay visible until the field is known ----------------------


@dataclass(frozen=True)
class _Unreadable:
    """A number from the text that no field can take (NaN, Infinity, a 400-digit integer)."""
    text: str

    def why(self) -> str:
        if self.text.lstrip("-").isdigit():
            return f"a {len(self.text.lstrip('-'))}-digit integer is out of range"
        return f"{self.text} is not a number a session file may hold (finite numbers only)"


def _parse_int(text: str) -> int | _Unreadable:
    return _Unreadable(text) if len(text.lstrip("-")) > MAX_DIGITS else int(text)


def _parse_float(text: str) -> float | _Unreadable:
    value = float(text)
    return value if math.isfinite(value) else _Unreadable(text)  # 1e400 reads as inf


def parse_json(text: str) -> Any:
    """json.loads, except that NaN, Infinity, overflowing floats and integers longer than
    MAX_DIGITS come back as markers, which from_dict refuses naming the field."""
    return json.loads(text, parse_constant=_Unreadable, parse_int=_parse_int,
                      parse_float=_parse_float)


def _field_name(path: list[str | int]) -> tuple[str, str]:
    """("run 2", "hyperparameters.lr") for ["runs", 1, "hyperparameters", "lr"]."""
    where = ""
    if len(path) >= 2 and path[0] == "runs" and isinstance(path[1], int):
        where, path = f"run {path[1] + 1}", path[2:]
    elif path and path[0] == "surface":
        where, path = "surface", path[1:]
    name = ""
    for part in path:
        name += f"[{part}]" if isinstance(part, int) else (f".{part}" if name else part)
    return where, name


def _reject_unreadable_numbers(data: Any) -> None:
    """Refuse NaN, infinities and huge integers anywhere (extra and trajectories included):
    the file could not be saved again as strict JSON, and `run --json` would fail at the end.
    Iterative, so a deeply nested file cannot overflow the stack here."""
    stack: list[tuple[Any, list[str | int]]] = [(data, [])]
    while stack:
        value, path = stack.pop()
        bad: str | None = None
        if isinstance(value, _Unreadable):
            bad = value.why()
        elif isinstance(value, float) and not math.isfinite(value):
            bad = f"{value} is not a number a session file may hold (finite numbers only)"
        elif isinstance(value, int) and not isinstance(value, bool) \
                and abs(value) >= 10 ** MAX_DIGITS:
            bad = "the integer is out of range"
        elif isinstance(value, dict):
            stack.extend((v, [*path, str(k)]) for k, v in value.items())
        elif isinstance(value, list):
            stack.extend((v, [*path, i]) for i, v in enumerate(value))
        if bad is not None:
            where, name = _field_name(path)
            raise SessionError(f"{where + ': ' if where else ''}'{name}': {bad}")


# --- the schema -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class FieldSpec:
    """One field of the file: what it holds, for messages and for readers of the format."""
    name: str
    holds: str
    required: bool = False


SESSION_FIELDS = (
    FieldSpec("format", f"the text {FORMAT!r}", required=True),
    FieldSpec("version", f"a whole number from 1 to {VERSION}", required=True),
    FieldSpec("surface", "a built-in's name, or a formula with its region", required=True),
    FieldSpec("start", "two finite numbers [x, y]"),
    FieldSpec("runs", f"a list of at most {MAX_RUNS} runs", required=True),
    FieldSpec("extra", "an object: the app's own free-form state"),
)
SURFACE_FIELDS = (
    FieldSpec("name", f"a built-in surface's name, or the formula's (at most {MAX_NAME} "
              "characters)"),
    FieldSpec("formula", "f(x, y) as text, in the formula grammar"),
    FieldSpec("x_range", "two finite numbers [low, high], with a formula"),
    FieldSpec("y_range", "two finite numbers [low, high], with a formula"),
    FieldSpec("start", "the formula's own start, two finite numbers [x, y]"),
)
RUN_FIELDS = (
    FieldSpec("optimizer", "a torch.optim class name", required=True),
    FieldSpec("hyperparameters", "an object of the optimizer's keyword arguments"),
    FieldSpec("frozen", "a list of 'x' and/or 'y'"),
    FieldSpec("label", f"null or one line of at most {MAX_LABEL} characters"),
    FieldSpec("color", "null or #rrggbb"),
    FieldSpec("enabled", "true or false"),
    FieldSpec("steps", f"the steps the run was saved at, a whole number from 0 to {MAX_STEPS}"),
    FieldSpec("scheduler", "a torch.optim.lr_scheduler call, e.g. 'CosineAnnealingLR(T_max=200)'"),
    FieldSpec("clip_norm", "clip_grad_norm_'s max_norm, a number > 0"),
    FieldSpec("clip_value", "clip_grad_value_'s clip_value, a number > 0"),
    FieldSpec("noise", "gradient noise {\"sigma\": a number >= 0, \"seed\": a whole number >= 0}"),
    FieldSpec("changes", "the changes made between steps, in step order: [{\"step\": N, "
              "\"kind\": \"hyperparameters\" | \"freeze\" | \"scheduler\" | \"clipping\" | "
              "\"noise\", ...}]"),
)
NOISE_FIELDS = ("sigma", "seed")
_TOOL_KEYS = ("scheduler", "clip_norm", "clip_value", "noise")  # a run's optional tools


# Fields an export writes that loading ignores: what Run.to_dict and Surface.describe add to the
# loadable ones. Spelled out (building a Run to read them would import torch._dynamo, ~1 s, on the
# first load); tests/core/test_session.py checks them against what those methods write today.
OUTPUT_ONLY_FIELDS: dict[str, frozenset[str]] = {
    "surface": frozenset({"title", "minima", "local_minima", "min_value"}),
    "run": frozenset({"status", "status_text", "converged_at", "diverged_at",
                      "divergence_reason", "trajectory"}),
}


def _output_only_fields() -> dict[str, frozenset[str]]:
    return OUTPUT_ONLY_FIELDS


def _check_keys(data: dict[str, Any], fields: tuple[FieldSpec, ...], where: str,
                output_only: frozenset[str] = frozenset()) -> None:
    known = {f.name for f in fields}
    unknown = [k for k in data if k not in known and k not in output_only]
    if unknown:
        prefix = f"{where}: " if where else ""
        names = ", ".join(repr(k[:40]) for k in unknown[:3]) + (", ..." if len(unknown) > 3
                                                                 else "")
        raise SessionError(f"{prefix}unknown field{'s' if len(unknown) > 1 else ''} {names} "
                           f"(known: {', '.join(sorted(known))})")


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    try:
        number = float(value)
    except OverflowError:
        return None
    return number if math.isfinite(number) else None


def _point(value: Any, what: str, where: str) -> Point:
    numbers = [_number(v) for v in value] if isinstance(value, list) and len(value) == 2 else []
    if len(numbers) != 2 or None in numbers:
        prefix = f"{where}: " if where else ""
        raise SessionError(f"{prefix}field {what!r} must be two finite numbers [x, y], got "
                           f"{_short(value)}")
    return numbers[0], numbers[1]  # type: ignore[return-value]


_ONE_LINE = re.compile(r"[\x00-\x1f\x7f\u2028\u2029]")
_COLOR = re.compile(r"#[0-9a-fA-F]{6}")


def _one_line(value: Any, field: str, where: str, limit: int) -> str:
    prefix = f"{where}: " if where else ""
    if not isinstance(value, str):
        raise SessionError(f"{prefix}{field!r} must be text, got {_short(value)}")
    if len(value) > limit or _ONE_LINE.search(value):
        raise SessionError(f"{prefix}{field!r} must be one line of at most {limit} characters, "
                           f"got {_short(value)}")
    return value


def validate_frozen(frozen: Any, parameter_names: tuple[str, ...], where: str) -> list[str]:
    """A run's 'frozen' field: a list of the problem's parameter names.
    Raises SessionError naming the field and the names it may hold."""
    if parameter_names == COORDINATES:  # the race's words, as they always were
        allowed = "'x' and/or 'y'"
    else:
        shown = ", ".join(repr(n) for n in parameter_names[:8])
        more = f", ... ({len(parameter_names)} in all)" if len(parameter_names) > 8 else ""
        allowed = f"parameter names ({shown}{more})"
    if not isinstance(frozen, list) or not all(isinstance(c, str) and c in parameter_names
                                               for c in frozen):
        raise SessionError(f"{where}: 'frozen' must be a list of {allowed}, got "
                           f"{_short(frozen)}")
    return list(frozen)


def validate_label(label: str | None) -> str | None:
    """A run's label as a session file holds it (None, or one line of at most MAX_LABEL
    characters); raises SessionError otherwise. For editors of labels, so a typed label can
    always be saved."""
    return None if label is None else _one_line(label, "label", "", MAX_LABEL)


def _surface_from_dict(data: Any) -> Surface:
    if not isinstance(data, dict):
        raise SessionError("field 'surface' must be an object")
    _check_keys(data, SURFACE_FIELDS, "surface", _output_only_fields()["surface"])
    if "name" in data:
        _one_line(data["name"], "name", "surface", MAX_NAME)
    try:
        if "formula" in data:
            if not isinstance(data["formula"], str):
                raise SessionError("surface 'formula' must be text")
            ranges = {k: _point(data[k], k, "surface") for k in ("x_range", "y_range")
                      if k in data}
            start = _point(data["start"], "start", "surface") if "start" in data else None
            surface = surface_from_formula(data["formula"], start=start,
                                           name=str(data.get("name", "custom")), **ranges)
            # Exported JSON (core.export.result_dict) describes a built-in in full: when it is
            # exactly the built-in, load the built-in itself (with its title and minima).
            builtin = SURFACES.get(surface.name)
            if builtin is not None and (surface.text, surface.x_range, surface.y_range,
                                        surface.start) == (builtin.text, builtin.x_range,
                                                           builtin.y_range, builtin.start):
                return builtin
            return surface
        if "name" not in data:
            raise SessionError("surface needs a 'name' (a built-in) or a 'formula'")
        region = [k for k in ("x_range", "y_range", "start") if k in data]
        if region:
            # Refused rather than guessed: a built-in keeps its own region and start, and the
            # session's start goes at the top level. A changed region needs the formula too.
            raise SessionError(f"surface {data['name']!r} is a built-in: {region[0]!r} goes only "
                               "with a 'formula' (copy the built-in's formula to change its "
                               "region; the start point is the session's 'start')")
        return get_surface(data["name"])
    except SessionError:
        raise
    except PlaygroundError as e:
        raise SessionError(f"surface: {e}") from None


def _run_from_dict(surface: Surface, start: Point, number: int,
                   data: Any) -> tuple[Run, int | None]:
    where = f"run {number}"
    if not isinstance(data, dict):
        raise SessionError(f"{where} must be an object")
    _check_keys(data, RUN_FIELDS, where, _output_only_fields()["run"])
    if "optimizer" not in data:
        raise SessionError(f"{where}: missing field 'optimizer'")
    hps = data.get("hyperparameters", {})
    frozen = data.get("frozen", [])
    label, color, enabled = data.get("label"), data.get("color"), data.get("enabled", True)
    steps = data.get("steps")
    if not isinstance(data["optimizer"], str):
        raise SessionError(f"{where}: 'optimizer' must be a torch.optim class name")
    if not isinstance(hps, dict):
        raise SessionError(f"{where}: 'hyperparameters' must be an object")
    validate_frozen(frozen, SurfaceProblem(surface, start).parameter_names, where)
    if label is not None:
        _one_line(label, "label", where, MAX_LABEL)
    if color is not None and not (isinstance(color, str) and _COLOR.fullmatch(color)):
        raise SessionError(f"{where}: 'color' must be #rrggbb, got {_short(color)}")
    if not isinstance(enabled, bool):
        raise SessionError(f"{where}: 'enabled' must be true or false, got {_short(enabled)}")
    if steps is not None and (isinstance(steps, bool) or not isinstance(steps, int)
                              or not 0 <= steps <= MAX_STEPS):
        raise SessionError(f"{where}: 'steps' must be a whole number from 0 to {MAX_STEPS}, "
                           f"got {_short(steps)}")
    tools = gradient_tools_from_dict(data, where)
    changes = changes_from_dict(data, where, steps)
    try:
        run = Run(surface, data["optimizer"], hps, start, tuple(frozen), label, color, enabled,
                  **tools, changes=changes)
    except PlaygroundError as e:
        raise SessionError(f"{where}: {e}") from None
    return run, steps


def changes_from_dict(data: dict[str, Any], where: str, steps: int | None) -> list[RunChange]:
    """A run's 'changes', their shape checked (the run checks what they say), as RunChanges
    in step order, none after the run's saved steps. Raises SessionError naming the change
    (for model sessions too)."""
    if "changes" not in data:
        return []
    items = data["changes"]
    if not isinstance(items, list) or len(items) > MAX_CHANGES:
        raise SessionError(f"{where}: 'changes' must be a list of at most {MAX_CHANGES} "
                           f"changes, got {_short(items)}")
    changes: list[RunChange] = []
    for number, item in enumerate(items, 1):
        try:
            change = RunChange.from_dict(item)
        except PlaygroundError as e:
            raise SessionError(f"{where}: 'changes' {number}: {e}") from None
        if changes and change.step < changes[-1].step:
            raise SessionError(f"{where}: 'changes' {number}: the changes must be in step "
                               f"order (step {change.step} after step {changes[-1].step})")
        if steps is not None and change.step > steps:
            raise SessionError(f"{where}: 'changes' {number}: step {change.step} is after the "
                               f"run's saved steps ({steps})")
        changes.append(change)
    return changes


def gradient_tools_from_dict(data: dict[str, Any], where: str) -> dict[str, Any]:
    """A run's 'scheduler', 'clip_norm' / 'clip_value' and 'noise', validated, as Run's keyword
    arguments. Raises SessionError naming the field (for model sessions too)."""
    from core.run import scheduler_setting

    tools: dict[str, Any] = {}
    if "scheduler" in data:
        text = data["scheduler"]
        if not isinstance(text, str):
            raise SessionError(f"{where}: 'scheduler' must be a scheduler call as text, e.g. "
                               f"'CosineAnnealingLR(T_max=200)', got {_short(text)}")
        try:
            tools["scheduler"] = scheduler_setting(text)
        except PlaygroundError as e:
            raise SessionError(f"{where}: 'scheduler': {e}") from None
    try:
        tools["clipping"] = clipping_from_settings(data.get("clip_norm"), data.get("clip_value"))
    except PlaygroundError as e:
        raise SessionError(f"{where}: {e}") from None
    if "noise" in data:
        noise = data["noise"]
        shape = '{"sigma": a number >= 0, "seed": a whole number >= 0}'
        if not isinstance(noise, dict) or "sigma" not in noise or any(
                k not in NOISE_FIELDS for k in noise):
            raise SessionError(f"{where}: 'noise' must be {shape}, got {_short(noise)}")
        try:
            tools["noise"] = GradientNoise(noise["sigma"], noise.get("seed", 0))
        except PlaygroundError as e:
            raise SessionError(f"{where}: 'noise': {e}") from None
    return tools


_EXTRA_TEXT_FIELDS = ("title", "description")  # shown by the window: text, if present


def _extra(value: Any) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise SessionError(f"'extra' must be an object, got {_short(value)}")
    for key in _EXTRA_TEXT_FIELDS:
        if key in value and not (isinstance(value[key], str) and len(value[key]) <= MAX_TEXT):
            raise SessionError(f"extra: {key!r} must be text of at most {MAX_TEXT} characters")
    return value


def describe_schema() -> str:
    """The declared fields, as text (for the README and `--help` readers)."""
    lines = []
    for title, fields in (("session", SESSION_FIELDS), ("surface", SURFACE_FIELDS),
                          ("run", RUN_FIELDS)):
        lines.append(f"{title}:")
        lines += [f"  {f.name:<16} {f.holds}{' (required)' if f.required else ''}"
                  for f in fields]
    return "\n".join(lines)

