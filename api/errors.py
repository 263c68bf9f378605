"""One error shape for the whole API: RFC 7807 problem+json.

Every GisError maps to its own status; FastAPI's request validation (which would answer 422) and
Starlette's HTTP errors are folded into the same shape with status 400/404/405. Anything else is a
bug: it is logged with a reference and the client gets a 500 that names the reference, never a
traceback.
"""

from __future__ import annotations

import logging
import re
import uuid
from typing import Any

import sqlalchemy as sa
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy.exc import DataError, IntegrityError, StatementError
from starlette.exceptions import HTTPException as StarletteHTTPException

from gis.db import UNAVAILABLE_ERRORS, unavailable_detail
from gis.errors import Conflict, DatabaseUnavailable, GisError, InvalidParameter
from gis.registry import REGISTRY
from gis.schema import METADATA

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
    # a database constraint refused the row: say which rule in the data's words, never the SQL,
    # the constraint's name or the server's message
    diag = getattr(exc.orig, "diag", None)
    detail = constraint_message(getattr(exc.orig, "pgcode", None), getattr(diag, "constraint_name", None),
                                getattr(diag, "table_name", None), getattr(diag, "column_name", None))
    return problem(409, Conflict.title, detail, Conflict.slug)


def _data_error(_: Request, exc: DataError) -> JSONResponse:
    return problem(400, InvalidParameter.title, "a value has the wrong type, format or range for its field "
                   "(a number too large, a date that does not exist, text where a number belongs): check the "
                   "values you sent against /collections/{id}/queryables", InvalidParameter.slug)


def _statement_error(request: Request, exc: StatementError) -> JSONResponse:
    # psycopg2 refuses some values before they reach the server (a NUL character in text)
    if isinstance(exc.orig, ValueError) and "NUL" in str(exc.orig):
        return problem(400, InvalidParameter.title, "a text value contains a NUL character (\\0): remove it",
                       InvalidParameter.slug)
    return _unexpected(request, exc)


def constraint_message(pgcode: str | None, constraint: str | None, table: str | None, column: str | None) -> str:
    """A person's message for a refused row, from the rule the schema declares (gis.schema.METADATA)."""
    layer = REGISTRY.by_table(table) if table else None
    where = f"layer {layer.id}" if layer else "this record"
    if pgcode == "23502" and column:
        return f"{column} is required in {where}: give a value"
    if pgcode == "23505":
        columns = _constraint_columns(table, constraint)
        named = ", ".join(columns) if columns else "a unique field"
        return f"{where} already has a feature with the same {named}: choose another value"
    if pgcode == "23503":
        columns = _constraint_columns(table, constraint)
        named = ", ".join(columns) if columns else "a field"
        return f"{named} of {where} refers to something that does not exist: check the value"
    if pgcode == "23514":
        allowed = _allowed_values(table, constraint)
        if allowed:
            field, values = allowed
            return f"{field} of {where} must be one of: {', '.join(values)}"
        columns = _constraint_columns(table, constraint)
        if columns:
            return (f"the value of {', '.join(columns)} breaks a rule of {where} (an allowed range or a valid "
                    "geometry): correct it")
    return f"the change breaks a rule of {where}: correct the values and retry"


def _table(name: str | None) -> sa.Table | None:
    return METADATA.tables.get(name) if name else None


def _constraint(table: str | None, name: str | None) -> sa.Constraint | None:
    found = _table(table)
    if found is None or not name:
        return None

    def named(item: sa.Constraint | sa.Index) -> bool:
        # the metadata's naming convention prefixes declared names (kind_known → ck_<table>_kind_known)
        declared = str(item.name) if item.name is not None else ""
        return bool(declared) and (name == declared or name.endswith(f"{found.name}_{declared}"))

    # (not `a or b`: a constraint without columns is falsy)
    constraint = next((c for c in found.constraints if named(c)), None)
    if constraint is not None:
        return constraint
    return next((ix for ix in found.indexes if ix.unique and named(ix)), None)


def _constraint_columns(table: str | None, name: str | None) -> list[str]:
    found = _constraint(table, name)
    if found is None:
        return []
    if isinstance(found, sa.CheckConstraint):
        text = str(found.sqltext)
        return [c.name for c in found.table.columns if re.search(rf"\b{re.escape(c.name)}\b", text)]
    return [c.name for c in getattr(found, "columns", [])]


def _allowed_values(table: str | None, name: str | None) -> tuple[str, list[str]] | None:
    """For a code-list CHECK (gis.schema.one_of: ``col IN ('a','b')``), the field and its values."""
    found = _constraint(table, name)
    if not isinstance(found, sa.CheckConstraint):
        return None
    match = re.fullmatch(r"\s*(\w+) IN \((.*)\)\s*", str(found.sqltext))
    if not match:
        return None
    return match.group(1), [v.strip().strip("'") for v in match.group(2).split(",")]


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
    app.add_exception_handler(StatementError, _statement_error)
    app.add_exception_handler(DatabaseUnavailable, _database_unavailable)
    for error in UNAVAILABLE_ERRORS:  # more specific than StatementError: their handler wins
        app.add_exception_handler(error, _database_away)
    app.add_exception_handler(Exception, _unexpected)
