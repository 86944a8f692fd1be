"""File > Export > As PyTorch script…: a run (or every run) of the race or of model mode as a
standalone PyTorch script (core.script_export.write_script), written in a gui.worker Job with a
progress dialog and Cancel.

`export_script_dialog(parent, what, selected, ...)` asks which run (ScriptRunDialog: a combo
of "All runs" and each run, the selected one first chosen; not asked when there is one run or
`run_index` is given), then the file (a save dialog, ".py" added, unless `path` is given), checks
that the file can be written (else one message and nothing happens), and starts the job:

- a race `Session`: its runs as a session file holds them (`Session.to_dict`, taken at once on
  the GUI thread) are built and stepped again in the job to the steps they have taken, and the
  script is written from that copy, so the race on screen may keep playing (as the animation
  export does); a saved session replays its runs bit for bit, so the copy is the race on screen;
- a `ModelSession` (the model workspace's `to_session()`): built and trained in the job, in
  chunks that report progress and can stop (gui.model.controller.replay); or, with `built=`
  (runs already trained, e.g. the workspace's), written from those runs directly. Those are the
  live runs: the caller pauses them first, and the progress dialog is window-modal, so nothing
  can restart them before the job ends.

A failure (ExportError, one line) is shown in a message box and changes nothing; the file is
written atomically (core.atomic) as the job's last act, so a cancel or a failure leaves no file,
not even a partial one.

Signals of ScriptExport
-----------------------
sigFinished(str)   the script was written at this path
sigFailed(str)     it was not: the one-line message (shown already)
sigCancelled()     the user cancelled; nothing was written (unless the file was complete already)
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from PySide6.QtCore import QObject, Qt, Signal
from PySide6.QtWidgets import (QComboBox, QDialog, QDialogButtonBox, QFileDialog, QLabel,
                               QMessageBox, QProgressBar, QProgressDialog, QVBoxLayout,
                               QWidget)

from core.errors import PlaygroundError
from core.script_export import check_script_target, write_script
from core.session import Session
from gui.worker import Job, JobState

ALL_RUNS = "All runs"
ASK = "ask"  # export_script_dialog's run_index: show the ScriptRunDialog
REPLAY_CHUNK = 250  # race steps between two progress reports (and cancel checks)
STEPPING_SHARE = 0.8  # of the progress bar: stepping the copy; the rest is writing the script
TITLE = "Export as PyTorch script"


class ScriptExportCancelled(Exception):
    """The user cancelled the export (the job's function stops with it)."""


def run_titles(what: Any, built: Any = None) -> list[str]:
    """The runs of a race Session or a ModelSession as the combo names them."""
    if built is not None:
        return [run.title for run in built.runs]
    if isinstance(what, Session):
        return [run.title for run in what.runs]
    return [spec.label or spec.optimizer for spec in what.runs]


class ScriptRunDialog(QDialog):
    """Which run the script holds: "All runs" or one of them (the selected one at first).

    Public widgets: `combo` (item 0 is "All runs"; item k + 1 is run k), `buttons`."""

    def __init__(self, titles: list[str], selected: int | None = None, *,
                 parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle(TITLE)
        layout = QVBoxLayout(self)
        layout.addWidget(QLabel("The script trains:"))
        self.combo = QComboBox()
        self.combo.addItem(ALL_RUNS)
        self.combo.setItemData(0, "every run, one function each; the script prints them all",
                               Qt.ItemDataRole.ToolTipRole)
        for number, title in enumerate(titles, 1):
            self.combo.addItem(f"Run {number}: {title}")
        if selected is not None and 0 <= selected < len(titles):
            self.combo.setCurrentIndex(selected + 1)
        layout.addWidget(self.combo)
        self.buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Ok
                                        | QDialogButtonBox.StandardButton.Cancel)
        self.buttons.accepted.connect(self.accept)
        self.buttons.rejected.connect(self.reject)
        layout.addWidget(self.buttons)

    def run_index(self) -> int | None:
        """The chosen run, counted from 0; None for all of them."""
        index = self.combo.currentIndex()
        return None if index <= 0 else index - 1


class ScriptExport(QObject):
    """One export under way: its `job`, its `progress_dialog` (window-modal, with
    `progress_bar`), the `path` and the `run_index` (None: all runs). See the module docstring
    for its signals."""

    sigFinished = Signal(str)
    sigFailed = Signal(str)
    sigCancelled = Signal()

    def __init__(self, parent: QWidget | None, what: Any, path: Path, run_index: int | None, *,
                 built: Any = None, eval_every: int = 1) -> None:
        super().__init__(parent)
        self.parent_widget = parent
        self.path = path
        self.run_index = run_index
        self.written = False  # set by the job once the file is complete
        if isinstance(what, Session):
            data = what.to_dict()  # the race as it is now (the runs may keep playing)
            for run, saved in zip(what.runs, data["runs"]):
                saved["steps"] = run.steps  # as far as on screen (a file's count is not there)
            work = lambda state: self._write_race(data, state)  # noqa: E731
        else:
            work = lambda state: self._write_model(what, built, eval_every, state)  # noqa: E731
        self.job = Job(work, parent=self)
        dialog = QProgressDialog(f"Writing {path.name}…", "Cancel", 0, 1000, parent)
        dialog.setObjectName("scriptExportProgress")
        dialog.setWindowTitle(TITLE)
        dialog.setWindowModality(Qt.WindowModality.WindowModal)
        dialog.setAutoClose(False)
        dialog.setAutoReset(False)
        dialog.setMinimumDuration(0)
        # Its own bar, set directly: a modal QProgressDialog's setValue() runs the event loop,
        # which could deliver the job's end, and delete the dialog, inside that very call.
        self.progress_bar = QProgressBar()
        self.progress_bar.setRange(0, 1000)
        dialog.setBar(self.progress_bar)
        dialog.canceled.connect(self.cancel)
        self.progress_dialog = dialog
        self.job.sigProgress.connect(self._on_progress)
        self.job.sigFinished.connect(self._on_finished)
        self.job.sigFailed.connect(self._on_failed)
        self.job.sigCancelled.connect(self._on_cancelled)

    def start(self) -> None:
        self.progress_dialog.show()
        self.job.start()

    def cancel(self) -> None:
        self.job.cancel()

    # --- on the job's thread: plain functions of their inputs --------------------------------

    def _write_race(self, data: dict[str, Any], state: JobState) -> str:
        copy = Session.from_dict(data)
        wanted = [(run, copy.steps_for(run)) for run in copy.runs if run.enabled]
        total, done = max(1, sum(steps for _, steps in wanted)), 0
        for run, steps in wanted:
            while run.steps < steps:
                taken = run.step(min(REPLAY_CHUNK, steps - run.steps))
                done += taken
                self._check(state, STEPPING_SHARE * done / total)
                if not taken:  # diverged: it stops where the race on screen stopped
                    break
        return self._write(copy, None, 1, state)

    def _write_model(self, session: Any, built: Any, eval_every: int, state: JobState) -> str:
        if built is None:
            from gui.model.controller import ReplayCancelled, replay

            built = session.build()
            steps = [spec.steps for spec in session.runs]
            fraction = _ScaledState(state, STEPPING_SHARE)
            try:
                replay(built, steps, eval_every, fraction)
            except ReplayCancelled:
                raise ScriptExportCancelled() from None
        return self._write(session, built, eval_every, state)

    def _write(self, what: Any, built: Any, eval_every: int, state: JobState) -> str:
        self._check(state, STEPPING_SHARE)
        kwargs = {} if isinstance(what, Session) else {"built": built, "eval_every": eval_every}
        # the text is made first and written at once: cancelled before, nothing is written
        write_script(what, self.path, self.run_index, **kwargs)
        self.written = True
        state.set_progress(1.0)
        return str(self.path)

    @staticmethod
    def _check(state: JobState, fraction: float) -> None:
        if state.is_interruption_requested():
            raise ScriptExportCancelled()
        state.set_progress(fraction)

    # --- back on the GUI thread -----------------------------------------------------------------

    def _on_progress(self, fraction: float) -> None:
        self.progress_bar.setValue(int(1000 * fraction))

    def _close_dialog(self) -> None:
        self.progress_dialog.close()
        self.progress_dialog.deleteLater()

    def _on_finished(self, path: str) -> None:
        self._close_dialog()
        _show_status(self.parent_widget, f"Wrote {path}")
        self.sigFinished.emit(path)

    def _on_failed(self, message: str) -> None:
        self._close_dialog()
        _show_error(self.parent_widget, f"Could not export the script.\n\n{message}")
        self.sigFailed.emit(message)

    def _on_cancelled(self) -> None:
        self._close_dialog()
        _show_status(self.parent_widget,
                     f"Wrote {self.path} (the cancel came once it was complete)" if self.written
                     else "Script export cancelled; nothing was written")
        self.sigCancelled.emit()


class _ScaledState:
    """A JobState whose progress fills only the first `share` of the bar."""

    def __init__(self, state: JobState, share: float) -> None:
        self._state = state
        self._share = share

    def set_progress(self, fraction: float) -> None:
        self._state.set_progress(self._share * fraction)

    def is_interruption_requested(self) -> bool:
        return self._state.is_interruption_requested()


def export_script_dialog(parent: QWidget | None, what: Any, selected: int | None = None, *,
                         run_index: int | None | str = ASK, built: Any = None,
                         path: str | Path | None = None, directory: str = "",
                         eval_every: int = 1) -> ScriptExport | None:
    """File > Export > As PyTorch script… for `what` (a race Session or a ModelSession).

    `selected`: the selected run's index (preselected in the run choice); `run_index`: the run
    to write (None: all), or "ask" for the ScriptRunDialog (not shown for a single run);
    `built`: model mode's runs trained already (see the module docstring); `path`: the file
    (else asked, in `directory`; ".py" added). Returns the export under way, or None when
    nothing was started (the user cancelled a dialog, or the file cannot be written: said in a
    message box)."""
    titles = run_titles(what, built)
    if run_index == ASK:
        if len(titles) == 1:
            run_index = 0
        elif not titles:
            run_index = None
        else:
            dialog = ScriptRunDialog(titles, selected, parent=parent)
            if dialog.exec() != QDialog.DialogCode.Accepted:
                return None
            run_index = dialog.run_index()
    if path is None:
        chosen, _ = QFileDialog.getSaveFileName(parent, TITLE, directory,
                                                "PyTorch script (*.py)")
        if not chosen:
            return None
        path = chosen if chosen.lower().endswith(".py") else f"{chosen}.py"
    path = Path(path)
    try:
        check_script_target(path)
    except PlaygroundError as e:
        _show_error(parent, f"Could not export the script.\n\n{e}")
        return None
    export = ScriptExport(parent, what, path, run_index,  # type: ignore[arg-type]
                          built=built, eval_every=eval_every)
    export.start()
    return export


def _show_error(parent: QWidget | None, message: str) -> None:
    """The main window's own error box when there is one, else a window-modal message box
    that does not block (tests and the race's timer keep running)."""
    show = getattr(parent, "show_error", None)
    if callable(show):
        show(message)
        return
    box = QMessageBox(QMessageBox.Icon.Warning, TITLE, message, QMessageBox.StandardButton.Ok,
                      parent)
    box.setObjectName("scriptExportError")
    box.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
    box.open()


def _show_status(parent: QWidget | None, message: str) -> None:
    show = getattr(parent, "show_status", None)
    if callable(show):
        show(message)


__all__ = ["ScriptExport", "ScriptRunDialog", "export_script_dialog", "run_titles"]
