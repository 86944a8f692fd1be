"""Play / pause, single step, reset, the speed control and the gradient-arrow toggle."""

from __future__ import annotations

from PySide6.QtCore import QSignalBlocker, Qt, Signal
from PySide6.QtWidgets import (QCheckBox, QHBoxLayout, QLabel, QPushButton, QSlider, QStyle,
                               QWidget)

from gui.controller import MAX_SPEED, Controller

# Slider positions -> steps per second per run; the last position is "as fast as it goes".
SPEEDS = (1, 2, 5, 10, 20, 30, 60, 120, 250, 500, 1000, 2000, 5000, MAX_SPEED)


def speed_text(speed: int) -> str:
    return "max speed" if speed == MAX_SPEED else f"{speed} steps/s"


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
        layout.addWidget(self.arrows_box)
        layout.addStretch(1)
        controller.sigPlayingChanged.connect(self._on_playing_change)
        self.set_speed(controller.speed)

    def set_speed(self, speed: int) -> None:
        position = SPEEDS.index(speed) if speed in SPEEDS else SPEEDS.index(60)
        self.speed_slider.setValue(position)
        self._on_speed_moved(position)

    def _on_speed_moved(self, position: int) -> None:
        self.controller.set_speed(SPEEDS[position])
        self.speed_label.setText(speed_text(SPEEDS[position]))

    def _on_playing_change(self, playing: bool) -> None:
        with QSignalBlocker(self.play_button):
            self.play_button.setChecked(playing)
        self.play_button.setText("Pause" if playing else "Play")
        self.play_button.setIcon(self._pause_icon if playing else self._play_icon)
