"""Loss and gradient norm against step, one curve per run in its colour, on log y scales.

Plot items are created once per run (on sigRunsChanged) and updated with `setData` when the run's
trajectory grows; a run whose trajectory did not change is not redrawn. A log axis cannot show
zero or a negative loss (a formula surface may go below zero): such points are left out (NaN, so
the curve breaks there) and the plot's title says so.
"""

from __future__ import annotations

import numpy as np
import pyqtgraph as pg
from PySide6.QtWidgets import QVBoxLayout, QWidget

from core.run import Run
from gui.controller import Controller
from gui.throttle import Throttle

PEN_WIDTH = 2
REFRESH_HZ = 10
LOSS_TITLE = "loss"
GRAD_TITLE = "gradient norm |∇loss|"
DROPPED_NOTE = " (values ≤ 0 not shown on the log scale)"


def positive_or_nan(values: np.ndarray) -> np.ndarray:
    """A copy with every value that is not > 0 (zero, negative, NaN) replaced by NaN."""
    out = np.array(values, dtype=np.float64, copy=True)
    out[~(out > 0)] = np.nan
    return out


class CurvesView(QWidget):
    """Two stacked plots sharing the step axis: `loss_plot` and `grad_plot` (pyqtgraph PlotItems).

    `curves` maps each run to its (loss_item, grad_item) PlotDataItems. The legend (on the loss
    plot) names each run by its title.
    """

    def __init__(self, controller: Controller, *, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.controller = controller
        self.curves: dict[Run, tuple[pg.PlotDataItem, pg.PlotDataItem]] = {}
        self._drawn: dict[Run, tuple[int, int, int]] = {}  # run -> what its items show
        self._dropped: set[Run] = set()  # runs with a loss <= 0 the log plot leaves out

        self.graphics = pg.GraphicsLayoutWidget()
        self.loss_plot: pg.PlotItem = self.graphics.addPlot(row=0, col=0)
        self.grad_plot: pg.PlotItem = self.graphics.addPlot(row=1, col=0)
        for plot, title, axis in ((self.loss_plot, LOSS_TITLE, "loss"),
                                  (self.grad_plot, GRAD_TITLE, "|grad|")):
            plot.setLogMode(x=False, y=True)
            plot.showGrid(x=True, y=True, alpha=0.25)
            plot.setLabel("left", axis)
            plot.setTitle(title)
            # Steps are sorted, so clipping to the view is safe; long runs are drawn decimated.
            plot.setClipToView(True)
            plot.setDownsampling(auto=True, mode="peak")
        self.grad_plot.setLabel("bottom", "step")
        self.grad_plot.setXLink(self.loss_plot)
        self.legend = self.loss_plot.addLegend(offset=(-6, 6), brush=pg.mkBrush(255, 255, 255, 200),
                                               labelTextSize="8pt")

        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.graphics)

        # Redrawing every trajectory at 60 Hz costs frames: curves need far fewer updates.
        self._throttle = Throttle(self._draw_all, REFRESH_HZ, self)
        controller.sigRunsChanged.connect(self._on_runs_change)
        controller.sigRunChanged.connect(self._on_run_change)
        controller.sigStepped.connect(self._on_stepped_change)
        controller.sigSurfaceChanged.connect(self._on_surface_change)
        self._on_runs_change()

    # --- controller -> view -----------------------------------------------------------------------

    def _on_runs_change(self) -> None:
        runs = self.controller.session.runs
        for run in [r for r in self.curves if r not in runs]:
            loss_item, grad_item = self.curves.pop(run)
            self.loss_plot.removeItem(loss_item)
            self.grad_plot.removeItem(grad_item)
            self._drawn.pop(run, None)
            self._dropped.discard(run)
        for run in runs:
            if run not in self.curves:
                loss_item = self.loss_plot.plot(name=run.title)
                grad_item = self.grad_plot.plot()
                self.curves[run] = (loss_item, grad_item)
            self._style(run)
        self._rebuild_legend()
        self._draw_all()

    def _on_run_change(self, run: Run) -> None:
        if run in self.curves:
            self._style(run)
            self._rebuild_legend()
            self._drawn.pop(run, None)  # a freeze rewrites the last gradient: redraw
            self._draw_all()

    def _on_stepped_change(self) -> None:
        self._throttle.request()

    def _on_surface_change(self) -> None:
        self._draw_all()  # every trajectory restarted: their identities changed

    # --- drawing ----------------------------------------------------------------------------------

    def _style(self, run: Run) -> None:
        pen = pg.mkPen(run.color or "#000000", width=PEN_WIDTH)
        if not run.enabled:
            pen.setStyle(pg.QtCore.Qt.PenStyle.DashLine)
        for item in self.curves[run]:
            item.setPen(pen)
        self.curves[run][0].opts["name"] = run.title

    def _rebuild_legend(self) -> None:
        self.legend.clear()
        for run in self.controller.session.runs:
            if run in self.curves:
                self.legend.addItem(self.curves[run][0], run.title)

    def _draw_all(self) -> None:
        self._throttle.drawn()
        for run, (loss_item, grad_item) in self.curves.items():
            traj = run.trajectory
            key = (id(traj), len(traj), traj.revision)
            if self._drawn.get(run) != key:
                steps = np.array(traj.step, copy=True)
                loss = positive_or_nan(traj.loss)
                loss_item.setData(steps, loss)
                grad_item.setData(steps, positive_or_nan(traj.grad_norm))
                self._drawn[run] = key
                if np.isnan(loss).any():
                    self._dropped.add(run)
                else:
                    self._dropped.discard(run)
        title = LOSS_TITLE + (DROPPED_NOTE if self._dropped else "")
        if self.loss_plot.titleLabel.text != title:
            self.loss_plot.setTitle(title)

    def close(self) -> bool:
        c = self.controller
        for signal, slot in ((c.sigRunsChanged, self._on_runs_change),
                             (c.sigRunChanged, self._on_run_change),
                             (c.sigStepped, self._on_stepped_change),
                             (c.sigSurfaceChanged, self._on_surface_change)):
            try:
                signal.disconnect(slot)
            except (RuntimeError, TypeError):
                pass  # already disconnected
        return super().close()
