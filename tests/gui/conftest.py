import pytest

from core.session import Session
from gui.controller import Controller


@pytest.fixture
def controller(qtbot):
    """A controller on the default session (SGD, SGD+momentum, RMSprop, Adam on Rosenbrock)."""
    c = Controller(Session.default())
    yield c
    left_running = c.playing
    c.shutdown()
    # A timer left running after a test is how Qt suites start to crash: fail loudly instead.
    assert not left_running, "the test left the controller's timer running"
