"""Run on a GL display (see test_surface3d_gl.py): the main window with its 3-D view restored,
and whether the window is active, the surface has the focus and Space plays the race."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[3]))

from PySide6.QtCore import QCoreApplication, QSettings, Qt, QTimer  # noqa: E402

QCoreApplication.setAttribute(Qt.ApplicationAttribute.AA_ShareOpenGLContexts)
from PySide6.QtTest import QTest  # noqa: E402
from PySide6.QtWidgets import QApplication  # noqa: E402

app = QApplication(sys.argv[:1])
from gui.main_window import MainWindow  # noqa: E402

settings = QSettings(sys.argv[1], QSettings.Format.IniFormat)
settings.setValue("surface3d", True)  # a returning user who had the 3-D view open
window = MainWindow(settings=settings, restore=True)
window.show()
window.activateWindow()


def check() -> None:
    focus = QApplication.focusWidget()
    print("3d shown:", window.surface3d_dock is not None and window.surface3d_dock.isVisible())
    print("active:", QApplication.activeWindow() is window)
    print("focus on surface:", focus is window.surface_view)
    QTest.keyClick(focus or window, Qt.Key.Key_Space)
    QTimer.singleShot(300, finish)


def finish() -> None:
    print("playing:", window.controller.playing)
    window.controller.shutdown()
    app.quit()


QTimer.singleShot(2500, check)
app.exec()
