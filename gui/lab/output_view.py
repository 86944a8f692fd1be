"""Q as torch made it: value, shape, grad_fn, requires_grad; the shapes; the lab as PyTorch code."""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QFormLayout, QLabel, QPlainTextEdit, QVBoxLayout, QWidget

from core.lab.values import format_tensor
from core.lab.workbench import Lab
from gui.lab.style import monospace


def _value_label() -> QLabel:
    label = QLabel()
    label.setFont(monospace())
    label.setWordWrap(True)
    label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
    return label


class OutputView(QWidget):
    """Shows the output of a Lab (read from core; nothing is computed here)."""

    def __init__(self, *, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.value = _value_label()
        self.shape = _value_label()
        self.grad_fn = _value_label()
        self.requires_grad = _value_label()
        self.shapes = _value_label()
        self.shapes.setWordWrap(False)
        self.shapes.setToolTip("tuple(x.shape) of every tensor in play; a Jacobian dQ/da has "
                               "shape Q.shape + a.shape")
        self.torch_code = QPlainTextEdit()
        self.torch_code.setObjectName("torchCode")
        self.torch_code.setReadOnly(True)
        self.torch_code.setFont(monospace())
        self.torch_code.setLineWrapMode(QPlainTextEdit.LineWrapMode.NoWrap)
        self.torch_code.setMaximumHeight(7 * self.torch_code.fontMetrics().lineSpacing())
        self.torch_code.setToolTip("The same tensors and Q as PyTorch code: paste it into "
                                   "Python to get the numbers shown here")
        outer = QVBoxLayout(self)
        outer.setContentsMargins(0, 0, 0, 0)
        self.form = QFormLayout()
        outer.addLayout(self.form)
        outer.addWidget(QLabel("As PyTorch code"))
        outer.addWidget(self.torch_code)
        self.form.addRow("value", self.value)
        self.form.addRow("shape", self.shape)
        self.form.addRow("grad_fn", self.grad_fn)
        self.form.addRow("requires_grad", self.requires_grad)
        self.form.addRow("shapes", self.shapes)

    def show_lab(self, lab: Lab) -> None:
        out = lab.output()
        q = lab.q
        self.form.labelForField(self.value).setText(f"{q}")
        self.value.setText(format_tensor(out.value))
        self.shape.setText(str(out.shape))
        self.grad_fn.setText(f"<{out.grad_fn}>" if out.grad_fn else "None")
        self.requires_grad.setText(str(out.requires_grad))
        self.torch_code.setPlainText(lab.torch_code())
        self.shapes.setText("\n".join(f"{name:<8} {shape}" for name, shape in lab.shapes().items()))
