"""Database connections: which URL, engines, and creating a PostGIS database.

Engines are made by whoever owns a process's lifetime (the API lifespan, the CLI, the test session);
nothing connects at import time. A unit of work is one transaction: ``with engine.begin() as conn``.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import time
from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import psycopg2
from psycopg2 import extensions
from sqlalchemy import create_engine, event, make_url, text
from sqlalchemy import exc as sa_exc
from sqlalchemy.dialects.postgresql.psycopg2 import PGDialect_psycopg2
from sqlalchemy.engine import URL, Engine
from sqlalchemy.sql.elements import TextClause

from gis.crs import register_custom_crs
from gis.errors import DatabaseUnavailable
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
    engine = create_engine(
        url,
        pool_size=pool_size,
        max_overflow=pool_size,
        connect_args={"application_name": application_name, "options": session_options(parallel_workers)},
    )
    event.listen(engine, "checkout", _ping_if_idle)
    event.listen(engine, "checkin", _note_checkin)
    return engine


def session_options(parallel_workers: int | None) -> str:
    """The libpq ``options`` every govgis session starts with."""
    options = "-c timezone=UTC"
    if parallel_workers is not None:
        options += f" -c max_parallel_workers_per_gather={int(parallel_workers)}"
    return options


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


_PSYCOPG2 = PGDialect_psycopg2()
_NUMBERED = PGDialect_psycopg2(paramstyle="numeric_dollar")  # $1, $2 … as PREPARE takes them


@lru_cache(maxsize=512)
def driver_sql(statement: TextClause) -> str:
    """A text() statement as psycopg2 takes it (``%(name)s`` parameters, literal % escaped)."""
    return str(statement.compile(dialect=_PSYCOPG2))


@dataclass(frozen=True)
class PreparedForm:
    """A text() statement as a server-side prepared statement: its name (from its text, so the same
    on every connection), the PREPARE, and the EXECUTE with the parameter names in $n order."""

    name: str
    prepare: str
    execute: str
    names: tuple[str, ...]


@lru_cache(maxsize=1024)
def prepared_form(statement: TextClause) -> PreparedForm:
    compiled = statement.compile(dialect=_NUMBERED)
    name = "govgis_" + hashlib.blake2b(compiled.string.encode(), digest_size=8).hexdigest()
    names = tuple(compiled.positiontup or ())
    # no parameter types: PostgreSQL infers each from where it stands, as it does for a plain query
    execute = f"EXECUTE {name}" + (f"({', '.join(['%s'] * len(names))})" if names else "")
    return PreparedForm(name, f"PREPARE {name} AS {compiled.string}", execute, names)


class _ReaderConnection(extensions.connection):
    """An asynchronous connection that remembers which statements it has prepared."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.prepared: set[str] = set()


class LoopReader:
    """Read-only single statements awaited on the asyncio event loop, with no worker thread.

    The service's cold vector tile is one statement whose answer is one bytea. Through the engine it
    also pays a hop to a worker thread and back, a pool checkout, SQLAlchemy's execution, and the
    BEGIN and ROLLBACK round trips of a transaction that only reads — together a third of a small
    tile's database time. psycopg2's asynchronous connections (autocommit by nature) let the event
    loop send the statement and wait for the socket instead. A read is idempotent, so a connection
    that died while idle (a restarted server) is replaced and the statement sent once more.

    ``prepare=True`` runs a statement as a server-side prepared statement, prepared on each
    connection at first use: the tile statement is long and calls overloaded PostGIS functions, and
    parsing it again for every tile cost 0.15–0.3 ms of a 4 ms tile. Each execution is still planned
    for its own values (``plan_cache_mode=force_custom_plan``): a generic plan, blind to the tile's
    box, ran slower. Only for statements whose every parameter stands where PostgreSQL can tell its
    type (a function argument, an operand of a typed column): a bare ``SELECT :a`` would be typed text.
    """

    def __init__(self, url: URL, *, size: int = 8, application_name: str = "govgis",
                 parallel_workers: int | None = None) -> None:
        _, params = _PSYCOPG2.create_connect_args(url)
        self._connect_params = {**params, "application_name": application_name,
                                "options": session_options(parallel_workers) + " -c plan_cache_mode=force_custom_plan"}
        self._idle: list[_ReaderConnection] = []
        self._slots = asyncio.Semaphore(size)

    async def rows(self, statement: TextClause, params: Mapping[str, Any] | None = None, *,
                   prepare: bool = False) -> list[tuple]:
        """Every row of a read-only statement."""
        form = prepared_form(statement) if prepare else None
        values: Any = [(params or {})[name] for name in form.names] if form else (params or {})
        async with self._slots:
            for attempt in (1, 2):
                reused = bool(self._idle)
                conn = self._idle.pop() if reused else await self._connect()
                try:
                    cursor = conn.cursor()
                    if form and form.name not in conn.prepared:
                        cursor.execute(form.prepare)
                        await _ready(conn)
                        conn.prepared.add(form.name)
                    cursor.execute(form.execute if form else driver_sql(statement), values)
                    await _ready(conn)
                    rows = cursor.fetchall()
                except (psycopg2.OperationalError, psycopg2.InterfaceError) as exc:
                    died = bool(conn.closed)
                    _discard(conn)
                    if reused and died and attempt == 1:
                        continue  # it died while idle (a restarted server): once more on a new one
                    raise DatabaseUnavailable(f"the database did not answer: {str(exc).strip()}; "
                                              "retry shortly, and tell the operators if it persists") from exc
                except psycopg2.Error:
                    self._idle.append(conn)  # the statement failed; the connection is fine (autocommit)
                    raise
                except BaseException:
                    _discard(conn)  # cancelled or failed mid-statement: its state is unknown
                    raise
                self._idle.append(conn)
                return rows
        raise AssertionError("unreachable")

    async def scalar(self, statement: TextClause, params: Mapping[str, Any] | None = None, *,
                     prepare: bool = False) -> Any:
        """The first column of the first row of a read-only statement (None when there is no row)."""
        rows = await self.rows(statement, params, prepare=prepare)
        return rows[0][0] if rows else None

    async def _connect(self) -> Any:
        try:
            conn = psycopg2.connect(**self._connect_params, connection_factory=_ReaderConnection, async_=True)
            await _ready(conn)
        except psycopg2.OperationalError as exc:
            raise DatabaseUnavailable(f"cannot connect to the database: {str(exc).strip()}; retry shortly, "
                                      "and tell the operators if it persists") from exc
        return conn

    def close(self) -> None:
        """Close the idle connections (at shutdown)."""
        while self._idle:
            self._idle.pop().close()


def _discard(conn: Any) -> None:
    if not conn.closed:
        if conn.isexecuting():
            conn.cancel()  # stop the server's work now rather than when it next writes to the socket
        conn.close()


async def _ready(conn: Any) -> None:
    """Wait, without blocking the event loop, until an asynchronous connection finishes its step."""
    loop = asyncio.get_running_loop()
    while True:
        state = conn.poll()
        if state == extensions.POLL_OK:
            return
        waiter = loop.create_future()
        fd = conn.fileno()
        if state == extensions.POLL_READ:
            loop.add_reader(fd, _wake, waiter)
            remove = loop.remove_reader
        else:  # POLL_WRITE
            loop.add_writer(fd, _wake, waiter)
            remove = loop.remove_writer
        try:
            await waiter
        finally:
            remove(fd)


def _wake(waiter: asyncio.Future) -> None:
    if not waiter.done():
        waiter.set_result(None)
