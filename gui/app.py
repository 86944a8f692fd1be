"""QApplication set-up and the main window.

The window is shown before the runs' optimizers are built (see MainWindow's `defer_runs`).
With the environment variable OPTIMIZER_PLAYGROUND_LAUNCH_PROBE set to the launch time (seconds
since the epoch, `time.time()`), the app prints `shown <s>` once the window is painted and
`ready <s>` once the runs are built, seconds since that time, then `closing <epoch s>` and quits:
benchmarks/bench_launch.py.

`run_app` does not return: it ends the process as soon as the window is closed (os._exit).
"""

from __future__ import annotations

import os
import sys
import time
from typing import NoReturn

from PySide6.QtCore import QCoreApplication, Qt, QTimer
from PySide6.QtWidgets import QApplication

from gui.main_window import MainWindow

LAUNCH_PROBE = "OPTIMIZER_PLAYGROUND_LAUNCH_PROBE"


def run_app(argv: list[str] | None = None) -> NoReturn:
    """Open the window and run the app; the process ends with the app's exit code."""
    # One torch thread: the app's tensors are tiny (two scalars, small models, batched grids of
    # a few thousand), and intra-op threads only add hand-offs; on a busy 2-core machine one
    # Adam step of a small MLP took 6-23 ms with two threads against 0.4-0.7 ms with one.
    import torch

    torch.set_num_threads(1)
    # One OpenGL context shared by every GL widget: the 3-D view's dock can float and re-dock.
    QCoreApplication.setAttribute(Qt.ApplicationAttribute.AA_ShareOpenGLContexts)
    app = QApplication.instance() or QApplication(argv if argv is not None else sys.argv)
    app.setApplicationName("Optimizer Playground")
    app.setOrganizationName("OptimizerPlayground")
    window = MainWindow(defer_runs=True)
    probe = os.environ.get(LAUNCH_PROBE)
    if probe:
        _probe_launch(app, window, float(probe))
    window.show()
    window.raise_()
    window.activateWindow()  # keyboard focus from the start, also without a window manager
    code = app.exec()
    if window.isVisible():  # ended by app.quit(): the window still saves its state
        window.close()
    # Everything worth keeping is written by now (closeEvent syncs the settings). The
    # interpreter's own teardown (torch's modules, then every Qt wrapper one by one) made
    # quitting take seconds: end the process at once instead.
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


def _probe_launch(app: QApplication, window: MainWindow, launched: float) -> None:
    seen: dict[str, float] = {}

    def note(what: str) -> None:
        seen[what] = time.time() - launched
        if "shown" in seen and ("ready" in seen or window.ready):
            seen.setdefault("ready", seen["shown"])
            print(f"shown {seen['shown']:.3f}\nready {seen['ready']:.3f}\n"
                  f"closing {time.time():.6f}", flush=True)
            window.close()
            app.quit()

    def shown() -> None:
        window.repaint()  # the first paint, done now rather than whenever the loop gets to it
        note("shown")

    QTimer.singleShot(0, shown)
    window.sigReady.connect(lambda: note("ready"))
