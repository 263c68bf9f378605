"""Spatial queries beyond OGC: identify, within a distance, nearest N, intersect with measures, summary.

Input geometries are GeoJSON in any offered CRS (``crs``, default CRS84), validated and reprojected
to the storage CRS like every geometry that enters govgis; distances, areas and lengths are metres
and square metres in the storage CRS. Output features are GeoJSON (CRS84) built by PostGIS, with the
caller's masking applied; each layer is checked against the caller's read scope.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import orjson
import sqlalchemy as sa
from fastapi import APIRouter, Body, Request
from fastapi.responses import Response
from shapely.geometry import Point
from sqlalchemy.engine import Connection

from api.common import (
    check_params,
    intake_frame,
    intake_limits,
    json_response,
    readable_layer,
    settings_of,
    visible_layers,
)
from api.deps import CurrentCaller
from gis import access, features, intake
from gis.access import Caller
from gis.errors import InvalidParameter
from gis.features import ItemsQuery
from gis.registry import Layer

router = APIRouter(prefix="/query", tags=["Spatial queries 空间查询"])
PER_LAYER_LIMIT = 1000
NUMERIC = ("integer", "number")


def _storage_geometry(request: Request, raw: Any, crs_value: str | None) -> sa.ColumnElement[Any]:
    """A client geometry (GeoJSON/WKT, any CRS, the one axis-order rule of gis.intake) as SQL."""
    settings = settings_of(request)
    stored = intake.client_geometry(raw, crs_value, frame=intake_frame(settings), limits=intake_limits(settings))
    return sa.func.ST_GeomFromText(sa.bindparam(None, stored.wkt, type_=sa.Text), settings.storage_srid)


def _layers(request: Request, caller: Caller, names: Any) -> list[Layer]:
    if names is None:
        return visible_layers(caller)
    if isinstance(names, str):
        names = [n.strip() for n in names.split(",") if n.strip()]
    if not isinstance(names, list) or not names or not all(isinstance(n, str) for n in names):
        raise InvalidParameter("layers must be a list of layer ids (or leave it out for every layer you may read)")
    return [readable_layer(n, caller) for n in dict.fromkeys(names)]


def _body(payload: Any, allowed: set[str], required: set[str]) -> dict[str, Any]:
    if not isinstance(payload, dict):
        raise InvalidParameter("send a JSON object")
    unknown = set(payload) - allowed
    if unknown:
        raise InvalidParameter(f"unknown field(s) {', '.join(sorted(unknown))}; allowed: {', '.join(sorted(allowed))}")
    missing = required - set(payload)
    if missing:
        raise InvalidParameter(f"missing field(s): {', '.join(sorted(missing))}")
    return payload


def _number(value: Any, name: str, *, minimum: float = 0, maximum: float = 1e6) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not minimum <= value <= maximum:
        raise InvalidParameter(f"{name} must be a number between {minimum:g} and {maximum:g}")
    return float(value)


def _query(request: Request, layer: Layer, caller: Caller, where: sa.ColumnElement[bool]) -> ItemsQuery:
    return ItemsQuery(layer=layer, caller=caller, storage_srid=settings_of(request).storage_srid,
                      where=[layer.current_clause(), where], limit=PER_LAYER_LIMIT)


def _measured(conn: Any, q: ItemsQuery, measure: sa.ColumnElement[Any], name: str,
              order: sa.ColumnElement[Any] | None = None) -> dict[str, Any]:
    """Features with one extra computed property (distance, area, length), as a FeatureCollection."""
    stmt = sa.select(sa.cast(features.feature_object(q), sa.Text), measure).where(*features.readable_where(q))
    stmt = stmt.order_by(order if order is not None else q.layer.table.c[q.layer.key]).limit(q.limit)
    out = []
    for text, value in conn.execute(stmt):
        feature = orjson.loads(text)
        feature["properties"][name] = None if value is None else round(float(value), 3)
        out.append(feature)
    return {"type": "FeatureCollection", "numberReturned": len(out), "features": out}


def _collection(conn: Any, q: ItemsQuery) -> dict[str, Any]:
    page = features.fetch_page(conn, q)
    return {"type": "FeatureCollection", "numberReturned": page.returned, "features": orjson.loads(page.features_json)}


@router.get("/identify", summary="Everything at a point across layers 点查询")
def identify(request: Request, caller: CurrentCaller) -> Response:
    check_params(request, frozenset({"x", "y", "crs", "layers", "tolerance"}))
    qp = request.query_params
    try:
        x, y = float(qp["x"]), float(qp["y"])
    except KeyError:
        raise InvalidParameter("give the point as x= and y= (lon/lat in CRS84 by default)") from None
    except ValueError:
        raise InvalidParameter("x and y must be numbers") from None
    tolerance_text = qp.get("tolerance", "1")
    if not _is_number(tolerance_text):
        raise InvalidParameter("tolerance must be a number of metres")
    tolerance = _number(float(tolerance_text), "tolerance (metres)", maximum=1000)
    if not (math.isfinite(x) and math.isfinite(y)):
        raise InvalidParameter("x and y must be finite numbers")
    point = _storage_geometry(request, Point(x, y), qp.get("crs"))
    body: dict[str, Any] = {"layers": {}}
    with request.app.state.read_engine.connect() as conn:
        for layer in _layers(request, caller, qp.get("layers")):
            geom = layer.table.c[layer.geometry_column]
            body["layers"][layer.id] = _collection(conn, _query(request, layer, caller,
                                                                sa.func.ST_DWithin(geom, point, tolerance)))
    return json_response(body)


def _is_number(text: str | None) -> bool:
    try:
        float(text or "")
    except ValueError:
        return False
    return True


@router.post("/within", summary="Features within a distance of a geometry 缓冲查询")
def within(request: Request, caller: CurrentCaller, payload: Any = Body(...)) -> Response:
    def answer(conn: Connection, layer: Layer, area: Any, body: dict[str, Any]) -> dict[str, Any]:
        distance = _number(body.get("distance", 0), "distance (metres)", maximum=50_000)
        geom = layer.table.c[layer.geometry_column]
        q = _query(request, layer, caller, sa.func.ST_DWithin(geom, area, distance))
        return _measured(conn, q, sa.func.ST_Distance(geom, area), "distance_m")

    return _per_layer(request, caller, payload, {"distance"}, answer)


@router.post("/nearest", summary="The nearest N features of a layer 最近邻")
def nearest(request: Request, caller: CurrentCaller, payload: Any = Body(...)) -> Response:
    check_params(request, frozenset())
    body = _body(payload, {"geometry", "crs", "layer", "n"}, {"geometry", "layer"})
    if not isinstance(body["layer"], str):
        raise InvalidParameter("layer must be one layer id")
    layer = readable_layer(body["layer"], caller)
    n = int(_number(body.get("n", 5), "n", minimum=1, maximum=1000))
    target = _storage_geometry(request, body["geometry"], body.get("crs"))
    geom = layer.table.c[layer.geometry_column]
    q = _query(request, layer, caller, sa.true())
    q.limit = n
    with request.app.state.read_engine.connect() as conn:
        fc = _measured(conn, q, sa.func.ST_Distance(geom, target), "distance_m", order=geom.op("<->")(target))
    return json_response({"layer": layer.id, **fc})


@router.post("/intersect", summary="Features intersecting a geometry, with the intersected area/length 叠加")
def intersect(request: Request, caller: CurrentCaller, payload: Any = Body(...)) -> Response:
    def answer(conn: Connection, layer: Layer, area: Any, body: dict[str, Any]) -> dict[str, Any]:
        geom = layer.table.c[layer.geometry_column]
        kind = (layer.geometry_type or "").removeprefix("Multi")
        q = _query(request, layer, caller, sa.func.ST_Intersects(geom, area))
        if kind == "Polygon":
            measure, name = sa.func.ST_Area(sa.func.ST_Intersection(geom, area)), "intersected_area_m2"
        elif kind == "LineString":
            measure, name = sa.func.ST_Length(sa.func.ST_Intersection(geom, area)), "intersected_length_m"
        else:
            measure, name = sa.func.ST_NPoints(sa.func.ST_Intersection(geom, area)), "intersected_points"
        return _measured(conn, q, measure, name)

    return _per_layer(request, caller, payload, set(), answer)


@router.post("/summary", summary="Counts and sums of numeric fields inside an area 统计")
def summary(request: Request, caller: CurrentCaller, payload: Any = Body(...)) -> Response:
    def answer(conn: Connection, layer: Layer, area: Any, body: dict[str, Any]) -> dict[str, Any]:
        numeric = [f.name for f in layer.fields() if f.json_type in NUMERIC and not f.personal
                   and f.name not in (layer.key, "version")]
        geom = layer.table.c[layer.geometry_column]
        columns = [sa.func.count()] + [sa.func.sum(layer.table.c[n]) for n in numeric]
        row = conn.execute(sa.select(*columns).where(layer.current_clause(), access.row_clause(layer, caller),
                                                     sa.func.ST_Intersects(geom, area))).one()
        return {"count": int(row[0]),
                "sums": {n: (None if v is None else float(v)) for n, v in zip(numeric, row[1:], strict=True)}}

    return _per_layer(request, caller, payload, set(), answer)


def _per_layer(request: Request, caller: Caller, payload: Any, extra: set[str],
               answer: Callable[[Connection, Layer, Any, dict[str, Any]], dict[str, Any]]) -> Response:
    """The shape the area queries share: a GeoJSON geometry in any offered CRS (plus ``extra`` fields),
    the layers asked for that the caller may read, and one answer per layer from one connection."""
    check_params(request, frozenset())
    body = _body(payload, {"geometry", "crs", "layers", *extra}, {"geometry"})
    area = _storage_geometry(request, body["geometry"], body.get("crs"))
    with request.app.state.read_engine.connect() as conn:
        layers = {layer.id: answer(conn, layer, area, body) for layer in _layers(request, caller, body.get("layers"))}
    return json_response({"layers": layers})
