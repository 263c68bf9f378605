"""Who is calling: the X-API-Key header → a gis.access.Caller on request.state, plus rate limit and log.

A pure ASGI middleware (no BaseHTTPMiddleware overhead). Requests without a key pass straight through
as anonymous (public layers only). A keyed request costs one indexed lookup before and one log
INSERT after; an unknown or revoked key gets 401, a key over its per-minute budget 429 with
Retry-After. The access log stores the key's id, the route, the layer and the status — never the key.

The rate limit holds across processes: the key lookup also counts the key's requests in the access
log for the current minute, which every process writes to, and a request is refused when either
that count or this process's own count has reached the budget. A request is logged once answered,
so processes together can overshoot the budget by at most the requests they have in flight.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Any

import orjson
from starlette.concurrency import run_in_threadpool
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from gis.errors import DatabaseUnavailable
from gis.keys import log_access, lookup_key

log = logging.getLogger("govgis.access")
PROBLEM_TYPE = "https://govgis.org/problems/"


def _problem(status: int, title: str, detail: str, slug: str, headers: list[tuple[bytes, bytes]] | None = None
             ) -> tuple[int, list[tuple[bytes, bytes]], bytes]:
    body = orjson.dumps({"type": PROBLEM_TYPE + slug, "title": title, "status": status, "detail": detail})
    return status, [(b"content-type", b"application/problem+json"),
                    (b"content-length", str(len(body)).encode()), *(headers or [])], body


class RateLimiter:
    """Fixed one-minute windows per key id. ``allow`` counts this process's requests; given
    ``logged`` (the key's requests this minute in the shared access log) it counts the larger of the two."""

    def __init__(self, per_minute: int) -> None:
        self.per_minute = per_minute
        self._windows: dict[int, tuple[int, int]] = {}
        self._lock = threading.Lock()

    def allow(self, key_id: int, now: float | None = None, logged: int = 0) -> int:
        """0 when allowed, else the seconds until the next window."""
        now = time.time() if now is None else now
        window = int(now // 60)
        with self._lock:
            start, count = self._windows.get(key_id, (window, 0))
            if start != window:
                start, count = window, 0
            if max(count, logged) >= self.per_minute:
                return max(1, int((window + 1) * 60 - now) + 1)
            self._windows[key_id] = (start, count + 1)
        return 0


def _layer_of(path: str, query: bytes) -> str | None:
    parts = path.strip("/").split("/")
    if len(parts) >= 2 and parts[0] == "collections":
        return parts[1][:100]
    if parts and parts[0] in ("tiles", "query") and b"layers=" in query:
        for pair in query.split(b"&"):
            if pair.startswith(b"layers="):
                return pair[7:].decode("latin-1")[:200]
    return None


class AccessMiddleware:
    """Sets scope['state']['caller'] from X-API-Key; enforces the rate limit; writes the access log."""

    def __init__(self, app: ASGIApp, rate_limit_per_minute: int) -> None:
        self.app = app
        self.limiter = RateLimiter(rate_limit_per_minute)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        key = None
        for name, value in scope["headers"]:
            if name == b"x-api-key":
                key = value.decode("latin-1").strip()
                break
        if not key:
            await self.app(scope, receive, send)
            return
        engine = scope["app"].state.engine
        try:
            caller, logged = await run_in_threadpool(lookup_key, engine, key)
        except DatabaseUnavailable as exc:  # 503 like every route, not a 500 and a dropped connection
            retry = str(scope["app"].state.settings.service.retry_after_seconds).encode()
            await self._reply(send, *_problem(exc.status, exc.title, exc.detail, exc.slug, [(b"retry-after", retry)]))
            return
        if caller is None:
            await self._reply(send, *_problem(
                401, "Authentication required", "the X-API-Key is unknown or revoked: ask your department's "
                "govgis administrator for a key (govgis keys create)", "unauthorized"))
            return
        wait = self.limiter.allow(caller.key_id or 0, logged=logged)
        status_box: dict[str, int] = {}
        if wait:
            status_box["status"] = 429
            await self._reply(send, *_problem(
                429, "Too many requests", f"this key may make {self.limiter.per_minute} requests a minute; "
                f"retry in {wait} s", "rate-limited", [(b"retry-after", str(wait).encode())]))
        else:
            scope.setdefault("state", {})["caller"] = caller

            async def send_wrapper(message: Message) -> None:
                if message["type"] == "http.response.start":
                    status_box["status"] = int(message["status"])
                await send(message)

            try:
                await self.app(scope, receive, send_wrapper)
            finally:
                status_box.setdefault("status", 500)
        row = {"key_id": caller.key_id, "method": scope["method"][:8], "route": scope["path"][:500],
               "layer": _layer_of(scope["path"], scope.get("query_string", b"")), "status": status_box["status"]}
        await run_in_threadpool(self._log, engine, row)

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
