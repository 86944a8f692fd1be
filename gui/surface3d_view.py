"""The surface in 3-D: the same log colours as the heatmap, the trajectories as lines on it, the
heads and the known minima; orbit with a left drag, zoom with the wheel, "Reset view" to return.

The drawing lives in `Surface3DScene`, which reads core objects only (a Surface, runs) and puts
pyqtgraph.opengl items into a GLViewWidget; `Surface3DView` is the live widget around it, and
`render_surface3d_image` draws a session into a PNG without the window (it needs an OpenGL
display: under Xvfb, say).

Coordinates are normalised so that any surface fits one box: x and y map onto [−1, 1] each, the
height onto [0, HEIGHT]. Heights are f − f_ref (the picture learners draw) or, with "Log height"
on, its log over LOG_HEIGHT_DECADES decades; both stop at the grid's highest value, or at its
99th percentile where a few cells tower over the rest, so a pole does not squash the valleys.
Colours are always the heatmap's log colours (see `gui.surface_view.log_scale`), so a point has
the same colour in both views.

Where OpenGL is missing (QT_QPA_PLATFORM=offscreen, a remote display without GLX, or no
PyOpenGL) the view is a plain message and nothing else changes (`opengl_problem`).
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from PySide6.QtCore import QCoreApplication, Qt
from PySide6.QtGui import QCloseEvent, QColor, QGuiApplication, QOpenGLContext
from PySide6.QtWidgets import (QApplication, QCheckBox, QHBoxLayout, QLabel, QPushButton,
                               QVBoxLayout, QWidget)

from core.atomic import atomic_path
from core.errors import ExportError
from core.run import Run
from core.session import Session
from core.surfaces import Surface
from gui.controller import Controller
from gui.surface_view import SURFACE_COLORMAP, LogScale, log_scale
from gui.throttle import Throttle

GL_MISSING_TEXT = ("3-D view needs OpenGL, which this display does not provide; "
                   "everything else works.")
GRID_3D = 120  # samples each way: smooth enough; 150 costs ~1.5x the frame under software Mesa
LOG_HEIGHT_DECADES = 3.0  # "log height" spans this many decades of f − f_ref below the top
HEIGHT = 0.9  # the box is 2 x 2 x HEIGHT: flat enough to see the valleys from above
LIFT = 0.012  # lines and heads float this far above the surface so it does not hide them
LINE_WIDTH = 2.0
SELECTED_LINE_WIDTH = 3.5
HEAD_SIZE_PX = 11
MINIMUM_SIZE_PX = 13
THIN_CELLS = 2000  # a long line keeps one point per 1/2000 of the box (as the 2-D view per pixel)
REDRAW_HZ = 30
# Software OpenGL (Mesa's llvmpipe, a remote desktop) can take tens of ms a frame: then redraw
# less often, so drawing takes at most a third of the GUI thread's time.
REDRAW_SHARE = 1 / 3
SLOWEST_REDRAW_MS = 1000
DISABLED_ALPHA = 70 / 255
# The camera "Reset view" returns to: from the front-left, a little above, the whole box in view.
CAMERA = {"distance": 3.7, "elevation": 30.0, "azimuth": -60.0}
CAMERA_CENTRE = (0.0, 0.0, HEIGHT * 0.35)
BACKGROUND = (255, 255, 255, 255)

# pyqtgraph.opengl compiles each shader once per process and reuses it in every GL widget, which
# only works when the widgets' contexts share objects. Qt shares them when this is set before the
# QApplication exists: importing this module early (the main window does) sets it.
if QCoreApplication.instance() is None:
    QCoreApplication.setAttribute(Qt.ApplicationAttribute.AA_ShareOpenGLContexts)

_NO_WINDOW_SYSTEM = {"offscreen", "minimal", "minimalegl", "vnc", "linuxfb"}
_problem_cache: dict[str, str | None] = {}
_app: QApplication | None = None  # the one render_surface3d_image made, kept alive


def opengl_problem() -> str | None:
    """Why this process cannot draw OpenGL (one line), or None when it can.

    Asked once per process (the platform cannot change within one): a platform without a window
    system, no PyOpenGL, or an OpenGL context that cannot be created.
    """
    if "answer" in _problem_cache:
        return _problem_cache["answer"]
    answer: str | None = None
    platform = QGuiApplication.platformName()
    if QGuiApplication.instance() is None:
        return "no Qt application is running"  # not cached: one may start later
    if platform in _NO_WINDOW_SYSTEM:
        answer = f"the Qt platform '{platform}' has no OpenGL"
    else:
        try:
            import OpenGL.GL  # noqa: F401  (pyqtgraph.opengl draws through PyOpenGL)
            import pyqtgraph.opengl  # noqa: F401
        except Exception as e:  # ImportError, or PyOpenGL failing to load libGL
            answer = f"PyOpenGL is not usable ({type(e).__name__}: {e})".split("\n")[0]
        else:
            context = QOpenGLContext()
            if not (context.create() and context.isValid()):
                answer = "an OpenGL context cannot be created on this display"
    _problem_cache["answer"] = answer
    return answer


# --- the math of the picture (numpy only) ---------------------------------------------------------


@dataclass(frozen=True)
class BoxScale:
    """How surface coordinates map into the unit-ish box: x, y onto [−1, 1], f onto [0, HEIGHT].

    `colours` is the heatmap's transform (log10(f − floor + ε) between its levels); the height is
    f − floor up to `linear_top`, on a log scale of LOG_HEIGHT_DECADES decades if `log_height`.
    """

    x_range: tuple[float, float]
    y_range: tuple[float, float]
    colours: LogScale
    linear_top: float
    log_height: bool = False

    def box_x(self, x: np.ndarray) -> np.ndarray:
        x0, x1 = self.x_range
        return (np.asarray(x, dtype=float) - x0) / (x1 - x0) * 2.0 - 1.0

    def box_y(self, y: np.ndarray) -> np.ndarray:
        y0, y1 = self.y_range
        return (np.asarray(y, dtype=float) - y0) / (y1 - y0) * 2.0 - 1.0

    def colour_value(self, f: np.ndarray) -> np.ndarray:
        """0..1 along the colour map (the heatmap's log colour), NaN where f is NaN."""
        lo, hi = self.colours.levels
        f = np.asarray(f, dtype=float)
        with np.errstate(invalid="ignore", divide="ignore"):
            c = np.log10(np.maximum(f - self.colours.floor, 0.0) + self.colours.eps)
        c = np.where(np.isposinf(f), hi, c)
        return np.clip((c - lo) / (hi - lo), 0.0, 1.0)

    def box_z(self, f: np.ndarray) -> np.ndarray:
        """The height in the box of the values f (NaN stays NaN, +inf is the top)."""
        f = np.asarray(f, dtype=float)
        with np.errstate(invalid="ignore"):
            above = np.clip((f - self.colours.floor) / self.linear_top, 0.0, 1.0)
        if self.log_height:
            # log10 over LOG_HEIGHT_DECADES below the top: the colours' ε (6 decades) would
            # turn every minimum into a bottomless needle.
            eps = 10.0 ** -LOG_HEIGHT_DECADES
            with np.errstate(invalid="ignore"):
                above = (np.log10(above + eps) - np.log10(eps)) / (np.log10(1 + eps)
                                                                   - np.log10(eps))
        return np.where(np.isposinf(f), 1.0, above) * HEIGHT


def box_scale(surface: Surface, z: np.ndarray, reference: float, *,
              log_height: bool = False) -> BoxScale:
    """The box mapping for a grid z of `surface` (z as `Surface.grid` returns it)."""
    _, colours = log_scale(z, reference)
    finite = z[np.isfinite(z)]
    top = 1.0
    if finite.size:
        # The highest cell, unless it towers over nearly all the rest (a pole, 1/x say): then
        # the 99th percentile, and the few cells above it are clipped flat.
        above = finite - colours.floor
        highest, p99 = float(above.max()), float(np.percentile(above, 99.0))
        top = highest if highest <= 10 * p99 else p99
    return BoxScale(surface.x_range, surface.y_range, colours, top if top > 0 else 1.0,
                    log_height)


def surface_reference(surface: Surface, z: np.ndarray) -> float:
    """f_ref of the colours, as the heatmap chooses it: the known minimum or the grid's lowest."""
    finite = z[np.isfinite(z)]
    lowest = float(finite.min()) if finite.size else 0.0
    return min(surface.min_value, lowest) if surface.min_value is not None else lowest


def _forget_compiled_shaders() -> None:
    """Make pyqtgraph compile its shaders again, in the next context that draws.

    Needed only where GL contexts are not shared (the QApplication was made before this module
    was imported): the programs compiled in an earlier context are not valid in a new one.
    """
    from pyqtgraph.opengl import shaders
    from pyqtgraph.opengl.items import GLImageItem, GLLinePlotItem, GLScatterPlotItem

    for program in shaders.ShaderProgram.names.values():
        program.prog = None
        for shader in program.shaders:
            shader.compiled = None
    for module, name in ((GLScatterPlotItem, "GLScatterPlotItem"),
                         (GLLinePlotItem, "GLLinePlotItem"), (GLImageItem, "GLImageItem")):
        klass = getattr(module, name, None)
        if klass is not None and hasattr(klass, "_shaderProgram"):
            klass._shaderProgram = None


def _lit_shader() -> str:
    """The name of the surface's shader: the vertex colour, dimmed at most 35 % where the surface
    turns away from a light above the camera, lit on both sides. pyqtgraph's own "shaded" is
    far darker, so its colours no longer match the heatmap's."""
    from pyqtgraph.opengl import shaders

    name = "surface3d_lit"
    if name not in shaders.ShaderProgram.names:
        vertex = shaders.getShaderProgram("shaded").shaders[0]
        shaders.ShaderProgram(name, [vertex, shaders.FragmentShader("""
            #ifdef GL_ES
            precision mediump float;
            #endif
            varying vec4 v_color;
            varying vec3 v_normal;
            void main() {
                float p = abs(dot(normalize(v_normal), normalize(vec3(0.3, 0.6, 1.0))));
                gl_FragColor = vec4(v_color.rgb * (0.65 + 0.35 * p), v_color.a);
            }
        """)])
    return name


def redraw_interval_ms(frame_seconds: float) -> int:
    """How long to wait between redraws when one frame took `frame_seconds` to draw."""
    fastest = 1000.0 / REDRAW_HZ
    return int(min(SLOWEST_REDRAW_MS, max(fastest, 1000.0 * frame_seconds / REDRAW_SHARE)))


def _timed_gl_view_widget() -> Any:
    """A GLViewWidget that measures each frame: from paintGL to the frame on screen."""
    import pyqtgraph.opengl as gl

    class TimedGLViewWidget(gl.GLViewWidget):
        def __init__(self) -> None:
            super().__init__()
            self.frame_seconds = 0.0  # the last frame's cost, paint and composition
            self._paint_started = 0.0
            self.frameSwapped.connect(self._on_frame_swapped)

        def paintGL(self, *args: Any, **kwargs: Any) -> None:
            self._paint_started = time.perf_counter()
            super().paintGL(*args, **kwargs)

        def _on_frame_swapped(self) -> None:
            if self._paint_started:
                self.frame_seconds = time.perf_counter() - self._paint_started

    return TimedGLViewWidget()


def _rgba(color: str | None, alpha: float = 1.0) -> tuple[float, float, float, float]:
    c = QColor(color or "#000000")
    return (c.redF(), c.greenF(), c.blueF(), alpha)


# --- the scene ------------------------------------------------------------------------------------


@dataclass
class Run3DItems:
    """The GL items of one run: its trajectory `line` and what was last drawn."""

    run: Run
    line: Any  # GLLinePlotItem
    drawn: tuple = field(default=())


class Surface3DScene:
    """Everything the 3-D view draws, in a GLViewWidget, from core objects only.

    Items are created once and updated with setData: the surface mesh, one line per run, one
    scatter for all heads, one for the global and one for the local minima, one for the start.
    """

    def __init__(self, widget: Any, *, grid_size: int | None = None) -> None:
        import pyqtgraph.opengl as gl

        self._gl = gl
        if QOpenGLContext.globalShareContext() is None:
            _forget_compiled_shaders()  # this widget's context cannot use earlier programs
        self.widget = widget
        self.grid_size = grid_size or GRID_3D
        self.surface: Surface | None = None
        self.log_height = False
        self.scale: BoxScale | None = None
        self.selected: Run | None = None
        self.run_items: dict[Run, Run3DItems] = {}
        self._grid: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None

        widget.setBackgroundColor(BACKGROUND)
        self.surface_item = gl.GLSurfacePlotItem(shader=_lit_shader(), smooth=True,
                                                 computeNormals=True, glOptions="opaque")
        widget.addItem(self.surface_item)
        # The minima are a white dot in a black ring (two scatters; the dot a little higher, so the
        # depth test lets it over the ring).
        self.minima_ring_item = gl.GLScatterPlotItem(pos=np.zeros((0, 3)), size=MINIMUM_SIZE_PX,
                                                     color=(0.0, 0.0, 0.0, 1.0), pxMode=True)
        self.minima_item = gl.GLScatterPlotItem(pos=np.zeros((0, 3)), size=MINIMUM_SIZE_PX - 6,
                                                color=(1.0, 1.0, 1.0, 1.0), pxMode=True)
        self.local_minima_item = gl.GLScatterPlotItem(pos=np.zeros((0, 3)),
                                                      size=MINIMUM_SIZE_PX - 4,
                                                      color=(0.45, 0.45, 0.45, 1.0), pxMode=True)
        self.start_item = gl.GLScatterPlotItem(pos=np.zeros((0, 3)), size=HEAD_SIZE_PX - 2,
                                               color=(0.0, 0.0, 0.0, 1.0), pxMode=True)
        self.heads_item = gl.GLScatterPlotItem(pos=np.zeros((0, 3)), size=HEAD_SIZE_PX,
                                               pxMode=True)
        markers = (self.local_minima_item, self.minima_ring_item, self.minima_item,
                   self.start_item, self.heads_item)
        for depth, item in enumerate(markers, start=10):
            item.setGLOptions("opaque")  # depth tested: hidden behind a ridge, as seen
            item.setDepthValue(depth)
            widget.addItem(item)
        self.reset_camera()

    # --- camera -----------------------------------------------------------------------------------

    def reset_camera(self) -> None:
        """The whole box, from the front-left and a little above."""
        from pyqtgraph import Vector

        self.widget.setCameraPosition(pos=Vector(*CAMERA_CENTRE), **CAMERA)

    # --- the surface ------------------------------------------------------------------------------

    def set_surface(self, surface: Surface) -> None:
        """Evaluate and show a new surface (its whole region) and its minima."""
        self.surface = surface
        xs, ys, z = surface.grid(nx=self.grid_size, ny=self.grid_size)
        self._grid = (xs, ys, z)
        self._apply_heights()

    def set_log_height(self, on: bool) -> None:
        """Heights on a log scale of f − f_ref (on) or f − f_ref itself (off); colours stay."""
        self.log_height = bool(on)
        if self._grid is not None:
            self._apply_heights()

    def _apply_heights(self) -> None:
        assert self.surface is not None and self._grid is not None
        xs, ys, z = self._grid
        surface = self.surface
        self.scale = scale = box_scale(surface, z, surface_reference(surface, z),
                                       log_height=self.log_height)
        heights = scale.box_z(z)
        colour = scale.colour_value(z)
        rgba = SURFACE_COLORMAP.map(np.nan_to_num(colour, nan=0.0).ravel(), mode="float")
        rgba = np.asarray(rgba, dtype=np.float32).reshape(z.shape + (4,))
        missing = ~np.isfinite(heights)
        rgba[missing] = (0.85, 0.85, 0.85, 1.0)  # where f is undefined: flat grey at the floor
        heights = np.where(missing, 0.0, heights)
        # GLSurfacePlotItem wants z[i, j] at (x[i], y[j]); Surface.grid is row-major (z[j, i]).
        self.surface_item.setData(x=scale.box_x(xs), y=scale.box_y(ys),
                                  z=heights.T.astype(np.float32),
                                  colors=np.ascontiguousarray(rgba.transpose(1, 0, 2)))
        minima = self._points(surface.minima)
        self.minima_ring_item.setData(pos=minima)
        self.minima_item.setData(pos=minima + np.float32([0.0, 0.0, LIFT / 2]))
        self.local_minima_item.setData(pos=self._points(surface.local_minima))
        self.update_runs(force=True)

    def _points(self, points: Sequence[tuple[float, float]]) -> np.ndarray:
        """Marker positions in the box, on the surface (lifted), for points (x, y)."""
        if not points or self.surface is None or self.scale is None:
            return np.zeros((0, 3))
        p = np.asarray(points, dtype=float).reshape(-1, 2)
        f = np.array([self.surface.value(float(x), float(y)) for x, y in p])
        return self._box_points(p[:, 0], p[:, 1], f)

    def _box_points(self, x: np.ndarray, y: np.ndarray, f: np.ndarray) -> np.ndarray:
        assert self.scale is not None
        z = self.scale.box_z(f)
        pos = np.column_stack([self.scale.box_x(x), self.scale.box_y(y),
                               np.nan_to_num(z, nan=HEIGHT) + LIFT])
        return pos.astype(np.float32)

    def set_start(self, point: tuple[float, float]) -> None:
        self.start_item.setData(pos=self._points([point]))

    # --- the runs ---------------------------------------------------------------------------------

    def set_runs(self, runs: Sequence[Run], selected: Run | None = None) -> None:
        """Make the line items anew (only when runs are added, removed or reordered)."""
        for items in self.run_items.values():
            self.widget.removeItem(items.line)
        self.selected = selected
        self.run_items = {}
        for run in runs:
            line = self._gl.GLLinePlotItem(pos=np.zeros((0, 3)), mode="line_strip",
                                           antialias=False, glOptions="opaque")
            self.widget.addItem(line)
            self.run_items[run] = Run3DItems(run, line)
        self.update_runs(force=True)

    def set_selected(self, run: Run | None) -> None:
        self.selected = run
        self.update_runs(force=True)

    def update_runs(self, force: bool = False) -> None:
        """Draw what changed in each trajectory, then every head in one scatter."""
        heads: list[np.ndarray] = []
        colours: list[tuple[float, float, float, float]] = []
        for run, items in self.run_items.items():
            self._update_line(run, items, force)
            traj = run.trajectory
            if len(traj) and self.scale is not None:
                heads.append(self._box_points(traj.x[-1:], traj.y[-1:], traj.loss[-1:])[0])
                colours.append(_rgba(run.color, 1.0 if run.enabled else DISABLED_ALPHA))
        if heads:
            self.heads_item.setData(pos=np.array(heads), color=np.array(colours))
        else:
            self.heads_item.setData(pos=np.zeros((0, 3)))

    def _update_line(self, run: Run, items: Run3DItems, force: bool) -> None:
        traj = run.trajectory
        selected = run is self.selected
        key = (traj, len(traj), traj.revision, run.color, run.enabled, selected, self.scale)
        if not force and items.drawn == key:
            return
        items.drawn = key
        if not len(traj) or self.scale is None:
            items.line.setData(pos=np.zeros((0, 3)))
            return
        x, y, f = traj.x, traj.y, traj.loss
        if len(x) > THIN_CELLS:  # a converged run repeats one spot thousands of times
            bx, by = self.scale.box_x(x), self.scale.box_y(y)
            keep = _thin_indices(bx, by)
            x, y, f = x[keep], y[keep], f[keep]
        items.line.setData(pos=self._box_points(x, y, f),
                           color=_rgba(run.color, 1.0 if run.enabled else DISABLED_ALPHA),
                           width=SELECTED_LINE_WIDTH if selected else LINE_WIDTH)

    # --- a whole session (for the headless picture) -----------------------------------------------

    def show_session(self, session: Session) -> None:
        self.set_surface(session.surface)
        self.set_start(session.start)
        self.set_runs(session.runs)


def _thin_indices(bx: np.ndarray, by: np.ndarray) -> np.ndarray:
    """Indices of the points that leave the previous point's cell (1/THIN_CELLS of the box each
    way), the first and last always kept: the 3-D twin of the 2-D view's `thin_to_pixels`, which
    returns the points but not which ones (the heights need the same selection)."""
    qx, qy = np.floor(bx * (THIN_CELLS / 2)), np.floor(by * (THIN_CELLS / 2))
    keep = np.empty(len(bx), dtype=bool)
    keep[0] = keep[-1] = True
    keep[1:-1] = (qx[1:-1] != qx[:-2]) | (qy[1:-1] != qy[:-2])
    return np.flatnonzero(keep)


# --- the live widget ------------------------------------------------------------------------------


class Surface3DView(QWidget):
    """The session's surface in 3-D, live: it redraws from the controller as the 2-D view does.

    Left drag orbits, the wheel zooms, a middle drag pans (GLViewWidget's own mouse); "Reset
    view" returns the camera, "Log height" puts the heights on a log scale of f − f_ref.
    Without OpenGL it shows `GL_MISSING_TEXT` instead (`gl_widget` is then None).

    `scene` (a Surface3DScene, or None without OpenGL) holds the items: `surface_item`,
    `run_items` (run -> Run3DItems with `.line`), `heads_item`, `minima_item`.
    """

    def __init__(self, controller: Controller, *, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.controller = controller
        self.gl_problem = opengl_problem()
        self.gl_widget: Any = None
        self.scene: Surface3DScene | None = None

        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        bar = QHBoxLayout()
        self.log_height_box = QCheckBox("Log height")
        self.log_height_box.setChecked(False)
        self.log_height_box.setToolTip("Heights on a log scale (3 decades of f − f_ref); off: f "
                                       "itself. Colours are the 2-D view's either way.")
        self.reset_button = QPushButton("Reset view")
        self.reset_button.setToolTip("Back to the starting camera (left drag orbits, the wheel "
                                     "zooms, a middle drag pans)")
        bar.addWidget(self.log_height_box)
        bar.addWidget(self.reset_button)
        bar.addStretch(1)
        layout.addLayout(bar)

        if self.gl_problem is not None:
            self.message = QLabel(GL_MISSING_TEXT)
            self.message.setToolTip(self.gl_problem)
            self.message.setAlignment(Qt.AlignmentFlag.AlignCenter)
            self.message.setWordWrap(True)
            layout.addWidget(self.message, 1)
            self.log_height_box.setEnabled(False)
            self.reset_button.setEnabled(False)
            self._connections: list[tuple[Any, Any]] = []
            return

        self.message = None
        self.gl_widget = _timed_gl_view_widget()
        layout.addWidget(self.gl_widget, 1)
        self.scene = Surface3DScene(self.gl_widget)
        self._throttle = Throttle(self._redraw_runs, REDRAW_HZ, self)
        self.log_height_box.toggled.connect(self._on_log_height_change)
        self.reset_button.clicked.connect(self.scene.reset_camera)
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

    @property
    def run_items(self) -> dict[Run, Run3DItems]:
        return self.scene.run_items if self.scene is not None else {}

    def disconnect_controller(self) -> None:
        for signal, slot in self._connections:
            with contextlib.suppress(RuntimeError, TypeError):  # already disconnected
                signal.disconnect(slot)
        self._connections = []
        if self.scene is not None:
            self._throttle.cancel()

    def closeEvent(self, event: QCloseEvent) -> None:
        self.disconnect_controller()
        super().closeEvent(event)

    # --- from the controller ----------------------------------------------------------------------

    def _on_surface_change(self) -> None:
        assert self.scene is not None
        session = self.controller.session
        if session.surface is not self.scene.surface:
            self.scene.set_surface(session.surface)
        self.scene.set_start(session.start)
        self.scene.update_runs(force=True)  # every run restarted

    def _on_runs_change(self) -> None:
        assert self.scene is not None
        self.scene.set_runs(self.controller.session.runs, self.controller.selected)

    def _on_run_change(self, run: Run) -> None:
        assert self.scene is not None
        self.scene.update_runs(force=True)

    def _on_trajectory_change(self) -> None:
        self._throttle.request()

    def _on_selection_change(self, run: Run | None) -> None:
        assert self.scene is not None
        self.scene.set_selected(run)

    def _on_log_height_change(self, on: bool) -> None:
        assert self.scene is not None
        self.scene.set_log_height(on)

    def _redraw_runs(self) -> None:
        if self.scene is not None:
            self.scene.update_runs()
            self._throttle.interval_ms = redraw_interval_ms(self.gl_widget.frame_seconds)


# --- headless -------------------------------------------------------------------------------------


def render_surface3d_image(session: Session, path: str | Path, width: int = 1200,
                           height: int = 900) -> None:
    """Draw a session's surface, trajectories, heads and minima in 3-D into a PNG.

    Needs a display with OpenGL (under Xvfb with Mesa, say); without one it raises ExportError
    with one line. Makes a QApplication if none runs yet (on the platform QT_QPA_PLATFORM or
    DISPLAY says). The file is written atomically.
    """
    path = Path(path)
    if path.suffix.lower() != ".png":
        raise ExportError(f"a 3-D picture is written as .png, not {path.name!r}")
    if not path.parent.is_dir():
        raise ExportError(f"cannot write {path}: the folder {path.parent} does not exist")
    try:
        w, h = int(width), int(height)
    except (TypeError, ValueError):
        raise ExportError(f"the image size must be two whole numbers, got {width!r} x "
                          f"{height!r}") from None
    if not (16 <= w <= 8000 and 16 <= h <= 8000):
        raise ExportError(f"the image size must be between 16 and 8000 pixels each way, "
                          f"got {w} x {h}")
    global _app
    if QCoreApplication.instance() is None:  # headless (the command line): make one, keep it
        _app = QApplication([])
    if not isinstance(QApplication.instance(), QApplication):
        raise ExportError("the 3-D picture needs a QApplication (a QCoreApplication is running)")
    problem = opengl_problem()
    if problem is not None:
        raise ExportError(f"the 3-D picture needs OpenGL, and {problem} (run it under Xvfb)")

    import pyqtgraph.opengl as gl

    widget = gl.GLViewWidget()
    try:
        # Never on screen: the widget only owns the context and the framebuffer drawn into.
        widget.setAttribute(Qt.WidgetAttribute.WA_DontShowOnScreen)
        widget.resize(w, h)
        widget.show()
        scene = Surface3DScene(widget)
        scene.show_session(session)
        image = widget.grabFramebuffer()
        if image.isNull() or image.width() != w or image.height() != h:
            raise ExportError(f"OpenGL drew no {w} x {h} picture on this display")
        try:
            with atomic_path(path) as tmp:
                if not image.save(str(tmp), "PNG"):
                    raise ExportError(f"cannot write {path}")
        except OSError as e:
            raise ExportError(f"cannot write {path}: {e.strerror or e}") from None
    finally:
        widget.close()
        widget.deleteLater()
