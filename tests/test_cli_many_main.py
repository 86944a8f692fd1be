"""`python main.py basins` / `sweep` through main.main: exit 0 and one JSON object, or exit 2 and
one line on stderr.

These need main.py to wire core/many_cli.py in, as it does `autograd` (add_basins_arguments /
add_sweep_arguments on two subparsers, run_basins_command / run_sweep_command as handlers); the
two JSON tests fail until it does.
"""

from __future__ import annotations

import json

import pytest

import main


def run_main(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main.main(list(argv))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_basins_json_through_main(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run_main(capsys, "basins", "--surface", "himmelblau", "--optimizer",
                              "Adam(lr=0.1)", "--grid", "4", "--steps", "60",
                              "--x-range", "-4,4", "--y-range", "-4,4", "--json")
    assert code == 0 and err == ""
    data = json.loads(out)
    assert data["x"][0] == -4.0 and len(data["minimum"]) == 16


def test_sweep_json_through_main(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run_main(capsys, "sweep", "--formula", "-exp(-(x**2 + y**2)) + x**2",
                            "--optimizer", "SGD", "--lr", "1e-3:1:4", "--param",
                            "momentum=0:0.9:2", "--steps", "30", "--start", "-1,0.5", "--json")
    assert code == 0
    data = json.loads(out)
    assert len(data["final_loss"]) == 8 and data["start"] == [-1.0, 0.5]


@pytest.mark.parametrize("argv", [
    ["basins", "--surface", "bowl", "--optimizer", "LBFGS", "--grid", "4"],
    ["basins", "--surface", "bowl", "--grid", "4"],  # no --optimizer
    ["sweep", "--surface", "bowl", "--optimizer", "SGD", "--lr", "0:1:3"],
    ["basins", "--surface", "bowl", "--optimizer", "SGD", "--out", "b.png"],
])
def test_bad_input_through_main_is_exit_2_and_one_line(capsys: pytest.CaptureFixture[str],
                                                        argv: list[str]) -> None:
    code, out, err = run_main(capsys, *argv)
    assert code == 2 and out == ""
    assert err.startswith("optimizer-playground: error: ") and err.count("\n") == 1


def test_basins_out_into_a_missing_folder_is_one_line_naming_the_file(capsys, tmp_path):
    target = tmp_path / "no" / "such" / "basins.json"
    code, out, err = run_main(capsys, "basins", "--surface", "himmelblau", "--optimizer",
                              "Adam(lr=0.1)", "--grid", "2", "--steps", "5", "--out", str(target))
    assert code == 2 and out == ""
    assert err.count("\n") == 1 and f"cannot write {target}" in err and ".tmp" not in err


def test_a_basins_film_through_main_decodes_with_the_planned_frames(capsys, tmp_path):
    import numpy as np
    from PIL import Image, ImageSequence

    out = tmp_path / "film.gif"
    code, text, err = run_main(capsys, "basins", "--surface", "himmelblau", "--optimizer",
                               "Adam(lr=0.1)", "--grid", "12", "--steps", "40", "--out",
                               str(out), "--fps", "5", "--steps-per-frame", "10", "--size",
                               "200x160", "--dtype", "float32")
    assert code == 0 and err == "" and "5 frames" in text
    with Image.open(out) as film:
        frames = [np.asarray(f.convert("RGB")) for f in ImageSequence.Iterator(film)]
    assert len(frames) == 5 and frames[0].shape == (160, 200, 3)


def test_lrfind_through_main(capsys):
    code, out, err = run_main(capsys, "lrfind", "--n", "40", "--steps", "20", "--json")
    assert code == 0 and err == ""
    assert json.loads(out)["optimizer"].startswith("SGD")
