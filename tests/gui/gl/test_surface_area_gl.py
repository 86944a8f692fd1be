"""The 3-D view instead of the 2-D view, for real with OpenGL (Mesa on Xvfb), in a subprocess
(see conftest.py): switching shows the GL view with the surface drawn and hides the heatmap,
switching back restores it, and the window's keys work throughout."""

import json
import subprocess
import sys
from pathlib import Path

from core.session import PALETTE
from tests.gui.gl.test_surface3d_gl import _colour_pixels, _pixels, _surface_fraction

SCRIPT = Path(__file__).with_name("surface_area_3d.py")


def test_switching_to_3d_and_back_keeps_the_race_and_the_keys(gl_env, tmp_path):
    done = subprocess.run([sys.executable, str(SCRIPT), str(tmp_path)], env=gl_env,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, f"the GL script failed:\n{done.stderr[-3000:]}"
    facts = json.loads(done.stdout.strip().splitlines()[-1])
    assert facts["problem"] is None, f"no OpenGL under Xvfb: {facts['problem']}"
    # 3-D instead of 2-D
    assert facts["3d_visible"] and facts["2d_hidden"] and facts["button_checked"]
    assert facts["active"] and facts["focus_in_3d"]
    # the window's keys reach it while the GL widget has the focus: → steps, Space plays
    assert facts["right_stepped"] == [2, 2, 2, 2]
    assert facts["playing"] and facts["paused"]
    assert facts["line_points"] == facts["trajectory_lengths"]  # the 3-D lines are live
    assert all(n > 2 for n in facts["line_points"])
    rgb = _pixels(tmp_path / "area3d.png")
    assert _surface_fraction(rgb) > 0.15  # the surface is drawn
    assert _colour_pixels(rgb, PALETTE[1]) > 20  # and the momentum run's path on it
    # back to 2-D: the heatmap is back, has the focus, drew the steps taken while hidden, and a
    # click on it still moves the start
    assert facts["2d_back"] and facts["3d_hidden_again"] and facts["focus_on_2d"]
    assert facts["2d_head_is_last_point"]
    sx, sy = facts["start_after_click"]
    assert abs(sx - 0.5) < 0.03 and abs(sy - 2.0) < 0.03
    # both: side by side, each with a fair share
    assert facts["both_visible"]
    narrow, wide = sorted(facts["both_widths"])
    assert narrow > 0.4 * wide
