"""Land supervision documents: an ownership dispute's claims and where they overlap (土地权属纠纷调处),
and the printable case map comparing the land at two dates (监察图件).

Pure: the service (layers/landuse/service.py) reads the case, its claims, the parcels and the land
use at each date (masked for the caller) and passes them in; geometries are shapely in the storage
(metre) CRS.
"""

from __future__ import annotations

import datetime as dt
from itertools import combinations
from typing import Any

import shapely
from shapely.geometry.base import BaseGeometry

from gis.localtime import format_date, format_datetime, utc_offset_label
from layers.landuse.printing import (
    CASE_KINDS,
    CASE_STATUSES,
    HOLDER_KINDS,
    Drawing,
    document,
    esc,
    number,
    table,
    word,
)

PARTY_COLOURS = ("#1f78b4", "#e66101", "#33a02c", "#6a3d9a", "#b15928", "#a6cee3")
MIN_OVERLAP_M2 = 0.01


def overlaps_of(claims: list[BaseGeometry]) -> dict[str, Any]:
    """Where the claims overlap: each pair's overlap (m²), the contested land (claimed by two or more
    parties, counted once), the land claimed in all, and the land claimed by one party only."""
    pairs = []
    pieces = []
    for (i, a), (j, b) in combinations(enumerate(claims), 2):
        both = a.intersection(b)
        if both.area > MIN_OVERLAP_M2:
            pairs.append({"a": i, "b": j, "area": both.area})
            pieces.append(both)
    contested = shapely.union_all(pieces) if pieces else None
    claimed = shapely.union_all(claims)
    contested_area = contested.area if contested is not None else 0.0
    return {"pairs": pairs, "contested": contested, "contested_area": contested_area, "claimed_area": claimed.area,
            "uncontested_area": claimed.area - contested_area,
            "claims_area_sum": sum(c.area for c in claims)}


def _day(value: Any, zone: str) -> str:
    return format_date(value, zone=zone) if value else "—"


def case_map_html(case: dict[str, Any], comparison: dict[str, Any], drawings: list[dict[str, Any]],
                  dispute: dict[str, Any] | None, claim_shapes: list[BaseGeometry], contested: BaseGeometry | None,
                  *, zone: str, bureau: str, generated_at: dt.datetime) -> str:
    """The case map: the case's facts, the land at the first and the second date side by side (the
    case patch in red over the parcels valid then; for a dispute the parties' claims and their
    overlap), the land-use and parcel comparison tables and, for a dispute, the parties' claims."""
    patch: BaseGeometry = case["geometry"]
    extent = shapely.union_all([patch, *claim_shapes]).buffer(10).bounds
    panels = []
    for snap, drawn in zip((comparison["first"], comparison["second"]), drawings, strict=True):
        d = Drawing(extent, 330, max_height=330)
        for parcel in drawn["parcels"]:
            d.shape(parcel["shape"], stroke="#8a6d3b", fill="#f3e6c8", opacity=0.5, width=0.8)
            spot = parcel["shape"].representative_point()
            d.label(spot.x, spot.y, parcel["parcel_code"][-5:], size=9, colour="#6b4f1d")
        for k, claim in enumerate(claim_shapes):
            colour = PARTY_COLOURS[k % len(PARTY_COLOURS)]
            d.shape(claim, stroke=colour, fill=colour, opacity=0.18, width=1.5, dash="5 3")
        if contested is not None:
            d.shape(contested, stroke="#000", fill="#000", opacity=0.35, width=1)
        d.shape(patch, stroke="#e00", width=2.2)
        panels.append(f"<div><h3>{esc(_day(snap['date'], zone))}（调查年度 {esc(str(snap['survey_year'] or '无'))}）</h3>"
                      f"{d.svg('案件图 ' + _day(snap['date'], zone))}</div>")
    facts = table(["项目", "内容"], [
        ["案件编号", case["case_no"]], ["案件类型", word(CASE_KINDS, case["kind"])],
        ["办理状态", word(CASE_STATUSES, case["status"])], ["发现日期", _day(case["found_on"], zone)],
        ["行政区代码", case.get("district")], ["当事人", case.get("party") or ("见各方主张" if dispute is not None else None)], ["案情", case.get("description")],
        ["图斑面积", f"{number(case['patch_area'])} m²"]])
    first, second = comparison["first"], comparison["second"]

    def landuse(snap: dict[str, Any]) -> str:
        return table(["地类编码", "地类", "三大类", "面积 m²"], [
            [r["class_code"], r["class_name"], r["legal_group"], number(r["plane_area"])] for r in snap["landuse"]],
            numeric=(3,))

    def parcels(snap: dict[str, Any]) -> str:
        return table(["宗地代码", "权利人", "用途", "版本", "图斑内面积 m²"], [
            [p["parcel_code"], p.get("right_holder"), p.get("landuse_code"), p.get("version"), number(p["area_inside"])]
            for p in snap["parcels"]], numeric=(3, 4))

    ch = comparison["changes"]
    changes = table(["变化", "内容"], [
        ["耕地减少 m²", number(ch["arable_lost"])], ["建设用地增加 m²", number(ch["construction_gained"])],
        ["新设宗地", "、".join(ch["parcels_created"]) or "无"], ["灭失宗地", "、".join(ch["parcels_retired"]) or "无"],
        ["变更宗地", "、".join(ch["parcels_changed"]) or "无"],
        ["地类面积变化", "；".join(f"{k} {v:+,.2f} m²" for k, v in ch["landuse"].items()) or "无"]])
    dispute_html = ""
    if dispute is not None:
        claims = table(["图例", "当事人", "类型", "证件号码", "联系电话", "主张依据", "主张面积 m²"], [
            [f"色{k + 1}", c.get("party"), word(HOLDER_KINDS, c.get("party_kind")), c.get("party_id_number"),
             c.get("party_phone"), c.get("basis"), number(c["claimed_area"])] for k, c in enumerate(dispute["claims"])],
            numeric=(6,))
        names = [c.get("party") or f"当事人{k + 1}" for k, c in enumerate(dispute["claims"])]
        pairs = table(["当事人甲", "当事人乙", "重叠面积 m²"], [
            [names[p["a"]], names[p["b"]], number(p["area"])] for p in dispute["overlap"]["pairs"]], numeric=(2,))
        o = dispute["overlap"]
        dispute_html = f"""<h2>权属纠纷：各方主张</h2>{claims}<h2>主张范围重叠</h2>{pairs}
<p>争议面积（两方及以上主张，重叠部分只计一次）：<b>{number(o['contested_area'])} m²</b>；主张范围合计（并集）
{number(o['claimed_area'])} m²；无争议部分 {number(o['uncontested_area'])} m²。</p>"""
    legend = "图例：红线 案件图斑 · 棕色 当日有效宗地（标注代码后五位）" + (
        " · 彩色虚线 各方主张范围（色1、色2…）· 深色 争议重叠部分" if dispute is not None else "")
    body = f"""<p class="meta">对比时点：{esc(_day(first['date'], zone))} 与 {esc(_day(second['date'], zone))} · 制图时间
{esc(format_datetime(generated_at, zone))}（{esc(utc_offset_label(zone))}）· 坐标系 CGCS2000，平面面积</p>
<h2>案件信息</h2>{facts}
<h2>两时点对比图</h2><div class="figures figure">{''.join(panels)}</div><p class="note">{esc(legend)}</p>
{dispute_html}
<h2>变化情况</h2>{changes}
<h2>土地利用现状（前一时点）</h2>{landuse(first)}
<h2>土地利用现状（后一时点）</h2>{landuse(second)}
<h2>涉及宗地（前一时点）</h2>{parcels(first)}
<h2>涉及宗地（后一时点）</h2>{parcels(second)}"""
    return document("土地监察案件图", word(CASE_KINDS, case["kind"]), body, bureau=bureau, zone=zone, number=case["case_no"])
