"""The example sessions (File > Examples) load, and each shows what its description promises."""

from __future__ import annotations

import numpy as np
import pytest

from core.run import RunStatus
from core.session import Session
from resources import preset_paths, preset_title


def _load(stem: str) -> Session:
    (path,) = [p for p in preset_paths() if p.stem == stem]
    return Session.load(path)


def test_every_example_loads_has_a_title_and_a_description():
    paths = preset_paths()
    assert len(paths) >= 5
    for path in paths:
        session = Session.load(path)
        assert preset_title(path) == session.extra["title"] != path.stem
        assert len(session.extra["description"]) > 40
        assert session.runs


def test_momentum_escapes_the_local_well_that_adam_settles_in():
    session = _load("01_momentum_escapes_a_well")
    assert {session.steps_for(r) for r in session.runs} == {1500}  # as saved
    session.play()
    sgd, momentum, adam = session.runs
    surface = session.surface
    assert momentum.trajectory.loss[-1] == pytest.approx(surface.min_value, abs=1e-6)
    local = surface.value(*surface.local_minima[0])
    assert adam.trajectory.loss[-1] == pytest.approx(local, abs=1e-6)
    assert sgd.trajectory.loss[-1] > surface.min_value + 0.5


def test_in_the_valley_momentum_beats_plain_sgd_at_its_stable_limit():
    session = _load("02_ill_conditioned_valley")
    assert {session.steps_for(r) for r in session.runs} == {300}  # as saved
    session.play()
    sgd, momentum = session.runs[:2]
    assert all(r.status is not RunStatus.DIVERGED for r in session.runs)
    assert momentum.trajectory.loss[-1] < sgd.trajectory.loss[-1]
    # SGD zig-zags: the coordinate across the valley (curvature 10, along (cos 30°, sin 30°))
    # changes sign at every step, since 1 - lr * 10 < 0
    across = 0.8660254037844386 * sgd.trajectory.x[:20] + 0.5 * sgd.trajectory.y[:20]
    assert (across[1:] * across[:-1] < 0).all()


def test_learning_rates_from_too_small_to_too_big():
    session = _load("03_learning_rate_too_big")
    assert {session.steps_for(r) for r in session.runs} == {400}  # as saved
    session.play()
    small, exact, overshoot, too_big = session.runs
    assert exact.converged_at == 1
    assert small.status is RunStatus.CONVERGED and overshoot.status is RunStatus.CONVERGED
    assert small.converged_at > exact.converged_at
    xs = overshoot.trajectory.x[:6]
    assert (xs[1:] * xs[:-1] < 0).all()  # back and forth across the minimum
    assert too_big.status is RunStatus.DIVERGED


def test_every_optimizer_leaves_the_saddle():
    session = _load("04_saddle_point")
    assert {session.steps_for(r) for r in session.runs} == {2000}  # as saved
    session.play()
    for run in session.runs:
        assert run.status is RunStatus.DIVERGED or abs(run.trajectory.y[-1]) > 10 * abs(
            session.start[1])


def test_frozen_runs_move_along_one_axis_only():
    session = _load("05_freezing_a_parameter")
    assert {session.steps_for(r) for r in session.runs} == {500}  # as saved
    session.play()
    free, y_frozen, x_frozen = session.runs
    assert (free.trajectory.x[-1], free.trajectory.y[-1]) == pytest.approx((1.0, 3.0), abs=1e-4)
    assert (y_frozen.trajectory.y == session.start[1]).all()
    assert (x_frozen.trajectory.x == session.start[0]).all()
    assert y_frozen.trajectory.x[-1] != session.start[0]
    assert x_frozen.trajectory.y[-1] != session.start[1]


def test_a_cosine_schedule_lets_sgd_settle_where_a_constant_lr_swings():
    session = _load("06_cosine_schedule_settles_sgd")
    scheduled, constant = session.runs
    assert scheduled.scheduler_setting is not None and constant.scheduler_setting is None
    assert {session.steps_for(r) for r in session.runs} == {300}  # as saved
    session.play()
    assert scheduled.status is RunStatus.CONVERGED
    assert constant.status is RunStatus.RUNNING
    # the constant lr still moves across the valley over the last 20 steps; the scheduled one
    # does not move at all
    tail = slice(-20, None)
    assert np.ptp(constant.trajectory.x[tail]) > 0.1
    assert np.ptp(scheduled.trajectory.x[tail]) < 1e-9
    assert scheduled.trajectory.lr[-1] < 1e-3 * scheduled.trajectory.lr[0]
