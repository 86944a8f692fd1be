"""The whole window, driven like a user: shortcuts, the surface bar, sessions, exports."""

from __future__ import annotations

import json

import pytest
from PySide6.QtCore import QSettings, Qt
from PySide6.QtGui import QImage

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

    actions = window.examples_menu.actions()
    assert len(actions) == len(preset_paths()) >= 5
    saddle = next(a for a in actions if "saddle" in a.text().lower())
    saddle.trigger()
    c = window.controller
    assert c.session.surface.name == "saddle"
    assert window.session_path is None  # Ctrl+S will ask where: the preset stays as shipped
    assert "no minimum" in window.statusBar().currentMessage()
    assert window.windowTitle().endswith(saddle.text())
