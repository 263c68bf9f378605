"""Pipeline accident endpoints under /pipeline: networks, topology report, burst isolation and its
versions, criticality, repair orders, clearance checks, profiles, maintenance, INP import.

Thin: parse, call layers.pipeline.service (which checks the caller's rights), return. The OGC
collections of pipes, nodes and customers come from the generic API over the registry.
"""

from __future__ import annotations

import datetime as dt
import shutil
import tempfile
from pathlib import Path
from typing import Annotated, Any

import orjson
from fastapi import APIRouter, File, Form, Query, Request, UploadFile
from fastapi.responses import FileResponse, HTMLResponse, Response
from shapely.geometry import Point
from starlette.background import BackgroundTask
from starlette.concurrency import run_in_threadpool

from api.common import aware, check_params, download, storage_geometry
from api.deps import AppSettings, CurrentCaller, DbRead, DbWrite
from gis.documents import check_lang
from gis.errors import InvalidGeometry, InvalidParameter
from gis.intake import client_crs
from gis.io.uploads import UploadLimits, spool_file, spool_stream
from gis.settings import Settings
from layers.pipeline import service
from layers.pipeline.schemas import (
    AbandonResult,
    AccountBatch,
    AreaRequest,
    BillingImportResult,
    BurstRequest,
    CheckoutRequest,
    ClearanceRequest,
    ConsumptionResult,
    CrossSectionRequest,
    CrossSectionResult,
    DesignFeatureEdit,
    DesignFeatureRequest,
    DesignFeatureResult,
    FailedValves,
    NoticeList,
    PasteBackResult,
    ReadingBatch,
    RepairOrderRequest,
    RepairRecord,
    ResolveRequest,
    ResolveResult,
    StatusChange,
    UsageRequest,
    UsageResult,
    WorkspaceCheckout,
    WorkspaceDetail,
)

router = APIRouter(prefix="/pipeline", tags=["pipeline"])


def _json(content: Any) -> Response:
    # serialised directly with orjson: no response-model validation pass over large results
    return Response(orjson.dumps(content, option=orjson.OPT_NON_STR_KEYS), media_type="application/json")


def _burst_point(body: BurstRequest, settings: Settings) -> Point | None:
    """The clicked point in the storage CRS: a GeoJSON ``point`` in ``crs`` (the one axis-order rule of
    gis.intake), or ``lon``/``lat`` — named, so east and north whatever the CRS's axis order."""
    if body.point is not None:
        return storage_geometry(body.point, body.crs, settings, "Point")
    if body.lon is not None and body.lat is not None:
        named = client_crs(body.crs)
        x, y = (body.lat, body.lon) if named.north_first else (body.lon, body.lat)
        return storage_geometry(Point(x, y), body.crs, settings, "Point")
    if (body.lon is None) != (body.lat is None):
        raise InvalidParameter("give both lon and lat")
    return None


@router.get("/networks", summary="Pipeline networks (管网) with their utility")
def networks(conn: DbRead, caller: CurrentCaller) -> Response:
    return _json(service.list_networks(conn, caller=caller))


@router.post("/isolations", summary="Isolate a burst: valves to close, segment, customers cut off (爆管关阀)")
def isolate(body: BurstRequest, conn: DbWrite, caller: CurrentCaller, settings: AppSettings) -> Response:
    return _json(service.isolate_burst(conn, body.network_id, caller=caller, settings=settings,
                                       utility=body.utility, pipe_id=body.pipe_id, point=_burst_point(body, settings),
                                       point_crs=settings.spatial.storage_crs, failed_valves=body.failed_valves,
                                       customer_limit=body.customer_limit))


@router.get("/isolations/{isolation_id}", summary="A stored isolation and its versions")
def isolation(isolation_id: int, conn: DbRead, caller: CurrentCaller) -> Response:
    return _json(service.isolation_record(conn, isolation_id, caller=caller))


@router.post("/isolations/{isolation_id}/failed-valves",
             summary="Valves could not be closed: recompute the next ring as a new version (阀门失效)")
def failed_valves(isolation_id: int, body: FailedValves, conn: DbWrite, caller: CurrentCaller,
                  settings: AppSettings) -> Response:
    return _json(service.revise_isolation(conn, isolation_id, caller=caller, settings=settings,
                                          failed_valves=body.valves))


@router.post("/repair-orders", summary="Create a repair order (抢修单) from a stored isolation")
def create_repair_order(body: RepairOrderRequest, conn: DbWrite, caller: CurrentCaller,
                        settings: AppSettings) -> Response:
    return _json(service.create_repair_order(conn, body.isolation_id, caller=caller,
                                             incident_at=aware(body.incident_at, settings), place=body.place,
                                             planned_restore_at=aware(body.planned_restore_at, settings),
                                             language=body.language, time_zone=settings.service.time_zone))


@router.get("/repair-orders/{order_id}", summary="A repair order with its status history")
def repair_order(order_id: int, conn: DbRead, caller: CurrentCaller) -> Response:
    return _json(service.repair_order(conn, order_id, caller=caller))


@router.post("/repair-orders/{order_id}/status",
             summary="Move a repair order: planned → valves_closed → repaired → restored, or cancelled")
def repair_order_status(order_id: int, body: StatusChange, conn: DbWrite, caller: CurrentCaller) -> Response:
    return _json(service.change_order_status(conn, order_id, body.status, caller=caller, note=body.note,
                                             expected_version=body.version))


DocumentLang = Annotated[str, Query(description="zh: Chinese labels; en: Chinese labels with English after them")]


@router.get("/repair-orders/{order_id}/print", response_class=HTMLResponse,
            summary="The printable repair order (A4, inline SVG schematic, no external assets)")
def repair_order_print(order_id: int, conn: DbRead, caller: CurrentCaller, settings: AppSettings,
                       lang: DocumentLang = "zh") -> HTMLResponse:
    check_lang(lang)
    return HTMLResponse(service.repair_order_page(conn, order_id, caller=caller, settings=settings, lang=lang))


@router.get("/repair-orders/{order_id}/notice", response_class=HTMLResponse,
            summary="The printable stop-supply notice (停水/停气通知) of a repair order, a page to post")
def repair_order_notice(order_id: int, conn: DbRead, caller: CurrentCaller, settings: AppSettings,
                        lang: DocumentLang = "zh") -> HTMLResponse:
    check_lang(lang)
    return HTMLResponse(service.repair_order_notice(conn, order_id, caller=caller, settings=settings, lang=lang))


@router.get("/networks/{network_id}/topology",
            summary="Topology check: dangling ends, unsnapped endpoints, duplicates, components, unlinked customers")
def topology(network_id: int, conn: DbRead, caller: CurrentCaller, settings: AppSettings) -> Response:
    return _json(service.topology_report(conn, network_id, caller=caller, settings=settings))


@router.get("/networks/{network_id}/connectivity",
            summary="Are nodes a and b connected under the current valve states; which sources feed b")
def connectivity(network_id: int, a: int, b: int, conn: DbRead, caller: CurrentCaller) -> Response:
    return _json(service.connectivity(conn, network_id, a, b, caller=caller))


@router.post("/clearance", summary="GB 50289 clearance check of a proposed pipe (LineString) or an area (Polygon)")
def clearance_check(body: ClearanceRequest, conn: DbRead, caller: CurrentCaller, settings: AppSettings) -> Response:
    kind = body.geometry.get("type")
    if kind == "LineString":
        if not body.utility:
            raise InvalidParameter("a proposed pipe needs its utility (water, gas, power, …)")
        line = storage_geometry(body.geometry, body.crs, settings, "LineString")
        return _json(service.proposed_pipe_clearance(conn, line, caller=caller, settings=settings,
                                                     utility=body.utility, diameter_mm=body.diameter_mm,
                                                     depth_m=body.depth_m, pressure_class=body.pressure_class))
    if kind in ("Polygon", "MultiPolygon"):
        area = storage_geometry(body.geometry, body.crs, settings, "Geometry")
        return _json(service.area_clearance(conn, area, caller=caller, settings=settings))
    raise InvalidGeometry("clearance takes a LineString (proposed pipe) or a Polygon (area)")


@router.post("/cross-section", response_model=CrossSectionResult,
             responses={200: {"content": {"image/svg+xml": {"schema": {"type": "string"}}}}},
             summary="Cross-section (横断面) under a cut line: pipes crossed, depths, spacing, GB 50289 clearances")
def cross_section(body: CrossSectionRequest, conn: DbRead, caller: CurrentCaller, settings: AppSettings) -> Response:
    line = storage_geometry(body.geometry, body.crs, settings, "LineString")
    result = service.cross_section(conn, line, caller=caller, settings=settings)
    if body.f == "svg":
        return Response(service.cross_section_svg(result), media_type="image/svg+xml")
    return _json(result)


@router.post("/pipes-in-area", summary="Pipes crossing an area with the length inside (for pre-review)")
def pipes_in_area(body: AreaRequest, conn: DbRead, caller: CurrentCaller, settings: AppSettings) -> Response:
    area = storage_geometry(body.geometry, body.crs, settings, "Geometry")
    return _json(service.pipes_in_area(conn, area, caller=caller))


@router.get("/profile", summary="Longitudinal profile of a pipe run (纵断面): JSON, or PNG with f=png")
def pipe_profile(conn: DbRead, caller: CurrentCaller, settings: AppSettings, pipes: str, step_m: float = 5.0,
                 f: str = "json") -> Response:
    try:
        ids = [int(p) for p in pipes.split(",") if p.strip()]
    except ValueError:
        raise InvalidParameter("pipes is a comma-separated list of pipe ids, in run order") from None
    result = service.pipe_profile(conn, ids, caller=caller, settings=settings, step_m=step_m)
    if f == "png":
        return Response(service.profile_png(result), media_type="image/png")
    if f != "json":
        raise InvalidParameter("f is json or png")
    return _json(result)


@router.get("/networks/{network_id}/criticality",
            summary="Customers lost by a burst on every pipe (planning); the most critical pipes first")
def criticality(network_id: int, conn: DbRead, caller: CurrentCaller, top: int = 100) -> Response:
    if not 1 <= top <= 10_000:
        raise InvalidParameter("top is between 1 and 10000")
    return _json(service.criticality(conn, network_id, caller=caller, top=top))


@router.get("/networks/{network_id}/maintenance",
            summary="Replacement warnings: age against service life by material, repair frequency")
def maintenance_report(network_id: int, conn: DbRead, caller: CurrentCaller, settings: AppSettings) -> Response:
    return _json(service.maintenance_report(conn, network_id, caller=caller, settings=settings))


@router.get("/pipes/{pipe_id}/repairs", summary="Repair records of a pipe")
def pipe_repairs(pipe_id: int, conn: DbRead, caller: CurrentCaller) -> Response:
    return _json(service.pipe_repairs(conn, pipe_id, caller=caller))


@router.post("/pipes/{pipe_id}/repairs", summary="Record a repair on a pipe (audited)")
def add_repair(pipe_id: int, body: RepairRecord, conn: DbWrite, caller: CurrentCaller) -> Response:
    return _json(service.add_repair(conn, pipe_id, caller=caller, repaired_on=body.repaired_on, kind=body.kind,
                                    description=body.description, crew=body.crew, cost_yuan=body.cost_yuan))


IMPORT_PARAMS = frozenset({"name", "crs", "customers_from_demand", "valves", "anchor_lon", "anchor_lat", "scale",
                           "fit_bbox", "lengths", "length_tolerance"})


def _text(body: bytes, what: str) -> str:
    try:
        return body.decode("utf-8-sig")
    except UnicodeDecodeError:
        try:
            return body.decode("gbk", errors="strict")
        except UnicodeDecodeError:
            raise InvalidParameter(f"the {what} is neither UTF-8 nor GBK text: save it as UTF-8") from None


def _valve_csv(text: str) -> list[tuple[str, str]]:
    """A valve layer as CSV with the columns link,node (WNTR's valve layer)."""
    import csv
    import io

    reader = csv.DictReader(io.StringIO(text))
    if not reader.fieldnames or not {"link", "node"} <= set(reader.fieldnames):
        raise InvalidParameter("the valve layer is CSV with the columns link,node (one isolation valve per row: on "
                               "link L at its end next to node N)")
    return [(row["link"].strip(), row["node"].strip()) for row in reader]


def _valve_param(value: str) -> list[tuple[str, str]]:
    """A short valve layer in the query: link:node pairs separated by commas."""
    pairs = []
    for item in value.split(","):
        link, sep, node = item.strip().partition(":")
        if not sep or not link or not node:
            raise InvalidParameter(f"valves={value[:60]!r}: give link:node pairs separated by commas (or upload the "
                                   "valve layer as a CSV file 'valves' in a multipart request)")
        pairs.append((link, node))
    return pairs


def _placement(qp: Any) -> Any:
    anchor = (qp.get("anchor_lon"), qp.get("anchor_lat"))
    if not any(anchor) and qp.get("scale") is None and qp.get("fit_bbox") is None:
        return None
    try:
        if qp.get("fit_bbox") is not None:
            box = tuple(float(v) for v in qp["fit_bbox"].split(","))
            if len(box) != 4:
                raise ValueError
            return service.Placement(fit_bbox=box)  # type: ignore[arg-type]
        return service.Placement(anchor=(float(anchor[0]), float(anchor[1])), scale=float(qp["scale"]))
    except (TypeError, ValueError, KeyError):
        raise InvalidParameter("place a schematic network with anchor_lon, anchor_lat and scale (metres per drawing "
                               "unit), or with fit_bbox=min lon,min lat,max lon,max lat") from None


@router.post("/networks/import-inp", summary="Import an EPANET INP file as a new water network (CRS or placement)")
async def import_inp(request: Request, conn: DbWrite, caller: CurrentCaller, settings: AppSettings) -> Response:
    """Body: the INP text (Content-Type text/plain or application/octet-stream), with a short valve
    layer in ``valves=link:node,…``; or multipart/form-data with the files ``inp`` and ``valves`` (CSV
    link,node). Query: ``name``; ``crs`` of the coordinates, or a placement of a schematic drawing
    (``anchor_lon``, ``anchor_lat``, ``scale`` — or ``fit_bbox``); ``lengths`` auto/drawn/recorded;
    ``length_tolerance``; ``customers_from_demand``."""
    check_params(request, IMPORT_PARAMS)
    qp = request.query_params
    name = qp.get("name")
    if not name:
        raise InvalidParameter("name the new network (name=…)")
    valves: list[tuple[str, str]] = _valve_param(qp["valves"]) if qp.get("valves") else []
    limits = UploadLimits.for_service(settings)
    if request.headers.get("content-type", "").startswith("multipart/form-data"):
        form = await request.form()
        upload = form.get("inp")
        if upload is None or isinstance(upload, str):
            raise InvalidParameter("a multipart import needs the INP file as the part 'inp'")
        spooled = await run_in_threadpool(spool_file, upload.file, limits, filename=upload.filename)
        valve_part = form.get("valves")
        if valve_part is not None:
            if qp.get("valves"):
                raise InvalidParameter("give the valve layer once: as the file 'valves' or in valves=, not both")
            raw = await valve_part.read() if not isinstance(valve_part, str) else valve_part.encode()
            valves = _valve_csv(_text(raw, "valve layer"))
    else:
        # the body goes to a temporary file as it arrives, refused (413) at the upload limit before
        # it is all held in memory
        spooled = await spool_stream(request.stream(), limits)
    with spooled:
        text = await run_in_threadpool(spooled.text, "INP file")
    try:
        tolerance = float(qp.get("length_tolerance", service.inp.LENGTH_TOLERANCE))
    except ValueError:
        raise InvalidParameter("length_tolerance is a share, e.g. 0.1 for 10 %") from None
    if not 0 < tolerance < 10:
        raise InvalidParameter("length_tolerance is a share between 0 and 10 (0.1 = 10 %)")
    customers = qp.get("customers_from_demand", "false").lower() in ("1", "true", "yes")
    result = await run_in_threadpool(service.import_inp, conn, text, name=name, crs=qp.get("crs"), caller=caller,
                                     settings=settings, customers_from_demand=customers, valve_layer=valves,
                                     placement=_placement(qp), lengths=qp.get("lengths", "auto"),
                                     length_tolerance=tolerance)
    return _json({"network_id": result.network_id, "nodes": len(result.node_ids), "pipes": len(result.pipe_ids),
                  "isolation_valves": len(result.valve_ids), "customers": result.customers,
                  "length_source": result.length_source, "crs": result.crs, "warnings": result.warnings})


@router.post("/networks/{network_id}/build-topology",
             summary="Snap pipe ends to nodes within the snap tolerance and split pipes at tees (audited)")
def build_topology(network_id: int, conn: DbWrite, caller: CurrentCaller) -> Response:
    return _json(service.build_network_topology(conn, network_id, caller=caller))


# --- design workspaces (管网辅助设计) -----------------------------------------------------------------
DESIGN = "/design/workspaces"
PROBLEMS = {409: {"description": "conflicts, or a design that does not join the network (problem+json)",
                  "content": {"application/problem+json": {"schema": {"type": "object"}}}}}


@router.post(DESIGN, response_model=WorkspaceCheckout, status_code=201,
             summary="Check out an area of a network into a design workspace (管网辅助设计: 裁切)")
def checkout_design(body: CheckoutRequest, conn: DbWrite, caller: CurrentCaller, settings: AppSettings) -> Response:
    area = storage_geometry(body.geometry, body.crs, settings, "Polygon")
    result = service.checkout_design(conn, body.network_id, area, caller=caller, name=body.name, margin_m=body.margin_m)
    return Response(orjson.dumps(result), status_code=201, media_type="application/json")


@router.get(DESIGN + "/{workspace_id}", response_model=WorkspaceDetail,
            summary="A design workspace and its features (GeoJSON) with what the design does to each")
def design_workspace(workspace_id: int, conn: DbRead, caller: CurrentCaller, settings: AppSettings) -> Response:
    return _json(service.design_workspace(conn, workspace_id, caller=caller, settings=settings))


@router.get(DESIGN + "/{workspace_id}/download.gpkg", response_class=FileResponse,
            responses={200: {"content": {"application/geopackage+sqlite3": {"schema": {"type": "string",
                                                                                          "format": "binary"}}}}},
            summary="The design workspace as a GeoPackage (design_pipes, design_nodes) for a desktop GIS")
def design_download(workspace_id: int, conn: DbRead, caller: CurrentCaller, settings: AppSettings) -> FileResponse:
    folder = Path(tempfile.mkdtemp(prefix="govgis-design-"))
    path = service.design_geopackage(conn, workspace_id, folder / f"design-{workspace_id}.gpkg", caller=caller,
                                     settings=settings)
    return FileResponse(path, media_type="application/geopackage+sqlite3", filename=path.name,
                        background=BackgroundTask(shutil.rmtree, folder, ignore_errors=True))


@router.post(DESIGN + "/{workspace_id}/features", response_model=DesignFeatureResult, status_code=201,
             summary="Add a pipe or node to the design")
def add_design_feature(workspace_id: int, body: DesignFeatureRequest, conn: DbWrite, caller: CurrentCaller,
                       settings: AppSettings) -> Response:
    geometry = storage_geometry(body.geometry, body.crs, settings, "LineString" if body.kind == "pipe" else "Point")
    result = service.add_design_feature(conn, workspace_id, body.kind, body.properties, geometry, caller=caller)
    return Response(orjson.dumps(result), status_code=201, media_type="application/json")


@router.patch(DESIGN + "/{workspace_id}/features/{feature_id}", response_model=DesignFeatureResult,
              summary="Edit a design feature's attributes or geometry")
def edit_design_feature(workspace_id: int, feature_id: int, body: DesignFeatureEdit, conn: DbWrite,
                        caller: CurrentCaller, settings: AppSettings) -> Response:
    geometry = None if body.geometry is None else storage_geometry(body.geometry, body.crs, settings, None)
    return _json(service.edit_design_feature(conn, workspace_id, feature_id, caller=caller,
                                             properties=body.properties, geometry=geometry,
                                             expected_version=body.version))


@router.delete(DESIGN + "/{workspace_id}/features/{feature_id}", response_model=DesignFeatureResult,
               summary="Delete a feature in the design (the network changes only at paste back)")
def delete_design_feature(workspace_id: int, feature_id: int, conn: DbWrite, caller: CurrentCaller) -> Response:
    return _json(service.delete_design_feature(conn, workspace_id, feature_id, caller=caller))


@router.post(DESIGN + "/{workspace_id}/resolve", response_model=ResolveResult,
             summary="Resolve conflicts per feature: mine or theirs")
def resolve_design(workspace_id: int, body: ResolveRequest, conn: DbWrite, caller: CurrentCaller) -> Response:
    return _json(service.resolve_design_conflicts(conn, workspace_id, body.resolutions, caller=caller))


@router.post(DESIGN + "/{workspace_id}/paste-back", response_model=PasteBackResult, responses=PROBLEMS,
             summary="Paste the design back in one transaction: conflict check, topology check, audited writes")
def paste_back_design(workspace_id: int, conn: DbWrite, caller: CurrentCaller, settings: AppSettings) -> Response:
    return _json(service.paste_back_design(conn, workspace_id, caller=caller, settings=settings))


@router.post(DESIGN + "/{workspace_id}/abandon", response_model=AbandonResult,
             summary="Abandon a design workspace (the network is not touched)")
def abandon_design(workspace_id: int, conn: DbWrite, caller: CurrentCaller) -> Response:
    return _json(service.abandon_design(conn, workspace_id, caller=caller))


# --- customer management (用户管理): billing interface, consumption, usage, notices ------------------
CSV_UPLOAD = {"description": "CSV with a header line (comma or tab separated; UTF-8 or GBK; English or Chinese "
                             "column names)"}


def _csv_rows(upload: UploadFile, settings: Settings, columns: tuple[str, ...], required: tuple[str, ...]
              ) -> list[dict[str, str]]:
    """The rows of an uploaded CSV file, refused at the upload limit before it is all in memory."""
    with spool_file(upload.file, UploadLimits.for_service(settings), filename=upload.filename) as spooled:
        text = spooled.text("CSV file")
    return service.billing.read_csv(text, columns, required)


@router.post("/billing/accounts", response_model=BillingImportResult,
             summary="Import customer accounts from the billing system (JSON batch; bad rows refused with reasons)")
def import_accounts(body: AccountBatch, conn: DbWrite, caller: CurrentCaller, settings: AppSettings) -> Response:
    return _json(service.import_accounts(conn, body.network_id, body.accounts, caller=caller, settings=settings))


@router.post("/billing/accounts/upload", response_model=BillingImportResult,
             summary="Import customer accounts from a CSV file of the billing system (收费系统用户导入)")
def upload_accounts(file: Annotated[UploadFile, File(**CSV_UPLOAD)], network_id: Annotated[int, Form()],
                    conn: DbWrite, caller: CurrentCaller, settings: AppSettings) -> Response:
    service.require_billing_import(caller)  # refused before the file is read
    rows = _csv_rows(file, settings, service.billing.ACCOUNT_COLUMNS, ("account_no",))
    return _json(service.import_accounts(conn, network_id, rows, caller=caller, settings=settings, source="csv",
                                         filename=file.filename))


@router.post("/billing/readings", response_model=BillingImportResult,
             summary="Import meter readings (JSON batch; idempotent by account and reading time)")
def import_readings(body: ReadingBatch, conn: DbWrite, caller: CurrentCaller, settings: AppSettings) -> Response:
    return _json(service.import_readings(conn, body.readings, caller=caller, settings=settings,
                                         network_id=body.network_id))


@router.post("/billing/readings/upload", response_model=BillingImportResult,
             summary="Import meter readings from a CSV file of the billing system (抄表数据导入)")
def upload_readings(file: Annotated[UploadFile, File(**CSV_UPLOAD)], conn: DbWrite, caller: CurrentCaller,
                    settings: AppSettings, network_id: Annotated[int | None, Form()] = None) -> Response:
    service.require_billing_import(caller)
    rows = _csv_rows(file, settings, service.billing.READING_COLUMNS, ("account_no", "read_at", "consumption"))
    return _json(service.import_readings(conn, rows, caller=caller, settings=settings, network_id=network_id,
                                         source="csv", filename=file.filename))


@router.get("/billing/imports/{import_id}", summary="A billing import: what it received, wrote and refused")
def billing_import(import_id: int, conn: DbRead, caller: CurrentCaller) -> Response:
    return _json(service.billing_import_record(conn, import_id, caller=caller))


@router.get("/customers/{customer_id}/consumption", response_model=ConsumptionResult,
            summary="A customer's consumption per hour, day, month or year of a period (用户用量)")
def customer_consumption(customer_id: int, conn: DbRead, caller: CurrentCaller, settings: AppSettings,
                         start: Annotated[dt.datetime | None, Query(alias="from")] = None,
                         end: Annotated[dt.datetime | None, Query(alias="to")] = None,
                         period: Annotated[str, Query(description="hour|day|month|year")] = "month",
                         kind: Annotated[str, Query(description="billing|interval")] = "billing") -> Response:
    return _json(service.customer_consumption(conn, customer_id, caller=caller, settings=settings,
                                              start=aware(start, settings), end=aware(end, settings), period=period,
                                              kind=kind))


@router.post("/usage", response_model=UsageResult,
             summary="Usage analysis (用量分析) by area, district or supply segment; by category, month and hour")
def usage_analysis(body: UsageRequest, conn: DbRead, caller: CurrentCaller, settings: AppSettings) -> Response:
    area = None if body.geometry is None else storage_geometry(body.geometry, body.crs, settings, "Geometry")
    if area is not None and area.geom_type not in ("Polygon", "MultiPolygon"):
        raise InvalidGeometry("the area of a usage analysis is a Polygon or MultiPolygon")
    return _json(service.usage_analysis(conn, body.network_id, caller=caller, settings=settings, area=area,
                                        district=body.district, isolation_id=body.isolation_id,
                                        segment_pipe_id=body.segment_pipe_id, categories=body.categories,
                                        start=aware(body.start, settings), end=aware(body.end, settings)))


@router.get("/repair-orders/{order_id}/notices", response_model=NoticeList,
            responses={200: {"content": {"text/csv": {"schema": {"type": "string"}}}}},
            summary="Outage notices (停水/停气通知单) to send to the customers an order cuts off: JSON or CSV")
def outage_notices(order_id: int, conn: DbRead, caller: CurrentCaller,
                   f: Annotated[str, Query(description="json|csv")] = "json") -> Response:
    if f not in ("json", "csv"):
        raise InvalidParameter("f is json or csv")
    notices = service.outage_notices(conn, order_id, caller=caller)
    if f == "csv":
        return download(service.outage_notices_csv(notices), f, f"notices-{notices['code']}")
    return _json(notices)
