"""Small maps drawn as inline SVG for printed documents: no tiles, no scripts, nothing fetched, so a
document prints the same on an isolated intranet.

Coordinates are the storage CRS (metres, north up). Labels are placed so they do not overlap one
another or the markers: each label tries a ring of positions around its anchor, further out with a
leader line, and is left out (``placed`` says so) only when none is free.
"""

from __future__ import annotations

import html
import math
from collections.abc import Iterable

from shapely.geometry.base import BaseGeometry

Box = tuple[float, float, float, float]


def padded_box(bounds: Box, *, share: float = 0.25, minimum_m: float = 50.0) -> Box:
    """``bounds`` grown by ``share`` of its larger side (at least ``minimum_m``) on every side."""
    minx, miny, maxx, maxy = bounds
    pad = max(maxx - minx, maxy - miny, minimum_m) * share
    return (minx - pad, miny - pad, maxx + pad, maxy + pad)


def _text_width(text: str, size: float) -> float:
    return sum(size if ord(ch) > 0x2E80 else size * 0.6 for ch in text)


class SvgMap:
    """One map: add layers bottom to top, then ``svg()``."""

    def __init__(self, box: Box, width: float = 640.0, height: float | None = None) -> None:
        minx, miny, maxx, maxy = box
        span_x, span_y = max(maxx - minx, 1e-6), max(maxy - miny, 1e-6)
        if height is None:
            height = min(width * span_y / span_x, width * 1.1)
        self.scale = min(width / span_x, height / span_y)
        # centre the box in the frame
        self.x0 = minx - (width / self.scale - span_x) / 2
        self.y1 = maxy + (height / self.scale - span_y) / 2
        self.width, self.height = width, height
        self._parts: list[str] = []
        self._labels: list[str] = []
        # the scale bar (bottom left) and the north arrow (top right) keep their corners free of labels
        self._taken: list[tuple[float, float, float, float]] = [(0, height - 30, width / 4 + 70, height),
                                                                (width - 40, 0, width, 52)]

    def xy(self, x: float, y: float) -> tuple[float, float]:
        """Storage coordinates → SVG pixels."""
        return (x - self.x0) * self.scale, (self.y1 - y) * self.scale

    def _points(self, coords: Iterable[tuple[float, ...]]) -> str:
        return " ".join("{:.1f},{:.1f}".format(*self.xy(c[0], c[1])) for c in coords)

    def polygons(self, geometry: BaseGeometry, *, fill: str = "none", stroke: str = "#000",
                 width: float = 1.0, opacity: float = 1.0, dash: str | None = None) -> None:
        parts = []
        for poly in getattr(geometry, "geoms", [geometry]):
            if poly.geom_type != "Polygon" or poly.is_empty:
                continue
            for ring in (poly.exterior, *poly.interiors):
                parts.append("M " + self._points(ring.coords).replace(" ", " L ") + " Z")
        if parts:
            extra = f' stroke-dasharray="{dash}"' if dash else ""
            self._parts.append(f'<path d="{" ".join(parts)}" fill="{fill}" fill-opacity="{opacity}" stroke="{stroke}" '
                               f'stroke-width="{width}" fill-rule="evenodd"{extra}/>')

    def line(self, coords: Iterable[tuple[float, ...]], *, stroke: str = "#000", width: float = 1.0,
             dash: str | None = None, css: str = "") -> None:
        extra = (f' stroke-dasharray="{dash}"' if dash else "") + (f' class="{css}"' if css else "")
        self._parts.append(f'<polyline points="{self._points(coords)}" stroke="{stroke}" stroke-width="{width}" '
                           f'fill="none" stroke-linecap="round"{extra}/>')

    def lines(self, geometry: BaseGeometry, **style: object) -> None:
        for part in getattr(geometry, "geoms", [geometry]):
            if part.geom_type == "LineString" and not part.is_empty:
                self.line(part.coords, **style)  # type: ignore[arg-type]

    def marker(self, x: float, y: float, *, shape: str = "circle", size: float = 7.0, fill: str = "#fff",
               stroke: str = "#000", css: str = "") -> tuple[float, float]:
        """A point symbol (circle, square or a burst star); its area is kept free of labels."""
        px, py = self.xy(x, y)
        cls = f' class="{css}"' if css else ""
        if shape == "burst":
            pts = []
            for k in range(16):
                r = size * (1.0 if k % 2 == 0 else 0.45)
                a = math.pi * k / 8
                pts.append(f"{px + r * math.sin(a):.1f},{py - r * math.cos(a):.1f}")
            self._parts.append(f'<polygon points="{" ".join(pts)}" fill="{fill}" stroke="{stroke}" '
                               f'stroke-width="1.5"{cls}/>')
        elif shape == "square":
            self._parts.append(f'<rect x="{px - size:.1f}" y="{py - size:.1f}" width="{2 * size:.1f}" '
                               f'height="{2 * size:.1f}" fill="{fill}" stroke="{stroke}" stroke-width="2"{cls}/>')
        else:
            self._parts.append(f'<circle cx="{px:.1f}" cy="{py:.1f}" r="{size:.1f}" fill="{fill}" stroke="{stroke}" '
                               f'stroke-width="2"{cls}/>')
        self._taken.append((px - size, py - size, px + size, py + size))
        return px, py

    def _free(self, box: tuple[float, float, float, float]) -> bool:
        x0, y0, x1, y1 = box
        if x0 < 2 or y0 < 2 or x1 > self.width - 2 or y1 > self.height - 2:
            return False
        return all(x1 <= a or x0 >= c or y1 <= b or y0 >= d for a, b, c, d in self._taken)

    def label(self, x: float, y: float, text: str, *, size: float = 11.0, colour: str = "#000",
              halo: bool = True, css: str = "", pixel: bool = False) -> bool:
        """A label near a point, where it overlaps no other label or marker; False when left out."""
        px, py = (x, y) if pixel else self.xy(x, y)
        w, h = _text_width(text, size) + 4, size + 4
        for ring in (1.0, 2.2, 3.6):
            d = (size * 0.9) * ring
            for bx, by in ((px + d, py - d - h), (px + d, py + d), (px - d - w, py - d - h), (px - d - w, py + d),
                           (px - w / 2, py - d - h), (px - w / 2, py + d), (px + d, py - h / 2),
                           (px - d - w, py - h / 2)):
                rect = (bx, by, bx + w, by + h)
                if not self._free(rect):
                    continue
                self._taken.append(rect)
                cls = f' class="{css}"' if css else ""
                if ring > 1.0:  # a leader line back to what it names
                    cx, cy = min(max(px, bx), bx + w), min(max(py, by), by + h)
                    self._labels.append(f'<line x1="{px:.1f}" y1="{py:.1f}" x2="{cx:.1f}" y2="{cy:.1f}" '
                                        f'stroke="{colour}" stroke-width="0.8"/>')
                stroke = ' stroke="#fff" stroke-width="3" paint-order="stroke"' if halo else ""
                self._labels.append(f'<text x="{bx + 2:.1f}" y="{by + h - 3:.1f}" font-size="{size}" fill="{colour}"'
                                    f'{stroke}{cls}>{html.escape(text)}</text>')
                return True
        return False

    def line_label(self, geometry: BaseGeometry, text: str, **style: object) -> bool:
        """A label at the middle of a line (a road's name), placed like ``label``."""
        if geometry.is_empty:
            return False
        mid = geometry.interpolate(0.5, normalized=True)
        return self.label(mid.x, mid.y, text, **style)  # type: ignore[arg-type]

    def svg(self, *, scale_bar: bool = True, north_arrow: bool = True, aria: str = "map") -> str:
        """The map as one ``<svg>`` element, with a scale bar and a north arrow."""
        w, h = self.width, self.height
        extra = []
        if scale_bar:
            ground = (w / 4) / self.scale
            bar = 10 ** math.floor(math.log10(ground))
            for step in (5, 2, 1):
                if step * bar <= ground:
                    bar *= step
                    break
            px = bar * self.scale
            label = f"{bar / 1000:g} km" if bar >= 1000 else f"{bar:g} m"
            extra.append(f'<rect x="8" y="{h - 26:.1f}" width="{px + 50:.1f}" height="20" fill="#fff" fill-opacity=".8"/>'
                         f'<line x1="12" y1="{h - 12:.1f}" x2="{12 + px:.1f}" y2="{h - 12:.1f}" stroke="#000" '
                         f'stroke-width="3"/><text x="{16 + px:.1f}" y="{h - 8:.1f}" font-size="11">{label}</text>')
        if north_arrow:
            extra.append(f'<g transform="translate({w - 22:.1f},14)"><polygon points="0,0 7,20 0,15 -7,20" fill="#000"/>'
                         '<text x="0" y="34" font-size="12" text-anchor="middle">北 N</text></g>')
        return (f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {w:.0f} {h:.0f}" width="{w:.0f}" '
                f'height="{h:.0f}" role="img" aria-label="{html.escape(aria)}" class="map" '
                f'style="overflow:hidden">'
                f'<rect width="100%" height="100%" fill="#fcfcfa" stroke="#888"/>'
                f'{"".join(self._parts)}{"".join(self._labels)}{"".join(extra)}</svg>')
