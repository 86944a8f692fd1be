"""A small model's leaves and gradients in flat buffers (core/run.py `Run._flat_leaves`): the
.grad a run holds is, bit for bit, the one the textbook loop's backward leaves after
zero_grad() (set to None), signed zeros included (torch's reductions never give a layer's
parameter -0.0, so a problem of our own does); a parameter the loss does not reach keeps
no .grad, as torch's optimizers expect; freezing takes the .grad away and brings it back."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from core.problems.data import make_dataset, make_loss, shape_targets
from core.problems.base import Problem
from core.problems.model import build_model
from core.problems.training import ModelProblem
from core.run import Run, RunStatus

torch.set_num_threads(1)


def bits(t: torch.Tensor) -> list[int]:
    """Every element's bit pattern (tells -0.0 from 0.0)."""
    return t.detach().contiguous().view(torch.int64).flatten().tolist()


def textbook(model: nn.Module, X, y, loss_fn, name: str, hps: dict, steps: int):
    """The loop a PyTorch user writes; the gradients at each point it reaches, after its step
    k (the gradient the engine holds after step(k)), and its final parameters."""
    opt = getattr(torch.optim, name)(model.parameters(), **hps)
    grads = []
    for k in range(steps + 1):
        opt.zero_grad()
        loss_fn(model(X), y).backward()
        grads.append({n: (None if p.grad is None else p.grad.clone())
                      for n, p in model.named_parameters()})
        if k < steps:
            opt.step()
    return grads


@pytest.mark.parametrize("name, hps", [("SGD", {"lr": 0.1, "momentum": 0.9}),
                                       ("Adam", {"lr": 0.01})])
def test_a_deep_model_holds_the_textbook_gradient_bit_for_bit(name, hps) -> None:
    # three Linear layers: the middle ones save their weights for backward, so the gradients'
    # in-place filling must not look like a change to the values
    data = make_dataset("moons", n=60, seed=1)
    spec = "Linear(2, 12), ReLU(), Linear(12, 12), Tanh(), Linear(12, 12), ReLU(), Linear(12, 1)"
    y = shape_targets(data.y, "BCEWithLogitsLoss")
    loss_fn = make_loss("BCEWithLogitsLoss", data.task)
    reference = build_model(spec, 2, seed=4)
    grads = textbook(reference, data.X, y, loss_fn, name, hps, steps=30)
    problem = ModelProblem(build_model(spec, 2, seed=4), data.X, y, loss_fn)
    assert problem.every_parameter_used
    run = Run(problem, name, dict(hps))
    for k in range(31):
        if k:
            run.step(1)
        assert run.status is RunStatus.RUNNING, run.status_text
        for n, p in run.parameters.items():
            assert bits(p.grad) == bits(grads[k][n]), (k, n)
    for n, p in reference.named_parameters():
        assert bits(run.parameters[n]) == bits(p), n


class SignedZeros(Problem):
    """A problem that declares every parameter used, whose gradient has an exact -0.0: the
    gradient of sum(w * c) is c, and c holds a -0.0."""

    parameter_names = ("w",)
    every_parameter_used = True
    c = torch.tensor([[-0.0, 1.0], [2.0, -0.0]], dtype=torch.float64)

    def initial_parameters(self) -> dict[str, torch.Tensor]:
        return {"w": torch.tensor([[1.0, -2.0], [0.5, 3.0]], dtype=torch.float64)}

    def loss(self, params: dict[str, torch.Tensor], step: int = 0) -> torch.Tensor:
        return (params["w"] * self.c).sum()


def test_a_gradient_of_minus_zero_is_minus_zero() -> None:
    w = SignedZeros().initial_parameters()["w"].requires_grad_()
    opt = torch.optim.SGD([w], lr=0.1)
    opt.zero_grad()
    (w * SignedZeros.c).sum().backward()
    assert torch.signbit(w.grad[0, 0]) and w.grad[0, 0] == 0  # what is to be matched
    run = Run(SignedZeros(), "SGD", {"lr": 0.1})
    assert run._flat is not None  # the flat buffers are what is under test
    for k in range(3):
        assert bits(run.parameters["w"].grad) == bits(w.grad), k
        run.step(1)
        opt.step()
        opt.zero_grad()
        (w * SignedZeros.c).sum().backward()
    assert bits(run.parameters["w"]) == bits(w)


class HalfUsed(nn.Module):
    """A module whose second weight never reaches the output."""

    def __init__(self) -> None:
        super().__init__()
        self.used = nn.Linear(2, 1)
        self.unused = nn.Linear(2, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.used(x)


def half_used_by_torch_nn() -> nn.Module:
    """torch.nn layers only, one holding a parameter its forward never reads."""
    model = nn.Sequential(nn.Linear(2, 1), nn.Identity())
    model[1].register_parameter("weight", nn.Parameter(torch.randn(1, 2)))
    return model


@pytest.mark.parametrize("make, unused", [(HalfUsed, "unused.weight"),
                                          (half_used_by_torch_nn, "1.weight")])
def test_a_parameter_the_loss_never_reaches_keeps_no_grad_and_is_skipped(make,
                                                                          unused) -> None:
    torch.manual_seed(0)
    model = make().double()
    X = torch.randn(16, 2, dtype=torch.float64)
    y = torch.randn(16, 1, dtype=torch.float64)
    hps = {"lr": 0.1, "weight_decay": 0.5}  # a present zero .grad would be decayed
    reference = make().double()
    reference.load_state_dict(model.state_dict())
    opt = torch.optim.Adam(reference.parameters(), **hps)
    for _ in range(5):
        opt.zero_grad()
        nn.MSELoss()(reference(X), y).backward()
        opt.step()
    problem = ModelProblem(model, X, y, nn.MSELoss())
    assert not problem.every_parameter_used
    run = Run(problem, "Adam", dict(hps))
    run.step(5)
    for n, p in reference.named_parameters():
        assert torch.equal(run.parameters[n].detach(), p.detach()), n
    assert torch.equal(run.parameters[unused].detach(), dict(model.named_parameters())[unused])
    assert run.parameters[unused].grad is None
    assert run.parameters[unused] not in run.optimizer.state


def test_every_parameter_used_asks_torch_nn_layers_only() -> None:
    data = make_dataset("moons", n=20, seed=0)
    y = shape_targets(data.y, "BCEWithLogitsLoss")
    loss_fn = make_loss("BCEWithLogitsLoss", data.task)
    for spec in ("Linear(2, 1)", "Linear(2, 8), BatchNorm1d(8), ReLU(), Dropout(0.5), "
                 "Linear(8, 1)"):
        assert ModelProblem(build_model(spec, 2, seed=0), data.X, y, loss_fn) \
            .every_parameter_used, spec

    class Custom(nn.Module):  # every parameter used, but a Python forward could branch
        def __init__(self) -> None:
            super().__init__()
            self.layer = nn.Linear(2, 1)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.layer(x)

    assert not ModelProblem(Custom().double(), data.X, y, loss_fn).every_parameter_used


def test_freezing_takes_the_grad_away_and_the_record_says_nan() -> None:
    data = make_dataset("moons", n=40, seed=0)
    y = shape_targets(data.y, "BCEWithLogitsLoss")
    loss_fn = make_loss("BCEWithLogitsLoss", data.task)
    spec = "Linear(2, 8), Tanh(), Linear(8, 1)"
    problem = ModelProblem(build_model(spec, 2, seed=0), data.X, y, loss_fn)
    run = Run(problem, "SGD", {"lr": 0.1})
    run.step(20)
    frozen_at = run.parameters["0.weight"].detach().clone()
    run.set_frozen("0.weight", True)
    assert run.parameters["0.weight"].grad is None
    run.step(20)
    assert torch.equal(run.parameters["0.weight"].detach(), frozen_at)
    assert run.parameters["0.weight"].grad is None
    norms = run.trajectory.column("grad_norm:0.weight")
    # entry 20 is taken again with the freeze in place: no gradient there either
    assert all(math.isfinite(v) for v in norms[:20]) and all(math.isnan(v) for v in norms[20:])
    assert all(math.isfinite(v) for v in run.trajectory.column("grad_norm:2.weight"))
    run.set_frozen("0.weight", False)
    run.step(5)
    # the textbook loop with the same freezes: 20 steps, 20 frozen, 5 free
    reference = build_model(spec, 2, seed=0)
    opt = torch.optim.SGD(reference.parameters(), lr=0.1)
    for k in range(45):
        reference[0].weight.requires_grad_(not 20 <= k < 40)
        opt.zero_grad()
        loss_fn(reference(data.X), y).backward()
        opt.step()
    opt.zero_grad()
    loss_fn(reference(data.X), y).backward()
    for n, p in reference.named_parameters():
        assert bits(run.parameters[n]) == bits(p), n
        assert bits(run.parameters[n].grad) == bits(p.grad), n
