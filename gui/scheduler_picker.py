"""A learning-rate scheduler picker: none or any torch.optim.lr_scheduler class of the catalogue
(core/schedulers.py), its keyword arguments as controls with torch's names, defaults, ranges and
help, the call written as in PyTorch (editable), and a preview of the lr it gives over the next
steps, computed by `preview_lr` from torch's own optimizer and scheduler.

The picker holds a *setting*, `(name, kwargs)` as core.run keeps it, or None; it knows nothing
of runs or controllers, so the race's cards and the model workspace can both use it. An edit
that validates (the catalogue's checks, then torch's own, by building the scheduler on the
picker's optimizer for the preview) is announced with `sigEdited`; an edit that does not shows
its one-line message and the controls go back to the last good setting. `set_setting` shows a
setting without announcing anything (a view update never echoes back as an edit).

ReduceLROnPlateau follows the training loss, which no preview knows ahead: a host that has a run
hands the picker the losses its scheduler was given so far (`set_losses`; core.schedulers
`losses_given_so_far`), and the preview is torch's own lr for them, flat past the last one. The
host calls it at its own redraw rate (a Throttle); the picker keeps the scheduler it stepped
(core.schedulers.LossFedPreview), so each redraw steps torch only on the losses that are new.

SequentialLR ("warm-up then decay") shows one nested picker per phase (two by default) and its
milestones; a phase cannot be ReduceLROnPlateau or SequentialLR (core.schedulers.NOT_NESTABLE).

Signals
-------
sigEdited(object)   the user asks for this setting: (name, kwargs) validated, or None
sigRebuilt()        the argument controls were built anew (another class was picked), so a
                    host that filters its controls' events can take the new ones in
"""

from __future__ import annotations

import ast
import math
from typing import Any

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QSignalBlocker, Qt, Signal
from PySide6.QtWidgets import (QCheckBox, QComboBox, QGridLayout, QHBoxLayout, QLabel, QLineEdit,
                               QSizePolicy, QSpinBox, QVBoxLayout, QWidget)

from core.errors import PlaygroundError
from core.schedulers import (CATALOGUE, NOT_NESTABLE, LossFedPreview, LrPreview,
                             SchedulerArgument,
                             SchedulerError, get_scheduler_spec, parse_scheduler_call,
                             preview_lr, scheduler_call_text)
from gui.number_box import FloatSpinBox, format_number

Setting = tuple[str, dict[str, Any]]

NONE = "none"
PREVIEW_MIN_STEPS = 100
PREVIEW_MAX_STEPS = 1000  # ~15 ms of torch stepping on the GUI thread at most
PREVIEW_HEIGHT_PX = 104
MOMENTUM_HEIGHT_PX = 76
UNBOUNDED = 1e9
PHASE_NAMES = ("warm-up", "then")  # SequentialLR's phases, as the user thinks of them
LOG_WHEN_RATIO = 20.0  # the preview's lr axis is logarithmic when max/min is larger than this


def argument_tooltip(scheduler: str, a: SchedulerArgument) -> str:
    """The argument's help in torch's terms: its name, what it does, its range, its default."""
    default = "none (required)" if a.required else repr(a.default)
    return (f"<b>{a.name}</b> ({scheduler}): {a.help}<br>{a.expected_text()}; default: "
            f"{default}<br><i>{a.not_live_reason}</i>")


def suggested_setting(name: str, lr: float | None = None) -> Setting:
    """A scheduler as first picked: torch's defaults, a suggested value for each required
    argument, and for OneCycleLR / CyclicLR lr limits around the run's own lr (they replace it),
    so picking one does not make the run jump to another lr."""
    spec = get_scheduler_spec(name)
    kwargs: dict[str, Any] = {a.name: a.suggested for a in spec.arguments
                              if a.required and a.suggested is not None}
    if spec.name == "OneCycleLR":
        kwargs["total_steps"] = spec.argument("total_steps").suggested
        if lr:
            kwargs["max_lr"] = lr
    elif spec.name == "CyclicLR" and lr:
        kwargs.update(base_lr=lr, max_lr=lr * 10)
    return spec.name, spec.validate(kwargs)


def preview_length(name: str, kwargs: dict[str, Any], known_losses: int = 0) -> int:
    """How many steps the preview shows: enough to see the schedule's shape (a cosine's T_max and
    where torch's cosine turns back up, two cycles of CyclicLR, the whole of OneCycleLR...);
    for ReduceLROnPlateau, the `known_losses` it was given and a flat stretch after them."""
    k = kwargs
    if name == "StepLR":
        n = 5 * k["step_size"]
    elif name == "MultiStepLR":
        n = 1.5 * k["milestones"][-1]
    elif name == "ExponentialLR":
        n = math.log(1e-3) / math.log(k["gamma"]) if 0 < k["gamma"] < 1 else 200
    elif name == "CosineAnnealingLR":
        n = 1.5 * k["T_max"]
    elif name == "CosineAnnealingWarmRestarts":
        n = k["T_0"] * (1 + k["T_mult"] + k["T_mult"] ** 2)
    elif name == "CyclicLR":
        n = 2 * (k["step_size_up"] + (k["step_size_down"] or k["step_size_up"]))
    elif name == "OneCycleLR":
        n = k["total_steps"] or k["epochs"] * k["steps_per_epoch"]
    elif name in ("LinearLR", "ConstantLR", "PolynomialLR"):
        n = 1.5 * k["total_iters"]
    elif name == "SequentialLR":
        last_name, last_kwargs = k["schedulers"][-1]
        n = k["milestones"][-1] + preview_length(last_name, last_kwargs)
    else:  # ReduceLROnPlateau: it follows the loss, known only as far as it was given
        n = max(200, known_losses * 1.25)
    return int(min(PREVIEW_MAX_STEPS, max(PREVIEW_MIN_STEPS, math.ceil(n))))


def _read_literal(text: str) -> Any:
    """What a user typed into a list or an optional box: "" and "None" are None, "30, 80" is a
    list, anything else a Python literal (never executed)."""
    text = text.strip()
    if text in ("", "None"):
        return None
    try:
        value = ast.literal_eval(text)
    except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
        return text  # the argument's validation names it
    return list(value) if isinstance(value, tuple) else value


def _literal_text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, list):
        return "[" + ", ".join(format_number(v) if isinstance(v, float) else str(v)
                               for v in value) + "]"
    return format_number(value) if isinstance(value, float) else str(value)


class SchedulerPicker(QWidget):
    """The picker (see the module docstring). `optimizer` is the (name, kwargs) the preview is
    computed with (the run's optimizer, whose lr is the schedule's base); `nested` makes a phase
    of SequentialLR (no "none", no preview, no nestable-only classes).

    Public widgets, for tests and callers: `combo` (none + class names), `call_edit` (the call as
    PyTorch text, editable), `controls` (argument name -> its widget; SequentialLR's phases are
    `phases`, nested pickers), `preview_plot`, `preview_curve`, `momentum_plot`,
    `momentum_curve`, `position_line` (the host's `set_position`), `note_label`,
    `error_label`. `preview` is the last LrPreview shown; `preview=False` computes none until
    `set_preview_enabled(True)` (a closed section). `losses` (`set_losses`) are what
    ReduceLROnPlateau's preview is fed.
    """

    sigEdited = Signal(object)
    sigRebuilt = Signal()

    def __init__(self, setting: Setting | None = None, *,
                 optimizer: tuple[str, dict[str, Any] | None] = ("SGD", None),
                 nested: bool = False, title: str = "scheduler", preview: bool = True,
                 parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.nested = nested
        self.optimizer = optimizer
        self.controls: dict[str, QWidget] = {}
        self.phases: list[SchedulerPicker] = []
        self.preview: LrPreview | None = None
        self.preview_steps = 0
        self._setting: Setting | None = None
        self._shown_name: str | None = "?"  # the class whose controls are built
        self._preview_key: Any = None
        self._preview_enabled = preview
        self._computed: tuple[Any, LrPreview, int] | None = None
        self.losses: tuple[float, ...] | None = None
        self._fed_preview: tuple[Any, LossFedPreview] | None = None

        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(3)
        top = QHBoxLayout()
        top.setSpacing(4)
        self.combo = QComboBox()
        if not nested:
            self.combo.addItem(NONE)
            self.combo.setItemData(0, "no scheduler: the lr stays the optimizer's own",
                                   Qt.ItemDataRole.ToolTipRole)
        for name, spec in CATALOGUE.items():
            if nested and name in NOT_NESTABLE:
                continue
            self.combo.addItem(name)
            self.combo.setItemData(self.combo.count() - 1, spec.help, Qt.ItemDataRole.ToolTipRole)
        self.combo.setToolTip("the torch.optim.lr_scheduler class; scheduler.step() follows "
                              "optimizer.step() at every step")
        self.combo.currentTextChanged.connect(self._on_class_edit)
        self.title_label = QLabel(f"<b>{title}</b>" if nested else title)
        top.addWidget(self.title_label)
        top.addWidget(self.combo, 1)
        layout.addLayout(top)

        self.call_edit = QLineEdit()
        self.call_edit.setToolTip("the scheduler as PyTorch code (without the optimizer); type "
                                  "one and press Enter, e.g. StepLR(step_size=50, gamma=0.5)")
        self.call_edit.setPlaceholderText("e.g. CosineAnnealingLR(T_max=200)")
        self.call_edit.setStyleSheet("font-family: monospace; font-size: 11px;")
        self.call_edit.editingFinished.connect(self._on_call_edit)
        layout.addWidget(self.call_edit)
        if nested:
            self.call_edit.hide()  # the whole SequentialLR call is in the outer picker's box

        self.arguments_box = QWidget()
        self.arguments_grid = QGridLayout(self.arguments_box)
        self.arguments_grid.setContentsMargins(0, 0, 0, 0)
        self.arguments_grid.setHorizontalSpacing(4)
        self.arguments_grid.setVerticalSpacing(2)
        layout.addWidget(self.arguments_box)

        self.preview_plot = pg.PlotWidget()
        self.momentum_plot = pg.PlotWidget()
        self.preview_curve = self.preview_plot.plot(pen=pg.mkPen("#2c3e50", width=1.5))
        self.momentum_curve = self.momentum_plot.plot(pen=pg.mkPen("#8e44ad", width=1.5))
        for plot, height, label in ((self.preview_plot, PREVIEW_HEIGHT_PX, "lr"),
                                    (self.momentum_plot, MOMENTUM_HEIGHT_PX, "momentum")):
            plot.setFixedHeight(height)
            plot.setMenuEnabled(False)
            plot.setMouseEnabled(x=False, y=False)
            plot.hideButtons()
            plot.setBackground("w")
            item = plot.getPlotItem()
            item.setContentsMargins(0, 0, 2, 0)
            for side in ("left", "bottom"):
                axis = item.getAxis(side)
                axis.enableAutoSIPrefix(False)
                axis.setTextPen("k")
                axis.setPen(pg.mkPen(0, 0, 0, 120))
                axis.setStyle(tickFont=_small_font(self))
            item.getAxis("left").setWidth(40)
            item.setTitle(label, size="8pt", color="#333")  # a rotated axis label would not fit
            item.showGrid(x=True, y=True, alpha=0.2)
        # Where the run stands in its schedule (set by the host with `set_position`).
        self.position_line = pg.InfiniteLine(angle=90, movable=False,
                                             pen=pg.mkPen("#c0392b", width=1,
                                                          style=Qt.PenStyle.DashLine),
                                             label="now", labelOpts={"position": 0.12,
                                                                     "color": "#c0392b"})
        self.preview_plot.addItem(self.position_line, ignoreBounds=True)
        self.position_line.hide()
        self.preview_plot.setToolTip("the lr each of the next steps uses with this scheduler, "
                                     "from torch's own classes (preview_lr)")
        self.momentum_plot.setToolTip("the momentum (or Adam's beta1) this scheduler cycles, "
                                      "opposite to the lr")
        # One line, its whole text in the tooltip: a wrapped label's height depends on its width,
        # which a host's scrolling column does not always give it.
        self.note_label = QLabel()
        self.note_label.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)
        self.note_label.setStyleSheet("color: #555; font-size: 10px;")
        self.error_label = QLabel()
        self.error_label.setWordWrap(True)
        self.error_label.setStyleSheet("color: #c0392b; font-size: 11px;")
        for widget in (self.preview_plot, self.momentum_plot, self.note_label, self.error_label):
            layout.addWidget(widget)
            widget.hide()
        self.set_setting(setting)

    # --- public -----------------------------------------------------------------------------------

    def setting(self) -> Setting | None:
        """The setting shown (the last good one)."""
        return self._setting

    def set_setting(self, setting: Setting | None) -> None:
        """Show a setting (None: no scheduler) without announcing it; clears any error."""
        if setting is None and self.nested:
            setting = suggested_setting("LinearLR")
        self._setting = None if setting is None else (setting[0], dict(setting[1]))
        self._show_setting()
        self.show_error("")

    def set_optimizer(self, name: str, kwargs: dict[str, Any] | None) -> None:
        """The optimizer the preview steps (the run's: its lr is the schedule's base lr)."""
        self.optimizer = (name, dict(kwargs or {}))
        self._refresh_preview()

    def set_losses(self, losses: Any) -> None:
        """The training losses the run's ReduceLROnPlateau was given so far, in order (None:
        none known). Only that scheduler's preview uses them; it is drawn again when they
        change (at most PREVIEW_MAX_STEPS are kept: the preview shows no more)."""
        kept = None if losses is None or not len(losses) else tuple(
            float(v) for v in losses[:PREVIEW_MAX_STEPS])
        if kept == self.losses:
            return
        self.losses = kept
        if self._setting is not None and self._steps_on_loss(self._setting[0]):
            self._refresh_preview()

    @staticmethod
    def _steps_on_loss(name: str) -> bool:
        return get_scheduler_spec(name).steps_on_loss

    def _losses_for(self, name: str) -> tuple[float, ...] | None:
        return self.losses if self._steps_on_loss(name) else None

    def set_preview_enabled(self, on: bool) -> None:
        """Compute the preview only while it can be seen (a closed card section does not)."""
        self._preview_enabled = bool(on)
        if on:
            self._refresh_preview()

    def set_position(self, step: int | None) -> None:
        """Mark the step the run's scheduler is at on the preview (None: no mark), so the
        preview reads as "the lr from here on"."""
        if step is None or self.preview is None:
            self.position_line.hide()
            return
        if self.position_line.value() != step:
            self.position_line.setValue(step)
        self.position_line.setVisible(step <= self.preview_steps)

    def show_error(self, message: str) -> None:
        self.error_label.setText(message)
        self.error_label.setVisible(bool(message))

    # --- building the argument controls -----------------------------------------------------------

    def _build_controls(self, name: str | None) -> None:
        """The controls of one class, two (name, control) pairs a line; a list, a nested phase or
        an option with a long name takes a line of its own."""
        grid = self.arguments_grid
        while grid.count():
            widget = grid.takeAt(0).widget()
            if widget is not None:
                widget.deleteLater()
        self.controls = {}
        self.phases = []
        self._shown_name = name
        if name is None:
            self.arguments_box.hide()
            return
        spec = get_scheduler_spec(name)
        cell = 0
        grid.setColumnStretch(1, 1)
        grid.setColumnStretch(3, 1)
        for a in sorted(spec.arguments, key=lambda a: a.kind == "bool"):
            tip = argument_tooltip(spec.name, a)
            if a.kind == "schedulers":
                self._build_phases(a, tip, cell)
                cell += 2 * len(self.phases) + (cell % 2)
                continue
            widget = self._make_control(spec.name, a)
            widget.setToolTip(tip)
            self.controls[a.name] = widget
            wide = a.kind == "int_list" or len(a.name) > 12
            if wide and cell % 2:
                cell += 1
            r, c = divmod(cell, 2)
            if a.kind == "bool":
                grid.addWidget(widget, r, 2 * c, 1, 4 if wide else 2)
            else:
                label = QLabel(a.name)
                label.setToolTip(tip)
                if wide:
                    grid.addWidget(label, r, 0)
                    grid.addWidget(widget, r, 1, 1, 3)
                else:
                    grid.addWidget(label, r, 2 * c)
                    grid.addWidget(widget, r, 2 * c + 1)
            cell += 2 if wide else 1
        self.arguments_box.setVisible(bool(spec.arguments))
        self.sigRebuilt.emit()

    def _build_phases(self, a: SchedulerArgument, tip: str, cell: int) -> None:
        row = (cell + 1) // 2
        phases = (self._setting[1][a.name] if self._setting else None) or [
            parse_scheduler_call(text) for text in a.suggested]
        for k, phase in enumerate(phases):
            title = PHASE_NAMES[k] if k < len(PHASE_NAMES) and len(phases) == 2 else (
                f"phase {k + 1}")
            picker = SchedulerPicker(phase, optimizer=self.optimizer, nested=True, title=title)
            picker.title_label.setToolTip(tip)
            picker.layout().setContentsMargins(10, 0, 0, 2)  # indented under SequentialLR
            picker.sigEdited.connect(self._on_phase_edit)
            picker.sigRebuilt.connect(self.sigRebuilt)
            self.arguments_grid.addWidget(picker, row + k, 0, 1, 4)
            self.phases.append(picker)

    def _make_control(self, scheduler: str, a: SchedulerArgument) -> QWidget:
        widget: QWidget
        if a.kind == "bool":
            box = QCheckBox(a.name)
            box.toggled.connect(lambda on, n=a.name: self._on_argument_edit(n, bool(on)))
            widget = box
        elif a.kind == "choice":
            combo = QComboBox()
            combo.addItems([str(c) for c in a.choices])
            combo.currentIndexChanged.connect(
                lambda i, a=a: self._on_argument_edit(a.name, a.choices[i]) if i >= 0 else None)
            widget = combo
        elif a.kind in ("int_list",) or a.optional:
            edit = QLineEdit()
            edit.setPlaceholderText("None" if a.optional else "e.g. [30, 80]")
            edit.editingFinished.connect(
                lambda e=edit, n=a.name: self._on_argument_edit(n, _read_literal(e.text())))
            widget = edit
        elif a.kind == "int":
            spin = QSpinBox()
            # the low end one below torch's, so a 0 reaches validation and gets its message
            spin.setRange(int(a.low) - 1 if a.low is not None else -2**31 + 1,
                          int(a.high) if a.high is not None else 2**31 - 1)
            spin.setKeyboardTracking(False)
            spin.valueChanged.connect(lambda v, n=a.name: self._on_argument_edit(n, int(v)))
            widget = spin
        else:
            # Open ends are refused by validation, in words: the box takes any number.
            spin = FloatSpinBox(log=a.log)
            spin.setRange(-UNBOUNDED, UNBOUNDED)
            spin.setSingleStep(0.01 if a.high is not None and a.high <= 1 else 1.0)
            spin.valueChanged.connect(lambda v, n=a.name: self._on_argument_edit(n, float(v)))
            widget = spin
        if not isinstance(widget, QCheckBox):
            # The grid shares the card's width: a box's hint (from its range) must not widen it.
            widget.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Fixed)
            widget.setMinimumWidth(52)
        return widget

    # --- showing ----------------------------------------------------------------------------------

    def _show_setting(self) -> None:
        setting = self._setting
        name = setting[0] if setting else None
        with QSignalBlocker(self.combo):
            self.combo.setCurrentText(name or NONE)
        phase_count = len(setting[1].get("schedulers") or []) if setting else 0
        if name != self._shown_name or (self.phases and phase_count != len(self.phases)):
            self._build_controls(name)
        if setting is not None:
            spec = get_scheduler_spec(name)  # type: ignore[arg-type]
            for a in spec.arguments:
                self._show_value(a, setting[1].get(a.name, a.default))
        with QSignalBlocker(self.call_edit):
            self.call_edit.setText(scheduler_call_text(*setting) if setting else "")
            self.call_edit.setCursorPosition(0)  # the class name first, not the end
        self._refresh_preview()

    def _show_value(self, a: SchedulerArgument, value: Any) -> None:
        if a.kind == "schedulers":
            for picker, phase in zip(self.phases, value):
                picker.set_setting(phase)
            return
        widget = self.controls[a.name]
        with QSignalBlocker(widget):
            if isinstance(widget, QCheckBox):
                widget.setChecked(bool(value))
            elif isinstance(widget, QComboBox):
                widget.setCurrentIndex(a.choices.index(value))
            elif isinstance(widget, QLineEdit):
                widget.setText(_literal_text(value))
            elif isinstance(widget, QSpinBox):
                widget.setValue(int(value))
            elif isinstance(widget, FloatSpinBox):
                widget.setValue(float(value))

    def _refresh_preview(self) -> None:
        """The lr curve (and a cycled momentum) over the next steps, from torch; on a log axis
        when the lr spans more than LOG_WHEN_RATIO."""
        if self.nested:
            return
        setting = self._setting
        visible = setting is not None
        self.preview_plot.setVisible(visible)
        if not visible:
            self.preview = None
            self._preview_key = None
            self.momentum_plot.hide()
            self.note_label.hide()
            return
        if not self._preview_enabled:
            return
        key = (repr(setting), repr(self.optimizer),
               self._losses_for(setting[0]))  # type: ignore[index]
        if key == self._preview_key:
            return
        try:
            self._draw_preview(*setting)  # type: ignore[misc]
        except PlaygroundError as e:
            self.show_error(str(e))
            return
        self._preview_key = key

    def _compute_preview(self, name: str, kwargs: dict[str, Any]) -> tuple[LrPreview, int]:
        """preview_lr for this setting on the picker's optimizer; the last one is kept, so the
        check of an edit and its drawing step torch once."""
        losses = self._losses_for(name)
        key = (repr((name, kwargs)), repr(self.optimizer), losses)
        if self._computed is not None and self._computed[0] == key:
            return self._computed[1], self._computed[2]
        steps = preview_length(name, kwargs, len(losses or ()))
        if losses is None:
            preview = preview_lr(self.optimizer[0], self.optimizer[1], name, kwargs, steps)
        else:  # a playing run's losses: torch steps only on the ones not fed before
            setting_key = key[:2]
            if self._fed_preview is None or self._fed_preview[0] != setting_key:
                self._fed_preview = (setting_key, LossFedPreview(
                    self.optimizer[0], self.optimizer[1], name, kwargs))
            preview = self._fed_preview[1].preview(list(losses), steps)
        self._computed = (key, preview, steps)
        return preview, steps

    def _draw_preview(self, name: str, kwargs: dict[str, Any]) -> None:
        preview, steps = self._compute_preview(name, kwargs)
        self.preview, self.preview_steps = preview, steps
        lr = np.asarray(preview.lr, dtype=float)
        positive = lr[lr > 0]
        log = bool(positive.size and positive.size == lr.size
                   and positive.max() / positive.min() > LOG_WHEN_RATIO)
        item = self.preview_plot.getPlotItem()
        item.setLogMode(x=False, y=log)
        self.preview_curve.setData(np.arange(steps), lr)
        item.setTitle(f"lr of the next {steps} steps" + (" (log scale)" if log else ""),
                      size="8pt", color="#333")
        item.enableAutoRange()
        cycled = preview.momentum is not None
        self.momentum_plot.setVisible(cycled)
        if cycled:
            self.momentum_curve.setData(np.arange(steps), np.asarray(preview.momentum))
            self.momentum_plot.getPlotItem().setTitle(
                f"{preview.momentum_name or 'momentum'}, cycled opposite to the lr", size="8pt",
                color="#333")
            self.momentum_plot.getPlotItem().enableAutoRange()
        note, tip = preview.note.split(";")[0], preview.note
        losses = self._losses_for(name)
        if losses is not None:  # what the curve was computed from, in the run's words
            n = len(losses)
            note = (f"reacts to the run's losses so far; flat past step {n}" if n < steps else
                    f"the lr the run's first {steps} losses gave")
            tip = (f"ReduceLROnPlateau, stepped by torch on the {n} training losses it was "
                   f"given so far (from step 0 of this schedule); it lowers the lr only when "
                   f"the loss stops improving, which no preview knows ahead, so the curve is "
                   f"flat after them")
        self.note_label.setText(note + (" (hover)" if tip else ""))
        self.note_label.setToolTip(tip)
        self.note_label.setVisible(bool(note))

    # --- user edits -------------------------------------------------------------------------------

    def _on_class_edit(self, text: str) -> None:
        if text == NONE:
            self._try(None)
            return
        lr = (self.optimizer[1] or {}).get("lr")
        try:
            setting = suggested_setting(text, float(lr) if lr else None)
        except PlaygroundError as e:
            self._refuse(str(e))
            return
        self._try(setting)

    def _on_call_edit(self) -> None:
        text = self.call_edit.text().strip()
        current = scheduler_call_text(*self._setting) if self._setting else ""
        if text == current:
            return
        if not text or text == NONE:
            self._try(None)
            return
        try:
            setting = parse_scheduler_call(text)
        except PlaygroundError as e:
            self._refuse(str(e))
            return
        self._try(setting)

    def _on_argument_edit(self, name: str, value: Any) -> None:
        if self._setting is None:
            return
        scheduler, kwargs = self._setting
        if kwargs.get(name) == value and type(kwargs.get(name)) is type(value):
            return
        self._try_kwargs(scheduler, {**kwargs, name: value})

    def _on_phase_edit(self, _setting: object) -> None:
        if self._setting is None:
            return
        scheduler, kwargs = self._setting
        phases = [p.setting() for p in self.phases]
        self._try_kwargs(scheduler, {**kwargs, "schedulers": phases})

    def _try_kwargs(self, scheduler: str, kwargs: dict[str, Any]) -> None:
        try:
            setting = (scheduler, get_scheduler_spec(scheduler).validate(kwargs))
        except PlaygroundError as e:
            self._refuse(str(e))
            return
        self._try(setting)

    def _try(self, setting: Setting | None) -> None:
        """Take a validated setting if torch builds it on the optimizer (the preview does), and
        announce it; else show why and go back to the last good one."""
        if setting is not None and not self.nested:
            try:
                self._compute_preview(*setting)
            except PlaygroundError as e:
                self._refuse(str(e))
                return
        self._setting = setting
        self.show_error("")
        self._show_setting()
        self.sigEdited.emit(None if setting is None else (setting[0], dict(setting[1])))

    def _refuse(self, message: str) -> None:
        self._show_setting()  # the controls go back to the last good setting
        self.show_error(message)


def _small_font(widget: QWidget) -> Any:
    font = widget.font()
    font.setPointSizeF(max(6.5, font.pointSizeF() - 2))
    return font


__all__ = ["SchedulerError", "SchedulerPicker", "preview_length", "suggested_setting"]
