"""All SQL of the emergency family (SQLAlchemy Core). Geometry crosses this boundary as shapely
objects or coordinates in the storage CRS; lon/lat conversion is the service's business."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Any

import numpy as np
import shapely
import sqlalchemy as sa
from geoalchemy2.shape import from_shape
from shapely.geometry.base import BaseGeometry
from sqlalchemy.dialects.postgresql import aggregate_order_by
from sqlalchemy.engine import Connection

from gis.errors import Conflict, NotFound
from gis.schema import layer_versions, storage_srid
from layers.emergency.models import (
    assignments,
    incident_areas,
    incident_duplicates,
    incident_log,
    incident_status,
    incidents,
    population_cells,
    resource_status_history,
    resources,
    road_closures,
    roads,
    shelters,
    stock,
    stock_ledger,
    warehouses,
)


def _geom(geometry: BaseGeometry) -> Any:
    return from_shape(geometry, srid=storage_srid())


def _wkb_param(geometry: BaseGeometry) -> sa.ColumnElement:
    return sa.func.ST_GeomFromWKB(sa.literal(shapely.to_wkb(geometry), sa.LargeBinary), storage_srid())


def set_actor(conn: Connection, actor: str, note: str | None = None) -> None:
    """Name the actor (and a note) for the database's own history rows in this transaction."""
    conn.execute(sa.select(sa.func.set_config("govgis.actor", actor, True),
                           sa.func.set_config("govgis.status_note", note or "", True)))


def table_versions(conn: Connection, names: Sequence[str]) -> tuple[int, ...]:
    """Layer versions of tables (edits bump them): the key of every cache here."""
    rows = dict(conn.execute(sa.select(layer_versions.c.table_name, layer_versions.c.version)
                             .where(layer_versions.c.table_name.in_(list(names)))).all())
    return tuple(int(rows.get(n, 0)) for n in names)


def request_state(conn: Connection, names: Sequence[str], *, incident_id: int | None = None,
                  at: dt.datetime | None = None) -> dict[str, Any]:
    """What a routing request reads before it computes, in one round trip: per table its layer
    version and when it changed (``versions``: name → (version, changed_at); a version rolled back
    with its transaction and reused by a later one changes the time), the incident's position
    (``incident``: (x, y), None when there is no such incident; only when asked) and the closures in
    force at ``at`` (default now; as ``active_closures`` gives them)."""
    lv = layer_versions
    columns: list[sa.ColumnElement] = []
    for name in names:
        row = sa.select(lv.c.version, lv.c.changed_at).where(lv.c.table_name == name)
        columns += [row.with_only_columns(lv.c.version).scalar_subquery(),
                    row.with_only_columns(lv.c.changed_at).scalar_subquery()]
    if incident_id is not None:
        where = incidents.c.id == incident_id
        columns += [sa.select(sa.func.ST_X(incidents.c.geom)).where(where).scalar_subquery(),
                    sa.select(sa.func.ST_Y(incidents.c.geom)).where(where).scalar_subquery()]
    when = at if at is not None else sa.func.now()
    rc = road_closures
    closure = sa.func.json_build_object("id", rc.c.id, "reason", rc.c.reason, "edge_ids", rc.c.edge_ids,
                                        "wkb", sa.func.encode(sa.func.ST_AsBinary(rc.c.geom), "hex"))
    columns.append(sa.select(sa.func.json_agg(aggregate_order_by(closure, rc.c.id)))
                   .where(rc.c.starts_at <= when, sa.or_(rc.c.ends_at.is_(None), rc.c.ends_at > when))
                   .scalar_subquery())
    row = conn.execute(sa.select(*columns)).one()
    versions = {name: (int(row[2 * i] or 0), row[2 * i + 1]) for i, name in enumerate(names)}
    rest = row[2 * len(names):]
    incident = None
    if incident_id is not None:
        incident = None if rest[0] is None else (float(rest[0]), float(rest[1]))
        rest = rest[2:]
    closures = [{"id": c["id"], "reason": c["reason"], "edge_ids": c["edge_ids"],
                 "geometry": shapely.from_wkb(bytes.fromhex(c["wkb"]))} for c in rest[0] or []]
    return {"versions": versions, "incident": incident, "closures": closures}


def now(conn: Connection) -> dt.datetime:
    return conn.execute(sa.select(sa.func.now())).scalar_one()


# --- road graph ------------------------------------------------------------------------------------

def road_edges(conn: Connection) -> dict[str, np.ndarray]:
    """Every routable road: id, source, target, cost, reverse_cost and WKB geometry as arrays."""
    query = (sa.select(roads.c.id, roads.c.source, roads.c.target, roads.c.cost, roads.c.reverse_cost,
                       sa.func.ST_AsBinary(roads.c.geom))
             .where(roads.c.source.is_not(None), roads.c.target.is_not(None), roads.c.cost.is_not(None))
             .order_by(roads.c.id))
    rows = conn.execute(query).all()
    return {
        "id": np.array([r[0] for r in rows], dtype=np.int64),
        "source": np.array([r[1] for r in rows], dtype=np.int64),
        "target": np.array([r[2] for r in rows], dtype=np.int64),
        "cost": np.array([r[3] for r in rows], dtype=float),
        "reverse_cost": np.array([r[4] if r[4] is not None else -1.0 for r in rows], dtype=float),
        "geom": shapely.from_wkb(np.array([bytes(r[5]) for r in rows], dtype=object)),
    }


def active_closures(conn: Connection, at: dt.datetime | None) -> list[dict[str, Any]]:
    """Closures in force at ``at`` (default: now): id, reason, edge ids (or None) and the area."""
    when = at if at is not None else sa.func.now()
    query = (sa.select(road_closures.c.id, road_closures.c.reason, road_closures.c.edge_ids,
                       road_closures.c.starts_at, road_closures.c.ends_at,
                       sa.func.ST_AsBinary(road_closures.c.geom).label("wkb"))
             .where(road_closures.c.starts_at <= when,
                    sa.or_(road_closures.c.ends_at.is_(None), road_closures.c.ends_at > when))
             .order_by(road_closures.c.id))
    return [{**dict(r), "geometry": shapely.from_wkb(bytes(r["wkb"]))} for r in conn.execute(query).mappings()]


def closure_values(reason: str, starts_at: dt.datetime | None, ends_at: dt.datetime | None,
                   edge_ids: list[int] | None, incident_id: int | None, actor: str) -> dict[str, Any]:
    values: dict[str, Any] = {"reason": reason, "ends_at": ends_at, "edge_ids": edge_ids,
                              "incident_id": incident_id, "actor": actor}
    if starts_at is not None:
        values["starts_at"] = starts_at
    return values


def road_union(conn: Connection, edge_ids: Sequence[int], buffer_m: float) -> BaseGeometry | None:
    """The named roads buffered, as one polygon (the drawn area of an edge closure)."""
    wkb = conn.execute(sa.select(sa.func.ST_AsBinary(sa.func.ST_Multi(sa.func.ST_Buffer(
        sa.func.ST_Union(roads.c.geom), buffer_m)))).where(roads.c.id.in_(list(edge_ids)))).scalar()
    return shapely.from_wkb(bytes(wkb)) if wkb is not None else None


def existing_road_ids(conn: Connection, edge_ids: Sequence[int]) -> set[int]:
    return {int(r[0]) for r in conn.execute(sa.select(roads.c.id).where(roads.c.id.in_(list(edge_ids))))}


# --- resources ---------------------------------------------------------------------------------------

RESOURCE_FIELDS = ("id", "code", "name", "kind", "capability_type", "capability_level", "status", "capacity",
                   "agency", "duty_phone", "leader_phone", "beds_total", "beds_available", "version")


def _xy(column: Any, prefix: str = "") -> list[sa.ColumnElement]:
    return [sa.func.ST_X(column).label(prefix + "x"), sa.func.ST_Y(column).label(prefix + "y")]


def resources_where(conn: Connection, *, capability_type: str | None = None, kind: str | None = None,
                    status: Sequence[str] | None = None, min_level: int | None = None,
                    ids: Sequence[int] | None = None) -> list[dict[str, Any]]:
    """Resources with their position (x, y) and home (home_x, home_y), filtered."""
    query = sa.select(*[resources.c[n] for n in RESOURCE_FIELDS], *_xy(resources.c.geom),
                      *_xy(sa.func.coalesce(resources.c.home_geom, resources.c.geom), "home_"))
    if capability_type is not None:
        query = query.where(resources.c.capability_type == capability_type)
    if kind is not None:
        query = query.where(resources.c.kind == kind)
    if status is not None:
        query = query.where(resources.c.status.in_(list(status)))
    if min_level is not None:
        query = query.where(resources.c.capability_level >= min_level)
    if ids is not None:
        query = query.where(resources.c.id.in_(list(ids)))
    return [dict(r) for r in conn.execute(query.order_by(resources.c.id)).mappings()]


def unit_positions(conn: Connection, *, capability_type: str | None, kind: str | None,
                   status: Sequence[str], min_level: int | None) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """(ids, positions, capability types) of the resources a dispatch considers, as arrays."""
    query = sa.select(resources.c.id, sa.func.ST_X(resources.c.geom), sa.func.ST_Y(resources.c.geom),
                      resources.c.capability_type).where(resources.c.status.in_(list(status)))
    if capability_type is not None:
        query = query.where(resources.c.capability_type == capability_type)
    if kind is not None:
        query = query.where(resources.c.kind == kind)
    if min_level is not None:
        query = query.where(resources.c.capability_level >= min_level)
    rows = conn.execute(query.order_by(resources.c.id)).all()
    return (np.array([r[0] for r in rows], dtype=np.int64),
            np.array([(r[1], r[2]) for r in rows], dtype=float).reshape(-1, 2), [r[3] for r in rows])


def resource(conn: Connection, resource_id: int, *, lock: bool = False) -> dict[str, Any]:
    query = sa.select(*[resources.c[n] for n in RESOURCE_FIELDS], *_xy(resources.c.geom)).where(
        resources.c.id == resource_id)
    if lock:
        query = query.with_for_update(of=resources)
    row = conn.execute(query).mappings().first()
    if row is None:
        raise NotFound(f"no emergency resource {resource_id}: list them at /emergency/resources")
    return dict(row)


def set_resource_status(conn: Connection, resource_id: int, status: str, actor: str,
                        incident_id: int | None) -> None:
    """Change a resource's status and append the change to its history (ICS)."""
    conn.execute(resources.update().where(resources.c.id == resource_id)
                 .values(status=status, version=resources.c.version + 1, updated_at=sa.func.now()))
    conn.execute(resource_status_history.insert().values(resource_id=resource_id, status=status,
                                                         incident_id=incident_id, actor=actor))


def resource_history(conn: Connection, resource_id: int) -> list[dict[str, Any]]:
    query = (sa.select(resource_status_history).where(resource_status_history.c.resource_id == resource_id)
             .order_by(resource_status_history.c.since, resource_status_history.c.id))
    return [dict(r) for r in conn.execute(query).mappings()]


def move_resource(conn: Connection, resource_id: int, point: BaseGeometry) -> None:
    conn.execute(resources.update().where(resources.c.id == resource_id).values(geom=_geom(point)))


def return_resource_home(conn: Connection, resource_id: int) -> None:
    conn.execute(resources.update().where(resources.c.id == resource_id)
                 .values(geom=sa.func.coalesce(resources.c.home_geom, resources.c.geom)))


# --- incidents ---------------------------------------------------------------------------------------

INCIDENT_FIELDS = ("id", "code", "source_line", "incident_type", "type_code", "category", "level", "status",
                   "reported_at", "closed_at", "description", "reporter_phone", "merged_into", "version")


def insert_incident(conn: Connection, values: dict[str, Any], point: BaseGeometry) -> int:
    return int(conn.execute(incidents.insert().values({**values, "geom": _geom(point)})
                            .returning(incidents.c.id)).scalar_one())


def next_incident_code(conn: Connection, day: str) -> str:
    """SJ + local date + a 4-digit sequence of the day (SJ202611220001)."""
    prefix = f"SJ{day}"
    last = conn.execute(sa.select(sa.func.max(incidents.c.code)).where(incidents.c.code.like(prefix + "____")))\
        .scalar()
    number = int(last[-4:]) + 1 if last and last[-4:].isdigit() else 1
    return f"{prefix}{number:04d}"


def incident(conn: Connection, incident_id: int, *, lock: bool = False) -> dict[str, Any]:
    query = sa.select(*[incidents.c[n] for n in INCIDENT_FIELDS], *_xy(incidents.c.geom)).where(
        incidents.c.id == incident_id)
    if lock:
        query = query.with_for_update(of=incidents)
    row = conn.execute(query).mappings().first()
    if row is None:
        raise no_incident(incident_id)
    return dict(row)


def no_incident(incident_id: int) -> NotFound:
    return NotFound(f"no incident {incident_id}: list them at /emergency/incidents")


def incidents_where(conn: Connection, *, status: Sequence[str] | None = None, limit: int = 200
                    ) -> list[dict[str, Any]]:
    query = sa.select(*[incidents.c[n] for n in INCIDENT_FIELDS], *_xy(incidents.c.geom))
    if status:
        query = query.where(incidents.c.status.in_(list(status)))
    query = query.order_by(incidents.c.reported_at.desc(), incidents.c.id.desc()).limit(limit)
    return [dict(r) for r in conn.execute(query).mappings()]


def update_incident(conn: Connection, incident_id: int, values: dict[str, Any]) -> None:
    conn.execute(incidents.update().where(incidents.c.id == incident_id)
                 .values({**values, "version": incidents.c.version + 1, "updated_at": sa.func.now()}))


def status_history(conn: Connection, incident_id: int) -> list[dict[str, Any]]:
    query = (sa.select(incident_status.c.status, incident_status.c.at, incident_status.c.actor,
                       incident_status.c.note)
             .where(incident_status.c.incident_id == incident_id).order_by(incident_status.c.at,
                                                                            incident_status.c.id))
    return [dict(r) for r in conn.execute(query).mappings()]


def add_log(conn: Connection, incident_id: int, kind: str, text: str, actor: str,
            detail: dict[str, Any] | None = None) -> dict[str, Any]:
    row = conn.execute(incident_log.insert().values(incident_id=incident_id, kind=kind, text=text, actor=actor,
                                                    detail=detail).returning(incident_log)).mappings().one()
    return dict(row)


def log_of(conn: Connection, incident_id: int) -> list[dict[str, Any]]:
    query = (sa.select(incident_log).where(incident_log.c.incident_id == incident_id)
             .order_by(incident_log.c.at, incident_log.c.id))
    return [dict(r) for r in conn.execute(query).mappings()]


def duplicate_candidates(conn: Connection, incident_id: int, distance_m: float, minutes: float
                         ) -> list[dict[str, Any]]:
    """Open incidents of the same type (code, else name) near in space and time to ``incident_id``."""
    other = incidents.alias("other")
    me = incidents.alias("me")
    same_type = sa.or_(sa.and_(me.c.type_code.is_not(None), other.c.type_code == me.c.type_code),
                       sa.and_(me.c.type_code.is_(None), other.c.incident_type == me.c.incident_type))
    distance = sa.func.ST_Distance(me.c.geom, other.c.geom)
    minutes_apart = sa.func.abs(sa.extract("epoch", other.c.reported_at - me.c.reported_at)) / 60.0
    query = (sa.select(other.c.id, other.c.code, other.c.status, distance.label("distance_m"),
                       minutes_apart.label("minutes_apart"))
             .select_from(me.join(other, other.c.id != me.c.id))
             .where(me.c.id == incident_id, same_type, other.c.merged_into.is_(None),
                    other.c.status != "closed", sa.func.ST_DWithin(me.c.geom, other.c.geom, distance_m),
                    minutes_apart <= minutes)
             .order_by(distance))
    return [dict(r) for r in conn.execute(query).mappings()]


def flag_duplicate(conn: Connection, incident_id: int, candidate_id: int, distance_m: float, minutes: float) -> None:
    stmt = sa.dialects.postgresql.insert(incident_duplicates).values(
        incident_id=incident_id, candidate_id=candidate_id, distance_m=distance_m, minutes_apart=minutes)
    conn.execute(stmt.on_conflict_do_nothing())


def duplicates_of(conn: Connection, incident_id: int) -> list[dict[str, Any]]:
    query = (sa.select(incident_duplicates).where(sa.or_(incident_duplicates.c.incident_id == incident_id,
                                                         incident_duplicates.c.candidate_id == incident_id))
             .order_by(incident_duplicates.c.id))
    return [dict(r) for r in conn.execute(query).mappings()]


def resolve_duplicates(conn: Connection, a: int, b: int, state: str, actor: str) -> int:
    pair = sa.or_(sa.and_(incident_duplicates.c.incident_id == a, incident_duplicates.c.candidate_id == b),
                  sa.and_(incident_duplicates.c.incident_id == b, incident_duplicates.c.candidate_id == a))
    return conn.execute(incident_duplicates.update().where(pair, incident_duplicates.c.state == "flagged")
                        .values(state=state, resolved_at=sa.func.now(), actor=actor)).rowcount


def move_children(conn: Connection, from_id: int, to_id: int) -> dict[str, int]:
    """Re-point a merged duplicate's assignments and log to the incident it joins."""
    moved_assignments = conn.execute(assignments.update().where(assignments.c.incident_id == from_id)
                                     .values(incident_id=to_id)).rowcount
    moved_log = conn.execute(incident_log.update().where(incident_log.c.incident_id == from_id)
                             .values(incident_id=to_id)).rowcount
    return {"assignments": moved_assignments, "log_entries": moved_log}


# --- incident areas (versioned) --------------------------------------------------------------------

def current_area(conn: Connection, incident_id: int, kind: str, *, lock: bool = False) -> dict[str, Any] | None:
    query = sa.select(incident_areas.c.id, incident_areas.c.version, incident_areas.c.valid_from).where(
        incident_areas.c.incident_id == incident_id, incident_areas.c.kind == kind,
        incident_areas.c.valid_to.is_(None))
    if lock:
        query = query.with_for_update(of=incident_areas)
    row = conn.execute(query).mappings().first()
    return dict(row) if row else None


def close_area(conn: Connection, area_id: int, when: dt.datetime) -> None:
    conn.execute(incident_areas.update().where(incident_areas.c.id == area_id).values(valid_to=when))


def insert_area(conn: Connection, incident_id: int, kind: str, geometry: BaseGeometry, version: int,
                when: dt.datetime, actor: str, note: str | None) -> int:
    return int(conn.execute(incident_areas.insert().values(
        incident_id=incident_id, kind=kind, geom=_geom(geometry), version=version, valid_from=when, actor=actor,
        note=note).returning(incident_areas.c.id)).scalar_one())


def areas_as_of(conn: Connection, incident_id: int, at: dt.datetime | None) -> list[dict[str, Any]]:
    """The incident's areas valid at ``at`` (None: the current ones), or every version with ``at='all'``."""
    query = sa.select(incident_areas.c.id, incident_areas.c.kind, incident_areas.c.version,
                      incident_areas.c.valid_from, incident_areas.c.valid_to, incident_areas.c.actor,
                      incident_areas.c.note, sa.func.ST_AsBinary(incident_areas.c.geom).label("wkb")).where(
        incident_areas.c.incident_id == incident_id)
    if at is None:
        query = query.where(incident_areas.c.valid_to.is_(None))
    else:
        query = query.where(incident_areas.c.valid_from <= at,
                            sa.or_(incident_areas.c.valid_to.is_(None), incident_areas.c.valid_to > at))
    rows = conn.execute(query.order_by(incident_areas.c.kind, incident_areas.c.version)).mappings()
    return [{**{k: v for k, v in r.items() if k != "wkb"}, "geometry": shapely.from_wkb(bytes(r["wkb"]))}
            for r in rows]


def area_versions(conn: Connection, incident_id: int) -> list[dict[str, Any]]:
    query = sa.select(incident_areas.c.kind, incident_areas.c.version, incident_areas.c.valid_from,
                      incident_areas.c.valid_to, incident_areas.c.actor, incident_areas.c.note,
                      sa.func.ST_Area(incident_areas.c.geom).label("area_m2")).where(
        incident_areas.c.incident_id == incident_id).order_by(incident_areas.c.kind, incident_areas.c.version)
    return [dict(r) for r in conn.execute(query).mappings()]


def mirror_area(conn: Connection, incident_id: int, kind: str, geometry: BaseGeometry) -> None:
    """Keep the incident row's own area column (what the map and OGC show) equal to the current version."""
    column = "incident_area" if kind == "incident" else "impact_area"
    conn.execute(incidents.update().where(incidents.c.id == incident_id).values({column: _geom(geometry)}))


def incident_area_column(conn: Connection, incident_id: int, kind: str) -> BaseGeometry | None:
    column = incidents.c.incident_area if kind == "incident" else incidents.c.impact_area
    wkb = conn.execute(sa.select(sa.func.ST_AsBinary(column)).where(incidents.c.id == incident_id)).scalar()
    return shapely.from_wkb(bytes(wkb)) if wkb is not None else None


# --- assignments -----------------------------------------------------------------------------------

def insert_assignment(conn: Connection, values: dict[str, Any]) -> dict[str, Any]:
    return dict(conn.execute(assignments.insert().values(values).returning(assignments)).mappings().one())


def assignment(conn: Connection, assignment_id: int, *, lock: bool = False) -> dict[str, Any]:
    query = sa.select(assignments).where(assignments.c.id == assignment_id)
    if lock:
        query = query.with_for_update()
    row = conn.execute(query).mappings().first()
    if row is None:
        raise NotFound(f"no assignment {assignment_id}")
    return dict(row)


def update_assignment(conn: Connection, assignment_id: int, values: dict[str, Any]) -> dict[str, Any]:
    return dict(conn.execute(assignments.update().where(assignments.c.id == assignment_id).values(values)
                             .returning(assignments)).mappings().one())


def assignments_of(conn: Connection, incident_id: int) -> list[dict[str, Any]]:
    query = (sa.select(assignments, resources.c.code, resources.c.name, resources.c.kind,
                       resources.c.capability_type)
             .join(resources, resources.c.id == assignments.c.resource_id)
             .where(assignments.c.incident_id == incident_id).order_by(assignments.c.assigned_at, assignments.c.id))
    return [dict(r) for r in conn.execute(query).mappings()]


def open_assignment_of(conn: Connection, resource_id: int) -> dict[str, Any] | None:
    row = conn.execute(sa.select(assignments).where(assignments.c.resource_id == resource_id,
                                                    assignments.c.released_at.is_(None))).mappings().first()
    return dict(row) if row else None


# --- stock -------------------------------------------------------------------------------------------

def stock_line(conn: Connection, stock_id: int, *, lock: bool = False) -> dict[str, Any]:
    query = sa.select(stock).where(stock.c.id == stock_id)
    if lock:
        query = query.with_for_update()
    row = conn.execute(query).mappings().first()
    if row is None:
        raise NotFound(f"no stock line {stock_id}: see /emergency/warehouses/{{id}}/stock")
    return dict(row)


def warehouse(conn: Connection, warehouse_id: int) -> dict[str, Any]:
    row = conn.execute(sa.select(warehouses.c.id, warehouses.c.code, warehouses.c.name, warehouses.c.agency,
                                 warehouses.c.address, *_xy(warehouses.c.geom))
                       .where(warehouses.c.id == warehouse_id)).mappings().first()
    if row is None:
        raise NotFound(f"no warehouse {warehouse_id}")
    return dict(row)


def stock_of(conn: Connection, warehouse_id: int) -> list[dict[str, Any]]:
    return [dict(r) for r in conn.execute(sa.select(stock).where(stock.c.warehouse_id == warehouse_id)
                                          .order_by(stock.c.supply_code, stock.c.id)).mappings()]


def warehouses_holding(conn: Connection, supply_code: str, quantity: float) -> list[dict[str, Any]]:
    """Warehouses whose stock of a code (or any code under it: a class prefix) totals ``quantity``."""
    prefix = supply_code.rstrip("0") or supply_code
    held = sa.func.sum(stock.c.quantity).label("quantity")
    query = (sa.select(warehouses.c.id, warehouses.c.code, warehouses.c.name, warehouses.c.agency, held,
                       sa.func.array_agg(stock.c.id).label("stock_ids"), *_xy(warehouses.c.geom))
             .join(stock, stock.c.warehouse_id == warehouses.c.id)
             .where(stock.c.supply_code.like(prefix + "%"),
                    sa.or_(stock.c.expires_on.is_(None), stock.c.expires_on >= sa.func.current_date()))
             .group_by(warehouses.c.id).having(held >= quantity).order_by(warehouses.c.id))
    return [dict(r) for r in conn.execute(query).mappings()]


def post_ledger(conn: Connection, stock_id: int, kind: str, change: float, actor: str,
                incident_id: int | None, note: str | None) -> dict[str, Any]:
    """One ledger entry; the database moves the balance (and refuses a negative one)."""
    row = conn.execute(stock_ledger.insert().values(stock_id=stock_id, kind=kind, quantity_change=change,
                                                    balance_after=0, actor=actor, incident_id=incident_id,
                                                    note=note).returning(stock_ledger)).mappings().one()
    return dict(row)


def ledger_of(conn: Connection, stock_id: int) -> list[dict[str, Any]]:
    return [dict(r) for r in conn.execute(sa.select(stock_ledger).where(stock_ledger.c.stock_id == stock_id)
                                          .order_by(stock_ledger.c.id)).mappings()]


def ledger_sum(conn: Connection, stock_id: int) -> float:
    return float(conn.execute(sa.select(sa.func.coalesce(sa.func.sum(stock_ledger.c.quantity_change), 0))
                              .where(stock_ledger.c.stock_id == stock_id)).scalar_one())


def stock_warnings(conn: Connection, expiry_days: int) -> list[dict[str, Any]]:
    """Stock below its minimum, expired, or expiring within ``expiry_days``."""
    horizon = sa.func.current_date() + expiry_days
    query = (sa.select(stock.c.id, stock.c.warehouse_id, warehouses.c.name.label("warehouse"), stock.c.supply_code,
                       stock.c.name, stock.c.quantity, stock.c.min_quantity, stock.c.unit, stock.c.expires_on,
                       (stock.c.expires_on < sa.func.current_date()).label("expired"),
                       (stock.c.expires_on < horizon).label("expiring"),
                       (stock.c.quantity < stock.c.min_quantity).label("below_minimum"))
             .join(warehouses, warehouses.c.id == stock.c.warehouse_id)
             .where(sa.or_(stock.c.quantity < stock.c.min_quantity, stock.c.expires_on < horizon))
             .order_by(stock.c.expires_on.nulls_last(), stock.c.id))
    return [dict(r) for r in conn.execute(query).mappings()]


def set_min_quantity(conn: Connection, stock_id: int, minimum: float | None) -> None:
    conn.execute(stock.update().where(stock.c.id == stock_id).values(min_quantity=minimum))


# --- shelters, facilities, population ----------------------------------------------------------------

def shelters_where(conn: Connection, area: BaseGeometry | None = None) -> list[dict[str, Any]]:
    """Shelters (centroid x, y; capacity, occupancy), optionally only those an area touches."""
    centre = sa.func.ST_PointOnSurface(shelters.c.geom)
    query = sa.select(shelters.c.id, shelters.c.code, shelters.c.name, shelters.c.grade, shelters.c.shelter_class,
                      shelters.c.capacity_persons, shelters.c.occupancy, shelters.c.effective_area_m2, *_xy(centre))
    if area is not None:
        query = query.where(sa.func.ST_Intersects(shelters.c.geom, _wkb_param(area)))
    return [dict(r) for r in conn.execute(query.order_by(shelters.c.id)).mappings()]


def set_shelter_occupancy(conn: Connection, shelter_id: int, occupancy: int) -> dict[str, Any]:
    row = conn.execute(shelters.update().where(shelters.c.id == shelter_id)
                       .values(occupancy=occupancy, version=shelters.c.version + 1, updated_at=sa.func.now())
                       .returning(shelters.c.id, shelters.c.capacity_persons, shelters.c.occupancy)).mappings().first()
    if row is None:
        raise NotFound(f"no shelter {shelter_id}")
    if row["occupancy"] > row["capacity_persons"]:
        raise Conflict(f"shelter {shelter_id} holds {row['capacity_persons']} persons; {occupancy} do not fit")
    return dict(row)


def resources_in(conn: Connection, area: BaseGeometry, kinds: Sequence[str]) -> list[dict[str, Any]]:
    query = sa.select(*[resources.c[n] for n in RESOURCE_FIELDS], *_xy(resources.c.geom)).where(
        resources.c.kind.in_(list(kinds)), sa.func.ST_Intersects(resources.c.geom, _wkb_param(area)))
    return [dict(r) for r in conn.execute(query.order_by(resources.c.id)).mappings()]


def population_cells_in(conn: Connection, area: BaseGeometry | None) -> tuple[np.ndarray, np.ndarray]:
    """(cell polygons, population) of the grid cells an area touches (every cell without an area)."""
    query = sa.select(sa.func.ST_AsBinary(population_cells.c.geom), population_cells.c.population)
    if area is not None:
        query = query.where(sa.func.ST_Intersects(population_cells.c.geom, _wkb_param(area)))
    rows = conn.execute(query.order_by(population_cells.c.id)).all()
    return (shapely.from_wkb(np.array([bytes(r[0]) for r in rows], dtype=object)),
            np.array([r[1] for r in rows], dtype=float))


def replace_population_cells(conn: Connection, cells: list[dict[str, Any]]) -> int:
    conn.execute(population_cells.delete())
    if cells:
        conn.execute(population_cells.insert(), [{**c, "geom": _geom(c["geom"])} for c in cells])
    return len(cells)


def road_extent(conn: Connection) -> tuple[float, float, float, float] | None:
    box = conn.execute(sa.select(sa.func.ST_XMin(sa.func.ST_Extent(roads.c.geom)),
                                 sa.func.ST_YMin(sa.func.ST_Extent(roads.c.geom)),
                                 sa.func.ST_XMax(sa.func.ST_Extent(roads.c.geom)),
                                 sa.func.ST_YMax(sa.func.ST_Extent(roads.c.geom)))).one()
    return None if box[0] is None else tuple(float(v) for v in box)


def road_lines(conn: Connection, box: tuple[float, float, float, float], limit: int) -> list[dict[str, Any]]:
    """Names, classes and lines of the roads in a storage-CRS box, main roads first."""
    envelope = sa.func.ST_MakeEnvelope(*box, storage_srid())
    rank = sa.case({"arterial": 0, "secondary": 1}, value=roads.c.road_class, else_=2)
    query = (sa.select(roads.c.name, roads.c.road_class, sa.func.ST_AsBinary(roads.c.geom).label("wkb"))
             .where(roads.c.geom.op("&&")(envelope)).order_by(rank, roads.c.id).limit(limit))
    return [{"name": r.name, "road_class": r.road_class, "geometry": shapely.from_wkb(bytes(r.wkb))}
            for r in conn.execute(query)]


def nearest_road(conn: Connection, point: BaseGeometry, within_m: float) -> dict[str, Any] | None:
    """The named road nearest to a point (storage CRS) within ``within_m``, with its distance."""
    g = sa.func.ST_GeomFromWKB(sa.literal(shapely.to_wkb(point), sa.LargeBinary), storage_srid())
    distance = sa.func.ST_Distance(roads.c.geom, g)
    row = conn.execute(sa.select(roads.c.name, roads.c.road_class, distance.label("distance"))
                       .where(roads.c.name.is_not(None), roads.c.name != "", sa.func.ST_DWithin(roads.c.geom, g, within_m))
                       .order_by(roads.c.geom.op("<->")(g)).limit(1)).mappings().first()
    return dict(row) if row is not None else None
