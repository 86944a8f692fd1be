"""Loss landscapes of a model: the exact surface over two scalars, and 2-D slices through θ₀.

A slice is θ(α, β) = θ₀ + α·d₁ + β·d₂ over a grid of (α, β), with directions

* ``random_directions``: filter-normalised Gaussian directions (Li et al., 2018). For every
  weight with two or more dimensions, each row (a neuron's incoming weights, the "filter") is
  scaled to the norm of the same row of θ₀. Biases and other 1-D parameters (LayerNorm and
  BatchNorm weights) get **zero** direction, as Li et al. do (``one_d="filter"`` instead scales
  each such tensor as one filter).
* ``pca_directions``: the top two principal directions of several runs' paths together
  (one shared plane), with the explained variance ratio; orthonormal.
* ``hessian_directions``: the top two Hessian eigenvectors at the centre (core.curvature).

Frozen parameters stay at θ₀: their direction entries are zero. Grids are evaluated batched,
``torch.func.vmap`` over ``torch.func.functional_call`` in chunks (bounded memory), under
``no_grad`` and in eval mode (Dropout off, BatchNorm on running statistics, as test loss is). Long
evaluations take a `state` with ``set_progress(fraction)`` and ``is_interruption_requested()``
(or None) and raise LandscapeCancelled when asked to stop. Results are copied numpy arrays.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np
import torch
from torch import nn
from torch.func import functional_call, vmap

from core.curvature import CurvatureCancelled, LossFn, eval_mode, top_eigenpairs
from core.errors import PlaygroundError
from core.problems.model import ParameterLayout, parameters_vector

MEMORY_BUDGET = 24 * 2 ** 20  # bytes per chunk of grid points: big enough to batch, small
# enough that intermediates stay near the cache (101x101, small MLP, 200 rows: chunks of 16 took
# 290 ms, 128-306 took 190-200 ms, 4096 took 360 ms)
MAX_GRID = 1001


class LandscapeError(PlaygroundError):
    """A landscape that cannot be computed as asked."""


class LandscapeCancelled(Exception):
    """The state asked to stop; nothing partial is returned."""


class ProgressState(Protocol):
    """What a long landscape evaluation reports to and asks of (gui/common/worker gives one)."""

    def set_progress(self, fraction: float) -> None: ...

    def is_interruption_requested(self) -> bool: ...


@dataclass(frozen=True, eq=False)
class LossGrid:
    """The loss over a grid: `loss[i, j]` at (x_values[j], y_values[i]) (rows along y).

    For an exact surface the axes are two parameters' values (names such as '0.weight' and
    '0.bias'); for a slice they are 'alpha' and 'beta' and `centre_loss` is the loss at θ₀.
    """

    kind: str
    x_name: str
    y_name: str
    x_values: np.ndarray
    y_values: np.ndarray
    loss: np.ndarray
    centre_loss: float

    def to_json(self) -> dict[str, Any]:
        """{"x": {"name", "values"}, "y": {...}, "loss": [[...]]}; non-finite losses are null."""
        def clean(row: np.ndarray) -> list[float | None]:
            return [float(v) if math.isfinite(v) else None for v in row]
        return {"kind": self.kind,
                "x": {"name": self.x_name, "values": clean(self.x_values)},
                "y": {"name": self.y_name, "values": clean(self.y_values)},
                "loss": [clean(row) for row in self.loss],
                "centre_loss": self.centre_loss if math.isfinite(self.centre_loss) else None}


# --- evaluation ----------------------------------------------------------------------------------

def axis(centre: float, span: float, n: int) -> np.ndarray:
    """n values from centre - span to centre + span; for odd n the middle one is exactly centre."""
    if isinstance(n, bool) or not isinstance(n, int) or not 2 <= n <= MAX_GRID:
        raise LandscapeError(f"the grid size must be a whole number from 2 to {MAX_GRID}, "
                             f"got {n!r}")
    if not (math.isfinite(span) and span > 0):
        raise LandscapeError(f"the span must be a positive number, got {span!r}")
    values = centre + span * np.linspace(-1.0, 1.0, n)
    if n % 2 == 1:
        values[n // 2] = centre
    return values


def _activation_width(model: nn.Module, X: torch.Tensor) -> int:
    """Numbers every module outputs per data row (to size chunks of grid points)."""
    widths: list[int] = []
    hooks = [m.register_forward_hook(lambda _m, _i, out: widths.append(out[0].numel()))
             for m in model.modules()]
    try:
        with torch.no_grad(), eval_mode(model):
            model(X[:1])
    finally:
        for h in hooks:
            h.remove()
    return max(1, sum(widths))


def chunk_size_for(model: nn.Module, X: torch.Tensor, budget: int = MEMORY_BUDGET) -> int:
    """Grid points per vmap call so that one call's tensors stay within `budget` bytes."""
    per_point = 8 * (2 * sum(p.numel() for p in model.parameters())
                     + 3 * X.shape[0] * _activation_width(model, X))
    return max(1, budget // per_point)


def evaluate_losses(model: nn.Module, loss_fn: LossFn, X: torch.Tensor, y: torch.Tensor,
                    count: int, flat_points: Callable[[int, int], torch.Tensor], *,
                    state: ProgressState | None = None, chunk_size: int | None = None,
                    dtype: torch.dtype = torch.float64) -> np.ndarray:
    """The loss at `count` parameter points, `flat_points(start, stop)` -> (stop-start, P) flat.

    Batched with vmap(functional_call) in chunks; under no_grad and in eval mode. Raises
    LandscapeCancelled if `state` asks to stop (checked before every chunk). `dtype`
    float32 evaluates in single precision (about twice as fast, ~1e-6 relative: for pictures);
    the default float64 agrees with the model's own loss to ~1e-12.
    """
    layout = ParameterLayout.of(model)
    chunk = chunk_size or chunk_size_for(model, X)
    if dtype not in (torch.float64, torch.float32):
        raise LandscapeError(f"the landscape is evaluated in float64 or float32, not {dtype}")
    X = X.to(dtype)
    y = y.to(dtype) if y.is_floating_point() else y
    buffers = {name: b.to(dtype) if b.is_floating_point() else b
               for name, b in model.named_buffers()}

    def loss_at(params: dict[str, torch.Tensor]) -> torch.Tensor:
        return loss_fn(functional_call(model, {**buffers, **params}, (X,)), y)

    batched = vmap(loss_at)
    out = np.empty(count, dtype=np.float64)
    with torch.no_grad(), eval_mode(model):
        for start in range(0, count, chunk):
            if state is not None and state.is_interruption_requested():
                raise LandscapeCancelled("the landscape was cancelled")
            stop = min(count, start + chunk)
            points = flat_points(start, stop).to(dtype)
            out[start:stop] = batched(layout.unflatten(points)).to(torch.float64).numpy()
            if state is not None:
                state.set_progress(stop / count)
    return out


def loss_at_point(model: nn.Module, loss_fn: LossFn, X: torch.Tensor, y: torch.Tensor,
                  flat: torch.Tensor | None = None) -> float:
    """The plain (unbatched) loss at flat parameters `flat` (default: the model's own), eval mode.
    """
    with torch.no_grad(), eval_mode(model):
        if flat is None:
            return float(loss_fn(model(X), y))
        return float(loss_fn(functional_call(model, ParameterLayout.of(model).unflatten(flat),
                                             (X,)), y))


# --- the exact surface over two scalars -----------------------------------------------------------

def two_scalars(model: nn.Module) -> tuple[int, int, str, str]:
    """Flat indices and names of the model's two trainable scalars; LandscapeError otherwise."""
    layout = ParameterLayout.of(model)
    mask = layout.trainable_mask()
    count = int(mask.sum())
    if count != 2:
        raise LandscapeError(f"the exact surface needs exactly two trainable scalars; this model "
                             f"has {count} (freeze all but two, or use a 2-D slice)")
    i, j = (int(k) for k in torch.nonzero(mask).reshape(-1))
    names = layout.scalar_names()
    return i, j, names[i], names[j]


def exact_surface(model: nn.Module, loss_fn: LossFn, X: torch.Tensor, y: torch.Tensor, *,
                  x_values: Sequence[float] | np.ndarray | None = None,
                  y_values: Sequence[float] | np.ndarray | None = None,
                  grid: int = 101, span: float = 1.0, state: ProgressState | None = None,
                  chunk_size: int | None = None, dtype: torch.dtype = torch.float64) -> LossGrid:
    """The loss over a grid of the model's two trainable scalars (everything else held).

    Default axes: each scalar's current value ± `span`, `grid` points (the middle one exactly
    the current value for odd `grid`). `loss[i, j]` is at (x_values[j], y_values[i]).
    """
    i, j, x_name, y_name = two_scalars(model)
    centre = parameters_vector(model)
    xs = np.asarray(axis(float(centre[i]), span, grid) if x_values is None else x_values,
                    dtype=np.float64)
    ys = np.asarray(axis(float(centre[j]), span, grid) if y_values is None else y_values,
                    dtype=np.float64)
    if xs.ndim != 1 or ys.ndim != 1 or not (np.all(np.isfinite(xs)) and
                                            np.all(np.isfinite(ys))):
        raise LandscapeError("the grid values must be finite numbers in one row each")
    gx = torch.tensor(np.tile(xs, len(ys)), dtype=centre.dtype)     # row-major: y outer
    gy = torch.tensor(np.repeat(ys, len(xs)), dtype=centre.dtype)

    def points(start: int, stop: int) -> torch.Tensor:
        flat = centre.expand(stop - start, -1).clone()
        flat[:, i] = gx[start:stop]
        flat[:, j] = gy[start:stop]
        return flat

    losses = evaluate_losses(model, loss_fn, X, y, len(xs) * len(ys), points, state=state,
                             chunk_size=chunk_size, dtype=dtype)
    return LossGrid("exact", x_name, y_name, xs.copy(), ys.copy(),
                    losses.reshape(len(ys), len(xs)), loss_at_point(model, loss_fn, X, y))


# --- directions ----------------------------------------------------------------------------------

@dataclass(frozen=True, eq=False)
class Directions:
    """Two flat directions over all parameters (zero on frozen ones) and what they capture.

    `explained_variance_ratio` is set for PCA; `eigenvalues` for Hessian directions.
    """

    kind: str
    d1: torch.Tensor
    d2: torch.Tensor
    centre: torch.Tensor
    explained_variance_ratio: tuple[float, float] | None = None
    eigenvalues: tuple[float, float] | None = None


def random_directions(model: nn.Module, seed: int = 0, one_d: str = "zero") -> Directions:
    """Two filter-normalised random directions (Li et al., 2018) at the model's parameters.

    Every parameter draws its Gaussian entries in layout order (so the option for 1-D
    parameters does not change the others). Rows of weights are scaled to the norm of θ₀'s
    rows; 1-D parameters are zero (`one_d="zero"`, Li et al.) or scaled as one filter
    (`one_d="filter"`); frozen parameters are zero.
    """
    if one_d not in ("zero", "filter"):
        raise LandscapeError(f"one_d must be 'zero' or 'filter', got {one_d!r}")
    generator = torch.Generator().manual_seed(seed)
    directions = []
    for _ in range(2):
        parts = []
        for p in model.parameters():
            theta = p.detach()
            d = torch.randn(theta.shape, generator=generator, dtype=theta.dtype)
            if not p.requires_grad or (theta.ndim < 2 and one_d == "zero"):
                d = torch.zeros_like(theta)
            else:
                rows_d = d.reshape(d.shape[0], -1) if theta.ndim >= 2 else d.reshape(1, -1)
                rows_t = theta.reshape(rows_d.shape)
                norm_d = torch.linalg.vector_norm(rows_d, dim=1, keepdim=True)
                norm_t = torch.linalg.vector_norm(rows_t, dim=1, keepdim=True)
                scale = torch.where(norm_d > 0, norm_t / norm_d, torch.zeros_like(norm_d))
                d = (rows_d * scale).reshape(theta.shape)
            parts.append(d.reshape(-1))
        directions.append(torch.cat(parts))
    if not (torch.any(directions[0] != 0) and torch.any(directions[1] != 0)):
        raise LandscapeError("the random directions are zero: no trainable weight matrix with "
                             "nonzero rows (use one_d='filter' to move 1-D parameters)")
    return Directions("random", directions[0], directions[1], parameters_vector(model))


def _as_matrix(path: np.ndarray | torch.Tensor, size: int) -> torch.Tensor:
    m = torch.as_tensor(np.asarray(path), dtype=torch.float64)
    if m.ndim != 2 or m.shape[1] != size:
        raise LandscapeError(f"a path must be (steps, {size}) flat parameter snapshots, got "
                             f"{tuple(m.shape)}")
    return m


def pca_directions(model: nn.Module, paths: Sequence[np.ndarray | torch.Tensor],
                   centre: torch.Tensor | str | None = None, seed: int = 0) -> Directions:
    """The top two principal directions of all runs' paths together: one plane for all.

    `paths`: each run's flat parameter snapshots (steps, P), in the model's layout order.
    `centre`: θ₀, a flat vector (e.g. the final point of the chosen run), "mean" (all
    snapshots' mean: classic PCA), or None (the model's current parameters). The directions are
    the right singular vectors of the snapshots minus θ₀ with frozen coordinates zeroed;
    `explained_variance_ratio` is each one's share of the squared distances from θ₀.
    The sign is fixed so that each direction's largest entry is positive.
    """
    layout = ParameterLayout.of(model)
    mask = layout.trainable_mask()
    if not paths:
        raise LandscapeError("PCA directions need at least one run's path")
    snapshots = torch.cat([_as_matrix(p, layout.size) for p in paths])
    if not torch.all(torch.isfinite(snapshots)):
        raise LandscapeError("a path has non-finite parameters (a diverged run?); PCA needs "
                             "finite paths")
    if isinstance(centre, str):
        if centre != "mean":
            raise LandscapeError(f"the centre must be a vector or 'mean', got {centre!r}")
        theta0 = snapshots.mean(dim=0)
        theta0 = torch.where(mask, theta0, parameters_vector(model))
    else:
        theta0 = parameters_vector(model) if centre is None else torch.as_tensor(
            centre, dtype=torch.float64).clone()
    if theta0.shape != (layout.size,):
        raise LandscapeError(f"the centre has shape {tuple(theta0.shape)}; expected "
                             f"({layout.size},)")
    offsets = (snapshots - theta0) * mask
    _, singular, vh = torch.linalg.svd(offsets, full_matrices=False)
    total = float((singular ** 2).sum())
    if total == 0 or int(mask.sum()) < 2:
        raise LandscapeError("the paths do not move away from the centre in two trainable "
                             "coordinates; PCA has no plane to show")
    d1 = vh[0] * mask
    if vh.shape[0] >= 2 and singular[1] > 1e-12 * singular[0]:
        d2 = vh[1] * mask
    else:  # the paths lie on a line: any unit direction orthogonal to it completes the plane
        r = torch.randn(layout.size, generator=torch.Generator().manual_seed(seed),
                        dtype=torch.float64) * mask
        d2 = r - torch.dot(r, d1) * d1
        d2 = d2 - torch.dot(d2, d1) * d1
        d2 = d2 / torch.linalg.vector_norm(d2)
    d1, d2 = (d * torch.sign(d[torch.argmax(d.abs())]) for d in (d1, d2))
    ratio = (singular[:2] ** 2 / total).tolist() + [0.0]
    return Directions("pca", d1, d2, theta0, (float(ratio[0]), float(ratio[1])))


def hessian_directions(model: nn.Module, loss_fn: LossFn, X: torch.Tensor, y: torch.Tensor, *,
                       seed: int = 0, tol: float = 1e-8, max_iter: int = 300,
                       state: ProgressState | None = None) -> Directions:
    """The top two Hessian eigenvectors at the model's parameters (Lanczos), as directions.

    LandscapeCancelled if `state` asks to stop (checked at every Hessian-vector product)."""
    try:
        pairs = top_eigenpairs(model, loss_fn, X, y, 2, seed=seed, tol=tol, max_iter=max_iter,
                               state=state)
    except CurvatureCancelled:
        raise LandscapeCancelled("the landscape was cancelled") from None
    if pairs.vectors.shape[0] < 2:
        raise LandscapeError("Hessian directions need at least two trainable scalars")
    return Directions("hessian", pairs.full_vector(0), pairs.full_vector(1),
                      parameters_vector(model),
                      eigenvalues=(float(pairs.values[0]), float(pairs.values[1])))


# --- slices and projections --------------------------------------------------------------------

def slice_surface(model: nn.Module, loss_fn: LossFn, X: torch.Tensor, y: torch.Tensor,
                  directions: Directions, *, grid: int = 51, span: float = 1.0,
                  alphas: Sequence[float] | np.ndarray | None = None,
                  betas: Sequence[float] | np.ndarray | None = None,
                  state: ProgressState | None = None, chunk_size: int | None = None,
                  dtype: torch.dtype = torch.float64) -> LossGrid:
    """The loss on θ(α, β) = θ₀ + α·d₁ + β·d₂, `loss[i, j]` at (alphas[j], betas[i]).

    θ₀ is `directions.centre`; frozen parameters stay there (their direction entries are
    zeroed here whatever `directions` holds). Default axes: ±`span` in `grid` points, with
    (0, 0) exactly on the grid for odd `grid`.
    """
    layout = ParameterLayout.of(model)
    mask = layout.trainable_mask().to(torch.float64)
    theta0 = directions.centre.to(torch.float64)
    if theta0.shape != (layout.size,) or directions.d1.shape != (layout.size,) or \
            directions.d2.shape != (layout.size,):
        raise LandscapeError(f"the directions do not match this model ({layout.size} "
                             "parameters)")
    d1, d2 = directions.d1 * mask, directions.d2 * mask
    a = np.asarray(axis(0.0, span, grid) if alphas is None else alphas, dtype=np.float64)
    b = np.asarray(axis(0.0, span, grid) if betas is None else betas, dtype=np.float64)
    ga = torch.tensor(np.tile(a, len(b)), dtype=torch.float64)[:, None]
    gb = torch.tensor(np.repeat(b, len(a)), dtype=torch.float64)[:, None]

    def points(start: int, stop: int) -> torch.Tensor:
        return theta0 + ga[start:stop] * d1 + gb[start:stop] * d2

    losses = evaluate_losses(model, loss_fn, X, y, len(a) * len(b), points, state=state,
                             chunk_size=chunk_size, dtype=dtype)
    return LossGrid(directions.kind, "alpha", "beta", a.copy(), b.copy(),
                    losses.reshape(len(b), len(a)), loss_at_point(model, loss_fn, X, y, theta0))


@dataclass(frozen=True, eq=False)
class PathProjection:
    """A path on the slice's plane: (alpha, beta) per snapshot and the distance off the plane.

    `captured` is the share of the path's squared distance from θ₀ that lies in the plane
    (1: the path is in the plane).
    """

    alpha: np.ndarray
    beta: np.ndarray
    off_plane: np.ndarray
    captured: float


def project_paths(paths: Sequence[np.ndarray | torch.Tensor], directions: Directions
                  ) -> list[PathProjection]:
    """Each path's least-squares coordinates on the plane (d₁, d₂ need not be orthogonal)."""
    d = torch.stack([directions.d1, directions.d2]).to(torch.float64)  # (2, P)
    gram = d @ d.T
    if float(torch.linalg.det(gram)) <= 1e-24 * float(gram.diagonal().prod()):
        raise LandscapeError("the two directions are parallel; they do not span a plane")
    out = []
    for path in paths:
        offsets = _as_matrix(path, d.shape[1]) - directions.centre.to(torch.float64)
        coefficients = torch.linalg.solve(gram, d @ offsets.T).T        # (steps, 2)
        residual = offsets - coefficients @ d
        off = torch.linalg.vector_norm(residual, dim=1)
        total = float((offsets ** 2).sum())
        captured = 1.0 if total == 0 else 1.0 - float((off ** 2).sum()) / total
        out.append(PathProjection(coefficients[:, 0].numpy().copy(),
                                  coefficients[:, 1].numpy().copy(), off.numpy().copy(),
                                  captured))
    return out


# --- one landscape around the runs: what the view, the picture and the command line show ----------

KINDS = ("exact", "random", "pca", "hessian")
COVER_MARGIN = 1.15  # an axis that covers the paths reaches this far beyond their farthest point


@dataclass(frozen=True, eq=False)
class Landscape:
    """A loss grid and how to put the runs' paths on it.

    For "exact" the axes are the two trainable scalars at flat indices `indices`; for a slice
    the plane is `directions` (centre θ₀, d₁, d₂). `project` maps flat parameter paths
    (steps, P) to the grid's coordinates, so paths that grow while training are placed without
    evaluating the loss again.
    """

    grid: LossGrid
    directions: Directions | None = None
    indices: tuple[int, int] | None = None
    origin: tuple[float, float] = (0.0, 0.0)  # θ₀ on the grid: its two scalars, or (0, 0)

    @property
    def kind(self) -> str:
        return self.grid.kind

    def project(self, paths: Sequence[np.ndarray | torch.Tensor]
                ) -> list[tuple[np.ndarray, np.ndarray]]:
        """Each path's (x, y) on the grid: its two scalars (exact) or its plane coordinates."""
        return [(p.x, p.y) for p in self.place(paths)]

    def place(self, paths: Sequence[np.ndarray | torch.Tensor]) -> list[Placement]:
        """Each path on the grid, with every snapshot's distance off the plane (zero for
        exact). Rows are placed independently, so a growing path can be placed piece by piece.
        """
        if self.indices is not None:
            i, j = self.indices
            out = []
            for path in paths:
                m = np.asarray(path, dtype=np.float64)
                out.append(Placement(m[:, i].copy(), m[:, j].copy(), np.zeros(len(m))))
            return out
        assert self.directions is not None
        return [Placement(p.alpha, p.beta, p.off_plane)
                for p in project_paths(paths, self.directions)]

    def plane_text(self, paths: Sequence[np.ndarray | torch.Tensor]) -> str:
        """How much of the paths the picture holds, in one line: the exact surface holds them
        whole; a PCA plane says its explained variance; other planes the distance off them."""
        if self.indices is not None or (self.directions is not None and
                                        self.directions.explained_variance_ratio is not None):
            return self.describe([])
        return self.describe(self.place(paths))

    def describe(self, placements: Sequence[Placement]) -> str:
        """`plane_text` from placements already made (non-finite snapshots left out)."""
        if self.indices is not None:
            return ("exact: each path is drawn as it is, over the only two scalars that "
                    "move")
        assert self.directions is not None
        d = self.directions
        if d.explained_variance_ratio is not None:
            r1, r2 = d.explained_variance_ratio
            return (f"the PCA plane holds {100 * (r1 + r2):.1f}% of the paths' squared distance "
                    f"from the centre (PC1 {100 * r1:.1f}%, PC2 {100 * r2:.1f}%)")
        off = np.concatenate([p.off_plane for p in placements]) if placements else np.empty(0)
        off = off[np.isfinite(off)]
        if not off.size:
            return "no path yet to compare with the plane"
        return (f"the paths are {float(off.mean()):.3g} (mean) and {float(off.max()):.3g} "
                f"(max) off the plane (parameter units)")


@dataclass(frozen=True, eq=False)
class Placement:
    """A path on a Landscape's grid: x, y per snapshot and its distance off the plane."""

    x: np.ndarray
    y: np.ndarray
    off_plane: np.ndarray

    @staticmethod
    def joined(first: Placement, rest: Placement) -> Placement:
        """Two pieces of one path, one after the other."""
        return Placement(np.concatenate([first.x, rest.x]), np.concatenate([first.y, rest.y]),
                         np.concatenate([first.off_plane, rest.off_plane]))


def covering_axis(centre: float, span: float, n: int, coordinates: Sequence[np.ndarray]
                  ) -> np.ndarray:
    """An axis centred at `centre` wide enough for ±`span` and for every coordinate given."""
    reach = span
    for c in coordinates:
        finite = np.asarray(c, dtype=np.float64)
        finite = finite[np.isfinite(finite)]
        if finite.size:
            reach = max(reach, COVER_MARGIN * float(np.abs(finite - centre).max()))
    return axis(centre, reach, n)


def landscape_around(model: nn.Module, loss_fn: LossFn, X: torch.Tensor, y: torch.Tensor,
                     kind: str, *, paths: Sequence[np.ndarray | torch.Tensor] = (),
                     grid: int = 51, span: float = 1.0, cover_paths: bool = False,
                     seed: int = 0, state: ProgressState | None = None,
                     dtype: torch.dtype = torch.float64) -> Landscape:
    """The landscape of `kind` around the model's parameters (θ₀) and the runs' `paths`.

    `model` holds θ₀ and says by `requires_grad` which parameters may move (the caller gives
    a copy when other threads use the original). `paths` are flat parameter snapshots
    (steps, P), as core.model_session.flat_parameters gives; PCA needs them. With
    `cover_paths` the axes widen beyond ±`span` until every path fits.
    """
    if kind not in KINDS:
        raise LandscapeError(f"the directions must be one of {', '.join(KINDS)}, got {kind!r}")
    finite_paths = [_finite_rows(p) for p in paths]
    finite_paths = [p for p in finite_paths if len(p)]
    if kind == "exact":
        i, j, _, _ = two_scalars(model)
        centre = parameters_vector(model)
        xs = covering_axis(float(centre[i]), span, grid,
                           [p[:, i] for p in finite_paths] if cover_paths else [])
        ys = covering_axis(float(centre[j]), span, grid,
                           [p[:, j] for p in finite_paths] if cover_paths else [])
        surface = exact_surface(model, loss_fn, X, y, x_values=xs, y_values=ys, state=state,
                                dtype=dtype)
        return Landscape(surface, indices=(i, j), origin=(float(centre[i]), float(centre[j])))
    if kind == "random":
        directions = random_directions(model, seed=seed)
    elif kind == "hessian":
        directions = hessian_directions(model, loss_fn, X, y, seed=seed, state=state)
    else:
        directions = pca_directions(model, finite_paths, seed=seed)
    a = b = axis(0.0, span, grid)
    if cover_paths and finite_paths:
        projected = project_paths(finite_paths, directions)
        a = covering_axis(0.0, span, grid, [p.alpha for p in projected])
        b = covering_axis(0.0, span, grid, [p.beta for p in projected])
    surface = slice_surface(model, loss_fn, X, y, directions, alphas=a, betas=b, state=state,
                            dtype=dtype)
    return Landscape(surface, directions=directions)


def _finite_rows(path: np.ndarray | torch.Tensor) -> np.ndarray:
    """A path without its non-finite snapshots (a diverged run's last ones)."""
    m = np.asarray(path, dtype=np.float64)
    if m.ndim != 2:
        raise LandscapeError(f"a path must be (steps, parameters), got shape {m.shape}")
    return m[np.all(np.isfinite(m), axis=1)]
