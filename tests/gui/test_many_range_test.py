"""The LR range test tab: its curves and suggestion are core.lr_finder.range_test's, the rule is
written beside the line, "Use this lr" sets the model run's lr, and the exports."""

from __future__ import annotations

import numpy as np
import pytest

from core.lr_finder import RULES, range_test
from gui.many.range_test_view import RangeTestView
from tests.gui.many_fixtures import compute as _compute
from tests.gui.many_fixtures import make_model, one_torch_thread  # noqa: F401 (fixtures)


@pytest.fixture
def model(make_model):  # noqa: F811 (the imported fixture, by name)
    return make_model(("SGD", 0.1), ("Adam", 0.01))


@pytest.fixture
def view(qtbot, model):
    v = RangeTestView(model)
    qtbot.addWidget(v)
    v.resize(1000, 600)
    v.show()
    v.steps_spin.setValue(40)
    yield v
    v.shutdown()


def compute(qtbot, view) -> None:
    _compute(qtbot, view)


def test_the_curves_and_the_suggestion_are_cores(qtbot, view, model):
    model.select(model.runs[1])  # the workspace's selected run is the one tested
    assert view.run_combo.currentText() == "Adam(lr=0.01)"
    compute(qtbot, view)
    expected = range_test(model.settings.session().build(), ("Adam", {"lr": 0.01}), 1e-5, 10.0,
                          40)
    option, test = view.shown
    assert np.array_equal(test.smoothed, expected.smoothed)
    x, y = view.smooth_curve.getData()
    assert np.allclose(10 ** np.asarray(x), expected.lrs, rtol=1e-12)
    assert np.array_equal(np.asarray(y), expected.smoothed)
    lr = expected.suggested_lr("valley")
    assert view.suggestion_line.isVisible()
    assert view.suggestion_line.value() == pytest.approx(np.log10(lr))
    assert RULES["valley"] in view.suggestion_label.toPlainText()
    view.rule_combo.setCurrentText("steepest")
    steepest = expected.suggested_lr("steepest")
    assert view.suggestion_line.value() == pytest.approx(np.log10(steepest))
    assert RULES["steepest"] in view.suggestion_label.toPlainText()


def test_use_this_lr_sets_the_tested_runs_lr(qtbot, view, model):
    view.run_combo.setCurrentIndex(0)
    compute(qtbot, view)
    sgd = model.runs[0]
    lr = view.suggested_lr()
    with qtbot.waitSignal(view.sigLrApplied, timeout=2000):
        view.use_button.click()
    assert sgd.hyperparameters["lr"] == lr and model.selected is sgd
    assert "valley" in view.runner.message.text()
    model.remove_run(sgd)
    assert not view.use_suggestion() and "no longer" in view.runner.message.text()


def test_a_repeat_is_cached_bad_input_runs_nothing_and_data_exports(qtbot, view, tmp_path):
    compute(qtbot, view)
    started = view.runner.jobs_started
    with qtbot.waitSignal(view.sigComputed, timeout=2000):
        assert not view.compute()
    assert view.runner.jobs_started == started
    view.high_edit.setText("x")
    assert not view.compute() and "number" in view.runner.message.text()
    out = tmp_path / "lr.csv"
    assert view.exports.export_to(out)
    lines = out.read_text().splitlines()
    assert lines[0] == "step,lr,loss,smoothed_loss,suggested" and len(lines) == 1 + len(
        view.shown[1])
