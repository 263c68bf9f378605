"""Every use case of the emergency module: incidents and their workflow, resources and dispatch by road
travel time, supplies and the stock ledger, service areas and coverage, impact and shelters, and the
link to pipeline accidents. Routes and other families call these functions, never the repository.

Each function checks the caller's right first, works inside the caller's transaction (it never
commits), audits what it writes, and takes the settings as an argument. Geometry comes in validated
in the storage CRS and goes out as lon/lat GeoJSON; times go out as ISO 8601 in the city's time zone.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any
from zoneinfo import ZoneInfo

import numpy as np
import shapely
import shapely.geometry
from shapely.geometry import Point
from shapely.geometry.base import BaseGeometry
from sqlalchemy.engine import Connection

from data.reference import code_list
from gis.access import Caller, mask_properties, require_read, require_write
from gis.crs import transformer
from gis.errors import Conflict, InvalidGeometry, InvalidParameter, NotFound
from gis.settings import EmergencySettings, Settings
from gis.writes import audit
from layers.emergency import repository as repo
from layers.emergency import routing
from layers.emergency.graph import ROAD_TABLES, road_graph
from layers.emergency.layers import (
    CLOSURES,
    INCIDENT_AREAS,
    INCIDENTS,
    POPULATION,
    RESOURCES,
    ROADS,
    SHELTERS,
    WAREHOUSES,
)
from layers.emergency.models import AREA_KINDS, INCIDENT_LINES, INCIDENT_STATUSES

FIRE = "消防救援"
# the workflow: each status may move to the next ones (closing is allowed from every open status)
NEXT_STATUS = {
    "reported": ("dispatched", "closed"),
    "dispatched": ("on_scene", "closed"),
    "on_scene": ("under_control", "closed"),
    "under_control": ("closed",),
    "closed": (),
}
STATUS_ZH = {"reported": "已接报", "dispatched": "已调派", "on_scene": "已到场", "under_control": "已控制",
             "closed": "已结案"}


# --- small helpers ---------------------------------------------------------------------------------

def _actor(caller: Caller) -> str:
    return caller.name if not caller.department else f"{caller.name} ({caller.department})"


def local_time(value: dt.datetime | None, settings: Settings) -> str | None:
    """ISO 8601 in the city's time zone (what people read; the offset keeps it exact)."""
    if value is None:
        return None
    return value.astimezone(ZoneInfo(settings.service.time_zone)).isoformat(timespec="seconds")


def _plain(row: dict[str, Any], settings: Settings) -> dict[str, Any]:
    out = {}
    for key, value in row.items():
        if isinstance(value, dt.datetime):
            out[key] = local_time(value, settings)
        elif isinstance(value, dt.date):
            out[key] = value.isoformat()
        elif hasattr(value, "as_tuple"):  # Decimal
            out[key] = float(value)
        else:
            out[key] = value
    return out


def to_lonlat(geometry: BaseGeometry, settings: Settings) -> BaseGeometry:
    t = transformer(settings.spatial.storage_crs, "EPSG:4326")
    return shapely.transform(geometry, lambda xy: np.column_stack(t.transform(xy[:, 0], xy[:, 1])))


def geojson(geometry: BaseGeometry | None, settings: Settings, precision: float = 1e-7) -> dict[str, Any] | None:
    """A storage-CRS geometry as lon/lat GeoJSON (RFC 7946), to 1e-7° (~1 cm)."""
    if geometry is None or geometry.is_empty:
        return None
    snapped = shapely.set_precision(to_lonlat(geometry, settings), precision)
    if snapped.geom_type in ("Polygon", "MultiPolygon") and not snapped.is_empty:
        return _polygon_json(snapped)
    return shapely.geometry.mapping(snapped)


def _polygon_json(polygon: BaseGeometry) -> dict[str, Any]:
    """``shapely.geometry.mapping`` of a (Multi)Polygon, the same JSON built from its coordinate array
    in one go (mapping walks every vertex in Python: most of an isochrone's serialisation)."""
    kind, coords, offsets = shapely.to_ragged_array([polygon])
    points = coords.tolist()
    ring_offsets = offsets[0].tolist()
    rings = [points[a:b] for a, b in zip(ring_offsets[:-1], ring_offsets[1:], strict=True)]
    polygon_offsets = offsets[1].tolist()
    polygons = [rings[a:b] for a, b in zip(polygon_offsets[:-1], polygon_offsets[1:], strict=True)]
    if polygon.geom_type == "Polygon":
        return {"type": "Polygon", "coordinates": polygons[0]}
    return {"type": "MultiPolygon", "coordinates": polygons}


def _lonlat_xy(x: float, y: float, settings: Settings) -> list[float]:
    lon, lat = transformer(settings.spatial.storage_crs, "EPSG:4326").transform(x, y)
    return [round(float(lon), 7), round(float(lat), 7)]


def incident_types() -> dict[str, dict[str, str]]:
    """The incident type code list (data/codes/emergency_incident_types.csv) by code."""
    return {row["code"]: row for row in code_list("emergency_incident_types")}


def _type_of(type_code: str | None, incident_type: str | None) -> tuple[str, str | None, str | None]:
    """(name, code, category name) of an incident type given by code or by its Chinese name."""
    types = incident_types()
    if type_code is not None:
        row = types.get(type_code)
        if row is None or row["level"] != "2":
            known = ", ".join(f"{c} {r['name_zh']}" for c, r in types.items() if r["level"] == "2")
            raise InvalidParameter(f"unknown incident type code {type_code!r}; the code list has: {known}")
        return row["name_zh"], type_code, types[row["parent"]]["name_zh"]
    if not incident_type:
        raise InvalidParameter("give type_code (e.g. XF01 建筑火灾) or incident_type")
    for code, row in types.items():
        if row["level"] == "2" and row["name_zh"] == incident_type:
            return incident_type, code, types[row["parent"]]["name_zh"]
    return incident_type, None, None  # a type the list does not have yet: kept as told, uncoded


def turnout_for(capability_type: str, settings: EmergencySettings) -> float:
    """Seconds from alert to wheels rolling for a capability (NFPA 1710 defaults, settable)."""
    return float(settings.turnout_seconds.get(capability_type, settings.turnout_default_seconds))


# --- the road network, closures and masks ------------------------------------------------------------

def _graph(conn: Connection, key: tuple[int, ...] | None = None) -> routing.RoadGraph:
    graph = road_graph(conn, key)
    if graph is None:
        raise NotFound("the city has no routable road (emergency_roads with source, target and cost)")
    return graph


def request_mask(conn: Connection, graph: routing.RoadGraph, *, at: dt.datetime | None = None,
                 avoid: Sequence[BaseGeometry] = (), slow: Sequence[tuple[BaseGeometry, float]] = (),
                 closures: bool = True, active: list[dict[str, Any]] | None = None
                 ) -> tuple[routing.CostMask | None, list[dict[str, Any]]]:
    """The cost mask of one request: closures in force at ``at`` (edges, or the edges their area
    touches), areas to ``avoid`` (blocked) and areas to ``slow`` by a factor. Returns it with the
    closures applied (for the answer). ``active``: those closures when already read
    (``repo.request_state``)."""
    blocked: list[np.ndarray] = []
    applied = []
    if closures:
        for closure in (repo.active_closures(conn, at) if active is None else active):
            if closure["edge_ids"]:
                edges = np.array([graph.edge_index[e] for e in closure["edge_ids"] if e in graph.edge_index],
                                 dtype=np.int64)
            else:
                edges = graph.edges_intersecting(closure["geometry"])
            blocked.append(edges)
            applied.append({"id": closure["id"], "reason": closure["reason"], "edges": int(len(edges))})
    blocked.extend(graph.edges_intersecting(area) for area in avoid)
    slowed = [(graph.edges_intersecting(area), factor) for area, factor in slow]
    edges = np.concatenate(blocked) if blocked else np.zeros(0, np.int64)
    return graph.mask(np.unique(edges), slowed), applied


def add_closure(conn: Connection, *, caller: Caller, settings: Settings, reason: str,
                area: BaseGeometry | None = None, edge_ids: Sequence[int] | None = None,
                starts_at: dt.datetime | None = None, ends_at: dt.datetime | None = None,
                incident_id: int | None = None) -> dict[str, Any]:
    """Close roads from ``starts_at`` (default now) to ``ends_at`` (open-ended): the given edges, or
    every edge the area touches. Applied to the next request, no graph rebuild."""
    require_write(caller, CLOSURES)
    if (area is None) == (not edge_ids):
        raise InvalidParameter("give either an area (polygon) or edge_ids (road ids), not both")
    ids = None
    if edge_ids:
        ids = sorted({int(e) for e in edge_ids})
        missing = sorted(set(ids) - repo.existing_road_ids(conn, ids))
        if missing:
            raise NotFound(f"no road(s) {', '.join(map(str, missing))} in emergency_roads")
        area = repo.road_union(conn, ids, 3.0)
    assert area is not None
    if area.geom_type == "Polygon":
        area = shapely.MultiPolygon([area])
    if area.geom_type != "MultiPolygon":
        raise InvalidGeometry("a closure area is a Polygon or MultiPolygon")
    if incident_id is not None:
        repo.incident(conn, incident_id)
    from gis.writes import insert_feature

    row = insert_feature(conn, CLOSURES, caller, repo.closure_values(reason, starts_at, ends_at, ids, incident_id,
                                                                     _actor(caller)), area)
    graph = road_graph(conn)
    affected = (len(ids) if ids else len(graph.edges_intersecting(area))) if graph is not None else 0
    return {"id": row["id"], "reason": reason, "edge_ids": ids, "edges_closed": affected,
            "starts_at": local_time(row["starts_at"], settings), "ends_at": local_time(row["ends_at"], settings),
            "geometry": geojson(area, settings)}


def closures_in_force(conn: Connection, *, caller: Caller, settings: Settings,
                      at: dt.datetime | None = None) -> list[dict[str, Any]]:
    require_read(caller, CLOSURES)
    return [{"id": c["id"], "reason": c["reason"], "edge_ids": c["edge_ids"],
             "starts_at": local_time(c["starts_at"], settings), "ends_at": local_time(c["ends_at"], settings),
             "geometry": geojson(c["geometry"], settings)} for c in repo.active_closures(conn, at)]


# --- incidents ---------------------------------------------------------------------------------------

def _incident_out(row: dict[str, Any], caller: Caller, settings: Settings) -> dict[str, Any]:
    out = _plain(mask_properties(caller, INCIDENTS, {k: v for k, v in row.items() if k not in ("x", "y")}),
                 settings)
    out["status_zh"] = STATUS_ZH.get(row["status"])
    out["point"] = {"type": "Point", "coordinates": _lonlat_xy(row["x"], row["y"], settings)}
    return out


def report_incident(conn: Connection, *, caller: Caller, settings: Settings, point: Point, source_line: str,
                    type_code: str | None = None, incident_type: str | None = None, level: int = 4,
                    description: str | None = None, reporter_phone: str | None = None,
                    reported_at: dt.datetime | None = None) -> dict[str, Any]:
    """Take a call (接警): the incident is stored as reported, its first status timed, and incidents of
    the same type nearby in space and time are flagged as possible duplicates."""
    require_write(caller, INCIDENTS)
    if source_line not in INCIDENT_LINES:
        raise InvalidParameter(f"source_line is one of {', '.join(INCIDENT_LINES)} (municipal = 市政热线)")
    if not 1 <= int(level) <= 4:
        raise InvalidParameter("level is 1–4 (I 特别重大, II 重大, III 较大, IV 一般)")
    name, code, category = _type_of(type_code, incident_type)
    repo.set_actor(conn, _actor(caller))
    when = reported_at or repo.now(conn)
    local_day = when.astimezone(ZoneInfo(settings.service.time_zone)).strftime("%Y%m%d")
    values = {"code": repo.next_incident_code(conn, local_day), "source_line": source_line, "incident_type": name,
              "type_code": code, "category": category, "level": int(level), "description": description,
              "reporter_phone": reporter_phone, "reported_at": when}
    incident_id = repo.insert_incident(conn, values, point)
    row = repo.incident(conn, incident_id)
    audit(conn, caller, INCIDENTS.id, incident_id, "insert", None, {**values, "x": row["x"], "y": row["y"]})
    flagged = _flag_duplicates(conn, incident_id, settings.emergency)
    out = _incident_out(row, caller, settings)
    out["possible_duplicates"] = flagged
    return out


def _flag_duplicates(conn: Connection, incident_id: int, settings: EmergencySettings) -> list[dict[str, Any]]:
    found = repo.duplicate_candidates(conn, incident_id, settings.duplicate_distance_m, settings.duplicate_minutes)
    for c in found:
        repo.flag_duplicate(conn, incident_id, int(c["id"]), float(c["distance_m"]), float(c["minutes_apart"]))
    return [{"id": c["id"], "code": c["code"], "status": c["status"], "distance_m": round(float(c["distance_m"]), 1),
             "minutes_apart": round(float(c["minutes_apart"]), 1)} for c in found]


def list_incidents(conn: Connection, *, caller: Caller, settings: Settings,
                   status: Sequence[str] | None = None, limit: int = 200) -> list[dict[str, Any]]:
    require_read(caller, INCIDENTS)
    unknown = [s for s in status or () if s not in INCIDENT_STATUSES]
    if unknown:
        raise InvalidParameter(f"unknown status {', '.join(unknown)}; one of {', '.join(INCIDENT_STATUSES)}")
    return [_incident_out(r, caller, settings) for r in repo.incidents_where(conn, status=status, limit=limit)]


def incident_detail(conn: Connection, incident_id: int, *, caller: Caller, settings: Settings) -> dict[str, Any]:
    """An incident with its timed status history, event log, assignments, areas and duplicates."""
    require_read(caller, INCIDENTS)
    out = _incident_out(repo.incident(conn, incident_id), caller, settings)
    out["status_history"] = [_plain(r, settings) for r in repo.status_history(conn, incident_id)]
    out["log"] = [_plain(r, settings) for r in repo.log_of(conn, incident_id)]
    out["assignments"] = [_plain(r, settings) for r in repo.assignments_of(conn, incident_id)]
    out["areas"] = [{"kind": a["kind"], "version": a["version"], "valid_from": local_time(a["valid_from"], settings),
                     "geometry": geojson(a["geometry"], settings)} for a in repo.areas_as_of(conn, incident_id, None)]
    out["duplicates"] = [_plain(r, settings) for r in repo.duplicates_of(conn, incident_id)]
    return out


def change_incident_status(conn: Connection, incident_id: int, status: str, *, caller: Caller,
                           settings: Settings, note: str | None = None,
                           expected_version: int | None = None) -> dict[str, Any]:
    """Move an incident along reported → dispatched → on_scene → under_control → closed (timed)."""
    require_write(caller, INCIDENTS)
    if status not in INCIDENT_STATUSES:
        raise InvalidParameter(f"status is one of {', '.join(INCIDENT_STATUSES)}")
    before = repo.incident(conn, incident_id, lock=True)
    if expected_version is not None and int(before["version"]) != int(expected_version):
        raise Conflict(f"incident {incident_id} is at version {before['version']}, not {expected_version}: "
                       "reload it and retry")
    if status not in NEXT_STATUS[before["status"]]:
        allowed = ", ".join(NEXT_STATUS[before["status"]]) or "nothing (it is closed)"
        raise Conflict(f"incident {incident_id} is {before['status']}: it can move to {allowed}")
    repo.set_actor(conn, _actor(caller), note)
    repo.update_incident(conn, incident_id, {"status": status})
    repo.add_log(conn, incident_id, "status", f"{STATUS_ZH[before['status']]} → {STATUS_ZH[status]}"
                 + (f"：{note}" if note else ""), _actor(caller), {"from": before["status"], "to": status})
    after = repo.incident(conn, incident_id)
    audit(conn, caller, INCIDENTS.id, incident_id, "workflow", {"status": before["status"]},
          {"status": status}, {"note": note} if note else None)
    return incident_detail(conn, incident_id, caller=caller, settings=settings) | {"version": after["version"]}


def add_situation_report(conn: Connection, incident_id: int, text: str, *, caller: Caller, settings: Settings,
                         kind: str = "situation_report") -> dict[str, Any]:
    """Append to the incident's event log (续报 situation reports, notes)."""
    require_write(caller, INCIDENTS)
    if kind not in ("situation_report", "note"):
        raise InvalidParameter("kind is situation_report or note (the other log entries are written by govgis)")
    if not text.strip():
        raise InvalidParameter("a situation report needs its text")
    repo.incident(conn, incident_id)
    entry = repo.add_log(conn, incident_id, kind, text.strip(), _actor(caller))
    audit(conn, caller, INCIDENTS.id, incident_id, "workflow", None, {"log": entry["id"], "kind": kind})
    return _plain(entry, settings)


def set_incident_area(conn: Connection, incident_id: int, kind: str, area: BaseGeometry, *, caller: Caller,
                      settings: Settings, note: str | None = None) -> dict[str, Any]:
    """A new version of the incident polygon (事发范围) or impact polygon (影响范围); the old version
    stays queryable ("as of")."""
    require_write(caller, INCIDENT_AREAS)
    if kind not in AREA_KINDS:
        raise InvalidParameter("kind is incident or impact")
    if area.geom_type == "Polygon":
        area = shapely.MultiPolygon([area])
    if area.geom_type != "MultiPolygon":
        raise InvalidGeometry("an incident area is a Polygon or MultiPolygon")
    repo.incident(conn, incident_id, lock=True)
    when = repo.now(conn)
    current = repo.current_area(conn, incident_id, kind, lock=True)
    version = 1
    if current is not None:
        repo.close_area(conn, current["id"], when)
        version = current["version"] + 1
    else:
        legacy = repo.incident_area_column(conn, incident_id, kind)
        if legacy is not None:  # a polygon stored before versioning becomes version 1
            repo.insert_area(conn, incident_id, kind, legacy, 1, when, "import", "before versioning")
            repo.close_area(conn, repo.current_area(conn, incident_id, kind)["id"], when)
            version = 2
    area_id = repo.insert_area(conn, incident_id, kind, area, version, when, _actor(caller), note)
    repo.mirror_area(conn, incident_id, kind, area)
    audit(conn, caller, INCIDENT_AREAS.id, area_id, "insert", None,
          {"incident_id": incident_id, "kind": kind, "version": version, "area_m2": round(area.area, 1)})
    return {"id": area_id, "incident_id": incident_id, "kind": kind, "version": version,
            "valid_from": local_time(when, settings), "area_m2": round(area.area, 1),
            "geometry": geojson(area, settings)}


def incident_areas(conn: Connection, incident_id: int, *, caller: Caller, settings: Settings,
                   as_of: dt.datetime | None = None) -> dict[str, Any]:
    """The incident's areas as they stood at ``as_of`` (default now), and every version's period."""
    require_read(caller, INCIDENT_AREAS)
    repo.incident(conn, incident_id)
    return {"incident_id": incident_id, "as_of": local_time(as_of, settings),
            "areas": [{"kind": a["kind"], "version": a["version"], "valid_from": local_time(a["valid_from"], settings),
                       "valid_to": local_time(a["valid_to"], settings), "geometry": geojson(a["geometry"], settings)}
                      for a in repo.areas_as_of(conn, incident_id, as_of)],
            "versions": [_plain(v, settings) for v in repo.area_versions(conn, incident_id)]}


def merge_incidents(conn: Connection, duplicate_id: int, into_id: int, *, caller: Caller,
                    settings: Settings) -> dict[str, Any]:
    """Merge a duplicate report into the incident it repeats: its units and log move over, it closes
    with ``merged_into`` set, and the flag is resolved."""
    require_write(caller, INCIDENTS)
    if duplicate_id == into_id:
        raise InvalidParameter("an incident cannot be merged into itself")
    first, second = sorted((duplicate_id, into_id))
    rows = {first: repo.incident(conn, first, lock=True), second: repo.incident(conn, second, lock=True)}
    dup, target = rows[duplicate_id], rows[into_id]
    if dup["merged_into"] is not None:
        raise Conflict(f"incident {duplicate_id} was already merged into {dup['merged_into']}")
    if target["status"] == "closed":
        raise Conflict(f"incident {into_id} is closed: merge into an open incident")
    repo.set_actor(conn, _actor(caller), f"并入 {target['code']}")
    moved = repo.move_children(conn, duplicate_id, into_id)
    repo.update_incident(conn, duplicate_id, {"merged_into": into_id, "status": "closed"})
    repo.resolve_duplicates(conn, duplicate_id, into_id, "merged", _actor(caller))
    repo.add_log(conn, into_id, "merge", f"重复报警 {dup['code']} 并入本事件", _actor(caller),
                 {"merged": duplicate_id, **moved})
    audit(conn, caller, INCIDENTS.id, duplicate_id, "workflow", {"status": dup["status"]},
          {"status": "closed", "merged_into": into_id}, moved)
    return {"merged": duplicate_id, "into": into_id, **moved}


def dismiss_duplicate(conn: Connection, incident_id: int, other_id: int, *, caller: Caller) -> dict[str, Any]:
    """Two flagged incidents are different events: the flag is dismissed."""
    require_write(caller, INCIDENTS)
    changed = repo.resolve_duplicates(conn, incident_id, other_id, "dismissed", _actor(caller))
    if not changed:
        raise NotFound(f"incidents {incident_id} and {other_id} are not flagged as duplicates")
    audit(conn, caller, INCIDENTS.id, incident_id, "workflow", None, {"dismissed_duplicate": other_id})
    return {"incident_id": incident_id, "other_id": other_id, "state": "dismissed"}


# --- resources and dispatch --------------------------------------------------------------------------

def _resource_out(row: dict[str, Any], caller: Caller, settings: Settings) -> dict[str, Any]:
    keep = {k: v for k, v in row.items() if k not in ("x", "y", "home_x", "home_y")}
    out = _plain(mask_properties(caller, RESOURCES, keep), settings)
    out["point"] = {"type": "Point", "coordinates": _lonlat_xy(row["x"], row["y"], settings)}
    return out


def list_resources(conn: Connection, *, caller: Caller, settings: Settings, capability_type: str | None = None,
                   kind: str | None = None, status: Sequence[str] | None = None) -> list[dict[str, Any]]:
    require_read(caller, RESOURCES)
    rows = repo.resources_where(conn, capability_type=capability_type, kind=kind, status=status)
    out = []
    for row in rows:
        item = _resource_out(row, caller, settings)
        item["turnout_s"] = turnout_for(row["capability_type"], settings.emergency)
        out.append(item)
    return out


def resource_detail(conn: Connection, resource_id: int, *, caller: Caller, settings: Settings) -> dict[str, Any]:
    require_read(caller, RESOURCES)
    row = repo.resources_where(conn, ids=[resource_id])
    if not row:
        raise NotFound(f"no emergency resource {resource_id}")
    out = _resource_out(row[0], caller, settings)
    out["status_history"] = [_plain(r, settings) for r in repo.resource_history(conn, resource_id)]
    out["turnout_s"] = turnout_for(row[0]["capability_type"], settings.emergency)
    return out


def set_resource_status(conn: Connection, resource_id: int, status: str, *, caller: Caller,
                        settings: Settings) -> dict[str, Any]:
    """Put a unit out of service or back (assigning and releasing go through the incident)."""
    require_write(caller, RESOURCES)
    if status not in ("available", "out_of_service"):
        raise InvalidParameter("status is available or out_of_service here; a unit is assigned by "
                               "POST /emergency/incidents/{id}/assignments")
    before = repo.resource(conn, resource_id, lock=True)
    if before["status"] == "assigned":
        raise Conflict(f"resource {resource_id} is assigned to an incident: release it first")
    if before["status"] != status:
        repo.set_resource_status(conn, resource_id, status, _actor(caller), None)
        audit(conn, caller, RESOURCES.id, resource_id, "workflow", {"status": before["status"]}, {"status": status})
    return resource_detail(conn, resource_id, caller=caller, settings=settings)


def _straight_line(xy: np.ndarray, target: np.ndarray, settings: EmergencySettings) -> tuple[float, float]:
    metres = float(np.hypot(*(xy - target)))
    return metres, metres / (settings.straight_line_kmh / 3.6)


@dataclass(frozen=True)
class _Units:
    """The units a dispatch considers (one filter), as of one version of the resource layer: ids,
    positions, turnout, attachment to the roads and each unit's row (for the answer)."""

    ids: np.ndarray
    xy: np.ndarray
    turnout: np.ndarray
    attached: routing.Points
    rows: dict[int, dict[str, Any]]


_UNITS: dict[tuple, _Units] = {}
_ROUTING_TABLES = (*ROAD_TABLES, RESOURCES.table.name, POPULATION.table.name)
_MEMO: dict[tuple, Any] = {}


def _memo(conn: Connection, what: str, state: dict[str, Any], tables: Sequence[str], args: tuple,
          load: Callable[[], Any]) -> Any:
    """``load()``, remembered until one of ``tables`` changes (their versions as read with the request
    in ``state``); kept only when they did not change while it loaded. Callers never modify it."""
    key = (what, tuple(state["versions"][t] for t in tables), args)
    if key in _MEMO:
        return _MEMO[key]
    value = load()
    now = repo.request_state(conn, tables)["versions"]
    if all(now[t] == state["versions"][t] for t in tables):
        if len(_MEMO) > 64:
            _MEMO.clear()
        _MEMO[key] = value
    return value


def _request_state(conn: Connection, *, incident_id: int | None = None, at: dt.datetime | None = None
                   ) -> tuple[routing.RoadGraph, dict[str, Any]]:
    """The road graph and what the request reads (versions, incident, closures) in one round trip;
    NotFound for a missing incident first, then for a city without roads."""
    state = repo.request_state(conn, _ROUTING_TABLES, incident_id=incident_id, at=at)
    if incident_id is not None and state["incident"] is None:
        raise repo.no_incident(incident_id)
    return _graph(conn, tuple(state["versions"][t][0] for t in ROAD_TABLES)), state


def _candidate_units(conn: Connection, graph: routing.RoadGraph, settings: EmergencySettings,
                     version: tuple[int, Any], **filters: Any) -> _Units:
    """The units a dispatch considers, cached until the resource or road layer changes (an assignment
    or a return changes the resource layer). ``version``: the resource layer's (version, changed_at)
    read with the request. Kept only when the layer did not change while it was read."""
    key = (graph.version_key, version, tuple(sorted(filters.items())), tuple(sorted(settings.turnout_seconds.items())),
           settings.turnout_default_seconds)
    found = _UNITS.get(key)
    if found is None:
        rows = repo.resources_where(conn, capability_type=filters["capability_type"], kind=filters["kind"],
                                    status=filters["status"], min_level=filters["min_level"])
        ids = np.array([r["id"] for r in rows], dtype=np.int64)
        xy = np.array([(r["x"], r["y"]) for r in rows], dtype=float).reshape(-1, 2)
        turnout = np.array([turnout_for(r["capability_type"], settings) for r in rows])
        found = _Units(ids, xy, turnout, graph.attach(xy), {int(r["id"]): r for r in rows})
        if repo.request_state(conn, (RESOURCES.table.name,))["versions"][RESOURCES.table.name] == version:
            if len(_UNITS) > 64:
                _UNITS.clear()
            _UNITS[key] = found
    return found


def _lines(routes: list[np.ndarray], settings: Settings) -> list[dict[str, Any]]:
    """Storage-CRS coordinate arrays as lon/lat GeoJSON LineStrings, transformed in one call."""
    if not routes:
        return []
    t = transformer(settings.spatial.storage_crs, "EPSG:4326")
    coords = np.concatenate(routes)
    lon, lat = t.transform(coords[:, 0], coords[:, 1])
    lonlat = np.round(np.column_stack([lon, lat]), 7)
    bounds = np.cumsum([0] + [len(r) for r in routes])
    return [{"type": "LineString", "coordinates": lonlat[a:b].tolist()} for a, b in zip(bounds[:-1], bounds[1:],
                                                                                        strict=True)]


def dispatch_candidates(conn: Connection, incident_id: int, *, caller: Caller, settings: Settings,
                        capability_type: str | None = None, kind: str | None = None, n: int = 3,
                        min_level: int | None = None, at: dt.datetime | None = None,
                        avoid: Sequence[BaseGeometry] = (), with_routes: bool = True) -> dict[str, Any]:
    """The ``n`` available units (of a capability/kind) that reach the incident first: ETA = road travel
    time to the incident (one search on the reversed graph, closures and ``avoid`` areas applied) +
    the turnout time of their capability. Units off the network get a labelled straight-line ETA."""
    require_read(caller, INCIDENTS)
    require_read(caller, RESOURCES)
    if not 1 <= n <= 500:
        raise InvalidParameter("n is 1–500")
    graph, state = _request_state(conn, incident_id=incident_id, at=at)  # the one round trip when warm
    units = _candidate_units(conn, graph, settings.emergency, state["versions"][RESOURCES.table.name],
                             capability_type=capability_type, kind=kind, status=("available",), min_level=min_level)
    ids, xy, turnout = units.ids, units.xy, units.turnout
    mask, applied = request_mask(conn, graph, at=at, avoid=avoid, active=state["closures"])
    located = graph.reattach(units.attached, xy, mask)
    target = np.array(state["incident"])
    here = graph.attach(target[None, :], mask)
    on_network = located.snap_m <= settings.emergency.max_snap_m
    idx = np.flatnonzero(on_network)
    chosen, _ = routing.nearest_by_eta(graph, here, located.take(idx), turnout[idx], n, mask=mask,
                                       with_routes=with_routes)
    answers = [{"i": int(idx[c.index]), "method": "network", "travel_s": c.travel_s, "eta_s": c.eta_s,
                "distance_m": c.route.metres if c.route else None, "coords": c.route.coords if c.route else None}
               for c in chosen]
    for i in np.flatnonzero(~on_network):  # off the road network: a straight line, said so
        metres, seconds = _straight_line(xy[i], target, settings.emergency)
        answers.append({"i": int(i), "method": "straight_line", "travel_s": seconds, "eta_s": seconds + turnout[i],
                        "distance_m": metres, "coords": np.array([xy[i], target])})
    answers.sort(key=lambda a: a["eta_s"])
    answers = answers[:n]
    details = units.rows
    lines = _lines([a["coords"] for a in answers if a["coords"] is not None], settings)
    out = []
    for rank, a in enumerate(answers, start=1):
        i = a["i"]
        out.append({"rank": rank, "resource": _resource_out(details[int(ids[i])], caller, settings),
                    "method": a["method"],
                    "method_zh": "路网行驶时间" if a["method"] == "network" else "直线估计（不在路网上）",
                    "travel_s": round(a["travel_s"], 1), "turnout_s": float(turnout[i]),
                    "eta_s": round(float(a["eta_s"]), 1),
                    "distance_m": round(a["distance_m"], 1) if a["distance_m"] is not None else None,
                    "snap_m": round(float(located.snap_m[i]), 1),
                    "route": lines.pop(0) if a["coords"] is not None else None})
    return {"incident_id": incident_id, "incident_point": {"type": "Point",
                                                           "coordinates": _lonlat_xy(*target, settings)},
            "incident_snap_m": round(float(here.snap_m[0]), 1), "candidates_considered": int(len(ids)),
            "closures_applied": applied, "graph": {"edges": graph.n_edges, "vertices": graph.n_vertices},
            "units": out}


def assign_unit(conn: Connection, incident_id: int, resource_id: int, *, caller: Caller,
                settings: Settings) -> dict[str, Any]:
    """Assign a unit to an incident: its status becomes assigned (history), the ETA by road (or the
    labelled straight line) is recorded, the incident moves to dispatched, the log says so."""
    require_write(caller, RESOURCES)
    require_write(caller, INCIDENTS)
    incident = repo.incident(conn, incident_id, lock=True)
    if incident["status"] == "closed":
        raise Conflict(f"incident {incident_id} is closed")
    unit = repo.resource(conn, resource_id, lock=True)
    if unit["status"] != "available":
        raise Conflict(f"resource {resource_id} ({unit['name']}) is {unit['status']}, not available")
    graph = _graph(conn)
    mask, _ = request_mask(conn, graph)
    target = np.array([incident["x"], incident["y"]])
    turnout = turnout_for(unit["capability_type"], settings.emergency)
    located = graph.attach(np.array([[unit["x"], unit["y"]]]), mask)
    method, travel, metres = "straight_line", None, None
    if located.snap_m[0] <= settings.emergency.max_snap_m:
        here = graph.attach(target[None, :], mask)
        route = routing.route_between(graph, located, here, mask)
        if route is not None:
            method, travel, metres = "network", route.seconds, route.metres
    if travel is None:
        metres, travel = _straight_line(np.array([unit["x"], unit["y"]]), target, settings.emergency)
    now = repo.now(conn)
    row = repo.insert_assignment(conn, {"incident_id": incident_id, "resource_id": resource_id, "travel_s": travel,
                                        "turnout_s": turnout, "distance_m": metres, "method": method,
                                        "eta_at": now + dt.timedelta(seconds=travel + turnout),
                                        "actor": _actor(caller)})
    repo.set_resource_status(conn, resource_id, "assigned", _actor(caller), incident_id)
    repo.set_actor(conn, _actor(caller), f"调派 {unit['name']}")
    if incident["status"] == "reported":
        repo.update_incident(conn, incident_id, {"status": "dispatched"})
    repo.add_log(conn, incident_id, "dispatch", f"调派 {unit['name']}，预计 {round((travel + turnout) / 60, 1)} 分钟到达"
                 + ("（直线估计）" if method == "straight_line" else ""), _actor(caller),
                 {"assignment": row["id"], "resource_id": resource_id})
    audit(conn, caller, RESOURCES.id, resource_id, "workflow", {"status": unit["status"]},
          {"status": "assigned", "incident_id": incident_id}, {"assignment": row["id"], "eta_s": travel + turnout})
    return {**_plain(row, settings), "eta_s": round(travel + turnout, 1), "resource": unit["name"]}


def record_arrival(conn: Connection, assignment_id: int, *, caller: Caller, settings: Settings) -> dict[str, Any]:
    """The unit is on scene: arrival timed, the unit moved to the incident, the incident on_scene."""
    require_write(caller, RESOURCES)
    row = repo.assignment(conn, assignment_id, lock=True)
    if row["arrived_at"] is not None or row["released_at"] is not None:
        raise Conflict(f"assignment {assignment_id} already {'arrived' if row['arrived_at'] else 'released'}")
    incident = repo.incident(conn, row["incident_id"], lock=True)
    after = repo.update_assignment(conn, assignment_id, {"arrived_at": repo.now(conn)})
    repo.move_resource(conn, row["resource_id"], Point(incident["x"], incident["y"]))
    repo.set_actor(conn, _actor(caller), "首支力量到场")
    if incident["status"] == "dispatched":
        repo.update_incident(conn, incident["id"], {"status": "on_scene"})
    late = (after["arrived_at"] - row["eta_at"]).total_seconds() if row["eta_at"] else None
    repo.add_log(conn, incident["id"], "arrival", "力量到场" + (f"（较预计 {late / 60:+.1f} 分钟）" if late is not None else ""),
                 _actor(caller), {"assignment": assignment_id})
    audit(conn, caller, RESOURCES.id, row["resource_id"], "workflow", None, {"arrived_at": str(after["arrived_at"])},
          {"assignment": assignment_id})
    return {**_plain(after, settings), "minutes_vs_eta": round(late / 60, 1) if late is not None else None}


def release_unit(conn: Connection, assignment_id: int, *, caller: Caller, settings: Settings) -> dict[str, Any]:
    """The unit returns: released, back home, available again (live coverage sees it next request)."""
    require_write(caller, RESOURCES)
    row = repo.assignment(conn, assignment_id, lock=True)
    if row["released_at"] is not None:
        raise Conflict(f"assignment {assignment_id} was already released")
    repo.resource(conn, row["resource_id"], lock=True)
    after = repo.update_assignment(conn, assignment_id, {"released_at": repo.now(conn)})
    repo.set_resource_status(conn, row["resource_id"], "available", _actor(caller), row["incident_id"])
    repo.return_resource_home(conn, row["resource_id"])
    repo.add_log(conn, row["incident_id"], "release", "力量归队", _actor(caller), {"assignment": assignment_id})
    audit(conn, caller, RESOURCES.id, row["resource_id"], "workflow", {"status": "assigned"},
          {"status": "available"}, {"assignment": assignment_id})
    return _plain(after, settings)


# --- supplies and the stock ledger ---------------------------------------------------------------------

def nearest_supplies(conn: Connection, incident_id: int, supply_code: str, quantity: float, *, caller: Caller,
                     settings: Settings, n: int = 3) -> dict[str, Any]:
    """Warehouses holding ``quantity`` of a GB/T 38565 code (or class) nearest the incident by road."""
    require_read(caller, WAREHOUSES)
    require_read(caller, INCIDENTS)
    if not (len(supply_code) == 7 and supply_code.isdigit()):
        raise InvalidParameter("supply_code is a 7-digit GB/T 38565 code (a class code ends in zeros)")
    if quantity <= 0:
        raise InvalidParameter("quantity must be positive")
    incident = repo.incident(conn, incident_id)
    holders = repo.warehouses_holding(conn, supply_code, quantity)
    graph = _graph(conn)
    mask, _ = request_mask(conn, graph)
    target = np.array([incident["x"], incident["y"]])
    here = graph.attach(target[None, :], mask)
    xy = np.array([[w["x"], w["y"]] for w in holders], dtype=float).reshape(-1, 2)
    located = graph.attach(xy, mask)
    chosen, _ = routing.nearest_by_eta(graph, here, located, np.zeros(len(holders)), min(n, len(holders)),
                                       mask=mask)
    out = []
    for c in chosen:
        w = holders[c.index]
        out.append({"warehouse": {k: _plain(w, settings)[k] for k in ("id", "code", "name", "agency", "quantity")},
                    "stock_ids": w["stock_ids"], "travel_s": round(c.travel_s, 1),
                    "distance_m": round(c.route.metres, 1) if c.route else None,
                    "route": geojson(c.route.line(), settings) if c.route else None})
    return {"incident_id": incident_id, "supply_code": supply_code, "quantity": quantity, "warehouses": out}


def post_stock_entry(conn: Connection, stock_id: int, kind: str, quantity: float, *, caller: Caller,
                     settings: Settings, incident_id: int | None = None, note: str | None = None) -> dict[str, Any]:
    """One stock-ledger entry: a receipt (+), an issue to an incident (−), or an adjustment (±).

    The database posts it against the locked stock line and refuses a balance below zero, so
    concurrent issues cannot overdraw; the balance always equals the sum of the entries.
    """
    require_write(caller, WAREHOUSES)
    if kind not in ("receipt", "issue", "adjustment"):
        raise InvalidParameter("kind is receipt, issue or adjustment (the opening entry is posted by govgis)")
    if quantity == 0 or (kind != "adjustment" and quantity < 0):
        raise InvalidParameter("quantity is positive for receipts and issues; an adjustment is ± and not 0")
    if kind == "issue" and incident_id is None:
        raise InvalidParameter("an issue goes to an incident: give incident_id")
    if incident_id is not None:
        incident = repo.incident(conn, incident_id)
        if incident["status"] == "closed" and kind == "issue":
            raise Conflict(f"incident {incident_id} is closed")
    line = repo.stock_line(conn, stock_id, lock=True)  # queue behind other entries on this line
    change = -quantity if kind == "issue" else quantity
    if float(line["quantity"]) + change < 0:
        raise Conflict(f"stock {stock_id} ({line['name']}) holds {float(line['quantity']):g} {line['unit']}; "
                       f"cannot take {-change:g}: issue less or from another warehouse")
    entry = repo.post_ledger(conn, stock_id, kind, change, _actor(caller), incident_id, note)
    if incident_id is not None and kind == "issue":
        repo.add_log(conn, incident_id, "issue", f"调拨 {line['name']} {quantity:g} {line['unit']}", _actor(caller),
                     {"stock_id": stock_id, "ledger": entry["id"]})
    audit(conn, caller, WAREHOUSES.id, line["warehouse_id"], "workflow", {"stock_id": stock_id,
          "quantity": float(line["quantity"])}, {"stock_id": stock_id, "quantity": float(entry["balance_after"])},
          {"ledger": entry["id"], "kind": kind, "incident_id": incident_id})
    return _plain(entry, settings)


def stock_ledger(conn: Connection, stock_id: int, *, caller: Caller, settings: Settings) -> dict[str, Any]:
    require_read(caller, WAREHOUSES)
    line = repo.stock_line(conn, stock_id)
    entries = repo.ledger_of(conn, stock_id)
    return {"stock": _plain(line, settings), "entries": [_plain(e, settings) for e in entries],
            "sum_of_entries": repo.ledger_sum(conn, stock_id)}


def warehouse_stock(conn: Connection, warehouse_id: int, *, caller: Caller, settings: Settings) -> dict[str, Any]:
    require_read(caller, WAREHOUSES)
    wh = repo.warehouse(conn, warehouse_id)
    point = {"type": "Point", "coordinates": _lonlat_xy(wh.pop("x"), wh.pop("y"), settings)}
    return {"warehouse": {**wh, "point": point}, "stock": [_plain(s, settings) for s in repo.stock_of(conn, warehouse_id)]}


def stock_warnings(conn: Connection, *, caller: Caller, settings: Settings) -> list[dict[str, Any]]:
    """Stock below its minimum, expired or expiring within the warning window (setting)."""
    require_read(caller, WAREHOUSES)
    return [_plain(r, settings) for r in repo.stock_warnings(conn, settings.emergency.expiry_warning_days)]


def set_minimum_stock(conn: Connection, stock_id: int, minimum: float | None, *, caller: Caller) -> dict[str, Any]:
    require_write(caller, WAREHOUSES)
    if minimum is not None and minimum < 0:
        raise InvalidParameter("the minimum stock is 0 or more")
    line = repo.stock_line(conn, stock_id, lock=True)
    repo.set_min_quantity(conn, stock_id, minimum)
    audit(conn, caller, WAREHOUSES.id, line["warehouse_id"], "update", {"stock_id": stock_id,
          "min_quantity": line["min_quantity"]}, {"stock_id": stock_id, "min_quantity": minimum})
    return {"stock_id": stock_id, "min_quantity": minimum}


# --- routes, isochrones, coverage, matrix ------------------------------------------------------------

def route(conn: Connection, origin: Point, destination: Point, *, caller: Caller, settings: Settings,
          avoid: Sequence[BaseGeometry] = (), at: dt.datetime | None = None) -> dict[str, Any]:
    """The fastest road route between two points (closures in force and ``avoid`` areas applied)."""
    require_read(caller, ROADS)
    graph, state = _request_state(conn, at=at)
    mask, applied = request_mask(conn, graph, at=at, avoid=avoid, active=state["closures"])
    points = graph.attach(np.array([[origin.x, origin.y], [destination.x, destination.y]]), mask)
    found = routing.route_between(graph, points.take([0]), points.take([1]), mask)
    if found is None:
        raise NotFound("no road route between the two points under the closures in force")
    return {"seconds": round(found.seconds, 1), "metres": round(found.metres, 1),
            "snap_m": [round(float(s), 1) for s in points.snap_m], "closures_applied": applied,
            "route": geojson(found.line(), settings),
            "road_ids": [int(graph.edge_ids[e]) for e, _ in found.edges]}


def isochrones(conn: Connection, origin: Point, minutes: Sequence[float], *, caller: Caller, settings: Settings,
               at: dt.datetime | None = None, avoid: Sequence[BaseGeometry] = ()) -> dict[str, Any]:
    """Service areas (等时圈) from a point: one polygon per cutoff, partly reached roads included."""
    require_read(caller, ROADS)
    cutoffs = sorted({float(m) for m in minutes})
    if not cutoffs or len(cutoffs) > 6 or cutoffs[0] <= 0 or cutoffs[-1] > 120:
        raise InvalidParameter("minutes: 1 to 6 cutoffs, each > 0 and ≤ 120 (e.g. 5,10,15)")
    graph, state = _request_state(conn, at=at)
    mask, applied = request_mask(conn, graph, at=at, avoid=avoid, active=state["closures"])
    here = graph.attach(np.array([[origin.x, origin.y]]), mask)
    es = settings.emergency
    reached = routing.reach(graph, here, [m * 60 for m in cutoffs], mask=mask, cell_m=es.isochrone_cell_m,
                            buffer_m=es.isochrone_buffer_m, hole_max_m2=es.isochrone_hole_max_m2)
    return {"type": "FeatureCollection", "closures_applied": applied, "snap_m": round(float(here.snap_m[0]), 1),
            "features": [{"type": "Feature", "geometry": geojson(poly, settings, 1e-6),
                          "properties": {"minutes": m, "area_km2": round(poly.area / 1e6, 4),
                                         "vertices_reached": int((reached.vertex_s <= m * 60).sum())}}
                         for m, poly in zip(cutoffs, reached.polygons, strict=True)]}


def _fire_stations(conn: Connection, *, live: bool) -> list[dict[str, Any]]:
    status = ("available",) if live else None
    rows = repo.resources_where(conn, capability_type=FIRE, status=status)
    if live:
        return [r for r in rows if r["kind"] in ("station", "team", "vehicle")]
    # planning view: the stations (teams) at their home, whatever their units do now
    return [{**r, "x": r["home_x"], "y": r["home_y"]} for r in rows if r["kind"] in ("station", "team")]


def _study_area(conn: Connection, area: BaseGeometry | None, district: str | None) -> BaseGeometry:
    cells, _ = repo.population_cells_in(conn, None)
    if area is not None:
        return area
    if district is not None:
        raise InvalidParameter("districts come from the population grid's cells; give an area polygon "
                               "for a district until the grid carries district codes")
    if len(cells):
        return shapely.union_all(cells)
    box = repo.road_extent(conn)
    if box is None:
        raise NotFound("no roads and no population grid: nothing to cover")
    return shapely.box(*box)


def fire_coverage(conn: Connection, *, caller: Caller, settings: Settings, area: BaseGeometry | None = None,
                  district: str | None = None, live: bool = True, at: dt.datetime | None = None) -> dict[str, Any]:
    """Fire-station coverage against GB 51080 §4.1.3 (reach within 5 minutes of the dispatch order,
    turnout included): the covered area, the gaps, the area and estimated population not covered.
    ``live`` uses the fire units available now (assigning or releasing one changes the answer);
    otherwise every station at its home."""
    require_read(caller, RESOURCES)
    require_read(caller, POPULATION)
    es = settings.emergency
    graph, state = _request_state(conn, at=at)
    mask, applied = request_mask(conn, graph, at=at, active=state["closures"])
    stations = _memo(conn, "stations", state, (RESOURCES.table.name,), (live,),
                     lambda: _fire_stations(conn, live=live))
    if area is None and district is None:  # the city: its grid (or the roads' extent) until either changes
        def city() -> tuple[BaseGeometry, tuple[np.ndarray, ...]]:
            whole = _study_area(conn, None, None)
            return whole, _frozen(repo.population_cells_in(conn, whole))

        study, (cells, population) = _memo(conn, "city", state, (POPULATION.table.name, *ROAD_TABLES), (), city)
    else:
        study = _study_area(conn, area, district)
        cells, population = repo.population_cells_in(conn, study)
    cutoff = es.coverage_minutes * 60
    turnout = turnout_for(FIRE, es)
    covered = shapely.MultiPolygon()
    if stations:
        located = graph.attach(np.array([[s["x"], s["y"]] for s in stations]), mask)
        reached = routing.reach(graph, located, [cutoff], mask=mask, offsets_s=np.full(len(stations), turnout),
                                cell_m=es.isochrone_cell_m, buffer_m=es.isochrone_buffer_m,
                                hole_max_m2=es.isochrone_hole_max_m2)
        covered = reached.polygons[0]
    gaps = shapely.difference(study, covered)
    uncovered_pop = population_inside(cells, population, gaps)
    total_pop = population_inside(cells, population, study)
    gap_parts = [g for g in getattr(gaps, "geoms", [gaps]) if not g.is_empty and g.area >= 1.0]
    return {"rule": "GB 51080-2015 §4.1.3", "minutes": es.coverage_minutes, "turnout_s": turnout, "live": live,
            "stations": [{"id": s["id"], "code": s["code"], "name": s["name"], "kind": s["kind"],
                          "point": {"type": "Point", "coordinates": _lonlat_xy(s["x"], s["y"], settings)}}
                         for s in stations],
            "closures_applied": applied, "study_area_km2": round(study.area / 1e6, 4),
            "covered_area_km2": round(shapely.intersection(study, covered).area / 1e6, 4),
            "uncovered_area_km2": round(gaps.area / 1e6, 4),
            "population": round(total_pop), "population_uncovered": round(uncovered_pop),
            "covered": geojson(covered, settings, 1e-6),
            "gaps": {"type": "FeatureCollection", "features": [
                {"type": "Feature", "geometry": geojson(g, settings, 1e-6),
                 "properties": {"area_km2": round(g.area / 1e6, 4),
                                "population": round(population_inside(cells, population, g))}}
                for g in sorted(gap_parts, key=lambda g: -g.area)]}}


def _frozen(arrays: tuple[np.ndarray, ...]) -> tuple[np.ndarray, ...]:
    for a in arrays:
        a.flags.writeable = False
    return arrays


def population_inside(cells: np.ndarray, population: np.ndarray, area: BaseGeometry) -> float:
    """Estimated persons inside an area: each cell's population spread evenly over the cell."""
    if not len(cells) or area.is_empty:
        return 0.0
    share = shapely.area(shapely.intersection(cells, area)) / shapely.area(cells)
    return float((population * share).sum())


def travel_matrix(conn: Connection, origins: Sequence[Point], destinations: Sequence[Point], *, caller: Caller,
                  at: dt.datetime | None = None) -> dict[str, Any]:
    """Seconds by road from every origin to every destination (None: unreachable)."""
    require_read(caller, ROADS)
    if not origins or not destinations or len(origins) * len(destinations) > 4_000_000:
        raise InvalidParameter("give 1+ origins and destinations, at most 4,000,000 pairs")
    graph, state = _request_state(conn, at=at)
    mask, applied = request_mask(conn, graph, at=at, active=state["closures"])
    o = graph.attach(np.array([[p.x, p.y] for p in origins]), mask)
    d = graph.attach(np.array([[p.x, p.y] for p in destinations]), mask)
    matrix = routing.travel_time_matrix(graph, o, d, mask)
    return {"seconds": [[round(float(v), 1) if np.isfinite(v) else None for v in row] for row in matrix],
            "closures_applied": applied}

# --- impact, population, shelters, evacuation --------------------------------------------------------

HOSPITAL_LANDUSE, SCHOOL_LANDUSE = "0805", "0803"  # GB/T 21010: 医疗卫生用地, 教育用地


def _impact_area(conn: Connection, incident: dict[str, Any], area: BaseGeometry | None) -> BaseGeometry:
    if area is not None:
        return area
    found = repo.incident_area_column(conn, incident["id"], "impact")
    if found is None:
        raise InvalidParameter(f"incident {incident['id']} has no impact area: PUT one at "
                               f"/emergency/incidents/{incident['id']}/areas/impact or post a geometry")
    return found


def impact_report(conn: Connection, incident_id: int, *, caller: Caller, settings: Settings,
                  area: BaseGeometry | None = None) -> dict[str, Any]:
    """What an impact area (default: the incident's current one) holds: parcels (cadastre), estimated
    population, hospitals and schools, pipes by utility (pipeline), shelters. Sections the caller's
    key may not read say so instead of failing the report."""
    from gis.access import can_read
    from gis.registry import REGISTRY
    from layers.cadastre import service as cadastre
    from layers.pipeline import service as pipeline

    # other families are reached through their services; their layers by id in the registry
    PARCELS, PIPES = REGISTRY.get("cadastre_parcels"), REGISTRY.get("pipeline_pipes")  # noqa: N806

    require_read(caller, INCIDENTS)
    incident = repo.incident(conn, incident_id)
    area = _impact_area(conn, incident, area)
    out: dict[str, Any] = {"incident_id": incident_id, "area_km2": round(area.area / 1e6, 4),
                           "area": geojson(area, settings)}
    if can_read(caller, PARCELS):
        parcels = cadastre.parcels_in_area(conn, area, caller=caller)
        by_use: dict[str, dict[str, float]] = {}
        for p in parcels:
            use = by_use.setdefault(p["landuse_code"], {"parcels": 0, "area_m2": 0.0})
            use["parcels"] += 1
            use["area_m2"] += float(p["area_inside"])
        critical = [{"parcel_code": p["parcel_code"], "address": p.get("address"),
                     "kind": "hospital" if p["landuse_code"] == HOSPITAL_LANDUSE else "school",
                     "area_inside_m2": round(float(p["area_inside"]), 1)}
                    for p in parcels if p["landuse_code"] in (HOSPITAL_LANDUSE, SCHOOL_LANDUSE)]
        out["parcels"] = {"count": len(parcels), "by_landuse": {k: {"parcels": v["parcels"],
                                                                    "area_m2": round(v["area_m2"], 1)}
                                                                for k, v in sorted(by_use.items())},
                          "list": parcels[:200], "truncated": len(parcels) > 200}
        out["critical_facilities"] = critical
    else:
        out["parcels"] = out["critical_facilities"] = {"note": "your key may not read cadastre_parcels"}
    hospitals = repo.resources_in(conn, area, ("hospital",)) if can_read(caller, RESOURCES) else []
    out["hospitals"] = [{"id": h["id"], "name": h["name"], "beds_total": h["beds_total"],
                         "beds_available": h["beds_available"]} for h in hospitals]
    if can_read(caller, POPULATION):
        cells, population = repo.population_cells_in(conn, area)
        out["population"] = round(population_inside(cells, population, area))
    else:
        out["population"] = None
    if can_read(caller, PIPES):
        pipes = pipeline.pipes_in_area(conn, area, caller=caller)
        utilities: dict[str, dict[str, float]] = {}
        for p in pipes:
            u = utilities.setdefault(p["utility"], {"pipes": 0, "length_m": 0.0})
            u["pipes"] += 1
            u["length_m"] += p["length_inside_m"]
        out["pipes"] = {"count": len(pipes), "by_utility": {k: {"pipes": v["pipes"], "length_m": round(v["length_m"], 1)}
                                                            for k, v in sorted(utilities.items())},
                        "list": pipes[:200]}
    else:
        out["pipes"] = {"note": "your key may not read pipeline_pipes"}
    out["shelters_inside"] = [_plain({k: v for k, v in s.items() if k not in ("x", "y")}, settings)
                              for s in repo.shelters_where(conn, area)]
    return out


def _origins_in(conn: Connection, hazard: BaseGeometry) -> tuple[np.ndarray, np.ndarray]:
    """Origin zones of the affected population: the grid cells' parts inside the hazard (centre,
    persons)."""
    cells, population = repo.population_cells_in(conn, hazard)
    if not len(cells):
        return np.zeros((0, 2)), np.zeros(0, dtype=np.int64)
    parts = shapely.intersection(cells, hazard)
    share = shapely.area(parts) / shapely.area(cells)
    persons = np.rint(population * share).astype(np.int64)
    keep = persons > 0
    centres = shapely.get_coordinates(shapely.point_on_surface(parts[keep]))
    return centres, persons[keep]


def allocate_shelters(conn: Connection, incident_id: int, *, caller: Caller, settings: Settings,
                      hazard: BaseGeometry | None = None, max_minutes: float | None = None,
                      route_limit: int = 200) -> dict[str, Any]:
    """Send the population inside the hazard (default: the impact area) to shelters outside it, by road
    travel time within each shelter's free capacity, as an optimal min-cost flow; who has no place is
    counted. Evacuation routes avoid the hazard: roads inside it cost ``evacuation_hazard_factor``
    times more, so a route leaves the hazard by the shortest way and never crosses it to save time."""
    from layers.emergency.shelters import allocate

    require_read(caller, INCIDENTS)
    require_read(caller, SHELTERS)
    require_read(caller, POPULATION)
    incident = repo.incident(conn, incident_id)
    hazard = _impact_area(conn, incident, hazard)
    centres, persons = _origins_in(conn, hazard)
    candidates = [s for s in repo.shelters_where(conn)
                  if not hazard.intersects(Point(s["x"], s["y"])) and s["capacity_persons"] > s["occupancy"]]
    graph = _graph(conn)
    mask, applied = request_mask(conn, graph, slow=[(hazard, settings.emergency.evacuation_hazard_factor)])
    free = np.array([s["capacity_persons"] - s["occupancy"] for s in candidates], dtype=np.int64)
    seconds = np.zeros((len(persons), len(candidates)))
    if len(persons) and candidates:
        origins = graph.attach(centres, mask)
        shelters_at = graph.attach(np.array([[s["x"], s["y"]] for s in candidates]), mask)
        seconds = routing.travel_time_matrix(graph, origins, shelters_at, mask)
    result = allocate(persons, free, seconds, max_minutes * 60 if max_minutes else None)
    lines = []
    for k, (i, j, count) in enumerate(result.flows):
        entry: dict[str, Any] = {"origin": i, "shelter_id": candidates[j]["id"], "shelter": candidates[j]["name"],
                                 "persons": count, "minutes": round(float(seconds[i, j]) / 60, 1),
                                 "line": geojson(shapely.LineString([centres[i], (candidates[j]["x"],
                                                                                  candidates[j]["y"])]), settings)}
        if k < route_limit:
            found = routing.route_between(graph, origins.take([i]), shelters_at.take([j]), mask)
            if found is not None:
                entry["route"] = geojson(found.line(), settings)
                entry["metres_in_hazard"] = round(shapely.intersection(found.line(), hazard).length, 1)
        lines.append(entry)
    used = np.zeros(len(candidates), dtype=np.int64)
    for _, j, count in result.flows:
        used[j] += count
    return {"incident_id": incident_id, "affected_persons": int(persons.sum()),
            "placed_persons": int(persons.sum() - result.unplaced.sum()), "unplaced_persons": int(result.unplaced.sum()),
            "unplaced_zones": [{"origin": int(i), "persons": int(result.unplaced[i]),
                                "point": {"type": "Point", "coordinates": _lonlat_xy(*centres[i], settings)}}
                               for i in np.flatnonzero(result.unplaced)],
            "person_minutes": round(result.person_seconds / 60, 1), "hazard_factor":
                settings.emergency.evacuation_hazard_factor, "closures_applied": applied,
            "shelters": [{"id": s["id"], "name": s["name"], "free_places": int(free[j]), "assigned": int(used[j])}
                         for j, s in enumerate(candidates) if used[j]],
            "allocation": lines}


def estimate_population(conn: Connection, *, caller: Caller, settings: Settings) -> dict[str, Any]:
    """Rebuild the population grid: each cell's residents = Σ residential parcel area in the cell ×
    the density of its land use (setting, persons per hectare). Parcels come from the cadastre's public
    ``parcels_in_area``, asked per quadrant and only where parcels are (a quadtree), so empty land
    costs nothing."""
    from layers.cadastre import service as cadastre

    require_write(caller, POPULATION)
    es = settings.emergency
    box = repo.road_extent(conn)
    if box is None:
        raise NotFound("no road network to bound the city: load emergency_roads first")
    margin = 2 * es.population_cell_m
    x0, y0 = box[0] - margin, box[1] - margin
    side = max(box[2] - box[0], box[3] - box[1]) + 2 * margin
    size = es.population_cell_m
    while size < side:
        size *= 2
    density = {code: per_ha / 10_000.0 for code, per_ha in es.population_per_hectare.items()}
    cells: list[dict[str, Any]] = []
    stack = [(x0, y0, size)]
    queries = 0
    while stack:
        cx, cy, s = stack.pop()
        square = shapely.box(cx, cy, cx + s, cy + s)
        parcels = cadastre.parcels_in_area(conn, square, caller=caller)
        queries += 1
        if not parcels:
            continue
        if s > es.population_cell_m:
            half = s / 2
            stack.extend([(cx, cy, half), (cx + half, cy, half), (cx, cy + half, half), (cx + half, cy + half, half)])
            continue
        residential = sum(float(p["area_inside"]) for p in parcels if p["landuse_code"] in density)
        persons = sum(float(p["area_inside"]) * density[p["landuse_code"]] for p in parcels
                      if p["landuse_code"] in density)
        cells.append({"geom": square, "cell_m": s, "residential_area_m2": round(residential, 2),
                      "population": round(persons, 2),
                      "method": "宗地居住用地面积×人口密度 " + ", ".join(f"{k}:{v:g}/ha"
                                                                for k, v in sorted(es.population_per_hectare.items()))})
    written = repo.replace_population_cells(conn, cells)
    total = float(sum(c["population"] for c in cells))
    audit(conn, caller, POPULATION.id, None, "import", None, None,
          {"cells": written, "population": round(total), "densities": es.population_per_hectare,
           "parcel_queries": queries})
    return {"cells": written, "population": round(total), "cell_m": es.population_cell_m,
            "densities_per_ha": es.population_per_hectare}


def backfill_incident_types(conn: Connection, *, caller: Caller) -> int:
    """Give incidents recorded by name only (imports, the demo city) their type code and category."""
    require_write(caller, INCIDENTS)
    changed = 0
    for row in repo.incidents_where(conn, limit=100_000):
        if row["type_code"] is None:
            _, code, category = _type_of(None, row["incident_type"])
            if code is not None:
                repo.update_incident(conn, row["id"], {"type_code": code, "category": category})
                changed += 1
    if changed:
        audit(conn, caller, INCIDENTS.id, None, "update", None, None, {"type_codes_backfilled": changed})
    return changed


# --- the link to pipeline accidents --------------------------------------------------------------------

REPAIR_CREWS = {"water": ("供水抢修", "SZ01"), "gas": ("燃气抢修", "SZ02")}


def incident_from_burst(conn: Connection, *, caller: Caller, settings: Settings, isolation_id: int | None = None,
                        network_id: int | None = None, pipe_id: int | None = None, point: Point | None = None,
                        level: int = 3, description: str | None = None) -> dict[str, Any]:
    """Open a 市政 incident from a burst isolation (stored, or run now through the pipeline service):
    the segment becomes its impact area, the valves to close are attached to the log in order, and the
    nearest available repair crew gets its route to the valves (nearest first, then valve to valve)."""
    from layers.pipeline import service as pipeline

    require_write(caller, INCIDENTS)
    if isolation_id is not None:
        record = pipeline.isolation_record(conn, isolation_id, caller=caller)
        network_id, pipe_id = record["network_id"], record["pipe_id"]
        iso = pipeline.isolate_burst(conn, network_id, caller=caller, settings=settings, pipe_id=pipe_id,
                                     failed_valves=record["failed_valves"], store=False)
        iso["id"] = isolation_id
    else:
        if network_id is None:
            raise InvalidParameter("give isolation_id, or network_id with pipe_id or the burst point (lon, lat)")
        lonlat = to_lonlat(point, settings) if point is not None else None
        iso = pipeline.isolate_burst(conn, network_id, caller=caller, settings=settings, pipe_id=pipe_id,
                                     point=lonlat)
    outline = iso["segment"].get("outline")
    valves = iso["valves_to_close"]
    storage = transformer("EPSG:4326", settings.spatial.storage_crs)
    if point is None:
        if outline is not None:
            segment = shapely.geometry.shape(outline)
            point = Point(storage.transform(*segment.representative_point().coords[0]))
        elif valves:
            point = Point(storage.transform(valves[0]["lon"], valves[0]["lat"]))
        else:
            raise InvalidParameter("the isolation has neither a segment nor valves to place the incident at")
    crew_type, type_code = REPAIR_CREWS.get(iso["utility"], ("工程抢险", "SZ01"))
    text = description or f"{iso['network']} {iso['burst']['pipe_code']} 爆管：关阀 {len(valves)} 个"
    made = report_incident(conn, caller=caller, settings=settings, point=point, source_line="municipal",
                           type_code=type_code, level=level, description=text)
    if outline is not None:
        segment = shapely.transform(shapely.geometry.shape(outline),
                                    lambda xy: np.column_stack(storage.transform(xy[:, 0], xy[:, 1])))
        set_incident_area(conn, made["id"], "impact", segment, caller=caller, settings=settings,
                          note=f"隔离段 isolation {iso.get('id')}")
    repo.add_log(conn, made["id"], "pipeline", "关阀顺序：" + "、".join(str(v["code"]) for v in valves),
                 _actor(caller), {"isolation_id": iso.get("id"), "network_id": network_id,
                                  "valves_to_close": [v["id"] for v in valves],
                                  "customers_total": iso["customers"]["total"]})
    crew = _crew_route(conn, made["id"], crew_type, valves, settings, storage)
    return {"incident": made, "isolation_id": iso.get("id"), "network_id": network_id, "utility": iso["utility"],
            "valves_to_close": [{k: v.get(k) for k in ("id", "code", "diameter_mm", "lon", "lat", "distance_m")}
                                for v in valves],
            "customers_cut_off": iso["customers"]["total"], "crew": crew}


def _crew_route(conn: Connection, incident_id: int, crew_type: str, valves: list[dict[str, Any]],
                settings: Settings, storage: Any) -> dict[str, Any] | None:
    """The nearest available crew of a type and its road route through the valves (greedy nearest
    next valve: crews close the nearest first)."""
    crews = repo.resources_where(conn, capability_type=crew_type, status=("available",))
    if not crews or not valves:
        return None
    graph = _graph(conn)
    mask, _ = request_mask(conn, graph)
    valve_xy = np.array([storage.transform(v["lon"], v["lat"]) for v in valves])
    stops = graph.attach(valve_xy, mask)
    crew_points = graph.attach(np.array([[c["x"], c["y"]] for c in crews]), mask)
    times = routing.travel_time_matrix(graph, crew_points, stops.take([0]), mask)[:, 0]
    best = int(np.argmin(times))
    if not np.isfinite(times[best]):
        return None
    legs, here, seconds, metres = [], crew_points.take([best]), 0.0, 0.0
    remaining = list(range(len(valves)))
    while remaining:
        reach_next = routing.travel_time_matrix(graph, here, stops.take(remaining), mask)[0]
        k = int(np.argmin(reach_next))
        nxt = remaining.pop(k)
        leg = routing.route_between(graph, here, stops.take([nxt]), mask)
        if leg is None:
            continue
        seconds += leg.seconds
        metres += leg.metres
        legs.append({"valve_id": valves[nxt]["id"], "valve_code": valves[nxt]["code"],
                     "arrive_after_s": round(seconds, 1), "route": geojson(leg.line(), settings)})
        here = stops.take([nxt])
    turnout = turnout_for(crews[best]["capability_type"], settings.emergency)
    return {"resource_id": crews[best]["id"], "name": crews[best]["name"], "turnout_s": turnout,
            "first_valve_eta_s": round(float(times[best]) + turnout, 1), "total_s": round(seconds + turnout, 1),
            "metres": round(metres, 1), "legs": legs}


def pipeline_near_incident(conn: Connection, incident_id: int, *, caller: Caller, settings: Settings,
                           distance_m: float = 100.0, isolate: bool = False,
                           network_id: int | None = None) -> dict[str, Any]:
    """Pipes within ``distance_m`` of an incident (pipeline.pipes_in_area) and, with ``isolate``, the
    valves to close for a burst on the nearest water main (pipeline.isolate_burst, not stored)."""
    from layers.pipeline import service as pipeline

    require_read(caller, INCIDENTS)
    incident = repo.incident(conn, incident_id)
    here = Point(incident["x"], incident["y"])
    pipes = pipeline.pipes_in_area(conn, here.buffer(distance_m, quad_segs=16), caller=caller)
    out: dict[str, Any] = {"incident_id": incident_id, "distance_m": distance_m, "pipes": pipes}
    if isolate:
        lonlat = to_lonlat(here, settings)
        # no network named: the nearest water main's (the pipeline service snaps by utility)
        iso = pipeline.isolate_burst(conn, network_id, caller=caller, settings=settings, point=lonlat,
                                     utility=None if network_id is not None else "water", store=False)
        network_id = iso.get("network_id", network_id)
        out["isolation"] = {"network_id": network_id, "burst": iso["burst"], "valves_to_close": iso["valves_to_close"],
                            "customers_cut_off": iso["customers"]["total"], "segment": iso["segment"].get("outline")}
    return out


# --- roads for other families' documents -----------------------------------------------------------

def road_lines(conn: Connection, box: tuple[float, float, float, float], *, caller: Caller,
               limit: int = 500) -> list[dict[str, Any]]:
    """Public for printed maps: road names, classes and lines (storage CRS) in a box."""
    require_read(caller, ROADS)
    return repo.road_lines(conn, box, limit)


def nearest_road(conn: Connection, point: BaseGeometry, *, caller: Caller,
                 within_m: float = 300.0) -> dict[str, Any] | None:
    """Public: the named road nearest to a point (storage CRS), for the street address of a place —
    ``{"name", "road_class", "distance"}``, None when no named road lies within ``within_m``."""
    require_read(caller, ROADS)
    return repo.nearest_road(conn, point, within_m)
