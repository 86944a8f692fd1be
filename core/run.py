"""A Run: one torch.optim optimizer on one surface from one start point.

x and y are separate float64 leaf tensors, so either can be frozen (requires_grad=False): a frozen
leaf gets no gradient, torch's optimizer skips it, and it stays exactly where it is.

One step, as the engine does it (the forward/backward at the new point is done right after the
update, so the trajectory entry for a point always carries the loss and gradient there):

    optimizer.step()              # torch's own update, from the gradient already in x.grad, y.grad
    optimizer.zero_grad()
    loss = surface(x, y)          # forward: autograd records the DAG
    loss.backward()               # backward: fills x.grad, y.grad
    record(x, y, loss, x.grad, y.grad, lr)

The status is re-evaluated after every step and every change, from the recent state, by the rules
in core/status.py (tolerances scaled to the surface): running, converged (stayed put with a small
gradient for a window of steps), frozen (every coordinate frozen) or diverged (final).

`diverged_at` has one meaning: the number of optimizer steps taken when the run was found
diverged, counting the step that failed; it equals `run.steps` from then on. The trajectory keeps
every point it can draw: it ends at step `diverged_at` when the last point was finite but too
far away, or its loss too high or too low, for too long; and at `diverged_at - 1` when step
`diverged_at` raised, gave a non-finite point, loss or gradient, or crossed a wall (the caller's
`bound`, or HOPELESS_K region sizes out). `diverged_point` is that last point when it is known.
"""

from __future__ import annotations

import math
from enum import StrEnum
from typing import Any

import torch
from torch import Tensor

from core.errors import OptimizerError
from core.optimizers import OptimizerSpec, format_optimizer_call, get_spec
from core.status import CONVERGENCE_WINDOW, HOPELESS_K, StatusTracker, surface_scale
from core.surfaces import DTYPE, Point, Surface
from core.trajectory import Trajectory

COORDINATES = ("x", "y")


class RunStatus(StrEnum):
    """The state of a run, re-evaluated after every step and change (see core/status.py)."""

    RUNNING = "running"
    CONVERGED = "converged"
    FROZEN = "frozen"  # every coordinate is frozen: it cannot move, which is not convergence
    DIVERGED = "diverged"


class Run:
    """One optimizer on one surface. `step()` never raises: a blow-up marks the run diverged.

    grad_tolerance / move_tolerance: what counts as a small gradient and a step that stays put;
    None scales them to the surface (core/status.py). window: how many steps the run must stay
    put to be converged. bound: None judges "too far" by the surface's region (REGION_K spans
    beyond it, for DIVERGENCE_WINDOW steps without a lower loss, see core/status.py); a number
    is a wall instead: |x| or |y| beyond it is diverged at once.
    """

    def __init__(self, surface: Surface, optimizer: str = "SGD",
                 hyperparameters: dict[str, Any] | None = None, start: Point | None = None,
                 frozen: tuple[str, ...] | frozenset[str] | list[str] = (),
                 label: str | None = None, color: str | None = None, enabled: bool = True,
                 grad_tolerance: float | None = None, bound: float | None = None,
                 capacity: int = 200_000, move_tolerance: float | None = None,
                 window: int = CONVERGENCE_WINDOW) -> None:
        self.spec: OptimizerSpec = get_spec(optimizer)
        self.hyperparameters: dict[str, Any] = self.spec.validate(hyperparameters)
        for c in frozen:
            if c not in COORDINATES:
                raise OptimizerError(f"cannot freeze {c!r}: the parameters are x and y")
        self.surface = surface
        self.start: Point = start if start is not None else surface.start
        self.label = label
        self.color = color
        self.enabled = enabled
        self._grad_tolerance = grad_tolerance
        self._move_tolerance = move_tolerance
        self.window = window
        self.bound = bound
        self.capacity = capacity
        self._frozen = set(frozen)
        self.reset()

    # --- set-up ---------------------------------------------------------------------------------

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

    @property
    def grad_tolerance(self) -> float:
        """|grad f| at or below this is small (scaled to the surface unless given)."""
        if self._grad_tolerance is not None:
            return self._grad_tolerance
        return surface_scale(self.surface).grad_tolerance

    @property
    def move_tolerance(self) -> float:
        """A step that moves at most this far has stayed put (scaled to the surface if None)."""
        if self._move_tolerance is not None:
            return self._move_tolerance
        return surface_scale(self.surface).move_tolerance

    @property
    def bound_box(self) -> tuple[float, float, float, float]:
        """(x_low, x_high, y_low, y_high): the region's far box, or the wall at `bound`."""
        if self.bound is not None:
            return (-self.bound, self.bound, -self.bound, self.bound)
        return surface_scale(self.surface).far_box(self.start)

    @property
    def wall_box(self) -> tuple[float, float, float, float]:
        """Past this the run is diverged at once: the caller's `bound`, or HOPELESS_K spans."""
        if self.bound is not None:
            return self.bound_box
        return surface_scale(self.surface).far_box(self.start, HOPELESS_K)

    @property
    def convergence_rule(self) -> str:
        """The rule in words, with this run's numbers (for a tooltip)."""
        return (f"converged: |grad| <= {self.grad_tolerance:.3g} and every step moves <= "
                f"{self.move_tolerance:.3g}, for {self.window} steps in a row")

    def reset(self, start: Point | None = None) -> None:
        """Back to the start (a new one if given) with a fresh optimizer and an empty record."""
        if start is not None:
            self.start = (float(start[0]), float(start[1]))
        self.x = torch.tensor(float(self.start[0]), dtype=DTYPE,
                              requires_grad="x" not in self._frozen)
        self.y = torch.tensor(float(self.start[1]), dtype=DTYPE,
                              requires_grad="y" not in self._frozen)
        self.optimizer: torch.optim.Optimizer = self.spec.cls([self.x, self.y],
                                                              **self.hyperparameters)
        self.trajectory = Trajectory(self.capacity)
        self.steps = 0
        self.status = RunStatus.RUNNING
        self.converged_at: int | None = None
        self.diverged_at: int | None = None
        self.divergence_reason = ""
        self.diverged_point: Point | None = None  # where it left, when that point is known
        self.last_point: Point = (float(self.start[0]), float(self.start[1]))
        self.last_update: Point = (math.nan, math.nan)
        scale = surface_scale(self.surface)
        self._wall = self.wall_box  # fixed until the next reset (surface and start)
        self._tracker = StatusTracker(self.grad_tolerance, self.move_tolerance, self.window,
                                      self.bound_box if self.bound is None else None,
                                      far_loss_floor=scale.high)
        self._evaluate_and_record()
        if len(self.trajectory):  # the loss rules allow for a start above or below the region
            start_loss = float(self.trajectory.loss[0])
            self._tracker.explosion_threshold = scale.explosion_threshold(start_loss)
            self._tracker.plunge_threshold = scale.plunge_threshold(start_loss)

    def set_surface(self, surface: Surface, start: Point | None = None) -> None:
        self.surface = surface
        self.reset(start if start is not None else self.start)

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
        self.hyperparameters = merged
        if rebuild:
            self.optimizer = self.spec.cls([self.x, self.y], **merged)
        # Settings torch derives from others at construction (LBFGS: max_eval = max_iter * 5 // 4)
        # must follow them, as in a fresh optimizer: take the group defaults torch itself builds.
        derived = self.spec.cls([torch.zeros((), dtype=DTYPE, requires_grad=True)],
                                **merged).defaults
        for group in self.optimizer.param_groups:
            group.update(derived)
        if len(self.trajectory):
            self.trajectory.set_last(lr=float(merged["lr"]))
        if changed:
            if len(self.trajectory):  # weight decay changes the gradient the optimizer follows
                last = self.trajectory.last()
                self._tracker.regrade(self._stationarity(last["grad_x"], last["grad_y"]))
            self._tracker.settings_changed()
            self._update_status()

    def set_frozen(self, coordinate: str, frozen: bool) -> None:
        """Freeze (requires_grad=False) or unfreeze x or y, from the next step on.

        The status follows at once: "frozen" when both are frozen; after an unfreeze the run
        has to stay put for a whole window again before it is converged.
        """
        if coordinate not in COORDINATES:
            raise OptimizerError(f"cannot freeze {coordinate!r}: the parameters are x and y")
        if frozen == (coordinate in self._frozen):
            return
        (self._frozen.add if frozen else self._frozen.discard)(coordinate)
        leaf = self.x if coordinate == "x" else self.y
        leaf.requires_grad_(not frozen)
        leaf.grad = None
        if self.spec.needs_closure:
            # L-BFGS's curvature history mixes both coordinates: kept, it would still move a
            # frozen one. It describes the old parameter space, so start it afresh.
            self.optimizer.state.clear()
        if self.status is RunStatus.DIVERGED:
            return
        if len(self.trajectory):
            # The gradient at the current point changes with what is frozen: take it again.
            try:
                _, gx, gy = self._forward_backward()
            except Exception as e:  # it worked a moment ago; if not now, the run cannot go on
                self._diverge(f"evaluating the surface failed: {e}", self.last_point)
                return
            self.trajectory.set_last(grad_x=gx, grad_y=gy)
            self._tracker.regrade(self._stationarity(gx, gy))
        self._tracker.settings_changed()
        self._update_status()

    # --- stepping -------------------------------------------------------------------------------

    def step(self, n: int = 1) -> int:
        """Take up to n optimizer steps; return how many were taken, counting one that diverged.

        `steps` counts every step taken, so after a divergence `steps == diverged_at`.
        """
        done = 0
        while done < n and self.status is not RunStatus.DIVERGED:
            try:
                if self.spec.needs_closure:
                    self.optimizer.step(self._closure)
                else:
                    self.optimizer.step()
            except Exception as e:  # a torch error mid-step is a failed run, not a crash
                self.steps += 1
                done += 1
                self._diverge(f"optimizer.step() failed: {e}")
                break
            self.steps += 1
            done += 1
            self._evaluate_and_record()
        return done

    def _closure(self) -> Tensor:
        self.optimizer.zero_grad()
        loss = self.surface(self.x, self.y)
        if loss.requires_grad:
            loss.backward()
        return loss

    def _forward_backward(self) -> tuple[float, float, float]:
        self.optimizer.zero_grad()
        loss = self.surface(self.x, self.y)
        if loss.requires_grad:
            loss.backward()
        gx = _grad_value(self.x)
        gy = _grad_value(self.y)
        return loss.item(), gx, gy

    def _evaluate_and_record(self) -> None:
        xv, yv = self.x.item(), self.y.item()
        if not (math.isfinite(xv) and math.isfinite(yv)):
            which, value = ("x", xv) if not math.isfinite(xv) else ("y", yv)
            self._diverge(f"{which} became {value}", (xv, yv))
            return
        wall = self._wall
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
            loss, gx, gy = self._forward_backward()
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
        if len(self.trajectory):
            self.last_update = (xv - self.last_point[0], yv - self.last_point[1])
            moved = math.hypot(*self.last_update)
        self.last_point = (xv, yv)
        self.trajectory.append(self.steps, xv, yv, loss, gx, gy,
                               float(self.optimizer.param_groups[0]["lr"]))
        reason = self._tracker.observe_divergence(self.steps, xv, yv, loss)
        if reason is not None:
            self._diverge(reason, (xv, yv))
            return
        self._tracker.observe_convergence(self.steps, self._stationarity(gx, gy), moved)
        self._update_status()

    def _stationarity(self, gx: float, gy: float) -> float:
        """|gradient| of what the optimizer minimises, over the free coordinates: f's, plus
        weight_decay * w where torch adds that L2 term to the gradient (SGD, Adam, ...)."""
        wd = self.spec.weight_decay_in_gradient(self.hyperparameters)
        if wd:
            gx, gy = gx + wd * self.last_point[0], gy + wd * self.last_point[1]
        return _norm(gx, gy)

    def _update_status(self) -> None:
        """The status from the tracker's evidence (a diverged run stays diverged)."""
        if self.status is RunStatus.DIVERGED:
            return
        if self._frozen >= set(COORDINATES):
            self._tracker.clear_convergence()
            self.status, self.converged_at = RunStatus.FROZEN, None
            return
        self.converged_at = self._tracker.converged_at
        self.status = RunStatus.RUNNING if self.converged_at is None else RunStatus.CONVERGED

    def _diverge(self, reason: str, point: Point | None = None) -> None:
        self.status = RunStatus.DIVERGED
        self.converged_at = None
        self.diverged_at = self.steps
        self.divergence_reason = reason
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
            return "frozen: x and y are both frozen"
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
        """The optimizer's own per-parameter state (momentum_buffer, exp_avg, ...), as numbers."""
        return {name: {key: _plain(value) for key, value in self.optimizer.state.get(p, {}).items()}
                for name, p in (("x", self.x), ("y", self.y))}

    def config(self) -> dict[str, Any]:
        """What a session file stores about this run."""
        return {"optimizer": self.spec.name,
                "hyperparameters": {k: list(v) if isinstance(v, tuple) else v
                                    for k, v in self.hyperparameters.items()},
                "frozen": sorted(self._frozen), "label": self.label, "color": self.color,
                "enabled": self.enabled}

    def to_dict(self) -> dict[str, Any]:
        """The config, the status and the whole trajectory (for JSON output)."""
        return {**self.config(), "status": self.status.value, "status_text": self.status_text,
                "steps": self.steps,
                "converged_at": self.converged_at, "diverged_at": self.diverged_at,
                "divergence_reason": self.divergence_reason or None,
                "trajectory": self.trajectory.to_dict()}


def _grad_value(leaf: Tensor) -> float:
    if not leaf.requires_grad:
        return math.nan  # frozen: there is no gradient
    return 0.0 if leaf.grad is None else leaf.grad.item()  # unused by the formula: zero


def _plain(value: Any) -> Any:
    if isinstance(value, Tensor):
        return value.item() if value.numel() == 1 else value.detach().flatten().tolist()
    if isinstance(value, (list, tuple)):
        return f"{len(value)} stored vectors"
    return value


def _norm(gx: float, gy: float) -> float:
    """|grad f| over the free coordinates (a frozen one's NaN counts as no gradient)."""
    return math.hypot(0.0 if math.isnan(gx) else gx, 0.0 if math.isnan(gy) else gy)
