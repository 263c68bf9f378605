"""/land: parcel registrations, register history, land supervision, construction-land approvals,
base land price. Thin: parse, call the cadastre/land-use services, shape the answer."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query
from fastapi.responses import HTMLResponse, Response
from shapely.geometry.base import BaseGeometry

from api.common import AREA_MAX_VERTICES, aware, bbox_area, download, json_response, storage_geometry
from api.deps import AppSettings, CurrentCaller, DbRead, DbWrite
from gis.errors import InvalidParameter
from gis.settings import Settings
from layers.cadastre import schemas as s
from layers.cadastre import service as registry
from layers.landuse import schemas as ls
from layers.landuse import service as land

router = APIRouter(prefix="/land", tags=["land 国土"])


def _area(geojson: dict[str, Any], crs: str, settings: Settings) -> BaseGeometry:
    """A posted parcel boundary or patch in the storage CRS."""
    return storage_geometry(geojson, crs, settings, max_vertices=AREA_MAX_VERTICES)


def _point(geojson: dict[str, Any] | None, crs: str, settings: Settings) -> BaseGeometry | None:
    """A posted attachment position in the storage CRS (None when not given)."""
    return None if geojson is None else storage_geometry(geojson, crs, settings, "Point")


def _common(body: s._Body, settings: Settings) -> dict[str, Any]:
    return {"effective_at": aware(body.effective_at, settings), "certificate_no": body.certificate_no, "note": body.note}


@router.post("/registrations/initial", status_code=201, summary="首次登记 initial registration")
def initial(body: s.InitialRegistration, conn: DbWrite, caller: CurrentCaller,
            settings: AppSettings) -> dict[str, Any]:
    return registry.register_initial(conn, caller, sub_district=body.sub_district, ownership=body.ownership,
                                     parcel_type=body.parcel_type, attributes=body.attributes.given(),
                                     geometry=_area(body.geometry, body.crs, settings),
                                     attachment_point=_point(body.attachment_point, body.crs, settings),
                                     **_common(body, settings))


@router.post("/registrations/change", status_code=201, summary="变更登记 change of attributes")
def change(body: s.ChangeRegistration, conn: DbWrite, caller: CurrentCaller, settings: AppSettings) -> dict[str, Any]:
    return registry.register_change(conn, caller, parcel_code=body.parcel_code, changes=body.changes.given(),
                                    attachment_point=_point(body.attachment_point, body.crs, settings),
                                    **_common(body, settings))


@router.post("/registrations/transfer", status_code=201, summary="转移登记 transfer of right holder")
def transfer(body: s.TransferRegistration, conn: DbWrite, caller: CurrentCaller, settings: AppSettings) -> dict[str, Any]:
    return registry.register_transfer(conn, caller, parcel_code=body.parcel_code, holder=body.holder.given(),
                                      **_common(body, settings))


@router.post("/registrations/split", status_code=201, summary="分割登记 split")
def split(body: s.SplitRegistration, conn: DbWrite, caller: CurrentCaller, settings: AppSettings) -> dict[str, Any]:
    children = [{"geometry": _area(c.geometry, body.crs, settings),
                 "attributes": c.attributes.given() if c.attributes else {}} for c in body.children]
    extra = {"tolerance_m2": body.tolerance_m2} if body.tolerance_m2 else {}
    return registry.register_split(conn, caller, parcel_code=body.parcel_code, children=children,
                                   **_common(body, settings), **extra)


@router.post("/registrations/merge", status_code=201, summary="合并登记 merge")
def merge(body: s.MergeRegistration, conn: DbWrite, caller: CurrentCaller, settings: AppSettings) -> dict[str, Any]:
    return registry.register_merge(conn, caller, parcel_codes=body.parcel_codes,
                                   attributes=body.attributes.given() if body.attributes else None, **_common(body, settings))


@router.post("/registrations/boundary-adjustment", status_code=201, summary="界址调整 boundary adjustment")
def boundary(body: s.BoundaryAdjustment, conn: DbWrite, caller: CurrentCaller,
             settings: AppSettings) -> dict[str, Any]:
    return registry.register_boundary_adjustment(
        conn, caller, boundaries={code: _area(g, body.crs, settings) for code, g in body.boundaries.items()},
        correction=body.correction, reason=body.reason, **_common(body, settings))


@router.post("/registrations/cancellation", status_code=201, summary="注销登记 cancellation")
def cancellation(body: s.Cancellation, conn: DbWrite, caller: CurrentCaller, settings: AppSettings) -> dict[str, Any]:
    return registry.register_cancellation(conn, caller, parcel_code=body.parcel_code, **_common(body, settings))


@router.get("/codes/{code}", summary="Validate a GB/T 37346 parcel (19) or unit (28) code")
def validate_code(code: str) -> dict[str, Any]:
    return registry.describe_code(code)


@router.get("/parcels/{parcel_code}/timeline", summary="A parcel's versions and registrations")
def timeline(parcel_code: str, conn: DbRead, caller: CurrentCaller) -> dict[str, Any]:
    return registry.parcel_timeline(conn, caller, parcel_code)


@router.get("/parcels/{parcel_code}/lineage", summary="Ancestors and descendants through splits and merges")
def lineage(parcel_code: str, conn: DbRead, caller: CurrentCaller,
            max_depth: Annotated[int, Query(ge=1, le=1000)] = 1000) -> dict[str, Any]:
    return registry.parcel_lineage(conn, caller, parcel_code, max_depth=max_depth)


@router.get("/register", summary="The register as of a date for a district or bbox")
def register_as_of(conn: DbRead, caller: CurrentCaller, settings: AppSettings, valid_at: dt.datetime,
                   recorded_at: dt.datetime | None = None, district: str | None = None, bbox: str | None = None,
                   limit: Annotated[int, Query(ge=1, le=10000)] = 1000) -> dict[str, Any]:
    return registry.register_as_of(conn, caller, aware(valid_at, settings), aware(recorded_at, settings),
                                   geometry=bbox_area(bbox, settings),
                                   district=district, limit=limit)


@router.get("/register/diff", summary="Parcels created, changed and retired between two dates")
def register_diff(conn: DbRead, caller: CurrentCaller, settings: AppSettings, since: dt.datetime,
                  until: dt.datetime, district: str | None = None, bbox: str | None = None) -> dict[str, Any]:
    return registry.register_diff(conn, caller, aware(since, settings), aware(until, settings),
                                  geometry=bbox_area(bbox, settings),
                                  district=district)


@router.post("/supervision/cases", status_code=201, summary="Open a land supervision case 土地监察")
def supervision_case(body: ls.SupervisionCase, conn: DbWrite, caller: CurrentCaller,
                     settings: AppSettings) -> dict[str, Any]:
    props = body.model_dump(exclude={"geometry", "crs"})
    return land.record_supervision_case(conn, caller, props, _area(body.geometry, body.crs, settings))


@router.post("/supervision/disputes", status_code=201,
             summary="Open an ownership-dispute case 土地权属纠纷 with each party's claimed land")
def ownership_dispute(body: ls.OwnershipDispute, conn: DbWrite, caller: CurrentCaller,
                      settings: AppSettings) -> dict[str, Any]:
    props = body.model_dump(exclude={"parties", "crs"})
    parties = [{**p.model_dump(exclude={"geometry"}), "geometry": _area(p.geometry, body.crs, settings)}
               for p in body.parties]
    return land.record_ownership_dispute(conn, caller, props, parties)


@router.get("/supervision/cases/{case_id}/dispute",
            summary="An ownership dispute's parties, claimed areas and their overlap")
def ownership_dispute_view(case_id: int, conn: DbRead, caller: CurrentCaller, settings: AppSettings) -> dict[str, Any]:
    return land.ownership_dispute(conn, caller, case_id, settings=settings)


@router.get("/supervision/cases/{case_id}/map.html", response_class=HTMLResponse,
            summary="The printable case map (监察图件) comparing two dates")
def supervision_case_map(case_id: int, conn: DbRead, caller: CurrentCaller, settings: AppSettings,
                         first: dt.datetime | None = None, second: dt.datetime | None = None) -> HTMLResponse:
    if first is not None and second is not None and second < first:
        raise InvalidParameter("the second date must not be before the first")
    return HTMLResponse(land.supervision_case_map(conn, caller, case_id, settings=settings,
                                                  first=aware(first, settings), second=aware(second, settings)))


@router.get("/supervision/cases/{case_id}/compare", summary="A case's patch against cadastre and land use at two dates")
def supervision_case_compare(case_id: int, first: dt.datetime, second: dt.datetime, conn: DbRead,
                             caller: CurrentCaller, settings: AppSettings) -> dict[str, Any]:
    return land.supervision_comparison(conn, caller, case_id=case_id, first=aware(first, settings),
                                       second=aware(second, settings))


@router.post("/supervision/compare", summary="A patch against cadastre and land use at two dates")
def supervision_compare(body: ls.SupervisionCompare, conn: DbRead, caller: CurrentCaller,
                        settings: AppSettings) -> dict[str, Any]:
    return land.supervision_comparison(conn, caller, geometry=_area(body.geometry, body.crs, settings),
                                       first=aware(body.first, settings), second=aware(body.second, settings))


@router.post("/approvals", status_code=201, summary="Record a construction-land approval 建设用地审批")
def approval(body: ls.LandApproval, conn: DbWrite, caller: CurrentCaller, settings: AppSettings) -> dict[str, Any]:
    props = body.model_dump(exclude={"geometry", "crs"})
    return land.record_land_approval(conn, caller, props, _area(body.geometry, body.crs, settings))


@router.get("/price", summary="Base land price 基准地价 at a point or for a parcel")
def price(conn: DbRead, caller: CurrentCaller, settings: AppSettings, lon: float | None = None,
          lat: float | None = None, parcel_code: str | None = None) -> dict[str, Any]:
    if (lon is None) != (lat is None):
        raise InvalidParameter("give both lon and lat")
    point = land.point_from_lonlat(lon, lat, settings) if lon is not None and lat is not None else None
    return land.land_price_at(conn, caller, point=point, parcel_code=parcel_code)


# --- parcel dossier (土地交易一站式) -------------------------------------------------------------------

@router.get("/parcels/search", summary="Parcels in force by code prefix or address (坐落) 宗地查找")
def parcel_search(conn: DbRead, caller: CurrentCaller,
                  q: Annotated[str, Query(description="a parcel code's start or part of the address")],
                  limit: Annotated[int, Query(ge=1, le=100)] = 20) -> dict[str, Any]:
    return land.find_parcels(conn, caller, q, limit=limit)


@router.get("/parcels/{parcel_code}/dossier", summary="宗地一站式档案 everything held on one parcel")
def parcel_dossier(parcel_code: str, conn: DbRead, caller: CurrentCaller, settings: AppSettings) -> dict[str, Any]:
    return land.parcel_dossier(conn, caller, parcel_code, settings=settings)


@router.get("/parcels/{parcel_code}/dossier.html", response_class=HTMLResponse,
            summary="The printable parcel dossier (A4, map as inline SVG, no web assets)")
def parcel_dossier_html(parcel_code: str, conn: DbRead, caller: CurrentCaller, settings: AppSettings) -> HTMLResponse:
    return HTMLResponse(land.parcel_dossier_page(conn, caller, parcel_code, settings=settings))


@router.get("/dossier", summary="The parcel dossier for a code, a point (x, y in crs) or a search text (q)")
def dossier(conn: DbRead, caller: CurrentCaller, settings: AppSettings, parcel_code: str | None = None,
            x: float | None = None, y: float | None = None,
            crs: Annotated[str, Query(description="CRS of x/y; default lon/lat")] = "OGC:CRS84",
            q: Annotated[str | None, Query(description="a parcel code's start or part of the address")] = None
            ) -> dict[str, Any]:
    if (x is None) != (y is None):
        raise InvalidParameter("give both x and y (lon and lat by default)")
    point = (storage_geometry({"type": "Point", "coordinates": [x, y]}, crs, settings, "Point")
             if x is not None and y is not None else None)
    code = land.resolve_parcel(conn, caller, parcel_code=parcel_code, point=point, text=q)
    return land.parcel_dossier(conn, caller, code, settings=settings)


# --- construction land (建设用地): statistics and red-line maps ---------------------------------------

def _statistics_answer(stats: dict[str, Any], f: str) -> Response:
    name = f"construction_land_{stats['period']}"
    if f == "csv":
        return download(land.statistics_csv(stats), f, name)
    if f == "xlsx":
        return download(land.statistics_xlsx(stats), f, name)
    return json_response(stats)


@router.get("/approvals/statistics", summary="建设用地统计 approvals by period, supply kind and class (district or city)")
def approval_statistics(conn: DbRead, caller: CurrentCaller, district: str | None = None,
                        since: dt.date | None = None, until: dt.date | None = None,
                        period: Literal["year", "quarter", "month"] = "year",
                        f: Literal["json", "csv", "xlsx"] = "json") -> Response:
    return _statistics_answer(land.construction_land_statistics(conn, caller, district=district, since=since,
                                                                until=until, period=period), f)


@router.post("/approvals/statistics", summary="建设用地统计 for a drawn polygon (the part of each red line inside)")
def approval_statistics_area(body: ls.ConstructionStatistics, conn: DbRead, caller: CurrentCaller,
                             settings: AppSettings, f: Literal["json", "csv", "xlsx"] = "json") -> Response:
    return _statistics_answer(land.construction_land_statistics(
        conn, caller, geometry=_area(body.geometry, body.crs, settings), since=body.since, until=body.until,
        period=body.period), f)


@router.get("/approvals/{approval_id}/redline", summary="An approval's red line: CGCS2000 corners, area, parcels")
def approval_redline(approval_id: int, conn: DbRead, caller: CurrentCaller, settings: AppSettings) -> dict[str, Any]:
    return land.approval_redline(conn, caller, approval_id, settings=settings)


@router.get("/approvals/{approval_id}/redline.html", response_class=HTMLResponse,
            summary="The printable red-line map (建设用地红线图) of an approval")
def approval_redline_html(approval_id: int, conn: DbRead, caller: CurrentCaller, settings: AppSettings) -> HTMLResponse:
    return HTMLResponse(land.approval_redline_page(conn, caller, approval_id, settings=settings))
