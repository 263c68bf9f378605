"""Who is calling: the X-API-Key header → a gis.access.Caller on request.state, plus rate limits and
the access log.

A pure ASGI middleware (no BaseHTTPMiddleware overhead). Every caller has a budget per minute:

- a department key: ``GOVGIS_RATE_LIMIT_PER_MINUTE`` data requests, counted across every API
  process (the key lookup also counts the key's requests this minute in the access log, which every
  process writes to), and ``GOVGIS_TILE_RATE_LIMIT_PER_MINUTE`` map requests (vector tiles, raster
  basemap tiles, the map's static files) counted in this process — a map session that zooms and pans
  makes hundreds of tile requests a minute, and they must not use up the budget of the department's
  data calls;
- an anonymous client, by address: ``GOVGIS_ANONYMOUS_RATE_LIMIT_PER_MINUTE`` data requests and the
  same tile budget, counted in this process (behind N processes a client gets N times the budget: a
  load balancer in front should limit too);
- a client sending unknown or revoked keys: ``GOVGIS_FAILED_KEY_LIMIT_PER_MINUTE`` refusals per address,
  then 429 — so guessing keys is slow. Every refused key (401) is written to the access log with the
  client's address.

Over budget: 429 problem+json with Retry-After. The access log stores the key's id (or the client
address for refused keys), the route, the layer and the status — never the key. Map requests are
not logged one by one (they are counted, not audited: a tile shows what the layer's tiles show to
every reader with that right).
"""

from __future__ import annotations

import hashlib
import ipaddress
import logging
import threading
import time
from typing import Any

import orjson
from starlette.concurrency import run_in_threadpool
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from gis.access import Caller
from gis.db import database_errors
from gis.errors import DatabaseUnavailable
from gis.keys import log_access, lookup_key, resolve_key

log = logging.getLogger("govgis.access")
PROBLEM_TYPE = "https://govgis.org/problems/"
KEY_CACHE_SECONDS = 10.0  # a revoked key stops working for map requests within this time
MAP_PREFIXES = ("/tiles/", "/map/static/", "/map/basemap/")


def _problem(status: int, title: str, detail: str, slug: str, headers: list[tuple[bytes, bytes]] | None = None
             ) -> tuple[int, list[tuple[bytes, bytes]], bytes]:
    body = orjson.dumps({"type": PROBLEM_TYPE + slug, "title": title, "status": status, "detail": detail})
    return status, [(b"content-type", b"application/problem+json"),
                    (b"content-length", str(len(body)).encode()), *(headers or [])], body


class RateLimiter:
    """Fixed one-minute windows per identity. ``allow`` counts this process's requests; given
    ``logged`` (the identity's requests this minute in the shared access log) it counts the larger of the two."""

    def __init__(self, per_minute: int) -> None:
        self.per_minute = per_minute
        self._windows: dict[object, tuple[int, int]] = {}
        self._lock = threading.Lock()

    def exceeded(self, identity: object, now: float | None = None) -> int:
        """Like ``allow`` but without counting: 0 while the identity has budget left."""
        now = time.time() if now is None else now
        window = int(now // 60)
        with self._lock:
            start, count = self._windows.get(identity, (window, 0))
        if start == window and count >= self.per_minute:
            return max(1, int((window + 1) * 60 - now) + 1)
        return 0

    def allow(self, identity: object, now: float | None = None, logged: int = 0) -> int:
        """0 when allowed, else the seconds until the next window."""
        now = time.time() if now is None else now
        window = int(now // 60)
        with self._lock:
            start, count = self._windows.get(identity, (window, 0))
            if start != window:
                start, count = window, 0
                if len(self._windows) > 100_000:  # a past minute's identities are of no use
                    self._windows = {k: v for k, v in self._windows.items() if v[0] == window}
            if max(count, logged) >= self.per_minute:
                return max(1, int((window + 1) * 60 - now) + 1)
            self._windows[identity] = (start, count + 1)
        return 0


def is_map_request(path: str) -> bool:
    """Tiles and the map's assets: counted in the map budget, not the data budget."""
    return path.startswith(MAP_PREFIXES) or ("/tiles/" in path and path.startswith("/collections/"))


def _layer_of(path: str, query: bytes) -> str | None:
    parts = path.strip("/").split("/")
    if len(parts) >= 2 and parts[0] == "collections":
        return parts[1][:100]
    if parts and parts[0] in ("tiles", "query") and b"layers=" in query:
        for pair in query.split(b"&"):
            if pair.startswith(b"layers="):
                return pair[7:].decode("latin-1")[:200]
    return None


def client_address(scope: Scope, trusted_proxies: tuple[str, ...]) -> str:
    """The client's address: the peer, or — when the peer is a trusted proxy — the last address in
    X-Forwarded-For that is not a trusted proxy (an untrusted client cannot pick its own address)."""
    peer = (scope.get("client") or ("unknown", 0))[0]
    if not trusted_proxies or not _trusted(peer, trusted_proxies):
        return peer
    for name, value in scope["headers"]:
        if name == b"x-forwarded-for":
            hops = [h.strip() for h in value.decode("latin-1").split(",") if h.strip()]
            for hop in reversed(hops):
                if not _trusted(hop, trusted_proxies):
                    return hop[:64]
    return peer


def _trusted(address: str, proxies: tuple[str, ...]) -> bool:
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    return any(ip in ipaddress.ip_network(p, strict=False) for p in proxies)


class AccessMiddleware:
    """Sets scope['state']['caller'] from X-API-Key; enforces the rate limits; writes the access log."""

    def __init__(self, app: ASGIApp, rate_limit_per_minute: int, *, tile_rate_limit_per_minute: int = 6000,
                 anonymous_rate_limit_per_minute: int = 300, failed_key_limit_per_minute: int = 30,
                 trusted_proxies: tuple[str, ...] = ()) -> None:
        self.app = app
        self.limiter = RateLimiter(rate_limit_per_minute)
        self.map_limiter = RateLimiter(tile_rate_limit_per_minute)
        self.anonymous_limiter = RateLimiter(anonymous_rate_limit_per_minute)
        self.failed_limiter = RateLimiter(failed_key_limit_per_minute)
        self.trusted_proxies = trusted_proxies
        self._keys: dict[str, tuple[float, Caller | None]] = {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        key = None
        for name, value in scope["headers"]:
            if name == b"x-api-key":
                key = value.decode("latin-1").strip()
                break
        map_request = is_map_request(scope["path"])
        if not key:
            await self._anonymous(scope, receive, send, map_request)
            return
        engine = scope["app"].state.engine
        address = client_address(scope, self.trusted_proxies)
        wait = self.failed_limiter.exceeded(address)
        if wait:  # this address has sent too many bad keys: refuse before looking the key up
            await self._reply(send, *self._too_many(wait, f"{self.failed_limiter.per_minute} refused keys"))
            return
        try:
            if map_request:
                caller, logged = await self._cached_caller(engine, key), 0
            else:
                caller, logged = await run_in_threadpool(self._resolve, engine, key)
        except DatabaseUnavailable as exc:  # 503 like every route, not a 500 and a dropped connection
            retry = str(scope["app"].state.settings.service.retry_after_seconds).encode()
            await self._reply(send, *_problem(exc.status, exc.title, exc.detail, exc.slug, [(b"retry-after", retry)]))
            return
        if caller is None:
            wait = self.failed_limiter.allow(address)
            if wait:
                await self._reply(send, *self._too_many(wait, f"{self.failed_limiter.per_minute} refused keys"))
                return
            await self._reply(send, *_problem(
                401, "Authentication required", "the X-API-Key is unknown or revoked: ask your department's "
                "govgis administrator for a key (govgis keys create)", "unauthorized"))
            await run_in_threadpool(self._log, engine, self._row(scope, None, 401, address))
            return
        limiter = self.map_limiter if map_request else self.limiter
        wait = limiter.allow(("key", caller.key_id or 0), logged=logged)
        status_box: dict[str, int] = {}
        if wait:
            status_box["status"] = 429
            await self._reply(send, *self._too_many(wait, f"{limiter.per_minute} "
                                                     f"{'map' if map_request else 'data'} requests"))
        else:
            scope.setdefault("state", {})["caller"] = caller
            await self._serve(scope, receive, send, status_box)
        if not map_request:
            await run_in_threadpool(self._log, engine, self._row(scope, caller.key_id, status_box["status"], None))

    async def _anonymous(self, scope: Scope, receive: Receive, send: Send, map_request: bool) -> None:
        address = client_address(scope, self.trusted_proxies)
        limiter = self.map_limiter if map_request else self.anonymous_limiter
        wait = limiter.allow(("addr", address))
        if wait:
            await self._reply(send, *self._too_many(
                wait, f"{limiter.per_minute} {'map' if map_request else 'data'} requests without a key"))
            return
        await self.app(scope, receive, send)

    async def _serve(self, scope: Scope, receive: Receive, send: Send, status_box: dict[str, int]) -> None:
        async def send_wrapper(message: Message) -> None:
            if message["type"] == "http.response.start":
                status_box["status"] = int(message["status"])
            await send(message)

        try:
            await self.app(scope, receive, send_wrapper)
        finally:
            status_box.setdefault("status", 500)

    @staticmethod
    def _too_many(wait: int, budget: str) -> tuple[int, list[tuple[bytes, bytes]], bytes]:
        return _problem(429, "Too many requests", f"this client may make {budget} a minute; retry in {wait} s",
                        "rate-limited", [(b"retry-after", str(wait).encode())])

    @staticmethod
    def _row(scope: Scope, key_id: int | None, status: int, address: str | None) -> dict[str, object]:
        return {"key_id": key_id, "client_addr": address, "method": scope["method"][:8],
                "route": scope["path"][:500], "layer": _layer_of(scope["path"], scope.get("query_string", b"")),
                "status": status}

    async def _cached_caller(self, engine: Any, key: str) -> Caller | None:
        """The key's caller for map requests, remembered for KEY_CACHE_SECONDS (no query per tile)."""
        digest = hashlib.sha256(key.encode()).hexdigest()
        hit = self._keys.get(digest)
        now = time.monotonic()
        if hit is not None and now - hit[0] < KEY_CACHE_SECONDS:
            return hit[1]
        caller = await run_in_threadpool(self._lookup, engine, key)
        if len(self._keys) > 10_000:
            self._keys.clear()
        self._keys[digest] = (now, caller)
        return caller

    @staticmethod
    def _lookup(engine: Any, key: str) -> Caller | None:
        with database_errors(), engine.connect() as conn:
            return resolve_key(conn, key)

    @staticmethod
    def _resolve(engine: Any, key: str) -> tuple[Caller | None, int]:
        """The key's caller and its requests this minute across processes (one connection)."""
        return lookup_key(engine, key)

    @staticmethod
    def _log(engine: Any, row: dict[str, object]) -> None:
        try:
            with engine.begin() as conn:
                log_access(conn, [row])
        except Exception:  # the log must not break the answer already sent; say so loudly
            log.exception("could not write the access log row for key id %s", row["key_id"])

    @staticmethod
    async def _reply(send: Send, status: int, headers: list[tuple[bytes, bytes]], body: bytes) -> None:
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": body})
