"""`main.py export ... --out run.py` and `main.py train ... --out run.py`: the run as a
standalone PyTorch script, run in a subprocess, prints what `run --json` / `train --json`
print, bit for bit."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

import main

ENGINE_ONLY = ("status", "status_text", "converged_at", "diverged_at", "divergence_reason")


def cli(argv: list[str], capsys) -> tuple[int, str, str]:
    code = main.main(argv)
    out, err = capsys.readouterr()
    return code, out, err


def run_script(path: Path) -> dict:
    done = subprocess.run([sys.executable, str(path)], capture_output=True, text=True,
                          timeout=120, cwd=path.parent)
    assert done.returncode == 0, done.stderr[-2000:]
    return json.loads(done.stdout)


RACE = ["--surface", "rosenbrock", "--steps", "80",
        "--optimizer", "SGD(lr=0.001, momentum=0.9)", "--scheduler", "StepLR(step_size=20)",
        "--optimizer", "Adam(lr=0.05)", "--clip-norm", "2", "--noise", "0.5", "--seed", "4",
        "--optimizer", "LBFGS(lr=0.5, max_iter=3)", "--clip-value", "10", "--freeze", "y"]


def test_export_py_prints_what_run_json_prints(tmp_path, capsys) -> None:
    out = tmp_path / "run.py"
    code, text, err = cli(["export", *RACE, "--out", str(out)], capsys)
    assert code == 0, err
    assert text.strip() == f"wrote {out}"
    code, printed, _ = cli(["run", *RACE, "--json"], capsys)
    engine = json.loads(printed)
    got = run_script(out)
    assert [r["optimizer"] for r in got["runs"]] == ["SGD", "Adam", "LBFGS"]
    for mine, theirs in zip(got["runs"], engine["runs"]):
        theirs = {k: v for k, v in theirs.items() if k not in ENGINE_ONLY}
        assert json.dumps(mine, sort_keys=True) == json.dumps(theirs, sort_keys=True)
    assert got["surface"] == engine["surface"]


def test_export_py_of_a_saved_session_with_changes_and_one_run(tmp_path, capsys) -> None:
    from core.session import Session
    from core.surfaces import get_surface

    session = Session(get_surface("himmelblau"))
    run = session.add_run("SGD", {"lr": 0.01})
    session.add_run("Adam", {"lr": 0.1})
    run.step(30)
    run.set_hyperparameter("lr", 0.002)
    run.set_frozen("x", True)
    run.step(30)
    session.save(tmp_path / "s.json")
    out = tmp_path / "one.py"
    code, _, err = cli(["export", "--session", str(tmp_path / "s.json"), "--run", "1",
                        "--out", str(out)], capsys)
    assert code == 0, err
    got = run_script(out)
    assert len(got["runs"]) == 1 and got["runs"][0]["steps"] == 60
    trajectory = got["runs"][0]["trajectory"]
    assert trajectory == json.loads(json.dumps(run.trajectory.to_dict()))
    assert got["runs"][0]["changes"][0]["values"] == {"lr": 0.002}


@pytest.mark.parametrize("argv, words", [
    (["--out", "/nonexistent-folder/run.py"], "/nonexistent-folder/run.py"),
    (["--run", "7", "--out", "RUN"], "--run must be from 1 to"),
    (["--fps", "5", "--out", "RUN"], "--fps goes with a picture or an animation"),
    (["--run", "1", "--out", "x.json"], "--run goes with a script"),
])
def test_export_py_mistakes_are_one_line_and_exit_2(tmp_path, capsys, argv, words) -> None:
    argv = [str(tmp_path / "run.py") if a == "RUN" else a for a in argv]
    code, _, err = cli(["export", "--surface", "himmelblau", "--steps", "3", *argv], capsys)
    assert code == 2
    assert words in err and err.count("\n") == 1
    assert not any(p.suffix == ".py" for p in tmp_path.iterdir())
    assert os.listdir(tmp_path) == []
