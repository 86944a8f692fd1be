"""What the surface looks like around one point (gradient, Hessian, curvature), and what gradient
tracking costs when the whole picture is evaluated.

The Hessian's eigenvalues are the curvatures along its principal directions: both positive is a
bowl, both negative a cap, mixed signs a saddle; a large ratio between them (the condition number)
is a narrow valley, where plain gradient descent zigzags across and crawls along.
"""

from __future__ import annotations

import math
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from typing import Any, Protocol

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

TIME_NOISE = 0.10  # a time ratio within 10 % of 1 (or whose quartiles straddle 1) is "the same"
SAMPLE_MS = 20.0  # each timed sample repeats the evaluation until it takes about this long
TIME_BUDGET_S = 2.0  # fewer repeats (never under MIN_REPEATS) when a formula is slow to evaluate
MIN_REPEATS = 3
MAX_EVALUATIONS = 10_000  # a sample's evaluations, whatever the calibration says

Progress = Callable[[float], "bool | None"]


class MeasurementCancelled(Exception):
    """The caller's progress callback (or state) asked the measurement to stop."""


class ProgressState(Protocol):
    """What a worker's state offers (gui/worker.py's JobState, Orange3's pattern)."""

    def set_progress(self, fraction: float) -> None: ...

    def is_interruption_requested(self) -> bool: ...


def grid_timing(surface: LossFn, n: int = 300, repeats: int = 9,
                x_range: tuple[float, float] = (-3.0, 3.0),
                y_range: tuple[float, float] = (-3.0, 3.0), *,
                progress: Progress | None = None,
                state: ProgressState | None = None) -> dict[str, Any]:
    """What gradient tracking costs on an n-by-n grid (as Surface.grid evaluates it): time and
    memory under torch.no_grad() and with x and y as leaves that require grad.

    Memory is exact and the reliable part: with tracking on, autograd saves the inputs of every
    op for a backward pass the picture never needs; `grad_saved_bytes` counts them (each storage
    once) via saved_tensors_hooks. Time is noisy on a busy machine, so it is measured to be
    stable: on one intra-op thread, each sample repeats the evaluation until it lasts about
    SAMPLE_MS, the two modes alternate sample by sample (a burst of other work hits both), and
    the figures are medians.

    Safe on a worker thread: grad mode is per thread, so each evaluation sets it explicitly.
    `progress(fraction)` is called as the work advances and cancels it by returning False; a
    `state` (gui/worker.py's JobState) gets set_progress and is asked
    is_interruption_requested(). A cancel raises MeasurementCancelled.

    Returns (times in ms per evaluation, sizes in bytes):
      n, samples, evaluations_per_sample
      no_grad_ms, grad_ms                  medians
      no_grad_ms_spread, grad_ms_spread    interquartile ranges
      time_ratio                           median of grad / no_grad over back-to-back pairs
      time_ratio_low, time_ratio_high      its quartiles
      time_within_noise                    1.0 when the ratio is 1 within the noise, else 0.0
      no_grad_saved_bytes, grad_saved_bytes  what autograd saved for backward
      no_grad_bytes, grad_bytes            everything kept alive (saved + the picture)
      memory_ratio                         grad_bytes / no_grad_bytes
      conclusion                           one line, worded from the memory (a str)
    """
    (x0, x1), (y0, y1) = getattr(surface, "x_range", x_range), getattr(surface, "y_range", y_range)
    xs = torch.linspace(x0, x1, n, dtype=DTYPE)
    ys = torch.linspace(y0, y1, n, dtype=DTYPE)

    def report(fraction: float) -> None:
        if state is not None:
            state.set_progress(fraction)
            if state.is_interruption_requested():
                raise MeasurementCancelled("the measurement was cancelled")
        if progress is not None and progress(fraction) is False:
            raise MeasurementCancelled("the measurement was cancelled")

    def evaluate(track: bool) -> Tensor:
        x = xs.detach().requires_grad_(track)
        y = ys.detach().requires_grad_(track)
        with torch.set_grad_enabled(track):
            return surface(x.unsqueeze(0), y.unsqueeze(1))

    def sample_ms(track: bool, evaluations: int) -> float:
        start = time.perf_counter()
        for _ in range(evaluations):
            evaluate(track)
        return (time.perf_counter() - start) * 1000 / evaluations

    report(0.0)
    # Timed on one intra-op thread: on a shared machine a parallel op waits for its slowest
    # thread, and a helper thread descheduled for a slice made ratios swing from 0.4x to 30x run
    # to run. With OpenMP (torch's CPU build) the setting is per calling thread; restored after.
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        return _grid_timing(evaluate, sample_ms, report, n, repeats)
    finally:
        torch.set_num_threads(threads)


def _grid_timing(evaluate: Callable[[bool], Tensor], sample_ms: Callable[[bool, int], float],
                 report: Callable[[float], None], n: int, repeats: int) -> dict[str, Any]:
    out: dict[str, Any] = {"n": float(n)}
    # Memory, once per mode (the hooks would slow the timed evaluations down).
    for track, prefix in ((False, "no_grad"), (True, "grad")):
        saved: dict[int, int] = {}
        with torch.autograd.graph.saved_tensors_hooks(partial(_note, saved), lambda t: t):
            output_bytes = evaluate(track).untyped_storage().nbytes()
        out[f"{prefix}_saved_bytes"] = float(sum(saved.values()))
        out[f"{prefix}_bytes"] = float(sum(saved.values()) + output_bytes)  # all it keeps alive
    report(0.05)

    # Calibrate (after a warm-up: the first evaluations allocate): enough evaluations a sample
    # that being descheduled for a slice or two changes a sample by a few percent, not 100x.
    sample_ms(False, 1)
    sample_ms(True, 1)
    report(0.07)
    no_grad_one = min(sample_ms(False, 1) for _ in range(2))
    evaluations = max(1, min(MAX_EVALUATIONS, math.ceil(SAMPLE_MS / max(no_grad_one, 1e-4))))
    report(0.1)

    times: dict[bool, list[float]] = {False: [], True: []}
    ratios: list[float] = []
    deadline = time.perf_counter() + TIME_BUDGET_S
    for r in range(repeats):
        order = (False, True) if r % 2 == 0 else (True, False)  # neither mode always goes first
        pair = {track: sample_ms(track, evaluations) for track in order}
        for track, ms in pair.items():
            times[track].append(ms)
        ratios.append(pair[True] / pair[False] if pair[False] > 0 else math.inf)
        report(0.1 + 0.9 * (r + 1) / repeats)
        if r + 1 >= MIN_REPEATS and time.perf_counter() > deadline:
            break  # a slow formula: fewer samples rather than a long wait
        if pair[False] * evaluations < SAMPLE_MS / 2:
            # Calibrated while the machine was busy: samples came out short once it was not.
            evaluations = min(MAX_EVALUATIONS, evaluations * 2)
    repeats = len(ratios)
    report(1.0)

    out["samples"] = float(repeats)
    out["evaluations_per_sample"] = float(evaluations)  # in the last sample
    for track, prefix in ((False, "no_grad"), (True, "grad")):
        low, mid, high = _quartiles(times[track])
        out[f"{prefix}_ms"] = mid
        out[f"{prefix}_ms_spread"] = high - low
    low, mid, high = _quartiles(ratios)
    out["time_ratio"], out["time_ratio_low"], out["time_ratio_high"] = mid, low, high
    within = abs(mid - 1) <= TIME_NOISE or low <= 1.0 <= high
    out["time_within_noise"] = 1.0 if within else 0.0
    out["memory_ratio"] = out["grad_bytes"] / out["no_grad_bytes"]
    out["conclusion"] = timing_conclusion(out)
    return out


def timing_conclusion(t: dict[str, Any]) -> str:
    """One line on what tracking costs, worded from the memory, the figure that does not vary."""
    saved = t["grad_saved_bytes"]
    if saved > 0:
        memory = (f"no_grad keeps no graph: {format_bytes(saved)} saved for backward with "
                  f"tracking vs {format_bytes(t['no_grad_saved_bytes'])} with no_grad")
    else:
        memory = "this formula's backward needs none of its inputs: nothing saved either way"
    ratio, low, high = t["time_ratio"], t["time_ratio_low"], t["time_ratio_high"]
    spread = f"{low:.2g}-{high:.2g}x over {int(t['samples'])} paired samples"
    if t["time_within_noise"]:
        time_text = f"time: the same within noise ({ratio:.2g}x, {spread})"
    elif ratio > 1:
        time_text = f"time: tracking takes {ratio:.2g}x as long ({spread})"
    else:
        time_text = (f"time: tracking measured faster ({ratio:.2g}x, {spread}): machine noise, "
                     "not an effect; the memory is the reliable figure")
    return f"{memory}; {time_text}"


def format_bytes(n: float) -> str:
    """A byte count for people: 1.44 MB, 56 kB, 0 B."""
    for unit, size in (("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if n >= size:
            return f"{n / size:.3g} {unit}"
    return f"{n:.0f} B"


def _quartiles(values: list[float]) -> tuple[float, float, float]:
    """(first quartile, median, third quartile); with one value, that value three times."""
    if len(values) == 1:
        return values[0], values[0], values[0]
    q1, q2, q3 = statistics.quantiles(values, n=4, method="inclusive")
    return q1, q2, q3


def _note(saved: dict[int, int], t: Tensor) -> Tensor:
    """A saved-tensors pack hook: count each storage autograd keeps, once."""
    storage = t.untyped_storage()
    saved[storage.data_ptr()] = storage.nbytes()
    return t
