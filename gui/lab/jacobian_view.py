"""The Jacobian of Q for one input as a labelled table, and the JVP (forward) beside the VJP.

Rows are Q's elements (Q[0], Q[1], ...), columns the input's (a[0], a[1], ...): row i is the
gradient of Q[i]. vᵀJ weights the rows by v (what backward computes); J·t weights the columns by
a tangent t (what forward mode, torch.func.jvp, computes).
"""

from __future__ import annotations

from typing import Any

from PySide6.QtCore import (QAbstractTableModel, QModelIndex, QPersistentModelIndex,
                            QSignalBlocker, Qt, Signal)
from PySide6.QtWidgets import (QComboBox, QFormLayout, QGroupBox, QHBoxLayout, QHeaderView,
                               QLabel, QLineEdit, QTableView, QVBoxLayout, QWidget)

from core.lab.values import format_tensor
from core.lab.workbench import Lab
from gui.lab.style import ERROR_STYLE, NOTE_STYLE, monospace


ROOT = QModelIndex()  # the parent of every cell of a table model


def _number(v: float) -> str:
    return f"{v:.6g}"


class JacobianModel(QAbstractTableModel):
    """A Jacobian matrix with its row and column labels, for a QTableView.

    A model rather than a QTableWidget: Q may have 256 elements and an input 64, and 16 000
    items with resizing headers took seconds to set up; the model hands out cells on demand.
    """

    def __init__(self) -> None:
        super().__init__()
        self.values: list[list[float]] = []
        self.rows: list[str] = []
        self.cols: list[str] = []

    def set_matrix(self, values: list[list[float]], rows: list[str], cols: list[str]) -> None:
        self.beginResetModel()
        self.values, self.rows, self.cols = values, rows, cols
        self.endResetModel()

    def rowCount(self, parent: QModelIndex | QPersistentModelIndex = ROOT) -> int:
        return 0 if parent.isValid() else len(self.rows)

    def columnCount(self, parent: QModelIndex | QPersistentModelIndex = ROOT) -> int:
        return 0 if parent.isValid() else len(self.cols)

    def data(self, index: QModelIndex | QPersistentModelIndex,
             role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if role == Qt.ItemDataRole.DisplayRole and index.isValid():
            return _number(self.values[index.row()][index.column()])
        if role == Qt.ItemDataRole.TextAlignmentRole:
            return int(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
        return None

    def headerData(self, section: int, orientation: Qt.Orientation,
                   role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if role != Qt.ItemDataRole.DisplayRole:
            return None
        labels = self.cols if orientation == Qt.Orientation.Horizontal else self.rows
        return labels[section] if 0 <= section < len(labels) else None

    def cell(self, row: int, column: int) -> str:
        """The text shown in a cell (for tests and copying)."""
        return str(self.data(self.index(row, column)))


class JacobianView(QWidget):
    """The Jacobian table, the tangents for the JVP, and the JVP and VJP results.

    Signals
    -------
    sigTangentEdited(str, str)   an input's name and its tangent text, when applied
    """

    sigTangentEdited = Signal(str, str)

    def __init__(self, *, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.input_combo = QComboBox()
        self.input_combo.setToolTip("The input the Jacobian is taken with respect to")
        self.input_combo.currentIndexChanged.connect(self._on_input_change)
        self.caption = QLabel()
        self.caption.setStyleSheet(NOTE_STYLE)
        self.model = JacobianModel()
        self.table = QTableView()
        self.table.setObjectName("jacobianTable")
        self.table.setFont(monospace())
        self.table.setModel(self.model)
        header = self.table.horizontalHeader()
        # A fixed width that fits any number as shown (.6g): measuring 16 000 cells is slow.
        header.setSectionResizeMode(QHeaderView.ResizeMode.Interactive)
        header.setDefaultSectionSize(self.table.fontMetrics().horizontalAdvance("-0.0000000")
                                     + 8)
        self.table.setEditTriggers(QTableView.EditTrigger.NoEditTriggers)
        pick = QHBoxLayout()
        pick.addWidget(QLabel("Jacobian with respect to"))
        pick.addWidget(self.input_combo)
        pick.addStretch(1)

        self.tangent_box = QGroupBox("JVP  J·t  (forward mode, torch.func.jvp)")
        self.tangent_form = QFormLayout()
        self.tangent_edits: dict[str, QLineEdit] = {}
        self.tangent_error = QLabel()
        self.tangent_error.setStyleSheet(ERROR_STYLE)
        self.tangent_error.setFixedHeight(self.tangent_error.fontMetrics().lineSpacing() + 4)
        self.jvp_label = QLabel()
        self.jvp_label.setObjectName("jvp")
        self.jvp_label.setFont(monospace())
        self.jvp_label.setWordWrap(True)
        tangent_layout = QVBoxLayout(self.tangent_box)
        tangent_layout.addLayout(self.tangent_form)
        tangent_layout.addWidget(self.tangent_error)
        tangent_layout.addWidget(self.jvp_label)
        self.vjp_box = QGroupBox("VJP  vᵀJ  (reverse mode: backward)")
        self.vjp_label = QLabel()
        self.vjp_label.setObjectName("vjp")
        self.vjp_label.setFont(monospace())
        self.vjp_label.setWordWrap(True)
        vjp_layout = QVBoxLayout(self.vjp_box)
        vjp_layout.addWidget(self.vjp_label)
        products = QVBoxLayout()
        products.addWidget(self.tangent_box)
        products.addWidget(self.vjp_box)

        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addLayout(pick)
        layout.addWidget(self.caption)
        layout.addWidget(self.table, 1)
        layout.addLayout(products)
        self._matrices: dict = {}  # type: ignore[type-arg]

    def show_lab(self, lab: Lab, v_text: str, tangent_texts: dict[str, str]) -> None:
        """Redraw from `lab`: the Jacobians, the tangent editors, the JVP and the VJP."""
        self._matrices = lab.jacobian_matrices()
        current = self.input_combo.currentText()
        with QSignalBlocker(self.input_combo):
            self.input_combo.clear()
            self.input_combo.addItems(list(self._matrices))
            if current in self._matrices:
                self.input_combo.setCurrentText(current)
        self._q = lab.q
        self._on_input_change()
        self._show_tangents(lab, tangent_texts)
        self.show_products(lab, v_text, tangent_texts)

    def _on_input_change(self, _index: int = 0) -> None:
        name = self.input_combo.currentText()
        if name not in self._matrices:
            self.model.set_matrix([], [], [])
            self.caption.setText("No input has requires_grad=True: there is nothing to "
                                 "differentiate.")
            return
        matrix, rows, cols = self._matrices[name]
        self.caption.setText(f"d{self._q}/d{name}: row i is the gradient of {self._q}[i]; "
                             f"torch's shape {tuple(matrix.shape)} as a matrix")
        self.model.set_matrix(matrix.tolist(), rows, cols)

    def _show_tangents(self, lab: Lab, tangent_texts: dict[str, str]) -> None:
        if list(self.tangent_edits) != lab.trainable:
            while self.tangent_form.rowCount():
                self.tangent_form.removeRow(0)
            self.tangent_edits = {}
            for name in lab.trainable:
                edit = QLineEdit()
                edit.setFont(monospace())
                edit.editingFinished.connect(
                    lambda n=name, e=edit: self.sigTangentEdited.emit(n, e.text()))
                self.tangent_edits[name] = edit
                self.tangent_form.addRow(f"t for {name}", edit)
        leaves = lab.leaves()
        for name, edit in self.tangent_edits.items():
            with QSignalBlocker(edit):
                edit.setText(tangent_texts.get(name, ""))
            edit.setPlaceholderText(f"ones{tuple(leaves[name].shape)}")

    def show_products(self, lab: Lab, v_text: str, tangent_texts: dict[str, str]) -> None:
        """The JVP for the tangents (forward mode, and from J) and the VJP for v."""
        self.tangent_error.clear()
        q = lab.q
        value, forward, from_jacobian = lab.jvp(lab.parse_tangents(tangent_texts))
        self.jvp_label.setText(f"jvp = {format_tensor(forward)}\n"
                               f"J·t from the table = {format_tensor(from_jacobian)}\n"
                               f"shape {tuple(forward.shape)}, {q}'s shape")
        v = lab.parse_gradient(v_text)
        lines = [f"v = {format_tensor(v)}"]
        for name, vjp in lab.vjp_from_jacobian(v).items():
            lines.append(f"vᵀJ for {name} = {format_tensor(vjp)}  shape {tuple(vjp.shape)}")
        lines.append(f"(= .grad after {q}.backward(gradient=v))")
        self.vjp_label.setText("\n".join(lines))

    def show_tangent_error(self, message: str) -> None:
        self.tangent_error.setText(message)
        self.tangent_error.setToolTip(message)
