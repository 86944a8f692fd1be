"""A model-mode session: a torch.nn model, its data, the loss and several runs; to and from JSON.

The file format (version 1):

    {"format": "optimizer-playground-model-session", "version": 1,
     "model": "Linear(2, 16), Tanh(), Linear(16, 1)",        # or a preset name: "small-mlp"
     "data": {"dataset": "moons", "n": 200, "noise": 0.1}     # a generated dataset, or
             | {"csv": "<the file's text>", "name": "mine.csv", "target": "label"},
     "loss": "BCEWithLogitsLoss",                             # null: the usual one for the data
     "batch_size": 0,                                         # 0: full batch
     "test_fraction": 0.2, "seed": 0,                         # data, split, weights and batches
     "runs": [{"optimizer": "Adam", "hyperparameters": {...}, "frozen": ["0.weight"],
               "label": null, "color": "#0072B2", "enabled": true, "steps": 200,
               "scheduler": "StepLR(step_size=50)", "clip_norm": 1.0,   # optional, as in a
               "noise": {"sigma": 0.1, "seed": 0}, "changes": [...]}],  # race session
     "extra": {...}}                                          # the app's own free-form state

A CSV's contents are kept in the file (not its path), so a session opens the same anywhere.
Loading checks the structure, then builds the data, the model and every run once, so that a bad
file raises SessionError with one line naming the field ("run 2: 'frozen' ...", "model: unknown
layer 'Tanhh' (column 19); did you mean Tanh?") and nothing else changes. One `seed` drives
everything random (the generated data, the split, the initial weights and the minibatches), so a
session rebuilt from its file gives bit-identical runs.
"""

from __future__ import annotations

import copy
import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from core.atomic import write_atomic
from core.errors import PlaygroundError, SessionError
from core.problems.data import GENERATED, MAX_CSV_BYTES, Dataset, Split, check_loss, \
    default_loss, for_loss, make_dataset, metrics_in_eval_mode, make_loss, output_width, \
    parse_csv, shape_targets, train_test_split
from core.problems.model import ModelError, build_model, parameter_names_to_freeze, parse_model, \
    resolve_model_text
from core.problems.training import ModelProblem
from core.run import Run, RunStatus
from core.session import MAX_LABEL, MAX_RUNS, MAX_STEPS, PALETTE, _one_line, \
    _reject_unreadable_numbers, changes_from_dict, gradient_tools_from_dict, parse_json, \
    validate_frozen

FORMAT = "optimizer-playground-model-session"
VERSION = 1
# The CSV's text as JSON writes it (a tab or a newline takes 2 bytes, another non-ASCII
# character up to 12 as \uXXXX pairs: 6 per byte of UTF-8 at worst) plus everything else.
MAX_FILE_BYTES = 6 * MAX_CSV_BYTES + 1_000_000
DEFAULT_MODEL = "small-mlp"
DEFAULT_DATASET = "moons"
DEFAULT_TEST_FRACTION = 0.2
DEFAULT_STEPS = 200
DEFAULT_RUNS: tuple[tuple[str, dict[str, Any]], ...] = (("SGD", {"lr": 0.1}),
                                                          ("Adam", {"lr": 0.01}))

SESSION_KEYS = ("format", "version", "model", "data", "loss", "batch_size", "test_fraction",
                "seed", "runs", "extra")
GENERATED_KEYS = ("dataset", "n", "noise")
CSV_KEYS = ("csv", "name", "target")
RUN_KEYS = ("optimizer", "hyperparameters", "frozen", "label", "color", "enabled", "steps",
            "scheduler", "clip_norm", "clip_value", "noise", "changes")
# A run's optional fields, as core/session.py reads them: written only when set, so a run
# without them is stored exactly as before
TOOL_KEYS = ("scheduler", "clip_norm", "clip_value", "noise")


@dataclass
class DataSpec:
    """Where the rows come from: a generated dataset (`dataset`, `n`, `noise`; None: its usual
    size and noise) or a CSV's text (`csv`, shown as `name`, target column `target`; None: the
    last)."""

    dataset: str | None = DEFAULT_DATASET
    n: int | None = None
    noise: float | None = None
    csv: str | None = None
    name: str = "data.csv"
    target: str | None = None

    def load(self, seed: int) -> Dataset:
        """The Dataset (DataError with one line naming the line of a bad CSV)."""
        if self.csv is not None:
            return parse_csv(self.csv, self.target, name=self.name)
        return make_dataset(self.dataset or DEFAULT_DATASET, self.n, self.noise, seed)

    def to_dict(self) -> dict[str, Any]:
        """The session file's "data" object."""
        if self.csv is not None:
            return {"csv": self.csv, "name": self.name, "target": self.target}
        return {"dataset": self.dataset, "n": self.n, "noise": self.noise}


@dataclass
class RunSpec:
    """One run as a session holds it: the optimizer and its keywords, frozen parameter names,
    the legend's label and colour, whether it is on, and how many steps it takes; and, as
    the race's session files hold them, its scheduler (call text), clipping (clip_norm or
    clip_value), noise ({"sigma", "seed"}) and the changes made between steps (RunChange
    dicts, replayed at their steps: the hyperparameters and the rest are the initial ones)."""

    optimizer: str
    hyperparameters: dict[str, Any] = field(default_factory=dict)
    frozen: list[str] = field(default_factory=list)
    label: str | None = None
    color: str | None = None
    enabled: bool = True
    steps: int = DEFAULT_STEPS
    scheduler: str | None = None
    clip_norm: float | None = None
    clip_value: float | None = None
    noise: dict[str, Any] | None = None
    changes: list[dict[str, Any]] = field(default_factory=list)

    @classmethod
    def from_run(cls, run: Run, steps: int | None = None) -> RunSpec:
        """What a session stores about a run: the settings it started with and the changes
        made since (`Run.initial_config`), so the file replays its path; `steps`: its
        length (default: the steps it has taken)."""
        c = run.initial_config()
        return cls(c["optimizer"], dict(c["hyperparameters"]), list(c["frozen"]), c["label"],
                   c["color"], c["enabled"], run.steps if steps is None else steps,
                   c.get("scheduler"), c.get("clip_norm"), c.get("clip_value"),
                   c.get("noise"), list(c.get("changes", [])))

    def run_settings(self, where: str = "run") -> dict[str, Any]:
        """Run's keyword arguments for the scheduler, clipping, noise and changes (validated:
        SessionError naming the field)."""
        data = {k: getattr(self, k) for k in TOOL_KEYS if getattr(self, k) is not None}
        if self.changes:
            data["changes"] = self.changes
        return {**gradient_tools_from_dict(data, where),
                "changes": changes_from_dict(data, where, self.steps)}

    def to_dict(self) -> dict[str, Any]:
        """The session file's run object."""
        data = {"optimizer": self.optimizer,
                "hyperparameters": {k: list(v) if isinstance(v, tuple) else v
                                    for k, v in self.hyperparameters.items()},
                "frozen": list(self.frozen), "label": self.label, "color": self.color,
                "enabled": self.enabled, "steps": self.steps}
        data.update({k: getattr(self, k) for k in TOOL_KEYS if getattr(self, k) is not None})
        if self.changes:
            data["changes"] = list(self.changes)
        return data


@dataclass(eq=False)
class BuiltModelSession:
    """What `ModelSession.build()` makes: the data and its split, the model, the problem every
    run trains on, and the runs (in the session's order), each at its start."""

    dataset: Dataset
    split: Split
    loss_name: str
    model_text: str
    model: nn.Module
    loss_fn: nn.Module
    problem: ModelProblem
    runs: list[Run]
    X_test: Tensor | None
    y_test: Tensor | None
    _eval_model: nn.Module | None = None
    _eval_names: list[str] = field(default_factory=list)  # the eval copy's parameters, kept
    _eval_params: list[Tensor] = field(default_factory=list)

    def held_out(self, run: Run) -> tuple[float | None, float | None]:
        """(test loss, test accuracy) of `run`'s parameters now, under torch.no_grad() in eval
        mode (core.problems.data.held_out_metrics, on a copy kept in eval mode); (None, None)
        without held-out rows; the accuracy is None for regression."""
        if self.X_test is None or self.y_test is None:
            return None, None
        if self._eval_model is None:  # a copy, so the shared model's weights stay the initial
            self._eval_model = copy.deepcopy(self.model).eval()  # only ever in eval mode
            named = list(self._eval_model.named_parameters())
            self._eval_names = [name for name, _ in named]
            self._eval_params = [p for _, p in named]
        with torch.no_grad():
            # one foreach copy into the kept parameter list: the module walk and a copy_ per
            # parameter were ~20 us of the small MLP's ~120 us held-out (h9, in one process)
            params = run.parameters
            torch._foreach_copy_(self._eval_params, [params[name] for name in self._eval_names])
            # the run's own BatchNorm statistics (the shared model's stay the initial ones)
            own = self.problem.buffers(params)
            if own:
                for name, b in self._eval_model.named_buffers():
                    if name in own:
                        b.copy_(own[name])
        return metrics_in_eval_mode(self._eval_model, self.loss_fn, self.X_test, self.y_test,
                                    self.loss_name)


class ModelSession:
    """Model mode's workspace as data: model text, data, loss, batch size, split, seed, runs."""

    def __init__(self, model: str = DEFAULT_MODEL, data: DataSpec | None = None,
                 loss: str | None = None, batch_size: int = 0,
                 test_fraction: float = DEFAULT_TEST_FRACTION, seed: int = 0,
                 runs: list[RunSpec] | None = None, extra: dict[str, Any] | None = None) -> None:
        self.model = model
        self.data = data if data is not None else DataSpec()
        self.loss = loss
        self.batch_size = batch_size
        self.test_fraction = test_fraction
        self.seed = seed
        self.runs: list[RunSpec] = list(runs) if runs is not None else []
        self.extra: dict[str, Any] = dict(extra or {})

    @classmethod
    def default(cls) -> ModelSession:
        """SGD and Adam training the small MLP on two moons."""
        session = cls()
        for name, hps in DEFAULT_RUNS:
            session.add_run(name, hps)
        return session

    def add_run(self, optimizer: str, hyperparameters: dict[str, Any] | None = None,
                **settings: Any) -> RunSpec:
        """Append a run (a colour from the palette unless given)."""
        if len(self.runs) >= MAX_RUNS:
            raise SessionError(f"a session holds at most {MAX_RUNS} runs")
        spec = RunSpec(optimizer, dict(hyperparameters or {}), **settings)
        if spec.color is None:
            used = {r.color for r in self.runs}
            spec.color = next((c for c in PALETTE if c not in used),
                              PALETTE[len(self.runs) % len(PALETTE)])
        self.runs.append(spec)
        return spec

    # --- building -------------------------------------------------------------------------------

    def load_data(self) -> Dataset:
        """The rows, with the target as the session's loss reads it: under MSELoss a CSV's
        whole-number target (which parse_csv takes for classes) is numbers, a (N,) float64
        regression target (core.problems.data.for_loss); other losses, or none, leave the
        data as it was read, and so does a generated dataset (its task is its own: moons'
        classes under MSELoss stay refused). DataError with one line otherwise."""
        return _as_loss_reads(self.data.load(self.seed), self)

    def build_model(self) -> tuple[Dataset, str, str, nn.Module]:
        """(dataset, loss name, model text, model): the data and the model, before any split."""
        dataset = self.load_data()
        loss_name = check_loss(default_loss(dataset.task) if self.loss is None else self.loss,
                               dataset.task)  # the torch name, if it fits the target
        outputs = output_width(loss_name, dataset.n_classes)
        text = resolve_model_text(self.model, dataset.n_features, outputs)
        spec = parse_model(text, dataset.n_features)
        if spec.out_features != outputs:
            raise ModelError(
                f"the model has {spec.out_features} output{'s' if spec.out_features != 1 else ''}"
                f"; {loss_name} on this data needs {outputs} (end with Linear(..., {outputs}))")
        return dataset, loss_name, text, build_model(spec, dataset.n_features, self.seed)

    def freeze_names(self, targets: list[str]) -> list[str]:
        """Parameter names for --freeze targets: a name ('2.weight') or a layer index ('0')."""
        _, _, _, model = self.build_model()
        names: list[str] = []
        for target in targets:
            for name in parameter_names_to_freeze(model, target):
                if name not in names:
                    names.append(name)
        order = [n for n, _ in model.named_parameters()]
        return sorted(names, key=order.index)

    def build(self) -> BuiltModelSession:
        """The data, its split, the model, one ModelProblem and a Run per run (PlaygroundError
        with one line for anything that does not fit)."""
        dataset, loss_name, text, model = self.build_model()
        split = train_test_split(dataset, self.test_fraction, self.seed)
        loss_fn = make_loss(loss_name, dataset.task)
        problem = ModelProblem(model, split.train.X, shape_targets(split.train.y, loss_name),
                               loss_fn, self.batch_size, self.seed)
        runs = []
        for number, spec in enumerate(self.runs, 1):
            settings = spec.run_settings(f"run {number}")
            try:
                runs.append(Run(problem, spec.optimizer, spec.hyperparameters,
                                frozen=tuple(spec.frozen), label=spec.label, color=spec.color,
                                enabled=spec.enabled, **settings))
            except PlaygroundError as e:
                raise PlaygroundError(f"run {number}: {e}") from None
        X_test = y_test = None
        if split.test is not None:
            X_test, y_test = split.test.X, shape_targets(split.test.y, loss_name)
        return BuiltModelSession(dataset, split, loss_name, text, model, loss_fn, problem, runs,
                                 X_test, y_test)

    # --- JSON ------------------------------------------------------------------------------------

    def to_dict(self) -> dict[str, Any]:
        """The session file's object (see the module docstring)."""
        return {"format": FORMAT, "version": VERSION, "model": self.model,
                "data": self.data.to_dict(), "loss": self.loss, "batch_size": self.batch_size,
                "test_fraction": self.test_fraction, "seed": self.seed,
                "runs": [r.to_dict() for r in self.runs], "extra": self.extra}

    def to_json(self) -> str:
        """The file's text (strict JSON)."""
        return json.dumps(self.to_dict(), indent=1, allow_nan=False) + "\n"

    def save(self, path: str | Path) -> None:
        """Write the session atomically (the old file stays whole if writing fails). Raises
        SessionError, in one line naming the file, for a file the app could not open again or
        one that cannot be written."""
        text = self.to_json()
        if len(text.encode("utf-8")) > MAX_FILE_BYTES:
            raise SessionError(f"cannot save {Path(path).name}: the session would be larger than "
                               f"{MAX_FILE_BYTES:,} bytes")
        try:
            write_atomic(path, text)
        except OSError as e:
            raise SessionError(f"cannot write {path}: {e.strerror or e}") from None

    @classmethod
    def from_dict(cls, data: Any) -> ModelSession:
        """A session from its file's object: everything checked, then built once; SessionError
        with one line naming the field otherwise."""
        session = _structure(data)
        _check_builds(session)
        return session

    @classmethod
    def from_json(cls, text: str) -> ModelSession:
        """A session from the file's text."""
        try:
            data = parse_json(text)
        except (ValueError, RecursionError) as e:
            raise SessionError(f"not a session file: {str(e).splitlines()[0]}") from None
        _reject_unreadable_numbers(data)
        return cls.from_dict(data)

    @classmethod
    def load(cls, path: str | Path) -> ModelSession:
        """Read and validate a session file."""
        try:
            with open(path, "rb") as f:
                raw = f.read(MAX_FILE_BYTES + 1)
        except OSError as e:
            raise SessionError(f"cannot read {str(path)!r}: {e.strerror or e}") from None
        if len(raw) > MAX_FILE_BYTES:
            raise SessionError(f"the file is larger than {MAX_FILE_BYTES:,} bytes")
        try:
            text = raw.decode("utf-8-sig")
        except UnicodeDecodeError:
            raise SessionError("not a session file: it is not UTF-8 text") from None
        return cls.from_json(text)


# --- validation --------------------------------------------------------------------------------


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _check_keys(data: dict[str, Any], known: tuple[str, ...], where: str) -> None:
    unknown = [k for k in data if k not in known]
    if unknown:
        prefix = f"{where}: " if where else ""
        raise SessionError(f"{prefix}unknown field {unknown[0][:40]!r} (known: "
                           f"{', '.join(sorted(known))})")


def _whole(value: Any, name: str, low: int, high: int, where: str = "") -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        prefix = f"{where}: " if where else ""
        raise SessionError(f"{prefix}'{name}' must be a whole number from {low} to {high}, "
                           f"got {_short(value)}")
    return value


def _text(value: Any, name: str, where: str = "", limit: int = 10_000) -> str:
    if not isinstance(value, str) or len(value) > limit:
        prefix = f"{where}: " if where else ""
        raise SessionError(f"{prefix}'{name}' must be text (at most {limit:,} characters), got "
                           f"{_short(value)}")
    return value


def _data_spec(data: Any) -> DataSpec:
    if not isinstance(data, dict):
        raise SessionError(f"'data' must be an object, got {_short(data)}")
    if "csv" in data:
        _check_keys(data, CSV_KEYS, "data")
        text = _text(data["csv"], "csv", "data", MAX_CSV_BYTES)
        name = _text(data.get("name", "data.csv"), "name", "data", 200)
        target = data.get("target")
        if target is not None:
            _text(target, "target", "data", 200)
        return DataSpec(dataset=None, csv=text, name=name, target=target)
    _check_keys(data, GENERATED_KEYS, "data")
    if "dataset" not in data:
        raise SessionError("data: needs 'dataset' (one of " + ", ".join(GENERATED)
                           + ") or 'csv' (a CSV file's text)")
    name = _text(data["dataset"], "dataset", "data", 80)
    n = data.get("n")
    if n is not None:
        _whole(n, "n", 4, 100_000, "data")
    noise = data.get("noise")
    if noise is not None and (isinstance(noise, bool) or not isinstance(noise, (int, float))
                              or not (math.isfinite(noise) and 0 <= noise <= 10)):
        raise SessionError(f"data: 'noise' must be a number from 0 to 10, got {_short(noise)}")
    return DataSpec(dataset=name, n=n, noise=None if noise is None else float(noise))


def _run_spec(number: int, data: Any) -> RunSpec:
    where = f"run {number}"
    if not isinstance(data, dict):
        raise SessionError(f"{where} must be an object")
    _check_keys(data, RUN_KEYS, where)
    if not isinstance(data.get("optimizer"), str):
        raise SessionError(f"{where}: 'optimizer' must be a torch.optim class name")
    hps = data.get("hyperparameters", {})
    if not isinstance(hps, dict):
        raise SessionError(f"{where}: 'hyperparameters' must be an object")
    frozen = data.get("frozen", [])
    if not isinstance(frozen, list) or not all(isinstance(n, str) for n in frozen):
        raise SessionError(f"{where}: 'frozen' must be a list of parameter names, got "
                           f"{_short(frozen)}")
    label = data.get("label")
    if label is not None:
        _one_line(label, "label", where, MAX_LABEL)
    color = data.get("color")
    if color is not None and not (isinstance(color, str) and len(color) == 7
                                  and color[0] == "#"
                                  and all(c in "0123456789abcdefABCDEF" for c in color[1:])):
        raise SessionError(f"{where}: 'color' must be #rrggbb, got {_short(color)}")
    enabled = data.get("enabled", True)
    if not isinstance(enabled, bool):
        raise SessionError(f"{where}: 'enabled' must be true or false, got {_short(enabled)}")
    steps = _whole(data.get("steps", DEFAULT_STEPS), "steps", 0, MAX_STEPS, where)
    gradient_tools_from_dict(data, where)  # checked here, built with the run
    changes_from_dict(data, where, steps)
    return RunSpec(data["optimizer"], dict(hps), list(frozen), label, color, enabled, steps,
                   data.get("scheduler"), data.get("clip_norm"), data.get("clip_value"),
                   data.get("noise"), list(data.get("changes", [])))


def _structure(data: Any) -> ModelSession:
    if not isinstance(data, dict):
        raise SessionError("not a model session file: expected a JSON object")
    if data.get("format") != FORMAT:
        raise SessionError(f"not a model session file: 'format' must be {FORMAT!r}, got "
                           f"{_short(data.get('format'))}")
    version = data.get("version")
    if isinstance(version, bool) or not isinstance(version, int) or not 1 <= version <= VERSION:
        raise SessionError(f"'version' must be a whole number from 1 to {VERSION}, got "
                           f"{_short(version)} (a newer app's file?)")
    _check_keys(data, SESSION_KEYS, "")
    for key in ("model", "data", "runs"):
        if key not in data:
            raise SessionError(f"missing field {key!r}")
    model = _text(data["model"], "model")
    loss = data.get("loss")
    if loss is not None:
        _text(loss, "loss", limit=80)
    batch_size = _whole(data.get("batch_size", 0), "batch_size", 0, 10_000_000)
    fraction = data.get("test_fraction", DEFAULT_TEST_FRACTION)
    if isinstance(fraction, bool) or not isinstance(fraction, (int, float)) or not (
            0 <= fraction < 1):
        raise SessionError(f"'test_fraction' must be a number in [0, 1), got {_short(fraction)}")
    seed = _whole(data.get("seed", 0), "seed", 0, 2 ** 63 - 1)
    runs = data["runs"]
    if not isinstance(runs, list) or len(runs) > MAX_RUNS:
        raise SessionError(f"'runs' must be a list of at most {MAX_RUNS} runs")
    extra = data.get("extra", {})
    if not isinstance(extra, dict):
        raise SessionError(f"'extra' must be an object, got {_short(extra)}")
    return ModelSession(model, _data_spec(data["data"]), loss, batch_size, float(fraction), seed,
                        [_run_spec(i, r) for i, r in enumerate(runs, 1)], extra)


def _as_loss_reads(dataset: Dataset, session: ModelSession) -> Dataset:
    """A CSV's rows as the session's loss reads the target (see ModelSession.load_data)."""
    return dataset if session.data.csv is None else for_loss(dataset, session.loss)


def _check_builds(session: ModelSession) -> None:
    """Build everything once, naming the field that fails."""
    try:
        dataset = session.data.load(session.seed)
    except PlaygroundError as e:
        raise SessionError(f"data: {e}") from None
    try:
        dataset = _as_loss_reads(dataset, session)  # MSELoss: a CSV's whole numbers
        loss_name = default_loss(dataset.task) if session.loss is None else session.loss
        make_loss(loss_name, dataset.task)
    except PlaygroundError as e:
        raise SessionError(f"loss: {e}") from None
    try:
        _, _, _, model = session.build_model()
    except PlaygroundError as e:
        raise SessionError(f"model: {e}") from None
    names = tuple(n for n, _ in model.named_parameters())
    for number, spec in enumerate(session.runs, 1):
        validate_frozen(spec.frozen, names, f"run {number}")
    try:
        session.build()
    except PlaygroundError as e:
        # the runs' errors carry "run N: "; the rest is the split or the batch size
        raise SessionError(str(e) if str(e).startswith("run ") else f"data: {e}") from None


# --- training, headless -----------------------------------------------------------------------


@dataclass(eq=False)
class TrainingRecord:
    """What `train` adds to each run's own trajectory: held-out metrics by step, and (if asked)
    the flat parameters after every step (the paths PCA directions and projections use)."""

    test_loss: dict[int, float | None] = field(default_factory=dict)
    accuracy: dict[int, float | None] = field(default_factory=dict)
    path: list[Tensor] = field(default_factory=list)


def flat_parameters(run: Run) -> Tensor:
    """The run's parameters as one flat float64 vector, in named_parameters() order."""
    return torch.cat([run.parameters[n].detach().reshape(-1) for n in run.parameter_names])


def train(built: BuiltModelSession, steps: list[int], eval_every: int = 1,
          keep_paths: bool = False) -> list[TrainingRecord]:
    """Step each enabled run `steps[i]` times (a diverged run stops), one step at a time.

    Held-out loss and accuracy are measured under torch.no_grad() at step 0 and every
    `eval_every` steps (and at the last step), never in between.
    """
    if isinstance(eval_every, bool) or not isinstance(eval_every, int) or eval_every < 1:
        raise PlaygroundError(f"the held-out metrics are measured every K steps, K >= 1; got "
                              f"{eval_every!r}")
    records = []
    for run, count in zip(built.runs, steps):
        record = TrainingRecord()
        _measure(built, run, record)
        if keep_paths:
            record.path.append(flat_parameters(run))
        if run.enabled:
            for k in range(1, count + 1):
                run.step(1)
                if run.diverged:  # its last parameters may not be finite
                    break
                if k % eval_every == 0 or k == count:
                    _measure(built, run, record)
                if keep_paths:
                    record.path.append(flat_parameters(run))
        records.append(record)
    return records


def _measure(built: BuiltModelSession, run: Run, record: TrainingRecord) -> None:
    if built.X_test is not None and run.status is not RunStatus.DIVERGED:
        record.test_loss[run.steps], record.accuracy[run.steps] = built.held_out(run)
