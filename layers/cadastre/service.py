"""Parcel registrations (城镇地籍管理) and history queries.

Each registration kind is one function that runs inside the caller's transaction (never commits):
it checks the rules, closes the old versions at the legal effective time, records the new ones,
writes lineage and one registration row, and audits every parcel it touches. Any rule broken raises
before the transaction commits, so a refused registration leaves nothing behind.

Valid time. A parcel's version *in force* is the one whose valid period holds now; its *head* is its
latest registered version (open-ended). A registration may take effect in the future: it closes the
version in force at that date and records the new one as scheduled (visible with a future
``datetime``, in the timeline, and in force once its date comes — nothing has to run then). Rules
that follow, decided once:

* A parcel with a scheduled change is live today: it keeps its land (no other parcel may take it
  from now on) and every "today" path shows the version in force.
* Registrations apply in legal order: the next registration of a parcel supersedes its head, so it
  must not take effect before the head does. A change dated before an already scheduled one is
  refused (correct or cancel the scheduled registration first), never slotted in between.
* A new boundary may not overlap land any other parcel holds from its effective date on, in force
  then or scheduled later.

Answers list ``created`` (new parcel codes), ``modified`` (codes kept, new version) and ``retired``
(codes that end), and ``parcels``: the versions written.
"""

from __future__ import annotations

import datetime as dt
import re
from typing import Any

import shapely
from shapely.geometry.base import BaseGeometry
from sqlalchemy.engine import Connection

from gis.access import Caller, mask_properties, require_read, require_write, sees_personal_data
from gis.errors import Conflict, InvalidGeometry, InvalidParameter, NotFound
from gis.geometry import geometry_problem, promote
from gis.writes import audit
from layers.cadastre import codes
from layers.cadastre import repository as repo
from layers.cadastre.layers import PARCELS

# Default tolerance for "exactly covers" and "does not overlap": survey coordinates are kept to the
# centimetre, so slivers below a tenth of a square metre are rounding, not land.
AREA_TOLERANCE_M2 = 0.1
# A merge needs a shared boundary, not a touching corner: at least this long (metres).
MIN_SHARED_BOUNDARY_M = 0.01

ATTRIBUTE_FIELDS = ("right_type", "landuse_system", "landuse_code", "address", "district", "registered_area",
                    "attachment")
HOLDER_FIELDS = ("right_holder", "holder_kind", "holder_id_number", "holder_phone")
NO_ATTACHMENT = "W00000000"
_ATTACHMENT_RE = re.compile(r"^[FLQW][0-9]{8}$")


def next_parcel_codes(conn: Connection, prefix: str, ownership: str, parcel_type: str,
                      count: int = 1) -> list[str]:
    """Issue ``count`` new 宗地代码 in a sub-district, after the highest number ever used there.

    For the registrations below (they check the caller's right first). A transaction-scoped lock per
    sub-district serialises concurrent registrations, and the maximum is taken over every row ever
    recorded (retired versions included), so a number is never issued twice nor reused after
    retirement.
    """
    codes.check_prefix(prefix, ownership, parcel_type)
    repo.lock_sub_district(conn, prefix)
    return codes.issue_parcel_codes(prefix, ownership, parcel_type, repo.highest_sequence(conn, prefix), count)


def describe_code(code: str) -> dict[str, Any]:
    """What a GB/T 37346 parcel (19) or unit (28) code says, part by part; InvalidParameter if malformed."""
    if len(code) == 28:
        parcel, attachment = codes.validate_unit_code(code)
        extra: dict[str, Any] = {"attachment": attachment, "attachment_name": codes.ATTACHMENTS[attachment]}
    else:
        parcel, extra = codes.parse_parcel_code(code), {}
    return {"code": code, "valid": True, "county": parcel.county, "cadastral_district": parcel.district,
            "sub_district": parcel.sub_district, "ownership": parcel.ownership,
            "ownership_name": codes.OWNERSHIP[parcel.ownership], "parcel_type": parcel.parcel_type,
            "parcel_type_name": codes.PARCEL_TYPES[parcel.parcel_type], "sequence": parcel.sequence, **extra}


def _multipolygon(geometry: BaseGeometry, what: str) -> BaseGeometry:
    problem = geometry_problem(geometry, "MultiPolygon")
    if problem:
        raise InvalidGeometry(f"{what}: {problem}")
    return promote(geometry, "MultiPolygon")


def _when(conn: Connection, effective_at: dt.datetime | None) -> dt.datetime:
    when = effective_at or repo.now(conn)
    if when.tzinfo is None:
        raise InvalidParameter("effective_at needs a time zone (e.g. 2026-01-01T00:00:00+08:00)")
    return when


def _live(conn: Connection, parcel_codes: list[str]) -> dict[str, dict[str, Any]]:
    """The head versions of parcels a registration supersedes (locked); NotFound for a code that was
    never registered, has ended, or is scheduled to end."""
    for code in parcel_codes:
        codes.parse_parcel_code(code)
    if len(set(parcel_codes)) != len(parcel_codes):
        raise InvalidParameter("a parcel code is listed twice")
    rows = repo.head_versions(conn, parcel_codes, lock=True)
    missing = [c for c in parcel_codes if c not in rows]
    if missing:
        ending = repo.scheduled_ends(conn, missing)
        if ending:
            listed = ", ".join(f"{c} (ends {when.isoformat()})" for c, when in sorted(ending.items()))
            raise Conflict(f"parcel(s) {listed} are already registered to end at a future date (split, merge or "
                           "cancellation): nothing can be registered on them after that")
        raise NotFound(f"no live parcel {', '.join(missing)}: it was never registered or has been retired")
    return rows


def _check_effective(rows: list[dict[str, Any]], when: dt.datetime) -> None:
    for row in rows:
        if when < row["valid_from"]:
            scheduled = row["valid_from"] > dt.datetime.now(dt.UTC)
            raise InvalidParameter(
                f"effective_at {when.isoformat()} is before parcel {row['parcel_code']}'s latest version takes "
                f"effect ({row['valid_from'].isoformat()}{', a registration scheduled ahead' if scheduled else ''}): "
                "registrations apply in legal order — date this one on or after it"
                + (", or correct the scheduled registration first" if scheduled else ""))


def _check_no_overlap(conn: Connection, geometry: BaseGeometry, exclude: list[str], when: dt.datetime,
                      tolerance: float, what: str) -> None:
    clashes = repo.overlapping_from(conn, geometry, exclude, when, tolerance)
    if clashes:
        listed = ", ".join(f"{code} ({area:.2f} m²)" for code, area in clashes[:10])
        raise Conflict(f"{what} overlaps live parcel(s) {listed} by more than {tolerance} m²: correct the "
                       "boundary, or register a boundary adjustment of the neighbour first",
                       overlaps=[{"parcel_code": c, "area_m2": round(a, 3)} for c, a in clashes])


def _result(registration_id: int, kind: str, when: dt.datetime, written: list[dict[str, Any]], *,
            created: list[str] = (), modified: list[str] = (), retired: list[str] = (),
            **extra: Any) -> dict[str, Any]:
    """The answer of a registration: which codes are new, which kept their code with a new version,
    which ended; the versions written; whether it is in force yet or scheduled."""
    return {"registration_id": registration_id, "kind": kind, "effective_at": when.isoformat(),
            "scheduled": when > dt.datetime.now(dt.UTC),
            "created": list(created), "modified": list(modified), "retired": list(retired),
            "parcels": [{"parcel_code": r["parcel_code"], "unit_code": r["unit_code"], "version": r["version"],
                         "plane_area": r["plane_area"]} for r in written], **extra}


def _audit(conn: Connection, caller: Caller, code: str, before: dict[str, Any] | None,
           after: dict[str, Any] | None, registration_id: int, kind: str) -> None:
    def snap(row: dict[str, Any] | None) -> dict[str, Any] | None:
        if row is None:
            return None
        out = {k: v for k, v in row.items() if k not in ("geometry", "attachment_geom")}
        out["geom"] = row["geometry"].wkt if row.get("geometry") is not None else None
        out["attachment_geom"] = row["attachment_geom"].wkt if row.get("attachment_geom") is not None else None
        return out

    audit(conn, caller, PARCELS.id, code, "registration", snap(before), snap(after),
          {"registration_id": registration_id, "kind": kind})


# --- attachments (定着物: the last nine characters of the 28-character unit code) -------------------

def _attachment_of(row: dict[str, Any]) -> str:
    return str(row["unit_code"])[19:]


def _check_attachment(attachment: str, point: BaseGeometry | None, parcel: BaseGeometry, what: str) -> None:
    if not _ATTACHMENT_RE.match(attachment or ""):
        raise InvalidParameter(f"{what}: attachment {attachment!r} is the unit code's last nine characters — "
                               "F (building), L (trees), Q (other) or W (none), then building(4) + unit(4) digits")
    codes.validate_unit_code("350203001001GB00001" + attachment)  # W needs 00000000
    if point is not None:
        if attachment == NO_ATTACHMENT:
            raise InvalidParameter(f"{what}: a parcel without attachment (W) has no attachment position")
        if point.geom_type != "Point" or not parcel.covers(point):
            raise InvalidGeometry(f"{what}: the attachment position must be a point inside the parcel")


def _children_attachments(parent: dict[str, Any], geoms: list[BaseGeometry],
                          overrides: list[dict[str, Any]]) -> list[tuple[str, BaseGeometry | None]]:
    """The attachment (letters and numbers, position) of each child of a split: the parent's follows
    its position to the child that contains it (GB/T 37346: the unit keeps its building and unit
    numbers under the new parcel code); the other children have none, unless a child's attributes
    say otherwise."""
    attachment, point = _attachment_of(parent), parent.get("attachment_geom")
    out: list[tuple[str, BaseGeometry | None]] = [(NO_ATTACHMENT, None)] * len(geoms)
    given = [i for i, o in enumerate(overrides) if o.get("attachment")]
    for i in given:
        out[i] = (overrides[i]["attachment"], point if point is not None and geoms[i].covers(point) else None)
    if attachment == NO_ATTACHMENT or given:
        return out
    if point is None:
        raise Conflict(f"parcel {parent['parcel_code']} has attachment {attachment} but no recorded position: say "
                       "which child takes it (attributes.attachment of that child)")
    holders = [i for i, g in enumerate(geoms) if g.covers(point)]
    if len(holders) != 1:
        raise Conflict(f"the attachment {attachment} of parcel {parent['parcel_code']} lies on a boundary between "
                       "children: say which child takes it (attributes.attachment of that child)")
    out[holders[0]] = (attachment, point)
    return out


# --- registrations ---------------------------------------------------------------------------------

def register_initial(conn: Connection, caller: Caller, *, sub_district: str, ownership: str,
                     parcel_type: str, attributes: dict[str, Any], geometry: BaseGeometry,
                     effective_at: dt.datetime | None = None, certificate_no: str | None = None,
                     note: str | None = None, attachment_point: BaseGeometry | None = None,
                     tolerance_m2: float = AREA_TOLERANCE_M2) -> dict[str, Any]:
    """首次登记: a new parcel with a newly issued code; must not overlap any live parcel. Its
    attachment (attributes ``attachment``, default W00000000) may come with its position."""
    require_write(caller, PARCELS)
    when = _when(conn, effective_at)
    geometry = _multipolygon(geometry, "the parcel boundary")
    values = _attributes(attributes, required=True)
    attachment = values.pop("attachment", None) or NO_ATTACHMENT
    _check_attachment(attachment, attachment_point, geometry, "the new parcel")
    codes.check_prefix(sub_district, ownership, parcel_type)
    _check_no_overlap(conn, geometry, [], when, tolerance_m2, "the new parcel")
    [code] = next_parcel_codes(conn, sub_district, ownership, parcel_type)
    values.update(parcel_code=code, unit_code=code + attachment, attachment_geom=attachment_point)
    reg = repo.insert_registration(conn, kind="initial", codes=[code], effective_at=when, actor=caller.name,
                                   certificate_no=certificate_no, note=note, detail={})
    row = repo.insert_version(conn, values, geometry, when, version=1)
    _audit(conn, caller, code, None, row, reg, "initial")
    return _result(reg, "initial", when, [row], created=[code])


def _attributes(attributes: dict[str, Any], *, required: bool) -> dict[str, Any]:
    allowed = set(ATTRIBUTE_FIELDS) | set(HOLDER_FIELDS)
    unknown = sorted(set(attributes) - allowed)
    if unknown:
        raise InvalidParameter(f"unknown parcel attribute(s) {', '.join(unknown)}; allowed: "
                               f"{', '.join(sorted(allowed))}")
    values = dict(attributes)
    if required:
        missing = [k for k in ("right_holder", "right_type", "landuse_code", "district") if not values.get(k)]
        if missing:
            raise InvalidParameter(f"a new parcel needs {', '.join(missing)}")
    if values.get("holder_kind") not in (None, "person", "organisation"):
        raise InvalidParameter("holder_kind is 'person' or 'organisation'")
    return values


def _carry(row: dict[str, Any], changes: dict[str, Any]) -> dict[str, Any]:
    values = {k: row[k] for k in repo.CARRIED}
    values.update(changes)
    return values


def _supersede_one(conn: Connection, caller: Caller, kind: str, parcel_code: str, changes: dict[str, Any],
                   geometry: BaseGeometry | None, effective_at: dt.datetime | None,
                   certificate_no: str | None, note: str | None) -> dict[str, Any]:
    require_write(caller, PARCELS)
    when = _when(conn, effective_at)
    before = _live(conn, [parcel_code])[parcel_code]
    _check_effective([before], when)
    changes = dict(changes)
    if "attachment" in changes:
        attachment = changes.pop("attachment")
        point = changes.pop("attachment_geom", before.get("attachment_geom"))
        point = None if attachment == NO_ATTACHMENT else point
        _check_attachment(attachment, point, geometry or before["geometry"], f"parcel {parcel_code}")
        changes.update(unit_code=parcel_code + attachment, attachment_geom=point)
    reg = repo.insert_registration(conn, kind=kind, codes=[parcel_code], effective_at=when, actor=caller.name,
                                   certificate_no=certificate_no, note=note,
                                   detail={"changed": sorted(changes)})
    repo.close_version(conn, before, when)
    after = repo.insert_version(conn, _carry(before, changes), geometry or before["geometry"], when,
                                version=before["version"] + 1)
    _audit(conn, caller, parcel_code, before, after, reg, kind)
    return _result(reg, kind, when, [after], modified=[parcel_code])


def register_change(conn: Connection, caller: Caller, *, parcel_code: str, changes: dict[str, Any],
                    effective_at: dt.datetime | None = None, certificate_no: str | None = None,
                    note: str | None = None, attachment_point: BaseGeometry | None = None) -> dict[str, Any]:
    """变更登记: attributes change (use, right type, address, attachment…); code and boundary stay."""
    values = _attributes(changes, required=False)
    holder = sorted(set(values) & set(HOLDER_FIELDS))
    if holder:
        raise InvalidParameter(f"{', '.join(holder)} change by a transfer registration, not a change")
    if attachment_point is not None:
        if "attachment" not in values:
            raise InvalidParameter("an attachment position comes with the attachment it locates (attachment)")
        values["attachment_geom"] = attachment_point
    if not values:
        raise InvalidParameter(f"say what changes: any of {', '.join(ATTRIBUTE_FIELDS)}")
    return _supersede_one(conn, caller, "change", parcel_code, values, None, effective_at, certificate_no, note)


def register_transfer(conn: Connection, caller: Caller, *, parcel_code: str, holder: dict[str, Any],
                      effective_at: dt.datetime | None = None, certificate_no: str | None = None,
                      note: str | None = None) -> dict[str, Any]:
    """转移登记: a new right holder; code and boundary stay."""
    values = _attributes(holder, required=False)
    other = sorted(set(values) - set(HOLDER_FIELDS))
    if other or not values.get("right_holder"):
        raise InvalidParameter("a transfer gives the new right_holder (and holder_kind, holder_id_number, "
                               f"holder_phone) only{'; not ' + ', '.join(other) if other else ''}")
    values.setdefault("holder_id_number", None)
    values.setdefault("holder_phone", None)
    return _supersede_one(conn, caller, "transfer", parcel_code, values, None, effective_at, certificate_no, note)


def register_split(conn: Connection, caller: Caller, *, parcel_code: str, children: list[dict[str, Any]],
                   effective_at: dt.datetime | None = None, certificate_no: str | None = None,
                   note: str | None = None, tolerance_m2: float = AREA_TOLERANCE_M2) -> dict[str, Any]:
    """分割登记: a parcel becomes two or more, each with a new code; together they cover it exactly.

    ``children``: [{"geometry": shapely, "attributes": {...overrides}}]. Refused when the children
    leave a gap, overlap each other, or reach outside the parent by more than ``tolerance_m2``. The
    parent's attachment goes to the child that contains its position.
    """
    require_write(caller, PARCELS)
    if len(children) < 2:
        raise InvalidParameter("a split needs at least two child parcels")
    when = _when(conn, effective_at)
    parent = _live(conn, [parcel_code])[parcel_code]
    _check_effective([parent], when)
    geoms = [_multipolygon(c["geometry"], f"child {i + 1}") for i, c in enumerate(children)]
    overrides = [_attributes(c.get("attributes") or {}, required=False) for c in children]
    union = shapely.union_all(geoms)
    overlap = sum(g.area for g in geoms) - union.area
    if overlap > tolerance_m2:
        raise Conflict(f"the child parcels overlap each other by {overlap:.3f} m² (tolerance {tolerance_m2} m²): "
                       "children of a split must not overlap")
    gap = parent["geometry"].difference(union).area
    if gap > tolerance_m2:
        raise Conflict(f"the child parcels leave {gap:.3f} m² of the parent uncovered (tolerance "
                       f"{tolerance_m2} m²): children of a split must cover the parent exactly")
    outside = union.difference(parent["geometry"]).area
    if outside > tolerance_m2:
        raise Conflict(f"the child parcels reach {outside:.3f} m² outside the parent (tolerance {tolerance_m2} m²)")
    attachments = _children_attachments(parent, geoms, overrides)
    for i, (g, (attachment, point)) in enumerate(zip(geoms, attachments, strict=True)):
        _check_attachment(attachment, point, g, f"child {i + 1}")
        _check_no_overlap(conn, g, [parcel_code], when, tolerance_m2, f"child {i + 1}")
    parsed = codes.parse_parcel_code(parcel_code)
    new_codes = next_parcel_codes(conn, parsed.prefix, parsed.ownership, parsed.parcel_type, len(geoms))
    reg = repo.insert_registration(conn, kind="split", codes=[parcel_code, *new_codes], effective_at=when,
                                   actor=caller.name, certificate_no=certificate_no, note=note,
                                   detail={"parent": parcel_code, "children": new_codes,
                                           "uncovered_m2": round(gap, 4), "overlap_m2": round(overlap, 4)})
    repo.close_version(conn, parent, when)
    created = []
    for code, extra, g, (attachment, point) in zip(new_codes, overrides, geoms, attachments, strict=True):
        extra = {k: v for k, v in extra.items() if k != "attachment"}
        values = _carry(parent, {**extra, "parcel_code": code, "unit_code": code + attachment,
                                 "attachment_geom": point, "registered_area": extra.get("registered_area")})
        row = repo.insert_version(conn, values, g, when, version=1)
        created.append(row)
        _audit(conn, caller, code, None, row, reg, "split")
    repo.insert_lineage(conn, [(parcel_code, c) for c in new_codes], "split", reg)
    _audit(conn, caller, parcel_code, parent, None, reg, "split")
    return _result(reg, "split", when, created, created=new_codes, retired=[parcel_code])


def _adjacency_problem(rows: list[dict[str, Any]], tolerance_m2: float) -> str | None:
    """None when the parcels form one connected group through shared boundary lines."""
    n = len(rows)
    linked: dict[int, set[int]] = {i: set() for i in range(n)}
    for i in range(n):
        for j in range(i + 1, n):
            a, b = rows[i]["geometry"], rows[j]["geometry"]
            if a.intersection(b).area > tolerance_m2:
                return f"parcels {rows[i]['parcel_code']} and {rows[j]['parcel_code']} overlap"
            if a.boundary.intersection(b.boundary).length >= MIN_SHARED_BOUNDARY_M:
                linked[i].add(j)
                linked[j].add(i)
    seen, stack = {0}, [0]
    while stack:
        for k in linked[stack.pop()] - seen:
            seen.add(k)
            stack.append(k)
    if len(seen) < n:
        apart = [rows[k]["parcel_code"] for k in range(n) if k not in seen]
        return (f"parcel(s) {', '.join(apart)} share no boundary with the others (touching at a corner is "
                "not enough): only adjacent parcels can be merged")
    return None


def _merged_attachment(rows: list[dict[str, Any]], override: str | None) -> tuple[str, BaseGeometry | None]:
    """The merged parcel's attachment: the one attachment among the parents (with its position), or the
    one the request names when several parents have one (a unit code carries one attachment)."""
    held = [(r["parcel_code"], _attachment_of(r), r.get("attachment_geom")) for r in rows
            if _attachment_of(r) != NO_ATTACHMENT]
    if override:
        point = next((p for _, a, p in held if a == override), None)
        return override, point
    if not held:
        return NO_ATTACHMENT, None
    if len(held) > 1:
        listed = ", ".join(f"{c}: {a}" for c, a, _ in held)
        raise Conflict(f"several parents have an attachment ({listed}); the merged parcel's unit code carries "
                       "one: say which (attributes.attachment)")
    return held[0][1], held[0][2]


def register_merge(conn: Connection, caller: Caller, *, parcel_codes: list[str],
                   attributes: dict[str, Any] | None = None, effective_at: dt.datetime | None = None,
                   certificate_no: str | None = None, note: str | None = None,
                   tolerance_m2: float = AREA_TOLERANCE_M2) -> dict[str, Any]:
    """合并登记: adjacent parcels become one with a new code (same sub-district and right holder);
    a parent's attachment keeps its building and unit numbers under the new code."""
    require_write(caller, PARCELS)
    if len(parcel_codes) < 2:
        raise InvalidParameter("a merge needs at least two parcel codes")
    when = _when(conn, effective_at)
    live = _live(conn, parcel_codes)
    rows = [live[c] for c in parcel_codes]
    _check_effective(rows, when)
    prefixes = {codes.parse_parcel_code(c).prefix for c in parcel_codes}
    if len(prefixes) > 1:
        raise Conflict(f"the parcels lie in different cadastral sub-districts ({', '.join(sorted(prefixes))}); "
                       "merge only within one 地籍子区")
    holders = {r["right_holder"] for r in rows}
    if len(holders) > 1:
        raise Conflict("the parcels have different right holders: transfer them to one holder before merging")
    problem = _adjacency_problem(rows, tolerance_m2)
    if problem:
        raise Conflict(problem)
    overrides = _attributes(attributes or {}, required=False)
    merged = shapely.union_all([r["geometry"] for r in rows])
    merged = promote(merged, "MultiPolygon") if merged.geom_type == "Polygon" else merged
    attachment, point = _merged_attachment(rows, overrides.pop("attachment", None))
    _check_attachment(attachment, point, merged, "the merged parcel")
    first = codes.parse_parcel_code(parcel_codes[0])
    [code] = next_parcel_codes(conn, first.prefix, first.ownership, first.parcel_type)
    reg = repo.insert_registration(conn, kind="merge", codes=[*parcel_codes, code], effective_at=when,
                                   actor=caller.name, certificate_no=certificate_no, note=note,
                                   detail={"parents": parcel_codes, "child": code})
    for row in rows:
        repo.close_version(conn, row, when)
        _audit(conn, caller, row["parcel_code"], row, None, reg, "merge")
    values = _carry(rows[0], {**overrides, "parcel_code": code, "unit_code": code + attachment,
                              "attachment_geom": point, "registered_area": overrides.get("registered_area")})
    child = repo.insert_version(conn, values, merged, when, version=1)
    _audit(conn, caller, code, None, child, reg, "merge")
    repo.insert_lineage(conn, [(p, code) for p in parcel_codes], "merge", reg)
    return _result(reg, "merge", when, [child], created=[code], retired=list(parcel_codes))


def register_boundary_adjustment(conn: Connection, caller: Caller, *, boundaries: dict[str, BaseGeometry],
                                 effective_at: dt.datetime | None = None, certificate_no: str | None = None,
                                 note: str | None = None, correction: bool = False, reason: str | None = None,
                                 tolerance_m2: float = AREA_TOLERANCE_M2) -> dict[str, Any]:
    """界址调整: new boundaries for one or more parcels, codes kept.

    Between neighbours the land only moves: the parcels involved keep their total area and the land
    they hold together (the union of the new boundaries equals that of the old ones) within
    ``tolerance_m2`` — so one parcel alone cannot grow into the street. Only a boundary *correction*
    (界址更正, ``correction`` with a ``reason``: a survey error put right) may change the land held,
    and it still may not take land another live parcel holds. The answer states each parcel's area
    change and the total.
    """
    require_write(caller, PARCELS)
    if not boundaries:
        raise InvalidParameter("give the new boundary of at least one parcel")
    if correction and not (reason or "").strip():
        raise InvalidParameter("a boundary correction needs its reason (which survey error it puts right)")
    when = _when(conn, effective_at)
    parcel_codes = list(boundaries)
    live = _live(conn, parcel_codes)
    rows = [live[c] for c in parcel_codes]
    _check_effective(rows, when)
    geoms = {c: _multipolygon(g, f"new boundary of {c}") for c, g in boundaries.items()}
    new_union = shapely.union_all(list(geoms.values()))
    overlap = sum(g.area for g in geoms.values()) - new_union.area
    if overlap > tolerance_m2:
        raise Conflict(f"the new boundaries overlap each other by {overlap:.3f} m²")
    change = {r["parcel_code"]: geoms[r["parcel_code"]].area - r["geometry"].area for r in rows}
    total_change = sum(change.values())
    moved = shapely.union_all([r["geometry"] for r in rows]).symmetric_difference(new_union).area
    if not correction and (abs(total_change) > tolerance_m2 or moved > tolerance_m2):
        raise Conflict(
            f"the adjusted parcels together {'gain' if total_change >= 0 else 'lose'} {abs(total_change):.2f} m² "
            f"and their outer boundary moves by {moved:.2f} m² (tolerance {tolerance_m2} m²): a boundary "
            "adjustment moves land between the parcels it names, it does not add or remove any — name every "
            "neighbour whose boundary changes, or declare a correction (correction, reason) if a survey error "
            "is put right", area_change_m2={c: round(v, 2) for c, v in change.items()},
            total_area_change_m2=round(total_change, 2))
    for code, g in geoms.items():
        _check_no_overlap(conn, g, parcel_codes, when, tolerance_m2, f"the new boundary of {code}")
        point = live[code].get("attachment_geom")
        if point is not None and not g.covers(point):
            raise Conflict(f"the attachment of parcel {code} would lie outside its new boundary: register the "
                           "attachment's move (a change registration) first")
    detail = {"area_before": {r["parcel_code"]: r["plane_area"] for r in rows},
              "area_change_m2": {c: round(v, 4) for c, v in change.items()},
              "total_area_change_m2": round(total_change, 4), "correction": correction}
    if correction:
        detail["reason"] = reason
    reg = repo.insert_registration(conn, kind="boundary_adjustment", codes=parcel_codes, effective_at=when,
                                   actor=caller.name, certificate_no=certificate_no, note=note, detail=detail)
    written = []
    for row in rows:
        code = row["parcel_code"]
        repo.close_version(conn, row, when)
        after = repo.insert_version(conn, _carry(row, {"registered_area": None}), geoms[code], when,
                                    version=row["version"] + 1)
        written.append(after)
        _audit(conn, caller, code, row, after, reg, "boundary_adjustment")
    repo.insert_lineage(conn, [(c, c) for c in parcel_codes], "boundary_adjustment", reg)
    return _result(reg, "boundary_adjustment", when, written, modified=parcel_codes,
                   correction=correction, area_change_m2={c: round(v, 2) for c, v in change.items()},
                   total_area_change_m2=round(total_change, 2))


def register_cancellation(conn: Connection, caller: Caller, *, parcel_code: str,
                          effective_at: dt.datetime | None = None, certificate_no: str | None = None,
                          note: str | None = None) -> dict[str, Any]:
    """注销登记: the parcel ends (land lost, expropriated…); its history and code stay, never reused."""
    require_write(caller, PARCELS)
    when = _when(conn, effective_at)
    row = _live(conn, [parcel_code])[parcel_code]
    _check_effective([row], when)
    reg = repo.insert_registration(conn, kind="cancellation", codes=[parcel_code], effective_at=when,
                                   actor=caller.name, certificate_no=certificate_no, note=note, detail={})
    repo.close_version(conn, row, when)
    _audit(conn, caller, parcel_code, row, None, reg, "cancellation")
    return _result(reg, "cancellation", when, [], retired=[parcel_code])


# --- history ---------------------------------------------------------------------------------------

def public_parcel(caller: Caller, row: dict[str, Any], *, geometry: bool = False) -> dict[str, Any]:
    """A parcel version as a client may see it: personal data masked without the personal scope.

    A natural person's name is personal data too (organisations' names are public record).
    """
    out = {k: v for k, v in row.items() if k not in ("geometry", "wkb", "attachment_geom")}
    for key, value in out.items():
        if isinstance(value, dt.datetime):
            out[key] = value.isoformat()
        elif hasattr(value, "as_tuple"):  # Decimal
            out[key] = float(value)
    out = mask_properties(caller, PARCELS, out)  # the layer's policy: IDs, phones, a person's name
    if geometry and row.get("geometry") is not None:
        out["geometry"] = shapely.geometry.mapping(row["geometry"])
    return out


def version_state(row: dict[str, Any], now: dt.datetime) -> str:
    """Where a recorded version stands at ``now``: ``current`` (in force), ``scheduled`` (registered
    to take effect later), ``ended`` (its valid period is over) or ``superseded_record`` (a record the
    register replaced: what it said before a later registration was recorded)."""
    if row["recorded_to"] is not None:
        return "superseded_record"
    if row["valid_from"] > now:
        return "scheduled"
    if row["valid_to"] is not None and row["valid_to"] <= now:
        return "ended"
    return "current"


def parcel_timeline(conn: Connection, caller: Caller, parcel_code: str) -> dict[str, Any]:
    """Every version of a parcel (legal periods, and what was recorded when) and its registrations."""
    require_read(caller, PARCELS)
    codes.parse_parcel_code(parcel_code)
    versions = repo.versions_of(conn, parcel_code)
    if not versions:
        raise NotFound(f"parcel {parcel_code} was never registered")
    now = repo.now(conn)
    states = [version_state(v, now) for v in versions]
    return {
        "parcel_code": parcel_code,
        "as_at": now.isoformat(),
        "live": "current" in states,
        "scheduled": [{"version": v["version"], "valid_from": v["valid_from"].isoformat()}
                      for v, state in zip(versions, states, strict=True) if state == "scheduled"],
        "versions": [{**public_parcel(caller, v), "state": state} for v, state in zip(versions, states, strict=True)],
        "registrations": [{**{k: (v.isoformat() if isinstance(v, dt.datetime) else v) for k, v in r.items()},
                           "scheduled": r["effective_at"] > now}
                          for r in repo.registrations_of(conn, parcel_code)],
    }


def parcel_lineage(conn: Connection, caller: Caller, parcel_code: str, *, max_depth: int = 1000) -> dict[str, Any]:
    """Ancestors and descendants of a parcel through splits and merges, any depth."""
    require_read(caller, PARCELS)
    codes.parse_parcel_code(parcel_code)
    if not repo.ever_recorded(conn, parcel_code):
        raise NotFound(f"parcel {parcel_code} was never registered")
    ancestors = repo.lineage_edges(conn, parcel_code, "ancestors", max_depth)
    descendants = repo.lineage_edges(conn, parcel_code, "descendants", max_depth)
    return {"parcel_code": parcel_code,
            "ancestors": sorted({e["parent_code"] for e in ancestors}),
            "descendants": sorted({e["child_code"] for e in descendants}),
            "edges": ancestors + descendants}


def register_as_of(conn: Connection, caller: Caller, valid_at: dt.datetime, recorded_at: dt.datetime | None = None,
                   *, geometry: BaseGeometry | None = None, district: str | None = None,
                   limit: int = 10000) -> dict[str, Any]:
    """The register for an area or district: parcels valid at ``valid_at`` as recorded at ``recorded_at``."""
    require_read(caller, PARCELS)
    if geometry is None and district is None:
        raise InvalidParameter("give an area (GeoJSON polygon) or a district code")
    count, area = repo.count_as_of(conn, valid_at, recorded_at, geometry=geometry, district=district)
    rows = repo.as_of(conn, valid_at, recorded_at, geometry=geometry, district=district, limit=limit,
                      with_geometry=False)
    return {"valid_at": valid_at.isoformat(), "recorded_at": recorded_at.isoformat() if recorded_at else None,
            "count": count, "plane_area_m2": area, "truncated": count > len(rows),
            "parcels": [public_parcel(caller, r) for r in rows]}


def register_diff(conn: Connection, caller: Caller, since: dt.datetime, until: dt.datetime, *,
                  geometry: BaseGeometry | None = None, district: str | None = None) -> dict[str, Any]:
    """What changed in the register between two legal dates (as recorded now): created, changed, retired."""
    require_read(caller, PARCELS)
    if geometry is None and district is None:
        raise InvalidParameter("give an area (GeoJSON polygon) or a district code")
    if until < since:
        raise InvalidParameter("the second date must not be before the first")
    before = {r["parcel_code"]: r for r in repo.as_of(conn, since, None, geometry=geometry, district=district,
                                                       with_geometry=False)}
    after = {r["parcel_code"]: r for r in repo.as_of(conn, until, None, geometry=geometry, district=district,
                                                      with_geometry=False)}
    changed = sorted(c for c in before.keys() & after.keys() if before[c]["version"] != after[c]["version"])
    return {"since": since.isoformat(), "until": until.isoformat(),
            "created": sorted(after.keys() - before.keys()), "retired": sorted(before.keys() - after.keys()),
            "changed": changed, "unchanged": len(before.keys() & after.keys()) - len(changed)}


def parcels_in_area(conn: Connection, area: BaseGeometry, *, caller: Caller,
                    min_area_m2: float = 0.01) -> list[dict[str, Any]]:
    """Public for other families (pre-review, supervision): live parcels an area (storage CRS) takes
    land from, with ``area_inside`` m², right holders masked per the caller."""
    require_read(caller, PARCELS)
    rows = repo.live_parcels_in(conn, area, min_area_m2)
    if sees_personal_data(caller):
        return rows  # the selected columns are already JSON-safe (no times, no decimals)
    return [public_parcel(caller, r) for r in rows]


def parcels_as_of(conn: Connection, area: BaseGeometry, valid_at: dt.datetime, *,
                  caller: Caller, shapes: bool = False) -> list[dict[str, Any]]:
    """Public: parcels valid at a date inside an area, with the area inside (m², plane); with
    ``shapes`` each also carries its boundary as ``shape`` (shapely, storage CRS) for a drawing."""
    require_read(caller, PARCELS)
    rows = repo.as_of(conn, valid_at, None, geometry=area)
    out = []
    for row in rows:
        inside = row["geometry"].intersection(area).area
        item = public_parcel(caller, row)
        item["area_inside"] = inside
        if shapes:
            item["shape"] = row["geometry"]
        out.append(item)
    return out


def parcel_in_force(conn: Connection, parcel_code: str, *, caller: Caller) -> tuple[dict[str, Any], BaseGeometry]:
    """Public: a parcel's version in force now as the caller may see it, and its boundary (storage CRS).
    InvalidParameter for a malformed code, NotFound when no such parcel is in force."""
    require_read(caller, PARCELS)
    codes.parse_parcel_code(parcel_code)
    rows = repo.versions_in_force(conn, [parcel_code])
    if parcel_code not in rows:
        if repo.ever_recorded(conn, parcel_code):
            raise NotFound(f"parcel {parcel_code} is not in force now (it has been retired or is only scheduled): "
                           f"see GET /land/parcels/{parcel_code}/timeline")
        raise NotFound(f"no parcel {parcel_code}: it was never registered")
    row = rows[parcel_code]
    return public_parcel(caller, row), row["geometry"]


def parcel_codes_at(conn: Connection, point: BaseGeometry, *, caller: Caller, tolerance_m: float = 0.5) -> list[str]:
    """Public: codes of the parcels in force at a point (storage CRS), within ``tolerance_m``, nearest first."""
    require_read(caller, PARCELS)
    return repo.live_parcel_codes_at(conn, point, tolerance_m)


def search_parcels(conn: Connection, text: str, *, caller: Caller, limit: int = 20) -> list[dict[str, Any]]:
    """Public: parcels in force whose code starts with ``text`` or whose address (坐落) contains it.

    Holders are not searched (a natural person's name is personal data) and not returned."""
    require_read(caller, PARCELS)
    text = (text or "").strip()
    if len(text) < 2:
        raise InvalidParameter("give at least two characters of a parcel code or an address (坐落) to search for")
    if len(text) > 100:
        raise InvalidParameter("a search text is at most 100 characters")
    return [{**r, "plane_area": float(r["plane_area"]) if r["plane_area"] is not None else None}
            for r in repo.search_live_parcels(conn, text, limit)]


def parcel_geometry(conn: Connection, parcel_code: str, *, caller: Caller) -> BaseGeometry:
    """Public: the boundary of a parcel in force now (storage CRS)."""
    require_read(caller, PARCELS)
    codes.parse_parcel_code(parcel_code)
    rows = repo.versions_in_force(conn, [parcel_code])
    if parcel_code not in rows:
        raise NotFound(f"no live parcel {parcel_code}")
    return rows[parcel_code]["geometry"]


def parcel_outlines(conn: Connection, box: tuple[float, float, float, float], *, caller: Caller,
                    limit: int = 2000) -> list[dict[str, Any]]:
    """Public for printed maps: live parcels' codes and outlines (storage CRS) in a box; no holders."""
    require_read(caller, PARCELS)
    return repo.parcel_outlines(conn, box, limit)
