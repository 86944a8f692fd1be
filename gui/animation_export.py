"""The race as an animation (GIF, MP4, WebP, APNG), drawn from the data, never from the screen.

A copy of the session is stepped from its start (core.animation.RaceStepper) and each frame is
drawn by the picture every export uses (gui.surface_view.SurfacePicture in a never-shown layout,
painted by gui.image_export's offscreen painter): the surface, the growing trajectories, the
heads, the legend, the status badges, and a step counter under the plot. So the same race
exported headless (`main.py export --out race.gif`) or from File > Export > Animation… gives the
same frames, every time.

The legend is placed once for the whole race (where it hides least of the finished paths) and
stays there: a legend jumping between corners would be the loudest thing in the film.

pyqtgraph's scene is not thread-safe, so the drawing stays on the GUI thread, in pieces:
`FilmExport.work()` does one piece (a frame), `AnimationExportTask` runs pieces from a QTimer for
~25 ms a tick (the window stays responsive), with progress and cancel, and encodes the last part
(Pillow's GIF/WebP/APNG writers, pure C) in a gui.worker Job. FilmExport is the piecework of any
film: the race's (`AnimationExport`, here), model mode's (gui.model.animation_frames) and a basin
map's (gui.basin_animation); `AnimationDialog` takes a race Session, a ModelSession or a
core.basin_animation.BasinFilm and starts the matching one.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QObject, QRectF, Qt, QTimer, Signal
from PySide6.QtGui import QColor, QImage, QPainter
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QFormLayout,
    QLabel,
    QProgressDialog,
    QSpinBox,
    QWidget,
)

from core.animation import (
    FORMATS,
    MAX_FPS,
    MAX_SIDE,
    MIN_SIDE,
    AnimationCancelled,
    AnimationError,
    AnimationPlan,
    AnimationWriter,
    ProgressState,
    RaceStepper,
    check_plan,
    check_writable,
    default_length,
    plan_animation,
)
from core.basin_animation import BasinFilm, check_basin_plan, check_basin_work, \
    plan_basin_animation
from core.errors import PlaygroundError
from core.model_animation import (
    ModelAnimationOptions,
    check_model_plan,
    default_model_length,
    plan_model_animation,
    selected_index,
)
from core.model_session import BuiltModelSession, ModelSession
from core.session import Session
from gui.image_export import (
    BACKGROUND,
    MAX_LAYOUT_SIDE,
    Painter,
    ensure_app,
    lay_out_now,
    scene_painter,
)
from gui.curves_view import CurvesPicture
from gui.surface_view import SurfacePicture, SurfaceView
from gui.worker import Job

DEFAULT_SIZE = (800, 600)
DEFAULT_FPS = 10
MIN_LAYOUT_SIDE = 640
TICK_BUDGET_S = 0.025  # drawing per timer tick: the window still gets most of each 40 ms


@dataclass(frozen=True)
class ViewSettings:
    """What the window's surface view adds to the picture: its zoom (the region shown), equal
    x/y scale, and whether the −∇f arrows are on. None (the default everywhere) is the
    surface's own region with arrows, as the command line draws it."""

    x_range: tuple[float, float]
    y_range: tuple[float, float]
    equal_aspect: bool = False
    arrows: bool = True

    @classmethod
    def of(cls, view: SurfaceView) -> ViewSettings:
        x_range, y_range = view.view_range()
        return cls(x_range, y_range, view.picture.equal_aspect, view.show_gradient_arrows)


def layout_area(width: int, height: int) -> QRectF:
    """The logical size a film of width x height pixels is laid out at: at most
    MAX_LAYOUT_SIDE, as every export (a big film is a sharper copy of the picture, not tiny text
    in a vast plot), and at least MIN_LAYOUT_SIDE (films are often small, and at 400 px a legend
    would cover a third of the picture; smaller text is the better trade)."""
    side = max(width, height)
    scale = max(1.0, side / MAX_LAYOUT_SIDE) if side >= MIN_LAYOUT_SIDE else (
        side / MIN_LAYOUT_SIDE)
    return QRectF(0, 0, width / scale, height / scale)


def render_pixels(paint: Painter, width: int, height: int, area: QRectF) -> np.ndarray:
    """Paint a laid-out scene (`paint` from gui.image_export.scene_painter) into a width x height
    RGB frame: height x width x 3 uint8, a copy."""
    image = QImage(width, height, QImage.Format.Format_RGB32)
    if image.isNull():
        raise AnimationError(f"cannot make a {width} x {height} image (out of memory?)")
    image.setDevicePixelRatio(width / area.width())
    image.fill(BACKGROUND)
    painter = QPainter(image)
    try:
        paint(painter, QRectF(0, 0, area.width(), area.height()), False)
    finally:
        painter.end()
    image.setDevicePixelRatio(1.0)
    rgb = image.convertToFormat(QImage.Format.Format_RGB888)
    stride = rgb.bytesPerLine()
    raw = np.frombuffer(rgb.constBits(), dtype=np.uint8, count=stride * height)
    return raw.reshape(height, stride)[:, :3 * width].reshape(height, width, 3).copy()


def exact_colours(colours: list[str | None]) -> list[tuple[int, int, int]]:
    """Colours a GIF's palette keeps exactly: each run's, black (text, outlines), white."""
    exact = [(0, 0, 0), (255, 255, 255)]
    for colour in colours:
        c = QColor(colour or "#000000")
        exact.append((c.red(), c.green(), c.blue()))
    return exact


class RaceAnimation:
    """Frames of a session's race at width x height, drawn offscreen from a stepped copy.

    `frame(k)` returns frame k as a height x width x 3 uint8 array (any k; an earlier one
    restarts the copy). `close()` frees the offscreen canvas. With `curves`, the loss and
    gradient-norm curves (gui.curves_view.CurvesPicture) grow under the surface, on axes fixed
    to the whole race (steps 0 to the end, the race's loss range), so only the curves move.
    """

    def __init__(self, session: Session, plan: AnimationPlan, width: int, height: int, *,
                 curves: bool = False, view: ViewSettings | None = None) -> None:
        ensure_app()
        self.plan = plan
        self.width, self.height = int(width), int(height)
        self.stepper = RaceStepper(session, plan)
        self.area = layout_area(self.width, self.height)
        self.canvas = pg.GraphicsLayoutWidget()  # never shown
        self.canvas.ci.setGeometry(self.area)
        scene = self.canvas.scene()
        lay_out_now(scene)
        self.picture = SurfacePicture(self.canvas.ci, interactive=False, cached=False,
                                      line_width=2)
        self.counter = pg.LabelItem("", color="k", size="10pt", justify="left")
        self.canvas.ci.addItem(self.counter, row=2 if curves else 1, col=0)
        self.counter.setMaximumHeight(20)  # one line of text, not a share of the height
        self._set_counter(plan.last_step)  # its row gets its height from the widest text
        self.curves: CurvesPicture | None = None
        if curves:
            grid = self.canvas.ci.layout
            curves_layout = self.canvas.ci.addLayout(row=1, col=0)
            self.curves = CurvesPicture(curves_layout)
            # The surface's legend names the runs: the plots get the curves' legend column.
            curves_layout.removeItem(self.curves.legend_area)
            self.curves.legend_area.hide()
            grid.setRowStretchFactor(0, 5)
            grid.setRowStretchFactor(1, 2)
            self.curves.set_runs(self.stepper.session.runs)
        if view is None:
            self.picture.show_session(self.stepper.session)
        else:  # as gui.image_export.export_surface_view draws the window's view
            picture = self.picture
            picture.set_equal_aspect(view.equal_aspect)
            picture.set_surface(session.surface)
            picture.set_view(view.x_range, view.y_range)
            picture.show_region(*picture.view_range())  # no margin: nothing outside the axes
            picture.set_start(session.start)
            picture.show_gradient_arrows = view.arrows
            picture.set_runs(self.stepper.session.runs, None)
        lay_out_now(scene)
        self._paint = scene_painter(scene, self.area)
        self._legend_placed = False

    def _set_counter(self, step: int) -> None:
        total = self.plan.last_step
        self.counter.setText(f"step {step:>{len(str(total))}} of {total}")

    def place_legend(self) -> None:
        """Put the legend where it hides least of the whole race (at its last frame), for good."""
        self.stepper.go_to(self.plan.frame_count - 1)
        self.picture.update_runs(force=True)
        self.picture.legend.moved_by_user = False
        self.picture.arrange_labels()
        self.picture.legend.moved_by_user = True  # placed: no later frame moves it
        if self.curves is not None:
            # The axes of the whole race, kept: a film whose axes rescale every frame is hard
            # to read.
            self._draw_curves()
            for plot in (self.curves.loss_plot, self.curves.grad_plot):
                self.curves.auto_y[plot] = False
                plot.enableAutoRange(x=False, y=False)
                plot.setXRange(0, max(1, self.plan.last_step), padding=0.02)
        self._legend_placed = True

    def _draw_curves(self) -> None:
        assert self.curves is not None
        self.curves.draw(force=True)
        self.curves.legend_area.hide()  # (a rebuilt legend shows itself again)

    def frame(self, k: int) -> np.ndarray:
        """Frame k: every run stepped to what it shows, drawn, as RGB pixels."""
        if not self._legend_placed:
            self.place_legend()
        self.stepper.go_to(k)
        self.picture.update_runs(force=True)
        if self.curves is not None:
            self._draw_curves()
        self._set_counter(self.plan.step_at(k))
        return self._render()

    def _render(self) -> np.ndarray:
        return render_pixels(self._paint, self.width, self.height, self.area)

    def close(self) -> None:
        self.canvas.close()
        self.canvas.deleteLater()


class FilmExport:
    """One export in pieces, whatever the film: `work()` does the next bounded piece (True when
    every frame is in), `finish()` encodes the rest and puts the file in place, `abort()` leaves
    nothing behind. `progress` is the share of the work done. Raises AnimationError (one line).

    A subclass says how its film is made: `_open()` builds the offscreen picture (one piece),
    `_prepare()` does one piece of stepping before any frame is drawn (True when the whole film
    is stepped, so the legend and the axes can be fixed for good), `_stepped()` the share of
    that stepping done, `_frame(k)` draws frame k, `_colours()` the runs' colours, `_close()`
    frees the picture."""

    def __init__(self, path: str | Path, width: int, height: int, plan: AnimationPlan) -> None:
        self.path = Path(path)
        check_writable(self.path)  # said now, not after the drawing
        self.plan = plan
        self.width, self.height = int(width), int(height)
        self._opened = False
        self._writer: AnimationWriter | None = None
        self._last_frame: np.ndarray | None = None
        self._prepared = False
        self.frames_done = 0

    @property
    def frame_count(self) -> int:
        return self.plan.frame_count

    # --- what a film provides ---------------------------------------------------------------

    def _open(self) -> None:
        raise NotImplementedError

    def _prepare(self) -> bool:
        raise NotImplementedError

    def _stepped(self) -> float:
        raise NotImplementedError

    def _frame(self, k: int) -> np.ndarray:
        raise NotImplementedError

    def _colours(self) -> list[str | None]:
        raise NotImplementedError

    def _close(self) -> None:
        raise NotImplementedError

    # --- the pieces ---------------------------------------------------------------------------

    def work(self) -> bool:
        """Do the next piece; True once every frame has been added.

        The pieces, each bounded (the GUI thread runs them between its own events): build the
        picture; step the film to its end a frame's steps at a time; draw the last frame (the
        film's legend and axes are fixed from it); draw the first and choose the GIF's palette
        from the two; then one frame a piece."""
        if self.frames_done >= self.frame_count:
            return True
        try:
            if not self._opened:
                self._open()
                self._opened = True
                return False
            last = self.frame_count - 1
            if self._writer is None and self._last_frame is None:
                if not self._prepared:
                    self._prepared = self._prepare()
                    return False
                self._last_frame = self._frame(last)
                return False
            if self._writer is None:
                # The GIF's palette from the last frame (every path drawn) and the first.
                first = self._frame(0)
                self._writer = AnimationWriter(self.path, self.width, self.height, self.plan.fps,
                                               palette_frames=[first, self._last_frame],
                                               exact_colours=exact_colours(self._colours()))
                self._last_frame = None
                self._writer.add(first)
            else:
                self._writer.add(self._frame(self.frames_done))
        except Exception:
            self.abort()
            raise
        self.frames_done += 1
        if self.frames_done >= self.frame_count:
            self._close_picture()
        return self.frames_done >= self.frame_count

    @property
    def progress(self) -> float:
        """The share of the work done: stepping to the end counts as one frame in ten."""
        if self.frames_done >= self.frame_count:
            return 1.0
        if not self._opened:
            return 0.0
        stepped = self._stepped() if self._writer is None else 1.0
        return (0.1 * stepped * self.frame_count + self.frames_done) / (1.1 * self.frame_count)

    def finish(self) -> Path:
        """Encode and write the file."""
        self.encode()
        return self.commit()

    def encode(self) -> None:
        """Encode into the temporary file (no Qt: may run on a worker thread)."""
        if self._writer is None or self.frames_done < self.frame_count:
            raise AnimationError("the animation is not drawn yet")
        self._writer.encode()

    def commit(self) -> Path:
        """Put the encoded file in place (atomically)."""
        assert self._writer is not None
        return self._writer.commit()

    def abort(self) -> None:
        if self._writer is not None:
            self._writer.abort()
        self._close_picture()

    def _close_picture(self) -> None:
        if self._opened:
            self._close()
            self._opened = False

    def run(self, state: ProgressState | None = None) -> Path:
        """Every piece on this thread, then the file; `state` gets progress and may cancel
        (AnimationCancelled, nothing written)."""
        try:
            while not self.work():
                if state is not None:
                    if state.is_interruption_requested():
                        raise AnimationCancelled()
                    state.set_progress(0.95 * self.progress)
            if state is not None and state.is_interruption_requested():
                raise AnimationCancelled()
            done = self.finish()
        except BaseException:
            self.abort()
            raise
        if state is not None:
            state.set_progress(1.0)
        return done


class AnimationExport(FilmExport):
    """The race as a film (RaceAnimation), in pieces (see FilmExport)."""

    def __init__(self, session: Session, path: str | Path, width: int, height: int,
                 plan: AnimationPlan, *, curves: bool = False,
                 view: ViewSettings | None = None) -> None:
        check_plan(session, plan, int(width), int(height), Path(path).suffix)
        super().__init__(path, width, height, plan)
        self.curves = curves
        self.view = view
        self._session = session
        self._animation: RaceAnimation | None = None

    def _open(self) -> None:
        self._animation = RaceAnimation(self._session, self.plan, self.width, self.height,
                                        curves=self.curves, view=self.view)

    def _prepare(self) -> bool:
        assert self._animation is not None
        stepper = self._animation.stepper
        if stepper.frame < self.frame_count - 1:
            stepper.go_to(stepper.frame + 1)
        return stepper.frame >= self.frame_count - 1

    def _stepped(self) -> float:
        assert self._animation is not None
        return self._animation.stepper.frame / self.frame_count

    def _frame(self, k: int) -> np.ndarray:
        assert self._animation is not None
        return self._animation.frame(k)  # the first frame drawn places the legend

    def _colours(self) -> list[str | None]:
        return [run.color for run in self._session.runs]

    def _close(self) -> None:
        if self._animation is not None:
            self._animation.close()
            self._animation = None


def export_race_animation(session: Session, path: str | Path, width: int = DEFAULT_SIZE[0],
                          height: int = DEFAULT_SIZE[1], *, fps: int = DEFAULT_FPS,
                          steps_per_frame: int | None = None, frames: int | None = None,
                          steps: int | None = None, curves: bool = False,
                          state: ProgressState | None = None) -> Path:
    """Write the session's race from its start as an animation (.gif, .mp4, .webp, .apng), on
    this thread; `state` gets progress and may cancel (AnimationCancelled, nothing written).
    See core.animation.plan_animation for steps, frames and steps_per_frame; `curves`: the loss
    curves under the surface."""
    plan = plan_animation(session, fps=fps, steps_per_frame=steps_per_frame, steps=steps,
                          frames=frames)
    return AnimationExport(session, path, width, height, plan, curves=curves).run(state)


class AnimationExportTask(QObject):
    """Runs an AnimationExport from a QTimer, ~25 ms of drawing a tick, then encodes the end
    in a gui.worker Job. Exactly one of sigFinished, sigFailed, sigCancelled ends it.

    Signals
    -------
    sigProgress(float)   a fraction from 0 to 1
    sigEncoding()        every frame is drawn; the file is being encoded (off the GUI thread)
    sigFinished(str)     the file written
    sigFailed(str)       a one-line message; nothing was written
    sigCancelled()       cancel() was called; nothing was written
    """

    sigProgress = Signal(float)
    sigEncoding = Signal()
    sigFinished = Signal(str)
    sigFailed = Signal(str)
    sigCancelled = Signal()

    def __init__(self, export: FilmExport, *, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.export = export
        self._timer = QTimer(self)
        self._timer.setInterval(0)
        self._timer.timeout.connect(self._on_tick)
        self._job: Job | None = None
        self.running = False

    def start(self) -> None:
        self.running = True
        self._timer.start()

    def cancel(self) -> None:
        """Stop now: the timer stops, the encoding's result (if it comes) is dropped, and no file
        is left. sigCancelled follows (at once, or when the encoding has stopped)."""
        if not self.running:
            return
        self._timer.stop()
        if self._job is not None:
            self._job.cancel()  # its sigCancelled ends the task, once the work has returned
            return
        self.export.abort()
        self._end(self.sigCancelled)

    def shutdown(self, timeout_s: float = 3.0) -> None:
        """Cancel and, if the encoding is under way, wait for it (at most `timeout_s`) so that
        its temporary file is removed before the window closes: the app's process ends at once
        after that, with no event loop left to deliver the cancel."""
        job = self._job
        self.cancel()
        if job is not None:
            job.finish(timeout_s)  # delivers sigCancelled now: the temporary file goes

    def _on_tick(self) -> None:
        deadline = time.perf_counter() + TICK_BUDGET_S
        try:
            done = self.export.work()
            while not done and time.perf_counter() < deadline:
                done = self.export.work()
        except Exception as e:
            self._timer.stop()
            self._end(self.sigFailed, str(e).splitlines()[0] if str(e) else type(e).__name__)
            return
        self.sigProgress.emit(0.95 * self.export.progress)
        if done:
            self._timer.stop()
            self._encode()

    def _encode(self) -> None:
        export = self.export

        def encode(state) -> None:  # type: ignore[no-untyped-def]
            if not state.is_interruption_requested():
                export.encode()

        job = self._job = Job(encode, parent=self)
        job.sigFinished.connect(self._on_encoded)
        job.sigFailed.connect(lambda message: self._end(self.sigFailed, message))
        job.sigCancelled.connect(self._on_encode_cancelled)
        job.start()
        self.sigEncoding.emit()

    def _on_encoded(self, _: object) -> None:
        # Renamed into place here, on the GUI thread, only if no cancel came first.
        try:
            path = self.export.commit()
        except AnimationError as e:
            self.export.abort()
            self._end(self.sigFailed, str(e))
            return
        self.sigProgress.emit(1.0)
        self._end(self.sigFinished, str(path))

    def _on_encode_cancelled(self) -> None:
        # The encoding has returned (a Job says so only then): its temporary file goes.
        self.export.abort()
        self._end(self.sigCancelled)

    def _end(self, signal, *args) -> None:  # type: ignore[no-untyped-def]
        self.running = False
        self._job = None
        signal.emit(*args)


class AnimationDialog(QDialog):
    """Size, frames per second, steps per frame, length (steps) and format of an animation.

    It shows the frame count and the film's length as the values change, and what is wrong
    (too big, too many frames) before anything is drawn."""

    def __init__(self, session: Session | ModelSession | BasinFilm, *,
                 size: tuple[int, int] = DEFAULT_SIZE, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Export animation")
        self.session = session
        # Model mode (a ModelSession, e.g. the workspace's controller.to_session()): the film
        # always shows the loss curves beside the data; the race's two options do not apply.
        self.is_model = isinstance(session, ModelSession)
        self.is_basins = isinstance(session, BasinFilm)  # a basin map filling in
        self.selected = selected_index(session, None) if isinstance(session, ModelSession) \
            else None
        self._built: BuiltModelSession | None = None
        form = QFormLayout(self)
        self.format_box = QComboBox()
        for suffix, name in FORMATS.items():
            self.format_box.addItem(f"{name} ({suffix})", suffix)
        self.width_box, self.height_box = QSpinBox(), QSpinBox()
        for box, value in ((self.width_box, size[0]), (self.height_box, size[1])):
            box.setRange(MIN_SIDE, MAX_SIDE)
            box.setSuffix(" px")
            box.setValue(value)
        self.fps_box = QSpinBox()
        self.fps_box.setRange(1, MAX_FPS)
        self.fps_box.setValue(DEFAULT_FPS)
        self.fps_box.setToolTip("GIF plays at most 50 frames per second (20 ms a frame)")
        self.length_box = QSpinBox()
        self.length_box.setRange(1, 1_000_000)
        self.length_box.setValue(default_model_length(session) if isinstance(session, ModelSession)
                                 else session.steps if isinstance(session, BasinFilm)
                                 else default_length(session))
        self.length_box.setSuffix(" steps")
        self.length_box.setToolTip("Every run is replayed from the start for this many steps "
                                   "(fewer if it diverges; disabled runs stay at the start)")
        self.steps_per_frame_box = QSpinBox()
        self.steps_per_frame_box.setRange(1, 1_000_000)
        self.steps_per_frame_box.setValue(max(1, -(-self.length_box.value() // 100)))
        self.curves_box = QCheckBox("Loss and gradient-norm curves under the surface")
        self.view_box = QCheckBox("As the view is now (zoom, equal x/y scale, −∇f arrows)")
        self.view_box.setToolTip("Off: the surface's whole region with the arrows, as "
                                 "'main.py export' draws it")
        self.summary = QLabel()
        self.summary.setObjectName("animationSummary")
        form.addRow("Format", self.format_box)
        form.addRow("Width", self.width_box)
        form.addRow("Height", self.height_box)
        form.addRow("Frames per second", self.fps_box)
        form.addRow("Length", self.length_box)
        form.addRow("Steps per frame", self.steps_per_frame_box)
        form.addRow(self.curves_box)
        form.addRow(self.view_box)
        self.curves_box.setVisible(not (self.is_model or self.is_basins))
        self.view_box.setVisible(not (self.is_model or self.is_basins))
        self.model_note = QLabel()
        self.model_note.setObjectName("animationModelNote")
        self.model_note.setWordWrap(True)
        self.model_note.setVisible(self.is_model or self.is_basins)
        if isinstance(session, BasinFilm):
            self.model_note.setText(f"{session.grid} x {session.grid} starts stepped together; "
                                    f"each frame colours a start by the minimum it is near then")
        if isinstance(session, ModelSession) and self.selected is not None:
            run = session.runs[self.selected]
            self.model_note.setText(f"Every run is replayed from its start; the data shows "
                                    f"{run.label or run.optimizer}'s prediction (the selected "
                                    f"run), the loss curves every run's.")
        form.addRow(self.model_note)
        form.addRow(self.summary)
        self.buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Ok
                                        | QDialogButtonBox.StandardButton.Cancel)
        self.buttons.accepted.connect(self.accept)
        self.buttons.rejected.connect(self.reject)
        form.addRow(self.buttons)
        for box in (self.width_box, self.height_box, self.fps_box, self.length_box,
                    self.steps_per_frame_box):
            box.valueChanged.connect(self._on_value_change)
        self.format_box.currentIndexChanged.connect(self._on_value_change)
        self._on_value_change()

    @property
    def suffix(self) -> str:
        return str(self.format_box.currentData())

    @property
    def chosen_size(self) -> tuple[int, int]:
        return self.width_box.value(), self.height_box.value()

    def plan(self) -> AnimationPlan:
        """The plan the values describe (raises AnimationError for a bad one)."""
        if isinstance(self.session, BasinFilm):
            return plan_basin_animation(self.length_box.value(), fps=self.fps_box.value(),
                                        steps_per_frame=self.steps_per_frame_box.value())
        if isinstance(self.session, ModelSession):
            return plan_model_animation(self.session, ModelAnimationOptions(
                fps=self.fps_box.value(), steps_per_frame=self.steps_per_frame_box.value(),
                steps=self.length_box.value()))
        return plan_animation(self.session, fps=self.fps_box.value(),
                              steps_per_frame=self.steps_per_frame_box.value(),
                              steps=self.length_box.value())

    def problem(self) -> str:
        """What is wrong with the values, in one line ('' when nothing is)."""
        try:
            if isinstance(self.session, BasinFilm):
                plan = self.plan()
                check_basin_work(self.session.grid, plan.last_step)
                check_basin_plan(plan, *self.chosen_size, self.suffix)
            elif isinstance(self.session, ModelSession):
                if self._built is None:  # built once: the checks read its runs and model
                    self._built = self.session.build()
                check_model_plan(self._built, self.plan(), *self.chosen_size, self.suffix)
            else:
                check_plan(self.session, self.plan(), *self.chosen_size, self.suffix)
        except PlaygroundError as e:
            return str(e)
        return ""

    def start_export(self, path: str | Path, *, parent: QWidget,
                     view: ViewSettings | None = None) -> AnimationExportTask:
        """Start the export the values describe into `path` (see start_animation_export)."""
        if isinstance(self.session, BasinFilm):
            from gui.basin_animation import BasinAnimationExport  # (it imports this module)

            replay = self.session.replay(self.plan())
            return run_with_progress(BasinAnimationExport(replay, path, *self.chosen_size),
                                     parent=parent)
        return start_animation_export(self.session, path, *self.chosen_size, self.plan(),
                                      parent=parent, curves=self.curves_box.isChecked(),
                                      view=view, selected=self.selected)

    def _on_value_change(self) -> None:
        problem = self.problem()
        ok = self.buttons.button(QDialogButtonBox.StandardButton.Ok)
        ok.setEnabled(not problem)
        if problem:
            self.summary.setText(problem)
        else:
            plan = self.plan()
            self.summary.setText(f"{plan.frame_count} frames, {plan.seconds:.1f} s")
        self.summary.setWordWrap(True)


def start_animation_export(session: Session | ModelSession, path: str | Path, width: int,
                           height: int, plan: AnimationPlan, *, parent: QWidget,
                           curves: bool = False, view: ViewSettings | None = None,
                           selected: int | None = None) -> AnimationExportTask:
    """Start exporting with a progress dialog (a bar and Cancel) that leaves the window usable;
    returns the task (its signals say how it ended). A Session is the race (`curves`, `view`);
    a ModelSession is model mode (`selected`: the run whose prediction fills the data plot).
    Raises AnimationError before anything is drawn when the export cannot be made."""
    export: FilmExport
    if isinstance(session, ModelSession):
        from gui.model.animation_frames import ModelAnimationExport  # (it imports this module)

        export = ModelAnimationExport(session, path, width, height, plan, selected=selected)
    else:
        export = AnimationExport(session, path, width, height, plan, curves=curves, view=view)
    return run_with_progress(export, parent=parent)


def run_with_progress(export: FilmExport, *, parent: QWidget) -> AnimationExportTask:
    """Run any film's export (the race's, model mode's, a basin map's) from a timer with a
    progress dialog (a bar and Cancel) that leaves the window usable; returns the task."""
    path = export.path
    task = AnimationExportTask(export, parent=parent)
    dialog = QProgressDialog(f"Drawing {Path(path).name}…", "Cancel", 0, 1000, parent)
    dialog.setObjectName("animationProgress")
    dialog.setWindowTitle("Export animation")
    dialog.setWindowModality(Qt.WindowModality.NonModal)
    dialog.setAutoClose(False)
    dialog.setAutoReset(False)
    dialog.setMinimumDuration(0)
    dialog.canceled.connect(task.cancel)
    task.sigProgress.connect(lambda f: dialog.setValue(int(1000 * f)))
    task.sigEncoding.connect(lambda: dialog.setLabelText(f"Encoding {Path(path).name}…"))
    for signal in (task.sigFinished, task.sigFailed, task.sigCancelled):
        signal.connect(dialog.close)
        signal.connect(dialog.deleteLater)
    task.progress_dialog = dialog  # type: ignore[attr-defined]
    dialog.show()
    task.start()
    return task
