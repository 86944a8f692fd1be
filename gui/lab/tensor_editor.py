"""The tensors editor: a row per named tensor (name, value or maker, requires_grad)."""

from __future__ import annotations

from PySide6.QtCore import QSignalBlocker, Qt, Signal
from PySide6.QtWidgets import (QAbstractItemView, QHBoxLayout, QHeaderView, QPushButton,
                               QTableWidget, QTableWidgetItem, QVBoxLayout, QWidget)

from core.lab.values import TensorSpec
from core.lab.workbench import MAX_TENSORS

NAME, VALUE, GRAD = 0, 1, 2
MAX_ROWS = MAX_TENSORS  # one row per tensor the lab takes: "+" is disabled at its limit


class TensorEditor(QWidget):
    """Edit the lab's input tensors. Values are text: `[2., 3.]`, `ones(2, 3)`, `randn(2, seed=0)`.

    Signals
    -------
    sigTensorsEdited()   a name, value or requires_grad changed, or a row was added or removed
    """

    sigTensorsEdited = Signal()

    def __init__(self, *, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.table = QTableWidget(0, 3)
        self.table.setHorizontalHeaderLabels(["name", "value", "requires_grad"])
        self.table.verticalHeader().setVisible(False)
        header = self.table.horizontalHeader()
        header.setSectionResizeMode(NAME, QHeaderView.ResizeMode.ResizeToContents)
        header.setSectionResizeMode(VALUE, QHeaderView.ResizeMode.Stretch)
        header.setSectionResizeMode(GRAD, QHeaderView.ResizeMode.ResizeToContents)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setToolTip(
            "A value is numbers as PyTorch prints them, [2., 3.] or [[1., 2.], [3., 4.]], or a "
            "maker:\nzeros(2), ones(2, 3), arange(3), randn(2, seed=0). Double-click to edit; "
            "untick requires_grad to freeze a tensor.")
        self.table.itemChanged.connect(self._on_item_change)
        self.add_button = QPushButton("Add tensor")
        self.add_button.clicked.connect(self.add_row)
        self.remove_button = QPushButton("Remove")
        self.remove_button.clicked.connect(self.remove_selected)
        buttons = QHBoxLayout()
        buttons.addWidget(self.add_button)
        buttons.addWidget(self.remove_button)
        buttons.addStretch(1)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.table)
        layout.addLayout(buttons)

    def specs(self) -> list[TensorSpec]:
        """The rows as TensorSpecs, in order (checked by core.lab when the Lab is built)."""
        out = []
        for row in range(self.table.rowCount()):
            name = self.table.item(row, NAME).text().strip()
            value = self.table.item(row, VALUE).text()
            grad = self.table.item(row, GRAD).checkState() == Qt.CheckState.Checked
            out.append(TensorSpec(name, value, grad))
        return out

    def set_specs(self, specs: list[TensorSpec] | tuple[TensorSpec, ...]) -> None:
        """Show `specs` (a preset's), without emitting sigTensorsEdited."""
        with QSignalBlocker(self.table):
            self.table.setRowCount(0)
            for spec in specs:
                self._append(spec)
        self._update_buttons()

    def set_requires_grad(self, name: str, on: bool) -> None:
        """Tick or untick a tensor's requires_grad, as a click would (emits sigTensorsEdited)."""
        for row in range(self.table.rowCount()):
            if self.table.item(row, NAME).text().strip() == name:
                self.table.item(row, GRAD).setCheckState(
                    Qt.CheckState.Checked if on else Qt.CheckState.Unchecked)
                return
        raise KeyError(name)

    def set_value(self, name: str, text: str) -> None:
        """Type a tensor's value text, as an edit would (emits sigTensorsEdited)."""
        for row in range(self.table.rowCount()):
            if self.table.item(row, NAME).text().strip() == name:
                self.table.item(row, VALUE).setText(text)
                return
        raise KeyError(name)

    def add_row(self) -> None:
        if self.table.rowCount() >= MAX_ROWS:
            return
        taken = {s.name for s in self.specs()}
        name = next(n for n in "abcdfghkmnpuwxyz" if n not in taken)
        with QSignalBlocker(self.table):
            self._append(TensorSpec(name, "[1., 1.]"))
        self._update_buttons()
        self.sigTensorsEdited.emit()

    def remove_selected(self) -> None:
        rows = sorted({i.row() for i in self.table.selectedIndexes()}, reverse=True)
        if not rows and self.table.rowCount():
            rows = [self.table.rowCount() - 1]
        with QSignalBlocker(self.table):
            for row in rows:
                self.table.removeRow(row)
        self._update_buttons()
        self.sigTensorsEdited.emit()

    def _append(self, spec: TensorSpec) -> None:
        row = self.table.rowCount()
        self.table.insertRow(row)
        self.table.setItem(row, NAME, QTableWidgetItem(spec.name))
        self.table.setItem(row, VALUE, QTableWidgetItem(spec.text))
        grad = QTableWidgetItem()
        grad.setFlags(Qt.ItemFlag.ItemIsUserCheckable | Qt.ItemFlag.ItemIsEnabled)
        grad.setCheckState(Qt.CheckState.Checked if spec.requires_grad
                           else Qt.CheckState.Unchecked)
        self.table.setItem(row, GRAD, grad)

    def _update_buttons(self) -> None:
        self.add_button.setEnabled(self.table.rowCount() < MAX_ROWS)
        self.remove_button.setEnabled(self.table.rowCount() > 0)

    def _on_item_change(self, _item: QTableWidgetItem) -> None:
        self.sigTensorsEdited.emit()
