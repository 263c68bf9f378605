"""Cross-section (横断面) of the pipes under a cut line: where each pipe crosses it, how deep it lies,
the spacing between neighbours and the GB 50289 horizontal clearances between them, and a drawing.

Positions are distances along the cut line (shapely ``line.project`` of each crossing point). Depths
come from the ground level of the DEM at the crossing minus the pipe's burial depth (to the pipe
top, pipeline_pipes.burial_depth_m); the invert is the top minus the nominal diameter. Neighbours are
the crossings next to each other along the line; their clear spacing in the section is the distance
between the axes minus the two radii, checked against the horizontal rule for the pair.

Pure (no database): the service reads the pipes near the line and passes them in with the DEM path.
"""

from __future__ import annotations

from html import escape
from pathlib import Path
from typing import Any

import numpy as np
import rasterio
import shapely
from shapely.geometry import LineString

from data.reference import code_list
from gis.crs import transformer
from gis.errors import InvalidParameter, NotFound
from layers.pipeline import clearance

MAX_CUT_M = 2000.0  # a cross-section is a street's width, not a district's
GROUND_SAMPLES = 101


def utility_names() -> dict[str, str]:
    """Utility → its Chinese name (给水, 燃气, …) from the shared code list."""
    return {r["code"]: r["name_zh"] for r in code_list("pipeline_utilities")}


def check_cut(line: LineString) -> None:
    """A cut line is a street crossing: a few metres to two kilometres."""
    if line.length <= 0.1:
        raise InvalidParameter("the cut line is shorter than 10 cm: draw it across the street")
    if line.length > MAX_CUT_M:
        raise InvalidParameter(f"the cut line is {line.length:.0f} m long; a cross-section takes at most "
                               f"{MAX_CUT_M:.0f} m: draw a shorter line across the pipes you mean")


def ground_levels(dem: Path | str, storage_crs: str, points: np.ndarray) -> np.ndarray:
    """DEM elevation (m) at storage-CRS points (n × 2); NaN outside the model or on nodata.

    Read as layers/pipeline/profile.py reads it: the DEM in its own CRS, sampled at the cell."""
    dem = Path(dem)
    if not dem.exists():
        raise NotFound(f"no elevation model ({dem.name}) on the server: write it first (govgis db setup writes "
                       "the demo DEM) or set GOVGIS_DEM_PATH")
    if len(points) == 0:
        return np.zeros(0)
    with rasterio.open(dem) as src:
        to_dem = transformer(storage_crs, src.crs.to_wkt()) if src.crs else None
        xs, ys = (to_dem.transform(points[:, 0], points[:, 1]) if to_dem else (points[:, 0], points[:, 1]))
        xs, ys = np.atleast_1d(xs), np.atleast_1d(ys)
        values = np.array([v[0] for v in src.sample(list(zip(xs, ys, strict=True)))], dtype=float)
        inside = (xs >= src.bounds.left) & (xs <= src.bounds.right) & (ys >= src.bounds.bottom) & \
            (ys <= src.bounds.top)
        bad = ~inside | ~np.isfinite(values)
        if src.nodata is not None:
            bad |= values == src.nodata
    return np.where(bad, np.nan, values)


def _round(value: float | None, digits: int = 3) -> float | None:
    return None if value is None or not np.isfinite(value) else round(float(value), digits)


def crossings(line: LineString, nearby: list[dict[str, Any]]) -> list[tuple[dict[str, Any], shapely.Point]]:
    """Every (pipe row, crossing point) of the line with the pipes (a pipe crossing twice counts twice)."""
    out = []
    for row in nearby:
        hit = shapely.intersection(line, row["geom"])
        if hit.is_empty:
            continue
        for part in getattr(hit, "geoms", [hit]):
            # a pipe lying along the cut line crosses nowhere in particular: its nearest point stands for it
            point = part if part.geom_type == "Point" else part.interpolate(0)
            out.append((row, point))
    return out


def cross_section(line: LineString, nearby: list[dict[str, Any]], dem: Path | str, *, storage_crs: str,
                  rules: tuple[clearance.Rule, ...]) -> dict[str, Any]:
    """The cross-section of ``line`` (storage CRS) through ``nearby`` (the repository's ``pipes_near``
    rows): crossings along the line with their depths, neighbours' spacing and clearance findings, and
    the ground line sampled along the cut."""
    check_cut(line)
    hits = crossings(line, nearby)
    points = np.array([(p.x, p.y) for _, p in hits], dtype=float).reshape(-1, 2)
    ground = ground_levels(dem, storage_crs, points)
    names = utility_names()
    items: list[dict[str, Any]] = []
    for k, (row, point) in enumerate(hits):
        depth = row["burial_depth_m"]
        dia = row["diameter_mm"]
        g = ground[k]
        top = g - depth if depth is not None and np.isfinite(g) else None
        invert = top - dia / 1000 if top is not None and dia else None
        items.append({
            "pipe_id": int(row["id"]), "code": row["code"], "utility": row["utility"],
            "utility_zh": names.get(row["utility"], row["utility"]), "network_id": row["network_id"],
            "diameter_mm": dia, "pressure_class": row["pressure_class"], "burial_depth_m": depth,
            "position_m": round(float(line.project(point)), 3), "x": float(point.x), "y": float(point.y),
            "ground_m": _round(g), "top_m": _round(top), "invert_m": _round(invert),
        })
    items.sort(key=lambda c: (c["position_m"], c["pipe_id"]))
    neighbours: list[dict[str, Any]] = []
    for a, b in zip(items, items[1:], strict=False):
        spacing = b["position_m"] - a["position_m"]
        clear = spacing - ((a["diameter_mm"] or 0) + (b["diameter_mm"] or 0)) / 2000
        pa = clearance.PipeSpec(a["utility"], a["diameter_mm"], a["burial_depth_m"], a["pressure_class"])
        pb = clearance.PipeSpec(b["utility"], b["diameter_mm"], b["burial_depth_m"], b["pressure_class"])
        rule = clearance.rule_for("horizontal", pa, pb, rules)
        entry = {"from_pipe_id": a["pipe_id"], "to_pipe_id": b["pipe_id"], "from_code": a["code"],
                 "to_code": b["code"], "spacing_m": round(spacing, 3), "clear_m": round(clear, 3),
                 "required_m": rule.min_m if rule else None, "source": rule.source if rule else None,
                 "violation": bool(rule is not None and clear < rule.min_m)}
        neighbours.append(entry)
    violating = {p for n in neighbours if n["violation"] for p in (n["from_pipe_id"], n["to_pipe_id"])}
    for item in items:
        item["violation"] = item["pipe_id"] in violating
    d = np.linspace(0, line.length, GROUND_SAMPLES)
    samples = shapely.get_coordinates(shapely.line_interpolate_point(line, d))
    profile = ground_levels(dem, storage_crs, samples)
    return {"length_m": round(line.length, 3), "crossings": items, "count": len(items),
            "neighbours": neighbours, "violations": sum(n["violation"] for n in neighbours),
            "ground": [{"position_m": round(float(di), 3), "ground_m": _round(gi)}
                       for di, gi in zip(d, profile, strict=True)],
            "rules": f"data/rules/{clearance.RULES_TABLE}.csv"}


def cross_section_svg(section: dict[str, Any], colors: dict[str, str]) -> str:
    """The section as a self-contained SVG: ground line, pipes as circles in their CJJ 61 colours at their
    depth, spacing dimensions between neighbours (red where a clearance is broken), labels in Chinese."""
    width, height, left, right, top, bottom = 960, 440, 60, 20, 40, 90
    length = max(section["length_m"], 1e-6)
    levels = [g["ground_m"] for g in section["ground"] if g["ground_m"] is not None]
    levels += [c[k] for c in section["crossings"] for k in ("top_m", "invert_m") if c[k] is not None]
    high, low = (max(levels) + 0.5, min(levels) - 0.5) if levels else (1.0, -3.0)
    high, low = (high, low) if high - low > 1 else (high + 0.5, low - 0.5)

    def sx(position: float) -> float:
        return left + (width - left - right) * position / length

    def sy(level: float) -> float:
        return top + (height - top - bottom) * (high - level) / (high - low)

    scale = (height - top - bottom) / (high - low)  # pixels per metre of depth
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
           f'viewBox="0 0 {width} {height}" font-family="Noto Sans CJK SC, sans-serif" font-size="12">',
           f'<title>横断面 cross-section ({length:.1f} m)</title>',
           f'<rect width="{width}" height="{height}" fill="#fff"/>',
           f'<text x="{left}" y="20" font-size="15">横断面 长度 {length:.1f} m，管线 {section["count"]} 条，'
           f'净距不足 {section["violations"]} 处</text>']
    ground = [(sx(g["position_m"]), sy(g["ground_m"])) for g in section["ground"] if g["ground_m"] is not None]
    if ground:
        path = " ".join(f"{x:.1f},{y:.1f}" for x, y in ground)
        out.append(f'<polyline class="ground" points="{path}" fill="none" stroke="#6b4f2a" stroke-width="2"/>')
        out.append(f'<text x="{ground[0][0] + 4:.1f}" y="{ground[0][1] - 6:.1f}" fill="#6b4f2a">地面线</text>')
    # elevation axis
    out.append(f'<line x1="{left}" y1="{top}" x2="{left}" y2="{height - bottom}" stroke="#999"/>')
    for level in np.linspace(low, high, 5):
        out.append(f'<text x="{left - 6}" y="{sy(level) + 4:.1f}" text-anchor="end" fill="#666">{level:.1f}</text>')
    out.append(f'<text x="8" y="{top - 10}" fill="#666">高程 m</text>')
    # labels in staggered rows above the section, each tied to its pipe by a leader line: pipes a few
    # decimetres apart in a street would print over each other otherwise
    rows = 4
    for k, c in enumerate(section["crossings"]):
        x = sx(c["position_m"])
        colour = colors.get(c["utility"], "#555")
        label = f'{c["utility_zh"]} {escape(c["code"])}' + (f' DN{c["diameter_mm"]}' if c["diameter_mm"] else "")
        label_y = top + 4 + 13 * (k % rows)
        label_x = min(max(x, left + 4), width - right - 4)
        if c["top_m"] is None:
            out.append(f'<g class="pipe unknown-depth" data-pipe="{c["pipe_id"]}"><line x1="{x:.1f}" y1="{label_y + 3}" '
                       f'x2="{x:.1f}" y2="{height - bottom}" stroke="{colour}" stroke-dasharray="4 3"/>'
                       f'<text x="{label_x:.1f}" y="{label_y}" text-anchor="middle" font-size="10" fill="{colour}">'
                       f'{label} 埋深不详</text></g>')
            continue
        r = max(3.0, (c["diameter_mm"] or 0) / 2000 * scale)
        cy = sy(c["top_m"] - (c["diameter_mm"] or 0) / 2000)
        stroke = "#d7191c" if c["violation"] else "#333"
        out.append(f'<g class="pipe" data-pipe="{c["pipe_id"]}">'
                   f'<line x1="{x:.1f}" y1="{label_y + 3}" x2="{x:.1f}" y2="{cy - r:.1f}" stroke="#bbb" stroke-width="0.7"/>'
                   f'<circle cx="{x:.1f}" cy="{cy:.1f}" r="{r:.1f}" fill="{colour}" stroke="{stroke}" '
                   f'stroke-width="{2 if c["violation"] else 1}"/>'
                   f'<text x="{label_x:.1f}" y="{label_y}" text-anchor="middle" font-size="10">{label} '
                   f'埋深{c["burial_depth_m"]:.2f} 管顶{c["top_m"]:.2f}</text></g>')
    base = height - bottom + 30
    for k, n in enumerate(section["neighbours"]):
        a = next(c for c in section["crossings"] if c["pipe_id"] == n["from_pipe_id"])
        b = next(c for c in section["crossings"] if c["pipe_id"] == n["to_pipe_id"] and c is not a)
        xa, xb = sx(a["position_m"]), sx(b["position_m"])
        colour = "#d7191c" if n["violation"] else "#333"
        need = f' &lt; {n["required_m"]:.1f}' if n["violation"] else ""
        y = base + 16 * (k % 2)
        out.append(f'<g class="dimension{" violation" if n["violation"] else ""}">'
                   f'<line x1="{xa:.1f}" y1="{y}" x2="{xb:.1f}" y2="{y}" stroke="{colour}"/>'
                   f'<line x1="{xa:.1f}" y1="{y - 4}" x2="{xa:.1f}" y2="{y + 4}" stroke="{colour}"/>'
                   f'<line x1="{xb:.1f}" y1="{y - 4}" x2="{xb:.1f}" y2="{y + 4}" stroke="{colour}"/>'
                   f'<text x="{(xa + xb) / 2:.1f}" y="{y - 3}" text-anchor="middle" font-size="10" fill="{colour}">'
                   f'{n["spacing_m"]:.2f} m（净距 {n["clear_m"]:.2f}{need}）</text></g>')
    out.append(f'<text x="{left}" y="{height - 12}" fill="#666">水平位置为沿剖切线距离；深度=地面高程−埋深；'
               f'红色：GB 50289 水平净距不足</text>')
    out.append("</svg>")
    return "".join(out)
