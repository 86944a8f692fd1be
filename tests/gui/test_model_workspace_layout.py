"""The model workspace at 1280x800: the tensor heatmap's two images (value and gradient) are
drawn wholly inside their widget, beside the tensor table that asks for its columns' width."""

from __future__ import annotations

from PySide6.QtCore import QRect


def _on_screen(canvas, item) -> QRect:
    return canvas.mapFromScene(item.sceneBoundingRect()).boundingRect()


def test_the_heatmaps_images_fit_beside_the_tensor_table_at_1280x800(qtbot,
                                                                      make_model_workspace):
    w = make_model_workspace(size=(1280, 800))
    c = w.controller
    c.add_run("Adam")
    c.step_once()
    heatmap = w.tensor_heatmap
    heatmap.refresh()
    qtbot.wait(50)
    canvas = heatmap.canvas
    inside = canvas.viewport().rect()
    for plot in (heatmap.value_plot, heatmap.grad_plot):
        shown = _on_screen(canvas, plot.getViewBox())
        assert shown.width() > 20, shown
        assert inside.contains(shown), (shown, inside)
    # and the table still shows every column but the stretched state column whole
    table = w.tensor_table
    assert table.width() >= table.minimumSizeHint().width()
