"""DataView: the data, with the selected run's prediction, redrawn a few times a second.

Regression (one feature): the points and the fitted curve model(x) along the x range.
Classification (two features): the decision regions as an image (the model evaluated on a grid
under torch.no_grad(), each pixel the class colours mixed by the predicted probabilities) with
the points coloured by class. Items are made once and updated with setData / setImage.
"""

from __future__ import annotations

import numpy as np
import pyqtgraph as pg
import torch
from PySide6.QtCore import QRectF
from PySide6.QtWidgets import QLabel, QVBoxLayout, QWidget

from core.problems.base import DTYPE
from gui.model.controller import ModelController
from gui.throttle import Throttle

GRID = 80  # pixels per side of the decision-region image
CURVE_POINTS = 200
REDRAW_HZ = 10
CLASS_COLOURS = np.array([(31, 119, 180), (214, 39, 40), (44, 160, 44), (148, 103, 189),
                          (255, 127, 14), (140, 86, 75), (227, 119, 194), (127, 127, 127),
                          (188, 189, 34), (23, 190, 207)], dtype=float)
REGION_LIGHTEN = 0.55  # regions are paler than the points, so the points stay readable


class DataView(QWidget):
    """The training and test points and the selected run's prediction."""

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
        self.curve = pg.PlotDataItem(pen=pg.mkPen("#d62728", width=2))
        for item in (self.train_points, self.test_points, self.curve):
            self.plot.addItem(item)
        note = QLabel("circles: training rows, triangles: held-out test rows; the prediction "
                      "is model(x) under torch.no_grad()")
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
        controller.sigRunsChanged.connect(self.refresh_prediction)
        self._on_problem_change()

    def _on_problem_change(self) -> None:
        c = self.controller
        classification = c.is_classification
        self.plot.setTitle("decision regions of the selected run" if classification
                           else "the selected run's fit")
        for item, part in ((self.train_points, c.train), (self.test_points, c.test)):
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
        self.image.setVisible(classification and c.dataset.n_features == 2)
        self.curve.setVisible(not classification and c.dataset.n_features == 1)
        self.plot.getPlotItem().getViewBox().enableAutoRange()
        self.refresh_prediction()

    def refresh_prediction(self) -> None:
        c = self.controller
        run = c.selected
        if run is None:
            self.curve.setData([], [])
            self.image.clear()
            self.region_image = None
            self._throttle.drawn()
            return
        if self.curve.isVisible():
            xs = np.linspace(self._low[0], self._high[0], CURVE_POINTS)
            out = c.predict(run, torch.tensor(xs, dtype=DTYPE).reshape(-1, 1))
            self.curve.setData(xs, out.reshape(-1).numpy().copy())
        elif self.image.isVisible():
            self.region_image = self._regions(run)
            x0, y0 = self._low[:2]
            x1, y1 = self._high[:2]
            self.image.setImage(self.region_image, autoLevels=False, levels=(0, 255))
            self.image.setRect(QRectF(x0, y0, x1 - x0, y1 - y0))
        self._throttle.drawn()

    def _regions(self, run) -> np.ndarray:
        """(GRID, GRID, 3) uint8: row i is y, column j is x; class colours mixed by probability."""
        c = self.controller
        xs = np.linspace(self._low[0], self._high[0], GRID)
        ys = np.linspace(self._low[1], self._high[1], GRID)
        gx, gy = np.meshgrid(xs, ys)
        grid = torch.tensor(np.stack([gx.ravel(), gy.ravel()], 1), dtype=DTYPE)
        out = c.predict(run, grid)
        if out.shape[1] == 1:  # one logit: BCEWithLogitsLoss
            p1 = torch.sigmoid(out)
            probs = torch.cat([1 - p1, p1], 1)
        else:
            probs = torch.softmax(out, 1)
        k = probs.shape[1]
        colours = CLASS_COLOURS[np.arange(k) % len(CLASS_COLOURS)]
        rgb = probs.numpy() @ colours
        rgb = rgb + REGION_LIGHTEN * (255 - rgb)
        return np.clip(rgb, 0, 255).astype(np.uint8).reshape(GRID, GRID, 3)
