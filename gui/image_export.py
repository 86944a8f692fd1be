"""Pictures to files: PNG (QImage) or SVG (QSvgGenerator), from a live widget or a whole session.

pyqtgraph's SVGExporter is broken with PySide6 6.12, so SVG goes through Qt's own QSvgGenerator
and QPainter: the scene paints itself as vector paths (the heatmap is an embedded image).

Files are written to a temporary name in the same folder and renamed into place, so a failed
export never leaves a half-written file (nor clobbers an older one). Every failure raises
core.errors.ExportError with a message for the user.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import pyqtgraph as pg
from PySide6.QtCore import QPoint, QRect, QRectF, QSize, Qt
from PySide6.QtGui import QColor, QImage, QPainter, QRegion
from PySide6.QtSvg import QSvgGenerator
from PySide6.QtWidgets import QApplication, QGraphicsItem, QGraphicsScene, QGraphicsView, QWidget

from core.errors import ExportError
from core.session import Session
from gui.surface_view import SurfacePicture

FORMATS = (".png", ".svg")
MAX_SIDE = 20_000
BACKGROUND = QColor("white")

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
    ensure_app()
    canvas = pg.GraphicsLayoutWidget()  # never shown: it only gives the scene a view to map with
    try:
        picture = SurfacePicture(canvas.ci, interactive=False, cached=False, line_width=2)
        area = QRectF(0, 0, width, height)
        canvas.ci.setGeometry(area)
        canvas.ci.layout.activate()  # lay out now: the arrows are sized in pixels of this area
        picture.show_session(session)
        _write(path, width, height, _scene_painter(canvas.scene(), area, width, height))
    finally:
        canvas.close()
        canvas.deleteLater()


def export_widget_image(target: QWidget | QGraphicsScene | QGraphicsItem, path: str | Path,
                        width: int | None = None, height: int | None = None) -> None:
    """Write what a widget (or scene, or graphics item) shows as PNG or SVG.

    Without a size, the image has the widget's size; with one side, the other keeps the aspect
    ratio; with both, the picture is scaled to fit and centred.
    """
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
    if scene is not None:
        paint = _scene_painter(scene, source, w, h)
    else:
        paint = _widget_painter(target, w, h)  # type: ignore[arg-type]
    _write(path, w, h, paint)


# --- checks -----------------------------------------------------------------------------------------


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


# --- painting ---------------------------------------------------------------------------------------

Painter = Callable[[QPainter, QRectF], None]


def _fitted(source: QRectF | QRect, target: QRectF) -> QRectF:
    """The largest rectangle with the source's aspect ratio, centred in target."""
    s = min(target.width() / source.width(), target.height() / source.height())
    w, h = source.width() * s, source.height() * s
    return QRectF(target.x() + (target.width() - w) / 2, target.y() + (target.height() - h) / 2,
                  w, h)


def _set_export_mode(scenes: list[QGraphicsScene], on: bool, opts: dict | None = None) -> None:
    """pyqtgraph items draw differently for export (e.g. scatter symbols as paths, not cached
    pixmaps, scaled to the output): tell them, as pyqtgraph's own exporters do."""
    for scene in scenes:
        for item in scene.items():
            if hasattr(item, "setExportMode"):
                item.setExportMode(on, opts)


def _scene_painter(scene: QGraphicsScene, source: QRectF, w: int, h: int) -> Painter:
    def paint(painter: QPainter, target: QRectF) -> None:
        box = _fitted(source, target)
        opts = {"antialias": True, "background": BACKGROUND, "painter": painter,
                "resolutionScale": box.width() / source.width()}
        _set_export_mode([scene], True, opts)
        try:
            painter.setRenderHint(QPainter.RenderHint.Antialiasing, True)
            scene.render(painter, box, source, Qt.AspectRatioMode.IgnoreAspectRatio)
        finally:
            _set_export_mode([scene], False)

    return paint


def _widget_painter(widget: QWidget, w: int, h: int) -> Painter:
    def paint(painter: QPainter, target: QRectF) -> None:
        box = _fitted(widget.rect(), target)
        scenes = [v.scene() for v in widget.findChildren(QGraphicsView) if v.scene() is not None]
        _set_export_mode(scenes, True, {"antialias": True, "background": BACKGROUND,
                                        "painter": painter})
        try:
            painter.save()
            painter.translate(box.topLeft())
            painter.scale(box.width() / widget.width(), box.height() / widget.height())
            widget.render(painter, QPoint(0, 0), QRegion(),
                          QWidget.RenderFlag.DrawChildren | QWidget.RenderFlag.DrawWindowBackground)
            painter.restore()
        finally:
            _set_export_mode(scenes, False)

    return paint


def _write(path: Path, w: int, h: int, paint: Painter) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.part")
    area = QRectF(0, 0, w, h)
    try:
        if path.suffix.lower() == ".png":
            image = QImage(w, h, QImage.Format.Format_ARGB32)
            if image.isNull():
                raise ExportError(f"cannot make a {w} x {h} image (out of memory?)")
            image.fill(BACKGROUND)
            painter = QPainter(image)
            try:
                paint(painter, area)
            finally:
                painter.end()
            if not image.save(str(tmp), "PNG"):
                raise ExportError(f"cannot write {path}")
        else:
            generator = QSvgGenerator()
            generator.setFileName(str(tmp))
            generator.setSize(QSize(w, h))
            generator.setViewBox(QRect(0, 0, w, h))
            generator.setTitle("Optimizer Playground")
            painter = QPainter()
            if not painter.begin(generator):
                raise ExportError(f"cannot write {path}")
            try:
                painter.fillRect(area, BACKGROUND)
                paint(painter, area)
            finally:
                painter.end()
            if not tmp.is_file() or tmp.stat().st_size == 0:
                raise ExportError(f"cannot write {path}")
        os.replace(tmp, path)
    except OSError as e:
        raise ExportError(f"cannot write {path}: {e.strerror or e}") from None
    finally:
        tmp.unlink(missing_ok=True)
