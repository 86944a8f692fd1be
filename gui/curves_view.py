"""Loss and gradient norm against step, one curve per run in its colour, on log y scales; and,
while a run has a learning-rate scheduler, a third panel with the lr each step used (log scale),
so a schedule is seen as it plays out. Steps whose gradient was clipped are marked on the
gradient-norm curve (small diamonds in the run's colour).

The drawing lives in `CurvesPicture`, which reads runs only (no controller), so that an export
draws the same picture offscreen at any size, whether or not the tab was ever shown; `CurvesView`
is the live widget around it.

Readable at the dock's default height (~250 px): the two plots sit side by side with the legend
in a column of its own beside them (never over a curve, never clipped), and the log axes show
plain powers of ten (pyqtgraph's SI prefix would label a loss of 1 as "1e-15" beside "(x1e+15)").

The y range is fitted to the runs that did not diverge: one run flung to a loss of 1e300 would
otherwise squash every other curve into a line. A diverged run's curve is drawn until it leaves
the plot, where an upward triangle marks the exit, and its legend entry says it diverged.

Plot items are created once per run (on sigRunsChanged) and updated with `setData` when the run's
trajectory grows; a run whose trajectory did not change is not redrawn. A log axis cannot show
zero or a negative loss (a formula surface may go below zero): such points are left out (NaN, so
the curve breaks there) and the plot's title says so.
"""

from __future__ import annotations

import contextlib
import html
import math
from collections.abc import Iterable, Sequence

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QVBoxLayout, QWidget

from core.run import Run, RunStatus
from gui.controller import Controller
from gui.legend_columns import set_legend_columns
from gui.status_words import short_status
from gui.throttle import Throttle

PEN_WIDTH = 2
REFRESH_HZ = 10
LOSS_TITLE = "loss"
GRAD_TITLE = "gradient norm |∇loss|"
LR_TITLE = "lr used by each step"
CLIP_SYMBOL = "d"  # where a step's gradient was clipped, on the gradient-norm curve
CLIP_MARKER_PX = 6
MAX_CLIP_MARKERS = 400  # about this many per run at most: spaced out beyond (count in the tip)
UNLIMITED_WIDTH = 16777215  # Qt's QWIDGETSIZE_MAX
DROPPED_NOTE = " (values ≤ 0 not shown on the log scale)"
TITLE_SIZE = "9pt"
LEGEND_TEXT_SIZE = "8pt"
LEGEND_TITLE_CHARS = 34  # longer run titles are cut (the whole title is in the run's card)
LEFT_PLOT_MARKER = "t1"  # an upward triangle where a diverged run's curve leaves the plot
Y_PADDING_DECADES = 0.15  # room above and below the fitted curves, in powers of ten
MIN_HEIGHT_PX = 190
LEGEND_TOP_PX = 24  # the legend starts level with the plots' frames, below their titles


def positive_or_nan(values: np.ndarray) -> np.ndarray:
    """A copy with every value that is not > 0 (zero, negative, NaN) replaced by NaN."""
    out = np.array(values, dtype=np.float64, copy=True)
    out[~(out > 0)] = np.nan
    return out


def log_y_range(series: Iterable[np.ndarray]) -> tuple[float, float] | None:
    """The (low, high) log10 range that shows every finite positive value of `series`, or None
    when there is none. Callers pass only the runs that did not diverge."""
    lo, hi = math.inf, -math.inf
    for values in series:
        v = values[np.isfinite(values) & (values > 0)]
        if v.size:
            lo, hi = min(lo, float(v.min())), max(hi, float(v.max()))
    if not lo <= hi:
        return None
    low, high = math.log10(lo), math.log10(hi)
    if high - low < 1e-9:  # one value: show a decade around it
        low, high = low - 0.5, high + 0.5
    pad = Y_PADDING_DECADES
    return low - pad, high + pad


_SUPERSCRIPT = str.maketrans("-0123456789", "⁻⁰¹²³⁴⁵⁶⁷⁸⁹")


def _power_text(mantissa: int, exponent: int) -> str:
    power = "10" + str(exponent).translate(_SUPERSCRIPT)
    if -3 <= exponent <= 3:  # 0.005, 0.2, 3, 500: plainer as a number
        return f"{mantissa * 10.0 ** exponent:g}"
    return power if mantissa == 1 else f"{mantissa}·{power}"


def log_ticks(low: float, high: float, pixels: float) -> list[list[tuple[float, str]]]:
    """Ticks for a log10 axis from `low` to `high` (in log10 units) that do not crowd: every
    decade (every other one, or fewer, over many decades), and 2 and 5 times them when there is
    room; pyqtgraph's own labels the 2..9 of a decade, which pile up on a short axis. Returns
    [major, minor] as AxisItem.setTicks takes them (positions in log10 units)."""
    if not (math.isfinite(low) and math.isfinite(high)) or high <= low or pixels <= 0:
        return [[], []]
    decades = high - low
    per_decade = pixels / decades  # pixels one decade takes
    step = max(1, math.ceil(18.0 / per_decade))  # a label needs ~18 px of height
    first, last = math.floor(low), math.ceil(high)
    major = [(float(k), _power_text(1, k)) for k in range(first, last + 1)
             if k % step == 0 and low <= k <= high]
    minor_mantissas = (2, 5) if per_decade > 60 else ((3,) if per_decade > 36 else ())
    minor = [(k + math.log10(m), _power_text(m, k)) for k in range(first, last + 1)
             for m in minor_mantissas if low <= k + math.log10(m) <= high]
    if len(major) + len(minor) < 2:  # under a decade shown: label its ends' neighbourhood too
        minor += [(k + math.log10(m), _power_text(m, k)) for k in range(first, last + 1)
                  for m in (1, 2, 3, 5, 7) if low <= k + math.log10(m) <= high
                  and (k + math.log10(m)) not in {t for t, _ in major + minor}]
    return [major, minor]


def leaves_at(steps: np.ndarray, values: np.ndarray, log_top: float) -> tuple[float, float] | None:
    """Where a curve leaves the plot through its top edge (log10 y = log_top): the step of its first
    value above the top, drawn on the edge; else its last point the log scale can show. None if
    it has none."""
    shown = np.isfinite(values) & (values > 0)
    above = np.nonzero(shown & (values > 10.0 ** log_top))[0]
    if above.size:
        return float(steps[above[0]]), 10.0 ** log_top
    finite = np.nonzero(shown)[0]
    if finite.size:
        k = int(finite[-1])
        return float(steps[k]), float(values[k])
    return None


def legend_title(run: Run) -> str:
    """The run's name in the legend: its title (cut when long), and whether it diverged."""
    title = run.title
    if len(title) > LEGEND_TITLE_CHARS:
        title = title[: LEGEND_TITLE_CHARS - 1] + "…"
    if not run.enabled:
        return f"{title}  ({short_status(run)})"
    if run.status is RunStatus.DIVERGED:
        return f"{title}  ↑ {short_status(run)}"  # its curve leaves the plot through the top
    return title


class CurvesPicture:
    """The loss and gradient-norm plots, side by side, and their legend, in a pg.GraphicsLayout.

    Reads runs only, so the live view and an offscreen export draw the same thing. `curves` maps
    each run to its (loss_item, grad_item) PlotDataItems; `exit_markers` to the two triangles
    marking where a diverged run's curves leave the plots. `auto_y` per plot: fit the y range to
    the runs that did not diverge (cleared when the user pans or zooms that plot, set again by
    its "A" button). `lr_plot` and `lr_curves` (run -> PlotDataItem): the lr panel, in the
    layout only while a run has a scheduler (`lr_shown`); `clip_markers` (run -> scatter) the
    clipped steps on the gradient-norm plot.
    """

    def __init__(self, layout: pg.GraphicsLayout, *, line_width: float = PEN_WIDTH) -> None:
        self.line_width = line_width
        self.runs: list[Run] = []
        self.curves: dict[Run, tuple[pg.PlotDataItem, pg.PlotDataItem]] = {}
        self.exit_markers: dict[Run, tuple[pg.PlotDataItem, pg.PlotDataItem]] = {}
        self._drawn: dict[Run, tuple[int, int, int]] = {}  # run -> what its items show
        self._dropped: set[Run] = set()  # runs with a loss <= 0 the log plot leaves out
        self._legend_texts: list[str] = []

        self.loss_plot: pg.PlotItem = layout.addPlot(row=0, col=0)
        self.grad_plot: pg.PlotItem = layout.addPlot(row=0, col=1)
        self.lr_plot: pg.PlotItem = layout.addPlot(row=0, col=2)
        self.lr_curves: dict[Run, pg.PlotDataItem] = {}
        self.clip_markers: dict[Run, pg.ScatterPlotItem] = {}
        self._clip_state: dict[Run, dict] = {}  # what each run's markers show (incremental)
        self.lr_shown = True
        self.auto_y = {self.loss_plot: True, self.grad_plot: True, self.lr_plot: True}
        for plot, title, axis in ((self.loss_plot, LOSS_TITLE, "loss"),
                                  (self.grad_plot, GRAD_TITLE, "|∇loss|"),
                                  (self.lr_plot, LR_TITLE, "lr")):
            plot.setLogMode(x=False, y=True)
            plot.showGrid(x=True, y=True, alpha=0.25)
            for side in ("left", "bottom"):
                # Log ticks are powers of ten already: an SI prefix would rescale them (1 -> 1e-15
                # beside a "(x1e+15)" label).
                plot.getAxis(side).enableAutoSIPrefix(False)
            plot.setLabel("left", axis)
            plot.setLabel("bottom", "step")
            plot.setTitle(title, size=TITLE_SIZE)
            # Steps are sorted, so clipping to the view is safe; long runs are drawn decimated.
            plot.setClipToView(True)
            plot.setDownsampling(auto=True, mode="peak")
            plot.enableAutoRange(x=True, y=False)  # y: fitted to the runs that did not diverge
            plot.vb.sigRangeChangedManually.connect(
                lambda *_, p=plot: self._on_user_range_change(p))
            plot.vb.sigYRangeChanged.connect(lambda *_, p=plot: self._fit_log_ticks(p))
            plot.vb.sigResized.connect(lambda *_, p=plot: self._fit_log_ticks(p))
            plot.autoBtn.clicked.connect(lambda *_, p=plot: self._on_auto_button(p))
        self.grad_plot.setXLink(self.loss_plot)
        self.lr_plot.setXLink(self.loss_plot)
        self.lr_plot.setToolTip("the lr optimizer.step() used at each step: the scheduler's, "
                                "after scheduler.step() (a flat line: no scheduler)")
        self._show_lr_plot(False)
        for col, stretch in ((0, 3), (1, 3), (2, 2)):  # the lr panel is the narrower one
            layout.layout.setColumnStretchFactor(col, stretch)

        # The legend has a column of its own, so it never hides a curve nor is cut by a plot.
        self.legend_area = pg.GraphicsWidget()
        layout.addItem(self.legend_area, row=0, col=3)
        self.legend = pg.LegendItem(offset=(2, LEGEND_TOP_PX), brush=pg.mkBrush(255, 255, 255, 230),
                                    pen=pg.mkPen(0, 0, 0, 60), labelTextSize=LEGEND_TEXT_SIZE,
                                    labelTextColor="k", verSpacing=-6)
        self.legend.setParentItem(self.legend_area)
        self.legend_area.geometryChanged.connect(self.fit_legend)  # a taller or shorter dock
        self._extents: dict[tuple[Run, str], tuple[tuple[int, int, int], np.ndarray]] = {}

    # --- runs -------------------------------------------------------------------------------------

    def set_runs(self, runs: Sequence[Run]) -> None:
        """Make items for new runs and drop those of removed ones (kept ones keep their items)."""
        self.runs = list(runs)
        for run in [r for r in self.curves if r not in self.runs]:
            for plot, item in zip((self.loss_plot, self.grad_plot), self.curves.pop(run)):
                plot.removeItem(item)
            for plot, item in zip((self.loss_plot, self.grad_plot), self.exit_markers.pop(run)):
                plot.vb.removeItem(item)
            self.lr_plot.removeItem(self.lr_curves.pop(run))
            self._clip_state.pop(run, None)
            self.grad_plot.vb.removeItem(self.clip_markers.pop(run))
            self._drawn.pop(run, None)
            self._dropped.discard(run)
            for column in ("loss", "grad_norm", "lr"):
                self._extents.pop((run, column), None)
        for run in self.runs:
            if run not in self.curves:
                self.curves[run] = (self.loss_plot.plot(name=run.title), self.grad_plot.plot())
                markers = []
                for plot in (self.loss_plot, self.grad_plot):
                    # In the view box, not the plot: it is no data curve (nor in the plot's
                    # log mode), so its y is in the view's own units, log10 of the value.
                    marker = pg.ScatterPlotItem(symbol=LEFT_PLOT_MARKER, size=11)
                    marker.setZValue(10)
                    plot.vb.addItem(marker, ignoreBounds=True)
                    marker.hide()
                    markers.append(marker)
                self.exit_markers[run] = (markers[0], markers[1])
                self.lr_curves[run] = self.lr_plot.plot()
                clips = pg.ScatterPlotItem(symbol=CLIP_SYMBOL, size=CLIP_MARKER_PX,
                                           hoverable=True,
                                           tip=lambda x, y, data, r=run: _clip_tip(r, x, y))
                clips.setZValue(8)
                self.grad_plot.vb.addItem(clips, ignoreBounds=True)  # y in log10, like the X
                clips.hide()
                self.clip_markers[run] = clips
            self.style(run)
        self.rebuild_legend()

    def style(self, run: Run) -> None:
        """Colour and dash of one run's curves (dashed when the run is disabled)."""
        color = run.color or "#000000"
        pen = pg.mkPen(color, width=self.line_width)
        if not run.enabled:
            pen.setStyle(Qt.PenStyle.DashLine)
        for item in (*self.curves[run], self.lr_curves[run]):
            item.setPen(pen)
        self.clip_markers[run].setBrush(pg.mkBrush(color))
        self.clip_markers[run].setPen(pg.mkPen(255, 255, 255, 220, width=0.8))
        self.curves[run][0].opts["name"] = run.title
        for marker in self.exit_markers[run]:
            marker.setBrush(pg.mkBrush(color))
            marker.setPen(pg.mkPen("k", width=1))

    def rebuild_legend(self) -> None:
        texts = [legend_title(run) for run in self.runs]
        if texts == self._legend_texts and len(self.legend.items) == len(texts):
            return
        self._legend_texts = texts
        self.legend.clear()
        for run, text in zip(self.runs, texts):
            self.legend.addItem(self.curves[run][0], html.escape(text))
        self.legend.setVisible(bool(texts))
        self.fit_legend()

    def fit_legend(self) -> None:
        """As many legend columns as it takes to fit the plots' height (up to 3); the legend's
        place in the layout is as wide as the legend, and the plots get the rest."""
        n = len(self.legend.items)
        available = self.legend_area.height() - LEGEND_TOP_PX - 4
        if n and available > 0:
            rows = -(-n // self.legend.columnCount)
            row_height = self.legend.height() / max(1, rows)
            columns = min(3, max(1, math.ceil(n * row_height / available)))
            set_legend_columns(self.legend, columns)
        self.legend.updateSize()
        width = self.legend.width() + 6 if n else 0
        if self.legend_area.minimumWidth() != width:
            self.legend_area.setMinimumWidth(width)
            self.legend_area.setMaximumWidth(width)

    def forget(self, run: Run) -> None:
        """Redraw this run's curves on the next `draw` even if its trajectory did not grow."""
        self._drawn.pop(run, None)
        self._clip_state.pop(run, None)
        for column in ("loss", "grad_norm", "lr"):
            self._extents.pop((run, column), None)

    # --- drawing ----------------------------------------------------------------------------------

    def draw(self, force: bool = False) -> bool:
        """Show what is new in each trajectory and fit the y ranges; returns True if anything
        was redrawn."""
        changed = force
        for run, (loss_item, grad_item) in self.curves.items():
            traj = run.trajectory
            key = (id(traj), len(traj), traj.revision)
            if force or self._drawn.get(run) != key:
                steps = np.array(traj.step, copy=True)
                loss = positive_or_nan(traj.loss)
                loss_item.setData(steps, loss)
                grad_item.setData(steps, positive_or_nan(traj.grad_norm))
                # entry k's lr is the one step k + 1 uses
                self.lr_curves[run].setData(steps + 1, positive_or_nan(traj.lr))
                self._draw_clip_markers(run, steps)
                self._drawn[run] = key
                changed = True
                if np.isnan(loss).any():
                    self._dropped.add(run)
                else:
                    self._dropped.discard(run)
        self.rebuild_legend()  # a run that diverged says so
        scheduled = any(run.scheduler_setting is not None for run in self.curves)
        if scheduled != self.lr_shown:
            self._show_lr_plot(scheduled)
            changed = True
        title = LOSS_TITLE + (DROPPED_NOTE if self._dropped else "")
        if self.loss_plot.titleLabel.text != title:
            self.loss_plot.setTitle(title, size=TITLE_SIZE)
        if changed:
            self.fit_y()
        return changed

    def _fit_log_ticks(self, plot: pg.PlotItem) -> None:
        """Labels on the log y axis that fit its height (see log_ticks)."""
        low, high = plot.vb.viewRange()[1]
        plot.getAxis("left").setTicks(log_ticks(low, high, plot.vb.height()))

    def _show_lr_plot(self, on: bool) -> None:
        """The lr panel takes a third of the row while a run has a scheduler, no room else."""
        self.lr_shown = on
        self.lr_plot.setVisible(on)
        self.lr_plot.setMaximumWidth(UNLIMITED_WIDTH if on else 0)
        self.lr_plot.setMinimumWidth(0)

    def _draw_clip_markers(self, run: Run, steps: np.ndarray) -> None:
        """Diamonds on the gradient-norm curve at the steps whose gradient was clipped.

        Markers are added for the new entries only (a scatter's setData restyles every spot);
        they are kept at least `spacing` steps apart, and when more than twice
        MAX_CLIP_MARKERS are drawn they are chosen again, spaced for about MAX_CLIP_MARKERS."""
        markers = self.clip_markers[run]
        traj = run.trajectory
        n = len(traj)
        if "clipped" not in traj.fields or not n:
            markers.clear()
            markers.hide()
            self._clip_state.pop(run, None)
            return
        flags = traj.column("clipped")
        key = (id(traj), traj.revision)
        state = self._clip_state.get(run)
        if state is None or state["key"] != key or state["done"] > n or (
                state["done"] and flags[state["done"] - 1] != state["last_flag"]):
            state = {"key": key, "done": 0, "drawn": 0, "last_step": -math.inf,
                     "spacing": max(1, math.ceil(float(steps[-1]) / MAX_CLIP_MARKERS))}
            markers.clear()
        hits = np.nonzero(flags[state["done"]:n] == 1)[0] + state["done"]
        picked = []
        for k in hits.tolist():
            if steps[k] - state["last_step"] >= state["spacing"] and traj.grad_norm[k] > 0:
                picked.append(k)
                state["last_step"] = float(steps[k])
        if picked:
            markers.addPoints(x=steps[picked], y=np.log10(traj.grad_norm[picked]))
            state["drawn"] += len(picked)
        state.update(done=n, last_flag=float(flags[n - 1]))
        self._clip_state[run] = state
        if state["drawn"] > 2 * MAX_CLIP_MARKERS:
            state["key"] = None  # chosen again, spaced out, at the next redraw
        markers.setVisible(bool(state["drawn"]))
        count = int(np.nansum(flags))
        markers.setToolTip(f"{run.title}: {count} clipped step{'' if count == 1 else 's'}")

    def fit_y(self) -> None:
        """Fit each plot's y range to the runs that did not diverge (all runs if every one did),
        and mark where each diverged run's curve leaves it; the lr panel fits every run's lr."""
        if self.lr_shown and self.auto_y[self.lr_plot]:
            fitted_lr = log_y_range(self._extent(run, "lr") for run in self.curves)
            if fitted_lr is not None:
                self.lr_plot.vb.setYRange(*fitted_lr, padding=0)
        diverged = {run for run in self.curves if run.status is RunStatus.DIVERGED}
        for index, plot in enumerate((self.loss_plot, self.grad_plot)):
            column = "loss" if index == 0 else "grad_norm"
            kept = [self._extent(run, column) for run in self.curves if run not in diverged]
            fitted = log_y_range(kept) or log_y_range(
                self._extent(run, column) for run in self.curves)
            if self.auto_y[plot] and fitted is not None:
                plot.vb.setYRange(*fitted, padding=0)
            top = plot.vb.viewRange()[1][1]
            for run in self.curves:
                marker = self.exit_markers[run][index]
                point = None
                if run in diverged:
                    traj = run.trajectory
                    point = leaves_at(traj.step, getattr(traj, column), top)
                if point is None:
                    marker.hide()
                    continue
                marker.setData([point[0]], [math.log10(point[1])])
                marker.setToolTip(f"{run.title}: {run.status_text}")
                marker.show()

    def _extent(self, run: Run, column: str) -> np.ndarray:
        """The lowest and highest value of a run's column the log scale can show, as a 2-array
        (empty if none); remembered until the trajectory changes, so a long run is not scanned
        again at every redraw."""
        traj = run.trajectory
        key = (id(traj), len(traj), traj.revision)
        cached = self._extents.get((run, column))
        if cached is not None and cached[0] == key:
            return cached[1]
        values = getattr(traj, column)
        shown = values[np.isfinite(values) & (values > 0)]
        extent = np.array([shown.min(), shown.max()]) if shown.size else np.empty(0)
        self._extents[(run, column)] = (key, extent)
        return extent

    def _on_user_range_change(self, plot: pg.PlotItem) -> None:
        self.auto_y[plot] = False  # the user's zoom wins until they press "A"

    def _on_auto_button(self, plot: pg.PlotItem) -> None:
        self.auto_y[plot] = True
        plot.enableAutoRange(x=True, y=False)
        self.fit_y()


def _clip_tip(run: Run, step: float, log_norm: float) -> str:
    return (f"{run.title}: the gradient after step {int(step)} (|∇| = {10.0 ** log_norm:.4g})"
            f" was clipped before step {int(step) + 1}")


class CurvesView(QWidget):
    """The live curves: a CurvesPicture redrawn from the controller's runs, at most REFRESH_HZ
    times a second and not while hidden.

    `loss_plot`, `grad_plot` (pyqtgraph PlotItems), `legend` and `curves` (run -> (loss_item,
    grad_item)) are the picture's. The legend names each run by its title.
    """

    def __init__(self, controller: Controller, *, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.controller = controller
        self.graphics = pg.GraphicsLayoutWidget()
        self.picture = CurvesPicture(self.graphics.ci)
        self.loss_plot = self.picture.loss_plot
        self.grad_plot = self.picture.grad_plot
        self.legend = self.picture.legend
        self.curves = self.picture.curves

        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.graphics)
        # Below this the plots' frames are too short to read a curve (titles and step axes take
        # ~80 px); a squashed dock scrolls or clips instead of drawing 40 px plots.
        self.setMinimumHeight(MIN_HEIGHT_PX)

        # Redrawing every trajectory at 60 Hz costs frames: curves need far fewer updates.
        self._throttle = Throttle(self._draw_all, REFRESH_HZ, self)
        self._connections = [
            (controller.sigRunsChanged, self._on_runs_change),
            (controller.sigRunChanged, self._on_run_change),
            (controller.sigStepped, self._on_stepped_change),
            (controller.sigSurfaceChanged, self._on_surface_change),
        ]
        for signal, slot in self._connections:
            signal.connect(slot)
        self._on_runs_change()

    # --- controller -> view -----------------------------------------------------------------------

    def _on_runs_change(self) -> None:
        self.picture.set_runs(self.controller.session.runs)
        self._draw_all()

    def _on_run_change(self, run: Run) -> None:
        if run in self.curves:
            self.picture.style(run)
            self.picture.rebuild_legend()
            self.picture.forget(run)  # a freeze rewrites the last gradient: redraw
            self._draw_all()

    def _on_stepped_change(self) -> None:
        self._throttle.request()

    def _on_surface_change(self) -> None:
        self._draw_all()  # every trajectory restarted: their identities changed

    def _draw_all(self) -> None:
        self._throttle.drawn()
        self.picture.draw()

    def close(self) -> bool:
        self._throttle.cancel()
        for signal, slot in self._connections:
            with contextlib.suppress(RuntimeError, TypeError):  # already disconnected
                signal.disconnect(slot)
        self._connections = []
        return super().close()
