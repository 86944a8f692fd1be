"""The computational-graph panel: for the selected run at its current point, the autograd graph
torch recorded for the loss and what loss.backward() sends along it, with the numbers.

Left, the graph (gui.graph_view.GraphView). Right, a column of sections:
- "Backward, step by step": highlight the nodes in the order backward visited them, one
  vector-Jacobian product at a time, with the chain rule written out for the current node.
- "At this point": the gradient (the 1x2 Jacobian of the loss), the Hessian, its eigenvalues and
  condition number, and the shape they describe (bowl, valley, saddle, ...).
- "torch.no_grad()": why the surface picture is computed without gradient tracking, and what
  tracking would cost there (time and memory, measured in the background with a progress bar
  and Cancel, on demand and once per surface; worded from the memory, the reliable figure).

Stepping can run at thousands of steps per second: the graph is rebuilt at most REFRESH_HZ times
a second (a pending single-shot timer makes sure the last step is always shown), only while the
panel is visible, and not while the user steps through backward. (That, the view's fitting,
stepping and export are gui.graph_panel_base.LiveGraphPane's, shared with the model workspace's
graph panel.)

Nothing slow runs on the GUI thread: extraction, analysis and layout run in a worker
(compute_graph_work, a plain function), whose results are dropped when they arrive for a run,
surface or freeze no longer shown. A graph of more than MAX_DRAWN_NODES nodes is only counted
(core.graph.graph_size) and the panel says it is too big to draw; a drawn graph of more than
LIVE_MAX_NODES waits for the race to pause. Python threads share one GIL, so a worker keeps the
window painting but still slows the GUI thread's own torch calls: bounding the work is what
keeps the window responsive, the worker is what keeps it from freezing outright.
"""

from __future__ import annotations

import functools
import html
import inspect
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from PySide6.QtCore import QSignalBlocker, Qt, QTimer
from PySide6.QtGui import QColor, QFont, QFontDatabase, QHideEvent, QShowEvent
from PySide6.QtWidgets import (
    QFrame,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QScrollArea,
    QSizePolicy,
    QSplitter,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from core.analysis import LocalAnalysis, grid_timing, local_analysis
from core.graph import (AutogradGraph, GraphLayout, GraphSize, LossFn, build_graph,
                        compute_layout, graph_size, structure_key)
from core.run import Run
from core.surfaces import Surface
from gui.controller import Controller
from gui.graph_panel_base import (BUSY_DELAY_MS, BUSY_TEXT, REFRESH_HZ,  # noqa: F401
                                  ask_export_path)  # (were defined here: still importable)
from gui.graph_panel_base import (ERROR_STYLE, NOTE_STYLE, LiveGraphPane, busy_label,
                                  export_message_label, step_title)
from gui.worker import Job, JobProgress, JobState

AUTOPLAY_MS = 900  # one backward node per this many ms when "Play" is on
GRID_N = 300  # the no_grad readout times a grid as fine as the surface picture's
LAZY_MEASURE_MS = 150  # after the panel is shown, before timing the grid
HESSIAN_LINE = 40  # characters: longer, and the eigenvalues go under the matrix
SIDE_WIDTH = 380  # px: the side column's widest text (the timing table) and a scroll bar
# The most nodes the panel draws: the drawing (boxes, arrows through every layer they cross) is
# built and painted on the GUI thread, and past this it takes more than a few frames.
MAX_DRAWN_NODES = 300
# While the race plays, a drawn graph with more nodes than this is brought up to date when it
# pauses, not 4 times a second: its extraction (~0.1 ms a node) would take the GIL from the GUI
# thread's own stepping, which waits for it at every torch call (a worker does not help there).
LIVE_MAX_NODES = 100
BIG_WHILE_PLAYING = "a big graph: brought up to date when the race pauses"

NO_RUN = "No run selected: select a run to see the autograd graph of its loss."
STEP_HINT = ("Follow loss.backward() node by node: each node multiplies the gradient that "
             "reached it (upstream) by its local derivatives and sends the products on to its "
             "inputs. Live updates pause while you step.")
PAUSED = "Live updates paused while stepping: Reset resumes them."
NO_GRAD_NOTE = ("The surface picture is computed under torch.no_grad(): gradient tracking off, "
                "so autograd records no graph and keeps no tensors for a backward pass the "
                "picture never needs. The same grid with tracking on:")


def too_big_text(nodes: int) -> str:
    """What the panel says instead of drawing a graph with more than MAX_DRAWN_NODES nodes."""
    return (f"This graph has {nodes} nodes (ops and leaves); the panel draws at most "
            f"{MAX_DRAWN_NODES}: a drawing "
            "that big takes the window seconds to lay out and is unreadable anyway. The gradient "
            "and the Hessian are on the right; `main.py graph --formula ... --json` lists every "
            "node. A shorter formula, or a frozen coordinate, gives a smaller graph.")


@dataclass
class GraphWork:
    """What the panel shows for one run at one point, computed off the GUI thread.

    `graph` is None when the graph is too big to draw (`too_big`): then only its `size` (with
    the loss and the gradient) was found, not extracted. `layout` is None then too, or when the
    structure is the one already drawn (`known_key` of compute_graph_work): only texts change.
    """

    graph: AutogradGraph | None
    size: GraphSize
    analysis: LocalAnalysis
    key: tuple[Any, ...] | None
    layout: GraphLayout | None
    too_big: bool


def compute_graph_work(fn: LossFn, x: float, y: float, frozen: frozenset[str],
                       known_key: tuple[Any, ...] | None = None,
                       state: JobState | None = None) -> GraphWork | None:
    """Extract the autograd graph at (x, y), analyse the point and lay the graph out (unless it
    is too big to draw or has the structure `known_key`). A plain function for a worker: it
    stops early (returns None) once `state` asks it to."""
    def cancelled() -> bool:
        return state is not None and state.is_interruption_requested()

    size = graph_size(fn, x, y, frozen)  # cheap: decides whether to extract at all
    analysis = local_analysis(fn, x, y)
    if size.nodes > MAX_DRAWN_NODES:
        return GraphWork(None, size, analysis, None, None, True)
    if cancelled():
        return None
    graph = build_graph(fn, x, y, frozen)
    key = structure_key(graph)
    if cancelled():
        return None
    layout = compute_layout(graph) if key != known_key else None
    return GraphWork(graph, size, analysis, key, layout, False)


@dataclass
class _Request:
    """What a graph job was asked for: a result is shown only if it is still what is wanted."""

    serial: int  # increases with every request: an older result never replaces a newer one
    generation: int  # the panel's context (run, surface, freeze, ...) when it was asked
    run: Run
    point: tuple[float, float]
    step: int | None  # the run's step at that point (None for an empty record)


def time_grid(surface: Surface, n: int, state: JobState | None = None) -> dict[str, Any]:
    """core.analysis.grid_timing for a worker: passes the cancel/progress state on when the
    function takes one."""
    if state is not None and "state" in inspect.signature(grid_timing).parameters:
        return grid_timing(surface, n, state=state)  # type: ignore[call-arg]
    return grid_timing(surface, n)


def _fmt(v: float | None, digits: int = 4) -> str:
    if v is None:
        return "–"
    return f"{v:.{digits}g}"


def _bytes(n: float) -> str:
    for unit, size in (("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if n >= size:
            return f"{n / size:.3g} {unit}"
    return f"{n:.0f} B"


def _readable(color: str | None) -> str:
    """The run's colour, darkened where it would be unreadable on a light background."""
    c = QColor(color or "#000000")
    return (c.darker(170) if c.lightnessF() > 0.6 else c).name()


def gradient_text(graph: AutogradGraph | GraphSize, frozen: frozenset[str]) -> str:
    """The gradient as the real backward delivered it; a frozen coordinate has none."""
    lines = ["gradient ∇loss (the 1×2 Jacobian)"]
    for name, g in zip(("x", "y"), graph.gradient):
        value = "frozen: no gradient" if name in frozen or g is None else _fmt(g, 6)
        lines.append(f"  ∂loss/∂{name} = {value}")
    return "\n".join(lines)


def hessian_text(a: LocalAnalysis) -> str:
    """The 2x2 Hessian in aligned columns, its eigenvalues and condition number beside it (or
    below it, when the numbers are long)."""
    cells = [[_fmt(v, 5) for v in row] for row in a.hessian]
    width = max(len(c) for row in cells for c in row)
    rows = [" ".join(c.rjust(width) for c in row) for row in cells]
    condition = "∞" if math.isinf(a.condition) else _fmt(a.condition)
    eigen = f"eigenvalues {_fmt(a.eigenvalues[0])}, {_fmt(a.eigenvalues[1])}"
    title = "Hessian H (the Jacobian of ∇loss)"
    if len(rows[0]) + len(eigen) <= HESSIAN_LINE:
        return "\n".join([title, f"  ⎡ {rows[0]} ⎤  {eigen}",
                           f"  ⎣ {rows[1]} ⎦  condition   {condition}"])
    return "\n".join([title, f"  ⎡ {rows[0]} ⎤", f"  ⎣ {rows[1]} ⎦", f"  {eigen}",
                       f"  condition   {condition}"])


def shape_html(a: LocalAnalysis, frozen: frozenset[str]) -> str:
    """What the curvature means here, and which part of it a frozen run still feels."""
    text = f"<b>{a.kind}</b>: {html.escape(a.meaning)}."
    moving = [c for c in ("x", "y") if c not in frozen]
    if len(moving) == 1:
        i = 0 if moving[0] == "x" else 1
        other = "y" if moving[0] == "x" else "x"
        text += (f"<br>{other} is frozen: the optimizer moves along {moving[0]} only, where the "
                 f"curvature is H[{moving[0]},{moving[0]}] = {_fmt(a.hessian[i][i])}.")
    elif not moving:
        text += "<br>x and y are frozen: nothing moves."
    return text


def timing_text(t: dict[str, Any], surface_title: str) -> str:
    """The no_grad / grad readout of core.analysis.grid_timing, as a small table: the memory
    (exact) and the median times (noisy; their spread beside them when it is known)."""
    n = int(t["n"])

    def ms(prefix: str) -> str:
        spread = t.get(f"{prefix}_ms_spread")
        text = f"{t[f'{prefix}_ms']:.3g} ms"
        return text if spread is None else f"{text} ±{spread / 2:.1g}"

    return "\n".join([
        f"{n}×{n} grid of {surface_title}",
        f"{'':<21}{'memory':>9}  time (median)",
        f"{'torch.no_grad()':<21}{_bytes(t['no_grad_bytes']):>9}  {ms('no_grad')}",
        f"{'gradient tracking on':<21}{_bytes(t['grad_bytes']):>9}  {ms('grad')}",
        f"(autograd saved {_bytes(t['grad_saved_bytes'])} for a backward pass)",
    ])


def timing_conclusion(t: dict[str, Any]) -> str:
    """What the figures say, led by the memory (the reliable part): core.analysis's own
    conclusion when it gives one, else the ratios."""
    conclusion = t.get("conclusion")
    if isinstance(conclusion, str) and conclusion:
        return conclusion[0].upper() + conclusion[1:] + "."
    return (f"Tracking keeps {t['memory_ratio']:.2g}× the memory; its time, "
            f"{t['time_ratio']:.2g}× no_grad's, varies with what else the machine does.")


def _mono(label: QLabel) -> QLabel:
    font = QFontDatabase.systemFont(QFontDatabase.SystemFont.FixedFont)
    font.setPointSizeF(max(8.0, QFont().pointSizeF() - 1))
    label.setFont(font)
    label.setTextFormat(Qt.TextFormat.PlainText)
    label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
    label.setAlignment(Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignTop)
    return label


def _set_text(label: QLabel, text: str) -> None:
    """Set the text; an empty label is hidden so it leaves no gap in its section."""
    label.setText(text)
    label.setVisible(bool(text))


def _button(text: str) -> QToolButton:
    button = QToolButton()
    button.setText(text)
    return button


def _fix_width(button: QToolButton, texts: tuple[str, ...]) -> None:
    """Fix the button's width to fit the longest of the texts it will show."""
    current = button.text()
    widths = []
    for text in texts:
        button.setText(text)
        widths.append(button.sizeHint().width())
    button.setText(current)
    button.setFixedWidth(max(widths))


def _wrapped(text: str = "", style: str = "") -> QLabel:
    label = QLabel(text)
    label.setWordWrap(True)
    label.setStyleSheet(style)
    label.setAlignment(Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignTop)
    return label


class GraphPanel(LiveGraphPane):
    """The autograd graph of the selected run's loss at its current point, and around it.

    Public parts, for the window and for tests: `view` (the GraphView), `graph` (the
    AutogradGraph shown, or None), `too_big` (the graph has more than MAX_DRAWN_NODES nodes: it
    is not drawn, and the panel says so), `busy` (a graph is being built off the GUI thread),
    `analysis` (the LocalAnalysis shown, or None), `timing` (the last grid_timing dict, or None),
    `measuring` (a timing runs in the background), `step` (the index into graph.backward_order
    being shown, or None), and the methods `refresh`, `next_step`, `previous_step`, `show_step`,
    `reset_steps`, `measure`, `cancel_measure`, `export_graph(path) -> bool` and `shutdown`.

    The graph is extracted, analysed and laid out by a worker (gui.worker.Job), one job at a
    time; while one runs, further refreshes are folded into one that starts when it ends. A
    result for a context that changed meanwhile (another run, surface, freeze or setting) is
    dropped, and so is one older than the graph shown.

    Signals: none; it listens to the controller's sigStepped, sigSelectionChanged,
    sigRunChanged, sigRunsChanged and sigSurfaceChanged.
    """

    NOTHING_TO_EXPORT = "Nothing to export: select a run first."

    def __init__(self, controller: Controller, *, parent: QWidget | None = None) -> None:
        super().__init__(controller, parent=parent, empty_text=NO_RUN)
        self.graph: AutogradGraph | None = None
        self.analysis: LocalAnalysis | None = None
        self.timing: dict[str, float] | None = None
        self._run: Run | None = None  # the run the graph was built for
        self._timing_surface: Surface | None = None  # the surface `timing` was measured on
        self.too_big = False
        self.graph_size: GraphSize | None = None  # of the graph at the point shown
        self._shown_serial = -1  # of the result shown
        self._shown_request: _Request | None = None
        self._measure_job: Job | None = None

        self._build_header()
        self._build_graph_area()
        self._build_side_column()

        splitter = QSplitter(Qt.Orientation.Horizontal)
        splitter.addWidget(self._left)
        splitter.addWidget(self._side)
        splitter.setStretchFactor(0, 3)
        splitter.setStretchFactor(1, 0)
        # The side column as narrow as its texts allow, for the graph (drawn left to right) to get
        # all the width there is.
        splitter.setSizes([1100 - SIDE_WIDTH, SIDE_WIDTH])
        splitter.setChildrenCollapsible(False)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)
        layout.setSpacing(3)
        layout.addLayout(self._header_row)
        layout.addWidget(splitter, 1)

        self._autoplay = QTimer(self)
        self._autoplay.setInterval(AUTOPLAY_MS)
        self._autoplay.timeout.connect(self._on_autoplay_tick)
        # The no_grad timing, once per surface, a moment after the panel is first seen (so it
        # has painted), never at start-up behind another tab.
        self._lazy_measure = QTimer(self)
        self._lazy_measure.setSingleShot(True)
        self._lazy_measure.setInterval(LAZY_MEASURE_MS)
        self._lazy_measure.timeout.connect(self._measure_if_stale)

        controller.sigSurfaceChanged.connect(self._on_surface_change)
        controller.sigPlayingChanged.connect(self._on_playing_change)
        self._update_step_controls()
        self._show_timing()

    # --- building the widgets -----------------------------------------------------------------

    def _build_header(self) -> None:
        self.header = QLabel()
        self.header.setTextFormat(Qt.TextFormat.RichText)
        self.header.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.header.setWordWrap(True)  # a long title or a divergence note takes a second line
        self.header.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)
        self.fit_button = _button("Fit")
        self.fit_button.setToolTip("Zoom to show the whole graph (wheel zooms, drag pans)")
        self.fit_button.clicked.connect(self._on_fit_clicked)
        self.png_button = _button("PNG…")
        self.png_button.setToolTip("Export the graph as a PNG image")
        self.png_button.clicked.connect(lambda: self.export_dialog("png"))
        self.svg_button = _button("SVG…")
        self.svg_button.setToolTip("Export the graph as an SVG drawing")
        self.svg_button.clicked.connect(lambda: self.export_dialog("svg"))
        self.busy_label = busy_label()
        self._header_row = QHBoxLayout()
        self._header_row.setContentsMargins(2, 0, 0, 0)
        self._header_row.addWidget(self.header, 1)
        self._header_row.addWidget(self.busy_label)
        for button in (self.fit_button, self.png_button, self.svg_button):
            self._header_row.addWidget(button)

    def _build_graph_area(self) -> None:
        self.graph_stack = self.stack  # the view or the empty label (GraphPane's), by its name here
        self.message = export_message_label()  # under the graph: the outcome of an export
        self._left = QWidget()
        left = QVBoxLayout(self._left)
        left.setContentsMargins(0, 0, 0, 0)
        left.setSpacing(3)
        left.addWidget(self.stack, 1)
        left.addWidget(self.message)

    def _build_side_column(self) -> None:
        # Backward, step by step
        self.next_button = _button("Step through backward")
        self.next_button.setToolTip("Highlight the next node backward visits")
        self.next_button.clicked.connect(self.next_step)
        self.previous_button = _button("◀")
        self.previous_button.setToolTip("Back one node")
        self.previous_button.clicked.connect(self.previous_step)
        self.play_button = _button("Play")
        self.play_button.setCheckable(True)
        self.play_button.setToolTip(f"Advance one node every {AUTOPLAY_MS / 1000:g} s")
        self.play_button.toggled.connect(self._on_play_toggled)
        self.reset_button = _button("Reset")
        self.reset_button.setToolTip("Clear the highlight and resume the live updates")
        self.reset_button.clicked.connect(self.reset_steps)
        # Their texts change with the state ("Step through backward" / "Next ▶", "Play" /
        # "Pause"): a fixed width from the longest keeps every button where it was, so that a
        # second click lands on the same button as the first.
        _fix_width(self.next_button, ("Step through backward", "Next ▶"))
        _fix_width(self.play_button, ("Play", "Pause"))
        _fix_width(self.previous_button, ("◀",))
        _fix_width(self.reset_button, ("Reset",))
        buttons = QHBoxLayout()
        buttons.setSpacing(3)
        for button in (self.previous_button, self.next_button, self.play_button,
                       self.reset_button):
            buttons.addWidget(button)
        buttons.addStretch(1)
        self.step_label = _wrapped(style="font-weight: bold;")
        self.explanation = _mono(QLabel())
        self.explanation.setWordWrap(True)
        backward = QGroupBox("Backward, step by step")
        box = QVBoxLayout(backward)
        box.setSpacing(3)
        box.addLayout(buttons)
        box.addWidget(self.step_label)
        box.addWidget(self.explanation)

        # At this point
        self.gradient_label = _mono(QLabel())
        self.hessian_label = _mono(QLabel())
        self.shape_label = _wrapped()
        self.shape_label.setTextFormat(Qt.TextFormat.RichText)
        here = QGroupBox("At this point")
        box = QVBoxLayout(here)
        box.setSpacing(4)
        for label in (self.gradient_label, self.hessian_label, self.shape_label):
            box.addWidget(label)

        # torch.no_grad()
        self.no_grad_note = _wrapped(NO_GRAD_NOTE)
        self.timing_label = _mono(QLabel())
        self.timing_conclusion = _wrapped()
        self.measure_button = _button("Measure")
        self.measure_button.setToolTip("Time the grid with and without gradient tracking "
                                       "(repeated, in the background)")
        self.measure_button.clicked.connect(self.measure)
        self.measure_progress = JobProgress()  # label, bar and Cancel while a timing runs
        self.measure_progress.cancel_button.clicked.connect(self.cancel_measure)
        measure_row = QHBoxLayout()
        measure_row.addWidget(self.measure_button)
        measure_row.addStretch(1)
        no_grad = QGroupBox("torch.no_grad()")
        box = QVBoxLayout(no_grad)
        box.setSpacing(4)
        box.addWidget(self.no_grad_note)
        box.addWidget(self.timing_label)
        box.addWidget(self.timing_conclusion)
        box.addLayout(measure_row)
        box.addWidget(self.measure_progress)

        column = QWidget()
        layout = QVBoxLayout(column)
        layout.setContentsMargins(2, 0, 6, 2)
        layout.setSpacing(6)
        for group in (backward, here, no_grad):
            layout.addWidget(group)
        layout.addStretch(1)
        self._side = QScrollArea()
        self._side.setWidgetResizable(True)
        self._side.setFrameShape(QFrame.Shape.NoFrame)
        self._side.setWidget(column)
        self._side.setMinimumWidth(300)

    # --- controller -> panel ------------------------------------------------------------------

    def _waits_for_pause(self) -> bool:
        """A big drawn graph while the race plays: updated when it pauses (LIVE_MAX_NODES)."""
        return (self.controller.playing and self.graph_size is not None and not self.too_big
                and self.graph_size.nodes > LIVE_MAX_NODES)

    def _on_playing_change(self, playing: bool) -> None:
        if self._shown_request is not None and self.graph_size is not None:
            self._show_header(self._shown_request, self.graph_size.loss)  # the note comes or goes
        if not playing and self._dirty and self.step is None:
            self._throttle.request()

    def _on_runs_change(self) -> None:
        if self._run is not self.controller.selected:
            self._rebuild()

    def _on_surface_change(self) -> None:
        self._cancel_measure_job()  # its figures would be for the old surface
        self._rebuild()
        self._show_timing()
        if self.isVisible():
            self._lazy_measure.start()

    def showEvent(self, event: QShowEvent) -> None:
        super().showEvent(event)
        if self._dirty:
            self.refresh()
        if self._timing_surface is not self.controller.session.surface and not self.measuring:
            self._lazy_measure.start()

    def hideEvent(self, event: QHideEvent) -> None:
        super().hideEvent(event)
        self._lazy_measure.stop()
        self._set_playing(False)

    def shutdown(self) -> None:
        """Stop the timers and ask the background jobs to stop (their results are dropped)."""
        super().shutdown()
        self._autoplay.stop()
        self._lazy_measure.stop()
        self._cancel_measure_job()

    # --- drawing ------------------------------------------------------------------------------

    def refresh(self) -> None:
        """Bring the graph and the readouts up to date for the selected run at its current point.

        The work runs in the background; the result is drawn when it arrives (if it is still
        what is wanted). A refresh asked for while a job runs starts when that one ends.
        """
        self._throttle.drawn()
        self._dirty = False
        run = self.controller.selected
        if run is None:
            self._run = None
            self._shown_serial = self._serial
            self._show_empty(NO_RUN)
            self.header.setText("<i>No run selected</i>")
            return
        if self._job is not None:
            self._again = True
            return
        request = self._request(run)
        known = self._key if not self.too_big else None
        fn, (x, y), frozen = run.surface, request.point, frozenset(run.frozen)
        self._start_job(lambda state: compute_graph_work(fn, x, y, frozen, known, state),
                        request)

    def _request(self, run: Run) -> _Request:
        self._serial += 1
        step = int(run.trajectory.last()["step"]) if len(run.trajectory) else None
        # a diverged run keeps its last finite point in last_point
        return _Request(self._serial, self._generation, run, run.last_point, step)

    def _wanted(self, request: _Request) -> bool:
        """Is a result for `request` still worth showing?"""
        return (request.generation == self._generation and request.serial > self._shown_serial
                and request.run is self.controller.selected and self.step is None)

    def _on_failed(self, request: _Request, message: str) -> None:
        if self._wanted(request):
            self._shown_serial = request.serial
            x, y = request.point
            self._run = request.run
            self._show_empty(f"The graph at ({x:.4g}, {y:.4g}) cannot be built: {message}")
            self._show_header(request, None)
        self._on_job_end()

    def _refresh_now(self) -> None:
        """The same as refresh, on this thread, at once (for an export the user asked for)."""
        self._dirty = False
        run = self.controller.selected
        if run is None:
            self.refresh()
            return
        request = self._request(run)
        x, y = request.point
        try:
            work = compute_graph_work(run.surface, x, y, frozenset(run.frozen),
                                      self._key if not self.too_big else None)
        except Exception as e:  # noqa: BLE001  (any torch error here: say so, do not crash)
            self._on_failed(request, str(e).strip().splitlines()[0] if str(e) else
                            type(e).__name__)
            return
        if work is not None:
            self._show_work(request, work)

    def _show_work(self, request: _Request, work: GraphWork) -> None:
        run, graph = request.run, work.graph
        self._shown_serial = request.serial
        self._shown_request = request
        self._run = run
        self.graph, self.analysis, self.too_big = graph, work.analysis, work.too_big
        self.graph_size = work.size
        if graph is None:
            self._stop_stepping()
            self._key, self._layout = None, None
            self.empty_label.setText(too_big_text(work.size.nodes))
            self.graph_stack.setCurrentWidget(self.empty_label)
        else:
            if work.key != self._key:
                self._auto_fit = True  # a new drawing: show all of it
                self._key, self._layout = work.key, work.layout
            self.view.set_graph(graph, work.layout)
            self.graph_stack.setCurrentWidget(self.view)
        for button in (self.png_button, self.svg_button, self.fit_button):
            button.setEnabled(not work.too_big)
        self._show_header(request, work.size.loss)
        _set_text(self.gradient_label, gradient_text(work.size, run.frozen))
        _set_text(self.hessian_label, hessian_text(work.analysis))
        _set_text(self.shape_label, shape_html(work.analysis, run.frozen))
        self._update_step_controls()

    def _show_empty(self, message: str) -> None:
        self._stop_stepping()
        self.graph, self.analysis, self._key, self._layout = None, None, None, None
        self.too_big, self.graph_size = False, None
        self.empty_label.setText(message)
        self.graph_stack.setCurrentWidget(self.empty_label)
        for button in (self.png_button, self.svg_button, self.fit_button):
            button.setEnabled(False)
        for label in (self.gradient_label, self.hessian_label):
            _set_text(label, "")
        _set_text(self.shape_label, "<i>no run selected</i>" if message == NO_RUN else "")
        self._update_step_controls()

    def _show_header(self, request: _Request, loss: float | None) -> None:
        """Title, step, point and loss of the graph shown. A diverged run says the step at which
        it diverged as its status does (run.diverged_at, run.status_text: one source for the
        table, the card and this header), and that the graph is at its last finite point."""
        run = request.run
        x, y = request.point
        parts = [f'<b style="color:{_readable(run.color)}">{html.escape(run.title)}</b>']
        diverged = run.diverged_at is not None
        if request.step is not None and not diverged:
            parts.append(f"step {request.step}")
        parts.append(f"(x, y) = ({x:.5g}, {y:.5g})")
        if loss is not None:
            parts.append(f"loss = <b>{loss:.6g}</b>")
        if run.frozen:
            parts.append(" and ".join(sorted(run.frozen)) + " frozen")
        if self._waits_for_pause():
            parts.append(f'<span style="{NOTE_STYLE}">{BIG_WHILE_PLAYING}</span>')
        text = " &nbsp;·&nbsp; ".join(parts)
        if diverged:
            # the state in words, as the card and the table word it (a disabled run's
            # status_text is just "disabled": the divergence is still what the header explains)
            state = getattr(run, "state_text", run.status_text)
            text += (f' &nbsp;<span style="{ERROR_STYLE}">{html.escape(state)}; '
                     "the graph is at its last finite point</span>")
        self.header.setText(text)
        self.header.setToolTip(run.status_text if diverged else "")

    # --- backward, step by step ---------------------------------------------------------------

    @property
    def drawn_graph(self) -> AutogradGraph | None:
        """The graph drawn (None: no run, or too big to draw)."""
        return None if self.too_big else self.graph

    def previous_step(self) -> str | None:
        return self.show_step(None if self.step is None else max(0, self.step - 1))

    def _on_steps_reset(self, was_stepping: bool) -> None:
        self._set_playing(False)
        super()._on_steps_reset(was_stepping)  # and resume the live updates

    def _stop_stepping(self) -> None:
        self._set_playing(False)
        super()._stop_stepping()

    def _set_playing(self, on: bool) -> None:
        if not on:
            self._autoplay.stop()
        with QSignalBlocker(self.play_button):
            self.play_button.setChecked(on)
            self.play_button.setText("Pause" if on else "Play")

    def _on_play_toggled(self, on: bool) -> None:
        self._set_playing(on)
        if on:
            if self.step is None or self.step >= len(self.backward_order) - 1:
                self.show_step(0)  # from the start (again)
            self._autoplay.start()

    def _on_autoplay_tick(self) -> None:
        if self.step is None or self.step >= len(self.backward_order) - 1:
            self._set_playing(False)
            return
        self.next_step()
        if self.step is not None and self.step >= len(self.backward_order) - 1:
            self._set_playing(False)  # the end: the leaves have their .grad

    def _update_step_controls(self) -> None:
        order = self.backward_order
        k = self.step
        self._show_step_buttons(self.next_button, "Step through backward", "Next ▶")
        self.previous_button.setEnabled(k is not None and k > 0)
        self.play_button.setEnabled(bool(order))
        if self.too_big:
            self.step_label.setStyleSheet(NOTE_STYLE)
            _set_text(self.step_label, "The graph is too big to draw, so there is nothing to "
                      "step through here.")
            _set_text(self.explanation, "")
        elif self.graph is None:
            _set_text(self.step_label, "")
            _set_text(self.explanation, "")
        elif k is None:
            self.step_label.setStyleSheet(NOTE_STYLE)
            self.explanation.setFont(self.font())
            if order:
                _set_text(self.step_label, f"{len(order)} nodes in backward's order")
                _set_text(self.explanation, STEP_HINT)
            else:
                _set_text(self.step_label, "Nothing to step through")
                _set_text(self.explanation, self.graph.explain(self.graph.root))
        else:
            node = self.graph.node(order[k])
            self.step_label.setStyleSheet("font-weight: bold;")
            _set_text(self.step_label, f"{step_title(k, order, node)}<br><span "
                      f"style='{NOTE_STYLE} font-weight: normal;'>{PAUSED}</span>")
            self.explanation.setFont(self.gradient_label.font())
            _set_text(self.explanation, self.graph.explain(node.id))

    # --- torch.no_grad(): what gradient tracking would cost the picture -----------------------

    @property
    def measuring(self) -> bool:
        """A timing of the grid runs in the background."""
        return self._measure_job is not None

    def measure(self) -> None:
        """Time the current surface's grid with and without gradient tracking, in the
        background, with a progress bar and Cancel; the figures show when it ends (and are
        dropped if the surface changed meanwhile). A second call while one runs does nothing."""
        if self._measure_job is not None:
            return
        surface = self.controller.session.surface
        self._lazy_measure.stop()
        self.measure_button.setEnabled(False)
        self.timing_label.setStyleSheet("")
        self.timing_label.setText(f"timing a {GRID_N}×{GRID_N} grid of {surface.title}…")
        job = Job(lambda state: time_grid(surface, GRID_N, state), parent=self)
        job.sigFinished.connect(functools.partial(self._on_timing_done, surface))
        job.sigFailed.connect(functools.partial(self._on_timing_failed, surface))
        job.sigCancelled.connect(self._on_timing_cancelled)
        self._measure_job = job
        self.measure_progress.attach(job, "measuring…")
        job.start()

    def cancel_measure(self) -> None:
        """Stop the timing that runs (its figures are dropped) and say so."""
        if self._measure_job is not None:
            self._cancel_measure_job()
            self._show_timing(cancelled=True)

    def _cancel_measure_job(self) -> None:
        if self._measure_job is not None:
            self._measure_job.cancel()
            self._measure_job = None  # what it still reports is dropped
            self.measure_progress.hide()  # (it lets go of the job when the job ends)

    def _on_timing_done(self, surface: Surface, timing: dict[str, Any]) -> None:
        if surface is not self.controller.session.surface or self._measure_job is None:
            return  # for a surface no longer shown, or cancelled: dropped
        self._measure_job = None
        self.timing, self._timing_surface = timing, surface
        self._show_timing()

    def _on_timing_failed(self, surface: Surface, message: str) -> None:
        if surface is not self.controller.session.surface or self._measure_job is None:
            return
        self._measure_job = None
        self.timing, self._timing_surface = None, surface
        self._show_timing(error=message)

    def _on_timing_cancelled(self) -> None:
        if self._measure_job is not None:  # cancelled from the progress widget's own button
            self._measure_job = None
            self._show_timing(cancelled=True)

    def _measure_if_stale(self) -> None:
        if self.isVisible() and self._timing_surface is not self.controller.session.surface:
            self.measure()

    def _show_timing(self, error: str | None = None, cancelled: bool = False) -> None:
        surface = self.controller.session.surface
        self.measure_button.setEnabled(self._measure_job is None)
        self.timing_label.setStyleSheet(ERROR_STYLE if error is not None else "")
        shown = (error is None and not cancelled and self.timing is not None
                 and self._timing_surface is surface)
        _set_text(self.timing_conclusion, timing_conclusion(self.timing) if shown else "")
        if error is not None:
            self.timing_label.setText(f"the measurement failed: {error}")
        elif cancelled:
            self.timing_label.setText("measurement cancelled: press Measure to time the grid")
        elif self.timing is not None and self._timing_surface is surface:
            self.timing_label.setText(timing_text(self.timing, surface.title))
        else:
            self.timing_label.setText(f"press Measure to time a {GRID_N}×{GRID_N} grid of "
                                      f"{surface.title}")

    # --- export -------------------------------------------------------------------------------

    def export_graph(self, path: str | Path, size: tuple[int, int] | None = None) -> bool:
        """Write the graph shown to a .png or .svg file (`size`: (width, height) in pixels, the
        graph fitted in it). On failure the panel shows why (and nothing else changes); returns
        whether the file was written. Works while the panel is hidden (from a menu): the graph
        is brought up to date first."""
        if (self._dirty or self.busy) and self.step is None:
            self._refresh_now()
        if self.too_big and self.graph_size is not None:
            self._show_export_message(f"Nothing to export: the graph has "
                                      f"{self.graph_size.nodes} nodes and the panel draws at "
                                      f"most {MAX_DRAWN_NODES} (main.py graph --out draws any "
                                      "size).", error=True)
            return False
        return super().export_graph(path, size)
