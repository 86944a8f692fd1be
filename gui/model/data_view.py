"""DataView: the data, with the selected run's prediction, redrawn a few times a second.

Regression (one feature): the points and the fitted curve model(x) along the x range; the other
runs' fits as thin lines in their colours (the axes follow the points, not a fit gone wild).
Classification on one feature: the points at their class's height, and along x the predicted
probability of class 1 (one logit, BCEWithLogitsLoss) or the predicted class (argmax).
Classification (two features): the selected run's decision regions as an image (the model
evaluated on a grid under torch.no_grad(), each pixel the class colours mixed by the predicted
probabilities), the other runs' decision boundaries as lines in their colours, and the points
coloured by class. Items are made once per run and
updated with setData / setImage.

"One panel per run" switches to small multiples instead: a small plot per run, in a grid, each
with that run's own decision regions (or fitted curve) over the training points. The title says
the selected run's held-out loss and accuracy, computed under torch.no_grad() in eval mode (the
controller's last measurement, every few steps).
"""

from __future__ import annotations

import math

import numpy as np
import pyqtgraph as pg
import torch
from PySide6.QtCore import QRectF
from PySide6.QtWidgets import QCheckBox, QLabel, QStackedWidget, QVBoxLayout, QWidget

from core.problems.base import DTYPE
from core.run import Run
from gui.model import one_feature
from gui.model.controller import ModelController
from gui.surface_view import contour_segments
from gui.throttle import Throttle

GRID = 64  # pixels per side of the decision-region image (6 runs: ~1 ms of forward each)
CURVE_POINTS = 200
REDRAW_HZ = 6
CLASS_COLOURS = np.array([(31, 119, 180), (214, 39, 40), (44, 160, 44), (148, 103, 189),
                          (255, 127, 14), (140, 86, 75), (227, 119, 194), (127, 127, 127),
                          (188, 189, 34), (23, 190, 207)], dtype=float)
REGION_LIGHTEN = 0.55  # regions are paler than the points, so the points stay readable
# The other runs' boundary lines are traced on every BOUNDARY_STEP-th sample of the grid (their
# predictions are a quarter of the pixels'), by the surface view's vectorised marching squares:
# 0.12 ms a line on 32 x 32, ~10x faster than pyqtgraph's isocurve (Python), which took ~6% of
# a playing workspace's time with five other runs.
BOUNDARY_STEP = 2
SMALL_GRID = 40  # pixels per side of a small multiple's regions
SMALL_COLUMNS = 3  # panels per row of the small multiples (up to 8 runs: 3 rows)


class DataView(QWidget):
    """The training and test points, the selected run's prediction, the others' outlines."""

    def __init__(self, controller: ModelController, *, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.controller = controller
        self.plot = pg.PlotWidget()
        self.plot.setBackground("w")
        self.plot.showGrid(x=True, y=True, alpha=0.2)
        self.image = pg.ImageItem(axisOrder="row-major")
        self.image.setZValue(-10)
        self.plot.addItem(self.image)
        self.train_points = pg.ScatterPlotItem(size=6, pen=pg.mkPen("k", width=0.5))
        self.test_points = pg.ScatterPlotItem(size=6, symbol="t", pen=pg.mkPen("k", width=0.5))
        self.curve = pg.PlotDataItem(pen=pg.mkPen("#222", width=2.5))
        self.curve.setZValue(5)
        for item in (self.train_points, self.test_points):
            self.plot.addItem(item)
        # the axes follow the data: a diverging fit must not squash the points to a line
        self.plot.addItem(self.curve, ignoreBounds=True)
        # per other run: its fit (regression) or its boundary lines (classification)
        self.other_items: dict[Run, list[pg.GraphicsObject]] = {}
        note = QLabel("circles: training rows, triangles: held-out test rows; the selected run "
                      "fills the regions (or draws the thick curve), the other runs draw lines "
                      "in their colours; model(x) under torch.no_grad()")
        note.setWordWrap(True)
        note.setStyleSheet("color: #555;")
        self.multiples_check = QCheckBox("one panel per run")
        self.multiples_check.setToolTip("small multiples: each run's own decision regions (or "
                                        "fit), side by side")
        self.multiples = pg.GraphicsLayoutWidget()
        self.multiples.setBackground("w")
        self.panels: dict[Run, tuple[pg.PlotItem, pg.GraphicsObject]] = {}
        self.stack = QStackedWidget()
        self.stack.addWidget(self.plot)
        self.stack.addWidget(self.multiples)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.multiples_check)
        layout.addWidget(self.stack, 1)
        layout.addWidget(note)
        self.multiples_check.toggled.connect(self._on_multiples_toggle)
        self.region_image: np.ndarray | None = None  # what the image shows (tests read it)
        self.held_out_text = ""  # the title's held-out figures
        self._throttle = Throttle(self.refresh_prediction, REDRAW_HZ, self)
        controller.sigProblemChanged.connect(self._on_problem_change)
        controller.sigStepped.connect(self._throttle.request)
        controller.sigSelectionChanged.connect(lambda _run: self.refresh_prediction())
        controller.sigRunsChanged.connect(self._on_runs_change)
        self._on_problem_change()

    # --- the data and the items -----------------------------------------------------------------

    @property
    def shows_regions(self) -> bool:
        c = self.controller
        return c.is_classification and c.dataset.n_features == 2

    @property
    def shows_curve(self) -> bool:
        """One feature: a curve along x (the fit, or the predicted class or probability)."""
        return self.controller.dataset.n_features == 1

    def _curve(self, run: Run, X: torch.Tensor) -> np.ndarray:
        """What the curve shows at rows X: model(x) for regression; for classes, P(class 1)
        from one logit, else the predicted class index (the points sit at their class's)."""
        return one_feature.curve_values(self.controller.predict(run, X),
                                        self.controller.is_classification)

    def _on_problem_change(self) -> None:
        c = self.controller
        classification = c.is_classification
        one_logit = c.settings.loss == "BCEWithLogitsLoss"
        self._title = ("the selected run's fit" if not classification
                       else "decision regions of the selected run" if c.dataset.n_features == 2
                       else "P(class 1) of the selected run along x" if one_logit
                       else "the selected run's predicted class along x")
        self.plot.setTitle(self._title)
        # one feature with classes: the points sit at their class index; say its name there
        self.plot.getAxis("left").setTicks(one_feature.class_ticks(
            c.dataset.class_names, classification and c.dataset.n_features == 1))
        for item, part in ((self.train_points, c.train), (self.test_points, c.test)):
            if part is None:  # a test fraction of 0: no held-out rows
                item.setData([], [])
                continue
            X = part.X.numpy()
            if classification:
                colours = CLASS_COLOURS[part.y.numpy() % len(CLASS_COLOURS)].astype(int)
                brushes = [pg.mkBrush(*rgb) for rgb in colours]
                # one feature: each point at its class's height (where the curve says it)
                item.setData(X[:, 0], X[:, 1] if X.shape[1] > 1 else
                             one_feature.point_heights(part.X, part.y, True), brush=brushes)
            else:
                item.setData(X[:, 0], part.y.numpy(), brush=pg.mkBrush(80, 80, 80, 160))
        X = c.dataset.X.numpy()
        low, high = X.min(axis=0), X.max(axis=0)
        margin = 0.1 * np.maximum(high - low, 1e-9)
        self._low, self._high = low - margin, high + margin
        if self.shows_regions:
            xs = np.linspace(self._low[0], self._high[0], GRID)
            ys = np.linspace(self._low[1], self._high[1], GRID)
            gx, gy = np.meshgrid(xs, ys)
            self._grid = torch.tensor(np.stack([gx.ravel(), gy.ravel()], 1), dtype=DTYPE)
            coarse = np.stack([gx[::BOUNDARY_STEP, ::BOUNDARY_STEP].ravel(),
                               gy[::BOUNDARY_STEP, ::BOUNDARY_STEP].ravel()], 1)
            self._boundary_grid = torch.tensor(coarse, dtype=DTYPE)
            self._boundary_xs, self._boundary_ys = xs[::BOUNDARY_STEP], ys[::BOUNDARY_STEP]
            # pixel (i, j) covers its sample's cell: the rect is half a cell wider each side
            dx, dy = xs[1] - xs[0], ys[1] - ys[0]
            self._rect = QRectF(xs[0] - dx / 2, ys[0] - dy / 2, GRID * dx, GRID * dy)
        self.image.setVisible(self.shows_regions)
        self.curve.setVisible(self.shows_curve)
        if self.shows_regions:
            xs = np.linspace(self._low[0], self._high[0], SMALL_GRID)
            ys = np.linspace(self._low[1], self._high[1], SMALL_GRID)
            gx, gy = np.meshgrid(xs, ys)
            self._small_grid = torch.tensor(np.stack([gx.ravel(), gy.ravel()], 1), dtype=DTYPE)
            dx, dy = xs[1] - xs[0], ys[1] - ys[0]
            self._small_rect = QRectF(xs[0] - dx / 2, ys[0] - dy / 2, SMALL_GRID * dx,
                                      SMALL_GRID * dy)
        self._drop_other_items()
        self._drop_panels()
        self.plot.getPlotItem().getViewBox().enableAutoRange()
        self._on_runs_change()

    def _drop_other_items(self) -> None:
        for items in self.other_items.values():
            for item in items:
                self.plot.removeItem(item)
        self.other_items = {}

    def _on_runs_change(self) -> None:
        runs = self.controller.runs
        if self.multiples_check.isChecked() and list(self.panels) != runs:
            self._build_panels()
        for run in [r for r in self.other_items if r not in runs]:
            for item in self.other_items.pop(run):
                self.plot.removeItem(item)
        for run in runs:
            if run in self.other_items:
                continue
            pen = pg.mkPen(run.color or "k", width=1.5)
            if self.shows_curve:
                item = pg.PlotDataItem(pen=pen)
                self.plot.addItem(item, ignoreBounds=True)
                self.other_items[run] = [item]
            elif self.shows_regions:
                # one outline per class (its region's edge); a binary model has one boundary
                count = 1 if self._outputs() == 1 else self._outputs()
                items = []
                for _ in range(count):
                    line = pg.PlotCurveItem(pen=pen, connect="pairs")  # segments, in data units
                    line.setZValue(-5)  # over the regions, under the points
                    self.plot.addItem(line, ignoreBounds=True)
                    items.append(line)
                self.other_items[run] = items
            else:
                self.other_items[run] = []
        self.refresh_prediction()

    def _outputs(self) -> int:
        c = self.controller
        return int(c.predict(c.runs[0], c.dataset.X[:1]).shape[1]) if c.runs else 1

    # --- small multiples ------------------------------------------------------------------------

    def _on_multiples_toggle(self, on: bool) -> None:
        self.stack.setCurrentIndex(1 if on else 0)
        if on:
            self._build_panels()
        self.refresh_prediction()

    def _drop_panels(self) -> None:
        self.multiples.clear()
        self.panels = {}

    def _build_panels(self) -> None:
        """A small plot per run, in run order: its regions (or curve) over the training rows."""
        self._drop_panels()
        c = self.controller
        X = c.train.X.numpy()
        for i, run in enumerate(c.runs):
            plot = self.multiples.addPlot(row=i // SMALL_COLUMNS, col=i % SMALL_COLUMNS)
            plot.setTitle(run.label or run.optimizer_name, color=run.color or "k", size="9pt")
            plot.hideButtons()
            plot.setMouseEnabled(False, False)
            item: pg.GraphicsObject
            if self.shows_regions:
                item = pg.ImageItem(axisOrder="row-major")
                item.setZValue(-10)
                plot.addItem(item)
                colours = CLASS_COLOURS[c.train.y.numpy() % len(CLASS_COLOURS)].astype(int)
                plot.addItem(pg.ScatterPlotItem(X[:, 0], X[:, 1], size=4, pen=None,
                                                brush=[pg.mkBrush(*rgb) for rgb in colours]))
            else:
                item = pg.PlotDataItem(pen=pg.mkPen(run.color or "k", width=2))
                plot.addItem(item, ignoreBounds=True)  # the axes follow the points
                if X.shape[1] == 1:
                    plot.addItem(pg.ScatterPlotItem(X[:, 0], c.train.y.numpy(), size=3,
                                                    pen=None, brush=pg.mkBrush(80, 80, 80, 160)))
            plot.setXRange(self._low[0], self._high[0], padding=0)
            if self.shows_regions:
                plot.setYRange(self._low[1], self._high[1], padding=0)
            self.panels[run] = (plot, item)

    def _refresh_panels(self) -> None:
        c = self.controller
        for run, (_plot, item) in self.panels.items():
            if self.shows_regions:
                out = c.predict(run, self._small_grid)
                item.setImage(_region_colours(out, SMALL_GRID), autoLevels=False,
                              levels=(0, 255))
                item.setRect(self._small_rect)
            elif self.shows_curve:
                xs = np.linspace(self._low[0], self._high[0], CURVE_POINTS // 2)
                X = torch.tensor(xs, dtype=DTYPE).reshape(-1, 1)
                item.setData(xs, self._curve(run, X))

    # --- redraw ---------------------------------------------------------------------------------

    def _held_out_text(self) -> str:
        c = self.controller
        run = c.selected
        extras = c.extras.get(run) if run is not None else None
        if extras is None or not extras.test_steps:
            return ""
        loss, acc = extras.test_loss[-1], extras.accuracy[-1]
        text = f"test loss {loss:.4g}"
        if not math.isnan(acc):
            text += f", accuracy {100 * acc:.1f}%"
        return f"{text} (held-out rows, under torch.no_grad())"

    def refresh_prediction(self) -> None:
        c = self.controller
        run = c.selected
        held_out = self._held_out_text()
        title = f"{self._title}<br><span style='font-size:8pt'>{held_out}</span>" if held_out \
            else self._title
        self.held_out_text = held_out
        if self.multiples_check.isChecked():
            self._refresh_panels()
            self._throttle.drawn()
            return
        self.plot.setTitle(title)
        if self.shows_curve:
            xs = np.linspace(self._low[0], self._high[0], CURVE_POINTS)
            X = torch.tensor(xs, dtype=DTYPE).reshape(-1, 1)
            if run is None:
                self.curve.setData([], [])
            else:
                self.curve.setData(xs, self._curve(run, X))
            for other, items in self.other_items.items():
                for item in items:
                    item.setVisible(other is not run)
                if other is not run and items:
                    items[0].setData(xs, self._curve(other, X))
        elif self.shows_regions:
            if run is None:
                self.image.clear()
                self.region_image = None
            else:
                self.region_image = _region_colours(c.predict(run, self._grid))
                self.image.setImage(self.region_image, autoLevels=False, levels=(0, 255))
                self.image.setRect(self._rect)
            for other, items in self.other_items.items():
                for item in items:
                    item.setVisible(other is not run and run is not None)
                if other is not run and run is not None:
                    for item, edge in zip(items, _class_edges(c.predict(other,
                                                                         self._boundary_grid))):
                        item.setData(*contour_segments(self._boundary_xs, self._boundary_ys,
                                                       edge, (0.0,)))
        self._throttle.drawn()


def _region_colours(out: torch.Tensor, grid: int = GRID) -> np.ndarray:
    """(grid, grid, 3) uint8: row i is y, column j is x; class colours mixed by probability."""
    if out.shape[1] == 1:  # one logit: BCEWithLogitsLoss
        p1 = torch.sigmoid(out)
        probs = torch.cat([1 - p1, p1], 1)
    else:
        probs = torch.softmax(out, 1)
    colours = CLASS_COLOURS[np.arange(probs.shape[1]) % len(CLASS_COLOURS)]
    rgb = probs.numpy() @ colours
    rgb = rgb + REGION_LIGHTEN * (255 - rgb)
    return np.clip(rgb, 0, 255).astype(np.uint8).reshape(grid, grid, 3)


def _class_edges(out: torch.Tensor, grid: int = GRID // BOUNDARY_STEP) -> list[np.ndarray]:
    """Fields whose zero line is a decision boundary, each (grid, grid): the logit for one
    output; for several classes, each class's logit minus the largest other one."""
    if out.shape[1] == 1:
        return [out.reshape(grid, grid).numpy().copy()]
    edges = []
    for k in range(out.shape[1]):
        others = torch.cat([out[:, :k], out[:, k + 1:]], 1).max(dim=1).values
        edges.append((out[:, k] - others).reshape(grid, grid).numpy().copy())
    return edges


