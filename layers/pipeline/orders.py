"""Repair orders (抢修单): created from a stored isolation, moved through a status workflow, printed.

Workflow: planned → valves_closed → repaired → restored, or cancelled from any open state. Every
change is a row in pipeline_order_events and an audit record, in the caller's transaction. The
printed order and notice are layers/pipeline/documents.py's (the one document mechanism).

Pure: the workflow rules, the notice and checklist texts. The service (layers/pipeline/service.py)
reads and writes orders through the repository.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from gis.errors import Conflict, InvalidParameter, StaleVersion
from gis.localtime import format_datetime, to_local

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


def households_text(accounts: int, households: int, language: str = "zh") -> str:
    """Who is cut off, in both counts a utility uses: accounts (户号) and the households behind them
    (a building's bulk meter is one account for hundreds of households)."""
    if language == "en":
        return f"{accounts:,} customer account(s), {households:,} household(s)"
    return f"{accounts:,} 个用户户号、共 {households:,} 户"


def notice_text(*, utility: str, operator: str | None, place: str | None, incident_at: dt.datetime,
                restore_at: dt.datetime, customers: int, critical: int, households: int | None = None,
                zone: str = "Asia/Shanghai", language: str = "zh") -> str:
    """The stop-supply notice (停水/停气通知) to post and send to affected customers, its times in the
    city's local time (``zone``) to the minute."""
    start, end = to_local(incident_at, zone), to_local(restore_at, zone)
    households = customers if households is None else households
    if language == "en":
        what = {"water": "water", "gas": "gas", "heat": "heating"}.get(utility, "supply")
        return (f"Notice of {what} interruption\n"
                f"Because of emergency repair of a burst main{' at ' + place if place else ''}, {what} supply "
                f"is interrupted from {start:%Y-%m-%d %H:%M}. Planned restoration: "
                f"{end:%Y-%m-%d %H:%M}. Affected: {households_text(customers, households, 'en')} "
                f"({critical} critical: hospitals, schools, fire). We apologise for the inconvenience.\n"
                f"{operator or ''}")
    word = _stop_word(utility)
    title = f"停{word}通知" if word != "供" else "停止供应通知"
    return (f"{title}\n"
            f"因{place or '辖区内'}管道突发爆管抢修，自{format_datetime(start, zone)}起暂停供{word}，"
            f"预计于{format_datetime(end, zone)}恢复供{word}。受影响{households_text(customers, households)}"
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


