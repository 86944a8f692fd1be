"""Statuses a user can believe: each case the issue names, and the rules behind them.

The rules and constants are in core/status.py; these tests take the tolerances from there (or
from the run), never a number that only fits one surface.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from core.optimizers import CATALOGUE
from core.run import Run, RunStatus
from core.status import (CONVERGENCE_WINDOW, DIVERGENCE_WINDOW, GRAD_REL_TOL, LOSS_K,
                         MOVE_REL_TOL, REGION_K, surface_scale)
from core.surfaces import BUILTIN_SURFACES, get_surface, surface_from_formula

SWING = "sin(x)*cos(y) + 0.1*(x**2 + y**2)"


def _statuses(run: Run, steps: int) -> list[tuple[RunStatus, int | None]]:
    out = []
    for _ in range(steps):
        run.step(1)
        out.append((run.status, run.converged_at))
    return out


# --- converged ----------------------------------------------------------------------------------


def test_adam_swinging_through_the_minimum_is_running_until_it_stays_put() -> None:
    # Before: "converged at step 151" (one step with |grad| < 1e-8), and it moved on with
    # |grad| ~ 1e-5. Now: running while it still moves, converged once it has stayed put.
    run = Run(surface_from_formula(SWING), "Adam", {"lr": 0.05}, start=(2.0, 2.0),
              frozen=("y",))
    history = _statuses(run, 1500)
    t = run.trajectory
    moves = np.abs(np.diff(t.x))
    assert history[150][0] is RunStatus.RUNNING  # after step 151
    assert np.abs(t.grad_x[151]) < 1e-8 and moves[151:171].max() > run.move_tolerance
    # never converged while any step in the last window moved more than the tolerance
    for k, (status, _) in enumerate(history, start=1):
        if moves[max(0, k - CONVERGENCE_WINDOW):k].max() > run.move_tolerance:
            assert status is not RunStatus.CONVERGED, k
    # and it does settle: converged, at the step from which it stayed put, and it stays so
    assert run.status is RunStatus.CONVERGED
    k = run.converged_at
    assert k is not None and k > 151
    assert moves[k:].max() <= run.move_tolerance and moves[k - 1] > run.move_tolerance
    assert np.abs(t.grad_x[k:]).max() <= run.grad_tolerance
    first = next(i for i, (s, _) in enumerate(history, start=1) if s is RunStatus.CONVERGED)
    assert first == k + CONVERGENCE_WINDOW
    assert all(s is RunStatus.CONVERGED for s, _ in history[first - 1:])


@pytest.mark.parametrize("name", ["rosenbrock", "booth", "himmelblau", "rotated_quadratic"])
@pytest.mark.parametrize("line_search", [None, "strong_wolfe"])
def test_lbfgs_that_stops_by_itself_is_converged(name: str, line_search) -> None:
    # L-BFGS halts once its own tolerances are met, with |grad| well above the old 1e-8
    run = Run(get_surface(name), "LBFGS", {"line_search_fn": line_search})
    run.step(40)
    assert run.status is RunStatus.CONVERGED, run.status_text
    t = run.trajectory
    k = run.converged_at
    assert np.all(t.x[k:] == t.x[k]) and np.all(t.y[k:] == t.y[k])  # it stopped there
    assert t.grad_norm[-1] <= run.grad_tolerance
    assert t.loss[-1] == pytest.approx(get_surface(name).min_value, abs=1e-6)


def test_lbfgs_on_rosenbrock_is_converged_with_a_gradient_the_old_rule_called_large() -> None:
    run = Run(get_surface("rosenbrock"), "LBFGS")
    run.step(40)
    assert run.status is RunStatus.CONVERGED
    assert run.trajectory.grad_norm[-1] > 1e-8  # never converged under |grad| < 1e-8


def test_converged_is_cleared_as_soon_as_the_run_moves_again() -> None:
    # SGD settles at Booth's minimum; weight decay then pulls it towards the origin: it moves,
    # so it is running at once, and converged again (somewhere else, later) once it stays put.
    run = Run(get_surface("booth"), "SGD", {"lr": 0.02})
    run.step(600)
    assert run.status is RunStatus.CONVERGED
    first = run.converged_at
    run.set_hyperparameter("weight_decay", 0.5)
    assert run.status is RunStatus.RUNNING and run.converged_at is None
    run.step(1)
    assert math.hypot(*run.last_update) > run.move_tolerance
    assert run.status is RunStatus.RUNNING
    run.step(600)
    assert run.status is RunStatus.CONVERGED and run.converged_at > first + 600 // 2


@pytest.mark.parametrize("name", ["SGD", "Adam"])
def test_weight_decay_settles_where_the_penalised_objective_is_stationary(name: str) -> None:
    # torch steps on grad f + wd * w: the run stops where that vanishes, not grad f
    run = Run(get_surface("himmelblau"), name, {"lr": 0.01, "weight_decay": 0.3})
    run.step(3000)
    assert run.status is RunStatus.CONVERGED, run.status_text
    t = run.trajectory
    assert t.grad_norm[-1] > 100 * run.grad_tolerance  # f itself is not stationary there
    assert math.hypot(t.grad_x[-1] + 0.3 * t.x[-1], t.grad_y[-1] + 0.3 * t.y[-1]) \
        <= run.grad_tolerance


def test_a_change_restarts_the_window_but_keeps_where_it_arrived() -> None:
    run = Run(get_surface("bowl"), "SGD", {"lr": 0.5})
    run.step(CONVERGENCE_WINDOW + 3)
    assert run.status is RunStatus.CONVERGED and run.converged_at == 1
    run.set_hyperparameter("lr", 0.5)  # not a change
    assert run.status is RunStatus.CONVERGED
    run.set_hyperparameter("lr", 0.1)
    assert run.status is RunStatus.RUNNING and run.converged_at is None
    run.step(CONVERGENCE_WINDOW - 1)
    assert run.status is RunStatus.RUNNING
    run.step(1)
    assert run.status is RunStatus.CONVERGED and run.converged_at == 1


# --- frozen ---------------------------------------------------------------------------------------


def test_both_coordinates_frozen_is_frozen_not_converged_at_step_0() -> None:
    run = Run(get_surface("rosenbrock"), "Adam", {"lr": 0.05}, frozen=("x", "y"))
    assert run.status is RunStatus.FROZEN and run.converged_at is None
    run.step(CONVERGENCE_WINDOW * 3)
    assert run.status is RunStatus.FROZEN and run.converged_at is None
    assert "frozen" in run.status_text and "converged" not in run.status_text
    run.set_frozen("x", False)  # unfreezing clears it: the gradient in x is large
    assert run.status is RunStatus.RUNNING
    run.step(5)
    assert run.status is RunStatus.RUNNING and run.x.item() != get_surface("rosenbrock").start[0]


def test_freezing_a_converged_run_says_frozen_and_unfreezing_must_earn_converged_again() -> None:
    run = Run(get_surface("bowl"), "SGD", {"lr": 0.5})
    run.step(CONVERGENCE_WINDOW + 2)
    assert run.status is RunStatus.CONVERGED
    run.set_frozen("x", True)
    assert run.status is RunStatus.RUNNING  # a new setting: it has to stay put again
    run.set_frozen("y", True)
    assert run.status is RunStatus.FROZEN and run.converged_at is None
    run.step(3)
    run.set_frozen("y", False)
    assert run.status is RunStatus.RUNNING
    run.step(CONVERGENCE_WINDOW)
    assert run.status is RunStatus.CONVERGED  # one free coordinate at its minimum


# --- diverged -------------------------------------------------------------------------------------


def test_flung_far_away_onto_a_flat_plateau_is_diverged_not_converged() -> None:
    # Before: "converged" (the gradient underflowed to 0 far outside the region).
    surface = surface_from_formula("-exp(-(x**2+y**2))")
    run = Run(surface, "SGD", {"lr": 1e4})
    history = _statuses(run, 50)
    assert all(s is not RunStatus.CONVERGED for s, _ in history)
    assert run.status is RunStatus.DIVERGED
    assert run.trajectory.grad_norm[-1] == 0.0  # what fooled the old rule
    x_lo, x_hi, _, _ = run.bound_box
    assert not x_lo <= run.trajectory.x[-1] <= x_hi
    assert run.diverged_at == run.steps == run.trajectory.step[-1] == DIVERGENCE_WINDOW
    assert "outside" in run.divergence_reason
    assert run.status_text.startswith(f"diverged at step {run.diverged_at}: ")
    assert run.diverged_point == run.last_point


def test_adadelta_whose_loss_explodes_is_diverged() -> None:
    # Before: x**2 + y**2 went from ~10 to 1e12 "running" for 388 steps inside |v| <= 1e6.
    run = Run(get_surface("bowl"), "Adadelta", {"lr": 1e8})
    run.step(400)
    assert run.status is RunStatus.DIVERGED and run.diverged_at < 50
    # the loss rule on its own (a wall at 1e6 keeps the region rule out of it)
    walled = Run(get_surface("bowl"), "Adadelta", {"lr": 1e8}, bound=1e6)
    walled.step(400)
    assert walled.status is RunStatus.DIVERGED and walled.diverged_at < 50
    assert "exploded" in walled.divergence_reason
    assert np.all(np.abs(walled.trajectory.x) <= 1e6)
    scale = surface_scale(get_surface("bowl"))
    threshold = scale.explosion_threshold(float(walled.trajectory.loss[0]))
    assert np.all(walled.trajectory.loss[-DIVERGENCE_WINDOW:] > threshold)


# (the saddle has no minimum: leaving it is right)
@pytest.mark.parametrize("surface", [s for s in BUILTIN_SURFACES if s.name != "saddle"],
                         ids=lambda s: s.name)
def test_rprop_from_its_defaults_is_never_diverged(surface) -> None:
    run = Run(surface, "Rprop")
    run.step(1500)
    assert run.status is not RunStatus.DIVERGED, run.status_text


@pytest.mark.parametrize("lr", [100.0, 1e4])
def test_rprop_flung_far_by_a_big_lr_that_comes_back_is_not_diverged(lr: float) -> None:
    # Rprop's first step is min(lr, 50): it lands far outside Rosenbrock's region, in the
    # parabolic valley, and works its way back with a falling loss. Not diverged.
    run = Run(get_surface("rosenbrock"), "Rprop", {"lr": lr})
    run.step(400)
    assert run.status is not RunStatus.DIVERGED, run.status_text
    t = run.trajectory
    _, _, _, y_hi = run.bound_box
    assert t.y.max() > y_hi  # it was far out
    assert t.loss[-1] < t.loss[10]
    # On the bowl it comes straight back and converges.
    bowl = Run(get_surface("bowl"), "Rprop", {"lr": lr})
    bowl.step(400)
    assert abs(bowl.trajectory.x).max() > bowl.bound_box[1]
    assert bowl.status is RunStatus.CONVERGED


def test_hopelessly_far_is_diverged_at_once_and_not_recorded() -> None:
    # SGD at lr=1 on Rosenbrock is at x ~ -4e9 after two steps: no window to wait for
    run = Run(get_surface("rosenbrock"), "SGD", {"lr": 1.0})
    run.step(20)
    assert run.status is RunStatus.DIVERGED and run.diverged_at == 2 == run.steps
    assert run.trajectory.step[-1] == 1
    x_lo, x_hi, _, _ = run.wall_box
    assert not x_lo <= run.diverged_point[0] <= x_hi
    assert x_hi - x_lo > 1e6 * surface_scale(run.surface).span
    assert "times the region's size" in run.divergence_reason


def test_a_minimum_outside_the_region_is_not_divergence() -> None:
    # The region is only where the picture is: a run that goes far to a real minimum has a
    # loss lower than the region's and is converged there, not "diverged".
    surface = surface_from_formula("(x - 100)**2 + (y - 100)**2", start=(0.0, 0.0))
    run = Run(surface, "Adam", {"lr": 5.0})
    run.step(2000)
    assert run.status is RunStatus.CONVERGED, run.status_text
    assert run.last_point == pytest.approx((100.0, 100.0), abs=1e-3)
    assert not run.bound_box[0] <= 100.0 <= run.bound_box[1]


def test_a_start_far_outside_the_region_is_inside_the_bound() -> None:
    run = Run(get_surface("bowl"), "SGD", {"lr": 0.01}, start=(500.0, -500.0))
    x_lo, x_hi, y_lo, y_hi = run.bound_box
    assert x_lo < 500 < x_hi and y_lo < -500 < y_hi
    run.step(50)
    assert run.status is RunStatus.RUNNING


def test_diverged_at_has_one_meaning_for_every_kind_of_divergence() -> None:
    cases = [
        Run(get_surface("rosenbrock"), "SGD", {"lr": 1.0}),                       # overflow
        Run(surface_from_formula("log(x) + y**2", start=(0.5, 0.5)), "SGD", {"lr": 1.0}),
        Run(surface_from_formula("-exp(-(x**2+y**2))"), "SGD", {"lr": 1e4}),         # far
        Run(get_surface("bowl"), "Adadelta", {"lr": 1e8}, bound=1e6),                # loss
        Run(surface_from_formula("-x - y", start=(0.0, 0.0)), "SGD", {"lr": 1e3}),  # falls
    ]
    for run in cases:
        run.step(500)
        assert run.status is RunStatus.DIVERGED
        assert run.diverged_at == run.steps
        assert run.trajectory.step[-1] in (run.diverged_at, run.diverged_at - 1)
        assert f"step {run.diverged_at}:" in run.status_text
        assert run.to_dict()["diverged_at"] == run.diverged_at == run.to_dict()["steps"]


# --- disabled -------------------------------------------------------------------------------------


def test_a_disabled_run_says_disabled_and_keeps_its_state() -> None:
    run = Run(get_surface("bowl"), "SGD", {"lr": 0.5}, enabled=False)
    assert run.status_text == "disabled" and run.display_status == "disabled"
    assert run.status is RunStatus.RUNNING and run.state_text == "running"
    run.enabled = True
    assert run.status_text == "running" and run.display_status == "running"


# --- the scale ------------------------------------------------------------------------------------


def test_surface_scale_is_computed_once_per_surface_and_follows_the_region() -> None:
    bowl = get_surface("bowl")
    assert surface_scale(bowl) is surface_scale(bowl)
    scale = surface_scale(bowl)
    assert scale.span == 6.0
    _, _, z = bowl.grid(nx=33, ny=33)
    assert scale.spread == pytest.approx(np.percentile(z, 95) - np.percentile(z, 5))
    assert scale.top == z.max() and scale.bottom == z.min()
    assert scale.grad_tolerance == GRAD_REL_TOL * scale.spread / scale.span
    assert scale.move_tolerance == MOVE_REL_TOL * scale.span
    assert scale.far_box((0.0, 0.0)) == (-3 - REGION_K * 6, 3 + REGION_K * 6,
                                         -3 - REGION_K * 6, 3 + REGION_K * 6)
    assert scale.explosion_threshold(1.0) == scale.top + LOSS_K * scale.spread


def test_tolerances_scale_with_the_values_and_the_region() -> None:
    small = surface_from_formula("x**2 + y**2")
    tall = surface_from_formula("1000*(x**2 + y**2)")
    wide = surface_from_formula("x**2 + y**2", x_range=(-30, 30), y_range=(-30, 30))
    s, t, w = surface_scale(small), surface_scale(tall), surface_scale(wide)
    assert t.grad_tolerance == pytest.approx(1000 * s.grad_tolerance)
    assert t.move_tolerance == s.move_tolerance
    assert w.move_tolerance == pytest.approx(10 * s.move_tolerance)
    # f grows as r**2: values 100 times larger over a region 10 times wider
    assert w.grad_tolerance == pytest.approx(10 * s.grad_tolerance)
    run = Run(tall, "SGD")
    assert run.grad_tolerance == t.grad_tolerance and run.move_tolerance == t.move_tolerance


def test_a_flat_surface_still_has_a_usable_scale() -> None:
    scale = surface_scale(surface_from_formula("0*x + 0*y + 5"))
    assert scale.spread > 0 and math.isfinite(scale.grad_tolerance)
    run = Run(surface_from_formula("0*x + 0*y + 5"), "SGD")
    run.step(CONVERGENCE_WINDOW)
    assert run.status is RunStatus.CONVERGED and run.converged_at == 0


@pytest.mark.parametrize("name", list(CATALOGUE))
def test_the_status_is_the_same_however_the_steps_are_batched(name: str) -> None:
    one, batched = Run(get_surface("himmelblau"), name), Run(get_surface("himmelblau"), name)
    seen = [(s.value, c) for s, c in _statuses(one, 60)]
    batched.step(60)
    assert (batched.status.value, batched.converged_at) == seen[-1]
