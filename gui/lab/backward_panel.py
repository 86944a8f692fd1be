"""A button per way of calling backward; v; and the transcript of the last call.

The transcript is what a Python prompt would show: the PyTorch lines (`>>> Q.backward()`), the
values printed after them, torch's own error when there is one, then why, in a line or two.
"""

from __future__ import annotations

import html

from PySide6.QtCore import QSignalBlocker, Signal
from PySide6.QtWidgets import (QComboBox, QGridLayout, QHBoxLayout, QHeaderView, QLabel,
                               QLineEdit, QPushButton, QTableWidget, QTableWidgetItem, QTextEdit,
                               QVBoxLayout, QWidget)

from core.lab.values import format_tensor
from core.lab.workbench import CallResult, Lab
from gui.lab.style import CODE_COLOUR, ERROR_STYLE, monospace

HINT = "Click a call: it runs on fresh tensors, and its PyTorch lines and results show here."


class BackwardPanel(QWidget):
    """The backward calls of the lab.

    Signals
    -------
    sigCallRequested(str, str)   the call's kind (gui.lab.controller.CALLS) and the intermediate
                                 for retain_grad ("" otherwise)
    sigVEdited(str)              the v text, when the user applies it (Enter or leaving the box)
    """

    sigCallRequested = Signal(str, str)
    sigVEdited = Signal(str)

    def __init__(self, *, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.v_edit = QLineEdit()
        self.v_edit.setFont(monospace())
        self.v_edit.setPlaceholderText("torch.ones_like(Q)")
        self.v_edit.setToolTip("v for Q.backward(gradient=v): Q's shape; blank means ones")
        self.v_edit.editingFinished.connect(lambda: self.sigVEdited.emit(self.v_edit.text()))
        self.v_error = QLabel()
        self.v_error.setObjectName("vError")
        self.v_error.setStyleSheet(ERROR_STYLE)
        self.v_error.setFixedHeight(self.v_error.fontMetrics().lineSpacing() + 4)
        v_row = QHBoxLayout()
        v_row.addWidget(QLabel("v ="))
        v_row.addWidget(self.v_edit, 1)

        self.buttons: dict[str, QPushButton] = {}
        grid = QGridLayout()
        for i, kind in enumerate(("backward", "backward_with_gradient", "sum_backward",
                                  "backward_twice", "backward_twice_retain", "no_grad",
                                  "detach")):
            button = QPushButton()
            button.setFont(monospace())
            button.clicked.connect(lambda _=False, k=kind: self.sigCallRequested.emit(k, ""))
            self.buttons[kind] = button
            grid.addWidget(button, i // 2, i % 2)
        self.intermediate_combo = QComboBox()
        self.intermediate_combo.setToolTip("A named intermediate: write h = a * b; Q = sum(h)")
        retain = QPushButton()
        retain.setFont(monospace())
        retain.clicked.connect(lambda: self.sigCallRequested.emit(
            "retain_grad", self.intermediate_combo.currentText()))
        self.buttons["retain_grad"] = retain
        retain_row = QHBoxLayout()
        retain_row.addWidget(self.intermediate_combo)
        retain_row.addWidget(retain, 1)
        grid.addLayout(retain_row, 3, 1)

        self.transcript = QTextEdit()
        self.transcript.setObjectName("transcript")
        self.transcript.setReadOnly(True)
        self.transcript.setFont(monospace())
        self.transcript.setLineWrapMode(QTextEdit.LineWrapMode.WidgetWidth)

        self.grads_table = QTableWidget(0, 3)
        self.grads_table.setHorizontalHeaderLabels([".grad", "vᵀJ from the Jacobian",
                                                    "closed form"])
        self.grads_table.horizontalHeader().setSectionResizeMode(
            QHeaderView.ResizeMode.Stretch)
        self.grads_table.setFont(monospace())
        self.grads_table.setToolTip("Each input's .grad after the last call; after "
                                    "backward(gradient=v), beside vᵀJ and the closed form")

        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addLayout(v_row)
        layout.addWidget(self.v_error)
        layout.addLayout(grid)
        layout.addWidget(self.transcript, 1)
        layout.addWidget(QLabel("Gradients after the call"))
        layout.addWidget(self.grads_table)

    def show_lab(self, lab: Lab, v_text: str) -> None:
        """New tensors or expression: relabel the buttons for Q's name and clear the results."""
        q = lab.q
        labels = {
            "backward": f"{q}.backward()",
            "backward_with_gradient": f"{q}.backward(gradient=v)",
            "sum_backward": f"{q}.sum().backward()",
            "backward_twice": "backward twice",
            "backward_twice_retain": "twice, retain_graph=True",
            "no_grad": "with torch.no_grad()",
            "detach": f"{q}.detach()",
        }
        for kind, text in labels.items():
            self.buttons[kind].setText(text)
        with QSignalBlocker(self.intermediate_combo):
            self.intermediate_combo.clear()
            self.intermediate_combo.addItems(lab.intermediates)
        has_intermediates = bool(lab.intermediates)
        self.intermediate_combo.setEnabled(has_intermediates)
        self.buttons["retain_grad"].setEnabled(has_intermediates)
        self.buttons["retain_grad"].setText(".retain_grad()" if has_intermediates
                                            else "retain_grad(): name one (h = ...)")
        with QSignalBlocker(self.v_edit):
            self.v_edit.setText(v_text)
        self.v_edit.setPlaceholderText(f"ones{lab.output().shape}  (torch.ones_like({q}))")
        self.v_error.clear()
        self.transcript.setPlainText(HINT)
        self.grads_table.setRowCount(0)
        # As tall as one row per input needs (the transcript takes the rest), at most 5 rows.
        rows = min(len(lab.names), 5)
        self.grads_table.setFixedHeight(self.grads_table.horizontalHeader().sizeHint().height()
                                        + rows * self.grads_table.verticalHeader()
                                        .defaultSectionSize() + 4)

    def show_v_error(self, message: str) -> None:
        self.v_error.setText(message)
        self.v_error.setToolTip(message)

    def clear_v_error(self) -> None:
        self.v_error.clear()

    def show_result(self, result: CallResult, closed_labels: dict[str, str] | None = None) -> None:
        """The call's transcript, and each input's .grad (with vᵀJ and closed form if given).

        `closed_labels` maps an input to the label of its closed form in `result.values`.
        """
        parts = []
        for line in result.text().splitlines():
            escaped = html.escape(line)
            if line.startswith((">>> ", "... ")):
                parts.append(f'<span style="color:{CODE_COLOUR}; font-weight:bold">'
                             f'{escaped}</span>')
            elif result.error and line == result.error:
                parts.append(f'<span style="{ERROR_STYLE}">{escaped}</span>')
            else:
                parts.append(escaped)
        self.transcript.setHtml("<pre style='white-space: pre-wrap'>" + "<br>".join(parts)
                                + "</pre>")
        names = list(result.grads)
        self.grads_table.setRowCount(len(names))
        self.grads_table.setVerticalHeaderLabels(names)
        for row, name in enumerate(names):
            grad = result.grads[name]
            vjp = result.values.get(f"vᵀJ for {name}")
            form = result.values.get((closed_labels or {}).get(name, ""))
            for col, value in enumerate((grad, vjp, form)):
                text = "None" if value is None and col == 0 else \
                    "" if value is None else format_tensor(value)
                self.grads_table.setItem(row, col, QTableWidgetItem(text))
