"""The API definition as OpenAPI 3.0.3 (FastAPI writes 3.1; OGC API Features and GDAL want 3.0).

FastAPI's generator is used as is, and the few 3.1-only constructs it emits are rewritten: a
``{"type": "null"}`` alternative becomes ``nullable: true``, ``examples`` in a schema becomes
``example``, and ``const`` becomes a one-value ``enum``.

Then every operation is told the truth about its error answers, by one rule over what the route
declares (not by lists on each route), so routes added later are covered without touching this file:
every operation may answer 400 (the request validation, folded from FastAPI's 422 in api/errors.py),
401 (an unknown key), 403 (a key without the right), 429 (over budget) and 503 (database away); an
operation that takes any parameter or body 404 (an id, code or year that names nothing); a write (POST/PUT/PATCH/DELETE) 405/409/412/428; a request body 413 (the body
limit of api/limits.py) and, for uploads, 415. All of them are RFC 7807
problem+json (``#/components/schemas/Problem``). A 2xx without a described body gets one from the
route's ``f`` formats or the path's file extension (GeoJSON, MVT, PNG, HTML, CSV, XLSX, PDF).
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi

OPENAPI_VERSION = "3.0.3"


def downgrade_schema(node: Any) -> Any:
    """A JSON Schema / OpenAPI fragment with 3.1-only forms rewritten for 3.0."""
    if isinstance(node, list):
        return [downgrade_schema(n) for n in node]
    if not isinstance(node, dict):
        return node
    out = {k: downgrade_schema(v) for k, v in node.items()}
    for combiner in ("anyOf", "oneOf"):
        options = out.get(combiner)
        if isinstance(options, list) and any(o == {"type": "null"} for o in options):
            rest = [o for o in options if o != {"type": "null"}]
            del out[combiner]
            if len(rest) == 1:
                out.update(rest[0])
            else:
                out[combiner] = rest
            out["nullable"] = True
    if out.get("type") == "null":
        out.pop("type")
        out["nullable"] = True
    if isinstance(out.get("type"), list):
        types = [t for t in out["type"] if t != "null"]
        if len(types) < len(out["type"]):
            out["nullable"] = True
        out["type"] = types[0] if types else "string"
    if "const" in out:
        out["enum"] = [out.pop("const")]
    if "examples" in out and isinstance(out["examples"], list) and "schema" not in out and "content" not in out:
        examples = out.pop("examples")
        if examples:
            out["example"] = examples[0]
    for key in ("exclusiveMinimum", "exclusiveMaximum"):
        if isinstance(out.get(key), (int, float)) and not isinstance(out.get(key), bool):
            bound = out.pop(key)
            out["minimum" if key == "exclusiveMinimum" else "maximum"] = bound
            out[key] = True
    out.pop("$schema", None)
    return out


PROBLEM_SCHEMA: dict[str, Any] = {
    "type": "object",
    "description": "RFC 7807 problem details (api/errors.py)",
    "required": ["type", "title", "status", "detail"],
    "properties": {
        "type": {"type": "string"}, "title": {"type": "string"},
        "status": {"type": "integer", "minimum": 400, "maximum": 599}, "detail": {"type": "string"},
    },
    "additionalProperties": True,
}
ERROR_TEXT = {
    400: "Invalid request: a parameter, body field or geometry is malformed or unknown",
    401: "The X-API-Key is unknown or revoked",
    403: "The caller's key lacks the right for this layer or action",
    404: "No such resource (layer, feature, report, code …)",
    405: "This layer is not written through this path (or not by clients)",
    409: "The write conflicts with the data (duplicate, rule broken, state does not allow it)",
    412: "If-Match names an old version: reload and retry",
    413: "The request body is larger than GOVGIS_MAX_REQUEST_BYTES",
    415: "The upload's format is not one this route reads",
    428: "If-Match is required for this write",
    429: "Over the caller's budget of requests a minute (see Retry-After)",
    503: "The database is unavailable; retry after Retry-After seconds",
}
WRITES = frozenset({"post", "put", "patch", "delete"})
# what an ``f`` value or a path's extension answers with
MEDIA_TYPES = {
    "json": "application/json", "geojson": "application/geo+json", "html": "text/html", "csv": "text/csv",
    "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet", "pdf": "application/pdf",
    "mvt": "application/vnd.mapbox-vector-tile", "pbf": "application/vnd.mapbox-vector-tile",
    "png": "image/png", "shp": "application/zip", "zip": "application/zip", "gpkg": "application/geopackage+sqlite3",
    "dxf": "image/vnd.dxf", "inp": "text/plain",
}
BINARY = {"type": "string", "format": "binary"}
JSON_VALUE = {"anyOf": [{"type": "object"}, {"type": "array"}]}


def error_statuses(method: str, operation: dict[str, Any]) -> list[int]:
    """The error statuses an operation can answer, from what it declares (see the module docstring)."""
    statuses = {400, 401, 403, 429, 503}
    body = operation.get("requestBody")
    if operation.get("parameters") or body is not None:
        statuses.add(404)  # an id, code or year in the path, the query or the body that names nothing
    if method in WRITES:
        statuses |= {404, 405, 409, 412, 428}
    if body is not None or method in WRITES:
        statuses.add(413)
    if body is not None and any(ct.startswith("multipart/") for ct in body.get("content", {})):
        statuses.add(415)
    return sorted(statuses)


def _success_content(path: str, operation: dict[str, Any]) -> dict[str, Any]:
    """The media types of a 2xx that the generator left undescribed: a route that builds its own
    response and answers JSON answers GeoJSON (features, items: a route returning a dict gets its JSON described
by FastAPI)."""
    formats: list[str] = []
    for p in operation.get("parameters", []):
        if p.get("in") == "query" and p.get("name") == "f":
            formats = list(p.get("schema", {}).get("enum", []))
    extension = path.rsplit(".", 1)[-1] if "." in path.rsplit("/", 1)[-1] else ""
    if extension in MEDIA_TYPES:
        formats = [extension]
    content: dict[str, Any] = {}
    for f in formats or ["json"]:
        media = MEDIA_TYPES.get("geojson" if f == "json" else f, "application/octet-stream")
        if media.endswith("json"):
            content[media] = {"schema": {"type": "object"}}
        elif media.startswith("text/"):
            content[media] = {"schema": {"type": "string"}}
        else:
            content[media] = {"schema": BINARY}
    return content


def document_answers(schema: dict[str, Any]) -> dict[str, Any]:
    """Every operation's error statuses (problem+json) and a described body for each 2xx."""
    schema.setdefault("components", {}).setdefault("schemas", {})["Problem"] = PROBLEM_SCHEMA
    for name in ("HTTPValidationError", "ValidationError"):
        schema["components"]["schemas"].pop(name, None)
    ref = {"$ref": "#/components/schemas/Problem"}
    for path, item in schema.get("paths", {}).items():
        for method, operation in item.items():
            if method not in {"get", "post", "put", "patch", "delete", "head", "options"}:
                continue
            responses = operation.setdefault("responses", {})
            responses.pop("422", None)  # never answered: api/errors.py answers 400
            for status, answer in responses.items():
                if not str(status).startswith("2") or str(status) == "204":
                    continue
                content = answer.get("content")
                if not content:
                    content = answer["content"] = _success_content(path, operation)
                for media, described in content.items():
                    if "schema" not in described and not media.endswith("json"):
                        described["schema"] = {"type": "string"} if media.startswith("text/") else BINARY
                if "application/json" in content and content["application/json"].get("schema") in ({}, None):
                    # a route that builds its own JSON response: an object or a list, whatever its fields
                    content["application/json"]["schema"] = JSON_VALUE
                    for f, media in MEDIA_TYPES.items():
                        if f != "json" and f in _formats(operation):
                            content[media] = _success_content(f"x.{f}", {})[media]
            for status in error_statuses(method, operation):
                responses.setdefault(str(status), {"description": ERROR_TEXT[status],
                                                   "content": {"application/problem+json": {"schema": ref}}})
    return schema


def _formats(operation: dict[str, Any]) -> list[str]:
    for p in operation.get("parameters", []):
        if p.get("in") == "query" and p.get("name") == "f":
            return list(p.get("schema", {}).get("enum", []))
    return []


def install(app: FastAPI) -> None:
    """Serve /api as OpenAPI 3.0.3, generated once."""

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            schema = get_openapi(title=app.title, version=app.version, description=app.description,
                                 routes=app.routes, openapi_version=OPENAPI_VERSION)
            schema = document_answers(downgrade_schema(schema))
            schema["openapi"] = OPENAPI_VERSION
            app.openapi_schema = schema
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
