"""SharpnessView: each run's top Hessian eigenvalue (measured every few steps on a worker,
core/curvature.py) against its 2 / lr line: the edge of stability (Cohen et al., 2021)."""

from __future__ import annotations

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QLabel, QVBoxLayout, QWidget

from core.run import Run
from gui.model.controller import ModelController
from gui.model.curves_view import ShortRunRange, log_axis_style


class SharpnessView(QWidget):
    """Sharpness (solid, dots) and 2 / lr (dotted) per run, on a log scale."""

    def __init__(self, controller: ModelController, *, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.controller = controller
        self.plot = pg.PlotWidget()
        self.plot.setBackground("w")
        self.plot.setLogMode(x=False, y=True)
        self.plot.setLabel("left", "sharpness")
        log_axis_style(self.plot.getAxis("left"))
        note = QLabel("dots: the top eigenvalue of the full-batch training loss's Hessian "
                      "(Lanczos on Hessian-vector products), every few steps; dotted: 2 / lr, "
                      "the edge of stability for gradient descent")
        note.setWordWrap(True)
        note.setStyleSheet("color: #555;")
        self.plot.setLabel("bottom", "step")
        self.step_range = ShortRunRange(self.plot)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.plot)
        layout.addWidget(note)
        self.sharpness_curves: dict[Run, pg.PlotDataItem] = {}
        self.edge_curves: dict[Run, pg.PlotDataItem] = {}
        controller.sigRunsChanged.connect(self._on_runs_change)
        controller.sigSharpness.connect(self.refresh)
        controller.sigProblemChanged.connect(self.refresh)
        self._on_runs_change()

    def _on_runs_change(self) -> None:
        runs = self.controller.runs
        for store in (self.sharpness_curves, self.edge_curves):
            for run in [r for r in store if r not in runs]:
                self.plot.removeItem(store.pop(run))
        for run in runs:
            if run not in self.sharpness_curves:
                colour = run.color or "k"
                self.sharpness_curves[run] = self.plot.plot(
                    pen=pg.mkPen(colour, width=1.5), symbol="o", symbolSize=4,
                    symbolBrush=colour, symbolPen=None)
                self.edge_curves[run] = self.plot.plot(
                    pen=pg.mkPen(colour, width=1, style=Qt.PenStyle.DotLine))
        self.refresh()

    def refresh(self) -> None:
        self.step_range.update(max((max(e.sharpness_steps, default=0) for e in
                                    map(self.controller.extras.get, self.controller.runs)
                                    if e is not None), default=0))
        for run, item in self.sharpness_curves.items():
            extras = self.controller.extras.get(run)
            if extras is None:
                continue
            steps = np.asarray(extras.sharpness_steps, dtype=float)
            values = np.asarray(extras.sharpness, dtype=float)
            values[~(values > 0)] = np.nan  # a log axis shows positive curvature only
            item.setData(steps, values, connect="finite")
            edge = 2.0 / np.asarray(extras.sharpness_lr, dtype=float)
            self.edge_curves[run].setData(steps, edge)
