"""The Many runs workspace and the parts its tabs share (gui/many/common.py)."""

from __future__ import annotations

import json

import pytest
from PySide6.QtWidgets import QLabel

from core.batch import BatchError
from core.many import basins, lr_sweep
from core.surfaces import get_surface, surface_from_formula
from gui.many.basins_view import BasinsView
from gui.many.common import (AnalysisRunner, PartState, ResultCache, analysis_key,
                             export_results, race_optimizers)
from gui.many.workspace import _TABS, ManyWorkspace
from gui.worker import JobState, wait_for_jobs
from tests.gui.many_fixtures import make_race, one_torch_thread  # noqa: F401 (fixtures)


@pytest.fixture
def race(make_race):  # noqa: F811 (the imported fixture, by name)
    return make_race("himmelblau")


def test_workspace_has_the_basins_tab_and_takes_more(qtbot, race):
    workspace = ManyWorkspace(race)
    qtbot.addWidget(workspace)
    assert workspace.tabs.tabText(0) == "Basins"
    assert isinstance(workspace.basins_view, BasinsView)
    assert workspace.basins_view.controller is race
    before = workspace.tabs.count()
    assert before == len(_TABS)  # Basins, LR sweep, LR range test, Trainability
    extra = QLabel("another analysis")
    workspace.add_analysis("Another", extra)
    assert workspace.tabs.count() == before + 1 and workspace.tabs.widget(before) is extra
    with pytest.raises(ValueError, match="already"):
        workspace.add_analysis("LR sweep", QLabel())
    assert workspace.tabs.count() == before + 1


def test_shutdown_stops_a_running_map(qtbot, race):
    workspace = ManyWorkspace(race)
    qtbot.addWidget(workspace)
    view = workspace.basins_view
    view.grid_spin.setValue(400)
    view.steps_spin.setValue(1000)
    assert view.compute()
    assert view.runner.running
    workspace.shutdown()
    assert not view.runner.running
    assert wait_for_jobs(10.0)  # the batch saw the cancel and returned
    assert view.panels == [] and len(view.runner.cache) == 0


def test_race_optimizers_are_the_sessions_settings_once_each(race):
    race.add_run("Adam", {"lr": 0.05})  # the default session has Adam(lr=0.05) already
    run = race.add_run("SGD", {"lr": 0.01})
    race.set_frozen(run, "y", True)
    race.set_scheduler(run, "StepLR(step_size=10)")
    race.add_run("LBFGS")
    options = race_optimizers(race)
    calls = [o.call for o in options]
    assert calls == ["SGD(lr=0.001)", "SGD(lr=0.001, momentum=0.9)", "RMSprop(lr=0.01)",
                     "Adam(lr=0.05)", "SGD(lr=0.01)", "LBFGS(lr=1.0)"]
    assert options[4].frozen == ("y",) and options[4].left_out == ("its scheduler",)
    assert "y frozen" in options[4].title()
    assert not options[5].batchable and "L-BFGS" in options[5].refusal
    assert all(o.batchable for o in options[:5])


def test_the_cache_key_changes_with_everything_a_result_depends_on(race):
    surface = race.session.surface
    adam = race_optimizers(race)[3]
    settings = {"grid": 32, "steps": 100, "x_range": (-5.0, 5.0), "y_range": (-5.0, 5.0)}
    key = analysis_key("basins", surface, adam, **settings)
    assert key == analysis_key("basins", get_surface("himmelblau"), race_optimizers(race)[3],
                               **dict(reversed(list(settings.items()))))
    changed = [
        analysis_key("sweep", surface, adam, **settings),
        analysis_key("basins", surface_from_formula("x**2 + y**2", (-5, 5), (-5, 5)), adam,
                     **settings),
        analysis_key("basins", surface_from_formula(surface.text, (-4, 5), (-5, 5)), adam,
                     **settings),
        analysis_key("basins", surface, race_optimizers(race)[2], **settings),
        *(analysis_key("basins", surface, adam, **{**settings, name: value})
          for name, value in (("grid", 33), ("steps", 101), ("x_range", (-5.0, 4.0)),
                              ("y_range", (-4.0, 5.0))))]
    assert key not in changed and len(set(changed)) == len(changed)
    race.set_frozen(race.session.runs[3], "x", True)
    assert analysis_key("basins", surface, race_optimizers(race)[3], **settings) != key


def test_result_cache_drops_the_least_recently_used():
    cache = ResultCache(entries=2)
    cache.put("a", 1)
    cache.put("b", 2)
    assert cache.get("a") == 1  # a is now the most recent
    cache.put("c", 3)
    assert "b" not in cache and cache.get("a") == 1 and cache.get("c") == 3


def test_runner_reports_a_failure_in_one_line_and_caches_nothing(qtbot):
    runner = AnalysisRunner()
    qtbot.addWidget(runner)

    def fail(key, state):
        raise BatchError("the grid must be from 2 to 512 starts a side (got 600)")

    with qtbot.waitSignal(runner.sigFailed, timeout=5000) as failed:
        assert runner.request(["k"], fail)
    assert failed.args == ["the grid must be from 2 to 512 starts a side (got 600)"]
    assert runner.message.text() == failed.args[0]
    assert "k" not in runner.cache and not runner.running


def test_runner_computes_the_missing_keys_in_one_job(qtbot):
    runner = AnalysisRunner()
    qtbot.addWidget(runner)
    surface = get_surface("himmelblau")

    def sweep(key, state):
        return lr_sweep(surface, "Adam", [1e-3, 1e-2, 1e-1], 50 * key, state=state)

    with qtbot.waitSignal(runner.sigResult, timeout=20_000) as done:
        assert runner.request([1, 2], sweep)
    assert list(done.args[0]) == [1, 2]
    assert [r.steps for r in done.args[0].values()] == [50, 100]
    with qtbot.waitSignal(runner.sigResult, timeout=20_000) as done:
        assert runner.request([2, 3], sweep)  # 2 is cached: only 3 is computed
    assert runner.jobs_started == 2
    assert [r.steps for r in done.args[0].values()] == [100, 150]


def test_each_key_reports_progress_in_its_share():
    state = JobState()
    part = PartState(state, 0.5, 0.25)
    part.set_progress(0.4)
    assert state.progress == pytest.approx(0.6)
    state.request_interruption()
    assert part.is_interruption_requested()


def test_one_result_exports_exactly_what_the_command_line_writes(tmp_path):
    result = basins(get_surface("himmelblau"), "Adam(lr=0.05)", 6, 30)
    export_results([result], tmp_path / "b.csv")
    export_results([result], tmp_path / "b.json")
    assert (tmp_path / "b.csv").read_text() == result.to_csv()
    assert json.loads((tmp_path / "b.json").read_text()) == json.loads(
        json.dumps(result.to_json()))
