"""Launch: the window is shown before any optimizer is built; the runs follow from a thread."""

from __future__ import annotations

import json

import pytest
from PySide6.QtCore import QSettings

from core.session import Session
from gui.main_window import MainWindow


@pytest.fixture
def settings(tmp_path):
    return QSettings(str(tmp_path / "settings.ini"), QSettings.Format.IniFormat)


def _deferred_window(qtbot, settings):
    w = MainWindow(settings=settings, defer_runs=True)
    qtbot.addWidget(w)
    return w


def test_the_window_shows_before_the_runs_and_they_follow(qtbot, settings, monkeypatch):
    import core.run

    built = []
    real_init = core.run.Run.__init__
    monkeypatch.setattr(core.run.Run, "__init__",
                        lambda self, *a, **k: built.append(1) or real_init(self, *a, **k))
    w = _deferred_window(qtbot, settings)
    assert built == [] and w.controller.session.runs == [] and not w.ready
    assert "Loading" in w.statusBar().currentMessage()
    with qtbot.waitSignal(w.sigReady, timeout=20000):
        w.show()
    assert [r.optimizer_name for r in w.controller.session.runs] == ["SGD", "SGD", "RMSprop",
                                                                     "Adam"]
    assert len(w.run_list.cards) == 4 and w.ready
    assert not w.isWindowModified()
    w.close()


def test_a_returning_users_session_shows_its_surface_first_then_its_runs(qtbot, settings):
    saved = Session.default("himmelblau")
    saved.set_start((1.5, -0.5))
    saved.add_run("Adagrad", {"lr": 0.3})
    settings.setValue("last_session", json.dumps(saved.to_dict()))
    w = _deferred_window(qtbot, settings)
    assert w.controller.session.surface.name == "himmelblau"
    assert w.controller.session.start == (1.5, -0.5) and w.controller.session.runs == []
    with qtbot.waitSignal(w.sigReady, timeout=20000):
        w.show()
    assert [r.optimizer_name for r in w.controller.session.runs][-1] == "Adagrad"
    assert w.controller.session.runs[0].trajectory.x[0] == 1.5
    w.close()


def test_a_surface_picked_while_loading_is_kept(qtbot, settings):
    w = _deferred_window(qtbot, settings)
    w.controller.set_surface_name("booth")  # before the runs are there
    with qtbot.waitSignal(w.sigReady, timeout=20000):
        w.show()
    assert w.controller.session.surface.name == "booth"
    assert len(w.controller.session.runs) == 4
    assert all(r.surface.name == "booth" for r in w.controller.session.runs)
    w.close()


def test_a_broken_saved_run_still_opens_with_the_default_runs(qtbot, settings):
    data = Session.default().to_dict()
    data["runs"][0]["optimizer"] = "NoSuchOptimizer"
    settings.setValue("last_session", json.dumps(data))
    w = _deferred_window(qtbot, settings)
    with qtbot.waitSignal(w.sigReady, timeout=20000):
        w.show()
    assert len(w.controller.session.runs) == 4
    assert "could not be restored" in w.statusBar().currentMessage()
    w.close()


def test_launch_probe_prints_shown_then_ready_and_quits(tmp_path):
    import os
    import subprocess
    import sys
    import time
    from pathlib import Path

    root = Path(__file__).resolve().parents[2]
    env = {**os.environ, "QT_QPA_PLATFORM": "offscreen", "XDG_CONFIG_HOME": str(tmp_path),
           "OPTIMIZER_PLAYGROUND_LAUNCH_PROBE": repr(time.time())}
    out = subprocess.run([sys.executable, "main.py"], cwd=root, env=env, capture_output=True,
                         text=True, timeout=120)
    marks = dict(line.split() for line in out.stdout.splitlines())
    assert out.returncode == 0, out.stderr
    assert 0 < float(marks["shown"]) <= float(marks["ready"])


def test_quitting_saves_the_session_then_ends_the_process_at_once(qtbot, settings, monkeypatch):
    """The interpreter's teardown (torch, then every Qt wrapper) made quitting take seconds:
    run_app ends the process with os._exit once the window has saved what it keeps."""
    import os

    from PySide6.QtWidgets import QApplication

    import gui.app
    import gui.main_window

    monkeypatch.setattr(gui.main_window, "default_settings", lambda: settings)
    exits = []

    def fake_exit(code):
        exits.append(code)
        raise SystemExit(code)

    monkeypatch.setattr(os, "_exit", fake_exit)
    windows = []

    def recorded_window(**kwargs):
        windows.append(MainWindow(**kwargs))
        qtbot.addWidget(windows[-1])
        return windows[-1]

    def event_loop_until_ready(app):
        # Instead of app.exec(), which a test must not end with quit() (it would leave the
        # shared QApplication closing): the loop turns until the runs are there, as in the app.
        qtbot.waitUntil(lambda: windows[0].ready, timeout=20000)
        windows[0].controller.set_surface_name("booth")
        return 0

    monkeypatch.setattr(gui.app, "MainWindow", recorded_window)
    monkeypatch.setattr(QApplication, "exec", event_loop_until_ready)
    with pytest.raises(SystemExit):
        gui.app.run_app([])
    assert exits == [0]
    assert not windows[0].isVisible()  # closed (and saved) before the process ends
    assert json.loads(settings.value("last_session"))["surface"]["name"] == "booth"


def test_closing_before_the_runs_arrive_keeps_the_saved_session(qtbot, settings):
    saved = Session.default("beale")
    settings.setValue("last_session", json.dumps(saved.to_dict()))
    w = _deferred_window(qtbot, settings)
    w.show()
    w.close()  # at once, maybe before the import thread has started
    assert not w.ready and w.controller.session.runs == []
    w._start_loader()  # what the first paint or the fallback timer would do now
    w._finish_loading()  # what the thread's queued "finished" would do
    assert not w._loader.isRunning()  # no thread left running after the window
    assert w.controller.session.runs == []
    assert json.loads(settings.value("last_session"))["surface"]["name"] == "beale"
