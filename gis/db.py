"""Database connections: which URL for which role, engines, and creating a PostGIS database.

Three URLs (gis/roles.py says who may do what): the application role's (``database_url``: the service,
the tests), the schema owner's (``owner_url``: migrations, grants, bulk loads, backups) and an admin's
(``admin_url``: creating databases and extensions). Engines are made by whoever owns a process's
lifetime (the API lifespan, the CLI, the test session); nothing connects at import time. A unit of
work is one transaction: ``with engine.begin() as conn``. The database being away is one family of
errors (``UNAVAILABLE_ERRORS``) that the API answers with 503 and Retry-After.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
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
EMBEDDED_PORT = 5432  # names the socket file only: the embedded cluster does not listen on TCP
EMBEDDED_DB = "govgis"

# The database roles (gis/roles.py grants them their rights). On the embedded cluster the admin is the
# bootstrap superuser; on an existing PostgreSQL the operator creates owner, audit and app roles.
ADMIN_ROLE = "govgis"  # creates databases and extensions (embedded: superuser)
OWNER_ROLE = "govgis_owner"  # owns the schema: runs migrations, applies grants, bulk loads
AUDIT_ROLE = "govgis_audit"  # owns audit_log, so no one who can only use the app role can alter it
APP_ROLE = "govgis_app"  # the service: reads and writes rows, appends audit records, nothing else


def embedded_url(database: str = EMBEDDED_DB, *, role: str = APP_ROLE, root: Path | None = None) -> URL:
    """URL of a project-local cluster's Unix socket for one of its roles (default: the embedded
    cluster and the application role). The password comes from the cluster's 0600 password file."""
    root = PGDATA if root is None else root
    return URL.create(
        "postgresql+psycopg2",
        username=role,
        database=database,
        query={"host": str(root / "run"), "port": str(EMBEDDED_PORT), "passfile": str(root / "passwords")},
    )


def _configured(value: str) -> URL:
    url = make_url(value)
    return url.set(drivername="postgresql+psycopg2") if url.drivername == "postgresql" else url


def database_url(settings: Settings) -> URL:
    """The primary database as the application role: GOVGIS_DATABASE_URL if set, else the embedded
    cluster's govgis_app."""
    if settings.database.database_url:
        return _configured(settings.database.database_url)
    return embedded_url()


def owner_url(settings: Settings) -> URL:
    """The primary as the schema owner (migrations, grants, bulk loads, backup and restore):
    GOVGIS_OWNER_DATABASE_URL, else the embedded cluster's owner, else GOVGIS_DATABASE_URL (one role
    for everything — `govgis db setup` warns that the service then runs with the owner's rights)."""
    if settings.database.owner_database_url:
        return _configured(settings.database.owner_database_url)
    if settings.database.database_url:
        return database_url(settings)
    return embedded_url(role=OWNER_ROLE)


def admin_url(settings: Settings) -> URL:
    """A role that may create the database and its extensions (`govgis db setup`, the test harness):
    GOVGIS_ADMIN_DATABASE_URL, else the embedded cluster's superuser, else the owner's URL."""
    if settings.database.admin_database_url:
        return _configured(settings.database.admin_database_url)
    if settings.database.database_url or settings.database.owner_database_url:
        return owner_url(settings)
    return embedded_url(role=ADMIN_ROLE)


def read_url(settings: Settings) -> URL:
    """Where read-only queries go: a replica if configured, else the primary."""
    if settings.database.read_database_url:
        return _configured(settings.database.read_database_url)
    return database_url(settings)


# --- the database being away: one family of errors, one message -------------------------------------

# What "the database cannot be reached or cannot answer now" looks like, wrapped by SQLAlchemy or raw
# from psycopg2 (COPY and the loop reader): a refused or dropped connection, a server shutting down, a
# full pool, and the service's own statement and lock timeouts. Retrying later may succeed: 503.
UNAVAILABLE_ERRORS: tuple[type[Exception], ...] = (
    sa_exc.OperationalError, sa_exc.InterfaceError, sa_exc.DisconnectionError, sa_exc.TimeoutError,
    psycopg2.OperationalError, psycopg2.InterfaceError,
)
_STATEMENT_TIMEOUT, _LOCK_TIMEOUT = "57014", "55P03"


def unavailable_detail(exc: BaseException) -> str:
    """What a client is told when the database is away or too slow (never the server's own text,
    which names hosts, sockets and roles; the log keeps that)."""
    orig = getattr(exc, "orig", None) or exc
    code = getattr(orig, "pgcode", None)
    if code == _STATEMENT_TIMEOUT:
        return ("the database took longer than this service allows for one statement and stopped it: narrow "
                "the request (a smaller bbox, fewer layers, a lower limit) or retry later")
    if code == _LOCK_TIMEOUT:
        return "the data is locked by another change (an import or a long edit): retry in a few seconds"
    return "the database cannot be reached right now: retry in a few seconds; the operators have been told"


def is_unavailable(exc: BaseException) -> bool:
    """Whether an error means the database is away (see UNAVAILABLE_ERRORS)."""
    return isinstance(exc, (*UNAVAILABLE_ERRORS, DatabaseUnavailable))


@contextmanager
def database_errors() -> Iterator[None]:
    """Turn the database being away into DatabaseUnavailable (503 with Retry-After) for code that
    runs outside the API's exception handlers, such as a middleware's key lookup."""
    try:
        yield
    except UNAVAILABLE_ERRORS as exc:
        raise DatabaseUnavailable(unavailable_detail(exc)) from exc


IDLE_PING_SECONDS = 10.0


@dataclass(frozen=True)
class SessionTimeouts:
    """Server-side limits for one kind of session, in milliseconds (0 = none).

    The service's sessions get all three, so no request waits forever: a statement that runs too long
    or waits too long for a lock is cancelled (the client gets 503 with Retry-After), and a session
    left idle inside a transaction (a stuck worker) is ended, releasing its locks.
    """

    statement_ms: int = 0
    lock_ms: int = 0
    idle_in_transaction_ms: int = 0

    def options(self) -> str:
        return (f" -c statement_timeout={int(self.statement_ms)} -c lock_timeout={int(self.lock_ms)}"
                f" -c idle_in_transaction_session_timeout={int(self.idle_in_transaction_ms)}")


def service_timeouts(settings: Settings) -> SessionTimeouts:
    """The API's session timeouts from the settings (GOVGIS_STATEMENT_TIMEOUT_MS and friends)."""
    database = settings.database
    return SessionTimeouts(database.statement_timeout_ms, database.lock_timeout_ms,
                           database.idle_in_transaction_timeout_ms)


CONNECT_TIMEOUT_SECONDS = 5  # a server that does not answer a TCP connect is as good as down
POOL_TIMEOUT_SECONDS = 10.0  # every pooled connection busy this long: answer 503 rather than queue on


def make_engine(url: URL, *, pool_size: int = 8, application_name: str = "govgis",
                parallel_workers: int | None = None, timeouts: SessionTimeouts | None = None) -> Engine:
    """An engine with a pool, liveness checks and a session timezone of UTC.

    ``parallel_workers`` caps the parallel workers per query of its sessions (None: the server's
    default). Parallel workers are new processes started per query; under concurrent load they only
    add start-up and CPU, so the API service turns them off (bench/api: cold tiles at concurrency 8
    went from 1.3× to 1.9× tipg's rate). ``timeouts``: the service's statement, lock and
    idle-in-transaction limits (None: the server's, for migrations and bulk loads).

    A connection the server dropped (restart, crash, failover) raises a disconnect error once; the
    pool then discards every connection older than that moment, so the next requests get fresh ones
    and the service recovers without a restart.
    """
    engine = create_engine(
        url,
        pool_size=pool_size,
        max_overflow=pool_size,
        pool_timeout=POOL_TIMEOUT_SECONDS,
        connect_args={"application_name": application_name, "connect_timeout": CONNECT_TIMEOUT_SECONDS,
                      "options": session_options(parallel_workers, timeouts)},
    )
    event.listen(engine, "checkout", _ping_if_idle)
    event.listen(engine, "checkin", _note_checkin)
    return engine


def session_options(parallel_workers: int | None, timeouts: SessionTimeouts | None = None) -> str:
    """The libpq ``options`` every govgis session starts with."""
    options = "-c timezone=UTC"
    if parallel_workers is not None:
        options += f" -c max_parallel_workers_per_gather={int(parallel_workers)}"
    if timeouts is not None:
        options += timeouts.options()
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


def ensure_database(url: URL, settings: Settings, *, owner: str | None = None) -> bool:
    """Create the database with PostGIS and pgRouting if it does not exist. True when created.

    ``url`` names the database and a role that may create it and its extensions (the admin URL);
    ``owner`` is the role that will own it (default: that role). Also registers a custom storage CRS
    (a city's local grid) in spatial_ref_sys.
    """
    from gis.roles import ident

    admin = make_engine(url.set(database="postgres"), pool_size=1, application_name="govgis-admin")
    created = False
    try:
        with admin.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            exists = conn.execute(text("SELECT 1 FROM pg_database WHERE datname = :n"), {"n": url.database})
            if exists.scalar() is None:
                # identifiers cannot be bound; the names come from our own settings, checked and quoted
                conn.execute(text(f"CREATE DATABASE {ident(url.database)}"
                                  + (f" OWNER {ident(owner)}" if owner else "")))
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
            conn.execute(text(f'DROP DATABASE IF EXISTS "{url.database}" WITH (FORCE)'))  # our own name
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
                 parallel_workers: int | None = None, timeouts: SessionTimeouts | None = None) -> None:
        _, params = _PSYCOPG2.create_connect_args(url)
        self._connect_params = {**params, "application_name": application_name,
                                "connect_timeout": CONNECT_TIMEOUT_SECONDS,
                                "options": session_options(parallel_workers, timeouts)
                                + " -c plan_cache_mode=force_custom_plan"}
        self._idle: list[_ReaderConnection] = []
        self._size = size
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
                        # it died while idle (a restarted server), and the other idle ones with it:
                        # drop them all and send the statement once more on a new connection
                        self.close()
                        continue
                    raise DatabaseUnavailable(unavailable_detail(exc)) from exc
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

    async def warm(self, statement: TextClause, params: Mapping[str, Any] | None = None) -> int:
        """Open every connection this reader may hold at once and run ``statement`` on each (at
        start-up, so the first burst of tiles finds warm sessions). Returns how many are open."""

        async def one() -> None:
            await self.rows(statement, params)

        await asyncio.gather(*(one() for _ in range(max(self._size - len(self._idle), 0))))
        return len(self._idle)

    async def _connect(self) -> Any:
        try:
            conn = psycopg2.connect(**self._connect_params, connection_factory=_ReaderConnection, async_=True)
            await _ready(conn)
        except psycopg2.OperationalError as exc:
            raise DatabaseUnavailable(unavailable_detail(exc)) from exc
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
