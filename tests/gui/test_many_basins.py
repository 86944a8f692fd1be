"""The Basins tab and the basin layer: what they show against core.many.basins, the cache, cancel,
clicking a cell, exports, and a window that keeps turning during a 256 x 256 map."""

from __future__ import annotations

import colorsys
import csv
import io
import json

import numpy as np
import pytest
from PySide6.QtCore import QPoint, QPointF, Qt, QTimer
from PySide6.QtGui import QImage

from core.batch import CONVERGED, DIVERGED
from core.many import basins
from gui.many.basin_layer import BasinLayer
from gui.many.basins_view import DIVERGED_COLOUR, MINIMUM_COLOURS, BasinsView
from gui.surface_view import SurfaceView
from gui.worker import wait_for_jobs
from tests.gui.many_fixtures import compute as _compute
from tests.gui.many_fixtures import make_race, one_torch_thread, settle  # noqa: F401 (fixtures)

GRID, STEPS = 24, 150


@pytest.fixture
def race(make_race):  # noqa: F811 (the imported fixture, by name)
    """Himmelblau with SGD + momentum, Adam, and an SGD whose lr is too big (some cells diverge)."""
    return make_race("himmelblau", ("SGD", {"lr": 0.002, "momentum": 0.9}), ("Adam", {"lr": 0.05}),
                     ("SGD", {"lr": 0.03}))


@pytest.fixture
def view(qtbot, race):
    v = BasinsView(race)
    qtbot.addWidget(v)
    v.resize(1200, 600)
    v.show()
    v.grid_spin.setValue(GRID)
    v.steps_spin.setValue(STEPS)
    yield v
    v.shutdown()


def compute(qtbot, view: BasinsView, timeout: int = 60_000) -> None:
    _compute(qtbot, view, timeout)
    settle()


def hue(rgb) -> float:
    return colorsys.rgb_to_hsv(*(c / 255 for c in rgb[:3]))[0]


def hex_rgb(colour: str) -> tuple[int, int, int]:
    return tuple(int(colour[k:k + 2], 16) for k in (1, 3, 5))  # type: ignore[return-value]


def test_each_panel_shows_core_basins_for_the_same_settings(qtbot, view, race):
    compute(qtbot, view)
    surface = race.session.surface
    calls = ["SGD(lr=0.002, momentum=0.9)", "Adam(lr=0.05)", "SGD(lr=0.03)"]
    assert [p.option.call for p in view.panels] == calls
    some_diverged = False
    for panel, call in zip(view.panels, calls, strict=True):
        expected = basins(surface, call, GRID, STEPS)
        shown = panel.basins
        np.testing.assert_array_equal(shown.minimum, expected.minimum)
        np.testing.assert_array_equal(shown.cells.final_x, expected.cells.final_x)
        np.testing.assert_array_equal(shown.cells.status, expected.cells.status)
        image = panel.image.image  # what the panel draws: (y, x, RGBA)
        assert image.shape == (GRID, GRID, 4)
        pixels = image.reshape(-1, 4)
        status = expected.cells.status
        for k in range(GRID * GRID):
            if status[k] == DIVERGED:
                some_diverged = True
                assert tuple(pixels[k, :3]) == hex_rgb(DIVERGED_COLOUR)
            elif status[k] == CONVERGED and expected.minimum[k] >= 0:
                # Himmelblau's four minima are known: the merged index is core's index.
                want = hue(hex_rgb(MINIMUM_COLOURS[expected.minimum[k]]))
                assert abs(hue(pixels[k]) - want) < 0.02, (call, k)
        # row j of the image is y[j]: the cell of start (x[i], y[j]) is pixel [j, i]
        j, i = 3, 17
        k = j * GRID + i
        assert tuple(image[j, i]) == tuple(pixels[k])
    assert some_diverged


def test_small_multiples_one_panel_per_optimizer_and_lbfgs_says_why(qtbot, view, race):
    race.add_run("LBFGS", {"lr": 1.0})
    race.add_run("Adam", {"lr": 0.05})  # the same setting again: one panel
    compute(qtbot, view)
    titles = [p.plot.titleLabel.text for p in view.panels]
    assert len(view.panels) == 4
    for title, call in zip(titles, ["SGD(lr=0.002, momentum=0.9)", "Adam(lr=0.05)",
                                    "SGD(lr=0.03)", "LBFGS("], strict=True):
        assert call in title
    assert view.panels[3].basins is None
    assert "L-BFGS" in view.note.text() and "refuses" in view.note.text()
    mapped = [p for p in view.panels if p.basins is not None]
    assert len({id(p.plot) for p in mapped}) == 3
    assert "f = 0" in view.legend_label.text() and "diverged" in view.legend_label.text()


def test_a_repeated_request_is_a_cache_hit_and_a_change_recomputes(qtbot, view, race):
    compute(qtbot, view)
    started = view.runner.jobs_started
    first = [p.basins for p in view.panels]
    with qtbot.waitSignal(view.sigComputed, timeout=1000):
        assert view.compute() is False  # answered from the cache, at once
    assert view.runner.jobs_started == started
    assert [p.basins for p in view.panels] == first

    view.steps_spin.setValue(STEPS + 10)
    compute(qtbot, view)
    assert view.runner.jobs_started == started + 1
    assert all(p.basins.steps == STEPS + 10 for p in view.panels)

    # A hyperparameter of one run: only its panel is computed again, in a Job.
    race.set_hyperparameter(race.session.runs[1], "lr", 0.02)
    keys_before = len(view.runner.cache)
    compute(qtbot, view)
    assert view.runner.jobs_started == started + 2
    assert len(view.runner.cache) == keys_before + 1
    assert view.panels[1].option.call == "Adam(lr=0.02)"

    # The surface: everything again.
    race.set_formula("(x - 1)**2 + 2*(y + 0.5)**2")
    compute(qtbot, view)
    assert view.runner.jobs_started == started + 3


def test_cancel_keeps_the_old_picture_and_caches_nothing(qtbot, view, race):
    compute(qtbot, view)
    before = [(p.basins, p.image.image.copy()) for p in view.panels]
    view.grid_spin.setValue(200)
    view.steps_spin.setValue(3000)
    with qtbot.waitSignal(view.runner.sigCancelled, timeout=5000):
        assert view.compute()
        view.runner.progress.cancel_button.click()
    job_cache = len(view.runner.cache)
    assert wait_for_jobs(30.0)
    qtbot.wait(50)  # the dropped result (if any) would arrive now
    assert not view.runner.running
    assert len(view.runner.cache) == job_cache == 3
    for panel, (result, image) in zip(view.panels, before, strict=True):
        assert panel.basins is result
        np.testing.assert_array_equal(panel.image.image, image)
    assert "Cancelled" in view.runner.message.text()


def click_cell(qtbot, view: BasinsView, panel_number: int, j: int, i: int) -> tuple[float, float]:
    panel = view.panels[panel_number]
    x, y = float(panel.basins.x[i]), float(panel.basins.y[j])
    scene = panel.plot.vb.mapViewToScene(QPointF(x, y))
    widget_pos = view.graphics.mapFromScene(scene)
    qtbot.mouseClick(view.graphics.viewport(), Qt.MouseButton.LeftButton,
                     pos=QPoint(widget_pos.x(), widget_pos.y()))
    return x, y


def test_clicking_a_cell_races_from_its_start(qtbot, view, race):
    compute(qtbot, view)
    adam = race.session.runs[1]
    # The panel's optimizer is in the race: the start moves there and it is selected.
    x, y = click_cell(qtbot, view, 1, 5, 7)
    assert race.session.start == (x, y)
    assert race.selected is adam and adam.start == (x, y)
    assert len(race.session.runs) == 3
    # Removed from the race since: clicking adds it again, starting at the cell's start.
    race.remove_run(adam)
    x, y = click_cell(qtbot, view, 1, 20, 2)
    runs = race.session.runs
    assert len(runs) == 3
    added = race.selected
    assert added is not adam and added.spec.name == "Adam"
    assert added.hyperparameters["lr"] == 0.05
    assert added.start == (x, y) and added.trajectory.values("x")[0] == x
    assert "starts at" in view.runner.message.text()


def test_hover_tells_start_end_loss_status(qtbot, view):
    compute(qtbot, view)
    panel = view.panels[1]
    j, i = 4, 9
    k = j * GRID + i
    x, y = float(panel.basins.x[i]), float(panel.basins.y[j])
    at = view.graphics.mapFromScene(panel.plot.vb.mapViewToScene(QPointF(x, y)))
    qtbot.mouseMove(view.graphics.viewport(), QPoint(at.x(), at.y()))
    expected = view.describe_cell(panel, k)
    qtbot.waitUntil(lambda: view.hover_label.text() == expected, timeout=2000)
    text = view.hover_label.text()
    c = panel.basins.cells
    assert text.startswith("Adam(lr=0.05): start (" + f"{x:.4g}, {y:.4g})")
    assert f"end ({c.final_x[k]:.4g}, {c.final_y[k]:.4g})" in text
    assert f"loss {c.final_loss[k]:.4g}" in text
    assert ("converged at step" in text) == (c.status[k] == CONVERGED)


def test_a_formulas_found_minima_keep_one_colour_across_panels(qtbot, race, view):
    # Two wells at (-1, 0) and (1, 0) that no one declared: the end points are clustered.
    race.set_formula("(x**2 - 1)**2 + 0.5*y**2", (-2.0, 2.0), (-1.5, 1.5))
    view.steps_spin.setValue(500)  # (core clusters converged end points only)
    compute(qtbot, view)
    assert view.known == 0 and len(view.minima) >= 2
    mapped = [p for p in view.panels if p.basins is not None]
    for panel in mapped:
        c, index = panel.basins.cells, panel.index
        for k in np.flatnonzero(index >= 0):
            mx, my = view.minima[index[k]]
            assert np.hypot(c.final_x[k] - mx, c.final_y[k] - my) <= panel.basins.tolerance
    # The well at x = 1 has one colour in every panel that reached it.
    right = {int(p.index[k]) for p in mapped for k in np.flatnonzero(
        (p.index >= 0) & (np.abs(p.basins.cells.final_x - 1) < 0.05))}
    assert len(right) == 1


def test_a_changed_race_is_said_until_mapped_again(qtbot, view, race):
    compute(qtbot, view)
    race.add_run("Adagrad", {"lr": 0.5})
    assert "changed since these maps" in view.runner.message.text()
    compute(qtbot, view)
    assert view.panels[-1].option.call == "Adagrad(lr=0.5)"
    assert "changed" not in view.runner.message.text()


def test_picture_png_decodes_at_the_views_size_and_csv_has_every_cell(qtbot, view, tmp_path):
    compute(qtbot, view)
    png = tmp_path / "basins.png"
    assert view.exports.export_to(png)
    image = QImage(str(png))
    assert not image.isNull()
    assert (image.width(), image.height()) == (view.picture.width(), view.picture.height())
    # Not blank: the panels' colours are in it.
    assert len({image.pixel(x, y) for x in range(0, image.width(), 7)
                for y in range(0, image.height(), 7)}) > 20

    path = tmp_path / "basins.csv"
    assert view.exports.export_to(path)
    rows = list(csv.DictReader(io.StringIO(path.read_text())))
    assert len(rows) == 3 * GRID * GRID
    assert {r["optimizer"] for r in rows} == {p.option.call for p in view.panels}
    first = view.panels[0].basins
    row = rows[GRID + 2]  # row 1, column 2 of the first panel
    assert (int(row["row"]), int(row["column"])) == (1, 2)
    assert float(row["start_x"]) == first.x[2] and float(row["start_y"]) == first.y[1]
    assert float(row["final_x"]) == first.cells.final_x[GRID + 2]

    data = json.loads((tmp_path / "b.json").read_text()) if view.exports.export_to(
        tmp_path / "b.json") else None
    assert [d["optimizer"] for d in data["basins"]] == [p.option.call for p in view.panels]


def test_an_unwritable_path_is_one_message_and_no_file(qtbot, view, tmp_path):
    compute(qtbot, view)
    target = tmp_path / "missing" / "basins.csv"
    assert not view.exports.export_to(target)
    message = view.runner.message.text()
    assert "basins.csv" in message and "\n" not in message
    assert not target.exists()
    assert not view.exports.export_to(tmp_path / "basins.txt")
    assert ".csv or .json" in view.runner.message.text()


def test_bad_range_is_one_message_and_changes_nothing(qtbot, view):
    compute(qtbot, view)
    shown = [p.basins for p in view.panels]
    started = view.runner.jobs_started
    view.x_range_edit.setText("3,1")
    assert view.compute() is False
    assert "x range" in view.runner.message.text()
    view.x_range_edit.setText("a,b")
    assert view.compute() is False
    assert view.runner.jobs_started == started
    assert [p.basins for p in view.panels] == shown


def test_the_window_keeps_turning_during_a_256_grid(qtbot, view, race):
    for run in [race.session.runs[0], race.session.runs[2]]:
        race.remove_run(run)  # one panel: Adam
    view.grid_spin.setValue(256)
    view.steps_spin.setValue(60)
    ticks = []
    timer = QTimer()
    timer.setInterval(10)
    timer.timeout.connect(lambda: ticks.append(view.runner.running))
    timer.start()
    try:
        compute(qtbot, view, timeout=120_000)
    finally:
        timer.stop()
    during = sum(ticks)
    assert during >= 10, f"the event loop turned only {during} times during the job"
    assert view.panels[0].basins.cells.status.shape == (256 * 256,)


def test_basin_layer_shows_the_selected_runs_map_under_the_paths(qtbot, race, view):
    surface_view = SurfaceView(race)
    qtbot.addWidget(surface_view)
    layer = BasinLayer(surface_view, view)
    layer.set_visible(True)
    assert layer.image not in surface_view.plot_item.items  # nothing computed yet
    assert layer.legend.isVisible() and "no basin map yet" in layer.legend_text
    compute(qtbot, view)
    race.select(race.session.runs[1])  # Adam
    assert layer.image in surface_view.plot_item.items
    np.testing.assert_array_equal(layer.image.image, view.panels[1].image.image)
    assert layer.legend_text.startswith(f"basins of Adam(lr=0.05), {STEPS} steps")
    assert "→ (3, 2)" in layer.legend_text
    assert layer.image.zValue() < min(items.line.zValue()
                                      for items in surface_view.run_items.values())
    assert 0 < layer.image.opacity() < 1
    layer.choose("SGD(lr=0.03)")
    np.testing.assert_array_equal(layer.image.image, view.panels[2].image.image)
    layer.set_visible(False)
    assert layer.image not in surface_view.plot_item.items and not layer.legend.isVisible()
    layer.set_visible(True)
    race.set_formula("x**2 + y**2")  # another surface: its old map is not shown over it
    assert layer.image not in surface_view.plot_item.items
    assert "another surface" in layer.legend_text


def test_before_the_first_map_the_view_says_what_compute_does(qtbot, view, tmp_path):
    assert not view.exports.isEnabled()
    assert not view.exports.export_to(tmp_path / "none.png")
    assert "compute first" in view.runner.message.text()
    assert not (tmp_path / "none.png").exists()
    compute(qtbot, view)
    assert view.exports.isEnabled()


def test_svg_export_is_a_vector_picture_with_the_maps(qtbot, view, tmp_path):
    import xml.etree.ElementTree as ET

    compute(qtbot, view)
    path = tmp_path / "basins.svg"
    assert view.exports.export_to(path)
    root = ET.parse(path).getroot()
    tags = {el.tag.rsplit("}", 1)[-1] for el in root.iter()}
    assert "image" in tags and "path" in tags  # the maps as images, axes and text as vectors
    box = [float(v) for v in root.get("viewBox").split()]
    assert box[2:] == [view.picture.width(), view.picture.height()]
