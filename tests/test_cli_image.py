"""`main.py export --out plot.png|plot.svg`: the surface picture, headless."""

from __future__ import annotations

import numpy as np
import pytest
from PySide6.QtGui import QColor, QImage

import main
from core.session import PALETTE


def _pixels(path) -> np.ndarray:
    image = QImage(str(path)).convertToFormat(QImage.Format.Format_RGB888)
    data = np.frombuffer(image.constBits(), np.uint8).reshape(image.height(),
                                                               image.bytesPerLine())
    # copied: the QImage owns that memory and goes away with this function
    return data[:, : image.width() * 3].reshape(image.height(), image.width(), 3).copy()


def _count_near(pixels: np.ndarray, colour: str, tolerance: int = 30) -> int:
    c = QColor(colour)
    target = np.array([c.red(), c.green(), c.blue()])
    return int((np.abs(pixels.astype(int) - target).max(axis=2) <= tolerance).sum())


def test_png_has_the_requested_size_and_every_trajectory(tmp_path, capsys, qapp):
    out = tmp_path / "race.png"
    code = main.main(["export", "--surface", "rosenbrock", "--steps", "400", "--size", "640,480",
                      "--optimizer", "SGD(lr=0.001, momentum=0.9)", "--optimizer", "Adam(lr=0.05)",
                      "--out", str(out)])
    assert code == 0 and "wrote" in capsys.readouterr().out
    image = QImage(str(out))
    assert (image.width(), image.height()) == (640, 480)
    pixels = _pixels(out)
    for colour in PALETTE[:2]:  # the two runs' colours are drawn
        assert _count_near(pixels, colour) > 40, colour
    assert _count_near(pixels, PALETTE[2]) < _count_near(pixels, PALETTE[0])  # no third run


def test_svg_is_an_svg_picture_with_paths(tmp_path, capsys, qapp):
    out = tmp_path / "race.svg"
    assert main.main(["export", "--surface", "himmelblau", "--steps", "50",
                      "--out", str(out)]) == 0
    text = out.read_text()
    assert text.lstrip().startswith("<?xml") or "<svg" in text[:500]
    assert text.count("<path") > 10


@pytest.mark.parametrize("target", ["/nonexistent-dir/plot.png", "/nonexistent-dir/plot.svg"])
def test_unwritable_image_path_is_one_clear_line(target, capsys, qapp):
    code = main.main(["export", "--steps", "1", "--out", target])
    err = capsys.readouterr().err
    assert code == 2
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err


def test_export_view_3d_refuses_another_format_and_a_display_without_gl(tmp_path, capsys):
    import main

    assert main.main(["export", "--surface", "bowl", "--view", "3d", "--out",
                      str(tmp_path / "a.svg")]) == 2
    assert "--view 3d writes a .png" in capsys.readouterr().err
    # The test process runs Qt offscreen: no OpenGL there, and the command says so in one line.
    assert main.main(["export", "--surface", "bowl", "--steps", "5", "--view", "3d", "--out",
                      str(tmp_path / "a.png")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "OpenGL" in err[0]
    assert list(tmp_path.iterdir()) == []


# --- animations (issue 12): main.py export --out race.gif|race.mp4|race.webp|race.apng ----------


def test_gif_export_has_the_planned_frames_size_delays_and_loop(tmp_path, capsys, qapp):
    from PIL import Image, ImageSequence

    out = tmp_path / "race.gif"
    assert main.main(["export", "--surface", "himmelblau", "--steps", "40", "--steps-per-frame",
                      "5", "--fps", "25", "--size", "320x240", "--optimizer", "Adam(lr=0.1)",
                      "--out", str(out)]) == 0
    assert "9 frames, 5 steps per frame" in capsys.readouterr().out
    with Image.open(out) as gif:
        frames = [(f.info["duration"], np.asarray(f.convert("RGB")))
                  for f in ImageSequence.Iterator(gif)]
        assert gif.size == (320, 240) and gif.info["loop"] == 0
    assert len(frames) == 9 and all(d == 40 for d, _ in frames)  # 25 fps
    assert _count_near(frames[-1][1], PALETTE[0]) > _count_near(frames[0][1], PALETTE[0])


def test_frames_option_sets_the_length(tmp_path, capsys, qapp):
    import imageio_ffmpeg

    out = tmp_path / "race.mp4"
    assert main.main(["export", "--steps-per-frame", "4", "--frames", "6", "--size", "161,121",
                      "--out", str(out)]) == 0
    reader = imageio_ffmpeg.read_frames(str(out))
    meta = next(reader)
    assert meta["size"] == (162, 122) and meta["pix_fmt"].startswith("yuv420p")
    assert sum(1 for _ in reader) == 6


@pytest.mark.parametrize("argv, words", [
    (["--out", "race.gif", "--fps", "0"], "--fps must be 1 or more"),
    (["--out", "race.gif", "--fps", "60"], "at most 50"),
    (["--out", "race.mp4", "--steps-per-frame", "0"], "--steps-per-frame must be 1 or more"),
    (["--out", "race.gif", "--size", "5000x5000"], "size must be from 16 to 4000"),
    (["--out", "race.gif", "--size", "4000x3000", "--steps", "1000"], "too much to draw"),
    (["--out", "race.gif", "--size", "big"], "--size must be two whole numbers"),
    (["--out", "race.avi"], "must end in"),
    (["--out", "race.png", "--fps", "10"], "--fps goes with an animation"),
    (["--out", "race.gif", "--view", "3d"], "--view 3d writes a .png"),
    (["--out", "race.gif", "--frames", "1"], "number of frames"),
    (["--out", "race.svg", "--curves"], "--curves goes with an animation"),
    (["--out", "race.gif", "--steps", "0"], "nothing moves"),
])
def test_bad_animation_options_exit_2_with_one_line(tmp_path, capsys, qapp, argv, words,
                                                     monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert main.main(["export", *argv]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and words in err[0], err
    assert list(tmp_path.iterdir()) == []  # nothing written, not even a temporary file


def test_unwritable_animation_keeps_nothing_and_an_old_file_stays(tmp_path, capsys, qapp,
                                                                  monkeypatch):
    assert main.main(["export", "--steps", "5", "--out", "/nonexistent-dir/race.gif"]) == 2
    assert "does not exist" in capsys.readouterr().err
    (tmp_path / "folder.gif").mkdir()
    assert main.main(["export", "--steps", "5", "--out", str(tmp_path / "folder.gif")]) == 2
    assert "it is a folder" in capsys.readouterr().err
    old = tmp_path / "race.gif"
    old.write_bytes(b"the old film")

    def disk_full(self):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr("core.animation.AnimationWriter._save_pillow", disk_full)
    assert main.main(["export", "--steps", "5", "--out", str(old)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "No space left on device" in err[0]
    assert old.read_bytes() == b"the old film"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["folder.gif", "race.gif"]
