"""The pipeline family's printed documents — the repair order (抢修单) and the stop-supply notice
(停水/停气通知) — through the one document mechanism (gis.documents).

The order names what a crew and a dispatcher need on paper: the street the burst is on, the valves to
close by code and in order, the valves that failed on site, the critical customers by name and
address (masked as the reader's key allows), accounts and the households behind them, and a schematic
with the burst marked and labels that do not cover one another. Pure: the service gathers it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from gis.documents import Column, Document, Row
from gis.svgmap import SvgMap, padded_box
from layers.pipeline.orders import households_text

UTILITY_NAMES = {"water": ("给水", "Water"), "gas": ("燃气", "Gas"), "heat": ("热力", "Heat"),
                 "drainage": ("排水", "Drainage"), "power": ("电力", "Power"), "telecom": ("通信", "Telecom")}
STATUS_NAMES = {"planned": ("已计划", "Planned"), "valves_closed": ("已关阀", "Valves closed"),
                "repaired": ("已修复", "Repaired"), "restored": ("已恢复供应", "Restored"),
                "cancelled": ("已取消", "Cancelled")}
VALVE_STATES = {"open": ("开启", "Open"), "closed": ("关闭", "Closed"), "inoperable": ("失灵", "Inoperable")}
CATEGORY_NAMES = {"hospital": ("医院", "Hospital"), "school": ("学校", "School"), "fire": ("消防", "Fire"),
                  "government": ("政府机关", "Government"), "industrial": ("工业", "Industrial"),
                  "commercial": ("商业", "Commercial"), "residential": ("居民", "Residential"),
                  "other": ("其他", "Other")}
ROAD_WIDTH = {"arterial": 6.0, "secondary": 4.5, "local": 3.0}
# a checklist step is "中文 / English": the slash before the English half
_ENGLISH_HALF = re.compile(r"\s*/\s*(?=[A-Za-z])")


@dataclass
class OrderSheet:
    """Everything the printed order shows, gathered by the service (masked for the reader)."""

    order: dict[str, Any]
    network: dict[str, Any]
    burst_pipe_code: str | None
    street: dict[str, Any] | None
    accounts: int
    households: int
    critical_count: int
    critical: list[dict[str, Any]] | None  # None: the reader's key may not read customer details
    valves: list[dict[str, Any]]  # to close, in order, with x/y
    failed: list[dict[str, Any]]  # could not be closed on site, with x/y
    segment: dict[str, Any]  # length_m, volume_m3, pipe count
    burst_xy: tuple[float, float] | None
    segment_lines: dict[int, list[tuple[float, float]]] = field(default_factory=dict)
    context_lines: dict[int, list[tuple[float, float]]] = field(default_factory=dict)
    roads: list[dict[str, Any]] = field(default_factory=list)


def _affected_volume(affected: dict[str, Any] | None) -> list[tuple[str, str, str]]:
    """The order's 影响用量 line: what the cut-off customers draw a day (meter readings) and until the
    planned restoration; no line for a reader without the readings or an isolation stored before them."""
    if not affected:
        return []
    unit = affected["unit"]
    return [("影响用量", "Volume affected",
             f"{affected['per_day']:,.1f} {unit}/日；停供 {affected['outage_hours']:,.1f} 小时约 "
             f"{affected['volume_during_outage']:,.1f} {unit}（{affected['customers_with_readings']} 户有抄表数据）")]


def map_box(sheet: OrderSheet) -> tuple[float, float, float, float] | None:
    """The storage-CRS box the printed map shows: the segment, the burst and the valves, padded."""
    xs = [x for line in sheet.segment_lines.values() for x, _ in line]
    ys = [y for line in sheet.segment_lines.values() for _, y in line]
    for v in (*sheet.valves, *sheet.failed):
        xs.append(v["x"])
        ys.append(v["y"])
    if sheet.burst_xy is not None:
        xs.append(sheet.burst_xy[0])
        ys.append(sheet.burst_xy[1])
    if not xs:
        return None
    return padded_box((min(xs), min(ys), max(xs), max(ys)), share=0.2, minimum_m=80.0)


def street_text(street: dict[str, Any] | None) -> str:
    """``嘉禾路（约 12 m）`` for the nearest named road, — without one."""
    if not street:
        return "—"
    return f"{street['name']}（距约 {street['distance']:.0f} m）"


def order_map(sheet: OrderSheet) -> str:
    """The schematic: roads (named), nearby pipes (grey), the segment (red), the valves to close
    (numbered as in the table), the failed valves (red squares, by code) and the burst (a red star)."""
    box = map_box(sheet)
    if box is None:
        return ""
    m = SvgMap(box, width=640, height=440)
    for road in sorted(sheet.roads, key=lambda r: -ROAD_WIDTH.get(r["road_class"], 3.0)):
        width = ROAD_WIDTH.get(road["road_class"], 3.0)
        m.lines(road["geometry"], stroke="#cfcfcf", width=width + 1.5)
        m.lines(road["geometry"], stroke="#f4f4f4", width=width)
    for line in sheet.context_lines.values():
        m.line(line, stroke="#8a8a8a", width=1.6)
    for line in sheet.segment_lines.values():
        m.line(line, stroke="#d00000", width=4.5, css="segment")
    # markers first, so every label keeps off every symbol
    placed = []
    for number, v in enumerate(sheet.valves, start=1):
        placed.append((m.marker(v["x"], v["y"], size=6.5, css="valve"), str(number), "#000"))
    if sheet.burst_xy is not None:
        placed.append((m.marker(*sheet.burst_xy, shape="burst", size=11, fill="#ff2a00", stroke="#600",
                                css="burst"), "爆管点", "#a00000"))
    for v in sheet.failed:  # drawn over the burst star when the failed valve is next to the burst
        placed.append((m.marker(v["x"], v["y"], shape="square", size=5.5, fill="#d00000", stroke="#600",
                                css="failed-valve"), f"失效 {v['code']}", "#a00000"))
    for (px, py), text, colour in placed:
        m.label(px, py, text, size=12, colour=colour, pixel=True)
    named = set()
    for road in sheet.roads:
        if road["name"] and road["name"] not in named and m.line_label(road["geometry"], road["name"], size=10,
                                                                       colour="#555"):
            named.add(road["name"])
    return m.svg(aria="repair order schematic")


def order_document(sheet: OrderSheet, *, bureau: str, zone: str, lang: str = "zh") -> str:
    """The printable repair order."""
    order, network = sheet.order, sheet.network
    doc = Document(title_zh="管道抢修单", title_en="Repair order", bureau=bureau, zone=zone, lang=lang,
                   subtitle=network.get("operator") or None, number=order["code"])
    place = order.get("place") or sheet.street and sheet.street["name"]
    doc.fields([
        ("单号", "Order", order["code"]), ("状态", "Status", doc.word(STATUS_NAMES, order["status"])),
        ("管网", "Network", f"{network['name']}（{doc.word(UTILITY_NAMES, network['utility'])}）"),
        ("爆管管段", "Burst pipe", sheet.burst_pipe_code),
        ("事故时间", "Incident", order["incident_at"], "datetime"),
        ("计划恢复", "Planned restore", order["planned_restore_at"], "datetime"),
        ("地点", "Place", place), ("最近道路", "Nearest road", street_text(sheet.street)),
        ("受影响用户", "Customers cut off", households_text(sheet.accounts, sheet.households)),
        ("其中重点用户", "Critical", f"{sheet.critical_count} 个"),
        ("隔离段", "Segment", f"{sheet.segment['pipe_count']} 段管道，{sheet.segment['length_m']:,.1f} m"),
        ("排水量", "Drain volume", f"约 {sheet.segment['volume_m3']:,.1f} m³"),
        *_affected_volume(order.get("affected_consumption")),
    ])
    doc.heading("抢修示意图", "Schematic")
    doc.figure(order_map(sheet), "图例：红色粗线 隔离段；灰线 周边管道；白圈数字 需关闭阀门（序号同下表）；"
                                 "红方块 失效阀门；红星 爆管点；浅灰带 道路。")
    doc.heading("需关闭阀门（按顺序）", "Valves to close, in order")
    doc.table([Column("序号", "No.", "int", width="6%"), Column("阀门编号", "Valve", width="16%"),
               Column("口径 mm", "DN mm", "int", width="9%"), Column("当前状态", "State", width="9%"),
               Column("最近启闭检查", "Last exercised", "date", width="19%"), Column("位置说明", "Access"),
               Column("经纬度", "Lon, lat", width="20%")],
              [[i, v["code"], v.get("diameter_mm"), doc.word(VALVE_STATES, v.get("valve_state")),
                v.get("last_exercised"), v.get("access_note"),
                f"{v['lon']:.6f}, {v['lat']:.6f}" if v.get("lon") is not None else None]
               for i, v in enumerate(sheet.valves, start=1)])
    doc.heading("失效阀门", "Failed valves")
    doc.table([Column("阀门编号", "Valve", width="22%"), Column("口径 mm", "DN mm", "int", width="12%"),
               Column("说明", "Note")],
              [Row([v["code"], v.get("diameter_mm"), "现场无法关闭，已按外圈阀门重新隔离"], style="bad")
               for v in sheet.failed], empty=("无（所有阀门均可关闭）", "none"))
    doc.heading("重点用户", "Critical customers")
    if sheet.critical is None:
        doc.paragraph(f"重点用户 {sheet.critical_count} 个；您的密钥无管网用户资料读取权限，未列出名称与地址。"
                      if lang == "zh" else f"{sheet.critical_count} 个重点用户 critical customers; your key may not "
                      "read customer details")
    else:
        doc.table([Column("用户名称", "Customer", width="22%"), Column("类别", "Category", width="9%"),
                   Column("地址", "Address"), Column("联系人", "Contact", width="11%"),
                   Column("联系电话", "Phone", width="16%"), Column("户数", "Households", "int", width="8%")],
                  [[c["name"], doc.word(CATEGORY_NAMES, c["category"]), c.get("address"), c.get("contact_name"),
                    c.get("contact_phone"), c.get("households")] for c in sheet.critical],
                  empty=("无重点用户", "none"))
    doc.heading("停供通知", "Notice")
    doc.notice(order["notice_text"])
    doc.heading("作业检查清单", "Checklist")
    doc.checklist(item["task"] if lang == "en" else _ENGLISH_HALF.split(item["task"], maxsplit=1)[0]
                  for item in order["checklist"])
    doc.signatures([("抢修负责人", "Crew leader"), ("签发人", "Issued by")])
    return doc.html()


def notice_document(sheet: OrderSheet, *, bureau: str, zone: str, lang: str = "zh") -> str:
    """The stop-supply notice as a page to post: the notice text, where and when, and the operator."""
    order, network = sheet.order, sheet.network
    title = order["notice_text"].split("\n", 1)[0] or "停止供应通知"
    doc = Document(title_zh=title, title_en="Supply interruption notice", bureau=bureau,
                   zone=zone, lang=lang, number=order["code"])
    doc.notice(order["notice_text"].split("\n", 1)[-1])
    doc.fields([("停供区域", "Area", order.get("place") or sheet.street and sheet.street["name"]),
                ("最近道路", "Nearest road", street_text(sheet.street)),
                ("停供开始", "From", order["incident_at"], "datetime"),
                ("预计恢复", "Until", order["planned_restore_at"], "datetime"),
                ("受影响用户", "Affected", households_text(sheet.accounts, sheet.households)),
                ("供应单位", "Operator", network.get("operator") or bureau)], columns=1)
    return doc.html()
