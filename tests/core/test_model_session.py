"""Model-mode sessions (core/model_session.py): build, JSON round trip, validation, training."""

from __future__ import annotations

import json

import pytest
import torch

from core.errors import SessionError
from core.model_session import FORMAT, DataSpec, ModelSession, RunSpec, flat_parameters, train
from core.problems.data import make_dataset, shape_targets, train_test_split
from core.problems.model import build_model

CSV_TEXT = "x1,x2,kind\n" + "".join(f"{i * 0.1:.1f},{(i % 4) * 0.5},{'ab'[i % 2]}\n"
                                    for i in range(24))


def small_session() -> ModelSession:
    session = ModelSession("Linear(2, 6), Tanh(), Linear(6, 1)",
                           DataSpec("moons", n=40, noise=0.2), batch_size=8,
                           test_fraction=0.25, seed=4)
    session.add_run("SGD", {"lr": 0.3, "momentum": 0.9}, frozen=["0.bias"], label="momentum")
    session.add_run("Adam", {"lr": 0.02, "betas": (0.8, 0.99)}, steps=7)
    return session


def test_build_gives_the_problem_and_runs_the_session_describes() -> None:
    built = small_session().build()
    assert built.model_text == "Linear(2, 6), Tanh(), Linear(6, 1)"
    assert built.loss_name == "BCEWithLogitsLoss"
    assert built.problem.parameter_names == ("0.weight", "0.bias", "2.weight", "2.bias")
    assert built.problem.batch_size == 8 and built.problem.n == 30
    assert [r.optimizer_name for r in built.runs] == ["SGD", "Adam"]
    assert built.runs[0].frozen == {"0.bias"} and built.runs[0].label == "momentum"
    assert built.runs[0].color != built.runs[1].color
    # every run starts from the seed's weights
    expected = build_model("Linear(2, 6), Tanh(), Linear(6, 1)", 2, 4)
    for run in built.runs:
        for name, p in expected.named_parameters():
            assert torch.equal(run.parameters[name].detach(), p.detach())


def test_json_round_trip_rebuilds_bit_identical_runs(tmp_path) -> None:
    session = small_session()
    path = tmp_path / "model.json"
    session.save(path)
    loaded = ModelSession.load(path)
    assert loaded.to_dict() == session.to_dict()
    assert json.loads(path.read_text())["format"] == FORMAT
    a, b = session.build(), loaded.build()
    for run_a, run_b in zip(a.runs, b.runs):
        run_a.step(9)
        run_b.step(9)
        assert torch.equal(flat_parameters(run_a), flat_parameters(run_b))
        assert list(run_a.trajectory.loss) == list(run_b.trajectory.loss)
    assert list(tmp_path.iterdir()) == [path]  # written atomically: no temporary file left


def test_a_csv_session_keeps_the_file_contents() -> None:
    session = ModelSession("logistic-regression", DataSpec(dataset=None, csv=CSV_TEXT,
                                                           name="kinds.csv", target="kind"),
                           test_fraction=0)
    session.add_run("Adam", {"lr": 0.1})
    loaded = ModelSession.from_json(session.to_json())
    built = loaded.build()
    assert built.dataset.class_names == ("a", "b") and built.dataset.n == 24
    assert loaded.to_dict()["data"] == {"csv": CSV_TEXT, "name": "kinds.csv", "target": "kind"}
    assert torch.equal(built.problem.X, session.build().problem.X)


def test_held_out_metrics_are_the_no_grad_loss_and_leave_the_model_alone() -> None:
    built = small_session().build()
    run = built.runs[1]
    run.step(5)
    test_loss, accuracy = built.held_out(run)
    data = make_dataset("moons", n=40, noise=0.2, seed=4)
    split = train_test_split(data, 0.25, 4)
    model = build_model("Linear(2, 6), Tanh(), Linear(6, 1)", 2, 4)
    with torch.no_grad():
        for name, p in model.named_parameters():
            p.copy_(run.parameters[name])
        out = model(split.test.X)
        y = shape_targets(split.test.y, "BCEWithLogitsLoss")
        assert test_loss == float(torch.nn.BCEWithLogitsLoss()(out, y))
        assert accuracy == float(((out.reshape(-1) > 0).long() == split.test.y).double().mean())
    # the shared model still holds the initial weights (the runs train their own leaves)
    initial = build_model("Linear(2, 6), Tanh(), Linear(6, 1)", 2, 4)
    for (_, p), (_, q) in zip(built.model.named_parameters(), initial.named_parameters()):
        assert torch.equal(p, q)


def test_train_measures_every_k_steps_and_keeps_paths() -> None:
    session = small_session()
    built = session.build()
    records = train(built, [r.steps for r in session.runs], eval_every=3, keep_paths=True)
    assert sorted(records[1].test_loss) == [0, 3, 6, 7]
    assert len(records[0].path) == 201 and len(records[1].path) == 8
    assert torch.equal(records[1].path[-1], flat_parameters(built.runs[1]))
    frozen = built.problem.initial_parameters()["0.bias"]
    assert torch.equal(built.runs[0].parameters["0.bias"].detach(), frozen)


def test_freeze_names_takes_layer_indices_and_names() -> None:
    session = ModelSession("small-mlp")
    assert session.freeze_names(["2", "0.bias"]) == ["0.bias", "2.weight", "2.bias"]


def _valid() -> dict:
    return small_session().to_dict()


def _with(path: str, value) -> dict:
    data = _valid()
    target = data
    keys = path.split(".")
    for key in keys[:-1]:
        target = target[int(key)] if isinstance(target, list) else target[key]
    last = keys[-1]
    if value is KeyError:
        del target[last]
    elif isinstance(target, list):
        target[int(last)] = value
    else:
        target[last] = value
    return data


BAD = [
    (_with("format", "optimizer-playground-session"), "not a model session file: 'format'"),
    (_with("version", 2), "'version' must be a whole number from 1 to 1"),
    (_with("colour", 1), "unknown field 'colour'"),
    (_with("model", "Linear(2, 6), Tanhh(), Linear(6, 1)"), "model: unknown layer 'Tanhh'"),
    (_with("model", 3), "'model' must be text"),
    (_with("data.dataset", "mons"), "data: unknown dataset 'mons'"),
    (_with("data.noise", -1), "data: 'noise' must be a number from 0 to 10"),
    (_with("data.n", 2), "data: 'n' must be a whole number from 4"),
    (_with("data", {"csv": "a,b\nx,1\n2,0\n"}),
     "data: line 2, column 1 ('a'): 'x' is not a number"),
    (_with("loss", "MSELoss"), "loss: MSELoss does not fit"),
    (_with("batch_size", -1), "'batch_size' must be a whole number"),
    (_with("test_fraction", 1.0), "'test_fraction' must be a number in [0, 1)"),
    (_with("seed", True), "'seed' must be a whole number"),
    (_with("runs.0.frozen", ["0.wieght"]), "run 1: 'frozen' must be a list of parameter names"),
    (_with("runs.1.color", "#zzzzzz"), "run 2: 'color' must be #rrggbb"),
    (_with("runs.1.optimizer", "Adamm"), "run 2: unknown optimizer 'Adamm'"),
    (_with("runs.1.hyperparameters", {"lr": -1}), "run 2:"),
    (_with("runs.0.steps", -3), "run 1: 'steps' must be a whole number"),
    (_with("runs.0.enabled", "yes"), "run 1: 'enabled' must be true or false"),
    (_with("runs", KeyError), "missing field 'runs'"),
]


@pytest.mark.parametrize("data, message", BAD)
def test_a_bad_file_gives_one_line_naming_the_field(data, message) -> None:
    with pytest.raises(SessionError) as caught:
        ModelSession.from_json(json.dumps(data))
    assert message in str(caught.value)
    assert "\n" not in str(caught.value)


def test_unreadable_json_and_nan_are_refused(tmp_path) -> None:
    with pytest.raises(SessionError, match="not a session file"):
        ModelSession.from_json("{not json")
    text = json.dumps(_valid()).replace('"test_fraction": 0.25', '"test_fraction": NaN')
    with pytest.raises(SessionError, match="test_fraction"):
        ModelSession.from_json(text)
    with pytest.raises(SessionError, match="cannot read"):
        ModelSession.load(tmp_path / "missing.json")


def test_a_failed_save_leaves_the_old_file(tmp_path, monkeypatch) -> None:
    path = tmp_path / "model.json"
    small_session().save(path)
    before = path.read_bytes()
    session = small_session()
    session.extra["note"] = object()  # not JSON: the write fails before the rename
    with pytest.raises(TypeError):
        session.save(path)
    assert path.read_bytes() == before


def test_default_session_trains() -> None:
    session = ModelSession.default()
    assert [r.optimizer for r in session.runs] == ["SGD", "Adam"]
    built = session.build()
    assert built.loss_name == "BCEWithLogitsLoss" and built.X_test is not None
    assert isinstance(session.runs[0], RunSpec)


def test_the_file_limit_covers_a_csv_as_json_escapes_it(tmp_path, monkeypatch) -> None:
    # JSON writes a tab as 2 bytes and a non-ASCII letter as \\uXXXX: a CSV within every data
    # limit grew past the loader's old limit (the CSV's size + 1 MB), so the app could not open
    # its own file. The limit now covers the worst case, and save refuses what load would.
    import core.model_session as ms
    from core.problems.data import MAX_CSV_BYTES

    assert ms.MAX_FILE_BYTES >= 6 * MAX_CSV_BYTES
    csv = "x1,x2,kind\n" + "".join(f"{i * 0.1:.1f},{(i % 4) * 0.5},{'éü'[i % 2]}\n"
                                    for i in range(24))
    session = ModelSession("logistic-regression", DataSpec(dataset=None, csv=csv,
                                                           name="accents.csv", target="kind"),
                           test_fraction=0)
    session.add_run("Adam", {"lr": 0.1})
    path = tmp_path / "accents.json"
    session.save(path)
    assert ModelSession.load(path).to_dict()["data"]["csv"] == csv
    size = path.stat().st_size
    monkeypatch.setattr(ms, "MAX_FILE_BYTES", size - 1)
    before = path.read_bytes()
    with pytest.raises(SessionError, match="would be larger than"):
        session.save(path)  # the app never writes a file it would refuse to open
    assert path.read_bytes() == before


def test_saving_into_a_missing_folder_is_one_line(tmp_path) -> None:
    target = tmp_path / "no" / "such" / "model.json"
    with pytest.raises(SessionError, match="cannot write .*model.json"):
        small_session().save(target)


# --- a whole-number CSV target under MSELoss is numbers, not classes ----------------------------

RATINGS_CSV = "x,rating\n" + "".join(f"{i * 0.25:.2f},{1 + i % 5}\n" for i in range(20))


def _plain_rows(text: str) -> tuple[torch.Tensor, torch.Tensor]:
    """The CSV as a PyTorch user reads it: every column a float, the last one the target."""
    import numpy as np
    rows = np.loadtxt(text.splitlines()[1:], delimiter=",", ndmin=2)
    return torch.tensor(rows[:, :-1]), torch.tensor(rows[:, -1:])


def test_mse_on_a_whole_number_csv_target_trains_regression_on_those_numbers() -> None:
    session = ModelSession("Linear(1, 1)", DataSpec(dataset=None, csv=RATINGS_CSV,
                                                     name="ratings.csv"),
                           "MSELoss", test_fraction=0.0, seed=3)
    session.add_run("SGD", {"lr": 0.05}, steps=5)
    assert session.load_data().task == "regression"
    built = ModelSession.from_dict(session.to_dict()).build()  # the file's check builds too
    X, y = _plain_rows(RATINGS_CSV)
    assert built.dataset.task == "regression" and built.dataset.class_names == ()
    assert built.problem.y.dtype == torch.float64 and built.problem.y.shape == (20, 1)
    assert torch.equal(built.problem.y, y)  # 1, 2, 3, 4, 5, ... as numbers
    # the loss is nn.MSELoss on those numbers, step by step as the textbook loop has it
    run = built.runs[0]
    run.step(5)
    expected, model = _textbook_mse_losses(X, y, seed=3, steps=5)
    assert list(run.trajectory.loss) == expected
    for name, p in model.named_parameters():
        assert torch.equal(run.parameters[name].detach(), p.detach())


def test_cross_entropy_still_reads_a_whole_number_csv_target_as_classes() -> None:
    for loss in (None, "CrossEntropyLoss"):
        session = ModelSession("Linear(1, 5)", DataSpec(dataset=None, csv=RATINGS_CSV),
                               loss, test_fraction=0.0)
        built = session.build()
        assert built.dataset.task == "multiclass" and built.loss_name == "CrossEntropyLoss"
        assert built.dataset.class_names == ("1", "2", "3", "4", "5")
        assert built.problem.y.dtype == torch.int64
        assert built.problem.y.tolist() == [i % 5 for i in range(20)]  # class indices


def test_mse_on_word_classes_is_refused_in_one_line_naming_the_loss() -> None:
    text = "x,animal\n" + "".join(f"{i},{['cat', 'dog'][i % 2]}\n" for i in range(8))
    session = ModelSession("Linear(1, 1)", DataSpec(dataset=None, csv=text), "MSELoss",
                           test_fraction=0.0)
    session.add_run("SGD")
    with pytest.raises(SessionError, match=r"^loss: the target 'animal' holds words"):
        ModelSession.from_dict(session.to_dict())


def test_train_cli_on_a_whole_number_csv_with_mse_is_regression(tmp_path) -> None:
    import argparse

    from core.model_cli import add_train_arguments, run_train_command
    path = tmp_path / "ratings.csv"
    path.write_text(RATINGS_CSV)
    parser = argparse.ArgumentParser()
    add_train_arguments(parser)
    report = json.loads(run_train_command(parser.parse_args(
        ["--data", str(path), "--loss", "MSELoss", "--model", "Linear(1, 1)", "--steps", "3",
         "--seed", "2", "--test-fraction", "0", "--optimizer", "SGD(lr=0.05)", "--json"])))
    assert report["data"]["task"] == "regression" and report["data"]["classes"] == []
    assert report["data"]["loss"] == "MSELoss"
    X, y = _plain_rows(RATINGS_CSV)
    assert report["runs"][0]["trajectory"]["loss"] == \
        _textbook_mse_losses(X, y, seed=2, steps=3)[0]


def _textbook_mse_losses(X, y, *, seed: int, steps: int) -> tuple[list[float], torch.nn.Module]:
    """The loss before each of `steps` SGD(lr=0.05) steps of Linear(1, 1) on (X, y), and after
    the last, as a PyTorch user's loop computes them; and the model trained."""
    model = build_model("Linear(1, 1)", 1, seed)
    opt = torch.optim.SGD(model.parameters(), lr=0.05)
    losses = []
    for _ in range(steps):
        opt.zero_grad()
        loss = torch.nn.MSELoss()(model(X), y)
        losses.append(loss.item())
        loss.backward()
        opt.step()
    losses.append(torch.nn.MSELoss()(model(X), y).item())
    return losses, model
