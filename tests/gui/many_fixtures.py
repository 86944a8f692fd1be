"""What the Many runs GUI tests (tests/gui/test_many_*.py) share: one torch thread, a race or a
model controller built and shut down for the test, and waiting for a tab's map.

pytest finds fixtures only in conftest.py files and in a test module's own namespace, and
tests/gui/conftest.py belongs to the other GUI suites, so each file imports what it uses by name:

    from tests.gui.many_fixtures import make_race, one_torch_thread  # noqa: F401 (fixtures)

`one_torch_thread` is autouse: importing it is enough.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
from PySide6.QtWidgets import QApplication

from core.batch import one_torch_thread as _one_torch_thread
from core.session import Session
from gui.controller import Controller
from gui.worker import wait_for_jobs

RaceRuns = tuple[tuple[str, dict[str, Any]], ...]


@pytest.fixture(autouse=True)
def one_torch_thread() -> Iterator[None]:
    """As the app runs (gui/app.py): on this 2-core machine two intra-op threads made a
    65536-start batch step 30x slower whenever another process held a core. The count is put
    back after the test (core.batch.one_torch_thread, which the tabs' Jobs also enter)."""
    with _one_torch_thread():
        yield


@pytest.fixture
def make_race(qtbot) -> Iterator[Callable[..., Controller]]:
    """make_race("himmelblau", ("Adam", {"lr": 0.05}), ...): a race controller on that
    surface's default start with those runs (none given: the surface's default session), shut
    down after the test once every Job has returned."""
    made: list[Controller] = []

    def make(surface: str, *runs: tuple[str, dict[str, Any]]) -> Controller:
        if runs:
            session = Session(Session.default(surface).surface)
            for name, hyperparameters in runs:
                session.add_run(name, hyperparameters)
        else:
            session = Session.default(surface)
        controller = Controller(session)
        made.append(controller)
        return controller

    yield make
    for controller in made:
        controller.shutdown()
    assert wait_for_jobs(10.0)


@pytest.fixture
def make_model(qtbot) -> Iterator[Callable[..., Any]]:
    """make_model(("SGD", 0.1), ("Adam", 0.01), n=60): a model workspace controller (the
    default model and data, n rows) with those runs, shut down after the test."""
    from gui.model.controller import ModelController

    made: list[Any] = []

    def make(*runs: tuple[str, float], n: int = 60) -> Any:
        controller = ModelController()
        controller.configure(n=n)
        for name, lr in runs:
            controller.add_run(name, lr)
        made.append(controller)
        return controller

    yield make
    for controller in made:
        controller.shutdown()


def compute(qtbot, view: Any, timeout: int = 60_000) -> None:
    """Press the tab's Compute (a Job must start) and wait until its picture is on screen."""
    with qtbot.waitSignal(view.sigComputed, timeout=timeout):
        assert view.compute()


def settle() -> None:
    """Apply the layout the new maps and legend asked for (on screen, the next turns of the
    event loop), so positions mapped now are where the mouse will land."""
    for _ in range(3):
        QApplication.sendPostedEvents()
        QApplication.processEvents()
