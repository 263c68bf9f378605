"""The land-use family's printed documents — the pre-review report (用地预审与选址报告) and the
land-use area balance table (土地利用面积平衡表) — through the one document mechanism (gis.documents).

Every key the analyses use is turned into its name here (check domains, verdicts, land-price uses,
legal groups, class codes); the stored reports keep their keys for the API. Pure: the service reads
the report, the red line and the map's context (control lines, parcels, roads) and passes them in.
"""

from __future__ import annotations

import re
from functools import lru_cache
from typing import Any

from shapely.geometry.base import BaseGeometry

from data.reference import code_list
from gis.documents import Column, Document, Row
from gis.svgmap import SvgMap
from layers.landuse import classes

DOMAINS = {
    "permanent_basic_farmland": ("永久基本农田", "Permanent basic farmland"),
    "ecological_red_line": ("生态保护红线", "Ecological protection red line"),
    "urban_development_boundary": ("城镇开发边界", "Urban development boundary"),
    "planning": ("规划符合性", "Planning conformity"),
    "survey_coverage": ("现状调查覆盖", "Survey coverage"),
}
SEVERITIES = {"pass": ("通过", "Pass"), "conditional": ("有条件通过", "Conditional"),
              "approval": ("需报国务院批准", "Needs State Council approval"), "refused": ("不予通过", "Refused")}
PRICE_USES = {"commercial": ("商服用地", "Commercial"), "residential": ("住宅用地", "Residential"),
              "industrial": ("工业用地", "Industrial"), "public": ("公共服务用地", "Public service")}
FORMATS = {"geojson": "GeoJSON", "shapefile": "Shapefile", "dxf": "DXF", "txt": "坐标文本 TXT"}
CONTROL_COLOURS = {"permanent_basic_farmland": "#f2c12e", "ecological_red_line": "#1a9641",
                   "urban_development_boundary": "#7b3294"}
ROAD_WIDTH = {"arterial": 5.0, "secondary": 3.5, "local": 2.0}
# where the English half of a stored bilingual text begins: a space, then a word of Latin letters
_ENGLISH = re.compile(r"(?:^|\s+)(?=\(?[A-Za-z][A-Za-z'’-]+\b)")


def chinese_part(text: str | None, lang: str) -> str:
    """A stored bilingual text (``中文 English``) as the document shows it: the Chinese half in zh."""
    if not text:
        return ""
    if lang == "en":
        return text
    parts = [_ENGLISH.split(part, maxsplit=1)[0].rstrip(" :;,(") for part in text.split("; ")]
    return "；".join(p for p in parts if p)


@lru_cache(maxsize=1)
def _planning_names() -> dict[str, tuple[str, str]]:
    return {r["code"]: (r["name_zh"], r.get("name_en") or "") for r in code_list("planning_2023")}


@lru_cache(maxsize=1)
def _utility_names() -> dict[str, str]:
    return {r["code"]: r["name_zh"] for r in code_list("pipeline_utilities")}


@lru_cache(maxsize=1)
def _district_names() -> dict[str, tuple[str, str]]:
    return {r["code"]: (r["name_zh"], r.get("name_en") or "") for r in code_list("admin_divisions")}


def district_name(code: str) -> str:
    """行政区划代码 → ``思明区（350203）`` (the code alone when the list does not have it)."""
    name = _district_names().get(code)
    return f"{name[0]}（{code}）" if name else code


def planning_name(code: str | None) -> str:
    """用地用海 code → ``0701 城镇住宅用地`` (the code alone when the list does not have it)."""
    if not code:
        return "—"
    name = _planning_names().get(code)
    return f"{code} {name[0]}" if name else code


def item_area(item: dict[str, Any]) -> float | None:
    """The area an item is about: land taken from a control line, the part outside the urban
    development boundary, the non-conforming (and unplanned) part of the plan, the part no survey
    covers."""
    domain = item["domain"]
    if domain == "urban_development_boundary":
        return item.get("outside_area")
    if domain == "planning":
        return item.get("nonconforming_area")
    if domain == "survey_coverage":
        return item.get("uncovered_area")
    return item.get("overlap_area")


def site_map(site: BaseGeometry, controls: list[dict[str, Any]], parcels: list[dict[str, Any]],
             roads: list[dict[str, Any]], box: tuple[float, float, float, float]) -> str:
    """The report's map: parcels and roads around the site, the control lines inside it, the red line."""
    m = SvgMap(box, width=640, height=min(480.0, 640 * (box[3] - box[1]) / max(box[2] - box[0], 1e-6)))
    for parcel in parcels:
        m.polygons(parcel["geometry"], fill="#f3efe6", stroke="#9a8f7a", width=0.6)
    for road in sorted(roads, key=lambda r: -ROAD_WIDTH.get(r["road_class"], 2.0)):
        width = ROAD_WIDTH.get(road["road_class"], 2.0)
        m.lines(road["geometry"], stroke="#888", width=width + 1.5)
        m.lines(road["geometry"], stroke="#fff", width=width)
    for c in controls:
        colour = ("#d01c8b" if c["kind"] == "ecological_red_line" and c["zone_type"] == "core"
                  else CONTROL_COLOURS.get(c["kind"], "#555"))
        m.polygons(c["geometry"], fill=colour, stroke=colour,
                   opacity=0.15 if c["kind"] == "urban_development_boundary" else 0.5)
    m.polygons(site, stroke="#e00000", width=2.5)
    named = set()
    for road in roads:  # one label per road name, main roads first
        if road["name"] and road["name"] not in named and m.line_label(road["geometry"], road["name"], size=10,
                                                                       colour="#333"):
            named.add(road["name"])
    return m.svg(aria="red line map")


def prereview_document(report: dict[str, Any], site: BaseGeometry, *, controls: list[dict[str, Any]],
                       parcels_around: list[dict[str, Any]], roads: list[dict[str, Any]],
                       box: tuple[float, float, float, float], bureau: str, zone: str, storage_crs: str,
                       lang: str = "zh") -> str:
    """The printable pre-review report: summary, map, items, land use, plan, parcels, pipelines, the
    base land price of the intended use, and the reviewer's opinion and signatures."""
    doc = Document(title_zh="建设项目用地预审与选址报告", title_en="Site-selection pre-review report",
                   bureau=bureau, zone=zone, lang=lang, subtitle=report["project_name"],
                   number=f"YS-{report['id']:06d}" if report.get("id") else None,
                   generated_at=report.get("generated_at"))
    inp = report["input"]
    total = report["total_area"]
    planning = report["planning"]
    doc.fields([
        ("项目名称", "Project", report["project_name"]),
        ("拟建用途", "Intended use", planning_name(report.get("intended_use"))),
        ("红线面积", "Red-line area", f"{total:,.2f} m²（{total / 10000:,.4f} 公顷）"),
        ("现状调查年度", "Survey year", f"{report['survey_year']} 年"),
        ("规划", "Plan", planning.get("plan_name") or "现行各规划"),
        ("红线来源", "Red line", f"{FORMATS.get(inp['format'], inp['format'])}，{inp['crs']}"),
    ])
    doc.paragraph(f"{doc.label('审查结论', 'Verdict')}：{doc.word(SEVERITIES, report['verdict'])}",
                  css=f"verdict {report['verdict']}")
    doc.heading("位置示意图", "Map")
    doc.figure(site_map(site, controls, parcels_around, roads, box),
               "图例：红色实线 用地红线；米色 宗地；灰白 道路；黄 永久基本农田；绿 生态保护红线一般控制区；"
               "紫红 核心保护区；淡紫 城镇开发边界。平面坐标系 " + storage_crs)

    doc.heading("审查事项", "Checks")
    doc.table([Column("事项", "Check", width="18%"), Column("判定", "Result", width="15%"),
               Column("涉及面积 m²", "Area m²", "area", width="17%"), Column("说明", "Finding")],
              [Row([doc.word(DOMAINS, i["domain"]), doc.word(SEVERITIES, i["severity"]), item_area(i),
                    chinese_part(i["verdict"], lang)], style="" if i["severity"] == "pass" else "bad")
               for i in report["items"]])
    doc.heading("审查依据", "Rules applied")
    seen = []
    for i in report["items"]:
        rule = chinese_part(i["rule"], lang)
        if rule not in seen:
            seen.append(rule)
            doc.paragraph(f"{doc.word(DOMAINS, i['domain'])}：{rule}")

    doc.heading(f"土地利用现状（{report['survey_year']} 年调查）", "Current land use")
    coverage = (report.get("survey_coverage") or {}).get("note")
    if coverage:
        doc.paragraph(chinese_part(coverage, lang))
    doc.table([Column("地类编码", "Code", width="11%"), Column("地类名称", "Class"), Column("三大类", "Group", width="12%"),
               Column("平面面积 m²", "Plane m²", "area", width="17%"),
               Column("椭球面积 m²", "Ellipsoidal m²", "area", width="17%"),
               Column("占比", "Share", "percent", width="10%")],
              [[r["class_code"], r["class_name"], r["legal_group"], r["plane_area"], r["ellipsoidal_area"], r["share"]]
               for r in report["landuse"]])
    doc.paragraph(f"{doc.label('其中耕地', 'Of which arable')}：{report['arable_area']:,.2f} m²")

    doc.heading("规划符合性", "Planning conformity")
    conform_known = report.get("intended_use") is not None
    doc.table([Column("规划", "Plan", width="22%"), Column("规划用途", "Planned use"),
               Column("面积 m²", "Area m²", "area", width="18%"), Column("是否符合", "Conforms", "bool", width="12%")],
              [Row([z["plan_name"], planning_name(z["class_code"]), z["area"], z["conforms"] if conform_known else None],
                   style="bad" if z.get("conforms") is False else "")
               for z in planning["zones"]])

    doc.heading("涉及宗地", "Parcels taken")
    doc.table([Column("宗地代码", "Parcel", width="23%"), Column("权利人", "Holder", width="27%"),
               Column("土地用途", "Land use"), Column("宗地面积 m²", "Parcel m²", "area", width="13%"),
               Column("占用面积 m²", "Taken m²", "area", width="13%")],
              [[p["parcel_code"], p.get("right_holder"), _landuse_name(p.get("landuse_code")), p["plane_area"],
                p["area_inside"]] for p in report["parcels"]])

    doc.heading("穿越地下管线", "Pipelines crossing")
    pipes = report["pipelines"]
    if pipes.get("available"):
        doc.table([Column("管线编码", "Pipe", width="22%"), Column("管线类别", "Utility", width="14%"),
                   Column("管径 mm", "DN mm", "int", width="12%"), Column("材质", "Material"),
                   Column("红线内长度 m", "Length inside m", "number", width="18%")],
                  [[p.get("code"), _utility_names().get(p.get("utility"), p.get("utility")), p.get("diameter_mm"),
                    p.get("material"), p["length_inside_m"]] for p in pipes["pipes"]])
    else:
        doc.paragraph(chinese_part(pipes.get("note"), lang))

    _land_price(doc, report)
    doc.signatures([("经办人", "Handled by"), ("审核人", "Checked by")], opinion=("审查意见", "Review opinion"))
    return doc.html()


def _landuse_name(code: str | None) -> str:
    if not code:
        return "—"
    return f"{code} {classes.classify(code).name}"


def _land_price(doc: Document, report: dict[str, Any]) -> None:
    """The base land price of the intended use only: its zones under the red line and their sum."""
    price = report["land_price"]
    use = price.get("price_class")
    doc.heading("基准地价", "Base land price")
    if not use:
        doc.paragraph("未给出拟建用途，或该用途无对应的城镇基准地价，未估算地价。" if doc.lang == "zh" else
                      "未估算地价 No intended use with a base land price was given: the site is not valued.")
        return
    basis = "按拟建用途" if price.get("price_class_basis") == "intended_use" else "按指定地价用途"
    doc.paragraph(f"{basis}：{doc.word(PRICE_USES, use)}")
    rows = [z for z in price["zones"] if z["land_class"] == use]
    doc.table([Column("地价用途", "Use", width="18%"), Column("级别", "Grade", width="12%"),
               Column("基准地价 元/m²", "Price yuan/m²", "money"), Column("面积 m²", "Area m²", "area"),
               Column("地价 元", "Value yuan", "money")],
              [*[[doc.word(PRICE_USES, z["land_class"]), z["grade"], z["price_per_m2"], z["area"], z["value"]]
                 for z in rows],
               Row(["合计", "", None, sum(z["area"] for z in rows), sum(z["value"] for z in rows)], style="total")])


# --- balance table ---------------------------------------------------------------------------------



def balance_document(table: dict[str, Any], *, bureau: str, zone: str, lang: str = "zh") -> str:
    """The balance table as a printable document: each side's area and share (占比) and the change."""
    doc = Document(title_zh="土地利用面积平衡表", title_en="Land-use area balance table", bureau=bureau, zone=zone,
                   lang=lang)
    scope = table["scope"]
    where = (district_name(scope["district"]) if scope.get("district") else
             "所选范围 drawn area" if "area" in scope else "全市 whole city")
    b, t = table["base"]["label"], table["target"]["label"]
    doc.fields([("统计范围", "Scope", chinese_part(where, lang)),
                ("面积类型", "Area basis", chinese_part(table["area_basis_note"], lang)),
                ("基期", "Base", b), ("目标", "Target", t), ("面积单位", "Unit", "平方米 m²"),
                ("总面积是否一致", "Total constant", bool(table["total_constant"]))])
    rows = []
    for r in table["rows"]:
        level = r["level"]
        name = classes.GROUP_EN.get(r["name"], "") if lang == "en" and level == 0 else ""
        rows.append(Row([r["code"], f"{r['name']} {name}".strip(), r["area_0"], r["share_0"], r["area_1"], r["share_1"],
                         r["change"]], style={0: "group", -1: "total"}.get(level, ""), indent=max(level, 0)))
    doc.heading("平衡表", "Table")
    doc.table([Column("地类编码", "Code", width="11%"), Column("地类名称", "Class", width="22%"),
               Column("基期面积", "Base area", "area", width="15%"), Column("占比", "Share", "percent", width="9%"),
               Column("目标面积", "Target area", "area", width="15%"), Column("占比", "Share", "percent", width="9%"),
               Column("增减", "Change", "area", width="15%")], rows, css="balance")
    doc.paragraph(chinese_part(table["total_note"], lang), css="" if table["total_constant"] else "bad")
    if table.get("unmapped_plan_classes"):
        doc.paragraph("规划用途无对应现状地类，单列： " + "、".join(planning_name(c) for c in table["unmapped_plan_classes"]))
    doc.signatures([("制表人", "Prepared by"), ("审核人", "Checked by")])
    return doc.html()
