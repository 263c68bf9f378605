"""One error shape for the whole API: RFC 7807 problem+json.

Every GisError maps to its own status; FastAPI's request validation (which would answer 422) and
Starlette's HTTP errors are folded into the same shape with status 400/404/405. Anything else is a
bug: it is logged with a reference and the client gets a 500 that names the reference, never a
traceback.
"""

from __future__ import annotations

import logging
import uuid
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy.exc import DataError, IntegrityError
from starlette.exceptions import HTTPException as StarletteHTTPException

from gis.db import UNAVAILABLE_ERRORS, unavailable_detail
from gis.errors import Conflict, DatabaseUnavailable, GisError, InvalidParameter

log = logging.getLogger("govgis.api")
PROBLEM = "application/problem+json"
TYPE_BASE = "https://govgis.org/problems/"  # an identifier, never fetched


def problem(status: int, title: str, detail: str, slug: str, **extra: Any) -> JSONResponse:
    body = {"type": TYPE_BASE + slug, "title": title, "status": status, "detail": detail, **extra}
    return JSONResponse(body, status_code=status, media_type=PROBLEM)


def _gis_error(_: Request, exc: GisError) -> JSONResponse:
    return problem(exc.status, exc.title, exc.detail, exc.slug, **exc.extra)


def _validation_error(_: Request, exc: RequestValidationError) -> JSONResponse:
    parts = []
    for err in exc.errors():
        where = ".".join(str(p) for p in err.get("loc", ()) if p not in ("body",))
        parts.append(f"{where}: {err.get('msg')}")
    return problem(400, InvalidParameter.title, "; ".join(parts) or "invalid request", InvalidParameter.slug)


def _http_error(_: Request, exc: StarletteHTTPException) -> JSONResponse:
    titles = {404: "Not found", 405: "Method not allowed", 406: "Not acceptable", 413: "Payload too large"}
    detail = exc.detail if isinstance(exc.detail, str) else str(exc.detail)
    if exc.status_code == 404 and detail == "Not Found":
        detail = "no such resource: see / for the landing page and /api for the API definition"
    return problem(exc.status_code, titles.get(exc.status_code, "HTTP error"), detail,
                   f"http-{exc.status_code}")


def _integrity_error(_: Request, exc: IntegrityError) -> JSONResponse:
    # a database constraint refused the row: tell which rule, not the SQL
    diag = getattr(exc.orig, "diag", None)
    constraint = getattr(diag, "constraint_name", None) or "a database rule"
    message = getattr(diag, "message_primary", None) or "the row breaks a database rule"
    return problem(409, Conflict.title, f"{message} ({constraint}): correct the value and retry", Conflict.slug)


def _data_error(_: Request, exc: DataError) -> JSONResponse:
    diag = getattr(exc.orig, "diag", None)
    message = getattr(diag, "message_primary", None) or "a value has the wrong type or range"
    return problem(400, InvalidParameter.title, f"{message}: check the values you sent", InvalidParameter.slug)


def _retry_after(request: Request, response: JSONResponse) -> JSONResponse:
    response.headers["Retry-After"] = str(request.app.state.settings.service.retry_after_seconds)
    return response


def _database_unavailable(request: Request, exc: DatabaseUnavailable) -> JSONResponse:
    """503 with Retry-After; a handled answer, so the server keeps the client's connection open."""
    return _retry_after(request, problem(exc.status, exc.title, exc.detail, exc.slug))


def _database_away(request: Request, exc: Exception) -> JSONResponse:
    """The driver or pool could not reach the database, or a statement/lock timeout stopped it: 503
    with Retry-After (the server's own message, which names sockets and roles, goes to the log only)."""
    orig = getattr(exc, "orig", None) or exc
    log.warning("database unavailable on %s %s: %s: %s", request.method, request.url.path, type(orig).__name__,
                str(orig).strip().splitlines()[0] if str(orig).strip() else "")
    return _retry_after(request, problem(DatabaseUnavailable.status, DatabaseUnavailable.title,
                                         unavailable_detail(exc), DatabaseUnavailable.slug))


def _unexpected(request: Request, exc: Exception) -> JSONResponse:
    reference = uuid.uuid4().hex[:12]
    log.exception("unexpected error %s on %s %s", reference, request.method, request.url.path)
    return problem(500, "Internal error", f"an unexpected error occurred (reference {reference}); "
                   "the operators have it in the log", "internal")


def install(app: FastAPI) -> None:
    app.add_exception_handler(GisError, _gis_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(IntegrityError, _integrity_error)
    app.add_exception_handler(DataError, _data_error)
    app.add_exception_handler(DatabaseUnavailable, _database_unavailable)
    for error in UNAVAILABLE_ERRORS:
        app.add_exception_handler(error, _database_away)
    app.add_exception_handler(Exception, _unexpected)
