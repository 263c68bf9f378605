"""OGC API – Features Parts 1–4 over every layer in the registry (no per-layer routes).

Query parameters are parsed here from the raw query string so that an unknown parameter is a 400
(as the standard's "unknown parameter" rule allows and GDAL/QGIS expect), limits are clamped rather
than refused, and every identifier is checked against the registry before it reaches SQL. The
GeoJSON itself is written by PostGIS (gis/features.py); this module only adds the envelope and links.

ETags: a feature's ETag is its row version as a strong validator, ``"<version>"``; If-Match accepts
that value with or without ``W/``. PUT, PATCH and DELETE require If-Match (428 without it) so that
one department never silently overwrites another's edit; a stale version gets 412.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlencode

import orjson
import sqlalchemy as sa
from fastapi import APIRouter, Body, Request
from fastapi.responses import Response

from api.common import (
    base_url,
    caller_of,
    check_params,
    int_param,
    intake_frame,
    intake_limits,
    json_response,
    link,
    readable_layer,
    render_html,
    settings_of,
    visible_layers,
    wants_html,
)
from api.deps import CurrentCaller, DbWrite
from gis import access, cql2, features, intake
from gis.access import Caller
from gis.crs import CRS84_URI
from gis.errors import InvalidParameter, NotFound
from gis.features import ItemsQuery, OutputCrs
from gis.registry import Layer
from gis.registry import json_schema_type as features_json_type
from gis.writes import delete_feature, insert_feature, update_feature

router = APIRouter(tags=["OGC API – Features"])

GEOJSON = "application/geo+json"
OGC = "http://www.opengis.net/spec/"
CONFORMANCE = [
    OGC + "ogcapi-features-1/1.0/conf/core",
    OGC + "ogcapi-features-1/1.0/conf/geojson",
    OGC + "ogcapi-features-1/1.0/conf/html",
    OGC + "ogcapi-features-1/1.0/conf/oas30",
    OGC + "ogcapi-features-2/1.0/conf/crs",
    OGC + "ogcapi-features-3/1.0/conf/features-filter",
    OGC + "ogcapi-features-3/1.0/conf/filter",
    OGC + "ogcapi-features-3/1.0/conf/queryables",
    OGC + "ogcapi-features-3/1.0/conf/queryables-query-parameters",
    OGC + "cql2/1.0/conf/cql2-text",
    OGC + "cql2/1.0/conf/cql2-json",
    OGC + "cql2/1.0/conf/basic-cql2",
    OGC + "cql2/1.0/conf/basic-spatial-functions",
    OGC + "cql2/1.0/conf/basic-spatial-functions-plus",
    OGC + "cql2/1.0/conf/spatial-functions",
    OGC + "cql2/1.0/conf/temporal-functions",
    OGC + "cql2/1.0/conf/property-property",
    OGC + "cql2/1.0/conf/case-insensitive-comparison",
    OGC + "ogcapi-features-4/1.0/conf/create-replace-delete",
    OGC + "ogcapi-features-4/1.0/conf/update",
    OGC + "ogcapi-features-4/1.0/conf/features",
    OGC + "ogcapi-features-5/1.0/conf/sorting",
    OGC + "ogcapi-tiles-1/1.0/conf/core",
    OGC + "ogcapi-tiles-1/1.0/conf/tileset",
    OGC + "ogcapi-tiles-1/1.0/conf/tilesets-list",
    OGC + "ogcapi-tiles-1/1.0/conf/geodata-tilesets",
    OGC + "ogcapi-tiles-1/1.0/conf/mvt",
    OGC + "ogcapi-tiles-1/1.0/conf/oas30",
]
ITEMS_PARAMS = frozenset({"f", "limit", "offset", "bbox", "bbox-crs", "crs", "datetime", "filter", "filter-lang",
                          "filter-crs", "properties", "sortby", "skipGeometry"})

# parameters documented in the OpenAPI definition (they are parsed from the query string by hand)
_P = {
    "f": {"name": "f", "in": "query", "schema": {"type": "string", "enum": ["json", "html"]},
          "description": "Output format (default json; text/html Accept gives HTML)"},
    "limit": {"name": "limit", "in": "query", "schema": {"type": "integer", "minimum": 1, "default": 100},
              "description": "Page size; values above the server maximum are clamped"},
    "offset": {"name": "offset", "in": "query", "schema": {"type": "integer", "minimum": 0, "default": 0}},
    "bbox": {"name": "bbox", "in": "query", "style": "form", "explode": False,
             "schema": {"type": "array", "minItems": 4, "maxItems": 6, "items": {"type": "number"}}},
    "bbox-crs": {"name": "bbox-crs", "in": "query", "schema": {"type": "string", "format": "uri"}},
    "crs": {"name": "crs", "in": "query", "schema": {"type": "string", "format": "uri"}},
    "datetime": {"name": "datetime", "in": "query", "schema": {"type": "string"},
                 "description": "Instant or interval; for history layers an instant means 'as of'"},
    "filter": {"name": "filter", "in": "query", "schema": {"type": "string"}},
    "filter-lang": {"name": "filter-lang", "in": "query",
                    "schema": {"type": "string", "enum": ["cql2-text", "cql2-json"]}},
    "filter-crs": {"name": "filter-crs", "in": "query", "schema": {"type": "string", "format": "uri"}},
    "properties": {"name": "properties", "in": "query", "schema": {"type": "string"}},
    "sortby": {"name": "sortby", "in": "query", "schema": {"type": "string"}},
    "skipGeometry": {"name": "skipGeometry", "in": "query", "schema": {"type": "boolean"}},
}


def openapi_params(*names: str) -> dict[str, Any]:
    return {"parameters": [_P[n] for n in names]}


# ---------------------------------------------------------------- landing, conformance, collections


@router.get("/", summary="Landing page 服务首页", openapi_extra=openapi_params("f"))
def landing(request: Request) -> Response:
    check_params(request, frozenset({"f"}))
    base = base_url(request)
    body = {
        "title": "govgis 城市空间数据服务",
        "description": "OGC API – Features and Tiles for the city's cadastre, land use, pipelines and "
                       "emergency layers / 宗地、土地利用、地下管线与应急资源图层",
        "links": [
            link(f"{base}/", "self", "application/json", "This document"),
            link(f"{base}/?f=html", "alternate", "text/html", "This document as HTML"),
            link(f"{base}/api", "service-desc", "application/vnd.oai.openapi+json;version=3.0", "API definition"),
            link(f"{base}/conformance", "conformance", "application/json", "Conformance classes"),
            link(f"{base}/conformance", "http://www.opengis.net/def/rel/ogc/1.0/conformance", "application/json",
                 "Conformance classes"),
            link(f"{base}/collections", "data", "application/json", "Collections 图层"),
            link(f"{base}/collections", "http://www.opengis.net/def/rel/ogc/1.0/data", "application/json",
                 "Collections"),
            link(f"{base}/tileMatrixSets", "http://www.opengis.net/def/rel/ogc/1.0/tiling-schemes",
                 "application/json", "Tile matrix sets"),
        ],
    }
    return render_html(body["title"], body) if wants_html(request) else json_response(body)


@router.get("/conformance", summary="Conformance classes", openapi_extra=openapi_params("f"))
def conformance(request: Request) -> Response:
    check_params(request, frozenset({"f"}))
    body = {"conformsTo": CONFORMANCE,
            "links": [link(f"{base_url(request)}/conformance", "self", "application/json")]}
    return render_html("Conformance", body) if wants_html(request) else json_response(body)


def collection_doc(request: Request, layer: Layer, extent: tuple[float, float, float, float] | None) -> dict[str, Any]:
    base = base_url(request)
    settings = settings_of(request)
    href = f"{base}/collections/{layer.id}"
    doc: dict[str, Any] = {
        "id": layer.id,
        "title": f"{layer.title_zh} {layer.title_en}",
        "description": layer.description or f"{layer.title_zh} ({layer.department})",
        "itemType": "feature",
        "crs": list(features.supported_crs(settings.storage_srid)),
        "storageCrs": features.crs_uri(settings.storage_srid),
        "links": [
            link(href, "self", "application/json", layer.title_zh),
            link(f"{href}?f=html", "alternate", "text/html"),
            link(f"{href}/items", "items", GEOJSON, "Features"),
            link(f"{href}/items?f=html", "items", "text/html", "Features (HTML)"),
            link(f"{href}/queryables", "http://www.opengis.net/def/rel/ogc/1.0/queryables",
                 "application/schema+json", "Queryables"),
            link(f"{href}/tiles", "http://www.opengis.net/def/rel/ogc/1.0/tilesets-vector", "application/json",
                 "Vector tiles"),
        ],
        "govgis:access": layer.access.value,
        "govgis:department": layer.department,
        "govgis:geometryType": layer.geometry_type,
    }
    if extent:
        doc["extent"] = {"spatial": {"bbox": [list(extent)], "crs": CRS84_URI}}
    if layer.has_history or layer.datetime_column:
        doc.setdefault("extent", {})["temporal"] = {"interval": [[None, None]],
                                                    "trs": "http://www.opengis.net/def/uom/ISO-8601/0/Gregorian"}
    return doc


def _extents(request: Request, layers: list[Layer]) -> dict[str, tuple[float, float, float, float] | None]:
    """Extents cached per layer version, so listing collections does not scan tables."""
    cache: dict[str, Any] = request.app.state.__dict__.setdefault("_ogc_extents", {})
    with request.app.state.read_engine.connect() as conn:
        versions = dict(conn.execute(sa.text("SELECT table_name, version FROM layer_versions")).all())
        out = {}
        for layer in layers:
            version = versions.get(layer.table.name, 0)
            hit = cache.get(layer.id)
            if hit is None or hit[0] != version:
                hit = (version, features.layer_extent(conn, layer))
                cache[layer.id] = hit
            out[layer.id] = hit[1]
    return out


@router.get("/collections", summary="Collections 图层列表", openapi_extra=openapi_params("f"))
def collections(request: Request, caller: CurrentCaller) -> Response:
    check_params(request, frozenset({"f"}))
    layers = visible_layers(caller)
    extents = _extents(request, layers)
    base = base_url(request)
    body = {
        "links": [link(f"{base}/collections", "self", "application/json"),
                  link(f"{base}/collections?f=html", "alternate", "text/html")],
        "collections": [collection_doc(request, layer, extents[layer.id]) for layer in layers],
    }
    return render_html("Collections 图层", body) if wants_html(request) else json_response(body)


@router.get("/collections/{collection_id}", summary="One collection", openapi_extra=openapi_params("f"))
def collection(request: Request, collection_id: str, caller: CurrentCaller) -> Response:
    check_params(request, frozenset({"f"}))
    layer = readable_layer(collection_id, caller)
    body = collection_doc(request, layer, _extents(request, [layer])[layer.id])
    return render_html(body["title"], body) if wants_html(request) else json_response(body)


@router.get("/collections/{collection_id}/queryables", summary="Queryable properties (JSON Schema)",
            openapi_extra=openapi_params("f"))
def queryables(request: Request, collection_id: str, caller: CurrentCaller) -> Response:
    check_params(request, frozenset({"f"}))
    layer = readable_layer(collection_id, caller)
    props: dict[str, Any] = {
        layer.geometry_column: {"$ref": f"https://geojson.org/schema/{layer.geometry_type}.json",
                                "x-ogc-role": "primary-geometry"}
    }
    for info in access.queryable_fields(layer, caller):
        schema: dict[str, Any] = {"title": info.title_zh, "description": info.title_en, "type": info.json_type}
        if info.format:
            schema["format"] = info.format
        props[info.name] = schema
    body = {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": f"{base_url(request)}/collections/{layer.id}/queryables",
        "type": "object",
        "title": layer.title_zh,
        "properties": props,
        "additionalProperties": False,
    }
    if wants_html(request):
        return render_html(f"{layer.title_zh} queryables", body)
    return json_response(body, "application/schema+json")


# ---------------------------------------------------------------- items


def build_items_query(request: Request, layer: Layer, caller: Caller) -> tuple[ItemsQuery, int, int]:
    """Parse the items parameters into an ItemsQuery (every identifier checked, every value bound)."""
    settings = settings_of(request)
    storage_srid = settings.storage_srid
    qp = request.query_params
    field_params = frozenset(layer.field_names())
    check_params(request, ITEMS_PARAMS, field_params)
    if len(request.query_params.multi_items()) > len(ITEMS_PARAMS) + len(field_params):
        raise InvalidParameter("a parameter is repeated: give each parameter once")
    limit = min(int_param(request, "limit", settings.service.default_items, 1), settings.service.max_items)
    offset = int_param(request, "offset", 0, 0)
    q = ItemsQuery(layer=layer, caller=caller, storage_srid=storage_srid, limit=limit, offset=offset)
    q.out = features.resolve_crs(qp.get("crs"), storage_srid)
    q.where.append(features.time_clause(layer, qp.get("datetime")))
    if qp.get("bbox") is not None:
        bbox_crs = features.resolve_crs(qp.get("bbox-crs"), storage_srid)
        bbox = intake.parse_bbox(qp["bbox"], geographic=bbox_crs.srid in (4326, 4490))
        q.where.append(features.bbox_clause(layer, bbox, bbox_crs, storage_srid))
    elif qp.get("bbox-crs") is not None:
        features.resolve_crs(qp["bbox-crs"], storage_srid)
    for name in sorted(field_params & set(qp.keys())):
        # field=value: the same rights as a filter (a personal field needs the personal-data scope)
        expression = access.usable_field(layer, caller, name, f"{name}=…")
        column = layer.table.c[name]
        value = _typed_value(column, qp[name])
        q.where.append(expression == sa.bindparam(None, value, type_=expression.type))
    if qp.get("filter") is not None:
        lang = qp.get("filter-lang", "cql2-text")
        filter_crs: OutputCrs = features.resolve_crs(qp.get("filter-crs"), storage_srid)
        ctx = cql2.FilterContext(layer, filter_crs.srid, storage_srid, caller=caller, flip_axes=filter_crs.flip)
        q.where.append(cql2.to_clause(cql2.parse_filter(qp["filter"], lang), ctx))
    elif qp.get("filter-lang") not in (None, "cql2-text", "cql2-json"):
        raise InvalidParameter("filter-lang must be cql2-text or cql2-json")
    if qp.get("sortby"):
        q.order = features.parse_sortby(layer, qp["sortby"], caller)
    if qp.get("properties") is not None:
        q.properties = features.parse_properties(layer, qp["properties"], caller)
    if qp.get("skipGeometry") is not None:
        if qp["skipGeometry"] not in ("true", "false"):
            raise InvalidParameter("skipGeometry must be true or false")
        q.skip_geometry = qp["skipGeometry"] == "true"
    return q, limit, offset


def _typed_value(column: sa.Column, raw: str) -> Any:
    """A `field=value` text as the column's type, or a 400 saying what the field takes."""
    kind, _ = features_json_type(column.type)
    try:
        if kind == "integer":
            return int(raw)
        if kind == "number":
            return float(raw)
        if kind == "boolean":
            return {"true": True, "false": False}[raw.lower()]
    except (ValueError, KeyError):
        raise InvalidParameter(f"{column.name}={raw[:40]!r}: {column.name} takes a {kind}") from None
    return raw


def _page_links(request: Request, layer: Layer, limit: int, offset: int, returned: int) -> list[dict[str, str]]:
    base = f"{base_url(request)}/collections/{layer.id}/items"
    params = {k: v for k, v in request.query_params.items() if k not in ("offset", "f")}
    query = urlencode(params)
    links = [link(f"{base}?{query}" if query else base, "self", GEOJSON),
             link(f"{base}?{urlencode({**params, 'f': 'html'})}", "alternate", "text/html"),
             link(f"{base_url(request)}/collections/{layer.id}", "collection", "application/json")]
    if returned >= limit:
        links.append(link(f"{base}?{urlencode({**params, 'offset': offset + limit})}", "next", GEOJSON))
    if offset > 0:
        links.append(link(f"{base}?{urlencode({**params, 'offset': max(0, offset - limit)})}", "prev", GEOJSON))
    return links


def _crs_header(out: OutputCrs) -> dict[str, str]:
    return {"Content-Crs": f"<{out.uri}>"}


@router.get("/collections/{collection_id}/items", summary="Features of a collection",
            openapi_extra=openapi_params(*sorted(ITEMS_PARAMS)), response_class=Response)
def items(request: Request, collection_id: str) -> Response:
    caller = caller_of(request)
    layer = readable_layer(collection_id, caller)
    q, limit, offset = build_items_query(request, layer, caller)
    with request.app.state.read_engine.connect() as conn:
        try:
            page = features.fetch_page(conn, q)
        except (sa.exc.ProgrammingError, sa.exc.InternalError) as exc:
            # a filter the translator let through but PostgreSQL cannot type (class 42): the client's input
            code = getattr(exc.orig, "pgcode", "") or ""
            if "filter" not in request.query_params or not code.startswith("42"):
                raise
            raise InvalidParameter("the filter compares values of incompatible types: check each property's "
                                   "type at /collections/{id}/queryables") from None

    envelope: dict[str, Any] = {"type": "FeatureCollection",
                                "timeStamp": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")}
    if page.matched is not None:
        envelope["numberMatched"] = page.matched
    envelope["numberReturned"] = page.returned
    envelope["links"] = _page_links(request, layer, limit, offset, page.returned)
    if wants_html(request):
        envelope["features"] = orjson.loads(page.features_json)
        return render_html(f"{layer.title_zh} features", envelope)
    head = orjson.dumps(envelope)
    body = head[:-1] + b',"features":' + page.features_json.encode() + b"}"
    return Response(body, media_type=GEOJSON, headers=_crs_header(q.out))


def _feature_id(layer: Layer, raw: str) -> object:
    column = layer.table.c[layer.key]
    try:
        python_type = column.type.python_type
    except NotImplementedError:
        return raw
    if python_type is int:
        if not raw.lstrip("-").isdigit() or len(raw) > 18:
            raise NotFound(f"{layer.id} has no feature {raw!r}: feature ids of this layer are whole numbers")
        return int(raw)
    return raw


@router.get("/collections/{collection_id}/items/{feature_id}", summary="One feature",
            openapi_extra=openapi_params("f", "crs", "properties"), response_class=Response)
def item(request: Request, collection_id: str, feature_id: str) -> Response:
    caller = caller_of(request)
    layer = readable_layer(collection_id, caller)
    check_params(request, frozenset({"f", "crs", "properties"}))
    settings = settings_of(request)
    q = ItemsQuery(layer=layer, caller=caller, storage_srid=settings.storage_srid)
    q.out = features.resolve_crs(request.query_params.get("crs"), settings.storage_srid)
    if request.query_params.get("properties") is not None:
        q.properties = features.parse_properties(layer, request.query_params["properties"], caller)
    with request.app.state.read_engine.connect() as conn:
        text, version = features.fetch_feature(conn, q, _feature_id(layer, feature_id))
    base = f"{base_url(request)}/collections/{layer.id}"
    links = [link(f"{base}/items/{feature_id}", "self", GEOJSON),
             link(f"{base}/items/{feature_id}?f=html", "alternate", "text/html"),
             link(base, "collection", "application/json")]
    etag = f'"{version}"'
    if wants_html(request):
        feature = orjson.loads(text)
        return render_html(f"{layer.title_zh} {feature_id}", {"features": [feature], "links": links})
    body = text.encode()[:-1] + b',"links":' + orjson.dumps(links) + b"}"
    return Response(body, media_type=GEOJSON, headers={**_crs_header(q.out), "ETag": etag})


# ---------------------------------------------------------------- writes (Part 4)


def _content_crs(request: Request) -> str:
    """The CRS of posted coordinates: Content-Crs header (<uri>) or `crs` parameter; default CRS84."""
    raw = request.headers.get("content-crs") or request.query_params.get("crs")
    return raw.strip().strip("<>") if raw else CRS84_URI


def _incoming_geometry(request: Request, layer: Layer, feature: dict[str, Any], *, required: bool) -> Any:
    settings = settings_of(request)
    raw = feature.get("geometry")
    if raw is None:
        if required:
            raise InvalidParameter("the feature needs a geometry (GeoJSON) in the layer's CRS or Content-Crs")
        return None
    crs_value = _content_crs(request)
    features.resolve_crs(crs_value, settings.storage_srid)  # only the CRSs the collection offers
    return intake.client_geometry(raw, crs_value, frame=intake_frame(settings), limits=intake_limits(settings),
                                  expected=layer.geometry_type)


def _feature_body(payload: Any) -> dict[str, Any]:
    if not isinstance(payload, dict) or payload.get("type") not in ("Feature", None):
        raise InvalidParameter("send one GeoJSON Feature: {\"type\": \"Feature\", \"geometry\": ..., \"properties\": {...}}")
    props = payload.get("properties") or {}
    if not isinstance(props, dict):
        raise InvalidParameter("'properties' must be an object")
    return payload


def _if_match(request: Request) -> int | None:
    raw = request.headers.get("if-match")
    if raw is None:
        return None
    value = raw.strip().removeprefix("W/").strip('"')
    if not value.isdigit():
        raise InvalidParameter(f"If-Match {raw!r} is not an ETag of this service (send the ETag you got, e.g. \"3\")")
    return int(value)


def _written(request: Request, layer: Layer, row: dict[str, Any], status: int) -> Response:
    cache = getattr(request.app.state, "tile_cache", None)
    if cache is not None:  # this process's tiles see the write at once (others within their TTL)
        cache.forget_versions()
    feature_id = row[layer.key]
    location = f"{base_url(request)}/collections/{layer.id}/items/{feature_id}"
    headers = {"Location": location, "ETag": f'"{row.get("version", 1)}"'}
    body = {"id": feature_id, "version": row.get("version"), "links": [link(location, "self", GEOJSON)]}
    return json_response(body, status=status, headers=headers)


@router.post("/collections/{collection_id}/items", status_code=201, summary="Add a feature (Part 4)",
             openapi_extra=openapi_params("crs"))
def create_item(request: Request, collection_id: str, caller: CurrentCaller, conn: DbWrite,
                payload: Any = Body(...)) -> Response:
    check_params(request, frozenset({"crs"}))
    layer = readable_layer(collection_id, caller)
    access.require_generic_write(caller, layer)  # before parsing anything: the answer does not depend on it
    feature = _feature_body(payload)
    geometry = _incoming_geometry(request, layer, feature, required=True)
    row = insert_feature(conn, layer, caller, feature.get("properties") or {}, geometry)
    return _written(request, layer, row, 201)


@router.put("/collections/{collection_id}/items/{feature_id}", summary="Replace a feature (If-Match)",
            openapi_extra=openapi_params("crs"))
def replace_item(request: Request, collection_id: str, feature_id: str, caller: CurrentCaller, conn: DbWrite,
                 payload: Any = Body(...)) -> Response:
    return _update_item(request, collection_id, feature_id, caller, conn, payload, replace=True)


@router.patch("/collections/{collection_id}/items/{feature_id}", summary="Update some fields (If-Match)",
              openapi_extra=openapi_params("crs"))
def patch_item(request: Request, collection_id: str, feature_id: str, caller: CurrentCaller, conn: DbWrite,
               payload: Any = Body(...)) -> Response:
    return _update_item(request, collection_id, feature_id, caller, conn, payload, replace=False)


def _update_item(request: Request, collection_id: str, feature_id: str, caller: Caller, conn: Any, payload: Any,
                 *, replace: bool) -> Response:
    """PUT (replace: every field and the geometry) and PATCH (only what is sent), both If-Match guarded."""
    check_params(request, frozenset({"crs"}))
    layer = readable_layer(collection_id, caller)
    access.require_generic_write(caller, layer)
    feature = _feature_body(payload)
    geometry = _incoming_geometry(request, layer, feature, required=replace)
    row = update_feature(conn, layer, caller, _feature_id(layer, feature_id), feature.get("properties") or {},
                         geometry, expected_version=_if_match(request), replace=replace, require_version=True)
    return _written(request, layer, row, 200)


@router.delete("/collections/{collection_id}/items/{feature_id}", status_code=204,
               summary="Delete a feature (If-Match)")
def delete_item(request: Request, collection_id: str, feature_id: str, caller: CurrentCaller,
                conn: DbWrite) -> Response:
    check_params(request, frozenset())
    layer = readable_layer(collection_id, caller)
    access.require_generic_write(caller, layer)
    delete_feature(conn, layer, caller, _feature_id(layer, feature_id), expected_version=_if_match(request),
                   require_version=True)
    cache = getattr(request.app.state, "tile_cache", None)
    if cache is not None:
        cache.forget_versions()
    return Response(status_code=204)

