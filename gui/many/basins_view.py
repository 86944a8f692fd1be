"""The Basins tab: where each start of a grid goes, for every optimizer of the race at once.

core.many.basins steps a grid of starts (up to 512 x 512) as one batch of the real torch.optim
optimizer and says, per cell, where it ended, its status and the minimum it reached (the
surface's known minima, then clusters of converged end points for what is not known). This tab
draws one panel per optimizer of the race session, side by side on the same grid (small
multiples), each cell coloured by its minimum and paler the more steps it took to converge;
diverged cells, cells still moving after the last step, and cells that settled away from every
minimum have their own colours. The legend lists the minima (coordinates and loss) and the marks.

Colours are the same minimum in every panel: the panels' minima are merged (`unify_minima`),
known ones first, so a found minimum keeps one colour across optimizers.

Hover a cell: its start, end, loss, status and steps. Click a cell: the race starts there.
L-BFGS is not mapped: core.batch refuses it (one history and one line search would couple the
starts); its panel says so.

"float32 (faster, less exact)" computes the batches in float32 (about 2.5x faster on a 256 x 256
Adam map); the legend says which dtype the maps on screen used, and the cache keeps the two
apart. "Film…" writes one optimizer's map filling in as the starts are stepped (GIF, MP4, WebP,
APNG; gui/many/basin_film.py: the stepping in a Job, with progress and Cancel), the same film
`main.py basins --out film.gif` writes.

Signals
-------
sigComputed(object)    new maps are on screen: a list of (RaceOptimizer, Basins), in panel order
"""

from __future__ import annotations

import html
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QPointF, QRectF, Qt, Signal
from PySide6.QtWidgets import (QCheckBox, QFileDialog, QGridLayout, QHBoxLayout, QLabel,
                               QLineEdit, QMenu, QPushButton, QSpinBox, QVBoxLayout, QWidget)

from core.animation import AnimationPlan
from core.basin_animation import BasinFilm, plan_basin_animation
from core.batch import CONVERGED, DIVERGED, REASONS, RUNNING
from core.errors import PlaygroundError
from core.many import MAX_GRID, Basins, basins
from core.surfaces import Range, Surface
from core.text_values import parse_pair
from gui.controller import Controller
from gui.many.basin_film import BasinFilmTask, FilmProgress
from gui.many.common import (AnalysisRunner, ExportButtons, RaceOptimizer, ResultCache,
                             analysis_key, race_optimizers, run_key)

DEFAULT_GRID = 64
DEFAULT_STEPS = 500  # the figure; Rosenbrock's valley needs more, and the map says so
MAX_STEPS = 100_000  # core.many bounds the work (cells x steps) and says so
PANELS_PER_ROW = 4
DEFAULT_FILM_FPS = 10
DEFAULT_FILM_SIZE = (800, 600)

# One colour per minimum (tab10 without its grey, which marks "never settled").
MINIMUM_COLOURS = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2",
                   "#bcbd22", "#17becf")
DIVERGED_COLOUR = "#202020"
UNSETTLED_COLOUR = "#a0a0a0"  # still moving after the last step, near no minimum
ELSEWHERE_COLOUR = "#e6e6e6"  # settled, but away from every minimum listed
PALEST = 0.65  # a cell that converged at the last step is mixed this far towards white
NEAR_DARKEN = 0.5  # still moving, but already near a minimum: its colour, this much darker
LEGEND_MINIMA = 12  # the legend lists at most this many minima
NOTE_CLICK = ("Click a cell to race from its start: the race's start moves there (every run "
              "restarts from it) and the panel's optimizer is selected, added to the race if it "
              "is no longer in it.")
SHADES = 64  # levels of paleness by steps to converge
MOSTLY_MOVING = 0.5  # a panel with more of its starts still moving than this gets a note
DTYPE_WORDS = {"float64": "float64: every cell is exactly the race's run from that start",
               "float32": "float32 (faster, less exact): a cell may differ slightly from the "
                          "race's run from that start"}


def _rgb(colour: str) -> np.ndarray:
    c = colour.lstrip("#")
    return np.array([int(c[k:k + 2], 16) for k in (0, 2, 4)], dtype=np.float64)


def minimum_colour(m: int) -> str:
    return MINIMUM_COLOURS[m % len(MINIMUM_COLOURS)]


def unify_minima(results: list[Basins]) -> tuple[np.ndarray, list[np.ndarray], int]:
    """(centres (m, 2), per result its cells' index into centres or -1, how many are known).

    The known minima are the same in every result; a found one (a cluster of end points) is
    merged with an earlier one within the result's tolerance, else appended."""
    if not results:
        return np.empty((0, 2)), [], 0
    known = results[0].known
    centres = [tuple(c) for c in results[0].minima[:known]]
    indices = []
    for result in results:
        remap = np.arange(len(result.minima), dtype=np.int64)
        for m in range(result.known, len(result.minima)):
            cx, cy = result.minima[m]
            near = [k for k in range(known, len(centres))
                    if math.hypot(centres[k][0] - cx, centres[k][1] - cy) <= result.tolerance]
            if near:
                remap[m] = near[0]
            else:
                remap[m] = len(centres)
                centres.append((float(cx), float(cy)))
        # (-1 indexes the appended -1: a cell at no minimum stays at none)
        indices.append(np.append(remap, -1)[result.minimum])
    return np.array(centres, dtype=np.float64).reshape(-1, 2), indices, known


def basin_colours(index: np.ndarray, status: np.ndarray, converged_at: np.ndarray, steps: int
                  ) -> np.ndarray:
    """Per cell an RGBA colour (n, 4) uint8: the minimum's colour, paler the later it converged
    (SHADES levels); darker when still moving near it; the marks' colours for diverged, never
    settled, or settled away from every minimum.

    One gather from a small table of every colour (class x shade): a 512 x 512 map is coloured
    in a few milliseconds, so showing it costs the GUI thread no more than a frame or two."""
    table = _colour_table()
    kinds = len(MINIMUM_COLOURS)
    converged = status == CONVERGED
    colour = np.maximum(index, 0) % kinds
    cls = np.where(index >= 0, np.where(converged, 3 + colour, 3 + kinds + colour),
                   np.where(converged, 2, 1))
    cls[status == DIVERGED] = 0
    level = np.zeros(len(index), dtype=np.int64)
    np.rint(np.clip(converged_at / max(steps, 1), 0.0, 1.0) * (SHADES - 1), out=level,
            where=converged, casting="unsafe")
    return table[cls, level]


def _colour_table() -> np.ndarray:
    """(3 + 2 * colours, SHADES, 4) uint8: diverged, never settled, settled elsewhere, each
    minimum colour from full to PALEST towards white, each minimum colour darkened."""
    global _TABLE
    if _TABLE is None:
        fade = PALEST * np.linspace(0.0, 1.0, SHADES)[:, None]
        rows = [np.repeat(_rgb(c)[None], SHADES, axis=0)
                for c in (DIVERGED_COLOUR, UNSETTLED_COLOUR, ELSEWHERE_COLOUR)]
        rows += [_rgb(c) * (1 - fade) + 255.0 * fade for c in MINIMUM_COLOURS]
        rows += [np.repeat(_rgb(c)[None] * (1 - NEAR_DARKEN), SHADES, axis=0)
                 for c in MINIMUM_COLOURS]
        table = np.full((len(rows), SHADES, 4), 255, dtype=np.uint8)
        table[:, :, :3] = np.rint(np.stack(rows)).astype(np.uint8)
        _TABLE = table
    return _TABLE


_TABLE: np.ndarray | None = None


def minima_used(index: np.ndarray) -> np.ndarray:
    """The minima some cell reached, in order (a bincount: np.unique sorts, 5 ms a map)."""
    return np.flatnonzero(np.bincount(index + 1)[1:])


def basin_image(result: Basins, index: np.ndarray) -> np.ndarray:
    """The map as a row-major RGBA image (ny, nx, 4): row j is y[j], column i is x[i]."""
    c = result.cells
    colours = basin_colours(index, c.status, c.converged_at, result.steps)
    return colours.reshape(len(result.y), len(result.x), 4)


def cell_rect(result: Basins) -> QRectF:
    """The region the image covers: each cell centred on its start."""
    x, y = result.x, result.y
    dx, dy = (x[-1] - x[0]) / (len(x) - 1), (y[-1] - y[0]) / (len(y) - 1)
    return QRectF(x[0] - dx / 2, y[0] - dy / 2, dx * len(x), dy * len(y))


def cell_at(result: Basins, x: float, y: float) -> tuple[int, int] | None:
    """(row j, column i) of the cell under the point, or None outside the grid."""
    rect = cell_rect(result)
    if not rect.contains(QPointF(x, y)):
        return None
    i = int((x - rect.left()) / rect.width() * len(result.x))
    j = int((y - rect.top()) / rect.height() * len(result.y))
    return min(j, len(result.y) - 1), min(i, len(result.x) - 1)


def _point(p: tuple[float, float] | np.ndarray) -> str:
    return f"({float(p[0]):.4g}, {float(p[1]):.4g})"


def status_text(result: Basins, k: int) -> str:
    """What happened to cell k, in words."""
    c = result.cells
    if c.status[k] == DIVERGED:
        return f"diverged at step {int(c.diverged_at[k])}: {REASONS[int(c.reason[k])]}"
    if c.status[k] == CONVERGED:
        return f"converged at step {int(c.converged_at[k])}"
    if c.status[k] == RUNNING:
        return f"still moving after {result.steps} steps"
    return "frozen (both coordinates)"


@dataclass
class BasinPanel:
    """One optimizer's map: its plot, image and minima markers; `index`: per cell its minimum in
    the view's merged list (or -1)."""

    option: RaceOptimizer
    plot: pg.PlotItem
    image: pg.ImageItem | None = None
    basins: Basins | None = None
    index: np.ndarray | None = None


class BasinsView(QWidget):
    """The Basins tab over a race controller (its surface and its runs' optimizers)."""

    sigComputed = Signal(object)

    def __init__(self, controller: Controller, *, cache: ResultCache | None = None,
                 parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.controller = controller
        self.panels: list[BasinPanel] = []
        self._plots: list[pg.PlotItem] = []
        self.minima = np.empty((0, 2))  # the merged minima the colours index
        self.known = 0
        self._surface_shown: Surface | None = None
        self._build_controls(cache)
        self._build_picture()
        layout = QVBoxLayout(self)
        layout.setContentsMargins(6, 6, 6, 6)
        layout.addLayout(self._controls)
        layout.addWidget(self.runner)
        layout.addWidget(self.film_progress)
        layout.addWidget(self.note)
        layout.addWidget(self.picture, 1)
        layout.addWidget(self.hover_label)
        self._connections = [(controller.sigSurfaceChanged, self._on_surface_change),
                             (controller.sigRunsChanged, self._on_runs_change),
                             (controller.sigRunChanged, self._on_runs_change)]
        for signal, slot in self._connections:
            signal.connect(slot)
        self._on_surface_change()
        self._show_placeholder()

    # --- building ---------------------------------------------------------------------------------

    def _build_controls(self, cache: ResultCache | None) -> None:
        self.grid_spin = QSpinBox()
        self.grid_spin.setRange(2, MAX_GRID)
        self.grid_spin.setValue(DEFAULT_GRID)
        self.grid_spin.setSuffix(f" × {DEFAULT_GRID}")
        self.grid_spin.valueChanged.connect(lambda n: self.grid_spin.setSuffix(f" × {n}"))
        self.grid_spin.setToolTip(f"Starts per side of the grid (2 to {MAX_GRID})")
        self.steps_spin = QSpinBox()
        self.steps_spin.setRange(1, MAX_STEPS)
        self.steps_spin.setValue(DEFAULT_STEPS)
        self.steps_spin.setToolTip("optimizer.step() calls per start")
        self.x_range_edit = QLineEdit()
        self.y_range_edit = QLineEdit()
        for edit, axis in ((self.x_range_edit, "x"), (self.y_range_edit, "y")):
            edit.setMaximumWidth(120)
            edit.setToolTip(f"The grid's {axis} range, low,high (default the surface's)")
            edit.returnPressed.connect(self.compute)
        self.float32_box = QCheckBox("float32 (faster, less exact)")
        self.float32_box.setToolTip("Compute the batches in float32: about 2.5x faster, and the "
                                    "cells are close to, not equal to, the race's runs")
        self.region_button = QPushButton("Surface's region")
        self.region_button.setToolTip("Set the ranges to the surface's region")
        self.region_button.clicked.connect(self.reset_ranges)
        self.runner = AnalysisRunner(cache, run_text="Compute basins")
        self.runner.run_button.clicked.connect(self.compute)
        self.runner.sigResult.connect(self._on_result)
        self.exports = ExportButtons(lambda: self.picture if self.panels else None,
                                     self.results, name="basins",
                                     on_message=self.runner.show_message)
        self.film_button = QPushButton("Film…")
        self.film_button.setToolTip("Save one optimizer's map filling in, step by step, as GIF, "
                                    "MP4, WebP or APNG (the grid, steps and ranges shown)")
        self.film_button.clicked.connect(self.film_dialog)
        self.film_progress = FilmProgress()
        self.film_task: BasinFilmTask | None = None
        controls = QHBoxLayout()
        for label, widget in (("Grid", self.grid_spin), ("Steps", self.steps_spin),
                              ("x", self.x_range_edit), ("y", self.y_range_edit)):
            controls.addWidget(QLabel(label))
            controls.addWidget(widget)
        controls.addWidget(self.float32_box)
        controls.addWidget(self.region_button)
        controls.addStretch(1)
        self.runner.add_trailing(self.exports)
        self.runner.add_trailing(self.film_button)
        self._controls = controls
        self.note = QLabel()
        self.note.setWordWrap(True)
        self.note.setStyleSheet("color: #444;")

    def _build_picture(self) -> None:
        # The picture (panels and legend) is one widget: it is what "Picture…" exports.
        self.picture = QWidget()
        self.picture.setStyleSheet("background: white;")
        self.graphics = pg.GraphicsLayoutWidget()
        self.graphics.setBackground("w")
        self.graphics.scene().sigMouseMoved.connect(self._on_mouse_move)
        self.graphics.scene().sigMouseClicked.connect(self._on_mouse_click)
        self.legend_label = QLabel()
        self.legend_label.setWordWrap(True)
        self.legend_label.setTextFormat(Qt.TextFormat.RichText)
        self.legend_label.setStyleSheet("background: white; color: black; padding: 4px;")
        layout = QGridLayout(self.picture)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(0)
        layout.addWidget(self.graphics, 0, 0)
        layout.addWidget(self.legend_label, 1, 0)
        layout.setRowStretch(0, 1)
        self.hover_label = QLabel(" ")
        self.hover_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)

    # --- settings ---------------------------------------------------------------------------------

    def reset_ranges(self) -> None:
        surface = self.controller.session.surface
        self.x_range_edit.setText(_pair_text(surface.x_range))
        self.y_range_edit.setText(_pair_text(surface.y_range))

    def ranges(self) -> tuple[Range, Range]:
        """The x and y ranges typed; raises PlaygroundError (one line) for bad input."""
        out = []
        for edit, what in ((self.x_range_edit, "the x range"), (self.y_range_edit, "the y range")):
            lo, hi = parse_pair(edit.text(), what)
            if not lo < hi:
                raise PlaygroundError(f"{what} must go from low to high (got {edit.text()!r})")
            out.append((lo, hi))
        return out[0], out[1]

    @property
    def dtype(self) -> str:
        """What the next maps compute in (core.many.DTYPES)."""
        return "float32" if self.float32_box.isChecked() else "float64"

    def settings(self) -> dict:
        x_range, y_range = self.ranges()
        return {"grid": self.grid_spin.value(), "steps": self.steps_spin.value(),
                "x_range": x_range, "y_range": y_range, "dtype": self.dtype}

    # --- computing --------------------------------------------------------------------------------

    def compute(self) -> bool:
        """Map every batchable optimizer of the race with the settings shown; True if a Job was
        started (False: all cached, nothing to map, or bad input, which the message says)."""
        try:
            settings = self.settings()
        except PlaygroundError as e:
            self.runner.show_message(str(e), error=True)
            return False
        surface = self.controller.session.surface
        options = race_optimizers(self.controller)
        mapped = [o for o in options if o.batchable]
        if not mapped:
            self.runner.show_message("No optimizer of the race can be batched: add one (L-BFGS "
                                     "runs start by start, in the race)", error=True)
            return False
        self._pending = (surface, options, settings)
        by_key = {analysis_key("basins", surface, o, **settings): o for o in mapped}

        def compute_one(key, state):
            o = by_key[key]
            return basins(surface, (o.name, o.hyperparameters), settings["grid"],
                          settings["steps"], settings["x_range"], settings["y_range"],
                          state=state, frozen=o.frozen, dtype=settings["dtype"])

        n = settings["grid"]
        return self.runner.request(list(by_key), compute_one,
                                   f"{len(mapped)} × {n * n} starts, {settings['steps']} steps"
                                   + (", float32" if settings["dtype"] == "float32" else ""))

    def _on_result(self, results: dict) -> None:
        surface, options, settings = self._pending
        maps = iter(results.values())
        shown = [(o, next(maps) if o.batchable else None) for o in options]
        self._show(surface, shown, settings["steps"], settings["dtype"])
        self.sigComputed.emit([(o, b) for o, b in shown if b is not None])

    def results(self) -> list[Basins]:
        """The maps on screen, in panel order (what "Data…" writes)."""
        return [p.basins for p in self.panels if p.basins is not None]

    def shutdown(self) -> None:
        self.runner.shutdown()
        if self.film_task is not None:
            self.film_task.shutdown()

    # --- the film ---------------------------------------------------------------------------------

    def film_of(self, option: RaceOptimizer | None = None, steps: int | None = None
                ) -> BasinFilm:
        """The film of `option` (default: the race's first optimizer a batch can step) with the
        grid, steps (or `steps`), ranges and dtype shown; PlaygroundError for bad input."""
        settings = self.settings()
        if option is None:
            mapped = [o for o in race_optimizers(self.controller) if o.batchable]
            if not mapped:
                raise PlaygroundError("no optimizer of the race can be batched: add one")
            option = mapped[0]
        if not option.batchable:
            raise PlaygroundError(f"{option.call} is not filmed: {option.refusal}")
        return BasinFilm(self.controller.session.surface, (option.name, option.hyperparameters),
                         settings["grid"], settings["steps"] if steps is None else steps,
                         settings["x_range"], settings["y_range"], option.frozen,
                         settings["dtype"])

    def start_film(self, path: str | Path, option: RaceOptimizer | None = None, *,
                   fps: int = DEFAULT_FILM_FPS, steps_per_frame: int | None = None,
                   frames: int | None = None, size: tuple[int, int] = DEFAULT_FILM_SIZE,
                   steps: int | None = None) -> BasinFilmTask | None:
        """Start writing `option`'s film into `path` (the stepping in a Job, then the frames);
        the task, or None with one message when the settings cannot make it (nothing runs)."""
        if self.film_task is not None and self.film_task.running:
            self.runner.show_message("A film is being made: wait for it or cancel it",
                                     error=True)
            return None
        try:
            film = self.film_of(option, steps)
            plan: AnimationPlan = plan_basin_animation(film.steps, fps=fps,
                                                       steps_per_frame=steps_per_frame,
                                                       frames=frames)
            task = BasinFilmTask(film, plan, path, size, parent=self)
        except PlaygroundError as e:
            self.runner.show_message(str(e), error=True)
            return None
        frames_text = f"{plan.frame_count} frames"
        task.sigFinished.connect(lambda written: self.runner.show_message(
            f"Saved {Path(written).name} ({frames_text})"))
        task.sigFailed.connect(lambda message: self.runner.show_message(message, error=True))
        task.sigCancelled.connect(lambda: self.runner.show_message(
            "The film was cancelled; nothing was written"))
        self.film_task = task
        self.film_progress.attach(task)
        self.runner.show_message("")
        task.start()
        return task

    def film_dialog(self) -> None:
        """Film… (and File > Export > Animation in Many runs): which optimizer's map, if the
        race has several, then the settings and the file (ask_film)."""
        options = [o for o in race_optimizers(self.controller) if o.batchable]
        if len(options) <= 1:
            self.ask_film(options[0] if options else None)
            return
        menu = QMenu(self)
        for option in options:
            menu.addAction(option.title()).triggered.connect(
                lambda _=False, o=option: self.ask_film(o))
        menu.exec(self.film_button.mapToGlobal(self.film_button.rect().bottomLeft()))

    def ask_film(self, option: RaceOptimizer | None) -> None:
        """The film's settings (format, size, fps, steps per frame, length) and its file."""
        from gui.animation_export import AnimationDialog

        try:
            film = self.film_of(option)
        except PlaygroundError as e:
            self.runner.show_message(str(e), error=True)
            return
        dialog = AnimationDialog(film, size=DEFAULT_FILM_SIZE, parent=self)
        if not dialog.exec():
            return
        path, _ = QFileDialog.getSaveFileName(self, "Save the basin film",
                                              f"basins{dialog.suffix}",
                                              f"Film (*{dialog.suffix})")
        if not path:
            return
        if Path(path).suffix.lower() != dialog.suffix:
            path += dialog.suffix
        self.start_film(path, option, fps=dialog.fps_box.value(),
                        steps_per_frame=dialog.steps_per_frame_box.value(),
                        size=dialog.chosen_size, steps=dialog.length_box.value())

    # --- drawing ----------------------------------------------------------------------------------

    def _show(self, surface: Surface, shown: list[tuple[RaceOptimizer, Basins | None]],
              steps: int, dtype: str = "float64") -> None:
        self._surface_shown = surface
        plots = self._plots_for(len(shown))
        self.panels = []
        maps = [b for _, b in shown if b is not None]
        self.minima, indices, self.known = unify_minima(maps)
        index_of = iter(indices)
        first: pg.PlotItem | None = None
        for number, (option, result) in enumerate(shown):
            plot = plots[number]
            panel = BasinPanel(option, plot)
            if result is None:
                plot.setTitle(f"<b>{html.escape(option.title())}</b>", size="9pt")
                text = pg.TextItem(_wrap(f"Not mapped: {option.refusal}."), color="k",
                                   anchor=(0.5, 0.5))
                plot.addItem(text)
                plot.hideAxis("left")
                plot.hideAxis("bottom")
                text.setPos(0.5, 0.5)
                plot.setRange(xRange=(0, 1), yRange=(0, 1), padding=0)
            else:
                panel.basins, panel.index = result, next(index_of)
                self._draw_panel(panel)
                if first is None:
                    first = plot
                else:
                    plot.setXLink(first)
                    plot.setYLink(first)
            self.panels.append(panel)
        self._show_legend(surface, steps, dtype)
        self._show_note(shown, steps)
        self.exports.setEnabled(True)
        self.hover_label.setText("Hover a cell for its start, end, loss and status.")

    def _show_placeholder(self) -> None:
        """Before the first map: what Compute will do, instead of a blank picture."""
        self.graphics.ci.clear()
        self._plots = []
        self.graphics.ci.addLabel(
            "No basin map yet.<br><b>Compute basins</b> runs every optimizer of the race from "
            "each start of the grid<br>(one batch of the real torch.optim optimizer per panel) "
            "and colours each start by the minimum it reached.", color="#444", size="11pt")
        self.legend_label.setText("")
        self.note.setText(NOTE_CLICK)
        self.exports.setEnabled(False)

    def _plots_for(self, count: int) -> list[pg.PlotItem]:
        """`count` empty panels: the ones on screen when there are as many (a plot costs ~8 ms
        to build), else new ones."""
        if len(self._plots) != count:
            self.graphics.ci.clear()
            self._plots = []
            for number in range(count):
                plot = self.graphics.ci.addPlot(row=number // PANELS_PER_ROW,
                                                col=number % PANELS_PER_ROW)
                plot.setMenuEnabled(False)
                plot.hideButtons()
                plot.vb.setMouseEnabled(False, False)  # a click is "race from here", not a pan
                self._plots.append(plot)
        for plot in self._plots:
            plot.clear()
            plot.setXLink(None)
            plot.setYLink(None)
            plot.showAxis("left")
            plot.showAxis("bottom")
        return self._plots

    def _draw_panel(self, panel: BasinPanel) -> None:
        result, index = panel.basins, panel.index
        assert result is not None and index is not None
        plot = panel.plot
        c = result.cells
        share = " · ".join(f"{name} {float(np.mean(c.status == code)):.0%}" for name, code in
                           (("converged", CONVERGED), ("moving", RUNNING),
                            ("diverged", DIVERGED)))
        plot.setTitle(f"<b>{html.escape(panel.option.title())}</b><br><span style='font-size:"
                      f"8pt'>{share}</span>", size="9pt")
        image = pg.ImageItem(axisOrder="row-major")
        image.setImage(basin_image(result, index), autoLevels=False)
        image.setRect(cell_rect(result))
        plot.addItem(image)
        panel.image = image
        used = minima_used(index)
        for m in used:
            mx, my = self.minima[m]
            star = pg.ScatterPlotItem([mx], [my], symbol="star" if m < self.known else "o",
                                      size=13, pen=pg.mkPen("k"), brush=pg.mkBrush("w"))
            plot.addItem(star)
        rect = cell_rect(result)
        plot.setRange(xRange=(rect.left(), rect.right()), yRange=(rect.top(), rect.bottom()),
                      padding=0)
        plot.setLabel("bottom", "start x")
        plot.setLabel("left", "start y")

    def _show_legend(self, surface: Surface, steps: int, dtype: str = "float64") -> None:
        used = sorted({int(m) for p in self.panels if p.index is not None
                       for m in minima_used(p.index)})
        items = []
        for m in used[:LEGEND_MINIMA]:
            mx, my = self.minima[m]
            kind = ("global minimum" if m < len(surface.minima) else "local minimum"
                    if m < self.known else "found: converged end points gathered here")
            items.append(_swatch(minimum_colour(m), f"{_point((mx, my))} f = "
                                 f"{surface.value(float(mx), float(my)):.4g}, {kind}"))
        if len(used) > LEGEND_MINIMA:
            items.append(f"and {len(used) - LEGEND_MINIMA} more minima")
        items += [_swatch(DIVERGED_COLOUR, "diverged"),
                  _swatch(UNSETTLED_COLOUR, f"never settled: still moving after {steps} steps, "
                                            "near no minimum (try more steps)"),
                  _swatch(_dark(minimum_colour(0)), "darker: near that minimum, still moving"),
                  _swatch(ELSEWHERE_COLOUR, "settled away from every minimum (a saddle or a "
                                            "flat)"),
                  f"paler: more steps to converge (full colour at step 0, palest at {steps})"]
        found = "" if self.known == len(self.minima) else (
            "<br>Found minima are where converged starts gathered and the surface is lowest "
            "around; starts still moving or diverged never make one.")
        self.legend_label.setText("&nbsp;&nbsp; ".join(items) + found
                                  + f"<br>Computed in {html.escape(DTYPE_WORDS[dtype])}.")

    def _show_note(self, shown: list[tuple[RaceOptimizer, Basins | None]],
                   steps: int = DEFAULT_STEPS) -> None:
        notes = [NOTE_CLICK]
        moving = [o.call for o, b in shown if b is not None
                  and float(np.mean(b.cells.status == RUNNING)) > MOSTLY_MOVING]
        if moving:
            notes.append(f"Most starts of {', '.join(moving)} are still moving after {steps} "
                         "steps (a long, flat valley such as Rosenbrock's takes thousands): "
                         "try more steps.")
        if any(b is None for _, b in shown):
            notes.append("L-BFGS is not mapped: core.batch refuses it (one history and line "
                         "search would couple the starts); it runs start by start in the race.")
        left = sorted({w for o, _ in shown for w in o.left_out})
        if left:
            notes.append(f"The maps step each optimizer alone, without {', '.join(left)}.")
        self.note.setText(" ".join(notes))

    # --- the mouse --------------------------------------------------------------------------------

    def cell_under(self, scene_pos: QPointF) -> tuple[BasinPanel, int] | None:
        """The panel and cell (row-major index) under a point of the graphics scene."""
        for panel in self.panels:
            if panel.basins is None or not panel.plot.vb.sceneBoundingRect().contains(scene_pos):
                continue
            p = panel.plot.vb.mapSceneToView(scene_pos)
            cell = cell_at(panel.basins, p.x(), p.y())
            if cell is not None:
                return panel, cell[0] * len(panel.basins.x) + cell[1]
        return None

    def describe_cell(self, panel: BasinPanel, k: int) -> str:
        result, index = panel.basins, panel.index
        assert result is not None and index is not None
        j, i = divmod(k, len(result.x))
        c = result.cells
        where = ""
        if index[k] >= 0:
            where = f", at minimum {_point(self.minima[index[k]])}"
        return (f"{panel.option.call}: start {_point((result.x[i], result.y[j]))} → end "
                f"{_point((c.final_x[k], c.final_y[k]))}, loss {float(c.final_loss[k]):.4g}, "
                f"{status_text(result, k)}{where}")

    def _on_mouse_move(self, scene_pos: QPointF) -> None:
        found = self.cell_under(scene_pos)
        if found is not None:
            self.hover_label.setText(self.describe_cell(*found))

    def _on_mouse_click(self, event) -> None:
        if event.button() != Qt.MouseButton.LeftButton:
            return
        found = self.cell_under(event.scenePos())
        if found is not None:
            event.accept()
            self.race_from(*found)

    def race_from(self, panel: BasinPanel, k: int) -> None:
        """Move the race's start to cell k's start and select (or add) the panel's optimizer."""
        result = panel.basins
        assert result is not None
        j, i = divmod(k, len(result.x))
        start = (float(result.x[i]), float(result.y[j]))
        controller = self.controller
        option = panel.option
        run = next((r for r in controller.session.runs if run_key(r) == option.key()), None)
        try:
            controller.set_start(start)
            if run is None:
                run = controller.add_run(option.name, option.hyperparameters)
                for coordinate in option.frozen:
                    controller.set_frozen(run, coordinate, True)
            else:
                controller.select(run)
        except PlaygroundError as e:
            self.runner.show_message(str(e), error=True)
            return
        self.runner.show_message(f"The race now starts at {_point(start)}, with "
                                 f"{option.call} selected")

    # --- the race ---------------------------------------------------------------------------------

    def _on_surface_change(self) -> None:
        surface = self.controller.session.surface
        shown = self._surface_shown
        if shown is None or shown.text != surface.text or shown.x_range != surface.x_range:
            self.reset_ranges()
        if shown is not None and shown.text != surface.text:
            self.runner.show_message("The maps shown are of the previous surface: press "
                                     "Compute basins for this one")

    def _on_runs_change(self, *_: object) -> None:
        if not self.panels or self.runner.running:
            return
        shown = [p.option.key() for p in self.panels]
        if shown != [o.key() for o in race_optimizers(self.controller)]:
            self.runner.show_message("The race's optimizers have changed since these maps: "
                                     "press Compute basins to map them")

    def closeEvent(self, event) -> None:
        self.shutdown()
        for signal, slot in self._connections:
            signal.disconnect(slot)
        super().closeEvent(event)


def _pair_text(r: Range) -> str:
    return f"{r[0]:g},{r[1]:g}"


def _dark(colour: str) -> str:
    r, g, b = (int(v) for v in np.rint(_rgb(colour) * (1 - NEAR_DARKEN)))
    return f"#{r:02x}{g:02x}{b:02x}"


def _swatch(colour: str, text: str) -> str:
    return (f"<span style='background-color:{colour}; color:{colour};'>&#9608;&#9608;</span>"
            f"&nbsp;{html.escape(text)}")


def _wrap(text: str, width: int = 34) -> str:
    words, lines, line = text.split(), [], ""
    for word in words:
        if line and len(line) + 1 + len(word) > width:
            lines.append(line)
            line = word
        else:
            line = f"{line} {word}".strip()
    return "\n".join([*lines, line])
