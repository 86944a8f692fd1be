"""`python main.py train ... --out anim.gif|.mp4|.webp|.apng [--fps N] [--steps-per-frame K]
[--frames N] [--size WxH]` (issue 12 for model mode): the film decodes with the planned frames
and size, its frames differ as the runs train, it equals the window's film of the same session,
and every mistake is exit 2 with one line and no file (not even a temporary one)."""

from __future__ import annotations

import argparse
import sys

import numpy as np
import pytest
from PIL import Image, ImageSequence

import main
from core.animation import FORMATS
from core.animation_cli import ANIMATION_SUFFIXES
from core.errors import PlaygroundError
from core.model_cli import add_train_arguments, train_animation_request

MOONS = ["--dataset", "moons", "--n", "80", "--seed", "1", "--model",
         "Linear(2, 8), Tanh(), Linear(8, 1)", "--optimizer", "SGD(lr=0.5)",
         "--optimizer", "Adam(lr=0.05)"]


def cli(capsys, *argv: str) -> tuple[int, str, str]:
    code = main.main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def gif_frames(path) -> tuple[tuple[int, int], list[int], list[np.ndarray]]:
    with Image.open(path) as gif:
        size = gif.size
        frames = [(f.info["duration"], np.asarray(f.convert("RGB")))
                  for f in ImageSequence.Iterator(gif)]
    return size, [d for d, _ in frames], [f for _, f in frames]


def test_the_suffixes_are_the_encoders_formats() -> None:
    assert tuple(FORMATS) == ANIMATION_SUFFIXES


def test_gif_has_the_planned_frames_size_and_speed_and_the_frames_differ(tmp_path, capsys,
                                                                          qapp) -> None:
    out = tmp_path / "moons.gif"
    code, text, err = cli(capsys, "train", *MOONS, "--steps", "40", "--steps-per-frame", "10",
                          "--fps", "25", "--size", "400x300", "--out", str(out))
    assert (code, err) == (0, "")
    assert text == f"wrote {out} (5 frames, 10 steps per frame)\n"
    size, delays, frames = gif_frames(out)
    assert size == (400, 300) and len(frames) == 5 and all(f.shape == (300, 400, 3)
                                                           for f in frames)
    assert delays == [40] * 5  # 25 frames per second
    assert all(not np.array_equal(a, b) for a, b in zip(frames, frames[1:]))
    # the loss curves (the right half) grow from frame to frame
    right = [f[:, 200:].astype(int) for f in frames]
    grown = [int((np.abs(r - right[0]).max(axis=2) > 40).sum()) for r in right]
    assert grown[0] == 0 < grown[1] < grown[4]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["moons.gif"]


def test_frames_and_steps_per_frame_set_the_length_without_steps(tmp_path, capsys,
                                                                 qapp) -> None:
    out = tmp_path / "short.gif"
    code, text, _ = cli(capsys, "train", *MOONS, "--frames", "4", "--steps-per-frame", "5",
                        "--size", "200,150", "--out", str(out))
    assert code == 0 and "(4 frames, 5 steps per frame)" in text
    size, delays, frames = gif_frames(out)
    assert size == (200, 150) and len(frames) == 4 and delays == [100] * 4  # default 10 fps


def test_the_film_is_the_one_write_model_animation_makes_of_the_same_session(tmp_path, capsys,
                                                                             qapp) -> None:
    from core.model_animation import ModelAnimationOptions
    from core.model_session import DataSpec, ModelSession
    from gui.model.animation_frames import write_model_animation

    out = tmp_path / "cli.gif"
    assert cli(capsys, "train", *MOONS, "--test-fraction", "0.25", "--steps", "20",
               "--steps-per-frame", "10", "--size", "320x240", "--out", str(out))[0] == 0
    session = ModelSession("Linear(2, 8), Tanh(), Linear(8, 1)", DataSpec("moons", n=80),
                           test_fraction=0.25, seed=1)
    session.add_run("SGD", {"lr": 0.5}, steps=20)
    session.add_run("Adam", {"lr": 0.05}, steps=20)
    made = write_model_animation(session, tmp_path / "python.gif",
                                 ModelAnimationOptions(steps_per_frame=10, size=(320, 240)))
    assert out.read_bytes() == made.read_bytes()


def test_the_headless_film_equals_the_windows(tmp_path, capsys, qtbot) -> None:
    """The model workspace's File > Export > Animation and `train --session FILE --out` make
    the same frames: the film replays the saved runs from their start, an lr change mid-run
    and the workspace's selected run included."""
    from gui.animation_export import AnimationDialog, AnimationExportTask
    from gui.model.controller import ModelController
    from gui.model.workspace import ModelWorkspace
    from gui.worker import wait_for_jobs

    controller = ModelController()
    controller.add_run("SGD")
    controller.add_run("Adam")
    workspace = ModelWorkspace(controller=controller)
    qtbot.addWidget(workspace)
    for _ in range(4):
        controller.step_once()
    controller.set_lr(controller.runs[0], 0.5)  # a change mid-run: replayed at step 4
    for _ in range(4):
        controller.step_once()
    controller.select(controller.runs[1])
    controller.save_session(tmp_path / "model.json")
    dialog = AnimationDialog(controller.to_session(), parent=workspace)
    qtbot.addWidget(dialog)
    dialog.length_box.setValue(24)
    dialog.steps_per_frame_box.setValue(8)
    dialog.fps_box.setValue(20)
    dialog.width_box.setValue(320)
    dialog.height_box.setValue(240)
    task = dialog.start_export(tmp_path / "window.gif", parent=workspace)
    assert isinstance(task, AnimationExportTask)
    with qtbot.waitSignal(task.sigFinished, timeout=60_000):
        pass
    assert wait_for_jobs()
    code, text, err = cli(capsys, "train", "--session", str(tmp_path / "model.json"),
                          "--steps", "24", "--steps-per-frame", "8", "--fps", "20", "--size",
                          "320x240", "--out", str(tmp_path / "cli.gif"))
    assert (code, err) == (0, ""), err
    assert "(4 frames, 8 steps per frame)" in text
    window, headless = gif_frames(tmp_path / "window.gif"), gif_frames(tmp_path / "cli.gif")
    assert window[:2] == headless[:2] and len(window[2]) == 4
    for a, b in zip(window[2], headless[2]):
        np.testing.assert_array_equal(a, b)
    assert all(run.steps == 8 for run in controller.runs)  # the workspace never moved
    controller.shutdown()


def test_mp4_decodes_with_even_sides_and_the_planned_frames(tmp_path, capsys, qapp) -> None:
    imageio_ffmpeg = pytest.importorskip("imageio_ffmpeg")  # the [video] extra
    out = tmp_path / "moons.mp4"
    code, text, err = cli(capsys, "train", *MOONS, "--steps", "20", "--steps-per-frame", "10",
                          "--size", "321x241", "--out", str(out))
    assert (code, err) == (0, "")
    reader = imageio_ffmpeg.read_frames(str(out))
    meta = next(reader)
    assert meta["size"] == (322, 242) and meta["pix_fmt"].startswith("yuv420p")  # padded
    frames = [np.frombuffer(f, dtype=np.uint8) for f in reader]
    assert len(frames) == 3 and not np.array_equal(frames[0], frames[2])


def test_a_missing_mp4_encoder_is_one_line_before_any_step(tmp_path, capsys, monkeypatch):
    monkeypatch.setitem(sys.modules, "imageio_ffmpeg", None)  # import fails, as uninstalled
    code, text, err = cli(capsys, "train", *MOONS, "--steps", "20", "--out",
                          str(tmp_path / "moons.mp4"))
    assert code == 2 and text == ""
    assert err.count("\n") == 1 and "MP4 export needs imageio-ffmpeg" in err
    assert "pip install" in err
    assert list(tmp_path.iterdir()) == []


def test_a_failed_export_leaves_no_partial_file_and_the_old_one_whole(tmp_path, capsys, qapp,
                                                                       monkeypatch) -> None:
    old = tmp_path / "moons.gif"
    old.write_bytes(b"the old film")

    def disk_full(self):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr("core.animation.AnimationWriter._save_pillow", disk_full)
    code, text, err = cli(capsys, "train", *MOONS, "--steps", "20", "--steps-per-frame", "10",
                          "--size", "200x150", "--out", str(old))
    assert code == 2 and text == ""
    assert err.count("\n") == 1 and "No space left on device" in err
    assert old.read_bytes() == b"the old film"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["moons.gif"]


BAD = [
    (["--out", "a.gif", "--fps", "0"], "--fps must be 1 or more (got 0)"),
    (["--out", "a.gif", "--fps", "60"], "a GIF plays at most 50 frames per second"),
    (["--out", "a.mp4", "--fps", "61"], "frames per second must be a whole number from 1 to 60"),
    (["--out", "a.gif", "--steps-per-frame", "0"], "--steps-per-frame must be 1 or more"),
    (["--out", "a.gif", "--size", "big"], "--size must be two whole numbers like 800,600"),
    (["--out", "a.gif", "--size", "5000x5000"], "size must be from 16 to 4000"),
    (["--out", "a.gif", "--size", "4000x3000", "--steps", "1000", "--steps-per-frame", "1"],
     "too much to draw"),
    (["--out", "a.gif", "--frames", "1"], "the number of frames must be from 2"),
    (["--out", "a.gif", "--steps", "0"], "nothing moves: every run takes 0 steps; train at least"),
    (["--out", "a.gif", "--eval-every", "5"], "--eval-every goes with --json or the table"),
    (["--out", "a.avi"], "--out must end in .py (a PyTorch script) or .gif, .mp4"),
    (["--out", "a.json"], "--out must end in .py"),
    (["--fps", "5"], "--fps goes with an animation (--out FILE.gif, .mp4, .webp, .apng)\n"),
    (["--json", "--size", "300x200"], "--size goes with an animation"),
    (["--out", "a.py", "--frames", "5"], "--frames goes with an animation"),
    (["--out", "a.gif", "--json"], "--json: not allowed with argument --out"),
    (["--out", "a.gif", "--model", "Linear(2, 16), Tanhh()"], "unknown layer 'Tanhh'"),
    (["--out", "a.gif", "--dataset", "mons"], "unknown dataset 'mons'"),
    (["--out", "a.gif", "--optimizer", "SGD(lr=-1)"], "lr"),
    (["--out", "a.gif", "--freeze", "9.weight"], "no parameter '9.weight'"),
    (["--out", "a.gif", "--scheduler", "StepLR(step_size=0)"], "StepLR"),
    (["--out", "no/such/folder/a.gif"], "the folder"),
    (["--out", "FOLDER.gif"], "it is a folder"),
]


@pytest.mark.parametrize("argv, words", BAD)
def test_mistakes_exit_2_with_one_line_and_write_nothing(tmp_path, capsys, monkeypatch, argv,
                                                         words) -> None:
    monkeypatch.chdir(tmp_path)
    if "FOLDER.gif" in argv:
        (tmp_path / "FOLDER.gif").mkdir()
    before = sorted(p.name for p in tmp_path.iterdir())
    code, text, err = cli(capsys, "train", "--dataset", "moons", "--n", "40", *argv)
    assert code == 2 and text == ""
    assert err.count("\n") == 1 and err.startswith("optimizer-playground: error: ")
    assert words in err, err
    assert sorted(p.name for p in tmp_path.iterdir()) == before


def test_the_request_is_checked_without_qt_and_nothing_is_trained() -> None:
    """Every check of a film is core's (no Qt): main.py loads the drawing code only for a
    request that passed; the session it hands over is not stepped."""
    parser = argparse.ArgumentParser()
    add_train_arguments(parser)
    args = parser.parse_args(["--dataset", "moons", "--n", "40", "--steps", "30",
                              "--steps-per-frame", "7", "--size", "300,200", "--fps", "12",
                              "--out", "film.webp"])
    film = train_animation_request(args)
    assert (film.frame_count, film.steps_per_frame) == (6, 7)  # 0, 7, 14, 21, 28, 30
    assert film.options.size == (300, 200) and film.options.fps == 12
    assert [r.steps for r in film.session.runs] == [30, 30]
    args = parser.parse_args(["--out", "film.gif", "--size", "10x10"])
    with pytest.raises(PlaygroundError, match="size must be from 16"):
        train_animation_request(args)


@pytest.mark.parametrize("argv, words", [
    (["--help"], ["a PyTorch script or an animation", "a .png/.svg picture"]),
    (["train", "--help"], ["--out FILE", "FILE.gif, .mp4, .webp or .apng", "animations:",
                           "--fps N", "--steps-per-frame K", "--frames N", "--size W,H",
                           "imageio-ffmpeg", "with --session, each run's own count"]),
    (["landscape", "--help"], ["--out FILE", ".png or .svg", "--size W,H",
                               "pca's directions come from them"]),
])
def test_help_lists_the_outputs_and_their_options(capsys, argv, words) -> None:
    with pytest.raises(SystemExit) as done:
        main.main(argv)
    assert done.value.code == 0
    text = " ".join(capsys.readouterr().out.split())  # argparse wraps lines anywhere
    for word in words:
        assert word in text, word


def test_the_film_replays_what_train_json_trains_bit_for_bit(capsys) -> None:
    """The film's runs are the ones `train --json` trains from the same options (minibatches,
    a frozen layer, a scheduler and clipping given per run): the same losses, lr and final
    parameters."""
    import json

    import torch

    from core.model_animation import ModelReplay, plan_model_animation

    argv = ["--dataset", "moons", "--n", "60", "--batch-size", "16", "--steps", "12",
            "--freeze", "0", "--optimizer", "SGD(lr=0.3, momentum=0.9)", "--scheduler",
            "StepLR(step_size=5, gamma=0.5)", "--optimizer", "Adam(lr=0.02)", "--clip-norm",
            "0.5"]
    code, text, _ = cli(capsys, "train", *argv, "--json")
    assert code == 0
    trained = json.loads(text)["runs"]
    parser = argparse.ArgumentParser()
    add_train_arguments(parser)
    film = train_animation_request(parser.parse_args([*argv, "--steps-per-frame", "5",
                                                      "--out", "film.gif"]))
    replay = ModelReplay(film.session, plan_model_animation(film.session, film.options))
    replay.run_to_end()
    assert replay.recorded == film.frame_count == 4  # steps 0, 5, 10, 12
    for run, mine in zip(trained, replay.runs):
        assert run["trajectory"]["loss"] == [float(v) for v in mine.trajectory.loss]
        assert run["trajectory"]["lr"] == [float(v) for v in mine.trajectory.lr]
        for name, value in run["final_parameters"].items():
            assert torch.equal(torch.tensor(value, dtype=torch.float64),
                               mine.parameters[name].detach()), name
    assert trained[0]["scheduler"].startswith("StepLR") and trained[1]["clip_norm"] == 0.5
