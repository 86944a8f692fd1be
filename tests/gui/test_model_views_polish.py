"""The model workspace as a new user first sees it: the run list before Play, the tensor table's
width at 1280 x 800."""

from __future__ import annotations

from PySide6.QtCore import Qt

from gui.model.tensor_table import COLUMNS, compact


def test_the_run_list_says_ready_before_the_first_step_and_running_after(qtbot, model_workspace):
    w, c = model_workspace, model_workspace.controller
    c.add_run("SGD", lr=0.05)
    c.add_run("Adam", lr=0.01)
    texts = [w.run_panel.run_list.item(r).text() for r in range(2)]
    assert all("ready, not started" in t and "running" not in t for t in texts), texts
    qtbot.mouseClick(w.setup_bar.step_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: all("running" in w.run_panel.run_list.item(r).text()
                                for r in range(2)), timeout=3000)
    assert c.runs[0].steps >= 1


def test_compact_numbers():
    assert compact(0.000146) == "1.46e-4"
    assert compact(2.876) == "2.88"
    assert compact(0.02684) == "0.0268"
    assert compact(123456.0) == "1.23e5"
    assert compact(0.0) == "0"
    assert compact(float("nan")) == "–"


def test_the_tensor_table_fits_its_pane_at_1280_wide(qtbot, deep_model_workspace):
    w, c = deep_model_workspace, deep_model_workspace.controller
    c.add_run("Adam", lr=0.01)
    for _ in range(3):
        qtbot.mouseClick(w.setup_bar.step_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: c.runs[0].steps >= 3, timeout=3000)
    table = w.tensor_table
    table.refresh()
    qtbot.wait(50)
    header = table.horizontalHeader()
    viewport = table.viewport().width()
    # every column but the stretched state column starts and ends inside the visible width
    last = len(COLUMNS) - 2
    right = header.sectionViewportPosition(last) + header.sectionSize(last)
    sizes = [header.sectionSize(i) for i in range(len(COLUMNS))]
    assert right <= viewport, (right, viewport, sizes)
    assert header.sectionViewportPosition(len(COLUMNS) - 1) <= viewport
    assert table.horizontalScrollBar().maximum() == 0
    row = table.names().index("0.weight")
    assert "e" in table.item(row, 4).text() or len(table.item(row, 4).text()) <= 6
    assert table.horizontalHeaderItem(2).toolTip().startswith("|value|")
