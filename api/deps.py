"""Dependencies shared by every router: the database unit of work and the caller.

The request's connection dependency owns the transaction: it commits when the endpoint returns and
rolls back when it raises. Services and repositories never commit.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated

from fastapi import Depends, Request
from sqlalchemy.engine import Connection, Engine

from gis.access import ANONYMOUS, Caller
from gis.settings import Settings


def get_settings_dep(request: Request) -> Settings:
    return request.app.state.settings


def get_engine(request: Request) -> Engine:
    return request.app.state.engine


def unit_of_work(request: Request) -> Iterator[Connection]:
    """A connection inside one transaction: committed on success, rolled back on any error."""
    with request.app.state.engine.begin() as conn:
        yield conn


def read_connection(request: Request) -> Iterator[Connection]:
    """A read-only connection, from the replica when one is configured."""
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
