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


# --- model mode: the same sweep trains copies of the model ---------------------------------------

def _model_session(dataset: str = "moons", **settings):
    from core.model_session import DataSpec, ModelSession

    return ModelSession("Linear(2, 8), Tanh(), Linear(8, 1)" if dataset == "moons" else
                        "Linear(1, 8), Tanh(), Linear(8, 1)", DataSpec(dataset, n=60), **settings)


def _trained(optimizer: str, hps: dict, steps: int, **settings):
    """`main.py train` with one run, as core.model_session does it."""
    from core.model_session import train

    session = _model_session(**settings)
    session.add_run(optimizer, hps, steps=steps)
    built = session.build()
    train(built, [steps])
    return built.runs[0]


def test_a_model_lr_sweep_cell_is_main_py_train_with_that_lr() -> None:
    built = _model_session("sine", batch_size=16).build()  # MSELoss: a large lr blows up
    lrs = many.log_spaced(1e-3, 1e3, 7)
    sweep = lr_sweep(built, "SGD(momentum=0.5)", lrs, 40)
    assert isinstance(sweep, many.ModelSweep) and len(sweep.cells) == 7
    for k in (0, 3, 6):
        run = _trained("SGD", {"lr": float(lrs[k]), "momentum": 0.5}, 40, dataset="sine",
                       batch_size=16)
        assert sweep.cells.final_loss[k] == run.trajectory.loss[-1]  # bit for bit
        assert STATUSES[sweep.cells.status[k]] == run.status.value
        assert sweep.cells.steps[k] == run.steps
    assert sweep.cells.status[-1] == DIVERGED  # lr 1000: the run is marked, the others go on
    assert sweep.cells.diverged_at[-1] == run.diverged_at and sweep.cells.reason[-1]
    ok = [k for k in range(7) if sweep.cells.status[k] != DIVERGED]
    assert sweep.best == min(ok, key=lambda k: sweep.cells.final_loss[k])
    data = sweep.to_json()
    assert data["best_lr"] == float(lrs[sweep.best]) and data["status"][-1] == "diverged"
    assert data["final_loss"][0] == float(sweep.cells.final_loss[0])


def test_steps_to_reach_a_loss_tolerance_is_the_first_step_at_or_below_it() -> None:
    built = _model_session().build()
    sweep = many.model_lr_sweep(built, "Adam", [0.01, 0.1], 60, loss_tolerance=0.4)
    run = _trained("Adam", {"lr": 0.1}, 60)
    losses = np.asarray(run.trajectory.loss)
    first = int(np.flatnonzero(losses <= 0.4)[0])
    assert sweep.cells.steps_to_reach()[1] == int(run.trajectory.step[first])
    assert first > 0 and losses[first - 1] > 0.4
    assert sweep.to_csv().splitlines()[0].endswith("steps_to_reach,best")


def test_a_model_momentum_map_cell_is_main_py_train_with_that_setting() -> None:
    built = _model_session().build()
    result = trainability_map(built, "SGD", "momentum", [0.0, 0.9], [0.05, 0.5], 30)
    run = _trained("SGD", {"lr": 0.5, "momentum": 0.9}, 30)
    assert result.cells.final_loss[3] == run.trajectory.loss[-1]
    assert result.best_setting() is not None and set(result.best_setting()) == {"lr", "momentum"}


def test_lr_by_lr_for_two_layers_is_a_plain_loop_with_two_param_groups() -> None:
    import copy

    import torch

    built = _model_session().build()
    result = trainability_map(built, "Adam", "lr:0", [1e-3, 0.1], [1e-2, 0.3], 25)
    assert result.row_names == ("0.weight", "0.bias")
    problem = built.problem
    for k, (layer0, rest) in enumerate([(1e-3, 1e-2), (1e-3, 0.3), (0.1, 1e-2), (0.1, 0.3)]):
        model = copy.deepcopy(built.model)  # a PyTorch user's loop: two param groups
        optimizer = torch.optim.Adam([
            {"params": [model[2].weight, model[2].bias]},
            {"params": [model[0].weight, model[0].bias], "lr": layer0}], lr=rest)
        for _ in range(25):
            optimizer.zero_grad()
            problem.loss_fn(model(problem.X), problem.y).backward()
            optimizer.step()
        with torch.no_grad():
            final = problem.loss_fn(model(problem.X), problem.y).item()
        assert result.cells.final_loss[k] == final
    data = result.to_json()
    assert data["param"] == "lr:0" and data["lr:0"] == [1e-3, 0.1]
    assert data["param_parameters"] == ["0.weight", "0.bias"]
    assert many.is_log_axis("lr:0") and not many.is_log_axis("momentum")


def test_frozen_names_hold_in_every_model_cell() -> None:
    built = _model_session().build()
    sweep = many.model_lr_sweep(built, "SGD", [0.1], 20, frozen=["0.weight"])
    session = _model_session()
    session.add_run("SGD", {"lr": 0.1}, frozen=["0.weight"], steps=20)
    b = session.build()
    from core.model_session import train

    train(b, [20])
    assert sweep.cells.final_loss[0] == b.runs[0].trajectory.loss[-1]
    assert sweep.frozen == ("0.weight",)


def test_bad_model_sweeps_are_one_line_and_run_nothing() -> None:
    built = _model_session().build()
    for call, match in (
            (lambda: many.model_lr_sweep(built, "SGD", [], 10), "at least one"),
            (lambda: trainability_map(built, "SGD", "lr:7", [0.1], [0.1], 10), "layer 7"),
            (lambda: trainability_map(built, "SGD", "lr:1", [0.1], [0.1], 10), "no parameters"),
            (lambda: many.model_lr_sweep(built, "SGD", [0.1], -1), "steps"),
            (lambda: many.model_lr_sweep(built, "SGD", [0.1] * 100, 10 ** 5), "model steps"),
            (lambda: many.model_lr_sweep(built, "SGD", [-1.0], 10), "lr"),
            (lambda: lr_sweep(built, "SGD", [0.1], 10, start=(0.0, 0.0)), "initial weights")):
        with pytest.raises(ValueError, match=match) as info:
            call()
        assert "\n" not in str(info.value)
    with pytest.raises(OptimizerError, match="cannot freeze"):
        many.model_lr_sweep(built, "SGD", [0.1], 10, frozen=["9.weight"])


def test_a_cancel_stops_a_model_sweep_inside_a_cell() -> None:
    built = _model_session().build()
    state = _CancelAfter(3)
    with pytest.raises(BatchCancelled):
        many.model_lr_sweep(built, "SGD", [0.1], 10 ** 4, state=state)
    assert state.asked == 4  # between chunks of one cell's steps, not only between cells


# --- float32, found minima, the public helpers ---------------------------------------------------


def test_float32_basins_are_close_to_float64_and_say_so() -> None:
    surface = get_surface("himmelblau")
    exact = basins(surface, "Adam(lr=0.05)", 32, 300)
    fast = basins(surface, "Adam(lr=0.05)", 32, 300, dtype="float32")
    assert exact.dtype == "float64" and fast.dtype == "float32"
    assert exact.to_json()["dtype"] == "float64" and fast.to_json()["dtype"] == "float32"
    assert len(fast.minima) == len(exact.minima) == 4
    assert float(np.mean(fast.minimum == exact.minimum)) >= 0.99
    converged = (exact.cells.status == CONVERGED) & (fast.cells.status == CONVERGED)
    assert converged.mean() > 0.9
    assert np.abs(fast.cells.final_x[converged] - exact.cells.final_x[converged]).max() < 1e-2
    assert not np.array_equal(fast.cells.final_x, exact.cells.final_x)  # really float32


def test_float32_sweep_says_so_and_a_bad_dtype_is_one_line() -> None:
    surface = get_surface("rosenbrock")
    sweep = lr_sweep(surface, "SGD", [1e-4, 1e-3], 50, dtype="float32")
    assert sweep.to_json()["dtype"] == "float32"
    np.testing.assert_allclose(sweep.cells.final_loss,
                               lr_sweep(surface, "SGD", [1e-4, 1e-3], 50).cells.final_loss,
                               rtol=1e-4)
    with pytest.raises(BatchError, match="float64 or float32"):
        basins(surface, "SGD", 4, 10, dtype="float16")


def test_a_formulas_saddle_is_not_a_found_minimum() -> None:
    # Two minima at (+-1, 0) and a saddle at (0, 0): the starts on x = 0 (an odd grid has that
    # column) settle on the saddle, converged but at no minimum.
    surface = surface_from_formula("(x**2 - 1)**2 + y**2", (-2, 2), (-2, 2))
    result = basins(surface, "SGD(lr=0.05)", 9, 400)
    assert result.known == 0
    assert sorted(round(float(x), 3) for x, _ in result.minima) == [-1.0, 1.0]
    column = result.minimum.reshape(9, 9)[:, 4]
    assert (column == -1).all()
    assert (result.cells.status.reshape(9, 9)[:, 4] == CONVERGED).all()
    others = np.delete(result.minimum.reshape(9, 9), 4, axis=1)
    assert (others >= 0).all()


def test_is_minimum_tells_minima_from_saddles_and_slopes() -> None:
    surface = surface_from_formula("(x**2 - 1)**2 + y**2", (-2, 2), (-2, 2))
    assert many.is_minimum(surface, [(1.0, 0.0), (0.0, 0.0), (0.5, 0.0), (-1.0, 1e-9)],
                           0.01) == [True, False, False, True]
    flat = surface_from_formula("(x - y)**2", (-2, 2), (-2, 2))  # a line of minima
    assert many.is_minimum(flat, [(0.3, 0.3)], 0.01) == [True]


def test_the_public_helpers_check_their_input() -> None:
    assert many.optimizer_setting("Adam(lr=0.05)") == ("Adam", many.optimizer_setting(
        ("Adam", {"lr": 0.05}))[1])
    assert many.check_range("x", (0, 1)) == (0.0, 1.0)
    with pytest.raises(BatchError, match="x range must be"):
        many.check_range("x range", (1, 0))
    with pytest.raises(BatchError, match="whole number"):
        many.check_steps(-1, 4)
    with pytest.raises(BatchError, match="cell-steps"):
        many.check_steps(many.MAX_WORK, 2)
