"""What a run's status means, as rules on its recent state with tolerances scaled to the surface.

The status of a run is re-evaluated after every step and after every change (freeze, unfreeze,
hyperparameter): it is a function of the last few entries, never a flag set once.

Scale of a surface (`surface_scale`, computed once per Surface object and cached):
    span    the larger side of its region, max(x1 - x0, y1 - y0)
    spread  a robust range of its values: high - low, the 95th and 5th percentiles of the finite
            values of f on a GRID_POINTS x GRID_POINTS grid of the region (a few huge values in
            a corner, as on Goldstein-Price, do not set the scale); 1 (or |median f|) if f is flat
    top, bottom  the largest and smallest finite values of f on that grid

Converged (after step n): for the last CONVERGENCE_WINDOW steps or more, the point has stayed put
and the gradient has stayed small:
    |grad| <= GRAD_REL_TOL * spread / span        (over the free coordinates; grad f, plus
                                                  weight_decay * w where torch adds that L2
                                                  term to the gradient: the optimizer settles
                                                  where f + wd/2 |w|^2 is stationary)
    |p_j - p_(j-1)| <= MOVE_REL_TOL * span        (each step's movement)
`converged_at` is the step from which both have held (where it arrived). A change to the run
(freeze, unfreeze, a new hyperparameter) restarts the count: it has to stay put for another
window under the new settings. Any step that moves more, or a gradient that grows, clears it.
An optimizer that swings through a minimum with a small gradient still moves, so it is running;
L-BFGS, which stops by itself, has zero movement and a small gradient, so it is converged.

Frozen: every coordinate is frozen. The point cannot move; that is not convergence.

Diverged (final: the run stops stepping), any of
    - a non-finite point, loss or gradient, or an error from torch in the step or the forward;
    - hopelessly far: more than HOPELESS_K spans outside the rectangle below, at once, and the
      point is not recorded (SGD at lr=1 on Rosenbrock is at x ~ -4e9 after two steps; nothing
      comes back from there);
    - far away and not coming back: the point lies outside the rectangle that holds the region
      and the start, widened by REGION_K spans on every side, with a loss no lower than `high`
      (worse than 95% of the region), for DIVERGENCE_WINDOW steps in a row without reaching a
      lower loss (an optimizer flung onto a flat far-off plateau, where the gradient
      underflows to zero, stays there);
    - exploded: the loss stays above max(top, loss at the start) + LOSS_K * spread for
      DIVERGENCE_WINDOW steps in a row without getting lower;
    - fell away: the loss stays below min(bottom, loss at the start) - LOSS_K * spread for
      DIVERGENCE_WINDOW steps in a row (a surface unbounded below, such as a saddle or a plane).
"Without a lower loss" lets an optimizer that jumps far and comes back keep running: Rprop with
a large lr (its step is clamped to 50 whatever the lr) lands far out and works its way back.
A caller's explicit `Run(bound=...)` is a wall instead: |x| or |y| beyond it is diverged at once.
"""

from __future__ import annotations

import math
import weakref
from dataclasses import dataclass

import numpy as np

from core.surfaces import Point, Surface

CONVERGENCE_WINDOW = 10
GRAD_REL_TOL = 1e-4
MOVE_REL_TOL = 1e-6
REGION_K = 5.0
HOPELESS_K = 1e6
LOSS_K = 1e3
DIVERGENCE_WINDOW = 10
GRID_POINTS = 33


@dataclass(frozen=True)
class SurfaceScale:
    """The size of a surface's region and of its values, which every status tolerance scales by.

    span: the larger side of the region; spread: the 5th-95th percentile range of f on a coarse
    grid of the region, whose 95th percentile is `high`; top, bottom: the largest and smallest
    finite f on it.
    """

    x_range: tuple[float, float]
    y_range: tuple[float, float]
    span: float
    spread: float
    top: float
    bottom: float
    high: float

    @property
    def grad_tolerance(self) -> float:
        """|grad f| at or below this is small: GRAD_REL_TOL of the surface's typical slope."""
        return GRAD_REL_TOL * self.spread / self.span

    @property
    def move_tolerance(self) -> float:
        """A step that moves at most this far has stayed put."""
        return MOVE_REL_TOL * self.span

    def far_box(self, start: Point, k: float = REGION_K) -> tuple[float, float, float, float]:
        """(x_low, x_high, y_low, y_high): the region and the start, widened by k spans."""
        margin = k * self.span
        return (min(self.x_range[0], start[0]) - margin, max(self.x_range[1], start[0]) + margin,
                min(self.y_range[0], start[1]) - margin, max(self.y_range[1], start[1]) + margin)

    def explosion_threshold(self, start_loss: float) -> float:
        """A loss above this is far above anything in the region (and the start)."""
        return max(self.top, start_loss) + LOSS_K * self.spread

    def plunge_threshold(self, start_loss: float) -> float:
        """A loss below this is far below anything in the region (and the start)."""
        return min(self.bottom, start_loss) - LOSS_K * self.spread


@dataclass(frozen=True)
class RelativeScale:
    """The looser scale for a problem with no region (a model on data): the run's own start.

    loss_scale, grad_scale, value_scale: |loss|, |gradient| and |parameters| at the start.
    Converged: |grad| <= GRAD_REL_TOL * |grad at the start| (a relative drop of 10^4) while
    every step moves at most MOVE_REL_TOL * max(1, |parameters at the start|). Exploded: the
    loss stays above its start + LOSS_K * max(1, |loss at the start|); fell away: below its
    start - LOSS_K * max(1, |loss at the start|). There is no region, so no "far away" rule.
    """

    loss_scale: float
    grad_scale: float
    value_scale: float

    @property
    def grad_tolerance(self) -> float:
        return GRAD_REL_TOL * (self.grad_scale if self.grad_scale > 0 else 1.0)

    @property
    def move_tolerance(self) -> float:
        return MOVE_REL_TOL * max(1.0, self.value_scale)

    @property
    def high(self) -> float:
        return math.inf

    def explosion_threshold(self, start_loss: float) -> float:
        return start_loss + LOSS_K * max(1.0, abs(start_loss))

    def plunge_threshold(self, start_loss: float) -> float:
        return start_loss - LOSS_K * max(1.0, abs(start_loss))


# Keyed by id() with a weak reference: Surface is a frozen dataclass whose hash and == walk
# the whole formula, which is both slow and not what "this surface" means here.
_SCALES: dict[int, tuple[weakref.ref, SurfaceScale]] = {}


def surface_scale(surface: Surface) -> SurfaceScale:
    """The scale of `surface`, computed once per Surface object (a grid of GRID_POINTS^2)."""
    key = id(surface)
    cached = _SCALES.get(key)
    if cached is not None and cached[0]() is surface:
        return cached[1]
    scale = _measure(surface)
    _SCALES[key] = (weakref.ref(surface, lambda _ref, key=key: _SCALES.pop(key, None)), scale)
    return scale


def _measure(surface: Surface) -> SurfaceScale:
    x0, x1 = surface.x_range
    y0, y1 = surface.y_range
    span = max(x1 - x0, y1 - y0)
    try:
        _, _, z = surface.grid(nx=GRID_POINTS, ny=GRID_POINTS)
        values = z[np.isfinite(z)]
    except Exception:  # a formula that fails on a grid still gets a usable scale
        values = np.empty(0)
    if values.size:
        low, median, high = (float(v) for v in np.percentile(values, [5, 50, 95]))
        spread, top, bottom = high - low, float(values.max()), float(values.min())
    else:
        median = spread = top = bottom = high = 0.0
    if not (math.isfinite(spread) and spread > 0):
        spread = max(1.0, abs(median))
    return SurfaceScale((float(x0), float(x1)), (float(y0), float(y1)), float(span), spread, top,
                        bottom, high)


class StatusTracker:
    """The running evidence for a status: how long the run has stayed put, been far, exploded.

    Fed one entry at a time (`observe`), it keeps counters only, so a thinned trajectory does
    not change the answer. Tolerances are fixed at construction.
    """

    def __init__(self, grad_tolerance: float, move_tolerance: float, window: int,
                 far_box: tuple[float, float, float, float] | None,
                 explosion_threshold: float = math.inf, plunge_threshold: float = -math.inf,
                 far_loss_floor: float = -math.inf,
                 divergence_window: int = DIVERGENCE_WINDOW) -> None:
        self.grad_tolerance = grad_tolerance
        self.move_tolerance = move_tolerance
        self.window = window
        self.far_box = far_box
        self.explosion_threshold = explosion_threshold
        self.divergence_window = divergence_window
        self.settled_since: int | None = None  # first step of the current stay-put streak
        self.changed_at = 0  # the last step at which the settings changed
        self.far_loss_floor = far_loss_floor
        self.plunge_threshold = plunge_threshold
        self._far, self._high, self._low = _Streak(), _Streak(), _Streak()
        self.step = 0

    # --- convergence ----------------------------------------------------------------------------

    def observe_convergence(self, step: int, grad_norm: float, moved: float | None) -> None:
        """Entry `step` has gradient norm `grad_norm` and moved `moved` (None: the first entry)."""
        self.step = step
        if not grad_norm <= self.grad_tolerance:  # (NaN is not small)
            self.settled_since = None
        elif self.settled_since is None or (moved is not None and moved > self.move_tolerance):
            self.settled_since = step

    def regrade(self, grad_norm: float) -> None:
        """The gradient at the current entry changed (a freeze): judge that entry again."""
        if not grad_norm <= self.grad_tolerance:
            self.settled_since = None
        elif self.settled_since is None:
            self.settled_since = self.step

    def settings_changed(self) -> None:
        """From now on the run must stay put for another window before it counts as converged."""
        self.changed_at = self.step

    def clear_convergence(self) -> None:
        self.settled_since = None

    @property
    def converged_at(self) -> int | None:
        """The step it arrived at, once it has stayed there a whole window; else None."""
        if self.settled_since is None:
            return None
        if self.step - max(self.settled_since, self.changed_at) < self.window:
            return None
        return self.settled_since

    # --- divergence (the finite kinds; non-finite values are the Run's own check) ---------------

    def observe_divergence(self, step: int, x: float, y: float, loss: float) -> str | None:
        """The reason the run has diverged by entry `step`, or None."""
        window = self.divergence_window
        if self.far_box is not None:
            x_lo, x_hi, y_lo, y_hi = self.far_box
            outside = not (x_lo <= x <= x_hi and y_lo <= y <= y_hi)
            far = self._far.update(outside and loss >= self.far_loss_floor, step, loss)
            if far >= window:
                return (f"({x:g}, {y:g}) has stayed outside x in [{x_lo:g}, {x_hi:g}], "
                        f"y in [{y_lo:g}, {y_hi:g}] for {far} steps without a lower loss: "
                        "it is not coming back")
        high = self._high.update(loss > self.explosion_threshold, step, loss)
        if high >= window:
            return (f"the loss {loss:.3g} has stayed above {self.explosion_threshold:.3g} for "
                    f"{high} steps without getting lower: it exploded")
        low = self._low.update(loss < self.plunge_threshold, step, None)
        if low >= window:
            return (f"the loss {loss:.3g} has stayed below {self.plunge_threshold:.3g} for {low}"
                    " steps: the surface falls away without bound out there")
        return None


class _Streak:
    """How many entries in a row a condition has held; with `loss`, a lower loss restarts it."""

    def __init__(self) -> None:
        self.since: int | None = None
        self.best = math.inf

    def update(self, holds: bool, step: int, loss: float | None) -> int:
        if not holds:
            self.since = None
            return 0
        if self.since is None or (loss is not None and loss < self.best):
            self.since = step
            self.best = math.inf if loss is None else loss
        return step - self.since + 1
