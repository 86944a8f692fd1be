"""The model's loss landscape as a PNG or SVG file, drawn without a window.

The same LandscapePicture the model workspace's Landscape tab shows (heatmap on the race's log
colour scale, colour bar, contours, centre, each run's path and head), with what the view says
below the plot in words: the directions, how much of the paths the plane holds, and that the
grid was evaluated under torch.no_grad(). Written by gui/image_export.py (PNG through QImage,
SVG through QSvgGenerator, atomically). `main.py landscape --out FILE.png|.svg` calls
`run_landscape_picture_command`, imported lazily, so the command line loads Qt only for a
picture (core/model_cli.py computes; core never imports Qt).
"""

from __future__ import annotations

import argparse
import html
import textwrap
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pyqtgraph as pg

from core.animation import check_writable
from core.errors import ExportError
from core.landscape import Landscape
from core.model_cli import compute_landscape, landscape_caption, landscape_out, picture_size
from gui.image_export import MAX_LAYOUT_SIDE, MAX_SIDE, ensure_app, export_widget_image, \
    lay_out_now
from gui.model.landscape_view import DrawnPath, LandscapePicture

MIN_SIDE = 16  # below this there is no plot to see
CHAR_PX = 7.0  # about the width of a character of the 9 pt caption, in layout pixels


def render_landscape_image(landscape: Landscape, paths: Sequence[DrawnPath], caption: str,
                           path: str | Path, width: int = 1000, height: int = 800) -> None:
    """Draw `landscape` with `paths` (already in the grid's coordinates) and `caption` (lines
    of text under the plot) into a PNG or SVG of width x height pixels.

    Raises core.errors.ExportError (one line) for a bad file name, folder or size.
    """
    if not (MIN_SIDE <= int(width) <= MAX_SIDE and MIN_SIDE <= int(height) <= MAX_SIDE):
        raise ExportError(f"the image size must be between {MIN_SIDE} and {MAX_SIDE} pixels "
                          f"each way, got {width} x {height}")
    ensure_app()
    scale = max(1.0, max(width, height) / MAX_LAYOUT_SIDE)
    canvas = pg.GraphicsLayoutWidget()  # never shown: it gives the scene a view to map with
    canvas.setBackground("w")
    try:
        layout = canvas.ci
        layout.setGeometry(0, 0, width / scale, height / scale)
        lay_out_now(canvas.scene())
        picture = LandscapePicture(layout, cached=False)
        picture.show_landscape(landscape)
        picture.set_paths(list(paths))
        # Wrapped to the picture's width (a label does not wrap, it widens the layout)
        columns = max(20, int(width / scale / CHAR_PX))
        lines = [part for line in caption.splitlines() if line.strip()
                 for part in textwrap.wrap(line, columns)]
        text = "<br>".join(html.escape(line) for line in lines)
        layout.addLabel(text, row=1, col=0, color="k", size="9pt", justify="left")
        lay_out_now(canvas.scene())
        export_widget_image(layout, path, int(width), int(height))
    finally:
        canvas.close()
        canvas.deleteLater()


def drawn_paths(landscape: Landscape, titles: Sequence[str], colors: Sequence[str | None],
                paths: Sequence[np.ndarray]) -> list[DrawnPath]:
    """Flat parameter paths (steps, P) as the picture draws them: projected on the grid."""
    return [DrawnPath(title, color or "#000000", x, y)
            for title, color, (x, y) in zip(titles, colors, landscape.project(paths))]


def run_landscape_picture_command(args: argparse.Namespace) -> str:
    """`landscape --out FILE.png|.svg [--size W,H]`: train the runs --steps steps, compute the
    landscape as `landscape` does for JSON, and draw it with the runs' paths. Returns "wrote
    FILE"; raises a PlaygroundError (one line) for bad input, before any work."""
    out = landscape_out(args, pictures=True)
    if out is None or out.suffix.lower() not in (".png", ".svg"):
        raise ExportError("a picture of the landscape needs --out FILE.png or FILE.svg")
    width, height = picture_size(args.size)
    check_writable(out, ExportError)  # said now, not after the training and the grid
    result = compute_landscape(args)
    render_landscape_image(result.landscape, drawn_paths(result.landscape, result.titles,
                                                         result.colors, result.paths),
                           landscape_caption(result), out, width, height)
    return f"wrote {out}"
