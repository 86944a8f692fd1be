"""The basin map filling in as an animation: the file decodes with the planned frames and size,
the frames change as the starts settle, are the same every time, and a cancel leaves no file."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image, ImageSequence

from core.animation import AnimationCancelled
from core.surfaces import get_surface
from gui.basin_animation import write_basin_animation
from gui.many.basins_view import UNSETTLED_COLOUR


def _frames(path) -> list[np.ndarray]:
    with Image.open(path) as gif:
        return [np.asarray(f.convert("RGB")) for f in ImageSequence.Iterator(gif)]


def _share(frame: np.ndarray, colour: str) -> float:
    rgb = np.array([int(colour[i:i + 2], 16) for i in (1, 3, 5)])
    return float((np.abs(frame.astype(int) - rgb).max(axis=2) <= 6).mean())


def test_the_gif_fills_in_from_grey_and_is_the_same_every_time(qapp, tmp_path):
    surface = get_surface("himmelblau")
    out = write_basin_animation(surface, "Adam(lr=0.1)", tmp_path / "b.gif", grid=24, steps=60,
                                steps_per_frame=20, size=(320, 280))
    frames = _frames(out)
    assert len(frames) == 4 and all(f.shape == (280, 320, 3) for f in frames)
    grey = [_share(f, UNSETTLED_COLOUR) for f in frames]  # "near no minimum yet"
    assert grey[0] > 0.4 and grey[0] > grey[1] > grey[3]
    assert all(not np.array_equal(a, b) for a, b in zip(frames, frames[1:]))
    again = write_basin_animation(surface, "Adam(lr=0.1)", tmp_path / "again.gif", grid=24,
                                  steps=60, steps_per_frame=20, size=(320, 280))
    assert again.read_bytes() == out.read_bytes()


class _CancelSoon:
    def __init__(self) -> None:
        self.calls = 0

    def set_progress(self, fraction: float) -> None:
        pass

    def is_interruption_requested(self) -> bool:
        self.calls += 1
        return self.calls > 5


def test_a_cancel_leaves_no_file(qapp, tmp_path):
    with pytest.raises(AnimationCancelled):
        write_basin_animation(get_surface("himmelblau"), "Adam(lr=0.1)", tmp_path / "b.gif",
                              grid=16, steps=40, steps_per_frame=10, size=(200, 160),
                              state=_CancelSoon())
    assert list(tmp_path.iterdir()) == []


def test_the_dialog_makes_the_same_film_as_the_headless_function(qtbot, tmp_path):
    from core.basin_animation import BasinFilm
    from gui.animation_export import AnimationDialog
    from gui.worker import wait_for_jobs

    surface = get_surface("himmelblau")
    dialog = AnimationDialog(BasinFilm(surface, "Adam(lr=0.1)", grid=16, steps=40))
    qtbot.addWidget(dialog)
    assert dialog.is_basins and not dialog.curves_box.isVisibleTo(dialog)
    assert dialog.length_box.value() == 40 and "16 x 16 starts" in dialog.model_note.text()
    dialog.steps_per_frame_box.setValue(10)
    dialog.width_box.setValue(240)
    dialog.height_box.setValue(200)
    assert dialog.summary.text().startswith("5 frames")
    task = dialog.start_export(tmp_path / "window.gif", parent=dialog)
    with qtbot.waitSignal(task.sigFinished, timeout=60_000):
        pass
    assert wait_for_jobs()
    headless = write_basin_animation(surface, "Adam(lr=0.1)", tmp_path / "cli.gif", grid=16,
                                     steps=40, steps_per_frame=10, size=(240, 200))
    assert (tmp_path / "window.gif").read_bytes() == headless.read_bytes()
    too_big = AnimationDialog(BasinFilm(surface, "Adam(lr=0.1)", grid=300, steps=40))
    qtbot.addWidget(too_big)
    assert "from 2 to 256 starts" in too_big.summary.text()
    assert not too_big.buttons.button(too_big.buttons.StandardButton.Ok).isEnabled()
