"""`govgis db ...` and `govgis serve`: set up the database and run the service."""

from __future__ import annotations

import socket
from pathlib import Path
from typing import Annotated

import typer
from sqlalchemy import text

from api.commands._common import database, fail, say
from gis import migrate
from gis.errors import GisError
from gis.settings import get_settings

app = typer.Typer(help="Create, migrate, back up and restore the database.", no_args_is_help=True)


@app.command("setup")
def setup(
    demo: Annotated[bool, typer.Option(help="Load the demo city when the database is empty.")] = True,
    size: Annotated[float, typer.Option(help="Demo city size factor (1 = the default small city).")] = 1.0,
) -> None:
    """Create the database (PostGIS + pgRouting) if missing, migrate it as the owner role, grant the
    application role its rights, load the demo city once (as the owner: it resets id sequences)."""
    from gis.db import database_url
    from gis.roles import setup_database

    try:
        settings = get_settings()
        say(f"database {database_url(settings).render_as_string(hide_password=True)}")
        setup_database(settings, say)
    except GisError as exc:
        raise fail(exc) from None
    if demo:
        from data import democity

        with database("owner") as engine:
            with engine.connect() as conn:
                loaded = conn.execute(text("SELECT count(*) FROM cadastre_parcels")).scalar()
            if loaded:
                say(f"demo city already loaded ({loaded} parcel versions): skipping")
            else:
                say(f"loading the demo city (size {size})")
                democity.load(engine, size=size, progress=True)


@app.command("migrate")
def migrate_cmd(revision: Annotated[str, typer.Argument(help="target revision")] = "head") -> None:
    """Upgrade the schema to a revision (default: newest), as the owner role; then the grants."""
    from gis.roles import RoleNames, grant_app_role

    with database("owner") as engine:
        migrate.upgrade(engine, revision)
        grant_app_role(engine, RoleNames.of(get_settings()))
        say(f"schema at revision {migrate.current(engine)}")


@app.command("downgrade")
def downgrade_cmd(revision: Annotated[str, typer.Argument(help="target revision")] = "base") -> None:
    """Downgrade the schema (default: remove every govgis table), as the owner role."""
    with database("owner") as engine:
        migrate.downgrade(engine, revision)
        say(f"schema at revision {migrate.current(engine)}")


@app.command("roles-sql")
def roles_sql() -> None:
    """Print the SQL an operator runs once, as a superuser, to create govgis's roles and database on an
    existing PostgreSQL/PostGIS server (names from the configured URLs)."""
    from gis.roles import RoleNames, operator_sql

    names = RoleNames.of(get_settings())
    owner, app_role = names.owner, names.app
    if not names.separated:
        owner, app_role = "govgis_owner", "govgis_app"
    typer.echo(operator_sql(names.database, owner, app_role, names.audit))


@app.command("backup")
def backup_cmd(file: Annotated[Path, typer.Argument(help="dump file to write (pg_dump custom format)")]) -> None:
    """Back up the whole database (pg_dump -Fc as the owner role) with its schema revision."""
    from gis.backup import backup
    from gis.db import owner_url

    with database("owner") as engine:
        report = backup(owner_url(get_settings()), file, engine)
    say(f"backed up to {report.file} ({report.bytes / 1e6:.1f} MB, schema revision {report.revision})")


@app.command("restore")
def restore_cmd(file: Annotated[Path, typer.Argument(help="a dump written by `govgis db backup`")]) -> None:
    """Replace the database's contents with a backup (one transaction; the schema revision must match
    this govgis). Stop the service first."""
    from gis.backup import restore
    from gis.db import owner_url
    from gis.roles import RoleNames, grant_app_role

    settings = get_settings()
    with database("owner") as engine:
        revision = restore(owner_url(settings), file, engine)
        grant_app_role(engine, RoleNames.of(settings))
    say(f"restored {file} (schema revision {revision}); grants applied again")


def serve() -> None:
    """Serve the API and the map (GOVGIS_HOST / GOVGIS_PORT, default http://127.0.0.1:8000)."""
    import uvicorn

    try:
        settings = get_settings()
    except GisError as exc:
        raise fail(exc) from None
    host, port = settings.service.host, settings.service.port
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        if probe.connect_ex((host, port)) == 0:
            raise fail(f"port {port} on {host} is in use: stop what uses it or set GOVGIS_PORT")
    say(f"serving on http://{host}:{port}  (map: /map, API: /, health: /healthz)")
    uvicorn.run("api.app:create_app", factory=True, host=host, port=port, log_level="info",
                workers=1, proxy_headers=False)
