"""`main.py train` with --scheduler / --clip-norm / --clip-value per --optimizer, and
--session: against a plain torch loop that steps the same scheduler."""

from __future__ import annotations

import copy
import json

import pytest
import torch

import main
from core.model_session import ModelSession


def cli(argv: list[str], capsys) -> tuple[int, str, str]:
    code = main.main(argv)
    out, err = capsys.readouterr()
    return code, out, err


def train_json(argv: list[str], capsys) -> dict:
    code, out, err = cli(["train", *argv, "--json"], capsys)
    assert code == 0, err
    return json.loads(out)


def plain_loop(session: ModelSession, make_optimizer, make_scheduler, steps: int,
               clip_norm: float | None = None) -> tuple[list[float], list[float]]:
    """What a PyTorch user writes: full batch, zero_grad, loss, backward, clip, step,
    scheduler.step(). Returns the loss and the lr of each step (and the last point)."""
    built = session.build()
    model = copy.deepcopy(built.model)
    X, y = built.problem.X, built.problem.y
    optimizer = make_optimizer(model.parameters())
    scheduler = make_scheduler(optimizer)
    losses, lrs = [], []
    for step in range(steps + 1):
        optimizer.zero_grad()
        loss = built.loss_fn(model(X), y)
        loss.backward()
        losses.append(loss.item())
        lrs.append(optimizer.param_groups[0]["lr"])
        if step == steps:
            break
        if clip_norm is not None:
            torch.nn.utils.clip_grad_norm_(model.parameters(), max_norm=clip_norm)
        optimizer.step()
        scheduler.step()
    return losses, lrs


def test_each_option_belongs_to_the_optimizer_before_it(capsys) -> None:
    report = train_json(["--steps", "12", "--n", "80",
                         "--optimizer", "SGD(lr=0.2)", "--scheduler", "StepLR(step_size=4)",
                         "--clip-norm", "0.05",
                         "--optimizer", "Adam(lr=0.01)"], capsys)
    sgd, adam = report["runs"]
    assert sgd["scheduler"] == "StepLR(step_size=4)" and sgd["clip_norm"] == 0.05
    assert "scheduler" not in adam and "clip_norm" not in adam
    assert "clipped" in sgd["trajectory"] and "clipped" not in adam["trajectory"]
    session = ModelSession(data=None)
    session.data.n = 80
    losses, lrs = plain_loop(
        session, lambda p: torch.optim.SGD(p, lr=0.2),
        lambda o: torch.optim.lr_scheduler.StepLR(o, step_size=4), 12, clip_norm=0.05)
    assert sgd["trajectory"]["lr"] == lrs  # the lr each step used, as torch scheduled it
    assert sgd["trajectory"]["loss"] == losses  # bit for bit
    assert adam["trajectory"]["lr"] == [0.01] * 13


def test_options_before_any_optimizer_are_every_runs(capsys) -> None:
    report = train_json(["--steps", "6", "--n", "60", "--scheduler",
                         "CosineAnnealingLR(T_max=6)", "--clip-value", "0.5",
                         "--optimizer", "SGD(lr=0.1)", "--clip-norm", "1",
                         "--optimizer", "Adam(lr=0.01)"], capsys)
    sgd, adam = report["runs"]
    assert sgd["scheduler"] == adam["scheduler"] == "CosineAnnealingLR(T_max=6)"
    assert sgd["clip_norm"] == 1.0 and "clip_value" not in sgd  # its own replaces all's
    assert adam["clip_value"] == 0.5
    session = ModelSession()
    session.data.n = 60
    _, lrs = plain_loop(session, lambda p: torch.optim.Adam(p, lr=0.01),
                        lambda o: torch.optim.lr_scheduler.CosineAnnealingLR(o, T_max=6), 6)
    assert adam["trajectory"]["lr"] == lrs


@pytest.mark.parametrize("argv, words", [
    (["--optimizer", "SGD(lr=0.1)", "--scheduler", "StepLR(step_size=0)"],
     ["StepLR", "step_size", "0"]),
    (["--scheduler", "CosineAnnealingLR(T_max=-3)"], ["CosineAnnealingLR", "T_max", "-3"]),
    (["--scheduler", "WarpLR(speed=9)"], ["WarpLR"]),
    (["--optimizer", "SGD(lr=0.1)", "--clip-norm", "1", "--clip-norm", "2"],
     ["--clip-norm is given twice"]),
    (["--clip-norm", "1", "--clip-value", "2"], ["--clip-norm or --clip-value"]),
    (["--clip-norm", "-1"], ["clip-norm", "-1"]),
    (["--session", "MISSING"], ["cannot read"]),
])
def test_bad_options_are_one_line_and_exit_2(tmp_path, capsys, argv, words) -> None:
    argv = [str(tmp_path / "none.json") if a == "MISSING" else a for a in argv]
    code, out, err = cli(["train", "--steps", "2", *argv], capsys)
    assert code == 2 and out == ""
    assert err.count("\n") == 1
    for word in words:
        assert word in err


def test_train_session_replays_a_saved_session_and_refuses_new_data_options(tmp_path,
                                                                            capsys) -> None:
    from core.model_session import RunSpec

    session = ModelSession(batch_size=25)
    session.add_run("SGD", {"lr": 0.1}, scheduler="StepLR(step_size=5, gamma=0.5)")
    built = session.build()
    run = built.runs[0]
    run.step(8)
    run.set_hyperparameter("lr", 0.3)
    run.set_frozen("0.bias", True)
    run.step(7)
    saved = ModelSession(session.model, session.data, session.loss, session.batch_size,
                         session.test_fraction, session.seed, [RunSpec.from_run(run)])
    path = tmp_path / "model.json"
    saved.save(path)
    report = train_json(["--session", str(path)], capsys)
    (mine,) = report["runs"]
    assert mine["steps"] == 15 and mine["frozen"] == ["0.bias"]
    assert mine["trajectory"]["loss"] == [float(v) for v in run.trajectory.loss]
    assert mine["trajectory"]["lr"] == [float(v) for v in run.trajectory.lr]
    assert [c["kind"] for c in mine["changes"]] == ["hyperparameters", "freeze"]
    code, _, err = cli(["train", "--session", str(path), "--model", "linear-regression"],
                       capsys)
    assert code == 2 and "--model describes a new session" in err
    shorter = train_json(["--session", str(path), "--steps", "5"], capsys)
    assert shorter["runs"][0]["steps"] == 5 and "changes" not in shorter["runs"][0]
