"""core/landscape.py: exact surfaces, slices and directions, checked against plain torch."""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch
from torch import nn

from core.landscape import (
    Directions, LandscapeCancelled, LandscapeError, exact_surface, hessian_directions,
    landscape_around,
    pca_directions, project_paths, random_directions, slice_surface,
)
from core.problems.data import make_dataset
from core.problems.model import build_model, parameters_vector


def moons(n: int = 80):
    data = make_dataset("moons", n=n, seed=0)
    return data.X, data.y.double().unsqueeze(1), nn.BCEWithLogitsLoss()


def plain_loss_at(model: nn.Module, flat: torch.Tensor, loss_fn, X, y) -> float:
    """The loss with the model's parameters set to `flat`, as a PyTorch user would do it."""
    other = copy.deepcopy(model).eval()
    with torch.no_grad():
        torch.nn.utils.vector_to_parameters(flat, other.parameters())
        return float(loss_fn(other(X), y))


def test_exact_surface_equals_the_models_loss_at_every_grid_point() -> None:
    data = make_dataset("line", n=50, seed=1)
    X, y = data.X, data.y.unsqueeze(1)
    model = build_model("Linear(1, 1)", 1, seed=0)
    loss_fn = nn.MSELoss()
    ws, bs = np.linspace(-1.0, 3.0, 7), np.linspace(-2.0, 2.0, 5)   # not square: rows along y
    grid = exact_surface(model, loss_fn, X, y, x_values=ws, y_values=bs)
    assert (grid.x_name, grid.y_name) == ("0.weight", "0.bias")
    assert grid.loss.shape == (5, 7)
    plain = nn.Linear(1, 1, dtype=torch.float64)
    for i, b in enumerate(bs):
        for j, w in enumerate(ws):
            with torch.no_grad():
                plain.weight.fill_(w)
                plain.bias.fill_(b)
                expected = float(loss_fn(plain(X), y))
            assert grid.loss[i, j] == pytest.approx(expected, rel=1e-12, abs=1e-14)
    with torch.no_grad():
        assert grid.centre_loss == float(loss_fn(model(X), y))
    default = exact_surface(model, loss_fn, X, y, grid=5, span=0.5)
    assert default.x_values[2] == model[0].weight.detach().item() and \
        default.y_values[2] == model[0].bias.detach().item()
    assert default.loss[2, 2] == pytest.approx(default.centre_loss, rel=1e-12)
    payload = grid.to_json()
    assert payload["x"] == {"name": "0.weight", "values": ws.tolist()}
    assert len(payload["loss"]) == 5 and len(payload["loss"][0]) == 7


def test_exact_surface_of_a_model_with_all_but_two_scalars_frozen() -> None:
    X, y, loss_fn = moons()
    model = build_model("Linear(2, 1), Tanh(), Linear(1, 1)", 2, seed=3)
    model[0].weight.requires_grad_(False)
    model[0].bias.requires_grad_(False)
    before = parameters_vector(model)
    grid = exact_surface(model, loss_fn, X, y, grid=5, span=1.0)
    assert (grid.x_name, grid.y_name) == ("2.weight", "2.bias")
    flat = before.clone()
    flat[3], flat[4] = grid.x_values[1], grid.y_values[3]
    assert grid.loss[3, 1] == pytest.approx(plain_loss_at(model, flat, loss_fn, X, y), rel=1e-12)
    assert torch.equal(parameters_vector(model), before)


def test_exact_surface_needs_exactly_two_trainable_scalars() -> None:
    X, y, loss_fn = moons()
    with pytest.raises(LandscapeError, match="exactly two trainable scalars; this model has 3"):
        exact_surface(build_model("Linear(2, 1)", 2), loss_fn, X, y)


def test_random_directions_are_filter_normalised_and_zero_on_biases_and_frozen() -> None:
    model = build_model("Linear(2, 6), Tanh(), Linear(6, 3), Tanh(), Linear(3, 1)", 2, seed=2)
    model[2].weight.requires_grad_(False)
    directions = random_directions(model, seed=4)
    assert torch.equal(directions.centre, parameters_vector(model))
    for d in (directions.d1, directions.d2):
        start = 0
        for name, p in model.named_parameters():
            part = d[start:start + p.numel()].reshape(p.shape)
            start += p.numel()
            if p.ndim == 1 or not p.requires_grad:
                assert torch.all(part == 0), name
            else:
                torch.testing.assert_close(part.norm(dim=1), p.detach().norm(dim=1))
    assert not torch.equal(directions.d1, directions.d2)
    again = random_directions(model, seed=4)
    assert torch.equal(again.d1, directions.d1)
    assert not torch.equal(random_directions(model, seed=5).d1, directions.d1)
    with_biases = random_directions(model, seed=4, one_d="filter")
    bias = with_biases.d1[12:18]
    assert float(bias.norm()) == pytest.approx(float(model[0].bias.detach().norm()))
    assert torch.equal(with_biases.d1[:12], directions.d1[:12])  # the weights do not change


@pytest.mark.parametrize("model_text", [
    "Linear(2, 16), Tanh(), Linear(16, 1)",
    "Linear(2, 8), LayerNorm(8), GELU(), Dropout(p=0.3), BatchNorm1d(8), Linear(8, 1)",
])
def test_slice_at_the_origin_is_the_centre_loss_and_elsewhere_the_plain_loss(model_text) -> None:
    X, y, loss_fn = moons()
    model = build_model(model_text, 2, seed=0)
    with torch.no_grad():
        model.train()(X)  # BatchNorm running statistics away from their initial values
    model.train()
    stats = [b.clone() for b in model.buffers()]
    before = parameters_vector(model)
    directions = random_directions(model, seed=1)
    grid = slice_surface(model, loss_fn, X, y, directions, grid=7, span=0.6, chunk_size=5)
    with torch.no_grad():
        centre = float(loss_fn(model.eval()(X), y))
    model.train()
    assert grid.x_values[3] == 0.0 and grid.y_values[3] == 0.0
    assert grid.centre_loss == pytest.approx(centre, rel=1e-13)
    assert grid.loss[3, 3] == pytest.approx(centre, rel=1e-12)
    for i, j in [(0, 0), (1, 5), (6, 2)]:
        flat = before + grid.x_values[j] * directions.d1 + grid.y_values[i] * directions.d2
        assert grid.loss[i, j] == pytest.approx(plain_loss_at(model, flat, loss_fn, X, y),
                                                rel=1e-12)
    assert torch.equal(parameters_vector(model), before)
    assert all(torch.equal(a, b) for a, b in zip(model.buffers(), stats))
    assert model.training
    unchunked = slice_surface(model, loss_fn, X, y, directions, grid=7, span=0.6)
    np.testing.assert_allclose(unchunked.loss, grid.loss, rtol=1e-12)


def test_float32_evaluation_is_close_to_float64_and_leaves_the_model_in_float64() -> None:
    X, y, loss_fn = moons()
    model = build_model("Linear(2, 8), Tanh(), BatchNorm1d(8), Linear(8, 1)", 2, seed=0)
    directions = random_directions(model, seed=2)
    exact = slice_surface(model, loss_fn, X, y, directions, grid=9)
    single = slice_surface(model, loss_fn, X, y, directions, grid=9, dtype=torch.float32)
    np.testing.assert_allclose(single.loss, exact.loss, rtol=1e-5)
    assert not np.array_equal(single.loss, exact.loss)  # it really ran in float32
    assert all(p.dtype == torch.float64 for p in model.parameters())
    assert all(b.dtype != torch.float32 for b in model.buffers())


def test_a_frozen_parameter_stays_at_the_centre_in_a_slice() -> None:
    X, y, loss_fn = moons()
    model = build_model("Linear(2, 4), Tanh(), Linear(4, 1)", 2, seed=0)
    model[0].weight.requires_grad_(False)
    d = torch.ones(parameters_vector(model).numel(), dtype=torch.float64)
    directions = Directions("custom", d, -d, parameters_vector(model))
    grid = slice_surface(model, loss_fn, X, y, directions, alphas=[0.5], betas=[0.25])
    moved = parameters_vector(model) + 0.25 * d
    moved[:8] = parameters_vector(model)[:8]  # 0.weight (4 x 2) is frozen
    assert grid.loss[0, 0] == pytest.approx(plain_loss_at(model, moved, loss_fn, X, y),
                                            rel=1e-12)


def sgd_paths(model: nn.Module, X, y, loss_fn, lrs=(0.5, 1.0, 2.0), steps: int = 12):
    """Each lr's path of flat parameter snapshots from a plain torch loop."""
    paths = []
    for lr in lrs:
        run = copy.deepcopy(model)
        optimizer = torch.optim.SGD(run.parameters(), lr=lr)
        snapshots = [parameters_vector(run)]
        for _ in range(steps):
            optimizer.zero_grad()
            loss_fn(run(X), y).backward()
            optimizer.step()
            snapshots.append(parameters_vector(run))
        paths.append(torch.stack(snapshots).numpy())
    return paths


def test_pca_directions_are_orthonormal_and_explain_the_paths() -> None:
    X, y, loss_fn = moons()
    model = build_model("Linear(2, 8), Tanh(), Linear(8, 1)", 2, seed=0)
    model[2].bias.requires_grad_(False)
    paths = sgd_paths(model, X, y, loss_fn)
    final = torch.tensor(paths[0][-1])
    directions = pca_directions(model, paths, centre=final)
    d = torch.stack([directions.d1, directions.d2])
    torch.testing.assert_close(d @ d.T, torch.eye(2, dtype=torch.float64), rtol=0, atol=1e-12)
    assert torch.all(d[:, -1] == 0)  # the frozen 2.bias
    ratio = directions.explained_variance_ratio
    assert ratio is not None and 0 < ratio[1] <= ratio[0] and ratio[0] + ratio[1] <= 1 + 1e-12
    # the same ratio from numpy's SVD of the same matrix
    offsets = np.concatenate(paths) - final.numpy()
    offsets[:, -1] = 0
    s = np.linalg.svd(offsets, compute_uv=False)
    assert ratio[0] == pytest.approx(s[0] ** 2 / (s ** 2).sum(), rel=1e-10)
    projections = project_paths(paths, directions)
    assert projections[0].alpha[-1] == pytest.approx(0, abs=1e-12)  # θ₀ is run 0's end
    assert projections[0].off_plane[-1] == pytest.approx(0, abs=1e-12)
    captured = sum(float((p.alpha ** 2 + p.beta ** 2).sum()) for p in projections) / \
        float((offsets ** 2).sum())
    assert captured == pytest.approx(ratio[0] + ratio[1], rel=1e-8)
    grid = slice_surface(model, loss_fn, X, y, directions, grid=5)
    assert grid.loss[2, 2] == pytest.approx(plain_loss_at(model, final, loss_fn, X, y),
                                            rel=1e-12)
    mean = pca_directions(model, paths, centre="mean")
    assert torch.allclose(mean.centre[:-1], torch.tensor(np.concatenate(paths)).mean(0)[:-1])


def test_pca_of_a_straight_path_completes_the_plane() -> None:
    X, y, loss_fn = moons()
    model = build_model("Linear(2, 1)", 2, seed=0)
    theta = parameters_vector(model).numpy()
    line = np.stack([theta + t * np.array([1.0, 2.0, 0.0]) for t in np.linspace(0, 1, 6)])
    directions = pca_directions(model, [line])
    d = torch.stack([directions.d1, directions.d2])
    torch.testing.assert_close(d @ d.T, torch.eye(2, dtype=torch.float64), rtol=0, atol=1e-12)
    assert directions.explained_variance_ratio == pytest.approx((1.0, 0.0), abs=1e-12)
    with pytest.raises(LandscapeError, match="do not move"):
        pca_directions(model, [np.stack([theta, theta])])
    with pytest.raises(LandscapeError, match="expected \\(3,\\)"):
        pca_directions(model, [line], centre=torch.zeros(4, dtype=torch.float64))
    with pytest.raises(LandscapeError, match=r"\(steps, 3\)"):
        pca_directions(model, [line[:, :2]])
    with pytest.raises(LandscapeError, match="non-finite"):
        pca_directions(model, [np.stack([theta, theta * np.nan])])


def test_hessian_directions_are_the_top_eigenvectors_of_the_full_hessian() -> None:
    X, y, loss_fn = moons(40)
    model = build_model("Linear(2, 3), Tanh(), Linear(3, 1)", 2, seed=1)
    theta = parameters_vector(model)
    shapes = [p.shape for p in model.parameters()]

    def loss_of(flat):
        values, start = {}, 0
        for (name, _), shape in zip(model.named_parameters(), shapes):
            values[name] = flat[start:start + shape.numel()].reshape(shape)
            start += shape.numel()
        return loss_fn(torch.func.functional_call(model, values, (X,)), y)

    values, vectors = torch.linalg.eigh(torch.autograd.functional.hessian(loss_of, theta))
    directions = hessian_directions(model, loss_fn, X, y)
    assert directions.eigenvalues == pytest.approx((float(values[-1]), float(values[-2])),
                                                   rel=1e-8)
    assert abs(float(directions.d1 @ vectors[:, -1])) == pytest.approx(1.0, abs=1e-7)
    assert abs(float(directions.d2 @ vectors[:, -2])) == pytest.approx(1.0, abs=1e-7)
    grid = slice_surface(model, loss_fn, X, y, directions, grid=3, span=0.1)
    assert grid.loss[1, 1] == pytest.approx(float(loss_of(theta)), rel=1e-12)


def test_projection_recovers_coordinates_and_the_distance_off_the_plane() -> None:
    centre = torch.zeros(4, dtype=torch.float64)
    d1 = torch.tensor([1.0, 1.0, 0.0, 0.0], dtype=torch.float64)   # not orthogonal to d2
    d2 = torch.tensor([0.0, 1.0, 0.0, 0.0], dtype=torch.float64)
    directions = Directions("custom", d1, d2, centre)
    path = np.array([[0.3, 0.3 - 0.2, 0.0, 0.0], [0.3, 0.1, 0.0, 0.4]])
    projection = project_paths([path], directions)[0]
    np.testing.assert_allclose(projection.alpha, [0.3, 0.3])
    np.testing.assert_allclose(projection.beta, [-0.2, -0.2])
    np.testing.assert_allclose(projection.off_plane, [0.0, 0.4], atol=1e-15)
    assert projection.captured == pytest.approx(1 - 0.16 / (0.09 + 0.01 + 0.09 + 0.01 + 0.16))
    with pytest.raises(LandscapeError, match="parallel"):
        project_paths([path], Directions("custom", d1, 2 * d1, centre))


class Recorder:
    """A stand-in for the worker's state: records progress, asks to stop after `stop_after`."""

    def __init__(self, stop_after: int | None = None) -> None:
        self.progress: list[float] = []
        self.stop_after = stop_after

    def set_progress(self, fraction: float) -> None:
        self.progress.append(fraction)

    def is_interruption_requested(self) -> bool:
        return self.stop_after is not None and len(self.progress) >= self.stop_after


def test_progress_is_reported_and_cancel_stops_the_evaluation() -> None:
    X, y, loss_fn = moons()
    model = build_model("Linear(2, 16), Tanh(), Linear(16, 1)", 2, seed=0)
    directions = random_directions(model)
    state = Recorder()
    slice_surface(model, loss_fn, X, y, directions, grid=9, chunk_size=10, state=state)
    assert state.progress == sorted(state.progress) and state.progress[-1] == 1.0
    assert len(state.progress) == 9  # 81 points in chunks of 10
    stopping = Recorder(stop_after=2)
    with pytest.raises(LandscapeCancelled):
        slice_surface(model, loss_fn, X, y, directions, grid=9, chunk_size=10, state=stopping)
    assert len(stopping.progress) == 2


@pytest.mark.parametrize("kwargs, message", [
    ({"grid": 1}, "grid size"), ({"grid": 5000}, "grid size"), ({"span": 0.0}, "span"),
    ({"span": float("inf")}, "span"),
])
def test_bad_grid_settings_are_refused(kwargs, message) -> None:
    X, y, loss_fn = moons()
    model = build_model("Linear(2, 4), Tanh(), Linear(4, 1)", 2)
    with pytest.raises(LandscapeError, match=message):
        slice_surface(model, loss_fn, X, y, random_directions(model), **kwargs)


@pytest.mark.parametrize("dataset, loss_fn, outputs", [
    ("sine", nn.MSELoss(), 1), ("blobs", nn.CrossEntropyLoss(), 3),
    ("xor", nn.BCEWithLogitsLoss(), 1),
])
def test_slices_work_for_every_loss(dataset: str, loss_fn: nn.Module, outputs: int) -> None:
    data = make_dataset(dataset, n=60, seed=0)
    y = data.y if outputs == 3 else data.y.double().unsqueeze(1)
    model = build_model(f"Linear({data.n_features}, 5), SiLU(), Linear(5, {outputs})",
                        data.n_features, seed=0)
    directions = random_directions(model, seed=0)
    grid = slice_surface(model, loss_fn, data.X, y, directions, grid=3, span=0.5)
    with torch.no_grad():
        assert grid.loss[1, 1] == pytest.approx(float(loss_fn(model(data.X), y)), rel=1e-12)
    flat = directions.centre + 0.5 * directions.d1 - 0.5 * directions.d2
    assert grid.loss[0, 2] == pytest.approx(plain_loss_at(model, flat, loss_fn, data.X, y),
                                            rel=1e-12)


# --- landscape_around: the grid and its paths together ------------------------------------------

def _train_paths(model: nn.Module, loss_fn, X, y, steps: int = 15) -> list[np.ndarray]:
    """Two plain torch.optim loops from the model's weights; their flat parameters per step."""
    paths = []
    for make in (lambda ps: torch.optim.SGD(ps, lr=0.5), lambda ps: torch.optim.Adam(ps, lr=0.05)):
        other = copy.deepcopy(model)
        optimizer = make(other.parameters())
        snapshots = [parameters_vector(other).numpy().copy()]
        for _ in range(steps):
            optimizer.zero_grad()
            loss_fn(other(X), y).backward()
            optimizer.step()
            snapshots.append(parameters_vector(other).numpy().copy())
        paths.append(np.stack(snapshots))
    return paths


def test_landscape_around_exact_projects_paths_to_their_two_scalars_and_covers_them() -> None:
    data = make_dataset("line", n=40, seed=1)
    X, y = data.X, data.y.unsqueeze(1)
    model = build_model("Linear(1, 1)", 1, seed=0)
    loss_fn = nn.MSELoss()
    paths = _train_paths(model, loss_fn, X, y)
    landscape = landscape_around(model, loss_fn, X, y, "exact", paths=paths, grid=11,
                                 span=0.01, cover_paths=True)
    g = landscape.grid
    assert landscape.indices == (0, 1) and landscape.directions is None
    for (x, yy), path in zip(landscape.project(paths), paths):
        np.testing.assert_array_equal(x, path[:, 0])
        np.testing.assert_array_equal(yy, path[:, 1])
        assert g.x_values[0] < x.min() and x.max() < g.x_values[-1]   # covered: span widened
        assert g.y_values[0] < yy.min() and yy.max() < g.y_values[-1]
    w0, b0 = (float(v) for v in parameters_vector(model))
    assert g.x_values[5] == w0 and g.y_values[5] == b0                # centred on θ₀
    assert landscape.origin == (w0, b0)
    even = landscape_around(model, loss_fn, X, y, "exact", grid=4, span=0.5)
    assert even.origin == (w0, b0) and not np.any(even.grid.x_values == w0)  # (between points)
    narrow = landscape_around(model, loss_fn, X, y, "exact", paths=paths, grid=11, span=0.01)
    assert narrow.grid.x_values[-1] == pytest.approx(w0 + 0.01)        # not asked to cover
    assert "exact" in landscape.plane_text(paths)


def test_landscape_around_pca_says_its_explained_variance_and_random_the_distance_off() -> None:
    X, y, loss_fn = moons(60)
    model = build_model("Linear(2, 8), Tanh(), Linear(8, 1)", 2, seed=0)
    paths = _train_paths(model, loss_fn, X, y)
    pca = landscape_around(model, loss_fn, X, y, "pca", paths=paths, grid=9)
    r1, r2 = pca.directions.explained_variance_ratio
    offsets = np.concatenate(paths) - parameters_vector(model).numpy()
    s = np.linalg.svd(offsets, compute_uv=False)
    assert r1 + r2 == pytest.approx(float((s[:2] ** 2).sum() / (s ** 2).sum()), rel=1e-9)
    assert f"{100 * (r1 + r2):.1f}%" in pca.plane_text(paths)
    assert pca.grid.loss[4, 4] == pytest.approx(pca.grid.centre_loss, rel=1e-12)
    random = landscape_around(model, loss_fn, X, y, "random", paths=paths, grid=9, seed=3)
    off = project_paths(paths, random.directions)
    mean = float(np.concatenate([p.off_plane for p in off]).mean())
    assert f"{mean:.3g} (mean)" in random.plane_text(paths)
    with pytest.raises(LandscapeError, match="must be one of"):
        landscape_around(model, loss_fn, X, y, "sideways")


def test_landscape_around_leaves_out_non_finite_snapshots() -> None:
    X, y, loss_fn = moons(40)
    model = build_model("Linear(2, 4), Tanh(), Linear(4, 1)", 2, seed=0)
    paths = _train_paths(model, loss_fn, X, y, steps=5)
    broken = np.vstack([paths[0], np.full((1, paths[0].shape[1]), np.nan)])  # a diverged end
    landscape = landscape_around(model, loss_fn, X, y, "pca", paths=[broken, paths[1]], grid=5)
    clean = landscape_around(model, loss_fn, X, y, "pca", paths=paths, grid=5)
    assert torch.equal(landscape.directions.d1, clean.directions.d1)
    random = landscape_around(model, loss_fn, X, y, "random", paths=[broken], grid=5)
    assert "nan" not in random.plane_text([broken])
    assert len(random.project([broken])[0][0]) == len(broken)  # drawn whole: NaN ends the line


def test_hessian_directions_stop_when_asked() -> None:
    X, y, loss_fn = moons(40)
    model = build_model("Linear(2, 8), Tanh(), Linear(8, 1)", 2, seed=0)

    class StopAfter:
        """Asks to stop after `n` looks (a worker's Cancel arriving mid-way)."""

        def __init__(self, n: int) -> None:
            self.looks, self.n = 0, n

        def is_interruption_requested(self) -> bool:
            self.looks += 1
            return self.looks > self.n

        def set_progress(self, fraction: float) -> None:
            pass

    state = StopAfter(3)
    with pytest.raises(LandscapeCancelled):
        landscape_around(model, loss_fn, X, y, "hessian", grid=5, state=state)
    assert state.looks == 4          # stopped at the first look after the cancel
    done = landscape_around(model, loss_fn, X, y, "hessian", grid=5, state=StopAfter(10 ** 6))
    assert done.directions.eigenvalues[0] >= done.directions.eigenvalues[1]
