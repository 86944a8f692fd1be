"""The controller's scheduling (with a fake clock), its background steps and its modified flag."""

import math

import pytest
from PySide6.QtCore import QTimer

from core.errors import SessionError
from core.run import Run
from core.session import MAX_RUNS, Session
from core.surfaces import get_surface
from gui import controller as controller_module
from gui.controller import (CATCH_UP_CAP_S, FRAME_S, MAX_SLICE_S, MAX_SPEED, SLICE_S, Controller)
from gui.worker import cancel_all_jobs, wait_for_jobs


class FakeClock:
    """Seconds that move only when a test (or a costed step) moves them."""

    def __init__(self) -> None:
        self.t = 100.0

    def __call__(self) -> float:
        return self.t


def cost(clock: FakeClock, run: Run, seconds: float) -> Run:
    """Make each of the run's steps take `seconds` on the fake clock (the step itself is real)."""
    real = run.step

    def step(n: int = 1) -> int:
        done = real(n)
        clock.t += seconds * done
        return done

    run.step = step
    return run


def race(n_runs: int, clock: FakeClock, seconds_per_step: float | list[float]) -> Controller:
    session = Session(get_surface("bowl"))
    for _ in range(n_runs):
        session.add_run("SGD", {"lr": 1e-4})  # creeps: never converges or diverges here
    costs = seconds_per_step if isinstance(seconds_per_step, list) else [seconds_per_step] * n_runs
    for run, seconds in zip(session.runs, costs, strict=True):
        cost(clock, run, seconds)
    return Controller(session, clock=clock)


@pytest.fixture(autouse=True)
def no_background_left():
    yield
    cancel_all_jobs()
    assert wait_for_jobs(10.0)


def tick_after(c: Controller, clock: FakeClock, seconds: float) -> float:
    """Let `seconds` pass, tick, and return how much fake time the tick's stepping took."""
    clock.t += seconds
    before = clock.t
    c.tick()
    return clock.t - before


# --- the slice -----------------------------------------------------------------------------------

def test_the_slice_bounds_the_steps_of_one_tick_at_a_set_speed(qtbot):
    clock = FakeClock()
    step = 2.0 ** -11  # ~0.5 ms, exact in binary so the sums below are exact
    c = race(2, clock, step)
    c.set_speed(5000)  # owes far more steps than fit in a slice
    stepped = tick_after(c, clock, FRAME_S)
    owed = 5000 * FRAME_S
    steps = [r.steps for r in c.session.runs]
    assert steps[0] < owed
    # The slice is filled but not overrun: another round (2 steps) would not have fit.
    assert SLICE_S - 2 * step < stepped <= SLICE_S
    assert steps == [round(stepped / (2 * step))] * 2


def test_a_round_that_would_end_past_the_slice_is_not_begun(qtbot):
    clock = FakeClock()
    round_time = 0.6 * SLICE_S  # the second round would end at 1.2 slices
    c = race(3, clock, round_time / 3)
    c.set_speed(MAX_SPEED)
    stepped = tick_after(c, clock, FRAME_S)
    assert [r.steps for r in c.session.runs] == [1, 1, 1]
    assert stepped <= SLICE_S


def test_one_round_always_runs_even_when_it_is_longer_than_the_slice(qtbot):
    clock = FakeClock()
    c = race(2, clock, SLICE_S)  # one round takes two slices
    c.set_speed(MAX_SPEED)
    tick_after(c, clock, FRAME_S)
    tick_after(c, clock, FRAME_S)
    assert [r.steps for r in c.session.runs] == [2, 2]


def test_at_max_the_slice_grows_while_ticks_keep_to_a_frame_and_shrinks_when_they_do_not(qtbot):
    clock = FakeClock()
    step = 2.0 ** -13  # ~0.12 ms
    c = race(4, clock, step)
    c.set_speed(MAX_SPEED)
    for _ in range(60):  # a second of ticks a frame apart
        stepped = tick_after(c, clock, FRAME_S - (clock.t - c._last_tick))
        assert stepped <= c.max_slice + 1e-12  # never past the current slice
    assert c.max_slice == MAX_SLICE_S
    per_tick_at_max = stepped
    assert per_tick_at_max > SLICE_S  # more than the set-speed slice: "max" is faster
    for _ in range(20):  # the window is busy: ticks come 3 frames apart
        tick_after(c, clock, 3 * FRAME_S)
    assert c.max_slice == SLICE_S


def test_max_steps_more_per_second_than_a_set_speed_of_sixty(qtbot):
    steps_per_second = {}
    for speed in (60, MAX_SPEED):
        clock = FakeClock()
        c = race(8, clock, 2.0 ** -12)  # ~0.25 ms a step, eight runs
        c.set_speed(speed)
        start = clock.t
        for _ in range(120):
            tick_after(c, clock, max(0.0, FRAME_S - (clock.t - c._last_tick)))
        steps_per_second[speed] = c.session.runs[0].steps / (clock.t - start)
    assert steps_per_second[60] == pytest.approx(60, rel=0.05)
    assert steps_per_second[MAX_SPEED] > 3 * steps_per_second[60]


# --- the debt at a set speed ---------------------------------------------------------------------

def test_the_steps_owed_grow_with_the_time_since_the_last_tick(qtbot):
    clock = FakeClock()
    c = race(2, clock, 0.0)
    c.set_speed(60)
    tick_after(c, clock, 0.0625)  # exact in binary
    assert [r.steps for r in c.session.runs] == [math.floor(60 * 0.0625)] * 2


def test_a_long_stall_is_not_made_up_in_a_burst(qtbot):
    clock = FakeClock()
    c = race(2, clock, 0.0)
    c.set_speed(60)
    tick_after(c, clock, 10.0)  # a 10 s stall (a modal dialog, a suspended laptop)
    assert [r.steps for r in c.session.runs] == [math.floor(60 * CATCH_UP_CAP_S)] * 2


def test_fractions_of_a_step_accrue_at_slow_speeds(qtbot):
    clock = FakeClock()
    c = race(1, clock, 0.0)
    c.set_speed(10)
    start = clock.t
    for _ in range(100):
        tick_after(c, clock, FRAME_S)
    assert abs(c.session.runs[0].steps - 10 * (clock.t - start)) < 1


# --- fairness ------------------------------------------------------------------------------------

def test_runs_take_turns_so_none_gets_ahead_whatever_its_step_costs(qtbot):
    clock = FakeClock()
    c = race(3, clock, [0.003, 0.0001, 0.0002])
    c.set_speed(MAX_SPEED)
    for _ in range(10):
        tick_after(c, clock, FRAME_S)
        steps = {r.steps for r in c.session.runs}
        assert len(steps) == 1, steps


def test_a_diverged_run_drops_out_and_the_others_go_on(qtbot):
    clock = FakeClock()
    session = Session(get_surface("bowl"))
    session.add_run("SGD", {"lr": 1e-4})
    session.add_run("SGD", {"lr": 1e4})  # flung out of the bound within a few steps
    c = Controller(session, clock=clock)
    c.set_speed(120)
    for _ in range(60):
        tick_after(c, clock, FRAME_S)
    calm, wild = session.runs
    assert wild.status.value == "diverged"
    assert calm.steps == pytest.approx(120 * 60 * FRAME_S, abs=1)


# --- the achieved speed --------------------------------------------------------------------------

def test_the_achieved_speed_is_what_the_runs_really_took(qtbot):
    clock = FakeClock()
    c = race(6, clock, 2.0 ** -11)
    c.set_speed(MAX_SPEED)
    assert c.achieved_speed() is None  # nothing measured yet
    start = clock.t
    for _ in range(90):
        tick_after(c, clock, max(0.0, FRAME_S - (clock.t - c._last_tick)))
    real = c.session.runs[0].steps / (clock.t - start)
    assert c.achieved_speed() == pytest.approx(real, rel=0.15)
    c.set_speed(30)
    assert c.achieved_speed() is None  # a new speed: the old figure no longer holds
    start = clock.t
    for _ in range(90):
        tick_after(c, clock, max(0.0, FRAME_S - (clock.t - c._last_tick)))
    assert c.achieved_speed() == pytest.approx(30, rel=0.15)


# --- slow steps go to a worker -------------------------------------------------------------------

SLOW_LBFGS = {"lr": 1.0, "max_iter": 400, "tolerance_grad": 0.0, "tolerance_change": 0.0}


def test_a_long_lbfgs_step_does_not_stop_the_event_loop_and_gives_the_same_result(qtbot):
    surface = get_surface("rastrigin")
    session = Session(surface)
    run = session.add_run("LBFGS", SLOW_LBFGS)
    twin = Run(surface, "LBFGS", SLOW_LBFGS, session.start)
    c = Controller(session)
    steps_seen_by_timer = []
    timer = QTimer()
    timer.setInterval(2)
    timer.timeout.connect(lambda: steps_seen_by_timer.append(run.steps))
    timer.start()
    try:
        c.step_once()
        assert c.working_runs == [run]
        with qtbot.waitSignal(c.sigStepped, timeout=20000):
            pass
    finally:
        timer.stop()
    assert run.steps == 1 and not c.working_runs
    # The timer kept firing while the step ran (on the old code step_once blocked until done).
    assert steps_seen_by_timer.count(0) >= 3
    twin.step(1)
    for column in ("x", "y", "loss", "grad_x", "grad_y"):
        assert getattr(run.trajectory, column).tolist() == getattr(twin.trajectory, column).tolist()


def test_a_run_measured_slow_moves_to_the_worker_and_back_when_fast_again(qtbot):
    clock = FakeClock()
    c = race(2, clock, [0.0001, 2 * FRAME_S])  # the second run's steps take two frames
    fast, slow = c.session.runs
    c.set_speed(MAX_SPEED)
    tick_after(c, clock, FRAME_S)  # measured here: too slow for the GUI thread
    assert c.is_slow(slow) and not c.is_slow(fast)
    tick_after(c, clock, FRAME_S)
    assert c.working_runs == [slow]
    assert fast.steps > 1  # the others do not wait for it
    qtbot.waitUntil(lambda: not c.working_runs, timeout=10000)
    cost(clock, slow, -2 * FRAME_S + 0.001)  # its steps are cheap again: 1 ms each
    tick_after(c, clock, FRAME_S)
    qtbot.waitUntil(lambda: not c.working_runs, timeout=10000)
    assert not c.is_slow(slow)


def test_changing_a_run_that_a_worker_steps_waits_for_the_step(qtbot):
    session = Session(get_surface("rastrigin"))
    run = session.add_run("LBFGS", SLOW_LBFGS)
    c = Controller(session)
    c.step_once()
    assert c.working_runs == [run]
    job = c._jobs[run]
    c.set_hyperparameter(run, "lr", 0.5)
    # No worker touches the run any more: the step under way finished (or had not begun and
    # never will), then the change was made.
    assert not c.working_runs and run.steps in (0, 1)
    assert job.wait(0) and not job.running
    assert run.optimizer.param_groups[0]["lr"] == 0.5


def test_a_bad_value_is_refused_without_waiting_for_the_worker(qtbot):
    from core.errors import OptimizerError

    session = Session(get_surface("rastrigin"))
    run = session.add_run("LBFGS", SLOW_LBFGS)
    c = Controller(session)
    c.step_once()
    with pytest.raises(OptimizerError):
        c.set_hyperparameter(run, "lr", -1.0)
    assert c.working_runs == [run]  # still stepping: nothing waited, nothing changed
    assert run.hyperparameters["lr"] == 1.0
    qtbot.waitUntil(lambda: not c.working_runs, timeout=20000)


def test_shutdown_stops_the_timer_and_the_background_step(qtbot):
    session = Session(get_surface("rastrigin"))
    session.add_run("LBFGS", SLOW_LBFGS)
    session.add_run("Adam", {"lr": 0.05})
    c = Controller(session)
    c.set_speed(MAX_SPEED)
    c.play()
    qtbot.waitUntil(lambda: bool(c.working_runs), timeout=5000)
    job = c._jobs[session.runs[0]]
    c.shutdown(timeout_s=10.0)
    assert not c.playing
    assert job.cancelled
    assert not c.working_runs  # the step ended within the wait and was delivered


# --- the modified flag and putting a run back ----------------------------------------------------

@pytest.mark.parametrize("change", [
    lambda c, r: c.add_run("Adam"),
    lambda c, r: c.duplicate_run(r),
    lambda c, r: c.remove_run(r),
    lambda c, r: c.replace_optimizer(r, "Adagrad"),
    lambda c, r: c.set_hyperparameter(r, "lr", 0.002),
    lambda c, r: c.set_frozen(r, "x", True),
    lambda c, r: c.set_enabled(r, False),
    lambda c, r: c.set_color(r, "#123456"),
    lambda c, r: c.set_label(r, "mine"),
    lambda c, r: c.set_surface_name("bowl"),
    lambda c, r: c.set_formula("x**2 + 3*y**2"),
    lambda c, r: c.set_start((0.5, 0.5)),
    lambda c, r: c.set_scheduler(r, "StepLR(step_size=10)"),
    lambda c, r: c.set_clipping(r, "norm", 1.0),
    lambda c, r: c.set_noise(r, 0.5, 3),
], ids=["add", "duplicate", "remove", "replace", "hyperparameter", "freeze", "enable", "colour",
        "label", "surface", "formula", "start", "scheduler", "clipping", "noise"])
def test_every_change_to_the_session_marks_it_modified(qtbot, change):
    c = Controller(Session.default())
    assert not c.modified
    with qtbot.waitSignal(c.sigModified, timeout=1000) as blocker:
        change(c, c.session.runs[0])
    assert blocker.args == [True] and c.modified


def test_stepping_and_reset_do_not_mark_it_modified_and_saving_or_opening_clears_it(qtbot,
                                                                                     tmp_path):
    c = Controller(Session.default())
    emitted = []
    c.sigModified.connect(emitted.append)
    c.step_once()
    c.tick()
    c.reset()
    assert not c.modified and emitted == []
    c.set_label(c.session.runs[0], "changed")
    path = tmp_path / "s.json"
    c.save_session(path)
    assert not c.modified and emitted == [True, False]
    c.set_label(c.session.runs[0], "again")
    c.load_session(path)
    assert not c.modified and emitted == [True, False, True, False]


def test_a_formula_error_changes_nothing_and_is_not_a_modification(qtbot):
    c = Controller(Session.default())
    assert c.set_formula("x +* y") is not None
    assert not c.modified


def test_a_removed_run_can_be_put_back_where_it_was_with_its_record(qtbot):
    c = Controller(Session.default())
    c.step_once()
    c.step_once()
    run = c.session.runs[1]
    xs = run.trajectory.x.tolist()
    c.remove_run(run)
    with qtbot.waitSignal(c.sigRunsChanged, timeout=1000):
        c.insert_run(1, run)
    assert c.session.runs[1] is run and run.trajectory.x.tolist() == xs
    assert c.selected is run and c.modified


def test_a_run_put_back_after_a_surface_change_restarts_on_the_new_surface(qtbot):
    c = Controller(Session.default())
    run = c.session.runs[0]
    c.step_once()
    c.remove_run(run)
    c.set_surface_name("bowl")
    c.insert_run(0, run)
    assert run.surface is c.session.surface and run.steps == 0
    assert run.start == c.session.start


def test_putting_a_run_back_into_a_full_session_is_refused_and_changes_nothing(qtbot):
    c = Controller(Session.default())
    extra = c.session.runs[0]
    c.remove_run(extra)
    while len(c.session.runs) < MAX_RUNS:
        c.add_run("SGD")
    before = list(c.session.runs)
    with pytest.raises(SessionError, match="at most"):
        c.insert_run(0, extra)
    assert c.session.runs == before


def test_the_controller_module_keeps_its_public_names():
    for name in ("MAX_SPEED", "TICK_MS", "SLICE_S", "Controller"):
        assert hasattr(controller_module, name)


def test_shutdown_does_not_wait_past_its_timeout_for_a_step_that_will_not_end(qtbot):
    import threading

    session = Session(get_surface("bowl"))
    run = session.add_run("SGD", {"lr": 1e-4})
    release, entered = threading.Event(), threading.Event()
    real = run.step

    def stuck_step(n: int = 1) -> int:
        entered.set()
        release.wait(10)  # a step that cannot be interrupted
        return real(n)

    c = Controller(session)
    c._slow.add(run)  # as if measured slow
    run.step = stuck_step
    c.step_once()
    assert c.working_runs == [run]
    assert entered.wait(10)
    try:
        assert c.shutdown(timeout_s=0.05) is False  # it gave up waiting, and says so
        assert not c.playing
    finally:
        release.set()
    qtbot.waitUntil(lambda: not c.working_runs, timeout=10000)
    assert run.steps == 1  # the step ended on its own thread, and nothing crashed


# --- schedulers, clipping and noise ------------------------------------------------------------


def test_scheduler_clipping_and_noise_go_to_the_run_and_emit_its_change(qtbot):
    c = Controller(Session.default())
    run = c.session.runs[0]
    with qtbot.waitSignal(c.sigRunChanged, timeout=1000) as blocker:
        c.set_scheduler(run, "CosineAnnealingLR(T_max=50)")
    assert blocker.args == [run]
    assert run.scheduler_setting == ("CosineAnnealingLR", {"T_max": 50, "eta_min": 0.0})
    assert type(run.scheduler).__name__ == "CosineAnnealingLR"
    c.set_clipping(run, "value", 0.5)
    assert (run.clipping.kind, run.clipping.threshold) == ("value", 0.5)
    c.set_noise(run, 0.25, 7)
    assert (run.noise.sigma, run.noise.seed) == (0.25, 7)
    c.set_scheduler(run, None)
    c.set_clipping(run, None)
    c.set_noise(run, 0.0)
    assert run.scheduler is None and run.clipping is None and run.noise is None


@pytest.mark.parametrize("change", [
    lambda c, r: c.set_scheduler(r, "CosineAnnealingLR(T_max=0)"),
    lambda c, r: c.set_scheduler(r, "NoSuchLR()"),
    lambda c, r: c.set_clipping(r, "norm", -1.0),
    lambda c, r: c.set_clipping(r, "norm", math.nan),
    lambda c, r: c.set_noise(r, -0.1),
    lambda c, r: c.set_noise(r, 0.1, -3),
], ids=["T_max", "unknown", "negative-clip", "nan-clip", "negative-sigma", "seed"])
def test_a_bad_scheduler_clipping_or_noise_is_refused_and_changes_nothing(qtbot, change):
    from core.errors import PlaygroundError

    c = Controller(Session.default())
    run = c.session.runs[0]
    c.set_scheduler(run, "StepLR(step_size=5)")
    c.modified = False
    before = run.tool_config()
    emitted = []
    c.sigRunChanged.connect(emitted.append)
    with pytest.raises(PlaygroundError):
        change(c, run)
    assert run.tool_config() == before and emitted == [] and not c.modified


def test_a_scheduler_torch_refuses_for_this_optimizer_is_refused_before_the_run_changes(qtbot):
    from core.errors import PlaygroundError

    c = Controller(Session.default())
    run = c.add_run("Adagrad")  # no momentum, no betas: OneCycleLR cannot cycle one
    with pytest.raises(PlaygroundError, match="momentum"):
        c.set_scheduler(run, "OneCycleLR(max_lr=0.1, total_steps=100)")
    assert run.scheduler is None and run.scheduler_setting is None


def test_replacing_the_optimizer_keeps_the_scheduler_clipping_and_noise(qtbot):
    c = Controller(Session.default())
    run = c.session.runs[0]
    c.set_scheduler(run, "StepLR(step_size=5, gamma=0.5)")
    c.set_clipping(run, "norm", 2.0)
    c.set_noise(run, 0.1, 4)
    new = c.replace_optimizer(run, "Adam")
    assert new.tool_config() == run.tool_config()
    assert new.noise is not run.noise  # each run draws from its own generator
    errors = []
    c.sigError.connect(errors.append)
    c.set_scheduler(new, "OneCycleLR(max_lr=0.1, total_steps=100)")
    newer = c.replace_optimizer(new, "Adagrad")  # cannot cycle a momentum: dropped, said
    assert newer.scheduler is None and newer.clipping == new.clipping
    assert len(errors) == 1 and "OneCycleLR" in errors[0]


def test_a_saved_and_opened_session_keeps_scheduler_clipping_and_noise(qtbot, tmp_path):
    c = Controller(Session.default())
    run = c.session.runs[1]
    c.set_scheduler(run, "SequentialLR(schedulers=[LinearLR(start_factor=0.1, total_iters=10),"
                         " CosineAnnealingLR(T_max=90)], milestones=[10])")
    c.set_clipping(run, "value", 0.75)
    c.set_noise(run, 0.3, 11)
    wanted = run.tool_config()
    path = tmp_path / "tools.json"
    c.save_session(path)
    other = Controller(Session.default())
    other.load_session(path)
    loaded = other.session.runs[1]
    assert loaded.tool_config() == wanted
    assert type(loaded.scheduler).__name__ == "SequentialLR"
    for r in (run, loaded):
        r.reset()
        r.step(30)
    assert list(loaded.trajectory.lr) == list(run.trajectory.lr)
    assert list(loaded.trajectory.x) == list(run.trajectory.x)  # the same noise, the same path


# --- a loaded session's changes, replayed as the runs step -------------------------------------

def saved_race_with_an_lr_change(tmp_path) -> str:
    """A session file whose one SGD run had its lr moved from 1e-3 to 0.02 after 5 steps."""
    session = Session(get_surface("bowl"))
    run = session.add_run("SGD", {"lr": 1e-3})
    run.step(5)
    run.set_hyperparameter("lr", 0.02)
    run.step(5)
    path = tmp_path / "changed.json"
    session.save(path)
    return str(path)


def test_a_replayed_change_refreshes_the_card_when_its_step_comes(qtbot, tmp_path):
    from gui.run_card import RunCard

    c = Controller(Session.default())
    c.load_session(saved_race_with_an_lr_change(tmp_path))
    run = c.session.runs[0]
    assert run.steps == 0 and len(run.pending_changes) == 1
    card = RunCard(run, c)
    qtbot.addWidget(card)
    card.show()
    seen = []
    c.sigRunChanged.connect(seen.append)
    for _ in range(4):
        c.step_once()
    assert seen == [] and card.lr_spin.value() == 1e-3  # not yet: the change is at step 5
    c.step_once()
    assert run.steps == 5 and run.pending_changes == []
    assert seen == [run]  # announced once, when the step applied it
    assert card.lr_spin.value() == 0.02
    c.step_once()
    assert seen == [run]  # no change left: steps announce nothing more


def test_a_tick_that_replays_a_change_announces_it(qtbot, tmp_path):
    clock = FakeClock()
    c = Controller(Session.default(), clock=clock)
    c.load_session(saved_race_with_an_lr_change(tmp_path))
    run = cost(clock, c.session.runs[0], 0.004)  # a round of 4 ms: one or two a tick
    c.set_speed(MAX_SPEED)
    seen = []
    c.sigRunChanged.connect(seen.append)
    while run.steps < 8:
        tick_after(c, clock, FRAME_S)
        assert seen == ([run] if run.steps >= 5 else [])
    assert run.pending_changes == [] and seen == [run]
    assert run.hyperparameters["lr"] == 0.02


def test_changes_close_together_are_announced_at_most_every_tenth_of_a_second(qtbot, tmp_path):
    session = Session(get_surface("bowl"))
    run = session.add_run("SGD", {"lr": 1e-3})
    run.step(5)
    run.set_hyperparameter("lr", 0.02)
    run.step(4)
    run.set_hyperparameter("lr", 0.03)  # at step 9: as a slider dragged while playing
    run.step(3)
    session.save(tmp_path / "dragged.json")
    clock = FakeClock()
    c = Controller(Session.default(), clock=clock)
    c.load_session(tmp_path / "dragged.json")
    run = cost(clock, c.session.runs[0], 0.004)
    c.set_speed(MAX_SPEED)
    seen = []
    c.sigRunChanged.connect(lambda r: seen.append(r.hyperparameters["lr"]))
    while run.pending_changes:
        tick_after(c, clock, FRAME_S)
        if run.steps < 9:
            assert seen == ([0.02] if run.steps >= 5 else [])  # the first one at once
    landed = clock.t  # (fake time) when the step-9 change was applied
    assert run.hyperparameters["lr"] == 0.03 and seen == [0.02]
    assert landed - c._last_replay_announce < controller_module.REPLAY_ANNOUNCE_S
    qtbot.waitUntil(lambda: seen == [0.02, 0.03])  # the second once that time is up
    c.shutdown()
