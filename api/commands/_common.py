"""What every `govgis` command shares: its messages, its failure, and its database connection.

A command opens one engine for its run, works in one transaction (or one connection), turns a
GisError into its message on stderr and exit status 1, and disposes of the engine however it ends::

    with transaction("owner") as conn:      # or connection(...), or database(...) for the engine
        ...

``role`` says which database role the command needs (gis/roles.py): "app" for what the service
itself may do (keys, INP import, criticality), "owner" for schema work and bulk loads (migrations,
`govgis import`, the demo city, backup and restore).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, Literal

import typer
from sqlalchemy.engine import Connection, Engine

from gis.errors import GisError

Role = Literal["app", "owner"]
LISTED_ERRORS = 20  # listed errors of a failure (rows of an import, lines of an INP) shown under it


def say(message: str) -> None:
    typer.echo(f"[govgis] {message}")


def fail(problem: GisError | str, *, already_shown: int = 0) -> typer.Exit:
    """Print a failure (and the errors it lists, after the first ``already_shown`` that its message
    already names) to stderr; return the Exit(1) to raise."""
    detail = problem.detail if isinstance(problem, GisError) else problem
    typer.echo(f"[govgis] ERROR: {detail}", err=True)
    listed = problem.extra.get("errors", []) if isinstance(problem, GisError) else []
    for item in listed[already_shown:already_shown + LISTED_ERRORS]:
        typer.echo(f"  {_describe(item)}", err=True)
    return typer.Exit(1)


def _describe(item: Any) -> str:
    if isinstance(item, dict) and "reason" in item:
        where = f"row {item['row']}" if item.get("row") else "file"
        return f"{where}: {item['reason']}"
    if isinstance(item, dict):
        return ", ".join(f"{key} {value}" for key, value in item.items())
    return str(item)


def engine_for(role: Role = "app", *, pool_size: int = 1) -> Engine:
    """An engine on the configured database as ``role`` (the settings' app or owner URL)."""
    import layers  # noqa: F401  (the registry: commands check layer ids and scopes against it)
    from gis.db import database_url, make_engine, owner_url
    from gis.settings import get_settings

    settings = get_settings()
    url = owner_url(settings) if role == "owner" else database_url(settings)
    return make_engine(url, pool_size=pool_size, application_name=f"govgis-cli-{role}")


@contextmanager
def database(role: Role = "app", *, already_shown: int = 0) -> Iterator[Engine]:
    """The engine for one command: GisError → message and exit 1; disposed at the end."""
    try:
        engine = engine_for(role)
    except GisError as exc:  # bad settings
        raise fail(exc) from None
    from gis.db import UNAVAILABLE_ERRORS

    try:
        yield engine
    except GisError as exc:
        raise fail(exc, already_shown=already_shown) from None
    except UNAVAILABLE_ERRORS as exc:  # an operator's command: say where it tried, in the server's words
        orig = getattr(exc, "orig", None) or exc
        first = str(orig).strip().splitlines()[0] if str(orig).strip() else type(orig).__name__
        raise fail(f"cannot reach the database as {role} ({engine.url.render_as_string(hide_password=True)}): "
                   f"{first}. Is it running? (`make run` starts the embedded cluster)") from None
    finally:
        engine.dispose()


@contextmanager
def transaction(role: Role = "app", *, already_shown: int = 0) -> Iterator[Connection]:
    """One transaction for one command: committed when the block ends, rolled back when it raises."""
    with database(role, already_shown=already_shown) as engine, engine.begin() as conn:
        yield conn


@contextmanager
def connection(role: Role = "app") -> Iterator[Connection]:
    """One connection, no transaction of our own (read-only commands)."""
    with database(role) as engine, engine.connect() as conn:
        yield conn
