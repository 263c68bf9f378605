"""`govgis db ...` and `govgis serve`: set up the database and run the service."""

from __future__ import annotations

import socket
from typing import Annotated

import typer
from sqlalchemy import text

from gis import migrate
from gis.db import database_url, ensure_database, make_engine
from gis.errors import GisError
from gis.settings import get_settings

app = typer.Typer(help="Create, migrate and load the database.", no_args_is_help=True)


def say(message: str) -> None:
    typer.echo(f"[govgis] {message}")


@app.command("setup")
def setup(
    demo: Annotated[bool, typer.Option(help="Load the demo city when the database is empty.")] = True,
    size: Annotated[float, typer.Option(help="Demo city size factor (1 = the default small city).")] = 1.0,
) -> None:
    """Create the database (PostGIS + pgRouting) if missing, migrate it, load the demo city once."""
    settings = get_settings()
    url = database_url(settings)
    say(f"database {url.render_as_string(hide_password=True)}")
    if ensure_database(url, settings):
        say("created database with extensions postgis and pgrouting")
    engine = make_engine(url, pool_size=2)
    try:
        before = migrate.current(engine)
        migrate.upgrade(engine)
        after = migrate.current(engine)
        say(f"schema at revision {after}" + ("" if before == after else f" (migrated from {before})"))
        if demo:
            from data import democity

            with engine.connect() as conn:
                loaded = conn.execute(text("SELECT count(*) FROM cadastre_parcels")).scalar()
            if loaded:
                say(f"demo city already loaded ({loaded} parcel versions): skipping")
            else:
                say(f"loading the demo city (size {size})")
                democity.load(engine, size=size, progress=True)
    finally:
        engine.dispose()


@app.command("migrate")
def migrate_cmd(revision: Annotated[str, typer.Argument(help="target revision")] = "head") -> None:
    """Upgrade the schema to a revision (default: newest)."""
    engine = make_engine(database_url(get_settings()), pool_size=1)
    migrate.upgrade(engine, revision)
    say(f"schema at revision {migrate.current(engine)}")


@app.command("downgrade")
def downgrade_cmd(revision: Annotated[str, typer.Argument(help="target revision")] = "base") -> None:
    """Downgrade the schema (default: remove every govgis table)."""
    engine = make_engine(database_url(get_settings()), pool_size=1)
    migrate.downgrade(engine, revision)
    say(f"schema at revision {migrate.current(engine)}")


def serve() -> None:
    """Serve the API and the map (GOVGIS_HOST / GOVGIS_PORT, default http://127.0.0.1:8000)."""
    import uvicorn

    try:
        settings = get_settings()
    except GisError as exc:
        raise typer.Exit(_fail(exc.detail)) from None
    host, port = settings.service.host, settings.service.port
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        if probe.connect_ex((host, port)) == 0:
            raise typer.Exit(_fail(f"port {port} on {host} is in use: stop what uses it or set GOVGIS_PORT"))
    say(f"serving on http://{host}:{port}  (map: /map, API: /, health: /healthz)")
    uvicorn.run("api.app:create_app", factory=True, host=host, port=port, log_level="info",
                workers=1, proxy_headers=False)


def _fail(message: str) -> int:
    typer.echo(f"[govgis] ERROR: {message}", err=True)
    return 1
