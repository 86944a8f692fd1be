"""The Basins tab's film and float32: the window's film equals the headless one, its stepping
runs in a Job the window keeps turning through, a cancel (while stepping or drawing) leaves no
file, bad settings are one message; float32 maps say so and are cached apart from float64."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image, ImageSequence
from PySide6.QtCore import QTimer

from core.basin_animation import BasinFilm
from gui.basin_animation import write_basin_film
from gui.many.basins_view import BasinsView
from gui.many.common import race_optimizers
from gui.worker import wait_for_jobs
from tests.gui.many_fixtures import compute, make_race, one_torch_thread  # noqa: F401 (fixtures)

GRID, STEPS = 16, 40


@pytest.fixture
def race(make_race):  # noqa: F811 (the imported fixture, by name)
    return make_race("himmelblau", ("Adam", {"lr": 0.1}), ("SGD", {"lr": 0.002, "momentum": 0.9}),
                     ("LBFGS", {"lr": 1.0}))


@pytest.fixture
def view(qtbot, race):
    v = BasinsView(race)
    qtbot.addWidget(v)
    v.resize(1000, 600)
    v.show()
    v.grid_spin.setValue(GRID)
    v.steps_spin.setValue(STEPS)
    yield v
    v.shutdown()


def frames(path) -> list[np.ndarray]:
    with Image.open(path) as film:
        return [np.asarray(f.convert("RGB")) for f in ImageSequence.Iterator(film)]


def test_the_windows_film_equals_the_headless_one(qtbot, view, tmp_path):
    assert not view.panels  # a film needs no map on screen
    sgd = next(o for o in race_optimizers(view.controller) if o.name == "SGD")
    task = view.start_film(tmp_path / "window.gif", sgd, fps=5, steps_per_frame=10,
                           size=(240, 200))
    assert task is not None and task.stage == "stepping" and view.film_progress.isVisible()
    with qtbot.waitSignal(task.sigFinished, timeout=60_000):
        pass
    assert wait_for_jobs(10.0)
    assert not view.film_progress.isVisible() and "Saved window.gif (5 frames)" in \
        view.runner.message.text()
    film = BasinFilm(view.controller.session.surface, ("SGD", {"lr": 0.002, "momentum": 0.9}),
                     GRID, STEPS)
    headless = write_basin_film(film, tmp_path / "cli.gif", fps=5, steps_per_frame=10,
                                size=(240, 200))
    assert (tmp_path / "window.gif").read_bytes() == headless.read_bytes()
    shown = frames(headless)
    assert len(shown) == 5 and shown[0].shape == (200, 240, 3)
    assert not np.array_equal(shown[0], shown[-1])


def test_the_window_keeps_turning_while_a_big_film_steps(qtbot, view, tmp_path):
    view.grid_spin.setValue(256)
    view.steps_spin.setValue(60)
    ticks: list[str] = []
    timer = QTimer()
    timer.setInterval(10)
    timer.timeout.connect(lambda: ticks.append(task.stage if task is not None else ""))
    task = None
    timer.start()
    try:
        task = view.start_film(tmp_path / "big.gif", fps=10, steps_per_frame=30,
                               size=(200, 160))
        assert task is not None
        with qtbot.waitSignal(task.sigFinished, timeout=120_000):
            pass
    finally:
        timer.stop()
    assert ticks.count("stepping") >= 10, "the event loop hardly turned while the film stepped"
    assert len(frames(tmp_path / "big.gif")) == 3


@pytest.mark.parametrize("stage", ["stepping", "drawing"])
def test_a_cancelled_film_leaves_no_file(qtbot, view, tmp_path, stage):
    view.steps_spin.setValue(2000 if stage == "stepping" else 40)
    view.grid_spin.setValue(128 if stage == "stepping" else GRID)
    task = view.start_film(tmp_path / "film.gif", fps=10, steps_per_frame=1 if stage ==
                           "drawing" else 20, size=(200, 160))
    assert task is not None
    if stage == "drawing":
        qtbot.waitUntil(lambda: task.stage == "drawing" and task.export.frames_done > 2,
                        timeout=60_000)
    with qtbot.waitSignal(task.sigCancelled, timeout=30_000):
        view.film_progress.cancel_button.click()
    assert wait_for_jobs(30.0)
    qtbot.wait(50)
    assert list(tmp_path.iterdir()) == []
    assert "nothing was written" in view.runner.message.text()
    assert not view.film_progress.isVisible()


def test_bad_film_settings_are_one_message_and_run_nothing(qtbot, view, tmp_path):
    view.grid_spin.setValue(300)  # a film holds at most 256 x 256 starts (one batch)
    assert view.start_film(tmp_path / "film.gif") is None
    assert "from 2 to 256 starts" in view.runner.message.text()
    view.grid_spin.setValue(GRID)
    assert view.start_film(tmp_path / "film.txt") is None
    assert view.runner.message.text()
    lbfgs = next(o for o in race_optimizers(view.controller) if o.name == "LBFGS")
    assert view.start_film(tmp_path / "film.gif", lbfgs) is None
    assert "L-BFGS" in view.runner.message.text()
    assert view.film_task is None and list(tmp_path.iterdir()) == []


def test_float32_maps_say_so_are_close_to_float64_and_cached_apart(qtbot, view):
    compute(qtbot, view)
    exact = [p.basins for p in view.panels if p.basins is not None]
    assert all(b.dtype == "float64" for b in exact)
    assert "Computed in float64" in view.legend_label.text()
    view.float32_box.setChecked(True)
    compute(qtbot, view)  # not the float64 maps from the cache: a Job runs
    fast = [p.basins for p in view.panels if p.basins is not None]
    assert all(b.dtype == "float32" for b in fast)
    assert "Computed in float32 (faster, less exact)" in view.legend_label.text()
    for a, b in zip(exact, fast, strict=True):
        assert float(np.mean(a.minimum == b.minimum)) >= 0.98
        assert b.to_json()["dtype"] == "float32"
    started = view.runner.jobs_started
    view.float32_box.setChecked(False)
    with qtbot.waitSignal(view.sigComputed, timeout=10_000):
        assert view.compute() is False  # float64 again: from the cache
    assert view.runner.jobs_started == started


def test_the_legend_says_what_never_settled_means_and_rosenbrock_gets_a_note(
        qtbot, make_race):  # noqa: F811 (the imported fixture, by name)
    race = make_race("rosenbrock", ("Adam", {"lr": 0.05}))
    v = BasinsView(race)
    qtbot.addWidget(v)
    v.grid_spin.setValue(16)
    v.steps_spin.setValue(200)
    compute(qtbot, v)
    assert "never settled: still moving after 200 steps" in v.legend_label.text()
    assert "try more steps" in v.note.text() and "Adam(lr=0.05)" in v.note.text()
    v.shutdown()
