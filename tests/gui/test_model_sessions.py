"""Model mode's one source of truth: the workspace builds and trains through ModelSession, so it
gives what `main.py train` gives; sessions save and load; exports; teaching examples."""

from __future__ import annotations

import csv
import io
import json

import pytest
import torch

from core.errors import PlaygroundError, SessionError
from core.model_session import DataSpec, ModelSession, train
from gui.model.controller import ModelSettings

MOONS_MINIBATCH = ModelSettings(dataset="moons", n=120, noise=0.2, preset="small-mlp",
                                loss="BCEWithLogitsLoss", batch_size=16, test_fraction=0.25,
                                seed=7)


@pytest.fixture
def controller(make_model_controller):
    return make_model_controller  # no sharpness worker in these tests unless asked


def _session_for(settings: ModelSettings, runs: list[tuple[str, dict]]) -> ModelSession:
    """The same problem as the headless user writes it (not through the controller)."""
    session = ModelSession("small-mlp", DataSpec("moons", n=120, noise=0.2),
                           "BCEWithLogitsLoss", batch_size=16, test_fraction=0.25, seed=7)
    for name, hps in runs:
        session.add_run(name, hps)
    return session


def test_the_workspace_trains_exactly_what_main_py_train_trains(controller):
    c = controller(MOONS_MINIBATCH)
    sgd = c.add_run("SGD", lr=0.1)
    adam = c.add_run("Adam", lr=0.01)
    for _ in range(25):
        c.step_once()
    for _ in range(3):
        c.tick()
    session = _session_for(MOONS_MINIBATCH, [("SGD", {"lr": 0.1}), ("Adam", {"lr": 0.01})])
    built = session.build()
    # the same data, split and initial weights ...
    assert torch.equal(built.problem.X, c.problem.X) and torch.equal(built.problem.y, c.problem.y)
    assert torch.equal(built.X_test, c.test_X)
    train(built, [sgd.steps, adam.steps])
    for mine, theirs in zip((sgd, adam), built.runs):
        assert mine.steps == theirs.steps > 25
        # ... the same batches and updates: every loss and every final weight, bit for bit
        assert mine.trajectory.loss.tolist() == theirs.trajectory.loss.tolist()
        for name in mine.parameter_names:
            assert torch.equal(mine.parameters[name], theirs.parameters[name]), name
        # the held-out loss is the one `train` reports at the same step
        assert c.held_out(mine)[0] == built.held_out(theirs)[0]


def test_the_held_out_loss_is_measured_every_k_steps_not_every_step(controller):
    c = controller(MOONS_MINIBATCH)
    run = c.add_run("SGD")
    c.test_every = 5
    c.play()  # the timer's path (tick), not a manual step
    while run.steps <= 12:
        c.tick()
    c.pause()  # ... and the curve ends where the run stopped
    steps = c.extras[run].test_steps
    assert run.steps > 12
    assert steps[:-1] == list(range(0, steps[-2] + 1, 5)) and steps[-1] == run.steps
    with torch.no_grad():  # what the view says: under no_grad, in eval mode
        expected = c.loss_fn(c.problem.forward(
            {n: p.detach() for n, p in run.parameters.items()}, c.test_X), c.test_y).item()
    assert c.extras[run].test_loss[-1] == expected


def test_a_saved_session_loads_back_the_same_runs(controller, tmp_path):
    c = controller(MOONS_MINIBATCH)
    sgd = c.add_run("SGD", lr=0.05, hyperparameters={"momentum": 0.9})
    adam = c.add_run("Adam", lr=0.02)
    c.set_scheduler(adam, "StepLR(step_size=5, gamma=0.5)")
    c.set_frozen(sgd, "0.weight", True)
    for _ in range(5):
        c.step_once()
    c.set_lr(adam, 0.005)  # changes mid-run: saved with their steps, replayed on load
    c.set_frozen(adam, "2.bias", True)
    for _ in range(7):
        c.step_once()
    c.select(sgd)
    path = tmp_path / "moons.json"
    c.save_session(path)
    data = json.loads(path.read_text())
    assert data["format"] == "optimizer-playground-model-session"
    assert data["data"] == {"dataset": "moons", "n": 120, "noise": 0.2}
    assert [r["steps"] for r in data["runs"]] == [12, 12]
    assert data["runs"][0]["frozen"] == ["0.weight"]
    assert data["runs"][1]["frozen"] == [] and len(data["runs"][1]["changes"]) == 2

    other = controller(ModelSettings(dataset="line", n=40, model_text="Linear(1, 1)",
                                     preset=None, loss="MSELoss"))
    other.load_session(path)
    assert other.settings == c.settings
    assert [r.steps for r in other.runs] == [12, 12] and other.selected is other.runs[0]
    assert other.runs[0].hyperparameters["momentum"] == 0.9
    assert other.runs[1].scheduler_setting == ("StepLR", {"step_size": 5, "gamma": 0.5})
    assert other.runs[1].frozen == {"2.bias"}
    for mine, loaded in zip(c.runs, other.runs):
        assert loaded.frozen == mine.frozen and loaded.color == mine.color
        # freezes from step 0 and mid-run, the scheduled and the changed lr: replayed exactly
        assert loaded.trajectory.lr.tolist() == mine.trajectory.lr.tolist()
        assert loaded.trajectory.loss.tolist() == mine.trajectory.loss.tolist()
        for name in mine.parameter_names:
            assert torch.equal(loaded.parameters[name], mine.parameters[name])


@pytest.mark.parametrize("text, words", [
    ("{not json", "not a session file"),
    ('{"format": "optimizer-playground-model-session", "version": 1, "model": "Tahn()",'
     ' "data": {"dataset": "moons"}, "runs": []}', "model"),
    ('{"format": "optimizer-playground-model-session", "version": 1, "model": "small-mlp",'
     ' "data": {"dataset": "moons"}, "runs": [{"optimizer": "Adam", "frozen": ["9.weight"]}]}',
     "run 1"),
])
def test_a_broken_session_file_says_why_in_one_line_and_changes_nothing(controller, tmp_path,
                                                                        text, words):
    c = controller(MOONS_MINIBATCH)
    run = c.add_run("SGD")
    c.step_once()
    before = (c.settings, c.problem, list(c.runs), run.steps)
    path = tmp_path / "broken.json"
    path.write_text(text)
    with pytest.raises(SessionError) as error:
        c.load_session(path)
    assert words in str(error.value) and "\n" not in str(error.value)
    assert (c.settings, c.problem, list(c.runs), run.steps) == before


def test_exports_hold_every_runs_curves_and_parameters(controller, tmp_path):
    c = controller(MOONS_MINIBATCH)
    sgd = c.add_run("SGD")
    c.add_run("Adam")
    for _ in range(4):
        c.step_once()
    c.export_data(tmp_path / "runs.json")
    report = json.loads((tmp_path / "runs.json").read_text())
    assert [r["optimizer"] for r in report["runs"]] == ["SGD", "Adam"]
    first = report["runs"][0]
    assert first["trajectory"]["loss"] == sgd.trajectory.loss.tolist()
    assert first["final_parameters"]["2.bias"] == sgd.parameters["2.bias"].tolist()
    assert first["trajectory"]["test_loss"][4] == c.extras[sgd].test_loss[-1]
    c.export_data(tmp_path / "runs.csv")
    rows = list(csv.DictReader(io.StringIO((tmp_path / "runs.csv").read_text())))
    assert len(rows) == 2 * 5
    assert [float(r["loss"]) for r in rows[:5]] == sgd.trajectory.loss.tolist()
    assert float(rows[4]["test_loss"]) == c.extras[sgd].test_loss[-1]
    assert rows[5]["optimizer"] == "Adam"
    with pytest.raises(PlaygroundError, match="use .json or .csv"):
        c.export_data(tmp_path / "runs.txt")


def test_a_csv_file_trains_and_a_bad_one_names_its_line(controller, tmp_path):
    c = controller(MOONS_MINIBATCH)
    c.add_run("Adam")
    good = tmp_path / "houses.csv"
    good.write_text("area,rooms,price\n" + "\n".join(
        f"{a},{a % 3 + 1},{2.5 * a + 0.3 * (a % 3) + 1}" for a in range(30)) + "\n")
    c.load_csv(good)
    assert c.settings.csv is not None and c.settings.csv_name == "houses.csv"
    assert c.dataset.feature_names == ("area", "rooms") and c.settings.loss == "MSELoss"
    assert c.csv_columns() == ["area", "rooms", "price"]
    assert c.runs[0].problem is c.problem and c.runs[0].parameters["0.weight"].shape[1] == 2
    problem = c.problem
    bad = tmp_path / "bad.csv"
    bad.write_text("a,b,y\n1,2,3\n4,oops,6\n")
    with pytest.raises(PlaygroundError, match="line 3, column 2"):
        c.load_csv(bad)
    assert c.problem is problem
    # another target column: the features follow
    c.configure(target="area")
    assert c.dataset.target_name == "area" and c.dataset.feature_names == ("rooms", "price")


def _long_session(tmp_path, steps: int):
    session = _session_for(MOONS_MINIBATCH, [("SGD", {"lr": 0.1}), ("Adam", {"lr": 0.01})])
    for spec in session.runs:
        spec.steps = steps
    path = tmp_path / "long.json"
    session.save(path)
    return session, path


def test_a_long_session_replays_in_a_worker_and_then_shows_the_same_runs(qtbot, controller,
                                                                         tmp_path):
    session, path = _long_session(tmp_path, 400)
    c = controller(MOONS_MINIBATCH)
    mine = c.add_run("RMSprop")
    with qtbot.waitSignal(c.sigSessionOpened, timeout=20_000):
        job = c.load_session(path)
        assert job is not None and c.replaying
        assert c.runs == [mine]  # nothing changes until the replay is done
    assert not c.replaying and [r.steps for r in c.runs] == [400, 400]
    built = session.build()
    train(built, [400, 400])
    for loaded, theirs in zip(c.runs, built.runs):
        assert loaded.trajectory.loss.tolist() == theirs.trajectory.loss.tolist()
        for name in loaded.parameter_names:
            assert torch.equal(loaded.parameters[name], theirs.parameters[name])
    # the held-out loss was measured every test_every steps, as the workspace does live
    assert c.extras[c.runs[0]].test_steps == list(range(0, 401, c.test_every))


def test_a_cancelled_replay_changes_nothing(qtbot, controller, tmp_path):
    _, path = _long_session(tmp_path, 5000)
    c = controller(MOONS_MINIBATCH)
    mine = c.add_run("RMSprop")
    problem = c.problem
    job = c.load_session(path)
    with qtbot.waitSignal(job.sigCancelled, timeout=10_000):
        job.cancel()
    assert not c.replaying and c.runs == [mine] and c.problem is problem
