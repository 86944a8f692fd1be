"""`python main.py train` / `landscape` through main.main: exit 0 and one JSON object, or exit 2
and one line on stderr.

These need main.py to wire core/model_cli.py in, as it does `autograd`:
add_train_arguments / add_landscape_arguments on two subparsers ("train", "landscape"), and
run_train_command / run_landscape_command as their handlers. They fail until it does.
"""

from __future__ import annotations

import json

import pytest

import main


def run_main(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main.main(list(argv))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_train_json_through_main(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run_main(capsys, "train", "--dataset", "moons", "--n", "40", "--steps",
                              "5", "--optimizer", "Adam(lr=0.01)", "--freeze", "0", "--json")
    assert code == 0 and err == ""
    data = json.loads(out)
    run = data["runs"][0]
    assert run["frozen"] == ["0.weight", "0.bias"] and len(run["trajectory"]["loss"]) == 6
    assert run["final_parameters"]["0.weight"] == run["initial_parameters"]["0.weight"]


def test_landscape_json_through_main(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run_main(capsys, "landscape", "--dataset", "line", "--model",
                            "linear-regression", "--directions", "exact", "--grid", "3")
    assert code == 0
    data = json.loads(out)
    assert (data["x"]["name"], data["y"]["name"]) == ("0.weight", "0.bias")


@pytest.mark.parametrize("argv", [["train", "--dataset", "mons"],
                                  ["train", "--model", "Linear(2, 16), Tanhh()"],
                                  ["train", "--freeze", "9.weight"],
                                  ["landscape", "--out", "x.gif"]])
def test_bad_input_exits_2_with_one_line(capsys: pytest.CaptureFixture[str], argv) -> None:
    code, out, err = run_main(capsys, *argv)
    assert code == 2 and out == ""
    assert err.count("\n") == 1 and err.startswith("optimizer-playground: error: ")


def test_landscape_out_into_a_missing_folder_is_one_line_naming_the_file(capsys, tmp_path):
    import main

    target = tmp_path / "no" / "such" / "landscape.csv"
    code = main.main(["landscape", "--dataset", "line", "--model", "Linear(1, 1)",
                      "--directions", "exact", "--grid", "5", "--out", str(target)])
    err = capsys.readouterr().err
    assert code == 2
    assert err.count("\n") == 1 and f"cannot write {target}" in err and ".tmp" not in err
