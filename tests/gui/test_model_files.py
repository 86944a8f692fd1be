"""The model workspace's File-menu entry points (sessions, examples, exports) and when it pauses."""

from __future__ import annotations

import xml.etree.ElementTree as ET

import pytest
from PySide6.QtGui import QImage
from PySide6.QtWidgets import QLabel, QTabWidget

from core.errors import ExportError, SessionError
from gui.model.controller import ModelSettings
from gui.model.workspace import ModelWorkspace


def test_save_then_load_through_the_workspace_and_a_bad_file_changes_nothing(
        qtbot, model_workspace, tmp_path):
    c = model_workspace.controller
    c.add_run("SGD")
    for _ in range(5):
        c.step_once()
    path = tmp_path / "s.json"
    model_workspace.save_session(path)
    c.configure(batch_size=10)
    assert c.runs[0].steps == 0
    model_workspace.load_session(path)
    assert c.settings.batch_size == 0 and c.runs[0].steps == 5
    # what the user sees follows: the run list and the tensor table show the loaded run
    assert model_workspace.run_panel.run_list.count() == 1
    assert "SGD" in model_workspace.run_panel.run_list.item(0).text()
    assert model_workspace.tensor_table.rowCount() == 4
    (tmp_path / "bad.json").write_text('{"format": "something else"}')
    problem = c.problem
    with pytest.raises(SessionError, match="not a model session file"):
        model_workspace.load_session(tmp_path / "bad.json")
    assert c.problem is problem and c.runs[0].steps == 5


def test_examples_open_from_the_workspace(qtbot, model_workspace):
    names = [name for name, _, _ in model_workspace.examples()]
    model_workspace.open_example("fine-tune-last-layer")
    assert "fine-tune-last-layer" in names
    assert [r.label for r in model_workspace.controller.runs] == ["Adam, every layer",
                                                            "Adam, last layer only"]
    with pytest.raises(SessionError, match="no model example 'nope'; examples: "):
        model_workspace.open_example("nope")


@pytest.mark.parametrize("name", ["data", "curves", "sharpness", "tensors", "heatmap"])
def test_each_view_exports_as_png_and_svg(qtbot, model_workspace, tmp_path, name):
    model_workspace.controller.add_run("Adam")
    model_workspace.controller.select_tensor("0.weight")
    for _ in range(3):
        model_workspace.controller.step_once()
    png = tmp_path / f"{name}.png"
    model_workspace.export_view(name, png, width=600)
    image = QImage(str(png))
    assert image.width() == 600 and image.height() > 50
    colours = {image.pixel(x, y) for x in range(0, 600, 7) for y in range(0, image.height(), 7)}
    assert len(colours) > 3  # a drawing, not a blank page
    svg = tmp_path / f"{name}.svg"
    model_workspace.export_view(name, svg)
    root = ET.parse(svg).getroot()
    assert root.tag.endswith("svg") and len(list(root.iter())) > 10
    with pytest.raises(ExportError, match="use .png or .svg"):
        model_workspace.export_view(name, tmp_path / "x.gif")
    with pytest.raises(ExportError, match="no view 'nope'"):
        model_workspace.export_view("nope", png)


def test_switching_tabs_pauses_but_minimising_does_not(qtbot, make_model_controller):
    c = make_model_controller(ModelSettings(dataset="line", n=40, model_text="Linear(1, 1)",
                                            preset=None, loss="MSELoss"))
    tabs = QTabWidget()
    qtbot.addWidget(tabs)
    w = ModelWorkspace(controller=c)
    tabs.addTab(w, "Model")
    tabs.addTab(QLabel("race"), "Race")
    tabs.show()
    qtbot.waitExposed(tabs)
    c.add_run("SGD", lr=0.01)
    c.play()
    tabs.showMinimized()
    qtbot.wait(50)
    assert c.playing  # the user may be waiting for it to train
    tabs.showNormal()
    qtbot.waitExposed(tabs)
    tabs.setCurrentIndex(1)
    assert not c.playing  # nobody looks at it: it stops taking the machine


def test_the_workspace_knows_when_it_has_unsaved_changes(qtbot, tmp_path):
    w = ModelWorkspace()  # its own first look: SGD and Adam, nothing the user made
    qtbot.addWidget(w)
    c = w.controller
    try:
        c.sharpness_every = 10 ** 9
        assert not w.modified
        c.step_once()
        assert w.modified  # the runs' steps are in the file
        w.save_session(tmp_path / "a.json")
        assert not w.modified
        c.set_frozen(c.runs[0], "0.bias", True)
        assert w.modified
        w.load_session(tmp_path / "a.json")
        assert not w.modified and not c.runs[0].frozen
    finally:
        assert c.shutdown(2.0)
