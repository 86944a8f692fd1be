"""ModelController: one ModelProblem (a torch.nn model on data) and the runs that train it.

It holds the dataset (a built-in, with its size, noise and seed), the model text, the loss, the
batch size and the seed of the weights and the batches; every run is a core Run of a real
torch.optim optimizer on the same ModelProblem, so all start from the same initial weights and
see the same minibatches. Runs are stepped on a QTimer in time slices, as the race's controller
does. Besides each run's Trajectory it keeps what the engine does not record: the test loss
(under torch.no_grad(), on the held-out rows) at every step, and the sharpness (the top Hessian
eigenvalue, core/curvature.py) every few steps, measured on a worker thread.

Signals
-------
sigProblemChanged()          the data, model, loss, batch size or seed changed: runs restarted
sigRunsChanged()             runs were added or removed
sigRunChanged(object)        one run's settings changed (lr, a freeze)
sigStepped()                 runs have new trajectory entries
sigPlayingChanged(bool)      play / pause
sigSelectionChanged(object)  the selected run (or None)
sigSharpness()               a new sharpness measurement arrived
"""

from __future__ import annotations

import copy
import math
import time
import weakref
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch
from PySide6.QtCore import QObject, QTimer, Signal
from torch import Tensor
from torch.func import functional_call

from core.curvature import sharpness
from core.errors import PlaygroundError
from core.optimizers import CATALOGUE, get_spec
from core.problems.data import (GENERATED, Dataset, default_loss, make_dataset, make_loss,
                                output_width, shape_targets, train_test_split)
from core.problems.model import PRESETS, ModelError, build_model, parse_model, preset_text
from core.problems.training import ModelProblem
from core.run import Run
from gui.controller import SHUTDOWN_WAIT_S, SLICE_S, TICK_MS, adapt_slice
from gui.worker import Job

# The race's frame and slice (gui/controller.py): the slice adapts to what the frame leaves, as
# the race's does at "max" (a model step costs ~0.5 ms, so six runs fit only one round in a
# 6 ms slice, and the frame usually has room for more).
MAX_STEPS_PER_TICK = 100_000  # a guard only: the slice ends a tick long before
TEST_FRACTION = 0.25
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


@dataclass
class RunExtras:
    """What the workspace records about a run beyond its Trajectory."""

    test_steps: list[int] = field(default_factory=list)
    test_loss: list[float] = field(default_factory=list)
    sharpness_steps: list[int] = field(default_factory=list)
    sharpness: list[float] = field(default_factory=list)
    sharpness_lr: list[float] = field(default_factory=list)


@dataclass(frozen=True)
class ModelSettings:
    """Everything that defines the problem; a change to any of it rebuilds the problem."""

    dataset: str = "moons"
    n: int = 200
    noise: float = 0.1
    data_seed: int = 0
    model_text: str = "Linear(2, 16), Tanh(), Linear(16, 1)"
    preset: str | None = "small-mlp"  # the model follows the data while a preset is chosen
    loss: str = "BCEWithLogitsLoss"
    batch_size: int = 0
    seed: int = 0


class ModelController(QObject):
    """Model mode's controller. `clock` (seconds, monotonic) is injectable for tests."""

    sigProblemChanged = Signal()
    sigRunsChanged = Signal()
    sigRunChanged = Signal(object)
    sigStepped = Signal()
    sigPlayingChanged = Signal(bool)
    sigSelectionChanged = Signal(object)
    sigSharpness = Signal()

    def __init__(self, settings: ModelSettings | None = None, *, parent: QObject | None = None,
                 clock: Callable[[], float] = time.perf_counter) -> None:
        super().__init__(parent)
        self.runs: list[Run] = []
        self.selected: Run | None = None
        self.extras: weakref.WeakKeyDictionary[Run, RunExtras] = weakref.WeakKeyDictionary()
        self.sharpness_every = SHARPNESS_EVERY
        self.test_capacity = TEST_CAPACITY
        self._clock = clock
        self.slice_s = SLICE_S
        self._cursor = 0  # the next run a tick steps (round-robin over the active runs)
        self._step_cost: weakref.WeakKeyDictionary[Run, float] = weakref.WeakKeyDictionary()
        self._last_tick = clock()
        self._timer = QTimer(self)
        self._timer.setInterval(TICK_MS)
        self._timer.timeout.connect(self.tick)
        self._sharpness_job: Job | None = None
        self._sharpness_run: Run | None = None
        self._sharpness_started = 0.0
        self._sharpness_next_at = -math.inf  # no measurement starts before this (clock)
        self._generation = 0  # bumped at every rebuild/reset: late measurements are dropped
        self._build(settings or ModelSettings())

    # --- the problem ----------------------------------------------------------------------------

    def _build(self, s: ModelSettings) -> None:
        """Make dataset, model and problem from `s`; raises PlaygroundError and changes nothing
        when any part is wrong."""
        data = make_dataset(s.dataset, s.n, s.noise, s.data_seed)
        loss_fn = make_loss(s.loss, data.task)
        outputs = output_width(s.loss, data.n_classes)
        text = preset_text(s.preset, data.n_features, outputs) if s.preset else s.model_text
        spec = parse_model(text, data.n_features)
        if spec.out_features != outputs:
            raise ModelError(f"the model gives {spec.out_features} output(s); {s.loss} on this "
                             f"data needs {outputs}")
        model = build_model(spec, data.n_features, s.seed)
        split = train_test_split(data, TEST_FRACTION, s.data_seed)
        problem = ModelProblem(model, split.train.X, shape_targets(split.train.y, s.loss),
                               loss_fn, s.batch_size, s.seed)
        assert split.test is not None
        # everything built: commit
        self.settings = ModelSettings(s.dataset, s.n, s.noise, s.data_seed, text, s.preset,
                                      s.loss, s.batch_size, s.seed)
        self.dataset: Dataset = data
        self.train, self.test = split.train, split.test
        self.test_X, self.test_y = split.test.X, shape_targets(split.test.y, s.loss)
        self.model, self.loss_fn, self.problem = model, loss_fn, problem

    def configure(self, **changes: Any) -> str | None:
        """Change settings (ModelSettings' fields); the runs restart on the new problem with
        their optimizers, learning rates and the freezes the new model still has. Raises
        PlaygroundError (one line) and changes nothing for bad input. Returns a note for the
        user when it had to adapt something (a model that does not fit new data)."""
        s = self.settings
        unknown = set(changes) - set(ModelSettings.__dataclass_fields__)
        if unknown:
            raise PlaygroundError(f"unknown setting {sorted(unknown)[0]!r}")
        new = ModelSettings(**{**s.__dict__, **changes})
        if "dataset" in changes and changes["dataset"] != s.dataset and "loss" not in changes:
            key = str(new.dataset)
            if key in GENERATED:  # a new kind of target: its usual loss
                new = ModelSettings(**{**new.__dict__, "loss": default_loss(GENERATED[key].task)})
        if "model_text" in changes and "preset" not in changes:
            new = ModelSettings(**{**new.__dict__, "preset": None})
        if new == s:
            return None
        self.pause()
        note = None
        try:
            self._build(new)
        except ModelError as e:
            if new.dataset == s.dataset or new.preset is not None or "model_text" in changes:
                raise
            # Other data, and the user's own model does not fit it (a new number of features
            # or classes): take the preset that fits rather than refuse the data.
            new = ModelSettings(**{**new.__dict__, "preset": FALLBACK_PRESET})
            self._build(new)
            note = (f"{s.model_text} does not fit this data ({e.reason}); using the "
                    f"{PRESETS[FALLBACK_PRESET].title} preset")
        self._restart_runs()
        self.sigProblemChanged.emit()
        self.sigRunsChanged.emit()
        self.sigSelectionChanged.emit(self.selected)
        return note

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

    def add_run(self, optimizer: str, lr: float | None = None) -> Run:
        """A new run of `optimizer` from the shared initial weights; it becomes the selection."""
        if len(self.runs) >= MAX_RUNS:
            raise PlaygroundError(f"at most {MAX_RUNS} runs")
        spec = get_spec(optimizer)
        if lr is None:
            lr = MODEL_LR.get(spec.name, spec.defaults.get("lr", 0.01))
        used = {r.color for r in self.runs}
        colour = next((c for c in RUN_COLOURS if c not in used), RUN_COLOURS[0])
        run = Run(self.problem, spec.name, {"lr": float(lr)}, color=colour,
                  label=self._label_for(spec.name))
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

    def set_lr(self, run: Run, lr: float) -> None:
        """The run's learning rate from its next step on (torch's param_group['lr'])."""
        run.set_hyperparameter("lr", float(lr))
        self.sigRunChanged.emit(run)

    def set_frozen(self, run: Run, name: str, frozen: bool) -> None:
        """Freeze (requires_grad_(False)) or unfreeze one tensor of a run, mid-run."""
        run.set_frozen(name, frozen)
        self.sigRunChanged.emit(run)

    # --- play / pause / step / reset ------------------------------------------------------------

    @property
    def playing(self) -> bool:
        return self._timer.isActive()

    @property
    def active_runs(self) -> list[Run]:
        return [r for r in self.runs if r.enabled and r.status.value != "diverged"]

    def play(self) -> None:
        if not self.playing and self.runs:
            self._last_tick = self._clock()
            self._timer.start()
            self.sigPlayingChanged.emit(True)

    def pause(self) -> None:
        if self.playing:
            self._timer.stop()
            self.sigPlayingChanged.emit(False)

    def toggle_play(self) -> None:
        self.pause() if self.playing else self.play()

    def step_once(self) -> None:
        """One step of every active run."""
        stepped = sum(self._step(run) for run in self.active_runs)
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
        while taken < MAX_STEPS_PER_TICK:
            runs = self.active_runs
            if not runs or len(skipped) >= len(runs):
                break
            index = self._cursor % len(runs)
            self._cursor = index + 1
            run = runs[index]
            if id(run) in skipped:
                continue
            started = self._clock()
            if taken and started + self._step_cost.get(run, 0.0) > deadline:
                skipped.add(id(run))  # the others may still fit
                first_skipped = index if first_skipped is None else first_skipped
                continue
            self._step(run)
            self._step_cost[run] = self._clock() - started
            taken += 1
        if first_skipped is not None:
            self._cursor = first_skipped  # the next tick begins with it: it keeps its turn
        self.sigStepped.emit()
        self._maybe_measure_sharpness()

    def _step(self, run: Run) -> int:
        done = run.step(1)
        if done:
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
        """The model's outputs at `run`'s parameters on rows X, under torch.no_grad()."""
        params = {n: p.detach() for n, p in run.parameters.items()}
        with torch.no_grad():
            was_training = self.model.training
            self.model.eval()
            try:
                return functional_call(self.model, params, (X,))
            finally:
                self.model.train(was_training)

    def _record_test_loss(self, run: Run) -> None:
        extras = self.extras.setdefault(run, RunExtras())
        try:
            with torch.no_grad():
                value = float(self.loss_fn(self.predict(run, self.test_X), self.test_y))
        except Exception:  # a diverged run's weights may not evaluate
            value = math.nan
        extras.test_steps.append(run.steps)
        extras.test_loss.append(value)
        if len(extras.test_steps) > self.test_capacity:
            # as the Trajectory thins its rows: every other one goes, the first and the newest
            # stay, so a long run keeps a sparser past at a bounded cost
            keep = list(range(0, len(extras.test_steps) - 1, 2)) + [len(extras.test_steps) - 1]
            extras.test_steps[:] = [extras.test_steps[i] for i in keep]
            extras.test_loss[:] = [extras.test_loss[i] for i in keep]

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
            if run.status.value == "diverged" or len(run.frozen) == len(run.parameter_names):
                continue
            if last is None or run.steps - last >= self.sharpness_every:
                due.append((-1 if last is None else last, run))
        if not due:
            return
        run = min(due, key=lambda item: item[0])[1]
        # The worker gets its own copy of the module with the run's weights and freezes:
        # functional_call on the shared module swaps its parameters, which two threads must
        # never do at once.
        model = copy.deepcopy(self.model)
        with torch.no_grad():
            for name, p in model.named_parameters():
                p.copy_(run.parameters[name].detach())
                p.requires_grad_(name not in run.frozen)
        X, y, loss_fn = self.problem.X, self.problem.y, self.loss_fn
        step, lr, generation = run.steps, float(run.hyperparameters["lr"]), self._generation
        job = Job(lambda state: sharpness(model, loss_fn, X, y, tol=1e-4, max_iter=40),
                  parent=self)
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
            self._sharpness_job.cancel()
            self._sharpness_job = None
            self._sharpness_run = None

    def wait_for_sharpness(self, timeout_s: float = 5.0) -> bool:
        """Deliver the running measurement now (tests, quitting); True if none is left."""
        job = self._sharpness_job
        return True if job is None else job.finish(timeout_s)

    def shutdown(self, timeout_s: float = SHUTDOWN_WAIT_S) -> bool:
        """Stop the timer and wait at most `timeout_s` for a sharpness measurement."""
        self.pause()
        job = self._sharpness_job
        self._forget_sharpness_job()
        return True if job is None else job.finish(timeout_s)


def optimizer_names() -> list[str]:
    """The optimizers a run can use, as torch.optim's class names."""
    return list(CATALOGUE)

