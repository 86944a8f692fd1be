"""One run's controls: enable, colour, label, optimizer, learning rate (log slider), the optimizer's
other hyperparameters, freeze x / y, duplicate, remove and a status badge; and, in a section that
is closed by default (one summary line when closed), the lr scheduler (gui.scheduler_picker, with
its preview), gradient clipping and seeded gradient noise. A ReduceLROnPlateau preview is fed
the run's training losses so far (core.schedulers.losses_given_so_far), at most
PLATEAU_PREVIEW_HZ times a second while the section is open.

Every edit goes through the controller, which changes the live torch optimizer (no restart) and
emits `sigRunChanged`; the card then redraws from the run with its signals blocked, so a redraw
never comes back as an edit. A value the optimizer refuses is shown in red and the control reverts.
"""

from __future__ import annotations

import math
from typing import Any

from PySide6.QtCore import QEvent, QObject, QSignalBlocker, Qt
from PySide6.QtGui import QColor, QMouseEvent, QWheelEvent
from PySide6.QtWidgets import (QAbstractScrollArea, QAbstractSlider, QAbstractSpinBox,
                               QApplication, QCheckBox, QColorDialog, QComboBox, QDoubleSpinBox,
                               QFrame, QGridLayout, QHBoxLayout, QLabel, QLineEdit, QSizePolicy,
                               QSlider, QSpinBox, QToolButton, QVBoxLayout, QWidget)

from core.errors import PlaygroundError
from core.gradient_tools import CLIP_NORM, CLIP_VALUE, NOISE_SEED, NOISE_SIGMA
from core.optimizers import CATALOGUE, Hyperparameter
from core.run import Run
from core.schedulers import get_scheduler_spec, losses_given_so_far, scheduler_call_text
from gui.controller import Controller
from gui.number_box import FloatSpinBox, format_number  # noqa: F401 (kept importable here)
from gui.scheduler_picker import PREVIEW_MAX_STEPS, SchedulerPicker
from gui.status_words import NOT_STARTED, not_started
from gui.throttle import Throttle

# The learning-rate slider: LR_TICKS steps spread evenly over log10(lr) in [LR_LOG_MIN, LR_LOG_MAX].
LR_LOG_MIN = -5.0
LR_LOG_MAX = 1.0
LR_TICKS = 1000
# The lr box accepts more than the slider shows (the slider then sits at its end).
LR_BOX_RANGE = (1e-12, 1e6)
# Fine mode: a drag with Shift or Ctrl held moves the lr slider this many times slower.
FINE_DRAG = 10
# Controls that would change a value under a passing mouse wheel: they take the wheel only when
# they have the keyboard focus; otherwise the wheel scrolls the list of cards.
WHEEL_CONTROLS = (QAbstractSlider, QAbstractSpinBox, QComboBox)
# The status badge's colours (text, background), by Run.display_status.
BADGE_COLORS = {"diverged": ("#ffffff", "#c0392b"), "converged": ("#ffffff", "#1e8449"),
                "frozen": ("#ffffff", "#2e6da4"), "disabled": ("#666666", "#f4f4f4")}
RUNNING_COLORS = ("#333333", "#e4e4e4")
LONG_NAME = 12  # a hyperparameter name longer than this gets a half line to itself
UNBOUNDED = 1e9  # what a spin box uses for a hyperparameter with no upper (or lower) bound
TOOLS_TITLE = "Schedule, clipping, noise"
# The clipping choices: (shown, core kind, the torch call); the threshold box names its argument.
CLIP_CHOICES = (("off", None, ""), ("by norm", "norm", "clip_grad_norm_"),
                ("by value", "value", "clip_grad_value_"))
DEFAULT_CLIP_THRESHOLD = 1.0
DEFAULT_NOISE_SIGMA = 0.1
# A ReduceLROnPlateau preview is stepped again on the run's newest losses at most this often
# (a preview steps torch once per loss, up to PREVIEW_MAX_STEPS: ~25 ms at its longest).
PLATEAU_PREVIEW_HZ = 2
SCHEDULED_LR_SHORT = "the lr slider moves this schedule's base lr (its whole curve scales)"
SCHEDULED_LR_NOTE = (
    "With a scheduler, the lr slider is the schedule's base lr (OneCycleLR: its max_lr; CyclicLR:"
    " its base_lr). Moving it mid-run scales every lr the schedule gives by new / old from where"
    " the schedule is now (a cosine's eta_min stays); at step 0 the scheduler is built afresh"
    " with it.")



def lr_from_tick(tick: int) -> float:
    """The slider position -> a learning rate, rounded to 3 significant digits (1e-5 ... 10)."""
    exponent = LR_LOG_MIN + (LR_LOG_MAX - LR_LOG_MIN) * tick / LR_TICKS
    return float(f"{10.0 ** exponent:.3g}")


def tick_from_lr(lr: float) -> int:
    """A learning rate -> the nearest slider position (clamped to the slider's ends)."""
    if not lr > 0:
        return 0
    tick = round((math.log10(lr) - LR_LOG_MIN) / (LR_LOG_MAX - LR_LOG_MIN) * LR_TICKS)
    return max(0, min(LR_TICKS, tick))


class FineSlider(QSlider):
    """A slider with a fine mode: dragging with Shift or Ctrl held moves the value FINE_DRAG
    times slower than the pointer, for the last digit of a learning rate."""

    def __init__(self, orientation: Qt.Orientation, parent: QWidget | None = None) -> None:
        super().__init__(orientation, parent)
        self._fine_from: tuple[float, int] | None = None  # (pointer x, value) at the press

    def mousePressEvent(self, event: QMouseEvent) -> None:  # noqa: N802 (Qt's name)
        fine = Qt.KeyboardModifier.ShiftModifier | Qt.KeyboardModifier.ControlModifier
        if event.button() == Qt.MouseButton.LeftButton and event.modifiers() & fine:
            self._fine_from = (event.position().x(), self.value())
            self.setSliderDown(True)
            event.accept()
            return
        super().mousePressEvent(event)

    def mouseMoveEvent(self, event: QMouseEvent) -> None:  # noqa: N802
        if self._fine_from is None:
            super().mouseMoveEvent(event)
            return
        x0, value0 = self._fine_from
        ticks_per_pixel = (self.maximum() - self.minimum()) / max(1, self.width())
        self.setValue(value0 + round((event.position().x() - x0) * ticks_per_pixel / FINE_DRAG))
        event.accept()

    def mouseReleaseEvent(self, event: QMouseEvent) -> None:  # noqa: N802
        if self._fine_from is None:
            super().mouseReleaseEvent(event)
            return
        self._fine_from = None
        self.setSliderDown(False)
        event.accept()


def _tooltip(h: Hyperparameter) -> str:
    return f"<b>{h.name}</b>: {h.help}<br>range: {h.range_text()}; default: {h.default!r}"


def tools_summary(run: Run) -> str:
    """The closed section's line: "CosineAnnealingLR(T_max=200) · clip ‖g‖≤1 · noise σ=0.1";
    "none" when the run has no scheduler, clipping or noise."""
    parts = []
    if run.scheduler_setting is not None:
        parts.append(scheduler_call_text(*run.scheduler_setting))
    if run.clipping is not None:
        bound = format_number(run.clipping.threshold)
        parts.append(f"clip ‖g‖≤{bound}" if run.clipping.kind == "norm" else f"clip |gᵢ|≤{bound}")
    if run.noise is not None:
        parts.append(f"noise σ={format_number(run.noise.sigma)} (seed {run.noise.seed})")
    return " · ".join(parts) or "none"


class ElidedLabel(QLabel):
    """A one-line label that ends in "…" when it does not fit (the whole text is its tooltip),
    so a long scheduler call never widens the card."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._full = ""
        self.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)
        self.setMinimumWidth(20)

    def set_full_text(self, text: str) -> None:
        """Show `text` (elided to the width); it is the tooltip too, until one is set after."""
        self._full = text
        self.setToolTip(text)
        self._elide()

    def full_text(self) -> str:
        return self._full

    def resizeEvent(self, event: Any) -> None:  # noqa: N802 (Qt's name)
        super().resizeEvent(event)
        self._elide()

    def _elide(self) -> None:
        shown = self.fontMetrics().elidedText(self._full, Qt.TextElideMode.ElideRight,
                                              max(20, self.width()))
        if shown != self.text():
            self.setText(shown)


def _readable_text_color(color: QColor) -> QColor:
    """The run's colour, darkened when it is too light to read on white (the palette's yellow)."""
    return color.darker(170) if color.lightnessF() > 0.6 else color


class RunCard(QFrame):
    """The controls of one run. Clicking anywhere on the card selects its run.

    Public widgets (for tests and for the window): `enable_box`, `color_button`, `label_edit`,
    `optimizer_combo`, `lr_slider`, `lr_spin`, `controls` (hyperparameter name -> its widget, or
    a tuple of two spin boxes for a pair; the lr is not in it), `freeze_x`, `freeze_y`,
    `duplicate_button`, `remove_button`, `status_badge`, `error_label`; the section
    `tools_button` (opens and closes it), `tools_summary` (its line when closed), `tools_box`,
    `scheduler_picker` (gui.scheduler_picker.SchedulerPicker), `lr_note`, `clip_combo`,
    `clip_spin`, `noise_spin`, `seed_spin`.
    """

    def __init__(self, run: Run, controller: Controller, *, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.run = run
        self.controller = controller
        self.controls: dict[str, QWidget | tuple[FloatSpinBox, FloatSpinBox]] = {}
        self.selected = False  # whether this card's run is the controller's selected run
        self.setObjectName("runCard")
        self.setFrameShape(QFrame.Shape.StyledPanel)
        self.setSizePolicy(QSizePolicy.Policy.Preferred, QSizePolicy.Policy.Maximum)

        layout = QVBoxLayout(self)
        layout.setContentsMargins(6, 4, 6, 4)
        layout.setSpacing(3)
        layout.addLayout(self._build_header())
        layout.addLayout(self._build_optimizer_row())
        layout.addLayout(self._build_lr_row())
        grid = self._build_hyperparameters()
        if grid is not None:
            layout.addLayout(grid)
        layout.addLayout(self._build_tools_header())
        layout.addWidget(self._build_tools_section())
        self.error_label = QLabel()
        self.error_label.setWordWrap(True)
        self.error_label.setStyleSheet("color: #c0392b; font-size: 11px;")
        self.error_label.hide()
        layout.addWidget(self.error_label)

        # Any press on the card or on one of its controls selects the run (the press still goes on
        # to the control). A value control takes the wheel only once focused (StrongFocus: the
        # wheel itself does not give it the focus), so the wheel scrolls the list.
        self.pressing = False  # True while a press on this card selects its run
        self._filter_events(self)
        self.scheduler_picker.sigRebuilt.connect(lambda: self._filter_events(
            self.scheduler_picker))
        # nothing while the section is closed (the picker hidden): it redraws once opened
        self._plateau_throttle = Throttle(self._show_scheduler_losses, PLATEAU_PREVIEW_HZ,
                                          self.scheduler_picker)

        controller.sigRunChanged.connect(self._on_run_change)
        controller.sigStepped.connect(self._on_stepped_change)
        controller.sigSurfaceChanged.connect(self._on_surface_change)
        controller.sigSelectionChanged.connect(self._on_selection_change)
        self._connected = True
        self._refresh()
        self._on_selection_change(controller.selected)

    # --- building ---------------------------------------------------------------------------------

    def _build_header(self) -> QHBoxLayout:
        row = QHBoxLayout()
        row.setSpacing(4)
        self.enable_box = QCheckBox()
        self.enable_box.setToolTip("step this run (unchecked: it stays where it is)")
        self.enable_box.toggled.connect(self._on_enable_edit)
        self.color_button = QToolButton()
        self.color_button.setFixedSize(18, 18)
        self.color_button.setToolTip("the run's colour (click to change)")
        self.color_button.clicked.connect(self._on_color_clicked)
        self.label_edit = QLineEdit()
        self.label_edit.setToolTip("the run's name in legends; empty: the optimizer as code")
        self.label_edit.setFrame(False)
        self.label_edit.setStyleSheet("font-weight: bold; background: transparent;")
        self.label_edit.editingFinished.connect(self._on_label_edit)
        self.status_badge = QLabel()
        self.status_badge.setAlignment(Qt.AlignmentFlag.AlignCenter)
        row.addWidget(self.enable_box)
        row.addWidget(self.color_button)
        row.addWidget(self.label_edit, 1)
        row.addWidget(self.status_badge)
        return row

    def _build_optimizer_row(self) -> QHBoxLayout:
        row = QHBoxLayout()
        row.setSpacing(4)
        self.optimizer_combo = QComboBox()
        for i, (name, spec) in enumerate(CATALOGUE.items()):
            self.optimizer_combo.addItem(name)
            self.optimizer_combo.setItemData(i, spec.help, Qt.ItemDataRole.ToolTipRole)
        self.optimizer_combo.setToolTip("the torch.optim class (changing it restarts the run)")
        self.optimizer_combo.currentTextChanged.connect(self._on_optimizer_edit)
        self.freeze_x = self._small_button("freeze x", checkable=True,
                                           tip="x gets no gradient (requires_grad=False) and "
                                               "stays where it is")
        self.freeze_y = self._small_button("freeze y", checkable=True,
                                           tip="y gets no gradient (requires_grad=False) and "
                                               "stays where it is")
        self.freeze_x.toggled.connect(lambda on: self._on_freeze_edit("x", on))
        self.freeze_y.toggled.connect(lambda on: self._on_freeze_edit("y", on))
        self.duplicate_button = self._small_button("copy", tip="duplicate this run")
        self.duplicate_button.clicked.connect(self._on_duplicate_clicked)
        self.remove_button = self._small_button("×", tip="remove this run")
        self.remove_button.clicked.connect(self._on_remove_clicked)
        row.addWidget(self.optimizer_combo, 1)
        row.addWidget(self.freeze_x)
        row.addWidget(self.freeze_y)
        row.addWidget(self.duplicate_button)
        row.addWidget(self.remove_button)
        return row

    @staticmethod
    def _small_button(text: str, *, tip: str, checkable: bool = False) -> QToolButton:
        button = QToolButton()
        button.setText(text)
        button.setToolTip(tip)
        button.setCheckable(checkable)
        button.setAutoRaise(not checkable)
        return button

    def _build_lr_row(self) -> QHBoxLayout:
        h = self.run.spec.hyperparameter("lr")
        row = QHBoxLayout()
        row.setSpacing(4)
        name = QLabel("lr")
        name.setToolTip(_tooltip(h))
        self.lr_slider = FineSlider(Qt.Orientation.Horizontal)
        self.lr_slider.setRange(0, LR_TICKS)
        self.lr_slider.setPageStep(LR_TICKS // 12)  # half a decade
        self.lr_slider.setToolTip(_tooltip(h) + f"<br>slider: log scale, 1e-5 to 10 in {LR_TICKS}"
                                  " steps; hold Shift or Ctrl while dragging for fine steps;"
                                  " ← / → one step when it has the focus")
        self.lr_slider.valueChanged.connect(self._on_lr_slider_edit)
        self.lr_spin = FloatSpinBox(log=True)
        self.lr_spin.setRange(*LR_BOX_RANGE)
        self.lr_spin.setToolTip(_tooltip(h) + "<br>type an exact value and press Enter")
        self.lr_spin.setMinimumWidth(82)
        self.lr_spin.valueChanged.connect(self._on_lr_spin_edit)
        row.addWidget(name)
        row.addWidget(self.lr_slider, 1)
        row.addWidget(self.lr_spin)
        return row

    def _build_tools_header(self) -> QHBoxLayout:
        row = QHBoxLayout()
        row.setSpacing(4)
        self.tools_button = QToolButton()
        self.tools_button.setText(TOOLS_TITLE)
        self.tools_button.setCheckable(True)
        self.tools_button.setAutoRaise(True)
        self.tools_button.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextBesideIcon)
        self.tools_button.setArrowType(Qt.ArrowType.RightArrow)
        self.tools_button.setStyleSheet("QToolButton { font-size: 11px; padding: 0px; }"
                                        "QToolButton:checked { background: transparent;"
                                        " border: none; }")
        self.tools_button.setToolTip("the lr scheduler (torch.optim.lr_scheduler), gradient "
                                     "clipping (torch.nn.utils.clip_grad_*) and gradient noise")
        self.tools_button.toggled.connect(self._on_tools_toggle)
        self.tools_summary = ElidedLabel()
        self.tools_summary.setStyleSheet("color: #555; font-size: 11px;")
        row.addWidget(self.tools_button)
        row.addWidget(self.tools_summary, 1)
        return row

    def _build_tools_section(self) -> QWidget:
        self.tools_box = QWidget()
        box = QVBoxLayout(self.tools_box)
        box.setContentsMargins(6, 0, 0, 2)
        box.setSpacing(3)
        run = self.run
        self.scheduler_picker = SchedulerPicker(
            run.scheduler_setting, optimizer=(run.optimizer_name, dict(run.hyperparameters)),
            preview=False)  # computed when the section opens
        self.scheduler_picker.sigEdited.connect(self._on_scheduler_edit)
        box.addWidget(self.scheduler_picker)
        # One line (a wrapped label's height depends on the width, which squeezed the picker's
        # rows in the scrolling column); the whole rule is its tooltip and the slider's.
        self.lr_note = ElidedLabel()
        self.lr_note.set_full_text(SCHEDULED_LR_SHORT)
        self.lr_note.setToolTip(SCHEDULED_LR_NOTE)
        self.lr_note.setStyleSheet("color: #555; font-size: 10px;")
        box.addWidget(self.lr_note)

        grid = QGridLayout()
        grid.setHorizontalSpacing(4)
        grid.setVerticalSpacing(2)
        grid.setColumnStretch(1, 1)
        grid.setColumnStretch(3, 1)
        clip_label = QLabel("clip")
        clip_label.setToolTip("gradient clipping after backward (and after the noise), before "
                              "optimizer.step(), with torch's own functions")
        self.clip_combo = QComboBox()
        for i, (text, _kind, call) in enumerate(CLIP_CHOICES):
            self.clip_combo.addItem(text)
            tip = (f"torch.nn.utils.{call}(parameters, ...)" if call else "no clipping")
            self.clip_combo.setItemData(i, tip, Qt.ItemDataRole.ToolTipRole)
        self.clip_combo.setToolTip(clip_label.toolTip())
        self.clip_combo.currentIndexChanged.connect(self._on_clip_kind_edit)
        self.clip_spin = FloatSpinBox(log=True)
        self.clip_spin.setRange(-UNBOUNDED, UNBOUNDED)  # a bad value is refused in words
        self.clip_spin.valueChanged.connect(self._on_clip_threshold_edit)
        noise_label = QLabel("noise σ")
        noise_label.setToolTip(_tooltip(NOISE_SIGMA) + "<br>grad += σ·N(0, 1) after backward, "
                               "from the run's own seeded torch.Generator")
        self.noise_spin = FloatSpinBox(log=False)
        self.noise_spin.setRange(-UNBOUNDED, UNBOUNDED)
        self.noise_spin.setSingleStep(0.05)
        self.noise_spin.setToolTip(noise_label.toolTip())
        self.noise_spin.valueChanged.connect(self._on_noise_edit)
        seed_label = QLabel("seed")
        seed_label.setToolTip(_tooltip(NOISE_SEED))
        self.seed_spin = QSpinBox()
        self.seed_spin.setRange(0, 2**31 - 1)
        self.seed_spin.setKeyboardTracking(False)
        self.seed_spin.setToolTip(seed_label.toolTip())
        self.seed_spin.valueChanged.connect(self._on_noise_edit)
        for widget in (self.clip_combo, self.clip_spin, self.noise_spin, self.seed_spin):
            widget.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Fixed)
            widget.setMinimumWidth(56)
        grid.addWidget(clip_label, 0, 0)
        grid.addWidget(self.clip_combo, 0, 1)
        grid.addWidget(self.clip_spin, 0, 2, 1, 2)
        grid.addWidget(noise_label, 1, 0)
        grid.addWidget(self.noise_spin, 1, 1)
        grid.addWidget(seed_label, 1, 2)
        grid.addWidget(self.seed_spin, 1, 3)
        box.addLayout(grid)
        self.tools_box.hide()
        return self.tools_box

    def _build_hyperparameters(self) -> QGridLayout | None:
        """Two (name, control) pairs per line in four columns; a long name takes the left half of
        its line and its control the right half; a pair's two boxes fill the line after its name;
        check boxes carry their own name and come last."""
        others = [h for h in self.run.spec.hyperparameters if h.name != "lr"]
        if not others:
            return None
        grid = QGridLayout()
        grid.setHorizontalSpacing(4)
        grid.setVerticalSpacing(2)
        grid.setColumnStretch(1, 1)
        grid.setColumnStretch(3, 1)
        cell = 0  # half-lines used so far
        for h in sorted(others, key=lambda h: h.kind == "bool"):  # stable: catalogue order
            widget = self._make_control(h)
            wide = h.kind == "pair" or len(h.name) > LONG_NAME
            if wide and cell % 2:
                cell += 1
            r, c = divmod(cell, 2)
            if h.kind == "bool":
                grid.addWidget(widget, r, 2 * c, 1, 4 if wide else 2)
            else:
                label = QLabel(h.name)
                label.setToolTip(_tooltip(h))
                if h.kind == "pair":
                    grid.addWidget(label, r, 0)
                    grid.addWidget(widget, r, 1, 1, 3)
                elif wide:
                    grid.addWidget(label, r, 0, 1, 2)
                    grid.addWidget(widget, r, 2, 1, 2)
                else:
                    grid.addWidget(label, r, 2 * c)
                    grid.addWidget(widget, r, 2 * c + 1)
            cell += 2 if wide else 1
        return grid

    def _make_control(self, h: Hyperparameter) -> QWidget:
        tip = _tooltip(h)
        widget: QWidget
        if h.kind == "bool":
            box = QCheckBox(h.name)
            box.toggled.connect(lambda on, name=h.name: self._edit(name, bool(on)))
            self.controls[h.name] = widget = box
        elif h.kind == "int":
            spin = QSpinBox()
            spin.setRange(int(h.low) if h.low is not None else -2**31 + 1,
                          int(h.high) if h.high is not None else 2**31 - 1)
            spin.setKeyboardTracking(False)
            spin.valueChanged.connect(lambda v, name=h.name: self._edit(name, int(v)))
            self.controls[h.name] = widget = spin
        elif h.kind == "choice":
            combo = QComboBox()
            for choice in h.choices:
                combo.addItem(str(choice))
            combo.currentIndexChanged.connect(
                lambda i, h=h: self._edit(h.name, h.choices[i]) if i >= 0 else None)
            self.controls[h.name] = widget = combo
        elif h.kind == "pair":
            first, second = self._float_spin(h), self._float_spin(h)
            for spin in (first, second):
                spin.valueChanged.connect(
                    lambda _v, name=h.name, a=first, b=second: self._edit(name,
                                                                          (a.value(), b.value())))
            widget = QWidget()
            pair_row = QHBoxLayout(widget)
            pair_row.setContentsMargins(0, 0, 0, 0)
            pair_row.setSpacing(4)
            pair_row.addWidget(first)
            pair_row.addWidget(second)
            first.setToolTip(tip)
            second.setToolTip(tip)
            self.controls[h.name] = (first, second)
        else:
            spin = self._float_spin(h)
            spin.valueChanged.connect(lambda v, name=h.name: self._edit(name, float(v)))
            self.controls[h.name] = widget = spin
        widget.setToolTip(tip)
        return widget

    @staticmethod
    def _float_spin(h: Hyperparameter) -> FloatSpinBox:
        # Closed bounds here; an open bound (momentum < 1) is refused by validation, in words.
        spin = FloatSpinBox(log=h.log)
        spin.setRange(h.low if h.low is not None else -UNBOUNDED,
                      h.high if h.high is not None else UNBOUNDED)
        if not h.log:
            wide_range = h.high is not None and h.high > 1
            spin.setSingleStep((h.high - (h.low or 0)) / 100 if wide_range else 0.01)
        spin.setMinimumWidth(64)
        return spin

    # --- user edits -> controller -----------------------------------------------------------------

    def _edit(self, name: str, value: Any) -> None:
        """Send one hyperparameter to the live optimizer; on refusal show why and revert."""
        try:
            self.controller.set_hyperparameter(self.run, name, value)
        except PlaygroundError as e:
            self._show_error(str(e))
            self._refresh()
        else:
            self._show_error("")

    def _on_lr_slider_edit(self, tick: int) -> None:
        self._edit("lr", lr_from_tick(tick))

    def _on_lr_spin_edit(self, value: float) -> None:
        self._edit("lr", float(value))

    def _on_tools_toggle(self, open_: bool) -> None:
        self.tools_button.setArrowType(Qt.ArrowType.DownArrow if open_ else
                                       Qt.ArrowType.RightArrow)
        self.tools_box.setVisible(open_)
        self.tools_summary.setVisible(not open_)
        self.scheduler_picker.set_preview_enabled(open_)
        if open_:
            self._show_schedule_position()

    def _on_scheduler_edit(self, setting: object) -> None:
        self._tool_edit(lambda: self.controller.set_scheduler(self.run, setting))  # type: ignore

    def _clip_kind(self) -> str | None:
        return CLIP_CHOICES[max(0, self.clip_combo.currentIndex())][1]

    def _on_clip_kind_edit(self, _index: int) -> None:
        kind = self._clip_kind()
        threshold = self.run.clipping.threshold if self.run.clipping else DEFAULT_CLIP_THRESHOLD
        self._tool_edit(lambda: self.controller.set_clipping(self.run, kind, threshold))

    def _on_clip_threshold_edit(self, value: float) -> None:
        kind = self._clip_kind()
        if kind is not None:
            self._tool_edit(lambda: self.controller.set_clipping(self.run, kind, float(value)))

    def _on_noise_edit(self, _value: object = None) -> None:
        sigma, seed = float(self.noise_spin.value()), int(self.seed_spin.value())
        self._tool_edit(lambda: self.controller.set_noise(self.run, sigma, seed))

    def _tool_edit(self, change: Any) -> None:
        """A scheduler, clipping or noise edit through the controller; on refusal the message is
        shown on the card and the controls go back to what the run has."""
        try:
            change()
        except PlaygroundError as e:
            self._refresh()
            self._show_error(str(e))
        else:
            self._show_error("")

    def _on_enable_edit(self, on: bool) -> None:
        self.controller.set_enabled(self.run, bool(on))

    def _on_label_edit(self) -> None:
        text = self.label_edit.text().strip()
        if text != (self.run.label or ""):
            self.controller.set_label(self.run, text or None)

    def _on_color_clicked(self) -> None:
        color = QColorDialog.getColor(QColor(self.run.color or "#000000"), self,
                                      f"Colour of {self.run.title}")
        if color.isValid():
            self.controller.set_color(self.run, color.name())

    def _on_optimizer_edit(self, name: str) -> None:
        if name and name != self.run.optimizer_name:
            # The run restarts as a new Run; the run list builds a new card for it.
            self.controller.replace_optimizer(self.run, name)

    def _on_freeze_edit(self, coordinate: str, frozen: bool) -> None:
        try:
            self.controller.set_frozen(self.run, coordinate, frozen)
        except PlaygroundError as e:
            self._show_error(str(e))
            self._refresh()

    def _on_duplicate_clicked(self) -> None:
        try:
            self.controller.duplicate_run(self.run)
        except PlaygroundError as e:  # e.g. the session is full
            self._show_error(str(e))

    def _on_remove_clicked(self) -> None:
        self.controller.remove_run(self.run)

    def _show_error(self, message: str) -> None:
        self.error_label.setText(message)
        self.error_label.setVisible(bool(message))

    # --- controller -> view -----------------------------------------------------------------------

    def _on_run_change(self, run: Run) -> None:
        if run is self.run:
            self._refresh()

    def _on_stepped_change(self) -> None:
        self._refresh_status()
        if self.tools_box.isVisible():
            self._show_schedule_position()
        if self._steps_on_loss():
            self._plateau_throttle.request()

    def _steps_on_loss(self) -> bool:
        setting = self.run.scheduler_setting
        return setting is not None and get_scheduler_spec(setting[0]).steps_on_loss

    def _show_scheduler_losses(self) -> None:
        """ReduceLROnPlateau's preview from the losses the run gave it so far."""
        self.scheduler_picker.set_losses(losses_given_so_far(self.run, PREVIEW_MAX_STEPS))

    def _show_schedule_position(self) -> None:
        scheduler = self.run.scheduler
        self.scheduler_picker.set_position(
            None if scheduler is None else int(getattr(scheduler, "last_epoch", 0)))

    def _on_surface_change(self) -> None:
        self._refresh_status()
        if self._steps_on_loss():
            self._plateau_throttle.request()  # restarted: one loss again

    def _on_selection_change(self, run: Run | None) -> None:
        self.selected = run is self.run
        color = self.run.color or "#3875d7"
        if self.selected:
            style = (f"QFrame#runCard {{ border: 2px solid {color}; border-radius: 5px;"
                     " background: #f3f6fb; }")
        else:
            style = "QFrame#runCard { border: 1px solid #d0d0d0; border-radius: 5px; }"
        self.setStyleSheet(style)

    def _refresh(self) -> None:
        """Show the run's current settings, without any of it counting as an edit."""
        run = self.run
        blockers = [QSignalBlocker(w) for w in self._editable_widgets()]
        self.enable_box.setChecked(run.enabled)
        self.color_button.setStyleSheet(
            f"QToolButton {{ background: {run.color or '#000000'}; border: 1px solid #555;"
            " border-radius: 3px; }")
        if not self.label_edit.hasFocus():
            self.label_edit.setText(run.label or "")
        self.label_edit.setPlaceholderText(run.title)
        self.label_edit.setCursorPosition(0)
        self.optimizer_combo.setCurrentText(run.optimizer_name)
        lr = float(run.hyperparameters["lr"])
        self.lr_slider.setValue(tick_from_lr(lr))
        self.lr_spin.setValue(lr)
        for name, control in self.controls.items():
            value = run.hyperparameters[name]
            if isinstance(control, tuple):
                control[0].setValue(float(value[0]))
                control[1].setValue(float(value[1]))
            elif isinstance(control, QCheckBox):
                control.setChecked(bool(value))
            elif isinstance(control, QComboBox):
                control.setCurrentIndex(run.spec.hyperparameter(name).choices.index(value))
            elif isinstance(control, (QSpinBox, QDoubleSpinBox)):
                control.setValue(value)
        self.freeze_x.setChecked("x" in run.frozen)
        self.freeze_y.setChecked("y" in run.frozen)
        self._refresh_tools()
        del blockers
        if self.selected:
            self._on_selection_change(run)  # the highlight is in the run's colour
        self._refresh_status()

    def _refresh_tools(self) -> None:
        """The section from the run (called with the card's signals blocked)."""
        run = self.run
        self._show_scheduler_losses()  # (first, so a plateau's preview is drawn once)
        self.scheduler_picker.set_setting(run.scheduler_setting)
        self.scheduler_picker.set_optimizer(run.optimizer_name, run.hyperparameters)
        scheduled = run.scheduler_setting is not None
        self.lr_note.setVisible(scheduled)
        h = run.spec.hyperparameter("lr")
        slider_tip = (_tooltip(h) + f"<br>slider: log scale, 1e-5 to 10 in {LR_TICKS}"
                      " steps; hold Shift or Ctrl while dragging for fine steps;"
                      " ← / → one step when it has the focus")
        if scheduled:
            slider_tip += "<br><b>Scheduled run</b>: " + SCHEDULED_LR_NOTE
        self.lr_slider.setToolTip(slider_tip)
        kind = run.clipping.kind if run.clipping else None
        self.clip_combo.setCurrentIndex([c[1] for c in CLIP_CHOICES].index(kind))
        self.clip_spin.setEnabled(kind is not None)
        self.clip_spin.setValue(run.clipping.threshold if run.clipping else DEFAULT_CLIP_THRESHOLD)
        spec = CLIP_NORM if kind != "value" else CLIP_VALUE
        self.clip_spin.setToolTip(_tooltip(spec).replace("range: (0, inf)", "a number > 0"))
        self.noise_spin.setValue(run.noise.sigma if run.noise else 0.0)
        self.seed_spin.setValue(run.noise.seed if run.noise else 0)
        self.tools_summary.set_full_text(tools_summary(run))
        if self.tools_box.isVisible():
            self._show_schedule_position()

    def _editable_widgets(self) -> list[QObject]:
        widgets: list[QObject] = [self.enable_box, self.label_edit, self.optimizer_combo,
                                  self.lr_slider, self.lr_spin, self.freeze_x, self.freeze_y,
                                  self.clip_combo, self.clip_spin, self.noise_spin,
                                  self.seed_spin]
        for control in self.controls.values():
            widgets.extend(control if isinstance(control, tuple) else (control,))
        return widgets

    def _refresh_status(self) -> None:
        """The badge says what Run.status_text says (the one wording of a run's state): its
        first part on the card ("diverged at step 12"), all of it in the tooltip."""
        run = self.run
        full = NOT_STARTED if not_started(run) else run.status_text
        text = full.split(",", 1)[0] if not_started(run) else full.split(":", 1)[0]
        fg, bg = BADGE_COLORS.get(getattr(run, "display_status", run.status.value),
                                  RUNNING_COLORS)
        if text != self.status_badge.text():
            self.status_badge.setText(text)
            self.status_badge.setStyleSheet(
                f"QLabel {{ color: {fg}; background: {bg}; border-radius: 3px;"
                " padding: 0px 4px; font-size: 11px; }")
        self.status_badge.setToolTip(f"{full} (step {run.steps})")

    # --- selection and teardown -------------------------------------------------------------------

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:  # noqa: N802
        if event.type() == QEvent.Type.MouseButtonPress:
            self._select_from_press()
        elif (event.type() == QEvent.Type.Wheel and isinstance(watched, WHEEL_CONTROLS)
              and not watched.hasFocus()):
            self._scroll_instead(event)  # type: ignore[arg-type]
            return True
        return False

    def _filter_events(self, widget: QWidget) -> None:
        """Watch presses (they select the run) and wheels (they scroll the list) on every control
        inside `widget`; the scheduler picker's controls are built anew with each class."""
        for child in widget.findChildren(QWidget):
            child.installEventFilter(self)
            if isinstance(child, WHEEL_CONTROLS):
                child.setFocusPolicy(Qt.FocusPolicy.StrongFocus)

    def _scroll_instead(self, event: QWheelEvent) -> None:
        """Hand a wheel event a control must not take to the scroll area around the card."""
        parent = self.parentWidget()
        while parent is not None and not isinstance(parent, QAbstractScrollArea):
            parent = parent.parentWidget()
        if parent is not None:
            QApplication.sendEvent(parent.verticalScrollBar(), event)

    def mousePressEvent(self, event: Any) -> None:  # noqa: N802
        self._select_from_press()
        super().mousePressEvent(event)

    def _select_from_press(self) -> None:
        # `pressing` tells the run list not to scroll to this card: a control must not move
        # under the pointer between the two clicks of a double-click.
        self.pressing = True
        try:
            self.controller.select(self.run)
        finally:
            self.pressing = False

    def close(self) -> bool:
        """Stop listening to the controller (the run list calls this before dropping a card)."""
        if self._connected:
            self._connected = False
            c = self.controller
            c.sigRunChanged.disconnect(self._on_run_change)
            c.sigStepped.disconnect(self._on_stepped_change)
            c.sigSurfaceChanged.disconnect(self._on_surface_change)
            c.sigSelectionChanged.disconnect(self._on_selection_change)
        return super().close()
