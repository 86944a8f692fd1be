"""The lab's expression grammar: text -> tokens -> tree (recursive descent) -> torch ops.

Modelled on core/formula.py: the text is parsed, never executed, so it can only do what the
grammar allows, and every error names its column. Over named tensors it adds what PyTorch code
does with them: broadcasting, reductions, `@`, indexing and transpose.

    program   := statement (';' statement)* [';']
    statement := NAME '=' expr | expr              a named intermediate, or the output Q
    expr      := term (('+' | '-') term)*
    term      := unary (('*' | '/' | '@') unary)*  '@' is matmul, as in Python
    unary     := ('-' | '+') unary | power
    power     := postfix ('**' unary)?             right-associative; -a**2 = -(a**2)
    postfix   := atom ('[' INT (',' INT)* ']' | '.T')*
    atom      := NUMBER | NAME | 'pi' | 'e' | FUNCTION '(' args ')' | '(' expr ')'

The last statement is the output: `h = a * b; Q = sum(h)` or just `sum(a * b)`. Every operation
is the torch call a PyTorch user would write (`a * b`, `torch.softmax(a, -1)`, `W.T`), on
float64 tensors, so the values and `grad_fn` names are torch's own.

Digits are ASCII 0-9 only; the minus sign U+2212 (a paste from a web page or a PDF) reads as
`-`, and characters that look like the grammar's (a multiplication or division sign, a
superscript 2, a root sign...) get a hint saying what to type instead.

Nothing here recurses as deep as the program is long: a chain `a + b - c + ...` (or
`a * b / c @ ...`, or `W.T[0].T...`) is one flat node; the tree's `==`, `hash` and `repr` walk it
with an explicit stack; and a statement is evaluated (and turned into PyTorch code) as a flat
list of stack-machine steps. Only the parser recurses, and only as deep as the nesting
(MAX_DEPTH).
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TypeVar

import torch
from torch import Tensor

from core.formula import Token, scan
from core.lab.values import DTYPE, LabError, character_hint

MAX_LENGTH = 2000
MAX_DEPTH = 60
MAX_TOKENS = 1000
MAX_STATEMENTS = 20
MAX_NODE_ELEMENTS = 1024  # any intermediate, e.g. a (64, 1) tensor broadcast against a (1, 64)

CONSTANTS: dict[str, float] = {"pi": math.pi, "e": math.e}


def _transpose(x: Tensor) -> Tensor:
    # W.T for a matrix; a scalar or a vector is its own transpose (as torch.t says), and
    # Tensor.T on them is deprecated in torch.
    return x.T if x.dim() == 2 else x


@dataclass(frozen=True)
class Function:
    """A function of the grammar and the torch function it is.

    `takes_dim`: a `dim` may follow, passed as torch's keyword `dim=` (positionally it would be
    vector_norm's `ord`); `default_dim` is passed when none is given (softmax needs one).
    """

    name: str
    arity: int
    torch_name: str  # as a PyTorch user writes it, for torch_code() and the help text
    apply: Callable[..., Tensor]
    takes_dim: bool = False
    default_dim: int | None = None

    def __call__(self, *args: Tensor, dim: int | None = None) -> Tensor:
        dim = self.default_dim if dim is None else dim
        return self.apply(*args) if dim is None else self.apply(*args, dim=dim)


FUNCTIONS: dict[str, Function] = {f.name: f for f in (
    Function("exp", 1, "torch.exp", torch.exp),
    Function("log", 1, "torch.log", torch.log),
    Function("sin", 1, "torch.sin", torch.sin),
    Function("cos", 1, "torch.cos", torch.cos),
    Function("tan", 1, "torch.tan", torch.tan),
    Function("tanh", 1, "torch.tanh", torch.tanh),
    Function("sqrt", 1, "torch.sqrt", torch.sqrt),
    Function("abs", 1, "torch.abs", torch.abs),
    Function("sigmoid", 1, "torch.sigmoid", torch.sigmoid),
    Function("relu", 1, "torch.relu", torch.relu),
    Function("softmax", 1, "torch.softmax", torch.softmax, True, -1),
    Function("sum", 1, "torch.sum", torch.sum, True),
    Function("mean", 1, "torch.mean", torch.mean, True),
    Function("prod", 1, "torch.prod", torch.prod, True),
    Function("norm", 1, "torch.linalg.vector_norm", torch.linalg.vector_norm, True),
    Function("dot", 2, "torch.dot", torch.dot),
    Function("T", 1, "x.T", _transpose),
)}
RESERVED = frozenset(FUNCTIONS) | frozenset(CONSTANTS)

# [0-9], not \d: \d also matches Arabic-Indic, Devanagari, fullwidth... digits, which float()
# would then read as numbers the user may not have meant (a*\u0663 is a*3).
_TOKEN = re.compile(
    r"""
    (?P<space>\s+)
  | (?P<number>(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?)
  | (?P<name>[A-Za-z_][A-Za-z_0-9]*)
  | (?P<op>\*\*|[-+*/@()\[\],;=.])
    """,
    re.VERBOSE,
)
_WHOLE_NUMBER = re.compile(r"[0-9]+")  # an index or a dim: str.isdigit() would take ² and ٣


def _hint(ch: str) -> str:
    """Why `ch` is not in the grammar, and what to type instead (or "")."""
    if ch == "^":
        return ": write ** for a power (^ is XOR in Python)"
    if ch in "'\"":
        return ": strings are not allowed"
    if ch in "{}":
        return ": only ( ) and [ ] brackets are allowed"
    if ch == ":":
        return ": slices are not supported; index one element like a[0]"
    return character_hint(ch)


def tokenize(text: str) -> list[Token]:
    """Split `text` into tokens; raise LabError at the first character outside the grammar.

    The minus sign U+2212 (a paste of "a \u2212 b") is read as '-', as core/formula.py reads it;
    one character for one, so the columns stay right.
    """
    return scan(text, _TOKEN, LabError, _hint, MAX_TOKENS, "expression")


# --- the tree -----------------------------------------------------------------------------------


class _TreeNode:
    """What every node of the tree shares: `==`, `hash` and `repr` that never recurse.

    A dataclass's own `==`, `hash` and `repr` recurse through the children, several interpreter
    frames a level; a walk with an explicit stack keeps them flat whatever the program. A tree
    never changes, so a copy is the tree itself (copying node by node would recurse too).
    """

    __slots__ = ()

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, _TreeNode):
            return NotImplemented
        return _flatten(self) == _flatten(other)  # type: ignore[arg-type]

    def __hash__(self) -> int:
        return hash(_flatten(self))  # type: ignore[arg-type]

    def __repr__(self) -> str:
        return f"{type(self).__name__}(<{len(_postorder(self))} nodes>)"  # type: ignore[arg-type]

    def __copy__(self) -> _TreeNode:
        return self

    def __deepcopy__(self, memo: dict) -> _TreeNode:  # type: ignore[type-arg]
        return self


@dataclass(frozen=True, eq=False, repr=False)
class Num(_TreeNode):
    value: float
    column: int


@dataclass(frozen=True, eq=False, repr=False)
class Ref(_TreeNode):
    """A named tensor or an earlier intermediate."""

    name: str
    column: int


@dataclass(frozen=True, eq=False, repr=False)
class Neg(_TreeNode):
    operand: Node
    column: int


@dataclass(frozen=True, eq=False, repr=False)
class BinOp(_TreeNode):
    op: str  # "**" (sums and products are Chains)
    left: Node
    right: Node
    column: int


@dataclass(frozen=True, eq=False, repr=False)
class Chain(_TreeNode):
    """`first op1 t1 op2 t2 ...`, evaluated left to right: ((first op1 t1) op2 t2) ...

    The ops are all + / - (a sum) or all * / / / @ (a product); each step keeps its operator's
    column for torch's errors. Flat, so that a 500-term sum is one level deep, not 500.
    """

    first: Node
    rest: tuple[tuple[str, Node, int], ...]  # (op, term, the op's column)
    column: int  # the first operator's


@dataclass(frozen=True, eq=False, repr=False)
class Call(_TreeNode):
    function: str
    args: tuple[Node, ...]
    dim: int | None
    column: int


@dataclass(frozen=True, eq=False, repr=False)
class Postfix(_TreeNode):
    """`operand[i, j].T[0]...`: indexings (a tuple of ints) and transposes (None), left to right.

    Flat for the same reason as Chain: `W.T.T.T...` is one node, however many there are.
    """

    operand: Node
    steps: tuple[tuple[tuple[int, ...] | None, int], ...]  # (indices or None for .T, column)
    column: int  # the first step's


Node = Num | Ref | Neg | BinOp | Chain | Call | Postfix


def _children(node: Node) -> tuple[Node, ...]:
    if isinstance(node, (Num, Ref)):
        return ()
    if isinstance(node, (Neg, Postfix)):
        return (node.operand,)
    if isinstance(node, BinOp):
        return (node.left, node.right)
    if isinstance(node, Chain):
        return (node.first, *(term for _, term, _ in node.rest))
    return node.args


def _postorder(tree: Node) -> list[Node]:
    """Every node of `tree`, children (left to right) before their parent, without recursion."""
    order: list[Node] = []
    stack: list[Node] = [tree]
    while stack:
        node = stack.pop()
        order.append(node)
        stack.extend(_children(node))
    order.reverse()  # node, last child's subtree, ..., first child's, reversed: post-order
    return order


def _own_data(node: Node) -> tuple[object, ...]:
    """A node's kind and data, without its children."""
    if isinstance(node, Num):
        return ("num", node.value, node.column)
    if isinstance(node, Ref):
        return ("ref", node.name, node.column)
    if isinstance(node, Neg):
        return ("neg", node.column)
    if isinstance(node, BinOp):
        return ("binop", node.op, node.column)
    if isinstance(node, Chain):
        return ("chain", tuple((op, col) for op, _, col in node.rest), node.column)
    if isinstance(node, Call):
        return ("call", node.function, len(node.args), node.dim, node.column)
    return ("postfix", node.steps, node.column)


def _flatten(tree: Node) -> tuple[object, ...]:
    """The tree in post-order as one flat tuple: equal trees, equal tuples.

    Each node's data includes how many children it has, so the flattening is unambiguous.
    """
    return tuple(_own_data(node) for node in _postorder(tree))


@dataclass(frozen=True)
class Statement:
    """`target = expr` (target None: the bare output expression)."""

    target: str | None
    expr: Node
    column: int
    steps: tuple[Step, ...] = field(init=False, compare=False, repr=False)

    def __post_init__(self) -> None:
        # Flattened once here: every forward pass (and a Jacobian runs several) reuses it.
        object.__setattr__(self, "steps", _steps(self.expr))


@dataclass(frozen=True)
class Program:
    """A parsed program: statements in order; the last one's value is the output."""

    text: str
    statements: tuple[Statement, ...]

    @property
    def output_name(self) -> str:
        """The output's name in the calls shown: the last assignment's target, else Q."""
        return self.statements[-1].target or "Q"

    @property
    def intermediates(self) -> list[str]:
        """Names given to values before the output (candidates for retain_grad())."""
        return [s.target for s in self.statements[:-1] if s.target]

    # Immutable: a copy is the program itself (a node-by-node copy would recurse as deep as
    # the tree).
    def __copy__(self) -> Program:
        return self

    def __deepcopy__(self, memo: dict) -> Program:  # type: ignore[type-arg]
        return self


class _Parser:
    def __init__(self, tokens: list[Token], names: set[str]) -> None:
        self.tokens = tokens
        self.i = 0
        self.depth = 0
        self.names = set(names)  # grows as statements name intermediates
        self.inputs = frozenset(names)

    @property
    def tok(self) -> Token:
        return self.tokens[self.i]

    def advance(self) -> Token:
        t = self.tokens[self.i]
        self.i += 1
        return t

    def enter(self) -> None:
        self.depth += 1
        if self.depth > MAX_DEPTH:
            raise LabError(f"expression is nested too deeply (more than {MAX_DEPTH} levels)",
                           self.tok.column)

    def program(self) -> list[Statement]:
        statements = [self.statement()]
        while self.tok.text == ";":
            self.advance()
            if self.tok.kind == "end":
                break
            if len(statements) >= MAX_STATEMENTS:
                raise LabError(f"at most {MAX_STATEMENTS} statements", self.tok.column)
            if statements[-1].target is None:
                raise LabError("only the last statement may be a bare expression; name the "
                               "others (h = ...)", statements[-1].column)
            statements.append(self.statement())
        if self.tok.kind != "end":
            t = self.tok
            if t.kind in ("number", "name") or t.text == "(":
                raise LabError(f"missing operator before {_describe(t)} (write * for a product "
                               f"or ; between statements)", t.column)
            raise LabError(f"unexpected {_describe(t)}", t.column)
        return statements

    def statement(self) -> Statement:
        start = self.tok
        nxt = self.tokens[self.i + 1] if self.i + 1 < len(self.tokens) else start
        if start.kind == "name" and nxt.text == "=":
            name = start.text
            if name in RESERVED:
                raise LabError(f"{name!r} is a function or constant; pick another name",
                               start.column)
            if name in self.inputs:
                raise LabError(f"{name!r} is an input tensor; give the result another name",
                               start.column)
            if name in self.names:
                raise LabError(f"{name!r} is already defined; each name is set once",
                               start.column)
            self.advance()
            self.advance()
            expr = self.expr()
            self.names.add(name)
            return Statement(name, expr, start.column)
        return Statement(None, self.expr(), start.column)

    def expr(self) -> Node:
        self.enter()
        first = self.term()
        rest: list[tuple[str, Node, int]] = []
        while self.tok.text in ("+", "-"):
            t = self.advance()
            rest.append((t.text, self.term(), t.column))
        self.depth -= 1
        return Chain(first, tuple(rest), rest[0][2]) if rest else first

    def term(self) -> Node:
        first = self.unary()
        rest: list[tuple[str, Node, int]] = []
        while self.tok.text in ("*", "/", "@"):
            t = self.advance()
            rest.append((t.text, self.unary(), t.column))
        return Chain(first, tuple(rest), rest[0][2]) if rest else first

    def unary(self) -> Node:
        if self.tok.text in ("-", "+"):
            self.enter()
            t = self.advance()
            operand = self.unary()
            self.depth -= 1
            return Neg(operand, t.column) if t.text == "-" else operand
        return self.power()

    def power(self) -> Node:
        base = self.postfix()
        if self.tok.text == "**":
            t = self.advance()
            self.enter()
            exponent = self.unary()
            self.depth -= 1
            return BinOp("**", base, exponent, t.column)
        return base

    def postfix(self) -> Node:
        operand = self.atom()
        steps: list[tuple[tuple[int, ...] | None, int]] = []
        while self.tok.text in ("[", "."):
            t = self.advance()
            if t.text == ".":
                if self.tok.text != "T":
                    raise LabError("after '.' only T (transpose) is allowed: write a.T; "
                                   "methods and attributes are not", self.tok.column)
                self.advance()
                steps.append((None, t.column))
                continue
            indices = [self.integer("an index")]
            while self.tok.text == ",":
                self.advance()
                indices.append(self.integer("an index"))
            if self.tok.text != "]":
                raise LabError(f"missing ']' to close the '[' at column {t.column}",
                               self.tok.column)
            self.advance()
            steps.append((tuple(indices), t.column))
        return Postfix(operand, tuple(steps), steps[0][1]) if steps else operand

    def integer(self, what: str) -> int:
        sign = 1
        if self.tok.text == "-":
            self.advance()
            sign = -1
        t = self.tok
        if t.kind != "number" or not _WHOLE_NUMBER.fullmatch(t.text):
            hint = " (slices are not supported)" if t.text in (":", "]") else ""
            raise LabError(f"{what} must be a whole number like 0 or -1, found {_describe(t)}"
                           f"{hint}", t.column)
        self.advance()
        return sign * int(t.text)

    def atom(self) -> Node:
        t = self.tok
        if t.kind == "number":
            self.advance()
            value = float(t.text)
            if not math.isfinite(value):
                raise LabError(f"number {t.text} is too large", t.column)
            return Num(value, t.column)
        if t.kind == "name":
            self.advance()
            if t.text in FUNCTIONS:
                return self.call(t)
            if self.tok.text == "(":
                raise LabError(f"{t.text!r} is not a function; functions are: "
                               + ", ".join(FUNCTIONS), t.column)
            if t.text in self.names:
                return Ref(t.text, t.column)
            if t.text in CONSTANTS:
                return Num(CONSTANTS[t.text], t.column)
            known = ", ".join(sorted(self.names)) or "none yet"
            raise LabError(f"unknown name {t.text!r}; tensors and intermediates: {known}",
                           t.column)
        if t.text == "(":
            self.advance()
            node = self.expr()
            if self.tok.text != ")":
                raise LabError(f"missing ')' to close the '(' at column {t.column}",
                               self.tok.column)
            self.advance()
            return node
        if t.kind == "end":
            raise LabError("expression ends too early: a value is missing", t.column)
        raise LabError(f"expected a number, a tensor name or '(' but found {_describe(t)}",
                       t.column)

    def call(self, name_tok: Token) -> Node:
        fn = FUNCTIONS[name_tok.text]
        if self.tok.text != "(":
            raise LabError(f"{fn.name} is a function: write {fn.name}(...)", name_tok.column)
        self.advance()
        args = [self.expr()]
        dim: int | None = None
        while self.tok.text == ",":
            self.advance()
            if len(args) == fn.arity and fn.takes_dim and dim is None:
                dim = self.integer(f"{fn.name}'s dim")
            else:
                args.append(self.expr())
        if self.tok.text != ")":
            raise LabError(f"missing ')' to close {fn.name}(", self.tok.column)
        self.advance()
        if len(args) != fn.arity:
            usage = f"{fn.name}(x)" if fn.arity == 1 else f"{fn.name}(x, y)"
            if fn.takes_dim:
                usage += f" or {fn.name}(x, dim)"
            raise LabError(f"{fn.name} takes {fn.arity} tensor argument"
                           f"{'s' if fn.arity > 1 else ''}: {usage}", name_tok.column)
        return Call(fn.name, tuple(args), dim, name_tok.column)


def _describe(t: Token) -> str:
    return "the end of the expression" if t.kind == "end" else repr(t.text)


def parse_program(text: str, tensor_names: set[str] | list[str]) -> Program:
    """Parse `text` over the given input tensor names. Raises LabError (never anything else)."""
    if not isinstance(text, str):
        raise LabError("an expression must be text")
    if len(text) > MAX_LENGTH:
        raise LabError(f"expression is too long ({len(text)} characters; at most {MAX_LENGTH})")
    if not text.strip():
        raise LabError("expression is empty: write one like 3*a**3 - b**2")
    statements = _Parser(tokenize(text), set(tensor_names)).program()
    return Program(text.strip(), tuple(statements))


# --- the tree -> torch ----------------------------------------------------------------------------


Value = Tensor | float


def _tensor(v: Value) -> Tensor:
    return v if isinstance(v, Tensor) else torch.tensor(v, dtype=DTYPE)


_BINARY: dict[str, Callable[[Value, Value], Value]] = {
    "+": lambda a, b: a + b,
    "-": lambda a, b: a - b,
    "*": lambda a, b: a * b,
    "/": lambda a, b: a / b,
    "**": lambda a, b: a**b,
    "@": lambda a, b: a @ b,  # type: ignore[operator]
}


def _shape(v: Value) -> str:
    return str(tuple(v.shape)) if isinstance(v, Tensor) else "()"


def _checked(value: Value, column: int) -> Value:
    """`value`, if it is within the lab's size limit."""
    if isinstance(value, Tensor) and value.numel() > MAX_NODE_ELEMENTS:
        raise LabError(f"a value with shape {tuple(value.shape)} has {value.numel()} elements; "
                       f"the lab allows at most {MAX_NODE_ELEMENTS}", column)
    return value


def _python_number(op: str, left: float, right: float) -> float | None:
    """`left op right` as Python computes it on two floats, or None where Python would raise
    (1 / 0, 0 ** -1, an overflowing power) or give a complex number ((-8) ** (1/3))."""
    if op == "@":
        return None
    try:
        value = _BINARY[op](left, right)
    except (ArithmeticError, ValueError):  # ZeroDivisionError, OverflowError
        return None
    return value if isinstance(value, float) else None


def _binary(op: str, left: Value, right: Value, column: int) -> Value:
    """`left op right` as torch computes it; torch's errors are LabErrors at the operator."""
    if not isinstance(left, Tensor) and not isinstance(right, Tensor):
        # Two Python numbers: Python's own float arithmetic, as the same code would do, so the
        # result stays a Python number. That matters later: `(2.0 + 2.0) / t` is then
        # `4.0 / t`, torch's __rtruediv__ (t.reciprocal() * 4.0), not a tensor division by a
        # 0-d tensor(4.), whose backward rounds differently. Only where Python would raise or
        # go complex (1 / 0, (-8) ** (1/3)) is it computed as torch does on 0-d tensors
        # (inf, nan), and the code shown says so (torch.tensor(1.0) / 0.0).
        number = _python_number(op, left, right)
        if number is not None:
            return number
        left = _tensor(left)
    if op == "@":
        for side in (left, right):
            if not isinstance(side, Tensor) or side.dim() == 0:
                raise LabError("@ (matmul) needs vectors or matrices on both sides, not "
                               "scalars (use * for a scalar)", column)
    try:
        return _checked(_BINARY[op](left, right), column)
    except (RuntimeError, IndexError) as e:  # torch's own message: shapes that do not broadcast
        raise LabError(_torch_message(e), column) from None


def _call(node: Call, args: list[Tensor]) -> Tensor:
    fn = FUNCTIONS[node.function]
    if fn.name == "dot" and any(a.dim() != 1 for a in args):
        shapes = " and ".join(_shape(a) for a in args)
        raise LabError(f"dot takes two vectors (1-D), got shapes {shapes}; use @ for "
                       f"matrices", node.column)
    if node.dim is not None:
        ndim = args[0].dim()
        if not -max(ndim, 1) <= node.dim < max(ndim, 1):
            raise LabError(f"{fn.name}: dim {node.dim} is out of range for shape "
                           f"{_shape(args[0])}", node.column)
    try:
        return _checked(fn(*args, dim=node.dim), node.column)  # type: ignore[return-value]
    except (RuntimeError, IndexError) as e:
        raise LabError(_torch_message(e), node.column) from None


def _index(value: Tensor, indices: tuple[int, ...], column: int) -> Tensor:
    if len(indices) > value.dim():
        raise LabError(f"{len(indices)} indices for a value of shape {_shape(value)}", column)
    for k, (i, size) in enumerate(zip(indices, value.shape)):
        if not -size <= i < size:
            raise LabError(f"index {i} is out of range for dimension {k} of size {size} "
                           f"(shape {_shape(value)})", column)
    return value[indices]


def _apply(node: Node, args: list[Value], env: Mapping[str, Tensor]) -> Value:
    """One node's value from its children's values (`args`, in order); not a Chain's (its
    terms are folded in one by one: see _steps)."""
    if isinstance(node, Num):
        return node.value
    if isinstance(node, Ref):
        return env[node.name]
    if isinstance(node, Neg):
        return -args[0]
    if isinstance(node, BinOp):
        return _binary(node.op, args[0], args[1], node.column)
    if isinstance(node, Call):
        return _call(node, [_tensor(a) for a in args])
    value = _tensor(args[0])
    for indices, column in node.steps:
        value = _transpose(value) if indices is None else _index(value, indices, column)
    return value


R = TypeVar("R")
# One step of a statement's evaluation: (node, how many values it takes from the stack), or
# (None, (op, column)) to fold the top value into the one below it as a chain's next term.
Step = tuple[Node, int] | tuple[None, tuple[str, int]]


def _steps(tree: Node) -> tuple[Step, ...]:
    """`tree` as a flat list of stack-machine steps, in Python's order for the same code.

    Children left to right before their parent; a chain `a + b*c + d` adds a and b*c before it
    computes d, as Python does. So torch records the operations in the order the lab's PyTorch
    code would, and autograd sums a leaf's gradients in the same order, bit for bit. Built with
    an explicit stack: no recursion, however deep the tree.
    """
    steps: list[Step] = []
    todo: list[Node | Step] = [tree]  # nodes to expand, or finished steps to emit
    while todo:
        item = todo.pop()
        if isinstance(item, tuple):
            steps.append(item)
        elif isinstance(item, Chain):
            later: list[Node | Step] = [item.first]
            for op, term, column in item.rest:
                later += (term, (None, (op, column)))
            todo.extend(reversed(later))
        else:
            children = _children(item)
            todo.append((item, len(children)))
            todo.extend(reversed(children))
    return tuple(steps)


def _run(steps: tuple[Step, ...], combine: Callable[[Node, list[R]], R],
         fold: Callable[[str, R, R, int], R]) -> R:
    """Run `steps` on a stack: `combine(node, its children's results)` for a node, and
    `fold(op, so far, term, the op's column)` for a chain's next term."""
    stack: list[R] = []
    for node, arg in steps:
        if node is None:
            op, column = arg  # type: ignore[misc]
            term = stack.pop()
            stack[-1] = fold(op, stack[-1], term, column)
        elif arg:
            args = stack[-arg:]  # type: ignore[index]
            del stack[-arg:]  # type: ignore[index]
            stack.append(combine(node, args))
        else:
            stack.append(combine(node, []))
    return stack[0]


def _eval(steps: tuple[Step, ...], env: Mapping[str, Tensor]) -> Value:
    """The value of a statement's steps (see _steps)."""
    return _run(steps, lambda node, args: _apply(node, args, env), _binary)


def _torch_message(e: BaseException) -> str:
    return str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__


def run_program(program: Program, inputs: Mapping[str, Tensor]) -> tuple[Tensor, dict[str, Tensor]]:
    """Evaluate `program` on `inputs`: (the output, {intermediate name: its tensor}).

    Raises LabError with the column for torch's errors (shapes that do not broadcast, ...).
    """
    env: dict[str, Tensor] = dict(inputs)
    intermediates: dict[str, Tensor] = {}
    output: Tensor | None = None
    for statement in program.statements:
        output = _tensor(_eval(statement.steps, env))
        if statement.target:
            env[statement.target] = output
            intermediates[statement.target] = output
    assert output is not None  # a program has at least one statement
    if program.statements[-1].target:
        del intermediates[program.statements[-1].target]
    return output, intermediates


# --- the tree -> PyTorch code ------------------------------------------------------------------

# Python's binding strength: + - < * / @ < unary - < ** < indexing, calls, names and numbers
_LEVEL = {"+": 1, "-": 1, "*": 2, "/": 2, "@": 2, "**": 4}
_F64 = "dtype=torch.float64"


@dataclass(frozen=True)
class _Code:
    """A node as PyTorch code: its text, its binding level, and the value _eval gives it (the
    code must do exactly what _eval does: a Python number stays one, x.T only for matrices)."""

    text: str
    level: int
    value: Value

    def wrapped(self, level: int) -> str:
        """The text, in parentheses unless it binds at least as tightly as `level`."""
        return self.text if self.level >= level else f"({self.text})"

    def as_tensor(self) -> str:
        """The text as a tensor: a Python number becomes torch.tensor(...), as _tensor does."""
        return self.text if isinstance(self.value, Tensor) else \
            f"torch.tensor({self.text}, {_F64})"


def _code_of(node: Node, args: list[_Code], env: Mapping[str, Tensor]) -> _Code:
    """One node's code from its children's (a Chain's terms fold with _code_step)."""
    value = _apply(node, [a.value for a in args], env)
    if isinstance(node, Num):
        return _Code(repr(node.value), 5, value)
    if isinstance(node, Ref):
        return _Code(node.name, 5, value)
    if isinstance(node, Neg):
        return _Code("-" + args[0].wrapped(3), 3, value)
    if isinstance(node, BinOp):
        return _code_step(node.op, args[0], args[1], node.column)
    if isinstance(node, Call):
        fn = FUNCTIONS[node.function]
        if fn.name == "T":
            return _transpose_code(args[0], value)
        texts = [a.as_tensor() for a in args]
        dim = fn.default_dim if node.dim is None else node.dim
        if dim is not None:
            texts.append(f"dim={dim}")
        return _Code(f"{fn.torch_name}({', '.join(texts)})", 5, value)
    code = args[0]
    for indices, _ in node.steps:
        if indices is None:
            code = _transpose_code(code, _transpose(_tensor(code.value)))
        else:
            base = code.wrapped(5) if isinstance(code.value, Tensor) else code.as_tensor()
            code = _Code(f"{base}[{', '.join(str(i) for i in indices)}]", 5,
                         _tensor(code.value)[indices])
    return _Code(code.text, code.level, value)


def _code_step(op: str, left: _Code, right: _Code, column: int) -> _Code:
    """`left op right` as code, with the value _binary gives it."""
    level = _LEVEL[op]
    if op == "**":  # right-associative: the base binds tighter than the exponent
        left_text, right_text = left.wrapped(5), right.wrapped(3)
    else:
        left_text, right_text = left.wrapped(level), right.wrapped(level + 1)
    value = _binary(op, left.value, right.value, column)
    if isinstance(value, Tensor) and not isinstance(left.value, Tensor) \
            and not isinstance(right.value, Tensor):
        # two numbers that Python cannot combine (1 / 0): the left one is a tensor, as
        # _binary does; otherwise they stay Python numbers, as in _binary
        left_text = left.as_tensor()
    return _Code(f"{left_text} {op} {right_text}", level, value)


def _transpose_code(operand: _Code, value: Value) -> _Code:
    # x.T only for a matrix, as _transpose does: a vector or a scalar is its own transpose.
    if not isinstance(operand.value, Tensor):
        return _Code(operand.as_tensor(), 5, value)
    if operand.value.dim() != 2:
        return _Code(operand.text, operand.level, value)
    return _Code(operand.wrapped(5) + ".T", 5, value)


def _code(steps: tuple[Step, ...], env: Mapping[str, Tensor]) -> _Code:
    """PyTorch code for a statement's steps, and its value (see _steps: Python's order)."""
    return _run(steps, lambda node, args: _code_of(node, args, env), _code_step)


def torch_lines(program: Program, inputs: Mapping[str, Tensor], output_name: str) -> list[str]:
    """The program as the PyTorch lines a user would type: ['Q = 3.0 * a ** 3.0 - b ** 2.0'].

    `inputs` give the shapes a transpose needs to know (a.T only for matrices).
    """
    env: dict[str, Tensor] = {k: v.detach() for k, v in inputs.items()}
    lines = []
    for statement in program.statements:
        target = statement.target or output_name
        code = _code(statement.steps, env)
        lines.append(f"{target} = {code.as_tensor()}")
        if statement.target:
            env[statement.target] = _tensor(code.value)
    return lines


def help_text() -> str:
    """One paragraph on the grammar, for tooltips."""
    return ("Named tensors, numbers, pi, e; + - * / ** (element-wise, broadcasting as torch "
            "does), @ (matmul), a[0] / W[1, 0] (one element), a.T or T(a); functions "
            + ", ".join(f for f in FUNCTIONS if f != "T")
            + " (sum, mean, prod, norm, softmax also take a dim: sum(W, 0)). "
            "Name intermediates with ';': h = a * b; Q = sum(h)")
