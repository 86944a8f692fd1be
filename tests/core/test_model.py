"""core/problems/model.py: models written as in PyTorch, parsed (never run), built from a seed."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from core.errors import PlaygroundError
from core.problems.model import (
    LAYERS, MAX_LAYERS, PRESETS, ModelError, ParameterLayout, build_model,
    parameter_names_to_freeze, parameters_vector, parse_model, preset_text, resolve_model_text,
)


@pytest.mark.parametrize("text, canonical", [
    ("Linear(2, 16), Tanh(), Linear(16, 1)", "Linear(2, 16), Tanh(), Linear(16, 1)"),
    ("Sequential(Linear(2,16), Tanh(), Linear(16,1))", "Linear(2, 16), Tanh(), Linear(16, 1)"),
    ("nn.Sequential(nn.Linear(2, 16), torch.nn.Tanh(), nn.Linear(16, 1))",
     "Linear(2, 16), Tanh(), Linear(16, 1)"),
    ("  Linear(in_features=2, out_features=4, bias=False),\n  ReLU()",
     "Linear(2, 4, bias=False), ReLU()"),
    ("Linear(2, 4), LeakyReLU(negative_slope=0.1), Dropout(p=0.2), LayerNorm(4), "
     "BatchNorm1d(4, momentum=None), GELU(approximate='tanh'), ELU(alpha=0.5), SiLU(), "
     "Softplus(beta=2), Sigmoid(), Identity(), Linear(4, 1)",
     "Linear(2, 4), LeakyReLU(negative_slope=0.1), Dropout(p=0.2), LayerNorm(4), "
     "BatchNorm1d(4, momentum=None), GELU(approximate='tanh'), ELU(alpha=0.5), SiLU(), "
     "Softplus(beta=2.0), Sigmoid(), Identity(), Linear(4, 1)"),
    ("Linear(1, 1)", "Linear(1, 1)"),
    ("Linear(2, 3), Tanh", "Linear(2, 3), Tanh()"),
])
def test_parse_gives_canonical_text(text: str, canonical: str) -> None:
    spec = parse_model(text, 2 if text != "Linear(1, 1)" else 1)
    assert spec.canonical == canonical
    assert parse_model(spec.canonical, spec.in_features).canonical == canonical  # a fixed point


def test_built_weights_equal_plain_torch_with_the_same_seed_and_leave_the_rng_alone() -> None:
    before = torch.random.get_rng_state()
    model = build_model("Linear(2, 16), Tanh(), Linear(16, 1)", 2, seed=7)
    assert torch.equal(torch.random.get_rng_state(), before)
    torch.manual_seed(7)  # how a PyTorch user writes it
    plain = nn.Sequential(nn.Linear(2, 16, dtype=torch.float64), nn.Tanh(),
                          nn.Linear(16, 1, dtype=torch.float64))
    ours, theirs = model.state_dict(), plain.state_dict()
    assert list(ours) == list(theirs)
    for name in ours:
        assert ours[name].dtype == torch.float64
        assert torch.equal(ours[name], theirs[name]), name
    again = build_model("Linear(2, 16), Tanh(), Linear(16, 1)", 2, seed=7)
    assert torch.equal(parameters_vector(again), parameters_vector(model))
    other = build_model("Linear(2, 16), Tanh(), Linear(16, 1)", 2, seed=8)
    assert not torch.equal(parameters_vector(other), parameters_vector(model))


def test_keywords_reach_the_torch_layers() -> None:
    model = build_model("Linear(3, 4, bias=False), LeakyReLU(negative_slope=0.1), Dropout(p=0.2),"
                        " LayerNorm(4, eps=0.001), BatchNorm1d(4, momentum=None, affine=False), "
                        "GELU(approximate='tanh'), Softplus(beta=2, threshold=10), Linear(4, 2)",
                        3, seed=0)
    assert model[0].bias is None and model[0].weight.shape == (4, 3)
    assert model[1].negative_slope == 0.1
    assert model[2].p == 0.2
    assert model[3].eps == 0.001 and model[3].weight.dtype == torch.float64
    assert model[4].momentum is None and model[4].weight is None
    assert model[4].running_mean.dtype == torch.float64
    assert model[5].approximate == "tanh"
    assert (model[6].beta, model[6].threshold) == (2.0, 10.0)
    out = model(torch.randn(5, 3, dtype=torch.float64))
    assert out.shape == (5, 2)


def test_every_layer_in_the_catalogue_builds() -> None:
    for name in LAYERS:
        text = {"Linear": "Linear(2, 2)", "LayerNorm": "LayerNorm(2)",
                "BatchNorm1d": "BatchNorm1d(2)"}.get(name, f"{name}()")
        model = build_model(text, 2)
        assert type(model[0]).__name__ == name
        assert model.eval()(torch.ones(3, 2, dtype=torch.float64)).shape == (3, 2)


@pytest.mark.parametrize("text, message", [
    ("Linaer(2, 16)", "unknown layer 'Linaer' (column 1); did you mean Linear?"),
    ("Linear(2, 16), Tanh(), Linear(8, 1)",
     "Linear(2, 16) then Linear(8, 1): the second expects 8 inputs but gets 16 (column 24)"),
    ("Linear(3, 1)", "Linear(3, 1) expects 3 inputs but the data has 2 features (column 1)"),
    ("Linear(2, 4), LayerNorm(5)",
     "Linear(2, 4) then LayerNorm(5): the second expects 5 inputs but gets 4 (column 15)"),
    ("Linear(2, 16), Tanh(foo=1)", "Tanh: unknown argument 'foo'; Tanh takes no arguments"),
    ("LeakyReLU(negative_slop=0.1)", "did you mean negative_slope?"),
    ("Linear(2, 1.5)", "Linear: out_features=1.5 must be a whole number of features (column 11)"),
    ("Linear(2, 0)", "Linear: out_features=0 must be between 1 and"),
    ("Linear(2, True)", "must be a whole number"),
    ("Dropout(p=1.5)", "Dropout: p=1.5 must be in [0, 1) (column 11)"),
    ("ReLU(inplace=True)", "in-place"),
    ("Linear(2, 2, dtype=None)", "float64"),
    ("Linear(2, __import__('os').getpid())", "is not a plain value"),
    ("Linear(2, 2, bias=1)", "bias=1 must be True or False"),
    ("Linear(2)", "Linear: out_features is missing"),
    ("Linear(2, 2, 3, 4)", "at most 3 positional arguments"),
    ("Linear(2, 2, bias=True, bias=False)", "given twice"),
    ("Linear(2, 2", "cannot read the model"),
    ("", "the model is empty"),
    ("3", "expected a layer such as Linear(2, 16)"),
    ("os.system('ls')", "unknown layer 'os.system'"),
    ("Linear(2, 2000), Linear(2000, 1000)", "at most 1,000,000"),
    ("GELU(approximate='fast')", "'none' or 'tanh'"),
])
def test_bad_models_get_one_line_naming_the_layer(text: str, message: str) -> None:
    with pytest.raises(ModelError) as info:
        parse_model(text, 2)
    assert message in str(info.value)
    assert "\n" not in str(info.value)
    assert isinstance(info.value, PlaygroundError)


def test_layer_count_is_bounded() -> None:
    with pytest.raises(ModelError, match=f"at most {MAX_LAYERS}"):
        parse_model(", ".join(["Tanh()"] * (MAX_LAYERS + 1)), 2)
    assert len(parse_model(", ".join(["Tanh()"] * MAX_LAYERS), 2).layers) == MAX_LAYERS


def test_the_parser_never_runs_the_text(tmp_path, monkeypatch) -> None:
    marker = tmp_path / "ran"
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ModelError):
        parse_model(f"Linear(2, open({str(marker)!r}, 'w').write('x'))", 2)
    assert not marker.exists()


def test_presets_build_for_their_data_and_adapt() -> None:
    assert PRESETS["linear-regression"].text == "Linear(1, 1)"
    assert PRESETS["logistic-regression"].text == "Linear(2, 1)"
    for preset in PRESETS.values():
        model = build_model(preset.text, preset.inputs)
        assert model(torch.zeros(4, preset.inputs, dtype=torch.float64)).shape == (4, 1)
        three = parse_model(preset.for_data(2, 3), 2)
        assert three.out_features == 3
    assert len(list(build_model(PRESETS["deep-mlp"].text, 2).parameters())) > \
        len(list(build_model(PRESETS["small-mlp"].text, 2).parameters()))
    assert preset_text("Small MLP") == PRESETS["small-mlp"].text
    assert resolve_model_text("small_mlp", 5, 2).startswith("Linear(5, 16)")
    assert resolve_model_text("Linear(2, 1)") == "Linear(2, 1)"
    with pytest.raises(ModelError, match="did you mean small-mlp"):
        preset_text("smal-mlp")


def test_bad_seed_is_refused() -> None:
    with pytest.raises(ModelError, match="seed"):
        build_model("Linear(1, 1)", 1, seed=-1)


def test_parameter_layout_round_trips_and_follows_freezing() -> None:
    model = build_model("Linear(2, 3), Tanh(), Linear(3, 1)", 2, seed=1)
    model[0].weight.requires_grad_(False)
    layout = ParameterLayout.of(model)
    assert layout.names == ("0.weight", "0.bias", "2.weight", "2.bias")
    assert layout.trainable == (False, True, True, True)
    assert layout.size == 6 + 3 + 3 + 1
    flat = parameters_vector(model)
    named = layout.unflatten(flat)
    for name, p in model.named_parameters():
        assert torch.equal(named[name], p.detach())
    assert torch.equal(layout.flatten(named), flat)
    assert layout.unflatten(torch.stack([flat, flat]))["0.weight"].shape == (2, 3, 2)
    assert int(layout.trainable_mask().sum()) == 7
    assert ParameterLayout.of(build_model("Linear(1, 1)", 1)).scalar_names() == [
        "0.weight", "0.bias"]
    assert layout.scalar_names()[:2] == ["0.weight[0, 0]", "0.weight[0, 1]"]


def test_freeze_targets_by_name_or_layer_index() -> None:
    model = build_model("Linear(2, 4), Tanh(), LayerNorm(4), Linear(4, 1)", 2)
    assert parameter_names_to_freeze(model, "3.bias") == ("3.bias",)
    assert parameter_names_to_freeze(model, 0) == ("0.weight", "0.bias")
    assert parameter_names_to_freeze(model, "-1") == ("3.weight", "3.bias")
    assert parameter_names_to_freeze(model, "2") == ("2.weight", "2.bias")
    with pytest.raises(ModelError, match=r"layer 1 \(Tanh\) has no parameters"):
        parameter_names_to_freeze(model, 1)
    with pytest.raises(ModelError, match="there is no layer 7; the model has layers 0 to 3"):
        parameter_names_to_freeze(model, 7)
    with pytest.raises(ModelError, match="did you mean 0.weight"):
        parameter_names_to_freeze(model, "0.weigth")
