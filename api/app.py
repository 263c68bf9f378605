"""The FastAPI application: wires settings, the database, the error shape and the routers.

Routers are added here and nowhere else; each module (OGC API, tiles, land, planning, pipeline,
emergency, the web map) contributes one router and does its work in its layer package.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from starlette.concurrency import run_in_threadpool

import layers  # noqa: F401  (declares every layer in the registry)
from api import errors, openapi
from api.access import AccessMiddleware
from api.deps import ReadYourWrites
from api.limits import BodyLimitMiddleware
from api.routes import emergency as emergency_routes
from api.routes import health, land, ogc, planning, query, tiles, webmap
from api.routes import pipeline as pipeline_routes
from api.warmup import warm_reader, warm_up
from gis.db import LoopReader, database_url, make_engine, read_url, service_timeouts
from gis.replicas import ReplicaMonitor, RoutedReader, RoutedReads
from gis.settings import Settings, get_settings
from gis.tiles import TileCache


def create_app(settings: Settings | None = None) -> FastAPI:
    """Build the app. Pools are created in the lifespan, not at import time."""
    settings = settings or get_settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        database = settings.database
        pool = {"pool_size": database.pool_size, "parallel_workers": database.parallel_workers_per_query,
                "timeouts": service_timeouts(settings)}
        app.state.engine = make_engine(database_url(settings), **pool)
        app.state.tile_cache = TileCache(max_bytes=settings.service.tile_cache_bytes)
        primary_reader = LoopReader(database_url(settings), size=database.pool_size,
                                    parallel_workers=database.parallel_workers_per_query,
                                    timeouts=service_timeouts(settings))
        app.state.replica_monitor = None
        app.state.read_engine, app.state.tile_reader = app.state.engine, primary_reader
        if database.read_database_url:
            replica = make_engine(read_url(settings), **pool)
            monitor = ReplicaMonitor(app.state.engine, replica, max_lag=database.replica_max_lag_seconds,
                                     interval=database.replica_check_seconds)
            await run_in_threadpool(monitor.start)
            app.state.replica_monitor = monitor
            app.state.read_engine = RoutedReads(app.state.engine, replica, monitor)
            app.state.tile_reader = RoutedReader(primary_reader, LoopReader(
                read_url(settings), size=database.pool_size, parallel_workers=database.parallel_workers_per_query,
                timeouts=service_timeouts(settings)), monitor)
        app.state.warm = await run_in_threadpool(warm_up, app.state.engine, settings)
        app.state.warm["tile_sessions"] = await warm_reader(app.state.tile_reader, settings)
        try:
            yield
        finally:
            if app.state.replica_monitor is not None:
                app.state.replica_monitor.stop()
                app.state.read_engine.dispose()
            app.state.tile_reader.close()
            app.state.engine.dispose()

    app = FastAPI(
        title="govgis",
        description="城市政府地理信息服务 — cadastre, land use, pipelines and emergency resources",
        version="0.1.0",
        lifespan=lifespan,
        openapi_url="/api",
        docs_url=None,  # Swagger UI would load from a CDN; the API definition is served at /api
        redoc_url=None,
    )
    app.state.settings = settings
    errors.install(app)
    app.include_router(tiles.serving)
    app.include_router(health.router)
    app.include_router(pipeline_routes.router)
    app.include_router(emergency_routes.router)
    app.include_router(ogc.router)
    app.include_router(tiles.router)
    app.include_router(query.router)
    app.include_router(land.router)
    app.include_router(planning.router)
    app.add_middleware(ReadYourWrites, window_seconds=settings.database.read_your_writes_seconds)
    service = settings.service
    app.add_middleware(AccessMiddleware, rate_limit_per_minute=service.rate_limit_per_minute,
                       tile_rate_limit_per_minute=service.tile_rate_limit_per_minute,
                       anonymous_rate_limit_per_minute=service.anonymous_rate_limit_per_minute,
                       failed_key_limit_per_minute=service.failed_key_limit_per_minute,
                       trusted_proxies=service.trusted_proxies)
    app.add_middleware(BodyLimitMiddleware, max_bytes=settings.service.max_request_bytes)
    openapi.install(app)
    app.include_router(webmap.router)
    return app
