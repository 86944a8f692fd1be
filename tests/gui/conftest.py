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


@pytest.fixture
def make_main_window(qtbot, tmp_path):
    """The real MainWindow on its own settings file, shown; "discard" to every unsaved-changes
    question. Afterwards it is closed, its controllers are shut down and no Job is left."""
    from PySide6.QtCore import QSettings

    from gui.main_window import MainWindow
    from gui.worker import wait_for_jobs

    made = []

    def make(session: Session | None = None, size: tuple[int, int] | None = None) -> MainWindow:
        settings = QSettings(str(tmp_path / "settings.ini"), QSettings.Format.IniFormat)
        w = MainWindow(Controller(session or Session.default()), settings=settings,
                       restore=False)
        qtbot.addWidget(w)
        w.ask_unsaved = lambda: "discard"
        if size is not None:
            w.resize(*size)
        w.show()
        qtbot.waitExposed(w)
        made.append(w)
        return w

    yield make
    for w in made:
        w.close()
        w.controller.shutdown()
        if w.model_workspace is not None:
            w.model_workspace.controller.pause()
            w.model_workspace.controller.shutdown(2.0)
    assert wait_for_jobs(30.0)


# --- the model workspace (tests/gui/test_model_*.py) ---------------------------------------------

MODEL_MOONS = dict(dataset="moons", n=80, preset="small-mlp")  # ModelSettings' keywords


@pytest.fixture
def make_model_controller(qtbot):
    """A factory: make_model_controller(settings=None, *, sharpness=False) -> a ModelController
    on `settings` (a ModelSettings; default: the app's first look, two moons and the small
    MLP), with no sharpness measurements (no worker) unless asked. Every controller made is
    paused, shut down and its jobs waited for after the test."""
    from gui.model.controller import ModelController
    from gui.worker import wait_for_jobs

    made = []

    def make(settings=None, *, sharpness: bool = False) -> ModelController:
        c = ModelController(settings)
        if not sharpness:
            c.sharpness_every = 10 ** 9
        made.append(c)
        return c

    yield make
    for c in made:
        c.pause()
        assert c.shutdown(2.0)
    assert wait_for_jobs(2.0)


@pytest.fixture
def make_model_workspace(qtbot, make_model_controller):
    """A factory: make_model_workspace(settings=None, *, size=(1280, 800), sharpness=False)
    -> a shown ModelWorkspace (no runs yet) on make_model_controller(settings); default
    settings: two moons with 80 rows and the small MLP. Cleaned up as its controller is."""
    from gui.model.controller import ModelSettings
    from gui.model.workspace import ModelWorkspace

    def make(settings=None, *, size: tuple[int, int] = (1280, 800),
             sharpness: bool = False) -> ModelWorkspace:
        c = make_model_controller(settings or ModelSettings(**MODEL_MOONS),
                                  sharpness=sharpness)
        w = ModelWorkspace(controller=c)
        qtbot.addWidget(w)
        w.resize(*size)
        w.show()
        qtbot.waitExposed(w)
        return w

    return make


@pytest.fixture
def model_workspace(make_model_workspace):
    """A shown model workspace at 1280 x 800, no runs: two moons (80 rows), the small MLP."""
    return make_model_workspace()


@pytest.fixture
def deep_model_workspace(make_model_workspace):
    """The same with the deep MLP (eight parameter tensors, four layers to freeze)."""
    from gui.model.controller import ModelSettings

    return make_model_workspace(ModelSettings(**{**MODEL_MOONS, "preset": "deep-mlp"}))
