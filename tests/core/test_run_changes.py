"""The change log of a run (core/run.py RunChange): what the user changes between steps is
recorded with its step, saved in sessions, and replayed at its step, bit for bit."""

from __future__ import annotations

import json
import math

import pytest

from core.animation import AnimationPlan, RaceStepper, plan_animation
from core.errors import SessionError
from core.gradient_tools import GradientClipping, GradientNoise
from core.model_session import ModelSession, RunSpec, train
from core.run import Run, RunChange
from core.session import Session
from core.surfaces import get_surface


def exact(run: Run) -> dict[str, list[str]]:
    """Every trajectory column as float.hex text: equal only if bit for bit equal."""
    t = run.trajectory
    return {f: [float(v).hex() for v in t.column(f)] for f in t.fields}


def race_with_changes() -> Session:
    """The issue's example: lr moved at step 120, a scheduler at 200, y frozen at 300."""
    session = Session(get_surface("rosenbrock"))
    run = session.add_run("SGD", {"lr": 1e-3, "momentum": 0.9})
    other = session.add_run("Adam", {"lr": 0.05}, clipping=GradientClipping("norm", 5.0))
    run.step(120)
    other.step(120)
    run.set_hyperparameter("lr", 5e-4)
    other.set_noise(GradientNoise(0.3, seed=7))
    run.step(80)
    other.step(80)
    run.set_scheduler("CosineAnnealingLR(T_max=200)")
    other.set_hyperparameter("amsgrad", True)  # not live: torch's optimizer is rebuilt
    run.step(100)
    other.step(100)
    run.set_frozen("y", True)
    other.set_clipping(None)
    run.step(100)
    other.step(100)
    return session


def test_changes_are_recorded_with_their_step() -> None:
    run = race_with_changes().runs[0]
    assert [(c.step, c.kind) for c in run.changes] == [
        (120, "hyperparameters"), (200, "scheduler"), (300, "freeze")]
    assert run.changes[0].payload == {"values": {"lr": 5e-4}, "rebuilt": False}
    assert run.changes[2].text == "freeze y"
    # the run starts from what it was built with, not from what it is now
    assert run.initial_settings["hyperparameters"]["lr"] == 1e-3
    assert run.initial_settings["frozen"] == ()
    assert run.initial_settings["scheduler"] is None
    assert run.config()["frozen"] == ["y"]
    assert run.initial_config()["frozen"] == []


def test_a_saved_race_with_changes_replays_bit_for_bit(tmp_path) -> None:
    session = race_with_changes()
    rebuilt = session.runs[1].changes[1]
    assert rebuilt.kind == "hyperparameters" and rebuilt.payload["rebuilt"] is True
    path = tmp_path / "race.json"
    session.save(path)
    loaded = Session.load(path)
    assert [r.steps for r in loaded.runs] == [0, 0]
    assert loaded.runs[0].hyperparameters["lr"] == 1e-3  # the initial lr, before the replay
    loaded.play()
    for original, replayed in zip(session.runs, loaded.runs):
        assert replayed.steps == original.steps == 400
        assert exact(replayed) == exact(original)
        assert replayed.config() == original.config()  # ends with the changed settings
        assert replayed.changes == original.changes
    # the lr was moved at step 120: entry 120's lr is the new one (it is the lr step 121 uses)
    lr = loaded.runs[0].trajectory.lr
    assert lr[119] == 1e-3 and lr[120] == 5e-4
    assert math.isnan(loaded.runs[0].trajectory.column("grad_y")[-1])  # frozen at 300


def test_without_the_replay_the_path_differs() -> None:
    """The replay is what makes them equal: the final settings from the start do not."""
    session = race_with_changes()
    original = session.runs[0]
    c = original.config()
    plain = Run(session.surface, c["optimizer"], c["hyperparameters"], session.start,
                frozen=tuple(c["frozen"]), scheduler=original.scheduler_setting)
    plain.step(400)
    assert exact(plain)["x"] != exact(original)["x"]


def test_replay_copy_and_rewind_take_the_same_path() -> None:
    original = race_with_changes().runs[1]
    copy = original.replay_copy()
    assert copy.steps == 0 and len(copy.pending_changes) == len(original.changes)
    copy.step(400)
    assert exact(copy) == exact(original)
    copy.rewind()
    assert copy.steps == 0 and copy.clipping == GradientClipping("norm", 5.0)
    copy.step(400)
    assert exact(copy) == exact(original)


def test_a_change_at_step_0_is_folded_when_it_is_the_same_as_building_with_it() -> None:
    run = Run(get_surface("himmelblau"), "Adam", {"lr": 0.01})
    run.set_hyperparameter("lr", 0.02)
    run.set_frozen("x", True)
    run.set_clipping(GradientClipping("value", 1.0))
    assert run.changes == []
    assert run.initial_settings["hyperparameters"]["lr"] == 0.02
    assert run.initial_settings["frozen"] == ("x",)
    assert run.initial_settings["clipping"] == GradientClipping("value", 1.0)


def test_a_change_at_step_0_that_differs_from_a_fresh_build_is_kept() -> None:
    run = Run(get_surface("himmelblau"), "SGD", {"lr": 0.01})
    run.set_scheduler("OneCycleLR(max_lr=0.05, total_steps=100)")
    # a fresh run built with the resulting lr (OneCycleLR's max_lr) is not this one
    assert [(c.step, c.kind) for c in run.changes] == [(0, "scheduler")]
    run.step(60)
    copy = run.replay_copy()
    copy.step(60)
    assert exact(copy) == exact(run)


def test_a_dragged_slider_is_one_change_and_clipping_removed_is_one() -> None:
    run = Run(get_surface("himmelblau"), "SGD", {"lr": 0.01}, clipping=GradientClipping(
        "norm", 1.0))
    run.step(10)
    for lr in (0.011, 0.012, 0.013):
        run.set_hyperparameter("lr", lr)
    run.set_clipping(None)
    assert [(c.step, c.kind, c.payload) for c in run.changes] == [
        (10, "hyperparameters", {"values": {"lr": 0.013}, "rebuilt": False}),
        (10, "clipping", {})]
    run.step(10)
    copy = run.replay_copy()
    copy.step(20)
    assert exact(copy) == exact(run)


def test_a_change_while_replayed_changes_wait_drops_them_and_reset_clears_the_log() -> None:
    original = race_with_changes().runs[0]
    copy = original.replay_copy()
    copy.step(150)  # the lr change (120) is replayed, the scheduler (200) and freeze wait
    copy.set_hyperparameter("lr", 2e-4)
    assert [(c.step, c.kind) for c in copy.changes] == [(120, "hyperparameters"),
                                                        (150, "hyperparameters")]
    assert copy.pending_changes == []
    copy.reset()
    assert copy.changes == [] and copy.initial_settings["hyperparameters"]["lr"] == 2e-4


def test_old_files_load_and_bad_changes_are_one_line_naming_the_field(tmp_path) -> None:
    session = race_with_changes()
    data = session.to_dict()
    assert "changes" not in Session(session.surface, runs=[Run(session.surface)]).to_dict()[
        "runs"][0]
    old = json.loads(json.dumps(data))
    for run in old["runs"]:
        del run["changes"]
    assert len(Session.from_dict(old).runs) == 2  # an older file: no replay, loads

    def refused(change: object, steps: int = 400) -> str:
        bad = json.loads(json.dumps(data))
        bad["runs"][0]["changes"] = [change]
        bad["runs"][0]["steps"] = steps
        with pytest.raises(SessionError) as e:
            Session.from_dict(bad)
        assert "\n" not in str(e.value)
        return str(e.value)

    assert refused({"step": 5, "kind": "teleport"}).startswith("run 1: 'changes' 1: 'kind'")
    assert "'step'" in refused({"step": -1, "kind": "freeze", "name": "y", "frozen": True})
    assert "after the run's saved steps" in refused(
        {"step": 500, "kind": "freeze", "name": "y", "frozen": True})
    assert "'frozen'" in refused({"step": 5, "kind": "freeze", "name": "y", "frozen": 1})
    message = refused({"step": 5, "kind": "freeze", "name": "z", "frozen": True})
    assert message.startswith("run 1: change 1 (step 5, freeze)") and "'z'" in message
    assert "lr" in refused({"step": 5, "kind": "hyperparameters", "values": {"lr": -1}})
    assert "StepLR" in refused({"step": 5, "kind": "scheduler", "scheduler": "StepLR(gamma=2)"})
    assert "unknown field 'sigma'" in refused({"step": 5, "kind": "noise", "sigma": 1})


def test_the_animation_replays_the_changes_at_their_steps() -> None:
    session = race_with_changes()
    plan = plan_animation(session, fps=10, steps_per_frame=100, steps=400)
    assert plan.last_step == 400
    stepper = RaceStepper(session, plan)
    stepper.go_to(plan.frame_count - 1)
    runs = list(stepper.session.runs)
    for original, replayed in zip(session.runs, runs):
        assert exact(replayed) == exact(original)
    stepper.go_to(1)  # back: the same runs, rewound, and the changes wait again
    assert stepper.session.runs == runs and runs[0].steps == 100
    assert runs[0].hyperparameters["lr"] == 1e-3
    stepper.go_to(plan.frame_count - 1)
    assert exact(runs[0]) == exact(session.runs[0])
    assert isinstance(plan, AnimationPlan)


def test_a_model_session_with_changes_replays_bit_for_bit(tmp_path) -> None:
    session = ModelSession(batch_size=32)
    session.add_run("SGD", {"lr": 0.1, "momentum": 0.9})
    session.add_run("Adam", {"lr": 0.01})
    built = session.build()
    first, second = built.runs
    first.step(30)
    first.set_hyperparameter("lr", 0.05)
    first.step(20)
    first.set_frozen("0.weight", True)
    first.set_scheduler("StepLR(step_size=10, gamma=0.5)")
    first.step(30)
    second.step(40)
    second.set_clipping(GradientClipping("norm", 0.5))
    second.step(40)
    saved = ModelSession(session.model, session.data, session.loss, session.batch_size,
                         session.test_fraction, session.seed,
                         [RunSpec.from_run(run) for run in built.runs])
    path = tmp_path / "model.json"
    saved.save(path)
    loaded = ModelSession.load(path)
    assert [len(r.changes) for r in loaded.runs] == [3, 1]
    again = loaded.build()
    train(again, [r.steps for r in loaded.runs], eval_every=1000)
    for original, replayed in zip(built.runs, again.runs):
        assert replayed.steps == original.steps == 80
        assert exact(replayed) == exact(original)
    assert again.runs[0].frozen == {"0.weight"}


def test_run_change_checks_its_kind_and_step() -> None:
    with pytest.raises(Exception, match="teleport"):
        RunChange(3, "teleport")
    with pytest.raises(Exception, match="step"):
        RunChange(-1, "freeze", {"name": "x", "frozen": True})


def test_a_step_0_change_to_a_loaded_run_keeps_the_changes_ahead() -> None:
    """`run --session FILE --freeze x`: the file's changes still happen, on the frozen run."""
    original = race_with_changes().runs[0]
    copy = original.replay_copy()
    copy.set_hyperparameter("momentum", 0.5)  # at step 0, as the command line's options are
    assert copy.initial_settings["hyperparameters"]["momentum"] == 0.5
    assert len(copy.pending_changes) == 3
    copy.step(400)
    assert copy.hyperparameters["lr"] == original.hyperparameters["lr"]
    assert copy.frozen == {"y"} and copy.scheduler_setting == original.scheduler_setting
    again = copy.replay_copy()
    again.step(400)
    assert exact(again) == exact(copy)
