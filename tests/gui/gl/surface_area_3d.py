"""Run on a GL display (see test_surface_area_gl.py): a window whose central area is a
SurfaceArea, as the main window hosts it, switched 2-D -> 3-D -> 2-D while the race plays; prints
what it saw as one JSON object and writes the 3-D frame to the folder given."""

import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[3]))

from PySide6.QtCore import QCoreApplication, QPointF, Qt, QTimer  # noqa: E402

QCoreApplication.setAttribute(Qt.ApplicationAttribute.AA_ShareOpenGLContexts)
from PySide6.QtGui import QKeySequence, QShortcut  # noqa: E402
from PySide6.QtTest import QTest  # noqa: E402
from PySide6.QtWidgets import QApplication, QMainWindow  # noqa: E402

from core.session import Session  # noqa: E402
from gui.controller import Controller  # noqa: E402
from gui.surface_area import SurfaceArea  # noqa: E402
from gui.surface3d_view import opengl_problem  # noqa: E402

app = QApplication(sys.argv[:1])
out = Path(sys.argv[1])
facts: dict = {}
controller = Controller(Session.default())
window = QMainWindow()
area = SurfaceArea(controller)
window.setCentralWidget(area)
# The window's race keys, as gui/main_window.py makes them: window-wide shortcuts.
for key, slot in ((Qt.Key.Key_Space, controller.toggle_play),
                  (Qt.Key.Key_Right, controller.step_once)):
    QShortcut(QKeySequence(key), window).activated.connect(slot)
window.resize(900, 650)
window.show()
window.activateWindow()
area.setFocus()


def wait(ms: int) -> None:
    QTest.qWait(ms)


def run() -> None:
    facts["problem"] = opengl_problem()
    wait(300)
    area.set_mode("3d")
    wait(1200)  # the GL widget is made, shown and painted
    gl = area.surface3d_view.gl_widget
    facts["3d_visible"] = area.surface3d_view.isVisible() and gl is not None and gl.isVisible()
    facts["2d_hidden"] = not area.surface_view.isVisible()
    facts["button_checked"] = area.mode_buttons["3d"].isChecked()
    window.activateWindow()
    wait(200)
    facts["active"] = QApplication.activeWindow() is window
    focus = QApplication.focusWidget()
    facts["focus_in_3d"] = focus is gl
    QTest.keyClick(focus or window, Qt.Key.Key_Right)  # one step, through the shortcut
    facts["right_stepped"] = [len(r.trajectory) for r in controller.session.runs]
    QTest.keyClick(focus or window, Qt.Key.Key_Space)  # play
    wait(600)
    facts["playing"] = controller.playing
    QTest.keyClick(QApplication.focusWidget() or window, Qt.Key.Key_Space)  # pause
    facts["paused"] = not controller.playing
    wait(300)  # the 3-D view's throttle draws the last steps
    facts["line_points"] = [len(i.line.pos) for i in area.surface3d_view.run_items.values()]
    facts["trajectory_lengths"] = [len(r.trajectory) for r in controller.session.runs]
    gl.grabFramebuffer().save(str(out / "area3d.png"))
    area.set_mode("2d")
    wait(300)
    facts["2d_back"] = area.surface_view.isVisible()
    facts["3d_hidden_again"] = not area.surface3d_view.isVisible()
    facts["focus_on_2d"] = QApplication.focusWidget() is area.surface_view
    view = area.surface_view
    # the 2-D view drew the steps taken while it was hidden, and its click still moves the start
    x, _ = view.run_items[controller.session.runs[0]].line.getData()
    facts["2d_head_is_last_point"] = bool(
        x[-1] == controller.session.runs[0].trajectory.x[-1])
    pos = view.mapFromScene(view.view_box.mapViewToScene(QPointF(0.5, 2.0)))
    QTest.mouseClick(view.viewport(), Qt.MouseButton.LeftButton,
                     Qt.KeyboardModifier.NoModifier, pos)
    facts["start_after_click"] = list(controller.session.start)
    area.set_mode("both")
    wait(500)
    facts["both_visible"] = area.surface_view.isVisible() and area.surface3d_view.isVisible()
    facts["both_widths"] = [area.surface_view.width(), area.surface3d_view.width()]
    window.grab().save(str(out / "window_both.png"))
    area.shutdown()
    controller.shutdown()
    print(json.dumps(facts))
    app.quit()


QTimer.singleShot(500, run)
app.exec()
