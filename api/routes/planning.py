"""/planning: site-selection pre-review, balance tables, land-use statistics, survey loading and
the change survey. Thin: parse, call the land-use service, shape the answer."""

from __future__ import annotations

import json
from typing import Annotated, Any

from fastapi import APIRouter, File, Form, Query, UploadFile
from fastapi.responses import HTMLResponse, Response

from api.common import AREA_MAX_VERTICES, bbox_area, download, storage_geometry
from api.deps import AppSettings, CurrentCaller, DbRead, DbWrite
from gis.documents import check_lang
from gis.errors import InvalidParameter
from gis.io.uploads import UploadLimits, spool_bytes, spool_file
from layers.landuse import schemas as ls
from layers.landuse import service as land

router = APIRouter(prefix="/planning", tags=["planning 规划"])


# a plain def: reading the upload, parsing the red line and the pre-review are blocking work, which
# FastAPI runs in its thread pool instead of on the event loop
@router.post("/prereview", status_code=201, summary="建设项目用地预审与选址 site-selection pre-review")
def prereview(conn: DbWrite, caller: CurrentCaller, settings: AppSettings,
              project_name: Annotated[str, Form(description="项目名称")],
              file: Annotated[UploadFile | None, File(description="GeoJSON, zipped Shapefile, DXF or TXT")] = None,
              redline: Annotated[str | None, Form(description="the red line as text (GeoJSON or TXT)")] = None,
              red_format: Annotated[str | None, Form(alias="format",
                                                     description="geojson|shapefile|dxf|txt; default: detect")] = None,
              crs: Annotated[str | None, Form(description="CRS when the file does not carry one")] = None,
              intended_use: Annotated[str | None, Form(description="用地用海 planning class, e.g. 1001")] = None,
              survey_year: Annotated[int | None, Form()] = None,
              plan_name: Annotated[str | None, Form()] = None,
              price_class: Annotated[str | None, Form()] = None) -> dict[str, Any]:
    if (file is None) == (redline is None):
        raise InvalidParameter("send the red line either as a file upload (file) or as text (redline), not both")
    limits = UploadLimits.for_service(settings)
    # the upload goes to a temporary file in blocks, refused (413) past the size limit before it is
    # all read; a text red line is held to the same limits
    if file is not None:
        upload = spool_file(file.file, limits, filename=file.filename)
    else:
        upload = spool_bytes((redline or "").encode("utf-8"), limits)
    with upload:
        red = land.read_red_line(upload, settings=settings, filename=upload.filename, declared_format=red_format,
                                 declared_crs=crs)
    return land.site_prereview(conn, caller, red, project_name=project_name, intended_use=intended_use,
                               survey_year=survey_year, plan_name=plan_name, price_class=price_class,
                               rules_dir=settings.paths.rules_dir)


@router.get("/prereview/{report_id}", summary="Re-open a stored pre-review report")
def prereview_report(report_id: int, conn: DbRead, caller: CurrentCaller) -> dict[str, Any]:
    report, _ = land.open_report(conn, caller, report_id)
    return report


DocumentLang = Annotated[str, Query(description="zh: Chinese labels; en: Chinese labels with English after them")]


@router.get("/prereview/{report_id}/report.html", response_class=HTMLResponse,
            summary="The printable pre-review report (A4, map as inline SVG, no web assets)")
def prereview_html(report_id: int, conn: DbRead, caller: CurrentCaller, settings: AppSettings,
                   lang: DocumentLang = "zh") -> HTMLResponse:
    check_lang(lang)
    return HTMLResponse(land.report_page(conn, caller, report_id, settings=settings, lang=lang))


def _render(table: dict[str, Any], output: str, name: str, settings: Any, lang: str) -> Response:
    if output == "json":
        return Response(content=json.dumps(table, ensure_ascii=False, default=str).encode("utf-8"),
                        media_type="application/json")
    if output == "csv":
        return download(land.balance_csv(table), output, name)
    if output == "xlsx":
        return download(land.balance_xlsx(table), output, name)
    if output == "html":
        return HTMLResponse(land.balance_page(table, settings=settings, lang=lang))
    raise InvalidParameter("f is json, csv, xlsx or html")


@router.get("/balance", summary="土地利用面积平衡表 for a district, bbox or the whole city")
def balance(conn: DbRead, caller: CurrentCaller, settings: AppSettings, base_year: int | None = None,
            target_year: int | None = None, target_plan: str | None = None, district: str | None = None,
            bbox: str | None = None, basis: str = "ellipsoidal",
            f: Annotated[str, Query(description="json|csv|xlsx|html")] = "json", lang: DocumentLang = "zh") -> Response:
    check_lang(lang)
    table = land.balance_table(conn, caller, base_year=base_year, target_year=target_year, target_plan=target_plan,
                               geometry=bbox_area(bbox, settings), district=district, basis=basis)
    return _render(table, f, f"balance_{table['base']['year']}_{target_year or 'plan'}", settings, lang)


@router.post("/balance", summary="土地利用面积平衡表 for a drawn polygon")
def balance_area(body: ls.BalanceRequest, conn: DbRead, caller: CurrentCaller, settings: AppSettings,
                 f: Annotated[str, Query(description="json|csv|xlsx|html")] = "json",
                 lang: DocumentLang = "zh") -> Response:
    check_lang(lang)
    table = land.balance_table(conn, caller, base_year=body.base_year, target_year=body.target_year,
                               target_plan=body.target_plan,
                               geometry=storage_geometry(body.geometry, body.crs, settings,
                                                         max_vertices=AREA_MAX_VERTICES),
                               basis=body.basis)
    return _render(table, f, f"balance_{table['base']['year']}", settings, lang)


@router.get("/statistics", summary="Land-use statistics of a survey year by class hierarchy")
def statistics(conn: DbRead, caller: CurrentCaller, settings: AppSettings, year: int | None = None,
               district: str | None = None,
               bbox: str | None = None, basis: str = "ellipsoidal") -> dict[str, Any]:
    return land.landuse_statistics(conn, caller, year=year, geometry=bbox_area(bbox, settings), district=district,
                                   basis=basis)


@router.post("/statistics", summary="Land-use statistics of a survey year for a drawn polygon")
def statistics_area(body: ls.AreaQuery, conn: DbRead, caller: CurrentCaller, settings: AppSettings,
                    year: int | None = None,
                    basis: str = "ellipsoidal") -> dict[str, Any]:
    area = storage_geometry(body.geometry, body.crs, settings, max_vertices=AREA_MAX_VERTICES)
    return land.landuse_statistics(conn, caller, year=year, geometry=area, basis=basis)


@router.post("/survey/{year}", status_code=201, summary="Load a survey year (变更调查) and compute change patches")
def load_survey(year: int, body: ls.SurveyLoad, conn: DbWrite, caller: CurrentCaller,
                settings: AppSettings) -> dict[str, Any]:
    features = body.features.get("features") if body.features.get("type") == "FeatureCollection" else None
    if not features:
        raise InvalidParameter("features must be a GeoJSON FeatureCollection with at least one feature")
    patches = []
    for feature in features:
        props = dict(feature.get("properties") or {})
        props["geometry"] = storage_geometry(feature.get("geometry") or {}, body.crs, settings,
                                             max_vertices=AREA_MAX_VERTICES)
        patches.append(props)
    return land.load_survey_year(conn, caller, year=year, patches=patches, settings=settings,
                                 class_system=body.class_system, completeness=body.completeness)


@router.get("/survey", summary="Loaded survey years: complete or partial, covered area")
def survey_years(conn: DbRead, caller: CurrentCaller) -> dict[str, Any]:
    return land.survey_years_overview(conn, caller)


@router.post("/survey/{year}/completeness", summary="Declare a survey year complete or partial (or derive it again)")
def survey_completeness(year: int, body: ls.SurveyCompleteness, conn: DbWrite, caller: CurrentCaller) -> dict[str, Any]:
    return land.record_survey_year(conn, caller, year=year, completeness=body.completeness, note=body.note)


@router.post("/change-survey", summary="Recompute change patches between two survey years")
def change_survey(conn: DbWrite, caller: CurrentCaller, from_year: int, to_year: int) -> dict[str, Any]:
    return land.change_survey(conn, caller, from_year=from_year, to_year=to_year)


@router.get("/change-survey", summary="Change summary (from class → to class) between two survey years")
def change_summary(conn: DbRead, caller: CurrentCaller, from_year: int, to_year: int) -> dict[str, Any]:
    return land.change_summary(conn, caller, from_year=from_year, to_year=to_year)
