"""Database connections: which URL, engines, and creating a PostGIS database.

Engines are made by whoever owns a process's lifetime (the API lifespan, the CLI, the test session);
nothing connects at import time. A unit of work is one transaction: ``with engine.begin() as conn``.
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

from sqlalchemy import create_engine, event, make_url, text
from sqlalchemy import exc as sa_exc
from sqlalchemy.engine import URL, Engine

from gis.crs import register_custom_crs
from gis.settings import PROJECT_ROOT, Settings

PGDATA = Path(os.environ.get("GOVGIS_PGDATA", PROJECT_ROOT / ".pgdata"))
SOCKET_DIR = PGDATA / "run"
EMBEDDED_PORT = 5432  # names the socket file only: the embedded cluster does not listen on TCP
EMBEDDED_USER = "govgis"
EMBEDDED_DB = "govgis"


def embedded_url(database: str = EMBEDDED_DB) -> URL:
    """URL of the project-local cluster's Unix socket."""
    return URL.create(
        "postgresql+psycopg2",
        username=EMBEDDED_USER,
        database=database,
        query={"host": str(SOCKET_DIR), "port": str(EMBEDDED_PORT)},
    )


def database_url(settings: Settings) -> URL:
    """The primary database: GOVGIS_DATABASE_URL if set, else the embedded cluster."""
    if settings.database.database_url:
        url = make_url(settings.database.database_url)
        if url.drivername == "postgresql":
            url = url.set(drivername="postgresql+psycopg2")
        return url
    return embedded_url()


def read_url(settings: Settings) -> URL:
    """Where read-only queries go: a replica if configured, else the primary."""
    if settings.database.read_database_url:
        return make_url(settings.database.read_database_url).set(drivername="postgresql+psycopg2")
    return database_url(settings)


IDLE_PING_SECONDS = 10.0


def make_engine(url: URL, *, pool_size: int = 8, application_name: str = "govgis",
                parallel_workers: int | None = None) -> Engine:
    """An engine with a pool, liveness checks and a session timezone of UTC.

    ``parallel_workers`` caps the parallel workers per query of its sessions (None: the server's
    default). Parallel workers are new processes started per query; under concurrent load they only
    add start-up and CPU, so the API service turns them off (bench/api: cold tiles at concurrency 8
    went from 1.3× to 1.9× tipg's rate).
    """
    options = "-c timezone=UTC"
    if parallel_workers is not None:
        options += f" -c max_parallel_workers_per_gather={int(parallel_workers)}"
    engine = create_engine(
        url,
        pool_size=pool_size,
        max_overflow=pool_size,
        connect_args={"application_name": application_name, "options": options},
    )
    event.listen(engine, "checkout", _ping_if_idle)
    event.listen(engine, "checkin", _note_checkin)
    return engine


def _note_checkin(dbapi_connection: Any, record: Any) -> None:
    record.info["checked_in_at"] = time.monotonic()


def _ping_if_idle(dbapi_connection: Any, record: Any, proxy: Any) -> None:
    """Check a pooled connection that has sat idle before handing it out (a restarted or
    failed-over server leaves dead ones behind); one that was in use moments ago is alive.

    SQLAlchemy's pool_pre_ping pings on every checkout: a round trip per request, a tenth of a
    small tile's time. Raising DisconnectionError makes the pool drop this connection and try another.
    """
    if time.monotonic() - record.info.get("checked_in_at", 0.0) < IDLE_PING_SECONDS:
        return
    try:
        _liveness_check(dbapi_connection)
    except Exception as exc:  # noqa: BLE001 — any failure means this connection is unusable
        raise sa_exc.DisconnectionError(f"pooled connection failed its liveness check: {exc}") from exc


def _liveness_check(dbapi_connection: Any) -> None:
    with dbapi_connection.cursor() as cursor:
        cursor.execute("SELECT 1")
    if not dbapi_connection.autocommit:
        dbapi_connection.rollback()


def ensure_database(url: URL, settings: Settings) -> bool:
    """Create the database with PostGIS and pgRouting if it does not exist. True when created.

    Also registers a custom storage CRS (a city's local grid) in spatial_ref_sys.
    """
    admin = make_engine(url.set(database="postgres"), pool_size=1, application_name="govgis-admin")
    created = False
    try:
        with admin.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            exists = conn.execute(text("SELECT 1 FROM pg_database WHERE datname = :n"), {"n": url.database})
            if exists.scalar() is None:
                # identifiers cannot be bound; the name comes from our own settings, quoted anyway
                conn.execute(text(f'CREATE DATABASE "{url.database}"'))
                created = True
    finally:
        admin.dispose()
    engine = make_engine(url, pool_size=1, application_name="govgis-admin")
    try:
        with engine.begin() as conn:
            conn.execute(text("CREATE EXTENSION IF NOT EXISTS postgis"))
            conn.execute(text("CREATE EXTENSION IF NOT EXISTS pgrouting"))
            if settings.spatial.storage_crs.strip().upper() != f"EPSG:{settings.storage_srid}":
                register_custom_crs(conn, settings.storage_srid, settings.spatial.storage_crs)
    finally:
        engine.dispose()
    return created


def drop_database(url: URL) -> None:
    """Drop a (throw-away) database, ending its other sessions first."""
    admin = make_engine(url.set(database="postgres"), pool_size=1, application_name="govgis-admin")
    try:
        with admin.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{url.database}" WITH (FORCE)'))
    finally:
        admin.dispose()
