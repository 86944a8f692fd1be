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
from core.script_export import MODEL_ENGINE_ONLY, RACE_ENGINE_ONLY

ENGINE_ONLY = RACE_ENGINE_ONLY  # the app's status words: see core/script_export.py


def cli(argv: list[str], capsys) -> tuple[int, str, str]:
    code = main.main(argv)
    out, err = capsys.readouterr()
    return code, out, err


def other_threads() -> dict[str, str]:
    """The script's torch starts with two threads (main.py runs the engine on one, as the app):
    the script pins itself to one, so that BatchNorm's sums round as the app's did."""
    return {**os.environ, "OMP_NUM_THREADS": "2"}


def run_script(path: Path) -> dict:
    done = subprocess.run([sys.executable, str(path)], capture_output=True, text=True,
                          env=other_threads(), timeout=120, cwd=path.parent)
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
    assert set(got) == set(engine)  # the same top-level keys: format, version, surface, ...
    for mine, theirs in zip(got["runs"], engine["runs"]):
        assert set(theirs) - set(mine) == set(ENGINE_ONLY)  # exactly these are left out
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


# --- model mode: train --out run.py ------------------------------------------------------------

TRAIN_ONLY = MODEL_ENGINE_ONLY


def assert_train_script_matches(argv: list[str], tmp_path: Path, capsys) -> dict:
    out = tmp_path / "train.py"
    code, text, err = cli(["train", *argv, "--out", str(out)], capsys)
    assert code == 0, err
    assert text.strip() == f"wrote {out}"
    code, printed, err = cli(["train", *argv, "--json"], capsys)
    assert code == 0, err
    engine = json.loads(printed)
    got = run_script(out)
    assert got["model"] == engine["model"] and got["data"] == engine["data"]
    assert len(got["runs"]) == len(engine["runs"])
    for mine, theirs in zip(got["runs"], engine["runs"]):
        assert set(theirs) - set(mine) == set(TRAIN_ONLY)  # exactly these are left out
        theirs = {k: v for k, v in theirs.items() if k not in TRAIN_ONLY}
        assert set(mine) == set(theirs)
        for column, values in theirs["trajectory"].items():
            assert json.dumps(mine["trajectory"][column]) == json.dumps(values), column
        assert json.dumps(mine, sort_keys=True) == json.dumps(theirs, sort_keys=True)
    return got


def test_train_out_small_mlp_in_minibatches_with_a_frozen_layer_and_tools(tmp_path,
                                                                         capsys) -> None:
    got = assert_train_script_matches([
        "--dataset", "moons", "--n", "100", "--model", "small-mlp", "--batch-size", "32",
        "--steps", "30",
        "--eval-every", "7", "--freeze", "0",
        "--optimizer", "SGD(lr=0.1, momentum=0.9)", "--scheduler", "StepLR(step_size=8)",
        "--optimizer", "Adam(lr=0.01)", "--clip-norm", "0.05",
        "--optimizer", "LBFGS(lr=0.5, max_iter=3)", "--clip-value", "0.1"], tmp_path, capsys)
    first = got["runs"][0]
    assert first["frozen"] == ["0.weight", "0.bias"]
    assert first["initial_parameters"]["0.weight"] == first["final_parameters"]["0.weight"]
    assert first["trajectory"]["lr"][8] == first["trajectory"]["lr"][0] * 0.1
    assert any(got["runs"][1]["trajectory"]["clipped"])


def test_train_out_a_deep_preset_full_batch_with_a_cycling_scheduler(tmp_path, capsys) -> None:
    got = assert_train_script_matches([
        "--dataset", "blobs", "--n", "60", "--model", "deep-mlp", "--steps", "12",
        "--optimizer", "Adam(lr=0.01)", "--scheduler", "OneCycleLR(max_lr=0.05, total_steps=12)",
        "--optimizer", "RMSprop(lr=0.01)"], tmp_path, capsys)
    assert got["data"]["batch_size"] == 0 and got["data"]["loss"] == "CrossEntropyLoss"
    beta1 = got["runs"][0]["trajectory"]["beta1"]
    assert len(set(beta1)) > 3  # OneCycleLR cycles Adam's beta1, and the JSON shows it


def test_train_out_batchnorm_and_dropout(tmp_path, capsys) -> None:
    """Each run's own BatchNorm statistics, and Dropout's masks seeded by step."""
    assert_train_script_matches([
        "--dataset", "circles", "--n", "80", "--batch-size", "16", "--steps", "12", "--seed", "3",
        "--model", "Linear(2, 8), BatchNorm1d(8), ReLU(), Dropout(0.3), Linear(8, 1)",
        "--optimizer", "SGD(lr=0.05)", "--optimizer", "AdamW(lr=0.01)"], tmp_path, capsys)


def test_train_session_with_changes_and_its_script(tmp_path, capsys) -> None:
    from core.model_session import ModelSession, RunSpec

    session = ModelSession(batch_size=50)
    session.add_run("SGD", {"lr": 0.1})
    session.add_run("Adam", {"lr": 0.01}, scheduler="ExponentialLR(gamma=0.95)")
    built = session.build()
    sgd, adam = built.runs
    sgd.step(10)
    sgd.set_hyperparameter("lr", 0.05)
    sgd.set_frozen("2.weight", True)
    sgd.step(10)
    adam.step(12)
    adam.set_hyperparameter("lr", 0.02)  # a scheduled run: its base lr scaled
    adam.set_clipping(None)
    adam.step(8)
    saved = ModelSession(session.model, session.data, session.loss, session.batch_size,
                         session.test_fraction, session.seed,
                         [RunSpec.from_run(run) for run in built.runs])
    saved.save(tmp_path / "model.json")
    got = assert_train_script_matches(["--session", str(tmp_path / "model.json")], tmp_path,
                                      capsys)
    for mine, run in zip(got["runs"], built.runs):
        assert mine["trajectory"]["loss"] == [float(v) for v in run.trajectory.loss]
        assert mine["steps"] == 20 and len(mine["changes"]) == len(run.changes)


@pytest.mark.parametrize("argv, words", [
    (["--out", "/nonexistent-folder/train.py"], "/nonexistent-folder/train.py"),
    (["--out", "OUT.json"], "must end in .py"),
])
def test_train_out_mistakes_are_one_line_and_exit_2(tmp_path, capsys, argv, words) -> None:
    argv = [str(tmp_path / "train.json") if a == "OUT.json" else a for a in argv]
    code, _, err = cli(["train", "--steps", "2", *argv], capsys)
    assert code == 2
    assert words in err and err.count("\n") == 1
    assert os.listdir(tmp_path) == []


def test_a_batchnorm_script_on_more_threads_still_prints_the_apps_numbers(tmp_path,
                                                                         capsys) -> None:
    """Wide enough that torch splits BatchNorm's sums over two threads: without the script's
    torch.set_num_threads(1) its last bits differ from the engine's (which runs on one)."""
    assert_train_script_matches([
        "--dataset", "circles", "--n", "400", "--steps", "30", "--seed", "3",
        "--model", "Linear(2, 64), BatchNorm1d(64), ReLU(), Linear(64, 64), BatchNorm1d(64), "
                   "ReLU(), Linear(64, 1)", "--optimizer", "SGD(lr=0.05)"], tmp_path, capsys)


def test_train_grad_noise_is_seeded_per_run_and_its_script_matches(tmp_path, capsys) -> None:
    """train's --noise is the dataset's: gradient noise is --grad-noise (and its seed)."""
    base = ["--dataset", "moons", "--n", "60", "--model", "small-mlp", "--steps", "15",
            "--optimizer", "SGD(lr=0.1)", "--grad-noise", "0.5", "--grad-noise-seed", "7",
            "--optimizer", "SGD(lr=0.1)"]
    got = assert_train_script_matches(base, tmp_path, capsys)
    noisy, clean = got["runs"]
    assert noisy["noise"] == {"sigma": 0.5, "seed": 7} and "noise" not in clean
    assert noisy["trajectory"]["loss"][1:] != clean["trajectory"]["loss"][1:]
    code, out, err = cli(["train", *base[:-2], "--json"], capsys)
    again = json.loads(out)["runs"][0]
    assert code == 0 and again["trajectory"] == noisy["trajectory"]  # the same seed, the same
    code, out, err = cli(["train", "--grad-noise-seed", "3"], capsys)
    assert code == 2 and "goes with the gradient noise" in err and len(err.splitlines()) == 1


def test_train_bad_grad_noise_names_its_own_option(capsys) -> None:
    code, out, err = cli(["train", "--grad-noise", "-1"], capsys)
    assert code == 2 and "--grad-noise must be a number >= 0" in err
    assert len(err.strip().splitlines()) == 1
