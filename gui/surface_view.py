"""The surface: a log-coloured heatmap with contours, the known minima, the start point, and each
run's trajectory with its head, a −∇f arrow and its status.

The drawing lives in `SurfacePicture`, which reads core objects (a Surface, runs, a start point)
and knows nothing of the controller; `SurfaceView` is the live widget around it (signals, pan and
zoom, hover, dragging the start), and `gui.image_export` builds the same picture without a window.

Colours are log10(f − f_ref + ε): the valleys, where optimizers spend their time, span most of the
colour map instead of being one flat shade under the ridges. f_ref is the surface's known minimum
value (or the lowest value on the grid, if lower), ε a millionth of the grid's height above it so
that the minimum itself has a colour; the colour bar says so in words (`colour_scale_text`).

Labels do not hide each other: the status badges are placed beside their point where they cover
no minimum, no start marker, no other badge and not the legend; the legend goes to the corner
where it hides least, or where the user drags it.
"""

from __future__ import annotations

import contextlib
import html
import math
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field

import numpy as np
import pyqtgraph as pg
from pyqtgraph.graphicsItems.LegendItem import ItemSample
from PySide6.QtCore import QPointF, QRectF, Qt, QTimer, Signal
from PySide6.QtGui import QBrush, QCloseEvent, QColor, QPainter, QPen
from PySide6.QtWidgets import QGraphicsEllipseItem, QGraphicsItem, QWidget

from core.run import Run, RunStatus
from core.session import Session
from core.surfaces import Point, Range, Surface
from gui.controller import Controller
from gui.legend_columns import set_legend_columns
from gui.number_box import format_number
from gui.status_words import short_status as status_badge

GRID_SIZE = 300  # samples each way: ~1-5 ms to evaluate, sharp enough at any zoom
REGRID_DELAY_MS = 100  # after the last pan/zoom step, evaluate the surface for the new region
REGRID_PADDING = 0.1  # evaluate a little beyond the view so small pans need no new grid
N_CONTOURS = 15

Z_IMAGE, Z_CONTOURS, Z_MINIMA, Z_LINES, Z_SELECTED, Z_HEADS = -100, -50, 10, 20, 25, 30
Z_STATUS, Z_START = 40, 50
Z_OVERLAY = -75  # layers added from outside (basins): over the heatmap, under contours and paths
Z_CLIPS = 27  # clipped-step markers: on the paths, under the heads
CLIP_MARKER_PX = 6
CLIP_SYMBOL = "d"  # a small diamond in the run's colour where a gradient was clipped
CLIPPED_LEGEND = "  ◆ clipped"
NOISY_LEGEND = "  ▷ noisy ∇"

HEAD_RADIUS_PX = 4.5
ARROW_HEAD_PX, ARROW_TAIL_PX, ARROW_GAP_PX = 9, 16, 4
DISABLED_ALPHA = 70  # a disabled run is drawn faint (out of 255)
LABEL_GAP_PX = 12  # a status badge starts this far from its point (clear of the X and the star)
LABEL_STACK_MAX = 8  # how many badges can stack beside one point before they may overlap
# Longer trajectories are drawn without the points that land in the same screen pixel as the one
# before (a converged run repeats one pixel thousands of times): at most a pixel off, many times
# fewer vertices to stroke. Shorter ones are drawn exactly as recorded.
THIN_ABOVE = 2000

# viridis, lightened towards white: the valleys stay readable and every run colour (the palette
# has both a yellow and a dark blue) still stands out against it.
_VIRIDIS = pg.colormap.get("viridis")
SURFACE_COLORMAP = pg.ColorMap(
    np.linspace(0.0, 1.0, 9),
    [tuple(round(0.55 * float(c) + 0.45 * 255) for c in _VIRIDIS.map(t, mode="byte")[:3])
     for t in np.linspace(0.0, 1.0, 9)])
CONTOUR_PEN = pg.mkPen(0, 0, 0, 80, width=1)


# --- the math of the picture (numpy only) ---------------------------------------------------------


@dataclass(frozen=True)
class LogScale:
    """The colour transform of one grid: colour = log10(f − floor + eps), shown between levels."""

    floor: float
    eps: float
    levels: tuple[float, float]


def log_heights(z: np.ndarray, reference: float) -> tuple[np.ndarray, tuple[float, float]]:
    """The colour value of each cell, log10(z − floor + ε), and the (low, high) colour levels
    (see `log_scale`)."""
    c, scale = log_scale(z, reference)
    return c, scale.levels


def log_scale(z: np.ndarray, reference: float) -> tuple[np.ndarray, LogScale]:
    """The colour value of each cell, log10(z − floor + ε), and the transform used.

    floor is `reference` or, if the grid goes lower, the grid's own minimum. ε is a millionth of the
    grid's typical height above the floor, so a cell exactly at the minimum is finite and the
    levels span at most ~6 decades. NaN cells stay NaN (drawn transparent); +inf cells get the top
    level. Low and high are robust percentiles, so one extreme cell does not wash out the rest.
    """
    finite = np.isfinite(z)
    c = np.full(z.shape, np.nan)
    if not finite.any():
        return c, LogScale(0.0, 0.0, (0.0, 1.0))
    zf = z[finite]
    floor = min(float(reference), float(zf.min())) if math.isfinite(reference) else float(zf.min())
    above = zf - floor
    top = float(np.percentile(above, 99.0))
    if not top > 0.0:
        top = float(above.max()) if above.max() > 0 else 1.0
    eps = top * 1e-6
    c[finite] = np.log10(above + eps)
    lo = float(np.percentile(c[finite], 0.5))
    hi = float(np.percentile(c[finite], 99.8))
    if not hi > lo:
        lo, hi = lo - 0.5, lo + 0.5
    c[np.isposinf(z)] = hi
    c[np.isneginf(z)] = lo
    return c, LogScale(floor, eps, (lo, hi))


def colour_scale_text(scale: LogScale) -> str:
    """What the colour bar shows, in words: which f, shifted by what, on a log scale."""
    shift = scale.eps - scale.floor  # colour = log10(f + shift)
    if shift == 0:
        return "f, log scale"
    return (f"f {'+' if shift > 0 else '−'} {abs(shift):.4g}, log scale\n"
            "(shifted so that the minimum shows)")


def contour_segments(xs: np.ndarray, ys: np.ndarray, z: np.ndarray,
                     levels: Iterable[float]) -> tuple[np.ndarray, np.ndarray]:
    """Marching squares on z[j, i] = f(xs[i], ys[j]) for every level, vectorised over the cells.

    Returns the x and y of line-segment end points in pairs (for a curve with connect="pairs").
    Cells with a NaN corner are skipped. pyqtgraph's own isocurve is ~50x slower on a 300x300 grid.
    """
    a, b, c, d = z[:-1, :-1], z[:-1, 1:], z[1:, 1:], z[1:, :-1]  # corners: BL, BR, TR, TL
    valid = np.isfinite(a) & np.isfinite(b) & np.isfinite(c) & np.isfinite(d)
    x0, x1 = xs[:-1][None, :], xs[1:][None, :]
    y0, y1 = ys[:-1][:, None], ys[1:][:, None]
    out_x: list[np.ndarray] = []
    out_y: list[np.ndarray] = []
    with np.errstate(invalid="ignore", divide="ignore"):
        for level in levels:
            sa, sb, sc, sd = a > level, b > level, c > level, d > level
            # edges: 0 bottom (a-b), 1 right (b-c), 2 top (d-c), 3 left (a-d)
            crossed = np.stack([sa != sb, sb != sc, sd != sc, sa != sd]) & valid
            count = crossed.sum(axis=0)
            jj, ii = np.nonzero(count >= 2)
            if not len(jj):
                continue
            A, B, C, D = a[jj, ii], b[jj, ii], c[jj, ii], d[jj, ii]
            X0, X1, Y0, Y1 = x0[0, ii], x1[0, ii], y0[jj, 0], y1[jj, 0]
            t = [(level - A) / (B - A), (level - B) / (C - B), (level - D) / (C - D),
                 (level - A) / (D - A)]
            px = np.stack([X0 + t[0] * (X1 - X0), X1, X0 + t[2] * (X1 - X0), X0])
            py = np.stack([Y0, Y0 + t[1] * (Y1 - Y0), Y1, Y0 + t[3] * (Y1 - Y0)])
            cr = crossed[:, jj, ii]
            n = count[jj, ii]
            cols = np.arange(len(jj))
            two = n == 2
            first = np.argmax(cr, axis=0)
            second = 3 - np.argmax(cr[::-1], axis=0)
            pairs = [(first[two], second[two], cols[two])]
            four = n == 4  # a saddle cell: the centre value decides which corners join
            if four.any():
                centre_above = level < (A + B + C + D) / 4
                centre_like_a = centre_above == sa[jj, ii]
                k = cols[four]
                join = centre_like_a[four]
                e1 = np.where(join, 0, 3)
                e2 = np.where(join, 1, 0)
                e3 = np.where(join, 2, 1)
                e4 = np.where(join, 3, 2)
                pairs += [(e1, e2, k), (e3, e4, k)]
            for p, q, k in pairs:
                seg_x = np.empty(2 * len(k))
                seg_y = np.empty(2 * len(k))
                seg_x[0::2], seg_x[1::2] = px[p, k], px[q, k]
                seg_y[0::2], seg_y[1::2] = py[p, k], py[q, k]
                out_x.append(seg_x)
                out_y.append(seg_y)
    if not out_x:
        return np.empty(0), np.empty(0)
    return np.concatenate(out_x), np.concatenate(out_y)


def exit_point(xs: np.ndarray, ys: np.ndarray, x_range: Range, y_range: Range) -> Point | None:
    """Where a path last leaves the box x_range × y_range: its last point if that is inside, else
    the point where the segment from its last inside point crosses the box's edge. None if no point
    of the path is inside."""
    if not len(xs):
        return None
    (bx0, bx1), (by0, by1) = x_range, y_range
    inside = (xs >= bx0) & (xs <= bx1) & (ys >= by0) & (ys <= by1)
    if inside[-1]:
        return float(xs[-1]), float(ys[-1])
    idx = np.nonzero(inside)[0]
    if not len(idx):
        return None
    k = int(idx[-1])
    px, py, qx, qy = xs[k], ys[k], xs[k + 1], ys[k + 1]
    t = 1.0  # largest fraction of the step (p -> q) that stays inside the box
    for p, q, lo, hi in ((px, qx, bx0, bx1), (py, qy, by0, by1)):
        if q > hi:
            t = min(t, (hi - p) / (q - p))
        elif q < lo:
            t = min(t, (lo - p) / (q - p))
    return float(px + t * (qx - px)), float(py + t * (qy - py))


def thin_to_pixels(xs: np.ndarray, ys: np.ndarray, sx: float,
                   sy: float) -> tuple[np.ndarray, np.ndarray]:
    """The path without each point that falls in the same pixel (sx, sy pixels per unit) as the
    point before it; the first and last points are always kept."""
    qx, qy = np.floor(xs * sx), np.floor(ys * sy)
    keep = np.empty(len(xs), dtype=bool)
    keep[0] = True
    np.not_equal(qx[1:], qx[:-1], out=keep[1:])
    keep[1:] |= qy[1:] != qy[:-1]
    keep[-1] = True
    return xs[keep], ys[keep]


def _finite_or_zero(v: float) -> float:
    return v if math.isfinite(v) else 0.0


# --- the picture ----------------------------------------------------------------------------------


class SurfaceViewBox(pg.ViewBox):
    """A ViewBox whose plain left click reports the point, and whose "view all" means the surface's
    own region (not the bounds of every item: a diverged trajectory may reach 1e6).

    Signals
    -------
    sigClicked(QPointF, QPointF)   a plain left click (not a drag): (view point, scene point)
    """

    sigClicked = Signal(object, object)

    def __init__(self) -> None:
        super().__init__(enableMenu=False)
        self.home_range: tuple[Range, Range] | None = None

    def mouseClickEvent(self, ev) -> None:
        if ev.button() == Qt.MouseButton.LeftButton and not ev.double():
            ev.accept()
            self.sigClicked.emit(self.mapSceneToView(ev.scenePos()), ev.scenePos())
        else:
            super().mouseClickEvent(ev)

    def autoRange(self, *args, **kwargs) -> None:
        if self.home_range is None:
            super().autoRange(*args, **kwargs)
        else:
            self.setRange(xRange=self.home_range[0], yRange=self.home_range[1], padding=0)


class _LegendSample(ItemSample):
    """A legend swatch. pyqtgraph's hides the line on a click, a second truth about what is shown;
    this one asks for the run to be selected instead (via the picture's `on_run_picked`)."""

    def mouseClickEvent(self, event) -> None:
        if event.button() == Qt.MouseButton.LeftButton:
            event.accept()
            pick = getattr(self.item, "pick_run", None)
            if pick is not None:
                pick()


class _MovableLegend(pg.LegendItem):
    """The surface's legend: the user may drag it anywhere in the plot; from then on it stays
    where they put it (`moved_by_user`) instead of finding the corner that hides least."""

    moved_by_user = False

    def mouseDragEvent(self, ev) -> None:
        super().mouseDragEvent(ev)
        if ev.isAccepted():
            self.moved_by_user = True


class TrajectoryCurve(pg.PlotCurveItem):
    """A run's path. Qt strokes a 1 px cosmetic line with a fast rasteriser and anything wider
    with its general stroker, ~15x slower per vertex; so on screen a w px line is drawn as one
    pixel strokes side by side (w along x, w along y), which looks the same. Exports use the
    real pen, antialiased."""

    def paint(self, p: QPainter, opt: object, widget: QWidget | None) -> None:
        pen = self.opts["pen"]
        width = round(pen.widthF())
        inverse, invertible = p.transform().inverted()
        if width <= 1 or self._exportOpts is not False or not pen.isCosmetic() or not invertible:
            super().paint(p, opt, widget)
            return
        origin = inverse.map(QPointF(0, 0))
        one_x = inverse.map(QPointF(1, 0)) - origin  # one screen pixel, in data units
        one_y = inverse.map(QPointF(0, 1)) - origin
        thin = QPen(pen)
        thin.setWidthF(1.0)
        self.opts["pen"] = thin
        try:
            offsets = [QPointF(0, 0)] + [one_x * k for k in range(1, width)] + [
                one_y * k for k in range(1, width)]
            for offset in offsets:
                p.save()
                p.translate(offset)
                super().paint(p, opt, widget)
                p.restore()
        finally:
            self.opts["pen"] = pen


@dataclass(eq=False)
class RunItems:
    """The plot items of one run. `line` is the whole trajectory, `head` its current point, `arrow`
    the −∇f direction there, `diverged_marker` the X where a diverged run left the region,
    `status_label` the "diverged" / "converged @ step N" badge; `clip_markers` the diamonds where
    the gradient was clipped (`clip_count` of them), `noisy_arrow` the −(∇f + noise) direction
    the optimizer used (a hollow arrow, with noise only)."""

    run: Run
    line: TrajectoryCurve
    head: QGraphicsEllipseItem
    arrow: pg.ArrowItem
    diverged_marker: pg.ScatterPlotItem
    status_label: pg.TextItem
    clip_markers: pg.ScatterPlotItem | None = None
    noisy_arrow: pg.ArrowItem | None = None
    label_point: Point | None = None
    clip_count: int = 0  # the clipped entries of the trajectory (markers may be pixel-thinned)
    clip_key: tuple = field(default=())  # (trajectory, revision) the markers were found for
    clip_done: int = 0  # entries scanned for clipped flags
    clip_last_flag: float = 0.0  # the flag of the newest entry scanned (it may be regraded)
    clip_cells: set = field(default_factory=set)  # pixels holding a marker, once thinned
    drawn: tuple = field(default=())  # (trajectory, length, revision) last drawn
    drawn_status: tuple = field(default=())
    # the thinned line so far: valid for (trajectory, revision, pixel scale), covering n_done points
    thin_key: tuple = field(default=())
    thin_done: int = 0
    thin_x: np.ndarray = field(default_factory=lambda: np.empty(0))
    thin_y: np.ndarray = field(default_factory=lambda: np.empty(0))


class SurfacePicture:
    """Everything drawn on the surface plot, built in a pg.GraphicsLayout, from core objects only.

    Used by `SurfaceView` (live) and by `gui.image_export` (headless). `interactive=False` makes
    the start marker fixed; `cached=False` paints the heatmap and contours directly, and
    `line_width` widens the trajectories (both for export: a picture is looked at, not
    animated). `on_run_picked(run)` is called when the user clicks a run's legend
    swatch.
    """

    def __init__(self, layout: pg.GraphicsLayout, *, interactive: bool = True,
                 cached: bool = True, line_width: float = 2.0, grid_size: int = GRID_SIZE,
                 on_run_picked: Callable[[Run], None] | None = None) -> None:
        self.grid_size = grid_size
        self.line_width = line_width
        self.on_run_picked = on_run_picked
        self.surface: Surface | None = None
        self.reference = 0.0  # f_ref of the colour scale
        self.grid_region: tuple[Range, Range] | None = None  # the region the image shows
        self.levels: tuple[float, float] = (0.0, 1.0)
        self.contour_levels = np.empty(0)
        self.show_gradient_arrows = True
        self.equal_aspect = False
        self.scale = LogScale(0.0, 0.0, (0.0, 1.0))  # the colour transform of the current grid
        self.color_bar_text = ""  # what the colour bar's label says, in words
        self.selected: Run | None = None
        self.run_items: dict[Run, RunItems] = {}

        self.view_box = SurfaceViewBox()
        self.plot_item: pg.PlotItem = layout.addPlot(row=0, col=0, viewBox=self.view_box)
        pi = self.plot_item
        pi.setMenuEnabled(False)
        pi.hideButtons()
        pi.setLabel("bottom", "x")
        pi.setLabel("left", "y")
        self.view_box.disableAutoRange()

        self.image_item = pg.ImageItem(axisOrder="row-major")
        self.image_item.setZValue(Z_IMAGE)
        # The heatmap and contours change only on a new grid: keep them as pixmaps so a frame
        # that moves a trajectory does not rescale the image and restroke every contour.
        cache = QGraphicsItem.CacheMode.DeviceCoordinateCache if cached else (
            QGraphicsItem.CacheMode.NoCache)
        self.image_item.setCacheMode(cache)
        pi.addItem(self.image_item)
        self.color_bar = pg.ColorBarItem(values=(0.0, 1.0), colorMap=SURFACE_COLORMAP,
                                         interactive=False, width=14, colorMapMenu=False,
                                         label="f (log scale)")
        self.color_bar.setImageItem(self.image_item, insert_in=pi)
        self.color_bar.axis.setLogMode(True)  # colour values are log10: label the ticks as 10^k

        self.contour_item = pg.PlotCurveItem(connect="pairs", pen=CONTOUR_PEN,
                                             skipFiniteCheck=True, antialias=False)
        self.contour_item.setZValue(Z_CONTOURS)
        self.contour_item.setCacheMode(cache)
        pi.addItem(self.contour_item, ignoreBounds=True)

        tip = _spot_tip
        self.minima_item = pg.ScatterPlotItem(symbol="star", size=18, pen=pg.mkPen("k"),
                                              brush=pg.mkBrush("w"), hoverable=True, tip=tip,
                                              name="global minimum")
        self.local_minima_item = pg.ScatterPlotItem(symbol="t1", size=13, pen=pg.mkPen("k"),
                                                    brush=pg.mkBrush(200, 200, 200), hoverable=True,
                                                    tip=tip, name="local minimum")
        for item in (self.minima_item, self.local_minima_item):
            item.setZValue(Z_MINIMA)
            pi.addItem(item, ignoreBounds=True)

        self.start_marker = pg.TargetItem(
            pos=(0.0, 0.0), size=15, symbol="o", pen=pg.mkPen("k", width=2),
            brush=(255, 255, 255, 160), hoverPen=pg.mkPen("r", width=2),
            hoverBrush=(255, 255, 255, 220), movable=interactive, label="start",
            labelOpts={"color": "k", "offset": (9, -9), "anchor": (0, 1),
                       "fill": (255, 255, 255, 170)})
        self.start_marker.setZValue(Z_START)
        pi.addItem(self.start_marker, ignoreBounds=True)
        if interactive:
            self.start_marker.setToolTip("Start point: drag it, or click the surface")

        self.legend = _MovableLegend(offset=(-10, 10), brush=pg.mkBrush(255, 255, 255, 215),
                                     pen=pg.mkPen(0, 0, 0, 90), labelTextColor="k",
                                     labelTextSize="9pt", sampleType=_LegendSample)
        self.legend.setToolTip("Drag the legend to move it")
        self.legend.setParentItem(self.view_box)
        self.legend.setZValue(100)
        self.legend.setCacheMode(cache)  # its translucent box costs ~2 ms a frame to repaint
        self._legend_corner = (True, False)  # (right, bottom)

        self.view_box.sigTransformChanged.connect(self._on_transform_change)

    # --- the surface ------------------------------------------------------------------------------

    def set_surface(self, surface: Surface) -> None:
        """Show a new surface: title, minima, colour reference, the view fitted to its region."""
        self.surface = surface
        _, _, z = surface.grid(nx=101, ny=101)
        finite = z[np.isfinite(z)]
        lowest = float(finite.min()) if finite.size else 0.0
        self.reference = (min(surface.min_value, lowest) if surface.min_value is not None
                          else lowest)
        self.plot_item.setTitle(html.escape(_plot_title(surface)), size="10pt", color="k")
        self.minima_item.setData(pos=list(surface.minima),
                                 data=[self._point_tip("global minimum", p)
                                       for p in surface.minima])
        self.local_minima_item.setData(pos=list(surface.local_minima),
                                       data=[self._point_tip("local minimum", p)
                                             for p in surface.local_minima])
        (x0, x1), (y0, y1) = surface.x_range, surface.y_range
        self.view_box.home_range = (surface.x_range, surface.y_range)
        span = max(x1 - x0, y1 - y0)
        # Zoom limits keep the grid meaningful: far below float64 detail, or absurdly far out.
        self.view_box.setLimits(minXRange=span * 1e-7, minYRange=span * 1e-7,
                                maxXRange=span * 1e3, maxYRange=span * 1e3)
        self.grid_region = None
        self.legend.moved_by_user = False  # new minima, new start: find the best corner again
        self.fit_to_surface()

    def set_equal_aspect(self, on: bool) -> None:
        """Keep one unit of x as long on screen as one unit of y (pans and zooms keep it)."""
        self.equal_aspect = bool(on)
        self.view_box.setAspectLocked(self.equal_aspect, ratio=1.0)
        if not self.equal_aspect and self.surface is not None:
            self.fit_to_surface()  # fill the plot with the region again

    def _point_tip(self, what: str, p: Point) -> str:
        assert self.surface is not None
        return f"{what} ({p[0]:.6g}, {p[1]:.6g})\nf = {self.surface.value(*p):.6g}"

    def fit_to_surface(self) -> None:
        """The view back to the surface's own region, evaluated there now."""
        if self.surface is None:
            return
        self.set_view(self.surface.x_range, self.surface.y_range)
        self.regrid()

    def set_view(self, x_range: Range, y_range: Range) -> None:
        self.view_box.setRange(xRange=x_range, yRange=y_range, padding=0)

    def view_range(self) -> tuple[Range, Range]:
        (x0, x1), (y0, y1) = self.view_box.viewRange()
        return (float(x0), float(x1)), (float(y0), float(y1))

    def needs_regrid(self) -> bool:
        """True when the image does not cover the view, or the view is a zoom into it (blurry)."""
        if self.grid_region is None:
            return self.surface is not None
        (vx0, vx1), (vy0, vy1) = self.view_range()
        (gx0, gx1), (gy0, gy1) = self.grid_region
        covered = gx0 <= vx0 and vx1 <= gx1 and gy0 <= vy0 and vy1 <= gy1
        sharp = (vx1 - vx0) >= 0.5 * (gx1 - gx0) and (vy1 - vy0) >= 0.5 * (gy1 - gy0)
        return not (covered and sharp)

    def regrid(self) -> None:
        """Evaluate the surface for the visible region (a little beyond) and redraw the heatmap,
        the colour levels and the contours."""
        if self.surface is None:
            return
        (x0, x1), (y0, y1) = self.view_range()
        px, py = (x1 - x0) * REGRID_PADDING, (y1 - y0) * REGRID_PADDING
        self.show_region((x0 - px, x1 + px), (y0 - py, y1 + py))

    def show_region(self, x_range: Range, y_range: Range) -> None:
        assert self.surface is not None
        n = self.grid_size
        xs, ys, z = self.surface.grid(x_range, y_range, n, n)
        c, self.scale = log_scale(z, self.reference)
        lo, hi = self.levels = self.scale.levels
        text = colour_scale_text(self.scale)
        if text != self.color_bar_text:  # (setting the axis label again re-lays the plot out)
            self.color_bar_text = text
            # Two short lines: one long line would be taller than the bar and squash it.
            self.color_bar.getAxis("left").setLabel(html.escape(text).replace("\n", "<br>"))
        self.color_bar.setToolTip(f"colour = log10(f − {self.scale.floor:.6g} + "
                                  f"{self.scale.eps:.3g}): the floor is the lowest f known, and "
                                  f"the small shift keeps the minimum off −∞")
        self.image_item.setImage(c, autoLevels=False, levels=(lo, hi))
        dx = (x_range[1] - x_range[0]) / (n - 1)
        dy = (y_range[1] - y_range[0]) / (n - 1)
        # Pixel centres on the grid points, so the contours (traced through them) line up.
        self.image_item.setRect(QRectF(x_range[0] - dx / 2, y_range[0] - dy / 2, n * dx, n * dy))
        self.color_bar.setLevels((lo, hi))
        # Over a few decades, label only the powers of ten; over less, the 2..9 between them too.
        self.color_bar.axis.setStyle(maxTextLevel=0 if hi - lo >= 1.5 else 2)
        self.contour_levels = np.linspace(lo, hi, N_CONTOURS + 2)[1:-1]
        cx, cy = contour_segments(xs, ys, c, self.contour_levels)
        self.contour_item.setData(cx, cy)
        self.grid_region = (x_range, y_range)

    def image_rect(self) -> QRectF:
        """The region the heatmap covers, in data coordinates."""
        return self.image_item.mapRectToParent(self.image_item.boundingRect())

    def add_overlay(self, item: QGraphicsItem, z: float = Z_OVERLAY) -> None:
        """Show an item from another module (a basins image, say) in data coordinates, over the
        heatmap and under the contours, paths and markers (`z` between Z_IMAGE and Z_CONTOURS by
        default). It does not count for "view all" (the surface's region does)."""
        item.setZValue(z)
        self.plot_item.addItem(item, ignoreBounds=True)

    def remove_overlay(self, item: QGraphicsItem) -> None:
        """Take an item added by `add_overlay` off the plot again (nothing if it is not on it)."""
        if item in self.plot_item.items:
            self.plot_item.removeItem(item)

    def set_start(self, point: Point) -> None:
        if not self.start_marker.moving:
            self.start_marker.setPos(QPointF(float(point[0]), float(point[1])))

    def place_legend(self, like: SurfacePicture | None = None) -> None:
        """Put the legend in the corner of the view where it hides least: the start, the minima
        and the status badges count most, then the runs' heads, then the share of each trajectory
        under it. It moves only when another corner is strictly better, and not at all once the
        user dragged it. With `like` (another picture, e.g. the live view for an export), it goes
        where that picture's user put it, at the same relative place."""
        w, h = self.view_box.width(), self.view_box.height()
        self._fit_legend_columns(h, w)
        size = self.legend.boundingRect().size()  # (LegendItem.size is an attribute)
        if like is not None and like.legend.moved_by_user:
            self._put_legend_like(like)
            return
        if self.legend.moved_by_user:
            return
        if w <= 0 or h <= 0 or not self.run_items:
            return
        (x0, x1), (y0, y1) = self.view_range()

        def to_pixels(points: Sequence[Point]) -> tuple[np.ndarray, np.ndarray]:
            xy = np.array(points, dtype=float).reshape(-1, 2)
            return (xy[:, 0] - x0) * (w / (x1 - x0)), (y1 - xy[:, 1]) * (h / (y1 - y0))  # y down

        start = self.start_marker.pos()
        fixed = [(start.x(), start.y())]
        if self.surface is not None:
            fixed += list(self.surface.minima) + list(self.surface.local_minima)
        heads = [run.last_point for run in self.run_items]
        # (pixels, weight, slack around the legend in x and y)
        groups = [(to_pixels(fixed), 10.0, 14.0, 14.0), (to_pixels(heads), 3.0, 10.0, 10.0)]
        # The badges and the start's label as rectangles, in the view box's pixels.
        origin = self.view_box.mapToScene(QPointF(0, 0))
        texts = [r.translated(-origin) for r in self._label_rects()]
        paths = []
        for run in self.run_items:
            traj = run.trajectory
            if len(traj):
                step = max(1, len(traj) // 500)
                paths.append(to_pixels(np.column_stack([traj.x[::step], traj.y[::step]])))
        margin = 10.0
        scores: dict[tuple[bool, bool], float] = {}
        for right, bottom in ((True, False), (False, False), (True, True), (False, True)):
            left = w - size.width() - margin if right else margin
            top = h - size.height() - margin if bottom else margin
            box = QRectF(left - 4, top - 4, size.width() + 8, size.height() + 8)

            def inside(px: np.ndarray, py: np.ndarray, sx: float = 8.0, sy: float = 8.0,
                       left: float = left, top: float = top) -> np.ndarray:
                return ((px >= left - sx) & (px <= left + size.width() + sx)
                        & (py >= top - sy) & (py <= top + size.height() + sy))

            scores[(right, bottom)] = (
                sum(weight * inside(*pixels, sx, sy).sum() for pixels, weight, sx, sy in groups)
                + sum(10.0 for r in texts if r.intersects(box))
                + sum(inside(*pixels).mean() for pixels in paths))
        best = min(scores, key=scores.__getitem__)  # the first of equals: top right
        if scores[self._legend_corner] > scores[best] + 1e-9:
            self._legend_corner = best
        right, bottom = self._legend_corner
        anchor = (1 if right else 0, 1 if bottom else 0)
        self.legend.anchor(itemPos=anchor, parentPos=anchor,
                           offset=(-margin if right else margin, -margin if bottom else margin))

    def _fit_legend_columns(self, view_height: float, view_width: float | None = None) -> None:
        """Two columns when one would cover more than a third of the plot's height, unless two
        would not fit the plot's width."""
        n = len(self.legend.items)
        row = self.legend.boundingRect().height() / max(1, -(-n // self.legend.columnCount))
        columns = 2 if n > 3 and row * n > view_height / 3 else 1
        set_legend_columns(self.legend, columns)
        if columns == 2 and view_width and self.legend.boundingRect().width() > view_width - 20:
            set_legend_columns(self.legend, 1)

    def _put_legend_like(self, other: SurfacePicture) -> None:
        """The legend at the place, relative to the view, where it is in the other picture."""
        ow = other.view_box.width() - other.legend.width()
        oh = other.view_box.height() - other.legend.height()
        pos = other.legend.pos()
        fx = min(1.0, max(0.0, pos.x() / ow)) if ow > 0 else 0.0
        fy = min(1.0, max(0.0, pos.y() / oh)) if oh > 0 else 0.0
        self.legend.anchor(itemPos=(fx, fy), parentPos=(fx, fy), offset=(0, 0))
        self.legend.moved_by_user = True

    def _label_rects(self, runs: Iterable[RunItems] | None = None) -> list[QRectF]:
        """The scene rectangles of the visible status badges (of `runs`, or all) and of the
        start marker's label."""
        items = self.run_items.values() if runs is None else runs
        rects = [it.status_label.sceneBoundingRect() for it in items
                 if it.label_point is not None and it.status_label.isVisible()]
        start_label = self.start_marker.label()
        if start_label is not None and start_label.isVisible():
            rects.append(start_label.sceneBoundingRect())
        return rects

    # --- the runs ---------------------------------------------------------------------------------

    def set_runs(self, runs: Sequence[Run], selected: Run | None = None) -> None:
        """Rebuild the per-run items (only when runs are added, removed or reordered)."""
        for items in self.run_items.values():
            for item in (items.line, items.head, items.arrow, items.diverged_marker,
                         items.status_label, items.clip_markers, items.noisy_arrow):
                self.plot_item.removeItem(item)
        self.legend.clear()
        self.run_items = {}
        self.selected = selected
        for run in runs:
            self.run_items[run] = self._make_run_items(run)
        self.update_runs(force=True)

    def _make_run_items(self, run: Run) -> RunItems:
        pi = self.plot_item
        # One path, never pyqtgraph's per-segment drawLines (used for wide pens): as fast here,
        # and an SVG export gets one element per run instead of one per step.
        line = TrajectoryCurve(antialias=False, skipFiniteCheck=True, connect="all")
        line.setSegmentedLineMode("off")
        if self.on_run_picked is not None:
            line.pick_run = lambda r=run: self.on_run_picked(r)  # type: ignore[attr-defined,misc]
        head = QGraphicsEllipseItem(-HEAD_RADIUS_PX, -HEAD_RADIUS_PX, 2 * HEAD_RADIUS_PX,
                                    2 * HEAD_RADIUS_PX)
        head.setFlag(QGraphicsItem.GraphicsItemFlag.ItemIgnoresTransformations)
        head.setZValue(Z_HEADS)
        arrow = pg.ArrowItem(pxMode=True, headLen=ARROW_HEAD_PX, tipAngle=40,
                             tailLen=ARROW_TAIL_PX, tailWidth=2.5, pen=pg.mkPen("k"))
        arrow.setZValue(Z_HEADS)
        marker = pg.ScatterPlotItem(symbol="x", size=17, pen=pg.mkPen("k"))
        marker.setZValue(Z_STATUS)
        label = pg.TextItem("", color="k", fill=pg.mkBrush(255, 255, 255, 215), anchor=(0, 1))
        label.setZValue(Z_STATUS)
        clips = pg.ScatterPlotItem(symbol=CLIP_SYMBOL, size=CLIP_MARKER_PX, hoverable=True,
                                   tip=lambda x, y, data, r=run: _clip_tip(r, x, y))
        clips.setZValue(Z_CLIPS)
        noisy = pg.ArrowItem(pxMode=True, headLen=ARROW_HEAD_PX, tipAngle=40,
                             tailLen=ARROW_TAIL_PX, tailWidth=2.5)
        noisy.setZValue(Z_HEADS - 1)
        for item in (line, head, arrow, marker, label, clips, noisy):
            pi.addItem(item, ignoreBounds=True)
        marker.hide()
        label.hide()
        clips.hide()
        noisy.hide()
        self.legend.addItem(line, "")
        items = RunItems(run, line, head, arrow, marker, label, clips, noisy)
        self.style_run(run, items)
        return items

    def style_run(self, run: Run, items: RunItems | None = None) -> None:
        """Colour, width, faintness and legend text of one run (after its settings changed)."""
        items = items or self.run_items.get(run)
        if items is None:
            return
        color = QColor(run.color or "#000000")
        faint = QColor(color)
        if not run.enabled:
            faint.setAlpha(DISABLED_ALPHA)
        selected = run is self.selected
        items.line.setPen(pg.mkPen(faint, width=self.line_width + (1 if selected else 0)))
        items.line.setZValue(Z_SELECTED if selected else Z_LINES)
        items.head.setBrush(QBrush(faint))
        outline = QPen(QColor(0, 0, 0, 255 if run.enabled else DISABLED_ALPHA))
        outline.setCosmetic(True)
        items.head.setPen(outline)
        items.arrow.setStyle(brush=pg.mkBrush(color))
        if items.noisy_arrow is not None:
            # hollow, outlined in the run's colour: the same run's other arrow
            items.noisy_arrow.setStyle(brush=pg.mkBrush(255, 255, 255, 210),
                                       pen=pg.mkPen(color, width=2))
        if items.clip_markers is not None:
            items.clip_markers.setBrush(pg.mkBrush(faint))
            items.clip_markers.setPen(pg.mkPen(255, 255, 255, 200 if run.enabled else 60,
                                               width=0.8))
        items.diverged_marker.setBrush(pg.mkBrush(color))
        items.status_label.border = pg.mkPen(color, width=1.5)
        items.status_label.update()
        title = run.title + ("" if run.enabled else f"  ({status_badge(run)})")  # "disabled"
        title += (CLIPPED_LEGEND if run.clipping is not None else "") + (
            NOISY_LEGEND if run.noise is not None else "")
        label = self.legend.getLabel(items.line)
        if label is not None:
            label.setText(html.escape(title))
            self.legend.updateSize()

    def run_changed(self, run: Run) -> None:
        """One run's settings changed (colour, label, enabled, freeze...): restyle and redraw it."""
        self.style_run(run)
        if self.update_run(run, force=True):
            self.arrange_labels()

    def set_selected(self, run: Run | None) -> None:
        previous, self.selected = self.selected, run
        for r in (previous, run):
            if r is not None:
                self.style_run(r)

    def update_runs(self, force: bool = False) -> None:
        """Draw what is new in each trajectory (setData only where it changed)."""
        status_changed = False
        for run, items in self.run_items.items():
            status_changed |= self.update_run(run, items, force)
        if status_changed:
            self.arrange_labels()

    def update_run(self, run: Run, items: RunItems | None = None, force: bool = False) -> bool:
        """Redraw one run if its trajectory changed; returns True if its status display changed."""
        items = items or self.run_items.get(run)
        if items is None:
            return False
        traj = run.trajectory
        n = len(traj)
        key = (traj, n, traj.revision)
        if force or items.drawn != key:
            items.drawn = key
            if n:
                xs, ys = traj.x, traj.y
                items.line.setData(*self._line_data(items, xs, ys))
                items.head.setPos(float(xs[-1]), float(ys[-1]))
                items.head.show()
            else:  # diverged before its first entry (e.g. a start where f is not finite)
                items.line.setData(np.empty(0), np.empty(0))
                items.head.hide()
            self._update_clip_markers(run, items)
            self._place_arrow(run, items)
        status = (run.status, run.status_text, run.enabled)
        if force or items.drawn_status != status:
            items.drawn_status = status
            self._show_status(run, items)
            self._place_arrow(run, items)  # a diverged run has no arrow, a disabled one neither
            return True
        return False

    def _line_data(self, items: RunItems, xs: np.ndarray,
                   ys: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """What the line draws: the trajectory itself, or for a long one its pixel-thinned copy,
        extended incrementally with only the new points."""
        n = len(xs)
        scale = self._pixel_scale()
        if n <= THIN_ABOVE or scale is None:
            items.thin_key = ()
            return xs, ys
        traj = items.run.trajectory
        key = (traj, traj.revision, scale)
        if items.thin_key == key and 0 < items.thin_done <= n:
            # Thin from the last point already done (kept), then drop it from the new piece.
            tx, ty = thin_to_pixels(xs[items.thin_done - 1:], ys[items.thin_done - 1:], *scale)
            items.thin_x = np.concatenate([items.thin_x, tx[1:]])
            items.thin_y = np.concatenate([items.thin_y, ty[1:]])
        else:
            items.thin_x, items.thin_y = thin_to_pixels(xs, ys, *scale)
            items.thin_key = key
        items.thin_done = n
        return items.thin_x, items.thin_y

    def _update_clip_markers(self, run: Run, items: RunItems) -> None:
        """Diamonds at the entries whose gradient was clipped (the trajectory's `clipped` flag).

        Incremental, because a scatter's setData restyles every spot (~0.1 s for 20k): only the
        new entries are scanned and their markers added. The newest entry's flag can still be
        rewritten (a change of the clipping regrades it): if it was, the markers are found
        again. Past THIN_ABOVE markers, a new one is drawn only in a pixel that has none yet.
        The count goes in the head's tooltip."""
        markers = items.clip_markers
        if markers is None:
            return
        traj = run.trajectory
        n = len(traj)
        if "clipped" not in traj.fields or not n:
            if items.clip_count or items.clip_done:
                markers.clear()
            items.clip_count, items.clip_key, items.clip_done = 0, (), 0
            items.clip_cells = set()
            markers.hide()
            items.head.setToolTip("")
            return
        flags = traj.column("clipped")
        key = (traj, traj.revision)
        done = items.clip_done
        if items.clip_key != key or done > n or (
                done and flags[done - 1] != items.clip_last_flag):
            markers.clear()
            done = items.clip_count = 0
            items.clip_cells = set()
        hits = np.nonzero(flags[done:n] == 1)[0] + done
        before = items.clip_count
        items.clip_count += len(hits)
        xs, ys = traj.x[hits], traj.y[hits]
        scale = self._pixel_scale()
        if items.clip_count > THIN_ABOVE and scale is not None and len(xs):
            xs, ys = self._new_pixels(items, xs, ys, scale)
        if len(xs):
            markers.addPoints(x=xs, y=ys)
        items.clip_key, items.clip_done, items.clip_last_flag = key, n, float(flags[n - 1])
        markers.setVisible(bool(items.clip_count))  # faint, like its line, when disabled
        if items.clip_count != before or not done:
            clipping = run.clipping
            what = clipping.call_text("params") if clipping is not None else "clipping"
            items.head.setToolTip(f"{run.title}: {items.clip_count} clipped step"
                                  f"{'' if items.clip_count == 1 else 's'} (◆ on the path) by "
                                  f"{what}")

    @staticmethod
    def _new_pixels(items: RunItems, xs: np.ndarray, ys: np.ndarray,
                    scale: tuple[float, float]) -> tuple[np.ndarray, np.ndarray]:
        """The points that fall in a pixel with no marker yet (which then has one)."""
        cells = items.clip_cells
        keep = []
        for i, cell in enumerate(zip(np.floor(xs * scale[0]).tolist(),
                                     np.floor(ys * scale[1]).tolist())):
            if cell not in cells:
                cells.add(cell)
                keep.append(i)
        return xs[keep], ys[keep]

    def set_gradient_arrows(self, show: bool) -> None:
        self.show_gradient_arrows = bool(show)
        self.update_arrows()

    def update_arrows(self) -> None:
        for run, items in self.run_items.items():
            self._place_arrow(run, items)

    def _pixel_scale(self) -> tuple[float, float] | None:
        """Pixels per data unit along x and y, or None while the view has no size."""
        (x0, x1), (y0, y1) = self.view_range()
        w, h = self.view_box.width(), self.view_box.height()
        if w <= 0 or h <= 0 or x1 <= x0 or y1 <= y0:
            return None
        return w / (x1 - x0), h / (y1 - y0)

    def _place_arrow(self, run: Run, items: RunItems) -> None:
        """The −∇f arrow at the head, and with noise the hollow −(∇f + noise) arrow beside it."""
        traj = run.trajectory
        noisy = items.noisy_arrow
        shown = self._place_one_arrow(run, items.arrow, "grad_x", "grad_y")
        if noisy is None:
            return
        has_noise = run.noise is not None and "noisy_grad_x" in traj.fields
        if has_noise and shown:
            self._place_one_arrow(run, noisy, "noisy_grad_x", "noisy_grad_y")
            sigma = format_number(run.noise.sigma)  # type: ignore[union-attr]
            items.arrow.setToolTip(f"{run.title}: −∇f, the noise-free gradient's direction")
            noisy.setToolTip(f"{run.title}: −(∇f + noise), the noisy gradient the optimizer "
                             f"uses (σ = {sigma}, seed {run.noise.seed})")  # type: ignore
        else:
            noisy.hide()
            items.arrow.setToolTip(f"{run.title}: −∇f, the direction of steepest descent")

    def _place_one_arrow(self, run: Run, arrow: pg.ArrowItem, gx: str, gy: str) -> bool:
        """Point `arrow` along minus the gradient in columns gx, gy at the newest entry; False
        (hidden) when there is none to show."""
        traj = run.trajectory
        scale = self._pixel_scale()
        # A converged run's gradient is below tolerance: its direction is rounding noise.
        if (not self.show_gradient_arrows or not run.enabled or not len(traj) or scale is None
                or run.status is not RunStatus.RUNNING):
            arrow.hide()
            return False
        last = len(traj) - 1
        # A frozen coordinate has no gradient (NaN): it does not move, so its component is 0.
        dx = -_finite_or_zero(float(traj.column(gx)[last]))
        dy = -_finite_or_zero(float(traj.column(gy)[last]))
        big = max(abs(dx), abs(dy))
        if big == 0.0:
            arrow.hide()
            return False
        sx, sy = dx / big * scale[0], dy / big * scale[1]  # on screen, in pixels, y up
        norm = math.hypot(sx, sy)
        ux, uy = sx / norm, sy / norm
        reach = ARROW_HEAD_PX + ARROW_TAIL_PX + ARROW_GAP_PX
        tip_x = float(traj.x[last]) + reach * ux / scale[0]
        tip_y = float(traj.y[last]) + reach * uy / scale[1]
        # ArrowItem's angle 0 points left and turns clockwise on screen (where y points down).
        arrow.setStyle(angle=math.degrees(math.atan2(uy, -ux)))
        arrow.setPos(tip_x, tip_y)
        arrow.show()
        return True

    def _show_status(self, run: Run, items: RunItems) -> None:
        marker, label = items.diverged_marker, items.status_label
        traj = run.trajectory
        items.label_point = None
        # The badge says what the run's own status_text says (the card, the table and the CLI
        # show the same words), without the reason, which is in the tooltip.
        badge = status_badge(run)
        if run.status is RunStatus.DIVERGED:
            point = self._diverged_point(run)
            marker.setData(pos=[point])
            marker.setToolTip(run.status_text)
            marker.show()
            label.setText(badge)
            label.setToolTip(run.status_text)
            items.label_point = point
        elif run.status is RunStatus.CONVERGED and len(traj):
            marker.hide()
            label.setText(badge)
            label.setToolTip(run.status_text)
            items.label_point = self._converged_point(run)
        else:
            marker.hide()
        if items.label_point is not None and run.enabled:
            label.setPos(*items.label_point)
            label.show()
        else:
            label.hide()

    @staticmethod
    def _converged_point(run: Run) -> Point:
        """Where it converged: the entry of its converged step if the run records one, else where
        it is now (a converged run is not moving)."""
        traj = run.trajectory
        at = getattr(run, "converged_at", None)
        k = len(traj) - 1
        if at is not None:
            k = min(int(np.searchsorted(traj.step, at)), k)
        return float(traj.x[k]), float(traj.y[k])

    def _diverged_point(self, run: Run) -> Point:
        """Where to put the X: where the trajectory left the surface's region (or its last point),
        so it stays on the picture when the run flew off to 1e6."""
        traj = run.trajectory
        xs, ys = traj.x, traj.y
        pending = getattr(run, "diverged_point", None)
        if pending is not None and all(math.isfinite(v) for v in pending):
            xs, ys = np.append(xs, pending[0]), np.append(ys, pending[1])
        if self.surface is not None:
            p = exit_point(xs, ys, self.surface.x_range, self.surface.y_range)
            if p is not None:
                return p
        if len(xs):
            return float(xs[-1]), float(ys[-1])
        return run.start

    def arrange_labels(self) -> None:
        """Badges first, then the legend to the corner that hides least, then the badges again
        around the legend if it still covers one."""
        self._layout_status_labels(avoid_legend=self.legend.moved_by_user)
        self.place_legend()
        legend = self.legend.sceneBoundingRect()
        if self.legend.isVisible() and any(r.intersects(legend) for r in self._label_rects()):
            self._layout_status_labels(avoid_legend=True)

    def _layout_status_labels(self, avoid_legend: bool = True) -> None:
        """Place the status badges beside their points where they hide nothing: not a minimum,
        not the start marker or its label, not another badge or X, not the legend. Each badge
        tries the four corners around its point (the one facing into the view first), then the
        same corners a badge's height further out, so badges of runs that left at one spot stack
        instead of covering each other."""
        vb_rect = self.view_box.sceneBoundingRect()
        if vb_rect.isEmpty():
            return
        placed = [it for it in self.run_items.values()
                  if it.label_point is not None and it.status_label.isVisible()]
        if not placed:
            return

        def scene(p: Point) -> QPointF:
            return self.view_box.mapViewToScene(QPointF(p[0], p[1]))

        obstacles: list[QRectF] = []
        for p, half in self._marker_points():
            c = scene(p)
            obstacles.append(QRectF(c.x() - half, c.y() - half, 2 * half, 2 * half))
        start_label = self.start_marker.label()
        if start_label is not None and start_label.isVisible():
            obstacles.append(start_label.sceneBoundingRect())
        if self.legend.isVisible() and avoid_legend:
            obstacles.append(self.legend.sceneBoundingRect())
        taken: list[QRectF] = []
        for items in placed:
            label = items.status_label
            size = label.textItem.boundingRect().size()
            w, h = size.width(), size.height()
            c = scene(items.label_point)  # type: ignore[arg-type]
            g = LABEL_GAP_PX
            # Into the view first: a run that left over the right edge gets its badge on the left.
            sides = ((1, -1), (1, 1), (-1, -1), (-1, 1))
            if c.x() + g + w > vb_rect.right():
                sides = ((-1, -1), (-1, 1), (1, -1), (1, 1))
            candidates = []
            for column in range(3):  # beside the point, then a badge's width further out
                for k in range(LABEL_STACK_MAX):
                    for sx, sy in sides:
                        out = column * (w + 4)
                        left = c.x() + g + out if sx > 0 else c.x() - g - w - out
                        top = ((c.y() - g - h - k * (h + 2)) if sy < 0
                               else (c.y() + g + k * (h + 2)))
                        candidates.append(QRectF(left, top, w, h))
            inside = [r for r in candidates if vb_rect.contains(r)] or candidates[:1]

            def cost(r: QRectF) -> float:
                # Nowhere free: hide as little as possible, another badge least of all.
                def area(o: QRectF) -> float:
                    i = r.intersected(o)
                    return max(0.0, i.width()) * max(0.0, i.height())
                return 3 * sum(area(t) for t in taken) + sum(area(o) for o in obstacles)

            free = [r for r in inside if not any(r.intersects(o) for o in obstacles + taken)]
            chosen = free[0] if free else min(inside, key=cost)
            taken.append(chosen)
            label.setAnchor((0, 0))
            label.setPos(self.view_box.mapSceneToView(chosen.topLeft()))

    def _marker_points(self) -> list[tuple[Point, float]]:
        """Every fixed marker a label must not cover, with its half size in pixels: the minima,
        the start, and each badge's own X or point."""
        points: list[tuple[Point, float]] = []
        if self.surface is not None:
            points += [(p, 11.0) for p in self.surface.minima]
            points += [(p, 8.0) for p in self.surface.local_minima]
        start = self.start_marker.pos()
        points.append(((start.x(), start.y()), 10.0))
        points += [(it.label_point, 10.0) for it in self.run_items.values()
                   if it.label_point is not None]
        return points

    def _on_transform_change(self) -> None:
        # A zoom changes which points share a pixel: thin the long lines again.
        for run, items in self.run_items.items():
            if len(run.trajectory) > THIN_ABOVE:
                items.line.setData(*self._line_data(items, run.trajectory.x, run.trajectory.y))
            if items.clip_count > THIN_ABOVE:  # so are its clipped-step markers
                items.clip_key = ()
                self._update_clip_markers(run, items)
        self.update_arrows()
        self._layout_status_labels()

    # --- a whole session (for the headless picture) -----------------------------------------------

    def show_session(self, session: Session) -> None:
        self.set_surface(session.surface)
        # A still picture needs no margin for panning: the heatmap and contours end at the axes,
        # so even an SVG viewer without clip paths shows nothing outside them.
        self.show_region(*self.view_range())
        self.set_start(session.start)
        self.set_runs(session.runs, None)
        self.place_legend()


def _plot_title(surface: Surface, limit: int = 70) -> str:
    """The surface's name, with its formula when that fits on the line."""
    if surface.title == surface.text:  # a user's formula is its own title
        text = surface.text
        return text if len(text) <= limit else text[: limit - 1] + "…"
    full = f"{surface.title}:  f(x, y) = {surface.text}"
    return full if len(full) <= limit else surface.title


def _spot_tip(x: float, y: float, data: object) -> str:
    return str(data)


def _clip_tip(run: Run, x: float, y: float) -> str:
    clipping = run.clipping
    how = clipping.call_text("params") if clipping is not None else "clipping"
    return (f"{run.title}: the gradient at ({x:.4g}, {y:.4g}) was clipped by {how} before "
            "the step from here")


# --- the live widget ------------------------------------------------------------------------------


class SurfaceView(pg.GraphicsLayoutWidget):
    """The surface the runs race down, live: it redraws from the controller's session.

    Pan with a left drag, zoom with the wheel (or a right drag); the surface is evaluated again for
    the visible region ~100 ms after the view settles. A plain click on the surface, or dragging the
    start marker, moves the start (every run restarts there). Moving the mouse shows f and ∇f
    under it (`hover_text`).

    `plot_item`, `image_item`, `run_items` (run -> RunItems with `.line`, `.head`, `.arrow`, ...)
    and the other items are the picture's (see SurfacePicture).
    """

    def __init__(self, controller: Controller, *, parent: QWidget | None = None) -> None:
        super().__init__(parent=parent)
        self.controller = controller
        self.picture = SurfacePicture(self.ci, interactive=True,
                                      on_run_picked=self._on_legend_pick)
        self.plot_item = self.picture.plot_item
        self.image_item = self.picture.image_item
        self.view_box = self.picture.view_box
        self.hover_label = self.ci.addLabel("", row=1, col=0, justify="left", color="k",
                                            size="9pt")
        self.hover_text = ""
        self.hover_point: Point | None = None  # where the read-out was computed

        self._regrid_timer = QTimer(self)
        self._regrid_timer.setSingleShot(True)
        self._regrid_timer.setInterval(REGRID_DELAY_MS)
        self._regrid_timer.timeout.connect(self._on_view_settled)

        self.view_box.sigRangeChanged.connect(self._on_view_range_change)
        self.view_box.sigClicked.connect(self._on_surface_click)
        self.picture.start_marker.sigPositionChanged.connect(self._on_start_marker_move)
        self.picture.start_marker.sigPositionChangeFinished.connect(self._on_start_marker_drop)
        self.scene().sigMouseMoved.connect(self._on_mouse_move)

        self._connections = [
            (controller.sigSurfaceChanged, self._on_surface_change),
            (controller.sigRunsChanged, self._on_runs_change),
            (controller.sigRunChanged, self._on_run_change),
            (controller.sigStepped, self._on_trajectory_change),
            (controller.sigSelectionChanged, self._on_selection_change),
        ]
        for signal, slot in self._connections:
            signal.connect(slot)
        self._on_surface_change()
        self._on_runs_change()

    # --- public -----------------------------------------------------------------------------------

    @property
    def run_items(self) -> dict[Run, RunItems]:
        return self.picture.run_items

    @property
    def show_gradient_arrows(self) -> bool:
        return self.picture.show_gradient_arrows

    @show_gradient_arrows.setter
    def show_gradient_arrows(self, show: bool) -> None:
        self.set_gradient_arrows(show)

    def set_gradient_arrows(self, show: bool) -> None:
        """Show or hide the −∇f arrow at each run's head."""
        self.picture.set_gradient_arrows(show)

    def view_range(self) -> tuple[Range, Range]:
        return self.picture.view_range()

    def set_view(self, x_range: Range, y_range: Range) -> None:
        """Show this region; the surface is evaluated for it once the view settles."""
        self.picture.set_view(x_range, y_range)

    def fit_to_surface(self) -> None:
        self._regrid_timer.stop()
        self.picture.fit_to_surface()

    def image_rect(self) -> QRectF:
        return self.picture.image_rect()

    def add_overlay(self, item: QGraphicsItem, z: float = Z_OVERLAY) -> None:
        """Draw an item (e.g. a basins image) over the heatmap, under the contours and paths."""
        self.picture.add_overlay(item, z)

    def remove_overlay(self, item: QGraphicsItem) -> None:
        """Remove an item added with `add_overlay`."""
        self.picture.remove_overlay(item)

    def set_equal_aspect(self, on: bool) -> None:
        """Keep x and y at the same scale (a circle looks round), or let the region fill the
        plot (off)."""
        self.picture.set_equal_aspect(on)

    @property
    def equal_aspect(self) -> bool:
        return self.picture.equal_aspect

    def clear_point_info(self) -> None:
        """Empty the hover line (the pointer left the surface)."""
        self.hover_point = None
        self.hover_text = ""
        self.hover_label.setText("")

    def show_point_info(self, x: float, y: float) -> str:
        """Put f and ∇f at (x, y) in the hover line; returns the text."""
        self.hover_point = (x, y)
        surface = self.controller.session.surface
        try:
            f, gx, gy = surface.value_and_grad(x, y)
            text = (f"x = {x:.4g}   y = {y:.4g}   f = {f:.6g}   "
                    f"∇f = ({gx:.4g}, {gy:.4g})")
        except RuntimeError:  # a torch error at this point: say so, do not crash the hover
            text = f"x = {x:.4g}   y = {y:.4g}   f undefined"
        self.hover_text = text
        self.hover_label.setText(html.escape(text).replace("  ", "&nbsp;&nbsp;"))
        return text

    def disconnect_controller(self) -> None:
        for signal, slot in self._connections:
            with contextlib.suppress(RuntimeError, TypeError):  # already disconnected
                signal.disconnect(slot)
        self._connections = []
        self._regrid_timer.stop()

    def closeEvent(self, event: QCloseEvent) -> None:
        self.disconnect_controller()
        super().closeEvent(event)

    # --- from the controller ----------------------------------------------------------------------

    def _on_surface_change(self) -> None:
        session = self.controller.session
        if session.surface is not self.picture.surface:
            self._regrid_timer.stop()
            self.picture.set_surface(session.surface)
            # The read-out was of the old surface: recompute it at the same point, never leave
            # the old numbers up.
            if self.hover_point is not None:
                self.show_point_info(*self.hover_point)
        self.picture.set_start(session.start)
        self.picture.update_runs(force=True)  # every run restarted
        self.picture.place_legend()

    def _on_runs_change(self) -> None:
        self.picture.set_runs(self.controller.session.runs, self.controller.selected)
        self.picture.place_legend()

    def _on_run_change(self, run: Run) -> None:
        self.picture.run_changed(run)

    def _on_trajectory_change(self) -> None:
        self.picture.update_runs()

    def _on_selection_change(self, run: Run | None) -> None:
        self.picture.set_selected(run)

    # --- from the user ----------------------------------------------------------------------------

    def _on_view_range_change(self, *_: object) -> None:
        self._regrid_timer.start()  # restarts: only the last change of a pan or zoom counts

    def _on_view_settled(self) -> None:
        if self.picture.needs_regrid():
            self.picture.regrid()

    def _on_surface_click(self, point: QPointF, scene_pos: QPointF) -> None:
        legend = self.picture.legend
        if legend.isVisible() and legend.sceneBoundingRect().contains(scene_pos):
            return
        self.controller.set_start((point.x(), point.y()))

    def _on_start_marker_move(self, marker: pg.TargetItem) -> None:
        if marker.moving:
            p = marker.pos()
            self.show_point_info(p.x(), p.y())

    def _on_start_marker_drop(self, marker: pg.TargetItem) -> None:
        p = marker.pos()
        self.controller.set_start((p.x(), p.y()))

    def _on_mouse_move(self, scene_pos: QPointF) -> None:
        if not self.view_box.sceneBoundingRect().contains(scene_pos):
            return
        p = self.view_box.mapSceneToView(scene_pos)
        self.show_point_info(p.x(), p.y())

    def _on_legend_pick(self, run: Run) -> None:
        self.controller.select(run)
