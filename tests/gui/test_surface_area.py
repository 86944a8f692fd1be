"""SurfaceArea offscreen (no OpenGL here): the switch shows the 3-D view's message instead of the
heatmap and brings the heatmap back with its live updates and clicks; the setting's values."""

from __future__ import annotations

import pytest
from PySide6.QtCore import QPointF, Qt
from PySide6.QtTest import QTest

from gui.surface3d_view import GL_MISSING_TEXT
from gui.surface_area import MODES, SurfaceArea, mode_from_setting


@pytest.fixture
def area(qtbot, controller):
    a = SurfaceArea(controller)
    qtbot.addWidget(a)
    a.resize(900, 700)
    a.show()
    qtbot.waitExposed(a)
    return a


def test_starts_with_the_heatmap_and_builds_no_3d_view_until_asked(area):
    assert area.mode == "2d" and area.surface_view.isVisible()
    assert area.surface3d_view is None
    assert area.mode_buttons["2d"].isChecked()


def test_3d_instead_of_2d_shows_the_gl_message_and_hides_the_heatmap(area, qtbot):
    with qtbot.waitSignal(area.sigModeChanged) as blocker:
        QTest.mouseClick(area.mode_buttons["3d"], Qt.MouseButton.LeftButton)
    assert blocker.args == ["3d"] and area.mode == "3d"
    assert not area.surface_view.isVisible()
    view = area.surface3d_view
    assert view.isVisible() and view.gl_widget is None  # offscreen: no OpenGL
    assert view.message.isVisible() and view.message.text() == GL_MISSING_TEXT
    assert area.mode_buttons["3d"].isChecked() and not area.mode_buttons["2d"].isChecked()


def test_back_to_2d_shows_the_race_as_it_is_now_and_clicks_still_move_the_start(
        area, controller):
    area.set_mode("3d")
    controller.step_once()
    controller.step_once()  # the race goes on while the heatmap is hidden
    area.set_mode("2d")
    assert area.surface_view.isVisible() and not area.surface3d_view.isVisible()
    view = area.surface_view
    run = controller.session.runs[0]
    x, y = view.run_items[run].line.getData()
    assert (x[-1], y[-1]) == (run.trajectory.x[-1], run.trajectory.y[-1])
    pos = view.mapFromScene(view.view_box.mapViewToScene(QPointF(0.5, 2.0)))
    QTest.mouseClick(view.viewport(), Qt.MouseButton.LeftButton,
                     Qt.KeyboardModifier.NoModifier, pos)
    sx, sy = controller.session.start
    assert sx == pytest.approx(0.5, abs=0.03) and sy == pytest.approx(2.0, abs=0.03)
    QTest.mouseMove(view.viewport(), pos)
    assert "f = " in view.hover_text  # the hover read-out works again


def test_both_shows_the_two_side_by_side(area):
    area.set_mode("both")
    assert area.surface_view.isVisible() and area.surface3d_view.isVisible()
    widths = sorted([area.surface_view.width(), area.surface3d_view.width()])
    assert widths[0] > 0.4 * widths[1]


def test_focus_follows_the_view_on_screen(area):
    area.setFocus()
    assert area.focusProxy() is area.surface_view
    area.set_mode("3d")
    assert area.focusProxy() is area.surface3d_view  # (its message: GL is missing here)
    area.set_mode("both")
    assert area.focusProxy() is area.surface_view


def test_a_mode_that_does_not_exist_is_refused_and_changes_nothing(area):
    with pytest.raises(ValueError, match="one of 2d, 3d, both"):
        area.set_mode("4d")
    assert area.mode == "2d" and area.surface3d_view is None


@pytest.mark.parametrize(("stored", "legacy", "mode"), [
    ("3d", None, "3d"), ("both", None, "both"), ("2D", None, "2d"), (None, "true", "both"),
    (None, None, "2d"), ("garbage", False, "2d"), (None, True, "both")])
def test_the_remembered_setting(stored, legacy, mode):
    assert mode_from_setting(stored, legacy) == mode and mode in MODES
