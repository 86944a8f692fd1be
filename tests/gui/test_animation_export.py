"""The race as an animation, drawn offscreen from a stepped copy: the frames move, are the same
every time, the window's menu path writes what the command line writes, and cancel or failure
leaves no file."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image, ImageSequence
from PySide6.QtCore import QSettings, Qt
from PySide6.QtWidgets import QDialogButtonBox, QPushButton, QWidget

import main
from core.animation import AnimationError, plan_animation
from core.session import PALETTE, Session
from gui.animation_export import (
    AnimationDialog,
    AnimationExport,
    AnimationExportTask,
    RaceAnimation,
    export_race_animation,
)
from gui.controller import Controller
from gui.main_window import MainWindow
from gui.worker import wait_for_jobs


def _near(pixels: np.ndarray, colour: str, tolerance: int = 30) -> int:
    c = tuple(int(colour[i:i + 2], 16) for i in (1, 3, 5))
    return int((np.abs(pixels.astype(int) - np.array(c)).max(axis=2) <= tolerance).sum())


def _gif_frames(path) -> list[np.ndarray]:
    with Image.open(path) as gif:
        return [np.asarray(f.convert("RGB")) for f in ImageSequence.Iterator(gif)]


def test_frames_show_the_runs_moving_and_are_the_same_every_time(qapp):
    session = Session.default()
    plan = plan_animation(session, fps=10, steps=300, steps_per_frame=100)
    animation = RaceAnimation(session, plan, 400, 300)
    try:
        frames = [animation.frame(k) for k in range(plan.frame_count)]
        again = animation.frame(1)  # back to an earlier frame: the copy restarts
    finally:
        animation.close()
    assert all(f.shape == (300, 400, 3) and f.dtype == np.uint8 for f in frames)
    assert all(not np.array_equal(a, b) for a, b in zip(frames, frames[1:]))
    np.testing.assert_array_equal(again, frames[1])
    # the paths grow: ever more of the picture differs from the start's
    changed = [int((np.abs(f.astype(int) - frames[0]).max(axis=2) > 40).sum()) for f in frames]
    assert changed[0] == 0 < changed[1] < changed[2] < changed[3]
    # SGD with momentum (orange) has left the start: its path is drawn, beyond the legend swatch
    assert _near(frames[1], PALETTE[1]) > 3 * _near(frames[0], PALETTE[1])
    assert all(run.steps == 0 for run in session.runs)  # the session itself never moved


def test_headless_gif_and_mp4_decode_with_the_planned_frames(tmp_path, qapp):
    import imageio_ffmpeg

    session = Session.default()
    gif = export_race_animation(session, tmp_path / "race.gif", 320, 240, fps=20, steps=60,
                                steps_per_frame=6)
    frames = _gif_frames(gif)
    assert len(frames) == 11 and frames[0].shape == (240, 320, 3)
    with Image.open(gif) as image:
        assert image.info["loop"] == 0 and image.info["duration"] == 50
    mp4 = export_race_animation(session, tmp_path / "race.mp4", 321, 241, fps=20, steps=60,
                                steps_per_frame=6)
    reader = imageio_ffmpeg.read_frames(str(mp4))
    meta = next(reader)
    assert meta["size"] == (322, 242) and meta["pix_fmt"].startswith("yuv420p")
    assert sum(1 for _ in reader) == 11


def test_window_menu_writes_the_same_gif_as_the_command_line(qtbot, tmp_path, capsys):
    settings = QSettings(str(tmp_path / "settings.ini"), QSettings.Format.IniFormat)
    window = MainWindow(Controller(Session.default()), settings=settings, restore=False)
    qtbot.addWidget(window)
    window.controller.session.play(40)  # the window's race is ahead: the film replays it
    from_window = tmp_path / "window.gif"
    plan = plan_animation(window.controller.session, fps=10, steps=80, steps_per_frame=8)
    window.ask_animation = lambda: (str(from_window), (360, 270), plan)
    action = next(a for a in window.export_menu.actions() if a.text().startswith("&Animation"))
    action.trigger()
    task = window.animation_task
    assert task is not None and task.running
    with qtbot.waitSignal(task.sigFinished, timeout=30_000):
        pass
    assert wait_for_jobs()
    headless = tmp_path / "headless.gif"
    assert main.main(["export", "--out", str(headless), "--steps", "80", "--steps-per-frame",
                      "8", "--size", "360x270", "--fps", "10"]) == 0
    assert "11 frames" in capsys.readouterr().out
    assert from_window.read_bytes() == headless.read_bytes()
    assert "Wrote" in window.statusBar().currentMessage()
    window.controller.shutdown()


def test_cancel_from_the_progress_dialog_leaves_the_old_file(qtbot, tmp_path):
    settings = QSettings(str(tmp_path / "settings.ini"), QSettings.Format.IniFormat)
    window = MainWindow(Controller(Session.default()), settings=settings, restore=False)
    qtbot.addWidget(window)
    (tmp_path / "films").mkdir()
    out = tmp_path / "films" / "race.gif"
    out.write_bytes(b"the old file")
    plan = plan_animation(window.controller.session, fps=10, steps=400, steps_per_frame=2)
    task = window.export_animation(out, 480, 360, plan)
    assert task is not None
    with qtbot.waitSignal(task.sigProgress, timeout=10_000):
        pass
    assert task.running
    with qtbot.waitSignal(task.sigCancelled, timeout=10_000):
        cancel = task.progress_dialog.findChild(QPushButton)
        qtbot.mouseClick(cancel, Qt.MouseButton.LeftButton)
    assert wait_for_jobs()
    assert out.read_bytes() == b"the old file"
    assert [p.name for p in out.parent.iterdir()] == ["race.gif"]  # no temporary file left
    assert "cancelled" in window.statusBar().currentMessage()
    window.controller.shutdown()


def test_cancel_during_the_encoding_leaves_the_old_file(qtbot, tmp_path):
    out = tmp_path / "race.gif"
    out.write_bytes(b"the old file")
    session = Session.default()
    plan = plan_animation(session, fps=10, steps=20, steps_per_frame=10)
    task = AnimationExportTask(AnimationExport(session, out, 200, 150, plan))
    task.sigEncoding.connect(task.cancel)  # the drawing is done, the encoding Job started
    with qtbot.waitSignal(task.sigCancelled, timeout=10_000):
        task.start()
    assert wait_for_jobs()
    assert out.read_bytes() == b"the old file"
    assert [p.name for p in tmp_path.iterdir()] == ["race.gif"]


def test_a_failing_export_says_so_and_leaves_nothing(qtbot, tmp_path, monkeypatch):
    session = Session.default()
    plan = plan_animation(session, fps=10, steps=30, steps_per_frame=10)
    export = AnimationExport(session, tmp_path / "race.mp4", 200, 150, plan)

    def broken(self, frame):
        raise AnimationError("cannot write race.mp4: ffmpeg failed (broken pipe)")

    monkeypatch.setattr("core.animation.AnimationWriter.add", broken)
    task = AnimationExportTask(export)
    with qtbot.waitSignal(task.sigFailed, timeout=10_000) as failed:
        task.start()
    assert "ffmpeg failed" in failed.args[0] and not task.running
    assert list(tmp_path.iterdir()) == []


def test_export_to_a_missing_folder_is_refused_before_drawing(qtbot, tmp_path):
    settings = QSettings(str(tmp_path / "settings.ini"), QSettings.Format.IniFormat)
    window = MainWindow(Controller(Session.default()), settings=settings, restore=False)
    qtbot.addWidget(window)
    plan = plan_animation(window.controller.session, fps=10, steps=20, steps_per_frame=10)
    assert window.export_animation(tmp_path / "missing" / "race.gif", 200, 150, plan) is None
    assert "does not exist" in window.statusBar().currentMessage()
    assert window.findChild(QWidget, "animationProgress") is None  # nothing started
    window.controller.shutdown()


def test_dialog_shows_frames_and_refuses_what_cannot_be_made(qtbot):
    session = Session.default()
    session.play(120)
    dialog = AnimationDialog(session)
    qtbot.addWidget(dialog)
    ok = dialog.buttons.button(QDialogButtonBox.StandardButton.Ok)
    assert dialog.length_box.value() == 120  # the race so far
    dialog.steps_per_frame_box.setValue(10)
    assert ok.isEnabled() and "13 frames" in dialog.summary.text()
    assert dialog.plan().frame_count == 13
    dialog.fps_box.setValue(60)  # fine for MP4, too fast for a GIF
    assert dialog.suffix == ".gif" and not ok.isEnabled()
    assert "at most 50" in dialog.summary.text()
    dialog.format_box.setCurrentIndex(dialog.format_box.findData(".mp4"))
    assert ok.isEnabled()
    dialog.width_box.setValue(4000)
    dialog.height_box.setValue(4000)
    dialog.steps_per_frame_box.setValue(1)
    assert not ok.isEnabled() and "too much to draw" in dialog.summary.text()


@pytest.mark.parametrize("suffix", [".webp", ".apng"])
def test_webp_and_apng_from_the_race(tmp_path, qapp, suffix):
    out = export_race_animation(Session.default(), tmp_path / f"race{suffix}", 160, 120,
                                fps=10, steps=20, steps_per_frame=10)
    with Image.open(out) as image:
        assert image.n_frames == 3 and image.size == (160, 120)


def test_curves_grow_under_the_surface_on_fixed_axes(qapp):
    session = Session.default()
    plan = plan_animation(session, fps=10, steps=200, steps_per_frame=100)
    plain = RaceAnimation(session, plan, 400, 400)
    with_curves = RaceAnimation(session, plan, 400, 400, curves=True)
    try:
        a, b = with_curves.frame(1), with_curves.frame(2)
        surface_only = plain.frame(2)
    finally:
        plain.close()
        with_curves.close()
    lower = slice(280, 380)  # where the curves are (the counter is below them)
    changed = np.abs(a[lower].astype(int) - b[lower]).max(axis=2) > 40
    assert changed.sum() > 200  # the curves grew from step 100 to 200
    # the orange curve is in the lower part only with curves on
    assert _near(b[lower], PALETTE[1]) > 5 * max(1, _near(surface_only[lower], PALETTE[1]))


def test_window_passes_the_curves_choice_on(qtbot, tmp_path):
    settings = QSettings(str(tmp_path / "settings.ini"), QSettings.Format.IniFormat)
    window = MainWindow(Controller(Session.default()), settings=settings, restore=False)
    qtbot.addWidget(window)
    out = tmp_path / "curves.gif"
    plan = plan_animation(window.controller.session, fps=10, steps=20, steps_per_frame=10)
    window.ask_animation = lambda: (str(out), (300, 300), plan, True)
    window.export_animation_dialog()
    task = window.animation_task
    assert task.export.curves
    with qtbot.waitSignal(task.sigFinished, timeout=30_000):
        pass
    assert wait_for_jobs() and len(_gif_frames(out)) == 3
    window.controller.shutdown()


def test_each_piece_of_work_is_bounded_to_one_frames_steps(qapp, tmp_path):
    session = Session.default()
    plan = plan_animation(session, fps=10, steps=1000, steps_per_frame=100)
    export = AnimationExport(session, tmp_path / "race.gif", 200, 150, plan)
    assert not export.work()  # the picture
    stepper = export._animation.stepper
    for frame in (1, 2, 3):
        assert not export.work()
        assert stepper.frame == frame  # one frame's steps, not the whole race at once
        assert all(run.steps == 100 * frame for run in stepper.session.runs)
    progress = [export.progress]
    while not export.work():
        progress.append(export.progress)
    assert progress == sorted(progress) and export.progress == 1.0
    assert list(tmp_path.iterdir()) != []  # the temporary file, until finish() or abort()
    export.abort()
    assert list(tmp_path.iterdir()) == []


def test_the_menu_asks_settings_then_the_file_and_writes_it(qtbot, tmp_path, monkeypatch):
    import imageio_ffmpeg
    from PySide6.QtWidgets import QDialog, QFileDialog

    settings = QSettings(str(tmp_path / "settings.ini"), QSettings.Format.IniFormat)
    window = MainWindow(Controller(Session.default()), settings=settings, restore=False)
    qtbot.addWidget(window)

    def choose(dialog):  # what a user would set in the dialog, then OK
        dialog.format_box.setCurrentIndex(dialog.format_box.findData(".mp4"))
        dialog.width_box.setValue(321)
        dialog.height_box.setValue(241)
        dialog.length_box.setValue(30)
        dialog.steps_per_frame_box.setValue(10)
        return QDialog.DialogCode.Accepted

    monkeypatch.setattr(AnimationDialog, "exec", choose)
    asked = []
    monkeypatch.setattr(QFileDialog, "getSaveFileName",
                        lambda *a, **k: asked.append(a[3]) or (str(tmp_path / "race"), ""))
    window.export_animation_dialog()
    assert "*.mp4" in asked[0]  # the file dialog offers the chosen format
    with qtbot.waitSignal(window.animation_task.sigFinished, timeout=30_000):
        pass
    assert wait_for_jobs()
    reader = imageio_ffmpeg.read_frames(str(tmp_path / "race.mp4"))  # the extension was added
    assert next(reader)["size"] == (322, 242) and sum(1 for _ in reader) == 4
    window.controller.shutdown()


def test_closing_the_window_stops_the_export_and_leaves_no_file(qtbot, tmp_path):
    settings = QSettings(str(tmp_path / "settings.ini"), QSettings.Format.IniFormat)
    window = MainWindow(Controller(Session.default()), settings=settings, restore=False)
    qtbot.addWidget(window)
    (tmp_path / "films").mkdir()
    plan = plan_animation(window.controller.session, fps=10, steps=400, steps_per_frame=2)
    task = window.export_animation(tmp_path / "films" / "race.gif", 320, 240, plan)
    with qtbot.waitSignal(task.sigProgress, timeout=10_000):
        pass
    with qtbot.waitSignal(task.sigCancelled, timeout=10_000):
        window.close()
    assert wait_for_jobs() and not task.running
    assert list((tmp_path / "films").iterdir()) == []


def test_as_the_view_is_now_uses_its_zoom_and_arrows(qtbot, tmp_path):
    settings = QSettings(str(tmp_path / "settings.ini"), QSettings.Format.IniFormat)
    window = MainWindow(Controller(Session.default()), settings=settings, restore=False)
    qtbot.addWidget(window)
    view = window.surface_view
    view.set_view((-1.5, 0.0), (0.0, 1.5))  # zoomed in around the start
    view.set_gradient_arrows(False)
    from gui.animation_export import ViewSettings

    chosen = ViewSettings.of(view)
    assert not chosen.arrows and chosen.x_range[0] == pytest.approx(-1.5, abs=0.01)
    plan = plan_animation(window.controller.session, fps=10, steps=20, steps_per_frame=10)
    files = {}
    for as_view in (False, True):
        out = files[as_view] = tmp_path / f"view_{as_view}.gif"
        task = window.export_animation(out, 320, 240, plan, as_view=as_view)
        with qtbot.waitSignal(task.sigFinished, timeout=30_000):
            pass
    assert wait_for_jobs()
    plain, zoomed = _gif_frames(files[False]), _gif_frames(files[True])
    assert len(plain) == len(zoomed) == 3
    assert np.abs(plain[0].astype(int) - zoomed[0]).max(axis=2).mean() > 10  # another region
    window.controller.shutdown()


def test_closing_while_encoding_removes_the_temporary_file_before_the_window_is_gone(
        qtbot, tmp_path):
    # The app's process ends right after the window closes (os._exit): a cancel delivered
    # later by the event loop would never remove the encoder's temporary file.
    settings = QSettings(str(tmp_path / "settings.ini"), QSettings.Format.IniFormat)
    window = MainWindow(Controller(Session.default()), settings=settings, restore=False)
    qtbot.addWidget(window)
    (tmp_path / "films").mkdir()
    plan = plan_animation(window.controller.session, fps=10, steps=200, steps_per_frame=4)
    task = window.export_animation(tmp_path / "films" / "race.gif", 480, 360, plan)
    with qtbot.waitSignal(task.sigEncoding, timeout=30_000):
        pass
    window.close()  # no event processing after this line before the checks
    assert not task.running
    assert list((tmp_path / "films").iterdir()) == []
