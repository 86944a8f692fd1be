"""The scheduler picker and the card's "Schedule, clipping, noise" section, driven through their
real widgets: what the user sees (the preview, the messages, the summary) and what the run holds."""

import numpy as np
import pytest
from PySide6.QtCore import Qt

from core.run import scheduler_setting
from core.schedulers import preview_lr
from gui.run_card import RunCard
from gui.scheduler_picker import SchedulerPicker, preview_length


@pytest.fixture
def run(controller):
    """The default session's second run: SGD with momentum 0.9, lr 1e-3."""
    return controller.session.runs[1]


@pytest.fixture
def card(qtbot, controller, run):
    card = RunCard(run, controller)
    qtbot.addWidget(card)
    card.resize(360, 400)
    card.show()
    qtbot.waitExposed(card)
    return card


def open_section(qtbot, card):
    qtbot.mouseClick(card.tools_button, Qt.MouseButton.LeftButton)
    assert card.tools_box.isVisible()


def type_into(qtbot, widget, text):
    line = widget if hasattr(widget, "selectAll") else widget.lineEdit()
    line.setFocus()
    line.selectAll()
    qtbot.keyClicks(line, text)
    qtbot.keyClick(line, Qt.Key.Key_Return)


def shown_preview(picker):
    curve = picker.preview_curve
    return np.asarray(curve.xData), np.asarray(curve.yData)


def expected_preview(run, name, kwargs, steps):
    return preview_lr(run.optimizer_name, run.hyperparameters, name, kwargs, steps)


# --- the section ---------------------------------------------------------------------------------


def test_the_section_is_closed_by_default_and_says_none_until_something_is_set(qtbot, card):
    assert not card.tools_box.isVisible() and card.tools_summary.isVisible()
    assert card.tools_summary.full_text() == "none"
    open_section(qtbot, card)
    assert not card.tools_summary.isVisible()
    assert card.scheduler_picker.combo.currentText() == "none"
    assert not card.scheduler_picker.preview_plot.isVisible()


def test_picking_a_scheduler_sets_it_on_the_run_and_the_preview_is_preview_lr(qtbot, card, run):
    open_section(qtbot, card)
    picker = card.scheduler_picker
    picker.combo.setCurrentText("CosineAnnealingLR")
    assert run.scheduler_setting == ("CosineAnnealingLR", {"T_max": 200, "eta_min": 0.0})
    assert type(run.scheduler).__name__ == "CosineAnnealingLR"
    steps = preview_length("CosineAnnealingLR", run.scheduler_setting[1])
    xs, ys = shown_preview(picker)
    expected = expected_preview(run, *run.scheduler_setting, steps).lr
    assert list(xs) == list(range(steps)) and list(ys) == expected
    assert picker.preview_plot.isVisible() and not picker.momentum_plot.isVisible()
    # the run, stepped, uses the lrs the preview showed
    run.step(50)
    assert list(run.trajectory.lr[:51]) == expected[:51]
    assert "CosineAnnealingLR(T_max=200)" in card.tools_summary.full_text()
    assert picker.call_edit.text() == "CosineAnnealingLR(T_max=200)"


def test_editing_t_max_changes_the_run_and_the_preview(qtbot, card, run):
    open_section(qtbot, card)
    picker = card.scheduler_picker
    picker.combo.setCurrentText("CosineAnnealingLR")
    _, before = shown_preview(picker)
    type_into(qtbot, picker.controls["T_max"], "40")
    assert run.scheduler_setting[1]["T_max"] == 40
    xs, ys = shown_preview(picker)
    steps = preview_length("CosineAnnealingLR", {"T_max": 40, "eta_min": 0.0})
    assert len(xs) == steps
    assert list(ys) == expected_preview(run, "CosineAnnealingLR",
                                        {"T_max": 40, "eta_min": 0.0}, steps).lr
    assert list(ys[:len(before)]) != list(before[:len(ys)])
    assert min(ys) == pytest.approx(0.0, abs=1e-12) and ys[40] == min(ys)  # bottom at T_max


def test_a_bad_argument_shows_its_message_and_leaves_the_run_unchanged(qtbot, card, run):
    open_section(qtbot, card)
    picker = card.scheduler_picker
    picker.combo.setCurrentText("CosineAnnealingLR")
    scheduler = run.scheduler
    _, before = shown_preview(picker)
    type_into(qtbot, picker.controls["T_max"], "0")
    assert picker.error_label.isVisible()
    assert "CosineAnnealingLR: T_max must be a whole number >= 1, got 0" in \
        picker.error_label.text()
    assert run.scheduler is scheduler and run.scheduler_setting[1]["T_max"] == 200
    assert picker.controls["T_max"].value() == 200  # the box went back
    assert list(shown_preview(picker)[1]) == list(before)


def test_a_typed_call_sets_the_scheduler_and_a_bad_one_is_refused(qtbot, card, run):
    open_section(qtbot, card)
    picker = card.scheduler_picker
    type_into(qtbot, picker.call_edit, "StepLR(step_size=30, gamma=0.5)")
    assert run.scheduler_setting == ("StepLR", {"step_size": 30, "gamma": 0.5})
    assert picker.combo.currentText() == "StepLR"
    assert picker.controls["step_size"].value() == 30
    type_into(qtbot, picker.call_edit, "StepLR(step_size=30, gama=0.5)")
    assert "StepLR has no argument 'gama'" in picker.error_label.text()
    assert run.scheduler_setting == ("StepLR", {"step_size": 30, "gamma": 0.5})
    assert picker.call_edit.text() == "StepLR(step_size=30, gamma=0.5)"


def test_warm_up_then_decay_shows_its_two_phases_and_edits_each(qtbot, card, run):
    open_section(qtbot, card)
    picker = card.scheduler_picker
    picker.combo.setCurrentText("SequentialLR")
    assert [p.title_label.text() for p in picker.phases] == ["<b>warm-up</b>", "<b>then</b>"]
    assert [p.combo.currentText() for p in picker.phases] == ["LinearLR", "CosineAnnealingLR"]
    type_into(qtbot, picker.phases[0].controls["total_iters"], "10")
    type_into(qtbot, picker.controls["milestones"], "[10]")
    name, kwargs = run.scheduler_setting
    assert name == "SequentialLR" and kwargs["milestones"] == [10]
    assert kwargs["schedulers"][0] == ("LinearLR", {"start_factor": 0.1, "end_factor": 1.0,
                                                    "total_iters": 10})
    _, ys = shown_preview(picker)
    assert list(ys) == expected_preview(run, name, kwargs, len(ys)).lr
    assert ys[10] == max(ys)  # the warm-up ends at the milestone
    # a mismatch between phases and milestones is torch's rule, said once, and nothing changes
    type_into(qtbot, picker.controls["milestones"], "[10, 50]")
    assert "milestones must have one entry fewer than schedulers" in picker.error_label.text()
    assert run.scheduler_setting[1]["milestones"] == [10]


def test_one_cycle_shows_the_momentum_it_cycles_and_the_slider_is_its_max_lr(qtbot, card, run):
    open_section(qtbot, card)
    picker = card.scheduler_picker
    picker.combo.setCurrentText("OneCycleLR")
    name, kwargs = run.scheduler_setting
    assert name == "OneCycleLR" and kwargs["max_lr"] == 1e-3  # around the run's own lr
    assert picker.momentum_plot.isVisible()
    expected = expected_preview(run, name, kwargs, len(shown_preview(picker)[1]))
    assert list(picker.momentum_curve.yData) == expected.momentum
    assert expected.momentum_name == "momentum"
    assert "max_lr" in card.lr_slider.toolTip() and card.lr_note.isVisible()
    type_into(qtbot, card.lr_spin, "0.004")
    assert run.scheduler_setting[1]["max_lr"] == 0.004
    assert card.scheduler_picker.controls["max_lr"].value() == 0.004


def test_a_scheduler_torch_refuses_for_the_optimizer_is_said_and_not_set(qtbot, controller):
    run = controller.add_run("Adagrad")
    card = RunCard(run, controller)
    qtbot.addWidget(card)
    card.show()
    open_section(qtbot, card)
    card.scheduler_picker.combo.setCurrentText("OneCycleLR")
    assert "momentum" in card.scheduler_picker.error_label.text()
    assert run.scheduler is None and card.scheduler_picker.combo.currentText() == "none"


def test_choosing_none_takes_the_scheduler_off(qtbot, card, run):
    open_section(qtbot, card)
    card.scheduler_picker.combo.setCurrentText("ExponentialLR")
    assert run.scheduler is not None
    card.scheduler_picker.combo.setCurrentText("none")
    assert run.scheduler is None and run.scheduler_setting is None
    assert run.optimizer.param_groups[0]["lr"] == run.hyperparameters["lr"]
    assert not card.lr_note.isVisible()


# --- clipping and noise --------------------------------------------------------------------------


def test_clipping_by_norm_then_by_value_goes_to_the_run(qtbot, card, run):
    open_section(qtbot, card)
    card.clip_combo.setCurrentIndex(1)
    assert (run.clipping.kind, run.clipping.threshold) == ("norm", 1.0)
    type_into(qtbot, card.clip_spin, "0.25")
    assert run.clipping.threshold == 0.25
    card.clip_combo.setCurrentIndex(2)
    assert (run.clipping.kind, run.clipping.threshold) == ("value", 0.25)
    assert card.tools_summary.full_text() == "clip |gᵢ|≤0.25"
    card.clip_combo.setCurrentIndex(0)
    assert run.clipping is None and not card.clip_spin.isEnabled()


def test_a_bad_clipping_threshold_is_said_on_the_card_and_changes_nothing(qtbot, card, run):
    open_section(qtbot, card)
    card.clip_combo.setCurrentIndex(1)
    type_into(qtbot, card.clip_spin, "-2")
    assert card.error_label.isVisible()
    assert card.error_label.text() == "clip_norm must be a number > 0, got -2.0"
    assert run.clipping.threshold == 1.0 and card.clip_spin.value() == 1.0


def test_noise_with_its_seed_goes_to_the_run_and_a_negative_sigma_is_refused(qtbot, card, run):
    open_section(qtbot, card)
    type_into(qtbot, card.seed_spin, "7")
    type_into(qtbot, card.noise_spin, "0.3")
    assert (run.noise.sigma, run.noise.seed) == (0.3, 7)
    assert card.tools_summary.full_text() == "noise σ=0.3 (seed 7)"
    type_into(qtbot, card.noise_spin, "-1")
    assert "noise must be a number >= 0" in card.error_label.text()
    assert (run.noise.sigma, run.noise.seed) == (0.3, 7) and card.noise_spin.value() == 0.3
    type_into(qtbot, card.noise_spin, "0")
    assert run.noise is None


def test_the_summary_joins_scheduler_clipping_and_noise(qtbot, controller, card, run):
    controller.set_scheduler(run, "CosineAnnealingLR(T_max=200)")
    controller.set_clipping(run, "norm", 1.0)
    controller.set_noise(run, 0.5, 0)
    assert card.tools_summary.full_text() == \
        "CosineAnnealingLR(T_max=200) · clip ‖g‖≤1 · noise σ=0.5 (seed 0)"
    assert card.tools_summary.toolTip() == card.tools_summary.full_text()
    # a card narrower than the line elides it instead of growing
    assert card.tools_summary.text().endswith("…") or \
        card.tools_summary.fontMetrics().horizontalAdvance(card.tools_summary.text()) <= \
        card.tools_summary.width()


def test_a_session_saved_and_opened_shows_the_same_settings_on_a_new_card(qtbot, controller,
                                                                          card, run, tmp_path):
    open_section(qtbot, card)
    card.scheduler_picker.combo.setCurrentText("StepLR")
    card.clip_combo.setCurrentIndex(2)
    type_into(qtbot, card.noise_spin, "0.2")
    path = tmp_path / "s.json"
    controller.save_session(path)
    controller.load_session(path)
    loaded = controller.session.runs[1]
    assert loaded is not run and loaded.tool_config() == run.tool_config()
    other = RunCard(loaded, controller)
    qtbot.addWidget(other)
    assert other.tools_summary.full_text() == card.tools_summary.full_text()
    assert other.scheduler_picker.combo.currentText() == "StepLR"
    assert other.clip_combo.currentText() == "by value" and other.noise_spin.value() == 0.2


# --- the picker on its own (the model workspace uses it too) -------------------------------------


def test_the_picker_alone_announces_valid_settings_only(qtbot):
    picker = SchedulerPicker(None, optimizer=("Adam", {"lr": 0.01}))
    qtbot.addWidget(picker)
    picker.show()
    seen = []
    picker.sigEdited.connect(seen.append)
    picker.combo.setCurrentText("CyclicLR")
    assert seen and seen[-1][0] == "CyclicLR"
    assert seen[-1][1]["base_lr"] == 0.01 and seen[-1][1]["max_lr"] == pytest.approx(0.1)
    assert picker.preview.momentum_name == "beta1" and picker.momentum_plot.isVisible()
    count = len(seen)
    type_into(qtbot, picker.controls["step_size_up"], "0")
    assert len(seen) == count and picker.error_label.isVisible()
    picker.set_setting(scheduler_setting("ReduceLROnPlateau"))
    assert len(seen) == count  # set_setting is a view update, not an edit
    assert "ReduceLROnPlateau" in picker.note_label.text()


def test_the_preview_uses_a_log_axis_when_the_lr_spans_decades(qtbot):
    picker = SchedulerPicker(scheduler_setting("ExponentialLR(gamma=0.9)"),
                             optimizer=("SGD", {"lr": 0.1}))
    qtbot.addWidget(picker)
    assert picker.preview_plot.getPlotItem().ctrl.logYCheck.isChecked()
    picker.set_setting(scheduler_setting("StepLR(step_size=50, gamma=0.5)"))
    assert not picker.preview_plot.getPlotItem().ctrl.logYCheck.isChecked()


def test_a_replaced_optimizer_keeps_the_tools_and_the_open_section(qtbot, controller):
    from gui.run_list import RunList

    run_list = RunList(controller)
    qtbot.addWidget(run_list)
    run_list.resize(380, 800)
    run_list.show()
    run = controller.session.runs[1]
    controller.set_scheduler(run, "StepLR(step_size=20)")
    card = run_list.card_for(run)
    card.tools_button.setChecked(True)
    card.optimizer_combo.setCurrentText("Adam")
    new = controller.session.runs[1]
    assert new is not run and new.optimizer_name == "Adam"
    assert new.scheduler_setting == run.scheduler_setting
    new_card = run_list.card_for(new)
    assert new_card.tools_button.isChecked() and new_card.tools_box.isVisible()
    assert new_card.scheduler_picker.combo.currentText() == "StepLR"
    # adding a run does not open anyone else's section
    controller.add_run("SGD")
    assert not run_list.card_for(controller.session.runs[-1]).tools_button.isChecked()


# --- ReduceLROnPlateau: fed the run's losses ----------------------------------------------------

PLATEAU = "ReduceLROnPlateau(factor=0.5, patience=3)"


def test_the_picker_fed_losses_shows_torchs_plateau_lr_and_says_where_it_goes_flat(qtbot):
    picker = SchedulerPicker(scheduler_setting(PLATEAU), optimizer=("SGD", {"lr": 0.1}))
    qtbot.addWidget(picker)
    picker.show()
    assert set(shown_preview(picker)[1]) == {0.1}  # no losses yet: flat, and it says why
    assert "ReduceLROnPlateau" in picker.note_label.text()
    losses = [1.0] * 30  # never improves: halved after every 4 steps past the patience
    picker.set_losses(losses)
    steps = preview_length("ReduceLROnPlateau", {}, 30)
    want = preview_lr("SGD", {"lr": 0.1}, "ReduceLROnPlateau", scheduler_setting(PLATEAU)[1],
                      steps, losses=losses).lr
    assert shown_preview(picker)[1].tolist() == want
    assert min(want) < 0.1 and want[30:] == [want[30]] * (steps - 30)  # flat past its losses
    assert "flat past step 30" in picker.note_label.text()
    shown = picker.preview
    picker.set_losses(list(losses))
    assert picker.preview is shown  # the same losses: nothing stepped again


def test_other_schedulers_ignore_the_losses(qtbot):
    picker = SchedulerPicker(scheduler_setting("StepLR(step_size=10)"),
                             optimizer=("SGD", {"lr": 0.1}))
    qtbot.addWidget(picker)
    shown = picker.preview
    picker.set_losses([1.0] * 30)
    assert picker.preview is shown and not picker.note_label.isVisible()


def test_a_plateau_card_previews_the_lr_the_run_really_used(qtbot, controller, card, run):
    controller.set_scheduler(run, PLATEAU)
    for _ in range(60):
        controller.step_once()
    used = run.trajectory.lr.tolist()
    assert min(used) < max(used)  # the run's plateau did lower its lr
    open_section(qtbot, card)
    picker = card.scheduler_picker
    qtbot.waitUntil(lambda: picker.losses is not None and len(picker.losses) == 61)
    # entry k's lr is the one step k + 1 uses: the preview's lr[k]; exact to the next step
    lr = shown_preview(picker)[1].tolist()
    assert lr[:61] == used
    assert "flat past step 61" in picker.note_label.text()
    # stepping on feeds the newest losses, at the throttle's pace
    for _ in range(10):
        controller.step_once()
    qtbot.waitUntil(lambda: len(picker.losses) == 71)
    assert shown_preview(picker)[1].tolist()[:71] == run.trajectory.lr.tolist()


def test_a_closed_section_steps_no_plateau_preview_until_it_opens(qtbot, controller, card, run):
    controller.set_scheduler(run, PLATEAU)
    picker = card.scheduler_picker
    shown = picker.preview
    for _ in range(20):
        controller.step_once()
    assert picker.preview is shown and not picker.isVisible()  # remembered, not drawn
    open_section(qtbot, card)
    qtbot.waitUntil(lambda: picker.losses is not None and len(picker.losses) == 21)
    assert shown_preview(picker)[1].tolist()[:21] == run.trajectory.lr.tolist()
