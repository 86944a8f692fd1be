"""Model mode as an animation: frames of the workspace's views, drawn offscreen from a replay.

A frame shows what the workspace shows, from core.model_animation.ModelReplay (a fresh build of
the session stepped from its start): on the left the data (training rows as circles, held-out
rows as triangles) with the selected run's prediction growing step by step (its decision regions,
or its fitted curve) and the other runs' boundaries or fits as lines in their colours; on the
right the training loss (solid) and held-out loss (dashed) of every run on a log scale, with a
legend; the step counter underneath. The pictures reuse the workspace's own colouring
(gui.model.data_view) and log axes (gui.model.curves_view), and the race's offscreen rendering
and piecework (gui.animation_export), so a film looks like the window and is encoded the same way.

`write_model_animation(session, path, options, progress=None)` is the headless path (the
command line's `train ... --out anim.gif`); `ModelAnimationExport` is the same work in pieces for
the window's progress dialog (the workspace's `controller.to_session()` is what it replays).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pyqtgraph as pg
import torch
from PySide6.QtCore import QRectF, Qt

from core.animation import AnimationPlan, ProgressState, check_writable
from core.model_animation import (
    ModelAnimationOptions,
    ModelReplay,
    check_model_plan,
    plan_model_animation,
    selected_index,
)
from core.model_session import ModelSession
from core.problems.base import DTYPE
from gui.animation_export import FilmExport, layout_area, render_pixels
from gui.image_export import ensure_app, lay_out_now, scene_painter
from gui.model.curves_view import _positive, log_axis_style
from gui.model import one_feature
from gui.model.data_view import CLASS_COLOURS, CURVE_POINTS, GRID, _class_edges, _region_colours
from gui.surface_view import contour_segments

SELECTED_CURVE = "#222"  # the selected run's fit, as the workspace draws it
MARGIN = 0.1  # the data plot shows the rows' range and this share more on each side


class ModelFramePicture:
    """The frames of a replay at width x height pixels, drawn in a never-shown layout.

    `fix_axes()` (after the replay is stepped to its end) fixes the loss axes to the whole film;
    `frame(k)` draws frame k as a height x width x 3 uint8 array; `close()` frees the canvas."""

    def __init__(self, replay: ModelReplay, width: int, height: int,
                 selected: int | None) -> None:
        ensure_app()
        self.replay = replay
        self.plan = replay.plan
        self.selected = selected
        self.width, self.height = int(width), int(height)
        self.area = layout_area(self.width, self.height)
        self.canvas = pg.GraphicsLayoutWidget()  # never shown
        self.canvas.ci.setGeometry(self.area)
        self.data_plot = self.canvas.ci.addPlot(row=0, col=0)
        self.loss_plot = self.canvas.ci.addPlot(row=0, col=1)
        self.counter = pg.LabelItem("", color="k", size="10pt", justify="left")
        self.canvas.ci.addItem(self.counter, row=1, col=0, colspan=2)
        self.counter.setMaximumHeight(20)  # one line of text, not a share of the height
        self._set_counter(self.plan.last_step)
        self._build_data_plot()
        self._build_loss_plot()
        scene = self.canvas.scene()
        lay_out_now(scene)
        self._paint = scene_painter(scene, self.area)

    # --- the items, made once -------------------------------------------------------------------

    @property
    def shows_regions(self) -> bool:
        d = self.replay.built.dataset
        return d.task != "regression" and d.n_features == 2

    @property
    def shows_curve(self) -> bool:
        d = self.replay.built.dataset
        return d.n_features == 1  # the fit, or P(class 1) / the predicted class (one_feature)

    def _build_data_plot(self) -> None:
        built = self.replay.built
        plot = self.data_plot
        plot.showGrid(x=True, y=True, alpha=0.2)
        plot.setMenuEnabled(False)
        X = built.dataset.X.numpy()
        low, high = X.min(axis=0), X.max(axis=0)
        margin = MARGIN * np.maximum(high - low, 1e-9)
        self._low, self._high = low - margin, high + margin
        self.image = pg.ImageItem(axisOrder="row-major")
        self.image.setZValue(-10)
        plot.addItem(self.image)
        self.curve = pg.PlotDataItem(pen=pg.mkPen(SELECTED_CURVE, width=2.5))
        self.curve.setZValue(5)
        plot.addItem(self.curve)
        classification = built.dataset.task != "regression"
        parts = [(built.split.train, "o")]
        if built.split.test is not None:
            parts.append((built.split.test, "t"))
        for part, symbol in parts:
            points = pg.ScatterPlotItem(size=6, symbol=symbol, pen=pg.mkPen("k", width=0.5))
            Xp = part.X.numpy()
            if classification:
                colours = CLASS_COLOURS[part.y.numpy() % len(CLASS_COLOURS)].astype(int)
                points.setData(Xp[:, 0], Xp[:, 1] if Xp.shape[1] > 1 else
                               one_feature.point_heights(part.X, part.y, True),
                               brush=[pg.mkBrush(*rgb) for rgb in colours])
            else:
                points.setData(Xp[:, 0], part.y.numpy(), brush=pg.mkBrush(80, 80, 80, 160))
            plot.addItem(points)
        self.others: list[list[pg.GraphicsObject]] = []
        runs = self.replay.runs
        if self.shows_regions:
            xs = np.linspace(self._low[0], self._high[0], GRID)
            ys = np.linspace(self._low[1], self._high[1], GRID)
            gx, gy = np.meshgrid(xs, ys)
            self._grid = torch.tensor(np.stack([gx.ravel(), gy.ravel()], 1), dtype=DTYPE)
            self._grid_xs, self._grid_ys = xs, ys
            dx, dy = xs[1] - xs[0], ys[1] - ys[0]  # a pixel covers its sample's cell
            self._rect = QRectF(xs[0] - dx / 2, ys[0] - dy / 2, GRID * dx, GRID * dy)
            outputs = int(self.replay.predict(self.replay.record(0)[0].parameters,
                                              self._grid[:1]).shape[1]) if runs else 1
            for run in runs:
                items = []
                for _ in range(1 if outputs == 1 else outputs):
                    # the boundary as segments in data units (the data view's drawing)
                    line = pg.PlotCurveItem(pen=pg.mkPen(run.color or "k", width=1.5),
                                            connect="pairs")
                    line.setZValue(-5)  # over the regions, under the points
                    plot.addItem(line, ignoreBounds=True)
                    items.append(line)
                self.others.append(items)
            plot.setRange(xRange=(self._low[0], self._high[0]),
                          yRange=(self._low[1], self._high[1]), padding=0)
        elif self.shows_curve:
            self._xs = np.linspace(self._low[0], self._high[0], CURVE_POINTS)
            for run in runs:
                item = pg.PlotDataItem(pen=pg.mkPen(run.color or "k", width=1.5))
                plot.addItem(item)
                self.others.append([item])
            d = built.dataset
            plot.setRange(xRange=(self._low[0], self._high[0]),
                          yRange=one_feature.y_range(d.y, classification, d.n_classes),
                          padding=0)
            plot.getAxis("left").setTicks(one_feature.class_ticks(d.class_names,
                                                                  classification))
            self._one_logit = bool(runs) and int(self.replay.predict(
                self.replay.record(0)[0].parameters,
                torch.zeros(1, 1, dtype=DTYPE)).shape[1]) == 1
        else:
            self.others = [[] for _ in runs]
        plot.enableAutoRange(x=False, y=False)
        self.image.setVisible(self.shows_regions)
        self.curve.setVisible(self.shows_curve)
        chosen = None if self.selected is None else runs[self.selected]
        self._title_data(None if chosen is None else chosen.label or chosen.optimizer_name)

    def _title_data(self, label: str | None) -> None:
        d = self.replay.built.dataset
        if not (self.shows_regions or self.shows_curve):
            self.data_plot.setTitle(f"{d.n_features} features: the prediction is not drawn")
        elif label is None:
            self.data_plot.setTitle("no run selected")
        elif self.shows_regions:
            self.data_plot.setTitle(f"decision regions of {label}")
        else:
            self.data_plot.setTitle(one_feature.title(
                d.task != "regression", getattr(self, "_one_logit", True), label))

    def _build_loss_plot(self) -> None:
        plot = self.loss_plot
        plot.setLogMode(x=False, y=True)
        plot.setLabel("left", "loss")
        plot.setLabel("bottom", "step")
        plot.setMenuEnabled(False)
        log_axis_style(plot.getAxis("left"))
        # bottom left, as the workspace: a falling loss leaves that corner empty
        plot.addLegend(offset=(10, -10), brush=pg.mkBrush(255, 255, 255, 200))
        self.train_curves: list[pg.PlotDataItem] = []
        self.test_curves: list[pg.PlotDataItem] = []
        for run in self.replay.runs:
            colour = run.color or "k"
            self.train_curves.append(plot.plot(pen=pg.mkPen(colour, width=1.5),
                                               name=run.label or run.optimizer_name))
            self.test_curves.append(plot.plot(
                pen=pg.mkPen(colour, width=1, style=Qt.PenStyle.DashLine)))
        plot.enableAutoRange(x=False, y=False)
        plot.setXRange(0, max(1, self.plan.last_step), padding=0.02)

    def fix_axes(self) -> None:
        """The loss axis of the whole film (the replay stepped to its end), kept for every
        frame: a film whose axes rescale every frame is hard to read."""
        low, high = self.replay.loss_range()
        self.loss_plot.setYRange(math.log10(low), math.log10(high), padding=0.05)

    # --- a frame --------------------------------------------------------------------------------

    def _set_counter(self, step: int) -> None:
        total = self.plan.last_step
        self.counter.setText(f"step {step:>{len(str(total))}} of {total}")

    def frame(self, k: int) -> np.ndarray:
        """Frame k (recorded by the replay), drawn, as RGB pixels."""
        runs = self.replay.runs
        chosen = self.selected
        if self.shows_regions:
            self._draw_regions(k, chosen)
        elif self.shows_curve:
            self._draw_fits(k, chosen)
        for i, _run in enumerate(runs):
            steps, loss = self.replay.loss_curve(i, k)
            self.train_curves[i].setData(steps, _positive(loss), connect="finite")
            test_steps, test_loss = self.replay.test_curve(i, k)
            self.test_curves[i].setData(test_steps, _positive(test_loss), connect="finite")
        self._set_counter(self.plan.step_at(k))
        # Pending layouts are applied here, not by an event loop that the window has and the
        # command line has not: the same frame in both.
        lay_out_now(self.canvas.scene())
        return render_pixels(self._paint, self.width, self.height, self.area)

    def _draw_regions(self, k: int, chosen: int | None) -> None:
        shown = self.replay.record(k)
        if chosen is None:
            self.image.clear()
        else:
            regions = _region_colours(self.replay.predict(shown[chosen].parameters, self._grid),
                                      GRID)
            self.image.setImage(regions, autoLevels=False, levels=(0, 255))
            self.image.setRect(self._rect)  # (after the image: it scales by the image's size)
        for i, items in enumerate(self.others):
            visible = i != chosen and chosen is not None
            for item in items:
                item.setVisible(visible)
            if visible:
                edges = _class_edges(self.replay.predict(shown[i].parameters, self._grid), GRID)
                for item, edge in zip(items, edges):
                    item.setData(*contour_segments(self._grid_xs, self._grid_ys, edge, (0.0,)))

    def _draw_fits(self, k: int, chosen: int | None) -> None:
        shown = self.replay.record(k)
        X = torch.tensor(self._xs, dtype=DTYPE).reshape(-1, 1)
        classification = self.replay.built.dataset.task != "regression"

        def fit(i: int) -> np.ndarray:
            return one_feature.curve_values(self.replay.predict(shown[i].parameters, X),
                                            classification)

        if chosen is None:
            self.curve.setData([], [])
        else:
            self.curve.setData(self._xs, fit(chosen))
        for i, items in enumerate(self.others):
            items[0].setVisible(i != chosen)
            if i != chosen:
                items[0].setData(self._xs, fit(i))

    def close(self) -> None:
        self.canvas.close()
        self.canvas.deleteLater()


class ModelAnimationExport(FilmExport):
    """A model session's film in pieces (see gui.animation_export.FilmExport): build the
    replay and the picture; step every run a frame's steps per piece to the end; fix the loss
    axes; then draw the frames. Raises AnimationError (one line) before any drawing for what
    cannot be made."""

    def __init__(self, session: ModelSession, path: str | Path, width: int, height: int,
                 plan: AnimationPlan, *, selected: int | None = None) -> None:
        check_writable(Path(path))  # said before the build, not after it
        self.selected = selected_index(session, selected)
        self._session = session
        self._replay = ModelReplay(session, plan)  # a fresh build: its own runs, at the start
        check_model_plan(self._replay.built, plan, int(width), int(height), Path(path).suffix)
        super().__init__(path, width, height, plan)
        self._picture: ModelFramePicture | None = None

    @property
    def replay(self) -> ModelReplay:
        return self._replay

    def _open(self) -> None:
        self._picture = ModelFramePicture(self._replay, self.width, self.height, self.selected)

    def _prepare(self) -> bool:
        done = self._replay.advance()
        if done and self._picture is not None:
            self._picture.fix_axes()
        return done

    def _stepped(self) -> float:
        return self._replay.recorded / self.frame_count

    def _frame(self, k: int) -> np.ndarray:
        assert self._picture is not None
        return self._picture.frame(k)

    def _colours(self) -> list[str | None]:
        return [spec.color for spec in self._session.runs]

    def _close(self) -> None:
        if self._picture is not None:
            self._picture.close()
            self._picture = None


class _Progress:
    """A plain callable as a ProgressState that never cancels."""

    def __init__(self, report: Callable[[float], None]) -> None:
        self._report = report

    def set_progress(self, fraction: float) -> None:
        self._report(fraction)

    def is_interruption_requested(self) -> bool:
        return False


def write_model_animation(session: ModelSession, path: str | Path,
                          options: ModelAnimationOptions | None = None,
                          progress: ProgressState | Callable[[float], None] | None = None
                          ) -> Path:
    """Write the model session's training from its start as an animation (.gif, .mp4, .webp,
    .apng) on this thread, the same frames the window's dialog makes. `progress`: a
    ProgressState (progress and cancel: AnimationCancelled, nothing written) or a function
    given the fraction done. Raises AnimationError (one line) for what cannot be made."""
    options = options or ModelAnimationOptions()
    plan = plan_model_animation(session, options)
    width, height = options.size
    export = ModelAnimationExport(session, path, width, height, plan, selected=options.selected)
    state = _Progress(progress) if callable(progress) and not hasattr(
        progress, "set_progress") else progress
    return export.run(state)  # type: ignore[arg-type]
