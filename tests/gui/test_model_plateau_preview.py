"""Model mode's Scheduler tab: a ReduceLROnPlateau preview is fed the selected run's training
losses, so it shows the lr torch gave the run (not a flat line)."""

from __future__ import annotations

import numpy as np
import pytest
from PySide6.QtCore import Qt

from gui.model.controller import ModelController, ModelSettings
from gui.model.workspace import ModelWorkspace
from gui.worker import wait_for_jobs


@pytest.fixture
def workspace(qtbot):
    c = ModelController(ModelSettings(dataset="moons", n=80, preset="deep-mlp"))
    c.sharpness_every = 10 ** 9
    w = ModelWorkspace(controller=c)
    qtbot.addWidget(w)
    w.resize(1280, 800)
    w.show()
    qtbot.waitExposed(w)
    yield w
    c.pause()
    assert c.shutdown(2.0)
    assert wait_for_jobs(2.0)


def test_the_selected_runs_plateau_preview_follows_its_losses(qtbot, workspace):
    w, c = workspace, workspace.controller
    run = c.add_run("SGD")
    c.select(run)
    c.set_scheduler(run, "ReduceLROnPlateau(factor=0.5, patience=0, threshold=0.5)")
    panel = w.run_panel
    picker = panel.scheduler_picker
    panel.settings_tabs.setCurrentIndex(1)  # "Scheduler"
    for _ in range(12):
        qtbot.mouseClick(w.setup_bar.step_button, Qt.MouseButton.LeftButton)
    steps = run.steps
    used = run.trajectory.lr.tolist()
    assert steps == 12 and min(used) < max(used)  # the scheduler did lower the lr
    qtbot.waitUntil(lambda: picker.losses is not None and len(picker.losses) == steps + 1)
    lr = np.asarray(picker.preview_curve.yData).tolist()
    assert lr[:steps + 1] == used
    assert f"flat past step {steps + 1}" in picker.note_label.text()
