"""GET /healthz: the primary database, the replica (if any) and its lag, the tile cache, per-layer counts.

Status ``ok``: everything serves. ``degraded`` (still 200): a replica is configured but reads go to
the primary because it is unreachable or lagging beyond GOVGIS_REPLICA_MAX_LAG_SECONDS. 503 with
Retry-After: the primary cannot be reached, so nothing that needs the database works.
"""

from __future__ import annotations

import datetime as dt
from typing import Any
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from gis.db import UNAVAILABLE_ERRORS
from gis.registry import REGISTRY

router = APIRouter(tags=["health"])
LOCAL_TIME = ZoneInfo("Asia/Shanghai")


@router.get("/healthz", summary="Service health: primary and replica databases, replica lag, tile cache, "
            "per-layer feature counts")
def healthz(request: Request) -> JSONResponse:
    state = request.app.state
    body: dict[str, Any] = {"status": "ok", "storage_srid": state.settings.storage_srid}
    cache = getattr(state, "tile_cache", None)
    if cache is not None:
        body["tile_cache"] = cache.stats()
    warm = getattr(state, "warm", None)
    if warm is not None:
        body["warm_start_seconds"] = warm.get("seconds")
    monitor = getattr(state, "replica_monitor", None)
    body["replica"] = _replica(monitor)
    body["reads_from"] = "replica" if monitor is not None and monitor.usable() else "primary"
    if monitor is not None and body["reads_from"] == "primary":
        body["status"] = "degraded"
    try:
        with state.engine.connect() as conn:
            body["database"] = "ok"
            body["primary"] = _primary(conn)
            body["postgis"], body["pgrouting"] = body["primary"]["postgis"], body["primary"]["pgrouting"]
            counts = {}
            for layer in REGISTRY:
                counts[layer.id] = conn.execute(
                    sa.select(sa.func.count()).select_from(layer.table).where(layer.current_clause())
                ).scalar()
            body["layers"] = counts
    except UNAVAILABLE_ERRORS as exc:
        orig = getattr(exc, "orig", None) or exc
        body.update(status="unavailable", database="unavailable", primary={"reachable": False,
                                                                           "error": type(orig).__name__})
        return JSONResponse(body, status_code=503,
                            headers={"Retry-After": str(state.settings.service.retry_after_seconds)})
    return JSONResponse(body)


def _primary(conn: sa.Connection) -> dict[str, Any]:
    row = conn.execute(sa.text(
        "SELECT postgis_lib_version() AS postgis, (pgr_version())::text AS pgrouting, current_user AS role, "
        "(SELECT rolsuper FROM pg_roles WHERE rolname = current_user) AS superuser, "
        "(SELECT version_num FROM alembic_version LIMIT 1) AS revision")).mappings().one()
    return {"reachable": True, **row}


def _replica(monitor: Any) -> dict[str, Any]:
    if monitor is None:
        return {"configured": False}
    replica = monitor.state
    checked = dt.datetime.fromtimestamp(replica.checked_at, LOCAL_TIME).isoformat(timespec="seconds")
    return {"configured": True, "reachable": replica.reachable, "serving_reads": monitor.usable(),
            "lag_seconds": None if replica.lag_seconds is None else round(replica.lag_seconds, 3),
            "max_lag_seconds": monitor.max_lag, "checked_at": checked, "error": replica.error}
