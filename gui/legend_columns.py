"""Re-flow a pyqtgraph legend into a number of columns.

pyqtgraph's `LegendItem.setColumnCount` refills its grid layout, but `updateSize` then sums the
entries' current heights, which the old, taller geometry has stretched: the legend keeps the
height of all its old rows and spreads the entries over it. A fresh layout, laid out at its
preferred size before the legend measures it, gives the compact legend the columns were for.
"""

from __future__ import annotations

import math

import pyqtgraph as pg
from PySide6.QtCore import QRectF, Qt
from PySide6.QtWidgets import QGraphicsGridLayout


def set_legend_columns(legend: pg.LegendItem, columns: int) -> None:
    """Lay the legend's entries out in `columns` columns, in order, row by row."""
    if columns == legend.columnCount:
        return
    old = legend.layout
    layout = QGraphicsGridLayout()
    layout.setVerticalSpacing(old.verticalSpacing())
    layout.setHorizontalSpacing(old.horizontalSpacing())
    layout.setContentsMargins(*old.getContentsMargins())
    for i in range(old.count() - 1, -1, -1):
        old.removeAt(i)  # the entries stay the legend's children; only the old grid goes
    legend.setLayout(layout)  # (Qt deletes the old layout)
    legend.layout = layout
    legend.columnCount = columns
    legend.rowCount = math.ceil(len(legend.items) / columns)
    for sample, label in legend.items:
        legend._addItemToLayout(sample, label)
    # updateSize sums the entries' current heights: lay them out at their preferred size first,
    # or the old (taller) geometry stretches every row and keeps itself.
    hint = layout.effectiveSizeHint(Qt.SizeHint.PreferredSize)
    legend.setGeometry(QRectF(legend.pos(), hint))
    layout.activate()
    legend.updateSize()
