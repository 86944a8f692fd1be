"""The File menu in the Model tab: new, open (either kind of file, from any tab), save, examples,
exports, and the unsaved-changes question, driven through the real window."""

from __future__ import annotations

import json

import pytest
from PySide6.QtGui import QImage

from core.model_session import ModelSession
from core.session import Session
from gui.model.controller import examples as model_examples
from gui.model_files import is_model_session_file


@pytest.fixture
def window(make_main_window):
    w = make_main_window()
    w.questions = []
    w.ask_unsaved = lambda: w.questions.append("asked") or "discard"
    return w


def _title(window) -> str:
    return window.windowTitle().replace("[*]", "")


def _export_texts(window) -> list[str]:
    window.export_menu.aboutToShow.emit()  # what the menu holds when the user opens it
    return [a.text() for a in window.export_menu.actions() if a.text()]


def test_model_examples_are_in_the_examples_menu_and_open_in_the_model_tab(window):
    actions = [a for a in window.examples_menu.actions() if a.data() == "model"]
    shipped = model_examples()
    assert [a.text() for a in actions] == [title for _, title, _ in shipped] and len(actions) >= 4
    name, title, description = next(e for e in shipped if e[0] == "fine-tune-last-layer")
    next(a for a in actions if a.text() == title).trigger()
    assert window.model_active()
    controller = window.model_workspace.controller
    assert controller.title == title
    assert _title(window).endswith(title)
    assert not window.isWindowModified()
    assert description.split()[0] in window.statusBar().currentMessage()
    assert window.model_files.path is None  # Ctrl+S asks where: the example stays as shipped
    assert window.controller.session.surface.name == "rosenbrock"  # the race is untouched


def test_save_in_the_model_tab_writes_the_model_session_and_leaves_the_race_alone(window, tmp_path):
    window.show_model()
    controller = window.model_workspace.controller
    controller.step_once()
    controller.step_once()
    assert window.model_files.modified
    path = tmp_path / "moons.json"
    assert window.model_files.save_to(path)
    assert is_model_session_file(path)
    saved = ModelSession.load(path)
    assert saved.to_dict() == controller.to_session().to_dict()
    assert [spec.steps for spec in saved.runs] == [2] * len(controller.runs)
    assert window.session_path is None  # the race has no file
    assert _title(window).endswith("moons.json")
    assert not window.isWindowModified()
    # Ctrl+S in the Model tab writes there again, not to a race file
    controller.step_once()
    assert window.save_session()
    assert [spec.steps for spec in ModelSession.load(path).runs] == [3] * len(controller.runs)
    # back in the race the title is the race's
    window.workspace_tabs.setCurrentWidget(window.surface_area)
    assert _title(window).endswith("untitled")


def test_open_takes_either_kind_of_file_from_any_tab(window, tmp_path):
    window.show_model()
    model_path = tmp_path / "model.json"
    window.model_files.save_to(model_path)
    race_path = tmp_path / "race.json"
    race = Session.default("himmelblau")
    race.save(race_path)
    window.show_lab()
    assert window.open_session(race_path)
    assert window.in_race() and window.controller.session.surface.name == "himmelblau"
    assert window.session_path == race_path
    window.model_workspace.controller.step_once()  # an unsaved change in the model session
    assert window.open_session(model_path)
    assert window.model_active()
    assert window.questions == ["asked"]  # about the model's changes, not the race's
    assert all(run.steps == 0 for run in window.model_workspace.controller.runs)
    assert window.model_files.path == model_path
    recent = [a.data() for a in window.recent_menu.actions()]
    assert recent[:2] == [str(model_path.resolve()), str(race_path.resolve())]


def test_a_broken_model_file_says_why_and_changes_nothing(window, tmp_path, qtbot):
    window.show_model()
    controller = window.model_workspace.controller
    controller.step_once()
    before = controller.to_session().to_dict()
    bad = tmp_path / "bad.json"
    good = ModelSession.default().to_dict()
    good["model"] = "Linear(2, 16), Tanh(, Linear(16, 1)"
    bad.write_text(json.dumps(good))
    assert is_model_session_file(bad)
    assert not window.open_session(bad)
    box = window.findChild(object, "errorBox")
    assert box is not None and "Could not open the session" in box.text()
    assert controller.to_session().to_dict() == before
    assert window.model_files.path is None


def test_new_in_the_model_tab_asks_and_cancel_keeps_the_runs(window):
    window.show_model()
    controller = window.model_workspace.controller
    controller.remove_run(controller.runs[-1])
    controller.step_once()
    window.ask_unsaved = lambda: "cancel"
    assert not window.new_session()
    assert [run.steps for run in controller.runs] == [1]
    window.ask_unsaved = lambda: "discard"
    assert window.new_session()
    assert len(controller.runs) == len(ModelSession.default().runs)
    assert all(run.steps == 0 for run in controller.runs)
    assert not window.isWindowModified() and _title(window).endswith("untitled")
    assert len(window.controller.session.runs) == 4  # the race kept its own runs


def test_the_unsaved_mark_follows_stepping_in_the_model_tab(window, qtbot):
    window.show_model()
    assert not window.isWindowModified()
    window.model_workspace.controller.step_once()
    qtbot.waitUntil(window.isWindowModified, timeout=3000)
    window.workspace_tabs.setCurrentWidget(window.surface_area)
    assert not window.isWindowModified()  # the race has no change


def test_the_export_menu_offers_the_model_views_in_the_model_tab(window, tmp_path):
    assert "Surface and trajectories as &PNG…" in _export_texts(window)
    window.show_model()
    texts = _export_texts(window)
    assert "Loss landscape as PNG…" in texts and "Data and predictions as SVG…" in texts
    assert "Surface and trajectories as &PNG…" not in texts
    controller = window.model_workspace.controller
    controller.step_once()
    png = tmp_path / "data.png"
    assert window.model_files.export_view("data", png)
    image = QImage(str(png))
    assert not image.isNull() and image.width() > 50
    out = tmp_path / "curves.json"
    assert window.model_files.export_data(out)
    assert json.loads(out.read_text()) == json.loads(json.dumps(controller.report()))
    assert not window.model_files.export_data(tmp_path / "curves.txt")  # one-line error
    assert not (tmp_path / "curves.txt").exists()
    window.workspace_tabs.setCurrentWidget(window.surface_area)
    assert "Surface and trajectories as &PNG…" in _export_texts(window)


def test_quitting_with_unsaved_model_changes_asks_and_cancel_keeps_the_window(window, tmp_path):
    window.show_model()
    window.model_workspace.controller.step_once()
    window.ask_unsaved = lambda: "cancel"
    assert not window.close()
    assert window.isVisible()
    path = tmp_path / "kept.json"
    window.ask_unsaved = lambda: "save"
    window.model_files.path = path  # Ctrl+S's file: saving writes there, then the window closes
    assert window.close()
    assert [spec.steps for spec in ModelSession.load(path).runs] == \
        [1] * len(ModelSession.default().runs)


def _run_script(path) -> dict:
    import subprocess
    import sys

    out = subprocess.run([sys.executable, str(path)], capture_output=True, text=True,
                         timeout=120, env={"OMP_NUM_THREADS": "1", "PATH": "/usr/bin:/bin"})
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout)


def test_export_as_pytorch_script_writes_the_tab_on_screen(window, qtbot, tmp_path):
    """File > Export > As PyTorch script… is in both tabs' menus; in the Model tab it writes the
    workspace's runs as trained (the selected one), in the race the race's."""
    assert "As PyTorch sc&ript…" in _export_texts(window)
    race = tmp_path / "race.py"
    window.controller.select(window.controller.session.runs[3])  # Adam
    task = window.export_script_dialog(path=race, run_index=3)
    with qtbot.waitSignal(task.sigFinished, timeout=60_000):
        pass
    assert "torch.optim.Adam(" in race.read_text()
    assert "torch.optim.SGD(" not in race.read_text()  # only run 4 was asked for

    window.show_model()
    assert "As PyTorch sc&ript…" in _export_texts(window)
    controller = window.model_workspace.controller
    controller.remove_run(controller.runs[0])
    controller.add_run("RMSprop", lr=0.003)
    for _ in range(3):
        controller.step_once()
    model = tmp_path / "model.py"
    task = window.export_script_dialog(path=model, run_index=None)
    with qtbot.waitSignal(task.sigFinished, timeout=120_000):
        pass
    printed = _run_script(model)
    report = controller.report()
    assert [r["optimizer"] for r in printed["runs"]] == [r["optimizer"] for r in report["runs"]] \
        == ["Adam", "RMSprop"]
    for mine, theirs in zip(printed["runs"], report["runs"]):
        assert mine["final_parameters"] == theirs["final_parameters"]  # bit for bit
