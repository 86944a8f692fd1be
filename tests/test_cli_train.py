"""`train` and `landscape` (core/model_cli.py) through their own argparse parser.

The reference for training is the loop a PyTorch user writes on the model itself:

    for k in range(steps):
        opt.zero_grad(); loss = loss_fn(model(X[rows]), y[rows]); loss.backward(); opt.step()

on the same data (core.problems.data), the same seeded weights (build_model) and, for
minibatches, the batches MinibatchSampler draws. The command's JSON must equal it bit for bit
(JSON floats are repr, which round-trips float64 exactly).
"""

from __future__ import annotations

import argparse
import ast
import json

import pytest
import torch

from core.errors import PlaygroundError
from core.model_cli import add_landscape_arguments, add_train_arguments, \
    run_landscape_command, run_train_command
from core.optimizers import parse_optimizer_call
from core.problems.data import MinibatchSampler, make_dataset, make_loss, shape_targets, \
    train_test_split
from core.problems.model import build_model

STEPS = 15


def train(*argv: str) -> dict:
    parser = argparse.ArgumentParser()
    add_train_arguments(parser)
    return json.loads(run_train_command(parser.parse_args([*argv, "--json"])))


def train_text(*argv: str) -> str:
    parser = argparse.ArgumentParser()
    add_train_arguments(parser)
    return run_train_command(parser.parse_args(list(argv)))


def landscape(*argv: str) -> dict:
    parser = argparse.ArgumentParser()
    add_landscape_arguments(parser)
    return json.loads(run_landscape_command(parser.parse_args(list(argv))))


def plain_loop(dataset: str, n: int, spec: str, loss: str, call: str, frozen_layer: int | None,
               seed: int, batch_size: int = 0, test_fraction: float = 0.0,
               steps: int = STEPS) -> tuple[torch.nn.Module, list[float], list[float]]:
    """The textbook loop: (model after `steps` steps, losses at steps 0..steps, test losses)."""
    data = make_dataset(dataset, n=n, seed=seed)
    split = train_test_split(data, test_fraction, seed)
    X, y = split.train.X, shape_targets(split.train.y, loss)
    model = build_model(spec, data.n_features, seed)
    if frozen_layer is not None:
        for p in model[frozen_layer].parameters():
            p.requires_grad_(False)
    name, _ = parse_optimizer_call(call)
    tree = ast.parse(call, mode="eval").body  # the user's own keywords; torch's defaults
    keywords = {k.arg: ast.literal_eval(k.value) for k in tree.keywords}
    opt = getattr(torch.optim, name)(model.parameters(), **keywords)
    loss_fn = make_loss(loss, data.task)
    sampler = MinibatchSampler(len(X), batch_size, seed)
    losses, test_losses = [], []

    def test_loss() -> float:
        with torch.no_grad():
            return float(loss_fn(model(split.test.X), shape_targets(split.test.y, loss)))

    for _ in range(steps):
        rows = sampler.next_batch()

        def closure(rows: torch.Tensor = rows) -> torch.Tensor:
            opt.zero_grad()
            value = loss_fn(model(X[rows]), y[rows])
            value.backward()
            return value
        if split.test is not None:
            test_losses.append(test_loss())
        losses.append(closure().item())
        opt.step(closure) if name == "LBFGS" else opt.step()
    rows = sampler.next_batch()  # the engine's last entry: batch `steps` at the final point
    with torch.no_grad():
        losses.append(float(loss_fn(model(X[rows]), y[rows])))
    if split.test is not None:
        test_losses.append(test_loss())
    return model, losses, test_losses


CASES = [
    ("moons", "Linear(2, 8), Tanh(), Linear(8, 1)", "BCEWithLogitsLoss", 0),
    ("line", "Linear(1, 4), Tanh(), Linear(4, 1)", "MSELoss", 2),
    ("blobs", "Linear(2, 6), ReLU(), Linear(6, 3)", "CrossEntropyLoss", 0),
]
CALLS = ["SGD(lr=0.1, momentum=0.9)", "Adam(lr=0.01)", "RMSprop(lr=0.01)",
         "AdamW(lr=0.02, weight_decay=0.1)", "LBFGS(lr=0.5, max_iter=4)"]


@pytest.mark.parametrize("dataset, spec, loss, frozen_layer", CASES)
def test_full_batch_training_equals_the_plain_loop_bit_for_bit(dataset, spec, loss,
                                                              frozen_layer) -> None:
    argv = ["--dataset", dataset, "--n", "40", "--model", spec, "--loss", loss,
            "--steps", str(STEPS), "--seed", "3", "--test-fraction", "0",
            "--freeze", str(frozen_layer)]
    for call in CALLS:
        argv += ["--optimizer", call]
    report = train(*argv)
    assert [r["call"].split("(")[0] for r in report["runs"]] == [c.split("(")[0] for c in CALLS]
    for call, run in zip(CALLS, report["runs"]):
        model, losses, _ = plain_loop(dataset, 40, spec, loss, call, frozen_layer, seed=3)
        assert run["trajectory"]["step"] == list(range(STEPS + 1))
        assert run["trajectory"]["loss"] == losses, call
        for name, p in model.named_parameters():
            assert run["final_parameters"][name] == p.detach().tolist(), (call, name)
        frozen = [f"{frozen_layer}.weight", f"{frozen_layer}.bias"]
        assert run["frozen"] == frozen
        for name in frozen:  # bitwise where it started, and where the seed put it
            assert run["final_parameters"][name] == run["initial_parameters"][name]
            assert run["final_parameters"][name] == dict(
                build_model(spec, 2 if dataset != "line" else 1, 3).named_parameters()
            )[name].detach().tolist()
        assert run["trajectory"]["test_loss"] == [None] * (STEPS + 1)
    trainable = {p["name"]: p["trainable"] for p in report["model"]["parameters"]}
    assert trainable[f"{frozen_layer}.weight"] is False
    assert sum(trainable.values()) == len(trainable) - 2


def test_minibatches_equal_the_plain_loop_drawing_the_same_batches() -> None:
    calls = ["SGD(lr=0.2)", "Adam(lr=0.02)"]
    argv = ["--dataset", "circles", "--n", "60", "--model", "Linear(2, 8), Tanh(), Linear(8, 1)",
            "--steps", str(STEPS), "--seed", "5", "--batch-size", "16", "--test-fraction",
            "0.25", "--eval-every", "1"]
    for call in calls:
        argv += ["--optimizer", call]
    report = train(*argv)
    assert report["data"]["batch_size"] == 16 and report["data"]["train_rows"] == 45
    for call, run in zip(calls, report["runs"]):
        model, losses, test_losses = plain_loop("circles", 60, "Linear(2, 8), Tanh(), "
                                                "Linear(8, 1)", "BCEWithLogitsLoss", call, None,
                                                seed=5, batch_size=16, test_fraction=0.25)
        # entry k's loss is batch k's at the parameters after k steps (the last: batch STEPS)
        assert run["trajectory"]["loss"] == losses, call
        for name, p in model.named_parameters():
            assert run["final_parameters"][name] == p.detach().tolist(), (call, name)
        # held out under no_grad, every step
        assert run["trajectory"]["test_loss"] == test_losses


def test_held_out_metrics_every_k_steps_and_null_between() -> None:
    report = train("--dataset", "blobs", "--n", "60", "--model", "small-mlp", "--steps", "10",
                   "--eval-every", "4", "--optimizer", "Adam(lr=0.05)")
    t = report["runs"][0]["trajectory"]
    measured = [s for s, v in zip(t["step"], t["test_loss"]) if v is not None]
    assert measured == [0, 4, 8, 10]
    assert [s for s, v in zip(t["step"], t["accuracy"]) if v is not None] == measured
    assert all(0.0 <= v <= 1.0 for v in t["accuracy"] if v is not None)
    assert report["model"]["spec"] == "Linear(2, 16), Tanh(), Linear(16, 3)"  # 3 classes
    assert "every 4 steps" in report["data"]["metrics"]
    assert "no_grad" in report["data"]["metrics"]
    assert len(t["grad_norm"]) == 11 and all(g > 0 for g in t["grad_norm"])


def test_grad_norm_counts_a_one_element_bias() -> None:
    # Linear(1, 1): weight (1, 1) and bias (1,), both one element: |grad| over both.
    report = train("--dataset", "line", "--model", "linear-regression", "--steps", "1",
                   "--optimizer", "SGD(lr=0.1)", "--test-fraction", "0")
    data = make_dataset("line")
    model = build_model("Linear(1, 1)", 1, 0)
    loss = torch.nn.MSELoss()(model(data.X), shape_targets(data.y, "MSELoss"))
    loss.backward()
    expected = torch.cat([p.grad.reshape(-1) for p in model.parameters()]).norm().item()
    assert report["runs"][0]["trajectory"]["grad_norm"][0] == pytest.approx(expected, rel=1e-12)


def test_table_without_json() -> None:
    text = train_text("--dataset", "xor", "--n", "40", "--steps", "3")
    assert "SGD(lr=0.1)" in text and "Adam(lr=0.01)" in text
    assert "xor, 40 rows (32 train, 8 test)" in text


def test_csv_data_with_a_target_column(tmp_path) -> None:
    path = tmp_path / "points.csv"
    rows = ["label,a,b"] + [f"{'yes' if i % 3 else 'no'},{i * 0.1},{(i % 5) * 0.3}"
                            for i in range(20)]
    path.write_text("\n".join(rows) + "\n")
    report = train("--data", str(path), "--target", "label", "--steps", "2",
                   "--test-fraction", "0", "--model", "logistic-regression")
    assert report["data"]["features"] == ["a", "b"]
    assert report["data"]["classes"] == ["no", "yes"] and report["data"]["rows"] == 20
    assert report["model"]["spec"] == "Linear(2, 1)"


# --- landscape -------------------------------------------------------------------------------


def test_exact_landscape_of_two_parameters_equals_the_loss_at_each_point() -> None:
    report = landscape("--dataset", "line", "--n", "50", "--model", "linear-regression",
                       "--directions", "exact", "--grid", "5", "--span", "0.5", "--seed", "2")
    assert report["x"]["name"] == "0.weight" and report["y"]["name"] == "0.bias"
    data = make_dataset("line", n=50, seed=2)
    y = shape_targets(data.y, "MSELoss")
    model = build_model("Linear(1, 1)", 1, 2)
    assert len(report["loss"]) == 5 and all(len(row) == 5 for row in report["loss"])
    for i, b in enumerate(report["y"]["values"]):       # rows along y
        for j, w in enumerate(report["x"]["values"]):
            with torch.no_grad():
                model[0].weight.fill_(w)
                model[0].bias.fill_(b)
                expected = float(torch.nn.MSELoss()(model(data.X), y))
            assert report["loss"][i][j] == pytest.approx(expected, rel=1e-12, abs=1e-15)


def test_exact_landscape_with_all_but_two_scalars_frozen() -> None:
    report = landscape("--dataset", "line", "--model", "Linear(1, 2), Linear(2, 1)",
                       "--freeze", "0", "--freeze", "1.bias", "--directions", "exact",
                       "--grid", "3")
    assert (report["x"]["name"], report["y"]["name"]) == ("1.weight[0, 0]", "1.weight[0, 1]")


@pytest.mark.parametrize("directions", ["random", "hessian", "pca"])
def test_slice_at_the_origin_equals_the_loss_at_the_centre(directions) -> None:
    report = landscape("--dataset", "moons", "--n", "60", "--model", "small-mlp",
                       "--directions", directions, "--grid", "7", "--span", "0.5",
                       "--steps", "8", "--optimizer", "Adam(lr=0.05)", "--optimizer",
                       "SGD(lr=0.5)")
    assert report["x"]["name"] == "alpha" and report["y"]["name"] == "beta"
    assert report["x"]["values"][3] == 0.0 and report["y"]["values"][3] == 0.0
    data = make_dataset("moons", n=60, seed=0)
    model = build_model("Linear(2, 16), Tanh(), Linear(16, 1)", 2, 0)
    with torch.no_grad():
        centre = float(torch.nn.BCEWithLogitsLoss()(model(data.X),
                                                     shape_targets(data.y, "BCEWithLogitsLoss")))
    assert report["centre_loss"] == pytest.approx(centre, rel=1e-12)
    assert report["loss"][3][3] == pytest.approx(centre, rel=1e-12)
    assert len(report["paths"]) == 2 and len(report["paths"][0]["x"]) == 9
    assert report["paths"][0]["x"][0] == pytest.approx(0.0, abs=1e-12)  # runs start at θ₀
    if directions == "pca":
        ratio = report["directions"]["explained_variance_ratio"]
        assert 0 < ratio[1] <= ratio[0] and sum(ratio) <= 1 + 1e-12
    assert all(0 <= p["captured"] <= 1 + 1e-12 for p in report["paths"])


def test_landscape_writes_csv(tmp_path) -> None:
    out = tmp_path / "grid.csv"
    parser = argparse.ArgumentParser()
    add_landscape_arguments(parser)
    text = run_landscape_command(parser.parse_args([
        "--dataset", "line", "--model", "linear-regression", "--directions", "exact",
        "--grid", "3", "--out", str(out)]))
    assert text == f"wrote {out}"
    lines = out.read_text().splitlines()
    assert lines[0] == "0.weight,0.bias,loss" and len(lines) == 10


# --- bad input: one line, a PlaygroundError --------------------------------------------------


BAD_TRAIN = [
    (["--dataset", "mons"], "unknown dataset 'mons'; did you mean moons?"),
    (["--model", "Linear(2, 16), Tanhh(), Linear(16, 1)"], "unknown layer 'Tanhh'"),
    (["--model", "Linear(3, 1)"], "expects 3 inputs but the data has 2 features"),
    (["--model", "Linear(2, 2)"], "needs 1"),
    (["--freeze", "0.wieght"], "no parameter '0.wieght'; did you mean 0.weight?"),
    (["--freeze", "7"], "there is no layer 7"),
    (["--freeze", "1"], "layer 1 (Tanh) has no parameters"),
    (["--loss", "MSELoss"], "MSELoss does not fit"),
    (["--optimizer", "Adamm(lr=0.1)"], "unknown optimizer 'Adamm'"),
    (["--steps", "-1"], "--steps must be from 0"),
    (["--test-fraction", "1"], "test fraction must be in [0, 1)"),
    (["--batch-size", "-2"], "batch size must be a whole number"),
    (["--target", "y"], "--target goes with --data"),
    (["--eval-every", "0"], "--eval-every must be 1 or more"),
    (["--data", "/nonexistent/file.csv"], "cannot read"),
]


@pytest.mark.parametrize("argv, message", BAD_TRAIN)
def test_bad_train_input_gives_one_line(argv, message) -> None:
    with pytest.raises(PlaygroundError) as caught:
        train_text(*argv, "--steps", "1") if "--steps" not in argv else train_text(*argv)
    assert message in str(caught.value)
    assert "\n" not in str(caught.value)


@pytest.mark.parametrize("text, message", [
    ("a,b,c\n1,2,0\n3,4\n", "points.csv: line 3 has 2 cells; the header has 3"),
    ("a,b,c\n1,2,0\n3,x,1\n", "line 3, column 2 ('b'): 'x' is not a number"),
    ("a,b,c\n1,2,0\n3,4,0\n", "only one class"),
    ("a,b,c\n1,nan,0\n3,4,1\n", "not a finite number"),
    ("", "points.csv: the file is empty"),
])
def test_bad_csv_gives_one_line_naming_the_line(tmp_path, text, message) -> None:
    path = tmp_path / "points.csv"
    path.write_text(text)
    with pytest.raises(PlaygroundError) as caught:
        train_text("--data", str(path), "--steps", "1", "--test-fraction", "0")
    assert message in str(caught.value) and "\n" not in str(caught.value)


@pytest.mark.parametrize("argv, message", [
    (["--directions", "pca"], "train first with --steps"),
    (["--directions", "exact"], "exactly two trainable scalars; this model has 65"),
    (["--out", "grid.png"], ".png pictures of the landscape are made by the app"),
    (["--out", "grid.txt"], "--out must end in .json or .csv"),
    (["--grid", "1"], "grid size must be a whole number from 2"),
    (["--span", "0"], "--span must be a positive number"),
])
def test_bad_landscape_input_gives_one_line(argv, message) -> None:
    with pytest.raises(PlaygroundError) as caught:
        landscape("--dataset", "moons", "--n", "20", *argv)
    assert message in str(caught.value) and "\n" not in str(caught.value)


def test_a_diverged_run_stops_and_its_json_stays_strict() -> None:
    report = train("--dataset", "line", "--model", "small-mlp", "--steps", "50",
                   "--optimizer", "SGD(lr=1e6)", "--optimizer", "Adam(lr=0.01)")
    diverged, fine = report["runs"]
    assert diverged["status"] == "diverged" and diverged["steps"] < 50
    assert fine["status"] != "diverged" and fine["steps"] == 50
    assert len(diverged["trajectory"]["loss"]) <= diverged["steps"] + 1


def test_exact_landscape_paths_are_the_runs_two_scalars() -> None:
    report = landscape("--dataset", "line", "--model", "linear-regression", "--directions",
                       "exact", "--grid", "3", "--steps", "6", "--optimizer", "Adam(lr=0.1)")
    train_report = train("--dataset", "line", "--model", "linear-regression", "--steps", "6",
                         "--optimizer", "Adam(lr=0.1)", "--test-fraction", "0")
    path = report["paths"][0]
    assert (path["x"][0], path["y"][0]) == (report["x"]["values"][1], report["y"]["values"][1])
    final = train_report["runs"][0]["final_parameters"]
    assert (path["x"][-1], path["y"][-1]) == (final["0.weight"][0][0], final["0.bias"][0])
    assert len(path["x"]) == 7 and path["captured"] == 1.0
