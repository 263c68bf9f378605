"""The web map: the page at /map, its static files, and /map/layers.json (what the caller may see).

The page itself talks to the API over HTTP only (tiles, items, identify, module endpoints); this
router just serves it and describes the layers from the registry, filtered by the caller's rights.
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from fastapi import APIRouter, Request
from fastapi.responses import FileResponse, HTMLResponse, JSONResponse, Response

from api.deps import AppSettings, CurrentCaller, DbRead
from gis.access import Caller, can_read, can_write
from gis.crs import parse_crs
from gis.errors import NotFound
from gis.raster import RasterBasemap, find_basemaps, render_tile
from gis.registry import REGISTRY, Layer
from layers.pipeline.layers import ISOLATIONS, REPAIR_ORDERS
from webmap import fields, legends
from webmap.page import PageConfig, build_page
from webmap.tools import TOOLS, MapTool, available_tools

router = APIRouter(tags=["web map"])
STATIC_DIR = (Path(__file__).resolve().parents[2] / "webmap" / "static").resolve()
# The basemap drawn from the city's own data; other layers start switched off.
BASEMAP_LAYERS = ("landuse_survey", "emergency_roads")
DEFAULT_ON = (*BASEMAP_LAYERS, "cadastre_parcels")
# zoom from which the map draws a layer, where it differs from the layer's own style: pipe nodes
# are drawn one symbol each (valve, hydrant, tee, meter …) from zoom 16, where they stay apart
MAP_MIN_ZOOM = {"pipeline_nodes": 16}
_MEDIA = {".js": "text/javascript", ".css": "text/css", ".png": "image/png", ".svg": "image/svg+xml",
          ".json": "application/json", ".map": "application/json"}


def _asset_version() -> str:
    stamp = STATIC_DIR / "vendor" / ".stamp"
    newest = max((p.stat().st_mtime_ns for p in STATIC_DIR.rglob("*.js")), default=0)
    return (stamp.read_text().strip()[:8] if stamp.exists() else "dev") + f"{newest % 100000:05d}"


@router.get("/map", response_class=HTMLResponse, summary="The offline web map")
def map_page(request: Request, settings: AppSettings) -> HTMLResponse:
    page = getattr(request.app.state, "webmap_page", None)
    if page is None:
        if not (STATIC_DIR / "vendor" / ".stamp").exists():
            raise NotFound("the map's front-end packages are not installed: run `make assets` "
                           "(python -m webmap.assets) and reload")
        lon0, lat0, lon1, lat1 = _view_bounds(settings)
        with warnings.catch_warnings():  # PROJ strings drop datum detail; proj4js needs one anyway
            warnings.simplefilter("ignore")
            storage_proj4 = parse_crs(settings.spatial.storage_crs).to_proj4()
        config = PageConfig(
            center=((lat0 + lat1) / 2, (lon0 + lon1) / 2), zoom=13, bounds=(lon0, lat0, lon1, lat1),
            city_name=settings.spatial.city_name, storage_crs=settings.spatial.storage_crs,
            storage_proj4=storage_proj4, language=settings.service.language,
            time_zone=settings.service.time_zone, bureau_name=settings.service.bureau_name,
            external_basemap_url=settings.service.external_basemap_url,
            tools=available_tools(_route_paths(request.app.routes)),
            version=_asset_version(),
        )
        page = request.app.state.webmap_page = build_page(config)
    return HTMLResponse(page, headers={"Cache-Control": "no-cache"})


def _route_paths(routes: Any, prefix: str = "") -> list[str]:
    """Every path template the app serves, descending into included routers."""
    paths: list[str] = []
    for route in routes:
        context = getattr(route, "include_context", None)
        if context is not None:  # FastAPI ≥ 0.16x keeps included routers as nodes
            paths += _route_paths(context.included_router.routes, prefix + (context.prefix or ""))
        elif getattr(route, "path", None) is not None:
            paths.append(prefix + route.path)
    return paths


def _view_bounds(settings: Any) -> tuple[float, float, float, float]:
    return tuple(settings.spatial.city_bounds)  # type: ignore[return-value]


@router.get("/map/static/{asset_path:path}", include_in_schema=False)
def map_static(asset_path: str) -> FileResponse:
    # where the path really leads must be inside the folder: no "..", and no symlink out of it
    target = (STATIC_DIR / asset_path).resolve()
    if not target.is_relative_to(STATIC_DIR) or ".." in Path(asset_path).parts or not target.is_file():
        raise NotFound(f"no map asset {asset_path!r} (run `make assets` if a vendor file is missing)")
    return FileResponse(target, media_type=_MEDIA.get(target.suffix),
                        headers={"Cache-Control": "public, max-age=300"})


@router.get("/map/layers.json", summary="Layers the caller may see, with titles, style and legend")
def map_layers(request: Request, caller: CurrentCaller, conn: DbRead) -> JSONResponse:
    readable = [layer for layer in REGISTRY.spatial() if can_read(caller, layer)]
    networks = _networks(conn, caller) if any(la.id == "pipeline_pipes" for la in readable) else {}
    out = [_describe(layer, networks) for layer in readable]
    basemaps = [{"id": b.name, "kind": b.kind, "bounds": b.bounds,
                 "title": {"zh": ("正射影像 " if b.kind == "image" else "地形晕渲 ") + b.name,
                           "en": ("Orthophoto " if b.kind == "image" else "Hillshade ") + b.name},
                 "tiles": f"/map/basemap/{b.name}/{{z}}/{{x}}/{{y}}.png"} for b in _basemaps(request)]
    return JSONResponse({"layers": out, "basemaps": basemaps, "tiles": "/tiles/{z}/{x}/{y}.mvt",
                         "caller": {"name": caller.name, "anonymous": caller.anonymous,
                                    "department": caller.department, "scopes": _scopes(caller)},
                         "tools": {tool.id: _may_use(caller, tool) for tool in TOOLS},
                         "networks": networks, "utilities": fields.utility_names(),
                         "codes": fields.code_lists_for(readable)},
                        headers={"Cache-Control": "no-store"})


def _scopes(caller: Caller) -> dict[str, Any]:
    """What the caller's key allows, per layer family: read / write, and whether it sees personal data."""
    families: dict[str, dict[str, bool]] = {}
    for layer in REGISTRY.spatial():
        entry = families.setdefault(layer.family, {"read": False, "write": False})
        entry["read"] = entry["read"] or can_read(caller, layer)
        entry["write"] = entry["write"] or can_write(caller, layer)
    return {"families": families, "personal_data": caller.personal_data}


def _may_use(caller: Caller, tool: MapTool) -> bool:
    return all(can_read(caller, _layer(i)) for i in tool.reads) and \
        all(can_write(caller, _layer(i)) for i in tool.writes)


def _layer(layer_id: str) -> Layer:
    """A registry layer, or a module's store (isolations, repair orders) that the registry leaves out."""
    if layer_id in REGISTRY:
        return REGISTRY.get(layer_id)
    return {store.id: store for store in (ISOLATIONS, REPAIR_ORDERS)}[layer_id]


def _basemaps(request: Request) -> list[RasterBasemap]:
    found = getattr(request.app.state, "webmap_basemaps", None)
    if found is None:
        found = request.app.state.webmap_basemaps = find_basemaps(
            request.app.state.settings.service.raster_basemap_dir)
    return found


@router.get("/map/basemap/{name}/{z}/{x}/{y}.png", summary="A raster basemap tile from a local GeoTIFF",
            response_class=Response)
def basemap_tile(request: Request, name: str, z: int, x: int, y: int) -> Response:
    basemap = next((b for b in _basemaps(request) if b.name == name), None)
    if basemap is None:
        known = ", ".join(b.name for b in _basemaps(request)) or "none (set GOVGIS_RASTER_BASEMAP_DIR)"
        raise NotFound(f"no raster basemap {name!r}; available: {known}")
    png = render_tile(basemap, z, x, y)
    headers = {"Cache-Control": "public, max-age=3600"}
    if png is None:  # outside the raster: nothing to draw
        return Response(status_code=204, headers=headers)
    return Response(png, media_type="image/png", headers=headers)


def _describe(layer: Layer, networks: dict[str, dict[str, str]]) -> dict[str, Any]:
    style = dict(layer.style)
    geometry_type = layer.geometry_type or "Geometry"
    entry: dict[str, Any] = {
        "id": layer.id, "title": {"zh": layer.title_zh, "en": layer.title_en}, "family": layer.family,
        "access": layer.access.value, "geometry_type": geometry_type, "style": style, "legend": legends.legend_items(style),
        "symbols": legends.node_symbols() if layer.id == "pipeline_nodes" else [],
        "emergency": legends.emergency_symbols(layer.id),
        "min_zoom": MAP_MIN_ZOOM.get(layer.id, int(style.get("min_zoom", 10))),
        "basemap": layer.id in BASEMAP_LAYERS, "visible": layer.id in DEFAULT_ON,
        "key": layer.key, "searchable": list(layer.searchable), "map_fields": list(layer.map_fields),
        "has_history": layer.has_history, "datetime": layer.has_history or layer.datetime_column is not None,
        "fields": fields.describe_fields(layer),
        "tiles": f"/tiles/{{z}}/{{x}}/{{y}}.mvt?layers={layer.id}",
        "items": f"/collections/{layer.id}/items",
    }
    if layer.id == "emergency_shelters":
        entry["legend"] = legends.shelter_legend()
    if networks and "network_id" in layer.map_fields:
        # pipes and nodes carry network_id in their tiles: coloured by the network's utility
        entry["lookup"] = {"field": "network_id",
                           "values": {nid: n["utility"] for nid, n in networks.items()}}
    return entry


def _networks(conn: sa.Connection, caller: Caller) -> dict[str, dict[str, str]]:
    """network id → its name and utility (pipes are coloured by utility; the popup names the network)."""
    from layers.pipeline.service import list_networks

    return {str(row["id"]): {"name": row["name"], "utility": row["utility"]}
            for row in list_networks(conn, caller=caller)}
