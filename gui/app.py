"""QApplication set-up and the main window."""

from __future__ import annotations

import sys

from PySide6.QtWidgets import QApplication

from gui.main_window import MainWindow


def run_app(argv: list[str] | None = None) -> int:
    app = QApplication.instance() or QApplication(argv if argv is not None else sys.argv)
    app.setApplicationName("Optimizer Playground")
    app.setOrganizationName("OptimizerPlayground")
    window = MainWindow()
    window.show()
    window.raise_()
    window.activateWindow()  # keyboard focus from the start, also without a window manager
    return app.exec()
