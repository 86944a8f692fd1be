"""What the three autograd-graph views share: the race's GraphPanel (gui/graph_panel.py), the
model workspace's ModelGraphPanel (gui/model/graph_panel.py) and the lab's LabGraphTab
(gui/lab/graph_tab.py).

GraphPane: a GraphView without scroll bars (dragging pans) fitted to its pane as the pane
resizes until the user pans or zooms, with a label in its place when there is nothing to draw;
backward step by step over the drawn graph's backward_order; PNG / SVG export of the graph
drawn (render_graph, the file name asked with ask_export_path).

LiveGraphPane: a GraphPane following a controller's selected run (the race's and the model's):
rebuilt at most REFRESH_HZ times a second while the runs step, only while on screen and not
while the user steps through backward; one build job at a time (gui.worker.Job), a refresh asked
for meanwhile folded into one that starts when it ends, "laying out the graph…" said only when a
build takes longer than BUSY_DELAY_MS.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from pathlib import Path
from typing import Any

from PySide6.QtCore import QEvent, QObject, Qt, QTimer
from PySide6.QtGui import QHideEvent
from PySide6.QtWidgets import QAbstractButton, QFileDialog, QLabel, QStackedWidget, QWidget

from core.errors import ExportError
from core.graph import GraphLayout
from gui.graph_view import GraphView, render_graph
from gui.throttle import Throttle
from gui.worker import Job

REFRESH_HZ = 4  # live rebuilds of the graph per second, at most
BUSY_DELAY_MS = 100  # a graph still being built after this long says so
BUSY_TEXT = "laying out the graph…"
ERROR_STYLE = "color: #c0392b;"
NOTE_STYLE = "color: #555;"
NOTHING_DRAWN = "Nothing to export: no graph is drawn."


def ask_export_path(parent: QWidget, fmt: str, name: str = "autograd_graph") -> Path | None:
    """The file a graph is exported to, asked with a save dialog: `fmt` ("png" or "svg") is
    added when the name lacks it. None when the user cancels. (The race's panel, the lab's graph
    tab and the model's graph panel share it, and render_graph.)"""
    path, _ = QFileDialog.getSaveFileName(parent, f"Export the graph as {fmt.upper()}",
                                          f"{name}.{fmt}", f"{fmt.upper()} (*.{fmt})")
    if not path:
        return None
    return Path(path if Path(path).suffix.lower() == "." + fmt else path + "." + fmt)


def fix_width(button: QAbstractButton, texts: tuple[str, ...] = (), extra: int = 18) -> None:
    """Fix the button's width to its widest text (`texts`, or the one it has) plus `extra` px,
    so that it never moves the buttons beside it as its text changes."""
    metrics = button.fontMetrics()
    button.setFixedWidth(max(metrics.horizontalAdvance(t) for t in texts or (button.text(),))
                         + extra)


def busy_label() -> QLabel:
    """The "laying out the graph…" note: always there, with room for its text, so that it
    never moves what is beside it."""
    label = QLabel()
    label.setStyleSheet(NOTE_STYLE)
    label.setFixedWidth(label.fontMetrics().horizontalAdvance(BUSY_TEXT) + 12)
    return label


def export_message_label() -> QLabel:
    """One line for the outcome of an export (an error stays until the next), hidden at first."""
    label = QLabel()
    label.setWordWrap(True)
    label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
    label.hide()
    return label


def step_title(k: int, order: list[str], node: Any) -> str:
    """"3 of 7: mul (MulBackward0)": the node at step k of backward's order."""
    return f"{k + 1} of {len(order)}: {node.label} ({node.torch_name or node.kind})"


class GraphPane(QWidget):
    """The graph view, the label shown instead of it, stepping through backward and export.

    A subclass says which graph is drawn (`drawn_graph`, None when nothing is or the graph is
    too big to draw), keeps `_layout` the layout drawn, and writes `_update_step_controls`; it
    builds `message` (the export's outcome) and, when it has one, `reset_button`.
    """

    NOTHING_TO_EXPORT = NOTHING_DRAWN
    message: QLabel
    reset_button: QAbstractButton

    def __init__(self, *, parent: QWidget | None = None, orientation: str = "horizontal",
                 empty_text: str = "") -> None:
        super().__init__(parent)
        self.step: int | None = None  # the index into backward_order highlighted, or None
        self._key: tuple[Any, ...] | None = None  # structure_key of the graph drawn
        self._layout: GraphLayout | None = None  # the layout drawn (for exports)
        self._job: Job | None = None  # the graph job running, if any
        self._auto_fit = True  # refit on resize until the user pans or zooms
        self.view = GraphView(orientation=orientation)
        # Scroll bars hidden (dragging still pans): the fitted graph gets every pixel.
        self.view.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.view.setVerticalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.view.viewport().installEventFilter(self)
        self.empty_label = QLabel(empty_text)
        self.empty_label.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.empty_label.setWordWrap(True)
        self.empty_label.setStyleSheet(NOTE_STYLE)
        self.stack = QStackedWidget()
        self.stack.addWidget(self.view)
        self.stack.addWidget(self.empty_label)

    @property
    def busy(self) -> bool:
        """A graph is being built in the background."""
        return self._job is not None

    @property
    def drawn_graph(self) -> Any:
        """The graph drawn (None: nothing is, or it is too big to draw)."""
        raise NotImplementedError

    # --- fitting ------------------------------------------------------------------------------

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:
        """Keep the whole graph in view as the pane resizes, until the user pans or zooms."""
        if watched is self.view.viewport():
            kind = event.type()
            if kind == QEvent.Type.Resize and self._auto_fit:  # the viewport's: its new size
                self.fit()
            elif kind in (QEvent.Type.Wheel, QEvent.Type.MouseButtonPress):
                self._auto_fit = False
        return super().eventFilter(watched, event)

    def fit(self) -> None:
        """The whole graph in view."""
        self.view.fit()

    def _on_fit_clicked(self) -> None:
        """The Fit button: the whole graph, and refitted as the pane resizes."""
        self._auto_fit = True
        self.view.fit()

    # --- backward, step by step ---------------------------------------------------------------

    @property
    def backward_order(self) -> list[str]:
        """The nodes in the order backward ran them ([] when nothing is drawn)."""
        graph = self.drawn_graph
        return [] if graph is None else graph.backward_order

    def show_step(self, k: int | None) -> str | None:
        """Highlight backward at its k-th node (None: stop stepping); returns that node's id."""
        order = self.backward_order
        if k is not None:
            k = None if not order else max(0, min(k, len(order) - 1))
        was_stepping = self.step is not None
        self.step = k
        current = self.view.highlight_step(k)
        self._update_step_controls()
        if k is None:
            self._on_steps_reset(was_stepping)
        return current

    def next_step(self) -> str | None:
        """Start stepping through backward, or go on to the next node."""
        return self.show_step(0 if self.step is None else self.step + 1)

    def reset_steps(self) -> None:
        self.show_step(None)

    def _on_steps_reset(self, was_stepping: bool) -> None:
        """Stepping stopped (show_step(None))."""

    def _stop_stepping(self) -> None:
        """Forget the walk without refreshing (the caller redraws)."""
        if self.step is not None:
            self.step = None
            self.view.highlight_step(None)
        self._update_step_controls()

    def _show_step_buttons(self, step_button: QAbstractButton, start_text: str,
                           next_text: str) -> None:
        """The step button's text and whether it and Reset can be pressed, at `step`."""
        order, k = self.backward_order, self.step
        step_button.setText(start_text if k is None else next_text)
        step_button.setEnabled(bool(order) and (k is None or k < len(order) - 1))
        self.reset_button.setEnabled(k is not None)

    def _update_step_controls(self) -> None:
        raise NotImplementedError

    # --- export -------------------------------------------------------------------------------

    def export_dialog(self, fmt: str) -> bool:
        """Ask for a file name, then export the graph as `fmt` ("png" or "svg")."""
        if self.drawn_graph is None:
            self._show_export_message(self.NOTHING_TO_EXPORT, error=True)
            return False
        path = ask_export_path(self, fmt)
        return False if path is None else self.export_graph(path)

    def export_graph(self, path: str | Path, size: tuple[int, int] | None = None) -> bool:
        """Write the graph drawn, as on screen, to a .png or .svg file (`size`: (width, height)
        in pixels, the graph fitted in it); on failure the pane says why and nothing else
        changes. Returns whether the file was written."""
        graph = self.drawn_graph
        if graph is None:
            self._show_export_message(self.NOTHING_TO_EXPORT, error=True)
            return False
        try:
            out = render_graph(graph, path, orientation=self.view.orientation,
                               layout=self._layout, size=size)
        except ExportError as e:
            self._show_export_message(f"Export failed: {e}", error=True)
            return False
        self._show_export_message(f"Wrote {out}", error=False)
        return True

    def _show_export_message(self, text: str, error: bool) -> None:
        self.message.setStyleSheet(ERROR_STYLE if error else NOTE_STYLE)
        self.message.setText(text)
        self.message.show()


class LiveGraphPane(GraphPane):
    """A GraphPane for a controller's selected run, rebuilt as the run steps (see the module).

    A subclass writes `refresh` (which calls `_throttle.drawn()` and starts a build with
    `_start_job`), `_wanted(request)`, `_show_work(request, work)`, `_on_failed(request,
    message)` and `_on_runs_change`; `_generation` is bumped whenever what the graph depends on
    changes but a step, which drops any result on its way.
    """

    busy_label: QLabel

    def __init__(self, controller: Any, *, parent: QWidget | None = None,
                 orientation: str = "horizontal", empty_text: str = "") -> None:
        super().__init__(parent=parent, orientation=orientation, empty_text=empty_text)
        self.controller = controller
        self._dirty = True  # the run moved (or changed) since the last refresh
        self._again = False  # a refresh was asked for while the job ran
        self._generation = 0  # bumped whenever what the graph depends on changes, but a step
        self._serial = 0  # of the last request
        self._throttle = Throttle(self.refresh, REFRESH_HZ, self)
        self._busy_timer = QTimer(self)
        self._busy_timer.setSingleShot(True)
        self._busy_timer.setInterval(BUSY_DELAY_MS)
        self._busy_timer.timeout.connect(self._on_busy_timeout)
        controller.sigStepped.connect(self._on_stepped_change)
        controller.sigSelectionChanged.connect(self._on_selection_change)
        controller.sigRunChanged.connect(self._on_run_change)
        controller.sigRunsChanged.connect(self._on_runs_change)

    def refresh(self) -> None:
        raise NotImplementedError

    # --- controller -> pane -------------------------------------------------------------------

    def _on_stepped_change(self) -> None:
        """Rebuild now if the last rebuild is old enough, otherwise once the interval is up;
        hidden or stepping through backward: only note that the graph is out of date."""
        self._dirty = True
        if self.step is None and not self._waits_for_pause():
            self._throttle.request()  # at most REFRESH_HZ a second; remembered while hidden

    def _waits_for_pause(self) -> bool:
        """Whether live rebuilds wait until the runs pause."""
        return False

    def _on_selection_change(self, run: Any) -> None:
        self._rebuild()

    def _on_run_change(self, run: Any) -> None:
        if run is self.controller.selected:  # a freeze, a new colour or label, a new lr
            self._rebuild()

    def _on_runs_change(self) -> None:
        raise NotImplementedError

    def _rebuild(self) -> None:
        """Something other than a step changed: drop the backward walk, and any graph on its way
        for the old context, and redraw (if shown)."""
        self._generation += 1
        if self._job is not None:
            self._job.cancel()
        self._dirty = True
        self._stop_stepping()
        if self.isVisible():
            self.refresh()

    def _on_steps_reset(self, was_stepping: bool) -> None:
        if was_stepping and self._dirty and self.isVisible():
            self.refresh()  # catch up with the steps taken meanwhile

    def hideEvent(self, event: QHideEvent) -> None:
        super().hideEvent(event)
        self._throttle.cancel()  # hidden: no rebuilds (the throttle catches up on show)

    def closeEvent(self, event: Any) -> None:
        self.shutdown()
        super().closeEvent(event)

    def shutdown(self) -> None:
        """Stop the timers and ask the build job to stop (its result is dropped)."""
        self._throttle.cancel()
        self._busy_timer.stop()
        if self._job is not None:
            self._job.cancel()

    # --- the build job ------------------------------------------------------------------------

    def _start_job(self, work: Callable[..., Any], request: Any) -> None:
        """Run work(state) in a worker; its result goes to _on_done(request, result)."""
        job = Job(work, parent=self)
        job.sigFinished.connect(functools.partial(self._on_done, request))
        job.sigFailed.connect(functools.partial(self._on_failed, request))
        job.sigCancelled.connect(self._on_job_end)
        self._job = job
        self._busy_timer.start()  # said only if it takes a while: no flicker at 4 Hz
        job.start()

    def _wanted(self, request: Any) -> bool:
        raise NotImplementedError

    def _show_work(self, request: Any, work: Any) -> None:
        raise NotImplementedError

    def _on_failed(self, request: Any, message: str) -> None:
        raise NotImplementedError

    def _on_done(self, request: Any, work: Any) -> None:
        if work is not None and self._wanted(request):
            self._show_work(request, work)
        elif self.step is not None:
            self._dirty = True  # dropped while stepping: caught up on Reset
        self._on_job_end()

    def _on_busy_timeout(self) -> None:
        if self._job is not None:
            self.busy_label.setText(BUSY_TEXT)

    def _idle_note(self) -> str:
        """What the busy label says when no graph is being built."""
        return ""

    def _on_job_end(self) -> None:
        self._job = None
        self._busy_timer.stop()
        self.busy_label.setText(self._idle_note())
        if self._again:
            self._again = False
            if self.isVisible() and self.step is None:
                self.refresh()
            else:
                self._dirty = True
