"""The engine on a problem that is not a surface: named tensors of several shapes, minibatches.

A Run on the toy problem below must be exactly the loop a PyTorch user writes,

    for k in range(steps):
        opt.zero_grad(); loss = problem.loss(params, k); loss.backward(); opt.step()

for every optimizer in the catalogue, with a parameter frozen from the start, another frozen and
unfrozen mid-run, and the learning rate changed mid-run, bit for bit: the values, losses,
gradients and the per-parameter norms the trajectory records.
"""

from __future__ import annotations

import csv
import io
import math

import numpy as np
import pytest
import torch
from torch import Tensor

from core.errors import OptimizerError
from core.optimizers import get_spec
from core.problems.base import Problem
from core.problems.surface import SurfaceProblem
from core.run import Run, RunStatus
from core.surfaces import get_surface
from core.trajectory import SMALL_NUMEL, Trajectory
from tests.core.test_run import IDS, SETTINGS

F64 = torch.float64
STEPS = 25
BATCH = 2


class ToyProblem(Problem):
    """A least-squares fit on minibatches of 8 rows, coupled to a matrix and a scalar.

    w (3,) and M (2, 2) and b () are small enough to be recorded in full; W (5, 4) is not.
    """

    parameter_names = ("w", "M", "b", "W")

    def __init__(self, seed: int = 0) -> None:
        g = torch.Generator().manual_seed(seed)
        self.A = torch.randn(8, 3, generator=g, dtype=F64)
        self.c = torch.randn(8, generator=g, dtype=F64)
        self.T = torch.randn(2, 2, generator=g, dtype=F64)
        self.start = {"w": torch.randn(3, generator=g, dtype=F64),
                      "M": torch.randn(2, 2, generator=g, dtype=F64),
                      "b": torch.tensor(0.5, dtype=F64),
                      "W": 0.1 * torch.randn(5, 4, generator=g, dtype=F64)}

    def initial_parameters(self) -> dict[str, Tensor]:
        return {name: t.clone() for name, t in self.start.items()}

    def loss(self, params: dict[str, Tensor], step: int = 0) -> Tensor:
        rows = [(BATCH * step + i) % len(self.c) for i in range(BATCH)]  # the minibatch
        w, M, b, W = params["w"], params["M"], params["b"], params["W"]
        fit = ((self.A[rows] @ w + b - self.c[rows]) ** 2).mean()
        return (fit + 0.5 * ((M - self.T) ** 2).sum() + 0.1 * M.sum() * w[0]
                + 0.05 * (W ** 2).sum() + 0.01 * W.sum() * b)


def plain_loop(problem: ToyProblem, name: str, hps: dict, steps: int, frozen: tuple = (),
               events: dict[int, list] | None = None) -> dict[str, list]:
    """The reference loop, recording before each step what the trajectory should hold."""
    events = events or {}
    params = {n: t.clone().requires_grad_(n not in frozen)
              for n, t in problem.initial_parameters().items()}
    leaves = [params[n] for n in problem.parameter_names]
    cls = getattr(torch.optim, name)
    current = dict(hps)
    opt = cls(leaves, **current)
    k = 0

    def closure() -> Tensor:
        opt.zero_grad()
        loss = problem.loss(params, k)
        loss.backward()
        return loss

    record: dict[str, list] = {"loss": [], "lr": [], "params": [], "grads": [], "norms": []}
    previous = None
    for k in range(steps + 1):
        for kind, value in events.get(k, []):
            if kind == "lr":
                current["lr"] = value
                if get_spec(name).hyperparameter("lr").live:
                    for group in opt.param_groups:
                        group["lr"] = value
                else:
                    opt = cls(leaves, **current)
            else:
                params[value].requires_grad_(kind == "unfreeze")
                params[value].grad = None
                if name == "LBFGS":
                    opt.state.clear()
        opt.zero_grad()
        loss = problem.loss(params, k)
        loss.backward()
        record["loss"].append(loss.item())
        record["lr"].append(opt.param_groups[0]["lr"])
        record["params"].append({n: p.detach().clone() for n, p in params.items()})
        record["grads"].append({n: None if not p.requires_grad else p.grad.detach().clone()
                                for n, p in params.items()})
        record["norms"].append({n: (p.detach().norm().item(),
                                    math.nan if not p.requires_grad else p.grad.norm().item(),
                                    math.nan if previous is None
                                    else (p.detach() - previous[n]).norm().item())
                                for n, p in params.items()})
        previous = record["params"][-1]
        if k < steps:
            opt.step(closure) if name == "LBFGS" else opt.step()
    record["final"] = {n: p.detach().clone() for n, p in params.items()}
    record["final_grads"] = {n: p.grad for n, p in params.items()}
    return record


def assert_same(run: Run, ref: dict[str, list]) -> None:
    t = run.trajectory
    n = len(ref["loss"])
    final = ref["final"]
    if run.status is RunStatus.DIVERGED:
        # A real explosion (L-BFGS's strong-Wolfe step fitted to one minibatch can be huge on
        # the next): the plain loop's loss explodes too, and up to the engine's stop every
        # step is the same.
        # (A change made after the stop, such as the unfreeze at step 16, is not recorded:
        # the last entry is compared by its loss and point.)
        n = len(t)
        assert max(ref["loss"][:n]) > 1e6 * ref["loss"][0], run.status_text
        final = ref["params"][n - 1]
        np.testing.assert_array_equal(t.loss, ref["loss"][:n])
        n -= 1
    else:
        assert len(t) == n
    ref = {key: values[:n] for key, values in ref.items() if isinstance(values, list)}
    np.testing.assert_array_equal(t.loss[:n], ref["loss"])
    np.testing.assert_array_equal(t.lr[:n], ref["lr"])
    for name in ("w", "M", "b"):
        np.testing.assert_array_equal(t.values(name)[:n],
                                      np.stack([p[name].numpy() for p in ref["params"]]))
        grads = np.array([np.full(p[name].shape, np.nan) if g[name] is None else g[name].numpy()
                          for p, g in zip(ref["params"], ref["grads"])])
        got = np.stack([t.column("grad_" + c)[:n] for c in t.stored[name]], axis=-1)
        np.testing.assert_array_equal(got.reshape(grads.shape), grads, err_msg=name)
    for name in ("w", "M", "W"):  # the norms, as torch computes them
        norms = np.array([row[name] for row in ref["norms"]])
        np.testing.assert_array_equal(t.parameter_value_norm(name)[:n], norms[:, 0],
                                      err_msg=name)
        np.testing.assert_array_equal(t.parameter_grad_norm(name)[:n], norms[:, 1], err_msg=name)
        np.testing.assert_array_equal(t.parameter_update_norm(name)[:n], norms[:, 2],
                                      err_msg=name)
    for name, value in final.items():
        assert torch.equal(run.parameters[name].detach(), value), name


@pytest.mark.parametrize("name, hps", SETTINGS, ids=IDS)
def test_toy_problem_equals_plain_loop_with_freezing_and_an_lr_change(name: str,
                                                                      hps: dict) -> None:
    problem = ToyProblem()
    new_lr = hps["lr"] * 0.5
    ref = plain_loop(problem, name, hps, STEPS, frozen=("M",),
                     events={8: [("freeze", "w")], 12: [("lr", new_lr)],
                             16: [("unfreeze", "w")]})
    run = Run(problem, name, hps, frozen=("M",))
    run.step(8)
    run.set_frozen("w", True)
    run.step(4)
    run.set_hyperparameter("lr", new_lr)
    run.step(4)
    run.set_frozen("w", False)
    run.step(STEPS - 16)
    assert_same(run, ref)
    # M was frozen throughout: bit for bit where it started, and no gradient at all
    assert torch.equal(run.parameters["M"].detach(), problem.start["M"])
    assert run.parameters["M"].grad is None and run.parameters["M"].requires_grad is False
    assert run.config()["frozen"] == ["M"]


@pytest.mark.parametrize("name, hps", [s for s in SETTINGS if s[0] in ("SGD", "Adam", "LBFGS")])
def test_frozen_tensor_stays_bitwise_and_optimizer_state_is_keyed_by_name(name, hps) -> None:
    run = Run(ToyProblem(), name, hps)
    run.step(3)
    run.set_frozen("W", True)
    held = run.parameters["W"].detach().clone()
    run.step(10)
    assert torch.equal(run.parameters["W"].detach(), held)
    assert run.parameters["W"].grad is None
    assert np.all(np.isnan(run.trajectory.parameter_grad_norm("W")[3:]))
    assert np.all(run.trajectory.parameter_update_norm("W")[4:] == 0)
    state = run.optimizer_state()
    assert set(state) == {"w", "M", "b", "W"}
    norms = run.optimizer_state_norms()
    if name == "Adam":
        assert norms["w"]["exp_avg"] == run.optimizer.state[run.parameters["w"]]["exp_avg"].norm()


def test_freezing_an_unknown_name_is_a_clear_error_and_changes_nothing() -> None:
    with pytest.raises(OptimizerError, match=r"cannot freeze 'z': the parameters are w, M, b "
                                             r"and W"):
        Run(ToyProblem(), "SGD", frozen=("z",))
    run = Run(ToyProblem(), "SGD", {"lr": 0.01}, frozen=("b",))
    run.step(2)
    before = (len(run.trajectory), run.frozen, run.status)
    last = list(run.trajectory.last().values())
    with pytest.raises(OptimizerError, match="cannot freeze 'x'"):
        run.set_frozen("x", True)
    assert (len(run.trajectory), run.frozen, run.status) == before
    np.testing.assert_array_equal(list(run.trajectory.last().values()), last)  # NaN == NaN
    with pytest.raises(OptimizerError, match="only for a surface"):
        Run(ToyProblem(), "SGD", start=(0.0, 0.0))


def test_small_parameters_are_stored_in_full_large_ones_as_norms() -> None:
    t = Run(ToyProblem(), "SGD", {"lr": 0.01}).trajectory
    assert set(t.stored) == {"w", "M", "b"} and t.normed == ("w", "M", "W")
    assert t.stored["M"] == ["M[0,0]", "M[0,1]", "M[1,0]", "M[1,1]"]
    assert SMALL_NUMEL < 5 * 4 and "W[0,0]" not in t.fields
    with pytest.raises(KeyError, match="not recorded in full"):
        t.values("W")
    d = t.to_dict()
    assert list(d) == list(t.fields) and "grad_norm:W" in d and "x" not in d


def test_surface_problem_is_the_race() -> None:
    surface = get_surface("rosenbrock")
    race = Run(surface, "Adam", {"lr": 0.05}, frozen=("y",))
    problem = Run(SurfaceProblem(surface), "Adam", {"lr": 0.05}, frozen=("y",))
    race.step(40)
    problem.step(40)
    assert race.trajectory.fields == problem.trajectory.fields == (
        "step", "x", "y", "loss", "grad_x", "grad_y", "lr")
    np.testing.assert_array_equal(race.trajectory._buf[:, :41], problem.trajectory._buf[:, :41])
    assert race.surface is surface and race.start == surface.start
    assert problem.problem.describe()["kind"] == "surface"
    assert race.last_point == (race.x.item(), race.y.item())
    assert race.last_update_norms["y"] == 0.0


def test_a_general_trajectory_thins_whole_rows() -> None:
    t = Trajectory(capacity=64, parameters={"v": (2,), "big": (30,)})
    assert t.fields == ("step", "v[0]", "v[1]", "loss", "grad_v[0]", "grad_v[1]", "lr",
                        "value_norm:v", "grad_norm:v", "update_norm:v",
                        "value_norm:big", "grad_norm:big", "update_norm:big")
    for k in range(1000):
        t.append(*([float(k)] * len(t.fields)))
    assert len(t) <= 64 and t.step[-1] == 999 and t.step[0] == 0
    for f in t.fields:
        np.testing.assert_array_equal(t.column(f), t.step)
    with pytest.raises(ValueError, match="13 fields"):
        t.append(1.0, 2.0)


def test_status_of_a_problem_without_a_region() -> None:
    class Quadratic(Problem):
        parameter_names = ("v",)

        def initial_parameters(self) -> dict[str, Tensor]:
            return {"v": torch.tensor([3.0, -2.0, 1.0], dtype=F64)}

        def loss(self, params: dict[str, Tensor], step: int = 0) -> Tensor:
            return (params["v"] ** 2).sum()

    converging = Run(Quadratic(), "SGD", {"lr": 0.25})
    converging.step(200)
    assert converging.status is RunStatus.CONVERGED
    exploding = Run(Quadratic(), "SGD", {"lr": 1.5})
    exploding.step(200)
    assert exploding.status is RunStatus.DIVERGED
    assert "exploded" in exploding.divergence_reason or "non-finite" in \
        exploding.divergence_reason
    frozen = Run(Quadratic(), "SGD", {"lr": 0.1}, frozen=("v",))
    assert frozen.status is RunStatus.FROZEN
    assert frozen.state_text == "frozen: every parameter is frozen"
    walled = Run(Quadratic(), "SGD", {"lr": 1.5}, bound=100.0)
    walled.step(50)
    assert walled.status is RunStatus.DIVERGED and "past the bound 100" in \
        walled.divergence_reason


def test_csv_export_has_a_column_per_recorded_field_of_a_problem() -> None:
    from types import SimpleNamespace

    from core.export import CSV_COLUMNS, to_csv

    run = Run(ToyProblem(), "SGD", {"lr": 0.01}, frozen=("b",))
    run.step(3)
    lines = list(csv.reader(io.StringIO(to_csv(SimpleNamespace(runs=[run])))))  # type: ignore
    header = lines[0]
    assert header[:4] == list(CSV_COLUMNS[:4]) and tuple(header[4:]) == run.trajectory.fields
    assert len(lines) == 1 + 4
    last = dict(zip(header, lines[-1], strict=True))
    assert last["step"] == "3" and last["grad_b"] == "" and last["grad_norm:W"] != ""
    assert float(last["M[1,0]"]) == run.parameters["M"][1, 0].item()


def test_norms_of_a_one_element_tensor_are_read_off_its_single_column():
    # A Linear(16, 1)'s bias has shape (1,): one value column 'b[0]', no norm columns; its
    # norms were looked up under 'b' and 'grad_b' and raised KeyError.
    import torch

    from core.problems.base import Problem
    from core.run import Run

    class OneBias(Problem):
        parameter_names = ("w", "b")

        def initial_parameters(self):
            return {"w": torch.tensor([1.0, -2.0], dtype=torch.float64),
                    "b": torch.tensor([0.5], dtype=torch.float64)}

        def loss(self, params, step=0):
            return (params["w"] ** 2).sum() + 3 * (params["b"] ** 2).sum()

        def scale(self):
            return None

        def describe(self):
            return {"name": "one bias"}

    run = Run(OneBias(), "SGD", {"lr": 0.1})
    run.step(3)
    t = run.trajectory
    b = t.values("b")[:, 0]
    assert np.array_equal(t.parameter_value_norm("b"), np.abs(b))
    assert np.array_equal(t.parameter_grad_norm("b"), np.abs(6 * b))
    assert np.array_equal(t.parameter_update_norm("b")[1:], np.abs(np.diff(b)))
    assert np.isfinite(t.grad_norm).all()
