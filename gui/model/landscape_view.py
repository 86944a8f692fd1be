"""The loss landscape around the model workspace's runs (issue 8).

A model with exactly two trainable scalars (linear regression, or any model with all but two
scalars frozen) gets its exact loss surface over those two, with each run's real path. Any other
model gets a 2-D slice θ(α, β) = θ₀ + α·d₁ + β·d₂ through parameter space along
filter-normalised random directions, the top two PCA directions of all runs' paths, or the top
two Hessian eigenvectors at θ₀, with each run's path projected onto the plane.
core/landscape.py computes every number (batched under torch.no_grad()); this module draws
(`LandscapePicture`, also used headless by gui/model/landscape_image.py) and runs the grid in a
gui/worker.py Job (`LandscapeView`).

θ₀ is the shared initial weights (where every run starts), with the reference run's frozen
tensors where that run holds them, or the reference run's current weights; the reference run is
the selected one, and its freezes say which parameters may move. Paths come from each run's
Trajectory when it holds every parameter in full (small models), else from snapshots this view
takes after every batch of steps (`PathRecorder`).

Hovering the picture shows the exact loss at the cursor's (α, β) (or the two scalars), not the
nearest grid point's: one plain forward pass of the picture's own centre model at that point
(core.landscape.loss_at_point, under torch.no_grad()), throttled.
"""

from __future__ import annotations

import copy
import html
import math
import time
import weakref
from dataclasses import dataclass

import numpy as np
import pyqtgraph as pg
import torch
from PySide6.QtCore import QPointF, QRectF, QSignalBlocker, Qt
from PySide6.QtGui import QColor
from PySide6.QtWidgets import (QCheckBox, QComboBox, QDoubleSpinBox, QGraphicsItem, QHBoxLayout,
                               QLabel, QPushButton, QSizePolicy, QSpinBox, QVBoxLayout,
                               QWidget)
from torch import nn

from core.landscape import (COVER_MARGIN, KINDS, Landscape, LandscapeError, Placement,
                            landscape_around, loss_at_point)
from core.model_session import flat_parameters
from core.problems.model import ParameterLayout, parameters_vector
from core.run import Run
from gui.model.controller import ModelController
from gui.model.curves_view import log_axis_style
from gui.surface_view import (CONTOUR_PEN, N_CONTOURS, SURFACE_COLORMAP, THIN_ABOVE,
                              Z_CONTOURS, Z_HEADS, Z_IMAGE, Z_LINES, Z_START, TrajectoryCurve,
                              colour_scale_text, contour_segments, log_scale, thin_to_pixels)
from gui.throttle import Throttle
from gui.worker import Job, JobProgress

KIND_TITLES = {"exact": "exact (the two trainable scalars)",
               "random": "random, filter-normalised (Li et al.)",
               "pca": "PCA of all runs' paths", "hessian": "Hessian: top two eigenvectors"}
KIND_SHORT = {"exact": "exact", "random": "random (filter-norm.)", "pca": "PCA of the paths",
              "hessian": "Hessian top 2"}
CENTRES = {"start": "the initial weights", "selected": "the selected run now"}
CENTRE_SHORT = {"start": "centre: start", "selected": "centre: selected run"}
DEFAULT_GRID, DEFAULT_SPAN = 51, 1.0
# The exact surface is recomputed by itself after a change when the grid is this cheap
# (grid points x training rows): 101 x 101 on 200 rows takes ~50 ms.
AUTO_EXACT_COST = 101 * 101 * 1000
TOO_WIDE = 3.0  # an exact grid this many times wider than its paths need is computed again
PATH_CAPACITY = 5000  # snapshots kept per run before every second older one is dropped
PATHS_HZ = 10
# The hover evaluates the loss at the cursor's exact point (one forward pass over the training
# rows, under no_grad): at most HOVER_HZ times a second, and no more often than HOVER_SHARE of
# the time (an evaluation that took d seconds waits d / HOVER_SHARE before the next). A model
# and data so large that one evaluation takes over HOVER_MAX_S hover the nearest grid point.
HOVER_HZ = 20
HOVER_SHARE = 0.25
HOVER_MAX_S = 0.1
NO_GRAD_TEXT = "the grid is evaluated under torch.no_grad(), in eval mode, on every training row"


# --- paths ---------------------------------------------------------------------------------------


class RecordedPath:
    """One run's snapshots in a growable array: rows [0, n) are the path. `revision` changes
    when rows are rewritten (thinned, or the path started again), so a reader that placed rows
    [0, k) knows whether they still stand."""

    def __init__(self, size: int) -> None:
        self.steps = np.empty(16, dtype=np.int64)
        self.values = np.empty((16, size), dtype=np.float64)
        self.n = 0
        self.revision = 0

    def restart(self) -> None:
        self.n = 0
        self.revision += 1

    def append(self, step: int, flat: np.ndarray, capacity: int) -> None:
        if self.n == len(self.steps):
            if self.n >= capacity:  # as a Trajectory thins: first and newest stay
                keep = np.arange(0, self.n - 1, 2)
                keep = np.append(keep, self.n - 1)
                self.steps[:len(keep)] = self.steps[keep]
                self.values[:len(keep)] = self.values[keep]
                self.n = len(keep)
                self.revision += 1
            else:
                grown = min(capacity, 2 * self.n)
                self.steps = np.resize(self.steps, grown)
                values = np.empty((grown, self.values.shape[1]), dtype=np.float64)
                values[:self.n] = self.values[:self.n]
                self.values = values
        self.steps[self.n] = step
        self.values[self.n] = flat
        self.n += 1


class PathRecorder:
    """Flat parameter snapshots of each run, taken whenever `sample` is called (after a batch of
    steps, or after every step with a controller's step hook), for runs whose Trajectory does
    not hold every parameter. A run that went back to fewer steps (reset, a new problem)
    starts a new path."""

    def __init__(self, capacity: int = PATH_CAPACITY) -> None:
        self.capacity = capacity
        self._paths: weakref.WeakKeyDictionary[Run, RecordedPath] = weakref.WeakKeyDictionary()

    def sample(self, runs: list[Run]) -> None:
        """Take a snapshot of each run that stepped since its last one."""
        for run in runs:
            if holds_every_parameter(run):
                continue  # its Trajectory has the whole path already
            flat = flat_parameters(run).numpy()
            path = self._paths.get(run)
            if path is None or path.values.shape[1] != flat.size:
                path = self._paths[run] = RecordedPath(flat.size)
            elif path.n and run.steps < path.steps[path.n - 1]:
                path.restart()
            if path.n and path.steps[path.n - 1] == run.steps:
                continue
            path.append(run.steps, flat, self.capacity)

    def source(self, run: Run) -> tuple[object, int, int]:
        """Where the run's path lives now: (its holder, the holder's revision, rows). Rows
        [0, rows) of `rows_of` stay the same while holder and revision do."""
        if holds_every_parameter(run):
            traj = run.trajectory
            return traj, traj.revision, len(traj)
        path = self._paths.get(run)
        if path is None or path.n == 0:
            return run, -1, 1  # not sampled yet: its parameters now
        return path, path.revision, path.n

    def rows_of(self, run: Run, start: int = 0) -> np.ndarray:
        """Rows [start, end) of the run's path (snapshots, P), a copy."""
        holder, _, end = self.source(run)
        if isinstance(holder, RecordedPath):
            return holder.values[start:end].copy()
        if holder is run:
            return flat_parameters(run).numpy()[None, :].copy()[start:]
        traj = run.trajectory  # its value columns, element by element in layout order
        return np.stack([traj.column(c)[start:end] for n in run.parameter_names
                         for c in traj.stored[n]], axis=1)

    def path(self, run: Run) -> np.ndarray:
        """The run's flat parameters (snapshots, P): from its Trajectory when that holds every
        parameter (every step), else the recorded snapshots. A copy."""
        return self.rows_of(run)


def holds_every_parameter(run: Run) -> bool:
    """True when the run's Trajectory records every parameter in full (small models). Asked
    at every tick for every run: it does not bring the run's record up to date."""
    stored = run.stored_in_full
    return all(name in stored for name in run.parameter_names)


# --- the picture ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class DrawnPath:
    """One run's path as drawn: its colour, legend title and grid coordinates."""

    title: str
    color: str
    x: np.ndarray
    y: np.ndarray


class LandscapePicture:
    """The heatmap, colour bar, contours, centre and paths of one Landscape, in a
    pg.GraphicsLayout, from core data only (the live view and the headless image share it).

    Colours are the race's (gui/surface_view.py): log10(loss − floor + ε) on its lightened
    viridis, with the same contour levels.
    """

    def __init__(self, layout: pg.GraphicsLayout, *, line_width: float = 2.0,
                 cached: bool = True) -> None:
        self.line_width = line_width
        self.landscape: Landscape | None = None
        self.paths: list[DrawnPath] = []
        self.plot_item: pg.PlotItem = layout.addPlot(row=0, col=0)
        pi = self.plot_item
        pi.setMenuEnabled(False)
        pi.hideButtons()
        pi.setLabel("bottom", "alpha")
        pi.setLabel("left", "beta")
        self.image_item = pg.ImageItem(axisOrder="row-major")
        self.image_item.setZValue(Z_IMAGE)
        # As the race's view does: the heatmap and contours change only with a new grid, so
        # on screen they are pixmaps and a frame that moves a path does not repaint them
        # (`cached=False` for files: painted directly, as vectors in an SVG).
        cache = QGraphicsItem.CacheMode.DeviceCoordinateCache if cached else (
            QGraphicsItem.CacheMode.NoCache)
        self.image_item.setCacheMode(cache)
        pi.addItem(self.image_item)
        self.color_bar = pg.ColorBarItem(values=(0.0, 1.0), colorMap=SURFACE_COLORMAP,
                                         interactive=False, width=14, colorMapMenu=False,
                                         label="loss (log scale)")
        self.color_bar.setImageItem(self.image_item, insert_in=pi)
        self.color_bar.axis.setLogMode(True)
        # decades, or 1, 2 and 5 times them under two decades: pyqtgraph labelled all of 2..9
        # there, and on a colour bar of a few hundred pixels they ran into each other
        log_axis_style(self.color_bar.axis)
        self.contour_item = pg.PlotCurveItem(connect="pairs", pen=CONTOUR_PEN,
                                             skipFiniteCheck=True, antialias=False)
        self.contour_item.setZValue(Z_CONTOURS)
        self.contour_item.setCacheMode(cache)
        pi.addItem(self.contour_item, ignoreBounds=True)
        self.centre_item = pg.ScatterPlotItem(symbol="+", size=16, pen=pg.mkPen("k", width=2),
                                              brush=pg.mkBrush("k"), name="centre θ₀")
        self.centre_item.setZValue(Z_START)
        pi.addItem(self.centre_item, ignoreBounds=True)
        self.heads_item = pg.ScatterPlotItem(symbol="o", size=9, pen=pg.mkPen("k"))
        self.heads_item.setZValue(Z_HEADS)
        pi.addItem(self.heads_item, ignoreBounds=True)
        self.legend = pg.LegendItem(offset=(-10, 10), brush=pg.mkBrush(255, 255, 255, 215),
                                    pen=pg.mkPen(0, 0, 0, 90), labelTextColor="k",
                                    labelTextSize="8pt")
        self.legend.setParentItem(pi.getViewBox())
        self.legend.addItem(self.centre_item, "centre θ₀")
        self.legend.hide()  # until there is a landscape to explain
        pi.getViewBox().sigResized.connect(self.place_legend)
        self.lines: list[TrajectoryCurve] = []
        self.colour_text = ""

    # --- the grid -----------------------------------------------------------------------------

    def show_landscape(self, landscape: Landscape) -> None:
        """Draw a new grid: heatmap, colour levels, contours, centre and axis names."""
        self.landscape = landscape
        g = landscape.grid
        xs, ys, z = g.x_values, g.y_values, g.loss
        finite = z[np.isfinite(z)]
        c, scale = log_scale(z, float(finite.min()) if finite.size else 0.0)
        lo, hi = scale.levels
        text = colour_scale_text(scale)
        text = "loss" + text[1:] if text.startswith("f") else text  # the race's words for f
        if text != self.colour_text:
            self.colour_text = text
            self.color_bar.getAxis("left").setLabel(html.escape(text).replace("\n", "<br>"))
        self.image_item.setImage(c, autoLevels=False, levels=(lo, hi))
        dx = (xs[-1] - xs[0]) / (len(xs) - 1)
        dy = (ys[-1] - ys[0]) / (len(ys) - 1)
        self.image_item.setRect(QRectF(xs[0] - dx / 2, ys[0] - dy / 2, len(xs) * dx,
                                       len(ys) * dy))
        self.color_bar.setLevels((lo, hi))
        cx, cy = contour_segments(xs, ys, c, np.linspace(lo, hi, N_CONTOURS + 2)[1:-1])
        self.contour_item.setData(cx, cy)
        self.centre_item.setData(pos=[self.centre_point()])
        self.legend.show()
        self.plot_item.setLabel("bottom", g.x_name)
        self.plot_item.setLabel("left", g.y_name)
        self.plot_item.getViewBox().setRange(xRange=(xs[0], xs[-1]), yRange=(ys[0], ys[-1]),
                                             padding=0)

    def centre_point(self) -> tuple[float, float]:
        """θ₀ in the grid's coordinates: (0, 0) for a slice, its two scalars for exact."""
        assert self.landscape is not None
        return self.landscape.origin

    def value_at(self, x: float, y: float) -> tuple[float, float, float] | None:
        """The grid point nearest to (x, y) inside the grid, and the loss there."""
        if self.landscape is None:
            return None
        g = self.landscape.grid
        if not (g.x_values[0] <= x <= g.x_values[-1] and g.y_values[0] <= y <= g.y_values[-1]):
            return None
        j = int(np.abs(g.x_values - x).argmin())
        i = int(np.abs(g.y_values - y).argmin())
        return float(g.x_values[j]), float(g.y_values[i]), float(g.loss[i, j])

    # --- the paths ----------------------------------------------------------------------------

    def set_paths(self, paths: list[DrawnPath], selected: str | None = None) -> None:
        """Each run's path in its colour with its head; lines are made again only when the
        runs change, else updated with setData."""
        if [(p.title, p.color) for p in paths] != [(p.title, p.color) for p in self.paths]:
            for line in self.lines:
                self.plot_item.removeItem(line)
            self.legend.clear()
            self.lines = []
            for p in paths:
                line = TrajectoryCurve(antialias=False, skipFiniteCheck=True, connect="finite")
                line.setSegmentedLineMode("off")
                width = self.line_width + (1 if p.title == selected else 0)
                line.setPen(pg.mkPen(QColor(p.color), width=width))
                line.setZValue(Z_LINES)
                self.plot_item.addItem(line, ignoreBounds=True)
                self.legend.addItem(line, html.escape(p.title))
                self.lines.append(line)
            self.legend.addItem(self.centre_item, "centre θ₀")  # (clear() took it too)
        self.paths = paths
        heads, brushes = [], []
        scale = self._pixel_scale()
        for p, line in zip(paths, self.lines):
            if len(p.x) > THIN_ABOVE and scale is not None and np.all(np.isfinite(p.x)) and \
                    np.all(np.isfinite(p.y)):
                line.setData(*thin_to_pixels(p.x, p.y, *scale))  # as the race draws long paths
            else:
                line.setData(p.x, p.y)
            if len(p.x) and np.isfinite(p.x[-1]) and np.isfinite(p.y[-1]):
                heads.append((float(p.x[-1]), float(p.y[-1])))
                brushes.append(pg.mkBrush(QColor(p.color)))
        self.heads_item.setData(pos=heads, brush=brushes)
        self.place_legend()

    def _pixel_scale(self) -> tuple[float, float] | None:
        """Screen pixels per unit along x and y (None before the plot is laid out)."""
        vb = self.plot_item.getViewBox()
        (x0, x1), (y0, y1) = vb.viewRange()
        if vb.width() <= 0 or vb.height() <= 0 or x1 <= x0 or y1 <= y0:
            return None
        return vb.width() / (x1 - x0), vb.height() / (y1 - y0)

    def place_legend(self, *_: object) -> None:
        """Put the legend in the corner of the plot that hides the fewest path points (heads
        and the centre count most); the top right when nothing is drawn yet."""
        vb = self.plot_item.getViewBox()
        w, h = vb.width(), vb.height()
        if w <= 0 or h <= 0 or not self.paths:
            return
        (x0, x1), (y0, y1) = vb.viewRange()
        size = self.legend.boundingRect()
        margin = 10.0

        def pixels(xs: np.ndarray, ys: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
            return (xs - x0) * (w / (x1 - x0)), (y1 - ys) * (h / (y1 - y0))

        groups = [(pixels(p.x, p.y), 1.0) for p in self.paths]
        ends = [(p.x[-1], p.y[-1]) for p in self.paths if len(p.x)] + [self.centre_point()]
        groups.append((pixels(*(np.array(v, dtype=float) for v in zip(*ends))), 50.0))
        scores = {}
        for right, bottom in ((True, False), (False, False), (True, True), (False, True)):
            left = w - size.width() - margin if right else margin
            top = h - size.height() - margin if bottom else margin
            scores[(right, bottom)] = sum(
                weight * float(np.sum((px >= left) & (px <= left + size.width()) &
                                      (py >= top) & (py <= top + size.height())))
                for (px, py), weight in groups)
        right, bottom = min(scores, key=scores.__getitem__)  # the first of equals: top right
        anchor = (1 if right else 0, 1 if bottom else 0)
        self.legend.anchor(itemPos=anchor, parentPos=anchor,
                           offset=(-margin if right else margin, -margin if bottom else margin))


# --- the live view -------------------------------------------------------------------------------


class LandscapeView(QWidget):
    """The landscape tab of the model workspace: directions, grid and span, Compute and Cancel,
    the picture and what it holds. Reads the ModelController; changes nothing in it."""

    def __init__(self, controller: ModelController, *, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.controller = controller
        self.recorder = PathRecorder()
        # run -> ((landscape, path holder, revision), its placement so far)
        self._placed: weakref.WeakKeyDictionary[Run, tuple[tuple, Placement]] = (
            weakref.WeakKeyDictionary())
        self.landscape: Landscape | None = None
        self.computed_key: tuple | None = None  # the context the picture was computed in
        self.stale = False
        self.job: Job | None = None
        self._job_key: tuple | None = None
        self._job_centre = self.computed_centre = ""  # θ₀ in words, for the status line
        self._exact_possible = False
        self._user_chose_kind = False
        # the centre model, loss and rows of the job that is running / of the picture shown:
        # the hover evaluates the picture's own model, also when it is out of date
        self._job_inputs: tuple | None = None
        self._hover_inputs: tuple | None = None
        self._hover_scene_pos: QPointF | None = None
        self._hover_slow = False  # one evaluation took longer than HOVER_MAX_S
        self.hover_point: tuple[float, float, float] | None = None  # (x, y, exact loss)

        self.kind_box = QComboBox()
        for kind in KINDS:
            self.kind_box.addItem(KIND_SHORT[kind], kind)
            self.kind_box.setItemData(self.kind_box.count() - 1, KIND_TITLES[kind],
                                      Qt.ItemDataRole.ToolTipRole)
        self.kind_box.setToolTip("θ(α, β) = θ₀ + α·d₁ + β·d₂ along these directions; exact "
                                 "draws the loss over the model's two trainable scalars")
        self.seed_box = QSpinBox()
        self.seed_box.setRange(0, 999_999)
        self.seed_box.setPrefix("seed ")
        self.seed_box.setToolTip("the seed of the random directions (and of Lanczos)")
        self.centre_box = QComboBox()
        for key, text in CENTRES.items():
            self.centre_box.addItem(CENTRE_SHORT[key], key)
            self.centre_box.setItemData(self.centre_box.count() - 1, f"θ₀ is {text}",
                                        Qt.ItemDataRole.ToolTipRole)
        self.centre_box.setToolTip("θ₀: the shared initial weights (the reference run's frozen "
                                   "tensors where it holds them), or the selected run's "
                                   "weights now")
        self.grid_box = QSpinBox()
        self.grid_box.setRange(5, 301)
        self.grid_box.setValue(DEFAULT_GRID)
        self.grid_box.setPrefix("grid ")
        self.grid_box.setToolTip("N x N grid points")
        self.span_box = QDoubleSpinBox()
        self.span_box.setRange(0.001, 1000.0)
        self.span_box.setDecimals(3)
        self.span_box.setValue(DEFAULT_SPAN)
        self.span_box.setPrefix("±")
        self.span_box.setToolTip("each axis from −span to +span around θ₀")
        self.cover_box = QCheckBox("cover paths")
        self.cover_box.setChecked(True)
        self.cover_box.setToolTip("widen the axes beyond the span until every run's path fits")
        self.compute_button = QPushButton("Compute")
        self.compute_button.setToolTip("evaluate the grid in the background")
        self.progress = JobProgress()

        for box in (self.kind_box, self.centre_box):  # narrow: the tab shares the row
            box.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
            box.setMinimumContentsLength(11)
        controls = QHBoxLayout()  # what the plane is
        controls.setContentsMargins(0, 0, 0, 0)
        for w in (self.kind_box, self.seed_box, self.centre_box):
            controls.addWidget(w)
        controls.addStretch(1)
        controls_2 = QHBoxLayout()  # how much of it, and the job
        controls_2.setContentsMargins(0, 0, 0, 0)
        for w in (self.grid_box, self.span_box, self.cover_box, self.compute_button,
                  self.progress):
            controls_2.addWidget(w)
        controls_2.addStretch(1)
        self.graphics = pg.GraphicsLayoutWidget()
        self.graphics.setBackground("w")
        self.picture = LandscapePicture(self.graphics.ci)
        self.status_label = QLabel("Press Compute to evaluate the landscape.")
        self.status_label.setWordWrap(True)
        self.plane_label = QLabel("")
        self.plane_label.setWordWrap(True)
        self.hover_label = QLabel("")
        self.hover_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        # one line, fixed: the plot must not move under the cursor as the text comes and goes
        self.hover_label.setFixedHeight(self.hover_label.fontMetrics().lineSpacing() + 4)
        self.hover_label.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Fixed)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addLayout(controls)
        layout.addLayout(controls_2)
        layout.addWidget(self.graphics, 1)
        layout.addWidget(self.plane_label)
        layout.addWidget(self.status_label)
        layout.addWidget(self.hover_label)
        self._paths_throttle = Throttle(self.update_paths, PATHS_HZ, self)
        self._hover_throttle = Throttle(self._update_hover, HOVER_HZ, self)

        self.compute_button.clicked.connect(self.compute)
        self.kind_box.activated.connect(self._on_kind_pick)
        self.kind_box.currentIndexChanged.connect(self._on_settings_change)
        self.centre_box.currentIndexChanged.connect(self._on_settings_change)
        self.graphics.scene().sigMouseMoved.connect(self._on_mouse_move)
        controller.sigProblemChanged.connect(self._on_context_change)
        controller.sigRunsChanged.connect(self._on_runs_change)
        controller.sigRunChanged.connect(self._on_run_change)
        controller.sigSelectionChanged.connect(self._on_context_change)
        controller.sigStepped.connect(self._on_stepped)
        # A controller that tells about every single step (`step_listeners`) gives every
        # snapshot; otherwise the paths are sampled once per tick (several steps apart).
        listeners = getattr(controller, "step_listeners", None)
        if listeners is not None:
            listeners.append(self._on_run_step)
        self.recorder.sample(controller.runs)
        self._refresh_kinds()
        self._on_settings_change()

    # --- what the landscape is computed for ---------------------------------------------------

    @property
    def kind(self) -> str:
        return str(self.kind_box.currentData())

    @property
    def reference_run(self) -> Run | None:
        c = self.controller
        return c.selected if c.selected is not None else (c.runs[0] if c.runs else None)

    def context_key(self) -> tuple:
        """What the picture depends on besides its own settings: the problem and the reference
        run's freezes (a change makes a computed picture stale)."""
        run = self.reference_run
        frozen = frozenset(run.frozen) if run is not None else frozenset()
        # the objects themselves, not their ids: a new problem may reuse a freed one's id
        return (self.controller.problem, frozen, self.centre_box.currentData(),
                run if self.centre_box.currentData() == "selected" else None)

    def centre_model(self) -> nn.Module:
        """A copy of the model at θ₀ with requires_grad as the reference run's freezes say (a
        copy: the worker must not swap the shared module's parameters)."""
        problem = self.controller.problem
        run = self.reference_run
        frozen = set(run.frozen) if run is not None else set()
        values = problem.initial_parameters()
        if run is not None:
            for name in run.parameter_names:
                if self.centre_box.currentData() == "selected" or name in frozen:
                    values[name] = run.parameters[name].detach().clone()
        model = copy.deepcopy(problem.model)
        # BatchNorm's running statistics: the selected run's own, when it is the centre
        buffers = problem.buffers(run.parameters) if (
            run is not None and self.centre_box.currentData() == "selected") else {}
        with torch.no_grad():
            for name, p in model.named_parameters():
                p.copy_(values[name])
                p.requires_grad_(name not in frozen)
            for name, b in model.named_buffers():
                if name in buffers:
                    b.copy_(buffers[name])
        return model

    def centre_text(self) -> str:
        """θ₀ in words: the initial weights, or the selected run at its step."""
        run = self.reference_run
        if self.centre_box.currentData() == "selected" and run is not None:
            return f"{run.label or run.title} at step {run.steps}"
        return "the initial weights"

    def caption(self) -> str:
        """What the view says under its plot, as lines (the plane, then the grid)."""
        return "\n".join(t for t in (self.plane_label.text(), self.status_label.text()) if t)

    def export_image(self, path: str, width: int = 1000, height: int = 800) -> None:
        """Write the picture on screen (grid, paths, and what the view says) as PNG or SVG,
        drawn afresh without a window (gui/model/landscape_image.py). ExportError if there is
        no picture yet."""
        from core.errors import ExportError
        from gui.model.landscape_image import render_landscape_image  # (it imports this module)

        if self.landscape is None:
            raise ExportError("there is no landscape to export yet: press Compute first")
        render_landscape_image(self.landscape, self.picture.paths, self.caption(), path, width,
                               height)

    def paths(self) -> list[np.ndarray]:
        """Every run's flat parameter path (snapshots, P), in the controller's order."""
        return [self.recorder.path(run) for run in self.controller.runs]

    def _shaping_runs(self) -> list[Run]:
        """The runs whose paths shape the plane (PCA) and the axes: not the diverged ones,
        whose last finite steps may be 1e30 away (they are still drawn, as far as they fit)."""
        return [run for run in self.controller.runs if run.status.value != "diverged"]

    def _refresh_kinds(self) -> None:
        """Offer exact only when exactly two trainable scalars remain, and choose it then."""
        run = self.reference_run
        frozen = set(run.frozen) if run is not None else set()
        possible = sum(math.prod(shape) for name, shape in self.controller.problem.shapes().items()
                       if name not in frozen) == 2  # what core's two_scalars asks, without a copy
        item = self.kind_box.model().item(KINDS.index("exact"))
        item.setEnabled(possible)
        item.setToolTip("" if possible else "needs exactly two trainable scalars: freeze the "
                        "rest, or use a slice")
        with QSignalBlocker(self.kind_box):  # the caller goes on with the new choice
            if possible and not self._exact_possible and not self._user_chose_kind:
                self.kind_box.setCurrentIndex(KINDS.index("exact"))
            if not possible and self.kind == "exact":
                self.kind_box.setCurrentIndex(KINDS.index("random"))
        self._exact_possible = possible
        self.seed_box.setEnabled(self.kind in ("random", "hessian"))

    # --- computing ----------------------------------------------------------------------------

    def compute(self) -> None:
        """Evaluate the grid in a Job; the picture changes only when it has finished."""
        if self.job is not None:
            self.job.cancel()
        model = self.centre_model()
        problem = self.controller.problem
        X, y, loss_fn = problem.X, problem.y, problem.loss_fn
        kind, grid, span = self.kind, self.grid_box.value(), self.span_box.value()
        seed, cover = self.seed_box.value(), self.cover_box.isChecked()
        paths = [self.recorder.path(run) for run in self._shaping_runs()]
        job = Job(lambda state: landscape_around(model, loss_fn, X, y, kind, paths=paths,
                                                 grid=grid, span=span, cover_paths=cover,
                                                 seed=seed, state=state), parent=self)
        self.job, self._job_key = job, self.context_key()
        self._job_inputs = (model, loss_fn, X, y)
        self._job_centre = self.centre_text()
        job.sigFinished.connect(lambda result, j=job: self._on_job_finished(j, result))
        job.sigFailed.connect(lambda message, j=job: self._on_job_failed(j, message))
        job.sigCancelled.connect(lambda j=job: self._on_job_cancelled(j))
        self.progress.attach(job, f"computing {grid} x {grid}…")
        self.status_label.setText(f"Computing a {grid} x {grid} grid in the background…")
        job.start()

    def cancel(self) -> None:
        if self.job is not None:
            self.job.cancel()

    def wait_for_job(self, timeout_s: float = 10.0) -> bool:
        """Deliver the running computation now (tests, quitting); True if none is left."""
        job = self.job
        return True if job is None else job.finish(timeout_s)

    def shutdown(self) -> None:
        """Stop the computation (waiting for it a few seconds) and stop listening to steps."""
        listeners = getattr(self.controller, "step_listeners", None)
        if listeners is not None and self._on_run_step in listeners:
            listeners.remove(self._on_run_step)
        job = self.job
        self.cancel()
        if job is not None:
            job.finish(5.0)

    def _on_job_finished(self, job: Job, landscape: Landscape) -> None:
        if job is not self.job:
            return
        self.job = None
        self.landscape = landscape
        self.computed_key = self._job_key
        self.computed_centre = self._job_centre
        self._hover_inputs, self._hover_slow = self._job_inputs, False
        self.hover_point = None
        self.picture.show_landscape(landscape)
        self.stale = self.computed_key != self.context_key()
        self._show_status()
        self.update_paths()

    def _on_job_failed(self, job: Job, message: str) -> None:
        if job is self.job:
            self.job = None
            self.status_label.setText(f"Could not compute the landscape: {message}")

    def _on_job_cancelled(self, job: Job) -> None:
        if job is self.job:
            self.job = None
            self.status_label.setText("Cancelled; the picture is the previous one."
                                      if self.landscape is not None else "Cancelled.")

    def _show_status(self) -> None:
        if self.landscape is None:
            return
        g = self.landscape.grid
        d = self.landscape.directions
        curvature = "" if d is None or d.eigenvalues is None else \
            f" (eigenvalues {d.eigenvalues[0]:.4g} and {d.eigenvalues[1]:.4g})"
        text = f"{KIND_TITLES[g.kind]}{curvature}, {len(g.x_values)} x {len(g.y_values)}, " \
               f"around {self.computed_centre} (loss {g.centre_loss:.6g} there); " \
               f"{NO_GRAD_TEXT}."
        if self.stale:
            text = ("Out of date: the model, the data, the freezes, the centre or the "
                    "directions changed since this was computed. Press Compute to evaluate it "
                    "again. ") + text
        self.status_label.setText(text)
        self.compute_button.setDefault(self.stale)

    # --- live paths ---------------------------------------------------------------------------

    def update_paths(self) -> None:
        """Project every run's path onto the picture (cheap: no loss is evaluated)."""
        self._paths_throttle.drawn()
        if self.landscape is None or self.stale:
            return
        runs = self.controller.runs
        try:
            placements = [self._placement(run) for run in runs]
        except LandscapeError as e:  # paths of another model (the picture is stale)
            self.plane_label.setText(str(e))
            return
        projected = [(p.x, p.y) for p in placements]
        plane = self.landscape.describe(placements)
        selected = self.controller.selected
        self.picture.set_paths([DrawnPath(run.title if run.label is None else run.label,
                                          run.color or "#000000", x, y)
                                for run, (x, y) in zip(runs, projected)],
                               None if selected is None else (selected.label or selected.title))
        self.plane_label.setText(plane[0].upper() + plane[1:] + ".")
        # An exact surface is cheap: when a path walks off it, it follows (a slice waits for
        # Compute, since its plane would change with the paths).
        shaping = set(map(id, self._shaping_runs()))
        if self.landscape.kind == "exact" and self.cover_box.isChecked() and \
                self._cheap_exact() and not self._grid_fits(
                    [xy for run, xy in zip(runs, projected) if id(run) in shaping]):
            self.compute()

    def _placement(self, run: Run) -> Placement:
        """The run's path on the current landscape, placing only the snapshots that are new
        since the last time (and the last one again: a record may rewrite its newest entry)."""
        assert self.landscape is not None
        holder, revision, rows = self.recorder.source(run)
        key = (self.landscape, holder, revision)
        cached = self._placed.get(run)
        if cached is not None and cached[0] == key and 0 < len(cached[1].x) <= rows:
            done = len(cached[1].x) - 1
            head = cached[1]
            head = Placement(head.x[:done], head.y[:done], head.off_plane[:done])
            placement = Placement.joined(head, self.landscape.place(
                [self.recorder.rows_of(run, done)])[0])
        else:
            placement = self.landscape.place([self.recorder.rows_of(run)])[0]
        self._placed[run] = (key, placement)
        return placement

    # --- signals ------------------------------------------------------------------------------

    def _on_run_step(self, run: Run) -> None:
        self.recorder.sample([run])

    def _on_stepped(self) -> None:
        self.recorder.sample(self.controller.runs)
        self._paths_throttle.request()

    def _on_runs_change(self) -> None:
        self.recorder.sample(self.controller.runs)
        self._on_context_change()

    def _on_run_change(self, _run: Run) -> None:
        self._on_context_change()  # a freeze may have changed what can move

    def _on_kind_pick(self, _index: int) -> None:
        self._user_chose_kind = True

    def _on_settings_change(self, *_: object) -> None:
        self._on_context_change()

    def _on_context_change(self, *_: object) -> None:
        self._refresh_kinds()
        if self.landscape is not None:
            stale = self.computed_key != self.context_key() or \
                self.landscape.kind != self.kind
            if stale != self.stale:
                self.stale = stale
                self._show_status()
        if (self.stale or self.landscape is None) and self._cheap_exact():
            self.compute()
        elif not self.stale:
            self.update_paths()

    def _cheap_exact(self) -> bool:
        return self.kind == "exact" and self._exact_possible and self._cheap()

    def _cheap(self) -> bool:
        """No job runs and this grid takes a few tens of milliseconds at most."""
        n = self.grid_box.value()
        return self.job is None and n * n * len(self.controller.problem.X) <= AUTO_EXACT_COST

    def _grid_fits(self, projected: list[tuple[np.ndarray, np.ndarray]]) -> bool:
        """The grid covers these paths and is not far wider than they need (a run that went
        wild before it was called diverged may have stretched it)."""
        assert self.landscape is not None
        g = self.landscape.grid
        for values, centre, coordinates in (
                (g.x_values, self.landscape.origin[0], [x for x, _ in projected]),
                (g.y_values, self.landscape.origin[1], [y for _, y in projected])):
            finite = [c[np.isfinite(c)] for c in coordinates]
            finite = [c for c in finite if c.size]
            if not finite:
                continue
            low, high = min(c.min() for c in finite), max(c.max() for c in finite)
            if low < values[0] or high > values[-1]:
                return False
            needed = max(self.span_box.value(), COVER_MARGIN * max(high - centre, centre - low))
            if (values[-1] - values[0]) / 2 > TOO_WIDE * needed:
                return False
        return True

    def showEvent(self, event) -> None:  # noqa: N802 (Qt's name)
        super().showEvent(event)
        # The first look has a picture: a cheap grid of the default directions is computed
        # when the tab is first shown (a Hessian needs Lanczos first: that waits for Compute).
        if self.landscape is None and self.kind != "hessian" and self._cheap():
            self.compute()

    def _on_mouse_move(self, scene_pos: QPointF) -> None:
        self._hover_scene_pos = scene_pos
        self._hover_throttle.request()  # the newest position lands, a few times a second

    def point_at(self, x: float, y: float) -> torch.Tensor:
        """The flat parameters at (x, y) of the picture: θ₀ with its two trainable scalars set
        to (x, y) (exact), or θ₀ + x·d₁ + y·d₂ with frozen entries held (a slice), as
        core/landscape.py builds its grid points."""
        assert self.landscape is not None and self._hover_inputs is not None
        model = self._hover_inputs[0]
        if self.landscape.indices is not None:
            i, j = self.landscape.indices
            flat = parameters_vector(model)
            flat[i], flat[j] = x, y
            return flat
        d = self.landscape.directions
        assert d is not None
        mask = ParameterLayout.of(model).trainable_mask().to(torch.float64)
        return d.centre.to(torch.float64) + x * (d.d1 * mask) + y * (d.d2 * mask)

    def _update_hover(self) -> None:
        scene_pos = self._hover_scene_pos
        vb = self.picture.plot_item.getViewBox()
        found = None
        if scene_pos is not None and vb.sceneBoundingRect().contains(scene_pos):
            p = vb.mapSceneToView(scene_pos)
            x, y = p.x(), p.y()
            found = self.picture.value_at(x, y)  # None outside the grid
        if found is None or self.landscape is None:
            self.hover_point = None
            self.hover_label.setText("")
            return
        g = self.landscape.grid
        slice_names = (g.x_name, g.y_name) == ("alpha", "beta")
        xn, yn = ("α", "β") if slice_names else (g.x_name, g.y_name)
        if self._hover_inputs is None or self._hover_slow:
            gx, gy, loss = found
            self.hover_point = None
            self.hover_label.setText(f"{xn} = {gx:.5g}, {yn} = {gy:.5g}: loss {loss:.6g} "
                                     "(the nearest grid point; this model is too large to "
                                     "evaluate on hover)")
            return
        model, loss_fn, X, y_rows = self._hover_inputs
        started = time.perf_counter()
        loss = loss_at_point(model, loss_fn, X, y_rows, self.point_at(x, y))  # no_grad, eval
        took = time.perf_counter() - started
        self._hover_slow = took > HOVER_MAX_S
        self._hover_throttle.interval_ms = max(int(1000 / HOVER_HZ),
                                               int(1000 * took / HOVER_SHARE))
        self.hover_point = (x, y, loss)
        self.hover_label.setText(f"{xn} = {x:.5g}, {yn} = {y:.5g}: loss {loss:.6g}, exact at "
                                 f"({xn}, {yn}) (evaluated under torch.no_grad() on every "
                                 "training row)")

    def closeEvent(self, event) -> None:  # noqa: N802 (Qt's name)
        self.shutdown()
        super().closeEvent(event)
