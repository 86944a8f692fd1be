"""The whole window, driven like a user: shortcuts, the surface bar, sessions, exports."""

from __future__ import annotations

import json

import pytest
from PySide6.QtCore import QSettings, Qt
from PySide6.QtGui import QImage, QKeySequence
from PySide6.QtWidgets import QTextBrowser

from core.session import Session
from gui.controller import Controller
from gui.main_window import MainWindow


@pytest.fixture
def settings(tmp_path):
    return QSettings(str(tmp_path / "settings.ini"), QSettings.Format.IniFormat)


@pytest.fixture
def window(qtbot, settings):
    w = MainWindow(Controller(Session.default()), settings=settings, restore=False)
    qtbot.addWidget(w)
    w.questions = []  # every "save the changes?" the window asked; a modal dialog would hang
    w.ask_unsaved = lambda: w.questions.append("asked") or "discard"
    w.show()
    qtbot.waitExposed(w)
    yield w
    w.controller.shutdown()


def test_opens_with_four_classic_runs(window):
    runs = window.controller.session.runs
    assert [r.optimizer_name for r in runs] == ["SGD", "SGD", "RMSprop", "Adam"]
    assert runs[1].hyperparameters["momentum"] > 0
    assert window.controller.session.surface.name == "rosenbrock"


def test_space_plays_and_pauses_right_steps_r_resets(window, qtbot):
    c = window.controller
    qtbot.keyClick(window, Qt.Key.Key_Right)
    assert all(r.steps == 1 for r in c.session.runs)
    qtbot.keyClick(window, Qt.Key.Key_Space)
    assert c.playing
    assert window.transport_bar.play_button.text() == "Pause"
    qtbot.waitUntil(lambda: c.session.runs[0].steps > 5, timeout=3000)
    qtbot.keyClick(window, Qt.Key.Key_Space)
    assert not c.playing
    qtbot.keyClick(window, Qt.Key.Key_R)
    assert all(r.steps == 0 and len(r.trajectory) == 1 for r in c.session.runs)


def test_speed_slider_reaches_slow_motion_and_max(window, qtbot):
    bar = window.transport_bar
    bar.speed_slider.setValue(0)
    assert window.controller.speed == 1
    assert bar.speed_label.text() == "1 steps/s"
    bar.speed_slider.setValue(bar.speed_slider.maximum())
    assert bar.speed_label.text() == "max speed"
    c = window.controller
    c.play()
    # 1 step/s would take a minute for this; at max speed a busy CI machine needs seconds
    qtbot.waitUntil(lambda: c.session.runs[0].steps > 60, timeout=15000)
    c.pause()


def test_bad_formula_shows_error_and_keeps_surface(window, qtbot):
    bar = window.surface_bar
    before = window.controller.session.surface
    window.controller.step_once()
    bar.formula_box.setEditText("x**2 + 3*y z")
    qtbot.keyClick(bar.formula_box.lineEdit(), Qt.Key.Key_Return)
    assert "column 12" in bar.formula_error.text()
    assert window.controller.session.surface is before
    assert window.controller.session.runs[0].steps == 1  # nothing restarted


def test_good_formula_replaces_surface_restarts_runs_and_is_remembered(window, qtbot, settings):
    bar = window.surface_bar
    window.controller.step_once()
    bar.formula_box.setEditText("sin(x)*cos(y) + 0.1*(x**2 + y**2)")
    qtbot.keyClick(bar.formula_box.lineEdit(), Qt.Key.Key_Return)
    surface = window.controller.session.surface
    assert surface.text == "sin(x)*cos(y) + 0.1*(x**2 + y**2)"
    assert bar.formula_error.text() == ""
    assert bar.surface_combo.currentData() == "custom"
    assert all(r.steps == 0 for r in window.controller.session.runs)
    assert bar.formula_box.findText(surface.text) >= 0
    window.save_state()
    assert surface.text in json.loads(settings.value("formulas"))


def test_picking_a_surface(window):
    bar = window.surface_bar
    index = bar.surface_combo.findData("himmelblau")
    bar.surface_combo.setCurrentIndex(index)
    bar.surface_combo.activated.emit(index)
    assert window.controller.session.surface.name == "himmelblau"
    assert bar.formula_box.currentText() == window.controller.session.surface.text


def test_typing_the_start_restarts_there(window, qtbot):
    bar = window.surface_bar
    window.controller.step_once()
    bar.start_x.setValue(0.5)
    bar.start_x.editingFinished.emit()
    assert window.controller.session.start == (0.5, 1.0)
    assert all(r.trajectory.x[0] == 0.5 and r.steps == 0 for r in window.controller.session.runs)


def test_save_and_open_session_with_recent_files(window, tmp_path, settings):
    c = window.controller
    c.set_frozen(c.session.runs[0], "y", True)
    path = tmp_path / "race.json"
    assert window.save_session_to(path)
    c.set_surface_name("booth")
    assert window.open_session(path)
    assert c.session.surface.name == "rosenbrock"
    assert c.session.runs[0].frozen == {"y"}
    assert str(path.resolve()) in json.loads(settings.value("recent"))
    assert [a.data() for a in window.recent_menu.actions()] == [str(path.resolve())]


def test_broken_session_file_shows_message_and_changes_nothing(window, tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text("{ not json")
    c = window.controller
    c.step_once()
    before = (c.session, [r.steps for r in c.session.runs])
    assert not window.open_session(bad)
    assert (c.session, [r.steps for r in c.session.runs]) == before
    assert "not valid JSON" in window.statusBar().currentMessage()


def test_unwritable_export_shows_message(window, tmp_path):
    assert not window.export_data("/nonexistent-dir/out.csv")
    assert "cannot write" in window.statusBar().currentMessage()
    assert not window.export_image(window.surface_view, "/nonexistent-dir/out.png")


def test_exports_png_svg_csv_json(window, tmp_path):
    window.controller.session.step(30)
    window.controller.sigStepped.emit()
    png, svg = tmp_path / "s.png", tmp_path / "s.svg"
    assert window.export_image(window.surface_view, png)
    assert not QImage(str(png)).isNull()
    assert window.export_image(window.surface_view, svg)
    assert "<svg" in svg.read_text()
    assert window.export_image(window.curves_view, tmp_path / "c.png")
    assert window.export_data(tmp_path / "t.csv")
    lines = (tmp_path / "t.csv").read_text().splitlines()
    assert len(lines) == 1 + 4 * 31
    assert window.export_data(tmp_path / "t.json")
    assert Session.load(tmp_path / "t.json").surface.name == "rosenbrock"


def test_layout_and_last_session_come_back(qtbot, settings):
    first = MainWindow(Controller(Session.default()), settings=settings, restore=False)
    qtbot.addWidget(first)
    first.controller.set_surface_name("beale")
    first.controller.add_run("Adagrad", {"lr": 0.3})
    first.close()
    second = MainWindow(settings=settings)
    qtbot.addWidget(second)
    assert second.controller.session.surface.name == "beale"
    assert [r.optimizer_name for r in second.controller.session.runs][-1] == "Adagrad"
    second.controller.shutdown()


def test_corrupt_last_session_starts_fresh_with_message(qtbot, settings):
    settings.setValue("last_session", '{"format": "optimizer-playground-session", "version": 99}')
    w = MainWindow(settings=settings)
    qtbot.addWidget(w)
    assert w.controller.session.surface.name == "rosenbrock"
    assert "newer version" in w.restore_message
    w.controller.shutdown()


def test_autograd_graph_tab_follows_the_selected_run_and_exports(window, tmp_path, qtbot):
    tabs = window.tabs
    titles = [tabs.tabText(i) for i in range(tabs.count())]
    assert "Autograd graph" in titles
    tabs.setCurrentWidget(window.graph_panel)
    c = window.controller
    adam = c.session.runs[3]
    c.select(adam)
    qtbot.waitUntil(lambda: window.graph_panel.graph is not None
                    and window.graph_panel.graph.point == adam.last_point, timeout=3000)
    assert window.export_graph(tmp_path / "g.svg")
    assert "<svg" in (tmp_path / "g.svg").read_text()
    assert not window.export_graph("/nonexistent-dir/g.png")
    assert "Could not export the graph" in window.statusBar().currentMessage()


def test_save_dialogs_add_the_extension_and_cancel_changes_nothing(window, tmp_path, monkeypatch):
    from PySide6.QtWidgets import QFileDialog

    answers = iter([(str(tmp_path / "traj"), ""), (str(tmp_path / "race"), ""), ("", "")])
    monkeypatch.setattr(QFileDialog, "getSaveFileName", lambda *a, **k: next(answers))
    window.export_data_dialog("csv")
    assert (tmp_path / "traj.csv").read_text().startswith("run,")
    assert window.save_session_as_dialog()
    assert Session.load(tmp_path / "race.json").surface.name == "rosenbrock"
    assert not window.save_session_as_dialog()  # cancelled
    assert window.session_path == tmp_path / "race.json"


def test_examples_menu_opens_each_example_unsaved(window):
    from resources import preset_paths

    actions = [a for a in window.examples_menu.actions() if a.data() == "race"]
    assert len(actions) == len(preset_paths()) >= 5
    saddle = next(a for a in actions if "saddle" in a.text().lower())
    saddle.trigger()
    c = window.controller
    assert c.session.surface.name == "saddle"
    assert window.session_path is None  # Ctrl+S will ask where: the preset stays as shipped
    assert "no minimum" in window.statusBar().currentMessage()
    assert window.windowTitle().replace("[*]", "").endswith(saddle.text())
    assert not window.isWindowModified()  # an example just opened has nothing to save


# --- layout: the surface keeps most of the window ------------------------------------------------


def _window_at(qtbot, settings, width, height, restore):
    w = MainWindow(Controller(Session.default()), settings=settings, restore=restore)
    qtbot.addWidget(w)
    w.resize(width, height)
    w.show()
    qtbot.waitExposed(w)
    return w


def test_a_saved_layout_with_a_huge_bottom_dock_cannot_squash_the_surface(qtbot, settings):
    from gui.main_window import BOTTOM_DOCK_MAX

    first = _window_at(qtbot, settings, 1280, 800, restore=False)
    first.resizeDocks([first.bottom_dock], [700], Qt.Orientation.Vertical)
    qtbot.waitUntil(lambda: first.bottom_dock.height() > 0.6 * first.height(), timeout=2000)
    first.save_state()  # what a returning user had: the graph tab had grown the dock
    first.close()
    second = _window_at(qtbot, settings, 1280, 800, restore=True)
    qtbot.waitUntil(lambda: second.bottom_dock.height() <= BOTTOM_DOCK_MAX * second.height() + 2,
                    timeout=2000)
    assert second.surface_view.height() >= 0.4 * second.height()
    assert second.surface_view.width() >= 0.55 * second.width()
    second.controller.shutdown()


def test_docks_are_capped_on_resize_and_when_the_graph_tab_opens(window, qtbot):
    from gui.main_window import BOTTOM_DOCK_MAX, SIDE_DOCK_MAX

    window.resize(1280, 800)
    window.resizeDocks([window.runs_dock], [900], Qt.Orientation.Horizontal)
    window.tabs.setCurrentWidget(window.graph_panel)
    qtbot.waitUntil(lambda: window.runs_dock.width() <= SIDE_DOCK_MAX * window.width() + 2
                    and window.bottom_dock.height() <= BOTTOM_DOCK_MAX * window.height() + 2,
                    timeout=2000)
    window.resize(1440, 900)
    qtbot.waitUntil(lambda: window.width() == 1440, timeout=2000)
    assert window.surface_view.height() >= 0.4 * window.height()


def test_view_menu_toggles_the_docks_and_their_state_comes_back(qtbot, settings):
    first = _window_at(qtbot, settings, 1280, 800, restore=False)
    runs_toggle = first.runs_dock.toggleViewAction()
    assert runs_toggle in first.view_menu.actions() and runs_toggle.isEnabled()
    runs_toggle.trigger()
    assert first.runs_dock.isHidden()
    first.tabs.setCurrentWidget(first.curves_view)
    first.close()
    second = _window_at(qtbot, settings, 1280, 800, restore=True)
    assert second.runs_dock.isHidden() and not second.bottom_dock.isHidden()
    assert second.tabs.currentWidget() is second.curves_view
    second.runs_dock.toggleViewAction().trigger()
    assert second.runs_dock.isVisible()
    second.controller.shutdown()


def test_equal_scale_option_reaches_the_surface_and_is_remembered(window, qtbot, settings):
    calls = []
    window.surface_view.set_equal_aspect = calls.append  # the views engineer's method
    window.equal_aspect_action.trigger()
    assert calls == [True] and window.equal_aspect_action.isChecked()
    window.save_state()
    again = MainWindow(Controller(Session.default()), settings=settings, restore=True)
    qtbot.addWidget(again)
    assert again.equal_aspect_action.isChecked()
    again.controller.shutdown()


# --- keys: Space / → / R after typing, Escape leaves a field -------------------------------------


def test_keys_work_again_after_typing_a_formula_and_pressing_enter_or_escape(window, qtbot):
    c = window.controller
    line = window.surface_bar.formula_box.lineEdit()
    line.setFocus()
    qtbot.keyClicks(line, " ")
    qtbot.keyClick(line, Qt.Key.Key_Escape)
    assert not line.hasFocus()
    qtbot.keyClick(window.focusWidget() or window, Qt.Key.Key_Right)
    assert all(r.steps == 1 for r in c.session.runs)
    line.setFocus()
    line.selectAll()
    qtbot.keyClicks(line, "x**2 + y**2")
    qtbot.keyClick(line, Qt.Key.Key_Return)
    assert c.session.surface.text == "x**2 + y**2"
    assert not line.hasFocus()
    qtbot.keyClick(window.focusWidget() or window, Qt.Key.Key_Right)
    assert all(r.steps == 1 for r in c.session.runs)
    qtbot.keyClick(window.focusWidget() or window, Qt.Key.Key_R)
    assert all(r.steps == 0 for r in c.session.runs)


def test_escape_leaves_a_cards_spin_box_so_space_plays(window, qtbot):
    card = window.run_list.cards[0]
    card.lr_spin.setFocus()
    qtbot.keyClick(card.lr_spin.lineEdit(), Qt.Key.Key_Space)
    assert not window.controller.playing  # in a text field Space is the field's
    qtbot.keyClick(card.lr_spin.lineEdit(), Qt.Key.Key_Escape)
    qtbot.keyClick(window.focusWidget() or window, Qt.Key.Key_Space)
    assert window.controller.playing
    window.controller.pause()


# --- work is not thrown away ---------------------------------------------------------------------


def test_title_shows_unsaved_changes_and_saving_clears_them(window, tmp_path):
    assert "[*]" in window.windowTitle() and not window.isWindowModified()
    c = window.controller
    c.step_once()
    c.reset()
    assert not window.isWindowModified()  # stepping and resetting change nothing saved
    c.set_hyperparameter(c.session.runs[0], "lr", 0.002)
    assert window.isWindowModified()
    assert window.save_session_to(tmp_path / "s.json")
    assert not window.isWindowModified()
    assert "s.json" in window.windowTitle()


def test_opening_over_changes_asks_and_cancel_keeps_everything(window, tmp_path):
    c = window.controller
    path = tmp_path / "other.json"
    Session.default("himmelblau").save(path)
    c.set_surface_name("booth")
    window.ask_unsaved = lambda: "cancel"
    assert not window.open_session(path)
    assert not window.open_example(next(iter(__import__("resources").preset_paths())))
    assert not window.new_session()
    assert c.session.surface.name == "booth" and window.isWindowModified()
    window.ask_unsaved = lambda: "discard"
    assert window.open_session(path)
    assert c.session.surface.name == "himmelblau" and not window.isWindowModified()


def test_save_answer_saves_before_opening(window, tmp_path, monkeypatch):
    c = window.controller
    mine = tmp_path / "mine.json"
    assert window.save_session_to(mine)
    c.set_surface_name("booth")
    other = tmp_path / "other.json"
    Session.default("beale").save(other)
    window.ask_unsaved = lambda: "save"
    assert window.open_session(other)
    assert Session.load(mine).surface.name == "booth"  # the changes were saved first
    assert c.session.surface.name == "beale"


def test_new_session_is_the_default_race(window):
    c = window.controller
    c.set_surface_name("booth")
    c.remove_run(c.session.runs[0])
    assert window.new_session()
    assert window.questions == ["asked"]
    assert c.session.surface.name == "rosenbrock" and len(c.session.runs) == 4
    assert window.session_path is None and not window.isWindowModified()
    new_action = next(a for a in window.menuBar().actions()[0].menu().actions()
                      if a.text().replace("&", "").startswith("New"))
    assert new_action.shortcut().matches(QKeySequence(QKeySequence.StandardKey.New)) \
        == QKeySequence.SequenceMatch.ExactMatch


def test_removing_a_run_can_be_undone_with_ctrl_z(window, qtbot):
    c = window.controller
    c.session.step(5)
    adam = c.session.runs[3]
    rmsprop = c.session.runs[2]
    window.run_list.card_for(rmsprop).remove_button.click()
    assert rmsprop not in c.session.runs and window.undo_remove_action.isEnabled()
    window.surface_view.setFocus()
    qtbot.keyClick(window.surface_view, Qt.Key.Key_Z, Qt.KeyboardModifier.ControlModifier)
    assert c.session.runs[2] is rmsprop and c.session.runs[3] is adam
    assert rmsprop.steps == 5  # as it was, trajectory and all
    assert window.run_list.card_for(rmsprop) is not None
    assert not window.undo_remove_action.isEnabled()
    assert not window.undo_remove_run()  # nothing more to undo


# --- help, exports with a size -------------------------------------------------------------------


def test_help_about_and_shortcuts(window):
    import torch

    about = window.show_about()
    text = about.findChild(QTextBrowser).toPlainText()
    assert torch.__version__ in text and "0." in text and "torch.optim" in text
    about.close()
    shortcuts = window.show_shortcuts().findChild(QTextBrowser).toPlainText()
    for key in ("Space", "→", "R", "Esc", "Ctrl+Z"):
        assert key in shortcuts
    help_menu = window.menuBar().actions()[-1]
    assert help_menu.text().replace("&", "") == "Help"


def test_image_export_asks_a_size_and_works_from_a_hidden_tab(window, tmp_path, monkeypatch):
    from PySide6.QtCore import QSize
    from PySide6.QtWidgets import QFileDialog

    window.controller.session.step(20)
    window.controller.sigStepped.emit()
    window.tabs.setCurrentWidget(window.run_table)  # the curves are not on screen
    asked = []
    window.ask_image_size = lambda size: asked.append(size) or QSize(640, 480)
    monkeypatch.setattr(QFileDialog, "getSaveFileName",
                        lambda *a, **k: (str(tmp_path / "surface"), ""))
    window.export_image_dialog(window.surface_view, "png")
    image = QImage(str(tmp_path / "surface.png"))
    assert (image.width(), image.height()) == (640, 480)
    assert asked == [window.surface_view.size()]
    assert window.export_image(window.curves_view, tmp_path / "c.png", QSize(500, 300))
    assert QImage(str(tmp_path / "c.png")).size() == QSize(500, 300)
    window.ask_image_size = lambda size: None  # cancelled: nothing written
    monkeypatch.setattr(QFileDialog, "getSaveFileName",
                        lambda *a, **k: (str(tmp_path / "none"), ""))
    window.export_image_dialog(window.surface_view, "png")
    assert not (tmp_path / "none.png").exists()


def test_undo_into_a_full_session_says_why_and_changes_nothing(window):
    from core.session import MAX_RUNS

    c = window.controller
    removed = c.session.runs[0]
    c.remove_run(removed)
    while len(c.session.runs) < MAX_RUNS:
        c.add_run("SGD")
    assert not window.undo_remove_run()
    assert removed not in c.session.runs and len(c.session.runs) == MAX_RUNS
    assert str(MAX_RUNS) in window.statusBar().currentMessage()


def test_equal_scale_locks_the_real_surface_views_aspect(window):
    window.equal_aspect_action.trigger()
    assert window.surface_view.view_box.state["aspectLocked"] == 1.0
    window.equal_aspect_action.trigger()
    assert not window.surface_view.view_box.state["aspectLocked"]


# --- the autograd lab as a workspace ----------------------------------------------------------

def test_the_lab_tab_builds_the_lab_hides_the_race_and_comes_back(window, qtbot):
    from gui.lab.workspace import LabWorkspace

    assert window.lab_workspace is None  # not built before it is opened
    assert window.runs_dock.isVisible() and window.bottom_dock.isVisible()
    window.controller.play()
    window.workspace_tabs.setCurrentIndex(1)
    assert isinstance(window.lab_workspace, LabWorkspace)
    assert window.lab_workspace.isVisible()
    assert not window.controller.playing  # the hidden race does not run on
    assert not window.runs_dock.isVisible() and not window.bottom_dock.isVisible()
    assert not any(bar.isVisible() for bar in window.race_toolbars)
    steps = [r.steps for r in window.controller.session.runs]
    window.lab_workspace.setFocus()
    qtbot.keyClick(window, Qt.Key.Key_Right)  # the race's keys do nothing in the lab
    assert [r.steps for r in window.controller.session.runs] == steps
    window.workspace_tabs.setCurrentIndex(0)
    assert window.runs_dock.isVisible() and window.bottom_dock.isVisible()
    assert all(bar.isVisible() for bar in window.race_toolbars)
    qtbot.keyClick(window, Qt.Key.Key_Right)
    assert [r.steps for r in window.controller.session.runs] == [s + 1 for s in steps]


def test_a_dock_the_user_closed_stays_closed_after_the_lab(window, qtbot):
    window.bottom_dock.hide()
    window.show_lab()
    window.workspace_tabs.setCurrentIndex(0)
    assert window.runs_dock.isVisible() and not window.bottom_dock.isVisible()


def test_leaving_from_the_lab_saves_the_race_layout_and_reopens_the_lab(qtbot, settings):
    first = MainWindow(Controller(Session.default()), settings=settings, restore=False)
    qtbot.addWidget(first)
    first.show()
    qtbot.waitExposed(first)
    first.show_lab()
    first.save_state()
    assert not first.runs_dock.isVisible()  # saving did not bring the race back on screen
    first.controller.shutdown()
    again = MainWindow(Controller(Session.default()), settings=settings, restore=True)
    qtbot.addWidget(again)
    again.show()
    qtbot.waitExposed(again)
    qtbot.waitUntil(lambda: again.workspace_tabs.currentIndex() == 1, timeout=3000)
    again.workspace_tabs.setCurrentIndex(0)
    assert again.runs_dock.isVisible() and again.bottom_dock.isVisible()
    again.controller.shutdown()


def test_graph_export_takes_the_size_asked_for(window, qtbot, tmp_path):
    from PySide6.QtCore import QSize

    window.ask_image_size = lambda size: QSize(640, 360)
    path = tmp_path / "graph.png"
    window._ask_save_path = lambda *a: str(path)
    window.export_graph_dialog("png")
    image = QImage(str(path))
    assert (image.width(), image.height()) == (640, 360)


def test_view_surface_3d_instead_of_2d_says_why_without_opengl_and_is_remembered(
        window, qtbot, settings):
    from gui.surface3d_view import GL_MISSING_TEXT

    assert window.surface3d_view is None  # nothing of OpenGL until asked for
    window.surface_mode_actions["3d"].trigger()
    area = window.surface_area
    assert area.mode == "3d" and not window.surface_view.isVisible()
    assert window.surface3d_view.isVisible()
    # The tests run Qt offscreen: no OpenGL, and the view says so; the rest of the window works.
    assert window.surface3d_view.message.text() == GL_MISSING_TEXT
    window.surface_area.setFocus()
    qtbot.keyClick(window.surface3d_view, Qt.Key.Key_Right)  # the race's keys still work
    assert all(len(r.trajectory) == 2 for r in window.controller.session.runs)
    window.show_lab()
    assert not area.isVisible()
    window.workspace_tabs.setCurrentIndex(0)
    assert window.surface3d_view.isVisible() and window.surface_mode_actions["3d"].isChecked()
    # the area's own switch and the menu agree
    area.mode_buttons["both"].click()
    assert window.surface_mode_actions["both"].isChecked()
    assert window.surface_view.isVisible() and window.surface3d_view.isVisible()
    assert settings.value("surface_mode") == "both"
    window.surface_mode_actions["2d"].trigger()
    assert window.surface_view.isVisible() and not window.surface3d_view.isVisible()
    again = MainWindow(Controller(Session.default()), settings=settings, restore=True)
    qtbot.addWidget(again)
    window.surface_mode_actions["3d"].trigger()
    third = MainWindow(Controller(Session.default()), settings=settings, restore=True)
    qtbot.addWidget(third)
    qtbot.waitUntil(lambda: third.surface_area.mode == "3d", timeout=3000)
    assert again.surface_area.mode == "2d"
    for w in (again, third):
        w.controller.shutdown()


def test_a_saved_3d_dock_comes_back_as_both_views_side_by_side(qtbot, settings):
    settings.setValue("surface3d", True)  # a user of the 3-D dock before the switch
    window = MainWindow(Controller(Session.default()), settings=settings, restore=True)
    qtbot.addWidget(window)
    qtbot.waitUntil(lambda: window.surface_area.mode == "both", timeout=3000)
    window.controller.shutdown()


def test_the_model_tab_builds_the_model_workspace_and_pauses_it_when_left(window, qtbot):
    from gui.model.workspace import ModelWorkspace

    assert window.model_workspace is None
    workspace = window.show_model()
    assert isinstance(workspace, ModelWorkspace) and workspace.isVisible()
    assert not window.runs_dock.isVisible()  # the race's docks step aside here too
    workspace.controller.play()
    assert workspace.controller.playing
    window.workspace_tabs.setCurrentIndex(0)
    assert not workspace.controller.playing  # a hidden workspace does not train on
    assert window.runs_dock.isVisible()
    window.show_lab()
    assert window.lab_workspace is not None and window.model_workspace is workspace


def test_a_wide_workspace_on_another_tab_does_not_squeeze_the_race_docks(window, qtbot):
    window.resize(1280, 800)
    qtbot.waitUntil(lambda: window.width() == 1280)
    qtbot.wait(50)
    before = window.runs_dock.width()
    for show in (window.show_many, window.show_model, window.show_lab):
        show()
        qtbot.wait(50)
        window.workspace_tabs.setCurrentWidget(window.surface_area)
        qtbot.wait(50)
        assert window.runs_dock.width() == before, show.__name__
    # the page scrolls instead: its minimum no longer sets the window's
    assert window.workspace_tabs.minimumSizeHint().width() < \
        window.many_workspace.minimumSizeHint().width()


def test_every_workspace_fits_a_1280_pixel_window_without_scrolling(window, qtbot):
    window.resize(1280, 800)
    qtbot.waitUntil(lambda: window.width() == 1280)
    for show, page in ((window.show_model, window._model_page),
                       (window.show_many, window._many_page),
                       (window.show_lab, window._lab_page)):
        show()
        qtbot.wait(50)
        assert not page.horizontalScrollBar().isVisible(), show.__name__
