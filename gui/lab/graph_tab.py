"""The lab's autograd graph: Q's graph for Q.backward(gradient=v), and backward step by step.

The graph is core.graph.build_tensor_graph (through Lab.graph): every node's value, what backward
sent along each edge (the vector-Jacobian products) and the order torch's engine visited the
nodes in. It is drawn by gui.graph_view.GraphView, as the race's graph panel draws a scalar loss,
with small tensors in the boxes. "Step through backward" highlights the nodes one at a time in
backward's order and writes out, for the node at hand, upstream gradient · local Jacobian = what
it sends to each input.

The graph is built and laid out in a worker (gui.worker.Job), only while the tab is on screen;
a result for a lab or a v no longer shown is dropped. A graph with more than the graph panel's
MAX_DRAWN_NODES is only counted, and the tab says so.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from PySide6.QtCore import QEvent, QObject, Qt
from PySide6.QtGui import QShowEvent
from PySide6.QtWidgets import (QHBoxLayout, QLabel, QPushButton, QSizePolicy, QStackedWidget,
                               QVBoxLayout, QWidget)
from torch import Tensor

from core.errors import ExportError
from core.graph import GraphLayout, TensorGraph, compute_layout, structure_key
from core.lab.values import LabError
from core.lab.workbench import Lab
from gui.graph_panel import BUSY_TEXT, MAX_DRAWN_NODES, ask_export_path
from gui.graph_view import GraphView, render_graph
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


class LabGraphTab(QWidget):
    """Q's autograd graph with a "Step through backward" control.

    Public parts, for the workspace and tests: `view` (the GraphView), `graph` (the TensorGraph
    shown, or None), `too_big`, `busy` (a graph is being built), `step` (the index into
    graph.backward_order highlighted, or None), `step_button`, `reset_button`, `step_label`,
    `explanation`, and `show_lab(lab, v_text)`, `refresh()`, `next_step()`, `reset_steps()`,
    `show_step(k)`, `shutdown()`.

    Signals: none; the workspace calls show_lab whenever the lab or v changes.
    """

    def __init__(self, *, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.graph: TensorGraph | None = None
        self.step: int | None = None
        self._lab: Lab | None = None
        self._v_text = ""
        # The (lab, v text) drawn: held, not its id, which a new Lab could reuse once freed.
        self._shown: tuple[Lab, str] | None = None
        self._key: tuple[object, ...] | None = None
        self._layout: GraphLayout | None = None
        self._job: Job | None = None
        self._asked: tuple[Lab, str] | None = None  # what the job running was asked for
        self._serial = 0

        self.view = GraphView(orientation="vertical")  # the pane is tall and narrow
        # As in the race's panel: no scroll bars (dragging pans), the fitted graph gets every
        # pixel, and it is fitted again as the pane resizes until the user zooms or pans.
        self.view.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.view.setVerticalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.view.viewport().installEventFilter(self)
        self._auto_fit = True
        self.empty_label = QLabel()
        self.empty_label.setObjectName("graphEmpty")
        self.empty_label.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.empty_label.setWordWrap(True)
        self.empty_label.setStyleSheet(NOTE_STYLE)
        self.stack = QStackedWidget()
        self.stack.addWidget(self.view)
        self.stack.addWidget(self.empty_label)

        self.step_button = QPushButton(START_TEXT)
        self.step_button.setToolTip("Highlight the next node backward ran, and what it sent")
        self.reset_button = QPushButton("Reset")
        self.reset_button.setToolTip("Stop stepping: show the whole graph after backward")
        for button, texts in ((self.step_button, (START_TEXT, NEXT_TEXT)),
                              (self.reset_button, ("Reset",))):
            # Fixed widths: the buttons never move under the pointer as the texts change.
            button.setFixedWidth(max(button.fontMetrics().horizontalAdvance(t)
                                     for t in texts) + 28)
        self.step_button.clicked.connect(self.next_step)
        self.reset_button.clicked.connect(self.reset_steps)
        self.step_label = QLabel()
        self.step_label.setObjectName("stepLabel")
        self.step_label.setWordWrap(True)
        # The texts below wrap to whatever width the pane has: they never widen it (the first
        # graph drawn used to, moving the middle pane's buttons once).
        self.step_label.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)
        self.busy_label = QLabel()
        self.busy_label.setStyleSheet(NOTE_STYLE)
        self.busy_label.setFixedWidth(self.busy_label.fontMetrics().horizontalAdvance(BUSY_TEXT)
                                      + 12)
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
            button.setFixedWidth(button.fontMetrics().horizontalAdvance(button.text()) + 24)
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
    def busy(self) -> bool:
        return self._job is not None

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

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:
        """Keep the whole graph in view as the pane resizes, until the user pans or zooms."""
        kind = event.type()
        if watched is self.view.viewport():
            if kind == QEvent.Type.Resize and self._auto_fit:
                self.view.fit()
            elif kind in (QEvent.Type.Wheel, QEvent.Type.MouseButtonPress):
                self._auto_fit = False
        return super().eventFilter(watched, event)

    def shutdown(self) -> None:
        """Ask the worker to stop (its result is dropped)."""
        if self._job is not None:
            self._job.cancel()
            self._job = None
        self._serial += 1

    # --- backward, step by step -----------------------------------------------------------------

    @property
    def backward_order(self) -> list[str]:
        """The nodes in the order backward ran them ([] when nothing is drawn)."""
        return [] if self.graph is None or self.graph.too_big else self.graph.backward_order

    def show_step(self, k: int | None) -> str | None:
        """Highlight backward at its k-th node (None: stop stepping); returns that node's id."""
        order = self.backward_order
        if k is not None:
            k = None if not order else max(0, min(k, len(order) - 1))
        self.step = k
        current = self.view.highlight_step(k)
        self._update_step_controls()
        return current

    def next_step(self) -> str | None:
        """Start stepping through backward, or go on to the next node."""
        return self.show_step(0 if self.step is None else self.step + 1)

    def reset_steps(self) -> None:
        self.show_step(None)

    # --- export ---------------------------------------------------------------------------------

    def export_dialog(self, fmt: str) -> bool:
        """Ask for a file name, then export the graph as `fmt` ("png" or "svg")."""
        if self.graph is None or self.graph.too_big:
            self._show_export_message("Nothing to export: no graph is drawn.", error=True)
            return False
        path = ask_export_path(self, fmt)
        return False if path is None else self.export_graph(path)

    def export_graph(self, path: str | Path, size: tuple[int, int] | None = None) -> bool:
        """Write the graph drawn (as on screen: the loss on top) to a .png or .svg file; on
        failure the tab says why and nothing else changes. Returns whether it was written."""
        if self.graph is None or self.graph.too_big:
            self._show_export_message("Nothing to export: no graph is drawn.", error=True)
            return False
        try:
            out = render_graph(self.graph, path, orientation=self.view.orientation,
                               layout=self._layout, size=size)
        except ExportError as e:
            self._show_export_message(f"Export failed: {e}", error=True)
            return False
        self._show_export_message(f"Wrote {out}", error=False)
        return True

    def _show_export_message(self, text: str, error: bool) -> None:
        self.message.setStyleSheet(ERROR_STYLE if error else NOTE_STYLE)
        self.message.setText(text)
        self.message.setToolTip(text)

    def _update_step_controls(self) -> None:
        order, k, graph = self.backward_order, self.step, self.graph
        drawn = graph is not None and not graph.too_big
        self.png_button.setEnabled(drawn)
        self.svg_button.setEnabled(drawn)
        self.step_button.setText(START_TEXT if k is None else NEXT_TEXT)
        self.step_button.setEnabled(bool(order) and (k is None or k < len(order) - 1))
        self.reset_button.setEnabled(k is not None)
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
            self.step_label.setText(f"{k + 1} of {len(order)}: {node.label} "
                                    f"({node.torch_name or node.kind})")
            self.explanation.setFont(font)
            self.explanation.setText(graph.explain(node.id))
