"""Data for model mode: generated datasets, the user's CSV, a train/test split, minibatches, losses.

Generated datasets come from ``numpy.random.default_rng(seed)`` (no sklearn), so the same name,
size, noise and seed always give the same rows. Features are float64 ``(n, d)`` tensors; targets
are float64 ``(n,)`` for regression and int64 class indices ``(n,)`` for classification.

CSV targets: a column with any non-numeric cell holds classes (names kept, sorted); a numeric
column whose values are all whole numbers with at most :data:`MAX_INTEGER_CLASSES` distinct
values also holds classes; anything else is a regression target. Two classes make a "binary"
task, more a "multiclass" one. `as_regression` reads such whole-number classes back as numbers,
for a user who picks MSELoss (the loss decides, not the look of the column).
"""

from __future__ import annotations

import csv
import difflib
import functools
import io
import math
import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from torch import nn

from core.errors import PlaygroundError

DTYPE = torch.float64
TASKS = ("regression", "binary", "multiclass")
MAX_INTEGER_CLASSES = 10
MAX_CSV_BYTES = 20_000_000
MAX_CSV_ROWS = 200_000
MAX_COLUMNS = 1_000
MAX_GENERATED = 100_000


class DataError(PlaygroundError):
    """A dataset that cannot be made or read; the message names the line and column."""


@dataclass(frozen=True, eq=False)
class Dataset:
    """Labelled rows: features `X` (n, d) float64, targets `y` (n,), and what they mean.

    `y` is float64 for task "regression" and int64 class indices for "binary"/"multiclass"
    (`class_names[i]` is the name of class i).
    """

    name: str
    X: torch.Tensor
    y: torch.Tensor
    task: str
    feature_names: tuple[str, ...]
    target_name: str
    class_names: tuple[str, ...] = ()
    settings: dict[str, Any] = field(default_factory=dict)

    @property
    def n(self) -> int:
        """Number of rows."""
        return int(self.X.shape[0])

    @property
    def n_features(self) -> int:
        """Number of feature columns."""
        return int(self.X.shape[1])

    @property
    def n_classes(self) -> int:
        """Number of classes (0 for regression)."""
        return len(self.class_names)

    def subset(self, indices: torch.Tensor) -> Dataset:
        """The rows at `indices` (copies), same meaning."""
        return Dataset(self.name, self.X[indices].clone(), self.y[indices].clone(), self.task,
                       self.feature_names, self.target_name, self.class_names, dict(self.settings))


# --- generated datasets ------------------------------------------------------------------------

@dataclass(frozen=True)
class GeneratedDataset:
    """A built-in dataset: its name, a title, its task, and the usual size and noise."""

    name: str
    title: str
    task: str
    default_noise: float
    default_n: int = 200


GENERATED: dict[str, GeneratedDataset] = {d.name: d for d in (
    GeneratedDataset("line", "Noisy line", "regression", 0.1),
    GeneratedDataset("sine", "Sine", "regression", 0.1),
    GeneratedDataset("moons", "Two moons", "binary", 0.1),
    GeneratedDataset("circles", "Circles", "binary", 0.05),
    GeneratedDataset("spirals", "Spirals", "binary", 0.05),
    GeneratedDataset("xor", "XOR", "binary", 0.05),
    GeneratedDataset("blobs", "Gaussian blobs (3 classes)", "multiclass", 0.5),
)}


def _halves(n: int) -> tuple[int, int]:
    return n // 2, n - n // 2


def make_dataset(name: str, n: int | None = None, noise: float | None = None,
                 seed: int = 0) -> Dataset:
    """A built-in dataset by name (see GENERATED); `noise` is the std of Gaussian noise added.

    For "blobs" the noise is each blob's standard deviation. Rows are shuffled (seeded), so a
    split in file order is not sorted by class.
    """
    key = name.strip().lower().replace(" ", "-").replace("_", "-")
    key = {"two-moons": "moons", "spiral": "spirals", "noisy-line": "line"}.get(key, key)
    if key not in GENERATED:
        close = difflib.get_close_matches(key, GENERATED, n=1)
        hint = f"; did you mean {close[0]}?" if close else f"; datasets: {', '.join(GENERATED)}"
        raise DataError(f"unknown dataset {name!r}{hint}")
    info = GENERATED[key]
    n = info.default_n if n is None else n
    noise = info.default_noise if noise is None else noise
    if isinstance(n, bool) or not isinstance(n, int) or not 4 <= n <= MAX_GENERATED:
        raise DataError(f"the number of points must be a whole number from 4 to "
                        f"{MAX_GENERATED:,}, got {n!r}")
    if isinstance(noise, bool) or not isinstance(noise, (int, float)) or not (
            math.isfinite(noise) and 0 <= noise <= 10):
        raise DataError(f"the noise must be a number from 0 to 10, got {noise!r}")
    if isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed < 2 ** 63:
        raise DataError(f"the seed must be a whole number in [0, 2**63), got {seed!r}")
    rng = np.random.default_rng(seed)
    noise = float(noise)
    classes: tuple[str, ...] = ("0", "1")
    if key == "line":
        x = rng.uniform(-1.0, 1.0, (n, 1))
        X, y = x, 2.0 * x[:, 0] + 0.5 + noise * rng.standard_normal(n)
    elif key == "sine":
        x = rng.uniform(-math.pi, math.pi, (n, 1))
        X, y = x, np.sin(x[:, 0]) + noise * rng.standard_normal(n)
    elif key == "moons":
        a, b = _halves(n)
        t_out, t_in = np.linspace(0, math.pi, a), np.linspace(0, math.pi, b)
        X = np.concatenate([np.stack([np.cos(t_out), np.sin(t_out)], 1),
                            np.stack([1 - np.cos(t_in), 0.5 - np.sin(t_in)], 1)])
        y = np.concatenate([np.zeros(a), np.ones(b)])
        X = X + noise * rng.standard_normal(X.shape)
    elif key == "circles":
        a, b = _halves(n)
        t_out = np.linspace(0, 2 * math.pi, a, endpoint=False)
        t_in = np.linspace(0, 2 * math.pi, b, endpoint=False)
        X = np.concatenate([np.stack([np.cos(t_out), np.sin(t_out)], 1),
                            0.5 * np.stack([np.cos(t_in), np.sin(t_in)], 1)])
        y = np.concatenate([np.zeros(a), np.ones(b)])
        X = X + noise * rng.standard_normal(X.shape)
    elif key == "spirals":
        a, b = _halves(n)
        arms = []
        for count, phase in ((a, 0.0), (b, math.pi)):
            t = np.sqrt(rng.uniform(0.0, 1.0, count)) * 3 * math.pi  # even density along arms
            arms.append(np.stack([t * np.cos(t + phase), t * np.sin(t + phase)], 1) / (3 * math.pi))
        X = np.concatenate(arms)
        y = np.concatenate([np.zeros(a), np.ones(b)])
        X = X + noise * rng.standard_normal(X.shape)
    elif key == "xor":
        # half the points in the quadrants where x1 * x2 > 0 (class 1), half elsewhere
        a, b = _halves(n)
        y = np.concatenate([np.ones(a), np.zeros(b)])
        first = rng.choice([-1.0, 1.0], n)
        signs = np.stack([first, np.where(y == 1, first, -first)], 1)
        X = signs * rng.uniform(0.0, 1.0, (n, 2))
        X = X + noise * rng.standard_normal(X.shape)  # labels stay those of the clean point
    else:  # blobs: three centres on a circle of radius 2
        angles = np.array([0.5, 0.5 + 2 / 3, 0.5 + 4 / 3]) * math.pi
        centres = 2.0 * np.stack([np.cos(angles), np.sin(angles)], 1)
        y = np.arange(n) % 3
        X = centres[y] + noise * rng.standard_normal((n, 2))
        classes = ("0", "1", "2")
    order = rng.permutation(n)
    X, y = X[order], y[order]
    features = ("x",) if X.shape[1] == 1 else ("x1", "x2")
    settings = {"dataset": key, "n": n, "noise": noise, "seed": seed}
    if info.task == "regression":
        return Dataset(key, torch.tensor(X, dtype=DTYPE), torch.tensor(y, dtype=DTYPE),
                       "regression", features, "y", (), settings)
    return Dataset(key, torch.tensor(X, dtype=DTYPE), torch.tensor(y, dtype=torch.int64),
                   info.task, features, "class", classes, settings)


# --- CSV ---------------------------------------------------------------------------------------

def read_csv_file(path: str | os.PathLike[str], target: str | None = None, *,
                  max_bytes: int = MAX_CSV_BYTES, max_rows: int = MAX_CSV_ROWS) -> Dataset:
    """The user's CSV file as a Dataset; reads at most `max_bytes` + 1 bytes.

    Raises DataError with one line naming the line (and column) of the first problem.
    """
    try:
        with open(path, "rb") as f:
            raw = f.read(max_bytes + 1)
    except OSError as e:
        raise DataError(f"cannot read {os.fspath(path)!r}: {e.strerror or e}") from None
    if len(raw) > max_bytes:
        raise DataError(f"the file is larger than {max_bytes:,} bytes")
    return parse_csv(raw, target, name=os.path.basename(os.fspath(path)), max_rows=max_rows)


def _decode(raw: bytes) -> str:
    if not raw.strip():
        raise DataError("the file is empty")
    nul = raw.find(b"\0")
    if nul >= 0:
        line = raw.count(b"\n", 0, nul) + 1
        raise DataError(f"not a CSV text file: binary data on line {line}")
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        line = raw.count(b"\n", 0, e.start) + 1
        raise DataError(f"not a CSV text file: line {line} is not UTF-8 text") from None
    return text


def _number(cell: str) -> float | None:
    try:
        return float(cell.replace("_", "x"))  # float() accepts 1_000; a CSV should not
    except ValueError:
        return None


def parse_csv(source: str | bytes, target: str | None = None, *, name: str = "data.csv",
              max_rows: int = MAX_CSV_ROWS) -> Dataset:
    """CSV text (a header, feature columns, a target column) as a Dataset.

    `target` names the target column (default: the last). Delimiter: ',' (or ';' or a tab when
    the header has no comma). Blank lines are skipped. See the module docstring for how the task
    (regression or classes) is decided.
    """
    text = _decode(source) if isinstance(source, bytes) else source
    return _parse_csv_text(text, target, name, max_rows)


@functools.lru_cache(maxsize=2)
def _parse_csv_text(text: str, target: str | None, name: str, max_rows: int) -> Dataset:
    # Kept for the last two files: a session checks, builds and rebuilds its data from the
    # same text several times, and a large CSV takes seconds to read. A str caches its hash,
    # so a hit costs one comparison. Callers never write into a Dataset's tensors (subset()
    # copies), so sharing the result is safe.
    if not text.strip():
        raise DataError("the file is empty")
    first = text.lstrip("\r\n").split("\n", 1)[0]
    delimiter = "," if "," in first else ";" if ";" in first else "\t" if "\t" in first else ","
    try:
        rows = [(number, row) for number, row in _numbered_rows(text, delimiter) if row]
    except csv.Error as e:
        raise DataError(f"not a readable CSV file: {e}") from None
    if not rows:
        raise DataError("the file is empty")
    header_line, header = rows[0]
    header = [h.strip() for h in header]
    if len(header) > MAX_COLUMNS:
        raise DataError(f"line {header_line}: {len(header)} columns; at most {MAX_COLUMNS}")
    if len(header) < 2:
        raise DataError(f"line {header_line}: the header needs a feature column and a target "
                        f"column, separated by commas; got {len(header)} column")
    for j, h in enumerate(header, 1):
        if not h:
            raise DataError(f"line {header_line}, column {j}: the header has no name here")
        if _number(h) is not None and all(_number(c) is not None for c in header):
            raise DataError(f"line {header_line}: the first line must be a header with column "
                            "names, not numbers")
        if header.index(h) != j - 1:
            raise DataError(f"line {header_line}, column {j}: {h!r} is in the header twice")
    body = rows[1:]
    if not body:
        raise DataError("the file has a header but no data rows")
    if len(body) > max_rows:
        raise DataError(f"the file has more than {max_rows:,} data rows")
    if target is None:
        t = len(header) - 1
    elif target in header:
        t = header.index(target)
    else:
        lower = [h.lower() for h in header]
        if target.lower() in lower:
            t = lower.index(target.lower())
        else:
            raise DataError(f"no column {target!r} for the target; columns: {', '.join(header)}")
    width = len(header)
    features = np.empty((len(body), width - 1), dtype=np.float64)
    target_cells: list[str] = []
    feature_columns = [j for j in range(width) if j != t]
    for i, (line, row) in enumerate(body):
        if len(row) != width:
            raise DataError(f"line {line} has {len(row)} cell{'s' if len(row) != 1 else ''}; "
                            f"the header has {width}")
        for k, j in enumerate(feature_columns):
            cell = row[j].strip()
            where = f"line {line}, column {j + 1} ({header[j]!r})"
            if not cell:
                raise DataError(f"{where}: the cell is empty")
            value = _number(cell)
            if value is None:
                raise DataError(f"{where}: {cell!r} is not a number")
            if not math.isfinite(value):
                raise DataError(f"{where}: {cell!r} is not a finite number")
            features[i, k] = value
        cell = row[t].strip()
        if not cell:
            raise DataError(f"line {line}, column {t + 1} ({header[t]!r}): the target is empty")
        target_cells.append(cell)
    numbers = [_number(c) for c in target_cells]
    if all(v is not None for v in numbers):
        for (line, _), cell, v in zip(body, target_cells, numbers):
            if not math.isfinite(v):  # type: ignore[arg-type]
                raise DataError(f"line {line}, column {t + 1} ({header[t]!r}): {cell!r} is not "
                                "a finite number")
        values = np.array(numbers, dtype=np.float64)
        distinct = np.unique(values)
        is_classes = bool(np.all(values == np.round(values))) and len(distinct) <= \
            MAX_INTEGER_CLASSES
        names = [str(int(v)) for v in distinct] if is_classes else []
        labels = np.searchsorted(distinct, values) if is_classes else None
    else:
        is_classes = True
        names = sorted(set(target_cells))
        index = {c: i for i, c in enumerate(names)}
        labels = np.array([index[c] for c in target_cells])
        values = None
    X = torch.tensor(features, dtype=DTYPE)
    feature_names = tuple(header[j] for j in feature_columns)
    settings = {"file": name, "target": header[t]}
    if not is_classes:
        return Dataset(name, X, torch.tensor(values, dtype=DTYPE), "regression", feature_names,
                       header[t], (), settings)
    if len(names) < 2:
        raise DataError(f"the target {header[t]!r} has only one class ({names[0]!r}); a "
                        "classifier needs at least two")
    return Dataset(name, X, torch.tensor(labels, dtype=torch.int64),
                   "binary" if len(names) == 2 else "multiclass", feature_names, header[t],
                   tuple(names), settings)


def as_regression(data: Dataset) -> Dataset:
    """The same rows with the target read as numbers: for a whole-number target (0/1, counts,
    ratings) that parse_csv took for classes, when the chosen loss is MSELoss. DataError if
    the classes are words, which have no numeric value."""
    if data.task == "regression":
        return data
    try:
        values = torch.tensor([float(c) for c in data.class_names], dtype=DTYPE)
    except ValueError:
        raise DataError(f"the target {data.target_name!r} holds words ({data.class_names[0]!r}, "
                        "...); MSELoss needs numbers") from None
    return Dataset(data.name, data.X, values[data.y], "regression", data.feature_names,
                   data.target_name, (), dict(data.settings))


def _numbered_rows(text: str, delimiter: str) -> Iterator[tuple[int, list[str]]]:
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter, strict=True)
    start = 1
    for row in reader:
        yield start, row
        start = reader.line_num + 1  # a quoted cell may span lines; the next row starts after


# --- train / test split --------------------------------------------------------------------------

@dataclass(frozen=True, eq=False)
class Split:
    """A train part and a held-out test part (None when the test fraction is 0)."""

    train: Dataset
    test: Dataset | None
    train_indices: torch.Tensor
    test_indices: torch.Tensor


def train_test_split(data: Dataset, test_fraction: float, seed: int = 0) -> Split:
    """Hold out round(n * test_fraction) rows (at least one if the fraction is > 0), seeded.

    Fraction 0 trains on every row in file order. Both parts keep the rows in file order.
    """
    if isinstance(test_fraction, bool) or not isinstance(test_fraction, (int, float)) or not (
            0.0 <= test_fraction < 1.0):
        raise DataError(f"the test fraction must be in [0, 1), got {test_fraction!r}")
    n = data.n
    if test_fraction == 0:
        everything = torch.arange(n)
        return Split(data, None, everything, torch.zeros(0, dtype=torch.int64))
    n_test = max(1, round(n * test_fraction))
    if n_test >= n:
        raise DataError(f"a test fraction of {test_fraction} leaves no rows to train on "
                        f"({n} rows)")
    order = torch.randperm(n, generator=torch.Generator().manual_seed(seed))
    test_idx, _ = torch.sort(order[:n_test])
    train_idx, _ = torch.sort(order[n_test:])
    return Split(data.subset(train_idx), data.subset(test_idx), train_idx, test_idx)


# --- minibatches ---------------------------------------------------------------------------------

class MinibatchSampler:
    """Index tensors of minibatches, the same sequence for every sampler made with the same seed.

    Batch size 0 or >= n means full batch: every call gives ``arange(n)`` (no randomness). Else
    each epoch is ``torch.randperm(n, generator=g)`` cut into batches of `batch_size` (the last
    one may be smaller, as DataLoader's drop_last=False), with ``g = Generator().manual_seed(s)``.
    (DataLoader itself draws a worker base seed from its generator first, so its batches differ.)
    """

    def __init__(self, n: int, batch_size: int = 0, seed: int = 0) -> None:
        if isinstance(n, bool) or not isinstance(n, int) or n < 1:
            raise DataError(f"there must be at least one training row, got {n!r}")
        if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 0:
            raise DataError(f"the batch size must be a whole number >= 0 (0: full batch), got "
                            f"{batch_size!r}")
        self.n = n
        self.batch_size = n if batch_size == 0 or batch_size >= n else batch_size
        self.seed = seed
        self.generator = torch.Generator().manual_seed(seed)
        self.epoch = 0
        self._order: torch.Tensor | None = None
        self._position = 0
        self._all = torch.arange(n)
        # batch_at's own record: the epochs' permutations drawn so far, from a generator of
        # its own, so asking for batch k never moves next_batch()'s sequence
        self._indexed_generator = torch.Generator().manual_seed(seed)
        self._orders: list[torch.Tensor] = []

    @property
    def full_batch(self) -> bool:
        """True when every batch is the whole training set."""
        return self.batch_size >= self.n

    @property
    def batches_per_epoch(self) -> int:
        """Number of batches in one pass over the data."""
        return -(-self.n // self.batch_size)

    def next_batch(self) -> torch.Tensor:
        """The indices of the next minibatch (int64)."""
        if self.full_batch:
            self.epoch += 1
            return self._all
        if self._order is None or self._position >= self.n:
            self._order = torch.randperm(self.n, generator=self.generator)
            self._position = 0
            self.epoch += 1
        batch = self._order[self._position:self._position + self.batch_size]
        self._position += self.batch_size
        return batch

    def batch_at(self, index: int) -> torch.Tensor:
        """Batch number `index` (from 0) of the sequence: what the (index+1)-th next_batch() of
        a fresh sampler gives. The permutations drawn so far are kept (n int64 per epoch), so a
        batch is the same whenever and however often it is asked for (a Problem's loss of
        step k, an L-BFGS closure evaluated several times in one step)."""
        if self.full_batch:
            return self._all
        epoch, i = divmod(index, self.batches_per_epoch)
        while len(self._orders) <= epoch:
            self._orders.append(torch.randperm(self.n, generator=self._indexed_generator))
        return self._orders[epoch][i * self.batch_size:(i + 1) * self.batch_size]

    def reset(self) -> None:
        """Back to the first batch of the first epoch (as a new sampler with the same seed)."""
        self.generator.manual_seed(self.seed)
        self.epoch, self._order, self._position = 0, None, 0

    def state_dict(self) -> dict[str, Any]:
        """Where the sequence is, to carry on later (e.g. in a saved session)."""
        return {"n": self.n, "batch_size": self.batch_size, "seed": self.seed,
                "epoch": self.epoch, "position": self._position,
                "order": None if self._order is None else self._order.tolist(),
                "generator": self.generator.get_state().tolist()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Carry on from `state_dict()`; DataError if it belongs to other data or settings."""
        try:
            settings = (state["n"], state["batch_size"], state["seed"])
            generator = torch.tensor(state["generator"], dtype=torch.uint8)
            order = None if state["order"] is None else torch.tensor(state["order"],
                                                                     dtype=torch.int64)
            epoch, position = int(state["epoch"]), int(state["position"])
        except (KeyError, TypeError, ValueError, RuntimeError):
            raise DataError("the saved minibatch position cannot be read") from None
        if settings != (self.n, self.batch_size, self.seed):
            raise DataError("the saved minibatch position is for other data or settings")
        if order is not None and sorted(order.tolist()) != list(range(self.n)):
            raise DataError("the saved minibatch order is not a permutation of the rows")
        self.generator.set_state(generator)
        self.epoch, self._order, self._position = epoch, order, position

    def __iter__(self) -> Iterator[torch.Tensor]:
        while True:
            yield self.next_batch()


# --- losses --------------------------------------------------------------------------------------

LOSSES: dict[str, tuple[str, ...]] = {
    "MSELoss": ("regression",),
    "BCEWithLogitsLoss": ("binary",),
    "CrossEntropyLoss": ("binary", "multiclass"),
}


def default_loss(task: str) -> str:
    """The usual loss for a task: MSELoss, BCEWithLogitsLoss or CrossEntropyLoss."""
    if task not in TASKS:
        raise DataError(f"unknown task {task!r}; tasks: {', '.join(TASKS)}")
    return {"regression": "MSELoss", "binary": "BCEWithLogitsLoss",
            "multiclass": "CrossEntropyLoss"}[task]


def _loss_key(name: str) -> str:
    key = name.strip()
    for prefix in ("torch.nn.", "nn."):
        key = key.removeprefix(prefix)
    return key.removesuffix("()")


def for_loss(data: Dataset, loss: str | None) -> Dataset:
    """`data` as `loss` reads its target: for MSELoss a whole-number target that parse_csv
    took for classes is read back as numbers (as_regression); otherwise `data` itself. The
    loss decides, not the look of the column. DataError if MSELoss meets classes that are
    words."""
    if loss is not None and _loss_key(loss) == "MSELoss" and data.task != "regression":
        return as_regression(data)
    return data


def check_loss(name: str, task: str) -> str:
    """`name` if it is a loss that fits `task`; else DataError saying which one does."""
    key = _loss_key(name)
    if key not in LOSSES:
        close = difflib.get_close_matches(key, LOSSES, n=1)
        hint = f"; did you mean {close[0]}?" if close else f"; losses: {', '.join(LOSSES)}"
        raise DataError(f"unknown loss {name!r}{hint}")
    if task not in LOSSES[key]:
        what = "numbers (regression)" if task == "regression" else f"classes ({task})"
        raise DataError(f"{key} does not fit a target of {what}; use {default_loss(task)}")
    return key


def make_loss(name: str, task: str) -> nn.Module:
    """The torch loss module (mean reduction), after check_loss."""
    return getattr(nn, check_loss(name, task))()


def output_width(loss: str, n_classes: int) -> int:
    """How many outputs the model must have for `loss`: 1, or one per class for CrossEntropy."""
    return n_classes if loss == "CrossEntropyLoss" else 1


def shape_targets(y: torch.Tensor, loss: str) -> torch.Tensor:
    """Targets as the loss wants them: float64 (n, 1) for MSE/BCE, int64 (n,) for CrossEntropy."""
    if loss == "CrossEntropyLoss":
        return y.to(torch.int64).reshape(-1)
    return y.to(DTYPE).reshape(-1, 1)


def accuracy(outputs: torch.Tensor, y: torch.Tensor, loss: str) -> float | None:
    """Share of rows classified right (None for regression). Call it under no_grad."""
    if loss == "MSELoss":
        return None
    labels = y.to(torch.int64).reshape(-1)
    if loss == "BCEWithLogitsLoss":
        predicted = (outputs.reshape(-1) > 0).to(torch.int64)
    else:
        predicted = outputs.argmax(dim=1)
    return float((predicted == labels).to(DTYPE).mean())


def metrics_in_eval_mode(model: nn.Module, loss_fn: nn.Module, X: torch.Tensor,
                         y: torch.Tensor, loss: str) -> tuple[float, float | None]:
    """held_out_metrics for a model already in eval mode (a copy kept for it): switching every
    module's mode there and back is half of a small model's held-out cost (nn.Module's
    __setattr__)."""
    with torch.no_grad():
        outputs = model(X)
        return float(loss_fn(outputs, y)), accuracy(outputs, y, loss)


def held_out_metrics(model: nn.Module, loss_fn: nn.Module, X: torch.Tensor, y: torch.Tensor,
                     loss: str) -> tuple[float, float | None]:
    """(loss, accuracy) on rows the model does not train on: under no_grad, in eval mode.

    `y` is shaped for the loss (shape_targets); accuracy is None for regression. Each module's
    training mode is restored afterwards.
    """
    modes = [(m, m.training) for m in model.modules()]
    try:
        model.eval()
        return metrics_in_eval_mode(model, loss_fn, X, y, loss)
    finally:
        for module, training in modes:
            module.training = training
