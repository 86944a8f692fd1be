"""`main.py basins` and `main.py sweep` through the functions main.py wires in (core/many_cli.py).

main.py turns a ValueError (BatchError is a PlaygroundError) into one line on stderr and exit
status 2; these tests check the text and the errors the functions give it. Through main.main
itself: tests/test_cli_many_main.py.
"""

from __future__ import annotations

import argparse
import csv
import io
import json
from pathlib import Path

import numpy as np
import pytest

from core.errors import PlaygroundError
from core.many_cli import (add_basins_arguments, add_sweep_arguments, run_basins_command,
                           run_sweep_command)
from core.run import Run
from core.surfaces import get_surface


def basins_cli(*argv: str) -> str:
    p = argparse.ArgumentParser(prog="basins")
    add_basins_arguments(p)
    return run_basins_command(p.parse_args(list(argv)))


def sweep_cli(*argv: str) -> str:
    p = argparse.ArgumentParser(prog="sweep")
    add_sweep_arguments(p)
    return run_sweep_command(p.parse_args(list(argv)))


def single(surface, call: tuple[str, dict], start, steps: int) -> Run:
    run = Run(surface, call[0], call[1], start=(float(start[0]), float(start[1])))
    run.step(steps)
    return run


def test_basins_json_has_the_issues_keys_and_each_cell_is_main_py_run() -> None:
    data = json.loads(basins_cli("--surface", "himmelblau", "--optimizer", "Adam(lr=0.1)",
                                 "--grid", "6", "--steps", "150", "--json"))
    assert {"x", "y", "final_x", "final_y", "final_loss", "status", "minimum",
            "steps_to_converge"} <= set(data)
    assert len(data["x"]) == len(data["y"]) == 6 and len(data["status"]) == 36
    surface = get_surface("himmelblau")
    for k in (0, 14, 35):
        j, i = divmod(k, 6)  # row-major: y then x
        run = single(surface, ("Adam", {"lr": 0.1}), (data["x"][i], data["y"][j]), 150)
        assert data["final_x"][k] == run.last_point[0]
        assert data["final_loss"][k] == run.trajectory.loss[-1]
        assert data["status"][k] == run.status.value
        assert data["steps_to_converge"][k] == run.converged_at
    assert all(-1 <= m < len(data["minima"]) for m in data["minimum"])


def test_basins_ranges_csv_written_atomically(tmp_path: Path) -> None:
    out = tmp_path / "b.csv"
    text = basins_cli("--surface", "bowl", "--optimizer", "SGD(lr=0.1)", "--grid", "4",
                      "--steps", "50", "--x-range=-1,1", "--y-range=0,2", "--out", str(out))
    assert text == f"wrote {out}"
    rows = list(csv.DictReader(io.StringIO(out.read_text())))
    assert len(rows) == 16
    assert float(rows[0]["start_x"]) == -1.0 and float(rows[-1]["start_y"]) == 2.0
    assert {r["status"] for r in rows} <= {"running", "converged", "diverged", "frozen"}
    assert list(tmp_path.iterdir()) == [out]  # no temporary file left


def test_basins_summary_names_the_minima() -> None:
    text = basins_cli("--surface", "himmelblau", "--optimizer", "Adam(lr=0.1)", "--grid", "5",
                      "--steps", "100")
    assert "minimum 0 (known) at (3, 2)" in text and "converged" in text


@pytest.mark.parametrize("suffix", [".png", ".svg"])
def test_basins_pictures_are_refused_before_any_work(tmp_path: Path, suffix: str) -> None:
    out = tmp_path / f"b{suffix}"
    with pytest.raises(PlaygroundError, match="not yet available") as info:
        basins_cli("--surface", "bowl", "--optimizer", "SGD", "--grid", "512", "--steps",
                   "1000", "--out", str(out))
    assert "\n" not in str(info.value) and not out.exists()


@pytest.mark.parametrize("argv, match", [
    (["--optimizer", "LBFGS"], "L-BFGS shares one history"),
    (["--optimizer", "SGD", "--grid", "1"], "grid"),
    (["--optimizer", "SGD", "--x-range=2,1"], "x range"),
    (["--optimizer", "SGD", "--x-range", "a,b"], "--x-range"),
    (["--optimizer", "Sgd(lr=-1)"], "lr"),
    (["--optimizer", "SGD", "--out", "b.txt"], ".json or .csv"),
])
def test_bad_basins_input_is_one_line(argv: list[str], match: str, tmp_path: Path,
                                      monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    with pytest.raises(PlaygroundError, match=match) as info:
        basins_cli("--surface", "bowl", "--steps", "5", "--grid", "4", *argv)
    assert "\n" not in str(info.value)
    assert list(tmp_path.iterdir()) == []


def test_sweep_json_is_log_spaced_and_cells_are_main_py_run() -> None:
    data = json.loads(sweep_cli("--surface", "rosenbrock", "--optimizer", "SGD",
                                "--lr", "1e-5:1:6", "--steps", "100", "--json"))
    assert np.allclose(data["lr"], [1e-5, 1e-4, 1e-3, 1e-2, 1e-1, 1.0], rtol=1e-12)
    surface = get_surface("rosenbrock")
    for k in range(6):
        run = single(surface, ("SGD", {"lr": data["lr"][k]}), surface.start, 100)
        assert data["status"][k] == run.status.value
        if len(run.trajectory):
            assert data["final_loss"][k] == run.trajectory.loss[-1]
    ok = [k for k in range(6) if data["status"][k] != "diverged"]
    best = min(ok, key=lambda k: data["final_loss"][k])
    assert data["best_lr"] == data["lr"][best] and data["best"] == {"lr": data["lr"][best]}


def test_sweep_with_a_param_is_a_linear_trainability_map(tmp_path: Path) -> None:
    out = tmp_path / "map.json"
    sweep_cli("--surface", "bowl", "--optimizer", "SGD", "--lr", "0.01:1.5:5",
              "--param", "momentum=0:0.9:4", "--steps", "60", "--start=-2,1", "--out", str(out))
    data = json.loads(out.read_text())
    assert data["param"] == "momentum" and np.allclose(data["momentum"], [0, 0.3, 0.6, 0.9])
    assert len(data["final_loss"]) == 20
    run = single(get_surface("bowl"), ("SGD", {"lr": data["lr"][2], "momentum": 0.6}),
                 (-2.0, 1.0), 60)
    assert data["status"][2 * 5 + 2] == run.status.value
    assert data["final_loss"][2 * 5 + 2] == run.trajectory.loss[-1]


def test_sweep_table_marks_the_best() -> None:
    text = sweep_cli("--surface", "bowl", "--optimizer", "SGD", "--lr", "0.01:1:3",
                     "--steps", "40")
    assert text.count("<- best") == 1 and "lowest final loss" in text


@pytest.mark.parametrize("argv, match", [
    (["--lr", "0:1:5"], "logarithmically"),
    (["--lr", "1e-3:1"], "LOW:HIGH:COUNT"),
    (["--lr", "1e-3:1:5", "--param", "momentum"], "NAME=LOW:HIGH:COUNT"),
    (["--lr", "1e-3:1:5", "--param", "rho=0:1:3"], "no hyperparameter"),
    (["--lr", "1e-3:1:5", "--start", "1"], "--start"),
    (["--lr", "1e-3:1:5", "--out", "s.svg"], "not yet available"),
])
def test_bad_sweep_input_is_one_line(argv: list[str], match: str) -> None:
    with pytest.raises(PlaygroundError, match=match) as info:
        sweep_cli("--surface", "bowl", "--optimizer", "SGD", "--steps", "5", *argv)
    assert "\n" not in str(info.value)


def test_importing_the_cli_loads_no_torch() -> None:
    import subprocess
    import sys

    code = "import sys, core.many_cli; print('torch' in sys.modules)"
    root = Path(__file__).resolve().parents[1]
    out = subprocess.run([sys.executable, "-c", code], cwd=root, capture_output=True,
                         text=True, check=True)
    assert out.stdout.strip() == "False"


# --- model mode: the options of train -----------------------------------------------------------

def train_cli(*argv: str) -> dict:
    from core.model_cli import add_train_arguments, run_train_command

    p = argparse.ArgumentParser(prog="train")
    add_train_arguments(p)
    return json.loads(run_train_command(p.parse_args([*argv, "--json"])))


MODEL = ("--model", "Linear(2, 8), Tanh(), Linear(8, 1)", "--n", "60", "--batch-size", "16")


def test_a_model_sweep_cell_is_main_py_train_with_that_lr() -> None:
    data = json.loads(sweep_cli(*MODEL, "--optimizer", "SGD(momentum=0.9)", "--lr", "1e-3:10:5",
                                "--steps", "30", "--tolerance", "0.6", "--json"))
    assert data["data"].startswith("moons, 48 training rows, batches of 16")
    for k in (0, 2, 4):
        lr = data["lr"][k]
        train = train_cli(*MODEL, "--optimizer", f"SGD(lr={lr!r}, momentum=0.9)", "--steps", "30")
        run = train["runs"][0]
        assert data["final_loss"][k] == run["trajectory"]["loss"][-1]
        assert data["status"][k] == run["status"]
        below = [s for s, v in zip(run["trajectory"]["step"], run["trajectory"]["loss"])
                 if v <= 0.6]
        assert data["steps_to_reach"][k] == (below[0] if below else None)
    assert data["loss_tolerance"] == 0.6 and data["best_lr"] in data["lr"]


def test_a_model_map_of_a_layers_own_lr_is_log_spaced(tmp_path: Path) -> None:
    out = tmp_path / "map.csv"
    sweep_cli(*MODEL, "--optimizer", "Adam", "--lr", "1e-3:1e-1:3", "--param", "lr:0=1e-4:1e-2:3",
              "--steps", "10", "--freeze", "2.bias", "--out", str(out))
    rows = list(csv.DictReader(io.StringIO(out.read_text())))
    assert len(rows) == 9 and [float(r["lr:0"]) for r in rows[::3]] == pytest.approx(
        [1e-4, 1e-3, 1e-2], rel=1e-12)
    assert sum(r["best"] == "1" for r in rows) == 1


@pytest.mark.parametrize("argv, match", [
    (["--surface", "bowl", "--seed", "3"], "--seed is a model option"),
    (["--surface", "bowl", "--tolerance", "0.1"], "--tolerance is a model option"),
    (["--start", "1,2", *MODEL], "--start is for a surface"),
    (["--optimizer", "Adam", *MODEL], "one --optimizer"),
    (["--param", "lr:5=1e-3:1:2", *MODEL], "no layer 5"),
    (["--freeze", "7.weight", *MODEL], "7.weight"),
])
def test_bad_model_sweep_input_is_one_line(argv: list[str], match: str) -> None:
    with pytest.raises(PlaygroundError, match=match) as info:
        sweep_cli("--optimizer", "SGD", "--lr", "1e-3:1:2", "--steps", "3", *argv)
    assert "\n" not in str(info.value)


def lrfind_cli(*argv: str) -> str:
    from core.many_cli import add_lrfind_arguments, run_lrfind_command

    p = argparse.ArgumentParser(prog="lrfind")
    add_lrfind_arguments(p)
    return run_lrfind_command(p.parse_args(list(argv)))


def test_lrfind_json_ramps_the_lr_and_names_its_rules(tmp_path: Path) -> None:
    data = json.loads(lrfind_cli(*MODEL, "--optimizer", "Adam", "--low", "1e-5", "--high", "1",
                                 "--steps", "30", "--json"))
    assert np.allclose(data["lr"], np.geomspace(1e-5, 1.0, 30)[:len(data["lr"])], rtol=1e-12)
    assert data["schedule"].startswith("ExponentialLR(gamma=")
    assert set(data["suggestions"]) == {"steepest", "valley"}
    assert all(s["rule"] for s in data["suggestions"].values())
    text = lrfind_cli(*MODEL, "--steps", "20", "--rule", "steepest")
    assert "steepest:" in text and text.count("<- --rule") == 1 and "SGD" in text
    out = tmp_path / "lr.csv"
    assert lrfind_cli(*MODEL, "--steps", "10", "--out", str(out)) == f"wrote {out}"
    assert out.read_text().startswith("step,lr,loss,smoothed_loss,suggested")


# --- one torch thread, --dtype, films ---------------------------------------------------------


def test_the_commands_run_torch_on_one_thread_and_put_the_count_back(monkeypatch) -> None:
    import torch

    import core.lr_finder
    import core.many

    seen: dict[str, int] = {}
    for module, name in ((core.many, "basins"), (core.many, "lr_sweep"),
                         (core.lr_finder, "range_test")):
        real = getattr(module, name)

        def spy(*args, _real=real, _name=name, **kwargs):
            seen[_name] = torch.get_num_threads()
            return _real(*args, **kwargs)

        monkeypatch.setattr(module, name, spy)
    before = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        basins_cli("--surface", "bowl", "--optimizer", "SGD", "--grid", "3", "--steps", "5",
                   "--json")
        sweep_cli("--surface", "bowl", "--optimizer", "SGD", "--lr", "1e-3:1:3", "--steps", "5",
                  "--json")
        lrfind_cli("--n", "40", "--steps", "10", "--json")
        assert seen == {"basins": 1, "lr_sweep": 1, "range_test": 1}
        assert torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(before)


def test_dtype_float32_is_said_in_the_json_and_close_to_float64() -> None:
    args = ("--surface", "himmelblau", "--optimizer", "Adam(lr=0.1)", "--grid", "8",
            "--steps", "200", "--json")
    exact = json.loads(basins_cli(*args))
    fast = json.loads(basins_cli(*args, "--dtype", "float32"))
    assert exact["dtype"] == "float64" and fast["dtype"] == "float32"
    assert np.mean(np.array(exact["minimum"]) == np.array(fast["minimum"])) >= 0.95
    sweep = json.loads(sweep_cli("--surface", "bowl", "--optimizer", "SGD", "--lr", "1e-3:1:3",
                                 "--steps", "5", "--dtype", "float32", "--json"))
    assert sweep["dtype"] == "float32"
    with pytest.raises(PlaygroundError, match="float32 is for a surface") as info:
        sweep_cli("--optimizer", "SGD", "--lr", "1e-3:1:3", "--dtype", "float32", "--json")
    assert "\n" not in str(info.value)


def _film_cli(*argv: str) -> str:
    from gui.basin_animation import write_basin_film

    p = argparse.ArgumentParser(prog="basins")
    add_basins_arguments(p)
    return run_basins_command(p.parse_args(list(argv)), write_film=write_basin_film)


def test_a_basins_film_decodes_with_the_planned_frames_and_size(qapp, tmp_path: Path) -> None:
    from PIL import Image, ImageSequence

    out = tmp_path / "film.gif"
    text = _film_cli("--surface", "himmelblau", "--optimizer", "Adam(lr=0.1)", "--grid", "12",
                     "--steps", "60", "--out", str(out), "--fps", "5", "--steps-per-frame",
                     "20", "--size", "240x200")
    assert text == f"wrote {out} (4 frames, 20 steps per frame, 12 x 12 starts)"
    with Image.open(out) as film:
        frames = [np.asarray(f.convert("RGB")) for f in ImageSequence.Iterator(film)]
        assert film.info["duration"] == 200
    assert len(frames) == 4 and all(f.shape == (200, 240, 3) for f in frames)
    assert not np.array_equal(frames[0], frames[-1])


@pytest.mark.parametrize("argv, match", [
    (["--out", "b.json", "--fps", "5"], "--fps goes with an animation"),
    (["--steps-per-frame", "5"], "--steps-per-frame goes with an animation"),
    (["--out", "b.gif", "--grid", "300"], "from 2 to 256 starts"),
    (["--out", "b.gif", "--fps", "0"], "--fps must be 1 or more"),
    (["--out", "b.gif", "--size", "big"], "--size must be two whole numbers"),
    (["--out", "b.gif", "--size", "4x4"], "."),
    (["--out", "no/such/folder/b.gif"], "cannot write"),
])
def test_bad_film_input_is_one_line_and_writes_nothing(argv: list[str], match: str,
                                                       tmp_path: Path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    with pytest.raises(PlaygroundError, match=match) as info:
        _film_cli("--surface", "bowl", "--optimizer", "SGD", "--grid", "4", "--steps", "10",
                  *argv)
    assert "\n" not in str(info.value)
    assert list(tmp_path.iterdir()) == []


def test_a_film_without_mains_writer_is_one_line(tmp_path: Path) -> None:
    with pytest.raises(PlaygroundError, match="drawn by main.py") as info:
        basins_cli("--surface", "bowl", "--optimizer", "SGD", "--grid", "4", "--steps", "10",
                   "--out", str(tmp_path / "b.mp4"))
    assert "\n" not in str(info.value) and list(tmp_path.iterdir()) == []
