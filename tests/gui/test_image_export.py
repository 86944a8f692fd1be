"""Image export: a whole session drawn headless, live widgets, and the errors a user can hit."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET

import numpy as np
import pyqtgraph as pg
import pytest
from PySide6.QtGui import QColor, QImage
from PySide6.QtWidgets import QVBoxLayout, QWidget

from core.errors import ExportError
from core.session import Session
from gui import image_export
from gui.curves_view import CurvesView
from gui.image_export import CURVES_SIZE, export_widget_image, render_session_image
from gui.surface_view import SurfacePicture, SurfaceView


def pixels(path) -> np.ndarray:
    """The image as an (h, w, 3) array of RGB bytes."""
    image = QImage(str(path)).convertToFormat(QImage.Format.Format_RGB888)
    h, w, stride = image.height(), image.width(), image.bytesPerLine()
    data = np.frombuffer(image.constBits(), dtype=np.uint8, count=h * stride)
    return data.reshape(h, stride)[:, : 3 * w].reshape(h, w, 3).copy()  # outlive the QImage


def count_colour(rgb: np.ndarray, colour: str, tolerance: int = 12) -> int:
    c = QColor(colour)
    target = np.array([c.red(), c.green(), c.blue()])
    return int((np.abs(rgb.astype(int) - target).max(axis=2) <= tolerance).sum())


@pytest.fixture
def stepped_session() -> Session:
    session = Session.default()
    session.step(300)
    return session


def test_session_png_has_the_size_and_the_run_colours(qtbot, stepped_session, tmp_path):
    out = tmp_path / "surface.png"
    render_session_image(stepped_session, out, width=640, height=480)
    image = QImage(str(out))
    assert (image.width(), image.height()) == (640, 480)
    rgb = pixels(out)
    for run in stepped_session.runs:
        assert count_colour(rgb, run.color) >= 15, f"{run.title} ({run.color}) is not drawn"
    # Not a blank picture: the heatmap brings many distinct colours.
    assert len(np.unique(rgb.reshape(-1, 3), axis=0)) > 500
    assert sorted(p.name for p in tmp_path.iterdir()) == ["surface.png"]  # no temporary file


def test_session_png_default_size(qtbot, stepped_session, tmp_path):
    out = tmp_path / "surface.png"
    render_session_image(stepped_session, out)
    image = QImage(str(out))
    assert (image.width(), image.height()) == (1200, 900)


def test_session_svg_is_vector(qtbot, stepped_session, tmp_path):
    out = tmp_path / "surface.svg"
    render_session_image(stepped_session, out, 800, 600)
    text = out.read_text()
    assert "<svg" in text
    assert "<path" in text
    assert text.count("<path") + text.count("<polyline") > 100  # lines, contours, markers
    assert text.count("<image") <= 3  # the heatmap and the colour bar are the only pictures
    assert 'width="800' in text or "800" in text.split(">", 2)[1]
    # The run colours are strokes in the file, not only pixels of an embedded image.
    for run in stepped_session.runs:
        assert run.color.lower() in text.lower()


@pytest.mark.parametrize("name", ["/nonexistent_dir/x.png", "x.bmp", "x", "/nonexistent_dir/x.svg"])
def test_bad_targets_raise_export_error(qtbot, stepped_session, tmp_path, monkeypatch, name):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ExportError) as err:
        render_session_image(stepped_session, name)
    assert ".png or .svg" in str(err.value) or "does not exist" in str(err.value)
    assert list(tmp_path.iterdir()) == []


def test_bad_size_raises_export_error(qtbot, stepped_session, tmp_path):
    with pytest.raises(ExportError, match="between 1 and"):
        render_session_image(stepped_session, tmp_path / "x.png", 0, 100)


def test_failed_write_keeps_the_old_file(qtbot, stepped_session, tmp_path, monkeypatch):
    out = tmp_path / "surface.png"
    out.write_bytes(b"old picture")
    monkeypatch.setattr(QImage, "save", lambda *args, **kwargs: False)
    with pytest.raises(ExportError, match="cannot write"):
        render_session_image(stepped_session, out, 200, 150)
    assert out.read_bytes() == b"old picture"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["surface.png"]


def test_live_surface_view_exports_png_and_svg(qtbot, controller, tmp_path):
    view = SurfaceView(controller)
    qtbot.addWidget(view)
    view.resize(700, 500)
    view.show()
    qtbot.waitExposed(view)
    for _ in range(20):
        controller.step_once()
    png = tmp_path / "view.png"
    export_widget_image(view, png)
    image = QImage(str(png))
    assert (image.width(), image.height()) == (view.viewport().width(), view.viewport().height())
    rgb = pixels(png)
    assert count_colour(rgb, controller.session.runs[0].color) > 0
    export_widget_image(view, png, width=1400)  # twice the size, same aspect ratio
    image = QImage(str(png))
    assert image.width() == 1400
    assert abs(image.height() - 2 * view.viewport().height()) <= 1
    svg = tmp_path / "view.svg"
    export_widget_image(view, svg, 600, 400)
    text = svg.read_text()
    assert "<svg" in text and "<path" in text
    with pytest.raises(ExportError):
        export_widget_image(view, tmp_path / "view.jpg")


def test_plain_widget_with_plots_exports(qtbot, tmp_path):
    # Like the curves panel: a QWidget holding a pyqtgraph widget.
    holder = QWidget()
    layout = QVBoxLayout(holder)
    plot = pg.PlotWidget()
    plot.plot([0, 1, 2, 3], [0, 1, 0, 1], pen=pg.mkPen("#d55e00"))
    layout.addWidget(plot)
    qtbot.addWidget(holder)
    holder.resize(400, 300)
    holder.show()
    qtbot.waitExposed(holder)
    out = tmp_path / "curves.png"
    export_widget_image(holder, out, 400, 300)
    assert count_colour(pixels(out), "#d55e00", tolerance=40) > 20
    svg = tmp_path / "curves.svg"
    export_widget_image(holder, svg)
    assert "<svg" in svg.read_text()


# --- the SVG itself -------------------------------------------------------------------------------

SVG_NS = "{http://www.w3.org/2000/svg}"
NUMBER_PAIR = re.compile(r"(-?[0-9.]+(?:[eE][-+]?[0-9]+)?),(-?[0-9.]+(?:[eE][-+]?[0-9]+)?)")


def matrix(group: ET.Element) -> tuple[float, ...]:
    m = re.fullmatch(r"matrix\(([^)]*)\)", group.get("transform", "matrix(1,0,0,1,0,0)"))
    assert m is not None
    return tuple(float(v) for v in m.group(1).split(","))


def test_svg_strokes_are_plain_and_clips_belong_to_their_items(qtbot, stepped_session, tmp_path):
    out = tmp_path / "surface.svg"
    render_session_image(stepped_session, out, 800, 600)
    root = ET.parse(out).getroot()
    # 1. No thin line relies on vector-effect under a data-space scale (renderers without
    #    vector-effect, like librsvg, would draw it ~100 px wide).
    for group in root.iter(f"{SVG_NS}g"):
        a, b, c, d, _, _ = matrix(group)
        if abs(a) != 1 or abs(d) != 1:
            assert not any(child.get("vector-effect") == "non-scaling-stroke" for child in group)
    # 2. Every clipped drawing has a point inside its clip: a clip left over from another item
    #    (Qt's SVG writer does that after QGraphicsScene.render) would hide it in a browser.
    clips = {}
    for clip in root.iter(f"{SVG_NS}clipPath"):
        xy = np.array([[float(x), float(y)] for x, y in NUMBER_PAIR.findall(
            clip.find(f"{SVG_NS}path").get("d"))])
        clips[clip.get("id")] = (*xy.min(axis=0) - 2, *xy.max(axis=0) + 2)
    checked = 0
    for outer in root.iter(f"{SVG_NS}g"):
        ref = re.fullmatch(r"url\(#(.*)\)", outer.get("clip-path", ""))
        if ref is None:
            continue
        x0, y0, x1, y1 = clips[ref.group(1)]
        for group in outer:
            a, b, c, d, e, f = matrix(group)
            for el in group:
                text = el.get("points") or el.get("d") or ""
                pts = [(float(x), float(y)) for x, y in NUMBER_PAIR.findall(text)]
                if el.get("x") is not None and el.get("y") is not None:
                    pts.append((float(el.get("x")), float(el.get("y"))))
                if not pts:
                    continue
                dev = [(a * x + c * y + e, b * x + d * y + f) for x, y in pts]
                assert any(x0 <= x <= x1 and y0 <= y <= y1 for x, y in dev), \
                    f"<{el.tag.split('}')[1]}> drawn entirely outside its clip {ref.group(1)}"
                checked += 1
    assert checked > 50


# --- exports drawn from the data, whatever is on screen -------------------------------------------


def test_curves_export_when_the_curves_were_never_shown(qtbot, controller, tmp_path):
    view = CurvesView(controller)  # never shown, as when the curves tab was never opened
    qtbot.addWidget(view)
    for _ in range(40):
        controller.step_once()
    out = tmp_path / "curves.png"
    export_widget_image(view, out)
    image = QImage(str(out))
    assert (image.width(), image.height()) == CURVES_SIZE
    rgb = pixels(out)
    for run in controller.session.runs:
        assert count_colour(rgb, run.color, tolerance=30) >= 40, f"{run.title} is not drawn"
    assert not view.isVisible()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["curves.png"]  # no temporary left


@pytest.mark.parametrize("suffix", [".png", ".svg"])
def test_exports_fill_the_size_asked_for(qtbot, controller, tmp_path, suffix):
    surface_view = SurfaceView(controller)
    curves_view = CurvesView(controller)
    for w in (surface_view, curves_view):
        qtbot.addWidget(w)
    surface_view.resize(700, 500)
    surface_view.show()
    qtbot.waitExposed(surface_view)
    for _ in range(20):
        controller.step_once()
    for view, size in ((surface_view, (1000, 400)), (curves_view, (900, 600))):
        out = tmp_path / f"picture{suffix}"
        export_widget_image(view, out, *size)
        if suffix == ".png":
            image = QImage(str(out))
            assert (image.width(), image.height()) == size
            rgb = pixels(out)
            # Laid out at that size, not the widget's picture scaled into it with white bands.
            left = rgb[:, : size[0] // 8].reshape(-1, 3)
            top = rgb[: size[1] // 10].reshape(-1, 3)
            assert (left < 200).any(axis=1).mean() > 0.02 and (top < 200).any(axis=1).mean() > 0.0
            assert len(np.unique(rgb[:, : size[0] // 4].reshape(-1, 3), axis=0)) > 20
        else:
            head = out.read_text().split(">", 2)[1]
            assert f'width="{size[0] * 25.4 / 96:.6g}mm"' in head  # Qt writes millimetres
            assert f'viewBox="0 0 {size[0]} {size[1]}"' in head  # laid out at that size


def test_surface_export_leaves_out_the_hover_read_out(qtbot, controller, tmp_path):
    view = SurfaceView(controller)
    qtbot.addWidget(view)
    view.resize(700, 500)
    view.show()
    qtbot.waitExposed(view)
    text = view.show_point_info(0.25, 0.75)
    assert "∇f" in text and view.hover_label.text
    out = tmp_path / "surface.svg"
    export_widget_image(view, out)
    svg = out.read_text()
    assert "∇f" not in svg and "x = 0.25" not in svg and "x = " not in svg
    assert "Rosenbrock" in svg  # text is written as text: the title is there
    assert view.hover_text == text  # and the live view still shows it


def test_surface_export_keeps_the_users_view_and_legend_place(qtbot, controller, tmp_path):
    view = SurfaceView(controller)
    qtbot.addWidget(view)
    view.resize(700, 500)
    view.show()
    qtbot.waitExposed(view)
    view.set_view((0.0, 1.5), (0.0, 1.5))
    legend = view.picture.legend
    legend.autoAnchor(legend.pos() + pg.QtCore.QPointF(-300, 250))  # as a drag does
    legend.moved_by_user = True
    seen = []
    original = SurfacePicture.place_legend

    def spy(self, like=None):
        original(self, like)
        seen.append((self.view_range(), self.legend.pos()))

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(SurfacePicture, "place_legend", spy)
        export_widget_image(view, tmp_path / "zoomed.png")
    (x_range, y_range), pos = seen[-1]
    assert x_range == pytest.approx((0.0, 1.5), abs=0.01)
    assert y_range == pytest.approx((0.0, 1.5), abs=0.01)
    assert pos.x() < 200 and pos.y() > 150  # bottom left, where the user put it


@pytest.mark.parametrize("suffix", [".png", ".svg"])
def test_failed_curves_export_keeps_the_old_file(qtbot, controller, tmp_path, monkeypatch, suffix):
    view = CurvesView(controller)
    qtbot.addWidget(view)
    out = tmp_path / f"curves{suffix}"
    out.write_bytes(b"old picture")
    if suffix == ".png":
        monkeypatch.setattr(QImage, "save", lambda *args, **kwargs: False)
    else:
        def broken(path):
            path.write_text("<svg")  # half written, then the clean-up fails
            raise ExportError("the SVG written by Qt is not valid XML")
        monkeypatch.setattr(image_export, "_flatten_svg_strokes", broken)
    with pytest.raises(ExportError):
        export_widget_image(view, out)
    assert out.read_bytes() == b"old picture"
    assert sorted(p.name for p in tmp_path.iterdir()) == [out.name]


def test_a_very_wide_export_is_a_scaled_up_layout(qtbot, controller, tmp_path, monkeypatch):
    for _ in range(10):
        controller.step_once()
    laid_out = []
    original = image_export._write

    def spy(path, w, h, logical, paint):
        laid_out.append((logical.width(), logical.height()))
        original(path, w, h, logical, paint)

    monkeypatch.setattr(image_export, "_write", spy)
    out = tmp_path / "wide.png"
    image_export.render_curves_image(controller.session.runs, out, 3400, 850)
    image = QImage(str(out))
    assert (image.width(), image.height()) == (3400, 850)
    # Laid out at most MAX_LAYOUT_SIDE wide, then drawn sharper: the text is not 2x too small.
    (lw, lh), = laid_out
    assert lw == pytest.approx(image_export.MAX_LAYOUT_SIDE) and lh == pytest.approx(400)
    for run in controller.session.runs:
        assert count_colour(pixels(out), run.color, tolerance=30) >= 100
