"""The main window: the surface in the middle, run cards on the right, table / curves / autograd
graph below, the transport and surface bars on top, and the File menu for sessions and exports.

The surface keeps most of the window: the docks are capped (`BOTTOM_DOCK_MAX`, `SIDE_DOCK_MAX`) on
every resize and after a saved layout is restored, so no saved state can squash it.

With `defer_runs=True` (the app's launch) the window shows the surface first and builds the runs'
optimizers after: torch imports `torch._dynamo` (1-2.5 s) the first time an optimizer is built, so
a thread imports it while the window is already on screen (`sigReady` when the runs are there).
"""

from __future__ import annotations

import contextlib
import json
import math
import platform
from collections.abc import Callable
from pathlib import Path

from PySide6.QtCore import (QByteArray, QEvent, QObject, QSettings, QSize, Qt, QThread,
                            QTimer, Signal)
from PySide6.QtGui import (QAction, QActionGroup, QCloseEvent, QGuiApplication, QKeySequence,
                           QResizeEvent, QShortcut, QShowEvent)
from PySide6.QtWidgets import (QAbstractSpinBox, QComboBox, QDialog, QDialogButtonBox,
                               QDockWidget, QFileDialog, QFormLayout, QFrame, QLineEdit,
                               QMainWindow, QMenu, QMessageBox, QScrollArea, QSpinBox, QTabWidget,
                               QTextBrowser, QToolBar, QVBoxLayout, QWidget)

from core.errors import PlaygroundError
from core.export import export_data
from core.session import MAX_RUNS, Session
from core.surfaces import Surface, get_surface, surface_from_formula
from gui.controller import Controller
from gui.curves_view import CurvesView
from gui.graph_panel import GraphPanel
from gui.image_export import export_widget_image
from gui.model_files import ModelFiles, is_model_session_file
from gui.run_list import RunList
from gui.run_table import RunTable
from gui.surface_bar import SurfaceBar
from gui.surface_area import SETTINGS_KEY as SURFACE_MODE_KEY
from gui.surface_area import SurfaceArea, mode_from_setting
from gui.surface_view import SurfaceView
from gui.transport_bar import TransportBar
from resources import model_examples, preset_paths, preset_title

MAX_RECENT = 8
SESSION_FILTER = "Session (*.json)"
# The surface is the point of the app: a dock below takes at most this share of the window's
# height, a dock at the side at most this share of its width (a restored layout included).
BOTTOM_DOCK_MAX = 0.38
SIDE_DOCK_MAX = 0.35
SIDE_DOCKS_MAX = 0.55  # all side docks together (the runs at the right, the 3-D view at the left)
BOTTOM_DOCK_FIRST = 0.28  # the details dock's share of the height on a first start
LOADER_DELAY_MS = 300
# What the user is asked when a changed session would be replaced: one of these strings.
SAVE, DISCARD, CANCEL = "save", "discard", "cancel"

SHORTCUTS = (
    ("Space", "play / pause (when the focus is not in a text field)"),
    ("→", "one step"),
    ("R", "reset every run to the start"),
    ("Esc", "leave a text field (the keys above work again)"),
    ("Enter", "use the formula / start typed"),
    ("Ctrl+Z", "undo removing a run"),
    ("Ctrl+N", "new session"),
    ("Ctrl+O / Ctrl+S", "open / save a session"),
    ("Ctrl+Q", "quit"),
    ("Ctrl+1 / 2 / 3 / 4", "the surface race / the autograd lab / the model workspace / many runs"),
    ("mouse wheel", "scroll the runs list (a focused control takes it)"),
    ("Shift+drag", "on an lr slider: 10 times finer steps (Ctrl too)"),
    ("click / drag", "on the surface: move the start point"),
)


def _workspace_page() -> QScrollArea:
    """A tab for a workspace built on first use. It scrolls when the window is narrower than the
    workspace needs, rather than passing its minimum size on to the tab widget (whose minimum
    is the largest of its pages': a wide page on a hidden tab would squeeze the race's docks)."""
    page = QScrollArea()
    page.setWidgetResizable(True)
    page.setFrameShape(QFrame.Shape.NoFrame)
    return page


def default_settings() -> QSettings:
    return QSettings("OptimizerPlayground", "OptimizerPlayground")


def app_version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("optimizer-playground")
    except PackageNotFoundError:
        return "unknown"


class _OptimizerImport(QThread):
    """Imports what torch.optim loads on the first optimizer (torch._dynamo), off the GUI thread.

    A failure here is left for the GUI thread's own import to report, where it happens anyway.
    """

    def run(self) -> None:
        with contextlib.suppress(Exception):
            import torch._dynamo  # noqa: F401


class ImageSizeDialog(QDialog):
    """Width and height in pixels for an exported picture (16 to 10000 each)."""

    def __init__(self, size: QSize, *, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Image size")
        form = QFormLayout(self)
        self.width_box, self.height_box = QSpinBox(), QSpinBox()
        for box, value in ((self.width_box, size.width()), (self.height_box, size.height())):
            box.setRange(16, 10000)
            box.setSuffix(" px")
            box.setValue(value)
        form.addRow("Width", self.width_box)
        form.addRow("Height", self.height_box)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Ok
                                   | QDialogButtonBox.StandardButton.Cancel)
        buttons.accepted.connect(self.accept)
        buttons.rejected.connect(self.reject)
        form.addRow(buttons)

    def chosen_size(self) -> QSize:
        return QSize(self.width_box.value(), self.height_box.value())


def _surface_and_start(data: object) -> tuple[Surface, tuple[float, float]] | None:
    """The surface and start of a saved session, cheaply (no run is built): for the window's
    first paint. None when anything is unusual; the full validation comes after."""
    try:
        surface_data, start = data["surface"], data["start"]  # type: ignore[index]
        if "formula" in surface_data:
            ranges = {k: tuple(float(v) for v in surface_data[k])
                      for k in ("x_range", "y_range") if k in surface_data}
            surface = surface_from_formula(str(surface_data["formula"]), **ranges)
        else:
            surface = get_surface(str(surface_data["name"]))
        x, y = float(start[0]), float(start[1])
    except (PlaygroundError, KeyError, TypeError, ValueError, IndexError):
        return None
    return (surface, (x, y)) if math.isfinite(x) and math.isfinite(y) else None


class MainWindow(QMainWindow):
    """The app's window.

    Signals
    -------
    sigReady()    the runs are built (at once, or after the first paint with `defer_runs`)

    `ask_unsaved()` (replaceable, for tests) answers SAVE, DISCARD or CANCEL when a changed
    session would be replaced; `ask_image_size(QSize)` returns the export size or None.
    """

    sigReady = Signal()

    def __init__(self, controller: Controller | None = None, *,
                 settings: QSettings | None = None, restore: bool = True,
                 defer_runs: bool = False, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.settings = settings if settings is not None else default_settings()
        self.session_path: Path | None = None
        self.restore_message = ""
        self.ask_unsaved: Callable[[], str] = self._ask_unsaved_dialog
        self.ask_image_size: Callable[[QSize], QSize | None] = self._ask_image_size_dialog
        # (path, (width, height), AnimationPlan[, curves[, as the view]]) or None; replaceable
        self.ask_animation: Callable[[], tuple | None] = self._ask_animation_dialog
        self.animation_task = None  # the animation export running or last run
        self.script_export = None  # File > Export > As PyTorch script: running or last run
        self._build_session: Callable[[], Session] | None = None
        self._loader: _OptimizerImport | None = None
        self._saved_config: dict | None = None
        self._removed_runs: list[tuple[int, object]] = []  # (index, run), newest last
        self._known_runs: list = []
        self._known_session: Session | None = None
        self._title_name = "untitled"
        self.model_files = ModelFiles(self)  # the File menu's side of the Model tab
        if controller is None:
            if defer_runs:
                session, self._build_session = self._deferred_session(restore)
            else:
                session = self._last_session() if restore else None
            controller = Controller(session, parent=self)
        self.controller = controller
        self.ready = self._build_session is None
        self._placeholder_was = (controller.session.surface, controller.session.start)
        screen = QGuiApplication.primaryScreen()
        room = screen.availableGeometry() if screen is not None else None
        self.resize(min(1500, room.width()) if room else 1500,
                    min(950, room.height()) if room else 950)

        self.surface_view = SurfaceView(controller)
        # A click on the surface takes the focus out of any text field, so Space / → / R work.
        self.surface_view.setFocusPolicy(Qt.FocusPolicy.StrongFocus)
        # The workspaces: the race (the surface, with its docks and bars) and the autograd lab,
        # which is built the first time it is opened (nothing of it delays the first paint).
        self.workspace_tabs = QTabWidget()
        self.workspace_tabs.setObjectName("workspaceTabs")
        self.workspace_tabs.setDocumentMode(True)
        # The race's central area: the heatmap, the 3-D view instead of it, or both side by side.
        self.surface_area = SurfaceArea(controller, self.surface_view)
        self.workspace_tabs.addTab(self.surface_area, "Surface race")
        self.lab_workspace: QWidget | None = None
        self._lab_page = _workspace_page()
        self.workspace_tabs.addTab(self._lab_page, "Autograd lab")
        self.workspace_tabs.setTabToolTip(1, "Tensors and one expression: Q.backward(gradient=v), "
                                             "the Jacobian, VJP and JVP")
        self.model_workspace: QWidget | None = None  # built the first time it is opened
        self._model_page = _workspace_page()
        self.workspace_tabs.addTab(self._model_page, "Model")
        self.workspace_tabs.setTabToolTip(2, "torch.optim optimizers train one torch.nn model "
                                             "on data, side by side")
        self.many_workspace: QWidget | None = None  # built the first time it is opened
        self.basin_layer = None  # View > Basins layer: made when first toggled
        self._many_page = _workspace_page()
        self.workspace_tabs.addTab(self._many_page, "Many runs")
        self.workspace_tabs.setTabToolTip(3, "Thousands of runs as one batch: basins of "
                                             "attraction, lr sweeps, trainability maps")
        self._race_chrome: dict[QWidget, bool] = {}  # what the lab hid, and whether it was shown
        self.setCentralWidget(self.workspace_tabs)
        self.run_list = RunList(controller)
        self.run_table = RunTable(controller)
        self.curves_view = CurvesView(controller)
        self.graph_panel = GraphPanel(controller)
        self.transport_bar = TransportBar(controller)
        self.transport_bar.sigArrowsToggled.connect(self.surface_view.set_gradient_arrows)
        self.surface_bar = SurfaceBar(controller)
        self.surface_bar.sigDone.connect(self.leave_text_field)

        self.race_toolbars: list[QToolBar] = []
        for name, bar_widget in (("Transport", self.transport_bar), ("Surface", self.surface_bar)):
            bar = QToolBar(name)
            self.race_toolbars.append(bar)
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
        # Docks are capped after the window's layout has settled (sizes are only real then).
        self._layout_timer = QTimer(self)
        self._layout_timer.setSingleShot(True)
        self._layout_timer.setInterval(0)
        self._layout_timer.timeout.connect(self.keep_surface_big)
        self._first_layout = True  # no saved layout: the docks get their first-start sizes

        self._build_menus()
        self._build_shortcuts()
        self.workspace_tabs.currentChanged.connect(self._on_workspace_change)
        controller.sigError.connect(self.show_error)
        for signal in (controller.sigRunsChanged, controller.sigRunChanged,
                       controller.sigSurfaceChanged):
            signal.connect(self._on_session_change)
        controller.sigModified.connect(self._on_session_change)
        if restore:
            self._restore_layout()
        self.controller.formulas = self._stored_list("formulas")
        self.surface_bar._on_surface_change()
        self._mark_saved()
        self.surface_area.setFocus()  # so Space / → / R reach the shortcuts, not a text field
        self.statusBar().showMessage(self.restore_message or
                                     "Space: play/pause   →: one step   R: reset   "
                                     "click or drag on the surface to move the start", 8000)
        if not self.ready:
            self.statusBar().showMessage("Loading torch.optim… (the runs appear in a moment)")

    # --- launch: the runs after the first paint ---------------------------------------------------

    def _deferred_session(self, restore: bool) -> tuple[Session, Callable[[], Session]]:
        """A session with the last surface and start but no runs yet (no optimizer is built), and
        how to build the real one (which validates the whole saved session)."""
        text = self.settings.value("last_session") if restore else None
        placeholder = Session(get_surface("rosenbrock"))
        if not text:
            return placeholder, Session.default
        try:
            data = json.loads(str(text))
        except ValueError as e:
            self.restore_message = f"The last session could not be restored ({e}); " \
                                   "started a new one."
            return placeholder, Session.default
        quick = _surface_and_start(data)
        if quick is not None:
            placeholder = Session(*quick)

        def build() -> Session:
            try:
                return Session.from_dict(data)
            except (PlaygroundError, ValueError, TypeError) as e:
                self.show_status(f"The last session could not be restored ({e}); "
                                 "started a new one.", 15000)
                return Session.default()
        return placeholder, build

    def showEvent(self, event: QShowEvent) -> None:  # noqa: N802 (Qt's name)
        super().showEvent(event)
        self._layout_timer.start()
        if self._build_session is not None and self._loader is None:
            # The import thread shares the GIL: it starts once the surface is painted (or after
            # LOADER_DELAY_MS if no paint comes, as with some headless platforms).
            self._loader = _OptimizerImport(self)
            self._loader.finished.connect(self._finish_loading)
            self.surface_view.viewport().installEventFilter(self)
            QTimer.singleShot(LOADER_DELAY_MS, self, self._start_loader)

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:  # noqa: N802
        if event.type() == QEvent.Type.Paint and watched is self.surface_view.viewport():
            QTimer.singleShot(0, self, self._start_loader)  # after this paint is done
        return False

    def _start_loader(self) -> None:
        if self._build_session is None:  # closed before the first paint: nothing to load
            return
        if self._loader is not None and not self._loader.isRunning() \
                and not self._loader.isFinished():
            self.surface_view.viewport().removeEventFilter(self)
            self._loader.start()

    def _finish_loading(self) -> None:
        build, self._build_session = self._build_session, None
        if build is None:
            return
        placeholder = self.controller.session
        surface, start = self._placeholder_was
        session = build()
        # What the user did while the runs were loading is kept: the surface, the start, and
        # runs added by hand.
        if placeholder.surface is not surface or placeholder.start != start:
            session.set_surface(placeholder.surface, placeholder.start)
        for run in placeholder.runs:
            c = run.config()
            if len(session.runs) < MAX_RUNS:
                session.add_run(c["optimizer"], c["hyperparameters"], c["frozen"], run.label,
                                None, run.enabled)
        self.controller.set_session(session)
        self._mark_saved()
        self.ready = True
        if self.statusBar().currentMessage().startswith("Loading"):
            self.statusBar().clearMessage()
        self.sigReady.emit()

    # --- layout: the surface keeps most of the window ---------------------------------------------

    def resizeEvent(self, event: QResizeEvent) -> None:  # noqa: N802
        super().resizeEvent(event)
        self._layout_timer.start()

    def keep_surface_big(self) -> None:
        """Shrink a dock that takes more than its share (BOTTOM_DOCK_MAX of the height below or
        above, SIDE_DOCK_MAX of the width at a side, SIDE_DOCKS_MAX for all side docks
        together); floating and hidden docks take nothing."""
        if self._first_layout and self.isVisible():
            self._first_layout = False
            if self.dockWidgetArea(self.bottom_dock) == Qt.DockWidgetArea.BottomDockWidgetArea:
                share = (BOTTOM_DOCK_MAX if self.tabs.currentWidget() is self.graph_panel
                         else BOTTOM_DOCK_FIRST)  # the graph needs the height
                self.resizeDocks([self.bottom_dock], [int(self.height() * share)],
                                 Qt.Orientation.Vertical)
        docks = [self.runs_dock, self.bottom_dock]
        side: list[tuple[QDockWidget, int]] = []  # docks at the sides and the widths they keep
        for dock in docks:
            if dock.isFloating() or dock.isHidden():
                continue
            area = self.dockWidgetArea(dock)
            if area in (Qt.DockWidgetArea.LeftDockWidgetArea,
                        Qt.DockWidgetArea.RightDockWidgetArea):
                side.append((dock, min(dock.width(), int(self.width() * SIDE_DOCK_MAX))))
            elif dock.height() > int(self.height() * BOTTOM_DOCK_MAX):
                self.resizeDocks([dock], [int(self.height() * BOTTOM_DOCK_MAX)],
                                 Qt.Orientation.Vertical)
        # Docks on both sides (the runs and the 3-D view) share SIDE_DOCKS_MAX of the width.
        total = sum(width for _, width in side)
        room = int(self.width() * SIDE_DOCKS_MAX)
        if total > room:
            side = [(dock, int(width * room / total)) for dock, width in side]
        shrink = [(dock, width) for dock, width in side if dock.width() > width]
        if shrink:
            self.resizeDocks([d for d, _ in shrink], [w for _, w in shrink],
                             Qt.Orientation.Horizontal)

    def _on_tab_change(self, index: int) -> None:
        # The graph needs more height than the table: give it the most a dock may have.
        if self.tabs.widget(index) is self.graph_panel and not self.bottom_dock.isFloating():
            wanted = int(self.height() * BOTTOM_DOCK_MAX)
            if self.bottom_dock.height() < wanted:
                self.resizeDocks([self.bottom_dock], [wanted], Qt.Orientation.Vertical)

    def _dock(self, title: str, widget: QWidget, area: Qt.DockWidgetArea) -> QDockWidget:
        dock = QDockWidget(title, self)
        dock.setObjectName(f"{title}Dock")
        dock.setWidget(widget)
        # Closable: without it Qt disables the dock's toggleViewAction (View > Runs / Details).
        dock.setFeatures(QDockWidget.DockWidgetFeature.DockWidgetMovable
                         | QDockWidget.DockWidgetFeature.DockWidgetFloatable
                         | QDockWidget.DockWidgetFeature.DockWidgetClosable)
        self.addDockWidget(area, dock)
        return dock

    def set_equal_aspect(self, on: bool) -> None:
        """Keep x and y at the same scale on the surface (View > Equal x/y scale)."""
        self.settings.setValue("equal_aspect", bool(on))
        if self.equal_aspect_action.isChecked() != bool(on):
            self.equal_aspect_action.setChecked(bool(on))
        self.surface_view.set_equal_aspect(bool(on))

    # --- menus and shortcuts ----------------------------------------------------------------------

    def _build_menus(self) -> None:
        file_menu = self.menuBar().addMenu("&File")
        self._action(file_menu, "&New session", self.new_session, QKeySequence.StandardKey.New)
        self.open_action = self._action(file_menu, "&Open session…", self.open_session_dialog,
                                        QKeySequence.StandardKey.Open)
        self.recent_menu = file_menu.addMenu("Open &recent")
        self.examples_menu = file_menu.addMenu("E&xamples")
        self.examples_menu.addSection("Surface race")
        for path in preset_paths():
            action = self._action(self.examples_menu, preset_title(path),
                                  lambda _=False, p=path: self.open_example(p))
            action.setData("race")
        self.examples_menu.addSection("Model")
        for name, title, description in model_examples():
            action = self._action(self.examples_menu, title,
                                  lambda _=False, n=name: self.model_files.open_example(n))
            action.setData("model")
            action.setToolTip(description)
        self.examples_menu.setToolTipsVisible(True)
        self._action(file_menu, "&Save session", self.save_session, QKeySequence.StandardKey.Save)
        self._action(file_menu, "Save session &as…", self.save_session_as_dialog,
                     QKeySequence.StandardKey.SaveAs)
        file_menu.addSeparator()
        export = file_menu.addMenu("&Export")
        self.export_menu = export
        self._fill_race_export_menu(export)
        export.aboutToShow.connect(self._fill_export_menu)  # of the workspace on screen
        file_menu.addSeparator()
        self._action(file_menu, "&Quit", self.close, QKeySequence.StandardKey.Quit)
        self._build_other_menus()

    def _fill_export_menu(self) -> None:
        self.export_menu.clear()
        if self.model_active():
            self.model_files.fill_export_menu(self.export_menu, self._action)
        else:
            self._fill_race_export_menu(self.export_menu)

    def _fill_race_export_menu(self, export: QMenu) -> None:
        self._action(export, "Surface and trajectories as &PNG…",
                     lambda: self.export_image_dialog(self.surface_view, "png"))
        self._action(export, "Surface and trajectories as &SVG…",
                     lambda: self.export_image_dialog(self.surface_view, "svg"))
        self._action(export, "&Animation (GIF, MP4)…", self.export_animation_dialog)
        self._action(export, "&Curves as PNG…",
                     lambda: self.export_image_dialog(self.curves_view, "png"))
        self._action(export, "Autograd &graph as PNG…", lambda: self.export_graph_dialog("png"))
        self._action(export, "Autograd graph as S&VG…", lambda: self.export_graph_dialog("svg"))
        export.addSeparator()
        self._action(export, "Trajectories as C&SV…", lambda: self.export_data_dialog("csv"))
        self._action(export, "Trajectories as &JSON…", lambda: self.export_data_dialog("json"))
        self._action(export, "As PyTorch sc&ript…", lambda: self.export_script_dialog())

    def _build_other_menus(self) -> None:
        edit_menu = self.menuBar().addMenu("&Edit")
        self.undo_remove_action = self._action(edit_menu, "&Undo remove run", self.undo_remove_run,
                                               QKeySequence.StandardKey.Undo)
        self.undo_remove_action.setEnabled(False)

        run_menu = self.menuBar().addMenu("&Run")
        self._action(run_menu, "Play / pause (Space)", self.controller.toggle_play)
        self._action(run_menu, "One step (→)", self.controller.step_once)
        self._action(run_menu, "Reset (R)", self.controller.reset)
        self.view_menu = self.menuBar().addMenu("&View")
        for dock in (self.runs_dock, self.bottom_dock):
            self.view_menu.addAction(dock.toggleViewAction())
        self._action(self.view_menu, "Fit surface", self.surface_view.fit_to_surface)
        self.equal_aspect_action = self._action(self.view_menu, "&Equal x/y scale",
                                                self.set_equal_aspect)
        self.equal_aspect_action.setCheckable(True)
        # The surface in 2-D, in 3-D instead, or both side by side (the area's own switch too).
        surface_menu = self.view_menu.addMenu("&Surface")
        modes = QActionGroup(self)
        self.surface_mode_actions: dict[str, QAction] = {}
        for mode, text, key in (("2d", "&2-D (heatmap)", "Ctrl+Shift+2"),
                                ("3d", "&3-D instead of 2-D", "Ctrl+Shift+3"),
                                ("both", "2-D and 3-D &side by side", "Ctrl+Shift+B")):
            action = self._action(surface_menu, text,
                                  lambda _=False, m=mode: self.set_surface_mode(m), key)
            action.setCheckable(True)
            modes.addAction(action)
            self.surface_mode_actions[mode] = action
        self.surface_mode_actions["2d"].setChecked(True)
        self.surface_area.sigModeChanged.connect(self._on_surface_mode_change)
        self.view_menu.addSeparator()
        self._action(self.view_menu, "Surface &race",
                     lambda: self.workspace_tabs.setCurrentWidget(self.surface_area), "Ctrl+1")
        self._action(self.view_menu, "Autograd &lab", lambda: self.show_lab(), "Ctrl+2")
        self._action(self.view_menu, "&Model", lambda: self.show_model(), "Ctrl+3")
        self._action(self.view_menu, "Many r&uns", lambda: self.show_many(), "Ctrl+4")
        self.basin_layer_action = self._action(self.view_menu, "&Basins layer",
                                               lambda on: self.show_basin_layer(on))
        self.basin_layer_action.setCheckable(True)
        help_menu = self.menuBar().addMenu("&Help")
        self._action(help_menu, "&Keyboard shortcuts", self.show_shortcuts)
        self._action(help_menu, "&About Optimizer Playground", self.show_about)
        self._update_recent_menu()

    def _action(self, menu, text: str, slot, shortcut=None) -> QAction:  # type: ignore[no-untyped-def]
        action = QAction(text, self)
        if shortcut is not None:
            action.setShortcut(shortcut)
        action.triggered.connect(slot)
        menu.addAction(action)
        return action

    def _build_shortcuts(self) -> None:
        # Window-wide keys; a focused text field keeps its own use of them (shortcut override),
        # and Escape leaves the field so they work again.
        for key, slot in ((Qt.Key.Key_Space, self.controller.toggle_play),
                          (Qt.Key.Key_Right, self.controller.step_once),
                          (Qt.Key.Key_R, self.controller.reset)):
            shortcut = QShortcut(QKeySequence(key), self)
            # The race's keys drive the race only while it is on screen.
            shortcut.activated.connect(lambda slot=slot: self.in_race() and slot())
        QShortcut(QKeySequence(Qt.Key.Key_Escape), self).activated.connect(self.leave_text_field)

    def set_surface_mode(self, mode: str) -> None:
        """Show the heatmap ("2d"), the 3-D view instead ("3d") or both ("both"), remembered."""
        first_gl = mode != "2d" and self.surface_area.surface3d_view is None
        self.surface_area.set_mode(mode)
        self.settings.setValue(SURFACE_MODE_KEY, mode)
        if first_gl:
            # The first OpenGL widget makes Qt recreate the window's native surface, and the
            # window loses its activation (the keys went nowhere): take it and the focus back.
            QTimer.singleShot(0, self._take_focus_back)

    def show_surface3d(self, on: bool = True) -> None:
        """The 3-D view beside the heatmap (on), or the heatmap alone (off)."""
        self.set_surface_mode("both" if on else "2d")

    @property
    def surface3d_view(self):  # type: ignore[no-untyped-def]
        """The 3-D view (gui.surface3d_view.Surface3DView) once shown, else None."""
        return self.surface_area.surface3d_view

    def _on_surface_mode_change(self, mode: str) -> None:
        self.surface_mode_actions[mode].setChecked(True)
        self.settings.setValue(SURFACE_MODE_KEY, mode)

    def _take_focus_back(self) -> None:
        if self.isVisible():
            self.activateWindow()
            if self.in_race():
                self.surface_area.setFocus()

    def model_active(self) -> bool:
        """Whether the Model tab is on screen (the File menu then acts on the model session)."""
        return self.model_workspace is not None and \
            self.workspace_tabs.currentWidget() is self._model_page

    def in_race(self) -> bool:
        """Whether the surface race (not the autograd lab) is the workspace on screen."""
        return self.workspace_tabs.currentWidget() is self.surface_area

    def show_lab(self) -> QWidget:
        """Open the autograd lab (built on first use) and return its workspace."""
        self.workspace_tabs.setCurrentWidget(self._lab_page)
        assert self.lab_workspace is not None
        return self.lab_workspace

    def show_model(self) -> QWidget:
        """Open the model workspace (built on first use) and return it."""
        self.workspace_tabs.setCurrentWidget(self._model_page)
        assert self.model_workspace is not None
        return self.model_workspace

    def show_many(self) -> QWidget:
        """Open the Many runs workspace (built on first use) and return it."""
        self.workspace_tabs.setCurrentWidget(self._many_page)
        assert self.many_workspace is not None
        return self.many_workspace

    def _build_model(self) -> QWidget:
        if self.model_workspace is None:
            from gui.model.workspace import ModelWorkspace

            self.model_workspace = ModelWorkspace()
            self._model_page.setWidget(self.model_workspace)
            self.model_workspace.show()
            self.model_files.attach(self.model_workspace)
        return self.model_workspace

    def _build_many(self) -> QWidget:
        if self.many_workspace is None:
            from gui.many.workspace import ManyWorkspace

            # Its model-mode tabs (LR sweep, range test, trainability) use the model
            # workspace's controller: build that first (it waits, paused, on its own tab).
            model = self._build_model()
            self.many_workspace = ManyWorkspace(self.controller, model.controller)
            self._many_page.setWidget(self.many_workspace)
            self.many_workspace.show()
            if self.basin_layer is not None:
                self.basin_layer.set_source(self.many_workspace.basins_view)
        return self.many_workspace

    def show_basin_layer(self, on: bool) -> None:
        """View > Basins layer: the last basin map of the selected run's optimizer under the
        race's paths (compute one in Many runs > Basins)."""
        if self.basin_layer is None:
            from gui.many.basin_layer import BasinLayer

            self.basin_layer = BasinLayer(self.surface_view)
            if self.many_workspace is not None:
                self.basin_layer.set_source(self.many_workspace.basins_view)
        self.basin_layer.set_visible(on)

    def _on_workspace_change(self, _index: int) -> None:
        if not self.in_race():
            page = self.workspace_tabs.currentWidget()
            if page is self._lab_page and self.lab_workspace is None:
                from gui.lab.workspace import LabWorkspace

                self.lab_workspace = LabWorkspace()
                self._lab_page.setWidget(self.lab_workspace)
                self.lab_workspace.show()  # added to a visible page: Qt would show it later
            if page is self._model_page:
                self._build_model()
            if page is self._many_page:
                self._build_many()
            self.controller.pause()  # a race nobody sees should not take the machine
            if not self._race_chrome:
                race = [self.runs_dock, self.bottom_dock, *self.race_toolbars]
                self._race_chrome = {w: w.isVisible() for w in race}
            for widget in self._race_chrome:
                widget.hide()
            {self._lab_page: self.lab_workspace, self._model_page: self.model_workspace,
             self._many_page: self.many_workspace}[page].setFocus()
        else:
            self._restore_race_chrome()
            self.surface_area.setFocus()
        self._update_title()  # the name and the unsaved mark of the workspace on screen
        self._refresh_modified()

    def _restore_race_chrome(self) -> None:
        for widget, shown in self._race_chrome.items():
            widget.setVisible(shown)
        self._race_chrome = {}

    def leave_text_field(self) -> None:
        """Focus back on the surface (from a text field or any control)."""
        self.surface_area.setFocus(Qt.FocusReason.ShortcutFocusReason)

    @staticmethod
    def is_text_field(widget: QWidget | None) -> bool:
        """Whether typing Space / R / → in `widget` edits text (so the shortcuts yield to it)."""
        if isinstance(widget, (QLineEdit, QAbstractSpinBox)):
            return True
        return isinstance(widget, QComboBox) and widget.isEditable()

    def show_shortcuts(self) -> QDialog:
        """Help > Keyboard shortcuts: a small window-modal list."""
        rows = "".join(f"<tr><td><b>{k}</b></td><td>&nbsp;&nbsp;{v}</td></tr>"
                       for k, v in SHORTCUTS)
        return self._info_dialog("Keyboard shortcuts", f"<table>{rows}</table>", "shortcutsDialog")

    def show_about(self) -> QDialog:
        """Help > About: what the app is, its version, torch's and Qt's."""
        import PySide6
        import pyqtgraph
        import torch

        html = (f"<h3>Optimizer Playground {app_version()}</h3>"
                "<p>Real <code>torch.optim</code> optimizers racing down loss surfaces "
                "f(x, y) you pick or type, with autograd's gradients and graph live.</p>"
                f"<p>torch {torch.__version__} · PySide6 {PySide6.__version__} · "
                f"pyqtgraph {pyqtgraph.__version__} · Python {platform.python_version()}</p>")
        return self._info_dialog("About Optimizer Playground", html, "aboutDialog")

    def _info_dialog(self, title: str, html: str, name: str) -> QDialog:
        dialog = QDialog(self)
        dialog.setObjectName(name)
        dialog.setWindowTitle(title)
        layout = QVBoxLayout(dialog)
        text = QTextBrowser()
        text.setHtml(html)
        text.setOpenExternalLinks(True)
        layout.addWidget(text)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        buttons.rejected.connect(dialog.reject)
        layout.addWidget(buttons)
        dialog.resize(460, 380)
        dialog.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        dialog.open()  # window-modal, does not block
        return dialog

    # --- unsaved changes and undo -----------------------------------------------------------------

    def _session_config(self) -> dict:
        return self.controller.session.to_dict()

    def _mark_saved(self, forget_undo: bool = True) -> None:
        """The session as it is now is the saved one (opened, saved, new, or restored)."""
        self._saved_config = self._session_config()
        self._known_session = self.controller.session
        self._known_runs = list(self.controller.session.runs)
        if forget_undo:
            self._removed_runs.clear()
            self.undo_remove_action.setEnabled(False)
        self._update_title()
        self._refresh_modified()

    @property
    def modified(self) -> bool:
        """Whether the session differs from the one last opened or saved."""
        return self._session_config() != self._saved_config

    def _on_session_change(self, *_args: object) -> None:
        session = self.controller.session
        if session is self._known_session:
            runs = session.runs
            if len(runs) == len(self._known_runs) - 1:  # one run removed: remember it for undo
                for index, run in enumerate(self._known_runs):
                    if run not in runs:
                        self._removed_runs.append((index, run))
                        self.undo_remove_action.setEnabled(True)
                        break
        else:
            self._removed_runs.clear()
            self.undo_remove_action.setEnabled(False)
        self._known_session = session
        self._known_runs = list(session.runs)
        self._refresh_modified()

    def _refresh_modified(self, *_args: object) -> None:
        """The title's unsaved mark: of the model session in the Model tab, else the race's."""
        self.setWindowModified(self.model_files.modified if self.model_active()
                               else self.modified)

    def undo_remove_run(self) -> bool:
        """Edit > Undo remove run: the last removed run comes back where it was, as it was."""
        if not self._removed_runs:
            return False
        session = self.controller.session
        if len(session.runs) >= MAX_RUNS:
            self.show_status(f"A session holds at most {MAX_RUNS} runs: remove one first.")
            return False
        index, run = self._removed_runs.pop()
        self.undo_remove_action.setEnabled(bool(self._removed_runs))
        try:
            self.controller.insert_run(index, run)  # it restarts if the surface changed since
        except PlaygroundError as e:
            self._removed_runs.append((index, run))  # still there to undo later
            self.undo_remove_action.setEnabled(True)
            self.show_status(f"Could not bring the run back: {e}")
            return False
        self.controller.select(run)
        self.show_status(f"Brought back {run.title}")
        return True

    def _update_title(self) -> None:
        name = self.model_files.title if self.model_active() else self._title_name
        self.setWindowTitle(f"Optimizer Playground — {name}[*]")

    def _ask_unsaved_dialog(self) -> str:
        box = QMessageBox(QMessageBox.Icon.Question, "Optimizer Playground",
                          "The session has changes that are not saved.",
                          QMessageBox.StandardButton.Save | QMessageBox.StandardButton.Discard
                          | QMessageBox.StandardButton.Cancel, self)
        box.setInformativeText("Save them first?")
        box.setDefaultButton(QMessageBox.StandardButton.Save)
        answer = box.exec()
        return {QMessageBox.StandardButton.Save: SAVE,
                QMessageBox.StandardButton.Discard: DISCARD}.get(
                    QMessageBox.StandardButton(answer), CANCEL)

    def may_replace_session(self) -> bool:
        """Before the session is replaced: ask about unsaved changes (Save / Discard / Cancel)."""
        if not self.modified:
            return True
        answer = self.ask_unsaved()
        if answer == SAVE:
            return self.save_session()
        return answer == DISCARD

    def new_session(self) -> bool:
        """File > New: the default race on Rosenbrock, after asking about unsaved changes (in the
        Model tab: SGD and Adam on two moons)."""
        if self.model_active():
            return self.model_files.new()
        if not self.may_replace_session():
            return False
        self.controller.set_session(Session.default())
        self.session_path = None
        self._title_name = "untitled"
        self._mark_saved()
        self.show_status("New session")
        return True

    # --- sessions ---------------------------------------------------------------------------------

    def open_session_dialog(self) -> None:
        """File > Open: a race or a model session (each opens in its own workspace; the one it
        replaces is asked about first if it has unsaved changes)."""
        path, _ = QFileDialog.getOpenFileName(self, "Open session", self._last_dir(),
                                              SESSION_FILTER)
        if path:
            self.open_session(path)

    def open_session(self, path: str | Path, *, ask: bool = True) -> bool:
        """Load a session file; on failure show why and keep everything as it was. A model
        session opens in the Model tab, a race session in the race."""
        if is_model_session_file(path):
            return self.model_files.open(path, ask=ask)
        if not self.in_race():
            self.workspace_tabs.setCurrentWidget(self.surface_area)  # shown where it opens
        if ask and not self.may_replace_session():
            return False
        if not self._attempt("open the session", lambda: self.controller.load_session(path)):
            return False
        self._use_session_file(Path(path), "Opened")
        return True

    def open_example(self, path: Path) -> bool:
        """Load an example session; it stays unsaved (Ctrl+S asks where), the preset untouched."""
        if not self.in_race():
            self.workspace_tabs.setCurrentWidget(self.surface_area)
        if not self.may_replace_session():
            return False
        if not self._attempt("open the example", lambda: self.controller.load_session(path)):
            return False
        extra = self.controller.session.extra
        self.session_path = None
        self._title_name = str(extra.get("title", path.stem))
        self._mark_saved()
        self.statusBar().showMessage(str(extra.get("description", "")) +
                                     "   (Space: play)", 30000)
        return True

    def save_session(self) -> bool:
        """File > Save: the session of the workspace on screen (the model's in the Model tab)."""
        if self.model_active():
            return self.model_files.save()
        if self.session_path is None:
            return self.save_session_as_dialog()
        return self.save_session_to(self.session_path)

    def save_session_as_dialog(self) -> bool:
        if self.model_active():
            return self.model_files.save_as_dialog()
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
        self._title_name = path.name
        self._mark_saved(forget_undo=done != "Saved")
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
        if not path:
            return
        size = self.ask_image_size(self.default_export_size(widget))
        if size is not None:
            self.export_image(widget, path, size)

    @staticmethod
    def default_export_size(widget: QWidget) -> QSize:
        """The widget's size on screen; a usual window-sized picture when it was never shown."""
        size = widget.size()
        if size.width() < 100 or size.height() < 100:
            return QSize(1200, 800)
        return size

    def _ask_image_size_dialog(self, size: QSize) -> QSize | None:
        dialog = ImageSizeDialog(size, parent=self)
        return dialog.chosen_size() if dialog.exec() == QDialog.DialogCode.Accepted else None

    def export_image(self, widget: QWidget, path: str | Path, size: QSize | None = None) -> bool:
        """Write `widget`'s picture (at `size` if given), whatever tab is on screen."""
        width, height = (size.width(), size.height()) if size is not None else (None, None)
        if not self._attempt("export the image",
                             lambda: export_widget_image(widget, path, width, height)):
            return False
        self.statusBar().showMessage(f"Wrote {path}", 5000)
        return True

    def export_animation_dialog(self) -> None:
        """File > Export > Animation…: the settings, then the file, then drawing with progress;
        of the model workspace when it is on screen, a basin film in Many runs, else the race."""
        if self.model_active():
            self.export_model_animation_dialog()
            return
        if self.many_workspace is not None and \
                self.workspace_tabs.currentWidget() is self._many_page:
            basins = self.many_workspace.basins_view  # the analysis that animates: a basin film
            self.many_workspace.tabs.setCurrentWidget(basins)
            basins.film_dialog()
            return
        chosen = self.ask_animation()
        if chosen is not None:
            path, (width, height), plan, *options = chosen  # options: [curves[, as the view]]
            self.export_animation(path, width, height, plan, curves=bool(options and options[0]),
                                  as_view=len(options) > 1 and bool(options[1]))

    def _ask_animation_dialog(self):  # type: ignore[no-untyped-def]
        from gui.animation_export import AnimationDialog

        dialog = AnimationDialog(self.controller.session, parent=self)
        if dialog.exec() != QDialog.DialogCode.Accepted:
            return None
        suffix = dialog.suffix.lstrip(".")
        path = self._ask_save_path("Export animation", suffix, f"{suffix.upper()} animation")
        return (path, dialog.chosen_size, dialog.plan(), dialog.curves_box.isChecked(),
                dialog.view_box.isChecked()) if path else None

    def export_animation(self, path: str | Path, width: int, height: int,
                         plan, *, curves: bool = False,
                         as_view: bool = False):  # type: ignore[no-untyped-def]
        """Replay the race from its start into an animation file, drawn in pieces on a timer
        (the window stays usable) with a progress dialog and Cancel; returns the task (its
        signals say how it ended), or None when it could not start (the error is shown).
        `as_view`: with the surface view's zoom, equal scale and arrows setting; else as the
        command line draws it."""
        from gui.animation_export import ViewSettings, start_animation_export

        view = ViewSettings.of(self.surface_view) if as_view else None
        try:
            task = start_animation_export(self.controller.session, path, width, height, plan,
                                          parent=self, curves=curves, view=view)
        except PlaygroundError as e:
            self.show_error(f"Could not export the animation.\n\n{e}")
            return None
        return self._watch_animation(task)

    def export_model_animation_dialog(self) -> None:
        """The model workspace's training replayed from its start into an animation: the
        dialog, then the file (see export_model_animation)."""
        from gui.animation_export import AnimationDialog

        assert self.model_workspace is not None
        dialog = AnimationDialog(self.model_workspace.controller.to_session(), parent=self)
        if dialog.exec() != QDialog.DialogCode.Accepted:
            return
        suffix = dialog.suffix.lstrip(".")
        path = self._ask_save_path("Export animation", suffix, f"{suffix.upper()} animation")
        if path:
            self.export_model_animation(path, dialog)

    def export_model_animation(self, path: str | Path, dialog):  # type: ignore[no-untyped-def]
        """Start the model film the dialog describes (a progress dialog, Cancel); returns the
        task, or None when it could not start (the error is shown)."""
        try:
            task = dialog.start_export(path, parent=self)
        except PlaygroundError as e:
            self.show_error(f"Could not export the animation.\n\n{e}")
            return None
        return self._watch_animation(task)

    def _watch_animation(self, task):  # type: ignore[no-untyped-def]
        task.sigFinished.connect(lambda p: self.statusBar().showMessage(f"Wrote {p}", 5000))
        task.sigFailed.connect(lambda m: self.show_error(f"Could not export the animation."
                                                         f"\n\n{m}"))
        task.sigCancelled.connect(lambda: self.statusBar().showMessage(
            "Animation export cancelled; nothing was written", 5000))
        self.animation_task = task
        return task

    def export_script_dialog(self, path: str | Path | None = None,
                             run_index: int | None | str = "ask"):  # type: ignore[no-untyped-def]
        """File > Export > As PyTorch script…: the selected run (or every run) as a standalone
        script (gui/script_export_dialog.py, in a Job with progress and Cancel), of the model
        workspace when it is on screen, else of the race. `path`/`run_index`: the file and the
        run (index or None for all) instead of asking. Returns the export under way, or None
        when nothing was started."""
        from dataclasses import replace

        from gui.script_export_dialog import export_script_dialog

        asked = {"path": path, "run_index": run_index}

        if self.model_active():
            assert self.model_workspace is not None
            c = self.model_workspace.controller
            c.pause()  # the job reads the trained runs: nothing may step them meanwhile
            runs = list(c.runs)
            selected = runs.index(c.selected) if c.selected in runs else None
            # c.built holds the runs it was built with; the workspace's runs are c.runs
            self.script_export = export_script_dialog(
                self, c.to_session(), selected, built=replace(c.built, runs=runs),
                eval_every=c.test_every, directory=self._last_dir(), **asked)
        else:
            runs = self.controller.session.runs
            chosen = self.controller.selected
            self.script_export = export_script_dialog(
                self, self.controller.session, runs.index(chosen) if chosen in runs else None,
                directory=self._last_dir(), **asked)
        return self.script_export

    def export_graph_dialog(self, kind: str) -> None:
        path = self._ask_save_path("Export autograd graph", kind, f"{kind.upper()} image")
        if not path:
            return
        size = self.ask_image_size(self.default_export_size(self.graph_panel))
        if size is not None:
            self.export_graph(path, size)

    def export_graph(self, path: str | Path, size: QSize | None = None) -> bool:
        """Write the autograd graph (fitted into `size` if given), whatever tab is on screen."""
        wanted = (size.width(), size.height()) if size is not None else None
        if not self.graph_panel.export_graph(path, wanted):
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

    def show_status(self, message: str, timeout_ms: int = 5000) -> None:
        self.statusBar().showMessage(message, timeout_ms)

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
        if isinstance(state, QByteArray) and self.restoreState(state):
            self._first_layout = False
        # A saved layout may hold a dock that had grown over the surface: it is capped as soon
        # as the window is laid out (keep_surface_big), whatever was saved.
        self._layout_timer.start()
        tab = self.settings.value("details_tab")
        if tab is not None and str(tab).isdigit() and int(tab) < self.tabs.count():
            self.tabs.setCurrentIndex(int(tab))
        mode = mode_from_setting(self.settings.value(SURFACE_MODE_KEY),
                                 self.settings.value("surface3d"))  # (the old 3-D dock: both)
        if mode != "2d":
            QTimer.singleShot(0, lambda: self.set_surface_mode(mode))
        workspace = self.settings.value("workspace")
        if workspace is not None and str(workspace) in ("1", "2"):
            QTimer.singleShot(0, lambda: self.workspace_tabs.setCurrentIndex(int(workspace)))
        equal = self.settings.value("equal_aspect", False)
        if str(equal).lower() in ("true", "1"):
            self.set_equal_aspect(True)

    def save_state(self) -> None:
        """Layout, the last session and the typed formulas, for the next start."""
        self.settings.setValue("geometry", self.saveGeometry())
        hidden_by_lab = dict(self._race_chrome)
        self._restore_race_chrome()  # save the docks as the user had them in the race
        self.settings.setValue("window_state", self.saveState())
        self.settings.setValue("workspace", self.workspace_tabs.currentIndex())
        if hidden_by_lab:
            self._race_chrome = hidden_by_lab
            for widget in hidden_by_lab:
                widget.hide()
        self.settings.setValue("details_tab", self.tabs.currentIndex())
        if self.ready:  # before the runs are built there is nothing new to keep
            self.settings.setValue("last_session", json.dumps(self.controller.session.to_dict()))
        self.settings.setValue("formulas", json.dumps(self.controller.formulas))
        self.settings.sync()

    def closeEvent(self, event: QCloseEvent) -> None:  # noqa: N802
        # The race comes back at the next start (save_state); a model session does not: its
        # unsaved changes are asked about (Save / Discard / Cancel keeps the window open).
        if not self.model_files.may_replace():
            event.ignore()
            return
        self.controller.shutdown()
        self.graph_panel.shutdown()  # a child widget gets no closeEvent: stop its jobs here
        self.surface_area.shutdown()  # the 3-D view lets go of the controller
        if self.lab_workspace is not None:
            self.lab_workspace.shutdown()
        if self.model_workspace is not None:
            self.model_workspace.shutdown()  # its timer and its sharpness worker
        if self.many_workspace is not None:
            self.many_workspace.shutdown()  # cancels a running map and waits for its Job
        if self.animation_task is not None and self.animation_task.running:
            self.animation_task.shutdown()  # no timer drawing, no temporary file left behind
        if self.script_export is not None:
            self.script_export.cancel()  # and waited for: no partial file is left behind
            self.script_export.job.finish(3.0)
        self._layout_timer.stop()
        if self._loader is not None:
            self._loader.wait()  # a QThread destroyed while running aborts the process
            self._build_session = None  # closed before the runs came: nothing more to build
        self.save_state()
        super().closeEvent(event)
