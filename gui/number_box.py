"""Number entry shared by the run cards and the scheduler picker: a spin box that keeps exactly
the number typed, and the short-but-exact format it shows numbers in."""

from __future__ import annotations

import re

from PySide6.QtGui import QValidator
from PySide6.QtWidgets import QDoubleSpinBox, QWidget

_PARTIAL_NUMBER = re.compile(r"[+-]?\d*\.?\d*(?:[eE][+-]?\d*)?")


def format_number(value: float) -> str:
    """Short but exact: 6 significant digits when they say it all, the full repr otherwise."""
    short = f"{value:.6g}"
    return short if float(short) == value else repr(float(value))


class FloatSpinBox(QDoubleSpinBox):
    """A spin box that keeps exactly the number typed (0.0123 stays 0.0123, 1e-7 is fine).

    QDoubleSpinBox rounds to `decimals()` and writes fixed-point text; this one does neither. With
    `log=True` the arrows multiply or divide (by 10**0.1 per step) instead of adding.
    Keyboard tracking is off: a value is committed on Enter or when focus leaves, not per keystroke.
    """

    def __init__(self, *, log: bool = False, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._log = log
        self.setDecimals(323)  # Qt's maximum: no rounding of what the user types
        self.setKeyboardTracking(False)
        self.setCorrectionMode(QDoubleSpinBox.CorrectionMode.CorrectToPreviousValue)

    def textFromValue(self, value: float) -> str:  # noqa: N802 (Qt's name)
        return format_number(value)

    def valueFromText(self, text: str) -> float:  # noqa: N802
        try:
            return float(text.strip())
        except ValueError:
            return self.value()

    def validate(self, text: str, pos: int) -> object:
        stripped = text.strip()
        if not _PARTIAL_NUMBER.fullmatch(stripped):
            return QValidator.State.Invalid, text, pos
        try:
            value = float(stripped)
        except ValueError:
            return QValidator.State.Intermediate, text, pos  # "", "-", "1e", ...
        if self.minimum() <= value <= self.maximum():
            return QValidator.State.Acceptable, text, pos
        return QValidator.State.Intermediate, text, pos

    def stepBy(self, steps: int) -> None:  # noqa: N802
        if not self._log:
            super().stepBy(steps)
            return
        value = self.value()
        if value <= 0:
            value = max(self.minimum(), 1e-8) if steps > 0 else value
        else:
            value = float(f"{value * 10.0 ** (0.1 * steps):.3g}")
        self.setValue(min(self.maximum(), max(self.minimum(), value)))
