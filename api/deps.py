"""Dependencies shared by every router: the database unit of work and the caller; and the routing
of reads between the primary and a replica (read-your-writes).

The request's connection dependency owns the transaction: it commits when the endpoint returns and
rolls back when it raises. Services and repositories never commit.

Read-your-writes with a replica (gis/replicas.py): a successful write answers with a ``govgis_lsn``
cookie (and an ``X-Govgis-LSN`` header) holding the primary's WAL position after it, and the process
remembers the same position for the writer's key. A later request carrying the cookie or the header,
or made with that key to the same process, reads from the replica only once the replica has replayed
that position — otherwise from the primary. So a client that
reloads after its own write (or after a 412) sees it, whichever process or database serves it. Both
expire after GOVGIS_READ_YOUR_WRITES_SECONDS, by when a replica within its lag limit has caught up.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from typing import Annotated

from fastapi import Depends, Request
from sqlalchemy.engine import Connection, Engine
from starlette.concurrency import run_in_threadpool
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from gis.access import ANONYMOUS, Caller
from gis.replicas import primary_lsn, read_floor
from gis.settings import Settings

LSN_COOKIE = "govgis_lsn"
LSN_HEADER = b"x-govgis-lsn"  # the same position for clients that keep no cookies: send it back as is
WRITE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})


def get_settings_dep(request: Request) -> Settings:
    return request.app.state.settings


def get_engine(request: Request) -> Engine:
    return request.app.state.engine


def unit_of_work(request: Request) -> Iterator[Connection]:
    """A connection inside one transaction: committed on success, rolled back on any error."""
    with request.app.state.engine.begin() as conn:
        yield conn


def read_connection(request: Request) -> Iterator[Connection]:
    """A read-only connection: from the replica when one is configured, reachable, within its lag
    limit and past this request's read floor; else from the primary."""
    with request.app.state.read_engine.connect() as conn:
        yield conn


def current_caller(request: Request) -> Caller:
    """Who is calling. The access module (api/access.py) sets request.state.caller from the API key;
    without it every request is anonymous."""
    return getattr(request.state, "caller", ANONYMOUS)


# scope="function": commit before the response is sent, so a client never gets 201 for a write that is
# not yet (or never) committed — FastAPI's default runs a yield dependency's exit after the response
DbWrite = Annotated[Connection, Depends(unit_of_work, scope="function")]
DbRead = Annotated[Connection, Depends(read_connection)]
CurrentCaller = Annotated[Caller, Depends(current_caller)]
AppSettings = Annotated[Settings, Depends(get_settings_dep)]


class ReadYourWrites:
    """ASGI middleware, active only with a replica: sets each request's read floor from its cookie and
    its key's last write, and after a successful write sets the cookie (see the module docstring)."""

    def __init__(self, app: ASGIApp, window_seconds: float) -> None:
        self.app = app
        self.window = window_seconds
        self._by_key: dict[int, tuple[int, float]] = {}  # key id → (LSN after its last write, when)
        self._lock = threading.Lock()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        state = scope["app"].state if scope["type"] == "http" else None
        if state is None or getattr(state, "replica_monitor", None) is None:
            await self.app(scope, receive, send)
            return
        caller = scope.get("state", {}).get("caller")
        key_id = getattr(caller, "key_id", None)
        token = read_floor.set(self._floor(scope, key_id))
        try:
            if scope["method"] not in WRITE_METHODS:
                await self.app(scope, receive, send)
                return

            async def send_with_position(message: Message) -> None:
                if message["type"] == "http.response.start" and int(message["status"]) < 400:
                    try:
                        position = await run_in_threadpool(primary_lsn, state.engine)
                    except Exception:  # noqa: BLE001 — no position, no cookie: reads fall to the window rule
                        position = None
                    if position is not None:
                        self._remember(key_id, position)
                        cookie = (f"{LSN_COOKIE}={position}; Max-Age={int(self.window)}; Path=/; HttpOnly; "
                                  "SameSite=Lax")
                        message = {**message, "headers": [*message.get("headers", []),
                                                          (b"set-cookie", cookie.encode()),
                                                          (LSN_HEADER, str(position).encode())]}
                await send(message)

            await self.app(scope, receive, send_with_position)
        finally:
            read_floor.reset(token)

    def _floor(self, scope: Scope, key_id: int | None) -> int | None:
        floors = []
        for name, value in scope["headers"]:
            if name == LSN_HEADER and value.isdigit() and len(value) < 20:
                floors.append(int(value))
            elif name == b"cookie":
                for pair in value.decode("latin-1").split(";"):
                    cookie, _, number = pair.strip().partition("=")
                    if cookie == LSN_COOKIE and number.isdigit() and len(number) < 20:
                        floors.append(int(number))
        if key_id is not None:
            with self._lock:
                remembered = self._by_key.get(key_id)
            if remembered is not None and time.monotonic() - remembered[1] < self.window:
                floors.append(remembered[0])
        return max(floors) if floors else None

    def _remember(self, key_id: int | None, position: int) -> None:
        if key_id is None:
            return
        with self._lock:
            now = time.monotonic()
            self._by_key[key_id] = (max(position, self._by_key.get(key_id, (0, 0.0))[0]), now)
            if len(self._by_key) > 10_000:  # forget expired entries now and then
                self._by_key = {k: v for k, v in self._by_key.items() if now - v[1] < self.window}
