"""Click a row of the tensor table: the tensor and its gradient as heatmaps, centred at 0."""

from __future__ import annotations

import numpy as np
from PySide6.QtCore import Qt



def _click_row(qtbot, table, name: str) -> None:
    row = table.names().index(name)
    rect = table.visualItemRect(table.item(row, 0))
    qtbot.mouseClick(table.viewport(), Qt.MouseButton.LeftButton, pos=rect.center())


def test_clicking_a_row_shows_its_tensor_and_gradient(qtbot, model_workspace):
    w, c = model_workspace, model_workspace.controller
    run = c.add_run("SGD")
    assert c.selected_tensor == "0.weight"  # the first tensor, until the user picks another
    c.step_once()
    w.tensor_table.refresh()
    _click_row(qtbot, w.tensor_table, "2.weight")
    assert c.selected_tensor == "2.weight"
    assert w.tensor_heatmap.values.shape == (1, 16)
    _click_row(qtbot, w.tensor_table, "0.weight")
    assert c.selected_tensor == "0.weight"
    heat = w.tensor_heatmap
    weight = run.parameters["0.weight"]
    np.testing.assert_array_equal(heat.values, weight.detach().numpy())  # 16 x 2, as stored
    np.testing.assert_array_equal(heat.grads, weight.grad.numpy())
    np.testing.assert_array_equal(heat.value_image.image, heat.values)
    # diverging and centred at 0: symmetric limits, white in the middle
    low, high = heat.value_image.levels
    assert low == -high == -np.abs(weight.detach().numpy()).max()
    assert tuple(heat.value_image.getColorMap().map(0.5, mode="byte")[:3]) == (247, 247, 247)
    # the hover read-out names the cell and both numbers
    text = heat.show_cell(3, 1)
    assert text == (f"0.weight[3, 1] = {weight[3, 1].item():.6g}, gradient "
                    f"{weight.grad[3, 1].item():.6g}")
    assert heat.readout.text() == text
    # a bias is one row; it follows the training
    _click_row(qtbot, w.tensor_table, "0.bias")
    assert heat.values.shape == (1, 16)
    before = heat.values.copy()
    for _ in range(3):
        c.step_once()
    heat.refresh()
    assert not np.array_equal(before, heat.values)


def test_a_frozen_tensor_has_no_gradient_map(qtbot, model_workspace):
    w, c = model_workspace, model_workspace.controller
    run = c.add_run("Adam")
    c.select_tensor("2.weight")
    c.set_frozen(run, "2.weight", True)
    assert w.tensor_heatmap.grads is None
    assert "none (frozen)" in w.tensor_heatmap.show_cell(0, 0)
    assert w.tensor_heatmap.grad_image.image is None
