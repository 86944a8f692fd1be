"""core/many.py: basins, lr sweeps and trainability maps; every cell is the single Run."""

from __future__ import annotations

import numpy as np
import pytest

import core.many as many
from core.batch import CONVERGED, DIVERGED, STATUSES, BatchCancelled, BatchError
from core.errors import OptimizerError
from core.many import BEST_LR_RULE, basins, lr_sweep, trainability_map
from core.run import Run
from core.surfaces import get_surface, surface_from_formula


def single(surface, optimizer, hps, start, steps, frozen=()) -> Run:
    run = Run(surface, optimizer, hps, start=(float(start[0]), float(start[1])), frozen=frozen)
    run.step(steps)
    return run


def assert_cell_is_run(cells, k: int, run: Run) -> None:
    assert cells.final_x[k] == run.last_point[0] and cells.final_y[k] == run.last_point[1]
    if len(run.trajectory):
        assert cells.final_loss[k] == run.trajectory.loss[-1]
    assert STATUSES[cells.status[k]] == run.status.value
    assert cells.steps_to_converge()[k] == run.converged_at


def test_basins_on_himmelblau_reach_all_four_minima_and_cells_are_single_runs() -> None:
    surface = get_surface("himmelblau")
    result = basins(surface, "Adam(lr=0.1)", 9, 300)
    n = 9
    assert result.x.shape == (n,) and result.y.shape == (n,) and len(result.cells) == n * n
    # all four known minima are reached by some start
    assert set(result.minimum[result.cells.status == CONVERGED].tolist()) == {0, 1, 2, 3}
    for k in (0, 5, 40, 77, 80):
        j, i = divmod(k, n)  # row-major: y then x
        run = single(surface, "Adam", {"lr": 0.1}, (result.x[i], result.y[j]), 300)
        assert_cell_is_run(result.cells, k, run)
        if run.status.value == "converged":
            mx, my = surface.minima[result.minimum[k]]
            others = [np.hypot(run.last_point[0] - a, run.last_point[1] - b)
                      for a, b in surface.minima]
            assert np.hypot(run.last_point[0] - mx, run.last_point[1] - my) == min(others)
    data = result.to_json()
    assert {"x", "y", "final_x", "final_y", "final_loss", "status", "minimum",
            "steps_to_converge"} <= set(data)
    assert len(data["status"]) == n * n


def test_chunked_basins_equal_one_batch(monkeypatch: pytest.MonkeyPatch) -> None:
    surface = get_surface("wells")
    whole = basins(surface, "SGD(lr=0.05, momentum=0.9)", 7, 120)
    monkeypatch.setattr(many, "BASIN_CHUNK", 10)
    chunked = basins(surface, "SGD(lr=0.05, momentum=0.9)", 7, 120)
    assert np.array_equal(whole.cells.final_x, chunked.cells.final_x)
    assert np.array_equal(whole.cells.status, chunked.cells.status)
    assert np.array_equal(whole.minimum, chunked.minimum)


def test_a_formula_without_known_minima_gets_clusters_of_end_points() -> None:
    surface = surface_from_formula("(x**2 - 1)**2 + y**2", (-2.0, 2.0), (-2.0, 2.0))
    result = basins(surface, "Adam(lr=0.05)", 8, 600)
    assert result.known == 0
    found = sorted(tuple(np.round(m, 2)) for m in result.minima)
    assert found == [(-1.0, 0.0), (1.0, 0.0)]
    converged = result.cells.status == CONVERGED
    assert converged.any() and (result.minimum[converged] >= 0).all()


def test_lr_sweep_cells_are_single_runs_and_the_best_is_the_lowest_non_diverged() -> None:
    surface = get_surface("rosenbrock")
    lrs = many.log_spaced(1e-5, 1.0, 12)
    sweep = lr_sweep(surface, "SGD", lrs, 200)
    cells = sweep.cells
    for k in (0, 6, 11):
        assert_cell_is_run(cells, k, single(surface, "SGD", {"lr": float(lrs[k])},
                                            surface.start, 200))
    assert cells.status[-1] == DIVERGED  # lr 1 on Rosenbrock
    ok = [k for k in range(len(lrs)) if cells.status[k] != DIVERGED]
    assert sweep.best == min(ok, key=lambda k: cells.final_loss[k])
    data = sweep.to_json()
    assert data["best_lr"] == float(lrs[sweep.best]) and data["best_rule"] == BEST_LR_RULE
    assert len(data["final_loss"]) == 12


def test_trainability_map_momentum_by_lr_cells_are_single_runs() -> None:
    surface = get_surface("rotated_quadratic")
    lrs = many.log_spaced(1e-3, 0.5, 6)
    momenta = many.linear_spaced(0.0, 0.95, 4)
    result = trainability_map(surface, "SGD", "momentum", momenta, lrs, 150, start=(-2.5, 2.0))
    assert len(result.cells) == 24
    for k in (0, 7, 17, 23):
        j, i = divmod(k, 6)
        run = single(surface, "SGD", {"lr": float(lrs[i]), "momentum": float(momenta[j])},
                     (-2.5, 2.0), 150)
        assert_cell_is_run(result.cells, k, run)
    statuses = set(result.cells.status_names())
    assert "diverged" in statuses and statuses - {"diverged"}


def test_trainability_map_beta1_sets_the_first_of_adams_betas() -> None:
    surface = get_surface("himmelblau")
    result = trainability_map(surface, "Adam(betas=(0.8, 0.99))", "beta1", [0.5, 0.9],
                              [0.01, 0.1], 80)
    run = single(surface, "Adam", {"lr": 0.1, "betas": (0.9, 0.99)}, surface.start, 80)
    assert_cell_is_run(result.cells, 3, run)


def test_bad_input_is_one_line_and_runs_nothing() -> None:
    bowl = get_surface("bowl")
    for call, match in ((lambda: basins(bowl, "SGD", 1, 10), "grid"),
                        (lambda: basins(bowl, "SGD", 513, 10), "grid"),
                        (lambda: basins(bowl, "SGD", 8, -1), "steps"),
                        (lambda: basins(bowl, "LBFGS", 8, 10), "L-BFGS"),
                        (lambda: basins(bowl, "SGD", 8, 10, x_range=(1.0, 0.0)), "x range"),
                        (lambda: lr_sweep(bowl, "SGD", [], 10), "at least one"),
                        (lambda: trainability_map(bowl, "SGD", "beta1", [0.5], [0.1], 10),
                         "betas")):
        with pytest.raises(BatchError, match=match) as info:
            call()
        assert "\n" not in str(info.value)
    with pytest.raises(OptimizerError, match="no hyperparameter"):
        trainability_map(bowl, "SGD", "rho", [0.5], [0.1], 10)
    with pytest.raises(BatchError, match="cell-steps"):
        basins(bowl, "SGD", 512, 10**4)


class _CancelAfter:
    def __init__(self, n: int) -> None:
        self.asked, self.n = 0, n

    def set_progress(self, fraction: float) -> None:
        assert 0.0 <= fraction <= 1.0

    def is_interruption_requested(self) -> bool:
        self.asked += 1
        return self.asked > self.n


def test_a_cancel_stops_basins_and_sweeps() -> None:
    with pytest.raises(BatchCancelled):
        basins(get_surface("bowl"), "SGD", 16, 1000, state=_CancelAfter(5))
    with pytest.raises(BatchCancelled):
        lr_sweep(get_surface("bowl"), "SGD", [0.1, 0.2], 1000, state=_CancelAfter(5))


def test_a_512_grid_is_stepped_in_bounded_chunks(monkeypatch: pytest.MonkeyPatch) -> None:
    sizes: list[int] = []
    real = many.BatchRun

    def counting(surface, optimizer, groups, **kwargs):
        sizes.append(sum(len(starts) for _, starts in groups))
        return real(surface, optimizer, groups, **kwargs)

    monkeypatch.setattr(many, "BatchRun", counting)
    result = basins(get_surface("bowl"), "SGD(lr=0.5)", 512, 2)
    assert len(result.cells) == 512 * 512 and max(sizes) <= many.BASIN_CHUNK
    assert sum(sizes) == 512 * 512
    # SGD at lr 0.5 on the bowl lands on the minimum in one step from anywhere
    assert (result.minimum == 0).all()
