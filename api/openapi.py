"""The API definition as OpenAPI 3.0.3 (FastAPI writes 3.1; OGC API Features and GDAL want 3.0).

FastAPI's generator is used as is, and the few 3.1-only constructs it emits are rewritten: a
``{"type": "null"}`` alternative becomes ``nullable: true``, ``examples`` in a schema becomes
``example``, and ``const`` becomes a one-value ``enum``.
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


def install(app: FastAPI) -> None:
    """Serve /api as OpenAPI 3.0.3, generated once."""

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            schema = get_openapi(title=app.title, version=app.version, description=app.description,
                                 routes=app.routes, openapi_version=OPENAPI_VERSION)
            schema = downgrade_schema(schema)
            schema["openapi"] = OPENAPI_VERSION
            app.openapi_schema = schema
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
