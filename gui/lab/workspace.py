"""LabWorkspace: the autograd lab in one widget; tensors and an expression in, torch's numbers out.

Top: the preset and its explanation, the expression. Left: the tensors and the output Q. Middle:
the backward calls, v, the transcript of the last call and the gradients. Right, two tabs: the
Jacobian as a labelled table with the JVP (forward mode) beside the VJP, and Q's autograd graph
for the current v with backward step by step. A LabController holds the state; core.lab computes
every number.
"""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QGroupBox, QLabel, QSplitter, QTabWidget, QVBoxLayout, QWidget

from core.lab.workbench import CallResult
from gui.lab.backward_panel import BackwardPanel
from gui.lab.controller import LabController
from gui.lab.expression_box import ExpressionBox
from gui.lab.graph_tab import LabGraphTab
from gui.lab.jacobian_view import JacobianView
from gui.lab.output_view import OutputView
from gui.lab.preset_bar import PresetBar
from gui.lab.style import ERROR_STYLE
from gui.lab.tensor_editor import TensorEditor

FIRST_PRESET = "note"


def _group(title: str, *widgets: QWidget, stretch: int = 0) -> QGroupBox:
    box = QGroupBox(title)
    layout = QVBoxLayout(box)
    for w in widgets:
        layout.addWidget(w)
    box.setProperty("stretch", stretch)
    return box


class LabWorkspace(QWidget):
    """The autograd lab workspace. `controller` may be given (tests); else it makes its own."""

    def __init__(self, parent: QWidget | None = None, *,
                 controller: LabController | None = None) -> None:
        super().__init__(parent)
        self.controller = controller or LabController(parent=self)
        self.preset_bar = PresetBar()
        self.tensor_editor = TensorEditor()
        self.tensor_error = QLabel()
        self.tensor_error.setObjectName("tensorError")
        self.tensor_error.setStyleSheet(ERROR_STYLE)
        self.tensor_error.setWordWrap(True)
        self.tensor_error.setFixedHeight(2 * self.tensor_error.fontMetrics().lineSpacing() + 4)
        self.expression_box = ExpressionBox()
        self.output_view = OutputView()
        self.backward_panel = BackwardPanel()
        self.jacobian_view = JacobianView()
        self.graph_tab = LabGraphTab()

        left = QWidget()
        left_layout = QVBoxLayout(left)
        left_layout.setContentsMargins(0, 0, 4, 0)
        left_layout.addWidget(_group("Tensors", self.tensor_editor, self.tensor_error), 1)
        left_layout.addWidget(_group("Output", self.output_view))
        middle = _group("Backward", self.backward_panel)
        # The Jacobian and the graph share the right pane as tabs: both want its whole height.
        self.right_tabs = QTabWidget()
        self.right_tabs.addTab(self.jacobian_view, "Jacobian")
        self.right_tabs.addTab(self.graph_tab, "Graph")
        right = self.right_tabs
        splitter = QSplitter(Qt.Orientation.Horizontal)
        for pane in (left, middle, right):
            splitter.addWidget(pane)
        splitter.setStretchFactor(0, 3)
        splitter.setStretchFactor(1, 4)
        splitter.setStretchFactor(2, 4)
        splitter.setChildrenCollapsible(False)
        splitter.setSizes([330, 500, 450])
        self.splitter = splitter

        layout = QVBoxLayout(self)
        layout.addWidget(self.preset_bar)
        layout.addWidget(self.expression_box)
        layout.addWidget(splitter, 1)

        c = self.controller
        self.preset_bar.sigPresetPicked.connect(c.set_preset)
        self.tensor_editor.sigTensorsEdited.connect(self._apply_inputs)
        self.expression_box.sigExpressionEntered.connect(lambda _text: self._apply_inputs())
        self.backward_panel.sigCallRequested.connect(c.call)
        self.backward_panel.sigVEdited.connect(self._on_v_edited)
        self.jacobian_view.sigTangentEdited.connect(c.set_tangent_text)
        c.sigPresetChanged.connect(self._on_preset_change)
        c.sigLabChanged.connect(self._on_lab_change)
        c.sigProductsChanged.connect(self._on_products_change)
        c.sigInputError.connect(self._on_input_error)
        c.sigCallDone.connect(self._on_call_done)
        c.set_preset(FIRST_PRESET)

    def show_graph(self) -> LabGraphTab:
        """Bring the graph tab to the front (it builds Q's graph when shown)."""
        self.right_tabs.setCurrentWidget(self.graph_tab)
        return self.graph_tab

    def shutdown(self) -> None:
        """Ask background work (the graph's worker) to stop; for the window's close."""
        self.graph_tab.shutdown()

    def _apply_inputs(self) -> None:
        self.controller.set_inputs(self.tensor_editor.specs(), self.expression_box.text())

    def _on_v_edited(self, text: str) -> None:
        if self.controller.set_v_text(text) is None:
            self.backward_panel.clear_v_error()

    def _on_preset_change(self, preset) -> None:  # type: ignore[no-untyped-def]
        self.preset_bar.show_preset(preset)
        if preset is not None:
            self.tensor_editor.set_specs(preset.tensors)
            self.expression_box.set_text(preset.expression)

    def _on_lab_change(self) -> None:
        lab = self.controller.lab
        if lab is None:
            return
        self.tensor_error.clear()
        self.expression_box.clear_error()
        self.output_view.show_lab(lab)
        self.backward_panel.show_lab(lab, self.controller.v_text)
        self.jacobian_view.show_lab(lab, self.controller.v_text, self.controller.tangent_texts)
        self.graph_tab.show_lab(lab, self.controller.v_text)

    def _on_products_change(self) -> None:
        lab = self.controller.lab
        if lab is not None:
            self.jacobian_view.show_products(lab, self.controller.v_text,
                                             self.controller.tangent_texts)
            self.graph_tab.show_lab(lab, self.controller.v_text)  # (a new v: new gradients)

    def _on_input_error(self, where: str, message: str, column: int) -> None:
        if where == "expression":
            self.tensor_error.clear()
            self.expression_box.show_error(message, column or None)
        elif where == "tensors":
            self.expression_box.clear_error()
            self.tensor_error.setText(message)
            self.tensor_error.setToolTip(message)
        elif where == "tangent":
            self.jacobian_view.show_tangent_error(message)
        else:
            self.backward_panel.show_v_error(message)

    def _on_call_done(self, result: CallResult) -> None:
        lab = self.controller.lab
        labels = {} if lab is None else {n: lab.closed_form_label(n) for n in lab.closed_forms}
        self.backward_panel.show_result(result, labels)
