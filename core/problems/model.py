"""Models written as in PyTorch, e.g. ``Linear(2, 16), Tanh(), Linear(16, 1)``, parsed, never run.

The text is read with :mod:`ast` and only literal arguments are accepted (ints, floats, bools,
None, strings, tuples); names must be one of the layers in :data:`LAYERS`. Shapes are checked
layer by layer against the data's number of features, then by a dry forward pass.

Models are built in **float64** (the race is float64 too, and the landscape and Hessian tests
compare to ~1e-8), under ``torch.manual_seed(seed)`` inside ``torch.random.fork_rng`` so that
every run built from the same seed starts from bit-identical weights and the global RNG is left
untouched.
"""

from __future__ import annotations

import ast
import difflib
import itertools
import math
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from core.errors import PlaygroundError

MAX_TEXT_LENGTH = 10_000
MAX_LAYERS = 100
MAX_PARAMETERS = 1_000_000   # parameters + buffers, counted before anything is allocated
MAX_WIDTH = 100_000          # features of any layer (activations are n x width)
DTYPE = torch.float64


class ModelError(PlaygroundError):
    """A model text that cannot be read or built. `column` is 1-based (None: the whole text)."""

    def __init__(self, message: str, column: int | None = None) -> None:
        self.column = column
        self.reason = message
        super().__init__(f"{message} (column {column})" if column is not None else message)


# --- the layer catalogue -------------------------------------------------------------------

@dataclass(frozen=True)
class Argument:
    """One constructor argument of a layer: its torch name, kind and default."""

    name: str
    kind: str            # "width" (int >= 1), "float", "probability", "positive", "bool",
    default: Any = None  # "momentum" (float in [0, 1] or None), "approximate" ('none'|'tanh')
    required: bool = False


@dataclass(frozen=True)
class LayerType:
    """A torch.nn layer the parser accepts, with the arguments it may be given."""

    name: str
    arguments: tuple[Argument, ...] = ()
    factory_kwargs: bool = False  # takes dtype= (so weights are created in float64 directly)


def _w(name: str) -> Argument:
    return Argument(name, "width", required=True)


LAYERS: dict[str, LayerType] = {t.name: t for t in (
    LayerType("Linear", (_w("in_features"), _w("out_features"), Argument("bias", "bool", True)),
              factory_kwargs=True),
    LayerType("ReLU"),
    LayerType("LeakyReLU", (Argument("negative_slope", "float", 0.01),)),
    LayerType("Tanh"),
    LayerType("Sigmoid"),
    LayerType("GELU", (Argument("approximate", "approximate", "none"),)),
    LayerType("ELU", (Argument("alpha", "float", 1.0),)),
    LayerType("SiLU"),
    LayerType("Softplus", (Argument("beta", "positive", 1.0),
                           Argument("threshold", "float", 20.0))),
    LayerType("Dropout", (Argument("p", "probability", 0.5),)),
    LayerType("LayerNorm", (_w("normalized_shape"), Argument("eps", "positive", 1e-5),
                            Argument("elementwise_affine", "bool", True),
                            Argument("bias", "bool", True)), factory_kwargs=True),
    LayerType("BatchNorm1d", (_w("num_features"), Argument("eps", "positive", 1e-5),
                              Argument("momentum", "momentum", 0.1),
                              Argument("affine", "bool", True),
                              Argument("track_running_stats", "bool", True)),
              factory_kwargs=True),
    LayerType("Identity"),
)}


@dataclass(frozen=True)
class LayerSpec:
    """One parsed layer: its type name, every argument's value (defaults filled in), its column."""

    name: str
    values: tuple[tuple[str, Any], ...]
    column: int | None = None

    @property
    def kwargs(self) -> dict[str, Any]:
        """The constructor keywords, as torch names them."""
        return dict(self.values)

    @property
    def text(self) -> str:
        """Canonical text: required arguments by position, others only where not the default."""
        layer = LAYERS[self.name]
        kw = self.kwargs
        parts = []
        for a in layer.arguments:
            if a.required:
                parts.append(repr(kw[a.name]))
            elif kw[a.name] != a.default or type(kw[a.name]) is not type(a.default):
                parts.append(f"{a.name}={kw[a.name]!r}")
        return f"{self.name}({', '.join(parts)})"

    def in_width(self) -> int | None:
        """The number of input features this layer requires (None: any)."""
        kw = self.kwargs
        for key in ("in_features", "normalized_shape", "num_features"):
            if key in kw:
                return int(kw[key])
        return None

    def out_width(self, in_width: int) -> int:
        """The number of features this layer produces from `in_width`."""
        return int(self.kwargs["out_features"]) if self.name == "Linear" else in_width

    def count(self) -> int:
        """Parameters and buffers this layer will allocate (computed, nothing allocated)."""
        kw = self.kwargs
        if self.name == "Linear":
            return kw["in_features"] * kw["out_features"] + (kw["out_features"] if kw["bias"]
                                                              else 0)
        if self.name == "LayerNorm":
            n = kw["normalized_shape"]
            return (n + (n if kw["bias"] else 0)) if kw["elementwise_affine"] else 0
        if self.name == "BatchNorm1d":
            n = kw["num_features"]
            return (2 * n if kw["affine"] else 0) + (2 * n + 1 if kw["track_running_stats"] else 0)
        return 0

    def build(self) -> nn.Module:
        """The torch module (float64 where it has weights)."""
        kw = self.kwargs
        if LAYERS[self.name].factory_kwargs:
            kw["dtype"] = DTYPE
        return getattr(nn, self.name)(**kw)


@dataclass(frozen=True)
class ModelSpec:
    """A parsed model: the user's `text`, its `layers`, and `canonical` text (same model)."""

    text: str
    layers: tuple[LayerSpec, ...]
    in_features: int | None = None
    out_features: int | None = None
    parameter_count: int | None = None

    @property
    def canonical(self) -> str:
        """The model as text in one normal form, e.g. 'Linear(2, 16), Tanh(), Linear(16, 1)'."""
        return ", ".join(layer.text for layer in self.layers)


# --- presets -------------------------------------------------------------------------------

@dataclass(frozen=True)
class ModelPreset:
    """A named model. `template` has {inputs} and {outputs}; `text` is it for the usual data."""

    name: str
    title: str
    template: str
    inputs: int
    outputs: int = 1

    @property
    def text(self) -> str:
        """The preset for its usual data (e.g. 'Linear(1, 1)' for linear regression)."""
        return self.for_data(self.inputs, self.outputs)

    def for_data(self, inputs: int, outputs: int = 1) -> str:
        """The preset adapted to `inputs` features and `outputs` outputs (e.g. 3 classes)."""
        return self.template.format(inputs=inputs, outputs=outputs)


PRESETS: dict[str, ModelPreset] = {p.name: p for p in (
    ModelPreset("linear-regression", "Linear regression", "Linear({inputs}, {outputs})", 1),
    ModelPreset("logistic-regression", "Logistic regression", "Linear({inputs}, {outputs})", 2),
    ModelPreset("small-mlp", "Small MLP",
                "Linear({inputs}, 16), Tanh(), Linear(16, {outputs})", 2),
    ModelPreset("deep-mlp", "Deeper MLP",
                "Linear({inputs}, 32), ReLU(), Linear(32, 32), ReLU(), Linear(32, 32), ReLU(), "
                "Linear(32, {outputs})", 2),
)}


def _preset_key(name: str) -> str:
    return name.strip().lower().replace(" ", "-").replace("_", "-")


def preset_text(name: str, inputs: int | None = None, outputs: int = 1) -> str:
    """The model text of preset `name` ('small-mlp', 'Small MLP', ...), adapted to the data."""
    key = _preset_key(name)
    if key not in PRESETS:
        close = difflib.get_close_matches(key, PRESETS, n=1)
        hint = f"; did you mean {close[0]}?" if close else f"; presets: {', '.join(PRESETS)}"
        raise ModelError(f"unknown model preset {name!r}{hint}")
    preset = PRESETS[key]
    return preset.for_data(preset.inputs if inputs is None else inputs, outputs)


def resolve_model_text(text_or_preset: str, inputs: int | None = None, outputs: int = 1) -> str:
    """A preset name becomes its text (adapted to the data); anything else is returned as is."""
    if _preset_key(text_or_preset) in PRESETS:
        return preset_text(text_or_preset, inputs, outputs)
    return text_or_preset


# --- parsing -------------------------------------------------------------------------------

def _column(node: ast.AST) -> int:
    # The text is parsed wrapped in "(...)": on line 1 the 0-based offset is the 1-based column.
    return node.col_offset + (0 if node.lineno == 1 else 1)


def _literal(node: ast.expr, layer: str, arg: str) -> Any:
    try:
        value = ast.literal_eval(node)
    except (ValueError, TypeError, SyntaxError, RecursionError, MemoryError):
        raise ModelError(f"{layer}: {arg}={ast.unparse(node)} is not a plain value (numbers, "
                         "True/False, None or tuples)", _column(node)) from None
    if isinstance(value, (list, dict, set, bytes, complex)):
        raise ModelError(f"{layer}: {arg}={ast.unparse(node)} is not a plain value",
                         _column(node))
    return value


def _check_value(layer: str, a: Argument, value: Any, column: int) -> Any:
    where = f"{layer}: {a.name}={value!r}"
    if a.kind == "width":
        if a.name == "normalized_shape" and isinstance(value, tuple) and len(value) == 1:
            value = value[0]  # LayerNorm((16,)) is LayerNorm(16) on (n, 16) data
        if isinstance(value, bool) or not isinstance(value, int):
            raise ModelError(f"{where} must be a whole number of features", column)
        if not 1 <= value <= MAX_WIDTH:
            raise ModelError(f"{where} must be between 1 and {MAX_WIDTH}", column)
        return value
    if a.kind == "bool":
        if not isinstance(value, bool):
            raise ModelError(f"{where} must be True or False", column)
        return value
    if a.kind == "approximate":
        if value not in ("none", "tanh"):
            raise ModelError(f"{where} must be 'none' or 'tanh'", column)
        return value
    if a.kind == "momentum" and value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ModelError(f"{where} must be a number", column)
    value = float(value)
    if not math.isfinite(value):
        raise ModelError(f"{where} must be finite", column)
    if a.kind == "probability" and not 0.0 <= value < 1.0:
        raise ModelError(f"{where} must be in [0, 1)", column)
    if a.kind == "positive" and value <= 0:
        raise ModelError(f"{where} must be > 0", column)
    if a.kind == "momentum" and not 0.0 <= value <= 1.0:
        raise ModelError(f"{where} must be in [0, 1] or None", column)
    return value


def _layer_name(func: ast.expr) -> str | None:
    if isinstance(func, ast.Name):
        return func.id
    if isinstance(func, ast.Attribute) and ast.unparse(func.value) in ("nn", "torch.nn"):
        return func.attr
    return None


def _parse_layer(node: ast.expr) -> LayerSpec:
    column = _column(node)
    if isinstance(node, (ast.Name, ast.Attribute)):
        node = ast.Call(func=node, args=[], keywords=[], lineno=node.lineno,
                        col_offset=node.col_offset)  # "Tanh" alone means Tanh()
    if not isinstance(node, ast.Call):
        raise ModelError(f"expected a layer such as Linear(2, 16), got {ast.unparse(node)!r}",
                         column)
    name = _layer_name(node.func)
    if name is None or name not in LAYERS:
        shown = name if name is not None else ast.unparse(node.func)
        close = difflib.get_close_matches(shown, LAYERS, n=1, cutoff=0.6)
        hint = f"; did you mean {close[0]}?" if close else f"; layers: {', '.join(LAYERS)}"
        raise ModelError(f"unknown layer {shown!r} (column {column}){hint}")
    layer = LAYERS[name]
    values: dict[str, Any] = {}
    if len(node.args) > len(layer.arguments):
        raise ModelError(f"{name} takes at most {len(layer.arguments)} positional arguments, "
                         f"got {len(node.args)}", column)
    for a, arg_node in zip(layer.arguments, node.args):
        if isinstance(arg_node, ast.Starred):
            raise ModelError(f"{name}: *args are not supported", _column(arg_node))
        values[a.name] = _check_value(name, a, _literal(arg_node, name, a.name),
                                      _column(arg_node))
    by_name = {a.name: a for a in layer.arguments}
    for kw in node.keywords:
        if kw.arg is None:
            raise ModelError(f"{name}: **kwargs are not supported", _column(kw.value))
        if kw.arg not in by_name:
            close = difflib.get_close_matches(kw.arg, by_name, n=1)
            if kw.arg == "inplace":
                hint = " (in-place layers would overwrite values autograd needs)"
            elif kw.arg in ("dtype", "device"):
                hint = " (models are built in float64 on the CPU)"
            elif close:
                hint = f"; did you mean {close[0]}?"
            elif by_name:
                hint = f"; {name} takes {', '.join(by_name)}"
            else:
                hint = f"; {name} takes no arguments"
            raise ModelError(f"{name}: unknown argument {kw.arg!r}{hint}", _column(kw.value))
        if kw.arg in values:
            raise ModelError(f"{name}: {kw.arg} is given twice", _column(kw.value))
        values[kw.arg] = _check_value(name, by_name[kw.arg], _literal(kw.value, name, kw.arg),
                                      _column(kw.value))
    for a in layer.arguments:
        if a.name not in values:
            if a.required:
                raise ModelError(f"{name}: {a.name} is missing", column)
            values[a.name] = a.default
    return LayerSpec(name, tuple((a.name, values[a.name]) for a in layer.arguments), column)


def parse_model(text: str, in_features: int | None = None) -> ModelSpec:
    """Read a model written as in PyTorch; check shapes against `in_features` if given.

    Accepts ``Linear(2, 16), Tanh(), Linear(16, 1)``, the same inside ``Sequential(...)`` or
    ``nn.Sequential(...)``, and ``nn.Linear`` / ``torch.nn.Linear`` names. Raises ModelError
    with one line naming the layer, the argument and the column.
    """
    if not isinstance(text, str):
        raise ModelError("the model must be text, e.g. Linear(2, 16), Tanh(), Linear(16, 1)")
    if len(text) > MAX_TEXT_LENGTH:
        raise ModelError(f"the model text is too long ({len(text)} characters, at most "
                         f"{MAX_TEXT_LENGTH})")
    if not text.strip():
        raise ModelError("the model is empty; write e.g. Linear(2, 16), Tanh(), Linear(16, 1)")
    try:
        tree = ast.parse(f"({text}\n)", mode="eval").body
    except SyntaxError as e:
        column = max(1, e.offset - 1) if e.lineno == 1 and e.offset else e.offset
        raise ModelError(f"cannot read the model: {e.msg}", column) from None
    except (ValueError, RecursionError, MemoryError):
        raise ModelError("cannot read the model; write it as in PyTorch, e.g. "
                         "Linear(2, 16), Tanh(), Linear(16, 1)") from None
    if isinstance(tree, ast.Call) and _layer_name(tree.func) == "Sequential":
        if tree.keywords:
            raise ModelError("Sequential takes layers only", _column(tree.keywords[0].value))
        nodes: list[ast.expr] = list(tree.args)
        if len(nodes) == 1 and isinstance(nodes[0], ast.Tuple):
            nodes = list(nodes[0].elts)
    elif isinstance(tree, ast.Tuple):
        nodes = list(tree.elts)
    else:
        nodes = [tree]
    if not nodes:
        raise ModelError("the model has no layers")
    if len(nodes) > MAX_LAYERS:
        raise ModelError(f"the model has {len(nodes)} layers; at most {MAX_LAYERS}")
    layers = tuple(_parse_layer(node) for node in nodes)
    total = sum(layer.count() for layer in layers)
    if total > MAX_PARAMETERS:
        raise ModelError(f"the model has {total:,} parameters and buffers; at most "
                         f"{MAX_PARAMETERS:,}")
    out_features = None
    if in_features is not None:
        out_features = check_shapes(layers, in_features)
    spec = ModelSpec(text=text, layers=layers, in_features=in_features,
                     out_features=out_features, parameter_count=total)
    return spec


def check_shapes(layers: tuple[LayerSpec, ...], in_features: int) -> int:
    """Follow the number of features through the layers; returns the output width.

    Raises e.g. "Linear(2, 16) then Linear(8, 1): the second expects 8 inputs but gets 16".
    """
    if isinstance(in_features, bool) or not isinstance(in_features, int) or in_features < 1:
        raise ModelError(f"the data must have at least one feature, got {in_features!r}")
    width = in_features
    previous: LayerSpec | None = None  # the last layer that set the width
    for layer in layers:
        need = layer.in_width()
        if need is not None and need != width:
            if previous is None:
                raise ModelError(f"{layer.text} expects {need} inputs but the data has "
                                 f"{width} feature{'s' if width != 1 else ''}", layer.column)
            raise ModelError(f"{previous.text} then {layer.text}: the second expects {need} "
                             f"inputs but gets {width}", layer.column)
        if layer.name == "Linear":
            previous = layer
        width = layer.out_width(width)
    return width


def build_model(spec: ModelSpec | str, in_features: int, seed: int = 0) -> nn.Sequential:
    """The model as a float64 `torch.nn.Sequential`, its weights drawn from `seed`.

    The same (spec, in_features, seed) gives bit-identical weights every time; the global RNG
    state is unchanged afterwards. A dry forward pass on `in_features` zeros checks the model.
    """
    if isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed < 2 ** 63:
        raise ModelError(f"the seed must be a whole number in [0, 2**63), got {seed!r}")
    if isinstance(spec, str):
        spec = parse_model(spec, in_features)
    else:
        check_shapes(spec.layers, in_features)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = nn.Sequential(*(layer.build() for layer in spec.layers))
    try:
        with torch.no_grad():
            was_training = model.training
            model.eval()  # BatchNorm in training mode needs more than one row; Dropout is random
            out = model(torch.zeros(2, in_features, dtype=DTYPE))
            model.train(was_training)
    except RuntimeError as e:  # the shape check above should catch everything; say it plainly
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise ModelError(f"the model fails on {in_features} inputs: {first}") from None
    if out.ndim != 2:
        raise ModelError(f"the model gives outputs of shape {tuple(out.shape)}; expected "
                         "(rows, outputs)")
    return model


# --- named parameters, flattened --------------------------------------------------------------

@dataclass(frozen=True)
class ParameterLayout:
    """The model's parameters in `named_parameters()` order, and how they lie in one flat vector.

    Landscapes and curvature work on flat vectors; `trainable` says which parameters have
    `requires_grad` (frozen ones are left where they are and get zero directions).
    """

    names: tuple[str, ...]
    shapes: tuple[tuple[int, ...], ...]
    trainable: tuple[bool, ...]

    @classmethod
    def of(cls, model: nn.Module) -> ParameterLayout:
        """The layout of `model`'s parameters now (freezing changes `trainable`)."""
        named = list(model.named_parameters())
        return cls(tuple(n for n, _ in named), tuple(tuple(p.shape) for _, p in named),
                   tuple(p.requires_grad for _, p in named))

    @property
    def sizes(self) -> tuple[int, ...]:
        """Number of scalars in each parameter."""
        return tuple(math.prod(s) for s in self.shapes)

    @property
    def size(self) -> int:
        """Number of scalars in all parameters."""
        return sum(self.sizes)

    @property
    def trainable_names(self) -> tuple[str, ...]:
        """Names of the parameters with requires_grad."""
        return tuple(n for n, t in zip(self.names, self.trainable) if t)

    def trainable_mask(self) -> torch.Tensor:
        """A bool vector over the flat layout: True on trainable scalars."""
        return torch.cat([torch.full((s,), t, dtype=torch.bool)
                          for s, t in zip(self.sizes, self.trainable)]) if self.names else \
            torch.zeros(0, dtype=torch.bool)

    def scalar_names(self) -> list[str]:
        """A name per flat scalar: '0.bias' for one-element tensors, else '0.weight[i, j]'."""
        out = []
        for name, shape in zip(self.names, self.shapes):
            if math.prod(shape) == 1:
                out.append(name)
                continue
            for index in itertools.product(*(range(d) for d in shape)):
                out.append(f"{name}[{', '.join(str(i) for i in index)}]")
        return out

    def flatten(self, named: dict[str, torch.Tensor]) -> torch.Tensor:
        """One flat vector from tensors by name (in layout order)."""
        return torch.cat([named[n].reshape(-1) for n in self.names]) if self.names else \
            torch.zeros(0, dtype=DTYPE)

    def unflatten(self, flat: torch.Tensor) -> dict[str, torch.Tensor]:
        """Tensors by name from one flat vector; a leading batch dim is kept: (B, P) -> (B, *s)."""
        batch = tuple(flat.shape[:-1])
        out, start = {}, 0
        for name, shape, size in zip(self.names, self.shapes, self.sizes):
            out[name] = flat[..., start:start + size].reshape(*batch, *shape)
            start += size
        return out


def parameters_vector(model: nn.Module) -> torch.Tensor:
    """All of the model's parameters in one flat float64 vector (a detached copy)."""
    return torch.cat([p.detach().reshape(-1) for p in model.parameters()]).clone()


def parameter_names_to_freeze(model: nn.Module, target: str | int) -> tuple[str, ...]:
    """The parameter names `target` means: a name from `named_parameters()` ('2.weight'), or a
    layer index (2 or '2') for all of that layer's parameters, as in "freeze all but the last".
    """
    names = [n for n, _ in model.named_parameters()]
    text = str(target).strip()
    if text in names:
        return (text,)
    if text.lstrip("-").isdigit():
        index = int(text)
        layers = list(model.children())
        if not -len(layers) <= index < len(layers):
            raise ModelError(f"there is no layer {index}; the model has layers 0 to "
                             f"{len(layers) - 1}")
        index %= len(layers)
        found = tuple(f"{index}.{n}" for n, _ in layers[index].named_parameters())
        if not found:
            raise ModelError(f"layer {index} ({type(layers[index]).__name__}) has no parameters "
                             "to freeze")
        return found
    close = difflib.get_close_matches(text, names, n=1)
    hint = f"; did you mean {close[0]}?" if close else f"; parameters: {', '.join(names)}"
    raise ModelError(f"no parameter {text!r}{hint}")
