"""Model mode's animation plan and replay (no Qt): frame k shows each run after k x steps per
frame steps of a fresh build, equal to a plain PyTorch loop, the same every time, with the bounds
said in one line."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from core.animation import AnimationError
from core.model_animation import (
    ModelAnimationOptions,
    ModelReplay,
    check_model_plan,
    default_model_length,
    plan_model_animation,
    selected_index,
)
from core.model_session import DataSpec, ModelSession


def _moons(steps: int = 30) -> ModelSession:
    session = ModelSession("Linear(2, 8), Tanh(), Linear(8, 1)", DataSpec("moons", n=80),
                           test_fraction=0.25, seed=3)
    session.add_run("SGD", {"lr": 0.2}, steps=steps)
    session.add_run("Adam", {"lr": 0.02}, steps=steps)
    return session


def test_plan_counts_frames_from_each_runs_steps_and_disabled_runs_stay():
    session = _moons(30)
    session.add_run("RMSprop", {"lr": 0.01}, steps=30, enabled=False)
    plan = plan_model_animation(session, ModelAnimationOptions(steps_per_frame=7))
    assert plan.lengths == (30, 30, 0)
    assert plan.frame_count == 1 + math.ceil(30 / 7) == 6
    assert plan.step_at(5) == 30  # the last frame is the end, not 35
    by_frames = plan_model_animation(session, ModelAnimationOptions(frames=4, steps=90))
    assert by_frames.steps_per_frame == 30 and by_frames.frame_count == 4
    with pytest.raises(AnimationError, match="frames per second"):
        plan_model_animation(session, ModelAnimationOptions(fps=0))
    assert default_model_length(session) == 30


def test_frames_equal_a_plain_pytorch_loop_on_the_same_data_and_weights():
    session = _moons(20)
    plan = plan_model_animation(session, ModelAnimationOptions(steps_per_frame=5))
    replay = ModelReplay(session, plan)
    replay.run_to_end()
    assert replay.done and replay.recorded == plan.frame_count == 5

    # What a PyTorch user writes: the same layers, the session's initial weights, full batch.
    built = session.build()
    X, y = built.split.train.X, built.problem.y
    model = nn.Sequential(nn.Linear(2, 8), nn.Tanh(), nn.Linear(8, 1)).double()
    with torch.no_grad():
        for name, p in model.named_parameters():
            p.copy_(built.problem.initial_parameters()[name])
    optimizer = torch.optim.SGD(model.parameters(), lr=0.2)
    loss_fn = nn.BCEWithLogitsLoss()
    for k in range(1, 21):
        optimizer.zero_grad()
        loss_fn(model(X), y).backward()
        optimizer.step()
        if k % 5 == 0:
            shown = replay.record(k // 5)[0]
            assert shown.steps == k
            for name, p in model.named_parameters():
                assert torch.equal(shown.parameters[name], p.detach()), (k, name)
    # the training loss curve a frame shows is the run's loss from step 0 to its step
    steps, loss = replay.loss_curve(0, 2)
    assert list(steps) == list(range(11)) and loss[0] > loss[-1]
    # held-out loss at each frame, as the session measures it
    test_steps, test_loss = replay.test_curve(1, 4)
    assert list(test_steps) == [0, 5, 10, 15, 20]
    assert test_loss[0] > test_loss[-1] > 0


def test_the_replay_is_the_same_every_time_and_frames_differ_as_runs_train():
    session = _moons(12)
    plan = plan_model_animation(session, ModelAnimationOptions(steps_per_frame=4))
    first, second = ModelReplay(session, plan), ModelReplay(session, plan)
    first.run_to_end()
    second.run_to_end()
    for k in range(plan.frame_count):
        for a, b in zip(first.record(k), second.record(k)):
            assert a.steps == b.steps and a.test_loss == b.test_loss
            assert all(torch.equal(a.parameters[n], b.parameters[n]) for n in a.parameters)
    w0 = first.record(0)[1].parameters["0.weight"]
    w3 = first.record(3)[1].parameters["0.weight"]
    assert not torch.equal(w0, w3)
    low, high = first.loss_range()
    assert 0 < low < high


def test_advance_is_one_frame_of_steps_and_asking_too_early_is_refused():
    session = _moons(30)
    plan = plan_model_animation(session, ModelAnimationOptions(steps_per_frame=10))
    replay = ModelReplay(session, plan)
    assert replay.recorded == 1 and all(run.steps == 0 for run in replay.runs)
    assert not replay.advance()
    assert all(run.steps == 10 for run in replay.runs)
    with pytest.raises(AnimationError, match="not recorded yet"):
        replay.record(3)


def test_a_diverging_run_stops_and_its_frames_say_so():
    session = ModelSession("Linear(1, 1)", DataSpec("line", n=40), seed=0)
    session.add_run("SGD", {"lr": 1e3}, steps=200)
    plan = plan_model_animation(session, ModelAnimationOptions(steps_per_frame=50))
    replay = ModelReplay(session, plan)
    replay.run_to_end()
    last = replay.record(plan.frame_count - 1)[0]
    assert last.status == "diverged" and last.steps < 200 and last.test_loss is None


def test_bounds_are_one_line_and_name_what_to_change():
    session = _moons(30)
    plan = plan_model_animation(session, ModelAnimationOptions(steps_per_frame=1))
    built = session.build()
    with pytest.raises(AnimationError, match="cannot write an animation as '.png'"):
        check_model_plan(built, plan, 320, 240, ".png")
    with pytest.raises(AnimationError, match="size must be"):
        check_model_plan(built, plan, 8, 240, ".gif")
    check_model_plan(built, plan, 320, 240, ".gif")  # fine
    big = ModelSession("Linear(2, 512), Tanh(), Linear(512, 512), Tanh(), Linear(512, 1)",
                       DataSpec("moons", n=40))
    big.add_run("SGD", {"lr": 0.1}, steps=200)  # 264 k parameters kept 201 times: 425 MB
    plan = plan_model_animation(big, ModelAnimationOptions(steps_per_frame=1))
    with pytest.raises(AnimationError, match="too much to keep.*MB.*more steps per frame"):
        check_model_plan(big.build(), plan, 64, 48, ".gif")


def test_selected_run_the_workspaces_choice_or_the_first_enabled():
    session = _moons()
    session.runs[0].enabled = False
    assert selected_index(session, None) == 1
    session.extra = {"workspace": {"selected": 0}}
    assert selected_index(session, None) == 0
    assert selected_index(session, 1) == 1
    with pytest.raises(AnimationError, match="no run 3"):
        selected_index(session, 2)


def test_a_runs_scheduler_and_mid_run_changes_are_replayed():
    session = _moons(10)
    session.runs[0].scheduler = "StepLR(step_size=2, gamma=0.5)"
    plan = plan_model_animation(session, ModelAnimationOptions(steps_per_frame=5))
    replay = ModelReplay(session, plan)
    replay.run_to_end()
    lr = replay.runs[0].trajectory.lr
    assert lr[0] == pytest.approx(0.2) and lr[-1] == pytest.approx(0.2 * 0.5 ** 5)
    assert replay.runs[1].trajectory.lr[-1] == pytest.approx(0.02)
