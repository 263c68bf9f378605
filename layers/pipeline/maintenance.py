"""Maintenance rules: replacement warnings from a pipe's age against the service life of its material
and from how often it was repaired (rule tables service_life and repair_frequency, see
data/rules/README.md).

Pure: the service (layers/pipeline/service.py) reads the rule tables, the pipes and their repair
counts and passes them in.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from data.reference import rule_table
from gis.errors import InvalidParameter

DUE_SOON_YEARS = 5
REPAIR_KINDS = ("burst", "leak", "corrosion", "replacement", "other")


@dataclass(frozen=True)
class RepairRule:
    """More than ``max_repairs`` repairs on one pipe within ``window_years`` calls for replacement."""

    window_years: int
    max_repairs: int
    source: str


def service_life(rules_dir: Path | str | None = None) -> dict[str, tuple[int, str]]:
    """Material → (service life in years, source), from the rule table."""
    return {r["material"]: (int(r["service_life_years"]), r["source"])
            for r in rule_table("service_life", rules_dir)}


def repair_rule(rules_dir: Path | str | None = None) -> RepairRule:
    """The repair-frequency rule, from the rule table's first row."""
    row = rule_table("repair_frequency", rules_dir)[0]
    return RepairRule(int(row["window_years"]), int(row["max_repairs"]), row["source"])


def check_repair_kind(kind: str) -> None:
    """A repair record's kind is one the table knows."""
    if kind not in REPAIR_KINDS:
        raise InvalidParameter(f"repair kind {kind!r}: one of {', '.join(REPAIR_KINDS)}")


def window_start(today: dt.date, rule: RepairRule) -> dt.date:
    """The first day after which a repair counts towards the frequency rule."""
    return today.replace(year=today.year - rule.window_years)


def replacement_warnings(pipes: list[dict[str, Any]], *, lives: dict[str, tuple[int, str]], rule: RepairRule,
                         today: dt.date) -> tuple[list[dict[str, Any]], int]:
    """Warnings for the pipes past (or within five years of) their service life and those repaired more
    often than the rule allows, worst first; and how many pipes have no service life for their material.

    ``pipes``: id, code, material, install_year, length_m, ``recent`` (repairs within the rule's
    window) and ``total`` (all repairs).
    """
    warnings: list[dict[str, Any]] = []
    unknown_material = 0
    for r in pipes:
        reasons = []
        life = lives.get(r["material"] or "")
        if life is None:
            unknown_material += 1
        elif r["install_year"] is not None:
            age = today.year - int(r["install_year"])
            if age >= life[0]:
                reasons.append({"rule": "age", "severity": "overdue", "age_years": age, "service_life_years": life[0],
                                "source": life[1], "message_zh": f"已使用{age}年，超过{r['material']}设计年限{life[0]}年"})
            elif age >= life[0] - DUE_SOON_YEARS:
                reasons.append({"rule": "age", "severity": "due_soon", "age_years": age,
                                "service_life_years": life[0], "source": life[1],
                                "message_zh": f"已使用{age}年，{life[0] - age}年内达到设计年限"})
        if r["recent"] > rule.max_repairs:
            reasons.append({"rule": "repair_frequency", "severity": "overdue", "repairs": int(r["recent"]),
                            "window_years": rule.window_years, "max_repairs": rule.max_repairs,
                            "source": rule.source,
                            "message_zh": f"{rule.window_years}年内维修{r['recent']}次，超过{rule.max_repairs}次"})
        if reasons:
            warnings.append({"pipe_id": r["id"], "code": r["code"], "material": r["material"],
                             "install_year": r["install_year"], "length_m": r["length_m"],
                             "repairs_total": int(r["total"]), "reasons": reasons})
    rank = {"overdue": 0, "due_soon": 1}
    warnings.sort(key=lambda w: (min(rank[x["severity"]] for x in w["reasons"]), -len(w["reasons"]),
                                 w["install_year"] or 9999, w["pipe_id"]))
    return warnings, unknown_material


def maintenance_summary(network: dict[str, Any], pipes: int, warnings: list[dict[str, Any]],
                        unknown_material: int, today: dt.date) -> dict[str, Any]:
    """The maintenance report of a network from its warnings."""
    overdue = [w for w in warnings if any(x["severity"] == "overdue" for x in w["reasons"])]
    return {"network_id": network["id"], "network": network["name"], "as_of": today.isoformat(), "pipes": pipes,
            "replace_now": len(overdue), "replace_soon": len(warnings) - len(overdue),
            "length_to_replace_m": round(sum(w["length_m"] or 0 for w in overdue), 1),
            "pipes_without_service_life": unknown_material, "warnings": warnings}


def repair_record(row: dict[str, Any]) -> dict[str, Any]:
    """A stored repair as clients see it (the cost as a number)."""
    return {k: (float(v) if k == "cost_yuan" and v is not None else v) for k, v in row.items()}
