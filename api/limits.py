"""A request-body size limit for every route (GOVGIS_MAX_REQUEST_BYTES).

Checked twice: against Content-Length before the app runs, and while the body streams in (a chunked
upload has no Content-Length), so a huge payload gets 413 problem+json instead of filling memory.
The check is here, not in each route, so no route can forget it.
"""

from __future__ import annotations

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api.errors import problem
from gis.errors import PayloadTooLarge


def _too_large(limit: int) -> PayloadTooLarge:
    return PayloadTooLarge(
        f"the request body is larger than the limit of {limit} bytes (GOVGIS_MAX_REQUEST_BYTES): split the "
        "data, or use `govgis import` for bulk loads"
    )


class BodyLimitMiddleware:
    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope["headers"]).get(b"content-length", b"")
        if declared.isdigit() and int(declared) > self.max_bytes:
            exc = _too_large(self.max_bytes)
            await problem(exc.status, exc.title, exc.detail, exc.slug)(scope, receive, send)
            return
        received = 0
        refused = False

        async def counted_receive() -> Message:
            nonlocal received, refused
            if refused:
                return {"type": "http.disconnect"}
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    # answer 413 here: the framework would turn an error raised in a body read into 400
                    refused = True
                    exc = _too_large(self.max_bytes)
                    await problem(exc.status, exc.title, exc.detail, exc.slug)(scope, receive, send)
                    return {"type": "http.disconnect"}
            return message

        async def guarded_send(message: Message) -> None:
            if not refused:  # the client already has its 413; the app's own answer is dropped
                await send(message)

        try:
            await self.app(scope, counted_receive, guarded_send)
        except Exception:
            if not refused:
                raise
