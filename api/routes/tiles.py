"""Vector tiles for every layer: OGC API – Tiles (WebMercatorQuad), plain {z}/{x}/{y}.mvt, TileJSON.

Tiles are cached by layer version (gis/tiles.py) and answered with an ETag; a matching
If-None-Match gets 304 without touching the database beyond the (TTL-cached) version read.
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response
from fastapi.routing import APIRoute

from api.common import (
    base_url,
    caller_of,
    check_params,
    json_response,
    link,
    readable_layer,
    visible_layers,
)
from api.deps import CurrentCaller
from gis import tiles
from gis.access import Caller
from gis.errors import InvalidParameter, NotFound
from gis.registry import Layer


class PlainRoute(APIRoute):
    """A route whose endpoint takes the Request and returns a Response itself: no per-request
    dependency solving or response handling (its parameters are documented through openapi_extra).
    For the tile routes, where FastAPI's per-request work was a third of a cold empty tile's time."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        return self.endpoint


router = APIRouter(tags=["Vector tiles"])
# the two routes that serve tiles: the app includes this router before every other, because routes
# are matched in order and these take the most requests
serving = APIRouter(tags=["Vector tiles"], route_class=PlainRoute)
MVT = "application/vnd.mapbox-vector-tile"
TMS_ID = "WebMercatorQuad"


def _path_parameter(name: str, description: str, integer: bool = False) -> dict[str, Any]:
    return {"name": name, "in": "path", "required": True, "description": description,
            "schema": {"type": "integer", "minimum": 0} if integer else {"type": "string"}}


_ZXY = [_path_parameter("z", "zoom level (tile matrix), 0–24", True),
        _path_parameter("x", "tile column", True), _path_parameter("y", "tile row", True)]
_LAYERS = {"name": "layers", "in": "query", "required": False, "schema": {"type": "string"},
           "description": "comma-separated layer ids; default: every layer the caller may read"}


def _tile_address(request: Request) -> tuple[int, int, int]:
    """z, x, y from the path. Tile routes read their path themselves rather than declare it:
    FastAPI's per-request parameter validation costs more than the rest of a cold tile's Python."""
    raw = [request.path_params[name] for name in ("z", "x", "y")]
    # ten digits are more than any WebMercatorQuad tile needs (and keep int() far from its limit)
    if not all(part.isascii() and part.isdigit() and len(part) <= 10 for part in raw):
        raise InvalidParameter(f"tile address {'/'.join(part[:12] for part in raw)} is not three whole numbers "
                               "of a WebMercatorQuad tile: use zoom/column/row, for example 15/26949/14279")
    z, x, y = (int(part) for part in raw)
    return z, x, y


@serving.get("/collections/{collection_id}/tiles/{tms_id}/{z}/{y}/{x}", summary="A vector tile (OGC order)",
            response_class=Response, responses={200: {"content": {"application/vnd.mapbox-vector-tile": {}}}},
            openapi_extra={"parameters": [
                _path_parameter("collection_id", "layer id"), _path_parameter("tms_id", "tile matrix set: WebMercatorQuad"),
                *_ZXY]})
async def collection_tile(request: Request) -> Response:
    check_params(request, frozenset({"f"}))
    z, x, y = _tile_address(request)
    layer = readable_layer(request.path_params["collection_id"], _caller(request))
    tms_id = request.path_params["tms_id"]
    if tms_id != TMS_ID:
        raise NotFound(f"tile matrix set {tms_id!r} is not offered; use {TMS_ID}")
    return await serve_tile(request, (layer,), z, x, y)


@serving.get("/tiles/{z}/{x}/{y}.mvt", summary="Multi-layer vector tile (XYZ order)", response_class=Response,
            openapi_extra={"parameters": [*_ZXY, _LAYERS]})
async def xyz_tile(request: Request) -> Response:
    check_params(request, frozenset({"layers"}))
    z, x, y = _tile_address(request)
    return await serve_tile(request, _layers_param(request, _caller(request)), z, x, y)


def tile_cache(request: Request) -> tiles.TileCache:
    cache = getattr(request.app.state, "tile_cache", None)
    if cache is None:
        cache = request.app.state.tile_cache = tiles.TileCache()
    return cache


async def serve_tile(request: Request, layers: tuple[Layer, ...], z: int, x: int, y: int) -> Response:
    """A tile from the cache; the database only for stale versions or a new tile, awaited on the
    event loop (gis.db.LoopReader) so a cold tile costs little more than its SQL."""
    tiles.check_tile(z, x, y)
    cache = tile_cache(request)
    reader = request.app.state.tile_reader
    versions = cache.fresh_versions()
    if versions is None:
        versions = cache.set_versions(await reader.rows(tiles.versions_statement()))
    caller = _caller(request)
    key = cache.key(layers, versions, z, x, y, tiles.row_scope(layers, caller)[1])
    etag = cache.etag(key)
    headers = {"ETag": etag, "Cache-Control": "no-cache", "Vary": "X-API-Key"}
    if request.headers.get("if-none-match") == etag:
        return Response(status_code=304, headers=headers)
    data = cache.get(key)
    if data is None:
        settings = request.app.state.settings
        statement, params = tiles.tile_query(layers, z, x, y, settings.storage_srid, settings.spatial.storage_crs,
                                             caller)
        # prepared: every tile parameter is a typed function argument (see LoopReader)
        data = bytes(await reader.scalar(statement, params, prepare=True) or b"")
        cache.put(key, data)
    return Response(data, media_type=MVT, headers=headers)


def _caller(request: Request) -> Caller:
    # read directly (not through a sync dependency) so cached tiles never leave the event loop
    return caller_of(request)


def _layers_param(request: Request, caller: Caller) -> tuple[Layer, ...]:
    raw = request.query_params.get("layers")
    if raw is None:
        return tuple(visible_layers(caller))
    names = [n.strip() for n in raw.split(",") if n.strip()]
    if not names:
        raise InvalidParameter("layers= is empty: name one or more layer ids, or leave it out for all")
    return tuple(readable_layer(n, caller) for n in dict.fromkeys(names))


@router.get("/tileMatrixSets", summary="Tile matrix sets")
def tile_matrix_sets(request: Request) -> Response:
    check_params(request, frozenset({"f"}))
    base = base_url(request)
    return json_response({"tileMatrixSets": [{
        "id": TMS_ID, "title": "Google Maps Compatible for the World", "uri": tiles.TMS_URI,
        "links": [link(f"{base}/tileMatrixSets/{TMS_ID}", "self", "application/json")]}]})


@router.get("/tileMatrixSets/{tms_id}", summary="One tile matrix set")
def tile_matrix_set(request: Request, tms_id: str) -> Response:
    check_params(request, frozenset({"f"}))
    if tms_id != TMS_ID:
        raise NotFound(f"tile matrix set {tms_id!r} is not offered; use {TMS_ID}")
    return json_response(tiles.web_mercator_quad())


def _tileset(request: Request, layer: Layer) -> dict[str, Any]:
    base = base_url(request)
    href = f"{base}/collections/{layer.id}/tiles/{TMS_ID}"
    return {
        "title": f"{layer.title_zh} {layer.title_en}",
        "dataType": "vector",
        "crs": "http://www.opengis.net/def/crs/EPSG/0/3857",
        "tileMatrixSetURI": tiles.TMS_URI,
        "links": [
            link(href, "self", "application/json"),
            link(f"{base}/tileMatrixSets/{TMS_ID}", "http://www.opengis.net/def/rel/ogc/1.0/tiling-scheme",
                 "application/json"),
            {"href": href + "/{tileMatrix}/{tileRow}/{tileCol}", "rel": "item", "type": MVT, "templated": True},
        ],
        "layers": [{"id": layer.id, "dataType": "vector", "geometryType": _geometry_dim(layer),
                    "propertiesSchema": {"type": "object", "properties": _fields(layer)}}],
    }


def _geometry_dim(layer: Layer) -> str:
    kind = (layer.geometry_type or "").lower().removeprefix("multi")
    return {"point": "points", "linestring": "lines", "polygon": "polygons"}.get(kind, "geometries")


def _fields(layer: Layer) -> dict[str, Any]:
    types = {info.name: info.json_type for info in layer.fields()}
    return {name: {"type": types.get(name, "string")} for name in tiles.tile_fields(layer)}


@router.get("/collections/{collection_id}/tiles", summary="Tilesets of a collection")
def collection_tilesets(request: Request, collection_id: str, caller: CurrentCaller) -> Response:
    check_params(request, frozenset({"f"}))
    layer = readable_layer(collection_id, caller)
    return json_response({"tilesets": [_tileset(request, layer)],
                          "links": [link(f"{base_url(request)}/collections/{layer.id}/tiles", "self",
                                         "application/json")]})


@router.get("/collections/{collection_id}/tiles/{tms_id}", summary="Tileset metadata")
def collection_tileset(request: Request, collection_id: str, tms_id: str, caller: CurrentCaller) -> Response:
    check_params(request, frozenset({"f"}))
    layer = readable_layer(collection_id, caller)
    if tms_id != TMS_ID:
        raise NotFound(f"tile matrix set {tms_id!r} is not offered; use {TMS_ID}")
    return json_response(_tileset(request, layer))


@router.get("/tiles/tilejson.json", summary="TileJSON 3.0 for a multi-layer tile source")
def tilejson(request: Request, caller: CurrentCaller) -> Response:
    check_params(request, frozenset({"layers"}))
    layers = _layers_param(request, caller)
    base = base_url(request)
    names = ",".join(layer.id for layer in layers)
    settings = request.app.state.settings
    lon0, lat0, lon1, lat1 = settings.spatial.city_bounds
    return json_response({
        "tilejson": "3.0.0",
        "name": "govgis",
        "scheme": "xyz",
        "tiles": [f"{base}/tiles/{{z}}/{{x}}/{{y}}.mvt?layers={names}"],
        "minzoom": 0,
        "maxzoom": 22,
        "bounds": [lon0, lat0, lon1, lat1],
        "center": [(lon0 + lon1) / 2, (lat0 + lat1) / 2, 12],
        "vector_layers": [{"id": layer.id, "description": layer.title_zh, "fields": {
            name: spec["type"].capitalize() if spec["type"] != "integer" else "Number"
            for name, spec in _fields(layer).items()}, "minzoom": int(layer.style.get("min_zoom", 0)), "maxzoom": 22}
            for layer in layers],
    })
