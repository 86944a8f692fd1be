"""Shared look of the lab's widgets: the monospace font for code and numbers, the error colour."""

from __future__ import annotations

from PySide6.QtGui import QFont, QFontDatabase

ERROR_STYLE = "color: #c0392b;"
CODE_COLOUR = "#1f4e79"
NOTE_STYLE = "color: #555;"


def monospace() -> QFont:
    """The system's fixed-pitch font: code and tensors line up as in a terminal."""
    return QFontDatabase.systemFont(QFontDatabase.SystemFont.FixedFont)
