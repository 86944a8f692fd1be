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
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass

import torch
from torch import Tensor

from core.lab.values import DTYPE, LabError

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

_TOKEN = re.compile(
    r"""
    (?P<space>\s+)
  | (?P<number>(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?)
  | (?P<name>[A-Za-z_][A-Za-z_0-9]*)
  | (?P<op>\*\*|[-+*/@()\[\],;=.])
    """,
    re.VERBOSE,
)


@dataclass(frozen=True)
class Token:
    kind: str  # "number", "name", "op", "end"
    text: str
    column: int  # 1-based


def tokenize(text: str) -> list[Token]:
    """Split `text` into tokens; raise LabError at the first character outside the grammar."""
    tokens: list[Token] = []
    pos = 0
    while pos < len(text):
        m = _TOKEN.match(text, pos)
        if m is None:
            ch = text[pos]
            hint = ""
            if ch == "^":
                hint = ": write ** for a power (^ is XOR in Python)"
            elif ch in "'\"":
                hint = ": strings are not allowed"
            elif ch in "{}":
                hint = ": only ( ) and [ ] brackets are allowed"
            elif ch == ":":
                hint = ": slices are not supported; index one element like a[0]"
            raise LabError(f"unexpected character {ch!r}{hint}", pos + 1)
        kind = m.lastgroup or ""
        if kind != "space":
            tokens.append(Token(kind, m.group(), pos + 1))
            if len(tokens) > MAX_TOKENS:
                raise LabError(f"expression is too long (more than {MAX_TOKENS} tokens)", pos + 1)
        pos = m.end()
    tokens.append(Token("end", "", len(text) + 1))
    return tokens


# --- the tree -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Num:
    value: float
    column: int


@dataclass(frozen=True)
class Ref:
    """A named tensor or an earlier intermediate."""

    name: str
    column: int


@dataclass(frozen=True)
class Neg:
    operand: Node
    column: int


@dataclass(frozen=True)
class BinOp:
    op: str  # one of + - * / ** @
    left: Node
    right: Node
    column: int


@dataclass(frozen=True)
class Call:
    function: str
    args: tuple[Node, ...]
    dim: int | None
    column: int


@dataclass(frozen=True)
class Index:
    operand: Node
    indices: tuple[int, ...]
    column: int


@dataclass(frozen=True)
class Transpose:
    operand: Node
    column: int


Node = Num | Ref | Neg | BinOp | Call | Index | Transpose


@dataclass(frozen=True)
class Statement:
    target: str | None  # None: the bare output expression
    expr: Node
    column: int


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
        node = self.term()
        while self.tok.text in ("+", "-"):
            t = self.advance()
            node = BinOp(t.text, node, self.term(), t.column)
        self.depth -= 1
        return node

    def term(self) -> Node:
        node = self.unary()
        while self.tok.text in ("*", "/", "@"):
            t = self.advance()
            node = BinOp(t.text, node, self.unary(), t.column)
        return node

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
        node = self.atom()
        while self.tok.text in ("[", "."):
            t = self.advance()
            if t.text == ".":
                if self.tok.text != "T":
                    raise LabError("after '.' only T (transpose) is allowed: write a.T; "
                                   "methods and attributes are not", self.tok.column)
                self.advance()
                node = Transpose(node, t.column)
                continue
            indices = [self.integer("an index")]
            while self.tok.text == ",":
                self.advance()
                indices.append(self.integer("an index"))
            if self.tok.text != "]":
                raise LabError(f"missing ']' to close the '[' at column {t.column}",
                               self.tok.column)
            self.advance()
            node = Index(node, tuple(indices), t.column)
        return node

    def integer(self, what: str) -> int:
        sign = 1
        if self.tok.text == "-":
            self.advance()
            sign = -1
        t = self.tok
        if t.kind != "number" or not t.text.isdigit():
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
_OP_NAMES = {"+": "+", "-": "-", "*": "*", "/": "/", "**": "**", "@": "@ (matmul)"}


def _shape(v: Value) -> str:
    return str(tuple(v.shape)) if isinstance(v, Tensor) else "()"


def _eval(node: Node, env: Mapping[str, Tensor]) -> Value:
    try:
        value = _eval_node(node, env)
    except (RuntimeError, IndexError) as e:  # torch's own message: shapes that do not broadcast
        raise LabError(_torch_message(e), node.column) from None
    if isinstance(value, Tensor) and value.numel() > MAX_NODE_ELEMENTS:
        raise LabError(f"a value with shape {tuple(value.shape)} has {value.numel()} elements; "
                       f"the lab allows at most {MAX_NODE_ELEMENTS}", node.column)
    return value


def _eval_node(node: Node, env: Mapping[str, Tensor]) -> Value:
    if isinstance(node, Num):
        return node.value
    if isinstance(node, Ref):
        return env[node.name]
    if isinstance(node, Neg):
        return -_eval(node.operand, env)
    if isinstance(node, BinOp):
        left, right = _eval(node.left, env), _eval(node.right, env)
        if not isinstance(left, Tensor) and not isinstance(right, Tensor):
            # Two Python numbers: compute as torch would on 0-d tensors (no ZeroDivisionError,
            # no complex powers), so every value of the program is a tensor op.
            left = _tensor(left)
        if node.op == "@":
            for side in (left, right):
                if not isinstance(side, Tensor) or side.dim() == 0:
                    raise LabError("@ (matmul) needs vectors or matrices on both sides, not "
                                   "scalars (use * for a scalar)", node.column)
        return _BINARY[node.op](left, right)
    if isinstance(node, Call):
        fn = FUNCTIONS[node.function]
        args = [_tensor(_eval(a, env)) for a in node.args]
        if fn.name == "dot" and any(a.dim() != 1 for a in args):
            shapes = " and ".join(_shape(a) for a in args)
            raise LabError(f"dot takes two vectors (1-D), got shapes {shapes}; use @ for "
                           f"matrices", node.column)
        if node.dim is not None:
            ndim = args[0].dim()
            if not -max(ndim, 1) <= node.dim < max(ndim, 1):
                raise LabError(f"{fn.name}: dim {node.dim} is out of range for shape "
                               f"{_shape(args[0])}", node.column)
        return fn(*args, dim=node.dim)
    if isinstance(node, Index):
        value = _tensor(_eval(node.operand, env))
        if len(node.indices) > value.dim():
            raise LabError(f"{len(node.indices)} indices for a value of shape "
                           f"{_shape(value)}", node.column)
        for k, (i, size) in enumerate(zip(node.indices, value.shape)):
            if not -size <= i < size:
                raise LabError(f"index {i} is out of range for dimension {k} of size {size} "
                               f"(shape {_shape(value)})", node.column)
        return value[node.indices]
    return _transpose(_tensor(_eval(node.operand, env)))


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
        output = _tensor(_eval(statement.expr, env))
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


def _is_number(node: Node) -> bool:
    """Whether the lab evaluates `node` to a Python number (not a tensor)."""
    return isinstance(node, Num) or (isinstance(node, Neg) and _is_number(node.operand))


def _as_tensor_code(node: Node, env: Mapping[str, Tensor]) -> str:
    text, _ = _code(node, env)
    return f"torch.tensor({text}, {_F64})" if _is_number(node) else text


def _wrap(node: Node, env: Mapping[str, Tensor], level: int) -> str:
    text, own = _code(node, env)
    return text if own >= level else f"({text})"


def _code(node: Node, env: Mapping[str, Tensor]) -> tuple[str, int]:
    """(PyTorch code for `node`, its binding level), doing exactly what _eval does."""
    if isinstance(node, Num):
        return repr(node.value), 5
    if isinstance(node, Ref):
        return node.name, 5
    if isinstance(node, Neg):
        return "-" + _wrap(node.operand, env, 3), 3
    if isinstance(node, BinOp):
        level = _LEVEL[node.op]
        if node.op == "**":  # right-associative: the base binds tighter than the exponent
            left = _wrap(node.left, env, 5)
            right = _wrap(node.right, env, 3)
        else:
            left = _wrap(node.left, env, level)
            right = _wrap(node.right, env, level + 1)
        if _is_number(node.left) and _is_number(node.right):
            left = f"torch.tensor({_code(node.left, env)[0]}, {_F64})"  # as _eval computes it
        return f"{left} {node.op} {right}", level
    if isinstance(node, Call):
        fn = FUNCTIONS[node.function]
        args = [_as_tensor_code(a, env) for a in node.args]
        if fn.name == "T":
            return _transpose_code(node.args[0], env)
        dim = fn.default_dim if node.dim is None else node.dim
        if dim is not None:
            args.append(f"dim={dim}")
        return f"{fn.torch_name}({', '.join(args)})", 5
    if isinstance(node, Index):
        base = _wrap(node.operand, env, 5)
        if _is_number(node.operand):
            base = _as_tensor_code(node.operand, env)
        return f"{base}[{', '.join(str(i) for i in node.indices)}]", 5
    return _transpose_code(node.operand, env)


def _transpose_code(operand: Node, env: Mapping[str, Tensor]) -> tuple[str, int]:
    # x.T only for a matrix, as _transpose does: a vector or a scalar is its own transpose.
    if _tensor(_eval(operand, env)).dim() != 2:
        return (_as_tensor_code(operand, env), 5) if _is_number(operand) else _code(operand, env)
    return _wrap(operand, env, 5) + ".T", 5


def torch_lines(program: Program, inputs: Mapping[str, Tensor], output_name: str) -> list[str]:
    """The program as the PyTorch lines a user would type: ['Q = 3.0 * a ** 3.0 - b ** 2.0'].

    `inputs` give the shapes a transpose needs to know (a.T only for matrices).
    """
    env: dict[str, Tensor] = {k: v.detach() for k, v in inputs.items()}
    lines = []
    for i, statement in enumerate(program.statements):
        target = statement.target or output_name
        text = _as_tensor_code(statement.expr, env)
        lines.append(f"{target} = {text}")
        if i < len(program.statements) - 1 and statement.target:
            env[statement.target] = _tensor(_eval(statement.expr, env))
    return lines


def help_text() -> str:
    """One paragraph on the grammar, for tooltips."""
    return ("Named tensors, numbers, pi, e; + - * / ** (element-wise, broadcasting as torch "
            "does), @ (matmul), a[0] / W[1, 0] (one element), a.T or T(a); functions "
            + ", ".join(f for f in FUNCTIONS if f != "T")
            + " (sum, mean, prod, norm, softmax also take a dim: sum(W, 0)). "
            "Name intermediates with ';': h = a * b; Q = sum(h)")
