"""All SQL of the cadastre family: parcel versions, registrations, lineage, history queries.

Every function works on the caller's connection and never commits. Geometries go in and out as
shapely objects in the storage CRS.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import shapely
import sqlalchemy as sa
from geoalchemy2.shape import from_shape
from shapely.geometry.base import BaseGeometry
from sqlalchemy.engine import Connection

from layers.cadastre.models import lineage, parcels, registrations

# the SRID the table was defined with (the storage SRID, fixed when the database was created)
SRID = parcels.c.geom.type.srid

# attributes a version carries over from its predecessor (the rest is keys, times and computed)
CARRIED = ("parcel_code", "unit_code", "right_holder", "holder_kind", "holder_id_number", "holder_phone",
           "right_type", "landuse_system", "landuse_code", "address", "district", "registered_area", "status",
           "attachment_geom")
# The head of a parcel: its latest registered version, open-ended in legal time, as the register stands
# now. Usually the version in force; a registration with a future effective date makes the head a
# scheduled version (valid_from in the future) while the version in force is the one it closes then.
HEAD = sa.and_(parcels.c.valid_to.is_(None), parcels.c.recorded_to.is_(None))
# the version in force now (the clock of the statement): what "current" means everywhere
NOW = sa.and_(parcels.c.valid_from <= sa.func.now(),
              sa.or_(parcels.c.valid_to.is_(None), parcels.c.valid_to > sa.func.now()),
              parcels.c.recorded_to.is_(None))


def _columns() -> list[Any]:
    return ([c for c in parcels.columns if c.name not in ("geom", "attachment_geom")]
            + [sa.func.ST_AsBinary(parcels.c.geom).label("wkb"),
               sa.func.ST_AsBinary(parcels.c.attachment_geom).label("attachment_wkb")])


def _row(mapping: Any) -> dict[str, Any]:
    row = dict(mapping)
    wkb = row.pop("wkb", None)
    row["geometry"] = shapely.from_wkb(bytes(wkb)) if wkb is not None else None
    attachment = row.pop("attachment_wkb", None)
    row["attachment_geom"] = shapely.from_wkb(bytes(attachment)) if attachment is not None else None
    return row


def _stored(name: str, value: Any) -> Any:
    """A carried value as the table takes it (geometries as PostGIS values)."""
    if name == "attachment_geom" and value is not None:
        return from_shape(value, srid=SRID)
    return value


def now(conn: Connection) -> dt.datetime:
    """The transaction's time: every row a registration records carries the same record time."""
    return conn.execute(sa.select(sa.func.now())).scalar_one()


def head_versions(conn: Connection, codes: list[str], *, lock: bool) -> dict[str, dict[str, Any]]:
    """The head versions (see HEAD) of some parcels by code, locked for update when ``lock``: what the
    next registration of each supersedes."""
    query = sa.select(*_columns()).where(HEAD, parcels.c.parcel_code.in_(codes)).order_by(parcels.c.parcel_code)
    if lock:
        query = query.with_for_update(of=parcels)
    return {r["parcel_code"]: _row(r) for r in conn.execute(query).mappings()}


def versions_in_force(conn: Connection, codes: list[str]) -> dict[str, dict[str, Any]]:
    """The versions of some parcels in force now, by code."""
    query = sa.select(*_columns()).where(NOW, parcels.c.parcel_code.in_(codes)).order_by(parcels.c.parcel_code)
    return {r["parcel_code"]: _row(r) for r in conn.execute(query).mappings()}


def scheduled_ends(conn: Connection, codes: list[str]) -> dict[str, dt.datetime]:
    """Parcels among ``codes`` without a head whose version in force ends at a future date (a
    cancellation, split or merge registered ahead): code → the date it ends."""
    query = (sa.select(parcels.c.parcel_code, parcels.c.valid_to)
             .where(NOW, parcels.c.valid_to.is_not(None), parcels.c.parcel_code.in_(codes)))
    return {r.parcel_code: r.valid_to for r in conn.execute(query)}


def ever_recorded(conn: Connection, code: str) -> bool:
    """Whether a parcel code was ever recorded (live, retired or corrected)."""
    return conn.execute(sa.select(sa.exists().where(parcels.c.parcel_code == code))).scalar_one()


def close_version(conn: Connection, row: dict[str, Any], when: dt.datetime) -> None:
    """End a live version at legal time ``when``, keeping what the register said until now.

    The live row's record period closes now; a copy saying "valid until ``when``" is recorded from
    now. So the register as recorded at any earlier time still answers as it did.
    """
    conn.execute(parcels.update().where(parcels.c.id == row["id"]).values(recorded_to=sa.func.now()))
    copy = {name: _stored(name, row[name]) for name in CARRIED}
    # a version with an end is a retired version, whether the end is past or still to come: the status
    # of a row never depends on when it is read (what is in force at a date is the valid period's job)
    copy.update(version=row["version"], valid_from=row["valid_from"], valid_to=when, status="retired",
                recorded_from=sa.func.now(), geom=from_shape(row["geometry"], srid=SRID),
                created_at=row["created_at"])
    conn.execute(parcels.insert().values(copy))


def insert_version(conn: Connection, values: dict[str, Any], geometry: BaseGeometry, when: dt.datetime,
                   version: int) -> dict[str, Any]:
    """Record a new live version valid from ``when``; returns it as read back."""
    row = {name: _stored(name, values.get(name)) for name in CARRIED if name in values}
    row.update(valid_from=when, version=version, status="registered", geom=from_shape(geometry, srid=SRID))
    new_id = conn.execute(parcels.insert().values(row).returning(parcels.c.id)).scalar_one()
    return _row(conn.execute(sa.select(*_columns()).where(parcels.c.id == new_id)).mappings().one())


def overlapping_from(conn: Connection, geometry: BaseGeometry, exclude: list[str], when: dt.datetime,
                     tolerance_m2: float) -> list[tuple[str, float]]:
    """Parcels (other than ``exclude``) holding land from ``when`` on — in force then or later,
    scheduled versions included — that a geometry overlaps by more than the tolerance (largest
    overlap per parcel)."""
    g = sa.func.ST_GeomFromWKB(sa.literal(shapely.to_wkb(geometry), sa.LargeBinary), SRID)
    area = sa.func.ST_Area(sa.func.ST_Intersection(parcels.c.geom, g))
    query = (sa.select(parcels.c.parcel_code, sa.func.max(area).label("area"))
             .where(parcels.c.recorded_to.is_(None), sa.or_(parcels.c.valid_to.is_(None), parcels.c.valid_to > when),
                    parcels.c.geom.op("&&")(g), sa.func.ST_Intersects(parcels.c.geom, g))
             .group_by(parcels.c.parcel_code).order_by(parcels.c.parcel_code))
    if exclude:
        query = query.where(parcels.c.parcel_code.not_in(exclude))
    return [(r.parcel_code, float(r.area)) for r in conn.execute(query) if r.area > tolerance_m2]


def lock_sub_district(conn: Connection, prefix: str) -> None:
    """Serialise code issuing in one cadastral sub-district until the transaction ends."""
    conn.execute(sa.text("SELECT pg_advisory_xact_lock(hashtext('govgis.parcel_seq.' || :p))"), {"p": prefix})


def highest_sequence(conn: Connection, prefix: str) -> int:
    """The highest parcel sequence number ever used in a sub-district: every recorded version and
    every lineage edge counts, so a retired number is never issued again."""
    return conn.execute(sa.text(
        "SELECT max(substr(code, 15, 5)::int) FROM ("
        " SELECT parcel_code AS code FROM cadastre_parcels WHERE left(parcel_code, 12) = :p"
        " UNION ALL SELECT parent_code FROM cadastre_lineage WHERE left(parent_code, 12) = :p"
        " UNION ALL SELECT child_code FROM cadastre_lineage WHERE left(child_code, 12) = :p) AS used"),
        {"p": prefix}).scalar() or 0


def insert_registration(conn: Connection, *, kind: str, codes: list[str], effective_at: dt.datetime,
                        actor: str, certificate_no: str | None, note: str | None,
                        detail: dict[str, Any]) -> int:
    """One registration row; returns its id."""
    return conn.execute(registrations.insert().values(
        kind=kind, parcel_codes=codes, effective_at=effective_at, actor=actor, certificate_no=certificate_no,
        note=note, detail=detail).returning(registrations.c.id)).scalar_one()


def insert_lineage(conn: Connection, edges: list[tuple[str, str]], kind: str, registration_id: int) -> None:
    """Parent → child edges of a split, merge or boundary adjustment."""
    if edges:
        conn.execute(lineage.insert(), [{"parent_code": p, "child_code": c, "kind": kind,
                                         "registration_id": registration_id} for p, c in edges])


# --- history queries -------------------------------------------------------------------------------

def versions_of(conn: Connection, code: str) -> list[dict[str, Any]]:
    """Every recorded row of a parcel, in legal then record order."""
    query = (sa.select(*_columns()).where(parcels.c.parcel_code == code)
             .order_by(parcels.c.valid_from, parcels.c.recorded_from, parcels.c.id))
    return [_row(r) for r in conn.execute(query).mappings()]


def registrations_of(conn: Connection, code: str) -> list[dict[str, Any]]:
    """Every registration that names a parcel, in legal order."""
    query = (sa.select(registrations).where(registrations.c.parcel_codes.any(code))
             .order_by(registrations.c.effective_at, registrations.c.id))
    return [dict(r) for r in conn.execute(query).mappings()]


def _lineage_walk(near: str, far: str) -> str:
    """A recursive walk of the lineage graph from :code: ``near`` is the column that holds the code
    (child_code to walk up to ancestors, parent_code to walk down), ``far`` the one that leads on."""
    return f"""
        WITH RECURSIVE walk(parent_code, child_code, kind, registration_id, depth) AS (
          SELECT parent_code, child_code, kind, registration_id, 1 FROM cadastre_lineage
           WHERE {near} = :code AND parent_code <> child_code
          UNION
          SELECT l.parent_code, l.child_code, l.kind, l.registration_id, w.depth + 1
            FROM cadastre_lineage l JOIN walk w ON l.{near} = w.{far}
           WHERE l.parent_code <> l.child_code AND w.depth < :max_depth)
        SELECT parent_code, child_code, kind, registration_id, min(depth) AS depth FROM walk
         GROUP BY 1, 2, 3, 4 ORDER BY depth, parent_code, child_code"""


_LINEAGE_SQL = {
    "ancestors": _lineage_walk(near="child_code", far="parent_code"),
    "descendants": _lineage_walk(near="parent_code", far="child_code"),
}


def lineage_edges(conn: Connection, code: str, direction: str, max_depth: int = 1000) -> list[dict[str, Any]]:
    """Split/merge edges reachable from a parcel upwards (ancestors) or downwards (descendants)."""
    rows = conn.execute(sa.text(_LINEAGE_SQL[direction]), {"code": code, "max_depth": max_depth}).mappings()
    return [dict(r) for r in rows]


def _area_filter(geometry: BaseGeometry | None, district: str | None) -> list[Any]:
    clauses: list[Any] = []
    if geometry is not None:
        g = sa.func.ST_GeomFromWKB(sa.literal(shapely.to_wkb(geometry), sa.LargeBinary), SRID)
        clauses += [parcels.c.geom.op("&&")(g), sa.func.ST_Intersects(parcels.c.geom, g)]
    if district is not None:
        clauses.append(parcels.c.district == district)
    return clauses


def as_of(conn: Connection, valid_at: dt.datetime, recorded_at: dt.datetime | None, *,
          geometry: BaseGeometry | None = None, district: str | None = None, limit: int | None = None,
          with_geometry: bool = True) -> list[dict[str, Any]]:
    """Parcel versions valid at ``valid_at`` as the register stood at ``recorded_at`` (None: now)."""
    from layers.cadastre.layers import PARCELS

    columns = _columns() if with_geometry else [c for c in parcels.columns if c.name not in ("geom", "attachment_geom")]
    query = (sa.select(*columns).where(PARCELS.as_of_clause(valid_at, recorded_at),
                                       *_area_filter(geometry, district))
             .order_by(parcels.c.parcel_code))
    if limit is not None:
        query = query.limit(limit)
    rows = conn.execute(query).mappings()
    return [_row(r) for r in rows] if with_geometry else [dict(r) for r in rows]


def count_as_of(conn: Connection, valid_at: dt.datetime, recorded_at: dt.datetime | None, *,
                geometry: BaseGeometry | None = None, district: str | None = None) -> tuple[int, float]:
    """How many parcels ``as_of`` would return, and their plane area (m²)."""
    from layers.cadastre.layers import PARCELS

    query = sa.select(sa.func.count(), sa.func.coalesce(sa.func.sum(parcels.c.plane_area), 0.0)).where(
        PARCELS.as_of_clause(valid_at, recorded_at), *_area_filter(geometry, district))
    count, area = conn.execute(query).one()
    return int(count), float(area)


def live_parcels_in(conn: Connection, geometry: BaseGeometry, min_area_m2: float) -> list[dict[str, Any]]:
    """Live parcels an area takes land from, with the area taken (m², plane)."""
    g = sa.func.ST_GeomFromWKB(sa.literal(shapely.to_wkb(geometry), sa.LargeBinary), SRID)
    # a parcel wholly inside counts its stored area: no intersection to compute (ST_Contains uses the
    # prepared area geometry, cheaper than ST_CoveredBy per row)
    inside = sa.case((sa.func.ST_Contains(g, parcels.c.geom), parcels.c.plane_area),
                     else_=sa.func.ST_Area(sa.func.ST_Intersection(parcels.c.geom, g))).label("area_inside")
    wanted = ("id", "parcel_code", "unit_code", "right_holder", "holder_kind", "holder_id_number", "holder_phone",
              "right_type", "landuse_code", "address", "district", "plane_area", "version")
    query = (sa.select(*[parcels.c[name] for name in wanted], inside)
             .where(NOW, parcels.c.geom.op("&&")(g), sa.func.ST_Intersects(parcels.c.geom, g))
             .order_by(parcels.c.parcel_code))
    result = conn.execute(query)
    keys = list(result.keys())
    # plain tuples → dicts: thousands of rows for a large site, and mapping rows cost more
    return [dict(zip(keys, row, strict=True)) for row in result.all() if row[-1] > min_area_m2]


def parcel_outlines(conn: Connection, box: tuple[float, float, float, float], limit: int) -> list[dict[str, Any]]:
    """Codes and outlines of the live parcels in a storage-CRS box (the context of a printed map)."""
    envelope = sa.func.ST_MakeEnvelope(*box, SRID)
    query = (sa.select(parcels.c.parcel_code, sa.func.ST_AsBinary(parcels.c.geom).label("wkb"))
             .where(NOW, parcels.c.geom.op("&&")(envelope)).order_by(parcels.c.parcel_code).limit(limit))
    return [{"parcel_code": r.parcel_code, "geometry": shapely.from_wkb(bytes(r.wkb))} for r in conn.execute(query)]


def live_parcel_codes_at(conn: Connection, point: BaseGeometry, tolerance_m: float) -> list[str]:
    """Codes of the parcels in force now within ``tolerance_m`` of a point, the nearest first."""
    g = sa.func.ST_GeomFromWKB(sa.literal(shapely.to_wkb(point), sa.LargeBinary), SRID)
    query = (sa.select(parcels.c.parcel_code)
             .where(NOW, sa.func.ST_DWithin(parcels.c.geom, g, tolerance_m))
             .order_by(sa.func.ST_Distance(parcels.c.geom, g), parcels.c.parcel_code))
    return list(conn.execute(query).scalars())


def search_live_parcels(conn: Connection, text: str, limit: int) -> list[dict[str, Any]]:
    """Parcels in force now whose code starts with ``text`` or whose address (坐落) contains it.

    Only the code and the address are searched: a right holder may be a person, whose name must not
    be found by guessing it."""
    pattern = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    query = (sa.select(parcels.c.parcel_code, parcels.c.address, parcels.c.district, parcels.c.landuse_code,
                       parcels.c.plane_area)
             .where(NOW, sa.or_(parcels.c.parcel_code.like(pattern + "%", escape="\\"),
                                parcels.c.address.ilike("%" + pattern + "%", escape="\\")))
             .order_by(parcels.c.parcel_code).limit(limit))
    return [dict(r) for r in conn.execute(query).mappings()]
