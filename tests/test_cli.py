"""The command line, run in-process through main.main(argv) (and once as a real subprocess)."""

from __future__ import annotations

import csv
import io
import json
import math
import subprocess
import sys
from pathlib import Path

import pytest
import torch

import main
from core.optimizers import CATALOGUE
from core.session import Session
from core.surfaces import BUILTIN_SURFACES, get_surface

ROOT = Path(__file__).resolve().parents[1]


def cli(capsys, *argv: str) -> tuple[int, str, str]:
    code = main.main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def ok(capsys, *argv: str) -> str:
    code, out, err = cli(capsys, *argv)
    assert code == 0, err
    assert err == ""
    return out


def run_json(capsys, *argv: str) -> dict:
    return json.loads(ok(capsys, "run", "--json", *argv))


def plain_sgd(f, start, lr: float, steps: int) -> tuple[float, float]:
    x = torch.tensor(start[0], dtype=torch.float64, requires_grad=True)
    y = torch.tensor(start[1], dtype=torch.float64, requires_grad=True)
    opt = torch.optim.SGD([x, y], lr=lr)
    for _ in range(steps):
        opt.zero_grad()
        f(x, y).backward()
        opt.step()
    return x.item(), y.item()


# --- list -----------------------------------------------------------------------------------------


def test_list_shows_every_surface_and_every_optimizer_with_defaults(capsys) -> None:
    out = ok(capsys, "list")
    lines = out.splitlines()
    for s in BUILTIN_SURFACES:
        line = next((ln for ln in lines if ln.split()[:1] == [s.name]), None)
        assert line is not None, s.name
        assert s.text in line
    assert "(1, 1)" in out  # Rosenbrock's minimum
    for name, spec in CATALOGUE.items():
        assert any(ln.strip().startswith(f"{name}:") for ln in lines), name
        for h in spec.hyperparameters:
            assert any(ln.split()[:3] == [h.name, "default", repr(h.default).split()[0]]
                       for ln in lines), (name, h.name)


def test_list_as_a_real_subprocess() -> None:
    proc = subprocess.run([sys.executable, "main.py", "list"], cwd=ROOT, capture_output=True,
                          text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert "rosenbrock" in proc.stdout and "LBFGS" in proc.stdout and "betas" in proc.stdout
    assert proc.stderr == ""


# --- run ------------------------------------------------------------------------------------------


def test_run_default_table(capsys) -> None:
    out = ok(capsys, "run")
    lines = out.splitlines()
    assert "Rosenbrock" in lines[0] and "(1 - x)**2 + 100*(y - x**2)**2" in lines[0]
    assert "start: (-1.2, 1)" in out
    rows = [ln for ln in lines if ln[:2].strip().isdigit()]
    assert len(rows) == 4
    assert [r.split()[1] for r in rows] == ["SGD(lr=0.001)", "SGD(lr=0.001,", "RMSprop(lr=0.01)",
                                            "Adam(lr=0.05)"]
    assert all(" 200 " in r for r in rows)
    # the first run's final point, from a plain torch loop
    x, y = plain_sgd(get_surface("rosenbrock"), (-1.2, 1.0), 1e-3, 200)
    assert f"{x:.6g}" in rows[0] and f"{y:.6g}" in rows[0]


def test_run_json_has_the_documented_shape(capsys) -> None:
    data = run_json(capsys, "--steps", "7", "--optimizer", "Adam(lr=0.05)", "--freeze", "y")
    assert {"surface", "runs"} <= set(data)
    assert isinstance(data["surface"], dict) and data["surface"]["name"] == "rosenbrock"
    assert len(data["runs"]) == 1
    run = data["runs"][0]
    assert {"optimizer", "hyperparameters", "frozen", "status", "trajectory"} <= set(run)
    assert run["optimizer"] == "Adam"
    assert run["hyperparameters"]["lr"] == 0.05
    assert run["hyperparameters"]["betas"] == [0.9, 0.999]
    assert run["frozen"] == ["y"]
    assert run["status"] in ("running", "converged", "diverged")
    traj = run["trajectory"]
    assert {"step", "x", "y", "loss", "grad_x", "grad_y"} <= set(traj)
    assert traj["step"] == list(range(8))
    for key in ("x", "y", "loss", "grad_x", "grad_y"):
        assert len(traj[key]) == 8
    assert traj["grad_y"] == [None] * 8  # frozen: null
    assert all(isinstance(v, float) for v in traj["grad_x"] + traj["x"] + traj["loss"])
    assert set(traj["y"]) == {1.0}


def test_run_csv(capsys) -> None:
    out = ok(capsys, "run", "--csv", "--steps", "4", "--optimizer", "SGD(lr=0.001)",
             "--optimizer", "Adam", "--freeze", "x")
    rows = list(csv.DictReader(io.StringIO(out)))
    assert out.splitlines()[0].startswith("run,optimizer,label,status,step,x,y,loss,grad_x,grad_y")
    assert len(rows) == 2 * 5
    assert [r["optimizer"] for r in rows] == ["SGD"] * 5 + ["Adam"] * 5
    assert all(r["grad_x"] == "" for r in rows)
    assert all(float(r["x"]) == -1.2 for r in rows)


def test_run_formula_start_and_steps(capsys) -> None:
    # SGD on x**2 + 3*y**2: x <- (1 - 2 lr) x and y <- (1 - 6 lr) y, here 0.8 and 0.4 per step
    data = run_json(capsys, "--formula", "x**2 + 3*y**2", "--start", "1,1", "--steps", "5",
                    "--optimizer", "SGD(lr=0.1)")
    assert data["surface"]["formula"] == "x**2 + 3*y**2"
    traj = data["runs"][0]["trajectory"]
    assert traj["step"] == [0, 1, 2, 3, 4, 5]
    assert traj["x"] == pytest.approx([0.8**k for k in range(6)], rel=1e-12)
    assert traj["y"] == pytest.approx([0.4**k for k in range(6)], rel=1e-12)
    assert traj["grad_y"] == pytest.approx([6 * 0.4**k for k in range(6)], rel=1e-12)


def test_run_formula_with_ranges(capsys) -> None:
    data = run_json(capsys, "--formula", "log(x) + y**2", "--x-range", "0.5,4", "--y-range",
                    "-1,1", "--steps", "1", "--optimizer", "SGD(lr=0.01)")
    assert data["surface"]["x_range"] == [0.5, 4.0] and data["surface"]["y_range"] == [-1.0, 1.0]


def test_run_start(capsys) -> None:
    data = run_json(capsys, "--surface", "booth", "--start", "-1.5, 2.25", "--steps", "0")
    assert data["start"] == [-1.5, 2.25]
    for run in data["runs"]:
        assert run["trajectory"]["x"] == [-1.5] and run["trajectory"]["y"] == [2.25]
    assert len(data["runs"]) == 4  # the default optimizers


def test_run_steps(capsys) -> None:
    data = run_json(capsys, "--steps", "13", "--optimizer", "RMSprop")
    assert data["runs"][0]["trajectory"]["step"][-1] == 13
    assert data["runs"][0]["steps"] == 13


def test_repeatable_optimizer_and_freeze(capsys) -> None:
    data = run_json(capsys, "--surface", "himmelblau", "--steps", "3",
                    "--optimizer", "Adam(lr=0.05, betas=(0.9, 0.99))",
                    "--optimizer", "torch.optim.SGD(lr=0.01, momentum=0.9)",
                    "--optimizer", "LBFGS", "--freeze", "x", "--freeze", "y")
    runs = data["runs"]
    assert [r["optimizer"] for r in runs] == ["Adam", "SGD", "LBFGS"]
    assert runs[0]["hyperparameters"]["betas"] == [0.9, 0.99]
    assert runs[1]["hyperparameters"]["momentum"] == 0.9
    for r in runs:
        assert r["frozen"] == ["x", "y"]
        assert set(r["trajectory"]["x"]) == {0.0} and set(r["trajectory"]["y"]) == {0.0}
        assert r["trajectory"]["grad_x"] == [None] * 4


def test_same_result_as_the_engine_in_process(capsys) -> None:
    data = run_json(capsys, "--surface", "six_hump_camel", "--steps", "20", "--optimizer",
                    "SGD(lr=0.01)")
    x, y = plain_sgd(get_surface("six_hump_camel"), get_surface("six_hump_camel").start, 0.01, 20)
    traj = data["runs"][0]["trajectory"]
    assert (traj["x"][-1], traj["y"][-1]) == (x, y)


# --- sessions -------------------------------------------------------------------------------------


@pytest.fixture
def session_file(tmp_path: Path) -> Path:
    s = Session(get_surface("himmelblau"), start=(1.0, 1.0))
    s.add_run("Adam", {"lr": 0.1}, label="mine", color="#abcdef")
    s.add_run("SGD", {"lr": 0.01}, frozen=["x"])
    path = tmp_path / "s.json"
    s.save(path)
    return path


def test_run_session(capsys, session_file: Path) -> None:
    data = run_json(capsys, "--session", str(session_file), "--steps", "4")
    assert data["surface"]["name"] == "himmelblau" and data["start"] == [1.0, 1.0]
    runs = data["runs"]
    assert [r["optimizer"] for r in runs] == ["Adam", "SGD"]
    assert runs[0]["label"] == "mine" and runs[0]["color"] == "#abcdef"
    assert runs[0]["hyperparameters"]["lr"] == 0.1
    assert runs[1]["frozen"] == ["x"] and set(runs[1]["trajectory"]["x"]) == {1.0}
    assert all(r["trajectory"]["step"][-1] == 4 for r in runs)


def test_run_session_with_overrides(capsys, session_file: Path) -> None:
    data = run_json(capsys, "--session", str(session_file), "--steps", "2", "--start", "0,0")
    assert data["start"] == [0.0, 0.0]
    assert [r["optimizer"] for r in data["runs"]] == ["Adam", "SGD"]  # runs kept
    assert all(r["trajectory"]["x"][0] == 0.0 for r in data["runs"])

    data = run_json(capsys, "--session", str(session_file), "--steps", "2", "--optimizer",
                    "RMSprop(lr=0.02)")
    assert [r["optimizer"] for r in data["runs"]] == ["RMSprop"]  # runs replaced
    assert data["surface"]["name"] == "himmelblau" and data["start"] == [1.0, 1.0]

    data = run_json(capsys, "--session", str(session_file), "--steps", "2", "--surface", "booth",
                    "--freeze", "y")
    assert data["surface"]["name"] == "booth"
    assert data["start"] == list(get_surface("booth").start)
    assert [r["frozen"] for r in data["runs"]] == [["y"], ["x", "y"]]


def test_export_json_then_run_session(capsys, tmp_path: Path) -> None:
    out = tmp_path / "f.json"
    msg = ok(capsys, "export", "--surface", "beale", "--start", "1,1", "--steps", "5",
             "--optimizer", "Adam(lr=0.02)", "--optimizer", "SGD(lr=0.001)", "--freeze", "x",
             "--out", str(out))
    assert str(out) in msg
    exported = json.loads(out.read_text())
    assert exported["runs"][0]["trajectory"]["step"] == list(range(6))
    data = run_json(capsys, "--session", str(out), "--steps", "5")
    assert data["surface"]["name"] == "beale" and data["surface"]["title"] == "Beale"
    assert data["start"] == [1.0, 1.0]
    assert [r["optimizer"] for r in data["runs"]] == ["Adam", "SGD"]
    assert [r["frozen"] for r in data["runs"]] == [["x"], ["x"]]
    # the same settings give the same trajectories again
    for a, b in zip(exported["runs"], data["runs"], strict=True):
        assert a["trajectory"] == b["trajectory"]


def test_export_csv(capsys, tmp_path: Path) -> None:
    out = tmp_path / "f.csv"
    ok(capsys, "export", "--steps", "3", "--optimizer", "SGD", "--out", str(out))
    rows = list(csv.DictReader(io.StringIO(out.read_text())))
    assert len(rows) == 4 and rows[0]["optimizer"] == "SGD" and rows[-1]["step"] == "3"


# --- errors ---------------------------------------------------------------------------------------


@pytest.fixture
def broken_session(tmp_path: Path) -> Path:
    path = tmp_path / "broken.json"
    path.write_text("{ this is not json")
    return path


ERRORS = [
    (["run", "--formula", "x +* y"], "column"),
    (["run", "--formula", "__import__('os').system('id')"], "column"),
    (["run", "--formula", "log(-1 - x**2)"], "finite"),
    (["run", "--formula", "x", "--x-range", "1,0"], "x range"),
    (["run", "--x-range", "0,1"], "--formula"),
    (["run", "--optimizer", "Adamm(lr=0.1)"], "Adamm"),
    (["run", "--optimizer", "SGD(lr=-0.1)"], "lr"),
    (["run", "--optimizer", "Adam(betas=(0.9, 1.0))"], "betas"),
    (["run", "--optimizer", "Adam(lr=__import__('os'))"], "Adam"),
    (["run", "--optimizer", "Adam(lr=1" + "0" * 320 + ")"], "lr"),
    (["run", "--optimizer", "SGD(nesterov=True)"], "SGD"),
    (["run", "--start", "1,2,3"], "--start"),
    (["run", "--start", "a,b"], "--start"),
    (["run", "--start", "nan,1"], "--start"),
    (["run", "--start", "inf,1"], "--start"),
    (["run", "--surface", "nowhere"], "nowhere"),
    (["run", "--steps", "-1"], "--steps"),
    (["run", "--steps", "many"], "many"),
    (["run", "--freeze", "z"], "z"),
    (["run", "--bogus-option"], "bogus"),
    (["run", "--surface", "booth", "--formula", "x"], "not allowed"),
    (["run", "--json", "--csv"], "not allowed"),
    (["frobnicate"], "frobnicate"),
    (["run", "--session", "MISSING.json"], "cannot read"),
    (["export", "--steps", "1"], "--out"),
    (["export", "--steps", "1", "--out", "f.txt"], "f.txt"),
    (["export", "--steps", "1", "--out", "/nonexistent-dir/sub/f.json"], "cannot write"),
    (["export", "--steps", "1", "--out", "/nonexistent-dir/sub/f.csv"], "cannot write"),
]


@pytest.mark.parametrize("argv, words", ERRORS, ids=[" ".join(a)[:50] for a, _ in ERRORS])
def test_errors_exit_2_with_one_line_and_no_traceback(capsys, tmp_path, monkeypatch, argv,
                                                       words) -> None:
    monkeypatch.chdir(tmp_path)
    code, out, err = cli(capsys, *argv)
    assert code == 2
    assert out == ""
    lines = err.strip("\n").splitlines()
    assert len(lines) == 1, err
    assert "Traceback" not in err
    assert lines[0].startswith("optimizer-playground: error:")
    assert words.lower() in lines[0].lower(), lines[0]
    assert not (tmp_path / "f.txt").exists()


def test_broken_session_file(capsys, broken_session: Path) -> None:
    code, out, err = cli(capsys, "run", "--session", str(broken_session))
    assert code == 2 and out == ""
    assert len(err.strip().splitlines()) == 1 and "broken.json" in err and "JSON" in err


@pytest.mark.parametrize("content", ['{"format": "optimizer-playground-session", "version": 99,'
                                     ' "surface": {"name": "booth"}, "runs": []}',
                                     '{"format": "optimizer-playground-session", "version": 1,'
                                     ' "surface": {"name": "booth"},'
                                     ' "runs": [{"optimizer": "Nope"}]}',
                                     "[]"])
def test_invalid_session_file(capsys, tmp_path: Path, content: str) -> None:
    path = tmp_path / "bad.json"
    path.write_text(content)
    code, out, err = cli(capsys, "run", "--session", str(path))
    assert code == 2 and out == "" and len(err.strip().splitlines()) == 1
    assert "Traceback" not in err


def test_unwritable_out_keeps_nothing_behind(capsys, tmp_path: Path) -> None:
    (tmp_path / "file").write_text("x")
    target = str(tmp_path / "file" / "o.csv")
    code, out, err = cli(capsys, "export", "--steps", "1", "--out", target)
    assert code == 2 and len(err.strip().splitlines()) == 1
    assert (tmp_path / "file").read_text() == "x"


def test_help_exits_0(capsys) -> None:
    with pytest.raises(SystemExit) as info:
        main.main(["--help"])
    assert info.value.code == 0
    assert "run" in capsys.readouterr().out


def test_json_output_is_strict_json(capsys) -> None:
    # a diverging run must not put NaN or Infinity into the JSON
    out = ok(capsys, "run", "--json", "--steps", "50", "--optimizer", "SGD(lr=1)")
    data = json.loads(out, parse_constant=lambda c: pytest.fail(f"non-standard JSON: {c}"))
    run = data["runs"][0]
    assert run["status"] == "diverged"
    assert all(math.isfinite(v) for v in run["trajectory"]["x"])


@pytest.mark.parametrize("start", ["-1.5,2", "-.5,-1", "-1e-1,3"])
def test_negative_numbers_are_values_not_options(capsys, start: str) -> None:
    data = run_json(capsys, "--surface", "booth", "--start", start, "--steps", "0",
                    "--optimizer", "SGD")
    assert data["start"] == [float(v) for v in start.split(",")]
    data = run_json(capsys, "--formula", "x + y", "--x-range", "-2,-1", "--y-range", "-.5,0",
                    "--steps", "0", "--optimizer", "SGD")
    assert data["surface"]["x_range"] == [-2.0, -1.0] and data["surface"]["y_range"] == [-0.5, 0.0]


# --- issue 7 ------------------------------------------------------------------------------------


def test_run_session_without_steps_reproduces_what_was_saved(capsys, tmp_path: Path) -> None:
    s = Session(get_surface("himmelblau"), start=(1.0, 1.0))
    a = s.add_run("Adam", {"lr": 0.1})
    b = s.add_run("SGD", {"lr": 0.01})
    a.step(37)
    b.step(11)
    path = tmp_path / "s.json"
    s.save(path)
    data = run_json(capsys, "--session", str(path))
    assert [r["steps"] for r in data["runs"]] == [37, 11]
    assert data["runs"][0]["trajectory"]["x"] == list(a.trajectory.x)
    assert data["runs"][1]["trajectory"]["y"] == list(b.trajectory.y)
    # --steps given explicitly overrides the file's counts
    data = run_json(capsys, "--session", str(path), "--steps", "3")
    assert [r["steps"] for r in data["runs"]] == [3, 3]


def test_an_export_run_again_without_steps_gives_the_same_trajectories(capsys,
                                                                       tmp_path: Path) -> None:
    out = tmp_path / "race.json"
    ok(capsys, "export", "--surface", "beale", "--steps", "9", "--optimizer", "Adam(lr=0.02)",
       "--out", str(out))
    exported = json.loads(out.read_text())
    data = run_json(capsys, "--session", str(out))
    assert data["runs"][0]["trajectory"] == exported["runs"][0]["trajectory"]
    assert data["runs"][0]["trajectory"]["step"][-1] == 9


def test_run_and_export_do_not_step_disabled_runs(capsys, tmp_path: Path) -> None:
    s = Session(get_surface("booth"))
    s.add_run("Adam", {"lr": 0.1})
    s.add_run("SGD", {"lr": 0.01}, enabled=False)
    path = tmp_path / "s.json"
    s.save(path)
    data = run_json(capsys, "--session", str(path), "--steps", "5")
    assert [r["steps"] for r in data["runs"]] == [5, 0]
    assert data["runs"][1]["trajectory"]["step"] == [0]
    table = ok(capsys, "run", "--session", str(path), "--steps", "5")
    row = [ln for ln in table.splitlines() if ln.startswith(" 2 ")][0]
    assert row.split()[-1] == "disabled" and " 0 " in row
    out = tmp_path / "e.json"
    ok(capsys, "export", "--session", str(path), "--steps", "5", "--out", str(out))
    assert [r["steps"] for r in json.loads(out.read_text())["runs"]] == [5, 0]


def session_text(**changes) -> str:
    data = {"format": "optimizer-playground-session", "version": 1, "surface": {"name": "booth"},
            "start": [1, 2], "runs": [{"optimizer": "Adam", "hyperparameters": {"lr": 0.1}}]}
    data.update(changes)
    return json.dumps(data)


BAD_FILES = [
    ("400-digit start", session_text().replace('"start": [1, 2]',
                                              '"start": [1' + "0" * 400 + ", 2]"), "'start[0]'"),
    ("NaN in a hyperparameter", session_text().replace('"lr": 0.1', '"lr": NaN'), "'hyperparam"),
    ("Infinity in extra", session_text(extra={"v": "X"}).replace('"X"', "Infinity"), "'extra.v'"),
    ("built-in with a range", session_text(surface={"name": "booth", "x_range": [0, 1]}),
     "x_range"),
    ("version 0", session_text(version=0), "'version'"),
    ("version -7", session_text(version=-7), "'version'"),
    ("colour #zzzzzz", session_text(runs=[{"optimizer": "SGD", "color": "#zzzzzz"}]),
     "run 1: 'color' must be #rrggbb, got '#zzzzzz'"),
    ("label with a newline", session_text(runs=[{"optimizer": "SGD", "label": "a\nb"}]),
     "run 1: 'label'"),
    ("unknown key", session_text(zoom=3), "unknown field 'zoom'"),
    ("LBFGS asking for minutes", session_text(runs=[{"optimizer": "LBFGS", "steps": 200,
                                                     "hyperparameters": {
                                                         "max_iter": 1000, "tolerance_grad": 0,
                                                         "tolerance_change": 0}}]), "max_iter"),
]


@pytest.mark.parametrize("text, words", [(t, w) for _, t, w in BAD_FILES],
                         ids=[i for i, _, _ in BAD_FILES])
def test_bad_session_files_exit_2_with_one_line_naming_the_field(capsys, tmp_path: Path, text,
                                                                  words: str) -> None:
    path = tmp_path / "bad.json"
    path.write_text(text)
    code, out, err = cli(capsys, "run", "--json", "--session", str(path))
    assert code == 2 and out == ""
    assert len(err.strip("\n").splitlines()) == 1 and "Traceback" not in err
    assert words in err


def test_session_dev_zero_is_refused_quickly(capsys) -> None:
    code, out, err = cli(capsys, "run", "--session", "/dev/zero")
    assert code == 2 and "too large" in err and len(err.strip().splitlines()) == 1


def test_a_session_file_with_a_byte_order_mark_runs(capsys, tmp_path: Path) -> None:
    path = tmp_path / "bom.json"
    path.write_bytes(b"\xef\xbb\xbf" + session_text().encode())
    data = run_json(capsys, "--session", str(path), "--steps", "2")
    assert data["surface"]["name"] == "booth" and data["runs"][0]["steps"] == 2


def test_the_command_line_bounds_the_work_too(capsys) -> None:
    code, out, err = cli(capsys, "run", "--optimizer",
                         "LBFGS(max_iter=1000, tolerance_grad=0, tolerance_change=0)")
    assert code == 2 and out == "" and "max_iter" in err and len(err.strip().splitlines()) == 1
    code, out, err = cli(capsys, "run", "--optimizer", "SGD", "--steps", "10000000000")
    assert code == 2 and "steps" in err and len(err.strip().splitlines()) == 1


@pytest.mark.parametrize("formula", ["-exp(-(x**2+y**2))", "-x**2", "-x*y+y**2", "- x**2 + y**2"])
def test_a_formula_may_start_with_a_minus(capsys, formula: str) -> None:
    data = run_json(capsys, "--formula", formula, "--start", "-0.5,0.25", "--steps", "1",
                    "--optimizer", "SGD(lr=0.1)")
    assert data["surface"]["formula"] == formula and data["start"] == [-0.5, 0.25]
    assert data["runs"][0]["steps"] == 1


def test_graph_options_may_start_with_a_minus(capsys) -> None:
    data = json.loads(ok(capsys, "graph", "--formula", "-x*y", "--at", "-1,-2",
                         "--x-range", "-3,-0.5", "--y-range", "-4,1", "--json"))
    x, y = torch.tensor(-1.0, requires_grad=True), torch.tensor(-2.0, requires_grad=True)
    loss = -x * y
    loss.backward()
    assert data["loss"] == pytest.approx(loss.item())


def test_a_missing_value_is_still_an_error(capsys) -> None:
    code, out, err = cli(capsys, "run", "--formula")
    assert code == 2 and "expected one argument" in err


NO_DISPLAY = ("optimizer-playground: no display (DISPLAY is not set); run it on a desktop, or use"
              " the headless subcommands: see --help")


def test_no_display_says_so_in_one_line_without_starting_qt(capsys, monkeypatch) -> None:
    for name in ("DISPLAY", "WAYLAND_DISPLAY", "QT_QPA_PLATFORM"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setattr(sys, "platform", "linux")
    monkeypatch.setitem(sys.modules, "gui.app", None)  # importing the app would fail the test
    code, out, err = cli(capsys)
    assert code == 1 and out == ""
    assert err.strip() == NO_DISPLAY


@pytest.mark.parametrize("env, reason", [
    ({}, "DISPLAY is not set"),
    ({"QT_QPA_PLATFORM": "xcb"}, "QT_QPA_PLATFORM is 'xcb' but DISPLAY is not set"),
    ({"QT_QPA_PLATFORM": "wayland", "DISPLAY": ":0"},
     "QT_QPA_PLATFORM is 'wayland' but WAYLAND_DISPLAY is not set"),
    ({"DISPLAY": ":0"}, None),
    ({"WAYLAND_DISPLAY": "wayland-0"}, None),
    ({"QT_QPA_PLATFORM": "offscreen"}, None),
    ({"QT_QPA_PLATFORM": "wayland;xcb", "DISPLAY": ":0"}, None),
])
def test_no_display_reason(env: dict, reason) -> None:
    assert main.no_display_reason(env, "linux") == reason
    assert main.no_display_reason({}, "darwin") is None


def test_with_a_display_the_app_starts(capsys, monkeypatch) -> None:
    import types

    started = []
    app = types.ModuleType("gui.app")
    app.run_app = lambda: started.append(True) or 0
    monkeypatch.setitem(sys.modules, "gui.app", app)
    monkeypatch.setenv("DISPLAY", ":0")
    monkeypatch.delenv("QT_QPA_PLATFORM", raising=False)
    assert main.main([]) == 0 and started == [True]


def test_graph_at_a_point_of_a_formula_with_no_finite_gradient_elsewhere(capsys) -> None:
    # sqrt(x - x) has a NaN gradient everywhere: no start can be offered for a race, but the
    # graph at a point the user chose is still drawn (x's gradient is not finite there)
    data = json.loads(ok(capsys, "graph", "--formula", "sqrt(x - x) + x * y", "--at", "1,2",
                         "--freeze", "y", "--json"))
    assert data["loss"] == pytest.approx(2.0)
    code, out, err = cli(capsys, "run", "--formula", "sqrt(x - x) + x * y", "--steps", "1")
    assert code == 2 and "finite" in err and len(err.strip().splitlines()) == 1


# --- issue 11: --scheduler, --clip-norm, --clip-value, --noise and --seed ------------------------


def test_settings_apply_to_the_optimizer_before_them_or_to_all(capsys) -> None:
    data = run_json(capsys, "--steps", "20", "--clip-value", "3",
                    "--optimizer", "SGD(lr=0.001)", "--scheduler", "StepLR(step_size=5)",
                    "--optimizer", "Adam(lr=0.01)", "--noise", "0.5", "--seed", "4",
                    "--optimizer", "SGD(lr=0.001)", "--clip-norm", "7")
    first, second, third = data["runs"]
    assert first["scheduler"] == "StepLR(step_size=5)" and "noise" not in first
    assert "scheduler" not in second and second["noise"] == {"sigma": 0.5, "seed": 4}
    assert first["clip_value"] == second["clip_value"] == 3.0  # given before any: every run
    assert third["clip_norm"] == 7.0 and "clip_value" not in third  # its own replaces it
    assert first["trajectory"]["lr"][4:6] == [0.001, 0.0001]  # StepLR's gamma=0.1 at step 5
    assert "noisy_grad_x" in second["trajectory"] and "noisy_grad_x" not in first["trajectory"]


def test_a_scheduled_run_on_the_command_line_is_the_engines(capsys) -> None:
    from core.gradient_tools import GradientClipping, GradientNoise
    from core.run import Run

    data = run_json(capsys, "--steps", "30", "--optimizer", "SGD(lr=0.001, momentum=0.9)",
                    "--scheduler", "CosineAnnealingLR(T_max=30)", "--clip-norm", "20",
                    "--noise", "2", "--seed", "1")
    run = Run(get_surface("rosenbrock"), "SGD", {"lr": 0.001, "momentum": 0.9},
              scheduler="CosineAnnealingLR(T_max=30)", clipping=GradientClipping("norm", 20.0),
              noise=GradientNoise(2.0, 1))
    run.step(30)
    assert data["runs"][0]["trajectory"] == run.trajectory.to_dict()


def test_a_session_with_settings_runs_again_the_same(capsys, tmp_path: Path) -> None:
    out = tmp_path / "s.json"
    ok(capsys, "export", "--out", str(out), "--steps", "15", "--optimizer", "Adam(lr=0.05)",
       "--scheduler", "ReduceLROnPlateau(patience=1)", "--noise", "1", "--clip-norm", "5")
    saved = json.loads(out.read_text())
    again = run_json(capsys, "--session", str(out))
    assert again["runs"][0]["trajectory"] == saved["runs"][0]["trajectory"]


@pytest.mark.parametrize("argv,words", [
    (["--optimizer", "SGD", "--scheduler", "StepLR(step_size=0)"],
     "--scheduler 'StepLR(step_size=0)': StepLR: step_size must be a whole number >= 1, got 0"),
    (["--scheduler", "CosineAnnealingLR(T_max='a')"], "CosineAnnealingLR: T_max must be"),
    (["--scheduler", "Bogus(x=1)"], "unknown scheduler 'Bogus'"),
    (["--clip-norm", "-1"], "--clip-norm must be a number > 0, got -1.0"),
    (["--noise", "-2"], "--noise must be a number >= 0, got -2.0"),
    (["--seed", "3"], "goes with the gradient noise"),
    (["--clip-norm", "1", "--clip-value", "1"], "not both"),
    (["--optimizer", "SGD", "--noise", "1", "--noise", "2"],
     "--noise is given twice for --optimizer 1"),
])
def test_bad_run_settings_exit_2_with_one_line(capsys, argv: list[str], words: str) -> None:
    code, out, err = cli(capsys, "run", "--steps", "2", *argv)
    assert code == 2 and out == ""
    assert words in err and err.count("\n") == 1


@pytest.mark.parametrize("argv", [["--help"], ["lrfind", "--help"], ["basins", "--help"],
                                  ["train", "--help"]])
def test_help_loads_no_torch(argv):
    """Building every subcommand's parser stays quick: none of them imports torch (2 s)."""
    root = Path(__file__).resolve().parents[1]
    code = ("import runpy, sys\nsys.argv = ['main.py', *sys.argv[1:]]\n"
            "try:\n    runpy.run_path('main.py', run_name='__main__')\n"
            "except SystemExit:\n    pass\nprint('torch loaded' if 'torch' in sys.modules "
            "else 'no torch', file=sys.stderr)")
    out = subprocess.run([sys.executable, "-c", code, *argv], cwd=root, capture_output=True,
                         text=True, timeout=60)
    assert out.stderr.strip().splitlines()[-1] == "no torch"


def test_commands_run_on_one_torch_thread_as_the_window_and_put_the_count_back(monkeypatch):
    seen = []
    monkeypatch.setattr(main, "cmd_train", lambda args: seen.append(torch.get_num_threads())
                        or "ok")
    before = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        assert main.main(["train", "--steps", "1"]) == 0
        assert seen == [1]
        assert torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(before)
