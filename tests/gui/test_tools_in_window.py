"""Scheduler, clipping and noise through the whole window: set on a card, seen in every view,
kept by File > Save and File > Open (the controller's session path)."""

from __future__ import annotations

import numpy as np
import pytest
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QApplication

from gui.run_table import COLUMNS
from gui.worker import wait_for_jobs


@pytest.fixture
def window(make_main_window):
    return make_main_window(size=(1280, 800))


def test_a_card_sets_them_every_view_shows_them_and_a_saved_session_keeps_them(
        qtbot, window, tmp_path):
    controller = window.controller
    run = controller.session.runs[1]
    card = window.run_list.card_for(run)
    qtbot.mouseClick(card.tools_button, Qt.MouseButton.LeftButton)
    card.scheduler_picker.combo.setCurrentText("CosineAnnealingLR")
    card.clip_combo.setCurrentIndex(1)  # by norm, 1.0
    card.noise_spin.lineEdit().selectAll()
    qtbot.keyClicks(card.noise_spin.lineEdit(), "0.5")
    qtbot.keyClick(card.noise_spin.lineEdit(), Qt.Key.Key_Return)
    assert run.tool_config() == {"scheduler": "CosineAnnealingLR(T_max=200)", "clip_norm": 1.0,
                                 "noise": {"sigma": 0.5, "seed": 0}}
    for _ in range(40):
        controller.step_once()
        wait_for_jobs()  # a step a busy machine made slow lands before the next
        QApplication.processEvents()
    items = window.surface_view.run_items[run]
    flags = run.trajectory.column("clipped")
    assert items.clip_count == int(flags.sum()) > 0
    assert items.noisy_arrow.isVisible() and items.arrow.isVisible()
    window.run_table.refresh()
    row = controller.session.runs.index(run)
    cell = window.run_table.table.item(row, COLUMNS.index("|g| after clip")).text()
    assert cell != "–"
    window.curves_view.picture.draw()
    assert window.curves_view.picture.lr_shown
    assert list(window.curves_view.picture.lr_curves[run].getOriginalDataset()[1]) == \
        list(run.trajectory.lr)

    path = tmp_path / "tools.json"
    assert window.save_session_to(path)
    controller.set_scheduler(run, None)  # changed after saving ...
    assert window.open_session(path, ask=False)  # ... and the file brings it back
    loaded = controller.session.runs[1]
    assert loaded.tool_config() == {"scheduler": "CosineAnnealingLR(T_max=200)",
                                    "clip_norm": 1.0, "noise": {"sigma": 0.5, "seed": 0}}
    new_card = window.run_list.card_for(loaded)
    assert new_card.tools_summary.full_text() == \
        "CosineAnnealingLR(T_max=200) · clip ‖g‖≤1 · noise σ=0.5 (seed 0)"
    assert np.array_equal(loaded.trajectory.x[:1], run.trajectory.x[:1])
