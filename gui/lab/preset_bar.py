"""The teaching presets: a combo box and the chosen preset's one line of explanation."""

from __future__ import annotations

from PySide6.QtCore import QSignalBlocker, Qt, Signal
from PySide6.QtWidgets import QComboBox, QHBoxLayout, QLabel, QSizePolicy, QWidget

from core.lab.presets import PRESETS, LabPreset
from gui.lab.style import NOTE_STYLE

EDITED = ""  # the combo's entry once the user has changed a preset's tensors or expression


class PresetBar(QWidget):
    """Pick a preset; its explanation shows beside the box.

    Signals
    -------
    sigPresetPicked(str)   the name of the preset the user picked
    """

    sigPresetPicked = Signal(str)

    def __init__(self, *, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.combo = QComboBox()
        for preset in PRESETS:
            self.combo.addItem(preset.title, preset.name)
            self.combo.setItemData(self.combo.count() - 1, preset.explanation,
                                   Qt.ItemDataRole.ToolTipRole)
        self.combo.addItem("(your own)", EDITED)
        self.combo.activated.connect(self._on_picked)
        self.explanation = QLabel()
        self.explanation.setObjectName("presetExplanation")
        self.explanation.setWordWrap(True)
        self.explanation.setStyleSheet(NOTE_STYLE)
        self.explanation.setSizePolicy(QSizePolicy.Policy.Expanding,
                                       QSizePolicy.Policy.Preferred)
        layout = QHBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(QLabel("Preset"))
        layout.addWidget(self.combo)
        layout.addWidget(self.explanation, 1)

    def show_preset(self, preset: LabPreset | None) -> None:
        """Show `preset` as chosen (None: the user's own tensors and expression)."""
        with QSignalBlocker(self.combo):
            self.combo.setCurrentIndex(self.combo.findData(preset.name if preset else EDITED))
        self.explanation.setText(preset.explanation if preset else
                                 "Your own tensors and expression.")

    def _on_picked(self, index: int) -> None:
        name = self.combo.itemData(index)
        if name != EDITED:
            self.sigPresetPicked.emit(name)
