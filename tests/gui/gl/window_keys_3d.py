"""Run on a GL display (see test_surface3d_gl.py): the main window with its 3-D view restored
instead of the heatmap, and whether the window is active, the 3-D view has the focus and Space
plays the race."""

import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[3]))

from PySide6.QtCore import QCoreApplication, QSettings, Qt, QTimer  # noqa: E402

QCoreApplication.setAttribute(Qt.ApplicationAttribute.AA_ShareOpenGLContexts)
from PySide6.QtTest import QTest  # noqa: E402
from PySide6.QtWidgets import QApplication  # noqa: E402

app = QApplication(sys.argv[:1])
from gui.main_window import MainWindow  # noqa: E402

settings = QSettings(sys.argv[1], QSettings.Format.IniFormat)
settings.setValue("surface_mode", "3d")  # a returning user who had the 3-D view on
window = MainWindow(settings=settings, restore=True)
window.show()
window.activateWindow()


def check() -> None:
    focus = QApplication.focusWidget()
    view = window.surface3d_view
    print("3d shown:", view is not None and view.isVisible()
          and not window.surface_view.isVisible())
    print("active:", QApplication.activeWindow() is window)
    print("focus on surface:", view is not None and focus is view.gl_widget)
    QTest.keyClick(focus or window, Qt.Key.Key_Space)
    QTimer.singleShot(300, finish)


def finish() -> None:
    print("playing:", window.controller.playing)
    window.controller.shutdown()
    app.quit()


deadline = time.monotonic() + 20  # a busy machine takes seconds to make the first GL view


def settled() -> None:
    """Check once the 3-D view is up and the window has taken its activation back (or give up
    at the deadline and report what is)."""
    view = window.surface3d_view
    ready = (view is not None and view.isVisible() and QApplication.activeWindow() is window
             and QApplication.focusWidget() is view.gl_widget)
    if ready or time.monotonic() > deadline:
        check()
    else:
        QTimer.singleShot(100, settled)


QTimer.singleShot(500, settled)
app.exec()
