"""The user's formula text -> a differentiable torch function of (x, y).

The text is tokenized and parsed by a small recursive-descent parser into a tree; the tree is then
turned into nested Python closures that call torch. Nothing in the text is ever executed, so a
formula can only ever do what the grammar allows:

    expr    := term (('+' | '-') term)*
    term    := unary (('*' | '/') unary)*
    unary   := ('-' | '+') unary | power
    power   := atom (('**' | '^') unary)?          right-associative: 2**3**2 = 2**9
    atom    := NUMBER | 'x' | 'y' | 'pi' | 'e' | FUNCTION '(' expr (',' expr)* ')' | '(' expr ')'

`-x**2` is `-(x**2)`, as in Python. `^` is accepted as a synonym for `**`, and the minus sign
U+2212 (what a copy from a web page or a PDF gives) as `-`. Digits are ASCII 0-9 only.

A chain `a + b - c + ...` (or `a * b / c * ...`) is one flat node, evaluated left to right in a
loop, not a left-leaning tree as deep as the chain is long: so the depth of the tree, of the
evaluation and of every comparison of trees is bounded by the nesting depth (MAX_DEPTH), however
long the formula. A Formula compares, hashes and prints by its text, never by walking its tree.
"""

from __future__ import annotations

import math
import operator
import re
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import torch
from torch import Tensor

from core.errors import FormulaError

MAX_LENGTH = 2000
MAX_DEPTH = 60
MAX_TOKENS = 1000
REPR_CHARS = 60  # a Formula's repr shows at most this much of its text

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

# [0-9], not \d: \d also matches Arabic-Indic, Devanagari, fullwidth... digits, which float()
# would then read as numbers the user may not have meant (x*\u0663 is x*3).
_TOKEN = re.compile(
    r"""
    (?P<space>\s+)
  | (?P<number>(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?)
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


# The minus sign U+2212 is what pasting "x − y" from a web page, a PDF or a word processor gives:
# it can only mean '-', so it is read as '-' (one character for one: columns stay right).
UNICODE_MINUS = "\u2212"

# Characters that look like the grammar's but are not: what to type instead.
LOOKALIKES: dict[str, str] = {
    **dict.fromkeys("\u00d7\u22c5\u00b7\u2219\u2217\uff0a", "write * for a product"),
    **dict.fromkeys("\u00f7\u2215\uff0f", "write / for a division"),
    **dict.fromkeys("\u2010\u2011\u2012\u2013\u2014\u2015\ufe63\uff0d",
                    "write - for a minus"),
    **dict.fromkeys("\u00b2\u00b3\u00b9\u2070\u2074\u2075\u2076\u2077\u2078\u2079",
                    "write x**2 for a power"),
    "\u221a": "write sqrt(...)",
    "\u03c0": "write pi",
    "\uff0b": "write + for a sum",
}


def _hint(ch: str) -> str:
    """Why `ch` is not in the grammar, and what to type instead (or "")."""
    if ch == ".":
        return ": attributes are not allowed"
    if ch in "'\"":
        return ": strings are not allowed"
    if ch in "[]{}":
        return ": only ( ) brackets are allowed"
    if ch in LOOKALIKES:
        return f" ({unicode_name(ch)}): {LOOKALIKES[ch]}"
    if ch.isdecimal():  # a digit of another script: 0-9 only, so no number is misread
        return f" ({unicode_name(ch)}): write digits as 0-9 (here {unicodedata.decimal(ch)})"
    if not ch.isascii() and ch.isprintable():
        return f" ({unicode_name(ch)}): formulas are written in plain ASCII"
    return ""


def unicode_name(ch: str) -> str:
    return unicodedata.name(ch, f"U+{ord(ch):04X}").lower()


def tokenize(text: str) -> list[Token]:
    """Split `text` into tokens; raise FormulaError at the first character outside the grammar."""
    return scan(text, _TOKEN, FormulaError, _hint, MAX_TOKENS, "formula")


def scan(text: str, pattern: re.Pattern[str], error: Callable[[str, int], Exception],
         hint: Callable[[str], str], max_tokens: int, what: str) -> list[Token]:
    """Tokens of `text` by `pattern` (named groups: the token kinds; "space" is dropped), ending
    with an "end" token. The minus sign U+2212 is read as '-', one character for one, so columns
    stay right. Raises `error(message, column)` at a character outside the grammar (with
    `hint(ch)`) or past `max_tokens`. Shared by formulas and the autograd lab's expressions."""
    text = text.replace(UNICODE_MINUS, "-")
    tokens: list[Token] = []
    pos = 0
    while pos < len(text):
        m = pattern.match(text, pos)
        if m is None:
            ch = text[pos]
            raise error(f"unexpected character {ch!r}{hint(ch)}", pos + 1)
        kind = m.lastgroup or ""
        if kind != "space":
            tokens.append(Token(kind, m.group(), pos + 1))
            if len(tokens) > max_tokens:
                raise error(f"{what} is too long (more than {max_tokens} tokens)", pos + 1)
        pos = m.end()
    tokens.append(Token("end", "", len(text) + 1))
    return tokens


# --- the tree -----------------------------------------------------------------------------------


class _TreeNode:
    """What every node of the tree shares: `==`, `hash` and `repr` that never recurse.

    A dataclass's own `==` and `repr` recurse through the children, several interpreter frames a
    level; a walk with an explicit stack keeps them flat whatever the formula.
    """

    __slots__ = ()

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, _TreeNode):
            return NotImplemented
        return _flatten(self) == _flatten(other)  # type: ignore[arg-type]

    def __hash__(self) -> int:
        return hash(_flatten(self))  # type: ignore[arg-type]

    def __repr__(self) -> str:
        return f"{type(self).__name__}(<{len(_flatten(self)) // 2} nodes>)"  # type: ignore


@dataclass(frozen=True)
class Num(_TreeNode):
    value: float


@dataclass(frozen=True)
class Var(_TreeNode):
    name: str


@dataclass(frozen=True, eq=False, repr=False)
class Neg(_TreeNode):
    operand: Node


@dataclass(frozen=True, eq=False, repr=False)
class BinOp(_TreeNode):
    op: str  # "**" (sums and products are Chains)
    left: Node
    right: Node


@dataclass(frozen=True, eq=False, repr=False)
class Chain(_TreeNode):
    """`first op1 t1 op2 t2 ...`, evaluated left to right: ((first op1 t1) op2 t2) ...

    The ops are all + / - (a sum) or all * / / (a product). Flat, so that a 500-term sum is one
    level deep, not 500.
    """

    first: Node
    rest: tuple[tuple[str, Node], ...]


@dataclass(frozen=True, eq=False, repr=False)
class Call(_TreeNode):
    function: str
    args: tuple[Node, ...]


Node = Num | Var | Neg | BinOp | Chain | Call


def _flatten(tree: Node) -> tuple:
    """The tree in prefix order as one flat tuple (two entries a node): equal trees, equal tuples.

    Each node gives its kind and its own data (value, name, operators, arity), its children
    follow; the arity in each entry makes the flattening unambiguous.
    """
    out: list[object] = []
    stack: list[Node] = [tree]
    while stack:
        node = stack.pop()
        if isinstance(node, Num):
            out += ("num", node.value)
        elif isinstance(node, Var):
            out += ("var", node.name)
        elif isinstance(node, Neg):
            out += ("neg", None)
            stack.append(node.operand)
        elif isinstance(node, BinOp):
            out += ("pow", node.op)
            stack += (node.right, node.left)
        elif isinstance(node, Chain):
            out += ("chain", tuple(op for op, _ in node.rest))
            stack += reversed([node.first, *(term for _, term in node.rest)])
        else:
            out += ("call", (node.function, len(node.args)))
            stack += reversed(node.args)
    return tuple(out)


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
        first = self.term()
        rest: list[tuple[str, Node]] = []
        while self.tok.text in ("+", "-"):
            op = self.advance().text
            rest.append((op, self.term()))
        self.depth -= 1
        return Chain(first, tuple(rest)) if rest else first

    def term(self) -> Node:
        first = self.unary()
        rest: list[tuple[str, Node]] = []
        while self.tok.text in ("*", "/"):
            op = self.advance().text
            rest.append((op, self.unary()))
        return Chain(first, tuple(rest)) if rest else first

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
    # Recursion here and in the closures is bounded by the nesting depth (chains are flat); plain
    # loops rather than comprehensions, which would add an interpreter frame a level.
    if isinstance(node, Num):
        value = node.value
        return lambda x, y: value
    if isinstance(node, Var):
        return (lambda x, y: x) if node.name == "x" else (lambda x, y: y)
    if isinstance(node, Neg):
        inner = _compile(node.operand)
        return lambda x, y: -inner(x, y)
    if isinstance(node, Chain):
        first = _compile(node.first)
        steps: list[tuple[Callable[[Value, Value, Tensor], Value], Compiled]] = []
        for op, term in node.rest:
            steps.append((_CHAIN_OPS[op], _compile(term)))
        return _chain(first, steps)
    if isinstance(node, BinOp):
        left, right = _compile(node.left), _compile(node.right)
        return lambda x, y: _power(left(x, y), right(x, y), x)
    fn = FUNCTIONS[node.function][1]
    if len(node.args) == 1:
        arg = _compile(node.args[0])
        return lambda x, y: fn(_as_tensor(arg(x, y), x))
    a, b = _compile(node.args[0]), _compile(node.args[1])
    return lambda x, y: fn(_as_tensor(a(x, y), x), _as_tensor(b(x, y), x))


# The chain operators, as (a, b, like) -> a op b; "/" keeps float / float from raising.
_CHAIN_OPS: dict[str, Callable[[Value, Value, Tensor], Value]] = {
    "+": lambda a, b, like: a + b,
    "-": lambda a, b, like: a - b,
    "*": lambda a, b, like: a * b,
    "/": lambda a, b, like: _divide(a, b, like),
}
_PLAIN_OPS: dict[Callable, Callable[[Value, Value], Value]] = {
    _CHAIN_OPS["+"]: operator.add, _CHAIN_OPS["-"]: operator.sub, _CHAIN_OPS["*"]: operator.mul}


def _chain(first: Compiled, steps: list[tuple[Callable[[Value, Value, Tensor], Value], Compiled]]
           ) -> Compiled:
    """A chain as one loop: a 500-term sum is one closure, not 500 nested ones."""
    if all(apply in _PLAIN_OPS for apply, _ in steps):
        # No division: call operator.add / sub / mul directly, one call a term fewer.
        plain = [(_PLAIN_OPS[apply], term) for apply, term in steps]

        def chain(x: Tensor, y: Tensor) -> Value:
            acc = first(x, y)
            for apply, term in plain:
                acc = apply(acc, term(x, y))
            return acc
        return chain

    def chain_with_division(x: Tensor, y: Tensor) -> Value:
        acc = first(x, y)
        for apply, term in steps:
            acc = apply(acc, term(x, y), x)
        return acc
    return chain_with_division


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


@dataclass(frozen=True, eq=False, repr=False)
class Formula:
    """A parsed formula: callable as f(x, y) on float64 tensors of any (matching) shape.

    Equal, hashed and printed by its text: the text determines the tree, and walking a tree of
    up to 1000 tokens for `==`, `hash` or `repr` would be slow and deep for nothing.
    """

    text: str
    tree: Node
    _fn: Compiled = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_fn", _compile(self.tree))

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Formula):
            return NotImplemented
        return self.text == other.text

    def __hash__(self) -> int:
        return hash(("Formula", self.text))

    def __repr__(self) -> str:
        text = self.text if len(self.text) <= REPR_CHARS else \
            f"{self.text[:REPR_CHARS - 3]}... ({len(self.text)} characters)"
        return f"Formula({text!r})"

    # Immutable, so a copy is the formula itself; pickled as its text (closures do not pickle,
    # and copying the tree node by node would recurse as deep as it is).
    def __copy__(self) -> Formula:
        return self

    def __deepcopy__(self, memo: dict) -> Formula:
        return self

    def __reduce__(self) -> tuple:
        return (compile_formula, (self.text,))

    def __call__(self, x: Tensor, y: Tensor) -> Tensor:
        result = self._fn(x, y)
        # torch.broadcast_shapes is Python code (~13 us): skip it for the optimizer's case, two
        # 0-d leaves, where it was a few percent of every step.
        shape = x.shape if x.shape == y.shape else _broadcast(x.shape, y.shape)
        if isinstance(result, Tensor):
            return result if result.shape == shape \
                else result.expand(_broadcast(shape, result.shape))
        # A formula without x or y: a constant surface.
        return torch.full(shape, result, dtype=x.dtype)

    @property
    def variables(self) -> set[str]:
        return _variables(self.tree)


def _broadcast(a: torch.Size, b: torch.Size) -> torch.Size:
    """torch.broadcast_shapes without its cost: its first call imports torch._refs and sympy
    (~0.4 s before the window's first paint); numpy's rule is the same."""
    return torch.Size(np.broadcast_shapes(tuple(a), tuple(b)))


def _variables(tree: Node) -> set[str]:
    # A walk with an explicit stack: no recursion at all.
    found: set[str] = set()
    stack: list[Node] = [tree]
    while stack:
        node = stack.pop()
        if isinstance(node, Var):
            found.add(node.name)
        elif isinstance(node, Neg):
            stack.append(node.operand)
        elif isinstance(node, BinOp):
            stack += (node.left, node.right)
        elif isinstance(node, Chain):
            stack.append(node.first)
            stack += (term for _, term in node.rest)
        elif isinstance(node, Call):
            stack += node.args
    return found


def compile_formula(text: str) -> Formula:
    """Parse `text` and return a Formula. Raises FormulaError for anything outside the grammar."""
    tree = parse(text)
    # The text kept (shown, saved in sessions) is the one that was read: U+2212 becomes '-'.
    return Formula(text.strip().replace(UNICODE_MINUS, "-"), tree)
