"""The transport bar: the speed reached is shown while playing, and background work is shown."""

import pytest

from core.session import Session
from core.surfaces import get_surface
from gui.controller import MAX_SPEED, Controller
from gui.transport_bar import SPEEDS, TransportBar, rate_text
from gui.worker import cancel_all_jobs, wait_for_jobs


@pytest.fixture
def bar(qtbot, controller):
    widget = TransportBar(controller)
    qtbot.addWidget(widget)
    widget.show()
    yield widget
    widget.shutdown()


def test_the_rate_label_shows_the_measured_speed_while_playing_and_clears_on_pause(qtbot, bar):
    c = bar.controller
    bar.speed_slider.setValue(SPEEDS.index(MAX_SPEED))
    assert c.speed == MAX_SPEED
    assert bar.rate_label.text() == ""
    bar.play_button.click()
    try:
        qtbot.waitUntil(lambda: bar.rate_label.text().startswith("≈"), timeout=5000)
        shown = float(bar.rate_label.text().split()[1])
        measured = c.achieved_speed()
        assert measured is not None and shown == pytest.approx(measured, rel=0.5)
        assert shown > 60  # "max" goes faster than the default 60/s
    finally:
        bar.play_button.click()
    assert not c.playing
    assert bar.rate_label.text() == "" and not bar._rate_timer.isActive()


def test_the_rate_label_follows_a_set_speed(qtbot, bar):
    c = bar.controller
    bar.speed_slider.setValue(SPEEDS.index(30))
    c.play()
    try:
        qtbot.waitUntil(lambda: bar.rate_label.text().startswith("≈"), timeout=5000)
        qtbot.waitUntil(lambda: abs(float(bar.rate_label.text().split()[1]) - 30) <= 6,
                        timeout=5000)
    finally:
        c.pause()


@pytest.mark.parametrize("value, text", [(None, ""), (2.345, "≈ 2.3 steps/s"),
                                         (59.6, "≈ 60 steps/s"), (2437.0, "≈ 2440 steps/s")])
def test_rate_text_rounds_to_what_the_eye_reads(value, text):
    assert rate_text(value) == text


def test_a_run_stepped_in_the_background_is_shown_as_working(qtbot):
    session = Session(get_surface("rastrigin"))
    session.add_run("LBFGS", {"lr": 1.0, "max_iter": 400, "tolerance_grad": 0.0,
                              "tolerance_change": 0.0})
    c = Controller(session)
    widget = TransportBar(c)
    qtbot.addWidget(widget)
    widget.show()
    try:
        widget.step_button.click()
        assert c.working_runs
        assert widget.working_label.isVisible()
        assert "LBFGS" in widget.working_label.text()
        qtbot.waitUntil(lambda: not c.working_runs, timeout=20000)
        qtbot.waitUntil(lambda: not widget.working_label.isVisible(), timeout=5000)
        assert session.runs[0].steps == 1
    finally:
        widget.shutdown()
        c.shutdown()
        cancel_all_jobs()
        assert wait_for_jobs(10.0)
