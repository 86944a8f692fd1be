"""The user's formula text -> a differentiable torch function of (x, y).

The text is tokenized and parsed by a small recursive-descent parser into a tree; the tree is then
turned into nested Python closures that call torch. Nothing in the text is ever executed, so a
formula can only ever do what the grammar allows:

    expr    := term (('+' | '-') term)*
    term    := unary (('*' | '/') unary)*
    unary   := ('-' | '+') unary | power
    power   := atom (('**' | '^') unary)?          right-associative: 2**3**2 = 2**9
    atom    := NUMBER | 'x' | 'y' | 'pi' | 'e' | FUNCTION '(' expr (',' expr)* ')' | '(' expr ')'

`-x**2` is `-(x**2)`, as in Python. `^` is accepted as a synonym for `**`.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from dataclasses import dataclass, field

import torch
from torch import Tensor

from core.errors import FormulaError

MAX_LENGTH = 2000
MAX_DEPTH = 60
MAX_TOKENS = 1000

Value = Tensor | float
Compiled = Callable[[Tensor, Tensor], Value]

CONSTANTS: dict[str, float] = {"pi": math.pi, "e": math.e}
VARIABLES = ("x", "y")


def _as_tensor(v: Value, like: Tensor) -> Tensor:
    return v if isinstance(v, Tensor) else torch.tensor(v, dtype=like.dtype)


# name -> (number of arguments, torch implementation)
FUNCTIONS: dict[str, tuple[int, Callable[..., Tensor]]] = {
    "sin": (1, torch.sin),
    "cos": (1, torch.cos),
    "tan": (1, torch.tan),
    "exp": (1, torch.exp),
    "log": (1, torch.log),
    "sqrt": (1, torch.sqrt),
    "abs": (1, torch.abs),
    "tanh": (1, torch.tanh),
    "sinh": (1, torch.sinh),
    "cosh": (1, torch.cosh),
    "atan": (1, torch.atan),
    "sigmoid": (1, torch.sigmoid),
    "softplus": (1, torch.nn.functional.softplus),
    "min": (2, torch.minimum),
    "max": (2, torch.maximum),
}

_TOKEN = re.compile(
    r"""
    (?P<space>\s+)
  | (?P<number>(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?)
  | (?P<name>[A-Za-z_][A-Za-z_0-9]*)
  | (?P<op>\*\*|[-+*/^(),])
    """,
    re.VERBOSE,
)


@dataclass(frozen=True)
class Token:
    kind: str  # "number", "name", "op", "end"
    text: str
    column: int  # 1-based


def tokenize(text: str) -> list[Token]:
    """Split `text` into tokens; raise FormulaError at the first character outside the grammar."""
    tokens: list[Token] = []
    pos = 0
    while pos < len(text):
        m = _TOKEN.match(text, pos)
        if m is None:
            ch = text[pos]
            hint = ""
            if ch == ".":
                hint = ": attributes are not allowed"
            elif ch in "'\"":
                hint = ": strings are not allowed"
            elif ch in "[]{}":
                hint = ": only ( ) brackets are allowed"
            raise FormulaError(f"unexpected character {ch!r}{hint}", pos + 1)
        kind = m.lastgroup or ""
        if kind != "space":
            tokens.append(Token(kind, m.group(), pos + 1))
            if len(tokens) > MAX_TOKENS:
                raise FormulaError(f"formula is too long (more than {MAX_TOKENS} tokens)", pos + 1)
        pos = m.end()
    tokens.append(Token("end", "", len(text) + 1))
    return tokens


# --- the tree -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Num:
    value: float


@dataclass(frozen=True)
class Var:
    name: str


@dataclass(frozen=True)
class Neg:
    operand: Node


@dataclass(frozen=True)
class BinOp:
    op: str  # one of + - * / **
    left: Node
    right: Node


@dataclass(frozen=True)
class Call:
    function: str
    args: tuple[Node, ...]


Node = Num | Var | Neg | BinOp | Call


class _Parser:
    def __init__(self, tokens: list[Token]) -> None:
        self.tokens = tokens
        self.i = 0
        self.depth = 0

    @property
    def tok(self) -> Token:
        return self.tokens[self.i]

    def advance(self) -> Token:
        t = self.tokens[self.i]
        self.i += 1
        return t

    def expect(self, text: str) -> Token:
        if self.tok.text != text:
            raise FormulaError(f"expected {text!r} but found {_describe(self.tok)}",
                               self.tok.column)
        return self.advance()

    def enter(self) -> None:
        self.depth += 1
        if self.depth > MAX_DEPTH:
            raise FormulaError(f"formula is nested too deeply (more than {MAX_DEPTH} levels)",
                               self.tok.column)

    def parse(self) -> Node:
        node = self.expr()
        if self.tok.kind != "end":
            t = self.tok
            if t.kind in ("number", "name") or t.text == "(":
                raise FormulaError(
                    f"missing operator before {_describe(t)} (write * for a product)", t.column)
            raise FormulaError(f"unexpected {_describe(t)}", t.column)
        return node

    def expr(self) -> Node:
        self.enter()
        node = self.term()
        while self.tok.text in ("+", "-"):
            op = self.advance().text
            node = BinOp(op, node, self.term())
        self.depth -= 1
        return node

    def term(self) -> Node:
        node = self.unary()
        while self.tok.text in ("*", "/"):
            op = self.advance().text
            node = BinOp(op, node, self.unary())
        return node

    def unary(self) -> Node:
        if self.tok.text in ("-", "+"):
            self.enter()
            op = self.advance().text
            operand = self.unary()
            self.depth -= 1
            return Neg(operand) if op == "-" else operand
        return self.power()

    def power(self) -> Node:
        base = self.atom()
        if self.tok.text in ("**", "^"):
            self.advance()
            self.enter()
            exponent = self.unary()
            self.depth -= 1
            return BinOp("**", base, exponent)
        return base

    def atom(self) -> Node:
        t = self.tok
        if t.kind == "number":
            self.advance()
            value = float(t.text)
            if not math.isfinite(value):
                raise FormulaError(f"number {t.text} is too large", t.column)
            return Num(value)
        if t.kind == "name":
            self.advance()
            if t.text in FUNCTIONS:
                return self.call(t)
            if self.tok.text == "(":
                raise FormulaError(f"{t.text!r} is not a function; functions are: "
                                   + ", ".join(FUNCTIONS), t.column)
            if t.text in VARIABLES:
                return Var(t.text)
            if t.text in CONSTANTS:
                return Num(CONSTANTS[t.text])
            raise FormulaError(f"unknown name {t.text!r}; use x, y, pi, e or a function ("
                               + ", ".join(FUNCTIONS) + ")", t.column)
        if t.text == "(":
            self.advance()
            node = self.expr()
            if self.tok.text != ")":
                raise FormulaError(f"missing ')' to close the '(' at column {t.column}",
                                   self.tok.column)
            self.advance()
            return node
        if t.kind == "end":
            raise FormulaError("formula ends too early: a value is missing", t.column)
        raise FormulaError(f"expected a number, x, y or '(' but found {_describe(t)}", t.column)

    def call(self, name_tok: Token) -> Node:
        arity, _ = FUNCTIONS[name_tok.text]
        if self.tok.text != "(":
            raise FormulaError(f"{name_tok.text} is a function: write {name_tok.text}(...)",
                               name_tok.column)
        self.advance()
        args = [self.expr()]
        while self.tok.text == ",":
            self.advance()
            args.append(self.expr())
        if self.tok.text != ")":
            raise FormulaError(f"missing ')' to close {name_tok.text}(", self.tok.column)
        self.advance()
        if len(args) != arity:
            plural = "argument" if arity == 1 else "arguments"
            raise FormulaError(f"{name_tok.text} takes {arity} {plural}, got {len(args)}",
                               name_tok.column)
        return Call(name_tok.text, tuple(args))


def _describe(t: Token) -> str:
    return "the end of the formula" if t.kind == "end" else repr(t.text)


def parse(text: str) -> Node:
    """Parse formula text into a tree. Raises FormulaError (never anything else)."""
    if not isinstance(text, str):
        raise FormulaError("a formula must be text")
    if len(text) > MAX_LENGTH:
        raise FormulaError(f"formula is too long ({len(text)} characters; at most {MAX_LENGTH})")
    if not text.strip():
        raise FormulaError("formula is empty")
    return _Parser(tokenize(text)).parse()


# --- the tree -> torch ----------------------------------------------------------------------------


def _compile(node: Node) -> Compiled:
    if isinstance(node, Num):
        value = node.value
        return lambda x, y: value
    if isinstance(node, Var):
        return (lambda x, y: x) if node.name == "x" else (lambda x, y: y)
    if isinstance(node, Neg):
        inner = _compile(node.operand)
        return lambda x, y: -inner(x, y)
    if isinstance(node, BinOp):
        left, right = _compile(node.left), _compile(node.right)
        op = node.op
        if op == "+":
            return lambda x, y: left(x, y) + right(x, y)
        if op == "-":
            return lambda x, y: left(x, y) - right(x, y)
        if op == "*":
            return lambda x, y: left(x, y) * right(x, y)
        if op == "/":
            return lambda x, y: _divide(left(x, y), right(x, y), x)
        return lambda x, y: _power(left(x, y), right(x, y), x)
    fn = FUNCTIONS[node.function][1]
    args = [_compile(a) for a in node.args]
    if len(args) == 1:
        (arg,) = args
        return lambda x, y: fn(_as_tensor(arg(x, y), x))
    a, b = args
    return lambda x, y: fn(_as_tensor(a(x, y), x), _as_tensor(b(x, y), x))


def _divide(a: Value, b: Value, like: Tensor) -> Value:
    # Python floats would raise ZeroDivisionError; torch gives inf/nan like the tensor case.
    if isinstance(a, float) and isinstance(b, float):
        return float(_as_tensor(a, like) / b)
    return a / b


def _power(a: Value, b: Value, like: Tensor) -> Value:
    # Python float ** float can overflow (OverflowError) or turn complex; torch stays real.
    if isinstance(a, float) and isinstance(b, float):
        return float(torch.pow(_as_tensor(a, like), b))
    return a**b


@dataclass(frozen=True)
class Formula:
    """A parsed formula: callable as f(x, y) on float64 tensors of any (matching) shape."""

    text: str
    tree: Node
    _fn: Compiled = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_fn", _compile(self.tree))

    def __call__(self, x: Tensor, y: Tensor) -> Tensor:
        result = self._fn(x, y)
        # torch.broadcast_shapes is Python code (~13 us): skip it for the optimizer's case, two
        # 0-d leaves, where it was a few percent of every step.
        shape = x.shape if x.shape == y.shape else torch.broadcast_shapes(x.shape, y.shape)
        if isinstance(result, Tensor):
            return result if result.shape == shape \
                else result.expand(torch.broadcast_shapes(shape, result.shape))
        # A formula without x or y: a constant surface.
        return torch.full(shape, result, dtype=x.dtype)

    @property
    def variables(self) -> set[str]:
        return _variables(self.tree)


def _variables(node: Node) -> set[str]:
    if isinstance(node, Var):
        return {node.name}
    if isinstance(node, Neg):
        return _variables(node.operand)
    if isinstance(node, BinOp):
        return _variables(node.left) | _variables(node.right)
    if isinstance(node, Call):
        return set().union(*(_variables(a) for a in node.args))
    return set()


def compile_formula(text: str) -> Formula:
    """Parse `text` and return a Formula. Raises FormulaError for anything outside the grammar."""
    tree = parse(text)
    return Formula(text.strip(), tree)
