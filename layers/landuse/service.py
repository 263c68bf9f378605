"""Every use case of the land-use family, each checking the caller's right first: site pre-review
(建设项目用地预审与选址) and its stored reports, balance tables and statistics, survey loading and
the change survey, land supervision, construction-land approvals, base land price.

The only module the /planning and /land routes and other families call. Reads go through
layers/landuse/repository.py; the rules and tables are built by the pure modules (prereview.py,
balance.py, survey.py, classes.py); other families are reached through their ``service`` (cadastre
for parcels, pipeline for pipes). Writes go through gis.writes or are audited here, in the caller's
transaction (never committed here).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pyproj
import shapely
import shapely.ops
from shapely.geometry import Point
from shapely.geometry.base import BaseGeometry
from sqlalchemy.engine import Connection, Engine

from gis.access import SYSTEM, Caller, can_read, mask_properties, require_read, require_row, require_write
from gis.crs import transformer
from gis.errors import Conflict, Forbidden, GisError, InvalidGeometry, InvalidParameter, NotFound
from gis.geometry import geometry_problem, promote, to_storage
from gis.io.uploads import SpooledUpload, UploadLimits
from gis.settings import Settings
from gis.svgmap import padded_box
from gis.writes import audit, insert_feature
from layers.cadastre import service as cadastre
from layers.emergency import service as emergency_service
from layers.landuse import balance, classes, construction, disputes, documents, dossier, prereview, survey
from layers.landuse import repository as repo
from layers.landuse.balance import balance_csv, balance_xlsx  # noqa: F401  (re-exported: the renderings routes send)
from layers.landuse.construction import statistics_csv, statistics_xlsx  # noqa: F401  (re-exported, likewise)
from layers.landuse.layers import (
    APPROVALS,
    CHANGES,
    CONTROL_LINES,
    DISPUTE_CLAIMS,
    PLANNING,
    PREREVIEWS,
    PRICE_ZONES,
    SUPERVISION,
    SURVEY,
)
from layers.landuse.redline import RedLine, parse_redline
from layers.pipeline import service as pipeline_service


def _plain(row: dict[str, Any]) -> dict[str, Any]:
    out = {}
    for key, value in row.items():
        if isinstance(value, (dt.date, dt.datetime)):
            out[key] = value.isoformat()
        elif hasattr(value, "as_tuple"):
            out[key] = float(value)
        elif key != "geom":
            out[key] = value
    return out


# --- site pre-review -------------------------------------------------------------------------------

def read_red_line(content: bytes | str | SpooledUpload, *, settings: Settings, filename: str | None = None,
                  declared_format: str | None = None, declared_crs: str | None = None) -> RedLine:
    """A red line in any accepted format (GeoJSON, zipped Shapefile, DXF, coordinate TXT) as one
    validated polygon in the storage CRS, within the service's upload limits (size, zip members and
    ratio, vertices); a GisError (→ 400, 413 past a limit) says what to fix."""
    return parse_redline(content, filename=filename, declared_format=declared_format, declared_crs=declared_crs,
                         settings=settings, limits=UploadLimits.for_service(settings))


def site_prereview(conn: Connection, caller: Caller, red_line: RedLine, *, project_name: str,
                   intended_use: str | None = None, survey_year: int | None = None,
                   plan_name: str | None = None, price_class: str | None = None,
                   store: bool = True, rules_dir: Path | None = None) -> dict[str, Any]:
    """The pre-review report of a red line (storage CRS), masked for the caller; with ``store`` it is
    kept in landuse_prereview_reports (a write: the caller needs write scope for that layer).

    Land use comes from ``survey_year`` or, by default, the latest complete survey year; the report
    states the year and the part of the red line it does not cover. The urban development boundary
    item judges the part outside by ``intended_use`` through the rule table urban_boundary_uses (in
    ``rules_dir``, default the shipped data/rules)."""
    require_read(caller, CONTROL_LINES)
    if store:
        require_write(caller, PREREVIEWS)
    prereview.check_request(project_name, price_class)
    site = red_line.geometry
    year, status = survey_year_used(conn, survey_year)
    # the pipelines crossing the site come from another family's tables: ask for them on a second
    # connection while this one does the land queries (read-only; halves the wait on a large site)
    executor = ThreadPoolExecutor(max_workers=1)
    # stored as the system sees them; each reader is shown what it may read (_report_for)
    pipelines_job = executor.submit(_pipelines_crossing, conn.engine, site, SYSTEM)
    executor.shutdown(wait=False)
    landuse_rows = repo.survey_breakdown(conn, year, site)
    overlaps = repo.control_overlaps(conn, site)
    inside = repo.control_union_area(conn, site, "urban_development_boundary")
    zones = repo.planning_breakdown(conn, site, plan_name)
    # parcels are stored unmasked and masked whenever the report is shown
    parcels = cadastre.parcels_in_area(conn, site, caller=SYSTEM, min_area_m2=prereview.OVERLAP_TOLERANCE_M2)
    pipelines = pipelines_job.result()
    prices = repo.price_breakdown(conn, site)
    covered = sum(r["plane_area"] for r in landuse_rows)
    coverage = survey.coverage_statement(year, status["completeness"], site.area, covered, "红线 the red line")
    report = prereview.assess_site(
        project_name=project_name, red_line=red_line, survey_year=year, survey_coverage=coverage,
        intended_use=intended_use,
        plan_name=plan_name, price_class=price_class, landuse_rows=landuse_rows, control_overlaps=overlaps,
        inside_urban_boundary=inside, zones=zones, parcels=parcels, pipelines=pipelines, price_rows=prices,
        boundary_rules=prereview.urban_boundary_rules(rules_dir), price_rules=prereview.price_class_rules(rules_dir))
    if store:
        report_id = repo.store_report(conn, project_name=project_name, actor=caller.name,
                                      department=caller.department or "govgis",
                                      input_format=red_line.input_format, input_crs=red_line.input_crs,
                                      verdict=report["verdict"], total_area=report["total_area"], report=report,
                                      geometry=site)
        report["id"] = report_id
        audit(conn, caller, PREREVIEWS.id, report_id, "insert", None, None,
              {"project_name": project_name, "verdict": report["verdict"], "total_area": report["total_area"]})
    return _report_for(caller, report)


def _report_for(caller: Caller, report: dict[str, Any]) -> dict[str, Any]:
    """A report as a caller may see it: holders masked by the cadastre's policy, the pipes crossing the
    site only for a caller who may read pipelines (a report keeps what its author could see)."""
    return prereview.for_caller(report, mask_parcel=lambda parcel: cadastre.public_parcel(caller, parcel),
                                show_pipelines=pipeline_service.may_read_pipes(caller))


def _pipelines_crossing(engine: Engine, site: BaseGeometry, caller: Caller) -> dict[str, Any]:
    """Pipes crossing the site, through the pipeline family's public service."""
    try:
        with engine.connect() as conn:
            pipes = pipeline_service.pipes_in_area(conn, site, caller=caller)
    except GisError as exc:
        return {"available": False, "note": f"管线不可见 pipelines not shown: {exc.detail}"}
    return {"available": True, "count": len(pipes), "pipes": pipes,
            "length_inside_m": sum(p["length_inside_m"] for p in pipes)}


def open_report(conn: Connection, caller: Caller, report_id: int) -> tuple[dict[str, Any], BaseGeometry]:
    """A stored report, masked for the caller, with its red line."""
    require_read(caller, PREREVIEWS)
    stored = repo.load_report(conn, report_id)
    if stored is None:
        raise NotFound(f"no pre-review report {report_id}")
    # another department's report looks like no report (ids are sequential: they must not tell)
    require_row(caller, PREREVIEWS, stored, f"pre-review report {report_id}")
    report = dict(stored["report"])
    report["id"] = stored["id"]
    return _report_for(caller, report), stored["geometry"]


def report_page(conn: Connection, caller: Caller, report_id: int, *, settings: Settings, lang: str = "zh") -> str:
    """The printable pre-review report of a stored report (gis.documents): a map of the site with the
    parcels and roads around it and the control lines inside it (inline SVG), the checks, the tables,
    the base land price of the intended use, and the opinion and signature block."""
    report, site = open_report(conn, caller, report_id)
    box = padded_box(site.bounds, share=0.3)
    parcels = _if_allowed(lambda: cadastre.parcel_outlines(conn, box, caller=caller))
    roads = _if_allowed(lambda: emergency_service.road_lines(conn, box, caller=caller))
    return documents.prereview_document(report, site, controls=repo.control_geometries(conn, site),
                                        parcels_around=parcels, roads=roads, box=box,
                                        bureau=settings.service.bureau_name, zone=settings.service.time_zone,
                                        storage_crs=settings.spatial.storage_crs, lang=lang)


def _if_allowed(read: Callable[[], list[dict[str, Any]]]) -> list[dict[str, Any]]:
    """A map layer the caller may not read is left off the map, not an error for the whole report."""
    try:
        return read()
    except Forbidden:
        return []


def balance_page(table: dict[str, Any], *, settings: Settings, lang: str = "zh") -> str:
    """The printable balance table (gis.documents), with each side's share (占比)."""
    return documents.balance_document(table, bureau=settings.service.bureau_name, zone=settings.service.time_zone,
                                      lang=lang)


# --- balance tables and statistics -----------------------------------------------------------------

def _survey_side(conn: Connection, year: int, basis: str, geometry: BaseGeometry | None,
                 district: str | None) -> tuple[balance.Side, dict[str, Any]]:
    """One survey year's side of a table and what the year covers of the table's input."""
    statuses = survey_year_statuses(conn)
    if year not in statuses:
        raise NotFound(f"no land-use survey for {year}; surveys held: {', '.join(map(str, statuses)) or 'none'}")
    areas = repo.survey_area_by_class(conn, year, geometry=geometry, district=district)
    covered = sum(plane for plane, _ in areas.values())
    input_area, what = _input_area(conn, statuses, geometry, district)
    side = balance.survey_side(year, areas, basis)
    return side, survey.coverage_statement(year, statuses[year]["completeness"], input_area, covered, what)


def _input_area(conn: Connection, statuses: dict[int, dict[str, Any]], geometry: BaseGeometry | None,
                district: str | None) -> tuple[float, str]:
    """The plane area (m²) a table or statistic is about — the drawn area, or the district or city as
    the latest complete survey year has it — and its name for the coverage note."""
    if geometry is not None:
        return geometry.area, "所选范围 the drawn area"
    reference = _latest_complete(statuses)
    if reference is None:
        return 0.0, "the city"
    if district is not None:
        return repo.district_area(conn, reference, district), f"{district} 区 the district (as in {reference})"
    return float(statuses[reference]["covered_area_m2"]), f"全市 the city (as in {reference})"


def _latest_complete(statuses: dict[int, dict[str, Any]], not_after: int | None = None) -> int | None:
    years = [y for y, st in statuses.items() if st["completeness"] == "complete" and (not_after is None or
                                                                                       y <= not_after)]
    return max(years) if years else None


def _plan_side(conn: Connection, plan_name: str, geometry: BaseGeometry | None,
               district: str | None) -> balance.Side:
    if plan_name not in repo.plan_names(conn):
        raise NotFound(f"no plan {plan_name!r}; plans held: {', '.join(repo.plan_names(conn)) or 'none'}")
    return balance.plan_side(plan_name, repo.plan_area_by_class(conn, plan_name, geometry=geometry,
                                                                district=district))


def balance_table(conn: Connection, caller: Caller, *, base_year: int | None = None, target_year: int | None = None,
                  target_plan: str | None = None, geometry: BaseGeometry | None = None,
                  district: str | None = None, basis: str = "ellipsoidal") -> dict[str, Any]:
    """The balance table of a base survey year (default: the latest complete one) against a target
    survey year or a plan, stating each survey year used and the area of the table's input it does
    not cover.

    ``basis``: 'ellipsoidal' (the survey's legal area, default) or 'plane'. A plan has only plane
    areas, so a survey-vs-plan table is always on the plane basis.
    """
    require_read(caller, SURVEY)
    if target_plan is not None:
        require_read(caller, PLANNING)
    balance.check_basis(basis)
    balance.check_targets(target_year, target_plan)
    if target_plan is not None:
        basis = "plane"
    base_year = base_year if base_year is not None else survey_year_used(conn, None)[0]
    base, base_cover = _survey_side(conn, base_year, basis, geometry, district)
    coverage = {"base": base_cover}
    if target_year is not None:
        target, coverage["target"] = _survey_side(conn, target_year, basis, geometry, district)
    else:
        target = _plan_side(conn, target_plan, geometry, district)  # type: ignore[arg-type]
    table = balance.table_of(base, target, base_year=base_year, target_year=target_year, target_plan=target_plan,
                             basis=basis, scope=balance.scope_of(district, geometry))
    table["survey_coverage"] = coverage
    return table


def landuse_statistics(conn: Connection, caller: Caller, *, year: int | None = None,
                       geometry: BaseGeometry | None = None, district: str | None = None,
                       basis: str = "ellipsoidal") -> dict[str, Any]:
    """Areas of one survey year (default: the latest complete one) by class hierarchy, saying which
    area (ellipsoidal or plane) is used, the year and how much of the input it does not cover."""
    require_read(caller, SURVEY)
    balance.check_basis(basis)
    year = year if year is not None else survey_year_used(conn, None)[0]
    side, coverage = _survey_side(conn, year, basis, geometry, district)
    stats = balance.statistics_of(side, year=year, basis=basis)
    stats["survey_coverage"] = coverage
    return stats


# --- survey years: complete or partial --------------------------------------------------------------

def survey_year_statuses(conn: Connection) -> dict[int, dict[str, Any]]:
    """Every loaded survey year with its completeness (as recorded; a year loaded through the generic
    paths and never recorded is derived from its coverage here), oldest first."""
    records = repo.survey_year_records(conn)
    loaded = repo.survey_years(conn)
    out: dict[int, dict[str, Any]] = {}
    for year in loaded:
        if year in records:
            out[year] = records[year]
    missing = [y for y in loaded if y not in records]
    for year in missing:
        count, covered, system = repo.year_coverage(conn, year)
        reference = max((float(r["covered_area_m2"]) for r in out.values() if r["completeness"] == "complete"),
                        default=None)
        out[year] = {"survey_year": year, "class_system": system, "patches": count, "covered_area_m2": covered,
                     **survey.year_status(covered, reference, None), "recorded": False}
    return dict(sorted(out.items()))


def survey_years_overview(conn: Connection, caller: Caller) -> dict[str, Any]:
    """The loaded survey years with their completeness and coverage, and the year statistics default to."""
    require_read(caller, SURVEY)
    statuses = survey_year_statuses(conn)
    return {"default_year": _latest_complete(statuses),
            "years": [_plain({k: v for k, v in st.items()}) for st in statuses.values()]}


def survey_year_used(conn: Connection, requested: int | None) -> tuple[int, dict[str, Any]]:
    """The survey year a statistic uses: the one asked for (it must be loaded), else the latest complete
    year. NotFound when there is none."""
    statuses = survey_year_statuses(conn)
    if requested is not None:
        if requested not in statuses:
            raise NotFound(f"no land-use survey for {requested}; surveys held: "
                           f"{', '.join(map(str, statuses)) or 'none'}")
        return requested, statuses[requested]
    year = _latest_complete(statuses)
    if year is None:
        raise NotFound("no complete land-use survey is loaded: load one (POST /planning/survey/{year}) or name a "
                       "partial year (survey_year)")
    return year, statuses[year]


def record_survey_year(conn: Connection, caller: Caller, *, year: int, completeness: str | None = None,
                       note: str | None = None) -> dict[str, Any]:
    """Record a loaded survey year's completeness: declared, or (``completeness`` None) derived from the
    share of the reference extent — the largest other complete year — its patches cover. For years
    loaded by a bulk import, and to correct a year; audited."""
    require_write(caller, SURVEY)
    survey.check_completeness(completeness)
    count, covered, system = repo.year_coverage(conn, year)
    if not count:
        raise NotFound(f"no land-use survey for {year}: load its patches first")
    records = repo.survey_year_records(conn)
    others = {y: st for y, st in survey_year_statuses(conn).items() if y != year}
    reference = max((float(st["covered_area_m2"]) for st in others.values() if st["completeness"] == "complete"),
                    default=None)
    status = survey.year_status(covered, reference, completeness)
    values = {"survey_year": year, "class_system": system, "patches": count, "covered_area_m2": covered,
              "completeness": status["completeness"], "declared": status["declared"], "coverage": status["coverage"],
              "note": note}
    before = records.get(year)
    repo.save_survey_year(conn, values)
    audit(conn, caller, SURVEY.id, None, "other", _plain(before) if before else None, values,
          {"survey_year": year, "completeness": values["completeness"]})
    return values


# --- survey loading and the change survey ----------------------------------------------------------

def load_survey_year(conn: Connection, caller: Caller, *, year: int, patches: list[dict[str, Any]],
                     settings: Settings, class_system: str = "三调工作分类", completeness: str | None = None,
                     min_change_area_m2: float = survey.MIN_CHANGE_AREA_M2) -> dict[str, Any]:
    """Load one survey year (变更调查) and compute change patches against the previous year.

    Writes survey patches and change patches, so the caller needs write scope for both layers.
    ``patches``: dicts with patch_no, class_code, district, geometry (shapely, storage CRS), optional
    class_name, settlement_code, ownership, ellipsoidal_area. ``completeness`` declares the year
    complete or partial; without it, it is derived from the year's coverage (see survey.py).
    Change patches are computed against the previous year loaded. Refused (nothing written)
    when the year is already loaded or a patch is bad.
    """
    require_write(caller, SURVEY)
    require_write(caller, CHANGES)
    survey.check_class_system(class_system)
    survey.check_completeness(completeness)
    if year in repo.survey_years(conn):
        raise Conflict(f"survey year {year} is already loaded; a survey year is loaded once")
    rows = survey.survey_rows(patches, year=year, class_system=class_system,
                              storage_crs=settings.spatial.storage_crs)
    repo.insert_survey_patches(conn, rows)
    status = record_survey_year(conn, caller, year=year, completeness=completeness)
    # the change survey compares with the year before, complete or not: the overlay only reports land
    # both years cover
    previous = [y for y in repo.survey_years(conn) if y < year]
    result: dict[str, Any] = {"year": year, "patches": len(rows), "completeness": status["completeness"],
                              "completeness_declared": status["declared"], "coverage": status["coverage"],
                              "previous_year": None, "change_patches": 0}
    if previous:
        result["previous_year"] = previous[-1]
        result["change_patches"] = repo.compute_change_patches(conn, previous[-1], year, min_change_area_m2)
        result["changes"] = repo.change_summary(conn, previous[-1], year)
    audit(conn, caller, SURVEY.id, None, "import", None, None,
          {"survey_year": year, "patches": len(rows), "previous_year": result["previous_year"]})
    if result["change_patches"]:
        audit(conn, caller, CHANGES.id, None, "import", None, None,
              {"from_year": result["previous_year"], "to_year": year, "patches": result["change_patches"]})
    return result


def change_survey(conn: Connection, caller: Caller, *, from_year: int, to_year: int,
                  min_change_area_m2: float = survey.MIN_CHANGE_AREA_M2) -> dict[str, Any]:
    """Recompute the change patches between two loaded survey years (from class → to class, area).

    Replaces the change patches of that pair of years: the caller needs write scope for them."""
    require_write(caller, CHANGES)
    years = repo.survey_years(conn)
    for y in (from_year, to_year):
        if y not in years:
            raise InvalidParameter(f"survey year {y} is not loaded; loaded: {', '.join(map(str, years))}")
    if to_year <= from_year:
        raise InvalidParameter("to_year must be after from_year")
    count = repo.compute_change_patches(conn, from_year, to_year, min_change_area_m2)
    audit(conn, caller, CHANGES.id, None, "import", None, None,
          {"from_year": from_year, "to_year": to_year, "patches": count})
    return {"from_year": from_year, "to_year": to_year, "change_patches": count,
            "changes": repo.change_summary(conn, from_year, to_year)}


def change_summary(conn: Connection, caller: Caller, *, from_year: int, to_year: int) -> dict[str, Any]:
    """The stored change patches between two survey years, grouped from class → to class."""
    require_read(caller, CHANGES)
    return {"from_year": from_year, "to_year": to_year, "changes": repo.change_summary(conn, from_year, to_year)}


# --- land supervision, approvals, land price -------------------------------------------------------

def land_price_at(conn: Connection, caller: Caller, *, point: BaseGeometry | None = None,
                  parcel_code: str | None = None) -> dict[str, Any]:
    """基准地价 of a point, or of a parcel (area-weighted over the price zones it lies in)."""
    require_read(caller, PRICE_ZONES)
    if (point is None) == (parcel_code is None):
        raise InvalidParameter("give either a point (lon, lat) or a parcel_code")
    if point is not None:
        zones = [_plain(z) for z in repo.price_at_point(conn, point)]
        return {"point": list(point.coords[0]), "zones": zones,
                "found": bool(zones), "note": None if zones else "该点不在任何基准地价级别范围内 no price zone here"}
    geometry = cadastre.parcel_geometry(conn, parcel_code, caller=caller)  # type: ignore[arg-type]
    zones = [_plain(z) for z in repo.price_breakdown(conn, geometry)]
    by_class: dict[str, dict[str, float]] = {}
    for z in zones:
        entry = by_class.setdefault(z["land_class"], {"area": 0.0, "value": 0.0})
        entry["area"] += z["area"]
        entry["value"] += z["area"] * z["price_per_m2"]
    for entry in by_class.values():
        entry["mean_price_per_m2"] = entry["value"] / entry["area"]
    return {"parcel_code": parcel_code, "parcel_area": geometry.area, "zones": zones, "by_class": by_class,
            "found": bool(zones)}


def supervision_comparison(conn: Connection, caller: Caller, *, case_id: int | None = None,
                           geometry: BaseGeometry | None = None, first: dt.datetime, second: dt.datetime
                           ) -> dict[str, Any]:
    """A supervision patch against the cadastre and the land-use survey at two dates.

    For each date: the parcels valid then (with the area of the patch on each) and the land use of
    the latest survey not after that date's year, by class. Then what differs.
    """
    require_read(caller, SUPERVISION)
    require_read(caller, SURVEY)
    case = None
    if case_id is not None:
        row = repo.supervision_case(conn, case_id)
        if row is None:
            raise NotFound(f"no supervision case {case_id}")
        geometry = row["geometry"]
        case = {"id": case_id, "case_no": row["case_no"], "status": row["status"]}
    if geometry is None:
        raise InvalidParameter("give a supervision case id or a patch polygon")
    if second < first:
        raise InvalidParameter("the second date must not be before the first")
    snapshots = []
    statuses = survey_year_statuses(conn)
    for when in (first, second):
        # the latest complete survey not after that year; where none was complete yet, the latest one
        year = _latest_complete(statuses, when.year) or max((y for y in statuses if y <= when.year), default=None)
        landuse = []
        if year is not None:
            for r in repo.survey_breakdown(conn, year, geometry):
                landuse.append({"class_code": r["class_code"], "class_name": r["class_name"],
                                "legal_group": classes.classify(r["class_code"]).group,
                                "plane_area": r["plane_area"]})
        parcels = [{k: p[k] for k in ("parcel_code", "right_holder", "landuse_code", "version", "area_inside")}
                   for p in cadastre.parcels_as_of(conn, geometry, when, caller=caller) if p["area_inside"] > 0.01]
        coverage = (survey.coverage_statement(year, statuses[year]["completeness"], geometry.area,
                                              sum(r["plane_area"] for r in landuse), "监察图斑 the patch")
                    if year is not None else None)
        snapshots.append({"date": when.isoformat(), "survey_year": year, "survey_coverage": coverage,
                          "landuse": landuse, "parcels": parcels})
    a, b = snapshots

    def by_code(rows: list[dict[str, Any]]) -> dict[str, float]:
        return {r["class_code"]: r["plane_area"] for r in rows}

    la, lb = by_code(a["landuse"]), by_code(b["landuse"])
    pa = {p["parcel_code"]: p for p in a["parcels"]}
    pb = {p["parcel_code"]: p for p in b["parcels"]}
    arable_lost = sum(v for k, v in la.items() if classes.is_arable(k)) - sum(
        v for k, v in lb.items() if classes.is_arable(k))
    construction_gain = sum(v for k, v in lb.items() if classes.classify(k).group == "建设用地") - sum(
        v for k, v in la.items() if classes.classify(k).group == "建设用地")
    return {
        "case": case, "patch_area": geometry.area, "first": a, "second": b,
        "changes": {
            "landuse": {code: lb.get(code, 0.0) - la.get(code, 0.0) for code in sorted(la.keys() | lb.keys())
                        if abs(lb.get(code, 0.0) - la.get(code, 0.0)) > 0.01},
            "arable_lost": arable_lost, "construction_gained": construction_gain,
            "parcels_created": sorted(pb.keys() - pa.keys()), "parcels_retired": sorted(pa.keys() - pb.keys()),
            "parcels_changed": sorted(c for c in pa.keys() & pb.keys() if pa[c]["version"] != pb[c]["version"]),
        },
    }


def record_supervision_case(conn: Connection, caller: Caller, properties: dict[str, Any],
                            geometry: BaseGeometry) -> dict[str, Any]:
    """Open a land supervision case (audited, through the one write path). An ownership dispute is
    opened with its parties' claims (``record_ownership_dispute``), not here."""
    require_write(caller, SUPERVISION)
    if properties.get("kind") == "ownership_dispute":
        raise InvalidParameter("an ownership dispute is opened with its parties and the land each claims: "
                               "POST /land/supervision/disputes")
    return _plain(insert_feature(conn, SUPERVISION, caller, properties, _area(geometry)))


def record_land_approval(conn: Connection, caller: Caller, properties: dict[str, Any],
                         geometry: BaseGeometry) -> dict[str, Any]:
    """Record a construction-land approval; unless given, it is linked to the live parcels its red
    line takes land from, and lies in the district of most of that land (for the statistics)."""
    require_write(caller, APPROVALS)
    props = dict(properties)
    geometry = _area(geometry)
    if props.get("supply_kind") not in ("allocation", "transfer", "lease"):
        raise InvalidParameter("supply_kind is allocation (划拨), transfer (出让) or lease (租赁)")
    if not props.get("parcel_codes"):
        props["parcel_codes"] = [p["parcel_code"] for p in cadastre.parcels_in_area(conn, geometry, caller=caller)]
    if props.get("district") is None:
        props["district"] = repo.district_of(conn, geometry)
    else:
        _check_district(props["district"])
    return _plain(insert_feature(conn, APPROVALS, caller, props, geometry))


def _check_district(district: str | None) -> None:
    if district is not None and not (len(district) == 6 and district.isdigit()):
        raise InvalidParameter(f"district is a 6-digit administrative code (GB/T 2260), e.g. 350203, not {district!r}")


def _area(geometry: BaseGeometry) -> BaseGeometry:
    """A storage-CRS polygon checked and promoted to the tables' MultiPolygon."""
    problem = geometry_problem(geometry, "MultiPolygon")
    if problem:
        raise InvalidGeometry(problem)
    return promote(geometry, "MultiPolygon")


def point_from_lonlat(lon: float, lat: float, settings: Settings) -> BaseGeometry:
    """A WGS84/CGCS2000 lon/lat point in the storage CRS (validated against the city bounds)."""
    return to_storage(Point(lon, lat), "OGC:CRS84", storage_crs=settings.spatial.storage_crs,
                      city_bounds=settings.spatial.city_bounds)


# --- parcel dossier (土地交易一站式) ------------------------------------------------------------------

def _unavailable(layer_title: str, exc: GisError) -> dict[str, Any]:
    return {"available": False, "note": f"{layer_title}不可见 not shown: {exc.detail}"}


def resolve_parcel(conn: Connection, caller: Caller, *, parcel_code: str | None = None,
                   point: BaseGeometry | None = None, text: str | None = None) -> str:
    """The parcel a dossier is about: given by its code, by a point (the parcel in force there) or by a
    search text (a code prefix or part of the address) that names exactly one parcel in force — or
    is exactly one parcel's whole address."""
    given = [v is not None for v in (parcel_code, point, text)]
    if sum(given) != 1:
        raise InvalidParameter("name the parcel in one way: parcel_code, a point (x and y), or q (a parcel code or "
                               "part of its address, 坐落)")
    if parcel_code is not None:
        return parcel_code
    if point is not None:
        found = cadastre.parcel_codes_at(conn, point, caller=caller)
        if not found:
            raise NotFound("no parcel in force at that point: click inside a parcel (宗地)")
        return found[0]
    matches = cadastre.search_parcels(conn, text or "", caller=caller, limit=11)
    if not matches:
        raise NotFound(f"no parcel in force has a code starting with or an address containing {text!r}")
    exact = [m for m in matches if text in (m["parcel_code"], m["address"])]
    if len(exact) == 1:  # 嘉禾路1号 is that house, not also 嘉禾路10号
        return exact[0]["parcel_code"]
    if len(matches) > 1:
        listed = ", ".join(m["parcel_code"] for m in matches[:10])
        more = " …" if len(matches) > 10 else ""
        raise InvalidParameter(f"{len(matches)} parcels match {text!r} ({listed}{more}): give more of the address or "
                               "the parcel code (GET /land/parcels/search lists the matches)")
    return matches[0]["parcel_code"]


def find_parcels(conn: Connection, caller: Caller, text: str, *, limit: int = 20) -> dict[str, Any]:
    """Parcels in force by a code prefix or part of the address (for choosing the dossier's parcel)."""
    matches = cadastre.search_parcels(conn, text, caller=caller, limit=limit + 1)
    return {"q": text, "count": min(len(matches), limit), "truncated": len(matches) > limit, "parcels": matches[:limit]}


def parcel_dossier(conn: Connection, caller: Caller, parcel_code: str, *, settings: Settings) -> dict[str, Any]:
    """Everything the land offices hold on one parcel in force, one answer (土地交易一站式): the parcel
    and its holder (masked per the cadastre's policy), registrations and lineage, current land use
    (the latest complete survey year) and planned use, control lines, base land price per use,
    construction-land approvals, supervision cases (parties masked), the pipes crossing it and their
    GB 50289 clearances (only for a key that may read pipelines).

    A section whose layer the caller may not read says so (``available: false``) instead of failing
    the whole dossier; the parcel itself is public."""
    parcel, geometry = cadastre.parcel_in_force(conn, parcel_code, caller=caller)
    timeline = cadastre.parcel_timeline(conn, caller, parcel_code)
    lineage = cadastre.parcel_lineage(conn, caller, parcel_code)
    area = geometry.area
    statuses = survey_year_statuses(conn)
    year = _latest_complete(statuses)
    landuse: dict[str, Any] = {"available": True, "survey_year": year, "classes": []}
    if year is not None:
        rows = repo.survey_breakdown(conn, year, geometry)
        landuse["classes"] = sorted(({"class_code": r["class_code"], "class_name": r["class_name"],
                                      "legal_group": classes.classify(r["class_code"]).group,
                                      "plane_area": r["plane_area"], "share": r["plane_area"] / area}
                                     for r in rows), key=lambda r: -r["plane_area"])
        landuse["survey_coverage"] = survey.coverage_statement(year, statuses[year]["completeness"], area,
                                                               sum(r["plane_area"] for r in rows), "宗地 the parcel")
    planning = {"available": True, "zones": [{**_plain(z), "share": z["area"] / area}
                                             for z in repo.planning_breakdown(conn, geometry, None)]}
    out: dict[str, Any] = {
        "parcel_code": parcel_code, "as_at": timeline["as_at"], "parcel": parcel,
        "geometry": _lonlat(geometry, settings), "plane_area": area,
        "registrations": timeline["registrations"], "versions": len(timeline["versions"]),
        "lineage": {k: lineage[k] for k in ("ancestors", "descendants", "edges")},
        "landuse": landuse, "planning": planning,
    }
    try:
        require_read(caller, CONTROL_LINES)
        out["control_lines"] = {"available": True, "overlaps": [
            {**_plain(c), "names": list(c["names"]), "share": c["area"] / area}
            for c in repo.control_overlaps(conn, geometry) if c["area"] > 0.01]}
    except GisError as exc:
        out["control_lines"] = _unavailable("控制线", exc)
    try:
        price = land_price_at(conn, caller, parcel_code=parcel_code)
        out["land_price"] = {"available": True, "zones": price["zones"], "by_use": [
            {"land_class": k, "area": v["area"], "mean_price_per_m2": v["mean_price_per_m2"],
             "value": v["value"]} for k, v in sorted(price["by_class"].items())]}
    except GisError as exc:
        out["land_price"] = _unavailable("基准地价", exc)
    try:
        require_read(caller, APPROVALS)
        out["approvals"] = {"available": True, "items": [_plain(a) for a in repo.approvals_touching(
            conn, parcel_code, geometry)]}
    except GisError as exc:
        out["approvals"] = _unavailable("建设用地审批", exc)
    try:
        require_read(caller, SUPERVISION)
        out["supervision"] = {"available": True, "cases": [
            mask_properties(caller, SUPERVISION, _plain(c)) for c in repo.cases_touching(conn, geometry)]}
    except GisError as exc:
        out["supervision"] = _unavailable("土地监察", exc)
    if pipeline_service.may_read_pipes(caller):
        pipes = pipeline_service.pipes_in_area(conn, geometry, caller=caller)
        out["pipelines"] = {"available": True, "count": len(pipes), "pipes": pipes,
                            "length_inside_m": sum(p["length_inside_m"] for p in pipes)}
        out["clearances"] = {"available": True, **pipeline_service.area_clearance(conn, geometry, caller=caller,
                                                                                   settings=settings)}
    else:
        note = "管线不可见：您的密钥无管线图层读取权限 pipelines not shown: your key may not read them"
        out["pipelines"] = {"available": False, "note": note}
        out["clearances"] = {"available": False, "note": note}
    out["constraints"] = dossier.constraints_of(out)
    return out


def parcel_dossier_page(conn: Connection, caller: Caller, parcel_code: str, *, settings: Settings) -> str:
    """The dossier as a printable HTML page (A4, Chinese labels, local times, a map of the parcel)."""
    record = parcel_dossier(conn, caller, parcel_code, settings=settings)
    _, geometry = cadastre.parcel_in_force(conn, parcel_code, caller=caller)
    return dossier.dossier_html(record, geometry, zone=settings.service.time_zone,
                               bureau=settings.service.bureau_name)


def _lonlat(geometry: BaseGeometry, settings: Settings) -> dict[str, Any]:
    """A storage-CRS geometry as GeoJSON in lon/lat (RFC 7946)."""
    to_lonlat = transformer(settings.spatial.storage_crs, "OGC:CRS84")
    return shapely.geometry.mapping(shapely.ops.transform(to_lonlat.transform, geometry))


# --- construction land (建设用地): statistics and red-line maps --------------------------------------

def construction_land_statistics(conn: Connection, caller: Caller, *, district: str | None = None,
                                 geometry: BaseGeometry | None = None, since: dt.date | None = None,
                                 until: dt.date | None = None, period: str = "year") -> dict[str, Any]:
    """Construction-land approvals by period (year, quarter, month of approval), supply kind
    (划拨/出让/租赁) and GB/T 21010 first-level class, for a district, a drawn area (the part of each
    red line inside it) or the whole city, between two approval dates (inclusive)."""
    require_read(caller, APPROVALS)
    construction.check_period(period)
    _check_district(district)
    if district is not None and geometry is not None:
        raise InvalidParameter("give a district or an area, not both")
    if since is not None and until is not None and until < since:
        raise InvalidParameter("until must not be before since")
    rows = repo.approvals_for_statistics(conn, district=district, geometry=geometry, since=since, until=until)
    if geometry is not None:
        scope = {"kind": "area", "name": "所选范围 the drawn area", "area_m2": geometry.area}
    elif district is not None:
        scope = {"kind": "district", "name": f"{district} 区 district", "district": district}
    else:
        scope = {"kind": "city", "name": "全市 the city"}
    scope.update(since=since.isoformat() if since else None, until=until.isoformat() if until else None)
    return construction.statistics_of(rows, period=period, scope=scope)


def _approval(conn: Connection, caller: Caller, approval_id: int) -> dict[str, Any]:
    require_read(caller, APPROVALS)
    row = repo.land_approval(conn, approval_id)
    if row is None:
        raise NotFound(f"no construction-land approval {approval_id}")
    return row


def approval_redline(conn: Connection, caller: Caller, approval_id: int, *, settings: Settings) -> dict[str, Any]:
    """The red line of one approval (建设用地红线): its corners in CGCS2000 (projected X/Y and B/L),
    edge lengths, area (m², ha, 亩) and the live parcels it takes land from (holders masked)."""
    row = _approval(conn, caller, approval_id)
    parcels = [_plain(p) for p in cadastre.parcels_in_area(conn, row["geometry"], caller=caller)]
    storage_crs = settings.spatial.storage_crs
    to_geographic = transformer(storage_crs, "EPSG:4490")
    red = construction.redline_of(_plain_keep_geometry(row), parcels, storage_crs=storage_crs,
                                  crs_name=pyproj.CRS.from_user_input(storage_crs).name,
                                  to_geographic=lambda x, y: to_geographic.transform(x, y))
    red["geometry"] = _lonlat(row["geometry"], settings)
    return red


def approval_redline_page(conn: Connection, caller: Caller, approval_id: int, *, settings: Settings) -> str:
    """The printable red-line map of one approval (A4: boundary, numbered corners, scale bar, tables)."""
    red = approval_redline(conn, caller, approval_id, settings=settings)
    row = _approval(conn, caller, approval_id)
    shapes = cadastre.parcels_as_of(conn, row["geometry"], repo.database_now(conn), caller=caller, shapes=True)
    return construction.redline_html(red, row["geometry"], [(p["parcel_code"], p["shape"]) for p in shapes],
                                     zone=settings.service.time_zone, bureau=settings.service.bureau_name,
                                     generated_at=repo.database_now(conn))


def _plain_keep_geometry(row: dict[str, Any]) -> dict[str, Any]:
    return {**_plain({k: v for k, v in row.items() if k != "geometry"}), "geometry": row["geometry"]}



# --- land supervision: ownership disputes and the case map ------------------------------------------

def record_ownership_dispute(conn: Connection, caller: Caller, properties: dict[str, Any],
                             parties: list[dict[str, Any]]) -> dict[str, Any]:
    """Open an ownership-dispute case (土地权属纠纷): the case (kind ownership_dispute, its patch the land
    claimed by any party) and each party's claim (``parties``: party, party_kind, party_id_number,
    party_phone, basis, geometry in the storage CRS), all through the one audited write path."""
    require_write(caller, SUPERVISION)
    require_write(caller, DISPUTE_CLAIMS)
    if len(parties) < 2:
        raise InvalidParameter("an ownership dispute has at least two parties, each with the land it claims")
    claims = [_area(p["geometry"]) for p in parties]
    patch = _area(shapely.union_all(claims))
    names = [str(p.get("party") or "").strip() for p in parties]
    if not all(names):
        raise InvalidParameter("every party needs its name (party)")
    # the parties are the claims' (each masked by its own kind); one joined text on the case would be
    # masked as one value and show the first party's name
    case = insert_feature(conn, SUPERVISION, caller, {**properties, "kind": "ownership_dispute", "party": None}, patch)
    for party, claim in zip(parties, claims, strict=True):
        values = {k: party.get(k) for k in ("party", "party_kind", "party_id_number", "party_phone", "basis")}
        insert_feature(conn, DISPUTE_CLAIMS, caller, {**values, "case_id": case["id"]}, claim, through_module=True)
    return _dispute_of(conn, caller, case["id"], None)


def ownership_dispute(conn: Connection, caller: Caller, case_id: int, *, settings: Settings) -> dict[str, Any]:
    """An ownership-dispute case with its parties (masked without the personal-data scope), each
    party's claimed area, the overlap of every two claims, the contested area (claimed by two or
    more, counted once) and the live parcels registered on the contested land."""
    return _dispute_of(conn, caller, case_id, settings)


def _dispute_of(conn: Connection, caller: Caller, case_id: int, settings: Settings | None) -> dict[str, Any]:
    require_read(caller, SUPERVISION)
    require_read(caller, DISPUTE_CLAIMS)
    case = repo.supervision_case_record(conn, case_id)
    if case is None:
        raise NotFound(f"no supervision case {case_id}")
    if case["kind"] != "ownership_dispute":
        raise NotFound(f"supervision case {case_id} is not an ownership dispute (it is {case['kind']}): it has no "
                       "parties' claims")
    claims = repo.dispute_claims(conn, case_id)
    overlap = disputes.overlaps_of([c["geometry"] for c in claims])
    contested = overlap.pop("contested")
    parcels = (cadastre.parcels_in_area(conn, contested, caller=caller) if contested is not None else [])
    shown_case = mask_properties(caller, SUPERVISION, _plain({k: v for k, v in case.items() if k != "geometry"}))
    out: dict[str, Any] = {
        "case": shown_case,
        "claims": [mask_properties(caller, DISPUTE_CLAIMS, _plain({k: v for k, v in c.items() if k != "geometry"}))
                   for c in claims],
        "overlap": overlap, "contested_parcels": [_plain(p) for p in parcels]}
    if settings is not None:
        for item, claim in zip(out["claims"], claims, strict=True):
            item["geometry"] = _lonlat(claim["geometry"], settings)
        out["contested_geometry"] = _lonlat(contested, settings) if contested is not None else None
    return out


def supervision_case_map(conn: Connection, caller: Caller, case_id: int, *, settings: Settings,
                         first: dt.datetime | None = None, second: dt.datetime | None = None) -> str:
    """The printable case map (监察图件): the case patch over the parcels at two dates side by side (for an
    ownership dispute also the parties' claims and their overlap) with the comparison tables.
    Defaults: the first date is New Year's Day of the year before the case was found, the second now."""
    require_read(caller, SUPERVISION)
    case = repo.supervision_case_record(conn, case_id)
    if case is None:
        raise NotFound(f"no supervision case {case_id}")
    zone = ZoneInfo(settings.service.time_zone)
    now = repo.database_now(conn)
    first = first or dt.datetime(case["found_on"].year - 1, 1, 1, tzinfo=zone)
    second = second or now
    comparison = supervision_comparison(conn, caller, case_id=case_id, first=first, second=second)
    dispute = claim_shapes = None
    contested = None
    if case["kind"] == "ownership_dispute" and can_read(caller, DISPUTE_CLAIMS):
        dispute = _dispute_of(conn, caller, case_id, None)
        claim_shapes = [c["geometry"] for c in repo.dispute_claims(conn, case_id)]
        found = disputes.overlaps_of(claim_shapes)["contested"]
        contested = found
    around = shapely.union_all([case["geometry"], *(claim_shapes or [])]).buffer(10)
    drawings = [{"parcels": cadastre.parcels_as_of(conn, around, when, caller=caller, shapes=True)}
                for when in (first, second)]
    shown = {**mask_properties(caller, SUPERVISION, _plain({k: v for k, v in case.items() if k != "geometry"})),
             "geometry": case["geometry"]}
    return disputes.case_map_html(shown, comparison, drawings, dispute, claim_shapes or [], contested,
                                  zone=settings.service.time_zone, bureau=settings.service.bureau_name,
                                  generated_at=now)
