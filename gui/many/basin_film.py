"""The Basins tab's film: the basin map filling in as the starts are stepped, written as GIF, MP4,
WebP or APNG without blocking the window.

Two stages, one task:
1. the stepping (core.basin_animation.BasinReplay.step_all: both passes over the grid, a batch
   of up to 256 x 256 starts) in a gui.worker Job, on one torch thread, with progress and cancel;
2. the drawing and encoding: gui.basin_animation.BasinAnimationExport, whose stepping is then
   already done, run by gui.animation_export.AnimationExportTask (one frame's picture per timer
   piece on the GUI thread, which pyqtgraph needs, then the encoding in a Job).

The frames are drawn from the same replay the headless path (`main.py basins --out film.gif`,
gui.basin_animation.write_basin_film) makes, so the window's film equals the command line's.
Nothing is written until the encoded file is renamed into place (core.atomic): a failed or
cancelled film leaves no file.

Signals (BasinFilmTask)
-----------------------
sigProgress(float)   a fraction from 0 to 1 (the stepping is the first half)
sigFinished(str)     the file written
sigFailed(str)       one line; nothing was written
sigCancelled()       cancel() was called; nothing was written
"""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import QObject, Signal
from PySide6.QtWidgets import QHBoxLayout, QLabel, QProgressBar, QPushButton, QWidget

from core.animation import AnimationPlan
from core.basin_animation import BasinFilm
from core.batch import one_torch_thread
from gui.animation_export import AnimationExportTask
from gui.worker import Job, JobState

STEPPING_SHARE = 0.5  # of the progress bar


class BasinFilmTask(QObject):
    """One basin film: the stepping in a Job, then the drawing and encoding (see the module).

    Every bound (grid, steps, frames, size, format, a writable folder) is checked when it is
    made, before any work: AnimationError / BatchError with one line."""

    sigProgress = Signal(float)
    sigFinished = Signal(str)
    sigFailed = Signal(str)
    sigCancelled = Signal()

    def __init__(self, film: BasinFilm, plan: AnimationPlan, path: str | Path,
                 size: tuple[int, int], *, parent: QObject | None = None) -> None:
        # (imported here: gui.basin_animation takes its colours from gui.many.basins_view, which
        # imports this module)
        from gui.basin_animation import BasinAnimationExport

        super().__init__(parent)
        self.film = film
        self.path = Path(path)
        self.replay = film.replay(plan)
        self.export = BasinAnimationExport(self.replay, self.path, *size)
        self.job: Job | None = None
        self.drawing: AnimationExportTask | None = None
        self.running = False

    def start(self) -> None:
        replay = self.replay

        def step(state: JobState) -> None:
            with one_torch_thread():
                replay.step_all(state)

        job = self.job = Job(step, parent=self)
        job.sigProgress.connect(lambda f: self.sigProgress.emit(STEPPING_SHARE * f))
        job.sigFinished.connect(lambda _: self._on_stepped())
        job.sigFailed.connect(lambda message: self._end(self.sigFailed, message))
        job.sigCancelled.connect(lambda: self._end(self.sigCancelled))
        self.running = True
        job.start()

    @property
    def stage(self) -> str:
        """"stepping", "drawing" or "" (not running)."""
        if not self.running:
            return ""
        return "drawing" if self.drawing is not None else "stepping"

    def cancel(self) -> None:
        """Stop now; nothing is written. sigCancelled follows (at once while drawing, once the
        stepping has stopped while stepping)."""
        if not self.running:
            return
        if self.drawing is not None:
            self.drawing.cancel()
        elif self.job is not None:
            self.job.cancel()

    def shutdown(self, timeout_s: float = 3.0) -> None:
        """Cancel and wait for the work to return (the window is closing)."""
        job, drawing = self.job, self.drawing
        self.cancel()
        if drawing is not None:
            drawing.shutdown(timeout_s)
        elif job is not None:
            job.finish(timeout_s)

    def _on_stepped(self) -> None:
        self.job = None
        drawing = self.drawing = AnimationExportTask(self.export, parent=self)
        drawing.sigProgress.connect(
            lambda f: self.sigProgress.emit(STEPPING_SHARE + (1 - STEPPING_SHARE) * f))
        drawing.sigFinished.connect(lambda path: self._end(self.sigFinished, path))
        drawing.sigFailed.connect(lambda message: self._end(self.sigFailed, message))
        drawing.sigCancelled.connect(lambda: self._end(self.sigCancelled))
        drawing.start()

    def _end(self, signal, *args) -> None:  # type: ignore[no-untyped-def]
        if not self.running:
            return
        self.running = False
        self.export.abort()  # (after a commit there is nothing left to remove)
        self.job = None
        self.drawing = None
        signal.emit(*args)


class FilmProgress(QWidget):
    """A label, a bar and Cancel for the film being made; hidden when there is none."""

    def __init__(self, *, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.label = QLabel()
        self.bar = QProgressBar()
        self.bar.setRange(0, 1000)
        self.bar.setMaximumWidth(160)
        self.bar.setTextVisible(False)
        self.cancel_button = QPushButton("Cancel film")
        layout = QHBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.label)
        layout.addWidget(self.bar)
        layout.addWidget(self.cancel_button)
        self.task: BasinFilmTask | None = None
        self.cancel_button.clicked.connect(self._on_cancel_click)
        self.hide()

    def attach(self, task: BasinFilmTask) -> None:
        self.task = task
        self.label.setText(f"Film {task.path.name}…")
        self.bar.setValue(0)
        task.sigProgress.connect(lambda f: self.bar.setValue(int(1000 * f)))
        for signal in (task.sigFinished, task.sigFailed, task.sigCancelled):
            signal.connect(self._on_end)
        self.show()

    def _on_cancel_click(self) -> None:
        if self.task is not None:
            self.task.cancel()

    def _on_end(self, *_: object) -> None:
        self.task = None
        self.hide()
