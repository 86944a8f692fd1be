"""SurfaceArea: the race's central area, showing the 2-D view, the 3-D view instead of it, or
both side by side, with a "2-D / 3-D / Both" switch above them.

Both views are the same widgets wherever they are shown: the 2-D SurfaceView keeps its hover
read-out, its click-and-drag start point and every live update; the 3-D view
(gui.surface3d_view.Surface3DView, built the first time it is asked for, so OpenGL costs nothing
until then) redraws from the controller as it does in its dock, and shows its "needs OpenGL"
message where GL is missing. Hiding a view does not disconnect it: switching back shows the
race as it is now, not as it was.

The keyboard stays with the window: the area's focus goes to the view on screen (the 2-D view,
or the 3-D view's GL widget), and the window's shortcuts (Space, →, R) are window-wide; the GL
widget takes no key that they use (see `Surface3DView`).

Signals
-------
sigModeChanged(str)   "2d", "3d" or "both": the user (or `set_mode`) switched
"""

from __future__ import annotations

from typing import Any

from PySide6.QtCore import QSignalBlocker, Qt, Signal
from PySide6.QtWidgets import (
    QButtonGroup,
    QHBoxLayout,
    QSplitter,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from gui.controller import Controller
from gui.surface_view import SurfaceView

MODES = ("2d", "3d", "both")
MODE_TITLES = {"2d": "2-D", "3d": "3-D", "both": "Both"}
MODE_TIPS = {"2d": "The heatmap: hover for f and ∇f, click or drag to move the start",
             "3d": "The surface in 3-D instead of the heatmap: left drag orbits, the wheel zooms",
             "both": "The heatmap and the 3-D surface side by side"}
SETTINGS_KEY = "surface_mode"  # the choice the window remembers across starts


def mode_from_setting(value: Any, legacy_3d: Any = None) -> str:
    """The mode a stored setting names ("2d" for anything else). `legacy_3d`: the old
    "surface3d" flag (the 3-D view in a dock beside the heatmap), which means "both"."""
    text = str(value).lower() if value is not None else ""
    if text in MODES:
        return text
    return "both" if str(legacy_3d).lower() in ("true", "1") else "2d"


class SurfaceArea(QWidget):
    """The 2-D view and (on first use) the 3-D view in one splitter, one or both shown.

    `surface_view`: the window's SurfaceView (made here if not given); `surface3d_view`: the
    Surface3DView once built, else None; `mode`: what is shown."""

    sigModeChanged = Signal(str)

    def __init__(self, controller: Controller, surface_view: SurfaceView | None = None, *,
                 parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.controller = controller
        self.surface_view = surface_view if surface_view is not None else SurfaceView(controller)
        self.surface3d_view: Any = None
        self.mode = "2d"

        bar = QHBoxLayout()
        bar.setContentsMargins(4, 2, 4, 0)
        bar.setSpacing(0)
        self.mode_group = QButtonGroup(self)
        self.mode_group.setExclusive(True)
        self.mode_buttons: dict[str, QToolButton] = {}
        for mode in MODES:
            button = QToolButton()
            button.setText(MODE_TITLES[mode])
            button.setToolTip(MODE_TIPS[mode])
            button.setCheckable(True)
            button.setAutoRaise(True)
            button.setFocusPolicy(Qt.FocusPolicy.NoFocus)  # a click leaves the keys with the race
            button.setObjectName(f"surfaceMode_{mode}")
            self.mode_group.addButton(button)
            self.mode_buttons[mode] = button
            button.clicked.connect(lambda _checked=False, m=mode: self.set_mode(m))
            bar.addWidget(button)
        bar.addStretch(1)
        self.mode_buttons["2d"].setChecked(True)

        self.splitter = QSplitter(Qt.Orientation.Horizontal)
        self.splitter.setChildrenCollapsible(False)
        self.splitter.addWidget(self.surface_view)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(0)
        layout.addLayout(bar)
        layout.addWidget(self.splitter, 1)
        self.setFocusProxy(self.surface_view)

    def set_mode(self, mode: str) -> None:
        """Show the 2-D view ("2d"), the 3-D view instead of it ("3d") or both ("both")."""
        if mode not in MODES:
            raise ValueError(f"the surface area shows one of {', '.join(MODES)}, not {mode!r}")
        if mode != "2d" and self.surface3d_view is None:
            self._build_3d()
        had_focus = self.hasFocus() or self.isAncestorOf(self.focusWidget() or self)
        self.surface_view.setVisible(mode in ("2d", "both"))
        if self.surface3d_view is not None:
            self.surface3d_view.setVisible(mode in ("3d", "both"))
        if mode == "both":
            total = max(2, self.splitter.width())
            self.splitter.setSizes([total // 2, total - total // 2])
        with QSignalBlocker(self.mode_group):
            self.mode_buttons[mode].setChecked(True)
        self.setFocusProxy(self._focus_target(mode))
        if had_focus:
            self.setFocus(Qt.FocusReason.OtherFocusReason)
        changed = mode != self.mode
        self.mode = mode
        if changed:
            self.sigModeChanged.emit(mode)

    def _focus_target(self, mode: str) -> QWidget:
        """The widget that takes the keyboard focus in `mode`: the 2-D view whenever it shows,
        else the GL widget (or the 3-D view's message where GL is missing)."""
        if mode != "3d" or self.surface3d_view is None:
            return self.surface_view
        view = self.surface3d_view
        return view.gl_widget if view.gl_widget is not None else view

    def _build_3d(self) -> None:
        from gui.surface3d_view import Surface3DView  # GL costs nothing until asked for

        view = Surface3DView(self.controller)
        view.setFocusPolicy(Qt.FocusPolicy.StrongFocus)
        if view.gl_widget is not None:
            view.gl_widget.setFocusPolicy(Qt.FocusPolicy.StrongFocus)
        self.surface3d_view = view
        self.splitter.addWidget(view)

    @property
    def shows_2d(self) -> bool:
        return self.mode in ("2d", "both")

    @property
    def shows_3d(self) -> bool:
        return self.mode in ("3d", "both")

    def shutdown(self) -> None:
        """Disconnect the 3-D view from the controller (the window calls it when it closes)."""
        if self.surface3d_view is not None:
            self.surface3d_view.disconnect_controller()
