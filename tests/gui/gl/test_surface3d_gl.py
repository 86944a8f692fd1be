"""The 3-D view drawn for real with OpenGL (Mesa, on Xvfb), in a subprocess: see conftest.py."""

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PySide6.QtGui import QColor, QImage

from core.session import PALETTE
from gui.surface_view import SURFACE_COLORMAP

SCRIPT = Path(__file__).with_name("draw_surface3d.py")


@pytest.fixture(scope="module")
def drawn(gl_env, tmp_path_factory):
    """Run the drawing script once; its facts and the folder with its pictures."""
    out = tmp_path_factory.mktemp("surface3d")
    done = subprocess.run([sys.executable, str(SCRIPT), str(out)], env=gl_env,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, f"the GL script failed:\n{done.stderr[-3000:]}"
    facts = json.loads(done.stdout.strip().splitlines()[-1])
    assert "problem" not in facts, f"no OpenGL under Xvfb: {facts.get('problem')}"
    return facts, out


def _pixels(path: Path) -> np.ndarray:
    image = QImage(str(path)).convertToFormat(QImage.Format.Format_RGB888)
    assert not image.isNull(), f"{path.name} is not a readable picture"
    w, h = image.width(), image.height()
    data = np.frombuffer(image.constBits(), dtype=np.uint8, count=image.sizeInBytes())
    return data.reshape(h, image.bytesPerLine())[:, : 3 * w].reshape(h, w, 3).astype(float)


def _surface_fraction(rgb: np.ndarray) -> float:
    """The share of pixels coloured by the heatmap's colour map (lit between 65 % and 100 %)."""
    base = np.asarray(SURFACE_COLORMAP.map(np.linspace(0, 1, 128), mode="byte"))[:, :3]
    shades = np.concatenate([base * k for k in np.linspace(0.65, 1.0, 8)]).astype(float)
    sample = rgb[::4, ::4].reshape(-1, 3)
    # nearest shaded colour-map colour of each sampled pixel, in chunks to bound memory
    best = np.concatenate([np.min(((chunk[:, None, :] - shades[None]) ** 2).sum(-1), axis=1)
                           for chunk in np.array_split(sample, 8)])
    return float(np.mean(best < 8.0 ** 2))


def _colour_pixels(rgb: np.ndarray, color: str, tolerance: float = 30.0) -> int:
    c = QColor(color)
    target = np.array([c.red(), c.green(), c.blue()], dtype=float)
    return int((((rgb - target) ** 2).sum(-1) < tolerance ** 2).sum())


def test_the_live_view_follows_the_race(drawn):
    facts, _ = drawn
    assert facts["platform"] == "xcb"
    # every run's line has every point of its trajectory (short runs are never thinned)
    assert facts["line_points"] == facts["trajectory_lengths"]
    assert all(n > 100 for n in facts["line_points"])
    assert facts["heads"] == len(facts["line_points"])
    assert 0 < facts["frame_seconds"] < 10  # frames are timed (the redraw rate follows them)
    assert facts["log_height_changes_z"] and facts["new_surface_changes_z"]
    assert facts["line_points_after_restart"] == [1] * len(facts["line_points"])


@pytest.mark.parametrize("picture", ["live.png", "race3d.png"])
def test_screenshot_shows_the_surface_and_a_trajectory(drawn, picture):
    facts, out = drawn
    rgb = _pixels(out / picture)
    empty = _pixels(out / "empty3d.png")  # the same surface, no runs: the control
    assert _surface_fraction(rgb) > 0.15
    assert _surface_fraction(empty) > 0.15
    momentum_run = PALETTE[1]  # SGD with momentum: the run that sweeps widest in 150 steps
    assert _colour_pixels(rgb, momentum_run) > 40
    assert _colour_pixels(empty, momentum_run) <= 5


def test_headless_pictures_are_whole_pngs_written_atomically(drawn):
    facts, out = drawn
    assert facts["files"] == ["empty3d.png", "live.png", "race3d.png"]  # no temporary left
    image = QImage(str(out / "race3d.png"))
    assert (image.width(), image.height()) == (640, 480)


def test_the_command_lines_picture_needs_no_window_and_no_app_of_its_own(gl_env, tmp_path):
    # As `main.py export --view 3d` does it: a fresh process, no QApplication made beforehand.
    out = tmp_path / "race3d.png"
    code = ("import sys; from core.session import Session; "
            "from gui.surface3d_view import render_surface3d_image; "
            "s = Session.default('himmelblau'); s.step(60); "
            "render_surface3d_image(s, sys.argv[1], 320, 240)")
    done = subprocess.run([sys.executable, "-c", code, str(out)], env=gl_env, timeout=120,
                          capture_output=True, text=True, cwd=Path(__file__).resolve().parents[3])
    assert done.returncode == 0, done.stderr[-2000:]
    rgb = _pixels(out)
    assert rgb.shape == (240, 320, 3)
    assert _surface_fraction(rgb) > 0.15
    assert [p.name for p in tmp_path.iterdir()] == ["race3d.png"]


def test_main_export_view_3d_writes_the_picture_on_a_gl_display(gl_env, tmp_path):
    out = tmp_path / "race3d.png"
    root = Path(__file__).resolve().parents[3]
    done = subprocess.run([sys.executable, str(root / "main.py"), "export", "--surface",
                           "himmelblau", "--steps", "60", "--view", "3d", "--size", "400,300",
                           "--out", str(out)], env=gl_env, timeout=120, capture_output=True,
                          text=True, cwd=root)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip() == f"wrote {out}"
    rgb = _pixels(out)
    assert rgb.shape == (300, 400, 3)
    assert _surface_fraction(rgb) > 0.15


def test_a_restored_3d_view_leaves_the_window_active_and_space_plays(gl_env, tmp_path):
    # The first GL widget makes Qt recreate the window's native surface; the window lost its
    # activation and Space / → / R went nowhere until it was clicked.
    script = Path(__file__).with_name("window_keys_3d.py")
    done = subprocess.run([sys.executable, str(script), str(tmp_path / "settings.ini")],
                          env=gl_env, timeout=120, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-2000:]
    lines = done.stdout.splitlines()
    assert lines == ["3d shown: True", "active: True", "focus on surface: True",
                     "playing: True"], done.stdout + done.stderr[-1000:]
