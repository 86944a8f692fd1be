"""The 3-D view in the normal (offscreen) suite: its math, and its no-OpenGL path.

The GL drawing itself is tested for real under Xvfb in tests/gui/gl/.
"""

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from core.errors import ExportError
from core.session import Session
from core.surfaces import get_surface
from gui.surface3d_view import (GL_MISSING_TEXT, HEIGHT, REDRAW_HZ, Surface3DView, _thin_indices,
                                box_scale, opengl_problem, redraw_interval_ms,
                                render_surface3d_image, surface_reference)
from gui.surface_view import log_scale


def test_offscreen_has_no_opengl_and_says_why(qapp):
    problem = opengl_problem()
    assert problem is not None and "offscreen" in problem
    assert "\n" not in problem


def test_without_opengl_the_view_is_a_message_and_follows_the_race_harmlessly(qtbot, controller):
    view = Surface3DView(controller)
    qtbot.addWidget(view)
    view.show()
    assert view.gl_widget is None and view.scene is None
    assert view.message is not None and view.message.text() == GL_MISSING_TEXT
    assert not view.reset_button.isEnabled() and not view.log_height_box.isEnabled()
    # The rest of the app goes on: stepping, a new surface and new runs change nothing here.
    controller.step_once()
    controller.set_surface_name("himmelblau")
    controller.add_run("Adam")
    assert view.run_items == {}
    view.close()


def test_without_opengl_the_picture_is_refused_in_one_line_and_writes_nothing(qapp, tmp_path):
    out = tmp_path / "race3d.png"
    with pytest.raises(ExportError) as info:
        render_surface3d_image(Session.default(), out, 320, 240)
    message = str(info.value)
    assert "OpenGL" in message and "\n" not in message
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("out, size, words", [("race3d.svg", (320, 240), ".png"),
                                               ("no/such/folder/x.png", (320, 240), "folder"),
                                               ("race3d.png", (4, 240), "between")])
def test_bad_picture_requests_say_what_is_wrong(qapp, tmp_path, out, size, words):
    with pytest.raises(ExportError, match=words):
        render_surface3d_image(Session.default(), tmp_path / out, *size)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("name", ["rosenbrock", "himmelblau", "saddle", "ackley"])
def test_box_fits_every_surface_and_colours_are_the_heatmaps(name):
    surface = get_surface(name)
    xs, ys, z = surface.grid(nx=61, ny=47)
    reference = surface_reference(surface, z)
    scale = box_scale(surface, z, reference)
    bx, by = scale.box_x(xs), scale.box_y(ys)
    assert bx[0] == pytest.approx(-1) and bx[-1] == pytest.approx(1)
    assert by[0] == pytest.approx(-1) and by[-1] == pytest.approx(1)
    for log_height in (True, False):
        scale = box_scale(surface, z, reference, log_height=log_height)
        h = scale.box_z(z)
        assert np.nanmin(h) >= 0 and np.nanmax(h) <= HEIGHT + 1e-12
        assert np.nanmax(h) - np.nanmin(h) > 0.3 * HEIGHT  # the surface is not flattened
    # The colour of each cell is the 2-D heatmap's colour value, normalised to its levels.
    c, colours = log_scale(z, reference)
    lo, hi = colours.levels
    expected = np.clip((c - lo) / (hi - lo), 0, 1)
    np.testing.assert_allclose(scale.colour_value(z), expected, atol=1e-9)


def test_heights_rise_with_f_in_both_modes():
    surface = get_surface("bowl")
    _, _, z = surface.grid(nx=41, ny=41)
    f = np.linspace(0.0, 3.0, 50)
    for log_height in (True, False):
        h = box_scale(surface, z, 0.0, log_height=log_height).box_z(f)
        assert np.all(np.diff(h) >= 0) and h[-1] > h[0]
    linear = box_scale(surface, z, 0.0, log_height=False).box_z(f)
    log = box_scale(surface, z, 0.0, log_height=True).box_z(f)
    assert not np.allclose(linear, log)  # the checkbox really changes the heights
    top = box_scale(surface, z, 0.0).box_z(np.array([np.inf, 1e300]))
    assert np.all(top == HEIGHT)


def test_long_lines_drop_repeats_but_keep_the_ends_and_every_move():
    rng = np.random.default_rng(0)
    moves = rng.uniform(-1, 1, size=(300, 2))
    path = np.repeat(moves, 20, axis=0)  # each point held 20 steps, as a converged run does
    keep = _thin_indices(path[:, 0], path[:, 1])
    assert keep[0] == 0 and keep[-1] == len(path) - 1
    assert len(keep) <= 301 + 1
    kept = path[keep]
    # every distinct position is still visited, in order
    distinct = moves[np.r_[True, np.any(np.diff(moves, axis=0) != 0, axis=1)]]
    _, first = np.unique(kept, axis=0, return_index=True)
    assert len(first) == len(np.unique(distinct, axis=0))


def test_importing_the_module_loads_no_opengl():
    # The app must start where PyOpenGL is missing: GL modules are imported only when drawn.
    code = ("import sys, gui.surface3d_view; "
            "print(sorted(m for m in sys.modules if m == 'OpenGL' or m == 'pyqtgraph.opengl'))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         cwd=Path(__file__).resolve().parents[2], timeout=120, check=True)
    assert out.stdout.strip() == "[]"


def test_a_pole_does_not_flatten_the_rest_but_ordinary_ridges_are_not_clipped():
    surface = get_surface("bowl")
    _, _, z = surface.grid(nx=51, ny=51)
    plain = box_scale(surface, z, 0.0)
    assert plain.linear_top == pytest.approx(float(z.max()))  # the whole bowl, nothing flat
    spiked = z.copy()
    spiked[25, 25] = 1e9  # one cell of a pole
    scale = box_scale(surface, spiked, 0.0)
    assert scale.linear_top < 100
    assert scale.box_z(np.array([1e9]))[0] == HEIGHT
    assert np.ptp(scale.box_z(z)) > 0.5 * HEIGHT  # the bowl keeps its shape


def test_slow_frames_are_redrawn_less_often_so_the_window_stays_responsive():
    fast = redraw_interval_ms(0.002)  # a GPU
    assert fast == int(1000 / REDRAW_HZ)
    slow = redraw_interval_ms(0.040)  # software OpenGL at a large size
    assert slow >= 3 * 40  # drawing takes at most a third of the time
    assert redraw_interval_ms(5.0) <= 1000  # still moves, if slowly
