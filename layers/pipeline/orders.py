"""Repair orders (抢修单): created from a stored isolation, moved through a status workflow, printed.

Workflow: planned → valves_closed → repaired → restored, or cancelled from any open state. Every
change is a row in pipeline_order_events and an audit record, in the caller's transaction. The
printable page draws the segment as inline SVG (no map tiles, no scripts, nothing from a CDN), so it
prints the same on an isolated intranet.

Pure: the workflow rules, the notice and checklist texts and the printed page. The service
(layers/pipeline/service.py) reads and writes orders through the repository.
"""

from __future__ import annotations

import datetime as dt
import html
from typing import Any

from gis.errors import Conflict, InvalidParameter, StaleVersion

TRANSITIONS = {
    "planned": ("valves_closed", "cancelled"),
    "valves_closed": ("repaired", "cancelled"),
    "repaired": ("restored", "cancelled"),
    "restored": (),
    "cancelled": (),
}
OPEN_STATUSES = ("planned", "valves_closed", "repaired")
STATUS_ZH = {"planned": "已计划", "valves_closed": "已关阀", "repaired": "已修复", "restored": "已恢复供应",
             "cancelled": "已取消"}
SUPPLY_ZH = {"water": "水", "gas": "气", "heat": "热"}


def _stop_word(utility: str) -> str:
    return SUPPLY_ZH.get(utility, "供")


def notice_text(*, utility: str, operator: str | None, place: str | None, incident_at: dt.datetime,
                restore_at: dt.datetime, customers: int, critical: int, language: str = "zh") -> str:
    """The stop-supply notice (停水/停气通知) to post and send to affected customers."""
    fmt = "%Y年%m月%d日 %H:%M"
    if language == "en":
        what = {"water": "water", "gas": "gas", "heat": "heating"}.get(utility, "supply")
        return (f"Notice of {what} interruption\n"
                f"Because of emergency repair of a burst main{' at ' + place if place else ''}, {what} supply "
                f"is interrupted from {incident_at:%Y-%m-%d %H:%M}. Planned restoration: "
                f"{restore_at:%Y-%m-%d %H:%M}. About {customers} customer account(s) are affected "
                f"({critical} critical: hospitals, schools, fire). We apologise for the inconvenience.\n"
                f"{operator or ''}")
    word = _stop_word(utility)
    title = f"停{word}通知" if word != "供" else "停止供应通知"
    return (f"{title}\n"
            f"因{place or '辖区内'}管道突发爆管抢修，自{incident_at:{fmt}}起暂停供{word}，"
            f"预计于{restore_at:{fmt}}恢复供{word}。受影响用户约{customers}户"
            f"（其中医院、学校、消防等重点用户{critical}个）。抢修期间请做好储{word}准备，"
            f"给您带来不便，敬请谅解。\n{operator or ''}")


def checklist(utility: str, valve_codes: list[str], volume_m3: float, critical: int) -> list[dict[str, Any]]:
    """The crew checklist, in the order the work is done."""
    items = ["现场安全围挡、设置警示标志 / secure and sign the site"]
    if critical:
        items.append(f"通知重点用户（{critical}个：医院、学校、消防）并安排临时供应 / notify critical customers")
    items += [f"按顺序关闭阀门 {code} / close valve {code}" for code in valve_codes]
    items.append("确认关阀有效（压力表、听漏）/ confirm the ring holds (pressure, listening)")
    if utility == "gas":
        items += ["放散、置换吹扫，检测可燃气体浓度 / vent and purge, measure gas concentration"]
    else:
        items += [f"排空隔离段约 {volume_m3:.1f} m³ / drain about {volume_m3:.1f} m³"]
    items += ["开挖、修复管道，拍照记录 / excavate, repair, photograph",
              ("冲洗、消毒、水质检测合格 / flush, disinfect, test water quality" if utility == "water"
               else "严密性试验、检漏 / tightness test and leak check"),
              "按相反顺序开阀恢复供应 / reopen valves in reverse order",
              "发布恢复供应通知，填写维修记录 / announce restoration, record the repair"]
    return [{"step": i + 1, "task": task, "done": False} for i, task in enumerate(items)]


def order_code(incident_at: dt.datetime, order_id: int) -> str:
    """An order's number: QX + the incident date + the order id."""
    return f"QX{incident_at:%Y%m%d}-{order_id:05d}"


def check_times(incident_at: dt.datetime, planned_restore_at: dt.datetime) -> None:
    """An order's times carry a zone and restoration comes after the incident."""
    if planned_restore_at.tzinfo is None or incident_at.tzinfo is None:
        raise InvalidParameter("give times with a time zone, e.g. 2026-11-22T18:00:00+08:00")
    if planned_restore_at <= incident_at:
        raise InvalidParameter("planned_restore_at must be after the incident time")


def check_status(status: str) -> None:
    """A status the workflow knows."""
    if status not in TRANSITIONS:
        raise InvalidParameter(f"unknown status {status!r}: one of {', '.join(TRANSITIONS)}")


def check_transition(order: dict[str, Any], status: str, expected_version: int | None) -> None:
    """The move of ``order`` (its stored row) to ``status`` is allowed, and the caller saw its version."""
    if expected_version is not None and order["version"] != expected_version:
        raise StaleVersion(f"order {order['code']} is at version {order['version']}, you saw {expected_version}: "
                           "reload it")
    allowed = TRANSITIONS[order["status"]]
    if status not in allowed:
        raise Conflict(f"order {order['code']} is {order['status']}; it can move to "
                       f"{', '.join(allowed) if allowed else 'nothing (closed)'}, not {status}")


def map_box(segment: dict[int, list[tuple[float, float]]]) -> tuple[float, float, float, float] | None:
    """The storage-CRS box the printed map shows around a segment's pipes (None without pipes)."""
    if not segment:
        return None
    xs = [x for line in segment.values() for x, _ in line]
    ys = [y for line in segment.values() for _, y in line]
    pad = max(max(xs) - min(xs), max(ys) - min(ys), 50.0) * 0.25
    return (min(xs) - pad, min(ys) - pad, max(xs) + pad, max(ys) + pad)


def svg_map(order: dict[str, Any], segment: dict[int, list[tuple[float, float]]],
            context: dict[int, list[tuple[float, float]]], valves: dict[int, dict[str, Any]]) -> str:
    """Inline SVG of the segment (red), nearby pipes (grey) and the valves to close (numbered).

    ``segment`` and ``context`` are vertex lists of pipes (storage CRS), ``valves`` the codes and
    positions of the order's valves."""
    box = map_box(segment)
    if box is None:
        return ""
    width, height = 640.0, 480.0
    scale = min(width / (box[2] - box[0]), height / (box[3] - box[1]))

    def pt(x: float, y: float) -> str:
        return f"{(x - box[0]) * scale:.1f},{height - (y - box[1]) * scale:.1f}"

    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width:.0f} {height:.0f}" '
             f'width="{width:.0f}" height="{height:.0f}" class="map">',
             '<rect width="100%" height="100%" fill="#fafafa" stroke="#999"/>']
    for line in context.values():
        parts.append(f'<polyline points="{" ".join(pt(x, y) for x, y in line)}" stroke="#bbb" '
                     'stroke-width="2" fill="none"/>')
    for line in segment.values():
        parts.append(f'<polyline points="{" ".join(pt(x, y) for x, y in line)}" stroke="#d00" '
                     'stroke-width="4" fill="none"/>')
    for number, vid in enumerate(order["valve_ids"], start=1):
        v = valves.get(vid)
        if v is None:
            continue
        cx, cy = pt(v["x"], v["y"]).split(",")
        parts.append(f'<circle cx="{cx}" cy="{cy}" r="7" fill="#fff" stroke="#000" stroke-width="2"/>'
                     f'<text x="{cx}" y="{float(cy) - 10:.1f}" font-size="13" text-anchor="middle">'
                     f'{number} {html.escape(v["code"])}</text>')
    bar = 10 ** int(f"{(box[2] - box[0]) / 4:.0e}".split("e")[1])
    parts.append(f'<line x1="10" y1="{height - 12}" x2="{10 + bar * scale:.1f}" y2="{height - 12}" '
                 f'stroke="#000" stroke-width="3"/><text x="10" y="{height - 18}" font-size="12">{bar:g} m</text>')
    parts.append(f'<text x="{width - 10}" y="20" font-size="14" text-anchor="end">N ↑</text>')
    parts.append("</svg>")
    return "".join(parts)


def print_page(order: dict[str, Any], iso: dict[str, Any], network: dict[str, Any],
               valves: dict[int, dict[str, Any]], map_svg: str) -> str:
    """A print-ready HTML page of the order: header, inline SVG map, valves, notice, checklist.

    ``valves`` are the crews' details of the order's valves, ``map_svg`` the page's map (``svg_map``)."""
    e = html.escape
    rows = "".join(
        f"<tr><td>{i}</td><td>{e(v['code'])}</td><td>{v['diameter_mm'] or ''}</td>"
        f"<td>{v['last_exercised'] or '—'}</td><td>{e(v['access_note'] or '')}</td>"
        f"<td>{v['lon']:.6f}, {v['lat']:.6f}</td></tr>"
        for i, v in enumerate((valves[vid] for vid in order["valve_ids"] if vid in valves), start=1))
    steps = "".join(f"<li>☐ {e(item['task'])}</li>" for item in order["checklist"])
    summary = iso["summary"]
    affected = order.get("affected_consumption")
    volume_row = "" if not affected else (
        f"<tr><th>影响用量 Volume affected</th><td colspan=\"3\">{affected['per_day']:.1f} {e(affected['unit'])}/日，"
        f"停供 {affected['outage_hours']:.1f} 小时约 {affected['volume_during_outage']:.1f} {e(affected['unit'])} "
        f"（{affected['customers_with_readings']} 户有抄表数据 with readings）</td></tr>")
    return f"""<!doctype html>
<html lang="zh-CN"><head><meta charset="utf-8"><title>抢修单 {e(order['code'])}</title>
<style>
body {{ font-family: "Noto Sans CJK SC", "Noto Sans SC", sans-serif; margin: 16mm; color: #000; }}
h1 {{ font-size: 20pt; margin: 0 0 4mm; }} table {{ border-collapse: collapse; width: 100%; }}
td, th {{ border: 1px solid #444; padding: 2mm; font-size: 10pt; }} .notice {{ white-space: pre-wrap;
border: 2px solid #000; padding: 4mm; }} .map {{ max-width: 100%; height: auto; }}
@media print {{ @page {{ size: A4; margin: 12mm; }} body {{ margin: 0; }} .noprint {{ display: none; }} }}
</style></head><body>
<h1>抢修单 Repair order {e(order['code'])}</h1>
<table><tr><th>状态 Status</th><td>{e(order['status_zh'])} ({e(order['status'])})</td>
<th>管网 Network</th><td>{e(network['name'])} ({e(network['utility'])})</td></tr>
<tr><th>事故时间 Incident</th><td>{order['incident_at']:%Y-%m-%d %H:%M %Z}</td>
<th>计划恢复 Restore</th><td>{order['planned_restore_at']:%Y-%m-%d %H:%M %Z}</td></tr>
<tr><th>地点 Place</th><td>{e(order['place'] or '')}</td><th>隔离段 Segment</th>
<td>{len(summary['pipe_ids'])} 段管道, {summary['length_m']:.1f} m, 排水 {summary['volume_m3']:.1f} m³</td></tr>
<tr><th>受影响用户 Customers</th><td colspan="3">{summary['customers_total']}
（重点用户 critical {summary['customers_critical']}）</td></tr>{volume_row}</table>
<h2>示意图 Map</h2>{map_svg}
<h2>需关闭阀门 Valves to close</h2>
<table><tr><th>#</th><th>编号</th><th>口径 mm</th><th>最近启闭</th><th>位置说明</th><th>经纬度</th></tr>{rows}</table>
<h2>停供通知 Notice</h2><div class="notice">{e(order['notice_text'])}</div>
<h2>检查清单 Checklist</h2><ol>{steps}</ol>
<p class="noprint"><button onclick="window.print()">打印 Print</button></p>
</body></html>"""
