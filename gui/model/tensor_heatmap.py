"""TensorHeatmap: one parameter tensor of the selected run and its gradient, as two heatmaps.

The tensor is the one picked in the tensor table (the controller's `selected_tensor`). A 2-D
weight (out_features x in_features) is drawn as it is stored, row i = output i; a vector (a
bias) is one row; a scalar one cell. The colour map is diverging and centred at 0 (blue below,
white at 0, red above, symmetric limits of the largest |element|), so a sign and a size read at
a glance; the limits are written over each map. Hovering a cell shows its index and both
numbers. A frozen tensor has no gradient (.grad is None): its map says so instead. Redrawn a
few times a second while the run trains.
"""

from __future__ import annotations

import math

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QPointF
from PySide6.QtWidgets import QLabel, QVBoxLayout, QWidget

from core.run import Run
from gui.model.controller import ModelController
from gui.throttle import Throttle

REDRAW_HZ = 4
# blue, white, red: zero is white whatever the limits
DIVERGING = pg.ColorMap([0.0, 0.5, 1.0], [(33, 102, 172), (247, 247, 247), (178, 24, 43)])


def _as_matrix(values: np.ndarray) -> np.ndarray:
    """(rows, columns) for a tensor of any shape: a vector is one row, more dimensions are
    flattened after the first."""
    if values.ndim == 0:
        return values.reshape(1, 1)
    if values.ndim == 1:
        return values.reshape(1, -1)
    return values.reshape(values.shape[0], -1)


def symmetric_limit(values: np.ndarray) -> float:
    """The colour limit: the largest finite |element| (1 for an all-zero or empty tensor)."""
    finite = np.abs(values[np.isfinite(values)])
    top = float(finite.max()) if finite.size else 0.0
    return top if top > 0 else 1.0


class TensorHeatmap(QWidget):
    """The selected tensor of the selected run: value and gradient maps, hover read-out."""

    def __init__(self, controller: ModelController, *, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.controller = controller
        self.canvas = pg.GraphicsLayoutWidget()
        self.canvas.setBackground("w")
        self.value_plot = self.canvas.addPlot(row=0, col=0)
        self.grad_plot = self.canvas.addPlot(row=0, col=1)
        self.value_image = pg.ImageItem(axisOrder="row-major")
        self.grad_image = pg.ImageItem(axisOrder="row-major")
        for plot, image in ((self.value_plot, self.value_image),
                            (self.grad_plot, self.grad_image)):
            plot.addItem(image)
            plot.invertY(True)  # row 0 at the top, as the tensor prints
            plot.setAspectLocked(False)
            plot.setMouseEnabled(False, False)
            plot.hideButtons()
            plot.hideAxis("bottom")  # the read-out gives the index; the room goes to the map
            image.setColorMap(DIVERGING)
        self.grad_plot.hideAxis("left")  # the same rows as the value map beside it
        self.value_plot.getAxis("left").setWidth(22)
        self.canvas.ci.layout.setSpacing(2)
        self.canvas.ci.setContentsMargins(1, 1, 1, 1)
        self.readout = QLabel("hover a cell for its value; click a row of the table for "
                              "another tensor")
        self.readout.setStyleSheet("color: #333;")
        self.readout.setWordWrap(True)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.canvas, 1)
        layout.addWidget(self.readout)
        self.values: np.ndarray | None = None  # what the maps show (tests read them)
        self.grads: np.ndarray | None = None
        self.limits = (math.nan, math.nan)
        self._throttle = Throttle(self.refresh, REDRAW_HZ, self)
        controller.sigStepped.connect(self._throttle.request)
        controller.sigRunChanged.connect(lambda _run: self.refresh())
        controller.sigSelectionChanged.connect(lambda _run: self.refresh())
        controller.sigTensorSelected.connect(lambda _name: self.refresh())
        controller.sigProblemChanged.connect(self.refresh)
        self.canvas.scene().sigMouseMoved.connect(self._on_mouse_move)
        self.refresh()

    def refresh(self) -> None:
        c = self.controller
        run: Run | None = c.selected
        name = c.selected_tensor
        if run is None or name is None or name not in run.parameters:
            self.values = self.grads = None
            self.value_image.clear()
            self.grad_image.clear()
            self.value_plot.setTitle("")
            self.grad_plot.setTitle("")
            self._throttle.drawn()
            return
        p = run.parameters[name]
        self.values = _as_matrix(p.detach().numpy().copy())
        # .grad holds the gradient at the current point (the engine's forward/backward after
        # each step), the one the next optimizer.step() will use; None when frozen
        grad = p.grad
        self.grads = None if grad is None else _as_matrix(grad.detach().numpy().copy())
        value_limit = symmetric_limit(self.values)
        self.value_image.setImage(self.values, levels=(-value_limit, value_limit))
        self.value_plot.setTitle(f"{name} ±{value_limit:.3g}", size="8pt")
        if self.grads is None:
            self.grad_image.clear()
            self.grad_plot.setTitle("grad: none (frozen)", size="8pt")
            grad_limit = math.nan
        else:
            grad_limit = symmetric_limit(self.grads)
            self.grad_image.setImage(self.grads, levels=(-grad_limit, grad_limit))
            self.grad_plot.setTitle(f"grad ±{grad_limit:.3g}", size="8pt")
        self.limits = (value_limit, grad_limit)
        self._throttle.drawn()

    def _on_mouse_move(self, position: QPointF) -> None:
        if self.values is None:
            return
        for plot in (self.value_plot, self.grad_plot):
            if plot.sceneBoundingRect().contains(position):
                point = plot.vb.mapSceneToView(position)
                self.show_cell(int(math.floor(point.y())), int(math.floor(point.x())))
                return

    def show_cell(self, row: int, column: int) -> str:
        """Write the read-out for cell (row, column) and return it ('' outside the tensor)."""
        if self.values is None or not (0 <= row < self.values.shape[0]
                                       and 0 <= column < self.values.shape[1]):
            return ""
        name = self.controller.selected_tensor
        shape = self.controller.selected.parameters[name].shape if self.controller.selected \
            else ()
        index = (f"[{row}, {column}]" if len(shape) >= 2 else f"[{column}]" if len(shape) == 1
                 else "")
        grad = ("none (frozen)" if self.grads is None
                else f"{self.grads[row, column]:.6g}")
        text = f"{name}{index} = {self.values[row, column]:.6g}, gradient {grad}"
        self.readout.setText(text)
        return text
