"""The model workspace's autograd graph: loss_fn(model(X_batch), y_batch) for the selected run at
its current step, as torch recorded it, and what loss.backward() sends along it.

The graph is core.graph.build_model_graph: every autograd node with its output's shape, the norm
of its value and of the gradient backward delivered to it, and the norm of what it sent along
each edge; leaves named as in named_parameters(), a frozen parameter a constant (no
AccumulateGrad). Each module's ops sit in a frame titled with the module (`0: Linear(2, 16)`);
clicking the title collapses the module into one box (core.graph.collapse_modules) or expands
it. Models with more than EXPANDED_MODULES modules start collapsed, so the deeper preset reads
at the pane's size.

As the race's graph panel does, it follows the selected run, rebuilds at most REFRESH_HZ times a
second while training runs, only while it is on screen, and not while the user steps through
backward. The graph is built and laid out in a worker (gui.worker.Job) from a snapshot of the
run taken on the GUI thread (copies of its parameters and buffers, and a copy of the model for
the hooks), so the runs step on meanwhile; a result for a run, step or problem no longer shown
is dropped. A model with Dropout is built on the GUI thread instead: its masks come from
torch's global generator, seeded per step, which a worker would share with the stepping.
"""

from __future__ import annotations

import copy
import html
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from PySide6.QtCore import QEvent, QObject, QPointF, Qt, QTimer
from PySide6.QtGui import QHideEvent, QShowEvent
from PySide6.QtWidgets import (QHBoxLayout, QLabel, QSizePolicy, QStackedWidget, QToolButton,
                               QVBoxLayout, QWidget)

from core.errors import ExportError, first_line
from core.graph import (GraphLayout, ModelGraph, build_model_graph, collapse_modules,
                        compute_layout, model_graph_inputs, structure_key)
from core.run import Run
from gui.graph_panel import (BUSY_DELAY_MS, BUSY_TEXT, ERROR_STYLE, MAX_DRAWN_NODES, NOTE_STYLE,
                             REFRESH_HZ, ask_export_path)
from gui.graph_view import GraphView, render_graph
from gui.model.controller import ModelController
from gui.throttle import Throttle
from gui.worker import Job, JobState

# A model with more modules than this (the loss aside) starts with every module collapsed: the
# small MLP (3) shows its ops, the deeper one (7) one box per layer.
EXPANDED_MODULES = 3
# Below this zoom the boxes' 8.5 pt text is too small to read: a graph that would need less to
# fit whole is shown at this zoom from the loss down instead (drag pans).
READABLE_SCALE = 0.72
PARTIAL_NOTE = "drag for more ▾"
PARTIAL_TEXT = ("Only the top of the graph fits at a readable size: drag to pan, wheel to "
                "zoom, Fit shows all of it.")
NO_RUN = "No run selected: select a run to see the autograd graph of its loss."
START_TEXT = "Step through backward"
NEXT_TEXT = "Next ▶"
STEP_HINT = ("Follow loss.backward() node by node, in the order torch's engine ran them: each "
             "op sends the gradient that reached it, times its local Jacobian, on to its inputs "
             "(the numbers on the arrows are the norms of those vector-Jacobian products); a "
             "parameter's AccumulateGrad adds up what reached it into .grad. Live updates pause "
             "while you step.")


def too_big_text(nodes: int) -> str:
    return (f"This loss has {nodes} autograd nodes (ops and AccumulateGrad); the panel draws at "
            f"most {MAX_DRAWN_NODES}: a drawing that big is unreadable and slow to lay out. The "
            "per-tensor table and the gradient-norm curves show every parameter's gradient.")


@dataclass
class ModelGraphWork:
    """A model graph built off the GUI thread: the whole graph, the one drawn (some modules
    collapsed), its structure key and its layout (None: the structure drawn already)."""

    graph: ModelGraph
    shown: ModelGraph
    key: tuple[Any, ...] | None
    layout: GraphLayout | None


def default_collapsed(graph: ModelGraph) -> set[str]:
    """Every module collapsed for a model of more than EXPANDED_MODULES modules; none else."""
    keys = [key for key, _ in graph.modules]
    return set(keys) if len(keys) - 1 > EXPANDED_MODULES else set()


def model_graph_work(inputs: Any, graph: ModelGraph | None, collapsed: set[str] | None,
                     known_key: tuple[Any, ...] | None = None,
                     state: JobState | None = None) -> ModelGraphWork | None:
    """Build the graph from `inputs` (or take `graph`, to fold it another way), collapse the
    modules in `collapsed` (None: default_collapsed) and lay it out unless its structure is
    `known_key`. A plain function for a worker; None once `state` asks it to stop."""
    if graph is None:
        graph = build_model_graph(inputs, max_nodes=MAX_DRAWN_NODES)
    if graph.too_big:
        return ModelGraphWork(graph, graph, None, None)
    if state is not None and state.is_interruption_requested():
        return None
    shown = collapse_modules(graph, default_collapsed(graph) if collapsed is None else collapsed)
    key = structure_key(shown)  # type: ignore[arg-type]  # any graph of nodes and edges
    layout = compute_layout(shown) if key != known_key else None  # type: ignore[arg-type]
    return ModelGraphWork(graph, shown, key, layout)


def _button(text: str, tip: str) -> QToolButton:
    button = QToolButton()
    button.setText(text)
    button.setToolTip(tip)
    button.setFixedWidth(button.fontMetrics().horizontalAdvance(text) + 18)
    return button


class ModelGraphPanel(QWidget):
    """The selected run's loss graph, grouped by module, with backward step by step.

    Public parts, for the workspace and tests: `view` (the GraphView), `graph` (the whole
    ModelGraph at the step shown, or None), `shown` (the graph drawn: some modules collapsed),
    `collapsed` (the module keys drawn as one box), `too_big`, `busy`, `step` (the index into
    shown.backward_order highlighted, or None), the buttons, `header`, `step_label`,
    `explanation`, `message`, and `refresh()`, `toggle_module(key)`, `set_collapsed(keys)`,
    `next_step()`, `reset_steps()`, `show_step(k)`, `export_graph(path) -> bool`, `shutdown()`.

    Signals: none; it listens to the controller's sigStepped, sigSelectionChanged,
    sigRunChanged, sigRunsChanged and sigProblemChanged.
    """

    def __init__(self, controller: ModelController, *, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.controller = controller
        self.graph: ModelGraph | None = None
        self.shown: ModelGraph | None = None
        self.collapsed: set[str] | None = None  # None: the default for the model, once built
        self.step: int | None = None
        self._key: tuple[Any, ...] | None = None
        self._layout: GraphLayout | None = None
        self._shown_key: tuple[Any, ...] | None = None  # the structure drawn (fitted once)
        self._whole = False  # Fit was pressed: the whole graph, however small
        self.partial = False  # only the top of the graph is in view (READABLE_SCALE)
        self._model_copy: tuple[Any, Any] | None = None  # (problem, its model's copy)
        self._job: Job | None = None
        self._again = False
        self._dirty = True
        self._auto_fit = True
        self._generation = 0  # bumped when the run, its freeze or the problem changes
        self._serial = 0

        self.header = QLabel()
        self.header.setTextFormat(Qt.TextFormat.RichText)
        self.header.setWordWrap(True)
        self.header.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)
        self.busy_label = QLabel()
        self.busy_label.setStyleSheet(NOTE_STYLE)
        self.busy_label.setFixedWidth(self.busy_label.fontMetrics().horizontalAdvance(BUSY_TEXT)
                                      + 12)
        self.expand_button = _button("Expand", "Show every module's ops (a click on a "
                                     "module's title collapses it)")
        self.collapse_button = _button("Collapse", "One box per module (a click on a box "
                                       "expands it)")
        self.fit_button = _button("Fit", "Zoom to show the whole graph (wheel zooms, drag pans)")
        self.png_button = _button("PNG…", "Export the graph as a PNG image")
        self.svg_button = _button("SVG…", "Export the graph as an SVG drawing")
        self.expand_button.clicked.connect(lambda: self.set_collapsed(()))
        self.collapse_button.clicked.connect(
            lambda: self.set_collapsed([k for k, _ in self.graph.modules] if self.graph else ()))
        self.fit_button.clicked.connect(self._on_fit_clicked)
        self.png_button.clicked.connect(lambda: self.export_dialog("png"))
        self.svg_button.clicked.connect(lambda: self.export_dialog("svg"))
        top = QHBoxLayout()  # the header on a line of its own: a run's title can be long
        top.setContentsMargins(2, 0, 0, 0)
        top.addWidget(self.header, 1)
        top.addWidget(self.busy_label)

        self.view = GraphView(orientation="vertical")  # the pane is taller than wide
        self.view.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.view.setVerticalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.view.viewport().installEventFilter(self)
        self.view.sigGroupClicked.connect(self.toggle_module)
        self.empty_label = QLabel(NO_RUN)
        self.empty_label.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.empty_label.setWordWrap(True)
        self.empty_label.setStyleSheet(NOTE_STYLE)
        self.stack = QStackedWidget()
        self.stack.addWidget(self.view)
        self.stack.addWidget(self.empty_label)
        self.message = QLabel()
        self.message.setWordWrap(True)
        self.message.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.message.hide()

        self.step_button = _FixedButton(START_TEXT, (START_TEXT, NEXT_TEXT), STEP_HINT)
        self.reset_button = _FixedButton("Reset", ("Reset",),
                                            "Stop stepping: live updates resume")
        self.step_button.clicked.connect(self.next_step)
        self.reset_button.clicked.connect(self.reset_steps)
        self.step_label = QLabel()
        self.step_label.setWordWrap(True)
        self.explanation = QLabel()
        self.explanation.setWordWrap(True)
        self.explanation.setTextFormat(Qt.TextFormat.PlainText)
        self.explanation.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.explanation.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)
        # One row of controls under the graph; the step's words below it only while stepping
        # (the graph gets the height: the pane is short).
        steps = QHBoxLayout()
        steps.addWidget(self.step_button)
        steps.addWidget(self.reset_button)
        steps.addStretch(1)
        for button in (self.expand_button, self.collapse_button, self.fit_button,
                       self.png_button, self.svg_button):
            steps.addWidget(button)

        layout = QVBoxLayout(self)
        layout.setContentsMargins(2, 2, 2, 2)
        layout.setSpacing(3)
        layout.addLayout(top)
        layout.addWidget(self.stack, 1)
        layout.addWidget(self.message)
        layout.addLayout(steps)
        layout.addWidget(self.step_label)
        layout.addWidget(self.explanation)

        self._throttle = Throttle(self.refresh, REFRESH_HZ, self)
        self._busy_timer = QTimer(self)
        self._busy_timer.setSingleShot(True)
        self._busy_timer.setInterval(BUSY_DELAY_MS)
        self._busy_timer.timeout.connect(self._on_busy_timeout)
        controller.sigStepped.connect(self._on_stepped_change)
        controller.sigSelectionChanged.connect(self._on_selection_change)
        controller.sigRunChanged.connect(self._on_run_change)
        controller.sigRunsChanged.connect(self._on_runs_change)
        controller.sigProblemChanged.connect(self._on_problem_change)
        self._show_empty(NO_RUN)

    # --- controller -> panel ------------------------------------------------------------------

    def _on_stepped_change(self) -> None:
        self._dirty = True
        if self.step is None:
            self._throttle.request()  # at most REFRESH_HZ a second; remembered while hidden

    def _on_selection_change(self, run: Run | None) -> None:
        self._rebuild()

    def _on_run_change(self, run: Run) -> None:
        if run is self.controller.selected:  # a freeze or a new lr
            self._rebuild()

    def _on_runs_change(self) -> None:
        if self.controller.selected is None or self.controller.selected not in \
                self.controller.runs:
            self._rebuild()

    def _on_problem_change(self) -> None:
        self.collapsed = None  # another model: its own default
        self._model_copy = None
        self._rebuild()

    def _rebuild(self) -> None:
        """Not a step: drop the walk and any graph on its way, and redraw (if shown)."""
        self._generation += 1
        if self._job is not None:
            self._job.cancel()
        self._dirty = True
        self._stop_stepping()
        if self.isVisible():
            self.refresh()

    def showEvent(self, event: QShowEvent) -> None:
        super().showEvent(event)
        if self._dirty and self.step is None:
            self.refresh()

    def hideEvent(self, event: QHideEvent) -> None:
        super().hideEvent(event)
        self._throttle.cancel()  # hidden: no rebuilds (the throttle catches up on show)

    def closeEvent(self, event: Any) -> None:
        self.shutdown()
        super().closeEvent(event)

    def shutdown(self) -> None:
        self._throttle.cancel()
        self._busy_timer.stop()
        if self._job is not None:
            self._job.cancel()
        self._generation += 1

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:
        """Keep the whole graph in view as the pane resizes, until the user pans or zooms."""
        if watched is self.view.viewport():
            kind = event.type()
            if kind == QEvent.Type.Resize and self._auto_fit:
                self.fit()
            elif kind in (QEvent.Type.Wheel, QEvent.Type.MouseButtonPress):
                self._auto_fit = False
        return super().eventFilter(watched, event)

    def _on_fit_clicked(self) -> None:
        """The whole graph, however small (the user asked); resizing keeps it whole."""
        self._auto_fit = True
        self._whole = True
        self.view.fit()
        self._show_partial(False)

    def fit(self) -> None:
        """The whole graph in view, unless that makes its text too small to read (a deep
        model in a short pane): then READABLE_SCALE, as wide as it fits, from the loss down;
        dragging pans to the rest."""
        self.view.fit()
        scene = self.view.graph_scene.itemsBoundingRect().adjusted(-20, -20, 20, 20)
        scale = self.view.transform().m11()
        if self._whole or scale >= READABLE_SCALE or scene.isEmpty():
            self._show_partial(False)
            return
        across = self.view.viewport().width() / scene.width()
        scale = min(1.0, max(READABLE_SCALE, across))
        self.view.resetTransform()
        self.view.scale(scale, scale)
        half = self.view.viewport().height() / (2 * scale)
        self.view.centerOn(QPointF(scene.center().x(), scene.top() + half))
        self._show_partial(True)

    def _show_partial(self, partial: bool) -> None:
        """Say so when only the top of the graph is in view."""
        self.partial = partial
        self.busy_label.setToolTip(PARTIAL_TEXT if partial else "")
        if self.busy_label.text() in ("", PARTIAL_NOTE):
            self.busy_label.setText(PARTIAL_NOTE if partial else "")

    # --- building -----------------------------------------------------------------------------

    @property
    def busy(self) -> bool:
        return self._job is not None

    @property
    def too_big(self) -> bool:
        return self.graph is not None and self.graph.too_big

    def refresh(self) -> None:
        """Bring the graph up to date for the selected run at its current step (in a worker;
        a refresh asked for while one runs starts when it ends)."""
        self._throttle.drawn()
        run = self.controller.selected
        if run is None:
            self._dirty = False
            self._generation += 1
            self._show_empty(NO_RUN)
            return
        if self._job is not None:
            self._again = True
            return
        self._dirty = False
        inputs = model_graph_inputs(self.controller.problem, run.parameters, run.steps,
                                    model=self._model_for(self.controller.problem))
        self._start(run, inputs, None)

    def _model_for(self, problem: Any) -> Any:
        """One copy of the problem's model for the graph's hooks (the runs share the real one)."""
        if self._model_copy is None or self._model_copy[0] is not problem:
            self._model_copy = (problem, copy.deepcopy(problem.model))
        return self._model_copy[1]

    def _start(self, run: Run, inputs: Any, graph: ModelGraph | None) -> None:
        self._serial += 1
        wanted = (self._serial, self._generation, run)
        collapsed = None if self.collapsed is None else set(self.collapsed)
        known = self._key

        def work(state: JobState | None = None) -> ModelGraphWork | None:
            return model_graph_work(inputs, graph, collapsed, known, state)

        if graph is None and getattr(self.controller.problem, "has_dropout", False):
            # Dropout's masks come from torch's global generator (seeded per step): drawing
            # them on a worker would race the stepping, so this (small) build stays here.
            try:
                result = work()
            except Exception as e:  # noqa: BLE001  (any torch error: say so, do not crash)
                self._on_failed(wanted, first_line(str(e)) or type(e).__name__)
                return
            self._on_done(wanted, result)
            return
        job = Job(work, parent=self)
        job.sigFinished.connect(lambda result: self._on_done(wanted, result))
        job.sigFailed.connect(lambda message: self._on_failed(wanted, message))
        job.sigCancelled.connect(self._on_job_end)
        self._job = job
        self._busy_timer.start()  # said only if it takes a while: no flicker at 4 Hz
        job.start()

    def _wanted(self, wanted: tuple[int, int, Run]) -> bool:
        serial, generation, run = wanted
        return generation == self._generation and run is self.controller.selected \
            and self.step is None

    def _on_done(self, wanted: tuple[int, int, Run], work: ModelGraphWork | None) -> None:
        if work is not None and self._wanted(wanted):
            self._show_work(wanted[2], work)
        elif self.step is not None:
            self._dirty = True  # dropped while stepping: caught up on Reset
        self._on_job_end()

    def _on_failed(self, wanted: tuple[int, int, Run], message: str) -> None:
        if self._wanted(wanted):
            self._show_empty(f"The graph cannot be built: {message}")
        self._on_job_end()

    def _on_busy_timeout(self) -> None:
        if self._job is not None:
            self.busy_label.setText(BUSY_TEXT)

    def _on_job_end(self) -> None:
        self._job = None
        self._busy_timer.stop()
        self.busy_label.setText(PARTIAL_NOTE if self.partial else "")
        if self._again:
            self._again = False
            if self.isVisible() and self.step is None:
                self.refresh()
            else:
                self._dirty = True

    def _show_work(self, run: Run, work: ModelGraphWork) -> None:
        graph = work.graph
        self.graph, self.shown = graph, work.shown
        if self.collapsed is None and not graph.too_big:
            self.collapsed = default_collapsed(graph)
        if graph.too_big:
            self._key, self._layout = None, None
            self.empty_label.setText(too_big_text(graph.node_count))
            self.stack.setCurrentWidget(self.empty_label)
        else:
            if work.key != self._key:  # a new drawing: fitted afresh, readable
                self._auto_fit = True
                self._whole = False
                self._key, self._layout = work.key, work.layout
            relaid = self.view.graph_scene._key is None or work.key != self._shown_key
            self.view.set_graph(work.shown, self._layout)  # type: ignore[arg-type]
            if relaid and self._auto_fit:
                self.fit()
            self._shown_key = work.key
            self.view.highlight_step(self.step)
            self.stack.setCurrentWidget(self.view)
        for button in (self.png_button, self.svg_button, self.fit_button, self.expand_button,
                       self.collapse_button):
            button.setEnabled(not graph.too_big)
        self._show_header(run, graph)
        self._update_step_controls()

    def _show_empty(self, text: str) -> None:
        self._stop_stepping()
        self.graph = self.shown = None
        self._key = self._layout = None
        self.empty_label.setText(text)
        self.stack.setCurrentWidget(self.empty_label)
        self.header.setText("<i>No run selected</i>" if text == NO_RUN else "")
        for button in (self.png_button, self.svg_button, self.fit_button, self.expand_button,
                       self.collapse_button):
            button.setEnabled(False)
        self._update_step_controls()

    def _show_header(self, run: Run, graph: ModelGraph) -> None:
        rows = graph.nodes and next((n.shape for n in graph.nodes if n.label == "X"), None)
        parts = [f'<b style="color:{run.color or "#222"}">{html.escape(run.title)}</b>',
                 f"step {graph.step}", f"loss = <b>{graph.loss:.6g}</b>",
                 f"{graph.node_count} autograd nodes"]
        if rows:
            parts.append(f"batch of {rows[0]} rows")
        if graph.frozen:
            parts.append(", ".join(graph.frozen) + " frozen")
        self.header.setText(" &nbsp;·&nbsp; ".join(parts))

    # --- collapsing ---------------------------------------------------------------------------

    def toggle_module(self, key: str) -> None:
        """Collapse the module `key` into one box, or expand it (its frame's title was clicked)."""
        collapsed = set(self.collapsed or ())
        collapsed ^= {key}
        self.set_collapsed(collapsed)

    def set_collapsed(self, keys: Any) -> None:
        """Draw the modules in `keys` as one box each, the others with their ops."""
        self.collapsed = set(keys)
        run = self.controller.selected
        if self.graph is None or self.graph.too_big or run is None:
            return
        self._stop_stepping()  # the walk's order changes with the boxes
        if self._job is not None:  # a graph on its way: it is folded the new way when it lands
            self._again = True
            self._job.cancel()
            self._generation += 1
            return
        self._start(run, None, self.graph)

    # --- backward, step by step ---------------------------------------------------------------

    @property
    def backward_order(self) -> list[str]:
        return [] if self.shown is None or self.shown.too_big else self.shown.backward_order

    def show_step(self, k: int | None) -> str | None:
        """Highlight backward at its k-th node (None: stop, and catch up with the runs)."""
        order = self.backward_order
        if k is not None:
            k = None if not order else max(0, min(k, len(order) - 1))
        was_stepping = self.step is not None
        self.step = k
        current = self.view.highlight_step(k)
        self._update_step_controls()
        if k is None and was_stepping and self._dirty and self.isVisible():
            self.refresh()
        return current

    def next_step(self) -> str | None:
        return self.show_step(0 if self.step is None else self.step + 1)

    def reset_steps(self) -> None:
        self.show_step(None)

    def _stop_stepping(self) -> None:
        if self.step is not None:
            self.step = None
            self.view.highlight_step(None)
        self._update_step_controls()

    def _update_step_controls(self) -> None:
        order, k, shown = self.backward_order, self.step, self.shown
        self.step_button.setText(START_TEXT if k is None else NEXT_TEXT)
        self.step_button.setEnabled(bool(order) and (k is None or k < len(order) - 1))
        self.reset_button.setEnabled(k is not None)
        self.step_label.setVisible(k is not None)
        self.explanation.setVisible(k is not None)
        if shown is None or shown.too_big:
            self.step_label.setText("")
            self.explanation.setText("")
        elif k is None:
            self.step_label.setText("")
            self.explanation.setText("")
            self.step_button.setToolTip(f"{len(order)} nodes in backward's order. {STEP_HINT}"
                                        if order else "Nothing to step through")
        else:
            node = shown.node(order[k])
            self.step_label.setStyleSheet("font-weight: bold;")
            self.step_label.setText(f"{k + 1} of {len(order)}: {node.label} "
                                    f"({node.torch_name or node.kind})")
            self.explanation.setText(shown.explain(node.id))

    # --- export -------------------------------------------------------------------------------

    def export_dialog(self, fmt: str) -> bool:
        """Ask for a file name, then export the graph as `fmt` ("png" or "svg")."""
        if self.shown is None or self.shown.too_big:
            self._show_message("Nothing to export: no graph is drawn.", error=True)
            return False
        path = ask_export_path(self, fmt)
        return False if path is None else self.export_graph(path)

    def export_graph(self, path: str | Path, size: tuple[int, int] | None = None) -> bool:
        """Write the graph drawn (its modules collapsed as on screen) to a .png or .svg file;
        on failure the panel says why. Returns whether the file was written."""
        if self.shown is None or self.shown.too_big:
            self._show_message("Nothing to export: no graph is drawn.", error=True)
            return False
        try:
            out = render_graph(self.shown, path, orientation=self.view.orientation,  # type: ignore[arg-type]
                               layout=self._layout, size=size)
        except ExportError as e:
            self._show_message(f"Export failed: {e}", error=True)
            return False
        self._show_message(f"Wrote {out}", error=False)
        return True

    def _show_message(self, text: str, error: bool) -> None:
        self.message.setStyleSheet(ERROR_STYLE if error else NOTE_STYLE)
        self.message.setText(text)
        self.message.show()


class _FixedButton(QToolButton):
    """A tool button as wide as the widest of its texts, so it never moves as its text changes."""

    def __init__(self, text: str, texts: tuple[str, ...], tip: str) -> None:
        super().__init__()
        self.setText(text)
        self.setToolTip(tip)
        self.setFixedWidth(max(self.fontMetrics().horizontalAdvance(t) for t in texts) + 20)
