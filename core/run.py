"""A Run: one torch.optim optimizer on one Problem (core/problems): named float64 parameters.

Each parameter is its own leaf tensor, handed to the optimizer in the problem's order, so any of
them can be frozen by name (requires_grad=False): a frozen leaf gets no gradient, torch's
optimizer skips it, and it stays bit for bit where it is. The surface race is the problem with
the scalars x and y (`Run(surface, ...)` wraps the surface in a SurfaceProblem); everything the
race reads (`run.x`, `run.y`, `run.surface`, `run.start`, `last_point`, ...) works as before.

One step, as the engine does it (the forward/backward at the new point is done right after the
update, so the trajectory entry for a point always carries the loss and gradient there):

    optimizer.step()              # torch's own update, from the gradients already in .grad
    step_scheduler(scheduler, loss of the previous entry)   # if the run has a scheduler
    optimizer.zero_grad()
    loss = problem.loss(params, step)   # forward: autograd records the DAG (step: the batch)
    loss.backward()               # backward: fills every free parameter's .grad
    process_gradients(params, noise, clipping)   # if set: noise, then torch's clipping
    record(params, loss, grads, lr)

Scheduler, clipping and noise (issue 11; core/schedulers.py, core/gradient_tools.py) are the
real torch pieces in the plain loop's order (`zero_grad; backward; noise; clip; step;
scheduler.step`), only shifted like the rest. L-BFGS re-evaluates inside its step, so there the
noise and clipping happen in its closure (every evaluation), and the first evaluation of a step,
at the newest entry's point, fills that entry's noise and clipping columns. The record keeps the
noise-free gradient in its grad columns (what the surface has there; the status rules read it)
and adds the noisy one and the clipping figures in columns of their own (core/trajectory.py).
The lr column is the lr the next step uses, so the schedule shows exactly as torch applied it.
The lr slider of a scheduled run moves the scheduler's base lr (`set_base_lr`, the rule is in
core/schedulers.py) and `hyperparameters["lr"]` is always `base_lr_of(scheduler)`.

Every change between steps is logged (`Run.changes`, RunChange: step, kind, payload) beside the
settings the run started with (`initial_settings`); a run built with a log (`changes=`, as a
loaded session's are) applies each change when it reaches its step, so a saved session, an
animation and an exported script (core/script_export.py) take the same path bit for bit.

The status is re-evaluated after every step and every change, from the recent state, by the rules
in core/status.py (tolerances scaled to the surface; for a problem with no region, such as a
model, to the run's own start: `RelativeScale`): running, converged (stayed put with a small
gradient for a window of steps), frozen (every parameter frozen) or diverged (final).

`diverged_at` has one meaning: the number of optimizer steps taken when the run was found
diverged, counting the step that failed; it equals `run.steps` from then on. The trajectory keeps
every point it can draw: it ends at step `diverged_at` when the last point was finite but too
far away, or its loss too high or too low, for too long; and at `diverged_at - 1` when step
`diverged_at` raised, gave a non-finite point, loss or gradient, or crossed a wall (the caller's
`bound`, or HOPELESS_K region sizes out). `diverged_point` is that last point when it is known.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

import numpy as np
import torch
from torch import Tensor

from core.errors import OptimizerError, PlaygroundError, first_line
from core.gradient_tools import GradientClipping, GradientNoise, GradientStep, \
    clipping_from_settings, process_gradients
from core.optimizers import OptimizerSpec, format_optimizer_call, get_spec
from core.problems.base import Problem
from core.problems.surface import COORDINATES, SurfaceProblem
from core.schedulers import base_lr_of, build_scheduler, current_momentum, \
    get_scheduler_spec, momentum_name, parse_scheduler_call, rebuild_scheduler, \
    scheduler_call_text, set_base_lr, step_scheduler
from core.status import CONVERGENCE_WINDOW, HOPELESS_K, RelativeScale, StatusTracker, \
    surface_scale
from core.surfaces import DTYPE, Point, Surface
from core.trajectory import Trajectory

__all__ = ["CHANGE_KINDS", "COORDINATES", "Run", "RunChange", "RunStatus"]

# A gradient or value as the record holds it: a float for a scalar parameter, else a tensor
# (None: a frozen parameter has no gradient).
Figure = float | Tensor | None
# A run's scheduler as its settings hold it: torch's class name and its (validated) keywords.
SchedulerSetting = tuple[str, dict[str, Any]]

CLIP_FIELDS = ("clipped", "grad_norm_before_clip", "grad_norm_after_clip")


def scheduler_setting(value: Any) -> SchedulerSetting | None:
    """(name, kwargs) from a call text ("CosineAnnealingLR(T_max=200)"), a (name, kwargs)
    pair or None; every argument validated (SchedulerError, one line, otherwise)."""
    if value is None:
        return None
    if isinstance(value, str):
        return parse_scheduler_call(value)
    if isinstance(value, (tuple, list)) and len(value) == 2 and isinstance(value[0], str):
        spec = get_scheduler_spec(value[0])
        return spec.name, spec.validate(dict(value[1] or {}))
    raise OptimizerError(f"a scheduler is a call like CosineAnnealingLR(T_max=200) or a "
                         f"(name, kwargs) pair, got {value!r}")


# What a change between steps can be (RunChange.kind), and the payload each carries:
#   "hyperparameters" {"values": {name: value, ...}, "rebuilt": bool}  (rebuilt: a not-live one
#                     changed, so torch's optimizer was built afresh at the current point)
#   "freeze"          {"name": "y", "frozen": true}
#   "scheduler"       {"scheduler": "CosineAnnealingLR(T_max=200)" or None (removed)}
#   "clipping"        {"clip_norm": 1.0} or {"clip_value": 0.5} or {} (removed)
#   "noise"           {"noise": {"sigma": 0.5, "seed": 0} or None (removed)}
CHANGE_KINDS = ("hyperparameters", "freeze", "scheduler", "clipping", "noise")


@dataclass(frozen=True)
class RunChange:
    """One change the user made between steps: `step` is the number of steps taken when it
    happened, so it acts on step `step + 1` (the gradient at entry `step` is taken again with
    it, as the plain loop computes it). The payload is plain JSON (see CHANGE_KINDS)."""

    step: int
    kind: str
    payload: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.kind not in CHANGE_KINDS:
            raise OptimizerError(f"a change is one of {', '.join(CHANGE_KINDS)}, got "
                                 f"{self.kind!r}")
        if isinstance(self.step, bool) or not isinstance(self.step, int) or self.step < 0:
            raise OptimizerError(f"a change's step must be a whole number >= 0, got "
                                 f"{self.step!r}")

    def to_dict(self) -> dict[str, Any]:
        """As a session file stores it: {"step": 120, "kind": "hyperparameters", ...payload}."""
        return {"step": self.step, "kind": self.kind, **_json_ready(self.payload)}

    @classmethod
    def from_dict(cls, data: Any) -> RunChange:
        """A change from its file form (`to_dict`), its shape checked: OptimizerError with one
        line naming the field otherwise. What the values mean is checked by the run
        (`Run.set_changes`)."""
        if not isinstance(data, dict):
            raise OptimizerError(f"a change must be an object, got {_short(data)}")
        kind = data.get("kind")
        if kind not in CHANGE_KINDS:
            raise OptimizerError(f"'kind' must be one of {', '.join(CHANGE_KINDS)}, got "
                                 f"{_short(kind)}")
        step = data.get("step")
        if isinstance(step, bool) or not isinstance(step, int) or step < 0:
            raise OptimizerError(f"'step' must be a whole number >= 0, got {_short(step)}")
        fields = _CHANGE_FIELDS[kind]
        unknown = [k for k in data if k not in ("step", "kind", *fields)]
        if unknown:
            raise OptimizerError(f"unknown field {unknown[0][:40]!r} in a {kind} change "
                                 f"(known: step, kind, {', '.join(fields)})")
        payload = {k: data[k] for k in fields if k in data}
        for key, (check, holds, required) in fields.items():
            if key not in payload:
                if required:
                    raise OptimizerError(f"a {kind} change needs {key!r} ({holds})")
                continue
            if not check(payload[key]):
                raise OptimizerError(f"{key!r} must be {holds}, got {_short(payload[key])}")
        if kind == "hyperparameters":
            payload.setdefault("rebuilt", False)
        return cls(step, kind, payload)

    @property
    def text(self) -> str:
        """The change in words, for a learner ("lr = 0.01", "freeze y")."""
        p = self.payload
        if self.kind == "hyperparameters":
            return ", ".join(f"{k} = {v!r}" for k, v in p["values"].items()) + (
                " (the optimizer is built afresh)" if p.get("rebuilt") else "")
        if self.kind == "freeze":
            return f"{'freeze' if p['frozen'] else 'unfreeze'} {p['name']}"
        if self.kind == "scheduler":
            return f"scheduler {p['scheduler']}" if p["scheduler"] else "no scheduler"
        if self.kind == "clipping":
            return (", ".join(f"{k} = {v!r}" for k, v in p.items()) or "no clipping")
        noise = p["noise"]
        return (f"gradient noise sigma = {noise['sigma']!r}, seed {noise['seed']}" if noise
                else "no gradient noise")


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _is_noise(value: Any) -> bool:
    return value is None or (isinstance(value, dict) and "sigma" in value
                             and set(value) <= {"sigma", "seed"})


# Per kind: each payload field's check, what it holds (for the message), and if it is required.
_CHANGE_FIELDS: dict[str, dict[str, tuple[Any, str, bool]]] = {
    "hyperparameters": {
        "values": (lambda v: isinstance(v, dict) and all(isinstance(k, str) for k in v),
                   "an object of the optimizer's keyword arguments", True),
        "rebuilt": (lambda v: isinstance(v, bool), "true or false", False)},
    "freeze": {"name": (lambda v: isinstance(v, str), "a parameter's name", True),
               "frozen": (lambda v: isinstance(v, bool), "true or false", True)},
    "scheduler": {"scheduler": (lambda v: v is None or isinstance(v, str),
                                "a scheduler call as text, or null", True)},
    "clipping": {"clip_norm": (_is_number, "a number > 0", False),
                 "clip_value": (_is_number, "a number > 0", False)},
    "noise": {"noise": (_is_noise, '{"sigma": a number >= 0, "seed": a whole number >= 0} or '
                        'null', True)},
}


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _json_ready(value: Any) -> Any:
    """Tuples as lists (betas), recursively: what JSON writes and a load gives back."""
    if isinstance(value, dict):
        return {k: _json_ready(v) for k, v in value.items()}
    if isinstance(value, (tuple, list)):
        return [_json_ready(v) for v in value]
    return value


def _clipping_payload(clipping: GradientClipping | None) -> dict[str, Any]:
    if clipping is None:
        return {}
    return {("clip_norm" if clipping.kind == "norm" else "clip_value"): clipping.threshold}


def _noise_payload(noise: GradientNoise | None) -> dict[str, Any] | None:
    return None if noise is None else {"sigma": noise.sigma, "seed": noise.seed}


class RunStatus(StrEnum):
    """The state of a run, re-evaluated after every step and change (see core/status.py)."""

    RUNNING = "running"
    CONVERGED = "converged"
    FROZEN = "frozen"  # every parameter is frozen: it cannot move, which is not convergence
    DIVERGED = "diverged"


class Run:
    """One optimizer on one problem. `step()` never raises: a blow-up marks the run diverged.

    `problem` is a Problem (core/problems), or a Surface, which is wrapped in a SurfaceProblem
    from `start` (the surface's own start if None); `start` is only for surfaces.
    grad_tolerance / move_tolerance: what counts as a small gradient and a step that stays put;
    None scales them to the surface (core/status.py), or for other problems to the run's start
    (`RelativeScale`). window: how many steps the run must stay put to be converged. bound:
    None judges "too far" by the surface's region (REGION_K spans beyond it, for
    DIVERGENCE_WINDOW steps without a lower loss, see core/status.py); a number is a wall
    instead: any parameter element beyond it in absolute value is diverged at once.
    scheduler: a torch.optim.lr_scheduler class as (name, kwargs) or call text; clipping and
    noise: what happens to each gradient before the optimizer uses it (module docstring).
    changes: the mid-run changes to replay (`set_changes`): the run is built with its initial
    settings and stepping applies each change at its step.

    The change log: every change between steps (`set_hyperparameters`, `set_frozen`,
    `set_scheduler`, `set_clipping`, `set_noise`) is recorded in `changes` as a RunChange, and
    `initial_settings` keeps what the run started with, so `replay_copy()` (a session file, an
    animation, an exported script) takes the same path again bit for bit. A change at step 0 is
    folded into the initial settings when the run is then exactly what a fresh run built with
    them would be (same param_groups, scheduler state and trajectory columns), else kept; a
    folded change keeps the changes still ahead (`run --session FILE --freeze y` replays the
    file's changes on the frozen run). Any other change made while replayed changes are still
    ahead drops those: the user took over.
    `reset()` (and a new surface or problem) clears the log; the current settings become the
    initial ones.
    """

    def __init__(self, problem: Surface | Problem, optimizer: str = "SGD",
                 hyperparameters: dict[str, Any] | None = None, start: Point | None = None,
                 frozen: tuple[str, ...] | frozenset[str] | list[str] = (),
                 label: str | None = None, color: str | None = None, enabled: bool = True,
                 grad_tolerance: float | None = None, bound: float | None = None,
                 capacity: int = 200_000, move_tolerance: float | None = None,
                 window: int = CONVERGENCE_WINDOW,
                 scheduler: SchedulerSetting | str | None = None,
                 clipping: GradientClipping | None = None,
                 noise: GradientNoise | None = None,
                 changes: Iterable[RunChange] = ()) -> None:
        self.spec: OptimizerSpec = get_spec(optimizer)
        self.hyperparameters: dict[str, Any] = self.spec.validate(hyperparameters)
        if isinstance(problem, Surface):
            problem = SurfaceProblem(problem, start)
        elif start is not None:
            raise OptimizerError("a start point is only for a surface; a problem's start is "
                                 "its initial_parameters()")
        problem.check_names(frozen)
        self.problem: Problem = problem
        self.label = label
        self.color = color
        self.enabled = enabled
        self._grad_tolerance = grad_tolerance
        self._move_tolerance = move_tolerance
        self.window = window
        self.bound = bound
        self.capacity = capacity
        self._frozen = set(frozen)
        self.scheduler_setting: SchedulerSetting | None = scheduler_setting(scheduler)
        self.clipping = clipping
        self.noise = noise
        self._replaying = False
        self.reset()
        if changes:
            self.set_changes(changes)

    # --- set-up ---------------------------------------------------------------------------------

    # Entries of a model-sized problem are recorded in blocks (`_PendingEntries`): the status
    # rules that stop a run (non-finite values, the loss rules) act at every step; the
    # trajectory, the convergence status and the update norms are brought up to date when
    # anything reads them, through these properties, so a reader never sees a stale record.
    _pending: _PendingEntries | None = None
    _status: RunStatus = RunStatus.RUNNING

    def _flush(self) -> None:
        """Record the entries still pending (a no-op when there are none)."""
        pending = self._pending
        if pending is not None and pending.n:
            pending.flush()

    @property
    def trajectory(self) -> Trajectory:
        self._flush()
        return self._trajectory

    @trajectory.setter
    def trajectory(self, value: Trajectory) -> None:
        self._trajectory = value

    @property
    def status(self) -> RunStatus:
        self._flush()
        return self._status

    @status.setter
    def status(self, value: RunStatus) -> None:
        self._status = value

    @property
    def converged_at(self) -> int | None:
        self._flush()
        return self._converged_at

    @converged_at.setter
    def converged_at(self, value: int | None) -> None:
        self._converged_at = value

    @property
    def _tracker(self) -> StatusTracker:
        self._flush()
        return self._tracker_now

    @_tracker.setter
    def _tracker(self, value: StatusTracker) -> None:
        self._tracker_now = value

    @property
    def diverged(self) -> bool:
        """True once the run has diverged (known at once, without bringing the record up to
        date: what a loop that steps runs asks at every step)."""
        return self._status is RunStatus.DIVERGED

    @property
    def stored_in_full(self) -> frozenset[str]:
        """The parameters whose every element the record keeps (the small ones), fixed from the
        run's reset on: read without bringing the record up to date."""
        return self._stored_names

    @property
    def is_surface(self) -> bool:
        """True for the race's problem: x and y on a surface."""
        return isinstance(self.problem, SurfaceProblem)

    @property
    def surface(self) -> Surface | None:
        """The race's surface (None for another kind of problem)."""
        return self.problem.surface if isinstance(self.problem, SurfaceProblem) else None

    @property
    def start(self) -> Point | None:
        """The race's start point (None for another kind of problem)."""
        return self.problem.start if isinstance(self.problem, SurfaceProblem) else None

    @property
    def parameter_names(self) -> tuple[str, ...]:
        return self.problem.parameter_names

    @property
    def x(self) -> Tensor:
        return self.parameters["x"]

    @property
    def y(self) -> Tensor:
        return self.parameters["y"]

    @property
    def optimizer_name(self) -> str:
        return self.spec.name

    @property
    def title(self) -> str:
        """What the legend shows: the user's label, or the optimizer as PyTorch code."""
        return self.label or format_optimizer_call(self.spec.name, self.hyperparameters)

    @property
    def frozen(self) -> frozenset[str]:
        return frozenset(self._frozen)

    def _scale(self) -> Any:
        if isinstance(self.problem, SurfaceProblem):
            return surface_scale(self.problem.surface)
        return self._relative_scale

    @property
    def grad_tolerance(self) -> float:
        """|gradient| at or below this is small (scaled to the problem unless given)."""
        if self._grad_tolerance is not None:
            return self._grad_tolerance
        return float(self._scale().grad_tolerance)

    @property
    def move_tolerance(self) -> float:
        """A step that moves at most this far has stayed put (scaled to the problem if None)."""
        if self._move_tolerance is not None:
            return self._move_tolerance
        return float(self._scale().move_tolerance)

    @property
    def bound_box(self) -> tuple[float, float, float, float]:
        """(x_low, x_high, y_low, y_high): the region's far box, or the wall at `bound`."""
        if self.bound is not None:
            return (-self.bound, self.bound, -self.bound, self.bound)
        return self._surface_scale().far_box(self._point_start())

    @property
    def wall_box(self) -> tuple[float, float, float, float]:
        """Past this the run is diverged at once: the caller's `bound`, or HOPELESS_K spans."""
        if self.bound is not None:
            return self.bound_box
        return self._surface_scale().far_box(self._point_start(), HOPELESS_K)

    def _surface_scale(self) -> Any:
        if not isinstance(self.problem, SurfaceProblem):
            raise OptimizerError("only a surface has a region")
        return surface_scale(self.problem.surface)

    def _point_start(self) -> Point:
        assert isinstance(self.problem, SurfaceProblem)
        return self.problem.start

    @property
    def convergence_rule(self) -> str:
        """The rule in words, with this run's numbers (for a tooltip)."""
        return (f"converged: |grad| <= {self.grad_tolerance:.3g} and every step moves <= "
                f"{self.move_tolerance:.3g}, for {self.window} steps in a row")

    def reset(self, start: Point | None = None) -> None:
        """Back to the start (a new one if given, for a surface) with a fresh optimizer and an
        empty record."""
        if start is not None:
            if not isinstance(self.problem, SurfaceProblem):
                raise OptimizerError("a start point is only for a surface")
            self.problem = SurfaceProblem(self.problem.surface,
                                          (float(start[0]), float(start[1])))
        self._pending = None  # entries of the old record are dropped with it
        initial = self.problem.initial_parameters()
        # a small model's leaves and gradients are views of two flat buffers (`_flat_leaves`)
        self._flat: Tensor | None = None
        self._grad_views: dict[str, Tensor] = {}
        self._grads_now: dict[str, Figure] = {}
        self._frozen_mask: tuple[bool, ...] = ()
        if self._flat_layout_fits(initial):
            self.parameters: dict[str, Tensor] = self._flat_leaves(initial)
        else:
            self.parameters = {
                name: initial[name].detach().to(DTYPE).clone().requires_grad_(
                    name not in self._frozen)
                for name in self.problem.parameter_names}
        self._scalar = {name: p.dim() == 0 for name, p in self.parameters.items()}
        # the loss at these leaves by step (a model problem binds a copy of its module to them)
        self._loss_at = self.problem.loss_of(self.parameters)
        # The race's hot path works on the two leaves and the surface directly (a step there
        # is ~70 us, so dict walks per step would show in the steps per second).
        self._surface_fn: Surface | None = (self.problem.surface if isinstance(
            self.problem, SurfaceProblem) else None)
        self._xy = (self.parameters["x"], self.parameters["y"]) if self._surface_fn else ()
        self.optimizer: torch.optim.Optimizer = self.spec.cls(self._leaves(),
                                                              **self.hyperparameters)
        self.scheduler: Any = None
        if self.scheduler_setting is not None:
            self.scheduler = build_scheduler(self.optimizer, *self.scheduler_setting,
                                             validated=True)
            self.hyperparameters["lr"] = base_lr_of(self.scheduler, self.optimizer)
        if self.noise is not None:
            self.noise.reset()
        self.changes: list[RunChange] = []
        self._next_change = 0  # changes[:_next_change] are applied; the rest wait their step
        self.initial_settings: dict[str, Any] = self._settings()
        self._noise_state: Tensor | None = None  # the generator before the newest entry's draw
        self._closure_calls = 0
        self.trajectory = Trajectory(self.capacity,
                                     {n: tuple(p.shape) for n, p in self.parameters.items()},
                                     extra=self._tool_fields() + self._schedule_fields())
        self._base_fields = len(self.trajectory.fields) - len(self._tool_fields()) - len(
            self._schedule_fields())
        # the general record's views of the leaves (they follow the optimizer's in-place updates)
        self._values = {name: p.detach() for name, p in self.parameters.items()}
        self._value_list = list(self._values.values())
        self._value_flat = [v.view(-1) for v in self._value_list]
        self._stored_flat = [self._values[name].view(-1) for name in self.trajectory.stored]
        self._stored_names = frozenset(self.trajectory.stored)
        self._all_scalar = all(self._scalar.values())
        self._layouts: dict[tuple[bool, tuple[bool, ...]], _RecordLayout] = {}
        self._n_values = sum(v.numel() for v in self._value_list)
        # the values before the newest step, one flat buffer with a view per parameter
        self._previous_flat = torch.empty(self._n_values, dtype=DTYPE)
        self._previous_list = [self._previous_flat[a:a + v.numel()].view(v.shape)
                               for a, v in zip(_offsets(self._value_list), self._value_list)]
        self._pending = _PendingEntries(self) if _PendingEntries.fits(self) else None
        self.steps = 0
        self._last_loss = math.nan  # the newest entry's loss (recorded or pending)
        self.status = RunStatus.RUNNING
        self.converged_at: int | None = None
        self.diverged_at: int | None = None
        self.divergence_reason = ""
        self.diverged_point: Point | None = None  # where it left, when that point is known
        self.last_point: Point = self._point()
        self.last_update: Point = tuple(math.nan for _ in self.last_point)  # type: ignore
        self._update_norms: dict[str, float] = {n: math.nan for n in self.parameters}
        self._last_grads: dict[str, Figure] = {}
        self._last_gxy: tuple[float, float] = (math.nan, math.nan)
        if isinstance(self.problem, SurfaceProblem):
            scale = surface_scale(self.problem.surface)
            self._wall: tuple[float, float, float, float] | None = self.wall_box
            far = self.bound_box if self.bound is None else None
        else:
            self._relative_scale = self._measure_start()
            scale, self._wall, far = self._relative_scale, None, None
        self._tracker = StatusTracker(self.grad_tolerance, self.move_tolerance, self.window,
                                      far, far_loss_floor=scale.high)
        self._evaluate_and_record()
        if len(self.trajectory):  # the loss rules allow for a start above or below the region
            start_loss = float(self.trajectory.loss[0])
            self._tracker.explosion_threshold = scale.explosion_threshold(start_loss)
            self._tracker.plunge_threshold = scale.plunge_threshold(start_loss)

    def _measure_start(self) -> RelativeScale:
        """|loss|, |gradient| and |parameters| at the start: the scale of a problem without a
        region. A start that cannot be evaluated gets unit scales (it diverges at once)."""
        values = math.hypot(*(p.detach().norm().item() for p in self.parameters.values()))
        try:
            with self._buffers_kept():
                loss, grads = self._forward_backward()
            grad = math.hypot(*(_figure_norm(g) for g in grads.values()))
        except Exception:
            loss, grad = 1.0, 1.0
        finite = [v if math.isfinite(v) else 1.0 for v in (abs(loss), grad, values)]
        return RelativeScale(*finite)

    def _flat_layout_fits(self, initial: dict[str, Tensor]) -> bool:
        """A problem whose entries go into blocks (`_PendingEntries.fits`: not every parameter
        a scalar, small enough for a block) and whose loss reaches every parameter at every
        step (`every_parameter_used`: a present .grad never stands for an unused one)."""
        if isinstance(self.problem, SurfaceProblem) or not getattr(
                self.problem, "every_parameter_used", False):
            return False
        return _PendingEntries.fits_tensors(
            [initial[name] for name in self.problem.parameter_names])

    def _flat_leaves(self, initial: dict[str, Tensor]) -> dict[str, Tensor]:
        """The leaves as views of one buffer and each .grad the view of its span in another
        of the same layout, so one cat takes a step's whole record row. (Two buffers: views
        share their base's version counter, and backward's in-place additions into the
        gradients must not look like a change to the values it saved for later nodes.)

        Zeroing fills the gradients with -0.0 and backward's AccumulateGrad adds into them in
        place (`grad += new`, as torch does when a .grad is present): -0.0 + g is g, bit for
        bit (also for g = +-0.0), so the .grad is exactly the tensor the textbook loop's
        zero_grad() (set to None) and backward leave, and the optimizer reads the same numbers.
        Only where every parameter reaches the loss: torch's optimizers skip a parameter whose
        .grad is None, which a present zero would not be.
        """
        names = self.problem.parameter_names
        n = sum(initial[name].numel() for name in names)
        flat, grads = torch.empty(n, dtype=DTYPE), torch.empty(n, dtype=DTYPE)
        leaves: dict[str, Tensor] = {}
        at = 0
        for name in names:
            t = initial[name]
            k = t.numel()
            leaf = flat[at:at + k].view(t.shape)
            leaf.copy_(t.detach())
            leaves[name] = leaf.requires_grad_(name not in self._frozen)
            self._grad_views[name] = grads[at:at + k].view(t.shape)
            at += k
        self._flat, self._grad_flat = flat, grads
        self._flat_pair = [flat, grads]
        self._attach_grads(leaves)
        return leaves

    def _attach_grads(self, leaves: dict[str, Tensor]) -> None:
        """Each free leaf's .grad is its view of the buffer; a frozen one has none (its span
        holds 0.0, so a row's sum stays finite; the record reads NaN there)."""
        for name, leaf in leaves.items():
            view = self._grad_views[name]
            if name in self._frozen:
                leaf.grad = None
                view.zero_()
            else:
                leaf.grad = view
        self._grads_now = {name: (None if name in self._frozen else view)
                           for name, view in self._grad_views.items()}
        self._frozen_mask = tuple(name in self._frozen for name in self._grad_views)

    def _zero_grad(self) -> None:
        """What `optimizer.zero_grad()` does before a backward (see `_flat_leaves`)."""
        if self._flat is None:
            self.optimizer.zero_grad()
        elif not self._frozen:
            self._grad_flat.fill_(-0.0)
        else:
            for name, view in self._grad_views.items():
                if name not in self._frozen:
                    view.fill_(-0.0)

    @contextmanager
    def _buffers_kept(self) -> Iterator[None]:
        """An evaluation the plain loop does not make (the start's scale, a gradient taken
        again after a change) leaves the run's buffers (BatchNorm's running statistics, which
        a forward in training mode updates) as they were, so they follow the plain loop's."""
        own = getattr(self.problem, "buffers", None)
        buffers = own(self.parameters) if callable(own) else {}
        kept = {name: b.clone() for name, b in buffers.items()}
        try:
            yield
        finally:
            with torch.no_grad():
                for name, b in kept.items():
                    buffers[name].copy_(b)

    def _leaves(self) -> list[Tensor]:
        return [self.parameters[name] for name in self.problem.parameter_names]

    def _point(self) -> Point:
        """The scalar parameters' values as a tuple ((x, y) in the race); () if any is not a
        scalar."""
        if not all(self._scalar.values()):
            return ()  # type: ignore[return-value]
        return tuple(p.item() for p in self._leaves())  # type: ignore[return-value]

    def set_surface(self, surface: Surface, start: Point | None = None) -> None:
        """A new surface (the race), from `start` or the current start; the run restarts."""
        start = start if start is not None else self.start
        self.problem = SurfaceProblem(surface, start)
        self.reset()

    def set_problem(self, problem: Problem) -> None:
        """A new problem; the frozen names it lacks are dropped and the run restarts."""
        self._frozen &= set(problem.parameter_names)
        self.problem = problem
        self.reset()

    # --- changes in the middle of a run ---------------------------------------------------------

    def set_hyperparameter(self, name: str, value: Any) -> None:
        """Change one hyperparameter; the running optimizer uses it from its next step."""
        self.set_hyperparameters({name: value})

    def set_hyperparameters(self, values: dict[str, Any]) -> None:
        """Change hyperparameters from the next step on, in the running optimizer's param_groups.

        A change to one that torch only reads when it builds the optimizer's state (`live` False
        in the catalogue, e.g. Adam's amsgrad, or Rprop's lr, which only seeds its step sizes)
        builds a fresh optimizer at the current point, as a PyTorch user would have to: the
        position and the record go on, the state restarts. Any real change restarts the count
        of steps a run must stay put to be called converged.
        """
        merged = self.spec.validate({**self.hyperparameters, **values})
        rebuild = any(not h.live and merged[h.name] != self.hyperparameters[h.name]
                      for h in self.spec.hyperparameters)
        changed = merged != self.hyperparameters
        old = self.hyperparameters
        self.hyperparameters = merged
        if rebuild:
            self.optimizer = self.spec.cls(self._leaves(), **merged)
        # Settings torch derives from others at construction (LBFGS: max_eval = max_iter * 5 // 4)
        # must follow them, as in a fresh optimizer: take the group defaults torch itself builds.
        derived = self.spec.cls([torch.zeros((), dtype=DTYPE, requires_grad=True)],
                                **merged).defaults
        if self.scheduler is None:
            for group in self.optimizer.param_groups:
                group.update(derived)
        else:
            # The scheduler owns the group's lr (and a cycled momentum): only what the user
            # changed goes in, and the lr moves the scheduler's base lr.
            before = self.spec.cls([torch.zeros((), dtype=DTYPE, requires_grad=True)],
                                   **old).defaults
            changed_keys = {k: v for k, v in derived.items()
                            if k != "lr" and before.get(k) != v}
            for group in self.optimizer.param_groups:
                group.update(changed_keys)
            if rebuild:  # a fresh optimizer needs a fresh scheduler (its schedule restarts)
                self.scheduler = rebuild_scheduler(self.optimizer, *self.scheduler_setting,
                                                   float(merged["lr"]))
            elif merged["lr"] != old["lr"]:
                self._move_base_lr(float(merged["lr"]))
            self.hyperparameters["lr"] = base_lr_of(self.scheduler, self.optimizer)
        if len(self.trajectory):
            self.trajectory.set_last(lr=float(self.optimizer.param_groups[0]["lr"]))
        if changed:
            if len(self.trajectory):  # weight decay changes the gradient the optimizer follows
                self._tracker.regrade(self._stationarity(self._current_grads()))
            self._tracker.settings_changed()
            self._update_status()
            self._record_change("hyperparameters", {
                "values": {k: merged[k] for k in values if merged[k] != old[k]},
                "rebuilt": rebuild})

    def _move_base_lr(self, lr: float) -> None:
        """The lr slider on a scheduled run: set_base_lr, and the setting follows (OneCycleLR's
        max_lr, CyclicLR's base_lr and max_lr), so a reset replays the run built with it."""
        assert self.scheduler is not None and self.scheduler_setting is not None
        old = base_lr_of(self.scheduler, self.optimizer)
        set_base_lr(self.scheduler, self.optimizer, lr)
        name, kwargs = self.scheduler_setting
        kwargs = dict(kwargs)
        if name == "OneCycleLR":
            kwargs["max_lr"] = lr
        elif name == "CyclicLR":
            kwargs["base_lr"] = lr
            kwargs["max_lr"] = kwargs["max_lr"] * (lr / old)
        self.scheduler_setting = (name, kwargs)

    def set_scheduler(self, scheduler: SchedulerSetting | str | None) -> None:
        """Another scheduler (or none) from the next step on. The new schedule starts at step 0
        from the run's base lr (`rebuild_scheduler`); None goes back to the plain lr."""
        setting = scheduler_setting(scheduler)
        base = float(self.hyperparameters["lr"])
        if setting is None:
            self.scheduler = None
            for group in self.optimizer.param_groups:
                group["lr"] = base
                group.pop("initial_lr", None)
                # a cycling scheduler moved the momentum: back to the run's own
                for key in ("momentum", "betas"):
                    if key in self.hyperparameters and key in group:
                        group[key] = self.hyperparameters[key]
        else:
            self.scheduler = rebuild_scheduler(self.optimizer, *setting, base)
            self.hyperparameters["lr"] = base_lr_of(self.scheduler, self.optimizer)
        self.scheduler_setting = setting
        self._record_change("scheduler", {
            "scheduler": None if setting is None else scheduler_call_text(*setting)})
        self.trajectory.add_fields(self._schedule_fields())
        if len(self.trajectory):
            self.trajectory.set_last(lr=float(self.optimizer.param_groups[0]["lr"]))
            # the momentum the next step uses: the new scheduler's, none without one
            self.trajectory.set_last_fields({
                which: math.nan for which in ("momentum", "beta1")
                if which in self.trajectory.fields and which not in self._schedule_fields()})
            self.trajectory.set_last_fields({
                which: float(current_momentum(self.optimizer, which))  # type: ignore[arg-type]
                for which in self._schedule_fields()})
        self._tracker.settings_changed()
        self._update_status()

    def set_clipping(self, clipping: GradientClipping | None) -> None:
        """Clip (or stop clipping) from the gradient the next step uses on."""
        self.clipping = clipping
        self._tools_changed()
        self._record_change("clipping", _clipping_payload(clipping))

    def set_noise(self, noise: GradientNoise | None) -> None:
        """Gradient noise (or none) from the gradient the next step uses on; a new noise starts
        at its seed's first draw."""
        if noise is not None:
            noise.reset()
        self.noise = noise
        self._noise_state = None
        self._tools_changed()
        self._record_change("noise", {"noise": _noise_payload(noise)})

    def _tool_fields(self) -> tuple[str, ...]:
        """The trajectory columns the gradient tools add (core/trajectory.py)."""
        fields: list[str] = []
        if self.noise is not None:
            stored = [c for name, cols in _stored_columns(self.parameters).items() for c in cols]
            fields += ["noisy_grad_" + c for c in stored]
            fields += [f"noisy_grad_norm:{n}" for n, p in self.parameters.items()
                       if p.numel() > 1]
        if self.clipping is not None:
            fields += CLIP_FIELDS
        return tuple(fields)

    def _schedule_fields(self) -> tuple[str, ...]:
        """A column for the momentum or beta1 a scheduler cycles (CyclicLR, OneCycleLR): the
        value the next step uses, as the lr column."""
        which = momentum_name(self.scheduler) if self.scheduler is not None else None
        return (which,) if which else ()

    def _tools_changed(self) -> None:
        self.trajectory.add_fields(self._tool_fields())
        if self.status is not RunStatus.DIVERGED and len(self.trajectory):
            self._regrade()
        self._tracker.settings_changed()
        self._update_status()

    def _regrade(self) -> None:
        """The gradient at the newest entry again, after a change to what shapes it (a freeze,
        the clipping, the noise), as the plain loop computes it with the change in place. The
        noise draw of this entry is taken again from the same generator state."""
        if self.noise is not None and self._noise_state is not None \
                and self._processes_outside_closure():
            # (L-BFGS draws in its closure: this entry's draw has not happened yet, and going
            # back would repeat the last step's draws)
            self.noise.set_state(self._noise_state)
        try:
            with self._buffers_kept():  # the entry's own forward already updated them
                _, grads = self._forward_backward()
        except Exception as e:  # it worked a moment ago; if not now, the run cannot go on
            what = "the surface" if self.is_surface else "the loss"
            self._diverge(f"evaluating {what} failed: {e}", self._known_point())
            return
        self._last_grads = grads
        if self._surface_fn is not None:
            self._last_gxy = (grads["x"], grads["y"])  # type: ignore[assignment]
        fields = self._grad_fields(grads)
        # a tool removed now no longer shapes this entry's gradient: its columns say so
        current = set(self._tool_fields()) | set(self._schedule_fields())
        fields.update({f: math.nan for f in self.trajectory.fields[self._base_fields:]
                       if f not in current})
        if self._processes_outside_closure():
            fields.update(zip(self._tool_fields(), self._process(grads)))
        self.trajectory.set_last_fields(fields)
        self._tracker.regrade(self._stationarity(grads))

    def _extra_row(self, grads: dict[str, Figure]) -> list[float]:
        """The tool columns of a new entry in the trajectory's order: this step's noise and
        clipping (L-BFGS: NaN until its next step's first closure call), NaN in a column of a
        tool the run no longer has."""
        values: dict[str, float] = {}
        if self._processes_outside_closure():
            values = dict(zip(self._tool_fields(), self._process(grads)))
        for which in self._schedule_fields():
            values[which] = float(current_momentum(self.optimizer, which))  # type: ignore
        return [values.get(f, math.nan) for f in self.trajectory.fields[self._base_fields:]]

    def _processes_outside_closure(self) -> bool:
        return (self.noise is not None or self.clipping is not None) \
            and not self.spec.needs_closure

    def _process(self, grads: dict[str, Figure]) -> list[float]:
        """Noise then clipping on the .grad backward left (what the next step uses); the clean
        gradients in `grads` are replaced by copies, since .grad changes in place. Returns the
        tool columns' values for the entry, in `_tool_fields` order."""
        if self.noise is not None:
            self._noise_state = self.noise.get_state()
        leaves = self._leaves()
        result = process_gradients(leaves, self.noise, self.clipping)
        for name, clean in zip(self.problem.parameter_names, result.clean):
            if isinstance(grads.get(name), Tensor) and clean is not None:
                grads[name] = clean
        return self._tool_values(result)

    def _tool_values(self, result: GradientStep) -> list[float]:
        values: list[float] = []
        if self.noise is not None:
            stored = _stored_columns(self.parameters)
            entries = list(zip(self.problem.parameter_names, self._leaves(), result.noisy))
            for name, leaf, noisy in entries:  # a frozen one has none; an unused one is zero
                if name in stored:
                    values += ([math.nan if not leaf.requires_grad else 0.0] * leaf.numel()
                               if noisy is None else noisy.flatten().tolist())
            for _name, leaf, noisy in entries:
                if leaf.numel() > 1:
                    values.append((math.nan if not leaf.requires_grad else 0.0)
                                  if noisy is None else noisy.norm().item())
        if self.clipping is not None:
            clip = result.clip
            assert clip is not None
            values += [float(clip.clipped), clip.norm_before, clip.norm_after]
        return values

    def set_frozen(self, name: str, frozen: bool) -> None:
        """Freeze (requires_grad=False) or unfreeze one parameter by name, from the next step on.

        A frozen parameter gets no .grad, torch's optimizer skips it, and it stays bit for bit
        where it is. The status follows at once: "frozen" when every parameter is frozen; after
        an unfreeze the run has to stay put for a whole window again before it is converged.
        Raises OptimizerError for a name the problem does not have.
        """
        self.problem.check_names([name])
        if frozen == (name in self._frozen):
            return
        self._flush()  # the pending entries were taken with the old freezes
        (self._frozen.add if frozen else self._frozen.discard)(name)
        leaf = self.parameters[name]
        leaf.requires_grad_(not frozen)
        leaf.grad = None
        if self._flat is not None:
            self._attach_grads(self.parameters)
        if self.spec.needs_closure:
            # L-BFGS's curvature history mixes every parameter: kept, it would still move a
            # frozen one. It describes the old parameter space, so start it afresh.
            self.optimizer.state.clear()
        self._freeze_effects()
        self._record_change("freeze", {"name": name, "frozen": frozen})

    def _freeze_effects(self) -> None:
        if self.status is RunStatus.DIVERGED:
            return
        if len(self.trajectory):
            # The gradient at the current point changes with what is frozen: take it again.
            self._regrade()
            if self.status is RunStatus.DIVERGED:
                return
        self._tracker.settings_changed()
        self._update_status()

    # --- the change log -------------------------------------------------------------------------

    def _settings(self) -> dict[str, Any]:
        """What the run is set to now, as `initial_settings` keeps it."""
        setting = self.scheduler_setting
        return {"hyperparameters": dict(self.hyperparameters),
                "frozen": tuple(n for n in self.problem.parameter_names if n in self._frozen),
                "scheduler": None if setting is None else (setting[0], dict(setting[1])),
                "clipping": self.clipping,
                "noise": None if self.noise is None else (self.noise.sigma, self.noise.seed)}

    @property
    def pending_changes(self) -> list[RunChange]:
        """The changes still to be applied, each when the run reaches its step."""
        return self.changes[self._next_change:]

    def set_changes(self, changes: Iterable[RunChange]) -> None:
        """Replay these changes: each is applied when the run has taken `change.step` steps
        (those at step 0 at once). The run must be at its start, with its initial settings.
        Raises OptimizerError, naming the change, for one that does not fit the run."""
        changes = list(changes)
        if self.steps:
            raise OptimizerError("changes are replayed from a run's start (reset it first)")
        last = 0
        for number, change in enumerate(changes, 1):
            if not isinstance(change, RunChange):
                raise OptimizerError(f"change {number} is not a RunChange: {change!r}")
            if change.step < last:
                raise OptimizerError(f"change {number}: the changes must be in step order "
                                     f"(step {change.step} after step {last})")
            last = change.step
            try:
                self._check_change(change)
            except PlaygroundError as e:
                raise OptimizerError(f"change {number} (step {change.step}, {change.kind}): "
                                     f"{e}") from None
        self.changes = changes
        self._next_change = 0
        self._apply_due_changes()

    def _check_change(self, change: RunChange) -> None:
        """What a change says, checked before any step (the replay must not fail midway)."""
        p = change.payload
        if change.kind == "hyperparameters":
            for key, value in p["values"].items():
                self.spec.hyperparameter(key).validate(self.spec.name, value)
        elif change.kind == "freeze":
            self.problem.check_names([p["name"]])
        elif change.kind == "scheduler":
            scheduler_setting(p["scheduler"])
        elif change.kind == "clipping":
            clipping_from_settings(p.get("clip_norm"), p.get("clip_value"))
        elif p["noise"] is not None:
            GradientNoise(p["noise"]["sigma"], p["noise"].get("seed", 0))

    def _apply_due_changes(self) -> None:
        """Apply every waiting change whose step is now (the replay of a saved run)."""
        while self._next_change < len(self.changes) and \
                self.changes[self._next_change].step <= self.steps:
            change = self.changes[self._next_change]
            self._next_change += 1
            self._replaying = True
            try:
                self._apply_change(change)
            except PlaygroundError as e:
                self._replaying = False
                where = f"change {self._next_change} (step {change.step}, {change.kind})"
                raise OptimizerError(f"{where}: {e}") from None
            finally:
                self._replaying = False

    def _apply_change(self, change: RunChange) -> None:
        p = change.payload
        if change.kind == "hyperparameters":
            self.set_hyperparameters(dict(p["values"]))
        elif change.kind == "freeze":
            self.set_frozen(p["name"], bool(p["frozen"]))
        elif change.kind == "scheduler":
            self.set_scheduler(p["scheduler"])
        elif change.kind == "clipping":
            self.set_clipping(clipping_from_settings(p.get("clip_norm"), p.get("clip_value")))
        else:
            noise = p["noise"]
            self.set_noise(None if noise is None else GradientNoise(noise["sigma"],
                                                                    noise.get("seed", 0)))

    def _record_change(self, kind: str, payload: dict[str, Any]) -> None:
        """Log a change the user made now (not one being replayed); see the class docstring
        for step 0 and for changes still ahead."""
        if self._replaying:
            return
        if self.steps == 0 and self._next_change == 0 and self._matches_fresh_build():
            # as if built so: the changes still ahead (a loaded session's) stay
            self.initial_settings = self._settings()
            return
        del self.changes[self._next_change:]
        payload = _json_ready(payload)
        last = self.changes[-1] if self.changes else None
        if (kind == "hyperparameters" and last is not None and last.kind == kind
                and last.step == self.steps and self.scheduler is None
                and not last.payload["rebuilt"] and not payload["rebuilt"]):
            # a slider dragged between two steps: without a scheduler or a rebuild the
            # optimizer's groups depend only on the final values, so one change says it all
            payload = {"values": {**last.payload["values"], **payload["values"]},
                       "rebuilt": False}
            self.changes.pop()
        self.changes.append(RunChange(self.steps, kind, payload))
        self._next_change = len(self.changes)

    def _matches_fresh_build(self) -> bool:
        """True if a run built afresh with the current settings would be this run exactly:
        the same optimizer groups, scheduler state, and first entry (every column)."""
        if self.steps or self.optimizer.state:
            return False
        try:
            fresh = self._build(self._settings(), ())
        except PlaygroundError:
            return False
        if [_group_settings(g) for g in fresh.optimizer.param_groups] != \
                [_group_settings(g) for g in self.optimizer.param_groups]:
            return False
        if (fresh.scheduler is None) != (self.scheduler is None) or (
                self.scheduler is not None and not _same_state(fresh.scheduler.state_dict(),
                                                               self.scheduler.state_dict())):
            return False
        mine, theirs = self.trajectory, fresh.trajectory
        if mine.fields != theirs.fields or len(mine) != len(theirs):
            return False
        return all(_same_floats(mine.column(f), theirs.column(f)) for f in mine.fields)

    def _build(self, settings: dict[str, Any], changes: Iterable[RunChange]) -> Run:
        """A new run on the same problem from `settings` (as `_settings` gives them)."""
        noise = settings["noise"]
        return Run(self.problem, self.spec.name, settings["hyperparameters"],
                   frozen=settings["frozen"], label=self.label, color=self.color,
                   enabled=self.enabled, grad_tolerance=self._grad_tolerance, bound=self.bound,
                   capacity=self.capacity, move_tolerance=self._move_tolerance,
                   window=self.window, scheduler=settings["scheduler"],
                   clipping=settings["clipping"],
                   noise=None if noise is None else GradientNoise(*noise), changes=changes)

    def initial_copy(self) -> Run:
        """A new run at the start with this run's initial settings and no changes (what the
        run was before the user changed anything)."""
        return self._build(self.initial_settings, ())

    def replay_copy(self) -> Run:
        """A new run at the start with this run's initial settings and its whole change log:
        stepped, it takes this run's path again bit for bit (the changes at their steps)."""
        return self._build(self.initial_settings, self.changes)

    def rewind(self) -> None:
        """Back to the start with the initial settings and the whole change log waiting again,
        so stepping takes the same path (unlike `reset()`, which keeps the current settings
        and clears the log). The same Run object: views holding it stay valid."""
        init, changes = self.initial_settings, list(self.changes)
        noise = init["noise"]
        self.hyperparameters = dict(init["hyperparameters"])
        self._frozen = set(init["frozen"])
        setting = init["scheduler"]
        self.scheduler_setting = None if setting is None else (setting[0], dict(setting[1]))
        self.clipping = init["clipping"]
        self.noise = None if noise is None else GradientNoise(*noise)
        self.reset()
        self.set_changes(changes)

    def initial_config(self) -> dict[str, Any]:
        """What a session file stores: `config()` with the initial settings, and the
        changes (only when there are some, so a run without them is written as before)."""
        init = self.initial_settings
        config = {**self.config(),
                  "hyperparameters": _json_ready(init["hyperparameters"]),
                  "frozen": list(init["frozen"])}
        for key in ("scheduler", "clip_norm", "clip_value", "noise"):
            config.pop(key, None)
        noise = init["noise"]
        config.update(_tool_config(init["scheduler"], init["clipping"],
                                   None if noise is None else GradientNoise(*noise)))
        if self.changes:
            config["changes"] = [c.to_dict() for c in self.changes]
        return config

    # --- stepping -------------------------------------------------------------------------------

    def step(self, n: int = 1) -> int:
        """Take up to n optimizer steps; return how many were taken, counting one that diverged.

        `steps` counts every step taken, so after a divergence `steps == diverged_at`.
        """
        done = 0
        while done < n and self._status is not RunStatus.DIVERGED:
            try:
                if self.spec.needs_closure:
                    self._closure_calls = 0
                    self.optimizer.step(self._closure)
                else:
                    self.optimizer.step()
                if self.scheduler is not None:
                    # after optimizer.step(), as torch requires; ReduceLROnPlateau is given the
                    # training loss of the point the step started from
                    step_scheduler(self.scheduler, self._last_loss)
            except Exception as e:  # a torch error mid-step is a failed run, not a crash
                self.steps += 1
                done += 1
                self._diverge(f"optimizer.step() failed: {e}")
                break
            self.steps += 1
            done += 1
            self._evaluate_and_record()
            if self._next_change < len(self.changes):
                self._apply_due_changes()
        return done

    def _closure(self) -> Tensor:
        # The batch of the step being taken: the one whose gradient the step starts from.
        self._zero_grad()
        if self._surface_fn is not None:
            loss = self._surface_fn(*self._xy)
        else:
            loss = self._loss_at(self.steps)
        if loss.requires_grad:
            loss.backward()
        if self.noise is not None or self.clipping is not None:
            first = self._closure_calls == 0 and len(self.trajectory)
            self._closure_calls += 1
            if first:  # at the newest entry's point: its noise and clipping columns
                grads = {name: (p.grad.detach().clone() if p.grad is not None else None)
                         for name, p in self.parameters.items()}
                values = self._process(grads)  # type: ignore[arg-type]
                names = self._tool_fields()
                self.trajectory.set_last_fields(dict(zip(names, values)))
            else:
                process_gradients(self._leaves(), self.noise, self.clipping)
        return loss

    def _forward_backward_xy(self) -> tuple[float, float, float]:
        """The race's forward/backward: loss, grad x, grad y as floats."""
        assert self._surface_fn is not None
        self.optimizer.zero_grad()
        x, y = self._xy
        loss = self._surface_fn(x, y)
        if loss.requires_grad:
            loss.backward()
        return loss.item(), _grad_value(x), _grad_value(y)

    def _forward_backward(self) -> tuple[float, dict[str, Figure]]:
        if self._surface_fn is not None:
            loss, gx, gy = self._forward_backward_xy()
            return loss, {"x": gx, "y": gy}
        self._zero_grad()
        loss = self._loss_at(self.steps)
        if loss.requires_grad:
            loss.backward()
        if self._flat is not None:  # the .grad views, filled in place (a fresh dict: callers
            return loss.item(), dict(self._grads_now)  # replace entries with clean copies)
        grads: dict[str, Figure] = {}
        for name, leaf in self.parameters.items():
            if not leaf.requires_grad:
                grads[name] = None  # frozen: there is no gradient
            else:  # unused by the loss: zero, as for a scalar
                grads[name] = torch.zeros_like(leaf) if leaf.grad is None else leaf.grad
        return loss.item(), grads

    def _known_point(self) -> Point | None:
        return self.last_point if self.last_point else None

    def _evaluate_and_record(self) -> None:
        if self._surface_fn is not None:
            self._evaluate_and_record_surface()
        elif self._pending is not None and self._pending.applies():
            self._pending.evaluate_and_add()
        else:
            self._evaluate_and_record_problem()

    def _evaluate_and_record_surface(self) -> None:
        """The race's own checks and messages, in terms of the point (x, y)."""
        x, y = self._xy
        xv, yv = x.item(), y.item()
        if not (math.isfinite(xv) and math.isfinite(yv)):
            which, value = ("x", xv) if not math.isfinite(xv) else ("y", yv)
            self._diverge(f"{which} became {value}", (xv, yv))
            return
        wall = self._wall
        assert wall is not None
        if not (wall[0] <= xv <= wall[1] and wall[2] <= yv <= wall[3]):
            # past a wall it is diverged at once: the caller's bound, or hopelessly far
            if self.bound is not None:
                which, value = ("x", xv) if not abs(xv) <= self.bound else ("y", yv)
                reason = f"{which} = {value:g} left |{which}| <= {self.bound:g}"
            else:
                reason = (f"({xv:g}, {yv:g}) is more than {HOPELESS_K:g} times the region's "
                          "size outside it")
            self._diverge(reason, (xv, yv))
            return
        try:
            loss, gx, gy = self._forward_backward_xy()
        except Exception as e:
            self._diverge(f"evaluating the surface failed: {e}", (xv, yv))
            return
        if not math.isfinite(loss):
            self._diverge(f"loss became {loss} at ({xv:g}, {yv:g})", (xv, yv))
            return
        if math.isinf(gx) or math.isinf(gy) or (math.isnan(gx) and "x" not in self._frozen) \
                or (math.isnan(gy) and "y" not in self._frozen):
            self._diverge(f"gradient became ({gx}, {gy}) at ({xv:g}, {yv:g})", (xv, yv))
            return
        moved = None
        if len(self._trajectory):
            self.last_update = (xv - self.last_point[0], yv - self.last_point[1])
            moved = math.hypot(*self.last_update)
        self.last_point = (xv, yv)
        self._last_gxy = (gx, gy)
        if len(self._trajectory.fields) == self._base_fields:
            self._trajectory.append(self.steps, xv, yv, loss, gx, gy,
                                   float(self.optimizer.param_groups[0]["lr"]))
        else:
            self._trajectory.append(self.steps, xv, yv, loss, gx, gy,
                                   float(self.optimizer.param_groups[0]["lr"]),
                                   *self._extra_row({"x": gx, "y": gy}))
        self._last_loss = loss
        reason = self._tracker_now.observe_divergence(self.steps, xv, yv, loss)
        if reason is not None:
            self._diverge(reason, (xv, yv))
            return
        self._tracker_now.observe_convergence(self.steps, self._stationarity_xy(gx, gy), moved)
        self._update_status()

    def _stationarity_xy(self, gx: float, gy: float) -> float:
        """The race's `_stationarity`, on floats."""
        wd = self.spec.weight_decay_in_gradient(self.hyperparameters)
        if wd:
            gx, gy = gx + wd * self.last_point[0], gy + wd * self.last_point[1]
        return math.hypot(0.0 if math.isnan(gx) else gx, 0.0 if math.isnan(gy) else gy)

    def _evaluate_and_record_problem(self) -> None:
        """Any problem: the same checks over every named parameter.

        Every figure of the entry (the small parameters' elements and gradients, the norms of
        values, gradients and updates) comes from one `torch._foreach_norm` call (what
        clip_grad_norm_ uses) and one `torch.cat`, read back once (`tolist()` for the checks,
        the same memory as numpy for the row, placed by one index array, `_RecordLayout`):
        per-tensor `.item()` calls or per-figure Python would cost more than a small model's
        step. A non-finite norm is then checked element-wise (a huge finite tensor can overflow
        its norm).
        """
        values = self._values
        if self.bound is not None:
            for name, v in values.items():
                largest = v.abs().max().item()
                if largest > self.bound or largest != largest:
                    if largest == largest:
                        self._diverge(f"{name} reached {largest:g}, past the bound "
                                      f"{self.bound:g}", self._known_point())
                    else:
                        self._diverge(f"{name} became non-finite ({_first_bad(v)})",
                                      self._known_point())
                    return
        try:
            loss, grads = self._forward_backward()
        except Exception as e:
            if not self._values_finite(values):
                return
            self._diverge(f"evaluating the loss failed: {e}", self._known_point())
            return
        t = self.trajectory
        first = not len(t)
        current = self._value_list
        frozen = tuple(g is None for g in grads.values())
        layout = self._layouts.get((first, frozen))
        if layout is None:
            layout = self._layouts[first, frozen] = _RecordLayout(self, first, frozen)
        free_grads = [g for g in grads.values() if g is not None]
        norms = torch._foreach_norm(  # type: ignore[attr-defined]
            current + free_grads if first
            else current + free_grads + list(torch._foreach_sub(  # type: ignore[attr-defined]
                current, self._previous_list)))
        grad_parts = [layout.nan_grads[i] if grads[name] is None
                      else grads[name].reshape(-1)  # type: ignore[union-attr]
                      for i, name in layout.stored]
        figures_tensor = torch.cat([*self._stored_flat, *grad_parts, torch.stack(norms)])
        figures = figures_tensor.tolist()
        k, n_free, at = len(current), len(free_grads), layout.n_elements
        value_norms = figures[at:at + k]
        grad_norms = figures[at + k:at + k + n_free]
        if not all(math.isfinite(v) for v in value_norms) and not self._values_finite(values):
            return
        if not math.isfinite(loss):
            self._diverge(f"loss became {loss} at step {self.steps}", self._known_point())
            return
        for name, norm in zip(layout.free, grad_norms):
            if not math.isfinite(norm):
                g = grads[name]
                assert isinstance(g, Tensor)
                if not bool(torch.isfinite(g).all()):
                    self._diverge(f"the gradient of {name} became non-finite at step "
                                  f"{self.steps}", self._known_point())
                    return
        extra = self._extra_row(grads) if len(t.fields) > self._base_fields else []
        # the entry
        if self._all_scalar:
            point = self._point()
            if not first and point and self.last_point:
                self.last_update = tuple(  # type: ignore[assignment]
                    a - b for a, b in zip(point, self.last_point))
            self.last_point = point
        torch._foreach_copy_(self._previous_list, current)  # type: ignore[attr-defined]
        if first:
            self._update_norms = dict.fromkeys(values, math.nan)
            self._moved = None
        else:
            updates = figures[at + k + n_free:]
            self._update_norms = dict(zip(values, updates))
            self._moved = math.hypot(*updates)
        self._last_grads = grads
        lr = float(self.optimizer.param_groups[0]["lr"])
        row = np.concatenate((figures_tensor.numpy(), (self.steps, loss, lr, math.nan)))[
            layout.source]
        t.append_row(np.concatenate((row, extra)) if extra else row)
        self._last_loss = loss
        reason = self._tracker.observe_divergence(self.steps, math.nan, math.nan, loss)
        if reason is not None:
            self._diverge(reason, self._known_point())
            return
        if self.spec.weight_decay_in_gradient(self.hyperparameters):
            stationarity = self._stationarity_any(grads)
        else:  # the gradient norms are at hand
            stationarity = math.hypot(*(g for g in grad_norms if not math.isnan(g)))
        self._tracker.observe_convergence(self.steps, stationarity, self._moved)
        self._update_status()

    def _values_finite(self, values: dict[str, Tensor]) -> bool:
        """False (and the run diverged, naming the parameter) if any value is not finite."""
        for name, v in values.items():
            if not bool(torch.isfinite(v).all()):
                self._diverge(f"{name} became non-finite ({_first_bad(v)})", self._known_point())
                return False
        return True

    def _grad_fields(self, grads: dict[str, Figure]) -> dict[str, float]:
        """The trajectory fields that hold the gradients (after a freeze changed them)."""
        fields: dict[str, float] = {}
        t = self.trajectory
        for name in t.stored:
            for column, value in zip(t.stored[name],
                                     _grad_elements(grads[name], self.parameters[name])):
                fields["grad_" + column] = value
        for name in t.normed:
            fields[f"grad_norm:{name}"] = _figure_norm(grads[name], True)
        return fields

    def _current_grads(self) -> dict[str, Figure]:
        """The gradients of the newest entry, by name."""
        if self._surface_fn is not None:
            return {"x": self._last_gxy[0], "y": self._last_gxy[1]}
        return self._last_grads

    @property
    def last_update_norms(self) -> dict[str, float]:
        """|change| of each parameter in the last step (NaN before the first)."""
        self._flush()
        if self._surface_fn is not None:
            return {"x": abs(self.last_update[0]), "y": abs(self.last_update[1])}
        return dict(self._update_norms)

    def _stationarity(self, grads: dict[str, Figure]) -> float:
        if self._surface_fn is not None:
            gx, gy = grads["x"], grads["y"]
            assert isinstance(gx, float) and isinstance(gy, float)
            return self._stationarity_xy(gx, gy)
        return self._stationarity_any(grads)

    def _stationarity_any(self, grads: dict[str, Figure]) -> float:
        """|gradient| of what the optimizer minimises, over the free parameters: the loss's,
        plus weight_decay * w where torch adds that L2 term to the gradient (SGD, Adam, ...)."""
        wd = self.spec.weight_decay_in_gradient(self.hyperparameters)
        norms = []
        for name, g in grads.items():
            p = self.parameters[name]
            if isinstance(g, float):
                if wd:
                    g = g + wd * p.item()
                norms.append(0.0 if math.isnan(g) else abs(g))
            elif g is not None:
                norms.append((g + wd * p.detach() if wd else g).norm().item())
        return math.hypot(*norms)

    def _update_status(self) -> None:
        """The status from the tracker's evidence (a diverged run stays diverged)."""
        self._flush()
        if self._status is RunStatus.DIVERGED:
            return
        if self._frozen >= set(self.problem.parameter_names):
            self._tracker_now.clear_convergence()
            self._status, self._converged_at = RunStatus.FROZEN, None
            return
        self._converged_at = self._tracker_now.converged_at
        self._status = RunStatus.RUNNING if self._converged_at is None else RunStatus.CONVERGED

    def _diverge(self, reason: str, point: Point | None = None) -> None:
        self._flush()  # the entries before this one are recorded first
        self.status = RunStatus.DIVERGED
        self.converged_at = None
        self.diverged_at = self.steps
        self.divergence_reason = first_line(reason)  # torch's messages can run to pages
        self.diverged_point = point

    # --- reading --------------------------------------------------------------------------------

    @property
    def state_text(self) -> str:
        """The dynamic state in words, whether or not the run is enabled."""
        if self.status is RunStatus.DIVERGED:
            return f"diverged at step {self.diverged_at}: {self.divergence_reason}"
        if self.status is RunStatus.CONVERGED:
            return f"converged at step {self.converged_at}"
        if self.status is RunStatus.FROZEN:
            if self.is_surface:
                return "frozen: x and y are both frozen"
            return "frozen: every parameter is frozen"
        return "running"

    @property
    def display_status(self) -> str:
        """One word for a badge or a column: "disabled", or the status's own value."""
        return "disabled" if not self.enabled else self.status.value

    @property
    def status_text(self) -> str:
        """What the user reads: "disabled" for a disabled run, else the state in words."""
        return "disabled" if not self.enabled else self.state_text

    def optimizer_state(self) -> dict[str, dict[str, Any]]:
        """The optimizer's own per-parameter state (momentum_buffer, exp_avg, ...), as numbers,
        keyed by parameter name."""
        return {name: {key: _plain(value) for key, value in self.optimizer.state.get(p, {}).items()}
                for name, p in self.parameters.items()}

    def optimizer_state_norms(self) -> dict[str, dict[str, float]]:
        """The 2-norm of each tensor in the optimizer's state, per parameter name (for a model's
        per-tensor table, where the full state is too large to show)."""
        return {name: {key: value.detach().norm().item()
                       for key, value in self.optimizer.state.get(p, {}).items()
                       if isinstance(value, Tensor) and value.is_floating_point()}
                for name, p in self.parameters.items()}

    def config(self) -> dict[str, Any]:
        """What a session file stores about this run."""
        return {"optimizer": self.spec.name,
                "hyperparameters": {k: list(v) if isinstance(v, tuple) else v
                                    for k, v in self.hyperparameters.items()},
                "frozen": [n for n in self.problem.parameter_names if n in self._frozen],
                "label": self.label, "color": self.color, "enabled": self.enabled,
                **self.tool_config()}

    def tool_config(self) -> dict[str, Any]:
        """The scheduler, clipping and noise as a session stores them; only those the run has,
        so a run without them is written exactly as before."""
        return _tool_config(self.scheduler_setting, self.clipping, self.noise)

    def to_dict(self) -> dict[str, Any]:
        """The config, the status and the whole trajectory (for JSON output)."""
        return {**self.config(), "status": self.status.value, "status_text": self.status_text,
                "steps": self.steps,
                "converged_at": self.converged_at, "diverged_at": self.diverged_at,
                "divergence_reason": self.divergence_reason or None,
                "trajectory": self.trajectory.to_dict()}


class _RecordLayout:
    """Where each figure of a general problem's entry goes in its trajectory row.

    The figures tensor of an entry is [the stored parameters' elements, their gradients' (NaN
    for a frozen one), the norm of every value, of every free gradient, of every update (not
    for the first entry)], followed by (step, loss, lr, NaN); `source[j]` is the position of
    row field j in it. One layout per (first entry, which parameters are frozen).
    """

    def __init__(self, run: Run, first: bool, frozen: tuple[bool, ...]) -> None:
        t = run.trajectory
        names = list(run.parameters)
        index = {name: i for i, name in enumerate(names)}
        self.stored = [(index[name], name) for name in t.stored]
        self.free = [name for name, f in zip(names, frozen) if not f]
        self.nan_grads = {i: torch.full((run.parameters[name].numel(),), math.nan,
                                        dtype=run.parameters[name].dtype)
                          for (i, name) in self.stored if frozen[i]}
        half = sum(run.parameters[name].numel() for _, name in self.stored)
        self.n_elements = 2 * half
        k, f = len(names), len(self.free)
        size = self.n_elements + k + f + (0 if first else k)
        step, loss, lr, nan = size, size + 1, size + 2, size + 3
        free_at = {name: j for j, name in enumerate(self.free)}
        source = [step, *range(half), loss, *range(half, 2 * half), lr]
        for name in t.normed:
            i = index[name]
            source += [self.n_elements + i,
                       self.n_elements + k + free_at[name] if name in free_at else nan,
                       nan if first else self.n_elements + k + f + i]
        if len(source) != run._base_fields:
            raise AssertionError("the record's layout does not match the trajectory's fields")
        self.source = np.array(source, dtype=np.intp)


def _offsets(tensors: list[Tensor]) -> list[int]:
    """Where each tensor starts in the concatenation of their flattened elements."""
    starts, at = [], 0
    for t in tensors:
        starts.append(at)
        at += t.numel()
    return starts


class _PendingEntries:
    """A model-sized problem's entries, taken at every step and recorded in blocks.

    At each step the values and gradients are copied into one row of a block (one torch.cat)
    and checked finite (one sum; element-wise only when that is not finite), and the loss is
    checked, so a run diverges at exactly the step the record-at-once path finds (the rules that
    stop a run read only these: non-finite values, loss or gradients, and the loss rules). The
    norms of the values, gradients and updates, the trajectory rows and the convergence rules
    follow when the run's record is read (`Run._flush`), or when the block is full: one
    `torch.linalg.vector_norm(dim=1)` per parameter and kind over the block's rows, each row
    reduced as `Tensor.norm()` reduces that parameter (the same figures, bit for bit; checked
    against the record-at-once path in tests/core/test_record_blocks.py).

    Used when the record has no extra columns (noise, clipping, a cycled momentum), no `bound`,
    no L2 weight decay in the gradient (its stationarity needs each step's tensors) and not
    every parameter is a scalar; otherwise, and for the first entry, the run records at once.
    """

    ROWS = 256  # entries a block holds at most
    # and at most this many numbers (2 MB: a block larger than the caches costs more to write
    # and read back than it saves; measured on the deeper MLP preset, 4.4k numbers a row)
    MAX_ELEMENTS = 1 << 18
    MIN_ROWS = 8  # a problem so large that fewer rows fit records at once instead

    @classmethod
    def fits(cls, run: Run) -> bool:
        return run._surface_fn is None and cls.fits_tensors(run._value_list)

    @classmethod
    def fits_tensors(cls, tensors: list[Tensor]) -> bool:
        """Parameters like these record in blocks: not all scalars, and enough rows fit."""
        if not tensors or all(t.dim() == 0 for t in tensors):
            return False
        return cls.MAX_ELEMENTS // max(1, 2 * sum(t.numel() for t in tensors)) >= cls.MIN_ROWS

    def __init__(self, run: Run) -> None:
        self.run = run
        self.names = list(run.parameters)
        n_values = run._n_values
        self.rows = min(self.ROWS, self.MAX_ELEMENTS // max(1, 2 * n_values))
        self.block = torch.empty((self.rows, 2 * n_values), dtype=DTYPE)
        self.moves = torch.empty((self.rows, n_values), dtype=DTYPE)
        self.block_rows = self.block.unbind(0)  # a view of each row, made once
        self.n = 0
        self.steps: list[int] = []
        self.losses: list[float] = []
        self.lrs: list[float] = []
        self.frozen: tuple[bool, ...] = ()
        self.spans = [(a, a + v.numel()) for a, v in zip(_offsets(run._value_list),
                                                        run._value_list)]
        self._nan: dict[int, Tensor] = {}
        # where each base field of a row comes from in [the stored parameters' columns of the
        # block row (values, then gradients), norms (values, gradients, updates: k each), step,
        # loss, lr]
        t = run._trajectory
        k = len(self.names)
        index = {name: i for i, name in enumerate(self.names)}
        values = [self.spans[index[name]][0] + e for name in t.stored
                  for e in range(run.parameters[name].numel())]
        self.columns = np.array([*values, *(n_values + v for v in values)], dtype=np.intp)
        half = len(values)
        width = 2 * half
        source = [width + 3 * k, *range(half), width + 3 * k + 1, *range(half, width),
                  width + 3 * k + 2]
        for name in t.normed:
            i = index[name]
            source += [width + i, width + k + i, width + 2 * k + i]
        if len(source) != run._base_fields:
            raise AssertionError("the record's layout does not match the trajectory's fields")
        self.source = np.array(source, dtype=np.intp)

    def applies(self) -> bool:
        """This step is recorded in the block (see the class docstring)."""
        run = self.run
        return (len(run._trajectory) > 0 and run.bound is None
                and len(run._trajectory.fields) == run._base_fields
                and not run.spec.weight_decay_in_gradient(run.hyperparameters))

    def evaluate_and_add(self) -> None:
        """The step's forward/backward, its checks, and its row in the block."""
        run = self.run
        values = run._values
        try:
            loss, grads = run._forward_backward()
        except Exception as e:
            if not run._values_finite(values):
                return
            run._diverge(f"evaluating the loss failed: {e}", run._known_point())
            return
        flat = run._flat
        frozen = run._frozen_mask if flat is not None else tuple(g is None
                                                                 for g in grads.values())
        if self.n and frozen != self.frozen:
            self.flush()
        row = self.block_rows[self.n]
        if flat is not None:  # the values' and the gradients' buffers (frozen spans: 0.0)
            torch.cat(run._flat_pair, out=row)
        else:
            parts = [self._nan_of(i) if g is None else g.reshape(-1)  # type: ignore[union-attr]
                     for i, g in enumerate(grads.values())]
            torch.cat([*run._value_flat, *parts], out=row)
        total = row.sum().item()
        if not (math.isfinite(total) and math.isfinite(loss)):
            # as the record-at-once path decides: values, then the loss, then the gradients
            if not run._values_finite(values):
                return
            if not math.isfinite(loss):
                run._diverge(f"loss became {loss} at step {run.steps}", run._known_point())
                return
            for name, g in grads.items():
                if g is not None and not bool(torch.isfinite(g).all()):  # type: ignore[arg-type]
                    run._diverge(f"the gradient of {name} became non-finite at step "
                                 f"{run.steps}", run._known_point())
                    return
            # only the sum overflowed: every element is finite, the entry stands
        self.frozen = frozen
        self.steps.append(run.steps)
        self.losses.append(loss)
        self.lrs.append(float(run.optimizer.param_groups[0]["lr"]))
        self.n += 1
        run._last_grads = grads
        run._last_loss = loss
        reason = run._tracker_now.observe_divergence(run.steps, math.nan, math.nan, loss)
        if reason is not None:
            self.flush(observed=self.n - 1)
            run._diverge(reason, run._known_point())
            return
        if self.n == self.rows:
            self.flush()

    def _nan_of(self, i: int) -> Tensor:
        """NaN for each element of frozen parameter i (it has no gradient)."""
        nan = self._nan.get(i)
        if nan is None:
            a, b = self.spans[i]
            nan = self._nan[i] = torch.full((b - a,), math.nan, dtype=DTYPE)
        return nan

    def flush(self, observed: int | None = None) -> None:
        """Record the pending entries: their norms, rows and the convergence rules (for the
        first `observed` of them; the last one of a run that diverged there is not judged)."""
        n, run = self.n, self.run
        self.n = 0
        steps, losses, lrs = self.steps, self.losses, self.lrs
        self.steps, self.losses, self.lrs = [], [], []
        k, half = len(self.names), run._n_values
        block = self.block[:n]
        values, grads = block[:, :half], block[:, half:]
        if run._flat is not None:  # a frozen parameter has no gradient: NaN in the record
            for i in (i for i, f in enumerate(self.frozen) if f):
                a, b = self.spans[i]
                grads[:, a:b] = math.nan
        previous = run._previous_flat
        moves = self.moves[:n]
        torch.sub(values[0], previous, out=moves[0])
        if n > 1:
            torch.sub(values[1:], values[:-1], out=moves[1:])
        previous.copy_(values[-1])
        norms = torch.stack(
            [torch.linalg.vector_norm(part[:, a:b], dim=1)
             for part in (values, grads, moves) for a, b in self.spans], dim=1)
        norms_np = norms.numpy()
        tail = np.empty((n, 3))
        tail[:, 0], tail[:, 1], tail[:, 2] = steps, losses, lrs
        rows = np.concatenate((block.numpy()[:, self.columns], norms_np, tail),
                              axis=1)[:, self.source]
        run._trajectory.append_rows(rows)
        figures = norms_np[:, k:].tolist()
        observe = run._tracker_now.observe_convergence
        for j in range(n if observed is None else observed):
            grad_norms, updates = figures[j][:k], figures[j][k:]
            observe(steps[j], math.hypot(*(g for g in grad_norms if not math.isnan(g))),
                    math.hypot(*updates))
        # once for the block: the status is a function of the tracker's state, and what is
        # frozen does not change within a block (set_frozen records the block first)
        run._update_status()
        updates = figures[n - 1][k:]
        run._update_norms = dict(zip(self.names, updates))
        run._moved = math.hypot(*updates)


def _tool_config(scheduler: SchedulerSetting | None, clipping: GradientClipping | None,
                 noise: GradientNoise | None) -> dict[str, Any]:
    config: dict[str, Any] = {}
    if scheduler is not None:
        config["scheduler"] = scheduler_call_text(*scheduler)
    config.update(_clipping_payload(clipping))
    if noise is not None:
        config["noise"] = _noise_payload(noise)
    return config


def _group_settings(group: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in group.items() if k != "params"}


def _same_state(a: Any, b: Any) -> bool:
    """Two schedulers' state_dicts hold the same data (functions compared by name)."""
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_same_state(a[k], b[k]) for k in a)
    if isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)):
        return len(a) == len(b) and all(_same_state(x, y) for x, y in zip(a, b))
    if isinstance(a, Tensor) or isinstance(b, Tensor):
        return isinstance(a, Tensor) and isinstance(b, Tensor) and torch.equal(a, b)
    if callable(a) or callable(b):
        return getattr(a, "__name__", type(a)) == getattr(b, "__name__", type(b))
    return bool(a == b) or (a != a and b != b)


def _same_floats(a: Any, b: Any) -> bool:
    import numpy as np

    return bool(np.array_equal(a, b, equal_nan=True))


def _stored_columns(parameters: dict[str, Tensor]) -> dict[str, list[str]]:
    """The element columns of the parameters a trajectory stores in full, by name."""
    from core.trajectory import SMALL_NUMEL, element_names

    return {name: element_names(name, tuple(p.shape)) for name, p in parameters.items()
            if p.numel() <= SMALL_NUMEL}


def _grad_value(leaf: Tensor) -> float:
    if not leaf.requires_grad:
        return math.nan  # frozen: there is no gradient
    return 0.0 if leaf.grad is None else leaf.grad.item()  # unused by the formula: zero


def _grad_elements(grad: Figure, leaf: Tensor) -> list[float]:
    """A stored parameter's gradient as floats, NaN for each element of a frozen one."""
    if isinstance(grad, float):
        return [grad]
    if grad is None:
        return [math.nan] * leaf.numel()
    return grad.flatten().tolist()


def _figure_norm(grad: Figure, frozen_is_nan: bool = False) -> float:
    """|gradient| of one parameter; a frozen one's is 0 (or NaN, as the record shows it)."""
    if grad is None:
        return math.nan if frozen_is_nan else 0.0
    if isinstance(grad, float):
        return (math.nan if frozen_is_nan else 0.0) if math.isnan(grad) else abs(grad)
    return grad.norm().item()


def _grad_tensor(grad: Figure, value: Tensor) -> Tensor:
    """A gradient as a tensor of the value's shape, NaN where the parameter is frozen."""
    if grad is None:
        return torch.full_like(value, math.nan)
    if isinstance(grad, float):
        return torch.tensor(grad, dtype=value.dtype)
    return grad


def _first_bad(p: Tensor) -> str:
    bad = p.detach()[~torch.isfinite(p.detach())]
    return f"{bad.flatten()[0].item()}" if bad.numel() else "?"


def _plain(value: Any) -> Any:
    if isinstance(value, Tensor):
        return value.item() if value.numel() == 1 else value.detach().flatten().tolist()
    if isinstance(value, (list, tuple)):
        return f"{len(value)} stored vectors"
    return value

