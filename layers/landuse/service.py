"""Land-use analyses that are not tables of their own: land supervision comparisons, construction-
land approvals linked to parcels, base land-price lookup.

Writes go through gis.writes (permission, audit) in the caller's transaction.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import sqlalchemy as sa
from shapely.geometry import Point
from shapely.geometry.base import BaseGeometry
from sqlalchemy.engine import Connection

from gis.access import Caller, require_read
from gis.errors import InvalidGeometry, InvalidParameter, NotFound
from gis.geometry import geometry_problem, promote
from gis.writes import insert_feature
from layers.landuse import classes
from layers.landuse import repository as repo
from layers.landuse.layers import APPROVALS, PRICE_ZONES, SUPERVISION, SURVEY
from layers.landuse.models import supervision_cases


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
    from layers.cadastre.service import parcel_geometry

    geometry = parcel_geometry(conn, parcel_code, caller=caller)  # type: ignore[arg-type]
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
        row = conn.execute(sa.select(supervision_cases.c.case_no, supervision_cases.c.status,
                                     sa.func.ST_AsBinary(supervision_cases.c.geom).label("wkb"))
                           .where(supervision_cases.c.id == case_id)).mappings().first()
        if row is None:
            raise NotFound(f"no supervision case {case_id}")
        import shapely

        geometry = shapely.from_wkb(bytes(row["wkb"]))
        case = {"id": case_id, "case_no": row["case_no"], "status": row["status"]}
    if geometry is None:
        raise InvalidParameter("give a supervision case id or a patch polygon")
    if second < first:
        raise InvalidParameter("the second date must not be before the first")
    from layers.cadastre.service import parcels_as_of

    snapshots = []
    for when in (first, second):
        year = repo.latest_survey_year(conn, when.year)
        landuse = []
        if year is not None:
            for r in repo.survey_breakdown(conn, year, geometry):
                landuse.append({"class_code": r["class_code"], "class_name": r["class_name"],
                                "legal_group": classes.classify(r["class_code"]).group,
                                "plane_area": r["plane_area"]})
        parcels = [{k: p[k] for k in ("parcel_code", "right_holder", "landuse_code", "version", "area_inside")}
                   for p in parcels_as_of(conn, geometry, when, caller=caller) if p["area_inside"] > 0.01]
        snapshots.append({"date": when.isoformat(), "survey_year": year, "landuse": landuse, "parcels": parcels})
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
    """Open a land supervision case (audited, through the one write path)."""
    return _plain(insert_feature(conn, SUPERVISION, caller, properties, _area(geometry)))


def record_land_approval(conn: Connection, caller: Caller, properties: dict[str, Any],
                         geometry: BaseGeometry) -> dict[str, Any]:
    """Record a construction-land approval; unless given, it is linked to the live parcels its red
    line takes land from."""
    props = dict(properties)
    geometry = _area(geometry)
    if props.get("supply_kind") not in ("allocation", "transfer", "lease"):
        raise InvalidParameter("supply_kind is allocation (划拨), transfer (出让) or lease (租赁)")
    if not props.get("parcel_codes"):
        from layers.cadastre.service import parcels_in_area

        props["parcel_codes"] = [p["parcel_code"] for p in parcels_in_area(conn, geometry, caller=caller)]
    return _plain(insert_feature(conn, APPROVALS, caller, props, geometry))


def _area(geometry: BaseGeometry) -> BaseGeometry:
    """A storage-CRS polygon checked and promoted to the tables' MultiPolygon."""
    problem = geometry_problem(geometry, "MultiPolygon")
    if problem:
        raise InvalidGeometry(problem)
    return promote(geometry, "MultiPolygon")


def point_from_lonlat(lon: float, lat: float) -> BaseGeometry:
    """A WGS84/CGCS2000 lon/lat point in the storage CRS (validated against the city bounds)."""
    from gis.geometry import to_storage
    from gis.settings import get_settings

    settings = get_settings()
    return to_storage(Point(lon, lat), "OGC:CRS84", storage_crs=settings.spatial.storage_crs,
                      city_bounds=settings.spatial.city_bounds)
