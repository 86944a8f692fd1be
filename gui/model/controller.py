"""ModelController: one model-mode session (a torch.nn model on data) and the runs that train it.

The problem is built by core/model_session.py, the same code `main.py train` uses: the settings
here are a ModelSession's fields (model text or preset, data: a built-in with its size and
noise, or a CSV's text and target column, loss, batch size, test fraction, one seed for the
data, the split, the weights and the batches), and `ModelSession.build()` makes the data, its
split, the model and the ModelProblem. So the same settings give the same rows, weights and
batches in the window and on the command line, and a run stepped here equals `train()`'s bit
for bit. Every run is a core Run of a real torch.optim optimizer on that ModelProblem, so all
start from the same initial weights and see the same minibatches. Runs are stepped on a QTimer
in time slices, as the race's controller does.

Besides each run's Trajectory it keeps what the engine does not record: the held-out loss and
accuracy (under torch.no_grad(), in eval mode, every `test_every` steps, after a manual step
and when play stops), the sharpness (the top Hessian eigenvalue, core/curvature.py) every few
steps, measured in a cancellable worker Job. When a tensor was frozen or unfrozen is the run's
own change log (Run.changes), which a saved session keeps and replays.

Signals
-------
sigProblemChanged()          the data, model, loss, batch size or seed changed: runs restarted
sigRunsChanged()             runs were added or removed
sigRunChanged(object)        one run's settings changed (a hyperparameter, a freeze, a scheduler)
sigStepped()                 runs have new trajectory entries
sigPlayingChanged(bool)      play / pause
sigSelectionChanged(object)  the selected run (or None)
sigSharpness()               a new sharpness measurement arrived
sigTensorSelected(object)    the parameter tensor picked in the tensor table (a name, or None)
sigSessionOpened()           a session (or an example) replaced the workspace
sigMessage(str)              a one-line message for the user (a replay that failed)
"""

from __future__ import annotations

import copy
import csv
import io
import json
import math
import time
import weakref
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import torch
from PySide6.QtCore import QObject, QTimer, Signal
from torch import Tensor

from core.curvature import sharpness
from core.errors import ExportError, PlaygroundError, SessionError
from core.export import write_text
from core.gradient_tools import GradientClipping
from core.model_cli import train_report
from core.model_session import (DEFAULT_TEST_FRACTION, BuiltModelSession, DataSpec,
                                ModelSession, RunSpec, TrainingRecord, train)
from core.optimizers import CATALOGUE, get_spec
from core.problems.data import (GENERATED, MAX_CSV_BYTES, DataError, Dataset, default_loss,
                                parse_csv)
from core.problems.model import PRESETS, ModelError, parameter_names_to_freeze
from core.problems.training import ModelProblem
from core.run import Run
from gui.controller import SHUTDOWN_WAIT_S, SLICE_S, TICK_MS, adapt_slice
from gui.throttle import redraws_spread
from gui.worker import Job
from resources import MODEL_EXAMPLES_DIR, model_examples

# The race's frame and slice (gui/controller.py): the slice adapts to what the frame leaves, as
# the race's does at "max" (a model step costs ~0.5 ms, so six runs fit only one round in a
# 6 ms slice, and the frame usually has room for more).
MAX_STEPS_PER_TICK = 100_000  # a guard only: the slice ends a tick long before
# The held-out loss is one more forward pass over the test rows: every step it took ~18% of a
# slice. Every TEST_EVERY steps (and after a manual step or a pause) draws the same curve.
TEST_EVERY = 10
TEST_CAPACITY = 100_000  # test-loss entries kept per run before thinning
SHARPNESS_EVERY = 10  # steps between two sharpness measurements of a run
# A measurement is mostly Python (Lanczos over Hessian-vector products), so while it runs it
# takes the GIL from the GUI thread about half the time: after one that took d seconds, the
# next waits SHARPNESS_REST x d, keeping the worker busy at most 1 / (1 + SHARPNESS_REST).
SHARPNESS_REST = 3.0
MAX_RUNS = 8
FALLBACK_PRESET = "small-mlp"  # for data the user's own model does not fit
RUN_COLOURS = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2",
               "#17becf")
# Learning rates that train the presets visibly within a few hundred steps (torch's own
# defaults, e.g. SGD's 1e-3, barely move a small MLP in that time).
MODEL_LR = {"SGD": 0.1, "Adam": 0.01, "AdamW": 0.01, "RMSprop": 0.01, "NAdam": 0.01,
            "RAdam": 0.01, "Adamax": 0.02, "Adagrad": 0.1, "ASGD": 0.1, "LBFGS": 0.5}
DATA_FIELDS = ("dataset", "n", "noise", "csv", "csv_name", "target")
# A session whose runs take more steps than this in all is replayed in a worker Job (about
# 0.5 ms a step: a quarter of a second inline at most)
INLINE_REPLAY_STEPS = 500
REPLAY_CHUNK = 100  # steps of one run between two progress reports / cancel checks
WORKSPACE_KEY = "workspace"  # the app's own part of a session file's "extra"
EXAMPLES_DIR = MODEL_EXAMPLES_DIR


@dataclass
class RunExtras:
    """What the workspace records about a run beyond its Trajectory."""

    test_steps: list[int] = field(default_factory=list)
    test_loss: list[float] = field(default_factory=list)
    accuracy: list[float] = field(default_factory=list)  # NaN for regression
    sharpness_steps: list[int] = field(default_factory=list)
    sharpness: list[float] = field(default_factory=list)
    sharpness_lr: list[float] = field(default_factory=list)


@dataclass(frozen=True)
class ModelSettings:
    """Everything that defines the problem, as a ModelSession holds it; a change to any of it
    rebuilds the problem. The data is a built-in (`dataset`, `n`, `noise`) or, when `csv` is
    set, that CSV text (`csv_name` shown, `target` the target column, None: the last)."""

    dataset: str | None = "moons"
    n: int = 200
    noise: float = 0.1
    csv: str | None = None
    csv_name: str = "data.csv"
    target: str | None = None
    model_text: str = "Linear(2, 16), Tanh(), Linear(16, 1)"
    preset: str | None = "small-mlp"  # the model follows the data while a preset is chosen
    loss: str = "BCEWithLogitsLoss"
    batch_size: int = 0
    test_fraction: float = DEFAULT_TEST_FRACTION
    seed: int = 0  # the data, the split, the initial weights and the minibatches

    def data_spec(self) -> DataSpec:
        if self.csv is not None:
            return DataSpec(dataset=None, csv=self.csv, name=self.csv_name, target=self.target)
        return DataSpec(dataset=self.dataset, n=self.n, noise=self.noise)

    def session(self) -> ModelSession:
        """The ModelSession (without runs) these settings are."""
        return ModelSession(self.preset or self.model_text, self.data_spec(), self.loss,
                            self.batch_size, self.test_fraction, self.seed)

    def replace(self, **changes: Any) -> ModelSettings:
        return ModelSettings(**{**asdict(self), **changes})


def settings_of(session: ModelSession, built: BuiltModelSession) -> ModelSettings:
    """The workspace's settings for a loaded session (its built form fills what it left out)."""
    data = session.data
    preset = session.model if session.model.strip().lower() in PRESETS else None
    common = dict(model_text=built.model_text, preset=preset, loss=built.loss_name,
                  batch_size=session.batch_size, test_fraction=session.test_fraction,
                  seed=session.seed)
    if data.csv is not None:
        return ModelSettings(dataset=None, csv=data.csv, csv_name=data.name,
                             target=data.target, **common)
    key = data.dataset or "moons"
    info = GENERATED.get(key)
    n = data.n if data.n is not None else (info.default_n if info else built.dataset.n)
    noise = data.noise if data.noise is not None else (info.default_noise if info else 0.0)
    return ModelSettings(dataset=key, n=n, noise=noise, **common)


class ModelController(QObject):
    """Model mode's controller. `clock` (seconds, monotonic) is injectable for tests."""

    sigProblemChanged = Signal()
    sigRunsChanged = Signal()
    sigRunChanged = Signal(object)
    sigStepped = Signal()
    sigPlayingChanged = Signal(bool)
    sigSelectionChanged = Signal(object)
    sigSharpness = Signal()
    sigTensorSelected = Signal(object)
    sigSessionOpened = Signal()
    sigMessage = Signal(str)

    def __init__(self, settings: ModelSettings | None = None, *, parent: QObject | None = None,
                 clock: Callable[[], float] = time.perf_counter) -> None:
        super().__init__(parent)
        self.runs: list[Run] = []
        self.selected: Run | None = None
        self.selected_tensor: str | None = None  # a parameter name, for the heatmap
        self.extras: weakref.WeakKeyDictionary[Run, RunExtras] = weakref.WeakKeyDictionary()
        self.sharpness_every = SHARPNESS_EVERY
        self.test_every = TEST_EVERY
        self.test_capacity = TEST_CAPACITY
        self.title = ""  # an opened example's or session's title and description
        self.description = ""
        self._clock = clock
        self.slice_s = SLICE_S
        self._cursor = 0  # the next run a tick steps (round-robin over the active runs)
        self._step_cost: weakref.WeakKeyDictionary[Run, float] = weakref.WeakKeyDictionary()
        self._last_tick = clock()
        self._timer = QTimer(self)
        self._timer.setInterval(TICK_MS)
        self._timer.timeout.connect(self.tick)
        self._replay_job: Job | None = None  # a long session replay, off the GUI thread
        self._sharpness_job: Job | None = None
        self._sharpness_run: Run | None = None
        self._sharpness_started = 0.0
        self._sharpness_next_at = -math.inf  # no measurement starts before this (clock)
        self._generation = 0  # bumped at every rebuild/reset: late measurements are dropped
        self._commit(*self._build(settings or ModelSettings()))
        self.selected_tensor = next(iter(self.problem.parameter_names), None)
        self.mark_saved()

    # --- the problem ----------------------------------------------------------------------------

    @staticmethod
    def _build(s: ModelSettings) -> tuple[ModelSettings, BuiltModelSession]:
        """Build `s` through ModelSession (as `main.py train` does); raises PlaygroundError
        with one line and changes nothing when any part is wrong."""
        built = s.session().build()
        return s.replace(model_text=built.model_text, loss=built.loss_name), built

    def _commit(self, settings: ModelSettings, built: BuiltModelSession) -> None:
        self.settings = settings
        self.built = built
        self.dataset: Dataset = built.dataset
        self.train, self.test = built.split.train, built.split.test
        self.test_X, self.test_y = built.X_test, built.y_test
        self.model, self.loss_fn = built.model, built.loss_fn
        self.problem: ModelProblem = built.problem

    def configure(self, **changes: Any) -> str | None:
        """Change settings (ModelSettings' fields); the runs restart on the new problem with
        their optimizers, hyperparameters and the freezes the new model still has. Raises
        PlaygroundError (one line) and changes nothing for bad input. Returns a note for the
        user when it had to adapt something (a model that does not fit new data)."""
        s = self.settings
        unknown = set(changes) - set(ModelSettings.__dataclass_fields__)
        if unknown:
            raise PlaygroundError(f"unknown setting {sorted(unknown)[0]!r}")
        if changes.get("dataset") is not None:
            changes.setdefault("csv", None)  # a built-in replaces the user's file
        if changes.get("csv") is not None:
            changes.setdefault("dataset", None)
        new = s.replace(**changes)
        data_changed = new.data_spec().to_dict() != s.data_spec().to_dict()
        if data_changed and "loss" not in changes:
            task = self._task_of(new)
            if task != self.dataset.task:  # a new kind of target: its usual loss
                new = new.replace(loss=default_loss(task))
        if "model_text" in changes and "preset" not in changes:
            new = new.replace(preset=None)
        if new == s:
            return None
        note = None
        try:
            built = self._build(new)
        except ModelError as e:
            if not data_changed or new.preset is not None or "model_text" in changes:
                raise
            # Other data, and the user's own model does not fit it (a new number of features
            # or classes): take the preset that fits rather than refuse the data.
            built = self._build(new.replace(preset=FALLBACK_PRESET))
            note = (f"{s.model_text} does not fit this data ({e.reason}); using the "
                    f"{PRESETS[FALLBACK_PRESET].title} preset")
        self.pause()  # only now: a refused change leaves the runs playing as they were
        self._commit(*built)
        self._restart_runs()
        self._keep_tensor()
        self.sigProblemChanged.emit()
        self.sigRunsChanged.emit()
        self.sigSelectionChanged.emit(self.selected)
        return note

    @staticmethod
    def _task_of(s: ModelSettings) -> str:
        if s.csv is None and s.dataset in GENERATED:
            return GENERATED[s.dataset].task
        return s.data_spec().load(s.seed).task  # DataError naming the line, for a bad file

    def load_csv(self, path: str | Path, target: str | None = None) -> str | None:
        """Train on the user's CSV file (a header, feature columns, a target column; `target`
        None: the last). The file's text is kept (a saved session carries it). A bad file
        raises DataError naming the line, and nothing changes."""
        try:
            with open(path, "rb") as f:
                raw = f.read(MAX_CSV_BYTES + 1)
        except OSError as e:
            raise DataError(f"cannot read {str(path)!r}: {e.strerror or e}") from None
        name = Path(path).name
        if len(raw) > MAX_CSV_BYTES:
            raise DataError(f"{name}: the file is larger than {MAX_CSV_BYTES:,} bytes")
        try:
            parse_csv(raw, target, name=name)  # the file's own messages (binary, not UTF-8)
        except DataError as e:
            raise DataError(f"{name}: {e}") from None
        return self.configure(csv=raw.decode("utf-8-sig"), csv_name=name, target=target)

    def csv_columns(self) -> list[str]:
        """The loaded CSV's header, in file order (empty for a built-in dataset); the
        delimiter rule is parse_csv's."""
        if self.settings.csv is None:
            return []
        first = self.settings.csv.lstrip("\ufeff\r\n").split("\n", 1)[0]
        delimiter = ("," if "," in first else ";" if ";" in first else "\t" if "\t" in first
                     else ",")
        return [h.strip() for h in next(csv.reader([first], delimiter=delimiter))]

    def _restart_runs(self) -> None:
        self._forget_sharpness_job()
        for run in self.runs:
            run.set_problem(self.problem)
            self.extras[run] = RunExtras()
            self._record_test_loss(run)

    @property
    def is_classification(self) -> bool:
        return self.dataset.task != "regression"

    # --- runs -----------------------------------------------------------------------------------

    def add_run(self, optimizer: str, lr: float | None = None,
                hyperparameters: dict[str, Any] | None = None) -> Run:
        """A new run of `optimizer` from the shared initial weights; it becomes the selection."""
        if len(self.runs) >= MAX_RUNS:
            raise PlaygroundError(f"at most {MAX_RUNS} runs")
        spec = get_spec(optimizer)
        hps = dict(hyperparameters or {})
        if lr is not None:
            hps["lr"] = float(lr)
        hps.setdefault("lr", MODEL_LR.get(spec.name, spec.defaults.get("lr", 0.01)))
        used = {r.color for r in self.runs}
        colour = next((c for c in RUN_COLOURS if c not in used), RUN_COLOURS[0])
        run = Run(self.problem, spec.name, hps, color=colour, label=self._label_for(spec.name))
        self.runs.append(run)
        self.extras[run] = RunExtras()
        self._record_test_loss(run)
        self.sigRunsChanged.emit()
        self.select(run)
        return run

    def _label_for(self, name: str) -> str:
        taken = {r.label for r in self.runs}
        if name not in taken:
            return name
        return next(f"{name} {i}" for i in range(2, 100) if f"{name} {i}" not in taken)

    def remove_run(self, run: Run) -> None:
        if run not in self.runs:
            return
        self.runs.remove(run)
        self.extras.pop(run, None)
        if self._sharpness_job is not None and self._sharpness_run is run:
            self._forget_sharpness_job()
        self.sigRunsChanged.emit()
        if self.selected is run:
            self.select(self.runs[-1] if self.runs else None)

    def select(self, run: Run | None) -> None:
        if run is not None and run not in self.runs:
            return
        if run is not self.selected:
            self.selected = run
            self.sigSelectionChanged.emit(run)

    def select_tensor(self, name: str | None) -> None:
        """Pick a parameter tensor by name (the heatmap shows it for the selected run)."""
        if name is not None and name not in self.problem.parameter_names:
            name = None
        if name != self.selected_tensor:
            self.selected_tensor = name
            self.sigTensorSelected.emit(name)

    def _keep_tensor(self) -> None:
        """After a rebuild: the same tensor if the new model has it, else its first one."""
        names = self.problem.parameter_names
        self.select_tensor(self.selected_tensor if self.selected_tensor in names
                           else next(iter(names), None))

    def set_lr(self, run: Run, lr: float) -> None:
        """The run's learning rate from its next step on (torch's param_group['lr'])."""
        self.set_hyperparameter(run, "lr", float(lr))

    def set_hyperparameter(self, run: Run, name: str, value: Any) -> None:
        """One of the optimizer's keywords from the next step on (Run.set_hyperparameter: live
        ones go into torch's param_groups, the others rebuild the optimizer at the current
        point). OptimizerError with one line, and no change, for a bad value."""
        run.set_hyperparameter(name, value)
        self.sigRunChanged.emit(run)

    def set_scheduler(self, run: Run, setting: Any) -> None:
        """A torch.optim.lr_scheduler for the run ((name, kwargs), call text or None)."""
        run.set_scheduler(setting)
        self.sigRunChanged.emit(run)

    def set_clipping(self, run: Run, clipping: GradientClipping | None) -> None:
        """Clip the run's gradients (torch's clip_grad_norm_ / clip_grad_value_) or stop."""
        run.set_clipping(clipping)
        self.sigRunChanged.emit(run)

    def set_frozen(self, run: Run, name: str, frozen: bool) -> None:
        """Freeze (requires_grad_(False)) or unfreeze one tensor of a run, mid-run."""
        self.set_frozen_many(run, {name: frozen})

    def set_frozen_many(self, run: Run, changes: dict[str, bool]) -> None:
        """Freeze or unfreeze several tensors of a run at once (one signal)."""
        for name, frozen in changes.items():
            if frozen != (name in run.frozen):
                run.set_frozen(name, frozen)  # the run logs it (Run.changes), with its step
        self.sigRunChanged.emit(run)

    @staticmethod
    def freeze_events(run: Run) -> list[tuple[int, str, bool]]:
        """(step, parameter name, frozen) of each freeze or unfreeze made mid-run, from the
        run's own change log (a loaded session's replayed ones included)."""
        applied = run.changes[:len(run.changes) - len(run.pending_changes)]
        return [(c.step, str(c.payload["name"]), bool(c.payload["frozen"]))
                for c in applied if c.kind == "freeze"]

    def layers(self) -> list[tuple[int, str, tuple[str, ...]]]:
        """The model's layers that have parameters: (index, class name, parameter names)."""
        out = []
        for index, layer in enumerate(self.model.children()):
            names = tuple(f"{index}.{n}" for n, _ in layer.named_parameters())
            if names:
                out.append((index, type(layer).__name__, names))
        return out

    def set_layer_frozen(self, run: Run, index: int, frozen: bool) -> None:
        """Freeze or unfreeze every parameter of layer `index` (as `train --freeze 0`)."""
        names = parameter_names_to_freeze(self.model, index)
        self.set_frozen_many(run, {n: frozen for n in names})

    def freeze_all_but_last_layer(self, run: Run) -> None:
        """Fine-tuning: every layer frozen but the last one with parameters (unfrozen)."""
        layers = self.layers()
        if not layers:
            return
        last = set(layers[-1][2])
        self.set_frozen_many(run, {n: n not in last for n in run.parameter_names})

    # --- play / pause / step / reset ------------------------------------------------------------

    @property
    def playing(self) -> bool:
        return self._timer.isActive()

    @property
    def active_runs(self) -> list[Run]:
        # (`diverged`, not `status`: reading the status brings a run's record up to date, which
        # a tick that asks at every step should not do; the record is read once per frame)
        return [r for r in self.runs if r.enabled and not r.diverged]

    def play(self) -> None:
        if not self.playing and self.runs:
            self._last_tick = self._clock()
            self._timer.start()
            self.sigPlayingChanged.emit(True)

    def pause(self) -> None:
        if self.playing:
            self._timer.stop()
            for run in self.runs:  # the held-out curve ends where the run stopped
                self._record_test_loss(run, only_if_new=True)
            self.sigPlayingChanged.emit(False)
            self.sigStepped.emit()

    def toggle_play(self) -> None:
        self.pause() if self.playing else self.play()

    def step_once(self) -> None:
        """One step of every active run."""
        stepped = 0
        for run in self.active_runs:
            if self._step(run):
                stepped += 1
                self._record_test_loss(run, only_if_new=True)
        if stepped:
            self.sigStepped.emit()
            self._maybe_measure_sharpness()

    def tick(self) -> None:
        """Step the active runs one step at a time, round-robin, for about one slice (SLICE_S
        to MAX_SLICE_S, adapted to what the frame leaves).

        A step that its run's last step says would end past the slice is not begun (the first
        one always is); the other runs go on while theirs fit, and the next tick begins with
        the first run that was left out. So an L-BFGS run whose step takes 10 ms costs a frame
        at most one step, the fast runs are not held to its pace, and it still gets its turn.
        """
        now = self._clock()
        elapsed, self._last_tick = now - self._last_tick, now
        self.slice_s = adapt_slice(self.slice_s, elapsed)
        if not self.active_runs:
            self.pause()
            return
        deadline = now + self.slice_s
        taken = 0
        skipped: set[int] = set()  # ids of the runs whose next step no longer fits this slice
        first_skipped: int | None = None
        # A small model's step is ~150 us, so this loop's own work shows in the steps per
        # second (benchmarks/bench_model_engine.py): the active runs are listed again only when
        # a step diverges, one clock reading serves as one step's end and the next one's start,
        # and the costs live in a plain dict for the tick (a WeakKeyDictionary's get and set
        # are Python code).
        runs = self.active_runs
        clock = self._clock
        step_cost = {run: self._step_cost.get(run, 0.0) for run in runs}
        started = clock()
        while taken < MAX_STEPS_PER_TICK:
            if not runs or len(skipped) >= len(runs):
                break
            index = self._cursor % len(runs)
            self._cursor = index + 1
            run = runs[index]
            if id(run) in skipped:
                continue
            if taken and started + step_cost[run] > deadline:
                skipped.add(id(run))  # the others may still fit
                first_skipped = index if first_skipped is None else first_skipped
                continue
            self._step(run)
            ended = clock()
            step_cost[run] = ended - started
            started = ended
            taken += 1
            if run.diverged:
                runs = self.active_runs
        self._step_cost.update(step_cost)
        if first_skipped is not None:
            self._cursor = first_skipped  # the next tick begins with it: it keeps its turn
        with redraws_spread():  # the views redraw in the passes that follow, one a pass
            self.sigStepped.emit()
        self._maybe_measure_sharpness()

    def _step(self, run: Run) -> int:
        done = run.step(1)
        if done and run.steps % self.test_every == 0:
            self._record_test_loss(run)
        return done

    def reset(self) -> None:
        """Every run back to the shared initial weights, with a fresh optimizer and record."""
        self.pause()
        self._forget_sharpness_job()
        self._sharpness_next_at = -math.inf
        for run in self.runs:
            run.reset()
            self.extras[run] = RunExtras()
            self._record_test_loss(run)
        self.sigStepped.emit()
        self.sigSharpness.emit()

    # --- what the engine does not record --------------------------------------------------------

    def predict(self, run: Run, X: Tensor) -> Tensor:
        """The model's outputs at `run`'s parameters (and its own BatchNorm statistics) on rows
        X, under torch.no_grad() in eval mode."""
        params = {n: p.detach() for n, p in run.parameters.items()}
        with torch.no_grad():
            modes = [(m, m.training) for m in self.model.modules()]
            self.model.eval()
            try:
                return self.problem.forward(params, X)
            finally:
                for module, training in modes:
                    module.training = training

    def held_out(self, run: Run) -> tuple[float, float]:
        """(test loss, test accuracy) now, as `main.py train` measures them
        (BuiltModelSession.held_out: under torch.no_grad(), in eval mode, with the run's own
        BatchNorm statistics); NaN without held-out rows, and NaN accuracy for regression."""
        try:
            loss, acc = self.built.held_out(run)
        except Exception:  # a diverged run's weights may not evaluate
            return math.nan, math.nan
        return _nan(loss), _nan(acc)

    def _record_test_loss(self, run: Run, only_if_new: bool = False) -> None:
        extras = self.extras.setdefault(run, RunExtras())
        if self.test_X is None:
            return
        if only_if_new and extras.test_steps and extras.test_steps[-1] == run.steps:
            return
        value, acc = self.held_out(run)
        extras.test_steps.append(run.steps)
        extras.test_loss.append(value)
        extras.accuracy.append(acc)
        if len(extras.test_steps) > self.test_capacity:
            # as the Trajectory thins its rows: every other one goes, the first and the newest
            # stay, so a long run keeps a sparser past at a bounded cost
            keep = list(range(0, len(extras.test_steps) - 1, 2)) + [len(extras.test_steps) - 1]
            for column in (extras.test_steps, extras.test_loss, extras.accuracy):
                column[:] = [column[i] for i in keep]

    def _maybe_measure_sharpness(self) -> None:
        """Start one measurement on a worker for the run furthest behind, if none is running."""
        if self._sharpness_job is not None or not self.runs:
            return
        if self._clock() < self._sharpness_next_at:
            return
        due = []
        for run in self.runs:
            extras = self.extras[run]
            last = extras.sharpness_steps[-1] if extras.sharpness_steps else None
            if run.diverged or len(run.frozen) == len(run.parameter_names):
                continue
            if last is None or run.steps - last >= self.sharpness_every:
                due.append((-1 if last is None else last, run))
        if not due:
            return
        run = min(due, key=lambda item: item[0])[1]
        # The worker gets its own copy of the module with the run's weights, buffers and
        # freezes: functional_call on the shared module swaps its parameters, which two threads
        # must never do at once.
        model = copy.deepcopy(self.model)
        buffers = self.problem.buffers(run.parameters)
        with torch.no_grad():
            for name, p in model.named_parameters():
                p.copy_(run.parameters[name].detach())
                p.requires_grad_(name not in run.frozen)
            for name, b in model.named_buffers():
                if name in buffers:
                    b.copy_(buffers[name])
        X, y, loss_fn = self.problem.X, self.problem.y, self.loss_fn
        step, lr, generation = run.steps, float(run.optimizer.param_groups[0]["lr"]), \
            self._generation
        job = Job(lambda state: sharpness(model, loss_fn, X, y, tol=1e-4, max_iter=40,
                                          state=state), parent=self)
        ref = weakref.ref(run)
        job.sigFinished.connect(lambda value: self._on_sharpness(ref, generation, step, lr, value))
        job.sigFailed.connect(lambda _message: self._on_sharpness(ref, generation, step, lr,
                                                                  math.nan))
        job.sigCancelled.connect(lambda: self._on_sharpness_cancelled(generation))
        self._sharpness_job, self._sharpness_run = job, run
        self._sharpness_started = self._clock()
        job.start()

    def _on_sharpness(self, ref: weakref.ref, generation: int, step: int, lr: float,
                      value: float) -> None:
        if generation != self._generation:  # a measurement of a problem or record now gone
            return
        self._sharpness_ended()
        run = ref()
        if run is None or run not in self.runs:
            return
        extras = self.extras[run]
        extras.sharpness_steps.append(step)
        extras.sharpness.append(float(value))
        extras.sharpness_lr.append(lr)
        self.sigSharpness.emit()

    def _on_sharpness_cancelled(self, generation: int) -> None:
        if generation != self._generation:
            return
        self._sharpness_ended()

    def _sharpness_ended(self) -> None:
        self._sharpness_job = None
        self._sharpness_run = None
        now = self._clock()
        self._sharpness_next_at = now + SHARPNESS_REST * (now - self._sharpness_started)

    def _forget_sharpness_job(self) -> None:
        self._generation += 1
        if self._sharpness_job is not None:
            self._sharpness_job.cancel()  # the Lanczos loop stops within one product
            self._sharpness_job = None
            self._sharpness_run = None

    def wait_for_sharpness(self, timeout_s: float = 5.0) -> bool:
        """Deliver the running measurement now (tests, quitting); True if none is left."""
        job = self._sharpness_job
        return True if job is None else job.finish(timeout_s)

    def shutdown(self, timeout_s: float = SHUTDOWN_WAIT_S) -> bool:
        """Stop the timer and wait at most `timeout_s` for a sharpness measurement or a
        session replay (both stop soon after a cancel)."""
        self.pause()
        jobs = [j for j in (self._sharpness_job, self._replay_job) if j is not None]
        self._forget_sharpness_job()
        self._forget_replay_job()
        return all(job.finish(timeout_s) for job in jobs)

    # --- sessions -------------------------------------------------------------------------------

    def to_session(self) -> ModelSession:
        """The workspace as a ModelSession: the settings, and each run as RunSpec.from_run
        keeps it (its initial optimizer, hyperparameters, freezes, scheduler, clipping and
        noise, the changes made between steps, its label, colour and step count), so loading
        the file replays every path exactly, mid-run freezes and lr changes included."""
        session = self.settings.session()
        session.runs = [RunSpec.from_run(run) for run in self.runs]
        own = {"selected": self.runs.index(self.selected) if self.selected in self.runs
               else None}
        session.extra = {WORKSPACE_KEY: own}
        if self.title:
            session.extra["title"] = self.title
        if self.description:
            session.extra["description"] = self.description
        return session

    def save_session(self, path: str | Path) -> None:
        """Write the session file atomically (SessionError, one line, if it cannot be)."""
        session = self.to_session()
        session.save(path)
        self._saved_config = session.to_dict()

    def session_config(self) -> dict[str, Any]:
        """What a session file would hold now (the window compares it to the saved one)."""
        return self.to_session().to_dict()

    def mark_saved(self) -> None:
        """The workspace as it is now counts as saved (opened, saved, or freshly made)."""
        self._saved_config = self.session_config()

    @property
    def modified(self) -> bool:
        """Whether anything a session file holds (settings, runs, their changes and steps)
        differs from the one last opened or saved: the window asks before replacing it."""
        return self.session_config() != self._saved_config

    def load_session(self, path: str | Path, *, background: bool | None = None) -> Job | None:
        """Open a saved session. The file is checked and built completely first, so a broken
        one raises SessionError with one line and nothing here changes; then each run is
        replayed to its saved step count by core.model_session.train (the same steps as
        `main.py train`). A long replay (more than INLINE_REPLAY_STEPS steps in all, or
        `background` True) runs in a worker Job, which is returned, with progress and cancel:
        the workspace changes only when it finishes (sigSessionOpened), and a cancel changes
        nothing. A short one is done at once and None is returned."""
        return self.open_session(ModelSession.load(path), background=background)

    def open_example(self, name: str) -> None:
        """Open teaching example `name` (resources/model_examples/NAME.json; see examples())."""
        self.load_session(example_path(name), background=False)

    def open_session(self, session: ModelSession, *,
                     background: bool | None = None) -> Job | None:
        """Show `session` (validated) with its runs replayed; see load_session."""
        built = self._prepare(session)
        steps = [spec.steps for spec in session.runs]
        every = self.test_every
        if background is None:
            background = sum(steps) > INLINE_REPLAY_STEPS
        if not background:
            self._show_session(session, built, replay(built, steps, every))
            return None
        self._forget_replay_job()
        job = Job(lambda state: replay(built, steps, every, state), parent=self)
        job.sigFinished.connect(lambda records: self._on_replayed(job, session, built, records))
        job.sigFailed.connect(lambda message: self._on_replay_failed(job, message))
        job.sigCancelled.connect(lambda: self._on_replay_failed(job, ""))
        self._replay_job = job
        job.start()
        return job

    @property
    def replaying(self) -> bool:
        """True while a session is being replayed in the background."""
        return self._replay_job is not None

    def _prepare(self, session: ModelSession) -> BuiltModelSession:
        """The session built: its runs at their start, with their changes waiting their step."""
        try:
            built = session.build()
            settings_of(session, built)
        except SessionError:
            raise
        except PlaygroundError as e:
            raise SessionError(str(e)) from None
        return built

    def _on_replayed(self, job: Job, session: ModelSession, built: BuiltModelSession,
                     records: list[TrainingRecord]) -> None:
        if job is not self._replay_job:
            return
        self._replay_job = None
        self._show_session(session, built, records)

    def _on_replay_failed(self, job: Job, message: str) -> None:
        if job is self._replay_job:
            self._replay_job = None
            if message:
                self.sigMessage.emit(f"the session could not be replayed: {message}")

    def _forget_replay_job(self) -> None:
        if self._replay_job is not None:
            self._replay_job.cancel()
            self._replay_job = None

    def _show_session(self, session: ModelSession, built: BuiltModelSession,
                      records: list[TrainingRecord]) -> None:
        own = session.extra.get(WORKSPACE_KEY, {})
        self.pause()
        self._forget_sharpness_job()
        self._sharpness_next_at = -math.inf
        self._commit(settings_of(session, built), built)
        self.runs = list(built.runs)
        self.extras = weakref.WeakKeyDictionary()
        for run, record in zip(self.runs, records):
            extras = RunExtras()
            for step in sorted(record.test_loss):
                extras.test_steps.append(step)
                extras.test_loss.append(_nan(record.test_loss[step]))
                extras.accuracy.append(_nan(record.accuracy.get(step)))
            self.extras[run] = extras
        selected = own.get("selected") if isinstance(own, dict) else None
        self.selected = (self.runs[selected] if isinstance(selected, int)
                         and 0 <= selected < len(self.runs) else
                         (self.runs[0] if self.runs else None))
        self.title = str(session.extra.get("title", ""))
        self.description = str(session.extra.get("description", ""))
        self._keep_tensor()
        self.mark_saved()
        self.sigProblemChanged.emit()
        self.sigRunsChanged.emit()
        self.sigSelectionChanged.emit(self.selected)
        self.sigStepped.emit()
        self.sigSharpness.emit()
        self.sigSessionOpened.emit()

    # --- exports --------------------------------------------------------------------------------

    def report(self) -> dict[str, Any]:
        """The JSON object `main.py train --json` prints, for the runs as they are now: the
        model and its parameters, the data, and per run its hyperparameters, freezes, status,
        initial and final parameters and its curves (loss, test loss, accuracy, |grad|, lr)."""
        records = []
        for run in self.runs:
            extras = self.extras[run]
            record = TrainingRecord()
            for step, loss, acc in zip(extras.test_steps, extras.test_loss, extras.accuracy):
                record.test_loss[step] = None if math.isnan(loss) else loss
                record.accuracy[step] = None if math.isnan(acc) else acc
            records.append(record)
        built = replace(self.built, runs=list(self.runs))
        return train_report(self.to_session(), built, records, self.test_every)

    def export_data(self, path: str | Path) -> None:
        """Every run's curves and parameters: .json (as `train --json`) or .csv (a row per
        run and recorded step: the trajectory's columns, then test_loss and accuracy where
        they were measured). Written atomically; ExportError with one line otherwise."""
        suffix = Path(path).suffix.lower()
        if suffix == ".json":
            write_text(path, json.dumps(self.report(), indent=1, allow_nan=False) + "\n")
        elif suffix == ".csv":
            write_text(path, self.curves_csv())
        else:
            raise ExportError(f"cannot export to {Path(path).name!r}: use .json or .csv "
                              "(or .png / .svg for a picture)")

    def curves_csv(self) -> str:
        """The CSV export's text (see export_data)."""
        fields: list[str] = []
        for run in self.runs:
            fields += [f for f in run.trajectory.fields if f not in fields]
        out = io.StringIO()
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(["run", "optimizer", "label", "status", *fields, "test_loss",
                         "accuracy"])
        for number, run in enumerate(self.runs, 1):
            t = run.trajectory
            extras = self.extras[run]
            tests = dict(zip(extras.test_steps, zip(extras.test_loss, extras.accuracy)))
            columns = [t.column(f) if f in t.fields else [math.nan] * len(t) for f in fields]
            head = [number, run.optimizer_name, run.label or run.title, run.status.value]
            for values in zip(*columns):
                step = int(values[0])
                test = tests.get(step, (math.nan, math.nan))
                writer.writerow(head + [_cell(f, v) for f, v in zip(fields, values)]
                                + [_cell("", test[0]), _cell("", test[1])])
        return out.getvalue()


class ReplayCancelled(Exception):
    """A session replay was asked to stop."""


def replay(built: BuiltModelSession, steps: list[int], eval_every: int,
           state: Any = None) -> list[TrainingRecord]:
    """Step each run of `built` to `steps[i]` with core.model_session.train (the headless
    loop, so the records are the ones `main.py train` makes), in chunks of REPLAY_CHUNK steps
    (a multiple of `eval_every`, so the held-out metrics fall on the same steps as in one
    call), reporting progress to `state` and stopping when it asks (ReplayCancelled)."""
    chunk = eval_every * max(1, -(-REPLAY_CHUNK // eval_every))
    total, done = max(1, sum(steps)), 0
    records = []
    for run, count in zip(built.runs, steps):
        record = TrainingRecord()
        left = count
        while True:
            take = min(chunk, left)
            part = train(replace(built, runs=[run]), [take], eval_every)[0]
            record.test_loss.update(part.test_loss)
            record.accuracy.update(part.accuracy)
            done, left = done + take, left - take
            if state is not None:
                if state.is_interruption_requested():
                    raise ReplayCancelled("the session replay was cancelled")
                state.set_progress(done / total)
            if left <= 0 or not run.enabled or run.status.value == "diverged":
                break
        records.append(record)
    return records


def _nan(value: float | None) -> float:
    return math.nan if value is None else float(value)


def _cell(name: str, value: float) -> str:
    if value != value:  # NaN: no gradient (frozen), or not measured at this step
        return ""
    return str(int(value)) if name == "step" else repr(float(value))


def examples() -> list[tuple[str, str, str]]:
    """The teaching examples in resources/model_examples: (name, title, description)."""
    return model_examples()


def example_path(name: str) -> Path:
    """The file of example `name` (SessionError naming the examples for an unknown one)."""
    path = EXAMPLES_DIR / f"{name}.json"
    if not path.is_file() or path.parent != EXAMPLES_DIR:
        names = ", ".join(n for n, _, _ in examples())
        raise SessionError(f"no model example {name!r}; examples: {names}")
    return path


def optimizer_names() -> list[str]:
    """The optimizers a run can use, as torch.optim's class names."""
    return list(CATALOGUE)
