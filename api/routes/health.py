"""GET /healthz: is the database there, which PostGIS, and how many features each layer holds."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from gis.registry import REGISTRY

router = APIRouter(tags=["health"])


@router.get("/healthz", summary="Service and database health with per-layer feature counts")
def healthz(request: Request) -> JSONResponse:
    engine = request.app.state.engine
    body: dict[str, Any] = {"status": "ok", "storage_srid": request.app.state.settings.storage_srid}
    try:
        with engine.connect() as conn:
            body["database"] = "ok"
            body["postgis"] = conn.execute(sa.text("SELECT postgis_lib_version()")).scalar()
            body["pgrouting"] = conn.execute(sa.text("SELECT (pgr_version())::text")).scalar()
            counts = {}
            for layer in REGISTRY:
                counts[layer.id] = conn.execute(
                    sa.select(sa.func.count()).select_from(layer.table).where(layer.current_clause())
                ).scalar()
            body["layers"] = counts
    except sa.exc.SQLAlchemyError as exc:
        body.update(status="degraded", database="unavailable", error=str(exc.__cause__ or exc).splitlines()[0])
        return JSONResponse(body, status_code=503)
    return JSONResponse(body)
