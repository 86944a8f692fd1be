"""The data view's small multiples (one panel per run) and its held-out figures."""

from __future__ import annotations

import numpy as np
import pytest
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


def _plain_outputs(run, model_text: str, n_features: int, xs: np.ndarray) -> torch.Tensor:
    """model(x) with the run's weights, as a PyTorch user evaluates it."""
    from core.problems.model import build_model
    model = build_model(model_text, n_features, 0)
    model.load_state_dict({n: p.detach() for n, p in run.parameters.items()})
    with torch.no_grad():
        return model.eval()(torch.tensor(xs, dtype=torch.float64).reshape(-1, 1))


def test_a_fit_gone_wild_does_not_squash_the_points(qtbot, make_model_workspace):
    w = make_model_workspace(ModelSettings(dataset="line", n=40, model_text="Linear(1, 1)",
                                           preset=None, loss="MSELoss", test_fraction=0.0))
    c = w.controller
    run = c.add_run("SGD", lr=3.0)  # far past 2 / sharpness: every step overshoots more
    for _ in range(12):
        c.step_once()
    w.data_view.refresh_prediction()  # (the view redraws a few times a second)
    xs, ys = w.data_view.curve.getData()
    assert np.nanmax(np.abs(ys)) > 1e4  # the fit is far off ...
    y = c.dataset.y.numpy()

    def axes_follow_the_points() -> bool:
        low, high = w.data_view.plot.getViewBox().viewRange()[1]
        span = y.max() - y.min()
        return low <= y.min() and high >= y.max() and high - low < 3 * span

    qtbot.waitUntil(axes_follow_the_points, timeout=3000)  # ... and the axes keep the data
    np.testing.assert_allclose(ys, _plain_outputs(run, "Linear(1, 1)", 1, xs).reshape(-1),
                               rtol=1e-12)


@pytest.mark.parametrize("loss", ["CrossEntropyLoss", "BCEWithLogitsLoss"])
def test_classes_on_one_feature_show_the_predicted_class_or_probability_along_x(
        qtbot, make_model_workspace, loss):
    classes = ["low", "mid", "high"] if loss == "CrossEntropyLoss" else ["no", "yes"]
    text = "x,label\n" + "".join(f"{i * 0.2:.1f},{classes[(i * len(classes)) // 30]}\n"
                                 for i in range(30))
    w = make_model_workspace(ModelSettings(dataset=None, csv=text, preset="small-mlp",
                                           loss=loss, test_fraction=0.0))
    c, view = w.controller, w.data_view
    assert c.dataset.class_names == tuple(sorted(classes))
    run = c.add_run("Adam")
    for _ in range(30):
        c.step_once()
    view.refresh_prediction()  # (the view redraws a few times a second)
    # the points at their class's index, named on the axis
    _, heights = view.train_points.getData()
    np.testing.assert_array_equal(heights, c.train.y.numpy())
    ticks = view.plot.getAxis("left")._tickLevels
    assert ticks == [list(enumerate(c.dataset.class_names))]
    xs, curve = view.curve.getData()
    outputs = _plain_outputs(run, c.settings.model_text, 1, xs)
    if loss == "CrossEntropyLoss":
        assert "predicted class" in view._title
        np.testing.assert_array_equal(curve, outputs.argmax(dim=1).numpy())
    else:
        assert "P(class 1)" in view._title
        np.testing.assert_allclose(curve, torch.sigmoid(outputs).reshape(-1).numpy(),
                                   rtol=1e-12)
        assert curve.min() >= 0 and curve.max() <= 1
