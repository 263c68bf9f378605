"""Clearance (collision) check per GB 50289: horizontal and vertical minimum clear distances between
pipelines, from the city-editable rule table data/rules/gb50289_clearance.csv.

Distances are outer wall to outer wall, with the nominal diameter standing for the outer one:
horizontal clear = axis distance − (Da + Db)/2 for pipes that do not cross; where two pipes cross,
the vertical clear = top depth of the lower pipe − (top depth + diameter of the upper pipe). Depths
are burial depths to the pipe top (pipeline_pipes.burial_depth_m); a crossing with a missing depth
is reported as "unknown", never as passing.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import shapely
from shapely.geometry.base import BaseGeometry
from sqlalchemy.engine import Connection

from gis.access import Caller, require_read
from gis.errors import InvalidParameter
from layers.pipeline import repository
from layers.pipeline.layers import PIPES
from layers.pipeline.models import UTILITIES

RULES_PATH = Path(__file__).resolve().parents[2] / "data" / "rules" / "gb50289_clearance.csv"
GROUP = {"storm": "drainage", "sewer": "drainage"}  # the standard treats rain and sewage alike here
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


@lru_cache(maxsize=4)
def load_rules(path: Path = RULES_PATH) -> tuple[Rule, ...]:
    def num(value: str) -> float | None:
        return float(value) if value.strip() else None

    with path.open(encoding="utf-8") as handle:
        return tuple(Rule(r["kind"], r["utility_a"], r["utility_b"], num(r["water_dn_min_mm"]),
                          num(r["water_dn_max_mm"]), r["gas_pressure"] or None, float(r["min_m"]), r["source"])
                     for r in csv.DictReader(handle))


@dataclass(frozen=True)
class PipeSpec:
    """What the rules need of a pipe."""

    utility: str
    diameter_mm: float | None
    depth_m: float | None
    pressure_class: str | None


def rule_for(kind: str, p: PipeSpec, q: PipeSpec, rules: tuple[Rule, ...] | None = None) -> Rule | None:
    """The most specific rule of ``kind`` for the pair, whichever way round the table lists it."""
    ua, ub = GROUP.get(p.utility, p.utility), GROUP.get(q.utility, q.utility)
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
            if gas is None or (gas.pressure_class or "low") != rule.gas_pressure:
                continue
        if best is None or (rule.gas_pressure or rule.water_dn_min or rule.water_dn_max):
            best = rule
    return best


def check_pair(line_a: BaseGeometry, a: PipeSpec, line_b: BaseGeometry, b: PipeSpec) -> dict[str, Any] | None:
    """The clearance finding for two pipes (a violation or an unknown), or None when they comply."""
    ra, rb = (a.diameter_mm or 0) / 2000, (b.diameter_mm or 0) / 2000
    if shapely.intersects(line_a, line_b):
        rule = rule_for("vertical", a, b)
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
    rule = rule_for("horizontal", a, b)
    if rule is None:
        return None
    clear = float(shapely.distance(line_a, line_b)) - ra - rb
    if clear < rule.min_m:
        return {"kind": "horizontal", "measured_m": round(clear, 3), "required_m": rule.min_m,
                "source": rule.source, "status": "violation"}
    return None


def check_proposed(conn: Connection, line: BaseGeometry, spec: PipeSpec, *, caller: Caller) -> dict[str, Any]:
    """Clearance of a proposed pipe (storage CRS) against every existing pipe near it."""
    require_read(caller, PIPES)
    if spec.utility not in UTILITIES:
        raise InvalidParameter(f"unknown utility {spec.utility!r}: one of {', '.join(UTILITIES)}")
    findings = []
    for row in repository.pipes_near(conn, line, SEARCH_M + (spec.diameter_mm or 0) / 1000 + 1):
        other = PipeSpec(row["utility"], row["diameter_mm"], row["burial_depth_m"], row["pressure_class"])
        found = check_pair(line, spec, row["geom"], other)
        if found:
            findings.append({"pipe_id": row["id"], "code": row["code"], "utility": row["utility"], **found})
    return _report(findings)


def check_area(conn: Connection, area: BaseGeometry, *, caller: Caller) -> dict[str, Any]:
    """Clearance between existing pipes of different networks inside ``area`` (storage CRS)."""
    require_read(caller, PIPES)
    findings = []
    for a, b in repository.pipe_pairs_in_area(conn, area, SEARCH_M + 2):
        pa = PipeSpec(a["utility"], a["diameter_mm"], a["burial_depth_m"], a["pressure_class"])
        pb = PipeSpec(b["utility"], b["diameter_mm"], b["burial_depth_m"], b["pressure_class"])
        found = check_pair(a["geom"], pa, b["geom"], pb)
        if found:
            findings.append({"pipe_id": a["id"], "code": a["code"], "utility": a["utility"],
                             "other_pipe_id": b["id"], "other_code": b["code"], "other_utility": b["utility"],
                             **found})
    return _report(findings)


def _report(findings: list[dict[str, Any]]) -> dict[str, Any]:
    findings.sort(key=lambda f: (f["status"] != "violation",
                                 (f["measured_m"] - f["required_m"]) if f["measured_m"] is not None else 0))
    return {"violations": sum(f["status"] == "violation" for f in findings),
            "unknown": sum(f["status"] == "unknown" for f in findings),
            "findings": findings, "rules": str(RULES_PATH.relative_to(RULES_PATH.parents[2]))}
