"""Maintenance: repair records per pipe, replacement warnings from age against service life by
material and from repair frequency (rule tables data/rules/service_life.csv, repair_frequency.csv),
and a report per network.
"""

from __future__ import annotations

import csv
import datetime as dt
from functools import lru_cache
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from gis.access import Caller, require_read, require_write
from gis.errors import InvalidParameter, NotFound
from gis.writes import audit
from layers.pipeline import repository
from layers.pipeline.layers import PIPES
from layers.pipeline.models import pipes, repairs

RULES = Path(__file__).resolve().parents[2] / "data" / "rules"
DUE_SOON_YEARS = 5
REPAIR_KINDS = ("burst", "leak", "corrosion", "replacement", "other")


@lru_cache(maxsize=2)
def service_life(path: Path = RULES / "service_life.csv") -> dict[str, tuple[int, str]]:
    with path.open(encoding="utf-8") as handle:
        return {r["material"]: (int(r["service_life_years"]), r["source"]) for r in csv.DictReader(handle)}


@lru_cache(maxsize=2)
def repair_rule(path: Path = RULES / "repair_frequency.csv") -> tuple[int, int, str]:
    with path.open(encoding="utf-8") as handle:
        row = next(csv.DictReader(handle))
    return int(row["window_years"]), int(row["max_repairs"]), row["source"]


def add_repair(conn: Connection, pipe_id: int, *, caller: Caller, repaired_on: dt.date, kind: str,
               description: str | None = None, crew: str | None = None, cost_yuan: float | None = None
               ) -> dict[str, Any]:
    """Record a repair on a pipe (audited)."""
    require_write(caller, PIPES)
    if kind not in REPAIR_KINDS:
        raise InvalidParameter(f"repair kind {kind!r}: one of {', '.join(REPAIR_KINDS)}")
    if conn.execute(sa.select(pipes.c.id).where(pipes.c.id == pipe_id)).first() is None:
        raise NotFound(f"no pipe {pipe_id}")
    row = conn.execute(repairs.insert().values(pipe_id=pipe_id, repaired_on=repaired_on, kind=kind,
                                               description=description, crew=crew, cost_yuan=cost_yuan)
                       .returning(*repairs.c)).mappings().one()
    record = {k: (float(v) if k == "cost_yuan" and v is not None else v) for k, v in row.items()}
    audit(conn, caller, "pipeline_repairs", record["id"], "insert", None, record)
    return record


def pipe_repairs(conn: Connection, pipe_id: int, *, caller: Caller) -> list[dict[str, Any]]:
    require_read(caller, PIPES)
    rows = conn.execute(sa.select(repairs).where(repairs.c.pipe_id == pipe_id)
                        .order_by(repairs.c.repaired_on.desc())).mappings()
    return [{k: (float(v) if k == "cost_yuan" and v is not None else v) for k, v in r.items()} for r in rows]


def maintenance_report(conn: Connection, network_id: int, *, caller: Caller,
                       today: dt.date | None = None) -> dict[str, Any]:
    """Replacement warnings for a network: pipes past (or within five years of) their service life,
    and pipes repaired more often than the rule allows; worst first."""
    require_read(caller, PIPES)
    net = repository.network(conn, network_id)
    today = today or dt.date.today()
    window, max_repairs, repair_source = repair_rule()
    since = today.replace(year=today.year - window)
    recent = (sa.select(sa.func.count()).where(repairs.c.pipe_id == pipes.c.id, repairs.c.repaired_on > since,
                                               repairs.c.repaired_on <= today).scalar_subquery())
    total = sa.select(sa.func.count()).where(repairs.c.pipe_id == pipes.c.id).scalar_subquery()
    rows = conn.execute(sa.select(pipes.c.id, pipes.c.code, pipes.c.material, pipes.c.install_year,
                                  pipes.c.length_m, recent.label("recent"), total.label("total"))
                        .where(pipes.c.network_id == network_id, pipes.c.status == "in_service")).mappings().all()
    lives = service_life()
    warnings: list[dict[str, Any]] = []
    unknown_material = 0
    for r in rows:
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
        if r["recent"] > max_repairs:
            reasons.append({"rule": "repair_frequency", "severity": "overdue", "repairs": int(r["recent"]),
                            "window_years": window, "max_repairs": max_repairs, "source": repair_source,
                            "message_zh": f"{window}年内维修{r['recent']}次，超过{max_repairs}次"})
        if reasons:
            warnings.append({"pipe_id": r["id"], "code": r["code"], "material": r["material"],
                             "install_year": r["install_year"], "length_m": r["length_m"],
                             "repairs_total": int(r["total"]), "reasons": reasons})
    rank = {"overdue": 0, "due_soon": 1}
    warnings.sort(key=lambda w: (min(rank[x["severity"]] for x in w["reasons"]), -len(w["reasons"]),
                                 w["install_year"] or 9999, w["pipe_id"]))
    overdue = [w for w in warnings if any(x["severity"] == "overdue" for x in w["reasons"])]
    return {"network_id": network_id, "network": net["name"], "as_of": today.isoformat(), "pipes": len(rows),
            "replace_now": len(overdue), "replace_soon": len(warnings) - len(overdue),
            "length_to_replace_m": round(sum(w["length_m"] or 0 for w in overdue), 1),
            "pipes_without_service_life": unknown_material, "warnings": warnings}
