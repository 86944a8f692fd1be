"""File > Export > As PyTorch script… in the window (the race, and the Model tab)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from PySide6.QtWidgets import QDialog

from gui import script_export_dialog as module
from gui.script_export_dialog import ScriptRunDialog


@pytest.fixture
def window(make_main_window):
    return make_main_window()


def menu_action(window, text):
    window._fill_export_menu()
    return next(a for a in window.export_menu.actions() if a.text() == text)


def test_the_menu_exports_the_selected_race_run_and_the_models(qtbot, window, tmp_path,
                                                               monkeypatch):
    c = window.controller
    c.session.step(20)
    c.select(c.session.runs[2])
    chosen = {}

    def accept(dialog):
        chosen["text"] = dialog.combo.currentText()
        return QDialog.DialogCode.Accepted

    monkeypatch.setattr(ScriptRunDialog, "exec", accept)
    monkeypatch.setattr(module.QFileDialog, "getSaveFileName",
                        lambda *a, **k: (str(tmp_path / "race"), ""))
    menu_action(window, "As PyTorch sc&ript…").trigger()
    with qtbot.waitSignal(window.script_export.sigFinished, timeout=60_000):
        pass
    assert chosen["text"].startswith("Run 3:")
    done = subprocess.run([sys.executable, str(tmp_path / "race.py")], capture_output=True,
                          text=True, timeout=120)
    runs = json.loads(done.stdout)["runs"]
    assert [r["optimizer"] for r in runs] == ["RMSprop"] and len(runs[0]["trajectory"]["x"]) == 21

    workspace = window.show_model()
    mc = workspace.controller
    mc.add_run("Adam")
    for _ in range(5):
        mc.step_once()
    monkeypatch.setattr(module.QFileDialog, "getSaveFileName",
                        lambda *a, **k: (str(tmp_path / "model.py"), ""))
    menu_action(window, "As PyTorch sc&ript…").trigger()
    with qtbot.waitSignal(window.script_export.sigFinished, timeout=60_000):
        pass
    assert Path(tmp_path / "model.py").exists()
