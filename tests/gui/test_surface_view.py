"""The surface view, driven like a user: the heatmap, minima, trajectories, clicks, drags, zoom,
hover, and what diverged and converged runs show."""

from __future__ import annotations

import math

import numpy as np
import pyqtgraph as pg
import pytest
from PySide6.QtCore import QPoint, QPointF, Qt
from PySide6.QtGui import QColor
from PySide6.QtTest import QTest
from PySide6.QtWidgets import QApplication

from core.run import RunStatus
from core.surfaces import get_surface
from gui.surface_view import (
    GRID_SIZE,
    THIN_ABOVE,
    SurfaceView,
    TrajectoryCurve,
    contour_segments,
    exit_point,
    log_heights,
)
from gui.worker import wait_for_jobs


@pytest.fixture
def view(qtbot, controller):
    v = SurfaceView(controller)
    qtbot.addWidget(v)
    v.resize(900, 700)
    v.show()
    qtbot.waitExposed(v)
    return v


def widget_pos(view: SurfaceView, x: float, y: float) -> QPoint:
    """The viewport pixel showing the data point (x, y)."""
    return view.mapFromScene(view.view_box.mapViewToScene(QPointF(x, y)))


def drag(view: SurfaceView, start: QPoint, end: QPoint, steps: int = 10) -> None:
    viewport = view.viewport()
    QTest.mousePress(viewport, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier, start)
    for k in range(1, steps + 1):
        QTest.mouseMove(viewport, start + (end - start) * (k / steps))
    QTest.mouseRelease(viewport, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier, end)


def flat(ranges: tuple[tuple[float, float], tuple[float, float]]) -> tuple[float, ...]:
    return (*ranges[0], *ranges[1])


def rect_tuple(view: SurfaceView) -> tuple[float, float, float, float]:
    r = view.image_rect()
    return r.left(), r.right(), r.top(), r.bottom()  # top is the low y in data coordinates


# --- the surface ----------------------------------------------------------------------------------


def test_heatmap_holds_the_surface_grid_in_log_colours(view, controller):
    surface = controller.session.surface
    image = view.image_item.image
    assert image.shape == (GRID_SIZE, GRID_SIZE)
    lo, hi = view.picture.levels
    assert math.isfinite(lo) and math.isfinite(hi) and lo < hi
    assert np.isfinite(image).all()
    # The image covers the region the grid was evaluated on, which covers the view.
    (gx0, gx1), (gy0, gy1) = view.picture.grid_region
    x0, x1, y0, y1 = rect_tuple(view)
    assert x0 <= -2.0 and x1 >= 2.0 and y0 <= -1.0 and y1 >= 3.0
    assert x0 < gx0 < gx1 < x1 and y0 < gy0 < gy1 < y1
    # Colours are an increasing function of f on the same grid: sorted by f, they never go down.
    _, _, z = surface.grid((gx0, gx1), (gy0, gy1), GRID_SIZE, GRID_SIZE)
    order = np.argsort(z, axis=None, kind="stable")
    assert np.all(np.diff(image.ravel()[order]) >= -1e-12)
    # ...and log-scaled: the valley spans several colour decades, not one flat shade.
    assert hi - lo > 3
    # Row-major: row j is y, column i is x. Low f at the minimum (1, 1), high at corner (-2, -1).
    i = round((1.0 - gx0) / (gx1 - gx0) * (GRID_SIZE - 1))
    j = round((1.0 - gy0) / (gy1 - gy0) * (GRID_SIZE - 1))
    assert image[j, i] < lo + 0.2 * (hi - lo)
    assert image[0, 0] > hi - 0.2 * (hi - lo)


def test_colour_bar_and_contours_follow_the_grid(view):
    picture = view.picture
    assert picture.color_bar.levels() == pytest.approx(picture.levels)
    assert len(picture.contour_levels) == 15
    cx, cy = picture.contour_item.getData()
    assert len(cx) > 100 and len(cx) % 2 == 0  # segment end points, in pairs
    (gx0, gx1), (gy0, gy1) = picture.grid_region
    assert cx.min() >= gx0 and cx.max() <= gx1 and cy.min() >= gy0 and cy.max() <= gy1


def test_minima_markers_sit_at_the_known_minima(view, controller):
    x, y = view.picture.minima_item.getData()
    assert list(zip(x, y)) == [(1.0, 1.0)]
    assert len(view.picture.local_minima_item.getData()[0]) == 0
    assert "global minimum" in view.picture.minima_item.data["data"][0]


def test_local_minima_get_their_own_marker(view, controller):
    controller.set_surface_name("wells")
    surface = controller.session.surface
    lx, ly = view.picture.local_minima_item.getData()
    np.testing.assert_allclose(np.column_stack([lx, ly]), np.array(surface.local_minima))
    assert view.picture.local_minima_item.opts["symbol"] != view.picture.minima_item.opts["symbol"]


def test_switching_surface_redraws_image_and_minima(view, controller):
    before = view.image_item.image.copy()
    controller.set_surface_name("himmelblau")
    surface = get_surface("himmelblau")
    x, y = view.picture.minima_item.getData()
    assert len(x) == 4
    np.testing.assert_allclose(np.array(sorted(zip(x, y))), np.array(sorted(surface.minima)))
    assert flat(view.view_range()) == pytest.approx((-5.0, 5.0, -5.0, 5.0))
    x0, x1, y0, y1 = rect_tuple(view)
    assert x0 <= -5 and x1 >= 5 and y0 <= -5 and y1 >= 5
    assert not np.allclose(view.image_item.image, before)
    assert "Himmelblau" in view.plot_item.titleLabel.text


# --- runs -----------------------------------------------------------------------------------------


def test_one_line_per_run_with_the_run_trajectory(view, controller):
    controller.step_once()
    controller.step_once()
    runs = controller.session.runs
    assert set(view.run_items) == set(runs)
    lines = [item for item in view.plot_item.listDataItems()
             if item in {items.line for items in view.run_items.values()}]
    assert len(lines) == len(runs)
    for run in runs:
        items = view.run_items[run]
        x, y = items.line.getData()
        np.testing.assert_array_equal(x, run.trajectory.x)
        np.testing.assert_array_equal(y, run.trajectory.y)
        assert len(x) == 3
        assert items.line.opts["pen"].color().name().lower() == run.color.lower()
        assert (items.head.pos().x(), items.head.pos().y()) == run.last_point
    names = [label.text for _, label in view.picture.legend.items]
    assert names == [r.title for r in runs]


def test_steps_update_the_same_items(view, controller):
    items_before = {run: (items.line, items.head, items.arrow)
                    for run, items in view.run_items.items()}
    n_items = len(view.plot_item.items)
    for _ in range(5):
        controller.step_once()
    assert {run: (items.line, items.head, items.arrow)
            for run, items in view.run_items.items()} == items_before
    assert len(view.plot_item.items) == n_items
    run = controller.session.runs[0]
    assert len(view.run_items[run].line.getData()[0]) == 6


def test_adding_and_removing_runs_rebuilds_items(view, controller):
    n_items = len(view.plot_item.items)
    run = controller.add_run("Adagrad", {"lr": 0.3})
    assert run in view.run_items
    assert len(view.plot_item.items) > n_items
    controller.remove_run(run)
    assert run not in view.run_items
    assert len(view.plot_item.items) == n_items
    assert len(view.picture.legend.items) == len(controller.session.runs)


def test_arrow_points_along_the_negative_gradient(view, controller):
    controller.step_once()
    for run in controller.session.runs:
        arrow = view.run_items[run].arrow
        assert arrow.isVisible()
        hx, hy = run.last_point
        gx, gy = run.trajectory.grad_x[-1], run.trajectory.grad_y[-1]
        tip = arrow.pos()
        d = np.array([tip.x() - hx, tip.y() - hy])
        g = -np.array([gx, gy])
        assert d @ g / (np.linalg.norm(d) * np.linalg.norm(g)) > 0.999
        # The drawn arrow's body lies between the head and the tip: the tip is what points away.
        # (in viewport pixels: the arrow keeps its pixel size, so the view transform maps it)
        to_pixels = arrow.deviceTransform(view.viewportTransform())
        head = QPointF(widget_pos(view, hx, hy))
        tip_px = to_pixels.map(QPointF(0, 0))
        body = to_pixels.map(arrow.boundingRect().center())
        assert (QPointF(body - head).manhattanLength()
                < QPointF(tip_px - head).manhattanLength())
        assert QPointF(tip_px - head).manhattanLength() > 15  # clear of the head marker


def test_gradient_arrows_toggle(view, controller):
    controller.step_once()
    view.set_gradient_arrows(False)
    assert not view.show_gradient_arrows
    assert not any(items.arrow.isVisible() for items in view.run_items.values())
    controller.step_once()
    assert not any(items.arrow.isVisible() for items in view.run_items.values())
    view.set_gradient_arrows(True)
    assert all(items.arrow.isVisible() for items in view.run_items.values())
    view.show_gradient_arrows = False
    assert not any(items.arrow.isVisible() for items in view.run_items.values())


def test_diverged_run_shows_an_x_where_it_left(view, controller):
    run = controller.add_run("SGD", {"lr": 1.0})
    for _ in range(3):
        controller.step_once()
    assert run.status is RunStatus.DIVERGED
    items = view.run_items[run]
    assert items.diverged_marker.isVisible()
    (mx,), (my,) = items.diverged_marker.getData()
    surface = controller.session.surface
    # The run flew off to x ~ -4e9; the X marks where it crossed the edge of the region.
    assert surface.x_range[0] <= mx <= surface.x_range[1]
    assert surface.y_range[0] <= my <= surface.y_range[1]
    assert mx == pytest.approx(2.0)
    assert items.status_label.isVisible()
    # The same words as the card, the table and the CLI: the run's own status_text.
    assert items.status_label.toPlainText() == f"diverged at step {run.diverged_at}"
    assert run.status_text.startswith(items.status_label.toPlainText())
    assert not items.arrow.isVisible()
    # A restart clears it.
    controller.set_start((0.0, 0.0))
    assert not items.diverged_marker.isVisible()
    assert not items.status_label.isVisible()


def test_converged_run_says_at_which_step(view, controller):
    controller.set_surface_name("bowl")
    run = controller.add_run("SGD", {"lr": 0.5})  # lands on the minimum in one step...
    for _ in range(40):  # ...and is converged once it has stayed there a few steps
        controller.step_once()
        if run.status is RunStatus.CONVERGED:
            break
    assert run.status is RunStatus.CONVERGED
    label = view.run_items[run].status_label
    assert label.isVisible()
    assert label.toPlainText() == run.status_text.split(":")[0]
    assert label.toPlainText().startswith("converged")


def test_disabled_run_is_faint_and_selected_run_thicker(view, controller):
    first, second = controller.session.runs[:2]
    assert controller.selected is first
    assert view.run_items[first].line.opts["pen"].widthF() > \
        view.run_items[second].line.opts["pen"].widthF()
    controller.select(second)
    assert view.run_items[second].line.opts["pen"].widthF() > \
        view.run_items[first].line.opts["pen"].widthF()
    controller.set_enabled(first, False)
    assert view.run_items[first].line.opts["pen"].color().alpha() < 255
    assert "(disabled)" in view.picture.legend.getLabel(view.run_items[first].line).text
    controller.set_enabled(first, True)
    assert view.run_items[first].line.opts["pen"].color().alpha() == 255


def test_run_changes_restyle_its_items(view, controller):
    run = controller.session.runs[0]
    controller.set_color(run, "#123456")
    controller.set_label(run, "mine")
    items = view.run_items[run]
    assert items.line.opts["pen"].color().name() == "#123456"
    assert view.picture.legend.getLabel(items.line).text == "mine"


def test_wide_trajectory_lines_look_as_wide_as_their_pen(qtbot):
    # TrajectoryCurve draws a 2 px line as 1 px strokes side by side (much faster in Qt): it must
    # cover about what a real 2 px pen covers, and clearly more than 1 px.
    widget = pg.PlotWidget()
    qtbot.addWidget(widget)
    widget.resize(300, 300)
    widget.show()
    qtbot.waitExposed(widget)
    widget.setRange(xRange=(0, 1), yRange=(0, 1), padding=0)
    t = np.linspace(0.1, 0.9, 50)
    x, y = t, 0.5 + 0.3 * np.sin(6 * t)

    def covered(curve: pg.PlotCurveItem) -> int:
        widget.addItem(curve)
        image = widget.grab().toImage()
        widget.removeItem(curve)
        return sum(1 for i in range(image.width()) for j in range(image.height())
                   if image.pixelColor(i, j).name() == "#0072b2")

    thin = covered(pg.PlotCurveItem(x, y, pen=pg.mkPen("#0072b2", width=1)))
    real = covered(pg.PlotCurveItem(x, y, pen=pg.mkPen("#0072b2", width=2)))
    fast = covered(TrajectoryCurve(x, y, pen=pg.mkPen("#0072b2", width=2)))
    assert fast > 1.5 * thin
    assert abs(fast - real) < 0.35 * real


def test_long_trajectories_are_drawn_thinned_to_pixels(view, controller):
    run = controller.session.runs[0]
    run.step(THIN_ABOVE + 500)
    controller.step_once()
    x, y = view.run_items[run].line.getData()
    assert 1 < len(x) < len(run.trajectory)
    assert (x[0], y[0]) == (run.trajectory.x[0], run.trajectory.y[0])
    assert (x[-1], y[-1]) == (run.trajectory.x[-1], run.trajectory.y[-1])
    assert np.isin(x, run.trajectory.x).all()


# --- the user -------------------------------------------------------------------------------------


def test_click_on_the_surface_moves_the_start_and_restarts(view, controller):
    controller.step_once()
    QTest.mouseClick(view.viewport(), Qt.MouseButton.LeftButton,
                     Qt.KeyboardModifier.NoModifier, widget_pos(view, 0.5, 2.0))
    sx, sy = controller.session.start
    assert sx == pytest.approx(0.5, abs=0.02) and sy == pytest.approx(2.0, abs=0.02)
    assert all(len(r.trajectory) == 1 for r in controller.session.runs)
    marker = view.picture.start_marker.pos()
    assert (marker.x(), marker.y()) == pytest.approx((sx, sy))


def test_dragging_the_start_marker_moves_the_start(view, controller):
    controller.step_once()
    range_before = view.view_range()
    drag(view, widget_pos(view, *controller.session.start), widget_pos(view, -1.0, -0.5))
    sx, sy = controller.session.start
    assert sx == pytest.approx(-1.0, abs=0.03) and sy == pytest.approx(-0.5, abs=0.03)
    assert all(len(r.trajectory) == 1 and r.start == (sx, sy) for r in controller.session.runs)
    # A marker drag is not a pan.
    assert flat(view.view_range()) == pytest.approx(flat(range_before))


def test_dragging_the_surface_pans_and_keeps_the_start(view, controller):
    start = controller.session.start
    drag(view, widget_pos(view, 1.5, -0.5), widget_pos(view, 1.0, -0.5))
    (x0, x1), _ = view.view_range()
    assert x0 == pytest.approx(-1.5, abs=0.03) and x1 == pytest.approx(2.5, abs=0.03)
    assert controller.session.start == start


def test_zoom_regrids_the_visible_region_after_a_pause(view, qtbot):
    old = rect_tuple(view)
    view.set_view((0.9, 1.1), (0.95, 1.05))
    assert flat(view.view_range()) == pytest.approx((0.9, 1.1, 0.95, 1.05))
    assert rect_tuple(view) == old  # debounced: not yet

    def covers_new_region() -> bool:
        x0, x1, y0, y1 = rect_tuple(view)
        return x0 <= 0.9 and x1 >= 1.1 and y0 <= 0.95 and y1 >= 1.05 and x1 - x0 < 0.5

    qtbot.waitUntil(covers_new_region, timeout=2000)
    assert view.image_item.image.shape == (GRID_SIZE, GRID_SIZE)
    view.fit_to_surface()
    assert flat(view.view_range()) == pytest.approx((-2.0, 2.0, -1.0, 3.0))
    x0, x1, y0, y1 = rect_tuple(view)
    assert x0 <= -2.0 and x1 >= 2.0 and y0 <= -1.0 and y1 >= 3.0


def test_a_small_pan_needs_no_new_grid(view, qtbot):
    grid = view.picture.grid_region
    view.set_view((-1.9, 2.1), (-1.0, 3.0))
    with qtbot.waitSignal(view._regrid_timer.timeout, timeout=2000):
        pass
    assert view.picture.grid_region == grid


def test_hover_shows_f_and_gradient(view, controller):
    QTest.mouseMove(view.viewport(), widget_pos(view, 0.5, 0.5))
    text = view.hover_text
    shown = view.view_box.mapSceneToView(view.mapToScene(widget_pos(view, 0.5, 0.5)))
    f, gx, gy = controller.session.surface.value_and_grad(shown.x(), shown.y())
    assert f"f = {f:.6g}" in text
    assert f"∇f = ({gx:.4g}, {gy:.4g})" in text
    assert abs(f - 6.5) < 1.0  # f(0.5, 0.5) = 6.5 on Rosenbrock
    assert view.hover_label.text  # and the label shows it


def test_clicking_a_legend_swatch_selects_the_run(view, controller):
    runs = controller.session.runs
    assert controller.selected is runs[0]
    sample, _ = view.picture.legend.items[2]
    centre = sample.mapToScene(sample.boundingRect().center())
    QTest.mouseClick(view.viewport(), Qt.MouseButton.LeftButton,
                     Qt.KeyboardModifier.NoModifier, view.mapFromScene(centre))
    assert controller.selected is runs[2]
    assert view.run_items[runs[2]].line.isVisible()  # pyqtgraph's own swatch would hide it
    assert controller.session.start == controller.session.surface.start  # not a surface click


def test_formula_with_undefined_region_draws_it_transparent(view, controller):
    assert controller.set_formula("log(x) + y**2", (-2.0, 2.0), (-2.0, 2.0)) is None
    image = view.image_item.image
    assert np.isnan(image).any() and np.isfinite(image).any()
    lo, hi = view.picture.levels
    assert math.isfinite(lo) and math.isfinite(hi) and lo < hi
    cx, _ = view.picture.contour_item.getData()
    assert len(cx) > 0 and np.isfinite(cx).all()


def test_closing_disconnects_from_the_controller(view, controller):
    view.close()
    controller.step_once()
    controller.set_surface_name("booth")  # would redraw a live view; must not touch a closed one
    assert view.picture.surface.name == "rosenbrock"


# --- the picture's math ---------------------------------------------------------------------------


def test_log_heights_handle_nan_and_inf():
    z = np.array([[0.0, 1.0, 10.0], [100.0, np.nan, np.inf]])
    c, (lo, hi) = log_heights(z, 0.0)
    assert np.isnan(c[1, 1])
    assert c[1, 2] == hi
    assert c[0, 0] < c[0, 1] < c[0, 2] < c[1, 0]
    assert math.isfinite(lo) and lo < hi
    flat, (flo, fhi) = log_heights(np.full((3, 3), 2.0), 2.0)
    assert np.isfinite(flat).all() and flo < fhi


def test_contour_of_a_bowl_is_a_circle():
    xs = ys = np.linspace(-2, 2, 101)
    z = xs[None, :] ** 2 + ys[:, None] ** 2
    cx, cy = contour_segments(xs, ys, z, [1.0])
    r = np.hypot(cx, cy)
    assert len(cx) > 50
    assert np.allclose(r, 1.0, atol=0.01)


def test_exit_point_is_on_the_edge():
    xs, ys = np.array([-1.2, 214.4]), np.array([1.0, 89.0])
    x, y = exit_point(xs, ys, (-2.0, 2.0), (-1.0, 3.0))
    assert x == pytest.approx(2.0) and -1.0 <= y <= 3.0
    assert exit_point(np.array([0.5]), np.array([0.5]), (0, 1), (0, 1)) == (0.5, 0.5)
    assert exit_point(np.array([5.0]), np.array([5.0]), (0, 1), (0, 1)) is None


# --- labels that do not hide each other, the legend, the colour bar, the aspect -------------------


def _marker_rect(view, point, half):
    c = view.view_box.mapViewToScene(QPointF(*point))
    return pg.QtCore.QRectF(c.x() - half, c.y() - half, 2 * half, 2 * half)


def test_badges_legend_start_and_minima_do_not_overlap(view, controller):
    controller.set_surface_name("bowl")
    # Three identical runs leave the region at the same spot; one converges on the minimum.
    wild = [controller.add_run("SGD", {"lr": 3.0}) for _ in range(3)]  # x -> -5x each step
    calm = controller.add_run("SGD", {"lr": 0.5})
    for _ in range(60):
        controller.step_once()
        if all(r.status is RunStatus.DIVERGED for r in wild) and \
                calm.status is RunStatus.CONVERGED:
            break
    assert all(r.status is RunStatus.DIVERGED for r in wild)
    assert calm.status is RunStatus.CONVERGED
    picture = view.picture
    badges = [picture.run_items[r].status_label for r in (*wild, calm)]
    assert all(b.isVisible() for b in badges)
    rects = {f"badge {i}": b.sceneBoundingRect() for i, b in enumerate(badges)}
    rects["legend"] = picture.legend.sceneBoundingRect()
    rects["start label"] = picture.start_marker.label().sceneBoundingRect()
    surface = controller.session.surface
    for i, p in enumerate(surface.minima):
        rects[f"minimum {i}"] = _marker_rect(view, p, 8)
    rects["start"] = _marker_rect(view, controller.session.start, 7)
    names = list(rects)
    for i, a in enumerate(names):
        for b in names[i + 1:]:
            if a.startswith("start") and b.startswith("start"):
                continue  # the marker and its own label touch by design
            assert not rects[a].intersects(rects[b]), f"{a} overlaps {b}"
    plot = view.view_box.sceneBoundingRect()
    assert all(plot.contains(r) for r in rects.values())


def test_a_dragged_legend_stays_where_the_user_put_it(view, controller, qtbot):
    legend = view.picture.legend
    before = legend.sceneBoundingRect()
    grab = view.mapFromScene(before.center())
    target = view.mapFromScene(view.view_box.sceneBoundingRect().center())
    drag(view, grab, target)
    moved = legend.sceneBoundingRect()
    assert (moved.center() - before.center()).manhattanLength() > 100
    assert (moved.center() - view.mapToScene(target)).manhattanLength() < 5
    assert legend.moved_by_user
    assert controller.session.start == controller.session.surface.start  # not a surface click
    controller.add_run("SGD", {"lr": 1.0})  # statuses change: the legend would move again
    for _ in range(3):
        controller.step_once()
    assert legend.sceneBoundingRect().topLeft() == moved.topLeft()


def test_colour_bar_says_what_it_shows(view, controller):
    picture = view.picture
    text = picture.color_bar_text
    assert "log scale" in text and "minimum" in text
    assert f"{picture.scale.eps:.4g}" in text  # the shift really used (f_min is 0 here)
    assert picture.color_bar.getAxis("left").labelString().count("log scale") == 1
    controller.set_formula("x**2 + y**2 + 3", (-2.0, 2.0), (-2.0, 2.0))
    assert picture.scale.floor == pytest.approx(3.0, abs=1e-3)
    assert picture.color_bar_text.startswith("f − 3")  # shifted down by the minimum, 3


def test_hover_read_out_follows_a_surface_change(view, controller):
    QTest.mouseMove(view.viewport(), widget_pos(view, 0.3, 0.7))  # (a new spot: a move event)
    shown = view.view_box.mapSceneToView(view.mapToScene(widget_pos(view, 0.3, 0.7)))
    x, y = shown.x(), shown.y()
    old = view.hover_text
    assert f"x = {x:.4g}" in old
    controller.set_surface_name("bowl")
    f, gx, gy = controller.session.surface.value_and_grad(x, y)
    assert view.hover_text != old
    assert f"f = {f:.6g}" in view.hover_text and f"∇f = ({gx:.4g}, {gy:.4g})" in view.hover_text
    controller.set_formula("x + 2*y", (-2.0, 2.0), (-2.0, 2.0))
    assert f"∇f = ({1:.4g}, {2:.4g})" in view.hover_text


def test_equal_aspect_keeps_x_and_y_at_one_scale(view, qtbot, controller):
    view.resize(900, 500)
    qtbot.waitUntil(lambda: view.view_box.width() > 700)

    def pixels_per_unit():
        (x0, x1), (y0, y1) = view.view_range()
        return view.view_box.width() / (x1 - x0), view.view_box.height() / (y1 - y0)

    sx, sy = pixels_per_unit()
    assert abs(sx / sy - 1) > 0.1  # Rosenbrock's 4 x 4 region in a wide plot: unequal by default
    view.set_equal_aspect(True)
    assert view.equal_aspect
    qtbot.waitUntil(lambda: abs(pixels_per_unit()[0] / pixels_per_unit()[1] - 1) < 0.01)
    view.resize(700, 650)  # still equal after a resize
    qtbot.waitUntil(lambda: view.view_box.height() > 500)
    sx, sy = pixels_per_unit()
    assert sx / sy == pytest.approx(1.0, rel=0.01)
    (x0, x1), (y0, y1) = view.view_range()
    assert x0 <= -2.0 and x1 >= 2.0 and y0 <= -1.0 and y1 >= 3.0  # the region is still all in
    view.set_equal_aspect(False)
    view.resize(900, 500)
    qtbot.waitUntil(lambda: abs(pixels_per_unit()[0] / pixels_per_unit()[1] - 1) > 0.1)


def test_in_a_narrow_view_the_legend_keeps_to_one_column_and_fits(view, controller, qtbot):
    # The default four runs' legend goes to two columns in a short view; beside the 3-D view
    # and the runs the plot is narrow, and two columns stuck out of its left edge.
    for width in (420, 900):
        view.resize(width, 420)
        qtbot.waitUntil(lambda width=width: abs(view.width() - width) < 2)
        view.picture.place_legend()
        legend = view.picture.legend.sceneBoundingRect()
        plot = view.view_box.sceneBoundingRect()
        assert plot.left() <= legend.left() and legend.right() <= plot.right() + 1, width


# --- overlays from other modules (a basins layer) -------------------------------------------------


def test_an_overlay_is_drawn_over_the_heatmap_under_the_paths_and_can_be_removed(view):
    from gui.surface_view import Z_OVERLAY

    overlay = pg.ImageItem(np.zeros((4, 4)), axisOrder="row-major")
    view.add_overlay(overlay)
    assert overlay in view.plot_item.items
    assert view.image_item.zValue() < overlay.zValue() == Z_OVERLAY
    assert overlay.zValue() < view.picture.contour_item.zValue()
    line = next(iter(view.run_items.values())).line
    assert overlay.zValue() < line.zValue()
    home = view.view_box.home_range
    view.view_box.autoRange()  # "view all" still means the surface's region
    assert flat(view.view_range()) == pytest.approx(flat(home))
    view.remove_overlay(overlay)
    assert overlay not in view.plot_item.items
    view.remove_overlay(overlay)  # a second removal does nothing


# --- clipping and noise ---------------------------------------------------------------------------


def test_clipped_steps_are_marked_on_the_path_and_counted(qtbot, view, controller):
    run = controller.session.runs[1]  # SGD with momentum
    controller.set_clipping(run, "norm", 5.0)  # Rosenbrock's gradient is large near the start
    for _ in range(60):
        controller.step_once()
        wait_for_jobs()  # a step a busy machine made slow lands before the next
        QApplication.processEvents()
    items = view.run_items[run]
    flags = run.trajectory.column("clipped")
    clipped = np.nonzero(flags == 1)[0]
    assert 0 < len(clipped) < len(flags)  # some steps clipped, not all
    assert items.clip_markers.isVisible() and items.clip_count == len(clipped)
    xs, ys = items.clip_markers.getData()
    assert list(xs) == list(run.trajectory.x[clipped])
    assert list(ys) == list(run.trajectory.y[clipped])
    assert f"{len(clipped)} clipped steps" in items.head.toolTip()
    assert "clip_grad_norm_" in items.head.toolTip()
    assert "◆ clipped" in view.picture.legend.getLabel(items.line).text
    assert items.clip_markers.opts["brush"].color() == QColor(run.color)
    others = [it for r, it in view.run_items.items() if r is not run]
    assert all(not it.clip_markers.isVisible() for it in others)


def test_a_new_clipping_threshold_recounts_the_newest_entry(qtbot, view, controller):
    run = controller.session.runs[0]
    controller.set_clipping(run, "norm", 1.0)  # the start's gradient (~230) is clipped
    items = view.run_items[run]
    assert items.clip_count == 1
    controller.set_clipping(run, "norm", 1e6)  # regraded: no longer clipped
    assert items.clip_count == 0 and not items.clip_markers.isVisible()


def test_with_noise_both_arrows_are_drawn_and_explained(qtbot, view, controller):
    run = controller.session.runs[2]
    controller.set_noise(run, 200.0, 1)  # big enough to turn the arrow visibly
    controller.step_once()
    wait_for_jobs()
    QApplication.processEvents()
    items = view.run_items[run]
    assert items.arrow.isVisible() and items.noisy_arrow.isVisible()
    traj = run.trajectory
    clean = math.atan2(-traj.column("grad_y")[-1], -traj.column("grad_x")[-1])
    noisy = math.atan2(-traj.column("noisy_grad_y")[-1], -traj.column("noisy_grad_x")[-1])
    assert abs(clean - noisy) > 0.05
    # each arrow points (on screen) along its own gradient: their angles differ likewise
    assert items.arrow.opts["angle"] != items.noisy_arrow.opts["angle"]
    assert "noise-free" in items.arrow.toolTip() and "σ = 200" in items.noisy_arrow.toolTip()
    assert items.noisy_arrow.opts["brush"].color() != items.arrow.opts["brush"].color()
    assert "▷ noisy ∇" in view.picture.legend.getLabel(items.line).text
    view.set_gradient_arrows(False)
    assert not items.arrow.isVisible() and not items.noisy_arrow.isVisible()
    view.set_gradient_arrows(True)
    others = [it for r, it in view.run_items.items() if r is not run]
    assert all(it.arrow.isVisible() and not it.noisy_arrow.isVisible() for it in others)
