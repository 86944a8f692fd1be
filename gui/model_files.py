"""The File menu when the Model tab is on screen: new, open, save, examples and exports of the
model workspace, and its own "unsaved changes" question.

The window's File menu acts on the workspace on screen. Model session files and race session
files are told apart by their "format" field (core.model_session.FORMAT), so File > Open and
Open recent take either kind and show it in its own workspace, whichever tab was on screen.
The model workspace keeps its own file name, title and saved state (ModelController.modified);
the window's title shows those of the workspace on screen.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from PySide6.QtCore import QObject, QSize, QTimer
from PySide6.QtWidgets import QMenu

from core.model_session import FORMAT as MODEL_FORMAT
from core.model_session import MAX_FILE_BYTES, ModelSession

if TYPE_CHECKING:
    from gui.main_window import MainWindow

# The pictures File > Export offers in the Model tab: (view name, what the menu calls it).
VIEW_TITLES = (("data", "Data and predictions"), ("curves", "Training curves"),
               ("landscape", "Loss landscape"), ("sharpness", "Sharpness"),
               ("tensors", "Parameter table"), ("heatmap", "Tensor heatmap"))


def is_model_session_file(path: str | Path) -> bool:
    """Whether `path` holds a model session (its "format" says so). Anything unreadable is not:
    the race's loader then says what is wrong with it."""
    try:
        with open(path, "rb") as f:
            raw = f.read(MAX_FILE_BYTES + 1)
        data = json.loads(raw.decode("utf-8-sig"))
    except (OSError, ValueError, RecursionError):  # UnicodeDecodeError is a ValueError
        return False
    return isinstance(data, dict) and data.get("format") == MODEL_FORMAT


class ModelFiles(QObject):
    """The model workspace's side of the File menu (the window dispatches to it)."""

    def __init__(self, window: MainWindow) -> None:
        super().__init__(window)
        self.window = window
        self.path: Path | None = None  # where Ctrl+S writes; None: it asks
        self.title = "untitled"
        self._pending: Path | None = None  # a file being replayed in a Job (opened when done)
        # Stepping changes what a file would hold (the step counts): the unsaved mark follows,
        # at most twice a second (comparing the session costs more than a step).
        self._modified_timer = QTimer(self)
        self._modified_timer.setSingleShot(True)
        self._modified_timer.setInterval(500)
        self._modified_timer.timeout.connect(window._refresh_modified)

    @property
    def workspace(self):  # type: ignore[no-untyped-def]
        """The model workspace (built on first use)."""
        return self.window._build_model()

    def attach(self, workspace) -> None:  # type: ignore[no-untyped-def]
        """Follow the workspace just built: its opened sessions and its unsaved changes."""
        controller = workspace.controller
        controller.sigSessionOpened.connect(self._on_opened)
        for signal in (controller.sigRunsChanged, controller.sigRunChanged,
                       controller.sigProblemChanged, controller.sigPlayingChanged):
            signal.connect(self.window._refresh_modified)
        controller.sigStepped.connect(self._soon_refresh)

    def _soon_refresh(self) -> None:
        if not self._modified_timer.isActive():
            self._modified_timer.start()

    @property
    def modified(self) -> bool:
        ws = self.window.model_workspace
        return ws is not None and ws.modified

    # --- sessions ---------------------------------------------------------------------------------

    def may_replace(self) -> bool:
        """Before the model session is replaced: Save / Discard / Cancel if it has changes."""
        if not self.modified:
            return True
        answer = self.window.ask_unsaved()
        if answer == "save":
            return self.save()
        return answer == "discard"

    def new(self) -> bool:
        """File > New in the Model tab: SGD and Adam on two moons, untitled."""
        if not self.may_replace():
            return False
        session = ModelSession.default()
        for spec in session.runs:
            spec.steps = 0  # fresh runs at their start (a file's runs replay to their steps)
        ok = self.window._attempt("start a new model session", lambda: (
            self.workspace.controller.open_session(session, background=False)))
        if ok:
            self._pending = None
            self.path, self.title = None, "untitled"
            self._done("New model session")
        return ok

    def open(self, path: str | Path, *, ask: bool = True) -> bool:
        """Open a model session file in the Model tab (switching to it). A long replay runs in a
        Job with progress and Cancel under the setup bar; the file counts as open when it ends.
        A broken file: the message, and nothing changes."""
        if ask and not self.may_replace():
            return False
        workspace = self.workspace
        self.window.workspace_tabs.setCurrentWidget(self.window._model_page)
        jobs: list = []
        if not self.window._attempt("open the session",
                                    lambda: jobs.append(workspace.load_session(path))):
            return False
        if jobs[0] is None:
            self._pending = None
            self._use(Path(path), "Opened")
        else:
            self._pending = Path(path)
            self.window.show_status(f"Replaying {Path(path).name}… (Cancel under the setup bar)")
        return True

    def _on_opened(self) -> None:
        if self._pending is not None:
            path, self._pending = self._pending, None
            self._use(path, "Opened")

    def open_example(self, name: str) -> bool:
        """File > Examples > Model: an example stays unsaved (Ctrl+S asks where)."""
        if not self.may_replace():
            return False
        workspace = self.workspace
        self.window.workspace_tabs.setCurrentWidget(self.window._model_page)
        if not self.window._attempt("open the example", lambda: workspace.open_example(name)):
            return False
        self._pending = None
        controller = workspace.controller
        self.path, self.title = None, controller.title or name
        self._done("")
        self.window.statusBar().showMessage(f"{controller.description}   (Space: play)", 30000)
        return True

    def save(self) -> bool:
        if self.path is None:
            return self.save_as_dialog()
        return self.save_to(self.path)

    def save_as_dialog(self) -> bool:
        path = self.window._ask_save_path("Save model session", "json", "Model session")
        return self.save_to(Path(path)) if path else False

    def save_to(self, path: str | Path) -> bool:
        workspace = self.workspace
        if not self.window._attempt("save the session", lambda: workspace.save_session(path)):
            return False
        self._use(Path(path), "Saved")
        return True

    def _use(self, path: Path, done: str) -> None:
        self.path, self.title = path, path.name
        self.window._add_recent(path)
        self._done(f"{done} {path}")

    def _done(self, message: str) -> None:
        self.window._update_title()
        self.window._refresh_modified()
        if message:
            self.window.show_status(message)

    # --- exports ----------------------------------------------------------------------------------

    def fill_export_menu(self, menu: QMenu, add: Callable) -> None:  # type: ignore[type-arg]
        """File > Export in the Model tab: each view as PNG / SVG, the autograd graph, the
        animation, the curves and parameters as CSV / JSON (`add(menu, text, slot)`)."""
        for name, title in VIEW_TITLES:
            add(menu, f"{title} as PNG…", lambda _=False, n=name: self.export_view_dialog(n, "png"))
            add(menu, f"{title} as SVG…", lambda _=False, n=name: self.export_view_dialog(n, "svg"))
        add(menu, "Autograd &graph as PNG…", lambda: self.export_graph_dialog("png"))
        add(menu, "Autograd graph as S&VG…", lambda: self.export_graph_dialog("svg"))
        add(menu, "&Animation (GIF, MP4)…", self.window.export_animation_dialog)
        menu.addSeparator()
        add(menu, "Training curves and parameters as C&SV…", lambda: self.export_data_dialog("csv"))
        add(menu, "Training curves and parameters as &JSON…",
            lambda: self.export_data_dialog("json"))
        add(menu, "As PyTorch sc&ript…", lambda: self.window.export_script_dialog())

    def export_view_dialog(self, name: str, kind: str) -> None:
        path = self.window._ask_save_path("Export image", kind, f"{kind.upper()} image")
        if not path:
            return
        view = self.workspace.views()[name]
        size = self.window.ask_image_size(self.window.default_export_size(view))
        if size is not None:
            self.export_view(name, path, size)

    def export_view(self, name: str, path: str | Path, size: QSize | None = None) -> bool:
        """A .png or .svg of one of the workspace's views (see VIEW_TITLES)."""
        width, height = (size.width(), size.height()) if size is not None else (None, None)
        workspace = self.workspace
        if not self.window._attempt("export the image",
                                    lambda: workspace.export_view(name, path, width, height)):
            return False
        self.window.show_status(f"Wrote {path}")
        return True

    def export_graph_dialog(self, kind: str) -> None:
        path = self.window._ask_save_path("Export autograd graph", kind, f"{kind.upper()} image")
        if not path:
            return
        panel = self.workspace.graph_panel
        size = self.window.ask_image_size(self.window.default_export_size(panel))
        if size is not None:
            self.export_graph(path, size)

    def export_graph(self, path: str | Path, size: QSize | None = None) -> bool:
        """The model's loss graph as drawn (its modules collapsed as on screen)."""
        panel = self.workspace.graph_panel
        wanted = (size.width(), size.height()) if size is not None else None
        if not panel.export_graph(path, wanted):
            self.window.show_error(f"Could not export the graph.\n\n{panel.message.text()}")
            return False
        self.window.show_status(f"Wrote {path}")
        return True

    def export_data_dialog(self, kind: str) -> None:
        path = self.window._ask_save_path("Export training curves", kind, kind.upper())
        if path:
            self.export_data(path)

    def export_data(self, path: str | Path) -> bool:
        workspace = self.workspace
        if not self.window._attempt("export the training curves",
                                    lambda: workspace.export_data(path)):
            return False
        self.window.show_status(f"Wrote {path}")
        return True

