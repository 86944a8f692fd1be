"""Curvature of a model's loss: Hessian-vector products, top eigenvalues, sharpness.

Everything works on the loss over the model's *trainable* parameters (``requires_grad``), as one
flat float64 vector in ``named_parameters()`` order (see ``ParameterLayout``); frozen parameters
are held where they are. The Hessian is never formed: ``HessianOperator`` records the gradient
with ``create_graph=True`` once and then gives ``H v`` by a second ``torch.autograd.grad`` per
vector (double backward, which every layer supports; forward-over-reverse is not).

The loss is taken with the model in **eval mode** (Dropout off, BatchNorm on its running
statistics), so that it is one deterministic function and BatchNorm's running statistics are not
updated; the model's mode is restored afterwards. Nothing writes to the model or its ``.grad``.

Sharpness is the largest eigenvalue of the Hessian (Cohen et al., 2021); it is compared with
2 / lr by the view.

The iterations take an optional `state` (a gui.worker JobState, or anything with
``is_interruption_requested()``), checked before every Hessian-vector product: a cancelled
measurement raises CurvatureCancelled within one product, so a worker stops soon after it is
asked to (a reset, a new problem, quitting) instead of finishing work nobody will read.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

import numpy as np
import torch
from torch import nn
from torch.func import functional_call

from core.errors import PlaygroundError
from core.problems.model import ParameterLayout

LossFn = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


class CurvatureError(PlaygroundError):
    """Curvature that cannot be computed (no trainable parameters, a non-finite loss)."""


class CurvatureCancelled(Exception):
    """The measurement was asked to stop (its `state` requested an interruption)."""


class StopState(Protocol):
    def is_interruption_requested(self) -> bool: ...


def _check_stop(state: StopState | None) -> None:
    if state is not None and state.is_interruption_requested():
        raise CurvatureCancelled("the curvature measurement was cancelled")


class _EvalMode:
    """Context: the model in eval mode, its previous mode restored afterwards."""

    def __init__(self, model: nn.Module) -> None:
        self.model = model
        self.modes = [(m, m.training) for m in model.modules()]

    def __enter__(self) -> nn.Module:
        self.model.eval()
        return self.model

    def __exit__(self, *exc: object) -> None:
        for module, training in self.modes:
            module.training = training


def eval_mode(model: nn.Module) -> _EvalMode:
    """`with eval_mode(model):` evaluates in eval mode and restores each module's mode."""
    return _EvalMode(model)


class HessianOperator:
    """v -> H v for the loss of `model` on (X, y), H over the trainable parameters (flat).

    `centre` (optional) is a full flat vector of all parameters (layout order) at which to take
    the Hessian instead of the model's current values.
    """

    def __init__(self, model: nn.Module, loss_fn: LossFn, X: torch.Tensor, y: torch.Tensor,
                 centre: torch.Tensor | None = None) -> None:
        self.layout = ParameterLayout.of(model)
        if not any(self.layout.trainable):
            raise CurvatureError("the model has no trainable parameters")
        current = {n: p.detach() for n, p in model.named_parameters()}
        if centre is not None:
            current = {n: t.detach() for n, t in self.layout.unflatten(centre).items()}
        self.names = self.layout.trainable_names
        self._leaves = [current[n].clone().requires_grad_(True) for n in self.names]
        values = dict(current)
        values.update(zip(self.names, self._leaves))
        with torch.enable_grad(), eval_mode(model):  # grad mode is per thread: a worker may
            loss = loss_fn(functional_call(model, values, (X,)), y)  # have it off
            if not torch.isfinite(loss):
                raise CurvatureError(f"the loss is {float(loss)} here; no curvature to measure")
            grads = torch.autograd.grad(loss, self._leaves, create_graph=True, allow_unused=True)
            self.gradient = torch.cat([(torch.zeros_like(leaf) if g is None else g).reshape(-1)
                                       for g, leaf in zip(grads, self._leaves)])
        self.loss = float(loss.detach())
        self.size = int(self.gradient.numel())
        self.dtype = self.gradient.dtype
        self.products = 0  # how many H v were computed (the cost of an eigen-solve)

    def __call__(self, vector: torch.Tensor) -> torch.Tensor:
        """H @ vector (flat over the trainable parameters), detached."""
        if tuple(vector.shape) != (self.size,):
            raise CurvatureError(f"the vector has shape {tuple(vector.shape)}; expected "
                                 f"({self.size},)")
        self.products += 1
        if not self.gradient.requires_grad:  # the gradient does not depend on the parameters
            return torch.zeros_like(vector)
        with torch.enable_grad():
            hv = torch.autograd.grad(self.gradient, self._leaves, grad_outputs=vector.to(
                self.dtype), retain_graph=True, allow_unused=True)
        return torch.cat([(torch.zeros_like(leaf) if h is None else h).reshape(-1)
                          for h, leaf in zip(hv, self._leaves)]).detach()


def hessian_vector_product(model: nn.Module, loss_fn: LossFn, X: torch.Tensor, y: torch.Tensor,
                           vector: torch.Tensor) -> torch.Tensor:
    """H v once (flat over the trainable parameters). For many, make one HessianOperator."""
    return HessianOperator(model, loss_fn, X, y)(vector)


@dataclass(frozen=True, eq=False)
class Eigenpairs:
    """Top Hessian eigenvalues (descending) and unit eigenvectors (rows, flat over trainable).

    `converged` says whether the tolerance was met within the iteration budget; `products` is
    the number of Hessian-vector products spent.
    """

    values: np.ndarray
    vectors: torch.Tensor
    layout: ParameterLayout
    iterations: int
    products: int
    converged: bool

    def full_vector(self, i: int) -> torch.Tensor:
        """Eigenvector i over all parameters (layout order), zero on frozen ones."""
        full = torch.zeros(self.layout.size, dtype=self.vectors.dtype)
        full[self.layout.trainable_mask()] = self.vectors[i]
        return full

    def named(self, i: int) -> dict[str, torch.Tensor]:
        """Eigenvector i as tensors by parameter name (zero on frozen ones)."""
        return self.layout.unflatten(self.full_vector(i))


def _start_vector(size: int, seed: int, dtype: torch.dtype) -> torch.Tensor:
    v = torch.randn(size, generator=torch.Generator().manual_seed(seed), dtype=dtype)
    return v / torch.linalg.vector_norm(v)


def power_iteration(operator: Callable[[torch.Tensor], torch.Tensor], size: int, *,
                    seed: int = 0, tol: float = 1e-10, max_iter: int = 1000,
                    deflate: tuple[tuple[float, torch.Tensor], ...] = (),
                    dtype: torch.dtype = torch.float64, state: StopState | None = None
                    ) -> tuple[float, torch.Tensor, int, bool]:
    """The eigenvalue of largest magnitude of a symmetric operator, and its unit eigenvector.

    Stops when the Rayleigh quotient changes by at most `tol` relative. `deflate` holds found
    pairs (value, unit vector) to project out (Hotelling deflation), for the next ones.
    Returns (value, vector, iterations, converged).
    """
    v = _start_vector(size, seed, dtype)
    value, previous = 0.0, None
    for iteration in range(1, max_iter + 1):
        _check_stop(state)
        w = operator(v)
        for lam, u in deflate:
            w = w - lam * torch.dot(u, v) * u
        value = float(torch.dot(v, w))
        norm = torch.linalg.vector_norm(w)
        if norm == 0:
            return 0.0, v, iteration, True
        v = w / norm
        if previous is not None and abs(value - previous) <= tol * max(abs(value), 1e-300):
            return value, v, iteration, True
        previous = value
    return value, v, max_iter, False


def lanczos(operator: Callable[[torch.Tensor], torch.Tensor], size: int, k: int = 1, *,
            seed: int = 0, tol: float = 1e-10, max_iter: int = 300,
            dtype: torch.dtype = torch.float64, state: StopState | None = None
            ) -> tuple[np.ndarray, torch.Tensor, int, bool]:
    """The k largest (algebraic) eigenvalues of a symmetric operator, by Lanczos.

    Full reorthogonalisation (twice, so the basis stays orthonormal in floating point); a
    breakdown (an invariant subspace) restarts from a fresh vector orthogonal to the basis, so
    a repeated eigenvalue shows all its copies.
    Converged when each of the top k Ritz pairs has residual <= tol * the largest |Ritz value|.
    Returns (values descending, unit vectors as rows, iterations, converged).
    """
    k = max(1, min(k, size))
    steps = min(size, max(max_iter, k))
    generator = torch.Generator().manual_seed(seed)
    basis = torch.zeros(steps, size, dtype=dtype)
    q = torch.randn(size, generator=generator, dtype=dtype)
    basis[0] = q / torch.linalg.vector_norm(q)
    alphas: list[float] = []
    betas: list[float] = []
    converged = False
    ritz = np.zeros(0)
    vectors_t = np.zeros((0, 0))
    j = 0
    for j in range(steps):
        _check_stop(state)
        w = operator(basis[j])
        alpha = float(torch.dot(basis[j], w))
        w = w - alpha * basis[j] - (betas[-1] * basis[j - 1] if j > 0 else 0.0)
        for _ in range(2):
            w = w - basis[:j + 1].T @ (basis[:j + 1] @ w)
        beta = float(torch.linalg.vector_norm(w))
        alphas.append(alpha)
        tridiagonal = np.diag(alphas) + np.diag(betas, 1) + np.diag(betas, -1)
        ritz, vectors_t = np.linalg.eigh(tridiagonal)
        scale = max(float(np.max(np.abs(ritz))), 1e-300)
        breakdown = beta <= 1e-12 * scale
        # After a breakdown the basis spans an invariant subspace whose Ritz values are exact
        # but may miss a repeated eigenvalue's other copies: carry on before judging.
        if j + 1 >= k and not breakdown:
            residuals = beta * np.abs(vectors_t[-1, -k:])
            if np.all(residuals <= tol * scale):
                converged = True
                break
        if j + 1 == size:  # the basis spans the whole space: the values are exact
            converged = True
            break
        if j + 1 == steps:
            break
        if breakdown:  # carry on in the rest of the space
            w = torch.randn(size, generator=generator, dtype=dtype)
            for _ in range(2):
                w = w - basis[:j + 1].T @ (basis[:j + 1] @ w)
            beta_new = float(torch.linalg.vector_norm(w))
            if beta_new == 0:
                converged = True
                break
            betas.append(0.0)
            basis[j + 1] = w / beta_new
        else:
            betas.append(beta)
            basis[j + 1] = w / beta
    m = len(alphas)
    order = np.argsort(ritz)[::-1][:k]
    values = ritz[order].copy()
    coefficients = torch.tensor(vectors_t[:, order], dtype=dtype)  # (m, k)
    vectors = (basis[:m].T @ coefficients).T
    vectors = vectors / torch.linalg.vector_norm(vectors, dim=1, keepdim=True)
    return values, vectors, j + 1, converged


def top_eigenpairs(model: nn.Module, loss_fn: LossFn, X: torch.Tensor, y: torch.Tensor,
                   k: int = 1, *, method: str = "lanczos", seed: int = 0, tol: float = 1e-10,
                   max_iter: int = 300, centre: torch.Tensor | None = None,
                   state: StopState | None = None) -> Eigenpairs:
    """The k largest Hessian eigenpairs of the loss over the trainable parameters.

    method "lanczos": the k largest algebraic eigenvalues. method "power": power iteration with
    deflation; it finds the eigenvalues of largest *magnitude* (the same near a minimum, where
    the Hessian is positive semi-definite). CurvatureCancelled if `state` asks to stop.
    """
    _check_stop(state)
    operator = HessianOperator(model, loss_fn, X, y, centre)
    if method == "lanczos":
        values, vectors, iterations, converged = lanczos(
            operator, operator.size, k, seed=seed, tol=tol, max_iter=max_iter,
            dtype=operator.dtype, state=state)
    elif method == "power":
        found: list[tuple[float, torch.Tensor]] = []
        iterations, converged = 0, True
        for i in range(min(k, operator.size)):
            value, vector, its, ok = power_iteration(
                operator, operator.size, seed=seed + i, tol=tol, max_iter=max_iter,
                deflate=tuple(found), dtype=operator.dtype, state=state)
            found.append((value, vector))
            iterations += its
            converged = converged and ok
        values = np.array([v for v, _ in found])
        vectors = torch.stack([u for _, u in found])
    else:
        raise CurvatureError(f"unknown method {method!r}; use 'lanczos' or 'power'")
    return Eigenpairs(values, vectors, operator.layout, iterations, operator.products, converged)


def sharpness(model: nn.Module, loss_fn: LossFn, X: torch.Tensor, y: torch.Tensor, *,
              method: str = "lanczos", seed: int = 0, tol: float = 1e-6,
              max_iter: int = 100, state: StopState | None = None) -> float:
    """The top Hessian eigenvalue of the loss at the model's current parameters.

    Gradient descent with learning rate lr is stable on a quadratic only while this is below
    2 / lr: the edge of stability (Cohen et al., 2021).
    """
    return float(top_eigenpairs(model, loss_fn, X, y, 1, method=method, seed=seed, tol=tol,
                                max_iter=max_iter, state=state).values[0])
