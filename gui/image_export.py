"""Pictures to files: PNG (QImage) or SVG (QSvgGenerator), of a session, the live surface view,
the curves, or any widget.

The surface and the curves are drawn from the data, not grabbed from the screen: each export
builds its own offscreen picture (a never-shown pg.GraphicsLayoutWidget laid out at the requested
size), so it works whatever tab is showing, at any size, and without the hover read-out.

pyqtgraph's SVGExporter is broken with PySide6 6.12, so SVG goes through Qt's own QSvgGenerator
and QPainter: the scene paints itself as vector paths (the heatmap is an embedded image).

Files are written through core.atomic (a temporary file in the same folder, renamed into place),
so a failed export never leaves a half-written file nor clobbers an older one. Every failure
raises core.errors.ExportError with a message for the user.
"""

from __future__ import annotations

import os
import re
import xml.etree.ElementTree as ET
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pyqtgraph as pg
from PySide6.QtCore import QPoint, QPointF, QRect, QRectF, QSize, QSizeF, Qt
from PySide6.QtGui import QColor, QImage, QPainter, QPainterPath, QRegion, QTransform
from PySide6.QtSvg import QSvgGenerator
from PySide6.QtWidgets import (
    QApplication,
    QGraphicsItem,
    QGraphicsScene,
    QGraphicsTextItem,
    QGraphicsView,
    QGraphicsWidget,
    QStyleOptionGraphicsItem,
    QWidget,
)

from core.atomic import atomic_path
from core.errors import ExportError
from core.run import Run
from core.session import Session
from gui.curves_view import CurvesPicture, CurvesView
from gui.surface_view import SurfacePicture, SurfaceView

FORMATS = (".png", ".svg")
MAX_SIDE = 20_000
BACKGROUND = QColor("white")
# An offscreen picture is laid out at most this many pixels wide (or tall) and scaled up beyond:
# a 6000 px export is a sharper copy of the picture, not one with tiny text in a vast plot.
MAX_LAYOUT_SIDE = 1600
CURVES_SIZE = (1200, 400)  # the curves' default size when their widget has never been laid out

_app: QApplication | None = None  # the one this module made, kept alive


def ensure_app() -> QApplication:
    """The running QApplication, or a new offscreen one (for the command line: no window)."""
    global _app
    app = QApplication.instance()
    if app is None:
        os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
        app = _app = QApplication([])
    if not isinstance(app, QApplication):
        raise ExportError("image export needs a QApplication (a QCoreApplication is running)")
    return app


def render_session_image(session: Session, path: str | Path, width: int = 1200,
                         height: int = 900) -> None:
    """Draw a session as the app shows it (heatmap, contours, minima, start, trajectories, −∇f
    arrows, legend) into a PNG or SVG of width x height pixels, without a window."""
    path = _check_path(path)
    width, height = _check_size(width, height)

    def build(layout: pg.GraphicsLayout) -> None:
        SurfacePicture(layout, interactive=False, cached=False, line_width=2).show_session(
            session)

    _render_offscreen(build, path, width, height)


def export_surface_view(view: SurfaceView, path: str | Path, width: int | None = None,
                        height: int | None = None) -> None:
    """Write the surface view's picture (its region, runs, selection, arrows and aspect setting)
    as PNG or SVG, drawn afresh offscreen: the hover read-out is left out, and it works whether or
    not the view is on screen. Without a size, the view's own; with one side, the other keeps the
    view's aspect ratio."""
    path = _check_path(path)
    w, h = _fit_size(QRectF(QPointF(0, 0), QSizeF(view.size())), width, height)
    session = view.controller.session
    x_range, y_range = view.view_range()

    def build(layout: pg.GraphicsLayout) -> None:
        picture = SurfacePicture(layout, interactive=False, cached=False, line_width=2)
        picture.set_equal_aspect(view.picture.equal_aspect)
        picture.set_surface(session.surface)
        picture.set_view(x_range, y_range)
        picture.show_region(*picture.view_range())  # no margin: nothing outside the axes
        picture.set_start(session.start)
        picture.show_gradient_arrows = view.show_gradient_arrows
        picture.set_runs(session.runs, view.picture.selected)
        picture.place_legend(like=view.picture)

    _render_offscreen(build, path, w, h)


def render_curves_image(runs: list[Run], path: str | Path, width: int = CURVES_SIZE[0],
                        height: int = CURVES_SIZE[1]) -> None:
    """Draw the loss and gradient-norm curves of these runs (as the curves tab shows them) into a
    PNG or SVG of width x height pixels, without a window."""
    path = _check_path(path)
    width, height = _check_size(width, height)

    def build(layout: pg.GraphicsLayout) -> None:
        picture = CurvesPicture(layout)
        picture.set_runs(runs)
        layout.layout.activate()  # the legend's column has its width: place the plots again
        picture.draw(force=True)

    _render_offscreen(build, path, width, height)


def export_curves_view(view: CurvesView, path: str | Path, width: int | None = None,
                       height: int | None = None) -> None:
    """Write the curves of the view's runs as PNG or SVG, drawn from the runs offscreen, so the
    picture is whole even when the curves tab was never shown. Without a size: the view's own if
    it has been laid out, else CURVES_SIZE; with one side, the other keeps that aspect ratio."""
    path = _check_path(path)
    shown = view.graphics.viewport().size() if view.isVisible() else None
    source = QSizeF(shown) if shown is not None and not shown.isEmpty() else QSizeF(*CURVES_SIZE)
    w, h = _fit_size(QRectF(QPointF(0, 0), source), width, height)
    render_curves_image(list(view.controller.session.runs), path, w, h)


def _render_offscreen(build: Callable[[pg.GraphicsLayout], None], path: Path, w: int,
                      h: int) -> None:
    """Build a picture in a never-shown layout of (at most MAX_LAYOUT_SIDE) logical pixels with
    the aspect of w x h, then write it as w x h pixels."""
    ensure_app()
    scale = max(1.0, max(w, h) / MAX_LAYOUT_SIDE)
    area = QRectF(0, 0, w / scale, h / scale)
    canvas = pg.GraphicsLayoutWidget()  # never shown: it only gives the scene a view to map with
    try:
        canvas.ci.setGeometry(area)
        lay_out_now(canvas.scene())  # arrows and labels are sized in pixels of this area
        build(canvas.ci)
        lay_out_now(canvas.scene())  # what the build changed (a colour bar's label, a legend)
        _write(path, w, h, area.size(), scene_painter(canvas.scene(), area))
    finally:
        canvas.close()
        canvas.deleteLater()


def export_widget_image(target: QWidget | QGraphicsScene | QGraphicsItem, path: str | Path,
                        width: int | None = None, height: int | None = None) -> None:
    """Write what a widget (or scene, or graphics item) shows as PNG or SVG.

    Without a size, the image has the widget's size; with one side, the other keeps the aspect
    ratio; with both, the picture is scaled to fit and centred. The surface view and the curves
    are drawn from their data instead (export_surface_view, export_curves_view): the same
    picture whatever is on screen, laid out at the requested size, without the hover read-out.
    """
    if isinstance(target, SurfaceView):
        export_surface_view(target, path, width, height)
        return
    if isinstance(target, CurvesView):
        export_curves_view(target, path, width, height)
        return
    path = _check_path(path)
    if isinstance(target, QGraphicsScene):
        scene, source = target, target.sceneRect()
    elif isinstance(target, QGraphicsView):
        scene = target.scene()
        source = target.mapToScene(target.viewport().rect()).boundingRect()
    elif isinstance(target, QGraphicsItem):
        scene, source = target.scene(), target.sceneBoundingRect()
    elif isinstance(target, QWidget):
        scene, source = None, QRectF(target.rect())
    else:
        raise ExportError(f"cannot export a {type(target).__name__} as an image")
    if (scene is None and not isinstance(target, QWidget)) or source.isEmpty():
        raise ExportError("there is nothing to export: the view is empty or not laid out")
    w, h = _fit_size(source, width, height)
    # Drawn at the size it has on screen, then scaled as a whole (pixel-sized markers, arrows and
    # text included): a larger image is a sharper copy of the same picture, not a different one.
    scale = min(w / source.width(), h / source.height())
    logical = QSizeF(w / scale, h / scale)
    if scene is not None:
        paint = scene_painter(scene, source)
    else:
        paint = _widget_painter(target)  # type: ignore[arg-type]
    _write(path, w, h, logical, paint)


def lay_out_now(scene: QGraphicsScene) -> None:
    """Apply every pending layout of the scene's widgets now. Shown on screen, Qt does it at the
    next event-loop turn; an offscreen picture is painted before that turn comes."""
    for _ in range(3):  # outer layouts first; an inner one may be resized by its parent's
        for item in scene.items(Qt.SortOrder.AscendingOrder):
            # (QGraphicsWidget's method: pyqtgraph's GraphicsLayout hides it with an attribute)
            layout = QGraphicsWidget.layout(item) if isinstance(item, QGraphicsWidget) else None
            if layout is not None:
                layout.activate()


# --- checks ---------------------------------------------------------------------------------------


def _check_path(path: str | Path) -> Path:
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in FORMATS:
        what = f"'{suffix}'" if suffix else "a name without an extension"
        raise ExportError(f"cannot export an image as {what}: use .png or .svg")
    folder = path.parent
    if not folder.is_dir():
        raise ExportError(f"cannot write {path}: the folder {folder} does not exist")
    if path.is_dir():
        raise ExportError(f"cannot write {path}: it is a folder")
    if not os.access(folder, os.W_OK):
        raise ExportError(f"cannot write {path}: the folder {folder} is not writable")
    return path


def _check_size(width: int, height: int) -> tuple[int, int]:
    try:
        w, h = int(width), int(height)
    except (TypeError, ValueError):
        raise ExportError(f"the image size must be two whole numbers, got {width!r} x "
                          f"{height!r}") from None
    if not (1 <= w <= MAX_SIDE and 1 <= h <= MAX_SIDE):
        raise ExportError(f"the image size must be between 1 and {MAX_SIDE} pixels each way, "
                          f"got {w} x {h}")
    return w, h


def _fit_size(source: QRectF, width: int | None, height: int | None) -> tuple[int, int]:
    aspect = source.width() / source.height()
    if width is None and height is None:
        width, height = round(source.width()), round(source.height())
    elif height is None:
        height = round(int(width) / aspect)  # type: ignore[arg-type]
    elif width is None:
        width = round(int(height) * aspect)
    return _check_size(max(1, width), max(1, height))  # type: ignore[arg-type]


# --- painting -------------------------------------------------------------------------------------

Painter = Callable[[QPainter, QRectF, bool], None]  # (painter, area, vector output)


def _fitted(source: QRectF | QRect, target: QRectF) -> QRectF:
    """The largest rectangle with the source's aspect ratio, centred in target."""
    s = min(target.width() / source.width(), target.height() / source.height())
    w, h = source.width() * s, source.height() * s
    return QRectF(target.x() + (target.width() - w) / 2, target.y() + (target.height() - h) / 2,
                  w, h)


@contextmanager
def _export_mode(scenes: list[QGraphicsScene], opts: dict) -> Iterator[None]:
    """pyqtgraph items draw differently for export (e.g. scatter symbols as paths, not cached
    pixmaps, scaled to the output): tell them, as pyqtgraph's own exporters do. Items cached as
    pixmaps for the screen (the heatmap, contours, legend) are painted afresh, so an SVG gets
    their vectors and a larger PNG their full resolution."""
    items = [item for scene in scenes for item in scene.items()]
    cached = [(item, item.cacheMode()) for item in items
              if item.cacheMode() != QGraphicsItem.CacheMode.NoCache]
    try:
        for item in items:
            if hasattr(item, "setExportMode"):
                item.setExportMode(True, opts)
        for item, _ in cached:
            item.setCacheMode(QGraphicsItem.CacheMode.NoCache)
        yield
    finally:
        for item in items:
            if hasattr(item, "setExportMode"):
                item.setExportMode(False)
        for item, mode in cached:
            item.setCacheMode(mode)


def scene_painter(scene: QGraphicsScene, source: QRectF) -> Painter:
    def paint(painter: QPainter, target: QRectF, vector: bool) -> None:
        box = _fitted(source, target)
        opts = {"antialias": True, "background": BACKGROUND, "painter": painter,
                "resolutionScale": box.width() / source.width()}
        with _export_mode([scene], opts):
            painter.setRenderHint(QPainter.RenderHint.Antialiasing, True)
            if vector:
                _render_items(scene, painter, box, source)
            else:
                scene.render(painter, box, source, Qt.AspectRatioMode.IgnoreAspectRatio)

    return paint


def _widget_painter(widget: QWidget) -> Painter:
    def paint(painter: QPainter, target: QRectF, vector: bool) -> None:
        box = _fitted(widget.rect(), target)
        views = [v for v in widget.findChildren(QGraphicsView)
                 if v.isVisible() and v.scene() is not None]
        opts = {"antialias": True, "background": BACKGROUND, "painter": painter,
                "resolutionScale": box.width() / widget.width()}
        with _export_mode([v.scene() for v in views], opts):
            painter.save()
            painter.translate(box.topLeft())
            painter.scale(box.width() / widget.width(), box.height() / widget.height())
            if vector and views:
                # Each plot through the explicit-clip renderer, where it sits in the widget.
                for view in views:
                    corner = view.viewport().mapTo(widget, QPoint(0, 0))
                    area = QRectF(QPointF(corner), QSizeF(view.viewport().size()))
                    source = view.mapToScene(view.viewport().rect()).boundingRect()
                    _render_items(view.scene(), painter, area, source)
            else:
                widget.render(painter, QPoint(0, 0), QRegion(),
                              QWidget.RenderFlag.DrawChildren
                              | QWidget.RenderFlag.DrawWindowBackground)
            painter.restore()

    return paint


def _render_items(scene: QGraphicsScene, painter: QPainter, target: QRectF,
                  source: QRectF) -> None:
    """Paint the scene's items one by one, each with its clip set explicitly.

    QGraphicsScene.render would do the same drawing, but Qt's SVG 1.1 writer does not notice when
    the painter's clipping is switched off between items: every item drawn after a clipped one
    (a label, a plot's view box) inherits its clip, and browsers then hide the axes' ticks, the
    legend and more. Giving each item its own clip (its ancestors' shapes, or the whole picture)
    writes a correct clip on every group.
    """
    if hasattr(scene, "prepareForPaint"):
        scene.prepareForPaint()  # pyqtgraph: let view boxes update their transforms first
    base = QTransform()
    base.translate(target.x(), target.y())
    base.scale(target.width() / source.width(), target.height() / source.height())
    base.translate(-source.x(), -source.y())
    flags = QGraphicsItem.GraphicsItemFlag
    for item in scene.items(source, Qt.ItemSelectionMode.IntersectsItemBoundingRect,
                            Qt.SortOrder.AscendingOrder):
        if (not item.isVisible() or item.effectiveOpacity() <= 0
                or item.flags() & flags.ItemHasNoContents):
            continue
        clip = QPainterPath()
        clip.addRect(target)
        holder = item if item.flags() & flags.ItemClipsToShape else None
        ancestor = item.parentItem()
        while ancestor is not None:
            if ancestor.flags() & flags.ItemClipsChildrenToShape:
                clip = clip.intersected(base.map(ancestor.sceneTransform().map(ancestor.shape())))
            ancestor = ancestor.parentItem()
        if holder is not None:
            clip = clip.intersected(base.map(item.sceneTransform().map(item.shape())))
        if clip.isEmpty() or clip.boundingRect().isEmpty():
            continue  # clipped away entirely (Qt would write an empty clip path for it)
        painter.save()
        painter.setClipPath(clip)
        painter.setTransform(item.deviceTransform(base))
        painter.setOpacity(item.effectiveOpacity())
        option = QStyleOptionGraphicsItem()
        bounds = item.boundingRect()
        if isinstance(item, QGraphicsTextItem):
            # Text clips itself to this rectangle, measured with Qt's font; the SVG viewer's
            # font may run wider: leave room rather than cut the end of a title off.
            bounds = bounds.adjusted(-bounds.width(), -bounds.height(), bounds.width(),
                                     bounds.height())
        option.exposedRect = bounds
        item.paint(painter, option, None)
        painter.restore()


def _write(path: Path, w: int, h: int, logical: QSizeF, paint: Painter) -> None:
    """Paint into `logical` coordinates, written as a w x h pixel PNG (through the image's device
    pixel ratio) or an SVG of that size (through its viewBox), atomically (core.atomic)."""
    area = QRectF(QPointF(0, 0), logical)
    try:
        with atomic_path(path) as tmp:
            _write_to(tmp, path, w, h, area, paint)
    except OSError as e:
        raise ExportError(f"cannot write {path}: {e.strerror or e}") from None


def _write_to(tmp: Path, path: Path, w: int, h: int, area: QRectF, paint: Painter) -> None:
    """Paint and save the picture into the temporary file `tmp` (named after `path`)."""
    if path.suffix.lower() == ".png":
        image = QImage(w, h, QImage.Format.Format_ARGB32)
        if image.isNull():
            raise ExportError(f"cannot make a {w} x {h} image (out of memory?)")
        image.setDevicePixelRatio(w / area.width())
        image.fill(BACKGROUND)
        painter = QPainter(image)
        try:
            paint(painter, area, False)
        finally:
            painter.end()
        if not image.save(str(tmp), "PNG"):
            raise ExportError(f"cannot write {path}")
        return
    generator = QSvgGenerator(QSvgGenerator.SvgVersion.Svg11)  # 1.1: clip paths
    generator.setFileName(str(tmp))
    generator.setSize(QSize(w, h))
    generator.setViewBox(area)
    generator.setTitle("Optimizer Playground")
    generator.setResolution(96)  # CSS pixels: viewers show it at w x h
    painter = QPainter()
    if not painter.begin(generator):
        raise ExportError(f"cannot write {path}")
    try:
        painter.fillRect(area, BACKGROUND)
        paint(painter, area, True)
    finally:
        painter.end()
    if not tmp.is_file() or tmp.stat().st_size == 0:
        raise ExportError(f"cannot write {path}")
    _flatten_svg_strokes(tmp)


# --- SVG clean-up ---------------------------------------------------------------------------------

_SVG = "http://www.w3.org/2000/svg"
_XLINK = "http://www.w3.org/1999/xlink"
_PAIR = re.compile(r"(-?[0-9.]+(?:[eE][-+]?[0-9]+)?),(-?[0-9.]+(?:[eE][-+]?[0-9]+)?)")
_MATRIX = re.compile(r"matrix\(([^)]*)\)")


def _flatten_svg_strokes(path: Path) -> None:
    """Rewrite Qt's SVG so its thin lines stay thin in every viewer.

    Qt writes a plot's curves in data coordinates under a group transform (e.g. x100, y-84) and
    keeps their 1-2 px pens thin with vector-effect="non-scaling-stroke". Browsers honour that;
    librsvg (rsvg-convert, LaTeX pipelines) and others do not, and draw 200 px wide strokes.
    Mapping those groups' coordinates through their transform and dropping it gives the same
    picture with plain strokes that any SVG renderer draws right.
    """
    ET.register_namespace("", _SVG)
    ET.register_namespace("xlink", _XLINK)
    try:
        tree = ET.parse(path)
    except ET.ParseError as e:
        raise ExportError(f"the SVG written by Qt is not valid XML: {e}") from None
    changed = False
    for group in tree.getroot().iter(f"{{{_SVG}}}g"):
        m = _MATRIX.fullmatch(group.get("transform", "").strip())
        children = list(group)
        if m is None or not any(c.get("vector-effect") == "non-scaling-stroke" for c in children):
            continue
        a, b, c, d, e, f = (float(v) for v in m.group(1).split(","))
        if b != 0.0 or c != 0.0:
            continue  # rotated: circles and rects would not stay circles and rects; leave it
        if not all(_local_name(child) in _MAPPABLE for child in children):
            continue  # something we cannot map (text, an image): this group keeps its transform
        for child in children:
            _map_element(child, a, d, e, f)
        group.set("transform", "matrix(1,0,0,1,0,0)")
        changed = True
    if changed:
        tree.write(path, encoding="UTF-8", xml_declaration=True)


_MAPPABLE = {"path", "polyline", "polygon", "line", "rect", "circle", "ellipse"}


def _local_name(el: ET.Element) -> str:
    return el.tag.rsplit("}", 1)[-1]


def _map_element(el: ET.Element, a: float, d: float, e: float, f: float) -> None:
    """Map one element's coordinates by x' = a x + e, y' = d y + f, in place (its tag is one of
    _MAPPABLE)."""
    tag = _local_name(el)

    def point(match: re.Match[str]) -> str:
        return f"{a * float(match.group(1)) + e:.6g},{d * float(match.group(2)) + f:.6g}"

    if tag == "path":
        updates = {"d": _PAIR.sub(point, el.get("d", ""))}
    elif tag in ("polyline", "polygon"):
        updates = {"points": _PAIR.sub(point, el.get("points", ""))}
    elif tag == "line":
        updates = {"x1": f"{a * float(el.get('x1', 0)) + e:.6g}",
                   "y1": f"{d * float(el.get('y1', 0)) + f:.6g}",
                   "x2": f"{a * float(el.get('x2', 0)) + e:.6g}",
                   "y2": f"{d * float(el.get('y2', 0)) + f:.6g}"}
    elif tag == "rect":
        x, y = float(el.get("x", 0)), float(el.get("y", 0))
        w, h = float(el.get("width", 0)), float(el.get("height", 0))
        x0, x1 = sorted((a * x + e, a * (x + w) + e))
        y0, y1 = sorted((d * y + f, d * (y + h) + f))
        updates = {"x": f"{x0:.6g}", "y": f"{y0:.6g}", "width": f"{x1 - x0:.6g}",
                   "height": f"{y1 - y0:.6g}"}
    else:  # circle, ellipse
        rx = float(el.get("rx", el.get("r", 0)))
        ry = float(el.get("ry", el.get("r", 0)))
        updates = {"cx": f"{a * float(el.get('cx', 0)) + e:.6g}",
                   "cy": f"{d * float(el.get('cy', 0)) + f:.6g}",
                   "rx": f"{abs(a) * rx:.6g}", "ry": f"{abs(d) * ry:.6g}"}
        if tag == "circle":
            el.tag = f"{{{_SVG}}}ellipse"
            el.attrib.pop("r", None)
    for key, value in updates.items():
        el.set(key, value)
    el.attrib.pop("vector-effect", None)  # plain strokes now, scaled like everything else
