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
