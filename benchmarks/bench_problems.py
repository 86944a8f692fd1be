"""Engine figures for problems that are not a surface: Run.step against a plain torch loop.

    .venv/bin/python benchmarks/bench_problems.py

A least-squares problem with named parameters of several sizes (a (3,) vector, a (4, 4)
matrix, a (64, 64) matrix: the first two are recorded in full, the third as norms) is stepped
by the engine and by the textbook loop (zero_grad, loss, backward, step) in the same process,
repeats interleaved, CPU time (time.process_time, so other processes' load counts less). The
ratio engine/plain is what the bookkeeping (the record, the status rules) costs.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch  # noqa: E402
from torch import Tensor, nn  # noqa: E402

from core.problems.base import Problem  # noqa: E402
from core.problems.data import make_dataset, make_loss, shape_targets  # noqa: E402
from core.problems.model import build_model  # noqa: E402
from core.problems.training import ModelProblem  # noqa: E402
from core.run import Run  # noqa: E402

torch.set_num_threads(1)
F64 = torch.float64
STEPS = 1000
REPEATS = 7


class LeastSquares(Problem):
    """|A v - c|^2 + |M - T|^2 + |W - U|^2 / n, with fixed random data."""

    parameter_names = ("v", "M", "W")

    def __init__(self) -> None:
        g = torch.Generator().manual_seed(0)
        self.A = torch.randn(16, 3, generator=g, dtype=F64)
        self.c = torch.randn(16, generator=g, dtype=F64)
        self.T = torch.randn(4, 4, generator=g, dtype=F64)
        self.U = torch.randn(64, 64, generator=g, dtype=F64)

    def initial_parameters(self) -> dict[str, Tensor]:
        return {"v": torch.zeros(3, dtype=F64), "M": torch.zeros(4, 4, dtype=F64),
                "W": torch.zeros(64, 64, dtype=F64)}

    def loss(self, params: dict[str, Tensor], step: int = 0) -> Tensor:
        return (((self.A @ params["v"] - self.c) ** 2).sum() + ((params["M"] - self.T) ** 2).sum()
                + ((params["W"] - self.U) ** 2).mean())


class TinyMLP(Problem):
    """A 2-16-1 tanh network on 200 points (the small MLP's size), written with tensors."""

    parameter_names = ("0.weight", "0.bias", "2.weight", "2.bias")

    def __init__(self) -> None:
        g = torch.Generator().manual_seed(0)
        self.X = torch.randn(200, 2, generator=g, dtype=F64)
        self.y = torch.sin(self.X.sum(1, keepdim=True))
        self.start = {"0.weight": 0.5 * torch.randn(16, 2, generator=g, dtype=F64),
                      "0.bias": torch.zeros(16, dtype=F64),
                      "2.weight": 0.25 * torch.randn(1, 16, generator=g, dtype=F64),
                      "2.bias": torch.zeros(1, dtype=F64)}

    def initial_parameters(self) -> dict[str, Tensor]:
        return {n: t.clone() for n, t in self.start.items()}

    def loss(self, params: dict[str, Tensor], step: int = 0) -> Tensor:
        hidden = torch.tanh(self.X @ params["0.weight"].T + params["0.bias"])
        return ((hidden @ params["2.weight"].T + params["2.bias"] - self.y) ** 2).mean()


def engine(problem: Problem, name: str, hps: dict) -> float:
    run = Run(problem, name, hps)
    t = time.process_time()
    run.step(STEPS)
    return STEPS / (time.process_time() - t)


def plain(problem: Problem, name: str, hps: dict) -> float:
    params = {n: p.requires_grad_() for n, p in problem.initial_parameters().items()}
    opt = getattr(torch.optim, name)(list(params.values()), **hps)
    t = time.process_time()
    for k in range(STEPS):
        opt.zero_grad()
        problem.loss(params, k).backward()
        opt.step()
    return STEPS / (time.process_time() - t)


def model_case(spec: str) -> tuple[ModelProblem, nn.Module, Tensor, Tensor, nn.Module]:
    """A model preset on 200 rows of two moons: the engine's problem and the same model."""
    data = make_dataset("moons", n=200, seed=0)
    y = shape_targets(data.y, "BCEWithLogitsLoss")
    loss_fn = make_loss("BCEWithLogitsLoss", data.task)
    problem = ModelProblem(build_model(spec, 2, seed=0), data.X, y, loss_fn)
    return problem, build_model(spec, 2, seed=0), data.X, y, loss_fn


def plain_model(model: nn.Module, X: Tensor, y: Tensor, loss_fn: nn.Module, name: str,
                hps: dict) -> float:
    """The textbook nn loop on the model itself."""
    opt = getattr(torch.optim, name)(model.parameters(), **hps)
    t = time.process_time()
    for _ in range(STEPS):
        opt.zero_grad()
        loss_fn(model(X), y).backward()
        opt.step()
    return STEPS / (time.process_time() - t)


def main() -> None:
    print(f"torch {torch.__version__}, 1 thread; {STEPS} steps, best of {REPEATS} interleaved")
    print(f"    {'optimizer':<10} {'engine':>10} {'plain':>10} {'ratio':>8}")
    for problem in (LeastSquares(), TinyMLP()):
        print(f"  {type(problem).__name__}")
        for name, hps in (("SGD", {"lr": 1e-3}), ("Adam", {"lr": 1e-2})):
            e = p = 0.0
            for _ in range(REPEATS):
                e = max(e, engine(problem, name, hps))
                p = max(p, plain(problem, name, hps))
            verdict = "ok" if e / p >= 0.85 else "MISSES the 15% target"
            print(f"    {name:<10} {e:>10.0f} {p:>10.0f} {e / p:>8.3f}  {verdict}")
    for spec in ("Linear(2, 1)", "Linear(2, 16), Tanh(), Linear(16, 1)",
                 "Linear(2, 32), ReLU(), Linear(32, 32), ReLU(), Linear(32, 1)"):
        print(f"  ModelProblem {spec} on 200 rows, full batch (plain: model(X) itself)")
        for name, hps in (("SGD", {"lr": 1e-3}), ("Adam", {"lr": 1e-2})):
            e = p = 0.0
            for _ in range(REPEATS):
                problem, model, X, y, loss_fn = model_case(spec)
                e = max(e, engine(problem, name, hps))
                p = max(p, plain_model(model, X, y, loss_fn, name, hps))
            verdict = "ok" if e / p >= 0.85 else "MISSES the 15% target"
            print(f"    {name:<10} {e:>10.0f} {p:>10.0f} {e / p:>8.3f}  {verdict}")


if __name__ == "__main__":
    main()
