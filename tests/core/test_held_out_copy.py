"""BuiltModelSession.held_out copies a run's parameters into its kept eval copy with one
torch._foreach_copy_ (h9): the figures are those of the textbook evaluation, run after run."""

from __future__ import annotations

import copy

import torch

from core.model_session import ModelSession


def textbook_held_out(built, run):
    model = copy.deepcopy(built.model)
    with torch.no_grad():
        for name, p in model.named_parameters():
            p.copy_(run.parameters[name])
    model.eval()
    with torch.no_grad():
        out = model(built.X_test)
        loss = built.loss_fn(out, built.y_test).item()
        right = ((out > 0).to(built.y_test.dtype) == built.y_test).sum().item()
        acc = right / len(built.y_test)
    return loss, acc


def test_held_out_follows_each_run_bit_for_bit():
    built = ModelSession.default().build()
    assert len(built.runs) >= 2
    first, second = built.runs[0], built.runs[1]
    first.step(7)
    second.step(3)
    for _ in range(2):  # the kept list is reused: each call takes that run's parameters
        for run in (first, second, first):
            loss, acc = built.held_out(run)
            want_loss, want_acc = textbook_held_out(built, run)
            assert loss == want_loss
            assert acc == want_acc
        first.step(5)
    # the two runs are apart, so a stale copy would have been seen
    assert built.held_out(first)[0] != built.held_out(second)[0]
    # the shared model keeps its initial weights
    for name, p in built.model.named_parameters():
        assert torch.equal(p.detach().to(built.problem._initial[name].dtype),
                           built.problem._initial[name])
