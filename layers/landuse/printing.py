"""Printable land documents (parcel dossier, red-line map, case map): one A4 page style, Chinese
labels for every code a person reads, tables and inline SVG drawings with a scale bar and a north
arrow — no web assets, so a page prints the same on an intranet with nothing else.

Pure: takes plain values and shapely geometries in the storage (projected, metre) CRS; touches no
database.
"""

from __future__ import annotations

import html
import math
from collections.abc import Iterable, Sequence
from typing import Any

from shapely.geometry.base import BaseGeometry

esc = html.escape

SUPPLY_KINDS = {"allocation": "划拨", "transfer": "出让", "lease": "租赁"}
CASE_KINDS = {"illegal_occupation": "非法占地", "illegal_construction": "违法建设", "unauthorised_change": "擅自改变用途",
              "ownership_dispute": "权属纠纷", "other": "其他"}
CASE_STATUSES = {"reported": "已登记", "investigating": "调查中", "penalised": "已处罚", "rectified": "已整改",
                 "closed": "已结案"}
CONTROL_KINDS = {"permanent_basic_farmland": "永久基本农田", "ecological_red_line": "生态保护红线",
                 "urban_development_boundary": "城镇开发边界"}
ZONE_TYPES = {"core": "核心保护区", "general": "一般控制区", "": ""}
PRICE_CLASSES = {"commercial": "商服用地", "residential": "住宅用地", "industrial": "工业用地", "public": "公共服务用地"}
REGISTRATION_KINDS = {"initial": "首次登记", "change": "变更登记", "transfer": "转移登记", "split": "分割登记",
                      "merge": "合并登记", "boundary_adjustment": "界址调整", "cancellation": "注销登记"}
LINEAGE_KINDS = {"split": "分割", "merge": "合并", "boundary_adjustment": "界址调整"}
HOLDER_KINDS = {"person": "自然人", "organisation": "单位"}
UTILITIES = {"water": "给水", "drainage": "排水", "storm": "雨水", "sewer": "污水", "gas": "燃气", "heat": "热力",
             "power": "电力", "telecom": "通信", "industrial": "工业"}
PIPE_STATUSES = {"in_service": "在用", "abandoned": "废弃", "planned": "规划", "under_construction": "在建"}

# the rules only these documents' own parts use; the page, header, page numbers, headings and tables
# come from gis.documents like every other document's
PRINT_CSS = """
td.n { text-align: right; font-variant-numeric: tabular-nums; }
p.meta { display: block; } .note { color: #555; font-size: 9pt; }
.figure { break-inside: avoid; margin: .4em 0; } .figure svg { max-width: 100%; height: auto; }
.figures { display: flex; gap: 4mm; } .figures > div { flex: 1; min-width: 0; }
"""


def number(value: Any, digits: int = 2) -> str:
    """A number as a person reads it: thousands separated, fixed decimals; '—' for nothing."""
    if value is None:
        return "—"
    return f"{float(value):,.{digits}f}"


def word(table: dict[str, str], code: Any) -> str:
    """The Chinese word for a code ('—' for none; an unknown code shown as it is)."""
    if code in (None, ""):
        return "—"
    return table.get(str(code), str(code))


def table(head: Sequence[str], rows: Iterable[Sequence[Any]], *, numeric: Sequence[int] = ()) -> str:
    """An HTML table; columns in ``numeric`` are right-aligned. Cells are escaped text."""
    th = "".join(f"<th>{esc(h)}</th>" for h in head)
    body = []
    for row in rows:
        cells = []
        for i, c in enumerate(row):
            text = "—" if c is None or c == "" else str(c)
            cells.append(f"<td class='n'>{esc(text)}</td>" if i in numeric else f"<td>{esc(text)}</td>")
        body.append("<tr>" + "".join(cells) + "</tr>")
    if not body:
        body.append(f"<tr><td colspan='{len(head)}'>无 none</td></tr>")
    return f"<table><thead><tr>{th}</tr></thead><tbody>{''.join(body)}</tbody></table>"


def document(title: str, subtitle: str, body: str, *, bureau: str, zone: str, number: str | None = None) -> str:
    """A whole printable page on the one document mechanism (gis.documents: A4, the bureau's header,
    第n页/共m页, the generated time in the city's zone), with ``body`` as its content."""
    from gis.documents import Document

    return Document(title_zh=title, title_en="", bureau=bureau, zone=zone, subtitle=subtitle,
                    number=number).block(body, PRINT_CSS).html()


def _rings(geometry: BaseGeometry) -> list[list[tuple[float, float]]]:
    parts = getattr(geometry, "geoms", [geometry])
    rings = []
    for part in parts:
        if part.geom_type == "Polygon":
            rings += [list(part.exterior.coords), *[list(r.coords) for r in part.interiors]]
        elif part.geom_type in ("LineString", "LinearRing"):
            rings.append(list(part.coords))
        elif part.geom_type.startswith("Multi") or part.geom_type == "GeometryCollection":
            rings += _rings(part)
    return rings


def nice_length(span_m: float) -> float:
    """A round scale-bar length (1, 2 or 5 × 10ⁿ m) near a fifth of the drawing's width."""
    target = max(span_m / 5, 1e-3)
    power = 10 ** math.floor(math.log10(target))
    return max(m * power for m in (1, 2, 5) if m * power <= target) if target >= power else power


class Drawing:
    """An SVG drawing of geometries in a projected metre CRS, north up, at one scale (so the scale
    bar is true), fitted to ``extent`` (minx, miny, maxx, maxy) within ``width`` pixels."""

    def __init__(self, extent: tuple[float, float, float, float], width: int = 640, *, pad: float = 0.08,
                 max_height: int = 560) -> None:
        minx, miny, maxx, maxy = extent
        span = max(maxx - minx, maxy - miny, 1.0)
        self.pad = span * pad
        self.minx, self.maxy = minx - self.pad, maxy + self.pad
        wide, high = maxx - minx + 2 * self.pad, maxy - miny + 2 * self.pad
        self.scale = min(width / wide, max_height / high)
        self.width, self.height = int(wide * self.scale) + 1, int(high * self.scale) + 1
        self.parts: list[str] = []

    def xy(self, x: float, y: float) -> tuple[float, float]:
        return (x - self.minx) * self.scale, (self.maxy - y) * self.scale

    def shape(self, geometry: BaseGeometry | None, *, stroke: str = "#333", fill: str = "none", width: float = 1.0,
              opacity: float = 0.4, dash: str | None = None, title: str | None = None) -> None:
        if geometry is None or geometry.is_empty:
            return
        if geometry.geom_type in ("Point", "MultiPoint"):
            for p in getattr(geometry, "geoms", [geometry]):
                x, y = self.xy(p.x, p.y)
                self.parts.append(f'<circle cx="{x:.1f}" cy="{y:.1f}" r="3" fill="{stroke}"/>')
            return
        d = " ".join("M " + " L ".join(f"{self.xy(x, y)[0]:.1f} {self.xy(x, y)[1]:.1f}" for x, y, *_ in ring)
                     + (" Z" if ring[0] == ring[-1] else "") for ring in _rings(geometry))
        extra = f' stroke-dasharray="{dash}"' if dash else ""
        tip = f"<title>{esc(title)}</title>" if title else ""
        self.parts.append(f'<path d="{d}" fill="{fill}" fill-opacity="{opacity}" stroke="{stroke}" '
                          f'stroke-width="{width}" fill-rule="evenodd"{extra}>{tip}</path>')

    def label(self, x: float, y: float, text: str, *, size: int = 11, colour: str = "#000", dx: float = 0,
              dy: float = 0, anchor: str = "middle") -> None:
        px, py = self.xy(x, y)
        self.parts.append(f'<text x="{px + dx:.1f}" y="{py + dy:.1f}" font-size="{size}" fill="{colour}" '
                          f'text-anchor="{anchor}" paint-order="stroke" stroke="#fff" stroke-width="3">'
                          f"{esc(text)}</text>")

    def svg(self, caption: str = "") -> str:
        """The drawing with a north arrow and a scale bar below it (its length in metres is true)."""
        bar = nice_length(self.width / self.scale)
        bar_px = bar * self.scale
        h = self.height + 34
        bar_text = f"{bar / 1000:g} km" if bar >= 1000 else f"{bar:g} m"
        return (f'<svg xmlns="http://www.w3.org/2000/svg" width="{self.width}" height="{h}" '
                f'viewBox="0 0 {self.width} {h}" role="img" aria-label="{esc(caption)}" '
                f'data-scale-m-per-px="{1 / self.scale:.6f}" data-scale-bar-m="{bar:g}">'
                f'<rect width="{self.width}" height="{self.height}" fill="#fbfbf8" stroke="#999"/>'
                f'{"".join(self.parts)}'
                f'<g class="north"><path d="M {self.width - 22} 34 L {self.width - 15} 14 L {self.width - 8} 34 Z" '
                f'fill="#000"/><text x="{self.width - 15}" y="48" font-size="12" text-anchor="middle">北</text></g>'
                f'<g class="scale-bar"><rect x="10" y="{self.height + 12}" width="{bar_px / 2:.1f}" height="6" fill="#000"/>'
                f'<rect x="{10 + bar_px / 2:.1f}" y="{self.height + 12}" width="{bar_px / 2:.1f}" height="6" fill="#fff" '
                f'stroke="#000"/><text x="10" y="{self.height + 31}" font-size="11">0</text>'
                f'<text x="{10 + bar_px:.1f}" y="{self.height + 31}" font-size="11" text-anchor="middle">{bar_text}</text>'
                f'<text x="{30 + bar_px:.1f}" y="{self.height + 19}" font-size="11">比例尺 1:{_ratio(self.scale):,}'
                f"（按 96 dpi 屏幕）</text></g></svg>")


def _ratio(px_per_m: float) -> int:
    """The map scale 1:N of a drawing shown at 96 px per inch."""
    return int(round((1 / px_per_m) / (0.0254 / 96), -1))


def corners(geometry: BaseGeometry) -> list[dict[str, Any]]:
    """The boundary's corner points (界址点), numbered J1, J2 … ring by ring (outer ring first, the
    closing point not repeated), each with the ring it is on and its coordinates (x east, y north)."""
    out = []
    parts = getattr(geometry, "geoms", [geometry])
    for p, part in enumerate(parts, start=1):
        for r, ring in enumerate((part.exterior, *part.interiors)):
            for x, y, *_ in list(ring.coords)[:-1]:
                out.append({"no": f"J{len(out) + 1}", "part": p, "ring": "外" if r == 0 else f"内{r}", "x": x, "y": y})
    return out


def draw_corners(drawing: Drawing, points: list[dict[str, Any]], *, limit: int = 80) -> None:
    """Corner points with their numbers on a drawing (the first ``limit``: beyond that they would crowd)."""
    for c in points[:limit]:
        drawing.shape(_point(c["x"], c["y"]), stroke="#c00")
        drawing.label(c["x"], c["y"], c["no"], size=10, colour="#c00", dx=4, dy=-4, anchor="start")


def _point(x: float, y: float) -> BaseGeometry:
    from shapely.geometry import Point

    return Point(x, y)
