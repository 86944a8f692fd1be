"""Model mode as an animation: the files decode with the planned frames and size, the frames
change as the runs train and are the same every time, the workspace's dialog writes what the
command line's function writes, and a cancelled or failed export leaves no file."""

from __future__ import annotations

import numpy as np
import pyqtgraph as pg
import pytest
import torch
from PIL import Image, ImageSequence

from core.animation import AnimationCancelled, AnimationError
from core.model_animation import ModelAnimationOptions, plan_model_animation
from core.model_session import DataSpec, ModelSession
from gui.animation_export import AnimationDialog, AnimationExportTask, start_animation_export
from gui.model.animation_frames import ModelAnimationExport, write_model_animation
from gui.model.controller import ModelController
from gui.model.workspace import ModelWorkspace
from gui.worker import wait_for_jobs


def _gif_frames(path) -> list[np.ndarray]:
    with Image.open(path) as gif:
        return [np.asarray(f.convert("RGB")) for f in ImageSequence.Iterator(gif)]


def _moons(steps: int = 40) -> ModelSession:
    session = ModelSession("Linear(2, 8), Tanh(), Linear(8, 1)", DataSpec("moons", n=80),
                           test_fraction=0.25, seed=1)
    session.add_run("SGD", {"lr": 0.5}, steps=steps)
    session.add_run("Adam", {"lr": 0.05}, steps=steps)
    return session


def _near(pixels: np.ndarray, rgb, tolerance: int = 12) -> int:
    return int((np.abs(pixels.astype(int) - np.array(rgb)).max(axis=2) <= tolerance).sum())


def test_gif_decodes_with_the_planned_frames_and_size_and_the_regions_grow(qapp, tmp_path):
    out = write_model_animation(_moons(40), tmp_path / "moons.gif",
                                ModelAnimationOptions(steps_per_frame=10, size=(400, 300)))
    frames = _gif_frames(out)
    assert len(frames) == 5 and all(f.shape == (300, 400, 3) for f in frames)
    assert all(not np.array_equal(a, b) for a, b in zip(frames, frames[1:]))
    # the left half is the data plot: the selected run's regions separate into the two
    # classes' (lightened) colours as it trains, so ever more of it changes from the start's
    left = [f[:, :200].astype(int) for f in frames]
    changed = [int((np.abs(f - left[0]).max(axis=2) > 20).sum()) for f in left]
    assert changed[0] == 0 < changed[1] < changed[4]
    # the other run (Adam, orange) draws its decision boundary as a line in its colour
    assert _near(frames[4][:, :200], _rgb(_moons().runs[1].color)) > 30
    # the loss curves (right half) grow
    right = [f[:, 200:].astype(int) for f in frames]
    assert (np.abs(right[4] - right[0]).max(axis=2) > 40).sum() > \
        (np.abs(right[1] - right[0]).max(axis=2) > 40).sum() > 0
    again = write_model_animation(_moons(40), tmp_path / "again.gif",
                                  ModelAnimationOptions(steps_per_frame=10, size=(400, 300)))
    assert again.read_bytes() == out.read_bytes()  # the same every time


def _rgb(colour: str) -> tuple[int, int, int]:
    return tuple(int(colour[i:i + 2], 16) for i in (1, 3, 5))  # type: ignore[return-value]


def test_regression_draws_the_fit_and_the_selected_run_is_the_chosen_one(qapp, tmp_path):
    session = ModelSession("Linear(1, 8), Tanh(), Linear(8, 1)", DataSpec("sine", n=60), seed=0)
    session.add_run("SGD", {"lr": 0.1}, steps=20)
    session.add_run("Adam", {"lr": 0.05}, steps=20)
    plan = plan_model_animation(session, ModelAnimationOptions(steps_per_frame=10))
    pictures = {}
    for selected in (0, 1):
        export = ModelAnimationExport(session, tmp_path / f"sine{selected}.gif", 320, 240, plan,
                                      selected=selected)
        export.run()
        pictures[selected] = _gif_frames(tmp_path / f"sine{selected}.gif")
    assert len(pictures[0]) == 3
    # selecting the other run swaps which fit is the thick dark one: the data plot differs
    assert not np.array_equal(pictures[0][2][:, :160], pictures[1][2][:, :160])


def test_mp4_decodes_with_even_sides(qapp, tmp_path):
    import imageio_ffmpeg

    out = write_model_animation(_moons(20), tmp_path / "moons.mp4",
                                ModelAnimationOptions(steps_per_frame=10, size=(321, 241)))
    reader = imageio_ffmpeg.read_frames(str(out))
    meta = next(reader)
    assert meta["size"] == (322, 242)  # padded, not resampled
    assert sum(1 for _ in reader) == 3


class _CancelAfter:
    def __init__(self, calls: int) -> None:
        self.calls = calls
        self.progress: list[float] = []

    def set_progress(self, fraction: float) -> None:
        self.progress.append(fraction)

    def is_interruption_requested(self) -> bool:
        self.calls -= 1
        return self.calls < 0


def test_a_cancelled_or_failed_export_leaves_no_file_and_the_old_one_whole(qapp, tmp_path,
                                                                           monkeypatch):
    out = tmp_path / "moons.gif"
    out.write_bytes(b"the old film")
    state = _CancelAfter(6)
    with pytest.raises(AnimationCancelled):
        write_model_animation(_moons(40), out, ModelAnimationOptions(steps_per_frame=10,
                                                                     size=(200, 150)), state)
    assert state.progress and out.read_bytes() == b"the old film"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["moons.gif"]

    from gui.model import animation_frames

    def broken(self, k):
        if k == 2:
            raise AnimationError("cannot make a 200 x 150 image (out of memory?)")
        return original(self, k)

    original = animation_frames.ModelFramePicture.frame
    monkeypatch.setattr(animation_frames.ModelFramePicture, "frame", broken)
    with pytest.raises(AnimationError, match="out of memory"):
        write_model_animation(_moons(40), out, ModelAnimationOptions(steps_per_frame=10,
                                                                     size=(200, 150)))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["moons.gif"]
    assert out.read_bytes() == b"the old film"


def test_bad_requests_are_refused_before_anything_is_drawn(qapp, tmp_path):
    with pytest.raises(AnimationError, match="folder .* does not exist"):
        write_model_animation(_moons(), tmp_path / "missing" / "a.gif")
    with pytest.raises(AnimationError, match="at most 50 frames per second"):
        write_model_animation(_moons(), tmp_path / "a.gif", ModelAnimationOptions(fps=60))
    assert list(tmp_path.iterdir()) == []


def test_the_workspaces_dialog_writes_what_the_command_lines_function_writes(qtbot, tmp_path):
    controller = ModelController()
    controller.add_run("SGD")
    controller.add_run("Adam")
    workspace = ModelWorkspace(controller=controller)
    qtbot.addWidget(workspace)
    for _ in range(5):
        controller.step_once()  # the window's runs have moved; the film starts from the start
    sgd = controller.runs[0]
    controller.set_lr(sgd, 0.5)  # a change mid-run: the film replays it at step 5
    for _ in range(5):
        controller.step_once()
    controller.select(controller.runs[1])
    session = controller.to_session()
    dialog = AnimationDialog(session, parent=workspace)
    qtbot.addWidget(dialog)
    assert dialog.is_model and not dialog.curves_box.isVisibleTo(dialog)
    assert dialog.length_box.value() == 10  # as far as the runs have gone
    assert dialog.selected == 1  # the workspace's selection: the run added last
    assert "the data shows Adam's prediction" in dialog.model_note.text()
    dialog.length_box.setValue(30)
    dialog.steps_per_frame_box.setValue(10)
    dialog.width_box.setValue(320)
    dialog.height_box.setValue(240)
    assert "4 frames" in dialog.findChild(type(dialog.summary), "animationSummary").text()
    task = dialog.start_export(tmp_path / "window.gif", parent=workspace)
    assert isinstance(task, AnimationExportTask)
    with qtbot.waitSignal(task.sigFinished, timeout=60_000):
        pass
    assert wait_for_jobs()
    headless = write_model_animation(controller.to_session(), tmp_path / "headless.gif",
                                     ModelAnimationOptions(steps=30, steps_per_frame=10,
                                                           size=(320, 240)))
    window_frames, headless_frames = _gif_frames(tmp_path / "window.gif"), _gif_frames(headless)
    assert len(window_frames) == 4
    for a, b in zip(window_frames, headless_frames):
        np.testing.assert_array_equal(a, b)
    assert all(run.steps == 10 for run in controller.runs)  # the workspace never moved
    # the film's runs after 10 steps are the workspace's, the lr change at step 5 included
    export = ModelAnimationExport(controller.to_session(), tmp_path / "check.gif", 320, 240,
                                  plan_model_animation(controller.to_session(),
                                                       ModelAnimationOptions(steps_per_frame=10,
                                                                             steps=10)))
    export.replay.run_to_end()
    shown = export.replay.record(1)
    for run, at_frame in zip(controller.runs, shown):
        for name, p in run.parameters.items():
            assert torch.equal(at_frame.parameters[name], p.detach()), name
    export.abort()
    controller.shutdown()


def test_the_dialog_refuses_what_cannot_be_made_and_cancel_leaves_nothing(qtbot, tmp_path):
    session = _moons(400)
    dialog = AnimationDialog(session)
    qtbot.addWidget(dialog)
    dialog.steps_per_frame_box.setValue(1)
    dialog.width_box.setValue(2000)
    dialog.height_box.setValue(2000)
    ok = dialog.buttons.button(dialog.buttons.StandardButton.Ok)
    assert not ok.isEnabled() and "too much to draw" in dialog.summary.text()
    plan = plan_model_animation(session, ModelAnimationOptions(steps_per_frame=2))
    from PySide6.QtWidgets import QWidget

    parent = QWidget()
    qtbot.addWidget(parent)
    task = start_animation_export(session, tmp_path / "m.gif", 200, 150, plan, parent=parent)
    with qtbot.waitSignal(task.sigProgress, timeout=10_000):
        pass
    with qtbot.waitSignal(task.sigCancelled, timeout=10_000):
        task.cancel()
    assert list(tmp_path.iterdir()) == []
    # the window's shutdown hook during the drawing: stops it and leaves nothing
    task = start_animation_export(session, tmp_path / "m.gif", 200, 150, plan, parent=parent)
    with qtbot.waitSignal(task.sigProgress, timeout=10_000):
        pass
    task.shutdown()
    assert not task.running and list(tmp_path.iterdir()) == []
    assert wait_for_jobs()


@pytest.mark.parametrize("loss", ["CrossEntropyLoss", "BCEWithLogitsLoss"])
def test_one_feature_classes_draw_the_curve_as_the_window_does(qapp, tmp_path, loss):
    classes = ["low", "mid", "high"] if loss == "CrossEntropyLoss" else ["no", "yes"]
    text = "x,label\n" + "".join(f"{i * 0.2:.1f},{classes[(i * len(classes)) // 30]}\n"
                                 for i in range(30))
    session = ModelSession("Linear(1, 8), Tanh(), Linear(8, {})".format(
        len(classes) if loss == "CrossEntropyLoss" else 1),
        DataSpec(dataset=None, csv=text, name="one.csv"), loss=loss, test_fraction=0.0, seed=0)
    session.add_run("Adam", {"lr": 0.05}, steps=40)
    plan = plan_model_animation(session, ModelAnimationOptions(steps_per_frame=10))
    export = ModelAnimationExport(session, tmp_path / "one.gif", 400, 300, plan, selected=0)
    export.run()
    frames = _gif_frames(tmp_path / "one.gif")
    assert len(frames) == 5
    # the data plot (left half) changes as the run trains: its curve moves
    left = [f[:, :200].astype(int) for f in frames]
    changed = [int((np.abs(f - left[0]).max(axis=2) > 40).sum()) for f in left]
    assert changed[0] == 0 < changed[4]
    # the selected run's curve is drawn thick and dark (#222) in the data plot
    assert _near(frames[4][:, :200], (0x22, 0x22, 0x22), tolerance=20) > 40


def test_one_feature_classes_curve_is_what_the_view_computes(qapp, tmp_path):
    from core.model_animation import ModelReplay
    from gui.model.animation_frames import ModelFramePicture
    text = "x,label\n" + "".join(f"{i * 0.2:.1f},{'ab'[i >= 15]}\n" for i in range(30))
    session = ModelSession("Linear(1, 4), Tanh(), Linear(4, 1)",
                           DataSpec(dataset=None, csv=text), loss="BCEWithLogitsLoss",
                           test_fraction=0.0, seed=0)
    session.add_run("Adam", {"lr": 0.05}, steps=10)
    plan = plan_model_animation(session, ModelAnimationOptions(steps_per_frame=10))
    replay = ModelReplay(session, plan)
    while not replay.advance():
        pass
    picture = ModelFramePicture(replay, 320, 240, 0)
    try:
        assert picture.shows_curve
        picture.frame(1)
        xs, ys = picture.curve.getData()
        X = torch.tensor(xs, dtype=torch.float64).reshape(-1, 1)
        out = replay.predict(replay.record(1)[0].parameters, X)
        np.testing.assert_allclose(ys, torch.sigmoid(out).reshape(-1).numpy(), rtol=1e-12)
        assert ys.min() >= 0 and ys.max() <= 1
        assert "P(class 1)" in picture.data_plot.titleLabel.text
        points = [item for item in picture.data_plot.items
                  if isinstance(item, pg.ScatterPlotItem)]
        _, heights = points[0].getData()
        np.testing.assert_array_equal(heights, replay.built.split.train.y.numpy())
    finally:
        picture.close()
