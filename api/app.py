"""The FastAPI application: wires settings, the database, the error shape and the routers.

Routers are added here and nowhere else; each module (OGC API, tiles, land, planning, pipeline,
emergency, the web map) contributes one router and does its work in its layer package.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

import layers  # noqa: F401  (declares every layer in the registry)
from api import errors, openapi
from api.access import AccessMiddleware
from api.limits import BodyLimitMiddleware
from api.routes import emergency as emergency_routes
from api.routes import health, land, ogc, planning, query, tiles, webmap
from api.routes import pipeline as pipeline_routes
from gis.db import LoopReader, database_url, make_engine, read_url
from gis.settings import Settings, get_settings


def create_app(settings: Settings | None = None) -> FastAPI:
    """Build the app. Pools are created in the lifespan, not at import time."""
    settings = settings or get_settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        pool = {"pool_size": settings.database.pool_size,
                "parallel_workers": settings.database.parallel_workers_per_query}
        app.state.engine = make_engine(database_url(settings), **pool)
        app.state.read_engine = (
            make_engine(read_url(settings), **pool)
            if settings.database.read_database_url else app.state.engine
        )
        app.state.tile_reader = LoopReader(read_url(settings), size=settings.database.pool_size,
                                           parallel_workers=settings.database.parallel_workers_per_query)
        try:
            yield
        finally:
            app.state.tile_reader.close()
            app.state.engine.dispose()
            if app.state.read_engine is not app.state.engine:
                app.state.read_engine.dispose()

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
