"""The lab's controller: owns the current core Lab, rebuilds it from the editors, runs calls.

Views call its methods and redraw from its state on its signals; it never does torch math itself
(core.lab does). Bad input leaves the previous Lab in place and reports one line.

Signals
-------
sigLabChanged()            a new valid Lab: the output, Jacobian, JVP and shapes may all differ
sigInputError(str, str, int)  where ("tensors", "expression", "v", "tangent", "call"), the
                           message and its column in that text (0: none)
sigProductsChanged()       v or a tangent changed: the VJP and JVP shown are out of date
sigCallDone(object)        a CallResult from one of the backward calls
sigPresetChanged(object)   the preset now shown (a LabPreset), or None once the user edits
"""

from __future__ import annotations

from collections.abc import Callable

from PySide6.QtCore import QObject, Signal
from torch import Tensor

from core.lab.presets import PRESETS, LabPreset, get_preset
from core.lab.values import LabError, TensorSpec
from core.lab.workbench import CallResult, Lab

CALLS = ("backward", "backward_with_gradient", "sum_backward", "backward_twice",
         "backward_twice_retain", "retain_grad", "no_grad", "detach")


class LabController(QObject):
    """The lab workspace's state: tensor specs, program text, v and tangent texts, the Lab."""

    sigLabChanged = Signal()
    sigInputError = Signal(str, str, int)
    sigProductsChanged = Signal()
    sigCallDone = Signal(object)
    sigPresetChanged = Signal(object)

    def __init__(self, *, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.preset: LabPreset | None = None
        self.lab: Lab | None = None
        self.v_text = ""  # blank: ones of Q's shape
        self.tangent_texts: dict[str, str] = {}
        self.last_result: CallResult | None = None

    # --- inputs ------------------------------------------------------------------------------

    def set_preset(self, name: str) -> None:
        preset = get_preset(name)
        lab = preset.lab()
        self.preset = preset
        self._install(lab)
        self.sigPresetChanged.emit(preset)

    def set_inputs(self, specs: list[TensorSpec], expression: str) -> str | None:
        """Build a Lab from the editors; on an error report it and keep the old Lab."""
        closed = {}
        preset = self.preset
        if preset is not None and expression.strip() == preset.expression and \
                [s.name for s in specs] == [s.name for s in preset.tensors]:
            closed = preset.closed_forms  # still the preset's function: its closed forms hold
        try:
            lab = Lab(specs, expression, closed)
        except LabError as e:
            where = "expression" if _is_expression_error(specs) else "tensors"
            self.sigInputError.emit(where, str(e), e.column or 0)
            return str(e)
        if not closed and preset is not None:
            self.preset = None
            self.sigPresetChanged.emit(None)
        self._install(lab)
        return None

    def _install(self, lab: Lab) -> None:
        shape_changed = self.lab is None or self.lab.output().shape != lab.output().shape
        if shape_changed:
            self.v_text = ""  # a v of the old shape would not fit
        old = self.tangent_texts
        self.lab = lab
        self.tangent_texts = {n: old.get(n, "") for n in lab.trainable}
        self.last_result = None
        self.sigLabChanged.emit()

    def set_v_text(self, text: str) -> str | None:
        """The v of backward(gradient=v); blank means ones. Returns the error, if any."""
        if self.lab is None:
            return "no expression yet"
        try:
            self.lab.parse_gradient(text)
        except LabError as e:
            self.sigInputError.emit("v", str(e), e.column or 0)
            return str(e)
        self.v_text = text
        self.sigProductsChanged.emit()
        return None

    def set_tangent_text(self, name: str, text: str) -> str | None:
        """The tangent of input `name` for the JVP; blank means ones."""
        if self.lab is None:
            return "no expression yet"
        texts = {**self.tangent_texts, name: text}
        try:
            self.lab.parse_tangents(texts)
        except LabError as e:
            self.sigInputError.emit("tangent", str(e), e.column or 0)
            return str(e)
        self.tangent_texts = texts
        self.sigProductsChanged.emit()
        return None

    # --- reading --------------------------------------------------------------------------------

    def v(self) -> Tensor | None:
        return None if self.lab is None else self.lab.parse_gradient(self.v_text)

    def tangents(self) -> dict[str, Tensor]:
        return {} if self.lab is None else self.lab.parse_tangents(self.tangent_texts)

    # --- the calls --------------------------------------------------------------------------------

    def call(self, kind: str, intermediate: str | None = None) -> CallResult | None:
        """Run one of CALLS on fresh tensors; emits sigCallDone with the result."""
        lab = self.lab
        if lab is None:
            return None
        v = self.v()
        run: dict[str, Callable[[], CallResult]] = {
            "backward": lab.backward,
            "backward_with_gradient": lambda: lab.backward_with_gradient(v),
            "sum_backward": lab.sum_backward,
            "backward_twice": lambda: lab.backward_twice(False, v),
            "backward_twice_retain": lambda: lab.backward_twice(True, v),
            "retain_grad": lambda: lab.retain_grad(intermediate or "", v),
            "no_grad": lab.no_grad,
            "detach": lab.detach,
        }
        try:
            result = run[kind]()
        except LabError as e:
            self.sigInputError.emit("call", str(e), e.column or 0)
            return None
        self.last_result = result
        self.sigCallDone.emit(result)
        return result


def _is_expression_error(specs: list[TensorSpec]) -> bool:
    """Whether the tensors are fine on their own, so the error is the expression's."""
    try:
        Lab(specs, "0")
    except LabError:
        return False
    return True


PRESET_NAMES = [p.name for p in PRESETS]
