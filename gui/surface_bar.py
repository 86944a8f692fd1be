"""The surface picker, the formula box (with the formulas typed before) and the start point."""

from __future__ import annotations

from PySide6.QtCore import QSignalBlocker, Qt, Signal
from PySide6.QtWidgets import (QComboBox, QDoubleSpinBox, QHBoxLayout, QLabel, QPushButton,
                               QSizePolicy, QWidget)

from core.surfaces import BUILTIN_SURFACES
from gui.controller import Controller

CUSTOM = "custom"
START_DECIMALS = 4  # what the start boxes show
ERROR_BORDER = "QComboBox { border: 2px solid #c0392b; border-radius: 3px; }"


class SurfaceBar(QWidget):
    """Pick a built-in surface, type a formula, or type the start point.

    An invalid formula shows its error (with the column) beside the box and changes nothing: a red
    border, the message on one clipped line of fixed height (the toolbar never grows) and in full
    in the tooltip.

    Signals
    -------
    sigDone()   the user finished with a field (Enter on a formula that works, or on a start
                box): the window gives the focus back to the surface, so Space / → / R work.
    """

    sigDone = Signal()

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
        # One line, clipped, of fixed height: a long message must not make the toolbar taller.
        self.formula_error.setWordWrap(False)
        self.formula_error.setFixedHeight(self.formula_error.fontMetrics().height() + 2)
        self.formula_error.setMaximumWidth(380)
        self.formula_error.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Fixed)

        self.start_x = _coordinate_box("start x")
        self.start_y = _coordinate_box("start y")
        for box in (self.start_x, self.start_y):
            box.editingFinished.connect(self._on_start_typed)
            box.lineEdit().returnPressed.connect(self.sigDone)

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
            self.show_formula_error(error)
        else:  # sigSurfaceChanged has refreshed everything, the error label included
            self.sigDone.emit()

    def show_formula_error(self, error: str) -> None:
        """Red border on the box, the message beside it (one line) and in full in tooltips."""
        self.formula_error.setText(error)
        self.formula_error.setToolTip(error)
        self.formula_box.setStyleSheet(ERROR_BORDER)
        self.formula_box.lineEdit().setToolTip(error)

    def _on_surface_picked(self, index: int) -> None:
        name = self.surface_combo.itemData(index)
        if name == CUSTOM:
            self.formula_box.setFocus()
            self.formula_box.lineEdit().selectAll()
            return
        self.controller.set_surface_name(name)

    def _on_start_typed(self) -> None:
        # The boxes show the start rounded to START_DECIMALS: a coordinate whose box still shows
        # that rounding was not edited and keeps its full value (leaving the box restarts nothing).
        start = tuple(self.controller.session.start)
        point = tuple(start[i] if box.value() == round(start[i], START_DECIMALS) else box.value()
                      for i, box in enumerate((self.start_x, self.start_y)))
        if point != start:
            self.controller.set_start(point)

    def _on_surface_change(self) -> None:
        session = self.controller.session
        surface = session.surface
        self.formula_error.clear()
        self.formula_error.setToolTip("")
        self.formula_box.setStyleSheet("")
        self.formula_box.lineEdit().setToolTip("")
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
    box.setDecimals(START_DECIMALS)
    box.setSingleStep(0.1)
    box.setKeyboardTracking(False)
    box.setToolTip(f"{tip}: type a value, or click / drag on the surface")
    box.setMinimumWidth(90)
    return box
