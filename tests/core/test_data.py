"""core/problems/data.py: generated datasets, CSV files, the split, minibatches and losses."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from core.errors import PlaygroundError
from core.problems import data as data_module
from core.problems.data import (
    GENERATED, DataError, MinibatchSampler, accuracy, check_loss, default_loss,
    held_out_metrics, make_dataset, make_loss, output_width, parse_csv, read_csv_file,
    shape_targets, train_test_split,
)
from core.problems.model import build_model


@pytest.mark.parametrize("name", list(GENERATED))
def test_generated_datasets_are_seeded_and_shaped(name: str) -> None:
    info = GENERATED[name]
    data = make_dataset(name, n=90, seed=3)
    assert data.n == 90 and data.X.dtype == torch.float64
    assert data.task == info.task
    assert data.n_features == (1 if info.task == "regression" else 2)
    assert data.n_features == len(data.feature_names)
    if info.task == "regression":
        assert data.y.dtype == torch.float64 and data.class_names == ()
    else:
        assert data.y.dtype == torch.int64
        counts = torch.bincount(data.y)
        assert len(counts) == data.n_classes == (3 if name == "blobs" else 2)
        assert counts.min() >= 90 // data.n_classes  # balanced classes
    same = make_dataset(name, n=90, seed=3)
    assert torch.equal(same.X, data.X) and torch.equal(same.y, data.y)
    other = make_dataset(name, n=90, seed=4)
    assert not torch.equal(other.X, data.X)
    assert torch.all(torch.isfinite(data.X))


def test_noise_free_moons_lie_on_their_arcs_and_noise_spreads_them() -> None:
    clean = make_dataset("moons", n=100, noise=0.0, seed=0)
    outer = clean.X[clean.y == 0]
    inner = clean.X[clean.y == 1] - torch.tensor([1.0, 0.5], dtype=torch.float64)
    torch.testing.assert_close(outer.norm(dim=1), torch.ones(50, dtype=torch.float64))
    torch.testing.assert_close(inner.norm(dim=1), torch.ones(50, dtype=torch.float64))
    assert torch.all(outer[:, 1] >= -1e-12) and torch.all(inner[:, 1] <= 1e-12)
    noisy = make_dataset("moons", n=100, noise=0.2, seed=0)
    residual = (noisy.X[noisy.y == 0].norm(dim=1) - 1).abs().mean()
    assert 0.05 < float(residual) < 0.5


def test_noisy_line_follows_its_line() -> None:
    data = make_dataset("line", n=2000, noise=0.1, seed=0)
    slope, intercept = torch.linalg.lstsq(
        torch.cat([data.X, torch.ones(2000, 1, dtype=torch.float64)], 1),
        data.y[:, None]).solution[:, 0].tolist()
    assert abs(slope - 2.0) < 0.05 and abs(intercept - 0.5) < 0.05


def test_xor_labels_are_the_quadrants_without_noise() -> None:
    data = make_dataset("xor", n=200, noise=0.0, seed=1)
    assert torch.equal(data.y, (data.X[:, 0] * data.X[:, 1] > 0).to(torch.int64))


@pytest.mark.parametrize("kwargs, message", [
    ({"name": "mons"}, "did you mean moons?"),
    ({"name": "moons", "n": 2}, "number of points"),
    ({"name": "moons", "n": 10 ** 9}, "number of points"),
    ({"name": "moons", "noise": -0.1}, "noise"),
    ({"name": "moons", "noise": float("nan")}, "noise"),
    ({"name": "moons", "seed": -5}, "seed"),
])
def test_bad_dataset_settings_are_refused(kwargs: dict, message: str) -> None:
    with pytest.raises(DataError, match=message):
        make_dataset(**kwargs)


# --- CSV -----------------------------------------------------------------------------------------

def test_csv_with_string_classes_keeps_names_and_maps_them() -> None:
    data = parse_csv("height,weight,species\n1.5,2,cat\n3,4,dog\n5,6e0,cat\n\n7,8,bird\n")
    assert data.task == "multiclass"
    assert data.class_names == ("bird", "cat", "dog")
    assert data.y.tolist() == [1, 2, 1, 0]
    assert data.feature_names == ("height", "weight") and data.target_name == "species"
    assert data.X.tolist() == [[1.5, 2.0], [3.0, 4.0], [5.0, 6.0], [7.0, 8.0]]


def test_csv_target_by_name_and_integer_classes() -> None:
    text = "label,a,b\n1,0.5,2\n0,1.5,3\n1,2.5,4\n"
    data = parse_csv(text, target="label")
    assert data.task == "binary" and data.class_names == ("0", "1")
    assert data.y.tolist() == [1, 0, 1]
    assert data.feature_names == ("a", "b")
    assert parse_csv(text, target="LABEL").target_name == "label"
    # the default target is the last column, b: three whole numbers, so three classes
    assert parse_csv(text).task == "multiclass"
    assert parse_csv("a,b\n1,0.5\n2,1.5\n").task == "regression"


def test_many_whole_number_values_are_a_regression_target() -> None:
    rows = "\n".join(f"{i},{i * 3}" for i in range(data_module.MAX_INTEGER_CLASSES + 1))
    assert parse_csv("x,y\n" + rows).task == "regression"
    rows = "\n".join(f"{i},{i % data_module.MAX_INTEGER_CLASSES}" for i in range(40))
    assert parse_csv("x,y\n" + rows).task == "multiclass"


def test_csv_semicolons_quotes_and_a_file(tmp_path) -> None:
    assert parse_csv("a;b\n1;x\n2;y\n").class_names == ("x", "y")
    path = tmp_path / "points.csv"
    path.write_text('x,"the class"\n1,"a, b"\n2,c\n', encoding="utf-8")
    data = read_csv_file(path)
    assert data.class_names == ("a, b", "c") and data.target_name == "the class"
    assert data.name == "points.csv"


@pytest.mark.parametrize("content, message", [
    (b"", "the file is empty"),
    (b"\n\n", "the file is empty"),
    (b"a,b\n", "the file has a header but no data rows"),
    (b"a,b\n1,2\n3\n", "line 3 has 1 cell; the header has 2"),
    (b"a,b\n1,2\n\n3,4,5\n", "line 4 has 3 cells; the header has 2"),
    (b"a,b\n1,x\nzz,1\n", "line 3, column 1 ('a'): 'zz' is not a number"),
    (b"a,b,c\n1,2,x\n3,nan,y\n", "line 3, column 2 ('b'): 'nan' is not a finite number"),
    (b"a,b,c\n1,2,x\n3,inf,y\n", "line 3, column 2 ('b'): 'inf' is not a finite number"),
    (b"a,b\n1,2\n1,-inf\n", "line 3, column 2 ('b'): '-inf' is not a finite number"),
    (b"a,b\n1,\n", "line 2, column 2 ('b'): the target is empty"),
    (b"a,b\n,1\n", "line 2, column 1 ('a'): the cell is empty"),
    (b"a,b\n1,x\n2,x\n", "the target 'b' has only one class ('x')"),
    (b"\x89PNG\r\n\x1a\n\x00\x00", "not a CSV text file: binary data on line 3"),
    (b"a,b\n1,2\n\xff\xfe,3\n", "not a CSV text file: line 3 is not UTF-8 text"),
    (b"justone\n1\n", "needs a feature column and a target column"),
    (b"1,2\n3,4\n", "must be a header"),
    (b"a,,b\n1,2,3\n", "line 1, column 2: the header has no name here"),
    (b"a,a\n1,2\n", "'a' is in the header twice"),
    (b"a,b\n1_0,2\n", "'1_0' is not a number"),
])
def test_bad_csv_gets_one_line_naming_the_line(tmp_path, content: bytes, message: str) -> None:
    path = tmp_path / "bad.csv"
    path.write_bytes(content)
    with pytest.raises(DataError) as info:
        read_csv_file(path)
    assert message in str(info.value)
    assert "\n" not in str(info.value) and isinstance(info.value, PlaygroundError)
    assert path.read_bytes() == content  # nothing changed


def test_unknown_target_column_lists_the_columns() -> None:
    with pytest.raises(DataError, match="no column 'z' for the target; columns: a, b"):
        parse_csv("a,b\n1,2\n", target="z")


def test_missing_file_is_one_line(tmp_path) -> None:
    with pytest.raises(DataError, match="cannot read"):
        read_csv_file(tmp_path / "nope.csv")


def test_too_large_files_are_refused_after_reading_at_most_cap_plus_one(tmp_path,
                                                                        monkeypatch) -> None:
    path = tmp_path / "big.csv"
    path.write_text("a,b\n" + "".join(f"1,{i % 2}\n" for i in range(5000)), encoding="utf-8")
    reads: list[int] = []
    real_open = open

    class Recorder:
        def __init__(self, f) -> None:
            self.f = f

        def __enter__(self):
            return self

        def __exit__(self, *exc) -> None:
            self.f.close()

        def read(self, size: int = -1) -> bytes:
            reads.append(size)
            return self.f.read(size)

    monkeypatch.setattr(data_module, "open", lambda p, mode="r": Recorder(real_open(p, mode)),
                        raising=False)
    with pytest.raises(DataError, match="larger than 1,000 bytes"):
        read_csv_file(path, max_bytes=1000)
    assert reads == [1001]
    with pytest.raises(DataError, match="more than 100 data rows"):
        read_csv_file(path, max_rows=100)
    assert read_csv_file(path, max_rows=5000).n == 5000


# --- split -----------------------------------------------------------------------------------

def test_split_zero_keeps_every_row_in_file_order() -> None:
    data = make_dataset("moons", n=50, seed=0)
    split = train_test_split(data, 0.0, seed=1)
    assert split.test is None and split.train is data
    assert split.train_indices.tolist() == list(range(50))


def test_split_is_seeded_disjoint_and_complete() -> None:
    data = make_dataset("circles", n=101, seed=0)
    split = train_test_split(data, 0.2, seed=5)
    assert split.test is not None
    assert split.test.n == 20 and split.train.n == 81
    train, test = set(split.train_indices.tolist()), set(split.test_indices.tolist())
    assert not train & test and train | test == set(range(101))
    assert torch.equal(split.test.X, data.X[split.test_indices])
    assert split.train_indices.tolist() == sorted(train)  # file order within each part
    again = train_test_split(data, 0.2, seed=5)
    assert torch.equal(again.test_indices, split.test_indices)
    assert not torch.equal(train_test_split(data, 0.2, seed=6).test_indices, split.test_indices)
    assert train_test_split(data, 0.001, seed=0).test.n == 1


@pytest.mark.parametrize("fraction", [-0.1, 1.0, 1.5, float("nan"), True])
def test_bad_test_fraction_is_refused(fraction) -> None:
    with pytest.raises(DataError, match="test fraction"):
        train_test_split(make_dataset("moons", n=10), fraction)


# --- minibatches -------------------------------------------------------------------------------

@pytest.mark.parametrize("batch_size", [0, 10, 25])
def test_full_batch_is_every_row_in_order(batch_size: int) -> None:
    sampler = MinibatchSampler(10, batch_size, seed=3)
    assert sampler.full_batch
    for _ in range(3):
        assert sampler.next_batch().tolist() == list(range(10))


@pytest.mark.parametrize("batch_size", [1, 3, 4])
def test_minibatches_equal_a_plain_randperm_loop(batch_size: int) -> None:
    n, seed = 10, 42
    sampler = MinibatchSampler(n, batch_size, seed=seed)
    g = torch.Generator().manual_seed(seed)
    expected = []
    for _ in range(3):  # three epochs, as a PyTorch user shuffles them
        perm = torch.randperm(n, generator=g)
        expected += [perm[i:i + batch_size].tolist() for i in range(0, n, batch_size)]
    got = [sampler.next_batch().tolist() for _ in range(len(expected))]
    assert got == expected
    assert sampler.epoch == 3 and sampler.batches_per_epoch == math.ceil(n / batch_size)
    epoch = sum(got[:sampler.batches_per_epoch], [])
    assert sorted(epoch) == list(range(n))  # each epoch visits every row once
    twin = MinibatchSampler(n, batch_size, seed=seed)
    assert [twin.next_batch().tolist() for _ in range(len(expected))] == got
    other = MinibatchSampler(n, batch_size, seed=seed + 1)
    assert [other.next_batch().tolist() for _ in range(len(expected))] != got


def test_sampler_resets_and_carries_on_from_a_saved_position() -> None:
    sampler = MinibatchSampler(7, 3, seed=11)
    first = [sampler.next_batch().tolist() for _ in range(8)]
    sampler.reset()
    assert [sampler.next_batch().tolist() for _ in range(8)] == first
    sampler.reset()
    for _ in range(4):
        sampler.next_batch()
    saved = sampler.state_dict()
    later = MinibatchSampler(7, 3, seed=11)
    later.load_state_dict(saved)
    assert [later.next_batch().tolist() for _ in range(4)] == first[4:]
    assert later.epoch == sampler.epoch + 1
    with pytest.raises(DataError, match="other data or settings"):
        MinibatchSampler(8, 3, seed=11).load_state_dict(saved)
    with pytest.raises(DataError, match="not a permutation"):
        MinibatchSampler(7, 3, seed=11).load_state_dict({**saved, "order": [0] * 7})


def test_held_out_metrics_are_taken_without_grad_in_eval_mode() -> None:
    data = make_dataset("moons", n=30, seed=0)
    model = build_model("Linear(2, 4), Dropout(p=0.5), Linear(4, 1)", 2, seed=0)
    targets = shape_targets(data.y, "BCEWithLogitsLoss")
    loss, acc = held_out_metrics(model, nn.BCEWithLogitsLoss(), data.X, targets,
                                 "BCEWithLogitsLoss")
    assert model.training and all(p.grad is None for p in model.parameters())
    with torch.no_grad():
        outputs = model.eval()(data.X)
        assert loss == float(nn.BCEWithLogitsLoss()(outputs, targets))
    assert acc == float(((outputs[:, 0] > 0).long() == data.y).double().mean())


def test_bad_batch_settings_are_refused() -> None:
    with pytest.raises(DataError, match="batch size"):
        MinibatchSampler(10, -1)
    with pytest.raises(DataError, match="at least one training row"):
        MinibatchSampler(0, 1)


def test_minibatch_sgd_equals_a_plain_loop_drawing_the_same_batches() -> None:
    data = make_dataset("moons", n=40, seed=0)
    loss_name = default_loss(data.task)
    targets = shape_targets(data.y, loss_name)
    model = build_model("Linear(2, 8), Tanh(), Linear(8, 1)", 2, seed=1)
    plain = build_model("Linear(2, 8), Tanh(), Linear(8, 1)", 2, seed=1)
    loss_fn = make_loss(loss_name, data.task)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.3)
    sampler = MinibatchSampler(data.n, 8, seed=9)
    for _ in range(12):
        batch = sampler.next_batch()
        optimizer.zero_grad()
        loss_fn(model(data.X[batch]), targets[batch]).backward()
        optimizer.step()
    # the reference, written as a PyTorch user would
    plain_loss = nn.BCEWithLogitsLoss()
    plain_opt = torch.optim.SGD(plain.parameters(), lr=0.3)
    g = torch.Generator().manual_seed(9)
    y = data.y.to(torch.float64).unsqueeze(1)
    steps = 0
    while steps < 12:
        perm = torch.randperm(40, generator=g)
        for i in range(0, 40, 8):
            if steps == 12:
                break
            idx = perm[i:i + 8]
            plain_opt.zero_grad()
            plain_loss(plain(data.X[idx]), y[idx]).backward()
            plain_opt.step()
            steps += 1
    for a, b in zip(model.parameters(), plain.parameters()):
        assert torch.equal(a, b)


# --- losses ----------------------------------------------------------------------------------

def test_default_losses_and_refusals() -> None:
    assert default_loss("regression") == "MSELoss"
    assert default_loss("binary") == "BCEWithLogitsLoss"
    assert default_loss("multiclass") == "CrossEntropyLoss"
    assert check_loss("nn.CrossEntropyLoss", "binary") == "CrossEntropyLoss"
    with pytest.raises(DataError, match="CrossEntropyLoss does not fit a target of numbers"):
        check_loss("CrossEntropyLoss", "regression")
    with pytest.raises(DataError, match="use CrossEntropyLoss"):
        check_loss("BCEWithLogitsLoss", "multiclass")
    with pytest.raises(DataError, match="did you mean MSELoss"):
        check_loss("MSELos", "regression")
    assert output_width("CrossEntropyLoss", 3) == 3 and output_width("MSELoss", 0) == 1


def test_targets_are_shaped_for_each_loss_and_give_torchs_losses() -> None:
    blobs = make_dataset("blobs", n=30, seed=0)
    outputs = torch.randn(30, 3, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    ce = shape_targets(blobs.y, "CrossEntropyLoss")
    assert ce.dtype == torch.int64 and ce.shape == (30,)
    assert torch.equal(make_loss("CrossEntropyLoss", "multiclass")(outputs, ce),
                       F.cross_entropy(outputs, blobs.y))
    moons = make_dataset("moons", n=30, seed=0)
    bce = shape_targets(moons.y, "BCEWithLogitsLoss")
    assert bce.dtype == torch.float64 and bce.shape == (30, 1)
    logits = outputs[:, :1]
    assert torch.equal(make_loss("BCEWithLogitsLoss", "binary")(logits, bce),
                       F.binary_cross_entropy_with_logits(logits, moons.y.double()[:, None]))
    line = make_dataset("line", n=30, seed=0)
    assert shape_targets(line.y, "MSELoss").shape == (30, 1)
    predicted = (logits[:, 0] > 0).long()
    assert accuracy(logits, moons.y, "BCEWithLogitsLoss") == pytest.approx(
        float((predicted == moons.y).double().mean()))
    assert accuracy(outputs, blobs.y, "CrossEntropyLoss") == pytest.approx(
        float((outputs.argmax(1) == blobs.y).double().mean()))
    assert accuracy(outputs[:, :1], line.y, "MSELoss") is None


def test_a_session_with_a_csv_reads_the_text_once(monkeypatch) -> None:
    from core.model_session import ModelSession  # (core.model_session imports this module)

    data = data_module
    text = "a,b,label\n" + "\n".join(f"{i},{i % 7},{'yes' if i % 3 else 'no'}"
                                     for i in range(60)) + "\n"
    calls = []
    real = data._numbered_rows

    def counting(*args, **kwargs):
        calls.append(1)
        return real(*args, **kwargs)

    monkeypatch.setattr(data, "_numbered_rows", counting)
    data._parse_csv_text.cache_clear()
    session = ModelSession.from_dict({
        "format": "optimizer-playground-model-session", "version": 1, "model": "small-mlp",
        "data": {"csv": text, "name": "mine.csv"}, "runs": [{"optimizer": "SGD"}]})
    built = session.build()
    assert built.dataset.class_names == ("no", "yes")
    assert len(calls) == 1  # checked, built and rebuilt from one reading


def test_whole_number_targets_are_numbers_when_the_loss_is_mse() -> None:
    as_regression = data_module.as_regression
    data = parse_csv("x,rating\n0.1,1\n0.2,3\n0.3,2\n0.4,3\n")
    assert data.task == "multiclass"  # whole numbers, few of them: read as classes
    numbers = as_regression(data)
    assert numbers.task == "regression" and numbers.y.tolist() == [1.0, 3.0, 2.0, 3.0]
    assert torch.equal(numbers.X, data.X)
    with pytest.raises(DataError, match="holds words"):
        as_regression(parse_csv("x,animal\n1,cat\n2,dog\n"))


def test_for_loss_reads_whole_number_classes_as_numbers_only_for_mse() -> None:
    data = parse_csv("x,rating\n0.1,1\n0.2,3\n0.3,2\n0.4,3\n")
    assert data_module.for_loss(data, "nn.MSELoss()").y.tolist() == [1.0, 3.0, 2.0, 3.0]
    assert data_module.for_loss(data, "MSELoss").task == "regression"
    for loss in (None, "CrossEntropyLoss"):
        assert data_module.for_loss(data, loss) is data  # classes, as they were read
