"""core.schedulers.losses_given_so_far: the losses a run's ReduceLROnPlateau was given, so that
preview_lr fed them gives the lr the run used, also for a scheduler set mid-run."""

from __future__ import annotations

import torch

from core.run import Run
from core.schedulers import losses_given_so_far, preview_lr
from core.surfaces import get_surface

PLATEAU = "ReduceLROnPlateau(factor=0.5, patience=2)"


def plain_plateau_lrs(start, lr, set_at, steps):
    """SGD on Rosenbrock as a PyTorch user writes it, the scheduler made after `set_at` steps;
    the lr each step from then on uses."""
    surface = get_surface("rosenbrock")
    x = torch.tensor(start[0], dtype=torch.float64, requires_grad=True)
    y = torch.tensor(start[1], dtype=torch.float64, requires_grad=True)
    optimizer = torch.optim.SGD([x, y], lr=lr, momentum=0.9)
    scheduler = None
    used = []
    for k in range(steps):
        if k == set_at:
            scheduler = torch.optim.lr_scheduler.ReduceLROnPlateau(optimizer, factor=0.5,
                                                                   patience=2)
        optimizer.zero_grad()
        loss = surface.formula(x, y)
        loss.backward()
        if scheduler is not None:
            used.append(optimizer.param_groups[0]["lr"])
        optimizer.step()
        if scheduler is not None:
            scheduler.step(loss.item())
    return used


def test_a_scheduler_set_mid_run_is_fed_the_losses_from_its_own_start() -> None:
    surface = get_surface("rosenbrock")
    run = Run(surface, "SGD", {"lr": 2e-3, "momentum": 0.9}, surface.start)
    run.step(10)
    assert losses_given_so_far(run, 1000) is None  # no scheduler: nothing to feed
    run.set_scheduler(PLATEAU)
    run.step(50)
    losses = losses_given_so_far(run, 1000)
    assert losses == run.trajectory.loss[10:].tolist()  # entries 10..60: 51 losses
    preview = preview_lr("SGD", run.hyperparameters, *run.scheduler_setting, 80, losses=losses)
    want = plain_plateau_lrs(surface.start, 2e-3, 10, 62)
    assert min(want) < 2e-3  # the plateau did act
    assert preview.lr[:52] == want  # exact up to the next step, which the newest loss decides
    assert set(preview.lr[51:]) == {preview.lr[51]} and "flat past step 51" in preview.note
    assert losses_given_so_far(run, 20) == losses[:20]


def test_the_kept_preview_equals_preview_lr_as_the_losses_grow() -> None:
    from core.schedulers import LossFedPreview

    kwargs = {"factor": 0.5, "patience": 1, "threshold": 0.01}
    losses = [1.0 / (1 + k) if k < 15 else 0.07 for k in range(70)]
    kept = LossFedPreview("Adam", {"lr": 0.01}, "ReduceLROnPlateau", kwargs)
    for n, steps in ((1, 40), (10, 40), (30, 40), (39, 40), (40, 40), (55, 40), (70, 90)):
        got = kept.preview(losses[:n], steps)
        want = preview_lr("Adam", {"lr": 0.01}, "ReduceLROnPlateau", kwargs, steps,
                          losses=losses[:n])
        assert (got.lr, got.momentum, got.note) == (want.lr, want.momentum, want.note), n
    assert min(got.lr) < 0.01  # it did lower the lr
    other = [2.0] * 20  # another run: not a continuation, so stepped from the start
    assert kept.preview(other, 30).lr == preview_lr("Adam", {"lr": 0.01}, "ReduceLROnPlateau",
                                                    kwargs, 30, losses=other).lr
