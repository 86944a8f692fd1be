"""The Qt side of the playground. PySide6 is imported before pyqtgraph so pyqtgraph binds to it."""

import PySide6.QtCore  # noqa: F401  (must come before pyqtgraph)
import pyqtgraph as pg

# Images are (rows = y, columns = x); thin cosmetic pens are fast, antialiasing costs frames.
pg.setConfigOptions(imageAxisOrder="row-major", antialias=False, background="w", foreground="k")
