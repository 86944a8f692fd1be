"""Play / pause, single step, reset, the speed control and the gradient-arrow toggle.

Beside the speed it shows the speed really reached (measured, a few times a second while
playing) and, while a worker thread steps a slow run (L-BFGS with many inner iterations), that
it is working.
"""

from __future__ import annotations

from PySide6.QtCore import QSignalBlocker, Qt, QTimer, Signal
from PySide6.QtWidgets import (QCheckBox, QHBoxLayout, QLabel, QPushButton, QSlider, QStyle,
                               QWidget)

from gui.controller import MAX_SPEED, Controller

# Slider positions -> steps per second per run; the last position is "as fast as it goes".
SPEEDS = (1, 2, 5, 10, 20, 30, 60, 120, 250, 500, 1000, 2000, 5000, MAX_SPEED)


RATE_REFRESH_MS = 250  # the measured speed is shown anew four times a second
WORKING_LINGER_MS = 300  # between two background steps the "working" note stays (no flicker)


def speed_text(speed: int) -> str:
    return "max speed" if speed == MAX_SPEED else f"{speed} steps/s"


def rate_text(steps_per_second: float | None) -> str:
    """The measured speed per run, rounded to what the eye can read ("≈ 240 steps/s")."""
    if steps_per_second is None:
        return ""
    if steps_per_second >= 100:
        shown = f"{round(steps_per_second, -1):.0f}"
    elif steps_per_second >= 10:
        shown = f"{steps_per_second:.0f}"
    else:
        shown = f"{steps_per_second:.1f}"
    return f"≈ {shown} steps/s"


class TransportBar(QWidget):
    """Signals
    -------
    sigArrowsToggled(bool)   the user turned the negative-gradient arrows on or off
    """

    sigArrowsToggled = Signal(bool)

    def __init__(self, controller: Controller, *, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.controller = controller
        layout = QHBoxLayout(self)
        layout.setContentsMargins(6, 2, 6, 2)
        style = self.style()
        self._play_icon = style.standardIcon(QStyle.StandardPixmap.SP_MediaPlay)
        self._pause_icon = style.standardIcon(QStyle.StandardPixmap.SP_MediaPause)
        self.play_button = QPushButton(self._play_icon, "Play")
        self.play_button.setToolTip("Play / pause (Space)")
        self.play_button.setCheckable(True)
        self.play_button.clicked.connect(controller.toggle_play)
        self.step_button = QPushButton(
            style.standardIcon(QStyle.StandardPixmap.SP_MediaSkipForward), "Step")
        self.step_button.setToolTip("One optimizer step for every run (Right arrow)")
        self.step_button.clicked.connect(controller.step_once)
        self.reset_button = QPushButton(
            style.standardIcon(QStyle.StandardPixmap.SP_BrowserReload), "Reset")
        self.reset_button.setToolTip("Every run back to the start (R)")
        self.reset_button.clicked.connect(controller.reset)
        self.speed_slider = QSlider(Qt.Orientation.Horizontal)
        self.speed_slider.setRange(0, len(SPEEDS) - 1)
        self.speed_slider.setFixedWidth(160)
        self.speed_slider.setToolTip("From slow motion (1 step per second) to as fast as the "
                                     "machine goes")
        self.speed_slider.valueChanged.connect(self._on_speed_moved)
        self.speed_label = QLabel()
        self.speed_label.setMinimumWidth(90)
        self.rate_label = QLabel()
        self.rate_label.setMinimumWidth(110)  # room for "≈ 12340 steps/s": nothing shifts
        self.rate_label.setToolTip("Steps per second each run really takes (measured)")
        self.working_label = QLabel()
        self.working_label.setToolTip("A run whose single step takes longer than a frame is "
                                      "stepped on a worker thread, so the window stays usable")
        self.working_label.hide()
        self._rate_timer = QTimer(self)
        self._rate_timer.setInterval(RATE_REFRESH_MS)
        self._rate_timer.timeout.connect(self._on_rate_refresh)
        self._working_linger = QTimer(self)
        self._working_linger.setSingleShot(True)
        self._working_linger.setInterval(WORKING_LINGER_MS)
        self._working_linger.timeout.connect(self._show_working)
        self.arrows_box = QCheckBox("−∇f arrows")
        self.arrows_box.setToolTip("Show the negative gradient at each run's head")
        self.arrows_box.setChecked(True)
        self.arrows_box.toggled.connect(self.sigArrowsToggled)
        for w in (self.play_button, self.step_button, self.reset_button):
            w.setFocusPolicy(Qt.FocusPolicy.NoFocus)  # Space must reach the shortcut
            layout.addWidget(w)
        layout.addSpacing(12)
        layout.addWidget(QLabel("Speed"))
        layout.addWidget(self.speed_slider)
        layout.addWidget(self.speed_label)
        layout.addWidget(self.rate_label)
        layout.addWidget(self.arrows_box)
        layout.addWidget(self.working_label)
        layout.addStretch(1)
        controller.sigPlayingChanged.connect(self._on_playing_change)
        controller.sigWorkingChanged.connect(self._on_working_change)
        self.set_speed(controller.speed)

    def set_speed(self, speed: int) -> None:
        position = SPEEDS.index(speed) if speed in SPEEDS else SPEEDS.index(60)
        self.speed_slider.setValue(position)
        self._on_speed_moved(position)

    def _on_speed_moved(self, position: int) -> None:
        self.controller.set_speed(SPEEDS[position])
        self.speed_label.setText(speed_text(SPEEDS[position]))

    def _on_rate_refresh(self) -> None:
        self.rate_label.setText(rate_text(self.controller.achieved_speed()))

    def _on_working_change(self) -> None:
        if self.controller.working_runs:
            self._working_linger.stop()
            self._show_working()
        elif not self._working_linger.isActive():
            self._working_linger.start()

    def _show_working(self) -> None:
        runs = self.controller.working_runs
        if runs:
            names = ", ".join(run.title for run in runs[:2]) + (" …" if len(runs) > 2 else "")
            self.working_label.setText(f"⏳ stepping {names} in the background")
        self.working_label.setVisible(bool(runs))

    def shutdown(self) -> None:
        """Stop the refresh timers (the window calls this when it closes)."""
        self._rate_timer.stop()
        self._working_linger.stop()

    def _on_playing_change(self, playing: bool) -> None:
        if playing:
            self._rate_timer.start()
        else:
            self._rate_timer.stop()
            self.rate_label.setText("")
        with QSignalBlocker(self.play_button):
            self.play_button.setChecked(playing)
        self.play_button.setText("Pause" if playing else "Play")
        self.play_button.setIcon(self._pause_icon if playing else self._play_icon)
