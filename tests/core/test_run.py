"""A Run steps torch's own optimizers: its trajectory is exactly what a plain torch loop produces.

The reference below is the loop every PyTorch tutorial writes, with fresh float64 leaves:

    opt.zero_grad(); loss = f(x, y); loss.backward(); record(...); opt.step()

(with a closure for LBFGS). Events in the middle of a run (a new learning rate, freezing or
unfreezing a coordinate) are applied in the plain loop the way a PyTorch user would: param_groups,
requires_grad_, and for LBFGS a cleared state, as the engine documents. Where torch's optimizer
does not follow a new lr from its param_groups (Rprop, ASGD: `live=False` in the catalogue), the
user, and the engine, build a fresh optimizer at the current point with the new lr.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from core.errors import OptimizerError
from core.optimizers import CATALOGUE, get_spec
from core.run import Run, RunStatus
from core.status import CONVERGENCE_WINDOW, surface_scale
from core.surfaces import Surface, get_surface, surface_from_formula
from core.trajectory import FIELDS, Trajectory

F64 = torch.float64
STEPS = 25

# One or more settings per catalogue optimizer, chosen to exercise their options and to stay
# finite on the surfaces below for STEPS steps.
SETTINGS: list[tuple[str, dict]] = [
    ("SGD", {"lr": 1e-3}),
    ("SGD", {"lr": 1e-3, "momentum": 0.9, "nesterov": True}),
    ("SGD", {"lr": 1e-3, "momentum": 0.5, "dampening": 0.1, "weight_decay": 0.01}),
    ("Adam", {"lr": 0.05}),
    ("Adam", {"lr": 0.05, "betas": (0.8, 0.99), "amsgrad": True, "weight_decay": 0.01}),
    ("AdamW", {"lr": 0.05}),
    ("RMSprop", {"lr": 0.01}),
    ("RMSprop", {"lr": 0.01, "momentum": 0.5, "centered": True, "alpha": 0.9}),
    ("Adagrad", {"lr": 0.1, "lr_decay": 0.01, "initial_accumulator_value": 0.1}),
    ("Adadelta", {"lr": 1.0}),
    ("Adamax", {"lr": 0.02}),
    ("NAdam", {"lr": 0.02}),
    ("NAdam", {"lr": 0.02, "decoupled_weight_decay": True, "weight_decay": 0.01}),
    ("RAdam", {"lr": 1e-3}),
    ("Rprop", {"lr": 0.01}),
    ("Rprop", {"lr": 0.01, "etas": (0.4, 1.3), "step_sizes": (1e-4, 1.0)}),
    ("ASGD", {"lr": 1e-3, "t0": 5.0}),
    ("LBFGS", {"lr": 1.0}),
    ("LBFGS", {"lr": 1.0, "line_search_fn": "strong_wolfe"}),
    ("LBFGS", {"lr": 0.1, "max_iter": 4, "history_size": 3}),
]
IDS = [f"{n}{i}" for i, (n, _) in enumerate(SETTINGS)]
SURFACES = ["rosenbrock", "booth", "himmelblau", "six_hump_camel"]


def test_settings_cover_the_whole_catalogue() -> None:
    assert {n for n, _ in SETTINGS} == set(CATALOGUE)


def plain_torch_loop(surface: Surface, name: str, hps: dict, steps: int,
                     frozen: tuple[str, ...] = (), events: dict[int, list] | None = None,
                     start: tuple[float, float] | None = None) -> dict[str, np.ndarray]:
    """The reference: a textbook torch loop, recording point, loss and gradient before each step.

    events[k] is a list of ("lr", value) / ("freeze", "x") / ("unfreeze", "x"), applied after k
    steps, before the gradient at that point is taken.
    """
    events = events or {}
    sx, sy = start or surface.start
    x = torch.tensor(sx, dtype=F64, requires_grad="x" not in frozen)
    y = torch.tensor(sy, dtype=F64, requires_grad="y" not in frozen)
    cls = getattr(torch.optim, name)
    current = dict(hps)
    opt = cls([x, y], **current)
    lr_is_live = get_spec(name).hyperparameter("lr").live

    def closure() -> torch.Tensor:
        opt.zero_grad()
        loss = surface(x, y)
        if loss.requires_grad:
            loss.backward()
        return loss

    rows = []
    for k in range(steps + 1):
        for kind, value in events.get(k, []):
            if kind == "lr":
                current["lr"] = value
                if lr_is_live:
                    for g in opt.param_groups:
                        g["lr"] = value
                else:  # torch would not follow it: a fresh optimizer with the new lr
                    opt = cls([x, y], **current)
            else:
                leaf = x if value == "x" else y
                leaf.requires_grad_(kind == "unfreeze")
                leaf.grad = None
                if name == "LBFGS":
                    opt.state.clear()
        opt.zero_grad()
        loss = surface(x, y)
        if loss.requires_grad:
            loss.backward()
        gx = x.grad.item() if x.requires_grad else math.nan
        gy = y.grad.item() if y.requires_grad else math.nan
        rows.append((k, x.item(), y.item(), loss.item(), gx, gy, opt.param_groups[0]["lr"]))
        if k < steps:
            if name == "LBFGS":
                opt.step(closure)
            else:
                opt.step()
    table = np.array(rows, dtype=np.float64).T
    return dict(zip(FIELDS, table, strict=True))


def assert_same_trajectory(run: Run, ref: dict[str, np.ndarray]) -> None:
    assert run.status is not RunStatus.DIVERGED, run.status_text
    t = run.trajectory
    assert len(t) == len(ref["step"])
    for f in FIELDS:
        # bit-exact: the engine runs the very same torch operations
        np.testing.assert_array_equal(t.column(f), ref[f], err_msg=f)
    assert np.all(np.isfinite(ref["loss"]))


@pytest.mark.parametrize("surface_name", SURFACES)
@pytest.mark.parametrize("name, hps", SETTINGS, ids=IDS)
def test_engine_equals_plain_torch_loop(name: str, hps: dict, surface_name: str) -> None:
    surface = get_surface(surface_name)
    run = Run(surface, name, hps)
    assert run.step(STEPS) == STEPS
    assert run.steps == STEPS
    assert_same_trajectory(run, plain_torch_loop(surface, name, hps, STEPS))
    # it actually moved
    assert run.trajectory.loss[-1] != run.trajectory.loss[0]


@pytest.mark.parametrize("surface_name", ["rosenbrock", "himmelblau"])
@pytest.mark.parametrize("coordinate", ["x", "y"])
@pytest.mark.parametrize("name, hps", SETTINGS, ids=IDS)
def test_frozen_from_the_start_equals_plain_loop(name, hps, coordinate, surface_name) -> None:
    surface = get_surface(surface_name)
    run = Run(surface, name, hps, frozen=(coordinate,))
    run.step(STEPS)
    ref = plain_torch_loop(surface, name, hps, STEPS, frozen=(coordinate,))
    assert_same_trajectory(run, ref)
    t = run.trajectory
    start_value = surface.start[0 if coordinate == "x" else 1]
    # exactly where it started, bit for bit, with no gradient recorded
    assert np.all(t.column(coordinate) == start_value)
    assert np.all(np.isnan(t.column(f"grad_{coordinate}")))
    other = "y" if coordinate == "x" else "x"
    assert np.all(np.isfinite(t.column(f"grad_{other}")))
    assert len(set(t.column(other))) > 1
    assert (run.x.requires_grad, run.y.requires_grad) == (coordinate != "x", coordinate != "y")


@pytest.mark.parametrize("surface_name", ["rosenbrock", "six_hump_camel"])
@pytest.mark.parametrize("name, hps", SETTINGS, ids=IDS)
def test_lr_changed_mid_run_equals_plain_loop(name, hps, surface_name) -> None:
    surface = get_surface(surface_name)
    k1, k2 = 7, 15
    lr1, lr2 = hps["lr"] * 0.3, hps["lr"] * 1.5
    run = Run(surface, name, hps)
    run.step(k1)
    run.set_hyperparameter("lr", lr1)
    run.step(k2 - k1)
    run.set_hyperparameters({"lr": lr2})
    run.step(STEPS - k2)
    assert run.steps == STEPS  # no restart: the step count runs on
    ref = plain_torch_loop(surface, name, hps, STEPS, events={k1: [("lr", lr1)],
                                                             k2: [("lr", lr2)]})
    assert_same_trajectory(run, ref)
    lr = run.trajectory.lr
    assert np.all(lr[:k1] == hps["lr"]) and np.all(lr[k1:k2] == lr1) and np.all(lr[k2:] == lr2)


@pytest.mark.parametrize("surface_name", ["rosenbrock", "booth"])
@pytest.mark.parametrize("name, hps", SETTINGS, ids=IDS)
def test_freeze_and_unfreeze_mid_run_equal_plain_loop(name, hps, surface_name) -> None:
    surface = get_surface(surface_name)
    run = Run(surface, name, hps)
    run.step(5)
    run.set_frozen("x", True)
    run.step(5)
    run.set_frozen("y", True)
    run.set_frozen("x", False)
    run.step(5)
    run.set_frozen("y", False)
    run.step(STEPS - 15)
    ref = plain_torch_loop(surface, name, hps, STEPS, events={
        5: [("freeze", "x")], 10: [("freeze", "y"), ("unfreeze", "x")], 15: [("unfreeze", "y")]})
    assert_same_trajectory(run, ref)
    t = run.trajectory
    assert np.all(t.x[5:11] == t.x[5]) and np.all(np.isnan(t.grad_x[5:10]))
    assert np.all(t.y[10:16] == t.y[10]) and np.all(np.isnan(t.grad_y[10:15]))
    assert np.all(np.isfinite(t.grad_x[10:])) and np.all(np.isfinite(t.grad_y[15:]))
    if abs(t.grad_x[10]) > 1e-4:  # (LBFGS stops by itself near a minimum: tolerance_change)
        assert t.x[11] != t.x[10] or t.x[12] != t.x[11]  # x resumed


def test_frozen_coordinate_stays_put_for_many_steps_with_weight_decay() -> None:
    # weight decay would pull a frozen coordinate towards zero if the optimizer touched it
    surface = get_surface("rosenbrock")
    for name, hps in [("SGD", {"lr": 1e-3, "weight_decay": 0.5, "momentum": 0.9}),
                      ("AdamW", {"lr": 0.05, "weight_decay": 0.5}),
                      ("Adam", {"lr": 0.05, "weight_decay": 0.5})]:
        run = Run(surface, name, hps, frozen=("y",))
        run.step(300)
        assert np.all(run.trajectory.y == surface.start[1])
        assert run.y.item() == surface.start[1]


def test_set_frozen_validates_and_is_idempotent() -> None:
    run = Run(get_surface("bowl"), "SGD", {"lr": 0.1})
    with pytest.raises(OptimizerError):
        run.set_frozen("z", True)
    with pytest.raises(OptimizerError):
        Run(get_surface("bowl"), "SGD", frozen=("z",))
    run.set_frozen("x", True)
    run.set_frozen("x", True)
    assert run.frozen == {"x"}
    assert math.isnan(run.trajectory.grad_x[-1])  # the current entry's gradient is retaken
    run.set_frozen("x", False)
    assert run.frozen == frozenset()
    assert run.trajectory.grad_x[-1] == 2 * run.x.item()


def test_hyperparameter_change_applies_from_the_next_step_without_restart() -> None:
    # SGD on the bowl: x <- x - lr * 2x, so each step multiplies x by (1 - 2 lr).
    run = Run(get_surface("bowl"), "SGD", {"lr": 0.1}, start=(1.0, 2.0))
    run.step(3)
    x3 = run.x.item()
    assert x3 == pytest.approx(0.8**3)
    run.set_hyperparameter("lr", 0.25)
    assert run.steps == 3 and len(run.trajectory) == 4 and run.x.item() == x3
    assert run.trajectory.lr[-1] == 0.25  # the lr the next step will use
    run.step(2)
    assert run.steps == 5
    assert run.x.item() == pytest.approx(x3 * 0.5**2)
    assert run.hyperparameters["lr"] == 0.25


def test_bad_hyperparameter_change_leaves_the_run_unchanged() -> None:
    run = Run(get_surface("bowl"), "Adam", {"lr": 0.1})
    run.step(2)
    before = dict(run.hyperparameters)
    for bad in ({"lr": -1.0}, {"betas": (1.0, 0.5)}, {"nope": 1}):
        with pytest.raises(OptimizerError):
            run.set_hyperparameters(bad)
        assert run.hyperparameters == before
        assert run.optimizer.param_groups[0]["lr"] == 0.1
    assert run.step(1) == 1


def test_constructor_validates() -> None:
    with pytest.raises(OptimizerError):
        Run(get_surface("bowl"), "Nope")
    with pytest.raises(OptimizerError):
        Run(get_surface("bowl"), "SGD", {"lr": 0})


# --- entry k is the point after k steps ---------------------------------------------------------


def test_entry_k_is_the_point_after_k_steps_with_its_loss_and_gradient() -> None:
    surface = get_surface("himmelblau")
    run = Run(surface, "Adam", {"lr": 0.1}, start=(0.5, -0.5))
    run.step(10)
    t = run.trajectory
    assert list(t.step) == list(range(11))
    assert (t.x[0], t.y[0]) == (0.5, -0.5)
    for k in range(11):
        f, gx, gy = surface.value_and_grad(float(t.x[k]), float(t.y[k]))
        assert (t.loss[k], t.grad_x[k], t.grad_y[k]) == (f, gx, gy)
    assert (t.x[-1], t.y[-1]) == (run.x.item(), run.y.item())
    assert run.last_point == (t.x[-1], t.y[-1])
    assert run.last_update == (t.x[-1] - t.x[-2], t.y[-1] - t.y[-2])


def test_reset_and_new_start() -> None:
    run = Run(get_surface("booth"), "Adam", {"lr": 0.1})
    run.step(5)
    run.reset()
    assert run.steps == 0 and len(run.trajectory) == 1
    assert (run.x.item(), run.y.item()) == get_surface("booth").start
    run.reset(start=(1.0, 2.0))
    assert (run.trajectory.x[0], run.trajectory.y[0]) == (1.0, 2.0)
    assert run.optimizer.state == {} or all(not s for s in run.optimizer.state.values())


# --- divergence and convergence -------------------------------------------------------------------


def assert_diverged_cleanly(run: Run, point_recorded: bool = False) -> None:
    """One meaning of diverged_at everywhere: the steps taken when it was found, == run.steps.

    The trajectory keeps every finite point: it ends at diverged_at when the last point was
    finite (too far, or a loss out of all proportion, for too long), at diverged_at - 1 when
    that step raised or gave something non-finite.
    """
    assert run.status is RunStatus.DIVERGED
    assert run.diverged_at is not None and run.converged_at is None
    assert run.diverged_at == run.steps
    assert run.status_text == f"diverged at step {run.diverged_at}: {run.divergence_reason}"
    assert run.divergence_reason
    t = run.trajectory
    assert len(t) >= 1
    assert t.step[-1] == run.diverged_at - (0 if point_recorded else 1)
    for f in ("x", "y", "loss"):
        assert np.all(np.isfinite(t.column(f))), f
    # a diverged run does not step again, and never raises
    steps = run.steps
    assert run.step(10) == 0
    assert run.steps == steps == run.diverged_at


def test_sgd_with_lr_1_on_rosenbrock_diverges_without_an_exception() -> None:
    run = Run(get_surface("rosenbrock"), "SGD", {"lr": 1.0})
    taken = run.step(100)
    assert taken < 100
    assert_diverged_cleanly(run)


@pytest.mark.parametrize("text", ["log(x) + y**2", "sqrt(x) + y**2"])
def test_formula_that_becomes_nan_diverges(text: str) -> None:
    # d/dx is positive, so SGD walks x down through 0 into the region where the formula is NaN
    surface = surface_from_formula(text, start=(0.5, 0.5))
    run = Run(surface, "SGD", {"lr": 1.0})
    run.step(50)
    assert_diverged_cleanly(run)
    assert run.diverged_at == 1
    assert "nan" in run.divergence_reason.lower()


def test_a_plane_falls_away_and_diverges_by_its_loss() -> None:
    # f = -x - y has no minimum: SGD adds lr to each coordinate every step, forever. It is called
    # diverged once the loss has stayed LOSS_K spreads below the region's lowest value for
    # DIVERGENCE_WINDOW steps (before, x had to pass 1e6 whatever the surface).
    from core.status import DIVERGENCE_WINDOW

    surface = surface_from_formula("-x - y", start=(0.0, 0.0))
    lr = 100.0
    run = Run(surface, "SGD", {"lr": lr})
    run.step(1000)
    assert_diverged_cleanly(run, point_recorded=True)
    threshold = surface_scale(surface).plunge_threshold(0.0)
    first_below = next(k for k in range(1000) if -2 * lr * k < threshold)
    assert run.diverged_at == first_below + DIVERGENCE_WINDOW - 1
    assert run.trajectory.x[-1] == lr * run.diverged_at < 1e6
    assert "below" in run.divergence_reason


def test_custom_bound_is_a_wall() -> None:
    run = Run(surface_from_formula("-x", start=(0.0, 0.0)), "SGD", {"lr": 1.0}, bound=5.5)
    run.step(100)
    assert_diverged_cleanly(run)
    assert run.diverged_at == 6
    assert "5.5" in run.divergence_reason
    assert np.all(np.abs(run.trajectory.x) <= 5.5)


def test_infinite_gradient_diverges() -> None:
    # sqrt(x**2) = |x| written so that its gradient at 0 is 0/0
    surface = surface_from_formula("sqrt(x**2 + y**2)", start=(1.0, 0.0))
    run = Run(surface, "SGD", {"lr": 1.0})
    run.step(5)
    assert_diverged_cleanly(run)
    assert "gradient" in run.divergence_reason


def test_a_torch_error_inside_step_is_a_divergence_not_a_crash() -> None:
    run = Run(get_surface("bowl"), "SGD", {"lr": 0.1})
    run.step(2)

    def broken(*args, **kwargs):
        raise RuntimeError("boom")

    run.optimizer.step = broken  # type: ignore[method-assign]
    # The failed step counts: before, diverged_at was steps + 1 here and steps elsewhere.
    assert run.step(5) == 1
    assert run.status is RunStatus.DIVERGED and run.diverged_at == 3 == run.steps
    assert "boom" in run.divergence_reason
    assert len(run.trajectory) == 3
    assert_diverged_cleanly(run)


def test_sgd_lr_half_on_the_bowl_converges_in_one_step_once_it_has_stayed_there() -> None:
    run = Run(get_surface("bowl"), "SGD", {"lr": 0.5})
    assert run.status is RunStatus.RUNNING and run.converged_at is None
    run.step(1)
    assert (run.x.item(), run.y.item()) == (0.0, 0.0)  # x - 0.5 * 2x
    # One step with a zero gradient is not yet evidence: it must stay put for a window.
    run.step(CONVERGENCE_WINDOW - 1)
    assert run.status is RunStatus.RUNNING and run.converged_at is None
    run.step(1)
    assert run.status is RunStatus.CONVERGED and run.converged_at == 1  # where it arrived
    assert run.status_text == "converged at step 1"
    assert run.step(4) == 4  # it keeps running
    assert run.steps == CONVERGENCE_WINDOW + 5 and len(run.trajectory) == run.steps + 1
    assert run.converged_at == 1


def test_convergence_uses_the_gradient_tolerance() -> None:
    # with movement not limiting (move_tolerance 1), the gradient alone decides
    run = Run(get_surface("bowl"), "SGD", {"lr": 0.1}, start=(1.0, 0.0), grad_tolerance=1e-3,
              move_tolerance=1.0)
    run.step(100)
    # |grad| = 2 * 0.8**k < 1e-3 first at k = 35
    k = next(k for k in range(100) if 2 * 0.8**k < 1e-3)
    assert run.converged_at == k
    assert run.grad_tolerance == 1e-3


def test_convergence_uses_the_movement_tolerance() -> None:
    # SGD on the bowl moves 0.2 * 0.8**(k-1) to reach step k: converged from the last step it
    # reached by a move bigger than the tolerance
    run = Run(get_surface("bowl"), "SGD", {"lr": 0.1}, start=(1.0, 0.0), grad_tolerance=1.0,
              move_tolerance=1e-4)
    run.step(100)
    moves = np.abs(np.diff(run.trajectory.x))
    k = int(np.nonzero(moves > 1e-4)[0][-1]) + 1
    assert run.converged_at == k
    assert np.all(moves[k:] <= 1e-4) and moves[k - 1] > 1e-4


def test_a_run_starting_at_the_minimum_has_converged_at_step_0_after_a_window() -> None:
    run = Run(get_surface("bowl"), "Adam", start=(0.0, 0.0))
    assert run.status is RunStatus.RUNNING
    run.step(CONVERGENCE_WINDOW)
    assert run.status is RunStatus.CONVERGED and run.converged_at == 0


# --- memory --------------------------------------------------------------------------------------


def test_trajectory_capacity_keeps_first_and_newest() -> None:
    t = Trajectory(capacity=1000)
    for k in range(100_000):
        t.append(k, k, -k, k * k, 1.0, 2.0, 0.1)
        assert len(t) <= 1000
    assert t.step[0] == 0 and t.step[-1] == 99_999
    assert np.all(np.diff(t.step) > 0)
    assert t.nbytes() <= len(FIELDS) * 1000 * 8
    # entries stay consistent rows after thinning
    np.testing.assert_array_equal(t.x, t.step)
    np.testing.assert_array_equal(t.loss, t.step**2)
    # and the newest steps are kept in full detail
    np.testing.assert_array_equal(t.step[-100:], np.arange(99_900, 100_000))


def test_run_with_small_capacity_holds_at_most_capacity_entries() -> None:
    run = Run(get_surface("rosenbrock"), "SGD", {"lr": 1e-4}, capacity=64)
    sizes = []
    for _ in range(40):
        run.step(50)
        sizes.append(len(run.trajectory))
    assert max(sizes) <= 64
    t = run.trajectory
    assert run.steps == 2000 and t.step[0] == 0 and t.step[-1] == 2000
    assert (t.x[0], t.y[0]) == get_surface("rosenbrock").start
    assert (t.x[-1], t.y[-1]) == (run.x.item(), run.y.item())
    assert t.nbytes() <= len(FIELDS) * 64 * 8


def test_default_capacity_bounds_memory() -> None:
    run = Run(get_surface("bowl"), "SGD")
    cap = run.trajectory.capacity
    limit = len(FIELDS) * cap * 8
    assert limit <= 16 * 2**20  # 16 MiB per run at most
    t = Trajectory(cap)
    for k in range(cap + cap // 2):
        t.append(k, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0)
    assert len(t) <= cap and t.nbytes() <= limit
    assert t.step[-1] == cap + cap // 2 - 1


def test_trajectory_to_dict_uses_null_for_frozen_gradients() -> None:
    run = Run(get_surface("bowl"), "SGD", {"lr": 0.1}, frozen=("y",))
    run.step(3)
    d = run.trajectory.to_dict()
    assert d["step"] == [0, 1, 2, 3] and all(isinstance(s, int) for s in d["step"])
    assert d["grad_y"] == [None] * 4
    assert all(isinstance(v, float) for v in d["grad_x"])


def test_optimizer_state_is_plain_numbers() -> None:
    run = Run(get_surface("bowl"), "SGD", {"lr": 0.1, "momentum": 0.9})
    run.step(2)
    state = run.optimizer_state()
    assert isinstance(state["x"]["momentum_buffer"], float)
    run = Run(get_surface("bowl"), "Adam", {"lr": 0.1}, frozen=("x",))
    run.step(2)
    state = run.optimizer_state()
    assert state["x"] == {} and isinstance(state["y"]["exp_avg"], float)


@pytest.mark.parametrize("name, hps", SETTINGS, ids=IDS)
def test_hyperparameters_set_before_the_first_step_equal_constructing_with_them(name, hps):
    # Adagrad fills its accumulator in the constructor: an *initial* value cannot change later.
    hps = {k: v for k, v in hps.items() if k != "initial_accumulator_value"}
    surface = get_surface("rosenbrock")
    run = Run(surface, name)  # torch's defaults
    run.set_hyperparameters(hps)
    run.step(STEPS)
    assert_same_trajectory(run, plain_torch_loop(surface, name, hps, STEPS))


def test_lbfgs_max_iter_raised_mid_run_lifts_the_evaluation_cap_too() -> None:
    # torch derives max_eval = max_iter * 5 // 4 in the constructor; a raised max_iter must not
    # stay capped by the old max_eval
    surface = get_surface("rosenbrock")
    run = Run(surface, "LBFGS", {"max_iter": 2})
    run.set_hyperparameter("max_iter", 20)
    assert run.optimizer.param_groups[0]["max_eval"] == 25
    run.step(5)
    assert_same_trajectory(run, plain_torch_loop(surface, "LBFGS", {"max_iter": 20}, 5))


@pytest.mark.parametrize("name, hps", SETTINGS, ids=IDS)
def test_a_changed_lr_changes_the_very_next_update(name: str, hps: dict) -> None:
    """What the card and the lr column say must be what the optimizer does: compared with the
    same run left alone, a new lr changes the next step. (Before, Rprop ignored it for good and
    ASGD until the step after next.)"""
    surface = get_surface("rosenbrock")
    changed, same = Run(surface, name, hps), Run(surface, name, hps)
    changed.step(1)
    same.step(1)
    assert changed.last_point == same.last_point
    changed.set_hyperparameter("lr", hps["lr"] * 0.5)
    assert changed.trajectory.lr[-1] == hps["lr"] * 0.5 == changed.optimizer.param_groups[0]["lr"]
    changed.step(1)
    same.step(1)
    assert changed.last_update != same.last_update
    assert changed.last_point != same.last_point


def test_rprop_and_asgd_build_a_fresh_optimizer_on_a_new_lr_others_keep_theirs() -> None:
    for name in CATALOGUE:
        run = Run(get_surface("booth"), name)
        run.step(2)
        before = run.optimizer
        run.set_hyperparameter("lr", run.hyperparameters["lr"] * 2)
        assert (run.optimizer is before) == get_spec(name).hyperparameter("lr").live, name
    assert not get_spec("Rprop").hyperparameter("lr").live
    assert not get_spec("ASGD").hyperparameter("lr").live


_STATEFUL = [("RMSprop", "momentum", 0.9), ("RMSprop", "centered", True),
             ("Adam", "amsgrad", True), ("AdamW", "amsgrad", True),
             ("Adagrad", "initial_accumulator_value", 1.0), ("LBFGS", "history_size", 3),
             ("Rprop", "lr", 0.5), ("ASGD", "lr", 0.01), ("ASGD", "lambd", 0.1),
             ("ASGD", "alpha", 0.5)]


@pytest.mark.parametrize(("name", "key", "value"), _STATEFUL)
def test_changing_a_stateful_hyperparameter_mid_run_equals_a_fresh_optimizer_there(name, key,
                                                                                    value):
    """torch builds some state only at the first step (amsgrad's max_exp_avg_sq, ...): a change
    mid-run must not break the run, and must equal what a PyTorch user would do: a new
    optimizer with the new setting at the current point."""
    from core.optimizers import get_spec

    surface = get_surface("rosenbrock")
    spec = get_spec(name)
    hps = spec.validate({"lr": 1e-3} if name != "LBFGS" else {"lr": 0.5})
    run = Run(surface, name, hps)
    run.step(6)
    run.set_hyperparameter(key, value)
    run.step(6)
    assert run.status is not RunStatus.DIVERGED, run.status_text

    x = torch.tensor(surface.start[0], dtype=torch.float64, requires_grad=True)
    y = torch.tensor(surface.start[1], dtype=torch.float64, requires_grad=True)

    def closure():
        opt.zero_grad()
        loss = surface(x, y)
        loss.backward()
        return loss

    opt = spec.cls([x, y], **hps)
    points = [(x.item(), y.item())]
    for k in range(12):
        if k == 6:
            opt = spec.cls([x, y], **{**hps, key: value})
        closure()
        opt.step(closure) if spec.needs_closure else opt.step()
        points.append((x.item(), y.item()))
    np.testing.assert_array_equal(np.column_stack([run.trajectory.x, run.trajectory.y]),
                                  np.array(points))


def test_a_torch_error_of_many_lines_is_one_line_in_the_status():
    # torch's messages can run to pages (a traceback of a failed kernel, a list of options);
    # the status and the CLI show one line.
    from core.errors import first_line
    from core.surfaces import get_surface

    run = Run(get_surface("bowl"), "SGD", {"lr": 0.1})
    run._diverge("optimizer.step() failed: something broke\n\nDETAILS:\n  a\n  b")
    assert run.divergence_reason == "optimizer.step() failed: something broke"
    assert "\n" not in run.status_text
    assert first_line(ValueError("\n\n  second\nthird")) == "second"
    assert first_line(ValueError("")) == "ValueError"
