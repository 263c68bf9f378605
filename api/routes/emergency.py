"""Emergency command endpoints under /emergency: incidents and their workflow, dispatch by road travel
time, assignments, supplies and the stock ledger, closures, routes, isochrones, coverage, the travel
matrix, impact and shelters, and incidents from pipeline bursts.

Thin: parse and validate client geometry, call layers.emergency.service, return JSON (lon/lat GeoJSON,
local ISO times). Plain ``def`` routes: the work runs in the thread pool, never on the event loop.
The layers themselves (resources, incidents, shelters, closures …) are OGC collections of the
generic API.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import orjson
from fastapi import APIRouter, Query
from fastapi.responses import Response
from shapely.geometry import Point
from shapely.geometry.base import BaseGeometry

from api.common import aware
from api.deps import AppSettings, CurrentCaller, DbRead, DbWrite
from gis.errors import InvalidParameter
from gis.geometry import parse_geojson, to_storage
from gis.settings import Settings
from layers.emergency import service
from layers.emergency.schemas import (
    AreaChange,
    Assign,
    Closure,
    CoverageRequest,
    FromIsolation,
    ImpactRequest,
    IncidentIntake,
    IsochroneRequest,
    LedgerEntry,
    LogEntry,
    MatrixRequest,
    Merge,
    MinimumStock,
    ResourceStatus,
    RouteRequest,
    ShelterAllocation,
    StatusChange,
)

router = APIRouter(prefix="/emergency", tags=["emergency"])


def _json(content: Any, status: int = 200) -> Response:
    return Response(orjson.dumps(content, option=orjson.OPT_NON_STR_KEYS), status_code=status,
                    media_type="application/json")


def _point(settings: Settings, lon: float, lat: float, crs: str = "OGC:CRS84") -> Point:
    return to_storage(Point(lon, lat), crs, storage_crs=settings.spatial.storage_crs,
                      city_bounds=settings.spatial.city_bounds, expected="Point")


def _area(settings: Settings, geometry: dict[str, Any], crs: str = "OGC:CRS84") -> BaseGeometry:
    geom = parse_geojson(geometry, max_vertices=settings.service.max_query_vertices)
    if geom.geom_type not in ("Polygon", "MultiPolygon"):
        raise InvalidParameter(f"an area is a GeoJSON Polygon or MultiPolygon, not {geom.geom_type}")
    return to_storage(geom, crs, storage_crs=settings.spatial.storage_crs, city_bounds=settings.spatial.city_bounds,
                      expected="Geometry")


def _local(settings: Settings, value: dt.datetime | None) -> dt.datetime | None:
    """A time without an offset is read in the city's time zone (the rule of every module route)."""
    return aware(value, settings)


def _intake_point(settings: Settings, body: IncidentIntake) -> Point:
    if body.point is not None:
        geom = parse_geojson(body.point)
        if geom.geom_type != "Point":
            raise InvalidParameter("point must be a GeoJSON Point")
        return to_storage(geom, body.crs, storage_crs=settings.spatial.storage_crs,
                          city_bounds=settings.spatial.city_bounds, expected="Point")
    if body.lon is None or body.lat is None:
        raise InvalidParameter("give the incident's place as point (GeoJSON) or lon and lat")
    return _point(settings, body.lon, body.lat, body.crs)


# --- incidents -----------------------------------------------------------------------------------------

@router.post("/incidents", summary="Take a call (接警): a new incident, with possible duplicates flagged")
def report_incident(body: IncidentIntake, conn: DbWrite, caller: CurrentCaller, settings: AppSettings) -> Response:
    return _json(service.report_incident(
        conn, caller=caller, settings=settings, point=_intake_point(settings, body), source_line=body.source_line,
        type_code=body.type_code, incident_type=body.incident_type, level=body.level, description=body.description,
        reporter_phone=body.reporter_phone, reported_at=_local(settings, body.reported_at)), 201)


@router.get("/incidents", summary="Incidents, newest first (filter by status, comma-separated)")
def incidents(conn: DbRead, caller: CurrentCaller, settings: AppSettings, status: str | None = None,
              limit: int = Query(200, ge=1, le=5000)) -> Response:
    statuses = [s for s in (status or "").split(",") if s]
    return _json(service.list_incidents(conn, caller=caller, settings=settings, status=statuses, limit=limit))


@router.get("/incident-types", summary="The incident type code list (公安/交通/市政/卫生/生产安全/消防/自然灾害)")
def incident_types() -> Response:
    return _json(list(service.incident_types().values()))


@router.get("/incidents/{incident_id}", summary="An incident with its timed status history, log and assignments")
def incident(incident_id: int, conn: DbRead, caller: CurrentCaller, settings: AppSettings) -> Response:
    return _json(service.incident_detail(conn, incident_id, caller=caller, settings=settings))


@router.post("/incidents/{incident_id}/status",
             summary="Move an incident: reported → dispatched → on_scene → under_control → closed")
def incident_status(incident_id: int, body: StatusChange, conn: DbWrite, caller: CurrentCaller,
                    settings: AppSettings) -> Response:
    return _json(service.change_incident_status(conn, incident_id, body.status, caller=caller, settings=settings,
                                                note=body.note, expected_version=body.version))


@router.post("/incidents/{incident_id}/log", summary="Append a situation report (续报) to the event log")
def incident_log(incident_id: int, body: LogEntry, conn: DbWrite, caller: CurrentCaller,
                 settings: AppSettings) -> Response:
    return _json(service.add_situation_report(conn, incident_id, body.text, caller=caller, settings=settings,
                                              kind=body.kind), 201)


@router.put("/incidents/{incident_id}/areas/{kind}",
            summary="A new version of the incident (事发) or impact (影响) polygon; old versions kept")
def incident_area(incident_id: int, kind: str, body: AreaChange, conn: DbWrite, caller: CurrentCaller,
                  settings: AppSettings) -> Response:
    return _json(service.set_incident_area(conn, incident_id, kind, _area(settings, body.geometry, body.crs),
                                           caller=caller, settings=settings, note=body.note))


@router.get("/incidents/{incident_id}/areas", summary="The incident's areas as of a time (default now) and versions")
def incident_areas(incident_id: int, conn: DbRead, caller: CurrentCaller, settings: AppSettings,
                   as_of: dt.datetime | None = None) -> Response:
    return _json(service.incident_areas(conn, incident_id, caller=caller, settings=settings,
                                        as_of=_local(settings, as_of)))


@router.post("/incidents/{incident_id}/merge", summary="Merge this duplicate report into another incident")
def merge(incident_id: int, body: Merge, conn: DbWrite, caller: CurrentCaller, settings: AppSettings) -> Response:
    return _json(service.merge_incidents(conn, incident_id, body.into, caller=caller, settings=settings))


@router.post("/incidents/{incident_id}/duplicates/{other_id}/dismiss",
             summary="Two flagged incidents are different events")
def dismiss(incident_id: int, other_id: int, conn: DbWrite, caller: CurrentCaller) -> Response:
    return _json(service.dismiss_duplicate(conn, incident_id, other_id, caller=caller))


# --- dispatch and assignments ------------------------------------------------------------------------

@router.get("/incidents/{incident_id}/dispatch",
            summary="The N available units that reach the incident first (road travel + turnout)")
def dispatch(incident_id: int, conn: DbRead, caller: CurrentCaller, settings: AppSettings,
             capability_type: str | None = None, kind: str | None = None, n: int = Query(3, ge=1, le=500),
             min_level: int | None = Query(None, ge=1, le=4), routes: bool = True) -> Response:
    return _json(service.dispatch_candidates(conn, incident_id, caller=caller, settings=settings,
                                             capability_type=capability_type, kind=kind, n=n, min_level=min_level,
                                             with_routes=routes))


@router.post("/incidents/{incident_id}/assignments", summary="Assign a unit (status, ETA and history recorded)")
def assign(incident_id: int, body: Assign, conn: DbWrite, caller: CurrentCaller, settings: AppSettings) -> Response:
    return _json(service.assign_unit(conn, incident_id, body.resource_id, caller=caller, settings=settings), 201)


@router.post("/assignments/{assignment_id}/arrival", summary="The unit is on scene (arrival timed)")
def arrival(assignment_id: int, conn: DbWrite, caller: CurrentCaller, settings: AppSettings) -> Response:
    return _json(service.record_arrival(conn, assignment_id, caller=caller, settings=settings))


@router.post("/assignments/{assignment_id}/release", summary="The unit returns and is available again")
def release(assignment_id: int, conn: DbWrite, caller: CurrentCaller, settings: AppSettings) -> Response:
    return _json(service.release_unit(conn, assignment_id, caller=caller, settings=settings))


@router.get("/resources", summary="Resources (teams, vehicles, stations, hospitals) with status and turnout")
def resources(conn: DbRead, caller: CurrentCaller, settings: AppSettings, capability_type: str | None = None,
              kind: str | None = None, status: str | None = None) -> Response:
    statuses = [s for s in (status or "").split(",") if s] or None
    return _json(service.list_resources(conn, caller=caller, settings=settings, capability_type=capability_type,
                                        kind=kind, status=statuses))


@router.get("/resources/{resource_id}", summary="A resource with its status history (ICS)")
def resource(resource_id: int, conn: DbRead, caller: CurrentCaller, settings: AppSettings) -> Response:
    return _json(service.resource_detail(conn, resource_id, caller=caller, settings=settings))


@router.post("/resources/{resource_id}/status", summary="Put a unit out of service or back in service")
def resource_status(resource_id: int, body: ResourceStatus, conn: DbWrite, caller: CurrentCaller,
                    settings: AppSettings) -> Response:
    return _json(service.set_resource_status(conn, resource_id, body.status, caller=caller, settings=settings))


# --- supplies ------------------------------------------------------------------------------------------

@router.get("/incidents/{incident_id}/supplies",
            summary="Warehouses holding a quantity of a GB/T 38565 supply code, nearest by road")
def supplies(incident_id: int, conn: DbRead, caller: CurrentCaller, settings: AppSettings, code: str,
             quantity: float = Query(1.0, gt=0), n: int = Query(3, ge=1, le=100)) -> Response:
    return _json(service.nearest_supplies(conn, incident_id, code, quantity, caller=caller, settings=settings, n=n))


@router.get("/warehouses/{warehouse_id}/stock", summary="A warehouse's stock lines")
def warehouse_stock(warehouse_id: int, conn: DbRead, caller: CurrentCaller, settings: AppSettings) -> Response:
    return _json(service.warehouse_stock(conn, warehouse_id, caller=caller, settings=settings))


@router.get("/stock/warnings", summary="Stock below its minimum, expired or expiring soon")
def stock_warnings(conn: DbRead, caller: CurrentCaller, settings: AppSettings) -> Response:
    return _json(service.stock_warnings(conn, caller=caller, settings=settings))


@router.get("/stock/{stock_id}/ledger", summary="A stock line's ledger (its balance is the sum of the entries)")
def ledger(stock_id: int, conn: DbRead, caller: CurrentCaller, settings: AppSettings) -> Response:
    return _json(service.stock_ledger(conn, stock_id, caller=caller, settings=settings))


@router.post("/stock/{stock_id}/ledger", summary="Post a receipt, an issue to an incident or an adjustment")
def post_ledger(stock_id: int, body: LedgerEntry, conn: DbWrite, caller: CurrentCaller,
                settings: AppSettings) -> Response:
    return _json(service.post_stock_entry(conn, stock_id, body.kind, body.quantity, caller=caller, settings=settings,
                                          incident_id=body.incident_id, note=body.note), 201)


@router.put("/stock/{stock_id}/minimum", summary="Set a stock line's minimum (null: none)")
def minimum(stock_id: int, body: MinimumStock, conn: DbWrite, caller: CurrentCaller) -> Response:
    return _json(service.set_minimum_stock(conn, stock_id, body.min_quantity, caller=caller))


# --- network: closures, routes, isochrones, coverage, matrix ----------------------------------------

@router.post("/closures", summary="Close roads (edges or an area) for a time window; next request applies it")
def add_closure(body: Closure, conn: DbWrite, caller: CurrentCaller, settings: AppSettings) -> Response:
    area = _area(settings, body.geometry, body.crs) if body.geometry is not None else None
    return _json(service.add_closure(conn, caller=caller, settings=settings, reason=body.reason, area=area,
                                     edge_ids=body.edge_ids, starts_at=_local(settings, body.starts_at),
                                     ends_at=_local(settings, body.ends_at), incident_id=body.incident_id), 201)


@router.get("/closures", summary="Closures in force (now, or at a time)")
def closures(conn: DbRead, caller: CurrentCaller, settings: AppSettings, at: dt.datetime | None = None) -> Response:
    return _json(service.closures_in_force(conn, caller=caller, settings=settings, at=_local(settings, at)))


@router.post("/route", summary="Fastest road route between two points (closures and avoided areas applied)")
def route(body: RouteRequest, conn: DbRead, caller: CurrentCaller, settings: AppSettings) -> Response:
    return _json(service.route(conn, _point(settings, body.origin.lon, body.origin.lat),
                               _point(settings, body.destination.lon, body.destination.lat), caller=caller,
                               settings=settings, avoid=[_area(settings, a) for a in body.avoid],
                               at=_local(settings, body.at)))


@router.post("/isochrones", summary="Service areas (等时圈) from a point or an incident, e.g. 5/10/15 min")
def isochrones(body: IsochroneRequest, conn: DbRead, caller: CurrentCaller, settings: AppSettings) -> Response:
    if (body.point is None) == (body.incident_id is None):
        raise InvalidParameter("give point (lon, lat) or incident_id")
    if body.point is not None:
        origin = _point(settings, body.point.lon, body.point.lat)
    else:
        found = service.incident_detail(conn, body.incident_id, caller=caller, settings=settings)
        origin = _point(settings, *found["point"]["coordinates"])
    return _json(service.isochrones(conn, origin, body.minutes, caller=caller, settings=settings,
                                    at=_local(settings, body.at), avoid=[_area(settings, a) for a in body.avoid]))


@router.post("/coverage", summary="Fire-station 5-minute coverage (GB 51080): gaps, area and population uncovered")
def coverage(body: CoverageRequest, conn: DbRead, caller: CurrentCaller, settings: AppSettings) -> Response:
    area = _area(settings, body.area, body.crs) if body.area is not None else None
    return _json(service.fire_coverage(conn, caller=caller, settings=settings, area=area, live=body.live,
                                       at=_local(settings, body.at)))


@router.post("/matrix", summary="Travel-time matrix by road (seconds; null = unreachable)")
def matrix(body: MatrixRequest, conn: DbRead, caller: CurrentCaller, settings: AppSettings) -> Response:
    return _json(service.travel_matrix(conn, [_point(settings, p.lon, p.lat) for p in body.origins],
                                       [_point(settings, p.lon, p.lat) for p in body.destinations], caller=caller,
                                       at=_local(settings, body.at)))


# --- impact, shelters, evacuation, pipeline link ------------------------------------------------------

@router.post("/incidents/{incident_id}/impact",
             summary="What an impact area holds: parcels, population, hospitals and schools, pipes, shelters")
def incident_impact(incident_id: int, body: ImpactRequest, conn: DbRead, caller: CurrentCaller,
                    settings: AppSettings) -> Response:
    area = _area(settings, body.geometry, body.crs) if body.geometry is not None else None
    return _json(service.impact_report(conn, incident_id, caller=caller, settings=settings, area=area))


@router.post("/incidents/{incident_id}/shelter-allocation",
             summary="Affected population to shelters by travel time within capacity (min-cost flow)")
def shelter_allocation(incident_id: int, body: ShelterAllocation, conn: DbRead, caller: CurrentCaller,
                       settings: AppSettings) -> Response:
    hazard = _area(settings, body.hazard, body.crs) if body.hazard is not None else None
    return _json(service.allocate_shelters(conn, incident_id, caller=caller, settings=settings, hazard=hazard,
                                          max_minutes=body.max_minutes))


@router.post("/incidents/from-isolation",
             summary="Open a 市政 incident from a burst isolation: valves to close and the crew's route")
def from_isolation(body: FromIsolation, conn: DbWrite, caller: CurrentCaller, settings: AppSettings) -> Response:
    point = _point(settings, body.lon, body.lat) if body.lon is not None and body.lat is not None else None
    return _json(service.incident_from_burst(conn, caller=caller, settings=settings, isolation_id=body.isolation_id,
                                            network_id=body.network_id, pipe_id=body.pipe_id, point=point,
                                            level=body.level, description=body.description), 201)


@router.get("/incidents/{incident_id}/pipeline",
            summary="Pipes and valves within a distance of an incident, and an isolation run on the nearest pipe")
def incident_pipeline(incident_id: int, conn: DbWrite, caller: CurrentCaller, settings: AppSettings,
                      distance_m: float = Query(100.0, gt=0, le=2000), isolate: bool = False,
                      network_id: int | None = None) -> Response:
    return _json(service.pipeline_near_incident(conn, incident_id, caller=caller, settings=settings,
                                               distance_m=distance_m, isolate=isolate, network_id=network_id))


@router.post("/population/estimate", summary="Rebuild the population grid from residential parcels (audited)")
def population_estimate(conn: DbWrite, caller: CurrentCaller, settings: AppSettings) -> Response:
    return _json(service.estimate_population(conn, caller=caller, settings=settings))
