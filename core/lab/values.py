"""Tensor text -> a float64 tensor, with literal-level safety (the text is parsed, never run).

A value is either a literal, nested lists of numbers as PyTorch prints them::

    2.5        [2., 3.]        [[1., 2.], [3., 4.]]

or a maker call with integer sizes::

    zeros(2)   ones(2, 3)   arange(3)   arange(1, 4)   randn(2, 3, seed=0)

`randn` draws from its own torch.Generator seeded with `seed` (0 if not given), so the same text
always gives the same numbers and never touches torch's global random state.
"""

from __future__ import annotations

import ast
import math
import re
import unicodedata
from dataclasses import dataclass

import torch
from torch import Tensor

from core.errors import PlaygroundError

# The race's formula grammar knows which characters look like ours and what to type instead;
# the lab reads them the same way.
from core.formula import LOOKALIKES, UNICODE_MINUS, unicode_name

DTYPE = torch.float64
MAX_VALUE_LENGTH = 2000
MAX_ELEMENTS = 64  # per tensor: the Jacobian table stays readable and everything stays instant
MAX_DIMS = 2  # vectors and small matrices
NAME_PATTERN = re.compile(r"[A-Za-z_][A-Za-z_0-9]{0,19}")
MAKERS = ("zeros", "ones", "arange", "randn")


class LabError(PlaygroundError):
    """Bad lab input (a tensor, the expression, v or a tangent), in one line.

    `column` is 1-based within the text it refers to (None: the whole text).
    """

    def __init__(self, message: str, column: int | None = None) -> None:
        self.column = column
        self.reason = message
        super().__init__(f"{message} (column {column})" if column is not None else message)


@dataclass(frozen=True)
class TensorSpec:
    """One named input tensor as the user wrote it: `name`, value text, `requires_grad`."""

    name: str
    text: str
    requires_grad: bool = True

    def make(self) -> Tensor:
        """A fresh leaf tensor (float64) with this spec's value and requires_grad."""
        return parse_value(self.text, what=self.name).requires_grad_(self.requires_grad)


def parse_value(text: str, *, what: str = "value") -> Tensor:
    """The tensor `text` describes (a literal or a maker call); raise LabError otherwise."""
    if not isinstance(text, str):
        raise LabError(f"{what} must be text")
    if len(text) > MAX_VALUE_LENGTH:
        raise LabError(f"{what} is too long ({len(text)} characters; at most {MAX_VALUE_LENGTH})")
    if not text.strip():
        raise LabError(f"{what} is empty: write numbers like [2., 3.] or zeros(2)")
    _check_ascii(text.replace(UNICODE_MINUS, "-"), f"{what}: ")
    try:
        node = ast.parse(_normalised(text), mode="eval").body
    except (SyntaxError, RecursionError, MemoryError) as e:  # the last two: too deep for Python
        raise LabError(f"{what}: cannot read {text.strip()!r} (write numbers like [2., 3.] or "
                       f"a maker like ones(2, 3))", getattr(e, "offset", None)) from None
    if isinstance(node, ast.Call):
        tensor = _make(node, what)
    else:
        tensor = torch.tensor(_literal(node, what), dtype=DTYPE)
    if tensor.dim() > MAX_DIMS:
        raise LabError(f"{what} has {tensor.dim()} dimensions; the lab takes scalars, vectors "
                       f"and matrices")
    if tensor.numel() > MAX_ELEMENTS:
        raise LabError(f"{what} has {tensor.numel()} elements; at most {MAX_ELEMENTS}")
    return tensor


def character_hint(ch: str) -> str:
    """What to type instead of a non-ASCII `ch` (a look-alike of *, /, -, **, ...; a digit of
    another script), as ": ..." after its name; "" for an ASCII character."""
    if ch.isascii():
        return ""
    if ch in LOOKALIKES:
        return f" ({unicode_name(ch)}): {LOOKALIKES[ch]}"
    if ch.isdecimal():  # a digit of another script: 0-9 only, so no number is misread
        return f" ({unicode_name(ch)}): write digits as 0-9 (here {unicodedata.decimal(ch)})"
    if ch.isprintable():
        return f" ({unicode_name(ch)}): write plain ASCII"
    return ""


def _check_ascii(text: str, prefix: str = "") -> None:
    """Raise LabError at the first character that is not ASCII, with character_hint's advice.

    Python would read some of them (identifiers are NFKC-normalised: a fullwidth zeros is
    zeros) and refuse others with a bare syntax error; the lab refuses all, saying why.
    """
    for i, ch in enumerate(text):
        if not ch.isascii():
            raise LabError(f"{prefix}unexpected character {ch!r}{character_hint(ch)}", i + 1)


def _normalised(text: str) -> str:
    # The minus sign U+2212 (a paste of "[\u22121., 2.]") is '-', as in the expression grammar.
    return text.strip().replace(UNICODE_MINUS, "-")


def _literal(node: ast.expr, what: str, depth: int = 0) -> float | list:  # type: ignore[type-arg]
    """Nested lists of numbers, checked to be rectangular; nothing else is accepted.

    Recursion is bounded: signs are read in a loop (----1 is 1), and lists nested deeper than
    MAX_DIMS are refused before they are read.
    """
    sign, signed = 1.0, node
    while isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.USub, ast.UAdd)):
        if isinstance(node.op, ast.USub):
            sign = -sign
        node = node.operand
    if node is not signed:
        if isinstance(node, (ast.List, ast.Tuple)):
            raise LabError(f"{what}: a sign goes on a number, not a list", signed.col_offset + 1)
        return sign * _literal(node, what, depth)  # type: ignore[operator]
    if isinstance(node, ast.Constant):
        value = node.value
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise LabError(f"{what}: {value!r} is not a number", node.col_offset + 1)
        if not math.isfinite(value):
            raise LabError(f"{what}: {value!r} is not a finite number", node.col_offset + 1)
        return float(value)
    if isinstance(node, (ast.List, ast.Tuple)):
        if depth >= MAX_DIMS:
            raise LabError(f"{what} has more than {MAX_DIMS} dimensions (lists in lists in "
                           f"lists); the lab takes scalars, vectors and matrices",
                           node.col_offset + 1)
        items = [_literal(e, what, depth + 1) for e in node.elts]
        if not items:
            raise LabError(f"{what}: an empty list has no values", node.col_offset + 1)
        kinds = {type(i) for i in items}
        if len(kinds) > 1:
            raise LabError(f"{what}: mix of numbers and lists at one level", node.col_offset + 1)
        if isinstance(items[0], list) and len({len(i) for i in items}) > 1:  # type: ignore[arg-type]
            raise LabError(f"{what}: rows of different lengths (a tensor is rectangular)",
                           node.col_offset + 1)
        return items
    if isinstance(node, ast.Name) and node.id in ("inf", "nan"):
        raise LabError(f"{what}: {node.id} is not a finite number", node.col_offset + 1)
    raise LabError(f"{what}: only numbers in [ ] lists, or zeros/ones/arange/randn(...)",
                   node.col_offset + 1)


def _make(node: ast.Call, what: str) -> Tensor:
    func = node.func
    maker = func.id if isinstance(func, ast.Name) else ""
    if maker not in MAKERS:
        raise LabError(f"{what}: unknown maker; use " + ", ".join(f"{m}(...)" for m in MAKERS),
                       node.col_offset + 1)
    sizes = [_integer(a, what) for a in node.args]
    seed = 0
    for kw in node.keywords:
        if maker != "randn" or kw.arg != "seed":
            raise LabError(f"{what}: {maker} takes no keyword {kw.arg!r}"
                           + (" (only seed=)" if maker == "randn" else ""), kw.value.col_offset)
        seed = _integer(kw.value, what)
    if maker == "arange":
        if not 1 <= len(sizes) <= 3:
            raise LabError(f"{what}: arange(end), arange(start, end) or arange(start, end, step)",
                           node.col_offset + 1)
        if len(sizes) == 3 and sizes[2] == 0:
            raise LabError(f"{what}: arange's step must not be 0", node.col_offset + 1)
        count = len(range(*sizes))
        if not 1 <= count <= MAX_ELEMENTS:
            raise LabError(f"{what}: arange{tuple(sizes)} gives {count} elements; "
                           f"1 to {MAX_ELEMENTS}", node.col_offset + 1)
        return torch.arange(*sizes, dtype=DTYPE)
    if not 1 <= len(sizes) <= MAX_DIMS:
        raise LabError(f"{what}: {maker} takes one or two sizes, e.g. {maker}(2) or {maker}(2, 3)",
                       node.col_offset + 1)
    if any(s < 1 for s in sizes) or math.prod(sizes) > MAX_ELEMENTS:
        raise LabError(f"{what}: sizes must be at least 1 and give at most {MAX_ELEMENTS} "
                       f"elements", node.col_offset + 1)
    if maker == "zeros":
        return torch.zeros(*sizes, dtype=DTYPE)
    if maker == "ones":
        return torch.ones(*sizes, dtype=DTYPE)
    generator = torch.Generator().manual_seed(seed)
    return torch.randn(*sizes, dtype=DTYPE, generator=generator)


def _integer(node: ast.expr, what: str) -> int:
    sign = 1
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub):
        sign, node = -1, node.operand
    if isinstance(node, ast.Constant) and type(node.value) is int and abs(node.value) < 2**31:
        return sign * node.value
    raise LabError(f"{what}: sizes and seeds are whole numbers", node.col_offset + 1)


def torch_code(spec: TensorSpec) -> str:
    """The PyTorch line that makes `spec`'s tensor, e.g. a = torch.tensor([2., 3.], ...)."""
    parse_value(spec.text, what=spec.name)  # only valid text is turned into code
    text = _normalised(spec.text)
    node = ast.parse(text, mode="eval").body
    grad = f", requires_grad={spec.requires_grad}"
    if not isinstance(node, ast.Call):
        return f"{spec.name} = torch.tensor({text}, dtype=torch.float64{grad})"
    maker = node.func.id  # type: ignore[attr-defined]
    sizes = ", ".join(str(_integer(a, spec.name)) for a in node.args)
    extra = ""
    if maker == "randn":
        seed = next((_integer(k.value, spec.name) for k in node.keywords), 0)
        extra = f", generator=torch.Generator().manual_seed({seed})"
    return f"{spec.name} = torch.{maker}({sizes}, dtype=torch.float64{extra}{grad})"


def check_name(name: str, reserved: set[str] | frozenset[str] = frozenset()) -> str:
    """`name` if it can name a tensor (an identifier, not a function or constant)."""
    name = name.strip()
    if not NAME_PATTERN.fullmatch(name):
        raise LabError(f"tensor name {name!r} must be a letter or _ then letters, digits or _ "
                       f"(at most 20)")
    if name in reserved:
        raise LabError(f"{name!r} is a function or constant of the expression grammar; pick "
                       f"another name")
    return name


def parse_assignment(text: str) -> tuple[str, str]:
    """'a=[2., 3.]' -> ('a', '[2., 3.]'), as the CLI's --tensor takes it."""
    name, sep, value = text.partition("=")
    if not sep:
        raise LabError(f"--tensor wants NAME=VALUE like \"a=[2., 3.]\" (got {text!r})")
    return name.strip(), value.strip()


def nested(tensor: Tensor) -> float | list:  # type: ignore[type-arg]
    """A detached copy of `tensor` as nested Python lists (a float for a 0-d tensor)."""
    return tensor.detach().cpu().tolist()  # type: ignore[no-any-return]


def format_tensor(tensor: Tensor, digits: int = 6) -> str:
    """Compact text like [36., 81.] or [[1, 2], [3, 4]] for the lab's displays."""

    def fmt(v: float | list) -> str:  # type: ignore[type-arg]
        if isinstance(v, list):
            return "[" + ", ".join(fmt(x) for x in v) + "]"
        text = f"{v:.{digits}g}"
        if re.fullmatch(r"-?\d+", text):
            text += "."  # as torch prints whole floats: 36.
        return text

    return fmt(nested(tensor))


def shape_text(tensor: Tensor) -> str:
    """(2,) / (2, 3) / () as Python writes a tuple: what `tuple(Q.shape)` prints."""
    return str(tuple(tensor.shape))
