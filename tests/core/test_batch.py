"""core/batch.py: every element of a batch follows, bit for bit, the single Run from its start."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from core.batch import (DIVERGED, ELEMENTWISE, LBFGS_REFUSED, STATUSES, BatchCancelled,
                        BatchError, BatchRun, far_boxes)
import core.batch as batch_module
from core.run import Run
from core.status import HOPELESS_K, REGION_K, surface_scale
from core.surfaces import get_surface, surface_from_formula

# Settings that give each optimizer some movement in 60 steps (and some divergence on
# Rosenbrock, whose scale makes a large step explode).
SETTINGS = {"SGD": {"lr": 0.01, "momentum": 0.9}, "Adam": {"lr": 0.05},
            "AdamW": {"lr": 0.05}, "RMSprop": {"lr": 0.01}, "Adagrad": {"lr": 0.3},
            "Adadelta": {"lr": 1.0}, "Adamax": {"lr": 0.05}, "NAdam": {"lr": 0.05},
            "RAdam": {"lr": 0.05}, "Rprop": {"lr": 0.01}, "ASGD": {"lr": 0.005, "t0": 5.0}}
STEPS = 60


def starts_in(surface, n: int, seed: int) -> np.ndarray:
    """n starts spread over the region, and one well outside it."""
    rng = np.random.default_rng(seed)
    (x0, x1), (y0, y1) = surface.x_range, surface.y_range
    points = np.column_stack([rng.uniform(x0, x1, n), rng.uniform(y0, y1, n)])
    return np.vstack([points, [[3 * x1, 3 * y1]]])


def assert_matches_runs(batch: BatchRun, runs: list[Run]) -> None:
    """Every element equals its single Run: path, final point, loss, status and step counts."""
    result = batch.result()
    for i, run in enumerate(runs):
        t = run.trajectory
        path = result.paths[i]
        assert np.array_equal(path[:, 0], t.step), i
        assert np.array_equal(path[:, 1], t.x), i  # bit for bit
        assert np.array_equal(path[:, 2], t.y), i
        assert np.array_equal(path[:, 3], t.loss), i
        assert STATUSES[result.status[i]] == run.status.value, (i, run.state_text)
        assert result.steps[i] == run.steps
        assert result.steps_to_converge()[i] == run.converged_at
        assert (None if result.diverged_at[i] < 0 else result.diverged_at[i]) == run.diverged_at
        assert result.final_x[i] == run.last_point[0] and result.final_y[i] == run.last_point[1]
        if len(t):
            assert result.final_loss[i] == t.loss[-1]


@pytest.mark.parametrize("surface_name", ["himmelblau", "rastrigin", "rosenbrock"])
@pytest.mark.parametrize("optimizer", ELEMENTWISE)
def test_each_element_is_its_single_run_bit_for_bit(optimizer: str, surface_name: str) -> None:
    surface = get_surface(surface_name)
    starts = starts_in(surface, 6, seed=len(optimizer))
    batch = BatchRun(surface, optimizer, [(SETTINGS[optimizer], starts)],
                     paths=range(len(starts)))
    batch.step(STEPS)
    runs = []
    for sx, sy in starts:
        run = Run(surface, optimizer, SETTINGS[optimizer], start=(float(sx), float(sy)))
        run.step(STEPS)
        runs.append(run)
    assert_matches_runs(batch, runs)


@pytest.mark.parametrize("optimizer", ["SGD", "Adam", "Rprop", "ASGD"])
def test_frozen_y_matches_single_runs_and_y_never_moves(optimizer: str) -> None:
    surface = get_surface("himmelblau")
    starts = starts_in(surface, 5, seed=3)
    batch = BatchRun(surface, optimizer, [(SETTINGS[optimizer], starts)], frozen=("y",),
                     paths=range(len(starts)))
    batch.step(STEPS)
    runs = []
    for sx, sy in starts:
        run = Run(surface, optimizer, SETTINGS[optimizer], start=(float(sx), float(sy)),
                  frozen=("y",))
        run.step(STEPS)
        runs.append(run)
    assert_matches_runs(batch, runs)
    assert np.array_equal(batch.result().final_y, starts[:, 1])


@pytest.mark.parametrize("packed", [True, False])
def test_one_param_group_per_lr_matches_single_runs_with_converged_and_diverged(
        packed: bool, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(batch_module, "PACK_MAX_GROUP", 16 if packed else 0)
    # SGD on the bowl: lr 0.5 lands on the minimum in one step (converged), 0.1 converges
    # slowly, 1.2 oscillates outwards until the loss explodes.
    surface = get_surface("bowl")
    lrs = [0.1, 0.5, 1.2, 0.02]
    starts = np.array([[-2.5, 2.0], [1.0, -1.5]])
    batch = BatchRun(surface, "SGD", [({"lr": lr}, starts) for lr in lrs], paths=range(8))
    batch.step(150)
    runs = []
    for lr in lrs:
        for sx, sy in starts:
            run = Run(surface, "SGD", {"lr": lr}, start=(float(sx), float(sy)))
            run.step(150)
            runs.append(run)
    assert_matches_runs(batch, runs)
    statuses = set(batch.result().status_names())
    assert {"converged", "diverged", "running"} <= statuses
    assert len(batch.param_groups) == len(lrs)
    assert batch.packed is packed


@pytest.mark.parametrize("optimizer", ELEMENTWISE)
def test_packed_sweeps_match_single_runs_for_every_optimizer(optimizer: str) -> None:
    surface = get_surface("rastrigin")
    lrs = [SETTINGS[optimizer]["lr"] * f for f in (0.3, 1.0, 3.0)]
    groups = [({**SETTINGS[optimizer], "lr": lr}, [[2.2, 2.8]]) for lr in lrs]
    batch = BatchRun(surface, optimizer, groups, paths=range(3))
    assert batch.packed
    batch.step(STEPS)
    runs = []
    for lr in lrs:
        run = Run(surface, optimizer, {**SETTINGS[optimizer], "lr": lr}, start=(2.2, 2.8))
        run.step(STEPS)
        runs.append(run)
    assert_matches_runs(batch, runs)


def test_a_formula_without_y_is_not_packed_and_y_stays_put_under_adamw() -> None:
    # Run skips y (its grad is None); packed, y would get a zero grad and AdamW's decoupled
    # weight decay would still shrink it.
    surface = surface_from_formula("(x - 1)**2", (-3.0, 3.0), (-3.0, 3.0))
    groups = [({"lr": lr}, [[2.0, 2.5]]) for lr in (0.01, 0.1)]
    batch = BatchRun(surface, "AdamW", groups, paths=range(2))
    assert not batch.packed
    batch.step(30)
    runs = []
    for lr in (0.01, 0.1):
        run = Run(surface, "AdamW", {"lr": lr}, start=(2.0, 2.5))
        run.step(30)
        runs.append(run)
    assert_matches_runs(batch, runs)
    assert (batch.result().final_y == 2.5).all()


def test_a_diverged_element_is_masked_and_the_others_are_unaffected_bit_for_bit() -> None:
    surface = get_surface("rosenbrock")
    calm = np.array([[-1.2, 1.0], [0.5, 0.5], [1.5, 2.5]])
    wild = np.array([[5.0, -1.0]])  # SGD at lr 1e-3 from here is flung out at step 3
    alone = BatchRun(surface, "SGD", [({"lr": 1e-3}, calm)])
    mixed = BatchRun(surface, "SGD", [({"lr": 1e-3}, np.vstack([calm[:2], wild, calm[2:]]))],
                     paths=[2])
    alone.step(80)
    mixed.step(80)
    a, m = alone.result(), mixed.result()
    keep = [0, 1, 3]
    assert m.status[2] == DIVERGED and m.diverged_at[2] >= 1
    assert np.array_equal(a.final_x, m.final_x[keep])
    assert np.array_equal(a.final_y, m.final_y[keep])
    assert np.array_equal(a.final_loss, m.final_loss[keep])
    # frozen in place at its last recorded point: the path's end, and finite
    assert m.final_x[2] == m.paths[2][-1, 1] and np.isfinite(m.final_loss[2])
    assert m.steps[2] == m.diverged_at[2] < 80


def test_lbfgs_is_refused_with_one_line() -> None:
    with pytest.raises(BatchError) as info:
        BatchRun(get_surface("bowl"), "LBFGS", [(None, [[1.0, 1.0]])])
    assert str(info.value) == LBFGS_REFUSED and "\n" not in LBFGS_REFUSED


def test_bad_batches_are_refused_and_change_nothing() -> None:
    bowl = get_surface("bowl")
    with pytest.raises(BatchError, match="finite"):
        BatchRun(bowl, "SGD", [(None, [[float("nan"), 1.0]])])
    with pytest.raises(BatchError, match="freeze"):
        BatchRun(bowl, "SGD", [(None, [[1.0, 1.0]])], frozen=("z",))
    with pytest.raises(ValueError, match="lr"):
        BatchRun(bowl, "SGD", [({"lr": -1.0}, [[1.0, 1.0]])])


def test_only_asked_paths_are_kept() -> None:
    batch = BatchRun(get_surface("himmelblau"), "Adam", [({"lr": 0.05}, np.zeros((50, 2)))],
                     paths=[7])
    batch.step(30)
    result = batch.result()
    assert list(result.paths) == [7] and result.paths[7].shape == (31, 4)
    assert len(result) == 50


def test_far_boxes_are_the_status_module_s_far_box() -> None:
    surface = get_surface("wells")
    scale = surface_scale(surface)
    sx, sy = np.array([-3.5, 10.0, 0.0]), np.array([-3.5, -20.0, 5.0])
    for k in (REGION_K, HOPELESS_K):
        boxes = far_boxes(scale, sx, sy, k)
        for i in range(3):
            assert tuple(float(b[i]) for b in boxes) == scale.far_box((sx[i], sy[i]), k)


class _State:
    def __init__(self, cancel_after: int) -> None:
        self.calls = 0
        self.cancel_after = cancel_after
        self.progress: list[float] = []

    def set_progress(self, fraction: float) -> None:
        self.progress.append(fraction)

    def is_interruption_requested(self) -> bool:
        self.calls += 1
        return self.calls > self.cancel_after


def test_progress_is_reported_and_a_cancel_stops_the_batch() -> None:
    batch = BatchRun(get_surface("bowl"), "SGD", [({"lr": 0.1}, np.ones((4, 2)))])
    state = _State(cancel_after=10**9)
    batch.step(200, state)
    assert state.progress[-1] == 1.0 and state.progress == sorted(state.progress)
    with pytest.raises(BatchCancelled):
        batch.step(200, _State(cancel_after=3))
    assert 200 < batch.steps < 400


def test_foreach_true_gives_the_same_numbers_as_the_default() -> None:
    surface = get_surface("himmelblau")
    starts = starts_in(surface, 20, seed=1)
    results = []
    for foreach in (None, True):
        batch = BatchRun(surface, "Adam", [({"lr": 0.05}, starts)], foreach=foreach)
        batch.step(40)
        results.append(batch.result())
    assert np.array_equal(results[0].final_x, results[1].final_x)
    assert np.array_equal(results[0].final_loss, results[1].final_loss)


def test_float32_is_close_but_only_when_asked() -> None:
    surface = get_surface("himmelblau")
    starts = starts_in(surface, 20, seed=2)[:-1]
    exact = BatchRun(surface, "Adam", [({"lr": 0.05}, starts)])
    fast = BatchRun(surface, "Adam", [({"lr": 0.05}, starts)], dtype=torch.float32)
    exact.step(40)
    fast.step(40)
    assert exact.dtype == torch.float64
    assert np.allclose(exact.result().final_x, fast.result().final_x, atol=1e-3)


def test_weight_decay_in_some_groups_converges_as_single_runs_do() -> None:
    # With L2 weight decay torch settles where f + wd/2 |w|^2 is stationary: the status must use
    # that gradient for the groups that have it, and f's for the others.
    surface = get_surface("booth")
    settings = [{"lr": 0.02, "weight_decay": 0.5}, {"lr": 0.02}, {"lr": 0.05, "momentum": 0.5,
                                                                 "weight_decay": 0.1}]
    starts = np.array([[-7.0, 8.0], [4.0, -2.0]])
    batch = BatchRun(surface, "SGD", [(hp, starts) for hp in settings], paths=range(6))
    batch.step(400)
    runs = []
    for hp in settings:
        for sx, sy in starts:
            run = Run(surface, "SGD", hp, start=(float(sx), float(sy)))
            run.step(400)
            runs.append(run)
    assert_matches_runs(batch, runs)
    assert batch.result().status_names().count("converged") >= 4


def test_both_frozen_is_frozen_as_a_run_is() -> None:
    surface = get_surface("bowl")
    batch = BatchRun(surface, "Adam", [(None, [[1.0, 2.0], [0.5, 0.5]])], frozen=("x", "y"),
                     paths=[0, 1])
    batch.step(20)
    run = Run(surface, "Adam", start=(1.0, 2.0), frozen=("x", "y"))
    run.step(20)
    other = Run(surface, "Adam", start=(0.5, 0.5), frozen=("x", "y"))
    other.step(20)
    assert_matches_runs(batch, [run, other])
    assert batch.result().status_names() == ["frozen", "frozen"]


def test_a_caller_in_no_grad_still_gets_gradients() -> None:
    # grad mode is per thread: a worker thread, or a caller, may be inside torch.no_grad()
    surface = get_surface("bowl")
    with torch.no_grad():
        batch = BatchRun(surface, "SGD", [({"lr": 0.5}, [[-2.5, 2.0]])])
        batch.step(15)
    run = Run(surface, "SGD", {"lr": 0.5}, start=(-2.5, 2.0))
    run.step(15)
    assert batch.result().final_x[0] == run.last_point[0] == 0.0
    assert batch.result().status_names() == [run.status.value] == ["converged"]


def test_starts_where_f_is_not_finite_diverge_at_step_0_as_runs_do() -> None:
    surface = surface_from_formula("log(x) + y**2", (-1.0, 2.0), (-1.0, 1.0), start=(1.0, 0.5))
    starts = np.array([[-0.5, 0.5], [0.0, 0.2], [1.5, -0.5], [0.01, 0.9]])
    batch = BatchRun(surface, "Adam", [({"lr": 0.05}, starts)], paths=range(4))
    batch.step(40)
    runs = []
    for sx, sy in starts:
        run = Run(surface, "Adam", {"lr": 0.05}, start=(float(sx), float(sy)))
        run.step(40)
        runs.append(run)
    assert_matches_runs(batch, runs)
    result = batch.result()
    assert result.diverged_at[0] == result.diverged_at[1] == 0 and np.isnan(result.final_loss[0])
    assert result.paths[0].shape == (0, 4)


def test_norm_above_decides_as_math_hypot_does_near_the_tolerance() -> None:
    import math

    rng = np.random.default_rng(0)
    tol = 1e-4
    angle = rng.uniform(0, 2 * np.pi, 4000)
    radius = tol * rng.choice([0.3, 0.6, 0.999999, 1.0, 1.000001, 1.5], 4000)
    a, b = radius * np.cos(angle), radius * np.sin(angle)
    a[:3], b[:3] = [math.nan, tol, 0.0], [0.0, 0.0, tol]
    expected = [not math.hypot(p, q) <= tol for p, q in zip(a, b, strict=True)]
    assert batch_module._norm_above(a, b, tol).tolist() == expected


def test_groups_split_over_several_optimizers_step_as_one(monkeypatch: pytest.MonkeyPatch
                                                          ) -> None:
    surface = get_surface("rosenbrock")
    groups = [({"lr": lr, "momentum": m}, [surface.start]) for lr in (1e-4, 1e-3, 3e-3)
              for m in (0.0, 0.5, 0.9)]
    whole = BatchRun(surface, "SGD", groups)
    monkeypatch.setattr(batch_module, "GROUPS_PER_OPTIMIZER", 2)
    split = BatchRun(surface, "SGD", groups)
    assert len(whole.optimizers) == 1 and len(split.optimizers) == 5
    whole.step(120)
    split.step(120)
    a, b = whole.result(), split.result()
    assert np.array_equal(a.final_x, b.final_x) and np.array_equal(a.final_loss, b.final_loss)
    assert np.array_equal(a.status, b.status)
    assert [g["lr"] for g in split.param_groups] == [g["lr"] for g in whole.param_groups]


# --- one torch thread ----------------------------------------------------------------------------


def test_one_torch_thread_inside_and_the_count_put_back() -> None:
    import torch

    from core.batch import one_torch_thread

    before = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        with one_torch_thread():
            assert torch.get_num_threads() == 1
            with one_torch_thread():  # nested: still one, and the outer count survives
                assert torch.get_num_threads() == 1
            assert torch.get_num_threads() == 1
        assert torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(before)


def test_overlapping_callers_on_threads_restore_the_count_once() -> None:
    import threading

    import torch

    from core.batch import one_torch_thread

    before = torch.get_num_threads()
    torch.set_num_threads(2)
    inside, release = threading.Event(), threading.Event()
    seen: list[int] = []

    def job() -> None:
        with one_torch_thread():
            seen.append(torch.get_num_threads())
            inside.set()
            release.wait(10)
            seen.append(torch.get_num_threads())  # still one after the other caller left

    try:
        worker = threading.Thread(target=job)
        with one_torch_thread():
            worker.start()
            assert inside.wait(10)
        # The first caller left while the worker is inside: nothing is put back yet.
        assert seen == [1]
        release.set()
        worker.join(10)
        assert seen == [1, 1]
        assert torch.get_num_threads() == 2  # restored, on this thread and for new ones
        fresh: list[int] = []
        probe = threading.Thread(target=lambda: fresh.append(torch.get_num_threads()))
        probe.start()
        probe.join(10)
        assert fresh == [2]  # and a new thread starts from it, not from one
    finally:
        torch.set_num_threads(before)
