"""All SQL of the land-use family: survey areas by class, change patches, control-line overlaps,
planning zones, price zones, stored pre-review reports.

Functions take the caller's connection, never commit, and take/return shapely geometries in the
storage CRS. A query area clips: a patch wholly inside counts its stored area, a patch across the
edge counts the part inside (its ellipsoidal area prorated by the plane share).
"""

from __future__ import annotations

from typing import Any

import shapely
import sqlalchemy as sa
from shapely.geometry.base import BaseGeometry
from sqlalchemy.engine import Connection

from layers.landuse.models import supervision_cases, survey_patches
from layers.landuse.models import survey_years as survey_year_table

# the SRID the tables were defined with (the storage SRID, fixed when the database was created)
SRID = survey_patches.c.geom.type.srid


def _geom_param(geometry: BaseGeometry) -> dict[str, Any]:
    return {"g": shapely.to_wkb(geometry), "srid": SRID}


G = "ST_GeomFromWKB(:g, :srid)"


def survey_years(conn: Connection) -> list[int]:
    """The survey years loaded, oldest first (a skip scan of the year index: a few index probes per
    year, not a pass over every patch — pre-reviews ask on each request)."""
    return list(conn.execute(sa.text("""
        WITH RECURSIVE years(y) AS (
          SELECT min(survey_year) FROM landuse_survey_patches
          UNION ALL
          SELECT (SELECT min(survey_year) FROM landuse_survey_patches WHERE survey_year > years.y)
            FROM years WHERE years.y IS NOT NULL)
        SELECT y FROM years WHERE y IS NOT NULL ORDER BY y""")).scalars())


def survey_year_records(conn: Connection) -> dict[int, dict[str, Any]]:
    """The recorded survey years (completeness, covered area …) by year."""
    return {int(r["survey_year"]): dict(r) for r in
            conn.execute(sa.select(survey_year_table).order_by(survey_year_table.c.survey_year)).mappings()}


def year_coverage(conn: Connection, year: int) -> tuple[int, float, str | None]:
    """A survey year's patch count, plane area covered (m²; patches of a year do not overlap) and
    classification system."""
    count, area, system = conn.execute(sa.text(
        "SELECT count(*), coalesce(sum(plane_area), 0), min(class_system) FROM landuse_survey_patches "
        "WHERE survey_year = :y"), {"y": year}).one()
    return int(count), float(area), system


def save_survey_year(conn: Connection, values: dict[str, Any]) -> None:
    """Record (or re-record) a survey year's completeness and coverage."""
    from sqlalchemy.dialects.postgresql import insert

    statement = insert(survey_year_table).values(values)
    conn.execute(statement.on_conflict_do_update(
        index_elements=[survey_year_table.c.survey_year],
        set_={k: statement.excluded[k] for k in values if k != "survey_year"}))


def district_area(conn: Connection, year: int, district: str) -> float:
    """The plane area (m²) a survey year's patches give a district."""
    return float(conn.execute(sa.text(
        "SELECT coalesce(sum(plane_area), 0) FROM landuse_survey_patches WHERE survey_year = :y AND district = :d"),
        {"y": year, "d": district}).scalar_one())


def survey_area_by_class(conn: Connection, year: int, *, geometry: BaseGeometry | None = None,
                         district: str | None = None) -> dict[str, tuple[float, float]]:
    """class code → (plane m², ellipsoidal m²) of a survey year, for a district, an area or the city."""
    params: dict[str, Any] = {"year": year, "district": district}
    where = "survey_year = :year AND (CAST(:district AS text) IS NULL OR district = :district)"
    if geometry is None:
        sql = (f"SELECT class_code, sum(plane_area), sum(ellipsoidal_area) FROM landuse_survey_patches "
               f"WHERE {where} GROUP BY class_code")
    else:
        params.update(_geom_param(geometry))
        sql = f"""
            WITH a AS (SELECT {G} AS g), clipped AS (
              SELECT p.class_code, p.plane_area, p.ellipsoidal_area,
                     CASE WHEN ST_Contains(a.g, p.geom) THEN p.plane_area
                          ELSE ST_Area(ST_Intersection(p.geom, a.g)) END AS inside
                FROM landuse_survey_patches p, a
               WHERE {where} AND p.geom && a.g AND ST_Intersects(p.geom, a.g))
            SELECT class_code, sum(inside), sum(ellipsoidal_area * inside / NULLIF(plane_area, 0))
              FROM clipped GROUP BY class_code"""
    return {code: (float(plane or 0), float(ell or 0)) for code, plane, ell in conn.execute(sa.text(sql), params)}


def plan_area_by_class(conn: Connection, plan_name: str, *, geometry: BaseGeometry | None = None,
                       district: str | None = None) -> dict[str, float]:
    """planning class code → plane m² of one plan's zones, for a district, an area or the city."""
    params: dict[str, Any] = {"plan": plan_name, "district": district}
    where = "plan_name = :plan AND (CAST(:district AS text) IS NULL OR district = :district)"
    if geometry is None:
        sql = (f"SELECT class_code, sum(ST_Area(geom)) FROM landuse_planning_zones WHERE {where} "
               "GROUP BY class_code")
    else:
        params.update(_geom_param(geometry))
        sql = f"""WITH a AS (SELECT {G} AS g)
            SELECT class_code, sum(CASE WHEN ST_Contains(a.g, z.geom) THEN ST_Area(z.geom)
                                        ELSE ST_Area(ST_Intersection(z.geom, a.g)) END)
              FROM landuse_planning_zones z, a
             WHERE {where} AND z.geom && a.g AND ST_Intersects(z.geom, a.g) GROUP BY class_code"""
    return {code: float(area or 0) for code, area in conn.execute(sa.text(sql), params)}


def plan_names(conn: Connection) -> list[str]:
    """The names of the plans whose zones are loaded."""
    return list(conn.execute(sa.text("SELECT DISTINCT plan_name FROM landuse_planning_zones ORDER BY 1")).scalars())


def compute_change_patches(conn: Connection, from_year: int, to_year: int, min_area_m2: float) -> int:
    """Replace the change patches between two survey years: where the class differs, the overlap."""
    conn.execute(sa.text("DELETE FROM landuse_change_patches WHERE from_year = :a AND to_year = :b"),
                 {"a": from_year, "b": to_year})
    result = conn.execute(sa.text("""
        INSERT INTO landuse_change_patches (from_year, to_year, class_system, from_code, to_code, district,
                                            ellipsoidal_area, geom)
        SELECT :a, :b, n.class_system, o.class_code, n.class_code, n.district,
               n.ellipsoidal_area * ST_Area(x.g) / NULLIF(n.plane_area, 0), ST_Multi(x.g)
          FROM landuse_survey_patches o
          JOIN landuse_survey_patches n ON n.survey_year = :b AND o.geom && n.geom AND ST_Intersects(o.geom, n.geom)
               AND (o.class_code <> n.class_code OR o.class_system <> n.class_system)
          CROSS JOIN LATERAL (SELECT ST_CollectionExtract(ST_Intersection(o.geom, n.geom), 3) AS g) x
         WHERE o.survey_year = :a AND ST_Area(x.g) > :min_area AND ST_IsValid(x.g)"""),
        {"a": from_year, "b": to_year, "min_area": min_area_m2})
    return result.rowcount


def change_summary(conn: Connection, from_year: int, to_year: int) -> list[dict[str, Any]]:
    """Change patches between two years grouped from class → to class, largest first."""
    rows = conn.execute(sa.text("""
        SELECT from_code, to_code, count(*) AS patches, sum(plane_area) AS plane_area,
               sum(ellipsoidal_area) AS ellipsoidal_area
          FROM landuse_change_patches WHERE from_year = :a AND to_year = :b
         GROUP BY 1, 2 ORDER BY sum(ellipsoidal_area) DESC"""), {"a": from_year, "b": to_year}).mappings()
    return [dict(r) for r in rows]


def insert_survey_patches(conn: Connection, rows: list[dict[str, Any]]) -> int:
    """Insert survey patches (geometry as shapely in ``geometry``); one statement for the batch."""
    if not rows:
        return 0
    srid = SRID
    conn.execute(sa.text("""
        INSERT INTO landuse_survey_patches (patch_no, survey_year, class_system, class_code, class_name,
                                            settlement_code, ownership, district, ellipsoidal_area, geom)
        VALUES (:patch_no, :survey_year, :class_system, :class_code, :class_name, :settlement_code, :ownership,
                :district, :ellipsoidal_area, ST_Multi(ST_GeomFromWKB(:wkb, :srid)))"""),
        [{**{k: r.get(k) for k in ("patch_no", "survey_year", "class_system", "class_code", "class_name",
                                   "settlement_code", "ownership", "district", "ellipsoidal_area")},
          "wkb": shapely.to_wkb(r["geometry"]), "srid": srid} for r in rows])
    return len(rows)


# --- pre-review ------------------------------------------------------------------------------------

def survey_breakdown(conn: Connection, year: int, geometry: BaseGeometry) -> list[dict[str, Any]]:
    """Plane and (prorated) ellipsoidal area of each survey class inside the red line."""
    params = {"year": year, **_geom_param(geometry)}
    rows = conn.execute(sa.text(f"""
        WITH a AS (SELECT {G} AS g), clipped AS (
          SELECT p.class_system, p.class_code, p.class_name, p.plane_area, p.ellipsoidal_area,
                 CASE WHEN ST_Contains(a.g, p.geom) THEN p.plane_area
                      ELSE ST_Area(ST_Intersection(p.geom, a.g)) END AS inside
            FROM landuse_survey_patches p, a
           WHERE p.survey_year = :year AND p.geom && a.g AND ST_Intersects(p.geom, a.g))
        SELECT class_system, class_code, min(class_name) AS class_name, sum(inside) AS plane_area,
               sum(ellipsoidal_area * inside / NULLIF(plane_area, 0)) AS ellipsoidal_area
          FROM clipped GROUP BY 1, 2"""), params).mappings()
    return [dict(r) for r in rows if r["plane_area"] > 0]


def control_overlaps(conn: Connection, geometry: BaseGeometry) -> list[dict[str, Any]]:
    """Area of the red line inside each control-line kind (and zone type), overlapping features
    dissolved so no land is counted twice."""
    rows = conn.execute(sa.text(f"""
        WITH a AS (SELECT {G} AS g)
        SELECT c.kind, coalesce(c.zone_type, '') AS zone_type, array_agg(DISTINCT c.name) AS names,
               ST_Area(ST_Union(ST_Intersection(c.geom, a.g))) AS area
          FROM landuse_control_lines c, a
         WHERE c.geom && a.g AND ST_Intersects(c.geom, a.g)
         GROUP BY 1, 2"""), _geom_param(geometry)).mappings()
    return [dict(r) for r in rows]


def control_union_area(conn: Connection, geometry: BaseGeometry, kind: str) -> float:
    """Area (m²) of the red line inside the union of one control-line kind."""
    return float(conn.execute(sa.text(f"""
        WITH a AS (SELECT {G} AS g)
        SELECT coalesce(ST_Area(ST_Union(ST_Intersection(c.geom, a.g))), 0)
          FROM landuse_control_lines c, a WHERE c.kind = :kind AND c.geom && a.g AND ST_Intersects(c.geom, a.g)"""),
        {"kind": kind, **_geom_param(geometry)}).scalar() or 0.0)


def control_geometries(conn: Connection, geometry: BaseGeometry) -> list[dict[str, Any]]:
    """The parts of control lines inside the red line (for the report's map)."""
    rows = conn.execute(sa.text(f"""
        WITH a AS (SELECT {G} AS g)
        SELECT c.kind, c.zone_type, ST_AsBinary(ST_Intersection(c.geom, a.g)) AS wkb
          FROM landuse_control_lines c, a WHERE c.geom && a.g AND ST_Intersects(c.geom, a.g)"""),
        _geom_param(geometry)).mappings()
    return [{"kind": r["kind"], "zone_type": r["zone_type"], "geometry": shapely.from_wkb(bytes(r["wkb"]))}
            for r in rows]


def planning_breakdown(conn: Connection, geometry: BaseGeometry, plan_name: str | None) -> list[dict[str, Any]]:
    """Area of the red line in each planning class of one plan (or of every plan), largest first."""
    rows = conn.execute(sa.text(f"""
        WITH a AS (SELECT {G} AS g)
        SELECT z.plan_name, z.class_system, z.class_code, min(z.class_name) AS class_name,
               sum(CASE WHEN ST_Contains(a.g, z.geom) THEN ST_Area(z.geom)
                        ELSE ST_Area(ST_Intersection(z.geom, a.g)) END) AS area
          FROM landuse_planning_zones z, a
         WHERE (CAST(:plan AS text) IS NULL OR z.plan_name = :plan) AND z.geom && a.g AND ST_Intersects(z.geom, a.g)
         GROUP BY 1, 2, 3 ORDER BY area DESC"""), {"plan": plan_name, **_geom_param(geometry)}).mappings()
    return [dict(r) for r in rows if r["area"] > 0]


def price_breakdown(conn: Connection, geometry: BaseGeometry) -> list[dict[str, Any]]:
    """Area of an area in each base land-price zone (land class, grade, price)."""
    rows = conn.execute(sa.text(f"""
        WITH a AS (SELECT {G} AS g)
        SELECT z.land_class, z.grade, z.price_per_m2, z.base_date, sum(ST_Area(ST_Intersection(z.geom, a.g))) AS area
          FROM landuse_price_zones z, a WHERE z.geom && a.g AND ST_Intersects(z.geom, a.g)
         GROUP BY 1, 2, 3, 4 ORDER BY 1, 2"""), _geom_param(geometry)).mappings()
    return [dict(r) for r in rows if r["area"] > 0]


def price_at_point(conn: Connection, point: BaseGeometry) -> list[dict[str, Any]]:
    """The price zones (one per land class) a point lies in."""
    rows = conn.execute(sa.text(f"""
        SELECT land_class, grade, price_per_m2, base_date FROM landuse_price_zones
         WHERE geom && {G} AND ST_Covers(geom, {G}) ORDER BY land_class, grade"""), _geom_param(point)).mappings()
    return [dict(r) for r in rows]


def latest_survey_year(conn: Connection, not_after: int | None = None) -> int | None:
    """The latest survey year loaded (not after ``not_after`` when given), None when there is none."""
    return conn.execute(sa.text("SELECT max(survey_year) FROM landuse_survey_patches "
                                "WHERE CAST(:y AS int) IS NULL OR survey_year <= :y"), {"y": not_after}).scalar()


def store_report(conn: Connection, *, project_name: str, actor: str, department: str, input_format: str, input_crs: str,
                 verdict: str, total_area: float, report: dict[str, Any], geometry: BaseGeometry) -> int:
    """Store a pre-review report (unmasked) with its red line; returns its id."""
    import orjson

    def fallback(value: Any) -> Any:
        if hasattr(value, "as_tuple"):  # Decimal
            return float(value)
        return str(value)

    return conn.execute(sa.text(f"""
        INSERT INTO landuse_prereview_reports (project_name, actor, department, input_format, input_crs, verdict,
                                               total_area, report, geom)
        VALUES (:name, :actor, :dept, :fmt, :crs, :verdict, :total, CAST(:report AS jsonb), ST_Multi({G}))
        RETURNING id"""), {"name": project_name, "actor": actor, "dept": department, "fmt": input_format, "crs": input_crs,
                           "verdict": verdict, "total": total_area, "report": orjson.dumps(report, default=fallback, option=orjson.OPT_NON_STR_KEYS).decode(),
                           **_geom_param(geometry)}).scalar_one()


def load_report(conn: Connection, report_id: int) -> dict[str, Any] | None:
    """A stored pre-review report with its red line, None when there is no such report."""
    row = conn.execute(sa.text("SELECT id, created_at, department, report, ST_AsBinary(geom) AS wkb FROM "
                               "landuse_prereview_reports WHERE id = :i"), {"i": report_id}).mappings().first()
    if row is None:
        return None
    return {"id": row["id"], "created_at": row["created_at"], "department": row["department"], "report": row["report"],
            "geometry": shapely.from_wkb(bytes(row["wkb"]))}


def supervision_case(conn: Connection, case_id: int) -> dict[str, Any] | None:
    """A land supervision case's number, status and patch, None when there is no such case."""
    row = conn.execute(sa.select(supervision_cases.c.case_no, supervision_cases.c.status,
                                 sa.func.ST_AsBinary(supervision_cases.c.geom).label("wkb"))
                       .where(supervision_cases.c.id == case_id)).mappings().first()
    if row is None:
        return None
    return {"case_no": row["case_no"], "status": row["status"], "geometry": shapely.from_wkb(bytes(row["wkb"]))}


# --- parcel dossier, construction-land statistics, disputes ------------------------------------------

APPROVAL_FIELDS = ("id", "approval_no", "supply_kind", "project_name", "land_user", "landuse_code", "approved_on",
                   "term_years", "price_total", "parcel_codes", "plane_area", "district")


def approvals_touching(conn: Connection, parcel_code: str, geometry: BaseGeometry) -> list[dict[str, Any]]:
    """Construction-land approvals linked to a parcel or whose red line takes land from it (more than
    a hundredth of a square metre), with the area they take from it, oldest first."""
    rows = conn.execute(sa.text(f"""
        WITH a AS (SELECT {G} AS g)
        SELECT {", ".join("l." + f for f in APPROVAL_FIELDS)},
               CASE WHEN l.geom && a.g THEN ST_Area(ST_Intersection(l.geom, a.g)) ELSE 0 END AS area_on_parcel
          FROM landuse_land_approvals l, a
         WHERE :code = ANY(l.parcel_codes) OR (l.geom && a.g AND ST_Intersects(l.geom, a.g))
         ORDER BY l.approved_on, l.id"""), {"code": parcel_code, **_geom_param(geometry)}).mappings()
    return [dict(r) for r in rows if parcel_code in (r["parcel_codes"] or []) or r["area_on_parcel"] > 0.01]


def cases_touching(conn: Connection, geometry: BaseGeometry) -> list[dict[str, Any]]:
    """Supervision cases whose patch overlaps an area (more than a hundredth of a square metre), with
    the overlap, oldest first."""
    rows = conn.execute(sa.text(f"""
        WITH a AS (SELECT {G} AS g)
        SELECT c.id, c.case_no, c.kind, c.status, c.found_on, c.district, c.party, c.description,
               ST_Area(c.geom) AS patch_area, ST_Area(ST_Intersection(c.geom, a.g)) AS area_on_parcel
          FROM landuse_supervision_cases c, a
         WHERE c.geom && a.g AND ST_Intersects(c.geom, a.g)
         ORDER BY c.found_on, c.id"""), _geom_param(geometry)).mappings()
    return [dict(r) for r in rows if r["area_on_parcel"] > 0.01]


def approvals_for_statistics(conn: Connection, *, district: str | None, geometry: BaseGeometry | None,
                             since: Any, until: Any) -> list[dict[str, Any]]:
    """Approvals approved between two dates (inclusive; None: open) in a district or meeting an area,
    each with ``area``: its plane area, or for an area the part of it inside (m²)."""
    params: dict[str, Any] = {"d": district, "since": since, "until": until}
    if geometry is None:
        area, join, where = "l.plane_area", "", "TRUE"
    else:
        params.update(_geom_param(geometry))
        area = ("CASE WHEN ST_Contains(a.g, l.geom) THEN l.plane_area "
                "ELSE ST_Area(ST_Intersection(l.geom, a.g)) END")
        join, where = f", (SELECT {G} AS g) a", "l.geom && a.g AND ST_Intersects(l.geom, a.g)"
    rows = conn.execute(sa.text(f"""
        SELECT l.id, l.approval_no, l.supply_kind, l.project_name, l.landuse_code, l.approved_on, l.price_total,
               l.district, l.plane_area, {area} AS area
          FROM landuse_land_approvals l{join}
         WHERE {where} AND (CAST(:d AS text) IS NULL OR l.district = :d)
           AND (CAST(:since AS date) IS NULL OR l.approved_on >= :since)
           AND (CAST(:until AS date) IS NULL OR l.approved_on <= :until)
         ORDER BY l.approved_on, l.id"""), params).mappings()
    return [dict(r) for r in rows if r["area"] > 0.01]


def land_approval(conn: Connection, approval_id: int) -> dict[str, Any] | None:
    """One approval with its red line (``geometry``), None when there is no such approval."""
    row = conn.execute(sa.text(f"""
        SELECT {", ".join(APPROVAL_FIELDS)}, ST_AsBinary(geom) AS wkb FROM landuse_land_approvals
         WHERE id = :i"""), {"i": approval_id}).mappings().first()
    if row is None:
        return None
    out = {k: v for k, v in row.items() if k != "wkb"}
    out["geometry"] = shapely.from_wkb(bytes(row["wkb"]))
    return out


def district_of(conn: Connection, geometry: BaseGeometry) -> str | None:
    """The district of most of the land an area takes: the live parcels', else the latest survey's."""
    params = _geom_param(geometry)
    found = conn.execute(sa.text(f"""
        WITH a AS (SELECT {G} AS g)
        SELECT p.district FROM cadastre_parcels p, a
         WHERE p.valid_to IS NULL AND p.recorded_to IS NULL AND p.geom && a.g AND ST_Intersects(p.geom, a.g)
         GROUP BY p.district ORDER BY sum(ST_Area(ST_Intersection(p.geom, a.g))) DESC, p.district LIMIT 1"""),
        params).scalar()
    if found is not None:
        return found
    return conn.execute(sa.text(f"""
        WITH a AS (SELECT {G} AS g)
        SELECT s.district FROM landuse_survey_patches s, a
         WHERE s.survey_year = (SELECT max(survey_year) FROM landuse_survey_patches)
           AND s.geom && a.g AND ST_Intersects(s.geom, a.g)
         GROUP BY s.district ORDER BY sum(ST_Area(ST_Intersection(s.geom, a.g))) DESC, s.district LIMIT 1"""),
        params).scalar()


def supervision_case_record(conn: Connection, case_id: int) -> dict[str, Any] | None:
    """Every field of a supervision case with its patch (``geometry``), None when there is none."""
    row = conn.execute(sa.text("""
        SELECT id, case_no, kind, status, found_on, district, party, description, ST_Area(geom) AS patch_area,
               ST_AsBinary(geom) AS wkb FROM landuse_supervision_cases WHERE id = :i"""), {"i": case_id}).mappings().first()
    if row is None:
        return None
    out = {k: v for k, v in row.items() if k != "wkb"}
    out["geometry"] = shapely.from_wkb(bytes(row["wkb"]))
    return out


def dispute_claims(conn: Connection, case_id: int) -> list[dict[str, Any]]:
    """The parties' claims of a dispute case with their claimed land (``geometry``), in the order entered."""
    rows = conn.execute(sa.text("""
        SELECT id, case_id, party, party_kind, party_id_number, party_phone, basis, claimed_area,
               ST_AsBinary(geom) AS wkb FROM landuse_dispute_claims WHERE case_id = :c ORDER BY id"""),
        {"c": case_id}).mappings()
    out = []
    for row in rows:
        item = {k: v for k, v in row.items() if k != "wkb"}
        item["geometry"] = shapely.from_wkb(bytes(row["wkb"]))
        out.append(item)
    return out


def database_now(conn: Connection) -> Any:
    """The transaction's clock (what 'now' means for the register)."""
    return conn.execute(sa.text("SELECT now()")).scalar_one()
