"""Construction land (建设用地): statistics of approvals by period, supply kind (划拨/出让/租赁) and
land-use class, as a table and its CSV/XLSX downloads; and the red-line map (建设用地红线图) of one
approval: the boundary with its numbered corner points in CGCS2000, its area, the parcels it takes
land from and a scale bar.

Pure: the service (layers/landuse/service.py) reads the approvals and parcels and passes them in.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
from collections.abc import Callable
from functools import lru_cache
from typing import Any

from shapely.geometry.base import BaseGeometry

from data.reference import code_list
from gis.errors import InvalidParameter
from gis.localtime import format_date, format_datetime, utc_offset_label
from layers.landuse.printing import (
    SUPPLY_KINDS,
    Drawing,
    corners,
    document,
    draw_corners,
    esc,
    number,
    table,
    word,
)

PERIODS = {"year": "年度", "quarter": "季度", "month": "月份"}
SUPPLY_ORDER = ("allocation", "transfer", "lease")
M2_PER_MU = 10000 / 15  # 1 亩 = 666.67 m²


def check_period(period: str) -> None:
    if period not in PERIODS:
        raise InvalidParameter(f"period is one of {', '.join(PERIODS)} (年度/季度/月份), not {period!r}")


def period_of(day: dt.date, period: str) -> str:
    """The period label of a date: 2024, 2024-Q2 or 2024-05."""
    if period == "year":
        return f"{day.year}"
    if period == "quarter":
        return f"{day.year}-Q{(day.month - 1) // 3 + 1}"
    return f"{day.year}-{day.month:02d}"


def period_name(label: str, period: str) -> str:
    if period == "year":
        return f"{label}年"
    year, part = label.split("-")
    return f"{year}年第{part[1]}季度" if period == "quarter" else f"{year}年{int(part)}月"


@lru_cache(maxsize=1)
def _first_level() -> dict[str, tuple[str, str]]:
    return {r["code"]: (r["name_zh"], r.get("legal_group") or "") for r in code_list("gbt21010_2017")
            if r.get("level") == "1"}


def land_class(code: str) -> tuple[str, str]:
    """The GB/T 21010 first-level class (code, name) an approved use belongs to."""
    first = (code or "")[:2]
    return first, _first_level().get(first, (first or "未分类", ""))[0]


def statistics_of(rows: list[dict[str, Any]], *, period: str, scope: dict[str, Any]) -> dict[str, Any]:
    """Approvals grouped by period × supply kind × first-level land-use class: count, area (m², ha,
    亩; for a drawn area the part inside it) and price (元, where recorded); with subtotals by each
    dimension and the total, which the groups sum to."""
    check_period(period)
    groups: dict[tuple[str, str, str], dict[str, Any]] = {}
    for r in rows:
        code, name = land_class(r["landuse_code"])
        key = (period_of(r["approved_on"], period), r["supply_kind"], code)
        g = groups.setdefault(key, {"period": key[0], "period_name": period_name(key[0], period),
                                    "supply_kind": r["supply_kind"], "supply_kind_name": word(SUPPLY_KINDS, r["supply_kind"]),
                                    "class_code": code, "class_name": name, "count": 0, "area_m2": 0.0,
                                    "price_total": 0.0})
        g["count"] += 1
        g["area_m2"] += float(r["area"])
        g["price_total"] += float(r["price_total"] or 0)
    ordered = sorted(groups.values(), key=lambda g: (g["period"], SUPPLY_ORDER.index(g["supply_kind"])
                                                     if g["supply_kind"] in SUPPLY_ORDER else 9, g["class_code"]))
    for g in ordered:
        _units(g)

    def subtotal(field: str, name: str) -> list[dict[str, Any]]:
        out: dict[str, dict[str, Any]] = {}
        for g in ordered:
            s = out.setdefault(g[field], {field: g[field], name: g[name], "count": 0, "area_m2": 0.0, "price_total": 0.0})
            s["count"] += g["count"]
            s["area_m2"] += g["area_m2"]
            s["price_total"] += g["price_total"]
        return [_units(s) for s in out.values()]

    total = _units({"count": sum(g["count"] for g in ordered), "area_m2": sum(g["area_m2"] for g in ordered),
                    "price_total": sum(g["price_total"] for g in ordered)})
    return {"title": f"建设用地审批统计（按{PERIODS[period]}、供地方式、地类）", "period": period, "scope": scope,
            "area_basis": "平面面积 plane area (m², storage CRS)" + ("；所选范围内部分" if scope.get("kind") == "area" else ""),
            "rows": ordered, "by_period": subtotal("period", "period_name"),
            "by_supply_kind": subtotal("supply_kind", "supply_kind_name"),
            "by_class": sorted(subtotal("class_code", "class_name"), key=lambda s: s["class_code"]), "total": total,
            "approvals": [{"id": r["id"], "approval_no": r["approval_no"], "approved_on": r["approved_on"].isoformat(),
                           "supply_kind": r["supply_kind"], "landuse_code": r["landuse_code"], "area_m2": float(r["area"])}
                          for r in rows]}


def _units(entry: dict[str, Any]) -> dict[str, Any]:
    entry["area_ha"] = entry["area_m2"] / 10000
    entry["area_mu"] = entry["area_m2"] / M2_PER_MU
    return entry


HEADER = ["期间", "供地方式", "地类编码", "地类", "宗数", "面积 m²", "面积 公顷", "面积 亩", "价款 元"]


def _cells(r: dict[str, Any]) -> list[Any]:
    return [r.get("period_name", ""), r.get("supply_kind_name", ""), r.get("class_code", ""), r.get("class_name", ""),
            r["count"], round(r["area_m2"], 2), round(r["area_ha"], 4), round(r["area_mu"], 2), round(r["price_total"], 2)]


def _table_rows(stats: dict[str, Any]) -> list[list[Any]]:
    rows = [_cells(r) for r in stats["rows"]]
    rows += [[f"小计 {s['period_name']}", "", "", "", *_cells(s)[4:]] for s in stats["by_period"]]
    rows += [["小计", s["supply_kind_name"], "", "", *_cells(s)[4:]] for s in stats["by_supply_kind"]]
    rows += [["小计", "", s["class_code"], s["class_name"], *_cells(s)[4:]] for s in stats["by_class"]]
    rows.append(["合计", "", "", "", *_cells(stats["total"])[4:]])
    return rows


def _scope_text(stats: dict[str, Any]) -> str:
    scope = stats["scope"]
    when = f"{scope.get('since') or '最早'} 至 {scope.get('until') or '今'}"
    return f"范围 scope: {scope['name']} · 批准日期 {when} · {stats['area_basis']}"


def statistics_csv(stats: dict[str, Any]) -> bytes:
    """CSV with a BOM (spreadsheet programs then read the Chinese as UTF-8): the groups, subtotals, total."""
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow([stats["title"]])
    writer.writerow([_scope_text(stats)])
    writer.writerow(HEADER)
    writer.writerows(_table_rows(stats))
    return ("\ufeff" + out.getvalue()).encode("utf-8")


def statistics_xlsx(stats: dict[str, Any]) -> bytes:
    """The table as a workbook (subtotal and total rows bold) with the approvals counted on a second sheet."""
    from openpyxl import Workbook
    from openpyxl.styles import Font

    wb = Workbook()
    ws = wb.active
    ws.title = "建设用地统计"
    ws.append([stats["title"]])
    ws.append([_scope_text(stats)])
    ws.append(HEADER)
    for cell in ws[3]:
        cell.font = Font(bold=True)
    groups = len(stats["rows"])
    for i, row in enumerate(_table_rows(stats)):
        ws.append(row)
        if i >= groups:
            for cell in ws[ws.max_row]:
                cell.font = Font(bold=True)
    for col, width in zip("ABCDEFGHI", (16, 10, 10, 22, 8, 16, 14, 14, 18), strict=True):
        ws.column_dimensions[col].width = width
    listed = wb.create_sheet("审批清单")
    listed.append(["批准文号", "批准日期", "供地方式", "批准用途", "统计面积 m²"])
    for a in stats["approvals"]:
        listed.append([a["approval_no"], a["approved_on"], word(SUPPLY_KINDS, a["supply_kind"]), a["landuse_code"],
                       round(a["area_m2"], 2)])
    out = io.BytesIO()
    wb.save(out)
    return out.getvalue()


# --- red-line map --------------------------------------------------------------------------------------

def redline_of(approval: dict[str, Any], parcels: list[dict[str, Any]], *, storage_crs: str, crs_name: str,
               to_geographic: Callable[[float, float], tuple[float, float]]) -> dict[str, Any]:
    """The red line of an approval as figures: corner points (X north, Y east in the projected
    CGCS2000 CRS, and B/L latitude/longitude in CGCS2000 geographic EPSG:4490), area, parcels."""
    geometry: BaseGeometry = approval["geometry"]
    points = []
    for c in corners(geometry):
        lon, lat = to_geographic(c["x"], c["y"])
        points.append({"no": c["no"], "part": c["part"], "ring": c["ring"], "x_north": c["y"], "y_east": c["x"],
                       "lat": lat, "lon": lon})
    edges = []
    for a, b in zip(points, points[1:] + points[:1], strict=True):
        if a["part"] == b["part"] and a["ring"] == b["ring"]:
            edges.append({"from": a["no"], "to": b["no"],
                          "length_m": ((a["x_north"] - b["x_north"]) ** 2 + (a["y_east"] - b["y_east"]) ** 2) ** 0.5})
    area = geometry.area
    return {"approval": {k: v for k, v in approval.items() if k != "geometry"}, "crs": storage_crs,
            "crs_name": crs_name, "geographic_crs": "EPSG:4490", "area_m2": area, "area_ha": area / 10000,
            "area_mu": area / M2_PER_MU, "corners": points, "edges": edges, "parcels": parcels}


def redline_html(red: dict[str, Any], geometry: BaseGeometry, parcel_shapes: list[tuple[str, BaseGeometry]], *,
                 zone: str, bureau: str, generated_at: dt.datetime) -> str:
    """The printable red-line map: the boundary with numbered corners over the parcels, a scale bar
    and north arrow, the corner coordinate table, the area and the parcels taken."""
    a = red["approval"]
    drawing = Drawing(geometry.bounds, 640, max_height=600)
    for code, shape in parcel_shapes:
        drawing.shape(shape, stroke="#8a6d3b", fill="#f3e6c8", opacity=0.5, width=0.8)
        inside = shape.intersection(geometry)
        spot = (inside if not inside.is_empty else shape).representative_point()
        drawing.label(spot.x, spot.y, code[-5:], size=9, colour="#6b4f1d")
    drawing.shape(geometry, stroke="#e00", width=2.5)
    pts = [{"no": c["no"], "x": c["y_east"], "y": c["x_north"]} for c in red["corners"]]
    draw_corners(drawing, pts)
    corner_rows = [[c["no"], f"{c['x_north']:.3f}", f"{c['y_east']:.3f}", f"{c['lat']:.8f}", f"{c['lon']:.8f}"]
                   for c in red["corners"]]
    edges = table(["起点", "终点", "边长 m"], [[e["from"], e["to"], number(e["length_m"], 3)] for e in red["edges"]],
                  numeric=(2,))
    parcels = table(["宗地代码", "权利人", "用途", "宗地面积 m²", "占用面积 m²"], [
        [p["parcel_code"], p.get("right_holder"), p.get("landuse_code"), number(p.get("plane_area")),
         number(p.get("area_inside"))] for p in red["parcels"]], numeric=(3, 4))
    info = table(["项目", "内容"], [
        ["批准文号", a["approval_no"]], ["项目名称", a["project_name"]], ["用地单位", a["land_user"]],
        ["供地方式", word(SUPPLY_KINDS, a["supply_kind"])], ["批准用途", f"{a['landuse_code']} {land_class(a['landuse_code'])[1]}"],
        ["批准日期", format_date(a["approved_on"])], ["使用年限", f"{a['term_years']} 年" if a.get("term_years") else "—"],
        ["用地面积", f"{number(red['area_m2'])} m²（{number(red['area_ha'], 4)} 公顷，{number(red['area_mu'])} 亩）"],
        ["界址点数", str(len(red["corners"]))]])
    body = f"""<p class="meta">坐标系：{esc(red['crs_name'])}（{esc(red['crs'])}，X 北坐标、Y 东坐标，单位 m）；经纬度为 CGCS2000
（EPSG:4490）。面积为平面面积。制图时间：{esc(format_datetime(generated_at, zone))}（{esc(utc_offset_label(zone))}）</p>
<div class="figure">{drawing.svg('建设用地红线图')}</div>
<p class="note">图例：红线 用地红线 · 红点 界址点（J1…）· 棕色 涉及宗地（标注宗地代码后五位）</p>
<h2>用地信息</h2>{info}
<h2>界址点坐标表</h2>{table(['点号', 'X（北）m', 'Y（东）m', '纬度 B °', '经度 L °'], corner_rows, numeric=(1, 2, 3, 4))}
<h2>界址边长</h2>{edges}
<h2>涉及宗地</h2>{parcels}"""
    return document("建设用地红线图", a["project_name"], body, bureau=bureau, zone=zone, number=a["approval_no"])

