"""The demo city's past: a previous survey year and the registrations that lead from it to today.

``plan_history`` (pure, seeded) picks what happened and turns the generated parcels into their state
before it: the blocks redeveloped between the two survey years carry their old use (and the previous
survey year says so), neighbours about to adjust a boundary have their old shared edge. ``apply_history``
then makes it happen through the same service functions the API calls — registrations (change,
transfer, split, merge, boundary adjustment, cancellation and the new registration of the land it
frees), the survey years' completeness and the change survey between them, supervision cases and
land approvals — as the system user, in the loading transaction, in legal order. A few hundred
registrations at any size, so the load stays fast.

Not production code: the demo city generator's history, for newcomers to have something to look at
(timeline, lineage, as-of, change survey, the two-year balance table).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from shapely.geometry import box

from data.democity.common import (
    BUILT,
    SURVEY_YEAR,
    company_names,
    person_names,
    phone_numbers,
    random_stream,
    resident_ids,
)
from data.reference import code_list

PREVIOUS_SURVEY_YEAR = SURVEY_YEAR - 1
HISTORY_STREAM = 30
# how much happened (kept to a few hundred registrations at every size: they go through the services)
CHANGED_SHARE = 0.03  # of the survey patches: blocks redeveloped between the two survey years
MAX_CHANGED_BLOCKS = 16
TRANSFERS, SECOND_TRANSFERS = 80, 15
SPLITS, MERGES, ADJUSTMENTS, EXPROPRIATIONS = 20, 15, 25, 4
HISTORY_END = pd.Timestamp("2026-06-30", tz="UTC")  # every past registration is before this
# a redeveloped block's use before and after: (survey class then, parcel use then)
REDEVELOPED_FROM = {"residential": ("0601", "0601"), "commercial": ("0701", "0701")}
LAND_RESERVE = "厦门市土地发展中心"


@dataclass
class HistoryPlan:
    """What happened to the demo city before today, by parcel row of the generated frame."""

    changed_blocks: dict[int, str] = field(default_factory=dict)  # block → its class in the previous survey
    changes: list[dict[str, Any]] = field(default_factory=list)
    transfers: list[dict[str, Any]] = field(default_factory=list)
    splits: list[dict[str, Any]] = field(default_factory=list)
    merges: list[dict[str, Any]] = field(default_factory=list)
    adjustments: list[dict[str, Any]] = field(default_factory=list)
    expropriations: list[dict[str, Any]] = field(default_factory=list)


def _day(rng: np.random.Generator, start: pd.Timestamp, end: pd.Timestamp) -> pd.Timestamp:
    days = max(int((end - start).days), 1)
    return (start + pd.Timedelta(days=int(rng.integers(0, days)))).normalize() + pd.Timedelta(hours=1)


def _holder(rng: np.random.Generator, county: str) -> dict[str, Any]:
    """A new right holder: a person (with ID number and phone) or a company."""
    if rng.random() < 0.6:
        return {"right_holder": str(person_names(rng, 1)[0]), "holder_kind": "person",
                "holder_id_number": str(resident_ids(rng, 1, np.array([county]))[0]),
                "holder_phone": str(phone_numbers(rng, 1)[0])}
    return {"right_holder": str(company_names(rng, 1)[0]), "holder_kind": "organisation"}


def plan_history(parcels: gpd.GeoDataFrame, blocks: pd.DataFrame, patch_blocks: np.ndarray,
                 seed: int) -> HistoryPlan:
    """Pick the past (deterministic by seed) and set ``parcels`` (modified in place) to the state
    before it. ``patch_blocks``: the block of each survey patch (-1 for streets)."""
    rng = random_stream(seed, HISTORY_STREAM)
    plan = HistoryPlan()
    used = np.zeros(len(parcels), dtype=bool)
    use = parcels["use"].to_numpy()
    block = parcels["block"].to_numpy()
    bounds = shapely.bounds(parcels.geometry.to_numpy())
    valid_from = parcels["valid_from"]
    county = parcels["district"].to_numpy()

    # blocks redeveloped between the two survey years: their parcels had the old use until a change
    # registration in the later year
    candidates = np.flatnonzero(np.isin(blocks["use"].to_numpy(), list(REDEVELOPED_FROM)))
    wanted = int(np.clip(round(CHANGED_SHARE * (patch_blocks >= 0).sum()), 3, MAX_CHANGED_BLOCKS))
    for b in sorted(rng.permutation(candidates)[:wanted].tolist()):
        old_class, old_use = REDEVELOPED_FROM[blocks["use"].iat[b]]
        plan.changed_blocks[b] = old_class
        for row in np.flatnonzero(block == b).tolist():
            current = parcels["landuse_code"].iat[row]
            parcels.iat[row, parcels.columns.get_loc("landuse_code")] = old_use
            latest = pd.Timestamp(f"{PREVIOUS_SURVEY_YEAR}-06-30", tz="UTC")
            if valid_from.iat[row] > latest:  # registered before the earlier survey saw it
                start = latest - pd.Timedelta(days=int(rng.integers(30, 2000)))
                parcels.iat[row, parcels.columns.get_loc("valid_from")] = start
                parcels.iat[row, parcels.columns.get_loc("recorded_from")] = start + pd.Timedelta(days=5)
            plan.changes.append({"row": row, "changes": {"landuse_code": current},
                                 "at": _day(rng, pd.Timestamp(f"{SURVEY_YEAR}-02-01", tz="UTC"),
                                            pd.Timestamp(f"{SURVEY_YEAR}-11-30", tz="UTC"))})
            used[row] = True

    def window(rows: list[int]) -> tuple[pd.Timestamp, pd.Timestamp] | None:
        start = max(valid_from.iat[r] for r in rows) + pd.Timedelta(days=60)
        return (start, HISTORY_END) if start < HISTORY_END - pd.Timedelta(days=60) else None

    # horizontal neighbours in one block row: (left, right) row pairs of the frame
    order = np.lexsort((bounds[:, 0], bounds[:, 1], block))
    pairs = []
    for a, b in zip(order[:-1].tolist(), order[1:].tolist(), strict=True):
        if block[a] == block[b] and bounds[a, 1] == bounds[b, 1] and bounds[a, 2] == bounds[b, 0]:
            pairs.append((a, b))
    pairs = [pairs[i] for i in rng.permutation(len(pairs))]

    def free(*rows: int) -> bool:
        return not used[list(rows)].any()

    # boundary adjustments: the shared edge was d metres off before
    for a, b in pairs:
        if len(plan.adjustments) >= ADJUSTMENTS:
            break
        span = window([a, b])
        widths = bounds[[a, b], 2] - bounds[[a, b], 0]
        if not free(a, b) or span is None or widths.min() < 12:
            continue
        shift = float(rng.uniform(1.0, 3.0)) * (1 if rng.random() < 0.5 else -1)
        edge = bounds[a, 2]
        x0, y0, _, y1 = bounds[a]
        _, _, x1, _ = bounds[b]
        geometry = parcels.geometry.name
        parcels.iat[a, parcels.columns.get_loc(geometry)] = shapely.MultiPolygon([box(x0, y0, edge + shift, y1)])
        parcels.iat[b, parcels.columns.get_loc(geometry)] = shapely.MultiPolygon([box(edge + shift, y0, x1, y1)])
        plan.adjustments.append({"rows": (a, b), "at": _day(rng, *span),
                                 "boundaries": (shapely.MultiPolygon([box(x0, y0, edge, y1)]),
                                                shapely.MultiPolygon([box(edge, y0, x1, y1)]))})
        used[[a, b]] = True

    # merges of neighbours (bought by one holder first when they had two)
    for a, b in pairs:
        if len(plan.merges) >= MERGES:
            break
        span = window([a, b])
        if not free(a, b) or span is None:
            continue
        first = _day(rng, *span)
        merge = {"rows": (a, b), "at": first}
        if parcels["right_holder"].iat[a] != parcels["right_holder"].iat[b]:
            later = _day(rng, first, HISTORY_END)
            merge["transfer"] = {"row": b, "at": first, "holder": {
                k: parcels[k].iat[a] for k in ("right_holder", "holder_kind", "holder_id_number", "holder_phone")}}
            merge["at"] = later
        plan.merges.append(merge)
        used[[a, b]] = True

    # splits of wide parcels into two, cut away from the building
    wide = np.flatnonzero((bounds[:, 2] - bounds[:, 0] >= 24) & ~used & (use != "farmland"))
    for row in rng.permutation(wide)[:SPLITS].tolist():
        span = window([row])
        if span is None:
            continue
        x0, y0, x1, y1 = bounds[row]
        cut = x0 + (x1 - x0) * float(rng.choice([rng.uniform(0.3, 0.42), rng.uniform(0.58, 0.7)]))
        plan.splits.append({"row": row, "at": _day(rng, *span),
                            "children": (box(x0, y0, cut, y1), box(cut, y0, x1, y1))})
        used[row] = True

    # expropriations: collective farmland cancelled, its land registered again as state reserve land
    farmland = np.flatnonzero((use == "farmland") & ~used)
    for row in rng.permutation(farmland)[:EXPROPRIATIONS].tolist():
        span = window([row])
        if span is not None:
            plan.expropriations.append({"row": row, "at": _day(rng, *span)})
            used[row] = True

    # transfers (a few parcels twice), from the generated holder to a new one
    for row in rng.permutation(np.flatnonzero(~used & np.isin(use, BUILT)))[:TRANSFERS].tolist():
        span = window([row])
        if span is None:
            continue
        at = _day(rng, *span)
        plan.transfers.append({"row": row, "at": at, "holder": _holder(rng, county[row])})
        if len(plan.transfers) <= SECOND_TRANSFERS and at < HISTORY_END - pd.Timedelta(days=90):
            plan.transfers.append({"row": row, "at": _day(rng, at + pd.Timedelta(days=30), HISTORY_END),
                                   "holder": _holder(rng, county[row])})
        used[row] = True
    return plan


def previous_survey(patches: gpd.GeoDataFrame, patch_blocks: np.ndarray, plan: HistoryPlan) -> gpd.GeoDataFrame:
    """The survey year before the current one: the same patches, the redeveloped blocks in their old class."""
    names = {r["code"]: r["name_zh"] for r in code_list("survey_tnls") if r["level"] != "0"}
    earlier = patches.copy()
    earlier["survey_year"] = PREVIOUS_SURVEY_YEAR
    for k in np.flatnonzero(np.isin(patch_blocks, list(plan.changed_blocks))).tolist():
        code = plan.changed_blocks[int(patch_blocks[k])]
        earlier.iat[k, earlier.columns.get_loc("class_code")] = code
        earlier.iat[k, earlier.columns.get_loc("class_name")] = names[code]
    return earlier


# --- applying it through the services ------------------------------------------------------------

def _aware(when: pd.Timestamp) -> dt.datetime:
    return when.to_pydatetime()


def apply_history(conn: Any, plan: HistoryPlan, parcels: gpd.GeoDataFrame, *, seed: int) -> dict[str, Any]:
    """Register the planned past in legal order through the cadastre and land-use services (caller
    SYSTEM, this transaction), record both survey years and compute the change survey between them,
    open a couple of supervision cases and record land approvals. Returns what happened, with
    example parcels for each history tool."""
    from gis.access import SYSTEM
    from layers.cadastre import service as registry
    from layers.landuse import service as land

    code = parcels["parcel_code"].to_numpy()
    events: list[tuple[pd.Timestamp, int, str, dict[str, Any]]] = []
    for c in plan.changes:
        events.append((c["at"], len(events), "change", c))
    for t in plan.transfers:
        events.append((t["at"], len(events), "transfer", t))
    for m in plan.merges:
        if "transfer" in m:
            events.append((m["transfer"]["at"], len(events), "transfer", m["transfer"]))
        events.append((m["at"], len(events), "merge", m))
    for s in plan.splits:
        events.append((s["at"], len(events), "split", s))
    for a in plan.adjustments:
        events.append((a["at"], len(events), "boundary_adjustment", a))
    for e in plan.expropriations:
        events.append((e["at"], len(events), "expropriation", e))
    events.sort(key=lambda e: (e[0], e[1]))
    done: dict[str, list[str]] = {}
    registrations: dict[str, int] = {}
    note = "演示数据（历史登记）"
    for when, _, kind, event in events:
        at = _aware(when)
        if kind == "change":
            answer = registry.register_change(conn, SYSTEM, parcel_code=code[event["row"]], changes=event["changes"],
                                              effective_at=at, note=note)
        elif kind == "transfer":
            holder = {k: (None if pd.isna(v) else v) for k, v in event["holder"].items()}
            answer = registry.register_transfer(conn, SYSTEM, parcel_code=code[event["row"]], holder=holder,
                                                effective_at=at, note=note)
        elif kind == "merge":
            a, b = event["rows"]
            attachment = str(parcels["unit_code"].iat[a])[19:]
            answer = registry.register_merge(conn, SYSTEM, parcel_codes=[code[a], code[b]], effective_at=at, note=note,
                                             attributes={"attachment": attachment} if attachment[0] != "W" else None)
        elif kind == "split":
            answer = registry.register_split(conn, SYSTEM, parcel_code=code[event["row"]], effective_at=at, note=note,
                                             children=[{"geometry": g} for g in event["children"]])
        elif kind == "boundary_adjustment":
            a, b = event["rows"]
            answer = registry.register_boundary_adjustment(
                conn, SYSTEM, boundaries=dict(zip((code[a], code[b]), event["boundaries"], strict=True)),
                effective_at=at, note=note)
        else:
            row = event["row"]
            registry.register_cancellation(conn, SYSTEM, parcel_code=code[row], effective_at=at,
                                           note="集体土地征收，注销登记（演示数据）")
            prefix = code[row][:12]
            answer = registry.register_initial(
                conn, SYSTEM, sub_district=prefix, ownership="G", parcel_type="B", effective_at=at,
                geometry=parcels.geometry.iat[row], note="征收后国有储备土地首次登记（演示数据）",
                attributes={"right_holder": LAND_RESERVE, "holder_kind": "organisation",
                            "right_type": "国有建设用地使用权", "landuse_code": parcels["landuse_code"].iat[row],
                            "district": parcels["district"].iat[row], "address": parcels["address"].iat[row]})
            answer["retired"] = [code[row]]
            registrations["cancellation"] = registrations.get("cancellation", 0) + 1
            kind = "initial"
        registrations[kind] = registrations.get(kind, 0) + 1
        done.setdefault(kind, []).extend(answer["created"] or answer["modified"])

    for year in (PREVIOUS_SURVEY_YEAR, SURVEY_YEAR):
        land.record_survey_year(conn, SYSTEM, year=year, completeness="complete", note="演示数据")
    change = land.change_survey(conn, SYSTEM, from_year=PREVIOUS_SURVEY_YEAR, to_year=SURVEY_YEAR)
    cases, approvals = _supervision_and_approvals(conn, plan, parcels, done, seed)
    return {"registrations": sum(registrations.values()), "by_kind": registrations,
            "change_patches": change["change_patches"], "supervision_cases": cases, "land_approvals": approvals,
            "examples": _examples(conn, plan, parcels, done)}


def _supervision_and_approvals(conn: Any, plan: HistoryPlan, parcels: gpd.GeoDataFrame,
                               done: dict[str, list[str]], seed: int) -> tuple[int, int]:
    """Two supervision cases (an unauthorised change on a redeveloped block, an occupation of farmland
    or of a park) and a land approval per redeveloped block and per expropriation, through the land-use
    service."""
    from gis.access import SYSTEM
    from layers.landuse import service as land

    rng = random_stream(seed, HISTORY_STREAM + 1)
    block = parcels["block"].to_numpy()
    geometry = parcels.geometry.to_numpy()
    cases = approvals = 0
    redeveloped = sorted(plan.changed_blocks)
    for k, b in enumerate(redeveloped[:3]):
        area = shapely.union_all(geometry[block == b])
        land.record_land_approval(conn, SYSTEM, {
            "approval_no": f"厦自然资出〔{SURVEY_YEAR}〕{k + 1:03d}号", "supply_kind": "transfer",
            "project_name": f"旧厂区改造项目（演示）{k + 1}", "land_user": str(company_names(rng, 1)[0]),
            "landuse_code": parcels["landuse_code"].iat[int(np.flatnonzero(block == b)[0])],
            "approved_on": dt.date(SURVEY_YEAR, 1, 10 + k), "term_years": 70,
            "price_total": round(float(area.area) * 12000, 2)}, area)
        approvals += 1
    for k, event in enumerate(plan.expropriations[:2]):
        land.record_land_approval(conn, SYSTEM, {
            "approval_no": f"厦自然资划〔{event['at'].year}〕{k + 1:03d}号", "supply_kind": "allocation",
            "project_name": f"土地储备项目（演示）{k + 1}", "land_user": LAND_RESERVE, "landuse_code": "0101",
            "approved_on": event["at"].date()}, geometry[event["row"]])
        approvals += 1
    if redeveloped:
        b = redeveloped[0]
        land.record_supervision_case(conn, SYSTEM, {
            "case_no": f"JC{SURVEY_YEAR}0001", "kind": "unauthorised_change", "status": "investigating",
            "found_on": dt.date(SURVEY_YEAR, 5, 18), "district": parcels["district"].iat[int(np.flatnonzero(block == b)[0])],
            # a party is personal data: an invented person, never a name that is public elsewhere
            "party": str(person_names(rng, 1)[0]),
            "description": "变更调查发现厂房改作住宅，核查用途变更审批（演示数据）"}, shapely.union_all(geometry[block == b]))
        cases += 1
    open_land = np.flatnonzero(np.isin(parcels["use"].to_numpy(), ("farmland", "park")))
    if len(open_land):
        row = int(open_land[0])
        x0, y0, x1, y1 = geometry[row].bounds
        patch = box(x0 + 0.2 * (x1 - x0), y0 + 0.2 * (y1 - y0), x0 + 0.5 * (x1 - x0), y0 + 0.5 * (y1 - y0))
        land.record_supervision_case(conn, SYSTEM, {
            "case_no": f"JC{SURVEY_YEAR + 1}0002", "kind": "illegal_occupation", "status": "reported",
            "found_on": dt.date(SURVEY_YEAR + 1, 3, 2), "district": parcels["district"].iat[row],
            "party": str(person_names(rng, 1)[0]), "description": "未经批准占地搭建临时棚屋（演示数据）"}, patch)
        cases += 1
    return cases, approvals


def _examples(conn: Any, plan: HistoryPlan, parcels: gpd.GeoDataFrame, done: dict[str, list[str]]) -> dict[str, Any]:
    """Parcels to try each history tool on (the README names them for the default city)."""
    import sqlalchemy as sa

    code = parcels["parcel_code"].to_numpy()
    chain = conn.execute(sa.text(
        "SELECT parcel_codes[1] FROM cadastre_registrations GROUP BY parcel_codes[1] "
        "HAVING count(*) >= 3 ORDER BY count(*) DESC, 1 LIMIT 1")).scalar()
    out: dict[str, Any] = {"timeline": chain}
    if plan.splits:
        out["split_parent"] = code[plan.splits[0]["row"]]
        out["split_at"] = plan.splits[0]["at"].date().isoformat()
    if plan.merges:
        out["merged_parents"] = [code[r] for r in plan.merges[0]["rows"]]
    if plan.adjustments:
        out["boundary_adjusted"] = [code[r] for r in plan.adjustments[0]["rows"]]
    if plan.changed_blocks:
        row = int(np.flatnonzero(parcels["block"].to_numpy() == sorted(plan.changed_blocks)[0])[0])
        out["use_changed"] = code[row]
    if plan.expropriations:
        out["expropriated"] = code[plan.expropriations[0]["row"]]
    return out


def remap_customers(conn: Any, customers: gpd.GeoDataFrame) -> gpd.GeoDataFrame:
    """Customers whose parcel the history retired (split, merged, expropriated) take the parcel in force
    now that holds their service point."""
    import sqlalchemy as sa

    retired = set(conn.execute(sa.text(
        "SELECT parcel_code FROM cadastre_parcels p WHERE recorded_to IS NULL GROUP BY parcel_code "
        "HAVING bool_and(valid_to IS NOT NULL AND valid_to <= now())")).scalars())
    moved = customers["parcel_code"].isin(retired).to_numpy()
    if not moved.any():
        return customers
    points = customers.geometry.to_numpy()[moved]
    x0, y0, x1, y1 = shapely.total_bounds(points).tolist()
    rows = conn.execute(sa.text(
        "SELECT parcel_code, ST_AsBinary(geom) FROM cadastre_parcels WHERE recorded_to IS NULL AND "
        "valid_from <= now() AND (valid_to IS NULL OR valid_to > now()) AND "
        "geom && ST_MakeEnvelope(:x0, :y0, :x1, :y1, ST_SRID(geom))"),
        {"x0": x0, "y0": y0, "x1": x1, "y1": y1}).all()
    codes_ = np.array([r[0] for r in rows], dtype=object)
    tree = shapely.STRtree(shapely.from_wkb([bytes(r[1]) for r in rows]))
    point_index, parcel_index = tree.query(points, predicate="intersects")
    found = np.full(len(points), None, dtype=object)
    found[point_index] = codes_[parcel_index]
    out = customers.copy()
    column = out.columns.get_loc("parcel_code")
    for k, row in enumerate(np.flatnonzero(moved).tolist()):
        out.iat[row, column] = found[k]
    return out
