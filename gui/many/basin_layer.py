"""BasinLayer: the last basin map of one optimizer over the race's surface, under its paths.

The map is the Basins tab's (gui/many/basins_view.py, its sigComputed): the same colours (one per
minimum, paler the more steps it took; diverged and never-settled cells marked), drawn
semi-transparently through SurfaceView.add_overlay, so the heatmap shows through and the paths,
minima and start marker stay on top. Two lines of legend along the plot's top edge name the
optimizer, the steps and the colours.

Which optimizer: the one chosen with `choose(call)`, or by default the race's selected run's
when it was mapped (else the first map). A map of another surface is not shown: the legend says
so until the Basins tab computes one for this surface.
"""

from __future__ import annotations

import html

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QObject

from core.batch import CONVERGED, DIVERGED
from core.many import Basins
from gui.many.basins_view import (DIVERGED_COLOUR, ELSEWHERE_COLOUR, UNSETTLED_COLOUR,
                                  BasinsView, basin_image, cell_rect, minima_used,
                                  minimum_colour, unify_minima)
from gui.many.common import RaceOptimizer, run_key, surface_key
from gui.surface_view import SurfaceView

OPACITY = 0.5
LEGEND_MINIMA = 8


class BasinLayer(QObject):
    """A toggled overlay of a basin map on a SurfaceView. `source`: the BasinsView whose maps it
    shows (or call `set_maps` yourself)."""

    def __init__(self, surface_view: SurfaceView, source: BasinsView | None = None, *,
                 opacity: float = OPACITY) -> None:
        super().__init__(surface_view)
        self.surface_view = surface_view
        self.controller = surface_view.controller
        self.maps: list[tuple[RaceOptimizer, Basins]] = []
        self._minima = np.empty((0, 2))  # the maps' minima, merged (the colours index them)
        self._indices: list[np.ndarray] = []
        self.chosen: str | None = None  # an optimizer call; None: follow the race's selection
        self.visible = False
        self.image = pg.ImageItem(axisOrder="row-major")
        self.image.setOpacity(opacity)
        # Two lines of text along the top edge: they hide a strip of the region, not a well.
        self.legend = pg.TextItem(anchor=(0, 0), fill=pg.mkBrush(255, 255, 255, 215),
                                  border=pg.mkPen(0, 0, 0, 90))
        self.legend.setParentItem(surface_view.view_box)
        self.legend.setPos(6, 6)
        self.legend.setZValue(100)
        self.legend_text = ""  # what the legend says, as plain text
        self.legend.hide()
        self._on_screen = False
        self.source: BasinsView | None = None
        if source is not None:
            self.set_source(source)
        self.controller.sigSelectionChanged.connect(self._on_race_change)
        self.controller.sigSurfaceChanged.connect(self._on_race_change)

    # --- public -----------------------------------------------------------------------------------

    def set_source(self, source: BasinsView) -> None:
        """Show the maps the Basins tab computes, starting with those it shows now."""
        self.source = source
        source.sigComputed.connect(self.set_maps)
        shown = [(p.option, p.basins) for p in source.panels if p.basins is not None]
        if shown:
            self.set_maps(shown)

    def set_maps(self, maps: list[tuple[RaceOptimizer, Basins]]) -> None:
        self.maps = list(maps)
        self._minima, self._indices, _ = unify_minima([b for _, b in self.maps])
        self._refresh()

    def choose(self, call: str | None) -> None:
        """Show this optimizer's map (its call text, as the panel's title); None: follow the race's
        selected run."""
        self.chosen = call
        self._refresh()

    def set_visible(self, on: bool) -> None:
        self.visible = bool(on)
        self._refresh()

    def current(self) -> tuple[RaceOptimizer, Basins, np.ndarray] | None:
        """The map to show (for this surface), its optimizer and its cells' minima, or None."""
        if not self.maps:
            return None
        pick = 0
        if self.chosen is not None:
            pick = next((k for k, (o, _) in enumerate(self.maps) if o.call == self.chosen), -1)
        elif self.controller.selected is not None:
            key = run_key(self.controller.selected)
            pick = next((k for k, (o, _) in enumerate(self.maps) if o.key() == key), 0)
        if pick < 0:
            return None
        option, result = self.maps[pick]
        return option, result, self._indices[pick]

    # --- drawing ----------------------------------------------------------------------------------

    def _on_race_change(self, *_: object) -> None:
        self._refresh()

    def _refresh(self) -> None:
        found = self.current() if self.visible else None
        surface = self.controller.session.surface
        fits = found is not None and surface_key(found[1].surface) == surface_key(surface)
        if fits:
            option, result, index = found  # type: ignore[misc]
            self.image.setImage(basin_image(result, index), autoLevels=False)
            self.image.setRect(cell_rect(result))
            if not self._on_screen:
                self.surface_view.add_overlay(self.image)
                self._on_screen = True
            self._fill_legend(option, result, index)
        else:
            self._take_off()
            if self.visible:
                self._fill_legend(None, None, None)
        self.legend.setVisible(self.visible)

    def _take_off(self) -> None:
        if self._on_screen:
            self.surface_view.remove_overlay(self.image)
            self._on_screen = False

    def _fill_legend(self, option: RaceOptimizer | None, result: Basins | None,
                     index: np.ndarray | None) -> None:
        if option is None or result is None or index is None:
            why = ("no basin map yet: compute one in Many runs > Basins" if not self.maps else
                   "the basin map is of another surface: compute it again in Many runs")
            self._set_legend([(None, why)])
            return
        entries: list[tuple[str | None, str]] = [
            (None, f"basins of {option.call}, {result.steps} steps")]
        line = [(minimum_colour(m), f"→ ({self._minima[m][0]:.3g}, {self._minima[m][1]:.3g})")
                for m in (int(m) for m in minima_used(index)[:LEGEND_MINIMA])]
        status = result.cells.status
        for colour, text, present in (
                (DIVERGED_COLOUR, "diverged", status == DIVERGED),
                (UNSETTLED_COLOUR, "never settled",
                 (status != CONVERGED) & (status != DIVERGED) & (index < 0)),
                (ELSEWHERE_COLOUR, "settled elsewhere", (status == CONVERGED) & (index < 0))):
            if present.any():  # only the marks this map has: the legend hides little
                line.append((colour, text))
        self._set_legend(entries, line)

    def _set_legend(self, *lines: list[tuple[str | None, str]]) -> None:
        def entry(colour: str | None, text: str) -> str:
            swatch = "" if colour is None else f"<span style='color:{colour}'>&#9632;</span> "
            return swatch + html.escape(text)

        self.legend.setHtml("<span style='color:black; font-size:8pt'>" + "<br>".join(
            "&nbsp;&nbsp; ".join(entry(c, t) for c, t in line) for line in lines) + "</span>")
        self.legend_text = "\n".join("  ".join(t for _, t in line) for line in lines)
