"""A race as a standalone PyTorch script (core/script_export.py): the script, run in its own
Python, prints what the engine recorded, bit for bit, for every optimizer and for runs changed
mid-way."""

from __future__ import annotations

import ast
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from core.errors import ExportError
from core.export import result_dict
from core.gradient_tools import GradientClipping, GradientNoise
from core.optimizers import CATALOGUE
from core.script_export import RACE_ENGINE_ONLY, formula_code, race_script, write_script
from core.session import Session
from core.surfaces import compile_formula, get_surface, surface_from_formula

ENGINE_ONLY = RACE_ENGINE_ONLY  # the app's status words: see core/script_export.py


def same_threads() -> dict[str, str]:
    """The script's torch uses as many threads as this process's (a reduction split over
    another number of threads can round its last bit differently, e.g. BatchNorm's)."""
    import torch

    return {**os.environ, "OMP_NUM_THREADS": str(torch.get_num_threads())}


def run_script(text: str, tmp_path: Path) -> dict:
    path = tmp_path / "run.py"
    path.write_text(text)
    done = subprocess.run([sys.executable, str(path)], capture_output=True, text=True,
                          env=same_threads(), timeout=120, cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-2000:]
    return json.loads(done.stdout)


def exact(value: object) -> str:
    """JSON text with sorted keys: floats by repr, so -0.0 and 0.0 differ, as bits do."""
    return json.dumps(value, sort_keys=True)


def assert_script_reproduces(session: Session, tmp_path: Path) -> dict:
    got = run_script(race_script(session), tmp_path)
    want = result_dict(session)
    for key in ("format", "version", "surface", "start"):
        assert got[key] == want[key]
    assert len(got["runs"]) == len(want["runs"])
    for number, (mine, engine) in enumerate(zip(got["runs"], want["runs"]), 1):
        assert set(engine) - set(mine) == set(ENGINE_ONLY), number  # exactly these are left out
        engine = {k: v for k, v in engine.items() if k not in ENGINE_ONLY}
        assert set(mine) == set(engine), number
        for column, values in engine["trajectory"].items():
            assert exact(mine["trajectory"].get(column)) == exact(values), (number, column)
        assert exact(mine) == exact(engine), number
    return got


def test_every_optimizer_of_the_catalogue(tmp_path) -> None:
    session = Session(get_surface("himmelblau"))
    for name in CATALOGUE:
        lr = {"Adadelta": 1.0, "LBFGS": 0.5, "Rprop": 0.01}.get(name, 0.005)
        session.add_run(name, {"lr": lr})
    assert {r.optimizer_name for r in session.runs} == set(CATALOGUE)
    session.play(60)
    got = assert_script_reproduces(session, tmp_path)
    assert all(len(r["trajectory"]["step"]) == 61 for r in got["runs"])


def changed_race() -> Session:
    """Runs whose user moved things between steps, one kind of change or more each."""
    session = Session(get_surface("rosenbrock"))
    sgd = session.add_run("SGD", {"lr": 1e-3, "momentum": 0.9})
    cosine = session.add_run("Adam", {"lr": 0.02}, scheduler="CosineAnnealingLR(T_max=80)")
    cycle = session.add_run("Adam", {"lr": 0.01},
                            scheduler="OneCycleLR(max_lr=0.05, total_steps=60)")
    noisy = session.add_run("SGD", {"lr": 5e-4}, noise=GradientNoise(2.0, seed=3),
                            clipping=GradientClipping("norm", 5.0))
    plateau = session.add_run("RMSprop", {"lr": 0.01},
                              scheduler="ReduceLROnPlateau(patience=3, factor=0.5)")
    warm = session.add_run("SGD", {"lr": 1e-3, "momentum": 0.5}, scheduler=(
        "SequentialLR(schedulers=[LinearLR(start_factor=0.1, total_iters=10), "
        "ExponentialLR(gamma=0.99)], milestones=[10])"))
    lbfgs = session.add_run("LBFGS", {"lr": 0.5, "max_iter": 4},
                            clipping=GradientClipping("value", 50.0))
    rebuilt = session.add_run("Adam", {"lr": 0.03})
    cyclic = session.add_run("SGD", {"lr": 1e-4, "momentum": 0.9},
                             scheduler="CyclicLR(base_lr=0.0001, max_lr=0.001, step_size_up=10)")
    session.step(40)
    sgd.set_hyperparameter("lr", 5e-4)
    cosine.set_hyperparameter("lr", 0.01)  # a scheduled run: the base lr is scaled
    cycle.set_frozen("x", True)
    noisy.set_clipping(None)
    plateau.set_scheduler(None)
    warm.set_hyperparameter("lr", 2e-3)
    lbfgs.set_noise(GradientNoise(0.5, seed=1))
    rebuilt.set_hyperparameter("amsgrad", True)  # not live: a fresh optimizer
    rebuilt.set_scheduler("StepLR(step_size=5, gamma=0.7)")
    rebuilt.set_hyperparameter("lr", 0.02)  # before the new schedule's first step
    cyclic.set_hyperparameter("lr", 2e-4)
    session.step(30)
    sgd.set_frozen("y", True)
    sgd.set_scheduler("StepLR(step_size=10, gamma=0.5)")
    noisy.set_noise(None)
    noisy.set_clipping(GradientClipping("value", 1.0))
    cycle.set_frozen("x", False)
    cycle.set_scheduler(None)
    lbfgs.set_frozen("y", True)
    plateau.set_hyperparameter("momentum", 0.5)  # not live for RMSprop
    session.step(30)
    return session


@pytest.fixture(scope="module")
def changed() -> Session:
    return changed_race()


def test_sessions_with_mid_run_changes(changed, tmp_path) -> None:
    assert sum(len(r.changes) for r in changed.runs) >= 18
    assert_script_reproduces(changed, tmp_path)


def test_a_bad_run_index(changed) -> None:
    with pytest.raises(ExportError, match="no run 10"):
        race_script(changed, run_index=9)


def test_formulas_of_every_kind(tmp_path) -> None:
    """Functions, constants folded as the engine folds them, a division and a power of two
    constants (torch, not Python's), and a constant function argument."""
    formula = ("sin(x) + cos(y)/2 - tan(x/9) + exp(-x**2) + log(1 + x**2) + sqrt(2 + y**2)"
               " + abs(x) + tanh(y) + sinh(x/5) + cosh(y/7) + atan(x) + sigmoid(y)"
               " + softplus(x) + min(x, y) + max(x, 1) + pi*e + 3/4 + 2**0.5 + exp(1)"
               " + x^3/10 - -y + 1/(2 + x**2) * (4 - 2)")
    session = Session(surface_from_formula(formula, (-2, 2), (-2, 2), start=(0.3, -0.4)))
    session.add_run("Adam", {"lr": 0.05})
    session.add_run("SGD", {"lr": 0.01}, frozen=["y"])
    session.play(25)
    assert_script_reproduces(session, tmp_path)


def test_the_formula_is_translated_from_its_tree_not_copied() -> None:
    code = formula_code(compile_formula("-x**2 + 2^3 - (y - 1)").tree)
    assert code == "-x ** 2.0 + float(torch.pow(torch.tensor(2.0, dtype=torch.float64), 3.0))" \
                   " - (y - 1.0)"
    ast.parse(code)  # Python code, parsed here, never run by the app


def test_the_script_reads_as_a_training_loop(changed) -> None:
    text = race_script(changed, run_index=0)
    ast.parse(text)
    assert "import numpy" not in text and "core" not in text.split('"""', 2)[2]
    loop = text[text.index("for step in range("):]
    order = [loop.index(s) for s in ("optimizer.zero_grad()", "loss = f(x, y)",
                                     "loss.backward()", "optimizer.step()", "scheduler.step()")]
    assert order == sorted(order)
    assert "if step == 40:" in text and 'group["lr"] = 0.0005' in text.replace("'", '"')
    assert "y.requires_grad_(False)" in text
    assert "torch.optim.SGD(parameters, lr=0.001, momentum=0.9, dampening=0.0, " \
           "weight_decay=0.0, nesterov=False)" in text


def test_write_script_is_atomic_and_one_line_for_an_unwritable_path(tmp_path) -> None:
    session = Session(get_surface("himmelblau"))
    session.add_run("SGD", {"lr": 0.01})
    session.play(5)
    path = write_script(session, tmp_path / "run.py")
    assert path.read_text() == race_script(session)
    assert [p.name for p in tmp_path.iterdir()] == ["run.py"]  # no temporary file left
    with pytest.raises(ExportError) as e:
        write_script(session, tmp_path / "missing" / "run.py")
    assert "\n" not in str(e.value) and "run.py" in str(e.value)
