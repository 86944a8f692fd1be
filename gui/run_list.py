"""The side panel's column of run cards, with an "Add run" button.

Cards are kept for runs that stay (so the card being edited, and the scroll position, survive
another run being added or removed) and built for new runs; a run that is gone takes its card with
it. A run whose optimizer was replaced is a new Run, so it gets a new card.
"""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtWidgets import (QHBoxLayout, QLabel, QMenu, QPushButton, QScrollArea, QVBoxLayout,
                               QWidget)

from core.errors import PlaygroundError
from core.optimizers import CATALOGUE
from core.run import Run
from gui.controller import Controller
from gui.run_card import RunCard


class RunList(QWidget):
    """A scrollable column of RunCards, one per run of the controller's session.

    `cards` is the list of cards in the session's order; `card_for(run)` finds one.
    `add_button` opens `add_menu`, one action per catalogue optimizer.
    """

    def __init__(self, controller: Controller, *, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.controller = controller
        self._cards: dict[int, RunCard] = {}  # id(run) -> card
        self._shown: list[RunCard] = []  # the cards in the column's order, as last laid out
        self._closed = False

        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(4)

        top = QHBoxLayout()
        top.setContentsMargins(4, 0, 4, 0)
        self.add_button = QPushButton("Add run")
        self.add_button.setToolTip("add a run with a torch.optim optimizer, from the shared start")
        self.add_menu = QMenu(self.add_button)
        for name, spec in CATALOGUE.items():
            action = self.add_menu.addAction(name)
            action.setToolTip(spec.help)
            action.triggered.connect(lambda _checked=False, name=name: self._on_add_chosen(name))
        self.add_menu.setToolTipsVisible(True)
        self.add_button.setMenu(self.add_menu)
        self.error_label = QLabel()
        self.error_label.setStyleSheet("color: #c0392b; font-size: 11px;")
        self.error_label.setWordWrap(True)
        self.error_label.hide()
        top.addWidget(self.add_button)
        top.addStretch(1)
        layout.addLayout(top)
        layout.addWidget(self.error_label)

        self.scroll_area = QScrollArea()
        self.scroll_area.setWidgetResizable(True)
        self.scroll_area.setFrameShape(QScrollArea.Shape.NoFrame)
        # The cards fit the panel's width; only the column scrolls.
        self.scroll_area.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self._column_widget = QWidget()
        self._column = QVBoxLayout(self._column_widget)
        self._column.setContentsMargins(2, 2, 2, 2)
        self._column.setSpacing(4)
        self._column.addStretch(1)
        self.scroll_area.setWidget(self._column_widget)
        layout.addWidget(self.scroll_area, 1)

        controller.sigRunsChanged.connect(self._on_runs_change)
        controller.sigSelectionChanged.connect(self._on_selection_change)
        self._on_runs_change()

    @property
    def cards(self) -> list[RunCard]:
        return [self._cards[id(run)] for run in self.controller.session.runs
                if id(run) in self._cards]

    def card_for(self, run: Run) -> RunCard | None:
        card = self._cards.get(id(run))
        return card if card is not None and card.run is run else None

    def _on_add_chosen(self, name: str) -> None:
        try:
            self.controller.add_run(name)
        except PlaygroundError as e:  # e.g. the session already holds the most runs it may
            self.error_label.setText(str(e))
            self.error_label.show()
        else:
            self.error_label.hide()

    def _on_runs_change(self) -> None:
        runs = self.controller.session.runs
        keep = {id(run) for run in runs}
        # A run whose optimizer was replaced is a new Run at the same place: its new card opens
        # the "Schedule, clipping, noise" section if the old one had it open.
        before = self._shown
        open_at = ({i for i, card in enumerate(before) if card.tools_button.isChecked()}
                   if len(before) == len(runs) else set())
        for key in [k for k, card in self._cards.items()
                    if k not in keep or card.run not in runs]:
            card = self._cards.pop(key)
            card.close()
            self._column.removeWidget(card)
            card.deleteLater()  # not now: we may be inside one of its own button handlers
        for index, run in enumerate(runs):
            card = self.card_for(run)
            if card is None:
                card = RunCard(run, self.controller, parent=self._column_widget)
                self._cards[id(run)] = card
                if index in open_at:
                    card.tools_button.setChecked(True)
            else:
                self._column.removeWidget(card)
            self._column.insertWidget(index, card)
            card.show()
        self._shown = self.cards
        # The column never scrolls sideways, so the panel must be at least as wide as a card.
        self.scroll_area.setMinimumWidth(self._column_widget.minimumSizeHint().width()
                                         + self.scroll_area.verticalScrollBar().sizeHint().width())

    def _on_selection_change(self, run: Run | None) -> None:
        # Scroll to a run selected elsewhere (the surface, the table, a new run), never to one
        # selected by a click on its card: the card would move under the pointer.
        card = self.card_for(run) if run is not None else None
        if card is not None and not card.pressing:
            self.scroll_area.ensureWidgetVisible(card, 0, 0)

    def close(self) -> bool:
        if self._closed:
            return super().close()
        self._closed = True
        for card in self._cards.values():
            card.close()
        self._cards.clear()
        self.controller.sigRunsChanged.disconnect(self._on_runs_change)
        self.controller.sigSelectionChanged.disconnect(self._on_selection_change)
        return super().close()
