"""GeoJSON features built inside PostGIS: items pages, single features, output CRS, paging.

The database assembles every Feature with ``json_build_object`` + ``ST_AsGeoJSON`` and aggregates
the page with ``json_agg``; Python only wraps the resulting text in the FeatureCollection envelope.
Reprojection (``crs``, ``bbox-crs``, ``filter-crs``) is ``ST_Transform`` in the same statement.
Axis order follows OGC API Features Part 2: CRS84 is lon/lat; an EPSG CRS whose authority order is
north first (EPSG:4326, 4490, the CGCS2000 GK zones) is written northing/latitude first.

``numberMatched`` policy: exact when the page is the last one (offset + returned) or when a count
capped at ``COUNT_CAP`` + 1 rows stays under the cap; otherwise omitted (never estimated).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from gis import access
from gis.access import Caller, sees_personal_data
from gis.crs import CRS84_URI, crs_uri, is_crs84, lonlat_first, parse_crs
from gis.errors import InvalidParameter, NotFound, UnknownCRS
from gis.intake import parse_bbox, parse_datetime  # noqa: F401  (the items parameters, parsed once for every route)
from gis.registry import Layer

COUNT_CAP = 10_000
DEGREE_DIGITS = 8  # 1e-8° ≈ 1 mm: CRS round trips stay well inside 1 cm
METRE_DIGITS = 3


@dataclass(frozen=True)
class OutputCrs:
    """A CRS a client may ask for: its SRID in PostGIS, its URI, and whether axes are swapped."""

    srid: int
    uri: str
    flip: bool  # write y (north / latitude) first

    @property
    def digits(self) -> int:
        return DEGREE_DIGITS if self.srid in (4326, 4490) else METRE_DIGITS


CRS84 = OutputCrs(4326, CRS84_URI, False)


@lru_cache(maxsize=8)
def supported_crs(storage_srid: int) -> tuple[str, ...]:
    """The CRS URIs every collection offers (Part 2 `crs` list): CRS84, 4326, 4490, 3857, storage."""
    uris = [CRS84_URI] + [crs_uri(s) for s in (4326, 4490, 3857)]
    if crs_uri(storage_srid) not in uris:
        uris.append(crs_uri(storage_srid))
    return tuple(uris)


@lru_cache(maxsize=64)
def resolve_crs(value: str | None, storage_srid: int) -> OutputCrs:
    """The OutputCrs for a `crs`/`bbox-crs`/`filter-crs` value; UnknownCRS unless it is offered."""
    if value is None or is_crs84(value):
        return CRS84
    for srid in (4326, 4490, 3857, storage_srid):
        uri = crs_uri(srid)
        candidates = {uri.lower(), f"epsg:{srid}", f"urn:ogc:def:crs:epsg::{srid}", str(srid),
                      uri.lower().replace("http://", "https://")}
        if value.strip().lower() in candidates:
            return OutputCrs(srid, uri, not lonlat_first(srid))
    parse_crs(value)  # a clear message when the value is not a CRS at all
    raise UnknownCRS(f"CRS {value!r} is not offered; use one of: {', '.join(supported_crs(storage_srid))}")


def bbox_clause(layer: Layer, bbox: tuple[float, float, float, float], bbox_crs: OutputCrs,
                storage_srid: int) -> sa.ColumnElement[bool]:
    """Features whose geometry intersects the box (given in ``bbox_crs``, axis order of that CRS)."""
    x0, y0, x1, y1 = bbox
    if bbox_crs.flip:
        x0, y0, x1, y1 = y0, x0, y1, x1
    env = sa.func.ST_MakeEnvelope(x0, y0, x1, y1, bbox_crs.srid)
    if bbox_crs.srid != storage_srid:
        # densify the edges so the reprojected box keeps its curved sides
        env = sa.func.ST_Transform(sa.func.ST_Segmentize(env, max(x1 - x0, y1 - y0) / 8 or 1), storage_srid)
    return sa.func.ST_Intersects(layer.table.c[layer.geometry_column], env)


def time_clause(layer: Layer, datetime_value: str | None) -> sa.ColumnElement[bool]:
    """What `datetime` means for a layer: "as of" for history layers, a filter on its datetime column."""
    if datetime_value is None:
        return layer.current_clause()
    start, end, instant = parse_datetime(datetime_value)
    if layer.has_history:
        if instant:
            return layer.as_of_clause(start)
        vf, vt = (layer.table.c[n] for n in layer.valid_time)  # type: ignore[union-attr]
        clause = sa.and_(sa.true() if end is None else vf <= end, sa.true() if start is None else
                         sa.or_(vt.is_(None), vt > start))
        if layer.record_time:
            clause = sa.and_(clause, layer.table.c[layer.record_time[1]].is_(None))
        return clause
    if layer.datetime_column:
        column = layer.table.c[layer.datetime_column]
        if instant:
            return column == start
        return sa.and_(sa.true() if start is None else column >= start, sa.true() if end is None else column <= end)
    return layer.current_clause()


def _names(value: str, what: str, layer: Layer) -> list[str]:
    """Comma-separated field names, each once; at most one per field of the layer."""
    names = list(dict.fromkeys(p.strip() for p in value.split(",") if p.strip()))
    if len(names) > len(layer.table.c):
        raise InvalidParameter(f"{what} names {len(names)} fields; {layer.id} has {len(layer.table.c)}")
    return names


def parse_sortby(layer: Layer, value: str, caller: Caller) -> list[sa.ColumnElement[Any]]:
    """`sortby=+a,-b` → ORDER BY items; every name checked against the layer and the caller's rights
    (sorting on a masked value would leak its order)."""
    out = []
    for raw in _names(value, "sortby", layer):
        descending = raw.startswith("-")
        name = raw.lstrip("+-").strip()
        expression = access.usable_field(layer, caller, name, "sortby")
        out.append(expression.desc() if descending else expression.asc())
    return out


def parse_properties(layer: Layer, value: str, caller: Caller) -> list[str]:
    """`properties=a,b` → the field names, checked against the layer and the caller's rights."""
    names = _names(value, "properties", layer)
    for name in names:
        access.usable_field(layer, caller, name, "properties")
    return names


@dataclass
class ItemsQuery:
    """Everything that selects and shapes one page of features."""

    layer: Layer
    caller: Caller
    storage_srid: int
    out: OutputCrs = CRS84
    where: list[sa.ColumnElement[bool]] = field(default_factory=list)
    order: list[sa.ColumnElement[Any]] = field(default_factory=list)
    properties: list[str] | None = None
    skip_geometry: bool = False
    limit: int = 100
    offset: int = 0


def property_object(layer: Layer, names: list[str] | None, caller: Caller) -> sa.ColumnElement[Any]:
    """json_build_object of the chosen attributes, each as the caller may see it (gis.access)."""
    chosen = names if names is not None else layer.field_names()
    args: list[Any] = []
    for name in chosen:
        # names come from the registry (checked), not from clients
        args.extend([sa.literal_column(f"'{name}'"), access.field_expression(layer, name, caller)])
    if len(args) > 100:
        # json_build_object takes at most 100 arguments: join halves as jsonb
        half = (len(args) // 4) * 2
        return sa.cast(sa.cast(sa.func.json_build_object(*args[:half]), sa.dialects.postgresql.JSONB).op("||")(
            sa.cast(sa.func.json_build_object(*args[half:]), sa.dialects.postgresql.JSONB)), sa.JSON)
    return sa.func.json_build_object(*args)


def geometry_json(layer: Layer, out: OutputCrs, storage_srid: int) -> sa.ColumnElement[Any]:
    geom: Any = layer.table.c[layer.geometry_column]
    if out.srid != storage_srid:
        geom = sa.func.ST_Transform(geom, out.srid)
    if out.flip:
        geom = sa.func.ST_FlipCoordinates(geom)
    return sa.cast(sa.func.ST_AsGeoJSON(geom, out.digits), sa.JSON)


def feature_object(q: ItemsQuery) -> sa.ColumnElement[Any]:
    """The json_build_object of one Feature (built once per layer and output shape, then reused)."""
    return _feature_object(q.layer.id, q.out, tuple(q.properties) if q.properties is not None else None,
                           sees_personal_data(q.caller), q.skip_geometry, q.storage_srid)


@lru_cache(maxsize=1024)
def _feature_object(layer_id: str, out: OutputCrs, properties: tuple[str, ...] | None, personal: bool,
                    skip_geometry: bool, storage_srid: int) -> sa.ColumnElement[Any]:
    from gis.access import SYSTEM, Caller
    from gis.registry import REGISTRY

    layer = REGISTRY.get(layer_id)
    caller = SYSTEM if personal else Caller(name="masked")
    q = ItemsQuery(layer=layer, caller=caller, storage_srid=storage_srid, out=out,
                   properties=list(properties) if properties is not None else None, skip_geometry=skip_geometry)
    return _build_feature_object(q)


def _build_feature_object(q: ItemsQuery) -> sa.ColumnElement[Any]:
    layer = q.layer
    geometry = sa.null() if q.skip_geometry else geometry_json(layer, q.out, q.storage_srid)
    return sa.func.json_build_object(
        sa.literal_column("'type'"), sa.literal_column("'Feature'"),
        sa.literal_column("'id'"), layer.table.c[layer.key],
        sa.literal_column("'geometry'"), geometry,
        sa.literal_column("'properties'"), property_object(layer, q.properties, q.caller),
    )


def readable_where(q: ItemsQuery) -> list[sa.ColumnElement[bool]]:
    """The query's conditions plus the rows its caller may read: every features query goes through here."""
    return [*q.where, access.row_clause(q.layer, q.caller)]


@dataclass
class Page:
    features_json: str  # a JSON array of Features, as PostGIS wrote it
    returned: int
    matched: int | None


def fetch_page(conn: Connection, q: ItemsQuery) -> Page:
    """One page of features as a JSON array text, with numberReturned and (when cheap) numberMatched."""
    table = q.layer.table
    where = readable_where(q)
    inner = (
        sa.select(feature_object(q).label("f"))
        .where(*where)
        .order_by(*q.order, table.c[q.layer.key])
        .limit(q.limit)
        .offset(q.offset)
        .subquery()
    )
    # the capped count rides in the same statement: one round trip, and it is cheap (≤ COUNT_CAP + 1 index rows)
    capped = sa.select(sa.literal(1)).select_from(table).where(*where).limit(COUNT_CAP + 1).subquery()
    stmt = sa.select(
        sa.cast(sa.func.coalesce(sa.func.json_agg(inner.c.f), sa.literal_column("'[]'::json")), sa.Text),
        sa.func.count(),
        sa.select(sa.func.count()).select_from(capped).scalar_subquery(),
    ).select_from(inner)
    features_json, returned, count = conn.execute(stmt).one()
    matched: int | None
    if returned < q.limit and (returned > 0 or q.offset == 0):
        matched = q.offset + returned
    else:
        matched = count if count <= COUNT_CAP else None
    return Page(features_json, int(returned), matched)


def fetch_feature(conn: Connection, q: ItemsQuery, feature_id: object) -> tuple[str, int]:
    """One Feature as JSON text and its row version; NotFound when absent."""
    table = q.layer.table
    row = conn.execute(
        sa.select(sa.cast(feature_object(q), sa.Text), table.c.version if "version" in table.c else sa.literal(1))
        .where(table.c[q.layer.key] == feature_id, *readable_where(q))
    ).first()
    if row is None:
        raise NotFound(f"{q.layer.id} has no feature {feature_id}; list them at /collections/{q.layer.id}/items")
    return row[0], int(row[1])


def layer_extent(conn: Connection, layer: Layer) -> tuple[float, float, float, float] | None:
    """The layer's lon/lat extent: the planner's estimate when statistics exist, else computed."""
    table, column = layer.table.name, layer.geometry_column
    srid = layer.table.c[column].type.srid
    # identifiers come from the registry, never from a client
    row = conn.execute(sa.text(
        f"SELECT ST_XMin(e), ST_YMin(e), ST_XMax(e), ST_YMax(e) FROM (SELECT ST_Transform(ST_SetSRID("
        f"COALESCE(ST_EstimatedExtent('{table}', '{column}'), (SELECT ST_Extent({column}) FROM {table}))"
        f"::geometry, {srid}), 4326) AS e) s")).first()
    if row is None or row[0] is None:
        return None
    return (float(row[0]), float(row[1]), float(row[2]), float(row[3]))
