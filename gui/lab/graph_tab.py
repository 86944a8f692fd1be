"""The lab's autograd graph: Q's graph for Q.backward(gradient=v), and backward step by step.

The graph is core.graph.build_tensor_graph (through Lab.graph): every node's value, what backward
sent along each edge (the vector-Jacobian products) and the order torch's engine visited the
nodes in. It is drawn by gui.graph_view.GraphView, as the race's graph panel draws a scalar loss,
with small tensors in the boxes (the view, stepping and export: gui.graph_panel_base.GraphPane).
"Step through backward" highlights the nodes one at a time in backward's order and writes out,
for the node at hand, upstream gradient · local Jacobian = what it sends to each input.

The graph is built and laid out in a worker (gui.worker.Job), only while the tab is on screen;
a result for a lab or a v no longer shown is dropped. A graph with more than the graph panel's
MAX_DRAWN_NODES is only counted, and the tab says so.
"""

from __future__ import annotations

from dataclasses import dataclass

from PySide6.QtCore import Qt
from PySide6.QtGui import QShowEvent
from PySide6.QtWidgets import QHBoxLayout, QLabel, QPushButton, QSizePolicy, QVBoxLayout, QWidget
from torch import Tensor

from core.graph import GraphLayout, TensorGraph, compute_layout, structure_key
from core.lab.values import LabError
from core.lab.workbench import Lab
from gui.graph_panel import MAX_DRAWN_NODES
from gui.graph_panel_base import BUSY_TEXT, GraphPane, busy_label, fix_width, step_title
from gui.lab.style import ERROR_STYLE, NOTE_STYLE, monospace
from gui.worker import Job, JobState

START_TEXT = "Step through backward"
NEXT_TEXT = "Step ▶"
STEP_HINT = ("Follow {call} node by node, in the order torch's engine ran them: each node "
             "multiplies the gradient that reached it (upstream) by its local Jacobian and sends "
             "the product (a vector-Jacobian product) on to its inputs; a leaf's AccumulateGrad "
             "adds up what reached it into .grad.")


def too_big_text(q: str, nodes: int) -> str:
    """What the tab says instead of drawing a graph with more than MAX_DRAWN_NODES nodes."""
    return (f"{q}'s graph has {nodes} autograd nodes (ops and AccumulateGrad); the lab draws at "
            f"most {MAX_DRAWN_NODES}: a drawing that big takes seconds to lay out and is "
            "unreadable anyway. The gradients and the Jacobian are in the other panes; a "
            "shorter expression gives a smaller graph.")


@dataclass
class LabGraphWork:
    """A graph built off the GUI thread, with its layout (None: the structure drawn already)."""

    graph: TensorGraph
    layout: GraphLayout | None
    key: tuple[object, ...] | None


def lab_graph_work(lab: Lab, v: Tensor | None, known_key: tuple[object, ...] | None = None,
                   state: JobState | None = None) -> LabGraphWork | None:
    """Build Q's graph for v (at most MAX_DRAWN_NODES nodes extracted) and lay it out unless its
    structure is `known_key`. A plain function for a worker; None once `state` asks to stop."""
    graph = lab.graph(v, max_nodes=MAX_DRAWN_NODES)
    if graph.too_big:
        return LabGraphWork(graph, None, None)
    if state is not None and state.is_interruption_requested():
        return None
    key = structure_key(graph)
    return LabGraphWork(graph, compute_layout(graph) if key != known_key else None, key)


class LabGraphTab(GraphPane):
    """Q's autograd graph with a "Step through backward" control.

    Public parts, for the workspace and tests: `view` (the GraphView), `graph` (the TensorGraph
    shown, or None), `too_big`, `busy` (a graph is being built), `step` (the index into
    graph.backward_order highlighted, or None), `step_button`, `reset_button`, `step_label`,
    `explanation`, and `show_lab(lab, v_text)`, `refresh()`, `next_step()`, `reset_steps()`,
    `show_step(k)`, `shutdown()`.

    Signals: none; the workspace calls show_lab whenever the lab or v changes.
    """

    def __init__(self, *, parent: QWidget | None = None) -> None:
        # The pane is tall and narrow: the graph drawn from Q down. As in the race's panel, the
        # fitted graph gets every pixel and is fitted again as the pane resizes (GraphPane).
        super().__init__(parent=parent, orientation="vertical")
        self.graph: TensorGraph | None = None
        self._lab: Lab | None = None
        self._v_text = ""
        # The (lab, v text) drawn: held, not its id, which a new Lab could reuse once freed.
        self._shown: tuple[Lab, str] | None = None
        self._asked: tuple[Lab, str] | None = None  # what the job running was asked for
        self._serial = 0
        self.empty_label.setObjectName("graphEmpty")

        self.step_button = QPushButton(START_TEXT)
        self.step_button.setToolTip("Highlight the next node backward ran, and what it sent")
        self.reset_button = QPushButton("Reset")
        self.reset_button.setToolTip("Stop stepping: show the whole graph after backward")
        # Fixed widths: the buttons never move under the pointer as the texts change.
        fix_width(self.step_button, (START_TEXT, NEXT_TEXT), extra=28)
        fix_width(self.reset_button, extra=28)
        self.step_button.clicked.connect(self.next_step)
        self.reset_button.clicked.connect(self.reset_steps)
        self.step_label = QLabel()
        self.step_label.setObjectName("stepLabel")
        self.step_label.setWordWrap(True)
        # The texts below wrap to whatever width the pane has: they never widen it (the first
        # graph drawn used to, moving the middle pane's buttons once).
        self.step_label.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)
        self.busy_label = busy_label()
        self.explanation = QLabel()
        self.explanation.setObjectName("stepExplanation")
        self.explanation.setWordWrap(True)
        self.explanation.setTextFormat(Qt.TextFormat.PlainText)
        self.explanation.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.explanation.setAlignment(Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignTop)
        self.explanation.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)
        self.empty_label.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Ignored)

        # PNG / SVG of the graph drawn, through the race panel's export code (render_graph).
        self.png_button = QPushButton("PNG…")
        self.png_button.setToolTip("Export the graph as a PNG image")
        self.svg_button = QPushButton("SVG…")
        self.svg_button.setToolTip("Export the graph as an SVG drawing")
        for button, fmt in ((self.png_button, "png"), (self.svg_button, "svg")):
            fix_width(button, extra=24)
            button.clicked.connect(lambda _=False, fmt=fmt: self.export_dialog(fmt))
        self.message = QLabel()
        self.message.setObjectName("exportMessage")
        self.message.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)
        self.message.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        exports = QHBoxLayout()
        exports.addWidget(self.message, 1)
        exports.addWidget(self.png_button)
        exports.addWidget(self.svg_button)

        row = QHBoxLayout()
        row.addWidget(self.step_button)
        row.addWidget(self.reset_button)
        row.addStretch(1)
        row.addWidget(self.busy_label)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addLayout(exports)
        layout.addWidget(self.stack, 1)
        layout.addLayout(row)
        layout.addWidget(self.step_label)  # its own line: beside the buttons it had no room
        layout.addWidget(self.explanation)
        self._update_step_controls()

    # --- what to show ---------------------------------------------------------------------------

    @property
    def too_big(self) -> bool:
        return self.graph is not None and self.graph.too_big

    def show_lab(self, lab: Lab, v_text: str) -> None:
        """The lab and the v of Q.backward(gradient=v) to draw the graph for (built when the
        tab is on screen; the same lab and v again change nothing)."""
        self._lab, self._v_text = lab, v_text
        if self.isVisible():
            self.refresh()

    def refresh(self) -> None:
        """Build the graph for the lab and v shown, in a worker, unless it is drawn already."""
        lab = self._lab
        def same(pair: tuple[Lab, str] | None) -> bool:
            return pair is not None and pair[0] is lab and pair[1] == self._v_text

        if lab is None or same(self._shown) or (self._job is not None and same(self._asked)):
            return  # drawn already, or on its way
        try:
            v = None if lab.output().is_scalar and not self._v_text.strip() else \
                lab.parse_gradient(self._v_text)
        except LabError as e:  # (the controller refuses a bad v before it gets here)
            self._show_message(str(e), error=True)
            return
        if self._job is not None:
            self._job.cancel()  # its result is dropped: a newer one is on its way
        self._serial += 1
        serial, wanted, key = self._serial, (lab, self._v_text), self._key
        job = Job(lambda state: lab_graph_work(lab, v, key, state), parent=self)
        job.sigFinished.connect(lambda work: self._on_graph_done(serial, wanted, work))
        job.sigFailed.connect(lambda message: self._on_graph_failed(serial, message))
        self._job, self._asked = job, wanted
        self.busy_label.setText(BUSY_TEXT)
        job.start()

    def _on_graph_done(self, serial: int, wanted: tuple[Lab, str],
                       work: LabGraphWork | None) -> None:
        if serial != self._serial or work is None:
            return  # for a lab or a v no longer wanted
        self._job = None
        self.busy_label.clear()
        self._shown = wanted
        graph = work.graph
        self.graph = graph
        if graph.too_big:
            self._key, self._layout = None, None
            self.step = None
            self._show_message(too_big_text(graph.q, graph.node_count), error=False)
        else:
            if work.key != self._key:  # a new structure: stepping starts again
                self.step = None
                self._auto_fit = True
                self._key, self._layout = work.key, work.layout
            self.view.set_graph(graph, self._layout)
            self.view.highlight_step(self.step)
            self.stack.setCurrentWidget(self.view)
        self._update_step_controls()

    def _on_graph_failed(self, serial: int, message: str) -> None:
        if serial != self._serial:
            return
        self._job = None
        self.busy_label.clear()
        self.graph, self.step, self._key, self._layout = None, None, None, None
        self._show_message(f"the graph could not be built: {message}", error=True)
        self._update_step_controls()

    def _show_message(self, text: str, error: bool) -> None:
        self.empty_label.setStyleSheet(ERROR_STYLE if error else NOTE_STYLE)
        self.empty_label.setText(text)
        self.stack.setCurrentWidget(self.empty_label)

    def showEvent(self, event: QShowEvent) -> None:
        super().showEvent(event)
        self.refresh()  # built only when seen: a lab edited behind another tab costs nothing

    def shutdown(self) -> None:
        """Ask the worker to stop (its result is dropped)."""
        if self._job is not None:
            self._job.cancel()
            self._job = None
        self._serial += 1

    # --- backward, step by step -----------------------------------------------------------------

    @property
    def drawn_graph(self) -> TensorGraph | None:
        """The graph drawn (as on screen: Q on top), None when there is none."""
        return None if self.graph is None or self.graph.too_big else self.graph

    # --- export ---------------------------------------------------------------------------------

    def _show_export_message(self, text: str, error: bool) -> None:
        """On the line above the graph (always there), its tip the whole text."""
        self.message.setStyleSheet(ERROR_STYLE if error else NOTE_STYLE)
        self.message.setText(text)
        self.message.setToolTip(text)

    def _update_step_controls(self) -> None:
        order, k, graph = self.backward_order, self.step, self.graph
        drawn = graph is not None and not graph.too_big
        self.png_button.setEnabled(drawn)
        self.svg_button.setEnabled(drawn)
        self._show_step_buttons(self.step_button, START_TEXT, NEXT_TEXT)
        font = monospace()
        if graph is None or graph.too_big:
            self.step_label.setText("")
            self.explanation.setText("")
        elif k is None:
            self.step_label.setStyleSheet(NOTE_STYLE)
            call = f"{graph.q}.backward(" + ("" if graph.gradient is None else
                                             "gradient=v") + ")"
            if order:
                self.step_label.setText(f"{len(order)} nodes in backward's order")
                self.explanation.setFont(self.font())
                self.explanation.setText(STEP_HINT.format(call=call))
            else:
                self.step_label.setText("Nothing to step through")
                self.explanation.setFont(font)
                self.explanation.setText(graph.explain(graph.root))
        else:
            node = graph.node(order[k])
            self.step_label.setStyleSheet("font-weight: bold;")
            self.step_label.setText(step_title(k, order, node))
            self.explanation.setFont(font)
            self.explanation.setText(graph.explain(node.id))
