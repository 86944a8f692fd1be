"""core/curvature.py against the full Hessian from torch.autograd.functional.hessian."""

from __future__ import annotations

import pytest
import torch
from torch import nn
from torch.func import functional_call

from core.curvature import (
    CurvatureError, HessianOperator, hessian_vector_product, lanczos, power_iteration,
    sharpness, top_eigenpairs,
)
from core.problems.data import default_loss, make_dataset, make_loss, shape_targets
from core.problems.model import build_model


def problem(model_text: str, dataset: str, n: int = 60, seed: int = 0):
    data = make_dataset(dataset, n=n, seed=seed)
    loss_name = default_loss(data.task)
    outputs = 3 if data.task == "multiclass" else 1
    model = build_model(model_text.format(out=outputs), data.n_features, seed=seed)
    return model, make_loss(loss_name, data.task), data.X, shape_targets(data.y, loss_name)


def full_hessian(model: nn.Module, loss_fn, X, y) -> torch.Tensor:
    """The Hessian over the trainable parameters, the plain way: a function of one flat vector."""
    names = [n for n, p in model.named_parameters() if p.requires_grad]
    params = dict(model.named_parameters())
    shapes = [params[n].shape for n in names]
    flat = torch.cat([params[n].detach().reshape(-1) for n in names])

    def loss_of(vector: torch.Tensor) -> torch.Tensor:
        values, start = {}, 0
        for name, shape in zip(names, shapes):
            values[name] = vector[start:start + shape.numel()].reshape(shape)
            start += shape.numel()
        return loss_fn(functional_call(model.eval(), values, (X,)), y)

    return torch.autograd.functional.hessian(loss_of, flat)


CASES = [
    ("Linear(1, 1)", "line"),
    ("Linear(2, 1)", "moons"),
    ("Linear(2, {out})", "blobs"),
    ("Linear(2, 8), Tanh(), Linear(8, {out})", "moons"),
    ("Linear(2, 6), GELU(), LayerNorm(6), Linear(6, {out})", "blobs"),
    ("Linear(1, 8), Softplus(), Linear(8, 1)", "sine"),
]


@pytest.mark.parametrize("model_text, dataset", CASES)
def test_lanczos_top_two_equal_the_full_hessians(model_text: str, dataset: str) -> None:
    model, loss_fn, X, y = problem(model_text, dataset)
    H = full_hessian(model, loss_fn, X, y)
    expected, vectors = torch.linalg.eigh(H)
    pairs = top_eigenpairs(model, loss_fn, X, y, k=2)
    assert pairs.converged
    k = min(2, H.shape[0])
    for i in range(k):
        top = float(expected[-1 - i])
        assert abs(pairs.values[i] - top) <= 1e-8 * abs(float(expected[-1])), (i, pairs.values)
        v = pairs.vectors[i]
        assert abs(float(v.norm()) - 1) < 1e-10
        residual = H @ v - float(pairs.values[i]) * v  # an eigenvector, whatever its sign
        assert float(residual.norm()) <= 1e-6 * abs(float(expected[-1]))


def test_power_iteration_finds_the_top_eigenvalue_and_deflation_the_next() -> None:
    model, loss_fn, X, y = problem("Linear(2, 1)", "moons")
    expected = torch.linalg.eigvalsh(full_hessian(model, loss_fn, X, y))
    pairs = top_eigenpairs(model, loss_fn, X, y, k=2, method="power", tol=1e-14, max_iter=5000)
    assert pairs.converged
    assert pairs.values[0] == pytest.approx(float(expected[-1]), rel=1e-8)
    assert pairs.values[1] == pytest.approx(float(expected[-2]), rel=1e-6)
    assert sharpness(model, loss_fn, X, y, method="power", tol=1e-14, max_iter=5000) == \
        pytest.approx(float(expected[-1]), rel=1e-8)


def test_hvp_equals_the_full_hessian_times_v_and_touches_nothing() -> None:
    model, loss_fn, X, y = problem("Linear(2, 5), Tanh(), Linear(5, 1)", "moons")
    model.train()
    before = [p.detach().clone() for p in model.parameters()]
    H = full_hessian(model, loss_fn, X, y)
    model.train()
    v = torch.randn(H.shape[0], dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    torch.testing.assert_close(hessian_vector_product(model, loss_fn, X, y, v), H @ v,
                               rtol=1e-10, atol=1e-12)
    assert model.training  # the mode is restored
    for p, b in zip(model.parameters(), before):
        assert torch.equal(p, b) and p.grad is None


def test_frozen_parameters_are_left_out_of_the_hessian() -> None:
    model, loss_fn, X, y = problem("Linear(2, 4), Tanh(), Linear(4, 1)", "moons")
    model[0].weight.requires_grad_(False)
    operator = HessianOperator(model, loss_fn, X, y)
    assert operator.size == 4 + 4 + 1
    H = full_hessian(model, loss_fn, X, y)  # over the trainable ones only
    assert H.shape == (9, 9)
    eye = torch.eye(9, dtype=torch.float64)
    torch.testing.assert_close(torch.stack([operator(e) for e in eye], 1), H,
                               rtol=1e-10, atol=1e-12)
    pairs = top_eigenpairs(model, loss_fn, X, y, k=1)
    assert torch.all(pairs.named(0)["0.weight"] == 0)
    assert pairs.full_vector(0).shape == (8 + 9,)


def test_dropout_and_batchnorm_are_measured_in_eval_mode_without_updating_statistics() -> None:
    model, loss_fn, X, y = problem("Linear(2, 6), BatchNorm1d(6), Tanh(), Dropout(p=0.5), "
                                   "Linear(6, 1)", "moons")
    with torch.no_grad():
        model.train()(X)  # running statistics that differ from the initial ones
    stats = model[1].running_mean.clone()
    first = sharpness(model, loss_fn, X, y, tol=1e-12)
    assert sharpness(model, loss_fn, X, y, tol=1e-12) == first  # deterministic: no dropout
    assert torch.equal(model[1].running_mean, stats) and model.training
    expected = torch.linalg.eigvalsh(full_hessian(model, loss_fn, X, y))
    assert first == pytest.approx(float(expected[-1]), rel=1e-8)


def test_curvature_works_with_grad_mode_off_as_in_a_worker() -> None:
    model, loss_fn, X, y = problem("Linear(2, 3), Tanh(), Linear(3, 1)", "moons")
    expected = sharpness(model, loss_fn, X, y, tol=1e-12)
    with torch.no_grad():
        assert sharpness(model, loss_fn, X, y, tol=1e-12) == expected


def test_lanczos_handles_repeated_eigenvalues_and_power_iteration_a_plain_matrix() -> None:
    diagonal = torch.tensor([5.0, 5.0, 1.0, -7.0, 0.5], dtype=torch.float64)
    values, vectors, _, converged = lanczos(lambda v: diagonal * v, 5, k=2, tol=1e-12)
    assert converged and values.tolist() == pytest.approx([5.0, 5.0], rel=1e-12)
    value, _, _, ok = power_iteration(lambda v: diagonal * v, 5, tol=1e-14, max_iter=10_000)
    assert ok and value == pytest.approx(-7.0, rel=1e-10)  # the largest magnitude


def test_no_trainable_parameters_is_a_clear_error() -> None:
    model, loss_fn, X, y = problem("Linear(2, 1)", "moons")
    for p in model.parameters():
        p.requires_grad_(False)
    with pytest.raises(CurvatureError, match="no trainable parameters"):
        sharpness(model, loss_fn, X, y)
    with pytest.raises(CurvatureError, match="unknown method"):
        model[0].bias.requires_grad_(True)
        top_eigenpairs(model, loss_fn, X, y, method="magic")


class _StopAfter:
    """A stand-in for a worker's state: asks to stop after `n` checks, counting them."""

    def __init__(self, n: int) -> None:
        self.n, self.checks = n, 0

    def is_interruption_requested(self) -> bool:
        self.checks += 1
        return self.checks > self.n


@pytest.mark.parametrize("method", ["lanczos", "power"])
def test_a_measurement_stops_within_one_product_when_asked(method) -> None:
    from core.curvature import CurvatureCancelled
    calls = []
    diagonal = torch.linspace(1.0, 2.0, 50, dtype=torch.float64)

    def operator(v: torch.Tensor) -> torch.Tensor:
        calls.append(1)
        return diagonal * v

    state = _StopAfter(3)
    run = lanczos if method == "lanczos" else power_iteration
    with pytest.raises(CurvatureCancelled):
        run(operator, 50, tol=1e-300, max_iter=1000, state=state)
    assert len(calls) == 3  # three products, then the fourth check stopped it
    # without a request it runs to the end and finds the top eigenvalue
    result = run(operator, 50, tol=1e-12, max_iter=5000, state=_StopAfter(10 ** 9))
    top = result[0][0] if method == "lanczos" else result[0]
    assert top == pytest.approx(2.0, rel=1e-6)
