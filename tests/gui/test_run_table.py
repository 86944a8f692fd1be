"""RunTable: live values, the optimizer's state, frozen gradients, throttling."""

import time

import pytest
from PySide6.QtGui import QColor
from PySide6.QtWidgets import QApplication

from gui.run_table import COLUMNS, REFRESH_HZ, RunTable, format_value
from gui.worker import wait_for_jobs


@pytest.fixture
def table(qtbot, controller):
    widget = RunTable(controller)
    qtbot.addWidget(widget)
    widget.resize(1100, 300)
    widget.show()
    return widget


def cell(table, row, column):
    return table.table.item(row, COLUMNS.index(column)).text()


def settle():
    """Let a background step (a run the controller found slow on a busy machine) land, so each
    step_once gives every run exactly one step."""
    wait_for_jobs()
    QApplication.processEvents()


def step(controller, n):
    for _ in range(n):
        controller.step_once()
        settle()


def test_one_row_per_run_named_in_its_colour(table, controller):
    runs = controller.session.runs
    assert table.table.rowCount() == len(runs) == 4
    for row, run in enumerate(runs):
        item = table.table.item(row, 0)
        assert item.text() == run.title
        assert item.icon().pixmap(10, 10).toImage().pixelColor(5, 5) == QColor(run.color)


def test_shows_current_values_after_steps(qtbot, table, controller):
    step(controller, 25)
    adam = controller.session.runs[3]
    last = adam.trajectory.last()
    qtbot.waitUntil(lambda: cell(table, 3, "step") == "25", timeout=2000)
    assert cell(table, 3, "loss") == format_value(last["loss"])
    assert cell(table, 3, "x") == format_value(last["x"])
    assert cell(table, 3, "∂loss/∂y") == format_value(last["grad_y"])
    assert cell(table, 3, "|grad|") == format_value(float(adam.trajectory.grad_norm[-1]))
    assert cell(table, 3, "Δx") == format_value(adam.last_update[0])
    assert float(cell(table, 3, "Δx")) != 0
    assert cell(table, 3, "status") == "running"


def test_shows_the_optimizer_state_keys(qtbot, table, controller):
    step(controller, 5)
    qtbot.waitUntil(lambda: cell(table, 0, "step") == "5", timeout=2000)
    assert "exp_avg=" in cell(table, 3, "state x") and "exp_avg_sq=" in cell(table, 3, "state y")
    assert "momentum_buffer=" in cell(table, 1, "state x")  # SGD with momentum
    assert "square_avg=" in cell(table, 2, "state y")  # RMSprop
    assert cell(table, 0, "state x") == "–"  # plain SGD keeps nothing
    adam = controller.session.runs[3]
    value = adam.optimizer_state()["x"]["exp_avg"]
    assert f"exp_avg={format_value(value)}" in cell(table, 3, "state x")


def test_details_list_the_selected_runs_state(qtbot, table, controller):
    controller.select(controller.session.runs[3])
    step(controller, 3)
    qtbot.waitUntil(lambda: "exp_avg_sq" in table.details.text(), timeout=2000)
    assert "x: exp_avg = " in table.details.text() and "y: step = 3" in table.details.text()
    assert table.table.selectedIndexes()[0].row() == 3
    table.table.selectRow(1)  # choosing a row selects its run
    assert controller.selected is controller.session.runs[1]
    assert "momentum_buffer" in table.details.text()


def test_frozen_gradient_shows_frozen(qtbot, table, controller):
    controller.set_frozen(controller.session.runs[0], "x", True)
    step(controller, 2)
    qtbot.waitUntil(lambda: cell(table, 0, "step") == "2", timeout=2000)
    assert cell(table, 0, "∂loss/∂x") == "frozen"
    assert cell(table, 0, "∂loss/∂y") != "frozen"
    assert cell(table, 0, "Δx") == "0"


def test_updates_are_throttled_but_the_last_one_lands(qtbot, table, controller, monkeypatch):
    drawn = []
    original = table._draw_row
    monkeypatch.setattr(table, "_draw_row",
                        lambda row, run: (drawn.append(row), original(row, run)))
    started = time.perf_counter()
    step(controller, 50)  # 50 sigStepped
    elapsed_ms = (time.perf_counter() - started) * 1000
    rows = len(controller.session.runs)
    # at most one redraw per refresh interval that passed, plus the first (however slow the
    # machine): far fewer than the 50 steps
    allowed = int(elapsed_ms * REFRESH_HZ / 1000) + 2
    assert len(drawn) <= allowed * rows
    qtbot.waitUntil(lambda: cell(table, 0, "step") == "50", timeout=1000 * 3 // REFRESH_HZ + 500)


def test_rows_follow_added_and_removed_runs(table, controller):
    controller.add_run("Adagrad")
    assert table.table.rowCount() == 5 and cell(table, 4, "run").startswith("Adagrad")
    controller.remove_run(controller.session.runs[0])
    assert table.table.rowCount() == 4
    assert cell(table, 0, "run") == controller.session.runs[0].title


def test_status_column_shows_divergence(qtbot, table, controller):
    run = controller.session.runs[0]
    controller.set_hyperparameter(run, "lr", 10.0)
    step(controller, 20)
    qtbot.waitUntil(lambda: cell(table, 0, "status").startswith("diverged"), timeout=2000)
    # The same words and step as the card, the graph header and the CLI: run.status_text.
    assert cell(table, 0, "status") == f"diverged at step {run.diverged_at}"
    assert run.status_text.startswith(cell(table, 0, "status") + ":")
    assert table.table.item(0, COLUMNS.index("status")).toolTip() == run.status_text


def test_a_disabled_run_says_disabled(qtbot, table, controller):
    run = controller.session.runs[1]
    controller.set_enabled(run, False)
    assert cell(table, 1, "status") == "disabled"
    assert cell(table, 0, "status") != "disabled"
    controller.set_enabled(run, True)
    assert cell(table, 1, "status") == run.status_text.split(":")[0]


# --- scheduler, clipping and noise ----------------------------------------------------------------


def test_the_tool_columns_appear_only_while_a_run_has_the_setting(table, controller):
    hidden = {name: table.table.isColumnHidden(COLUMNS.index(name))
              for name in ("lr", "momentum/β1", "|g| before clip", "noisy ∂x")}
    assert hidden == {"lr": False, "momentum/β1": True, "|g| before clip": True,
                      "noisy ∂x": True}
    run = controller.session.runs[0]
    controller.set_clipping(run, "norm", 1.0)
    controller.set_noise(run, 0.5, 1)
    controller.set_scheduler(run, "OneCycleLR(max_lr=0.001, total_steps=100)")
    for name in ("momentum/β1", "|g| before clip", "|g| after clip", "clipped", "noisy ∂x"):
        assert not table.table.isColumnHidden(COLUMNS.index(name)), name
    controller.set_clipping(run, None)
    assert table.table.isColumnHidden(COLUMNS.index("clipped"))


def test_the_lr_and_the_clipping_norms_are_the_trajectorys(qtbot, table, controller):
    run = controller.session.runs[0]  # SGD on Rosenbrock at (-1.2, 1): |grad| ~ 230
    controller.set_scheduler(run, "StepLR(step_size=5, gamma=0.5)")
    controller.set_clipping(run, "norm", 1.0)
    step(controller, 12)
    table.refresh()
    last = run.trajectory.last()
    assert cell(table, 0, "lr") == format_value(last["lr"]) == format_value(1e-3 * 0.25)
    assert cell(table, 0, "|g| before clip") == format_value(last["grad_norm_before_clip"])
    assert cell(table, 0, "|g| after clip") == format_value(last["grad_norm_after_clip"])
    assert last["grad_norm_before_clip"] > 1.0 and last["grad_norm_after_clip"] <= 1.0 + 1e-6
    flags = run.trajectory.column("clipped")
    # every entry's gradient (0..12) is far above 1: all clipped, the newest too (✂)
    assert cell(table, 0, "clipped") == f"{int(flags.sum())} ✂" and flags.sum() == 13
    assert cell(table, 1, "clipped") == "–"  # a run without clipping


def test_with_noise_the_noisy_gradient_is_beside_the_noise_free_one(qtbot, table, controller):
    run = controller.session.runs[2]
    controller.set_noise(run, 2.0, 3)
    step(controller, 5)
    table.refresh()
    last = run.trajectory.last()
    assert cell(table, 2, "∂loss/∂x") == format_value(last["grad_x"])
    assert cell(table, 2, "noisy ∂x") == format_value(last["noisy_grad_x"])
    assert cell(table, 2, "noisy ∂y") == format_value(last["noisy_grad_y"])
    assert last["noisy_grad_x"] != last["grad_x"]
    controller.set_frozen(run, "y", True)
    table.refresh()
    assert cell(table, 2, "noisy ∂y") == "frozen"


def test_a_cycling_scheduler_shows_the_momentum_it_moves(qtbot, table, controller):
    run = controller.session.runs[3]  # Adam: OneCycleLR cycles beta1
    controller.set_scheduler(run, "OneCycleLR(max_lr=0.05, total_steps=50)")
    step(controller, 10)
    table.refresh()
    last = run.trajectory.last()
    assert cell(table, 3, "momentum/β1") == format_value(last["beta1"])
    assert last["beta1"] == run.optimizer.param_groups[0]["betas"][0] < 0.95


def test_the_details_name_the_selected_runs_scheduler_clipping_and_noise(table, controller):
    run = controller.session.runs[0]
    controller.select(run)
    controller.set_scheduler(run, "StepLR(step_size=5, gamma=0.5)")
    controller.set_clipping(run, "value", 0.5)
    controller.set_noise(run, 0.2, 9)
    step(controller, 6)
    table.refresh()
    text = table.details.text()
    assert "StepLR(step_size=5, gamma=0.5)" in text
    assert "at step 6 of its schedule, lr = 0.0005" in text
    assert "torch.nn.utils.clip_grad_value_(params, clip_value=0.5)" in text
    flags = run.trajectory.column("clipped")
    assert f"{int(flags.sum())} of {len(run.trajectory)} gradients clipped" in text
    assert "seeded 9" in text
