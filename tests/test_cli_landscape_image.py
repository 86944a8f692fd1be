"""`landscape --out FILE.png|.svg`: the landscape and the runs' paths drawn headless."""

from __future__ import annotations

import argparse
import xml.etree.ElementTree as ET

import numpy as np
import pytest
from PySide6.QtGui import QImage

from core.errors import PlaygroundError
from core.model_cli import (add_landscape_arguments, compute_landscape, landscape_report,
                            run_landscape_command)
from gui.model.landscape_image import drawn_paths, run_landscape_picture_command


def parse(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    add_landscape_arguments(parser)
    return parser.parse_args(list(argv))


PCA = ("--dataset", "moons", "--n", "60", "--model", "small-mlp", "--steps", "20",
       "--directions", "pca", "--grid", "21", "--cover-paths")


def test_png_has_the_asked_size_and_shows_a_picture(tmp_path) -> None:
    out = tmp_path / "landscape.png"
    assert run_landscape_picture_command(parse(*PCA, "--out", str(out), "--size",
                                               "640,480")) == f"wrote {out}"
    image = QImage(str(out))
    assert not image.isNull() and (image.width(), image.height()) == (640, 480)
    rgb = image.convertToFormat(QImage.Format.Format_RGB32)   # (kept: the bits are its own)
    pixels = np.frombuffer(rgb.constBits(), dtype=np.uint32).copy()
    assert len(np.unique(pixels)) > 100   # a heatmap, contours, paths and text: not one colour
    rows = pixels.reshape(480, 640)
    white = np.all(rows == rows[0, 0], axis=1)
    assert rows[0, 0] & 0xFFFFFF == 0xFFFFFF and white[:24].sum() < 24   # fills the picture:
    assert not white[int(0.9 * 480):].all()         # the caption wraps instead of shrinking it


def test_svg_parses_and_holds_the_heatmap_and_the_paths(tmp_path) -> None:
    out = tmp_path / "landscape.svg"
    run_landscape_picture_command(parse(*PCA, "--out", str(out), "--size", "800x600"))
    root = ET.parse(out).getroot()
    assert root.tag.endswith("svg")
    tags = [el.tag.rsplit("}", 1)[-1] for el in root.iter()]
    assert "image" in tags                  # the heatmap is an embedded image
    assert tags.count("path") + tags.count("polyline") >= 3   # contours and two paths
    text = "".join(el.text or "" for el in root.iter())
    assert "torch.no_grad()" in text and "PCA" in text


def test_the_drawn_paths_are_the_reports_paths() -> None:
    args = parse(*PCA)
    result = compute_landscape(args)
    report = landscape_report(args)
    drawn = drawn_paths(result.landscape, result.titles, result.colors, result.paths)
    assert [p.title for p in drawn] == [p["run"] for p in report["paths"]]
    for path, reported in zip(drawn, report["paths"]):
        np.testing.assert_allclose(path.x, reported["x"], rtol=1e-12)
        np.testing.assert_allclose(path.y, reported["y"], rtol=1e-12)
        assert len(path.x) == 21


@pytest.mark.parametrize("command, argv, message", [
    (run_landscape_picture_command, ["--out", "x.png", "--size", "10,10"],
     "--size must be between 16 and 10000"),
    (run_landscape_picture_command, ["--out", "x.png", "--size", "big"],
     "--size must be two whole numbers"),
    (run_landscape_picture_command, ["--out", "x.gif"],
     "--out must end in .json or .csv, or .png or .svg"),
    (run_landscape_picture_command, ["--out", "no/such/x.png"], "does not exist"),
    (run_landscape_command, ["--out", "x.csv", "--size", "800,600"],
     "--size goes with a picture"),
    (run_landscape_command, ["--out", "x.svg"], "pictures of the landscape are made by the app"),
])
def test_bad_picture_options_are_one_line_before_any_work(tmp_path, command, argv,
                                                          message) -> None:
    argv = [str(tmp_path / a) if "x." in a else a for a in argv]
    with pytest.raises(PlaygroundError) as caught:
        command(parse("--dataset", "moons", "--n", "20", *argv))
    assert message in str(caught.value) and "\n" not in str(caught.value)
    assert not any(tmp_path.iterdir())


# --- through main.py: `python main.py landscape ... --out x.png|x.svg` ---------------------------


def main_cli(capsys, *argv: str) -> tuple[int, str, str]:
    import main

    code = main.main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_main_draws_a_png_of_the_asked_size(tmp_path, capsys) -> None:
    out = tmp_path / "landscape.png"
    code, text, err = main_cli(capsys, "landscape", *PCA, "--out", str(out), "--size", "500x360")
    assert (code, text, err) == (0, f"wrote {out}\n", "")
    image = QImage(str(out))
    assert not image.isNull() and (image.width(), image.height()) == (500, 360)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["landscape.png"]


def test_main_draws_an_svg_that_parses(tmp_path, capsys) -> None:
    out = tmp_path / "landscape.SVG"  # the suffix in any case
    code, _, err = main_cli(capsys, "landscape", "--dataset", "line", "--model",
                            "linear-regression", "--directions", "exact", "--grid", "11",
                            "--steps", "5", "--out", str(out))
    assert (code, err) == (0, "")
    root = ET.parse(out).getroot()
    assert root.tag.endswith("svg") and root.get("viewBox") == "0 0 1000 800"  # default size
    text = "".join(el.text or "" for el in root.iter())
    assert "0.weight" in text and "0.bias" in text   # the exact plane's axes


@pytest.mark.parametrize("target, words", [
    ("no/such/folder/x.png", "the folder"),
    ("FOLDER.svg", "it is a folder"),
    ("x.png --size 8x8", "--size must be between 16 and 10000"),
    ("x.gif", "--out must end in .json or .csv, or .png or .svg"),
])
def test_main_refuses_an_unwritable_picture_in_one_line_and_writes_nothing(
        tmp_path, capsys, monkeypatch, target, words) -> None:
    monkeypatch.chdir(tmp_path)
    if target == "FOLDER.svg":
        (tmp_path / "FOLDER.svg").mkdir()
    before = sorted(p.name for p in tmp_path.iterdir())
    code, text, err = main_cli(capsys, "landscape", "--dataset", "moons", "--n", "20",
                               "--out", *target.split())
    assert code == 2 and text == ""
    assert err.count("\n") == 1 and err.startswith("optimizer-playground: error: ")
    assert words in err, err
    assert sorted(p.name for p in tmp_path.iterdir()) == before
