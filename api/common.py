"""What every router shares: who is calling, the settings, the client-input intake frame, parameter
checks, JSON/HTML responses and links. Routers import this (and api/deps.py), never each other.
"""

from __future__ import annotations

import datetime as dt
import html
from typing import Any

import orjson
from fastapi import Request
from fastapi.responses import Response
from shapely.geometry import box
from shapely.geometry.base import BaseGeometry

from gis import intake
from gis.access import ANONYMOUS, Caller, can_read, require_read
from gis.crs import transformer
from gis.errors import InvalidParameter, NotFound
from gis.intake import Frame, Limits, check_text
from gis.registry import REGISTRY, Layer
from gis.settings import Settings

# Sent with every HTML page the API writes (items, reports, print pages): no scripts from elsewhere,
# no framing by another site, no content sniffing.
HTML_SECURITY_HEADERS = {
    "Content-Security-Policy": "default-src 'self'; img-src 'self' data:; style-src 'self' 'unsafe-inline'; "
                               "script-src 'self' 'unsafe-inline'; frame-ancestors 'self'; base-uri 'none'; "
                               "form-action 'self'",
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "SAMEORIGIN",
}


def caller_of(request: Request) -> Caller:
    """The caller set by api/access.py, read directly: a sync dependency would cost a thread hop."""
    return getattr(request.state, "caller", ANONYMOUS)


def settings_of(request: Request) -> Settings:
    return request.app.state.settings


def intake_frame(settings: Settings) -> Frame:
    """Where client geometries go: the storage CRS and the city's extent (gis.intake)."""
    return Frame(storage_crs=settings.spatial.storage_crs, city_bounds=tuple(settings.spatial.city_bounds))


def intake_limits(settings: Settings) -> Limits:
    return Limits(max_vertices=settings.service.max_query_vertices)


# Parcel boundaries, red lines and survey patches are survey-grade polygons with many vertices: the
# land and planning routes accept up to this many per geometry (other routes: max_query_vertices).
AREA_MAX_VERTICES = 200_000


def storage_geometry(geojson: Any, crs: str | None, settings: Settings, expected: str | None = "MultiPolygon",
                     *, max_vertices: int | None = None) -> BaseGeometry:
    """A client geometry (GeoJSON or WKT) in ``crs`` — read under gis.intake's one axis-order rule —
    validated (type, vertices, range, city bounds) and in the storage CRS."""
    limits = Limits(max_vertices=settings.service.max_query_vertices if max_vertices is None else max_vertices)
    return intake.client_geometry(geojson, crs, frame=intake_frame(settings), limits=limits, expected=expected)


def bbox_area(bbox: str | None, settings: Settings) -> BaseGeometry | None:
    """A lon/lat ``minlon,minlat,maxlon,maxlat`` box as a storage-CRS polygon (None when not given)."""
    if bbox is None:
        return None
    x0, y0, x1, y1 = intake.parse_bbox(bbox, geographic=True)
    if x1 <= x0 or y1 <= y0:
        raise InvalidParameter("bbox: the minimum must be below the maximum")
    t = transformer("OGC:CRS84", settings.spatial.storage_crs)
    return box(*t.transform_bounds(x0, y0, x1, y1, densify_pts=21))


def aware(value: dt.datetime | None, settings: Settings) -> dt.datetime | None:
    """A time from a module route's form or query: without an offset it is the city's local time
    (gis.intake.city_time, the one rule for every module route)."""
    return intake.city_time(value, settings.service.time_zone)


def check_params(request: Request, allowed: frozenset[str], extra: frozenset[str] = frozenset()) -> None:
    """Refuse unknown query parameters (the OGC "unknown parameter" rule) and unstorable values."""
    unknown = [k for k in request.query_params if k not in allowed and k not in extra]
    if unknown:
        raise InvalidParameter(
            f"unknown query parameter(s): {', '.join(sorted(unknown)[:20])}; allowed here: "
            f"{', '.join(sorted(allowed | extra))}"
        )
    for name, value in request.query_params.multi_items():
        check_text(value, name, max_chars=20_000)


def wants_html(request: Request) -> bool:
    f = request.query_params.get("f")
    if f is not None:
        if f not in ("json", "html", "geojson"):
            raise InvalidParameter(f"f={f[:20]!r} is not offered: use f=json or f=html")
        return f == "html"
    accept = request.headers.get("accept", "")
    return "text/html" in accept and "json" not in accept.split("text/html")[0]


def json_response(body: Any, media_type: str = "application/json", status: int = 200,
                  headers: dict[str, str] | None = None) -> Response:
    raw = body if isinstance(body, bytes) else orjson.dumps(body, option=orjson.OPT_NON_STR_KEYS)
    return Response(raw, status_code=status, media_type=media_type, headers=headers)


def readable_layer(layer_id: str, caller: Caller) -> Layer:
    layer = REGISTRY.get(layer_id)
    if layer.geometry_type is None:
        raise NotFound(f"{layer_id!r} is not a spatial layer")
    require_read(caller, layer)
    return layer


def visible_layers(caller: Caller) -> list[Layer]:
    return [layer for layer in REGISTRY.spatial() if can_read(caller, layer)]


def base_url(request: Request) -> str:
    """The service's public address for absolute links: the configured GOVGIS_PUBLIC_BASE_URL, never
    the Host header a client sent (a forged Host would otherwise be written into every link)."""
    configured = settings_of(request).service.public_base_url
    if configured:
        return configured.rstrip("/")
    settings = settings_of(request)
    return f"http://{settings.service.host}:{settings.service.port}"


def int_param(request: Request, name: str, default: int, minimum: int) -> int:
    raw = request.query_params.get(name)
    if raw is None:
        return default
    if not (raw.isascii() and raw.lstrip("-").isdigit()) or len(raw) > 12:
        raise InvalidParameter(f"{name}={raw[:20]!r} must be a whole number")
    value = int(raw)
    if value < minimum:
        raise InvalidParameter(f"{name} must be at least {minimum}")
    return value


def html_page(page: str, status: int = 200) -> Response:
    """An HTML document with the security headers every HTML answer carries."""
    return Response(page, status_code=status, media_type="text/html; charset=utf-8",
                    headers=HTML_SECURITY_HEADERS)


def render_html(title: str, body: dict[str, Any]) -> Response:
    """A plain HTML view of any JSON resource: its links and its content (nothing from the internet)."""
    links = "".join(
        f'<li><a href="{html.escape(str(link.get("href", "")))}">{html.escape(str(link.get("title") or link.get("rel")))}'
        f"</a> <small>({html.escape(str(link.get('rel')))})</small></li>"
        for link in body.get("links", [])
    )
    rows = ""
    if "features" in body:
        feats = body["features"]
        names = list(feats[0]["properties"]) if feats else []
        head = "".join(f"<th>{html.escape(n)}</th>" for n in ["id", *names])
        cells = "".join(
            "<tr>" + "".join(f"<td>{html.escape(str(v))}</td>" for v in [f.get("id"), *f["properties"].values()])
            + "</tr>" for f in feats)
        rows = f"<table border=1 cellpadding=3><tr>{head}</tr>{cells}</table>"
    elif "collections" in body:
        rows = "<ul>" + "".join(
            f'<li><a href="collections/{html.escape(c["id"])}?f=html">{html.escape(c["title"])}</a> '
            f"{html.escape(c.get('description', ''))}</li>" for c in body["collections"]) + "</ul>"
    content = html.escape(orjson.dumps({k: v for k, v in body.items() if k not in ("links", "features")},
                                       option=orjson.OPT_INDENT_2 | orjson.OPT_NON_STR_KEYS).decode())
    page = (f'<!doctype html><html lang="zh"><head><meta charset="utf-8"><title>{html.escape(title)}</title>'
            f"</head><body><h1>{html.escape(title)}</h1><ul>{links}</ul>{rows}<pre>{content}</pre></body></html>")
    return html_page(page)


def link(href: str, rel: str, media_type: str, title: str = "") -> dict[str, str]:
    out = {"href": href, "rel": rel, "type": media_type}
    if title:
        out["title"] = title
    return out


def download(content: bytes | str, f: str, name: str) -> Response:
    """A table as a file to save (f: csv or xlsx), named ``name``.csv/.xlsx: the one way the routers send
    CSV and spreadsheet downloads (media types as the API definition states them, api/openapi.py)."""
    from api.openapi import MEDIA_TYPES

    media = MEDIA_TYPES[f] + ("; charset=utf-8" if f == "csv" else "")
    return Response(content, media_type=media, headers={"Content-Disposition": f'attachment; filename="{name}.{f}"'})
