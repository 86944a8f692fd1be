"""What the surface looks like around one point (gradient, Hessian, curvature), and what gradient
tracking costs when the whole picture is evaluated.

The Hessian's eigenvalues are the curvatures along its principal directions: both positive is a
bowl, both negative a cap, mixed signs a saddle; a large ratio between them (the condition number)
is a narrow valley, where plain gradient descent zigzags across and crawls along.
"""

from __future__ import annotations

import contextlib
import math
import time
from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import Tensor

LossFn = Callable[[Tensor, Tensor], Tensor]
DTYPE = torch.float64

VALLEY_CONDITION = 20.0  # a bowl this much steeper one way than the other behaves like a valley
FLAT_TOLERANCE = 1e-9  # |curvature| below this (relative to the largest, or absolutely) is zero

MEANINGS = {
    "bowl": "curves up in every direction: locally convex, a minimum is near",
    "valley": "curves up, but far more steeply across than along: gradient steps zigzag and crawl",
    "cap": "curves down in every direction: a maximum is near",
    "ridge": "curves down across, flat along: a crest",
    "saddle": "curves up one way and down the other: not a minimum, a way out exists",
    "flat": "no curvature: locally a plane, only the slope matters",
    "undefined": "the curvature is not defined here (a kink, or a value that is not finite)",
}


@dataclass(frozen=True)
class LocalAnalysis:
    """The first and second derivatives of f at (x, y), and what they say about its shape."""

    x: float
    y: float
    value: float
    gradient: tuple[float, float]  # the 1x2 Jacobian (df/dx, df/dy)
    hessian: tuple[tuple[float, float], tuple[float, float]]
    eigenvalues: tuple[float, float]  # ascending
    eigenvectors: tuple[tuple[float, float], tuple[float, float]]  # unit, one per eigenvalue
    condition: float  # max |eigenvalue| / min |eigenvalue|; inf when the smaller is 0
    kind: str  # a key of MEANINGS
    meaning: str


def local_analysis(fn: LossFn, x: float, y: float) -> LocalAnalysis:
    """Gradient and Hessian of fn at (x, y) by autograd, and the shape they describe."""
    point = torch.tensor([float(x), float(y)], dtype=DTYPE)

    def f(p: Tensor) -> Tensor:
        return fn(p[0], p[1])

    p = point.clone().requires_grad_(True)
    value = f(p)
    if value.requires_grad:
        (grad,) = torch.autograd.grad(value, p)
    else:  # a constant surface
        grad = torch.zeros(2, dtype=DTYPE)
    hessian = torch.autograd.functional.hessian(f, point)
    if torch.isfinite(hessian).all():
        eigenvalues, eigenvectors = torch.linalg.eigh((hessian + hessian.T) / 2)
    else:
        eigenvalues = torch.full((2,), math.nan, dtype=DTYPE)
        eigenvectors = torch.full((2, 2), math.nan, dtype=DTYPE)
    lo, hi = (float(v) for v in eigenvalues)
    kind = classify(lo, hi)
    return LocalAnalysis(
        x=float(x), y=float(y), value=float(value.detach()),
        gradient=(float(grad[0]), float(grad[1])),
        hessian=((float(hessian[0, 0]), float(hessian[0, 1])),
                 (float(hessian[1, 0]), float(hessian[1, 1]))),
        eigenvalues=(lo, hi),
        eigenvectors=((float(eigenvectors[0, 0]), float(eigenvectors[1, 0])),
                      (float(eigenvectors[0, 1]), float(eigenvectors[1, 1]))),
        condition=condition_number(lo, hi), kind=kind, meaning=MEANINGS[kind])


def condition_number(a: float, b: float) -> float:
    """max(|a|, |b|) / min(|a|, |b|): inf when the smaller is 0, nan when either is nan."""
    small, large = sorted((abs(a), abs(b)))
    if math.isnan(small) or math.isnan(large):
        return math.nan
    return math.inf if small == 0 else large / small


def classify(a: float, b: float) -> str:
    """The shape for Hessian eigenvalues a, b: a key of MEANINGS."""
    if not (math.isfinite(a) and math.isfinite(b)):
        return "undefined"
    tol = FLAT_TOLERANCE * max(1.0, abs(a), abs(b))
    signs = {0 if abs(v) <= tol else (1 if v > 0 else -1) for v in (a, b)}
    if signs == {0}:
        return "flat"
    if signs == {-1, 1}:
        return "saddle"
    if signs == {0, 1}:
        return "valley"
    if signs == {0, -1}:
        return "ridge"
    if signs == {-1}:
        return "cap"
    return "valley" if condition_number(a, b) >= VALLEY_CONDITION else "bowl"


# --- why the picture is computed without gradients ----------------------------------------------


def grid_timing(surface: LossFn, n: int = 300, repeats: int = 5,
                x_range: tuple[float, float] = (-3.0, 3.0),
                y_range: tuple[float, float] = (-3.0, 3.0)) -> dict[str, float]:
    """Evaluate an n-by-n grid (as Surface.grid does) under torch.no_grad() and with x and y as
    leaves that require grad; report the best time of `repeats` (ms: the least disturbed by
    other work on the machine) and the bytes each keeps alive.

    With grad tracking on, autograd saves the inputs of every op for a backward pass the picture
    never needs: `grad_saved_bytes` counts them (each storage once), via saved_tensors_hooks.
    """
    (x0, x1), (y0, y1) = getattr(surface, "x_range", x_range), getattr(surface, "y_range", y_range)

    def evaluate(track: bool, saved: dict[int, int] | None = None) -> tuple[float, int]:
        xs = torch.linspace(x0, x1, n, dtype=DTYPE).requires_grad_(track)
        ys = torch.linspace(y0, y1, n, dtype=DTYPE).requires_grad_(track)
        hooks = contextlib.nullcontext() if saved is None else \
            torch.autograd.graph.saved_tensors_hooks(lambda t: _note(saved, t), lambda t: t)
        start = time.perf_counter()
        with torch.set_grad_enabled(track), hooks:
            z = surface(xs.unsqueeze(0), ys.unsqueeze(1))
        return (time.perf_counter() - start) * 1000, z.untyped_storage().nbytes()

    out: dict[str, float] = {"n": float(n)}
    for track, prefix in ((False, "no_grad"), (True, "grad")):
        evaluate(track)  # warm-up
        out[f"{prefix}_ms"] = min(evaluate(track)[0] for _ in range(repeats))
        saved: dict[int, int] = {}
        output_bytes = evaluate(track, saved)[1]
        out[f"{prefix}_saved_bytes"] = float(sum(saved.values()))
        out[f"{prefix}_bytes"] = float(sum(saved.values()) + output_bytes)  # all it keeps alive
    out["time_ratio"] = out["grad_ms"] / out["no_grad_ms"]
    out["memory_ratio"] = out["grad_bytes"] / out["no_grad_bytes"]
    return out


def _note(saved: dict[int, int], t: Tensor) -> Tensor:
    """A saved-tensors pack hook: count each storage autograd keeps, once."""
    storage = t.untyped_storage()
    saved[storage.data_ptr()] = storage.nbytes()
    return t
