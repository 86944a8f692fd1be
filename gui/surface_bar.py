"""The surface picker, the formula box (with the formulas typed before) and the start point."""

from __future__ import annotations

from PySide6.QtCore import QSignalBlocker, Qt
from PySide6.QtWidgets import (QComboBox, QDoubleSpinBox, QHBoxLayout, QLabel, QPushButton,
                               QSizePolicy, QWidget)

from core.surfaces import BUILTIN_SURFACES
from gui.controller import Controller

CUSTOM = "custom"


class SurfaceBar(QWidget):
    """Pick a built-in surface, type a formula, or type the start point.

    An invalid formula shows its error (with the column) beside the box and changes nothing.
    """

    def __init__(self, controller: Controller, *, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.controller = controller
        layout = QHBoxLayout(self)
        layout.setContentsMargins(6, 2, 6, 2)

        self.surface_combo = QComboBox()
        for s in BUILTIN_SURFACES:
            self.surface_combo.addItem(s.title, s.name)
            self.surface_combo.setItemData(self.surface_combo.count() - 1,
                                           f"{s.text}\n{s.description}",
                                           Qt.ItemDataRole.ToolTipRole)
        self.surface_combo.addItem("Custom formula", CUSTOM)
        self.surface_combo.setToolTip("Built-in loss surfaces from the optimization literature")
        self.surface_combo.activated.connect(self._on_surface_picked)

        self.formula_box = QComboBox()
        self.formula_box.setEditable(True)
        self.formula_box.setInsertPolicy(QComboBox.InsertPolicy.NoInsert)
        self.formula_box.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Fixed)
        self.formula_box.setMinimumWidth(260)
        self.formula_box.lineEdit().setPlaceholderText(
            "f(x, y) = e.g. sin(x)*cos(y) + 0.1*(x**2 + y**2)")
        self.formula_box.setToolTip(
            "Your own loss f(x, y): numbers, x, y, pi, e, + - * / ** (or ^), parentheses and\n"
            "sin cos tan exp log sqrt abs tanh sinh cosh atan sigmoid softplus min(a,b) max(a,b).\n"
            "Autograd differentiates it exactly. Press Enter to use it.")
        self.formula_box.lineEdit().returnPressed.connect(self.apply_formula)
        self.formula_box.activated.connect(lambda _i: self.apply_formula())
        self.apply_button = QPushButton("Use formula")
        self.apply_button.clicked.connect(self.apply_formula)
        self.formula_error = QLabel()
        self.formula_error.setObjectName("formulaError")
        self.formula_error.setStyleSheet("color: #c0392b;")
        self.formula_error.setWordWrap(True)
        self.formula_error.setMaximumWidth(380)

        self.start_x = _coordinate_box("start x")
        self.start_y = _coordinate_box("start y")
        for box in (self.start_x, self.start_y):
            box.editingFinished.connect(self._on_start_typed)

        layout.addWidget(QLabel("Surface"))
        layout.addWidget(self.surface_combo)
        layout.addWidget(QLabel("f(x, y) ="))
        layout.addWidget(self.formula_box, 1)
        layout.addWidget(self.apply_button)
        layout.addWidget(self.formula_error)
        layout.addSpacing(12)
        layout.addWidget(QLabel("Start"))
        layout.addWidget(self.start_x)
        layout.addWidget(self.start_y)

        controller.sigSurfaceChanged.connect(self._on_surface_change)
        self._on_surface_change()

    def apply_formula(self) -> None:
        text = self.formula_box.currentText()
        error = self.controller.set_formula(text)
        if error:
            self.formula_error.setText(error)
            self.formula_error.setToolTip(error)
        # on success sigSurfaceChanged refreshes everything, the error label included

    def _on_surface_picked(self, index: int) -> None:
        name = self.surface_combo.itemData(index)
        if name == CUSTOM:
            self.formula_box.setFocus()
            self.formula_box.lineEdit().selectAll()
            return
        self.controller.set_surface_name(name)

    def _on_start_typed(self) -> None:
        point = (self.start_x.value(), self.start_y.value())
        if point != tuple(self.controller.session.start):
            self.controller.set_start(point)

    def _on_surface_change(self) -> None:
        session = self.controller.session
        surface = session.surface
        self.formula_error.clear()
        self.formula_error.setToolTip("")
        with QSignalBlocker(self.surface_combo):
            index = self.surface_combo.findData(surface.name if surface.builtin else CUSTOM)
            self.surface_combo.setCurrentIndex(index)
        with QSignalBlocker(self.formula_box):
            self.formula_box.clear()
            self.formula_box.addItems(self.controller.formulas)
            self.formula_box.setEditText(surface.text)
        for box, value in ((self.start_x, session.start[0]), (self.start_y, session.start[1])):
            with QSignalBlocker(box):
                box.setValue(value)


def _coordinate_box(tip: str) -> QDoubleSpinBox:
    box = QDoubleSpinBox()
    box.setRange(-1e6, 1e6)
    box.setDecimals(4)
    box.setSingleStep(0.1)
    box.setKeyboardTracking(False)
    box.setToolTip(f"{tip}: type a value, or click / drag on the surface")
    box.setMinimumWidth(90)
    return box
