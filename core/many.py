"""Many runs at once: basins of attraction, learning-rate sweeps and trainability maps.

Plain functions over core.batch.BatchRun that take a `state` (set_progress(fraction),
is_interruption_requested(); None for none, as core.landscape) and return copied numpy arrays,
so the GUI runs them in a gui/worker Job and the command line calls them directly. A cancel
raises BatchCancelled. Every cell is one element of a batch, which equals, bit for bit, the
single `core.run.Run` (what `main.py run` steps) from that start with that setting.

- basins: a grid of starts, one optimizer setting; per cell where it ended, its status, the
  minimum it reached and the step it converged at. Cells are stepped in chunks of
  BASIN_CHUNK starts, so memory stays bounded up to MAX_GRID x MAX_GRID. The minima are the
  surface's known ones, then (assign_minima) clusters of converged end points where the
  surface is a minimum: a cell still moving or diverged never makes one, and a converged
  cluster on a saddle is "settled away from every minimum", not a found minimum.
- dtype: a surface's batches compute in float64 (exact, as above) or, when the caller allows
  it, float32 (faster; close to float64, not equal). Basins and Sweep record which (`dtype`,
  also in their JSON). Model mode is float64 only.
- lr_sweep: one start, one param group per learning rate; the best lr is the one with the
  lowest final loss among those that did not diverge (BEST_LR_RULE).
- trainability_map: one start, one param group per (value, lr) cell of a second
  hyperparameter (momentum, beta1, ...) against the lr.

Model mode (a BuiltModelSession or a ModelProblem instead of a Surface): the same sweep trains
copies of the model, one `core.run.Run` per cell from the model's initial weights, stepped as
`main.py train` steps it (so each cell equals `train` with that setting, bit for bit). They are
stepped one by one, not batched with torch.func.vmap: a vmapped matmul is a different kernel,
whose sums need not round as the single model's do, and every cell must equal its single run.
A map can also be lr x lr for two layers ("lr:LAYER" as the row parameter): two torch param
groups, that layer's parameters at the row's lr and every other parameter at the column's.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from core.batch import (CONVERGED, DIVERGED, FROZEN, RUNNING, STATUSES, BatchCancelled,
                        BatchError, BatchResult, BatchRun, ProgressState)
from core.optimizers import format_optimizer_call, get_spec, parse_optimizer_call
from core.status import surface_scale
from core.surfaces import Point, Range, Surface

MAX_GRID = 512
BASIN_CHUNK = 65_536  # starts per batch: ~30 float64 arrays of this size, a few MB each
MAX_SWEEP_CELLS = 16_384  # one param group per cell, and torch steps groups one by one
MAX_WORK = 300_000_000  # cell-steps one call may ask for (a 512 x 512 grid of 1000 steps)
MINIMUM_REL_TOL = 0.02  # an end point within this fraction of the region's span is "at" a minimum
MAX_CLUSTERS = 256  # end points that gather elsewhere: at most this many found minima
BEST_LR_RULE = "the lowest final loss among the learning rates that did not diverge"
MAX_MODEL_WORK = 2_000_000  # model steps one call may ask for (each cell is a model's own run)
MODEL_CHUNK = 25  # a cell's steps between two looks at the caller's cancel
LAYER_LR = "lr:"  # the row parameter "lr:0": layer 0's own lr (a second param group)
# What a surface batch may compute in. float64 is exact (every cell equals its single Run bit for
# bit); float32 is the user's choice when speed matters more (its cells are close to float64's,
# not equal; the maps and JSON say which was used).
DTYPES = {"float64": torch.float64, "float32": torch.float32}
DEFAULT_DTYPE = "float64"


class _Chunk:
    """The caller's state, seen from one chunk of the work: progress scaled into its share."""

    def __init__(self, state: ProgressState | None, start: float, share: float) -> None:
        self.state, self.start, self.share = state, start, share

    def set_progress(self, fraction: float) -> None:
        if self.state is not None:
            self.state.set_progress(self.start + self.share * fraction)

    def is_interruption_requested(self) -> bool:
        return self.state is not None and self.state.is_interruption_requested()


def optimizer_setting(call: str | tuple[str, dict[str, Any]]) -> tuple[str, dict[str, Any]]:
    """(torch class name, validated hyperparameters) from call text ("Adam(lr=0.05)") or from a
    (name, hyperparameters) pair; raises OptimizerError (one line)."""
    if isinstance(call, str):
        return parse_optimizer_call(call)
    name, hyperparameters = call
    spec = get_spec(name)
    return spec.name, spec.validate(hyperparameters)




def check_steps(steps: int, cells: int) -> None:
    """Refuse (BatchError, one line) a step count that is not a whole number >= 0, or more
    cell-steps than MAX_WORK."""
    if isinstance(steps, bool) or not isinstance(steps, int) or steps < 0:
        raise BatchError(f"steps must be a whole number, 0 or more (got {steps!r})")
    if cells * steps > MAX_WORK:
        raise BatchError(f"{cells} cells x {steps} steps is more than the {MAX_WORK:.3g} "
                         "cell-steps one call may take; use fewer cells or steps")


def check_dtype(dtype: str) -> str:
    """The dtype's name if a batch may compute in it; BatchError (one line) otherwise."""
    if dtype not in DTYPES:
        raise BatchError(f"the dtype must be {' or '.join(DTYPES)} (got {dtype!r})")
    return dtype


def _number(v: float) -> float | str:
    """A float for strict JSON: finite as is, else "nan", "inf" or "-inf" (as graph --json)."""
    v = float(v)
    if math.isfinite(v):
        return v
    return "nan" if math.isnan(v) else "inf" if v > 0 else "-inf"


def _concat(results: list[BatchResult]) -> BatchResult:
    if len(results) == 1:
        return results[0]
    fields = ("final_x", "final_y", "final_loss", "grad_norm", "status", "steps",
              "converged_at", "diverged_at", "reason")
    return BatchResult(**{f: np.concatenate([getattr(r, f) for r in results]) for f in fields})


# --- basins of attraction -----------------------------------------------------------------------

@dataclass
class Basins:
    """A grid of starts and where each went. Cells are row-major, y then x: cell j * nx + i
    started at (x[i], y[j]). minima: the surface's known minima (global, then local), then the
    centres of clusters of converged end points away from them (`known` says how many are known);
    minimum: per cell an index into minima, or -1 (diverged, or not near any)."""

    surface: Surface
    optimizer: str
    steps: int
    x: np.ndarray
    y: np.ndarray
    cells: BatchResult
    minima: np.ndarray  # (m, 2)
    known: int
    minimum: np.ndarray
    tolerance: float
    dtype: str = DEFAULT_DTYPE  # what the batch computed in (DTYPES)

    def to_json(self) -> dict[str, Any]:
        """The JSON `main.py basins --json` prints (non-finite numbers as strings)."""
        c = self.cells
        return {"surface": self.surface.name, "formula": self.surface.text,
                "optimizer": self.optimizer, "steps": self.steps, "dtype": self.dtype,
                "x": self.x.tolist(), "y": self.y.tolist(),
                "minima": self.minima.tolist(), "known_minima": self.known,
                "minimum_tolerance": self.tolerance,
                "final_x": [_number(v) for v in c.final_x],
                "final_y": [_number(v) for v in c.final_y],
                "final_loss": [_number(v) for v in c.final_loss],
                "status": c.status_names(), "minimum": self.minimum.tolist(),
                "steps_to_converge": c.steps_to_converge()}

    def to_csv(self) -> str:
        """A row per cell: row, column, start, where it ended, status, minimum, convergence."""
        c = self.cells
        nx = len(self.x)
        lines = ["row,column,start_x,start_y,final_x,final_y,final_loss,status,minimum,"
                 "steps_to_converge"]
        converged = c.steps_to_converge()
        for k in range(len(c)):
            j, i = divmod(k, nx)
            lines.append(f"{j},{i},{float(self.x[i])!r},{float(self.y[j])!r},"
                         f"{float(c.final_x[k])!r},{float(c.final_y[k])!r},"
                         f"{float(c.final_loss[k])!r},"
                         f"{STATUSES[c.status[k]]},{int(self.minimum[k])},"
                         f"{'' if converged[k] is None else converged[k]}")
        return "\n".join(lines) + "\n"


def basins(surface: Surface, optimizer_call: str | tuple[str, dict[str, Any]], grid_n: int,
           steps: int, x_range: Range | None = None, y_range: Range | None = None,
           state: ProgressState | None = None, frozen: Sequence[str] = (),
           dtype: str = DEFAULT_DTYPE) -> Basins:
    """Step a grid_n x grid_n grid of starts over the region (or the ranges given) `steps`
    times each; say which minimum each reached. dtype: "float64" (exact: each cell is its
    single Run) or "float32" (faster, less exact). Raises BatchError / OptimizerError (one
    line)."""
    check_dtype(dtype)
    if isinstance(grid_n, bool) or not isinstance(grid_n, int) or not 2 <= grid_n <= MAX_GRID:
        raise BatchError(f"the grid must be from 2 to {MAX_GRID} starts a side (got {grid_n!r})")
    check_steps(steps, grid_n * grid_n)
    name, hyperparameters = optimizer_setting(optimizer_call)
    (x0, x1) = check_range("x range", x_range or surface.x_range)
    (y0, y1) = check_range("y range", y_range or surface.y_range)
    xs, ys = np.linspace(x0, x1, grid_n), np.linspace(y0, y1, grid_n)
    starts = np.column_stack([np.tile(xs, grid_n), np.repeat(ys, grid_n)])  # row-major
    chunks = range(0, len(starts), BASIN_CHUNK)
    results = []
    for number, lo in enumerate(chunks):
        part = _Chunk(state, number / len(chunks), 1 / len(chunks))
        if part.is_interruption_requested():
            raise BatchCancelled("the basins were cancelled")
        batch = BatchRun(surface, name, [(hyperparameters, starts[lo:lo + BASIN_CHUNK])],
                         frozen=frozen, dtype=DTYPES[dtype])
        batch.step(steps, part)
        results.append(batch.result())
        del batch  # the next chunk's tensors replace this one's
    cells = _concat(results)
    tolerance = MINIMUM_REL_TOL * surface_scale(surface).span
    known = [*surface.minima, *surface.local_minima]
    minima, minimum = assign_minima(cells, known, tolerance, surface)
    return Basins(surface, format_optimizer_call(name, hyperparameters), steps, xs, ys, cells,
                  minima, len(known), minimum, tolerance, dtype)


def check_range(label: str, r: Range) -> Range:
    """(low, high) as floats; BatchError (one line, naming `label`) unless finite and low < high."""
    lo, hi = float(r[0]), float(r[1])
    if not (math.isfinite(lo) and math.isfinite(hi) and lo < hi):
        raise BatchError(f"{label} must be two finite numbers with low < high, got {r!r}")
    return lo, hi


def assign_minima(cells: BatchResult, known: Sequence[Point], tolerance: float,
                  surface: Surface | None = None, find: bool = True
                  ) -> tuple[np.ndarray, np.ndarray]:
    """(minima (m, 2), index per cell or -1).

    A cell is at the nearest known minimum within `tolerance` (whatever its status, unless it
    diverged). With `find`, the converged end points near none of them are clustered greedily
    (the first unassigned end point is a centre, every converged end point within `tolerance`
    of it joins; at most MAX_CLUSTERS) and the centres are appended as found minima; then the
    cells still moving but already within `tolerance` of a found minimum join it too.

    Only converged end points make minima: a cell still moving after the last step may be
    anywhere on its way (half of Rosenbrock's valley), and a diverged one is nowhere. With
    `surface`, a centre is kept only if it is a minimum of the surface: no point of a small
    ring around it (MINIMUM_RING directions at tolerance / 8) is lower. A start on a ridge
    settles on its saddle (x = 0 of (x**2 - 1)**2 + y**2): its cells keep index -1, converged
    but away from every minimum, and the saddle is not listed as one."""
    fx, fy = cells.final_x, cells.final_y
    alive = cells.status != DIVERGED
    index = np.full(len(cells), -1, dtype=np.int64)
    best = np.full(len(cells), np.inf)
    centres = [(float(a), float(b)) for a, b in known]
    for m, (mx, my) in enumerate(centres):
        d = np.hypot(fx - mx, fy - my)
        take = alive & (d <= tolerance) & (d < best)
        index[take], best[take] = m, d[take]
    if not find:
        return np.array(centres, dtype=np.float64).reshape(-1, 2), index
    free = alive & (index < 0) & (cells.status == CONVERGED)
    found: list[tuple[float, float]] = []
    members: list[np.ndarray] = []
    while free.any() and len(found) < MAX_CLUSTERS:
        k = int(np.flatnonzero(free)[0])
        cx, cy = float(fx[k]), float(fy[k])
        near = free & (np.hypot(fx - cx, fy - cy) <= tolerance)
        free &= ~near
        found.append((cx, cy))
        members.append(near)
    keep = [True] * len(found) if surface is None else is_minimum(surface, found,
                                                                  tolerance / 8)
    for centre, near, ok in zip(found, members, keep, strict=True):
        if ok:
            index[near] = len(centres)
            centres.append(centre)
    # Cells still running but already near a found centre belong to it too.
    for m in range(len(known), len(centres)):
        d = np.hypot(fx - centres[m][0], fy - centres[m][1])
        take = alive & (index < 0) & (d <= tolerance)
        index[take] = m
    return np.array(centres, dtype=np.float64).reshape(-1, 2), index


MINIMUM_RING = 8  # directions around a found centre that must not go lower


def is_minimum(surface: Surface, points: Sequence[Point], radius: float) -> list[bool]:
    """Per point, whether the surface is no lower anywhere on a ring of MINIMUM_RING points at
    `radius` around it (one batched evaluation; a ring point where f is not finite is ignored).
    "Lower" allows for rounding: by more than 1e-12 of max(1, |f|) at the point."""
    if not points:
        return []
    centre = np.asarray(points, dtype=np.float64).reshape(-1, 2)
    angles = np.linspace(0.0, 2 * math.pi, MINIMUM_RING, endpoint=False)
    ring_x = centre[:, :1] + radius * np.cos(angles)[None, :]
    ring_y = centre[:, 1:] + radius * np.sin(angles)[None, :]
    xs = np.concatenate([centre[:, 0], ring_x.ravel()])
    ys = np.concatenate([centre[:, 1], ring_y.ravel()])
    with torch.no_grad():
        values = torch.broadcast_to(surface(torch.tensor(xs), torch.tensor(ys)),
                                    (len(xs),)).numpy().astype(np.float64)
    at, ring = values[:len(centre)], values[len(centre):].reshape(len(centre), -1)
    slack = 1e-12 * np.maximum(1.0, np.abs(at))
    lower = np.isfinite(ring) & (ring < (at - slack)[:, None])
    return [bool(ok) for ok in ~lower.any(axis=1)]


# --- learning-rate sweeps and trainability maps -------------------------------------------------

@dataclass
class Sweep:
    """Cells of one start under many settings. lrs: the columns; values (of `param`): the
    rows (one row of None for a plain lr sweep); cells row-major, values then lrs. best: the
    cell with the lowest final loss that did not diverge (BEST_LR_RULE), or None."""

    surface: Surface
    optimizer: str
    start: Point
    steps: int
    lrs: np.ndarray
    param: str | None
    values: np.ndarray | None
    cells: BatchResult
    best: int | None
    dtype: str = DEFAULT_DTYPE  # what the batch computed in (DTYPES)

    def best_setting(self) -> dict[str, float] | None:
        if self.best is None:
            return None
        j, i = divmod(self.best, len(self.lrs))
        setting = {"lr": float(self.lrs[i])}
        if self.param is not None and self.values is not None:
            setting[self.param] = float(self.values[j])
        return setting

    def to_json(self) -> dict[str, Any]:
        """The JSON `main.py sweep --json` prints (non-finite numbers as strings)."""
        c = self.cells
        data: dict[str, Any] = {
            "surface": self.surface.name, "formula": self.surface.text,
            "optimizer": self.optimizer, "start": list(self.start), "steps": self.steps,
            "dtype": self.dtype, "lr": self.lrs.tolist()}
        if self.param is not None and self.values is not None:
            data["param"] = self.param
            data[self.param] = self.values.tolist()
        best = self.best_setting()
        data.update({"final_loss": [_number(v) for v in c.final_loss],
                     "status": c.status_names(), "steps_to_converge": c.steps_to_converge(),
                     "best": best, "best_lr": None if best is None else best["lr"],
                     "best_rule": BEST_LR_RULE})
        return data

    def to_csv(self) -> str:
        c = self.cells
        head = ["lr"] + ([self.param] if self.param else []) + [
            "final_x", "final_y", "final_loss", "status", "steps_to_converge", "best"]
        lines = [",".join(head)]
        converged = c.steps_to_converge()
        for k in range(len(c)):
            j, i = divmod(k, len(self.lrs))
            row = [repr(float(self.lrs[i]))]
            if self.param and self.values is not None:
                row.append(repr(float(self.values[j])))
            row += [repr(float(c.final_x[k])), repr(float(c.final_y[k])),
                    repr(float(c.final_loss[k])), STATUSES[c.status[k]],
                    "" if converged[k] is None else str(converged[k]),
                    "1" if k == self.best else ""]
            lines.append(",".join(row))
        return "\n".join(lines) + "\n"


def _best(cells: Any) -> int | None:
    ok = (cells.status != DIVERGED) & np.isfinite(cells.final_loss)
    if not ok.any():
        return None
    losses = np.where(ok, cells.final_loss, np.inf)
    return int(np.argmin(losses))  # the first of equal losses: the smallest lr in its row


def _with(spec_name: str, base: dict[str, Any], param: str, value: float) -> dict[str, Any]:
    """base with one hyperparameter set; beta1 / beta2 are the elements of betas."""
    if param in ("beta1", "beta2"):
        if "betas" not in base:
            raise BatchError(f"{spec_name} has no betas, so no {param}")
        betas = list(base["betas"])
        betas[0 if param == "beta1" else 1] = value
        return {**base, "betas": tuple(betas)}
    get_spec(spec_name).hyperparameter(param)  # raises OptimizerError naming the ones it has
    return {**base, param: value}


def _sweep(surface: Surface, optimizer_call: str | tuple[str, dict[str, Any]],
           lrs: Sequence[float], param: str | None, values: Sequence[float] | None,
           steps: int, start: Point | None, state: ProgressState | None,
           frozen: Sequence[str], dtype: str = DEFAULT_DTYPE) -> Sweep:
    check_dtype(dtype)
    name, base = optimizer_setting(optimizer_call)
    lr_axis = np.asarray(list(lrs), dtype=np.float64)
    rows = [None] if param is None else list(np.asarray(list(values if values is not None else ()),
                                                        dtype=np.float64))
    if lr_axis.size == 0 or not rows:
        raise BatchError("a sweep needs at least one learning rate and one value")
    cells = lr_axis.size * len(rows)
    if cells > MAX_SWEEP_CELLS:
        raise BatchError(f"{cells} settings is more than the {MAX_SWEEP_CELLS} one sweep may "
                         "take (one param group each)")
    check_steps(steps, cells)
    point = start if start is not None else surface.start
    groups = []
    for value in rows:
        row = base if param is None or value is None else _with(name, base, param, float(value))
        for lr in lr_axis:
            groups.append(({**row, "lr": float(lr)}, [point]))
    batch = BatchRun(surface, name, groups, frozen=frozen, dtype=DTYPES[dtype])
    batch.step(steps, state)
    result = batch.result()
    return Sweep(surface, format_optimizer_call(name, base), (float(point[0]), float(point[1])),
                 steps, lr_axis, param, None if param is None else np.array(rows), result,
                 _best(result), dtype)


def lr_sweep(surface: Surface, optimizer_call: str | tuple[str, dict[str, Any]],
             lrs: Sequence[float], steps: int, start: Point | None = None,
             state: ProgressState | None = None, frozen: Sequence[str] = (),
             dtype: str = DEFAULT_DTYPE) -> Sweep:
    """One run per learning rate from one start (the surface's if None), one param group each:
    final loss, status and convergence step per lr, and the best lr (BEST_LR_RULE). dtype: as
    basins'. On a model (a BuiltModelSession or ModelProblem), see model_lr_sweep."""
    if not isinstance(surface, Surface):
        if start is not None:
            raise BatchError("a model's runs start from its initial weights, not a point")
        if dtype != DEFAULT_DTYPE:
            raise BatchError("a model's runs compute in float64 (each equals `main.py train`)")
        return model_lr_sweep(surface, optimizer_call, lrs, steps, frozen, state)
    return _sweep(surface, optimizer_call, lrs, None, None, steps, start, state, frozen, dtype)


def trainability_map(surface: Surface, optimizer_call: str | tuple[str, dict[str, Any]],
                     param_name: str, values: Sequence[float], lrs: Sequence[float], steps: int,
                     start: Point | None = None, state: ProgressState | None = None,
                     frozen: Sequence[str] = (), dtype: str = DEFAULT_DTYPE) -> Sweep:
    """One run per (value of `param_name`, lr) cell from one start, one param group each; rows
    are the values, columns the lrs. param_name: a hyperparameter (momentum, alpha, ...), or
    beta1 / beta2 for an element of betas. On a model, see model_trainability_map."""
    if not isinstance(surface, Surface):
        if start is not None:
            raise BatchError("a model's runs start from its initial weights, not a point")
        if dtype != DEFAULT_DTYPE:
            raise BatchError("a model's runs compute in float64 (each equals `main.py train`)")
        return model_trainability_map(surface, optimizer_call, param_name, values, lrs, steps,
                                      frozen, state)
    return _sweep(surface, optimizer_call, lrs, param_name, values, steps, start, state, frozen,
                  dtype)


# --- model mode: the same sweep trains copies of the model ---------------------------------------

@dataclass
class ModelCells:
    """Per cell of a model sweep, as arrays (n,): the last recorded training loss (NaN if even
    the start could not be evaluated), status (an index into STATUSES), steps taken,
    converged_at / diverged_at (-1 for None), reached_at: the first step whose loss is at or
    below the sweep's loss tolerance (-1: never, or no tolerance), and why each diverged."""

    final_loss: np.ndarray
    status: np.ndarray
    steps: np.ndarray
    converged_at: np.ndarray
    diverged_at: np.ndarray
    reached_at: np.ndarray
    reason: list[str]

    def __len__(self) -> int:
        return int(self.final_loss.shape[0])

    def status_names(self) -> list[str]:
        return [STATUSES[s] for s in self.status]

    def steps_to_converge(self) -> list[int | None]:
        return [None if c < 0 else int(c) for c in self.converged_at]

    def steps_to_reach(self) -> list[int | None]:
        return [None if c < 0 else int(c) for c in self.reached_at]


@dataclass
class ModelSweep:
    """A sweep (or map) of model runs; laid out as Sweep (rows: values of `param`, columns:
    lrs, cells row-major). `param` "lr:0" is layer 0's own lr, `row_names` its parameters."""

    model: str
    data: str
    optimizer: str
    steps: int
    lrs: np.ndarray
    param: str | None
    values: np.ndarray | None
    cells: ModelCells
    best: int | None
    frozen: tuple[str, ...] = ()
    row_names: tuple[str, ...] = ()
    loss_tolerance: float | None = None

    best_setting = Sweep.best_setting

    def to_json(self) -> dict[str, Any]:
        """The JSON `main.py sweep --json` prints for a model (non-finite numbers as strings)."""
        c = self.cells
        data: dict[str, Any] = {"model": self.model, "data": self.data,
                                "optimizer": self.optimizer, "frozen": list(self.frozen),
                                "steps": self.steps, "lr": self.lrs.tolist()}
        if self.param is not None and self.values is not None:
            data["param"] = self.param
            data[self.param] = self.values.tolist()
            if self.row_names:
                data["param_parameters"] = list(self.row_names)
        best = self.best_setting()
        data.update({"final_loss": [_number(v) for v in c.final_loss],
                     "status": c.status_names(), "steps_to_converge": c.steps_to_converge(),
                     "loss_tolerance": self.loss_tolerance,
                     "steps_to_reach": c.steps_to_reach(),
                     "best": best, "best_lr": None if best is None else best["lr"],
                     "best_rule": BEST_LR_RULE})
        return data

    def to_csv(self) -> str:
        c = self.cells
        head = ["lr"] + ([self.param] if self.param else []) + [
            "final_loss", "status", "steps", "steps_to_converge", "steps_to_reach", "best"]
        lines = [",".join(head)]
        for k in range(len(c)):
            j, i = divmod(k, len(self.lrs))
            row = [repr(float(self.lrs[i]))]
            if self.param and self.values is not None:
                row.append(repr(float(self.values[j])))
            row += [repr(float(c.final_loss[k])), STATUSES[c.status[k]], str(int(c.steps[k])),
                    "" if c.converged_at[k] < 0 else str(int(c.converged_at[k])),
                    "" if c.reached_at[k] < 0 else str(int(c.reached_at[k])),
                    "1" if k == self.best else ""]
            lines.append(",".join(row))
        return "\n".join(lines) + "\n"


def _model_problem(model: Any) -> tuple[Any, str, str]:
    """(ModelProblem, model text, data text) from a BuiltModelSession or a ModelProblem."""
    from core.problems.training import ModelProblem

    problem = getattr(model, "problem", model)
    if not isinstance(problem, ModelProblem):
        raise BatchError("a sweep needs a surface or a model (a built model session)")
    text = getattr(model, "model_text", None) or type(problem.model).__name__
    dataset = getattr(model, "dataset", None)
    data = (f"{dataset.name}, {problem.n} training rows" if dataset is not None
            else f"{problem.n} training rows")
    data += ", full batch" if problem.full_batch else f", batches of {problem.batch_size}"
    return problem, text, data


def layer_parameters(problem: Any, layer: str) -> tuple[str, ...]:
    """The parameter names of "lr:LAYER"'s layer (an index, or one parameter's name)."""
    from core.problems.model import parameter_names_to_freeze

    return parameter_names_to_freeze(problem.model, layer)


_STATUS_CODE = {"running": RUNNING, "converged": CONVERGED, "frozen": FROZEN,
                "diverged": DIVERGED}


def train_cell(problem: Any, name: str, hyperparameters: dict[str, Any], steps: int,
               frozen: Sequence[str] = (), row_group: tuple[tuple[str, ...], float] | None = None,
               state: ProgressState | None = None) -> Any:
    """One cell: a Run from the model's initial weights, stepped `steps` times as `main.py train`
    steps it (a diverged run stops). row_group (names, lr): those parameters in a second torch
    param group at their own lr; the first group, every other parameter, keeps
    hyperparameters["lr"] (and is the lr the trajectory records). Returns the Run."""
    from core.run import Run, RunStatus

    run = Run(problem, name, hyperparameters, frozen=tuple(frozen))
    if row_group is not None:
        names, lr = row_group
        rest = [run.parameters[n] for n in run.parameter_names if n not in names]
        own = [run.parameters[n] for n in run.parameter_names if n in names]
        # The Run's optimizer, rebuilt with two param groups before its first step (a
        # fresh optimizer has no state yet; the gradients at the start stay in .grad).
        run.optimizer = run.spec.cls([{"params": rest}, {"params": own, "lr": float(lr)}],
                                     **run.hyperparameters)
    done = 0
    while done < steps and run.status is not RunStatus.DIVERGED:
        if state is not None and state.is_interruption_requested():
            raise BatchCancelled("the sweep was cancelled")
        taken = run.step(min(MODEL_CHUNK, steps - done))
        if taken == 0:
            break
        done += taken
        if state is not None:
            state.set_progress(done / steps)
    return run


def _cells_of(runs: list[Any], tolerance: float | None) -> ModelCells:
    final = []
    reached = []
    for run in runs:
        losses = run.trajectory.loss
        final.append(float(losses[-1]) if len(losses) else math.nan)
        at = -1
        if tolerance is not None and len(losses):
            below = np.flatnonzero(np.asarray(losses) <= tolerance)
            at = int(run.trajectory.step[below[0]]) if below.size else -1
        reached.append(at)
    none = -1
    return ModelCells(
        final_loss=np.array(final, dtype=np.float64),
        status=np.array([_STATUS_CODE[r.status.value] for r in runs], dtype=np.int8),
        steps=np.array([r.steps for r in runs], dtype=np.int64),
        converged_at=np.array([none if r.converged_at is None else r.converged_at
                               for r in runs], dtype=np.int64),
        diverged_at=np.array([none if r.diverged_at is None else r.diverged_at for r in runs],
                             dtype=np.int64),
        reached_at=np.array(reached, dtype=np.int64),
        reason=[r.divergence_reason for r in runs])


def _model_sweep(model: Any, optimizer_call: str | tuple[str, dict[str, Any]],
                 lrs: Sequence[float], param: str | None, values: Sequence[float] | None,
                 steps: int, frozen: Sequence[str], state: ProgressState | None,
                 loss_tolerance: float | None) -> ModelSweep:
    problem, model_text, data_text = _model_problem(model)
    name, base = optimizer_setting(optimizer_call)
    problem.check_names(frozen)
    lr_axis = np.asarray(list(lrs), dtype=np.float64)
    rows: list[float | None] = [None] if param is None else [
        float(v) for v in np.asarray(list(values if values is not None else ()),
                                     dtype=np.float64)]
    if lr_axis.size == 0 or not rows:
        raise BatchError("a sweep needs at least one learning rate and one value")
    if isinstance(steps, bool) or not isinstance(steps, int) or steps < 0:
        raise BatchError(f"steps must be a whole number, 0 or more (got {steps!r})")
    cells = lr_axis.size * len(rows)
    if cells * max(steps, 1) > MAX_MODEL_WORK:
        raise BatchError(f"{cells} model runs x {steps} steps is more than the "
                         f"{MAX_MODEL_WORK:,} model steps one call may take; use fewer "
                         "cells or steps")
    if loss_tolerance is not None and not math.isfinite(loss_tolerance):
        raise BatchError(f"the loss tolerance must be a finite number (got {loss_tolerance!r})")
    row_names: tuple[str, ...] = ()
    if param is not None and param.startswith(LAYER_LR):
        row_names = layer_parameters(problem, param[len(LAYER_LR):].strip())
        if len(row_names) == len(problem.parameter_names):
            raise BatchError(f"{param} holds every parameter: there is no second group")
    settings = []  # validated before any work: a bad value is one line, nothing runs
    for value in rows:
        if value is None or row_names:
            row = base
        else:
            row = _with(name, base, param or "", value)
        for lr in lr_axis:
            settings.append(get_spec(name).validate({**row, "lr": float(lr)}))
    if row_names:
        for value in rows:
            get_spec(name).validate({**base, "lr": value})
    runs = []
    for k, hps in enumerate(settings):
        part = _Chunk(state, k / cells, 1 / cells)
        if part.is_interruption_requested():
            raise BatchCancelled("the sweep was cancelled")
        row_value = rows[k // lr_axis.size]
        group = (row_names, float(row_value)) if row_names and row_value is not None else None
        runs.append(train_cell(problem, name, hps, steps, frozen, group, part))
    if state is not None:
        state.set_progress(1.0)
    result_cells = _cells_of(runs, loss_tolerance)
    return ModelSweep(model_text, data_text, format_optimizer_call(name, base), steps, lr_axis,
                      param, None if param is None else np.array(rows, dtype=np.float64),
                      result_cells, _best(result_cells), tuple(frozen), row_names,
                      loss_tolerance)


def model_lr_sweep(model: Any, optimizer_call: str | tuple[str, dict[str, Any]],
                   lrs: Sequence[float], steps: int, frozen: Sequence[str] = (),
                   state: ProgressState | None = None, loss_tolerance: float | None = None
                   ) -> ModelSweep:
    """One model run per learning rate, each from the initial weights (`main.py train` with
    that lr): final loss, status, steps to converge (and to reach loss_tolerance), best lr."""
    return _model_sweep(model, optimizer_call, lrs, None, None, steps, frozen, state,
                        loss_tolerance)


def model_trainability_map(model: Any, optimizer_call: str | tuple[str, dict[str, Any]],
                           param_name: str, values: Sequence[float], lrs: Sequence[float],
                           steps: int, frozen: Sequence[str] = (),
                           state: ProgressState | None = None,
                           loss_tolerance: float | None = None) -> ModelSweep:
    """One model run per (value, lr) cell; rows the values of `param_name` (a hyperparameter,
    beta1 / beta2, or "lr:LAYER": that layer's own lr in a second param group, the columns'
    lr for every other parameter), columns the lrs."""
    return _model_sweep(model, optimizer_call, lrs, param_name, values, steps, frozen, state,
                        loss_tolerance)


def is_log_axis(param: str | None) -> bool:
    """Whether a sweep axis is spaced logarithmically: the lr and a layer's own lr."""
    return param is None or param == "lr" or param.startswith(LAYER_LR)


def log_spaced(low: float, high: float, count: int) -> np.ndarray:
    """count values from low to high, evenly spaced on a log axis (the lr axis)."""
    return np.geomspace(low, high, count)


def linear_spaced(low: float, high: float, count: int) -> np.ndarray:
    """count values from low to high, evenly spaced (every other hyperparameter's axis)."""
    return np.linspace(low, high, count)
