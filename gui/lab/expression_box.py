"""The expression box: the program over the tensors, and its error (with the column) below."""

from __future__ import annotations

from PySide6.QtCore import Signal
from PySide6.QtWidgets import QHBoxLayout, QLabel, QLineEdit, QPushButton, QVBoxLayout, QWidget

from core.lab.expression import help_text
from gui.lab.style import ERROR_STYLE, monospace


class ExpressionBox(QWidget):
    """Type Q (Enter or "Use" applies it); an error shows below in a fixed-height line.

    Signals
    -------
    sigExpressionEntered(str)   the text, when the user applies it
    """

    sigExpressionEntered = Signal(str)

    def __init__(self, *, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.edit = QLineEdit()
        self.edit.setFont(monospace())
        self.edit.setPlaceholderText("e.g. 3*a**3 - b**2   or   h = a * b; Q = sum(h)")
        self.edit.setToolTip(help_text())
        self.edit.returnPressed.connect(self.apply)
        self.apply_button = QPushButton("Use")
        self.apply_button.clicked.connect(self.apply)
        self.error = QLabel()
        self.error.setObjectName("expressionError")
        self.error.setStyleSheet(ERROR_STYLE)
        self.error.setWordWrap(True)
        # Two lines reserved: an error appearing or going never moves the rest of the layout.
        self.error.setFixedHeight(2 * self.error.fontMetrics().lineSpacing() + 4)
        row = QHBoxLayout()
        row.addWidget(QLabel("Expression"))
        row.addWidget(self.edit, 1)
        row.addWidget(self.apply_button)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addLayout(row)
        layout.addWidget(self.error)

    def text(self) -> str:
        return self.edit.text()

    def set_text(self, text: str) -> None:
        self.edit.setText(text)
        self.clear_error()

    def show_error(self, message: str, column: int | None = None) -> None:
        self.error.setText(message)
        self.error.setToolTip(message)
        if column is not None:  # put the cursor where the problem is
            self.edit.setCursorPosition(max(0, column - 1))

    def clear_error(self) -> None:
        self.error.clear()
        self.error.setToolTip("")

    def apply(self) -> None:
        self.sigExpressionEntered.emit(self.edit.text())
