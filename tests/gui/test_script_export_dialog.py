"""File > Export > As PyTorch script (gui/script_export_dialog.py): the run choice, the job with
its progress dialog, and the script it writes, run in its own Python: it prints what the engine
recorded, bit for bit (every key but the app's status words, core.script_export's
RACE_ENGINE_ONLY / MODEL_ENGINE_ONLY)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import pytest
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QDialog, QMessageBox, QPushButton, QWidget

from core.export import result_dict
from core.model_cli import train_report
from core.model_session import train
from core.script_export import MODEL_ENGINE_ONLY, RACE_ENGINE_ONLY
from core.session import Session
from core.surfaces import get_surface
from gui import script_export_dialog as module
from gui.model.controller import ModelController, ModelSettings
from gui.script_export_dialog import ScriptRunDialog, export_script_dialog
from gui.worker import wait_for_jobs


@pytest.fixture
def parent(qtbot):
    widget = QWidget()
    qtbot.addWidget(widget)
    widget.show()
    yield widget
    assert wait_for_jobs(30.0)


def run_script(path: Path) -> dict:
    import torch

    # the script's torch on as many threads as this process's (a reduction split otherwise
    # can round its last bit differently)
    env = {**os.environ, "OMP_NUM_THREADS": str(torch.get_num_threads())}
    done = subprocess.run([sys.executable, str(path)], capture_output=True, text=True, env=env,
                          timeout=300, cwd=path.parent)
    assert done.returncode == 0, done.stderr[-2000:]
    return json.loads(done.stdout)


def same_json(mine: dict, engine: dict, left_out: tuple[str, ...]) -> None:
    assert set(engine) - set(mine) == set(left_out)  # exactly the status words are missing
    engine = {k: v for k, v in engine.items() if k not in left_out}
    for column, values in engine["trajectory"].items():
        assert json.dumps(mine["trajectory"].get(column)) == json.dumps(values), column
    assert json.dumps(mine, sort_keys=True) == json.dumps(engine, sort_keys=True)


def changed_race() -> Session:
    """Four runs, stepped, with changes made between steps: an lr moved, y frozen, a
    scheduler and clipping set mid-run."""
    session = Session.default()
    session.step(30)
    sgd, momentum, rmsprop, adam = session.runs
    sgd.set_hyperparameter("lr", 0.002)
    momentum.set_frozen("y", True)
    rmsprop.set_scheduler("StepLR(step_size=10, gamma=0.5)")
    session.step(25)
    from core.gradient_tools import GradientClipping

    adam.set_clipping(GradientClipping("norm", 0.5))
    session.step(10)
    return session


def export_and_wait(qtbot, parent, *args, **kwargs):
    export = export_script_dialog(parent, *args, **kwargs)
    assert export is not None
    with qtbot.waitSignal(export.sigFinished, timeout=120_000) as finished:
        pass
    return export, Path(finished.args[0])


def test_one_race_run_as_a_script_prints_what_the_engine_recorded(qtbot, parent, tmp_path):
    session = changed_race()
    export, path = export_and_wait(qtbot, parent, session, 1, run_index=1,
                                   path=tmp_path / "momentum.py")
    assert path == tmp_path / "momentum.py" and export.written
    assert not export.progress_dialog.isVisible()
    got = run_script(path)
    want = result_dict(session)
    assert got["surface"] == want["surface"] and got["start"] == want["start"]
    assert len(got["runs"]) == 1
    same_json(got["runs"][0], want["runs"][1], RACE_ENGINE_ONLY)


def test_all_runs_chosen_in_the_run_dialog(qtbot, parent, tmp_path, monkeypatch):
    session = changed_race()
    seen = {}

    def choose_all(dialog: ScriptRunDialog) -> int:
        seen["preselected"] = dialog.combo.currentText()
        dialog.combo.setCurrentIndex(0)  # "All runs"
        return QDialog.DialogCode.Accepted

    monkeypatch.setattr(ScriptRunDialog, "exec", choose_all)
    _, path = export_and_wait(qtbot, parent, session, 2, path=tmp_path / "race.py")
    assert seen["preselected"] == f"Run 3: {session.runs[2].title}"
    got = run_script(path)
    want = result_dict(session)
    assert len(got["runs"]) == 4
    for mine, engine in zip(got["runs"], want["runs"]):
        same_json(mine, engine, RACE_ENGINE_ONLY)


def test_the_run_dialog_lists_the_runs_and_cancel_starts_nothing(qtbot, parent, tmp_path,
                                                                 monkeypatch):
    session = Session.default()
    dialog = ScriptRunDialog([r.title for r in session.runs], 1)
    qtbot.addWidget(dialog)
    assert dialog.combo.count() == 5 and dialog.combo.itemText(0) == "All runs"
    assert dialog.run_index() == 1
    dialog.combo.setCurrentIndex(0)
    assert dialog.run_index() is None
    monkeypatch.setattr(ScriptRunDialog, "exec", lambda d: QDialog.DialogCode.Rejected)
    assert export_script_dialog(parent, session, 0, path=tmp_path / "x.py") is None
    assert list(tmp_path.iterdir()) == []


def test_a_single_run_is_not_asked_for_and_the_save_dialog_adds_py(qtbot, parent, tmp_path,
                                                                  monkeypatch):
    session = Session(get_surface("himmelblau"))
    session.add_run("Adam", {"lr": 0.05})
    session.step(20)
    monkeypatch.setattr(ScriptRunDialog, "exec", lambda d: pytest.fail("asked for one run"))
    monkeypatch.setattr(module.QFileDialog, "getSaveFileName",
                        lambda *a, **k: (str(tmp_path / "adam"), "PyTorch script (*.py)"))
    _, path = export_and_wait(qtbot, parent, session, 0)
    assert path == tmp_path / "adam.py"
    same_json(run_script(path)["runs"][0], result_dict(session)["runs"][0], RACE_ENGINE_ONLY)


def test_an_unwritable_path_is_said_in_a_message_and_writes_nothing(qtbot, parent, tmp_path):
    session = Session.default()
    target = tmp_path / "no such folder" / "run.py"
    assert export_script_dialog(parent, session, 0, run_index=None, path=target) is None
    box = parent.findChild(QMessageBox, "scriptExportError")
    assert box is not None and box.isVisible()
    assert "Could not export the script" in box.text() and "no such folder" in box.text()
    assert list(tmp_path.iterdir()) == []


def test_a_cancelled_export_leaves_no_file(qtbot, parent, tmp_path):
    session = Session.default()
    session.step(3000)  # the job replays 12000 steps: long enough to cancel in time
    path = tmp_path / "long.py"
    export = export_script_dialog(parent, session, 0, run_index=None, path=path)
    assert export is not None and export.progress_dialog.isVisible()
    cancel = export.progress_dialog.findChild(QPushButton)
    assert cancel.text() == "Cancel"
    with qtbot.waitSignal(export.sigCancelled, timeout=60_000):
        qtbot.mouseClick(cancel, Qt.MouseButton.LeftButton)
    assert not export.written and list(tmp_path.iterdir()) == []
    assert wait_for_jobs(30.0)
    assert list(tmp_path.iterdir()) == []


# --- model mode ------------------------------------------------------------------------------

@pytest.fixture
def model(qtbot):
    c = ModelController(ModelSettings(dataset="moons", n=80, preset="small-mlp",
                                      batch_size=16))
    c.sharpness_every = 10 ** 9
    run = c.add_run("SGD")
    c.add_run("Adam")
    for _ in range(6):
        c.step_once()
    c.set_lr(run, 0.05)  # a change between steps, replayed by the script at its step
    for _ in range(6):
        c.step_once()
    yield c
    c.pause()
    assert c.shutdown(2.0)


@pytest.mark.parametrize("trained", [False, True], ids=["trained in the job", "built given"])
def test_a_model_run_as_a_script_prints_what_the_workspace_trained(qtbot, parent, tmp_path,
                                                                   model, trained):
    c = model
    built = replace(c.built, runs=list(c.runs)) if trained else None
    _, path = export_and_wait(qtbot, parent, c.to_session(), 0, run_index=0, built=built,
                              eval_every=c.test_every, path=tmp_path / "model.py")
    got = run_script(path)
    # the engine: the session trained headless, as `main.py train --session FILE --json` does
    # (the workspace measures the held-out loss at its own steps, the script every K steps)
    session = c.to_session()
    engine = session.build()
    records = train(engine, [spec.steps for spec in session.runs], c.test_every)
    want = train_report(session, engine, records, c.test_every)
    assert got["model"] == want["model"] and got["data"] == want["data"]
    assert len(got["runs"]) == 1
    same_json(got["runs"][0], want["runs"][0], MODEL_ENGINE_ONLY)
    # and those are the workspace's own runs, bit for bit
    run = c.runs[0]
    assert run.steps == 12  # (not stepped by the export)
    assert got["runs"][0]["trajectory"]["loss"] == run.trajectory.loss.tolist()
    assert got["runs"][0]["final_parameters"] == c.report()["runs"][0]["final_parameters"]
