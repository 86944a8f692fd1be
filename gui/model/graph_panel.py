"""The model workspace's autograd graph: loss_fn(model(X_batch), y_batch) for the selected run at
its current step, as torch recorded it, and what loss.backward() sends along it.

The graph is core.graph.build_model_graph: every autograd node with its output's shape, the norm
of its value and of the gradient backward delivered to it, and the norm of what it sent along
each edge; leaves named as in named_parameters(), a frozen parameter a constant (no
AccumulateGrad). Each module's ops sit in a frame titled with the module (`0: Linear(2, 16)`);
clicking the title collapses the module into one box (core.graph.collapse_modules) or expands
it. Models with more than EXPANDED_MODULES modules start collapsed, so the deeper preset reads
at the pane's size.

As the race's graph panel does (both are gui.graph_panel_base.LiveGraphPane), it follows the
selected run, rebuilds at most REFRESH_HZ times a second while training runs, only while it is
on screen, and not while the user steps through backward. The graph is built and laid out in a
worker (gui.worker.Job) from a snapshot of the run taken on the GUI thread (copies of its
parameters and buffers, and a copy of the model for the hooks), so the runs step on meanwhile;
a result for a run, step or problem no longer shown is dropped. A model with Dropout is built
on the GUI thread instead: its masks come from torch's global generator, seeded per step,
which a worker would share with the stepping.
"""

from __future__ import annotations

import copy
import html
from dataclasses import dataclass
from typing import Any

from PySide6.QtCore import QPointF, Qt
from PySide6.QtGui import QShowEvent
from PySide6.QtWidgets import QHBoxLayout, QLabel, QSizePolicy, QToolButton, QVBoxLayout, QWidget

from core.errors import first_line
from core.graph import (GraphLayout, ModelGraph, build_model_graph, collapse_modules,
                        compute_layout, model_graph_inputs, structure_key)
from core.run import Run
from gui.graph_panel import MAX_DRAWN_NODES
from gui.graph_panel_base import REFRESH_HZ  # noqa: F401  (read by tests)
from gui.graph_panel_base import (LiveGraphPane, busy_label, export_message_label, fix_width,
                                  step_title)
from gui.model.controller import ModelController
from gui.worker import JobState

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


def _button(text: str, tip: str, texts: tuple[str, ...] = (), extra: int = 18) -> QToolButton:
    """A tool button as wide as the widest of its texts, so it never moves as its text changes."""
    button = QToolButton()
    button.setText(text)
    button.setToolTip(tip)
    fix_width(button, texts, extra)
    return button


class ModelGraphPanel(LiveGraphPane):
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
        # the pane is taller than wide: the graph drawn from the loss down
        super().__init__(controller, parent=parent, orientation="vertical", empty_text=NO_RUN)
        self.graph: ModelGraph | None = None
        self.shown: ModelGraph | None = None
        self.collapsed: set[str] | None = None  # None: the default for the model, once built
        self._shown_key: tuple[Any, ...] | None = None  # the structure drawn (fitted once)
        self._whole = False  # Fit was pressed: the whole graph, however small
        self.partial = False  # only the top of the graph is in view (READABLE_SCALE)
        self._model_copy: tuple[Any, Any] | None = None  # (problem, its model's copy)

        self.header = QLabel()
        self.header.setTextFormat(Qt.TextFormat.RichText)
        self.header.setWordWrap(True)
        self.header.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)
        self.busy_label = busy_label()
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

        self.view.sigGroupClicked.connect(self.toggle_module)
        self.message = export_message_label()

        self.step_button = _button(START_TEXT, STEP_HINT, (START_TEXT, NEXT_TEXT), extra=20)
        self.reset_button = _button("Reset", "Stop stepping: live updates resume", extra=20)
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

        controller.sigProblemChanged.connect(self._on_problem_change)
        self._show_empty(NO_RUN)

    # --- controller -> panel ------------------------------------------------------------------

    def _on_runs_change(self) -> None:
        if self.controller.selected is None or self.controller.selected not in \
                self.controller.runs:
            self._rebuild()

    def _on_problem_change(self) -> None:
        self.collapsed = None  # another model: its own default
        self._model_copy = None
        self._rebuild()

    def showEvent(self, event: QShowEvent) -> None:
        super().showEvent(event)
        if self._dirty and self.step is None:
            self.refresh()

    def shutdown(self) -> None:
        super().shutdown()
        self._generation += 1

    def _on_fit_clicked(self) -> None:
        """The whole graph, however small (the user asked); resizing keeps it whole."""
        super()._on_fit_clicked()
        self._whole = True
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
        self._start_job(work, wanted)

    def _wanted(self, wanted: tuple[int, int, Run]) -> bool:
        serial, generation, run = wanted
        return generation == self._generation and run is self.controller.selected \
            and self.step is None

    def _on_failed(self, wanted: tuple[int, int, Run], message: str) -> None:
        if self._wanted(wanted):
            self._show_empty(f"The graph cannot be built: {message}")
        self._on_job_end()

    def _idle_note(self) -> str:
        return PARTIAL_NOTE if self.partial else ""

    def _show_work(self, wanted: tuple[int, int, Run], work: ModelGraphWork) -> None:
        run, graph = wanted[2], work.graph
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
    def drawn_graph(self) -> ModelGraph | None:
        """The graph drawn (its modules collapsed as on screen), None when there is none."""
        return None if self.shown is None or self.shown.too_big else self.shown

    def _update_step_controls(self) -> None:
        order, k, shown = self.backward_order, self.step, self.shown
        self._show_step_buttons(self.step_button, START_TEXT, NEXT_TEXT)
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
            self.step_label.setText(step_title(k, order, node))
            self.explanation.setText(shown.explain(node.id))
