"""Clearance (collision) check per GB 50289: horizontal and vertical minimum clear distances between
pipelines, from the city-editable rule table gb50289_clearance (data/rules, or GOVGIS_RULES_DIR).

Distances are outer wall to outer wall, with the nominal diameter standing for the outer one:
horizontal clear = axis distance − (Da + Db)/2 for pipes that do not cross; where two pipes cross,
the vertical clear = top depth of the lower pipe − (top depth + diameter of the upper pipe). Depths
are burial depths to the pipe top (pipeline_pipes.burial_depth_m); a crossing with a missing depth
is reported as "unknown", never as passing.

Pure: the service (layers/pipeline/service.py) reads the pipes near a proposed pipe or in an area
and the rule table, and passes them in.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import shapely
from shapely.geometry.base import BaseGeometry

from data.reference import RULES_DIR, rule_table
from gis.errors import InvalidParameter
from layers.pipeline import codes
from layers.pipeline.models import UTILITIES

RULES_TABLE = "gb50289_clearance"
SEARCH_M = 5.0  # no rule asks for more than this


@dataclass(frozen=True)
class Rule:
    kind: str
    a: str
    b: str
    water_dn_min: float | None
    water_dn_max: float | None
    gas_pressure: str | None
    min_m: float
    source: str


def load_rules(rules_dir: Path | str | None = None) -> tuple[Rule, ...]:
    """The clearance rules from the rule table (default: the shipped data/rules)."""
    def num(value: str) -> float | None:
        return float(value) if value.strip() else None

    return tuple(Rule(r["kind"], r["utility_a"], r["utility_b"], num(r["water_dn_min_mm"]),
                      num(r["water_dn_max_mm"]), r["gas_pressure"] or None, float(r["min_m"]), r["source"])
                 for r in rule_table(RULES_TABLE, rules_dir))


@dataclass(frozen=True)
class PipeSpec:
    """What the rules need of a pipe."""

    utility: str
    diameter_mm: float | None
    depth_m: float | None
    pressure_class: str | None


def rule_for(kind: str, p: PipeSpec, q: PipeSpec, rules: tuple[Rule, ...] | None = None) -> Rule | None:
    """The most specific rule of ``kind`` for the pair, whichever way round the table lists it."""
    # the utilities and gas pressure classes as the tables list them (data/codes: rain and sewage are
    # drainage; 中压A/中压B are medium …)
    group = codes.clearance_groups()
    ua, ub = group.get(p.utility, p.utility), group.get(q.utility, q.utility)
    best: Rule | None = None
    for rule in rules or load_rules():
        if rule.kind != kind or {rule.a, rule.b} != {ua, ub}:
            continue
        water = p if ua == "water" else q if ub == "water" else None
        gas = p if ua == "gas" else q if ub == "gas" else None
        if rule.water_dn_min is not None or rule.water_dn_max is not None:
            dn = water.diameter_mm if water else None
            if dn is None or (rule.water_dn_min is not None and dn < rule.water_dn_min) or \
                    (rule.water_dn_max is not None and dn > rule.water_dn_max):
                continue
        if rule.gas_pressure is not None:
            if gas is None or codes.gas_pressure_group(gas.pressure_class) != rule.gas_pressure:
                continue
        if best is None or (rule.gas_pressure or rule.water_dn_min or rule.water_dn_max):
            best = rule
    return best


def check_pair(line_a: BaseGeometry, a: PipeSpec, line_b: BaseGeometry, b: PipeSpec,
               rules: tuple[Rule, ...] | None = None) -> dict[str, Any] | None:
    """The clearance finding for two pipes (a violation or an unknown), or None when they comply."""
    ra, rb = (a.diameter_mm or 0) / 2000, (b.diameter_mm or 0) / 2000
    if shapely.intersects(line_a, line_b):
        rule = rule_for("vertical", a, b, rules)
        if rule is None:
            return None
        if a.depth_m is None or b.depth_m is None:
            return {"kind": "vertical", "measured_m": None, "required_m": rule.min_m, "source": rule.source,
                    "status": "unknown", "note": "burial depth missing: measure it on site"}
        upper, lower = (a, b) if a.depth_m <= b.depth_m else (b, a)
        clear = lower.depth_m - (upper.depth_m + (upper.diameter_mm or 0) / 1000)
        if clear < rule.min_m:
            return {"kind": "vertical", "measured_m": round(clear, 3), "required_m": rule.min_m,
                    "source": rule.source, "status": "violation"}
        return None
    rule = rule_for("horizontal", a, b, rules)
    if rule is None:
        return None
    clear = float(shapely.distance(line_a, line_b)) - ra - rb
    if clear < rule.min_m:
        return {"kind": "horizontal", "measured_m": round(clear, 3), "required_m": rule.min_m,
                "source": rule.source, "status": "violation"}
    return None


def check_utility(utility: str) -> None:
    """A proposed pipe's utility is one govgis knows."""
    if utility not in UTILITIES:
        raise InvalidParameter(f"unknown utility {utility!r}: one of {', '.join(UTILITIES)}")


def check_pressure_class(value: str | None) -> None:
    """A proposed pipe's pressure class: a code of the list (中压A …) or a clearance group (low, medium,
    subhigh, high)."""
    if value is not None and codes.gas_pressure_group(value) is None and codes.pressure_problem(value):
        raise InvalidParameter(f"{codes.pressure_problem(value)}; or give the group low, medium, subhigh or high")


def search_distance(spec: PipeSpec) -> float:
    """How far (m) from a proposed pipe an existing one can be and still break a rule."""
    return SEARCH_M + (spec.diameter_mm or 0) / 1000 + 1


AREA_SEARCH_M = SEARCH_M + 2  # pairs of existing pipes closer than this are checked in an area


def proposed_findings(line: BaseGeometry, spec: PipeSpec, nearby: list[dict[str, Any]],
                      rules: tuple[Rule, ...]) -> list[dict[str, Any]]:
    """Findings of a proposed pipe (storage CRS) against the existing pipes near it (the repository's
    ``pipes_near`` rows)."""
    findings = []
    for row in nearby:
        other = PipeSpec(row["utility"], row["diameter_mm"], row["burial_depth_m"], row["pressure_class"])
        found = check_pair(line, spec, row["geom"], other, rules)
        if found:
            findings.append({"pipe_id": row["id"], "code": row["code"], "utility": row["utility"], **found})
    return findings


def pairs_across_networks(inside: list[dict[str, Any]], distance: float) -> list[tuple[dict[str, Any], dict[str, Any]]]:
    """Pairs of pipes (the repository's ``pipes_near`` rows inside an area) of different networks
    within ``distance`` metres of each other."""
    if len(inside) < 2:
        return []
    tree = shapely.STRtree([p["geom"] for p in inside])
    left, right = tree.query([p["geom"] for p in inside], predicate="dwithin", distance=distance)
    return [(inside[i], inside[j]) for i, j in zip(left.tolist(), right.tolist(), strict=True)
            if i < j and inside[i]["network_id"] != inside[j]["network_id"]]


def area_findings(pairs: list[tuple[dict[str, Any], dict[str, Any]]], rules: tuple[Rule, ...]) -> list[dict[str, Any]]:
    """Findings between existing pipes of different networks (``pairs_across_networks``)."""
    findings = []
    for a, b in pairs:
        pa = PipeSpec(a["utility"], a["diameter_mm"], a["burial_depth_m"], a["pressure_class"])
        pb = PipeSpec(b["utility"], b["diameter_mm"], b["burial_depth_m"], b["pressure_class"])
        found = check_pair(a["geom"], pa, b["geom"], pb, rules)
        if found:
            findings.append({"pipe_id": a["id"], "code": a["code"], "utility": a["utility"],
                             "other_pipe_id": b["id"], "other_code": b["code"], "other_utility": b["utility"],
                             **found})
    return findings


def clearance_report(findings: list[dict[str, Any]], rules_dir: Path | str | None = None) -> dict[str, Any]:
    """Violations first (the worst first), then unknowns; saying which rule table was applied."""
    findings.sort(key=lambda f: (f["status"] != "violation",
                                 (f["measured_m"] - f["required_m"]) if f["measured_m"] is not None else 0))
    shipped = rules_dir is None or Path(rules_dir).resolve() == RULES_DIR
    return {"violations": sum(f["status"] == "violation" for f in findings),
            "unknown": sum(f["status"] == "unknown" for f in findings),
            "findings": findings,
            "rules": f"data/rules/{RULES_TABLE}.csv" if shipped else f"{RULES_TABLE}.csv (GOVGIS_RULES_DIR)"}
