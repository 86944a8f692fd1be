"""Run by test_surface3d_gl.py in a subprocess on an Xvfb display: draws the 3-D view live and
headless, writes the pictures to the folder given, and prints what it saw as one JSON object."""

import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[3]))

from PySide6.QtCore import QCoreApplication  # noqa: E402  (PySide6 before pyqtgraph)
from PySide6.QtWidgets import QApplication  # noqa: E402

from core.session import Session  # noqa: E402
from gui.controller import Controller  # noqa: E402
from gui.surface3d_view import Surface3DView, opengl_problem, render_surface3d_image  # noqa: E402

STEPS = 150


def main(out: Path) -> dict:
    app = QApplication([])
    problem = opengl_problem()
    if problem is not None:
        return {"problem": problem}
    facts: dict = {"platform": app.platformName()}
    controller = Controller(Session.default())
    view = Surface3DView(controller)
    view.resize(640, 520)
    view.show()
    QCoreApplication.processEvents()
    controller.session.step(STEPS)
    controller.sigStepped.emit()  # as a tick does; the first request draws at once
    QCoreApplication.processEvents()
    facts["line_points"] = [len(items.line.pos) for items in view.run_items.values()]
    facts["trajectory_lengths"] = [len(r.trajectory) for r in controller.session.runs]
    facts["heads"] = len(view.scene.heads_item.pos)
    deadline = time.monotonic() + 10
    while view.gl_widget.frame_seconds == 0 and time.monotonic() < deadline:
        QCoreApplication.processEvents()  # until a frame reached the screen and was timed
    controller.sigStepped.emit()
    QCoreApplication.processEvents()
    facts["frame_seconds"] = view.gl_widget.frame_seconds
    view.gl_widget.grabFramebuffer().save(str(out / "live.png"))

    z_linear = view.scene.surface_item._z.copy()
    view.log_height_box.setChecked(True)
    facts["log_height_changes_z"] = bool(abs(view.scene.surface_item._z - z_linear).max() > 1e-3)
    view.log_height_box.setChecked(False)

    controller.set_surface_name("himmelblau")  # every run restarts on the new surface
    QCoreApplication.processEvents()
    facts["new_surface_changes_z"] = bool(abs(view.scene.surface_item._z - z_linear).max() > 1e-3)
    facts["line_points_after_restart"] = [len(i.line.pos) for i in view.run_items.values()]
    view.close()
    controller.shutdown()

    raced = Session.default()
    raced.step(STEPS)
    render_surface3d_image(raced, out / "race3d.png", 640, 480)
    empty = Session.default()
    for run in list(empty.runs):
        empty.remove_run(run)
    render_surface3d_image(empty, out / "empty3d.png", 640, 480)
    facts["files"] = sorted(p.name for p in out.iterdir())
    return facts


if __name__ == "__main__":
    print(json.dumps(main(Path(sys.argv[1]))))
