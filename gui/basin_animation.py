"""Basins of attraction as an animation: the basin map filling in as the starts are stepped.

Frame k is the map after k x steps-per-frame steps of every start (core.basin_animation's
replay): each cell in the colour of the minimum it is near now (gui.many.basins_view's colours,
paler the later it converged), grey while it is near none, black once diverged; the minima as
stars (known) and circles (found); the step counter underneath. It is drawn offscreen and encoded
by the same piecework as the race and model mode (gui.animation_export.FilmExport).

`write_basin_animation(...)` is the headless path; `BasinAnimationExport` the same work in
pieces for a progress dialog (gui.animation_export.AnimationExportTask runs it).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pyqtgraph as pg

from core.animation import AnimationPlan, ProgressState, check_writable
from core.basin_animation import BasinFilm, BasinReplay, check_basin_plan, \
    plan_basin_animation
from core.surfaces import Range, Surface
from gui.animation_export import DEFAULT_FPS, DEFAULT_SIZE, FilmExport, layout_area, \
    render_pixels
from gui.image_export import ensure_app, lay_out_now, scene_painter
from gui.many.basins_view import DIVERGED_COLOUR, MINIMUM_COLOURS, UNSETTLED_COLOUR, \
    basin_colours, cell_rect

KEY = (f"<span style='color:{MINIMUM_COLOURS[0]}'>■</span> the minimum a start is near now "
       f"(paler: converged later) · <span style='color:{UNSETTLED_COLOUR}'>■</span> near none "
       f"yet · <span style='color:{DIVERGED_COLOUR}'>■</span> diverged")


class BasinFramePicture:
    """The frames of a basin replay at width x height pixels, in a never-shown layout."""

    def __init__(self, replay: BasinReplay, width: int, height: int) -> None:
        ensure_app()
        self.replay = replay
        self.plan = replay.plan
        self.width, self.height = int(width), int(height)
        self.area = layout_area(self.width, self.height)
        self.canvas = pg.GraphicsLayoutWidget()  # never shown
        self.canvas.ci.setGeometry(self.area)
        self.plot = self.canvas.ci.addPlot(row=0, col=0)
        self.plot.setMenuEnabled(False)
        dtype = " (float32)" if replay.dtype == "float32" else ""  # (float64: exact, unsaid)
        self.plot.setTitle(f"{replay.optimizer} on {replay.surface.name}{dtype}: where each "
                           "start goes", size="10pt")
        self.plot.setLabel("bottom", "start x")
        self.plot.setLabel("left", "start y")
        self.image = pg.ImageItem(axisOrder="row-major")
        self.plot.addItem(self.image)
        rect = cell_rect(replay)  # type: ignore[arg-type]  (reads .x and .y, as Basins has)
        self._rect = rect
        self.plot.setRange(xRange=(rect.left(), rect.right()),
                           yRange=(rect.top(), rect.bottom()), padding=0)
        self.plot.enableAutoRange(x=False, y=False)
        self.key = pg.LabelItem(KEY, size="8pt", justify="left")
        self.canvas.ci.addItem(self.key, row=1, col=0)
        self.key.setMaximumHeight(18)
        self.counter = pg.LabelItem("", color="k", size="10pt", justify="left")
        self.canvas.ci.addItem(self.counter, row=2, col=0)
        self.counter.setMaximumHeight(20)
        self._set_counter(self.plan.last_step)
        self._minima_drawn = False
        scene = self.canvas.scene()
        lay_out_now(scene)
        self._paint = scene_painter(scene, self.area)

    def _set_counter(self, step: int) -> None:
        total = self.plan.last_step
        self.counter.setText(f"step {step:>{len(str(total))}} of {total}")

    def _draw_minima(self) -> None:
        minima = self.replay.minima
        assert minima is not None
        for m, (mx, my) in enumerate(minima):
            self.plot.addItem(pg.ScatterPlotItem(
                [mx], [my], symbol="star" if m < self.replay.known else "o", size=13,
                pen=pg.mkPen("k"), brush=pg.mkBrush("w")))
        self._minima_drawn = True

    def frame(self, k: int) -> np.ndarray:
        """Frame k (recorded by the replay), drawn, as RGB pixels."""
        if not self._minima_drawn:
            self._draw_minima()
        shown = self.replay.frame(k)
        colours = basin_colours(shown.minimum.astype(np.int64), shown.status.astype(np.int64),
                                shown.converged_at.astype(np.int64), self.plan.last_step)
        self.image.setImage(colours.reshape(len(self.replay.y), len(self.replay.x), 4),
                            autoLevels=False)
        self.image.setRect(self._rect)  # (after the image: it scales by the image's size)
        self._set_counter(shown.step)
        lay_out_now(self.canvas.scene())
        return render_pixels(self._paint, self.width, self.height, self.area)

    def close(self) -> None:
        self.canvas.close()
        self.canvas.deleteLater()


class BasinAnimationExport(FilmExport):
    """A basin film in pieces (gui.animation_export.FilmExport): the first pass a frame's steps
    a piece (the minima), then each frame's steps and its picture."""

    def __init__(self, replay: BasinReplay, path: str | Path, width: int, height: int) -> None:
        check_basin_plan(replay.plan, int(width), int(height), Path(path).suffix)
        super().__init__(path, width, height, replay.plan)
        self.replay = replay
        self._picture: BasinFramePicture | None = None

    def _open(self) -> None:
        self._picture = BasinFramePicture(self.replay, self.width, self.height)

    def _prepare(self) -> bool:
        if not self.replay.prepared:
            self.replay.prepare()
            return False
        return self.replay.advance()

    def _stepped(self) -> float:
        return 0.5 * self.replay.stepped_share() + 0.5 * len(self.replay.frames) / \
            self.frame_count

    def _frame(self, k: int) -> np.ndarray:
        assert self._picture is not None
        return self._picture.frame(k)

    def _colours(self) -> list[str | None]:
        return [*MINIMUM_COLOURS, DIVERGED_COLOUR, UNSETTLED_COLOUR]

    def _close(self) -> None:
        if self._picture is not None:
            self._picture.close()
            self._picture = None


def write_basin_film(film: BasinFilm, path: str | Path, *, fps: int = DEFAULT_FPS,
                     steps_per_frame: int | None = None, frames: int | None = None,
                     size: tuple[int, int] = DEFAULT_SIZE,
                     state: ProgressState | None = None) -> Path:
    """Write `film` (a BasinFilm: what the Basins tab or `main.py basins` maps) as an animation
    (.gif, .mp4, .webp, .apng), on this thread. Raises AnimationError / BatchError (one line)
    for what cannot be made, before any drawing; `state` may cancel (nothing is written)."""
    check_writable(Path(path))
    plan: AnimationPlan = plan_basin_animation(film.steps, fps=fps,
                                               steps_per_frame=steps_per_frame, frames=frames)
    return BasinAnimationExport(film.replay(plan), path, *size).run(state)


def write_basin_animation(surface: Surface, optimizer_call: str | tuple[str, dict[str, Any]],
                          path: str | Path, *, grid: int = 64, steps: int = 200,
                          fps: int = DEFAULT_FPS, steps_per_frame: int | None = None,
                          frames: int | None = None, size: tuple[int, int] = DEFAULT_SIZE,
                          x_range: Range | None = None, y_range: Range | None = None,
                          frozen: Sequence[str] = (), dtype: str = "float64",
                          state: ProgressState | None = None) -> Path:
    """Write the basin map of `grid` x `grid` starts filling in over `steps` steps as an
    animation (.gif, .mp4, .webp, .apng), on this thread (write_basin_film of that film)."""
    film = BasinFilm(surface, optimizer_call, grid, steps, x_range, y_range, tuple(frozen),
                     dtype)
    return write_basin_film(film, path, fps=fps, steps_per_frame=steps_per_frame,
                            frames=frames, size=size, state=state)
