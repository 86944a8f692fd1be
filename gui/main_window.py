"""The main window: the surface in the middle, run cards on the right, table / curves / autograd
graph below, the transport and surface bars on top, and the File menu for sessions and exports."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

from PySide6.QtCore import QByteArray, QSettings, Qt
from PySide6.QtGui import QAction, QCloseEvent, QGuiApplication, QKeySequence, QShortcut
from PySide6.QtWidgets import (QDockWidget, QFileDialog, QMainWindow, QMessageBox, QTabWidget,
                               QToolBar, QWidget)

from core.errors import PlaygroundError
from core.export import export_data
from core.session import Session
from gui.controller import Controller
from gui.curves_view import CurvesView
from gui.graph_panel import GraphPanel
from gui.image_export import export_widget_image
from gui.run_list import RunList
from gui.run_table import RunTable
from gui.surface_bar import SurfaceBar
from gui.surface_view import SurfaceView
from gui.transport_bar import TransportBar
from resources import preset_paths, preset_title

MAX_RECENT = 8
SESSION_FILTER = "Session (*.json)"


def default_settings() -> QSettings:
    return QSettings("OptimizerPlayground", "OptimizerPlayground")


class MainWindow(QMainWindow):
    def __init__(self, controller: Controller | None = None, *,
                 settings: QSettings | None = None, restore: bool = True,
                 parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.settings = settings if settings is not None else default_settings()
        self.session_path: Path | None = None
        self.restore_message = ""
        if controller is None:
            controller = Controller(self._last_session() if restore else None, parent=self)
        self.controller = controller
        self.setWindowTitle("Optimizer Playground")
        screen = QGuiApplication.primaryScreen()
        room = screen.availableGeometry() if screen is not None else None
        self.resize(min(1500, room.width()) if room else 1500,
                    min(950, room.height()) if room else 950)

        self.surface_view = SurfaceView(controller)
        self.setCentralWidget(self.surface_view)
        self.run_list = RunList(controller)
        self.run_table = RunTable(controller)
        self.curves_view = CurvesView(controller)
        self.graph_panel = GraphPanel(controller)
        self.transport_bar = TransportBar(controller)
        self.transport_bar.sigArrowsToggled.connect(self.surface_view.set_gradient_arrows)
        self.surface_bar = SurfaceBar(controller)

        for name, bar_widget in (("Transport", self.transport_bar), ("Surface", self.surface_bar)):
            bar = QToolBar(name)
            bar.setObjectName(f"{name}Toolbar")
            bar.setMovable(False)
            bar.addWidget(bar_widget)
            self.addToolBar(Qt.ToolBarArea.TopToolBarArea, bar)
            if name == "Transport":
                self.addToolBarBreak()

        self.runs_dock = self._dock("Runs", self.run_list, Qt.DockWidgetArea.RightDockWidgetArea)
        self.tabs = QTabWidget()
        self.tabs.addTab(self.run_table, "Gradients && optimizer state")
        self.tabs.addTab(self.curves_view, "Loss && gradient norm")
        self.tabs.addTab(self.graph_panel, "Autograd graph")
        self.tabs.currentChanged.connect(self._on_tab_change)
        self.bottom_dock = self._dock("Details", self.tabs, Qt.DockWidgetArea.BottomDockWidgetArea)
        self.resizeDocks([self.runs_dock], [400], Qt.Orientation.Horizontal)
        self.resizeDocks([self.bottom_dock], [280], Qt.Orientation.Vertical)

        self._build_menus()
        self._build_shortcuts()
        controller.sigError.connect(self.show_error)
        if restore:
            self._restore_layout()
        self.controller.formulas = self._stored_list("formulas")
        self.surface_bar._on_surface_change()
        self.surface_view.setFocus()  # so Space / → / R reach the shortcuts, not a text field
        self.statusBar().showMessage(self.restore_message or
                                     "Space: play/pause   →: one step   R: reset   "
                                     "click or drag on the surface to move the start", 8000)

    def _on_tab_change(self, index: int) -> None:
        # The graph needs more height than the table: give it up to 45% of the window.
        if self.tabs.widget(index) is self.graph_panel:
            wanted = int(self.height() * 0.45)
            if self.bottom_dock.height() < wanted:
                self.resizeDocks([self.bottom_dock], [wanted], Qt.Orientation.Vertical)

    def _dock(self, title: str, widget: QWidget, area: Qt.DockWidgetArea) -> QDockWidget:
        dock = QDockWidget(title, self)
        dock.setObjectName(f"{title}Dock")
        dock.setWidget(widget)
        dock.setFeatures(QDockWidget.DockWidgetFeature.DockWidgetMovable
                         | QDockWidget.DockWidgetFeature.DockWidgetFloatable)
        self.addDockWidget(area, dock)
        return dock

    # --- menus and shortcuts ----------------------------------------------------------------------

    def _build_menus(self) -> None:
        file_menu = self.menuBar().addMenu("&File")
        self.open_action = self._action(file_menu, "&Open session…", self.open_session_dialog,
                                        QKeySequence.StandardKey.Open)
        self.recent_menu = file_menu.addMenu("Open &recent")
        self.examples_menu = file_menu.addMenu("E&xamples")
        for path in preset_paths():
            self._action(self.examples_menu, preset_title(path),
                         lambda _=False, p=path: self.open_example(p))
        self._action(file_menu, "&Save session", self.save_session, QKeySequence.StandardKey.Save)
        self._action(file_menu, "Save session &as…", self.save_session_as_dialog,
                     QKeySequence.StandardKey.SaveAs)
        file_menu.addSeparator()
        export = file_menu.addMenu("&Export")
        self._action(export, "Surface and trajectories as &PNG…",
                     lambda: self.export_image_dialog(self.surface_view, "png"))
        self._action(export, "Surface and trajectories as &SVG…",
                     lambda: self.export_image_dialog(self.surface_view, "svg"))
        self._action(export, "&Curves as PNG…",
                     lambda: self.export_image_dialog(self.curves_view, "png"))
        self._action(export, "Autograd &graph as PNG…", lambda: self.export_graph_dialog("png"))
        self._action(export, "Autograd graph as S&VG…", lambda: self.export_graph_dialog("svg"))
        export.addSeparator()
        self._action(export, "Trajectories as C&SV…", lambda: self.export_data_dialog("csv"))
        self._action(export, "Trajectories as &JSON…", lambda: self.export_data_dialog("json"))
        self.export_menu = export
        file_menu.addSeparator()
        self._action(file_menu, "&Quit", self.close, QKeySequence.StandardKey.Quit)

        run_menu = self.menuBar().addMenu("&Run")
        self._action(run_menu, "Play / pause (Space)", self.controller.toggle_play)
        self._action(run_menu, "One step (→)", self.controller.step_once)
        self._action(run_menu, "Reset (R)", self.controller.reset)
        self.view_menu = self.menuBar().addMenu("&View")
        for dock in (self.runs_dock, self.bottom_dock):
            self.view_menu.addAction(dock.toggleViewAction())
        self._action(self.view_menu, "Fit surface", self.surface_view.fit_to_surface)
        self._update_recent_menu()

    def _action(self, menu, text: str, slot, shortcut=None) -> QAction:  # type: ignore[no-untyped-def]
        action = QAction(text, self)
        if shortcut is not None:
            action.setShortcut(shortcut)
        action.triggered.connect(slot)
        menu.addAction(action)
        return action

    def _build_shortcuts(self) -> None:
        # Window-wide keys; a focused text field keeps its own use of them (shortcut override).
        for key, slot in ((Qt.Key.Key_Space, self.controller.toggle_play),
                          (Qt.Key.Key_Right, self.controller.step_once),
                          (Qt.Key.Key_R, self.controller.reset)):
            shortcut = QShortcut(QKeySequence(key), self)
            shortcut.activated.connect(slot)

    # --- sessions ---------------------------------------------------------------------------------

    def open_session_dialog(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Open session", self._last_dir(),
                                              SESSION_FILTER)
        if path:
            self.open_session(path)

    def open_session(self, path: str | Path) -> bool:
        """Load a session file; on failure show why and keep everything as it was."""
        if not self._attempt("open the session", lambda: self.controller.load_session(path)):
            return False
        self._use_session_file(Path(path), "Opened")
        return True

    def open_example(self, path: Path) -> bool:
        """Load an example session; it stays unsaved (Ctrl+S asks where), the preset untouched."""
        if not self._attempt("open the example", lambda: self.controller.load_session(path)):
            return False
        extra = self.controller.session.extra
        self.session_path = None
        self.setWindowTitle(f"Optimizer Playground — {extra.get('title', path.stem)}")
        self.statusBar().showMessage(str(extra.get("description", "")) +
                                     "   (Space: play)", 30000)
        return True

    def save_session(self) -> bool:
        if self.session_path is None:
            return self.save_session_as_dialog()
        return self.save_session_to(self.session_path)

    def save_session_as_dialog(self) -> bool:
        path = self._ask_save_path("Save session", "json", "Session")
        return self.save_session_to(Path(path)) if path else False

    def save_session_to(self, path: Path) -> bool:
        if not self._attempt("save the session", lambda: self.controller.save_session(path)):
            return False
        self._use_session_file(Path(path), "Saved")
        return True

    def _attempt(self, what: str, action: Callable[[], object]) -> bool:
        """Run a user's file action; a PlaygroundError is shown ("Could not <what>") and
        changes nothing else."""
        try:
            action()
        except PlaygroundError as e:
            self.show_error(f"Could not {what}.\n\n{e}")
            return False
        return True

    def _use_session_file(self, path: Path, done: str) -> None:
        """The session now lives in `path`: Ctrl+S writes there; it heads the recent files."""
        self.session_path = path
        self._add_recent(path)
        self.setWindowTitle(f"Optimizer Playground — {path.name}")
        self.statusBar().showMessage(f"{done} {path}", 5000)

    def _add_recent(self, path: Path) -> None:
        recent = [p for p in self._stored_list("recent") if p != str(path.resolve())]
        recent.insert(0, str(path.resolve()))
        self.settings.setValue("recent", json.dumps(recent[:MAX_RECENT]))
        self.settings.setValue("last_dir", str(path.resolve().parent))
        self._update_recent_menu()

    def _update_recent_menu(self) -> None:
        self.recent_menu.clear()
        recent = self._stored_list("recent")
        for p in recent:
            action = self.recent_menu.addAction(Path(p).name)
            action.setToolTip(p)
            action.setData(p)
            action.triggered.connect(lambda _=False, p=p: self.open_session(p))
        self.recent_menu.setEnabled(bool(recent))

    def _stored_list(self, key: str) -> list[str]:
        try:
            value = json.loads(str(self.settings.value(key, "[]")))
        except ValueError:
            return []
        return [str(v) for v in value] if isinstance(value, list) else []

    def _last_dir(self) -> str:
        return str(self.settings.value("last_dir", str(Path.home())))

    def _ask_save_path(self, title: str, suffix: str, what: str) -> str | None:
        """A file dialog for saving; the path gets `.suffix` if the user left it out."""
        path, _ = QFileDialog.getSaveFileName(self, title, self._last_dir(),
                                              f"{what} (*.{suffix})")
        if not path:
            return None
        return path if path.lower().endswith("." + suffix) else f"{path}.{suffix}"

    # --- exports ----------------------------------------------------------------------------------

    def export_image_dialog(self, widget: QWidget, kind: str) -> None:
        path = self._ask_save_path("Export image", kind, f"{kind.upper()} image")
        if path:
            self.export_image(widget, path)

    def export_image(self, widget: QWidget, path: str | Path) -> bool:
        if not self._attempt("export the image", lambda: export_widget_image(widget, path)):
            return False
        self.statusBar().showMessage(f"Wrote {path}", 5000)
        return True

    def export_graph_dialog(self, kind: str) -> None:
        path = self._ask_save_path("Export autograd graph", kind, f"{kind.upper()} image")
        if path:
            self.export_graph(path)

    def export_graph(self, path: str | Path) -> bool:
        if not self.graph_panel.export_graph(path):
            self.show_error(f"Could not export the graph.\n\n{self.graph_panel.message.text()}")
            return False
        self.statusBar().showMessage(f"Wrote {path}", 5000)
        return True

    def export_data_dialog(self, kind: str) -> None:
        path = self._ask_save_path("Export trajectories", kind, kind.upper())
        if path:
            self.export_data(path)

    def export_data(self, path: str | Path) -> bool:
        session = self.controller.session
        if not self._attempt("export the trajectories", lambda: export_data(session, path)):
            return False
        self.statusBar().showMessage(f"Wrote {path}", 5000)
        return True

    def show_error(self, message: str) -> None:
        self.statusBar().showMessage(message.replace("\n\n", " "), 10000)
        box = QMessageBox(QMessageBox.Icon.Warning, "Optimizer Playground", message,
                          QMessageBox.StandardButton.Ok, self)
        box.setObjectName("errorBox")
        box.open()  # window-modal, does not block: tests and the timer keep running

    # --- layout and the last session across starts ------------------------------------------------

    def _last_session(self) -> Session | None:
        text = self.settings.value("last_session")
        if not text:
            return None
        try:
            return Session.from_dict(json.loads(str(text)))
        except (PlaygroundError, ValueError) as e:
            self.restore_message = f"The last session could not be restored ({e}); " \
                                   "started a new one."
            return None

    def _restore_layout(self) -> None:
        geometry = self.settings.value("geometry")
        state = self.settings.value("window_state")
        if isinstance(geometry, QByteArray):
            self.restoreGeometry(geometry)
        if isinstance(state, QByteArray):
            self.restoreState(state)

    def save_state(self) -> None:
        """Layout, the last session and the typed formulas, for the next start."""
        self.settings.setValue("geometry", self.saveGeometry())
        self.settings.setValue("window_state", self.saveState())
        self.settings.setValue("last_session", json.dumps(self.controller.session.to_dict()))
        self.settings.setValue("formulas", json.dumps(self.controller.formulas))
        self.settings.sync()

    def closeEvent(self, event: QCloseEvent) -> None:
        self.controller.shutdown()
        self.save_state()
        super().closeEvent(event)
