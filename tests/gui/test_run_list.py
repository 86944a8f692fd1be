"""The runs list: the wheel scrolls it (a control takes the wheel only when focused), and a click
on a partly hidden card does not scroll it (nothing moves between two clicks)."""

from __future__ import annotations

import pytest
from PySide6.QtCore import QPoint, QPointF, Qt
from PySide6.QtGui import QWheelEvent
from PySide6.QtWidgets import QApplication

from gui.run_list import RunList


@pytest.fixture
def short_list(qtbot, controller):
    """Four cards in a list too short to show them all."""
    widget = RunList(controller)
    qtbot.addWidget(widget)
    widget.resize(380, 260)
    widget.show()
    qtbot.waitExposed(widget)
    bar = widget.scroll_area.verticalScrollBar()
    qtbot.waitUntil(lambda: bar.maximum() > 0, timeout=2000)
    return widget


def wheel(widget, down=True):
    """A real wheel event over the middle of `widget`, as Qt delivers it."""
    pos = QPointF(widget.width() / 2, widget.height() / 2)
    event = QWheelEvent(pos, QPointF(widget.mapToGlobal(pos.toPoint())), QPoint(0, 0),
                        QPoint(0, -120 if down else 120), Qt.MouseButton.NoButton,
                        Qt.KeyboardModifier.NoModifier, Qt.ScrollPhase.NoScrollPhase, False)
    QApplication.sendEvent(widget, event)


def test_the_wheel_over_an_unfocused_slider_scrolls_the_list(short_list):
    bar = short_list.scroll_area.verticalScrollBar()
    card = short_list.cards[0]
    before_lr = card.run.hyperparameters["lr"]
    before_tick = card.lr_slider.value()
    assert bar.value() == 0 and not card.lr_slider.hasFocus()
    wheel(card.lr_slider)
    assert card.lr_slider.value() == before_tick
    assert card.run.hyperparameters["lr"] == before_lr
    assert bar.value() > 0


def test_the_wheel_over_an_unfocused_spin_box_or_combo_scrolls_too(short_list):
    bar = short_list.scroll_area.verticalScrollBar()
    card = short_list.cards[1]  # SGD with momentum
    momentum = card.run.hyperparameters["momentum"]
    wheel(card.controls["momentum"].lineEdit())
    wheel(card.optimizer_combo)
    assert card.run.hyperparameters["momentum"] == momentum
    assert card.run.optimizer_name == "SGD"
    assert bar.value() > 0


def test_a_focused_slider_takes_the_wheel(short_list, qtbot):
    card = short_list.cards[0]
    card.lr_slider.setFocus()
    qtbot.waitUntil(card.lr_slider.hasFocus, timeout=1000)
    before = card.lr_slider.value()
    wheel(card.lr_slider, down=False)
    assert card.lr_slider.value() != before


def test_clicking_a_partly_hidden_card_does_not_scroll_it(short_list, qtbot, controller):
    bar = short_list.scroll_area.verticalScrollBar()
    viewport = short_list.scroll_area.viewport()
    hidden = next(c for c in short_list.cards
                  if 0 < c.mapTo(viewport, QPoint(0, 0)).y() < viewport.height()
                  < c.mapTo(viewport, QPoint(0, c.height())).y())
    top = hidden.mapTo(viewport, QPoint(0, 0)).y()
    assert bar.value() == 0
    qtbot.mouseClick(hidden, Qt.MouseButton.LeftButton, pos=QPoint(hidden.width() - 8, 4))
    assert controller.selected is hidden.run
    assert bar.value() == 0 and hidden.mapTo(viewport, QPoint(0, 0)).y() == top


def test_a_run_selected_elsewhere_is_scrolled_into_view(short_list, controller):
    bar = short_list.scroll_area.verticalScrollBar()
    controller.select(controller.session.runs[-1])  # as from the surface or the table
    assert bar.value() > 0
