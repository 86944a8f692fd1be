"""RunCard and RunList, driven through their real widgets."""

import math

import numpy as np
import pytest
from PySide6.QtCore import QPoint, Qt
from PySide6.QtGui import QColor
from PySide6.QtWidgets import QColorDialog

from core.run import RunStatus
from gui.run_card import LR_TICKS, RunCard, lr_from_tick, tick_from_lr
from gui.run_list import RunList


@pytest.fixture
def sgd(controller):
    """The default session's first run: plain SGD, lr=1e-3, momentum 0."""
    run = controller.session.runs[0]
    assert run.optimizer_name == "SGD" and run.hyperparameters["momentum"] == 0.0
    return run


@pytest.fixture
def card(qtbot, controller, sgd):
    card = RunCard(sgd, controller)
    qtbot.addWidget(card)
    card.resize(360, card.sizeHint().height())
    card.show()
    return card


@pytest.fixture
def run_list(qtbot, controller):
    widget = RunList(controller)
    qtbot.addWidget(widget)
    widget.resize(360, 800)
    widget.show()
    return widget


def click_check_box(qtbot, box):
    # A check box only takes clicks on its indicator and text, not anywhere in its cell.
    qtbot.mouseClick(box, Qt.MouseButton.LeftButton, pos=QPoint(6, box.height() // 2))


def type_into(qtbot, spin, text):
    spin.lineEdit().selectAll()
    qtbot.keyClicks(spin.lineEdit(), text)
    qtbot.keyClick(spin.lineEdit(), Qt.Key.Key_Return)


# --- learning rate ------------------------------------------------------------------------------


def test_lr_slider_maps_log_scale_at_both_ends_and_the_middle(card, sgd):
    for tick, expected in ((0, 1e-5), (LR_TICKS, 10.0), (LR_TICKS // 2, 1e-2)):
        card.lr_slider.setValue(tick)
        assert card.lr_spin.value() == expected
        assert sgd.optimizer.param_groups[0]["lr"] == expected
        assert sgd.hyperparameters["lr"] == expected


def test_lr_slider_value_equals_the_number_shown(card, sgd):
    card.lr_slider.setValue(337)
    shown = float(card.lr_spin.text())
    assert shown == card.lr_spin.value() == sgd.optimizer.param_groups[0]["lr"]
    assert math.isclose(math.log10(shown), -5 + 6 * 337 / LR_TICKS, abs_tol=2e-3)


def test_lr_mapping_round_trips():
    for tick in range(0, LR_TICKS + 1, 7):
        assert tick_from_lr(lr_from_tick(tick)) == tick
    assert tick_from_lr(1e-9) == 0 and tick_from_lr(1e3) == LR_TICKS


def test_typing_an_exact_lr_sets_exactly_that_and_moves_the_slider(qtbot, card, sgd):
    type_into(qtbot, card.lr_spin, "0.0123")
    assert sgd.optimizer.param_groups[0]["lr"] == 0.0123
    assert card.lr_spin.text() == "0.0123"
    assert card.lr_slider.value() == tick_from_lr(0.0123)
    assert card.lr_slider.value() == round((math.log10(0.0123) + 5) / 6 * LR_TICKS)


def test_typing_an_lr_below_the_slider_keeps_it_exact(qtbot, card, sgd):
    type_into(qtbot, card.lr_spin, "3e-7")
    assert sgd.optimizer.param_groups[0]["lr"] == 3e-7
    assert card.lr_slider.value() == 0  # pinned at its end, and that did not echo back as 1e-5
    assert sgd.hyperparameters["lr"] == 3e-7


def test_a_new_lr_is_used_by_the_next_step_and_recorded(controller, card, sgd):
    controller.step_once()
    controller.step_once()
    assert np.all(sgd.trajectory.lr == 1e-3)
    optimizer = sgd.optimizer
    card.lr_slider.setValue(400)
    new_lr = card.lr_spin.value()
    assert new_lr == lr_from_tick(400) == 0.00251  # 10 ** (-5 + 6 * 0.4), to 3 digits
    assert sgd.optimizer is optimizer  # the same live optimizer: no restart
    x_before, gx = sgd.x.item(), sgd.x.grad.item()
    controller.step_once()
    assert sgd.trajectory.lr[-1] == new_lr
    assert sgd.trajectory.lr[1] == 1e-3
    assert math.isclose(sgd.x.item(), x_before - new_lr * gx, rel_tol=1e-12)


# --- other hyperparameters -----------------------------------------------------------------------


def test_momentum_spinbox_changes_the_live_param_group(qtbot, card, sgd):
    type_into(qtbot, card.controls["momentum"], "0.9")
    assert sgd.optimizer.param_groups[0]["momentum"] == 0.9
    card.controls["momentum"].setValue(0.5)
    assert sgd.optimizer.param_groups[0]["momentum"] == 0.5


def test_every_hyperparameter_has_a_control_with_help_and_range(qtbot, controller):
    for name in ("SGD", "Adam", "RMSprop", "Rprop", "LBFGS", "NAdam"):
        run = controller.session.add_run(name)
        card = RunCard(run, controller)
        qtbot.addWidget(card)
        for h in run.spec.hyperparameters:
            if h.name == "lr":
                assert h.help in card.lr_spin.toolTip()
                continue
            control = card.controls[h.name]
            widget = control[0] if isinstance(control, tuple) else control
            assert h.help in widget.toolTip() and h.range_text() in widget.toolTip()


def test_pair_choice_int_and_bool_controls_reach_the_optimizer(qtbot, controller):
    adam = controller.session.add_run("Adam")
    lbfgs = controller.session.add_run("LBFGS")
    adam_card, lbfgs_card = RunCard(adam, controller), RunCard(lbfgs, controller)
    qtbot.addWidget(adam_card)
    qtbot.addWidget(lbfgs_card)
    beta1, beta2 = adam_card.controls["betas"]
    assert (beta1.value(), beta2.value()) == (0.9, 0.999)
    beta2.setValue(0.99)
    assert adam.optimizer.param_groups[0]["betas"] == (0.9, 0.99)
    adam_card.controls["amsgrad"].setChecked(True)
    assert adam.optimizer.param_groups[0]["amsgrad"] is True
    lbfgs_card.controls["line_search_fn"].setCurrentIndex(1)
    assert lbfgs.optimizer.param_groups[0]["line_search_fn"] == "strong_wolfe"
    lbfgs_card.controls["max_iter"].setValue(5)
    assert lbfgs.optimizer.param_groups[0]["max_iter"] == 5


def test_invalid_combination_shows_error_and_reverts(qtbot, card, sgd):
    assert card.error_label.isHidden()
    click_check_box(qtbot, card.controls["nesterov"])
    assert not card.error_label.isHidden()
    assert "momentum" in card.error_label.text().lower()
    assert card.controls["nesterov"].isChecked() is False  # reverted
    assert sgd.optimizer.param_groups[0]["nesterov"] is False
    assert sgd.hyperparameters["nesterov"] is False
    # A valid edit clears the message.
    card.controls["momentum"].setValue(0.9)
    assert card.error_label.isHidden()
    click_check_box(qtbot, card.controls["nesterov"])
    assert sgd.optimizer.param_groups[0]["nesterov"] is True


def test_open_bound_is_refused_with_the_range(qtbot, card, sgd):
    type_into(qtbot, card.controls["momentum"], "1")
    assert "[0, 1)" in card.error_label.text()
    assert card.controls["momentum"].value() == 0.0
    assert sgd.optimizer.param_groups[0]["momentum"] == 0.0


def test_model_changes_show_without_echoing(controller, card, sgd, monkeypatch):
    calls = []
    monkeypatch.setattr(controller, "set_hyperparameter",
                        lambda *a: calls.append(a))  # any echo would land here
    sgd.set_hyperparameter("momentum", 0.7)
    sgd.set_hyperparameter("lr", 0.5)
    controller.sigRunChanged.emit(sgd)
    assert card.controls["momentum"].value() == 0.7
    assert card.lr_spin.value() == 0.5 and card.lr_slider.value() == tick_from_lr(0.5)
    assert calls == []


# --- freeze, enable, colour, label, status, selection ---------------------------------------------


def test_freeze_x_keeps_x_exactly_while_y_moves(qtbot, controller, card, sgd):
    card.lr_slider.setValue(tick_from_lr(1e-3))
    qtbot.mouseClick(card.freeze_x, Qt.MouseButton.LeftButton)
    assert card.freeze_x.isChecked()
    assert sgd.x.requires_grad is False and sgd.y.requires_grad is True
    x0 = sgd.x.item()
    for _ in range(5):
        controller.step_once()
    xs, ys = sgd.trajectory.x, sgd.trajectory.y
    assert np.all(xs == x0)
    assert len(set(ys[-6:].tolist())) == 6  # y moved every step
    qtbot.mouseClick(card.freeze_x, Qt.MouseButton.LeftButton)
    assert sgd.x.requires_grad is True
    controller.step_once()
    assert sgd.trajectory.x[-1] != x0


def test_freeze_y_button(qtbot, card, sgd):
    qtbot.mouseClick(card.freeze_y, Qt.MouseButton.LeftButton)
    assert sgd.frozen == {"y"} and sgd.y.requires_grad is False


def test_enable_checkbox(qtbot, controller, card, sgd):
    click_check_box(qtbot, card.enable_box)
    assert sgd.enabled is False
    before = sgd.steps
    controller.step_once()
    assert sgd.steps == before


def test_colour_button_opens_dialog_and_sets_colour(qtbot, controller, card, sgd, monkeypatch):
    monkeypatch.setattr(QColorDialog, "getColor", staticmethod(lambda *a, **k: QColor("#123456")))
    qtbot.mouseClick(card.color_button, Qt.MouseButton.LeftButton)
    assert sgd.color == "#123456"
    assert "#123456" in card.color_button.styleSheet()


def test_label_edit(qtbot, card, sgd):
    assert card.label_edit.placeholderText() == sgd.title == "SGD(lr=0.001)"
    card.label_edit.setFocus()
    qtbot.keyClicks(card.label_edit, "plain SGD")
    qtbot.keyClick(card.label_edit, Qt.Key.Key_Return)
    assert sgd.label == "plain SGD" and sgd.title == "plain SGD"


def test_status_badge_follows_the_run(controller, card, sgd):
    # before its first step the run is ready, not "running"
    assert sgd.steps == 0 and sgd.status is RunStatus.RUNNING
    assert card.status_badge.text() == "ready"
    assert card.status_badge.toolTip() == "ready, not started (step 0)"
    controller.step_once()
    assert card.status_badge.text() == "running"
    sgd.status, sgd.converged_at = RunStatus.CONVERGED, 12
    controller.sigStepped.emit()
    assert card.status_badge.text() == "converged at step 12"
    sgd.status, sgd.diverged_at, sgd.divergence_reason = RunStatus.DIVERGED, 40, "x = inf"
    controller.sigStepped.emit()
    assert card.status_badge.text() == "diverged at step 40"
    assert card.status_badge.toolTip().startswith(sgd.status_text) and "x = inf" in sgd.status_text


def test_the_badge_says_what_run_status_text_says(qtbot, controller, card, sgd):
    type_into(qtbot, card.lr_spin, "10")
    for _ in range(20):
        controller.step_once()
    assert sgd.status is RunStatus.DIVERGED
    assert card.status_badge.text() == sgd.status_text.split(":")[0]
    assert str(sgd.diverged_at) in card.status_badge.text()
    assert sgd.divergence_reason and sgd.divergence_reason in card.status_badge.toolTip()


def test_a_disabled_run_says_disabled_and_a_fully_frozen_one_frozen(qtbot, controller, card, sgd):
    click_check_box(qtbot, card.enable_box)
    assert not sgd.enabled
    assert card.status_badge.text() == "disabled"
    click_check_box(qtbot, card.enable_box)
    assert card.status_badge.text() == "ready"  # enabled again, still at step 0
    controller.step_once()
    assert card.status_badge.text() == "running"
    card.freeze_x.click()
    card.freeze_y.click()
    assert card.status_badge.text() == sgd.status_text.split(":")[0] == "frozen"


def test_clicking_a_card_selects_its_run(qtbot, run_list, controller):
    second = controller.session.runs[1]
    card = run_list.card_for(second)
    assert not card.selected
    qtbot.mouseClick(card, Qt.MouseButton.LeftButton)
    assert controller.selected is second
    assert card.selected and "border: 2px" in card.styleSheet()
    assert not run_list.cards[0].selected
    # A click on one of its controls selects it too.
    qtbot.mouseClick(run_list.cards[2].freeze_y, Qt.MouseButton.LeftButton)
    assert controller.selected is controller.session.runs[2]


# --- the run list ---------------------------------------------------------------------------------


def test_run_list_has_one_card_per_run(run_list, controller):
    assert [c.run for c in run_list.cards] == controller.session.runs
    assert len(run_list.cards) == 4


def test_add_run_menu(run_list, controller):
    names = [a.text() for a in run_list.add_menu.actions()]
    assert "Adam" in names and "LBFGS" in names and "SGD" in names
    next(a for a in run_list.add_menu.actions() if a.text() == "Adagrad").trigger()
    assert len(controller.session.runs) == 5
    assert controller.session.runs[-1].optimizer_name == "Adagrad"
    assert len(run_list.cards) == 5 and run_list.cards[-1].run is controller.session.runs[-1]


def test_duplicate_and_remove_buttons(qtbot, run_list, controller):
    first = run_list.cards[0]
    kept = run_list.cards[1]
    first.controls["momentum"].setValue(0.3)
    qtbot.mouseClick(first.duplicate_button, Qt.MouseButton.LeftButton)
    assert len(controller.session.runs) == 5 and len(run_list.cards) == 5
    copy = controller.session.runs[-1]
    assert copy.hyperparameters["momentum"] == 0.3 and copy is not first.run
    assert run_list.cards[-1].controls["momentum"].value() == 0.3
    removed = first.run
    qtbot.mouseClick(first.remove_button, Qt.MouseButton.LeftButton)
    assert removed not in controller.session.runs
    assert len(run_list.cards) == 4 and all(c.run is not removed for c in run_list.cards)
    assert run_list.card_for(kept.run) is kept  # surviving cards are kept, not rebuilt
    qtbot.waitUntil(lambda: first.parent() is None or not first.isVisible())


def test_replacing_the_optimizer_rebuilds_that_card(run_list, controller):
    card = run_list.cards[0]
    card.lr_slider.setValue(tick_from_lr(0.01))
    card.optimizer_combo.setCurrentText("Adam")
    new = controller.session.runs[0]
    assert new.optimizer_name == "Adam" and new.hyperparameters["lr"] == 0.01
    new_card = run_list.cards[0]
    assert new_card is not card and new_card.run is new
    assert "betas" in new_card.controls and "momentum" not in new_card.controls
    assert new_card.optimizer_combo.currentText() == "Adam"
    assert controller.selected is new and new_card.selected


def test_cards_of_removed_runs_stop_listening(qtbot, run_list, controller):
    card = run_list.cards[0]
    before = card.status_badge.text()
    assert before == "ready"
    controller.remove_run(card.run)
    card.run.status = RunStatus.DIVERGED  # a stale card would redraw this
    controller.sigStepped.emit()
    assert card.status_badge.text() == before


def test_shift_drag_moves_the_lr_slider_ten_times_finer(qtbot, card, sgd):
    from gui.run_card import FINE_DRAG

    slider = card.lr_slider
    slider.setValue(LR_TICKS // 2)
    y = slider.height() // 2
    start = QPoint(slider.width() // 2, y)
    qtbot.mousePress(slider, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.ShiftModifier, start)
    qtbot.mouseMove(slider, QPoint(start.x() + 40, y))
    qtbot.mouseRelease(slider, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.ShiftModifier,
                       QPoint(start.x() + 40, y))
    fine_ticks = slider.value() - LR_TICKS // 2
    coarse_ticks = 40 * LR_TICKS / slider.width()  # what a plain drag of 40 px moves
    assert 0 < fine_ticks <= coarse_ticks / FINE_DRAG + 1
    assert sgd.hyperparameters["lr"] == lr_from_tick(slider.value())  # and it is the run's lr
