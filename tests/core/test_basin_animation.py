"""The basin map as a film (no Qt): its last frame is core.many.basins' map, and the map fills in
frame by frame with colours (minima) that stay put."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from core.animation import AnimationError
from core.basin_animation import BasinReplay, plan_basin_animation
from core.batch import CONVERGED, DIVERGED
from core.many import basins
from core.surfaces import get_surface


def _replay(steps: int = 60, every: int = 20, grid: int = 12) -> BasinReplay:
    plan = plan_basin_animation(steps, fps=10, steps_per_frame=every)
    return BasinReplay(get_surface("himmelblau"), "Adam(lr=0.1)", grid, plan)


def _run(replay: BasinReplay) -> None:
    while not replay.prepare():
        pass
    while not replay.advance():
        pass


def test_the_last_frame_is_the_basin_map_and_the_first_the_starts():
    replay = _replay()
    _run(replay)
    assert len(replay.frames) == replay.plan.frame_count == 4
    assert [f.step for f in replay.frames] == [0, 20, 40, 60]
    whole = basins(get_surface("himmelblau"), "Adam(lr=0.1)", 12, 60)
    last = replay.frame(3)
    np.testing.assert_array_equal(replay.minima, whole.minima)
    np.testing.assert_array_equal(last.minimum, whole.minimum)
    np.testing.assert_array_equal(last.status, whole.cells.status)
    np.testing.assert_array_equal(last.converged_at, whole.cells.converged_at)
    first = replay.frame(0)
    assert not (first.status == CONVERGED).any() and not (first.status == DIVERGED).any()


def test_the_map_fills_in_as_the_steps_go_on():
    replay = _replay(steps=80, every=20)
    _run(replay)
    near = [int((f.minimum >= 0).sum()) for f in replay.frames]
    assert near[0] < near[1] <= near[-1] and near[-1] > 0.8 * 144


def test_asking_before_the_minima_are_known_or_for_a_frame_not_recorded_is_refused():
    replay = _replay()
    with pytest.raises(AnimationError, match="prepare"):
        replay.advance()
    assert not replay.prepare() and replay.stepped_share() == pytest.approx(1 / 3)
    with pytest.raises(AnimationError, match="not recorded"):
        replay.frame(0)
    with pytest.raises(AnimationError, match="from 2 to 256 starts"):
        BasinReplay(get_surface("himmelblau"), "SGD(lr=0.01)", 300,
                    plan_basin_animation(10, fps=10, steps_per_frame=5))


def test_step_all_records_the_same_frames_as_prepare_and_advance() -> None:
    by_pieces = _replay()
    _run(by_pieces)
    at_once = _replay()
    progress: list[float] = []

    class State:
        def set_progress(self, fraction: float) -> None:
            progress.append(fraction)

        def is_interruption_requested(self) -> bool:
            return False

    at_once.step_all(State())
    assert len(at_once.frames) == len(by_pieces.frames) == 4
    for a, b in zip(at_once.frames, by_pieces.frames, strict=True):
        assert a.step == b.step
        np.testing.assert_array_equal(a.minimum, b.minimum)
        np.testing.assert_array_equal(a.status, b.status)
    assert progress[-1] == 1.0 and progress == sorted(progress)


def test_step_all_stops_on_a_cancel_and_a_huge_film_is_refused() -> None:
    from core.batch import BatchCancelled

    class Cancel:
        def set_progress(self, fraction: float) -> None:
            pass

        def is_interruption_requested(self) -> bool:
            return True

    replay = _replay()
    with pytest.raises(BatchCancelled):
        replay.step_all(Cancel())
    assert not replay.frames
    plan = plan_basin_animation(4000, fps=10, steps_per_frame=1)
    with pytest.raises(AnimationError, match="cell-frames"):
        BasinReplay(get_surface("himmelblau"), "Adam(lr=0.1)", 256, plan)


def test_a_float32_film_steps_in_float32() -> None:
    plan = plan_basin_animation(60, fps=10, steps_per_frame=20)
    replay = BasinReplay(get_surface("himmelblau"), "Adam(lr=0.1)", 12, plan, dtype="float32")
    _run(replay)
    assert replay._batch.dtype == torch.float32
    exact = _replay()
    _run(exact)
    assert float(np.mean(replay.frames[-1].minimum == exact.frames[-1].minimum)) >= 0.95


def test_a_cancel_is_seen_within_a_frames_steps() -> None:
    from core.batch import BatchCancelled

    class CancelSoon:
        calls = 0

        def set_progress(self, fraction: float) -> None:
            pass

        def is_interruption_requested(self) -> bool:
            self.calls += 1
            return self.calls > 3

    plan = plan_basin_animation(400, fps=10, steps_per_frame=400)  # one frame's 400 steps
    replay = BasinReplay(get_surface("himmelblau"), "Adam(lr=0.1)", 8, plan)
    with pytest.raises(BatchCancelled):
        replay.step_all(CancelSoon())
    assert 0 < replay._batch.steps < 400
