"""The model workspace's loss landscape, driven through its real widgets (pytest-qt)."""

from __future__ import annotations

import copy
import math

import numpy as np
import pytest
import torch
from PySide6.QtCore import QPointF, Qt
from torch import nn

from core.landscape import KINDS, project_paths
from gui.model.controller import ModelController, ModelSettings
from gui.model.landscape_view import LandscapeView
from gui.model.workspace import ModelWorkspace
from gui.surface_view import log_scale
from gui.worker import wait_for_jobs

LINE = ModelSettings(dataset="line", n=60, noise=0.1, model_text="Linear(1, 1)", preset=None,
                     loss="MSELoss")
MOONS = ModelSettings(dataset="moons", n=80, noise=0.1, preset="small-mlp",
                      loss="BCEWithLogitsLoss")


def _view(qtbot, settings: ModelSettings, optimizers=("SGD",)) -> LandscapeView:
    controller = ModelController(settings)
    for name in optimizers:
        controller.add_run(name)
    view = LandscapeView(controller)
    qtbot.addWidget(view)
    view.resize(900, 650)
    view.show()
    qtbot.waitExposed(view)
    return view


@pytest.fixture
def cleanup():
    views: list[LandscapeView] = []
    yield views
    for view in views:
        view.shutdown()
        assert view.controller.shutdown(2.0)
    assert wait_for_jobs(2.0)


def _choose(view: LandscapeView, kind: str) -> None:
    index = view.kind_box.findData(kind)
    view.kind_box.setCurrentIndex(index)
    view.kind_box.activated.emit(index)


def _compute(view: LandscapeView) -> None:
    view.compute_button.click()
    assert view.wait_for_job(30.0)


def _plain_linear_loss(X, y, w: float, b: float) -> float:
    plain = nn.Linear(1, 1, dtype=torch.float64)
    with torch.no_grad():
        plain.weight.fill_(w)
        plain.bias.fill_(b)
        return float(nn.MSELoss()(plain(X), y))


def test_linear_regression_offers_exact_and_its_heatmap_is_the_models_loss(qtbot, cleanup):
    view = _view(qtbot, LINE)
    cleanup.append(view)
    exact = view.kind_box.model().item(KINDS.index("exact"))
    assert exact.isEnabled() and view.kind == "exact"   # chosen by default: two scalars
    assert view.wait_for_job(30.0)                        # and computed by itself (cheap)
    grid = view.picture.landscape.grid
    assert (grid.x_name, grid.y_name) == ("0.weight", "0.bias")
    axis_names = (view.picture.plot_item.getAxis("bottom").labelText,
                  view.picture.plot_item.getAxis("left").labelText)
    assert axis_names == ("0.weight", "0.bias")
    problem = view.controller.problem
    for i in (0, 7, 25, 50):
        for j in (0, 13, 25, 50):
            expected = _plain_linear_loss(problem.X, problem.y, grid.x_values[j],
                                          grid.y_values[i])
            assert grid.loss[i, j] == pytest.approx(expected, rel=1e-12, abs=1e-15)
    # the image shows exactly those losses, on the race's log colour scale
    colours, _ = log_scale(grid.loss, float(grid.loss.min()))
    np.testing.assert_array_equal(view.picture.image_item.image, colours)
    # the centre is the shared initial weights
    w0, b0 = (float(t) for t in problem.initial_parameters().values())
    assert view.picture.centre_item.data["x"][0] == w0 and \
        view.picture.centre_item.data["y"][0] == b0
    assert "torch.no_grad()" in view.status_label.text()


def test_a_runs_drawn_exact_path_is_its_trajectory_and_a_plain_loop(qtbot, cleanup):
    view = _view(qtbot, LINE)
    cleanup.append(view)
    assert view.wait_for_job(30.0)
    drawn_landscape = view.landscape
    controller = view.controller
    run = controller.runs[0]
    for _ in range(25):
        controller.step_once()
    view.update_paths()
    assert view.landscape is drawn_landscape   # paths move live: no new grid for that
    x, y = view.picture.lines[0].getData()
    assert len(x) == 26
    np.testing.assert_array_equal(x, run.trajectory.values("0.weight").reshape(-1))
    np.testing.assert_array_equal(y, run.trajectory.values("0.bias").reshape(-1))
    # what a PyTorch user's loop gives from the same initial weights
    problem = controller.problem
    model = nn.Linear(1, 1, dtype=torch.float64)
    start = problem.initial_parameters()
    with torch.no_grad():
        model.weight.copy_(start["0.weight"])
        model.bias.copy_(start["0.bias"])
    optimizer = torch.optim.SGD(model.parameters(), lr=run.hyperparameters["lr"])
    weights, biases = [model.weight.item()], [model.bias.item()]
    for _ in range(25):
        optimizer.zero_grad()
        nn.MSELoss()(model(problem.X), problem.y).backward()
        optimizer.step()
        weights.append(model.weight.item())
        biases.append(model.bias.item())
    np.testing.assert_allclose(x, weights, rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(y, biases, rtol=1e-12, atol=1e-14)
    heads = view.picture.heads_item.data
    assert (heads["x"][0], heads["y"][0]) == (x[-1], y[-1])


def _flat(model: nn.Module) -> np.ndarray:
    return torch.cat([p.detach().reshape(-1) for p in model.parameters()]).numpy().copy()


def test_small_mlp_pca_paths_are_the_projections_and_the_text_says_the_variance(
        qtbot, cleanup):
    view = _view(qtbot, MOONS, optimizers=("SGD", "Adam"))
    cleanup.append(view)
    assert not view.kind_box.model().item(KINDS.index("exact")).isEnabled()
    assert view.kind == "random"
    controller = view.controller
    for _ in range(30):
        controller.step_once()
    _choose(view, "pca")
    _compute(view)
    landscape = view.landscape
    assert landscape.kind == "pca" and not view.stale
    paths = view.paths()
    # the recorded paths are the runs' parameters after every step: a plain Adam loop agrees
    problem = controller.problem
    model = copy.deepcopy(problem.model)
    with torch.no_grad():
        for name, p in model.named_parameters():
            p.copy_(problem.initial_parameters()[name])
    adam = torch.optim.Adam(model.parameters(), lr=controller.runs[1].hyperparameters["lr"])
    plain = [_flat(model)]
    for _ in range(30):
        adam.zero_grad()
        problem.loss_fn(model(problem.X), problem.y).backward()
        adam.step()
        plain.append(_flat(model))
    np.testing.assert_allclose(paths[1], np.stack(plain), rtol=1e-10, atol=1e-12)
    expected = project_paths(paths, landscape.directions)
    for line, projection in zip(view.picture.lines, expected):
        x, y = line.getData()
        np.testing.assert_allclose(x, projection.alpha, rtol=1e-12, atol=1e-12)
        np.testing.assert_allclose(y, projection.beta, rtol=1e-12, atol=1e-12)
    # the explained variance: the share of the snapshots' squared distance from θ₀ in the plane
    centre = landscape.directions.centre.numpy()
    offsets = np.concatenate(paths) - centre
    singular = np.linalg.svd(offsets, compute_uv=False)
    share = singular[:2] ** 2 / (singular ** 2).sum()
    text = view.plane_label.text()
    assert f"{100 * share.sum():.1f}%" in text
    assert f"PC1 {100 * share[0]:.1f}%" in text and f"PC2 {100 * share[1]:.1f}%" in text
    # the slice at (0, 0) is the loss at the centre, the initial weights
    g = landscape.grid
    with torch.no_grad():
        at_start = _at(problem, problem.initial_parameters())
        centre_loss = float(problem.loss_fn(at_start(problem.X), problem.y))
    assert g.loss[len(g.y_values) // 2, len(g.x_values) // 2] == pytest.approx(centre_loss,
                                                                                rel=1e-12)
    assert (g.x_name, g.y_name) == ("alpha", "beta")


def _at(problem, values) -> nn.Module:
    model = copy.deepcopy(problem.model).eval()
    with torch.no_grad():
        for name, p in model.named_parameters():
            p.copy_(values[name])
    return model


def test_random_slice_says_how_far_the_paths_are_off_the_plane(qtbot, cleanup):
    view = _view(qtbot, MOONS)
    cleanup.append(view)
    for _ in range(10):
        view.controller.step_once()
    _compute(view)
    off = project_paths(view.paths(), view.landscape.directions)[0].off_plane
    text = view.plane_label.text()
    assert f"{off.mean():.3g} (mean)" in text and f"{off.max():.3g} (max)" in text


def test_cancel_leaves_the_previous_picture(qtbot, cleanup):
    view = _view(qtbot, MOONS)
    cleanup.append(view)
    _compute(view)
    before, image = view.landscape, view.picture.image_item.image.copy()
    view.grid_box.setValue(301)
    view.compute_button.click()
    assert view.progress.isVisible()
    view.progress.cancel_button.click()
    qtbot.waitUntil(lambda: view.job is None, timeout=30_000)
    assert view.landscape is before and view.picture.landscape is before
    np.testing.assert_array_equal(view.picture.image_item.image, image)
    assert "Cancelled" in view.status_label.text()
    assert not view.progress.isVisible()


def test_a_freeze_change_marks_the_picture_stale_until_computed_again(qtbot, cleanup):
    view = _view(qtbot, MOONS)
    cleanup.append(view)
    _compute(view)
    assert not view.stale and "Out of date" not in view.status_label.text()
    controller = view.controller
    controller.set_frozen(controller.runs[0], "0.weight", True)
    assert view.stale and "Out of date" in view.status_label.text()
    _compute(view)
    assert not view.stale and "Out of date" not in view.status_label.text()
    # the frozen tensor does not move in the new slice: its direction entries are zero
    d1 = view.landscape.directions.d1
    assert torch.all(d1[:32] == 0) and torch.any(d1[32:] != 0)


def test_freezing_all_but_two_scalars_offers_exact(qtbot, cleanup):
    view = _view(qtbot, LINE)
    cleanup.append(view)
    assert view.wait_for_job(30.0)
    controller = view.controller
    controller.set_frozen(controller.runs[0], "0.bias", True)    # one scalar left
    exact = view.kind_box.model().item(KINDS.index("exact"))
    assert not exact.isEnabled() and view.kind != "exact"
    controller.set_frozen(controller.runs[0], "0.bias", False)   # two again
    assert exact.isEnabled()


def _hover(view: LandscapeView, x: float, y: float) -> None:
    vb = view.picture.plot_item.getViewBox()
    view.graphics.scene().sigMouseMoved.emit(vb.mapViewToScene(QPointF(x, y)))


def test_hover_shows_the_exact_loss_at_the_cursor_not_the_nearest_grid_point(qtbot, cleanup):
    view = _view(qtbot, LINE)
    cleanup.append(view)
    assert view.wait_for_job(30.0)
    grid = view.landscape.grid
    # halfway between grid points, where the nearest one's loss is not the loss here
    w = (grid.x_values[10] + grid.x_values[11]) / 2
    b = (grid.y_values[40] + grid.y_values[41]) / 2
    _hover(view, w, b)
    qtbot.waitUntil(lambda: view.hover_point is not None, timeout=5000)
    x, y, loss = view.hover_point
    assert x == pytest.approx(w, rel=1e-9) and y == pytest.approx(b, rel=1e-9)
    expected = _plain_linear_loss(view.controller.problem.X, view.controller.problem.y, x, y)
    assert loss == pytest.approx(expected, rel=1e-14)
    assert loss != pytest.approx(float(grid.loss[40, 10]), rel=1e-6)
    text = view.hover_label.text()
    assert f"0.weight = {x:.5g}" in text and f"0.bias = {y:.5g}" in text
    assert f"loss {expected:.6g}, exact at (0.weight, 0.bias)" in text
    assert "nearest grid point" not in text
    # outside the grid: nothing
    _hover(view, grid.x_values[-1] + 10, b)
    qtbot.waitUntil(lambda: view.hover_label.text() == "", timeout=5000)
    assert view.hover_point is None


def test_hover_on_a_slice_is_a_plain_functional_call_at_theta0_plus_alpha_d1_beta_d2(
        qtbot, cleanup):
    view = _view(qtbot, MOONS)
    cleanup.append(view)
    for _ in range(5):
        view.controller.step_once()
    _choose(view, "random")
    _compute(view)
    grid, d = view.landscape.grid, view.landscape.directions
    problem = view.controller.problem
    model = copy.deepcopy(problem.model).eval()
    vb = view.picture.plot_item.getViewBox()
    for alpha, beta in ((0.137, -0.291), (-0.402, 0.055)):
        scene = vb.mapViewToScene(QPointF(alpha, beta))
        view.graphics.scene().sigMouseMoved.emit(scene)

    def newest_landed() -> bool:  # (the layout may settle in between: map it as it is now)
        p = vb.mapSceneToView(scene)
        return view.hover_point is not None and view.hover_point[:2] == (p.x(), p.y())

    qtbot.waitUntil(newest_landed, timeout=5000)
    a, b, loss = view.hover_point
    theta = d.centre + a * d.d1 + b * d.d2
    params, start = {}, 0
    for name, p in model.named_parameters():
        params[name] = theta[start:start + p.numel()].reshape(p.shape)
        start += p.numel()
    with torch.no_grad():
        expected = float(nn.BCEWithLogitsLoss()(
            torch.func.functional_call(model, params, (problem.X,)), problem.y))
    assert loss == pytest.approx(expected, rel=1e-13)
    j = int(np.abs(grid.x_values - a).argmin())
    i = int(np.abs(grid.y_values - b).argmin())
    assert loss != pytest.approx(float(grid.loss[i, j]), rel=1e-9)  # not the grid point's
    assert f"α = {a:.5g}, β = {b:.5g}: loss {expected:.6g}, exact at (α, β)" in \
        view.hover_label.text()


def test_the_workspace_has_a_landscape_tab(qtbot):
    controller = ModelController(LINE)
    controller.add_run("Adam")
    workspace = ModelWorkspace(controller=controller)
    qtbot.addWidget(workspace)
    workspace.resize(1280, 800)
    workspace.show()
    qtbot.waitExposed(workspace)
    tabs = workspace.middle_tabs
    assert [tabs.tabText(i) for i in range(tabs.count())] == ["Data", "Landscape"]
    bar = tabs.tabBar()
    qtbot.mouseClick(bar, Qt.MouseButton.LeftButton, pos=bar.tabRect(1).center())
    assert tabs.currentWidget() is workspace.landscape_view
    view = workspace.landscape_view
    assert view.wait_for_job(30.0)
    for _ in range(5):
        controller.step_once()
    qtbot.waitUntil(lambda: len(view.picture.lines[0].getData()[0]) == 6, timeout=3000)
    workspace.shutdown()
    assert wait_for_jobs(2.0)


def test_the_exact_surface_follows_a_path_that_walks_off_it(qtbot, cleanup):
    view = _view(qtbot, LINE)
    cleanup.append(view)
    view.span_box.setValue(0.05)
    _compute(view)
    first = view.landscape
    assert first.grid.x_values[-1] - first.grid.x_values[0] < 0.2
    for _ in range(40):
        view.controller.step_once()
    view.update_paths()
    assert view.job is not None                 # walked off: computed again by itself
    for _ in range(5):                          # (a result may show the path still outside:
        assert view.wait_for_job(30.0)          # then it follows once more)
    assert view.job is None
    g = view.landscape.grid
    x, y = view.picture.lines[0].getData()
    assert view.landscape is not first
    assert g.x_values[0] < x.min() and x.max() < g.x_values[-1]
    assert g.y_values[0] < y.min() and y.max() < g.y_values[-1]


def test_a_slice_is_computed_when_the_tab_is_first_shown(qtbot, cleanup):
    controller = ModelController(MOONS)
    controller.add_run("Adam")
    view = LandscapeView(controller)
    qtbot.addWidget(view)
    cleanup.append(view)
    assert view.job is None and view.landscape is None   # nothing before it is seen
    view.show()
    qtbot.waitExposed(view)
    assert view.wait_for_job(30.0)
    assert view.landscape.kind == "random" and view.picture.legend.isVisible()


def test_hessian_directions_are_the_top_eigenvectors_of_torchs_hessian(qtbot, cleanup):
    view = _view(qtbot, MOONS)
    cleanup.append(view)
    _choose(view, "hessian")
    view.grid_box.setValue(11)
    _compute(view)
    d = view.landscape.directions
    problem = view.controller.problem
    model = _at(problem, problem.initial_parameters())
    names = [n for n, _ in model.named_parameters()]
    shapes = [p.shape for _, p in model.named_parameters()]

    def loss_of(flat: torch.Tensor) -> torch.Tensor:
        params, start = {}, 0
        for name, shape in zip(names, shapes):
            size = int(np.prod(shape))
            params[name] = flat[start:start + size].reshape(shape)
            start += size
        return problem.loss_fn(torch.func.functional_call(model, params, (problem.X,)),
                               problem.y)

    flat = torch.cat([p.detach().reshape(-1) for p in model.parameters()])
    values, vectors = torch.linalg.eigh(torch.autograd.functional.hessian(loss_of, flat))
    assert d.eigenvalues[0] == pytest.approx(float(values[-1]), rel=1e-6)
    assert d.eigenvalues[1] == pytest.approx(float(values[-2]), rel=1e-6)
    assert abs(float(torch.dot(d.d1, vectors[:, -1]))) == pytest.approx(1.0, abs=1e-6)
    assert f"eigenvalues {d.eigenvalues[0]:.4g} and {d.eigenvalues[1]:.4g}" in \
        view.status_label.text()


def test_the_view_exports_what_it_shows(qtbot, cleanup, tmp_path):
    from PySide6.QtGui import QImage

    view = _view(qtbot, MOONS, optimizers=("SGD", "Adam"))
    cleanup.append(view)
    for _ in range(10):
        view.controller.step_once()
    _compute(view)
    out = tmp_path / "view.png"
    view.export_image(str(out), 700, 500)
    image = QImage(str(out))
    assert (image.width(), image.height()) == (700, 500)
    assert "torch.no_grad()" in view.caption() and "off the plane" in view.caption()


class EveryStepController(ModelController):
    """A controller that tells listeners about every single step (the hook the view uses when
    a controller has it)."""

    def __init__(self, *args, **kwargs) -> None:
        self.step_listeners: list = []
        super().__init__(*args, **kwargs)

    def _step(self, run):
        done = super()._step(run)
        if done:
            for listener in self.step_listeners:
                listener(run)
        return done


def test_with_a_step_hook_the_recorded_path_has_every_step_of_a_tick(qtbot, cleanup):
    ticks = iter(range(10 ** 6))
    controller = EveryStepController(MOONS, clock=lambda: next(ticks) * 1e-3)  # 1 ms a look
    run = controller.add_run("Adam")
    view = LandscapeView(controller)
    qtbot.addWidget(view)
    cleanup.append(view)
    controller.tick()
    controller.tick()   # each tick takes several steps within its slice
    steps = run.steps
    assert steps > 2
    path = view.paths()[0]
    assert path.shape == (steps + 1, 65)
    model = _at(controller.problem, controller.problem.initial_parameters())
    adam = torch.optim.Adam(model.parameters(), lr=run.hyperparameters["lr"])
    problem = controller.problem
    for _ in range(steps):
        adam.zero_grad()
        problem.loss_fn(model.train()(problem.X), problem.y).backward()
        adam.step()
    np.testing.assert_allclose(path[-1], _flat(model), rtol=1e-10, atol=1e-12)
    view.shutdown()
    assert controller.step_listeners == []


def test_centred_on_the_selected_run_the_origin_is_its_loss_with_its_batchnorm_stats(
        qtbot, cleanup):
    settings = ModelSettings(dataset="moons", n=80, noise=0.1, preset=None,
                             model_text="Linear(2, 8), BatchNorm1d(8), Tanh(), Linear(8, 1)",
                             loss="BCEWithLogitsLoss")
    view = _view(qtbot, settings, optimizers=("Adam",))
    cleanup.append(view)
    controller = view.controller
    run = controller.runs[0]
    for _ in range(12):
        controller.step_once()
    view.centre_box.setCurrentIndex(view.centre_box.findData("selected"))
    _compute(view)
    problem = controller.problem
    model = _at(problem, {n: p.detach() for n, p in run.parameters.items()})
    with torch.no_grad():
        for name, b in model.named_buffers():
            b.copy_(problem.buffers(run.parameters)[name])
        expected = float(problem.loss_fn(model.eval()(problem.X), problem.y))
    initial = _at(problem, problem.initial_parameters()).eval()
    with torch.no_grad():
        at_start = float(problem.loss_fn(initial(problem.X), problem.y))
    g = view.landscape.grid
    assert g.centre_loss == pytest.approx(expected, rel=1e-12)
    assert g.loss[len(g.y_values) // 2, len(g.x_values) // 2] == pytest.approx(expected,
                                                                                rel=1e-12)
    assert abs(expected - at_start) > 1e-3      # (the run has moved: a different centre)
    assert f"around Adam at step {run.steps}" in view.status_label.text()


def test_new_data_makes_a_slice_stale_and_recomputes_a_cheap_exact_surface(qtbot, cleanup):
    view = _view(qtbot, MOONS, optimizers=("SGD", "Adam"))
    cleanup.append(view)
    _compute(view)
    view.controller.configure(noise=0.25)
    assert view.stale and "Out of date" in view.status_label.text()
    before = view.picture.paths
    view.controller.step_once()
    view.update_paths()
    assert view.picture.paths is before       # paths of the old model are not drawn on it

    exact = _view(qtbot, LINE)
    cleanup.append(exact)
    assert exact.wait_for_job(30.0)
    old = exact.landscape
    exact.controller.configure(n=30)
    assert exact.job is not None              # cheap: computed again by itself
    assert exact.wait_for_job(30.0)
    assert exact.landscape is not old and not exact.stale
    X, y = exact.controller.problem.X, exact.controller.problem.y
    g = exact.landscape.grid
    assert len(X) < 30 and g.loss[3, 4] == pytest.approx(
        _plain_linear_loss(X, y, g.x_values[4], g.y_values[3]), rel=1e-12)


def test_removing_a_run_removes_its_path(qtbot, cleanup):
    view = _view(qtbot, MOONS, optimizers=("SGD", "Adam"))
    cleanup.append(view)
    _compute(view)
    assert [p.title for p in view.picture.paths] == ["SGD", "Adam"]
    view.controller.remove_run(view.controller.runs[0])
    view.update_paths()
    assert [p.title for p in view.picture.paths] == ["Adam"] and len(view.picture.lines) == 1


def test_a_long_path_is_drawn_thinned_to_pixels_ending_at_its_head(qtbot, cleanup):
    view = _view(qtbot, LINE)
    cleanup.append(view)
    assert view.wait_for_job(30.0)
    run = view.controller.runs[0]
    for _ in range(2500):
        view.controller.step_once()
    view.cover_box.setChecked(False)   # keep this grid: only the drawing is under test
    view.update_paths()
    x, y = view.picture.lines[0].getData()
    w, b = run.trajectory.values("0.weight").reshape(-1), run.trajectory.values("0.bias")
    assert len(w) == 2501 and len(x) < len(w)
    assert (x[0], x[-1]) == (w[0], w[-1]) and (y[0], y[-1]) == (b.reshape(-1)[0],
                                                               b.reshape(-1)[-1])
    assert set(zip(x.tolist(), y.tolist())) <= set(zip(w.tolist(), b.reshape(-1).tolist()))


def test_a_diverged_run_neither_stretches_the_exact_axes_nor_keeps_recomputing(qtbot, cleanup):
    view = _view(qtbot, LINE, optimizers=("SGD", "Adam"))
    cleanup.append(view)
    assert view.wait_for_job(30.0)
    controller = view.controller
    wild, calm = controller.runs
    controller.set_lr(wild, 50.0)
    for _ in range(60):
        controller.step_once()
    assert wild.status.value == "diverged" and calm.status.value != "diverged"
    view.update_paths()
    for _ in range(5):                         # the calm run's path may need a follow or two
        assert view.wait_for_job(30.0)
    view.update_paths()
    assert view.job is None                    # settled: the diverged path does not count
    g = view.landscape.grid
    w = calm.trajectory.values("0.weight").reshape(-1)
    assert g.x_values[0] < w.min() and w.max() < g.x_values[-1]
    assert g.x_values[-1] - g.x_values[0] < 10  # not stretched towards the diverged run


@pytest.mark.parametrize("capacity", [5000, 12])
def test_paths_placed_piece_by_piece_equal_the_whole_projection(qtbot, cleanup, capacity):
    view = _view(qtbot, MOONS, optimizers=("SGD", "Adam"))
    cleanup.append(view)
    view.recorder.capacity = capacity   # 12: the record thins while the paths are placed
    for _ in range(10):
        view.controller.step_once()
    _choose(view, "pca")
    _compute(view)
    for _ in range(4):
        for _ in range(5):
            view.controller.step_once()
        view.update_paths()
    paths = view.paths()
    for path in paths:
        assert len(path) == 31 if capacity > 31 else 2 <= len(path) <= capacity
    expected = project_paths(paths, view.landscape.directions)
    for line, projection in zip(view.picture.lines, expected):
        x, y = line.getData()
        np.testing.assert_allclose(x, projection.alpha, rtol=1e-12, atol=1e-12)
        np.testing.assert_allclose(y, projection.beta, rtol=1e-12, atol=1e-12)


def test_the_colour_bar_labels_decades_or_one_two_five_times_them(qtbot, cleanup):
    view = _view(qtbot, MOONS)
    cleanup.append(view)
    _compute(view)
    axis = view.picture.color_bar.axis
    lo, hi = view.picture.color_bar.levels()
    labelled = axis.tickValues(lo, hi, 300)[0][1]
    assert len(labelled) >= 2
    mantissas = {round(10 ** (v - math.floor(v + 1e-9)), 6) for v in labelled}
    assert mantissas <= {1.0, 2.0, 5.0}  # no crowd of 0.06, 0.07, 0.08, 0.09
    assert axis.style["maxTextLevel"] == 0
