"""The Many runs workspace in the main window (needs the wiring in gui/main_window.py)."""

from __future__ import annotations

import pytest
from PySide6.QtCore import Qt

from core.session import Session
from tests.gui.many_fixtures import one_torch_thread  # noqa: F401 (autouse: as the app runs)


@pytest.fixture
def window(make_main_window):
    return make_main_window(Session.default("himmelblau"))


def test_ctrl_4_opens_many_runs_and_the_layer_shows_its_map_on_the_race(window, qtbot):
    assert window.many_workspace is None  # built when first opened
    qtbot.keyClick(window, Qt.Key.Key_4, Qt.KeyboardModifier.ControlModifier)
    workspace = window.many_workspace
    assert workspace is not None and window.workspace_tabs.currentWidget() is window._many_page
    assert workspace.model_controller is window.model_workspace.controller  # model-mode tabs
    assert not window.controller.playing  # the race pauses while it is not on screen
    view = workspace.basins_view
    view.grid_spin.setValue(16)
    view.steps_spin.setValue(60)
    with qtbot.waitSignal(view.sigComputed, timeout=60_000):
        view.compute()
    assert len(view.panels) == 4
    window.basin_layer_action.trigger()  # View > Basins layer
    layer = window.basin_layer
    assert layer.visible and layer.image in window.surface_view.plot_item.items
    window.controller.select(window.controller.session.runs[3])  # Adam
    assert (layer.image.image == view.panels[3].image.image).all()
    window.basin_layer_action.trigger()
    assert layer.image not in window.surface_view.plot_item.items
    qtbot.keyClick(window, Qt.Key.Key_1, Qt.KeyboardModifier.ControlModifier)
    assert window.in_race()


def test_file_export_animation_in_many_runs_is_the_basin_film(window, monkeypatch):
    workspace = window.show_many()
    workspace.tabs.setCurrentIndex(workspace.tabs.count() - 1)  # another analysis on screen
    asked = []
    monkeypatch.setattr(workspace.basins_view, "film_dialog", lambda: asked.append("film"))
    action = next(a for a in window.export_menu.actions() if a.text().startswith("&Animation"))
    action.trigger()
    assert asked == ["film"]
    assert workspace.tabs.currentWidget() is workspace.basins_view  # shown where it is made
