"""ModelCurves: training and test loss of every run, and the selected run's gradient norm per
tensor on a log scale (vanishing and exploding gradients show as lines falling or rising).

A frozen tensor has no gradient, so its line ends where it was frozen (and starts again where it
was unfrozen); the point is marked (x: frozen, o: unfrozen) in the tensor's colour, and its
legend entry says "frozen" while it is.

The tensors' legend sits above the |grad| plot's data area, in as many columns as its width
holds (gui/legend_columns.py), so it hides no curve: the plot is short, and a legend inside it
covered the lines' starts."""

from __future__ import annotations

import math

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QLabel, QVBoxLayout, QWidget

from core.run import Run
from gui.legend_columns import set_legend_columns
from gui.model.controller import ModelController
from gui.throttle import Throttle

REDRAW_HZ = 5
TENSOR_COLOURS = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2",
                  "#7f7f7f", "#bcbd22", "#17becf")


def _positive(values: np.ndarray) -> np.ndarray:
    """A log axis cannot show 0 or NaN (a frozen tensor's gradient): leave gaps there."""
    out = np.asarray(values, dtype=float).copy()
    out[~(out > 0)] = np.nan
    return out


def log_axis_style(axis: pg.AxisItem) -> None:
    """Label a log axis at its decades only, when it spans two or more: on a short axis
    pyqtgraph puts the decades and 2..9 x each decade in one level and labels them all, and
    they run into each other. No SI prefix either ("(x0.001)" on a log axis misleads)."""
    axis.enableAutoSIPrefix(False)
    axis.setStyle(maxTextLevel=0)
    default = axis.logTickValues

    def decade_ticks(low: float, high: float, size: float, std_ticks: list) -> list:
        decades = [float(v) for v in range(math.floor(low), math.ceil(high) + 1)
                   if low <= v <= high]
        if len(decades) < 2:
            # under two decades: 1, 2 and 5 x each decade get labels (all of 2..9 would run
            # into each other on a short axis), the rest are ticks
            steps = [(v, k) for v in range(math.floor(low) - 1, math.ceil(high) + 1)
                     for k in range(1, 10) if low <= v + math.log10(k) <= high]
            major = [v + math.log10(k) for v, k in steps if k in (1, 2, 5)]
            if len(major) < 2:
                return default(low, high, size, std_ticks)
            return [(None, major), (None, [v + math.log10(k) for v, k in steps
                                           if k not in (1, 2, 5)])]
        decades = decades[::max(1, math.ceil(len(decades) / 6))]
        minor = [v + math.log10(k) for v in range(math.floor(low), math.ceil(high))
                 for k in range(2, 10) if low < v + math.log10(k) < high]
        return [(1.0, decades), (None, minor)]

    axis.logTickValues = decade_ticks


MIN_STEPS_SHOWN = 10


class ShortRunRange:
    """A step axis that shows steps 0 .. MIN_STEPS_SHOWN while the runs are shorter, then
    follows the data again (auto range): a lone point at step 0 got an axis of -0.5 .. 0.5,
    labelled "-400 .. 400 (x0.001)". Steps are whole numbers: no SI prefix either."""

    def __init__(self, plot: pg.PlotWidget) -> None:
        self.plot = plot
        self.pinned = False
        plot.getAxis("bottom").enableAutoSIPrefix(False)

    def update(self, last_step: float) -> None:
        if last_step < MIN_STEPS_SHOWN:
            if not self.pinned:
                self.pinned = True
                self.plot.setXRange(0, MIN_STEPS_SHOWN, padding=0.02)
        elif self.pinned:
            self.pinned = False
            self.plot.getViewBox().enableAutoRange(x=True)


def _columns_that_fit(widths: list[float], room: float) -> int:
    """The most columns (at least one) in which entries of these widths, laid out row by row,
    fit in `room`: each column as wide as its widest entry."""
    for columns in range(len(widths), 1, -1):
        if sum(max(widths[c::columns]) for c in range(columns)) <= room:
            return columns
    return 1


def _light(item: pg.PlotDataItem) -> None:
    """Long histories draw as many points as the plot has pixels (x is the step: sorted, so
    clipping to the view is safe)."""
    item.setDownsampling(auto=True, method="peak")
    item.setClipToView(True)


class ModelCurves(QWidget):
    """Loss (train solid, test dashed) per run; |grad| per tensor of the selected run."""

    def __init__(self, controller: ModelController, *, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.controller = controller
        self.loss_plot = pg.PlotWidget()
        self.loss_plot.setBackground("w")
        self.loss_plot.setLogMode(x=False, y=True)
        self.loss_plot.setLabel("left", "loss")
        self.loss_plot.setLabel("bottom", "step")
        # bottom left: a falling loss leaves that corner empty
        self.loss_plot.addLegend(offset=(10, -10), brush=pg.mkBrush(255, 255, 255, 200))
        self.grad_plot = pg.PlotWidget()
        self.grad_plot.setBackground("w")
        self.grad_plot.setLogMode(x=False, y=True)
        self.grad_plot.setLabel("left", "|grad|")
        for plot in (self.loss_plot, self.grad_plot):
            log_axis_style(plot.getAxis("left"))
        self.grad_plot.setLabel("bottom", "step")
        # the tensors' names above the data area (in the hidden top axis's row, which is
        # given the legend's height), never over a curve; plot(name=...) adds to it
        item = self.grad_plot.getPlotItem()
        self.grad_legend = pg.LegendItem(offset=None, labelTextSize="8pt",
                                         labelTextColor="k")
        self.grad_legend.setParentItem(item)
        item.legend = self.grad_legend
        # which run the lines are of, at the start of the legend's row (no title row: the
        # plot is short)
        self.grad_title = pg.LabelItem("", color="k", size="9pt", justify="left")
        self.grad_title.setParentItem(item)
        self._legend_row_height = -1.0
        item.getViewBox().sigResized.connect(self.place_grad_legend)
        note = QLabel("solid: training loss (the batch each step used); dashed: test loss on "
                      "the held-out rows, computed under torch.no_grad()")
        note.setWordWrap(True)
        note.setStyleSheet("color: #555;")
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.loss_plot, 1)
        layout.addWidget(note)
        layout.addWidget(self.grad_plot, 1)  # as tall: its legend row takes some of it
        self.train_curves: dict[Run, pg.PlotDataItem] = {}
        self.test_curves: dict[Run, pg.PlotDataItem] = {}
        self.grad_curves: dict[str, pg.PlotDataItem] = {}
        # the selected run's freezes and unfreezes, on its gradient lines
        self.freeze_marks = pg.PlotDataItem(pen=None, symbol="x", symbolSize=11)
        self.freeze_marks.setZValue(10)
        self.grad_plot.addItem(self.freeze_marks)
        self.step_ranges = (ShortRunRange(self.loss_plot), ShortRunRange(self.grad_plot))
        self._throttle = Throttle(self.refresh, REDRAW_HZ, self)
        controller.sigRunsChanged.connect(self._on_runs_change)
        controller.sigProblemChanged.connect(self._on_problem_change)
        controller.sigSelectionChanged.connect(lambda _run: self.refresh())
        controller.sigStepped.connect(self._throttle.request)
        controller.sigRunChanged.connect(lambda _run: self._throttle.request())
        self._on_problem_change()

    def _on_runs_change(self) -> None:
        runs = self.controller.runs
        for store in (self.train_curves, self.test_curves):
            for run in [r for r in store if r not in runs]:
                self.loss_plot.removeItem(store.pop(run))
        for run in runs:
            if run not in self.train_curves:
                colour = run.color or "k"
                self.train_curves[run] = self.loss_plot.plot(
                    pen=pg.mkPen(colour, width=1.5), name=run.label or run.optimizer_name)
                self.test_curves[run] = self.loss_plot.plot(
                    pen=pg.mkPen(colour, width=1, style=Qt.PenStyle.DashLine))
                for item in (self.train_curves[run], self.test_curves[run]):
                    _light(item)
        self.refresh()

    def _on_problem_change(self) -> None:
        for item in self.grad_curves.values():
            self.grad_plot.removeItem(item)
        self.grad_curves = {}
        for i, name in enumerate(self.controller.problem.parameter_names):
            self.grad_curves[name] = self.grad_plot.plot(
                pen=pg.mkPen(TENSOR_COLOURS[i % len(TENSOR_COLOURS)], width=1.5), name=name)
            _light(self.grad_curves[name])
        self.grad_legend.columnCount = 0  # new entries: lay the columns out afresh
        self.place_grad_legend()
        self._on_runs_change()

    def place_grad_legend(self, *_: object) -> None:
        """The selected run's name, then the tensors' legend in as many columns as the plot's
        width holds, just above its data area (the name on a line of its own when that takes
        fewer lines); the row there (the hidden top axis's) is made as tall as they are, so
        the data area starts below them."""
        item = self.grad_plot.getPlotItem()
        vb = item.getViewBox()
        legend, title = self.grad_legend, self.grad_title
        title_width = title.item.boundingRect().width() + 6 if title.text else 0.0
        title_height = title.item.boundingRect().height() if title.text else 0.0
        widths = [sample.width() + label.boundingRect().width() + 8
                  for sample, label in legend.items]
        beside = _columns_that_fit(widths, vb.width() - title_width)
        below = _columns_that_fit(widths, vb.width())
        rows_beside = -(-len(widths) // beside) if widths else 0
        rows_below = -(-len(widths) // below) + 1 if widths else 0
        own_line = title.text and rows_below < rows_beside
        columns = below if own_line else beside
        if widths and columns != legend.columnCount:
            set_legend_columns(legend, columns)
        legend_height = legend.boundingRect().height() if widths else 0.0
        height = title_height + legend_height if own_line else max(title_height, legend_height)
        if abs(height - self._legend_row_height) > 0.5:
            self._legend_row_height = height
            item.layout.setRowFixedHeight(1, height + 4)  # (re-lays out: sigResized again)
        top_left = vb.mapToItem(item, vb.boundingRect().topLeft())
        top = top_left.y() - height - 2
        title.setPos(top_left.x(), top)
        if own_line:
            legend.setPos(top_left.x(), top + title_height)
        else:
            legend.setPos(top_left.x() + title_width, top)

    def refresh(self) -> None:
        c = self.controller
        for run, item in self.train_curves.items():
            t = run.trajectory
            item.setData(t.step.astype(float), _positive(t.loss), connect="finite")
            extras = c.extras.get(run)
            if extras is not None:
                self.test_curves[run].setData(np.asarray(extras.test_steps, dtype=float),
                                              _positive(np.asarray(extras.test_loss)),
                                              connect="finite")
        last = max((float(r.trajectory.step[-1]) for r in c.runs if len(r.trajectory)),
                   default=0.0)
        for step_range in self.step_ranges:
            step_range.update(last)
        run = c.selected
        relabelled = False
        title = ("selected run: " + (run.label or run.optimizer_name)) if run is not None \
            else "no run selected"
        if title != self.grad_title.text:
            self.grad_title.setText(title)
            relabelled = True
        for name, item in self.grad_curves.items():
            if run is None or name not in run.parameter_names:
                item.setData([], [])
            else:
                t = run.trajectory
                item.setData(t.step.astype(float), _positive(t.parameter_grad_norm(name)),
                             connect="finite")
            label = self.grad_legend.getLabel(item)
            if label is not None:
                text = f"{name} (frozen)" if run is not None and name in run.frozen else name
                if label.text != text:
                    label.setText(text)
                    relabelled = True
        if relabelled:  # "(frozen)" makes an entry wider: the columns may change
            self.place_grad_legend()
        self._draw_freeze_marks(run)
        self._throttle.drawn()

    def _draw_freeze_marks(self, run: Run | None) -> None:
        """Each freeze (x) and unfreeze (o) of the selected run, at its tensor's last gradient
        norm before the change."""
        xs, ys, symbols, brushes = [], [], [], []
        names = list(self.grad_curves)
        if run is not None:
            t = run.trajectory
            steps = t.step
            for step, name, frozen in self.controller.freeze_events(run):
                if name not in self.grad_curves:
                    continue
                norms = np.asarray(t.parameter_grad_norm(name))[steps <= step]
                finite = norms[np.isfinite(norms) & (norms > 0)]
                if not len(finite):
                    continue
                colour = TENSOR_COLOURS[names.index(name) % len(TENSOR_COLOURS)]
                xs.append(float(step))
                ys.append(float(finite[-1]))
                symbols.append("x" if frozen else "o")
                brushes.append(pg.mkBrush(colour))
        if xs:
            self.freeze_marks.setData(xs, ys, symbol=symbols, symbolBrush=brushes,
                                      symbolPen=pg.mkPen("k", width=0.5))
        else:
            self.freeze_marks.setData([], [])
