"""The data view's small multiples (one panel per run) and its held-out figures."""

from __future__ import annotations

import numpy as np
import torch

from core.problems.data import accuracy
from gui.model.controller import ModelSettings


def test_one_panel_per_run_shows_each_runs_own_regions(qtbot, model_workspace):
    w, c = model_workspace, model_workspace.controller
    sgd, adam = c.add_run("SGD"), c.add_run("Adam")
    for _ in range(60):
        c.step_once()
    view = w.data_view
    view.multiples_check.click()
    assert view.stack.currentWidget() is view.multiples
    assert list(view.panels) == [sgd, adam]
    images = []
    for run in (sgd, adam):
        plot, image = view.panels[run]
        assert plot.titleLabel.text == run.label
        grid = view._small_grid
        with torch.no_grad():
            out = c.predict(run, grid)
        probability = torch.sigmoid(out).reshape(-1)
        # the panel's colour follows this run's own predicted probability: red where p(1) is
        # high (class 1's colour), blue where it is low
        pixels = image.image.reshape(-1, 3).astype(int)
        sure_red = (probability > 0.6).numpy()
        sure_blue = (probability < 0.4).numpy()
        assert sure_red.any() and sure_blue.any()
        assert (pixels[sure_red, 0] > pixels[sure_red, 2]).all()
        assert (pixels[sure_blue, 2] > pixels[sure_blue, 0]).all()
        images.append(image.image.copy())
    assert not np.array_equal(*images)  # two runs, two different pictures
    c.add_run("RMSprop")  # a new run gets its panel
    assert len(view.panels) == 3 and len(view.multiples.ci.items) == 3
    view.multiples_check.click()
    assert view.stack.currentWidget() is view.plot


def test_the_title_gives_the_held_out_loss_and_accuracy_under_no_grad(qtbot, model_workspace):
    w, c = model_workspace, model_workspace.controller
    run = c.add_run("Adam")
    for _ in range(4):
        c.step_once()
    w.data_view.refresh_prediction()
    with torch.no_grad():
        out = c.predict(run, c.test_X)
        loss = c.loss_fn(out, c.test_y).item()
    acc = accuracy(out, c.test_y, "BCEWithLogitsLoss")
    text = w.data_view.held_out_text
    assert text == (f"test loss {loss:.4g}, accuracy {100 * acc:.1f}% (held-out rows, under "
                    "torch.no_grad())")
    assert c.extras[run].test_steps[-1] == 4  # measured at the step shown
    assert text in w.data_view.plot.getPlotItem().titleLabel.text


def test_regression_panels_draw_each_runs_fit(qtbot, make_model_workspace):
    w = make_model_workspace(ModelSettings(dataset="line", n=40, model_text="Linear(1, 1)",
                                           preset=None, loss="MSELoss"))
    c = w.controller
    run = c.add_run("SGD")
    c.step_once()
    w.data_view.multiples_check.click()
    xs, ys = w.data_view.panels[run][1].getData()
    weight, bias = run.parameters["0.weight"].item(), run.parameters["0.bias"].item()
    np.testing.assert_allclose(ys, weight * xs + bias, rtol=1e-12, atol=1e-12)
    assert "accuracy" not in w.data_view._held_out_text()  # regression: a loss only
