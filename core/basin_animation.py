"""Basins of attraction as an animation: a grid of starts stepped together (core.batch, as
core.many.basins steps them), and after every k steps each cell coloured by the minimum it is
near now (no Qt here).

The minima are the film's last frame's (core.many.assign_minima on where the cells end: the
surface's known minima, then the clusters converged cells found), fixed for every frame, so a
basin keeps its colour from the first frame to the last. So the grid is stepped twice: once to
the end for the minima (`prepare`, in pieces of a frame's steps), then from the start again, a
frame at a time, keeping per frame and per cell only the status, the minimum it is near and the
step it converged at (a few bytes a cell). Both passes are one BatchRun, which equals, cell by
cell, the single core.run.Run from that start.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from core.animation import AnimationError, AnimationPlan, check_plan
from core.batch import BatchCancelled, BatchRun, ProgressState
from core.many import BASIN_CHUNK, DEFAULT_DTYPE, DTYPES, MINIMUM_REL_TOL, assign_minima, \
    check_dtype, check_range, check_steps, optimizer_setting
from core.optimizers import format_optimizer_call
from core.status import surface_scale
from core.surfaces import Range, Surface

MAX_FILM_GRID = int(BASIN_CHUNK ** 0.5)  # one batch: 256 x 256 starts
# Frames x cells a replay keeps (7 bytes each): 256 x 256 starts for 450 frames, about 200 MB.
MAX_CELL_FRAMES = 30_000_000


def check_basin_work(grid_n: int, steps: int) -> None:
    """Refuse (AnimationError / BatchError, one line) a grid a film cannot hold in one batch,
    or more stepping than core.many allows."""
    if isinstance(grid_n, bool) or not isinstance(grid_n, int) or \
            not 2 <= grid_n <= MAX_FILM_GRID:
        raise AnimationError(f"an animated basin map has from 2 to {MAX_FILM_GRID} starts a "
                             f"side (got {grid_n!r})")
    check_steps(steps, grid_n * grid_n)


@dataclass(frozen=True)
class BasinFilm:
    """What a basin film maps, as the Basins tab or `main.py basins` gives it: a surface, one
    optimizer setting (call text, or name and keywords), the grid, the steps, the ranges (None:
    the surface's region), the frozen coordinates and the dtype (core.many.DTYPES)."""

    surface: Surface
    optimizer_call: str | tuple[str, dict[str, Any]]
    grid: int = 64
    steps: int = 200
    x_range: Range | None = None
    y_range: Range | None = None
    frozen: tuple[str, ...] = ()
    dtype: str = DEFAULT_DTYPE

    def replay(self, plan: AnimationPlan) -> BasinReplay:
        """A replay of this map along `plan` (its length is the plan's)."""
        return BasinReplay(self.surface, self.optimizer_call, self.grid, plan,
                           x_range=self.x_range, y_range=self.y_range, frozen=self.frozen,
                           dtype=self.dtype)


@dataclass(frozen=True)
class BasinFrame:
    """What one frame shows: per cell (row-major, y then x) its status, the minimum it is near
    (an index into the film's minima, -1 for none) and the step it converged at (-1)."""

    step: int
    status: np.ndarray
    minimum: np.ndarray
    converged_at: np.ndarray


class BasinReplay:
    """A grid_n x grid_n grid of starts over the region (or the ranges), one optimizer setting,
    stepped `steps` times, a frame every `steps_per_frame` steps.

    `prepare()` is one piece of the first pass (True once the minima are known); `advance()`
    one frame of the second (True once every frame is recorded); `frame(k)` what frame k
    shows. `x`, `y`: the starts' columns and rows (as core.many.Basins has them)."""

    def __init__(self, surface: Surface, optimizer_call: str | tuple[str, dict[str, Any]],
                 grid_n: int, plan: AnimationPlan, *, x_range: Range | None = None,
                 y_range: Range | None = None, frozen: Sequence[str] = (),
                 dtype: str = DEFAULT_DTYPE) -> None:
        if len(plan.lengths) != 1:
            raise AnimationError("a basin map's plan has one length: its steps")
        check_basin_work(grid_n, plan.last_step)
        if plan.frame_count * grid_n * grid_n > MAX_CELL_FRAMES:
            raise AnimationError(f"{plan.frame_count} frames of {grid_n} x {grid_n} starts is "
                                 f"more than the {MAX_CELL_FRAMES:,} cell-frames a film keeps; "
                                 "take more steps per frame or a smaller grid")
        self.plan = plan
        self.surface = surface
        self.dtype = check_dtype(dtype)
        self.name, self.hyperparameters = optimizer_setting(optimizer_call)
        (x0, x1) = check_range("x range", x_range or surface.x_range)
        (y0, y1) = check_range("y range", y_range or surface.y_range)
        self.x, self.y = np.linspace(x0, x1, grid_n), np.linspace(y0, y1, grid_n)
        self._starts = np.column_stack([np.tile(self.x, grid_n), np.repeat(self.y, grid_n)])
        self._frozen = tuple(frozen)
        self.tolerance = MINIMUM_REL_TOL * surface_scale(surface).span
        self.known = len(surface.minima) + len(surface.local_minima)
        self.minima: np.ndarray | None = None  # (m, 2) once prepared
        self._batch = self._new_batch()
        self._stepped = 0
        self.frames: list[BasinFrame] = []

    def _new_batch(self) -> BatchRun:
        return BatchRun(self.surface, self.name, [(self.hyperparameters, self._starts)],
                        frozen=self._frozen, dtype=DTYPES[self.dtype])

    @property
    def optimizer(self) -> str:
        return format_optimizer_call(self.name, self.hyperparameters)

    @property
    def prepared(self) -> bool:
        return self.minima is not None

    @property
    def done(self) -> bool:
        return len(self.frames) >= self.plan.frame_count

    def stepped_share(self) -> float:
        """The share of the first pass done (0 to 1)."""
        return 1.0 if self.prepared else self._stepped / max(1, self.plan.last_step)

    def prepare(self, state: ProgressState | None = None) -> bool:
        """One frame's steps of the first pass; at its end the film's minima are fixed and the
        grid starts again for the second. True once that is done."""
        if self.prepared:
            return True
        todo = min(self.plan.steps_per_frame, self.plan.last_step - self._stepped)
        if todo > 0:
            self._batch.step(todo, _CancelOnly(state))
            self._stepped += todo
        if self._stepped < self.plan.last_step:
            return False
        known = [*self.surface.minima, *self.surface.local_minima]
        self.minima, _ = assign_minima(self._batch.result(), known, self.tolerance,
                                       self.surface)
        self._batch = self._new_batch()
        self._stepped = 0
        self._record()
        return True

    def advance(self, state: ProgressState | None = None) -> bool:
        """The next frame of the second pass (after `prepare`); True once every one is in."""
        if not self.prepared:
            raise AnimationError("the basin film's minima are not known yet: prepare() first")
        if self.done:
            return True
        target = self.plan.step_at(len(self.frames))
        if target > self._stepped:
            self._batch.step(target - self._stepped, _CancelOnly(state))
            self._stepped = target
        self._record()
        return self.done

    def _record(self) -> None:
        assert self.minima is not None
        cells = self._batch.result()
        # Every frame against the film's own minima: no new clusters mid-film (a cell near none
        # yet is -1), so each basin keeps its colour.
        _, minimum = assign_minima(cells, [tuple(m) for m in self.minima], self.tolerance,
                                   find=False)
        self.frames.append(BasinFrame(self._stepped, cells.status.astype(np.int8),
                                      minimum.astype(np.int16),
                                      cells.converged_at.astype(np.int32)))

    def step_all(self, state: ProgressState | None = None) -> None:
        """Both passes to the end on this thread (a worker's Job: no Qt is touched): `state` gets
        progress and may cancel (BatchCancelled; the replay is then of no further use)."""
        while True:
            if state is not None:
                if state.is_interruption_requested():
                    raise BatchCancelled("the basin film was cancelled")
                state.set_progress(0.5 * self.stepped_share()
                                   + 0.5 * len(self.frames) / self.plan.frame_count)
            if not self.prepared:
                self.prepare(state)  # (a cancel is also seen between a frame's steps)
            elif self.advance(state):
                break
        if state is not None:
            state.set_progress(1.0)

    def frame(self, k: int) -> BasinFrame:
        """Frame k (recorded by `advance`)."""
        if not 0 <= k < len(self.frames):
            raise AnimationError(f"frame {k} is not recorded yet ({len(self.frames)} are)")
        return self.frames[k]


class _CancelOnly:
    """A caller's state for one frame's steps: its cancel is asked every few steps (BatchRun.step
    raises BatchCancelled), its progress is the replay's to report."""

    def __init__(self, state: ProgressState | None) -> None:
        self.state = state

    def set_progress(self, fraction: float) -> None:
        pass

    def is_interruption_requested(self) -> bool:
        return self.state is not None and self.state.is_interruption_requested()


def plan_basin_animation(steps: int, *, fps: int, steps_per_frame: int | None = None,
                         frames: int | None = None) -> AnimationPlan:
    """The plan for a basin film of `steps` steps (core.animation's rules)."""
    from core.animation import plan_animation

    class _OneRun:
        enabled = True

    class _Steps:
        runs = [_OneRun()]

        @staticmethod
        def steps_for(_run: Any, _steps: int | None) -> int:
            return steps

    return plan_animation(_Steps(), fps=fps, steps_per_frame=steps_per_frame,  # type: ignore
                          frames=frames)


def check_basin_plan(plan: AnimationPlan, width: int, height: int, suffix: str) -> None:
    """core.animation's bounds on format, size, fps, frames and pixels (the stepping is bounded
    by core.many's own work limit when the replay is made)."""

    class _NoRuns:
        runs: list[Any] = []

    check_plan(_NoRuns(), plan, width, height, suffix)  # type: ignore[arg-type]
