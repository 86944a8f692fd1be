"""DataView: the data, with the selected run's prediction, redrawn a few times a second.

Regression (one feature): the points and the fitted curve model(x) along the x range; the other
runs' fits as thin lines in their colours. Classification (two features): the selected run's
decision regions as an image (the model evaluated on a grid under torch.no_grad(), each pixel
the class colours mixed by the predicted probabilities), the other runs' decision boundaries as
lines in their colours, and the points coloured by class. Items are made once per run and
updated with setData / setImage.
"""

from __future__ import annotations

import numpy as np
import pyqtgraph as pg
import torch
from PySide6.QtCore import QRectF
from PySide6.QtWidgets import QLabel, QVBoxLayout, QWidget

from core.problems.base import DTYPE
from core.run import Run
from gui.model.controller import ModelController
from gui.throttle import Throttle

GRID = 64  # pixels per side of the decision-region image (6 runs: ~1 ms of forward each)
CURVE_POINTS = 200
REDRAW_HZ = 6
CLASS_COLOURS = np.array([(31, 119, 180), (214, 39, 40), (44, 160, 44), (148, 103, 189),
                          (255, 127, 14), (140, 86, 75), (227, 119, 194), (127, 127, 127),
                          (188, 189, 34), (23, 190, 207)], dtype=float)
REGION_LIGHTEN = 0.55  # regions are paler than the points, so the points stay readable


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
        for item in (self.train_points, self.test_points, self.curve):
            self.plot.addItem(item)
        # per other run: its fit (regression) or its boundary lines (classification)
        self.other_items: dict[Run, list[pg.GraphicsObject]] = {}
        note = QLabel("circles: training rows, triangles: held-out test rows; the selected run "
                      "fills the regions (or draws the thick curve), the other runs draw lines "
                      "in their colours; model(x) under torch.no_grad()")
        note.setWordWrap(True)
        note.setStyleSheet("color: #555;")
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.plot)
        layout.addWidget(note)
        self.region_image: np.ndarray | None = None  # what the image shows (tests read it)
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
        c = self.controller
        return not c.is_classification and c.dataset.n_features == 1

    def _on_problem_change(self) -> None:
        c = self.controller
        classification = c.is_classification
        self.plot.setTitle("decision regions of the selected run" if classification
                           else "the selected run's fit")
        for item, part in ((self.train_points, c.train), (self.test_points, c.test)):
            if part is None:  # a test fraction of 0: no held-out rows
                item.setData([], [])
                continue
            X = part.X.numpy()
            if classification:
                colours = CLASS_COLOURS[part.y.numpy() % len(CLASS_COLOURS)].astype(int)
                brushes = [pg.mkBrush(*rgb) for rgb in colours]
                item.setData(X[:, 0], X[:, 1] if X.shape[1] > 1 else np.zeros(len(X)),
                             brush=brushes)
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
            # pixel (i, j) covers its sample's cell: the rect is half a cell wider each side
            dx, dy = xs[1] - xs[0], ys[1] - ys[0]
            self._rect = QRectF(xs[0] - dx / 2, ys[0] - dy / 2, GRID * dx, GRID * dy)
        self.image.setVisible(self.shows_regions)
        self.curve.setVisible(self.shows_curve)
        self._drop_other_items()
        self.plot.getPlotItem().getViewBox().enableAutoRange()
        self._on_runs_change()

    def _drop_other_items(self) -> None:
        for items in self.other_items.values():
            for item in items:
                if item.scene() is not None:
                    item.scene().removeItem(item)
        self.other_items = {}

    def _on_runs_change(self) -> None:
        runs = self.controller.runs
        for run in [r for r in self.other_items if r not in runs]:
            for item in self.other_items.pop(run):
                if item.scene() is not None:
                    item.scene().removeItem(item)
        for run in runs:
            if run in self.other_items:
                continue
            pen = pg.mkPen(run.color or "k", width=1.5)
            if self.shows_curve:
                item = pg.PlotDataItem(pen=pen)
                self.plot.addItem(item)
                self.other_items[run] = [item]
            elif self.shows_regions:
                # one outline per class (its region's edge); a binary model has one boundary
                count = 1 if self._outputs() == 1 else self._outputs()
                items = []
                for _ in range(count):
                    iso = pg.IsocurveItem(level=0.0, pen=pen, axisOrder="row-major")
                    iso.setParentItem(self.image)  # pixel coordinates, like the image
                    iso.setPos(0.5, 0.5)  # a sample sits at its pixel's centre
                    items.append(iso)
                self.other_items[run] = items
            else:
                self.other_items[run] = []
        self.refresh_prediction()

    def _outputs(self) -> int:
        c = self.controller
        return int(c.predict(c.runs[0], c.dataset.X[:1]).shape[1]) if c.runs else 1

    # --- redraw ---------------------------------------------------------------------------------

    def refresh_prediction(self) -> None:
        c = self.controller
        run = c.selected
        if self.shows_curve:
            xs = np.linspace(self._low[0], self._high[0], CURVE_POINTS)
            X = torch.tensor(xs, dtype=DTYPE).reshape(-1, 1)
            if run is None:
                self.curve.setData([], [])
            else:
                self.curve.setData(xs, c.predict(run, X).reshape(-1).numpy().copy())
            for other, items in self.other_items.items():
                for item in items:
                    item.setVisible(other is not run)
                if other is not run and items:
                    items[0].setData(xs, c.predict(other, X).reshape(-1).numpy().copy())
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
                    for item, edge in zip(items, _class_edges(c.predict(other, self._grid))):
                        item.setData(edge)
        self._throttle.drawn()


def _region_colours(out: torch.Tensor) -> np.ndarray:
    """(GRID, GRID, 3) uint8: row i is y, column j is x; class colours mixed by probability."""
    if out.shape[1] == 1:  # one logit: BCEWithLogitsLoss
        p1 = torch.sigmoid(out)
        probs = torch.cat([1 - p1, p1], 1)
    else:
        probs = torch.softmax(out, 1)
    colours = CLASS_COLOURS[np.arange(probs.shape[1]) % len(CLASS_COLOURS)]
    rgb = probs.numpy() @ colours
    rgb = rgb + REGION_LIGHTEN * (255 - rgb)
    return np.clip(rgb, 0, 255).astype(np.uint8).reshape(GRID, GRID, 3)


def _class_edges(out: torch.Tensor) -> list[np.ndarray]:
    """Fields whose zero line is a decision boundary, each (GRID, GRID): the logit for one
    output; for several classes, each class's logit minus the largest other one."""
    if out.shape[1] == 1:
        return [out.reshape(GRID, GRID).numpy().copy()]
    edges = []
    for k in range(out.shape[1]):
        others = torch.cat([out[:, :k], out[:, k + 1:]], 1).max(dim=1).values
        edges.append((out[:, k] - others).reshape(GRID, GRID).numpy().copy())
    return edges


