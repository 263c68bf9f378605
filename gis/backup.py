"""Backup and restore of a govgis database: pg_dump's custom format, checked against the schema.

A backup is ``pg_dump -Fc`` of the whole database as the owner role (every table, the schema, the
audit log). A restore puts it back with ``pg_restore --clean`` in one transaction — either the
database is the backup's, or (on any error) it is untouched — and only when the backup's Alembic
revision is the one this govgis expects: a dump of an older or newer schema is refused with what to
do. The PostGIS/pgRouting extensions stay as they are (they belong to the server's administrator,
and restoring them needs a superuser); grants are applied again afterwards for this installation's
roles, and every layer's version moves past both the backup's and the current one so that no tile
cache or ETag from before the restore is taken for the restored data.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

import sqlalchemy as sa
from alembic.config import Config
from alembic.script import ScriptDirectory
from psycopg2.extensions import make_dsn
from sqlalchemy.dialects.postgresql.psycopg2 import PGDialect_psycopg2
from sqlalchemy.engine import URL, Engine

from gis import migrate
from gis.errors import ConfigError, GisError

# TOC entries of a dump that a restore leaves alone: the extensions and their configuration rows
_SKIPPED = re.compile(r"^\d+; \d+ \d+ (EXTENSION|COMMENT - EXTENSION|TABLE DATA public spatial_ref_sys) ")


class RestoreRefused(GisError):
    """A backup that does not fit this govgis (schema revision) or could not be read."""

    status = 409
    title = "Restore refused"
    slug = "restore-refused"


@dataclass(frozen=True)
class BackupReport:
    file: Path
    revision: str | None
    bytes: int


def _tool(name: str) -> str:
    for folder in (os.environ.get("GOVGIS_PG_BIN"), "/usr/lib/postgresql/15/bin"):
        if folder and (Path(folder) / name).exists():
            return str(Path(folder) / name)
    found = shutil.which(name)
    if found is None:
        raise ConfigError(f"{name} not found: install postgresql-client-15 (apt-get install postgresql-client-15)")
    return found


def libpq_target(url: URL) -> tuple[str, dict[str, str]]:
    """A SQLAlchemy URL as a libpq conninfo for pg_dump/pg_restore, and the environment that carries
    its password (PGPASSWORD: never on the command line, where `ps` would show it)."""
    _, params = PGDialect_psycopg2().create_connect_args(url)
    env = dict(os.environ)
    password = params.pop("password", None)
    if password:
        env["PGPASSWORD"] = str(password)
    return make_dsn(**{key: str(value) for key, value in params.items()}), env


def head_revision() -> str | None:
    """The newest schema revision this govgis's migrations know."""
    return _scripts().get_current_head()


def _scripts() -> ScriptDirectory:
    config = Config()
    config.set_main_option("script_location", str(migrate.MIGRATIONS))
    return ScriptDirectory.from_config(config)


def backup(url: URL, file: Path, engine: Engine) -> BackupReport:
    """Write a custom-format dump of the database (as the owner role) to ``file``."""
    conninfo, env = libpq_target(url)
    file = Path(file)
    partial = file.with_name(file.name + ".partial")  # a failed dump never looks like a backup
    result = subprocess.run([_tool("pg_dump"), "-Fc", "-f", str(partial), "-d", conninfo], env=env,
                            capture_output=True, text=True)
    if result.returncode != 0:
        partial.unlink(missing_ok=True)
        raise GisError(f"pg_dump failed: {result.stderr.strip().splitlines()[-1] if result.stderr else '?'}; "
                       "check GOVGIS_OWNER_DATABASE_URL and the disk space")
    partial.replace(file)
    return BackupReport(file, migrate.current(engine), file.stat().st_size)


def dump_revision(file: Path) -> str | None:
    """The Alembic revision recorded in a dump (its alembic_version row), None when it has none."""
    result = subprocess.run([_tool("pg_restore"), "--data-only", "--table=alembic_version", "-f", "-", str(file)],
                            capture_output=True, text=True)
    if result.returncode != 0:
        raise RestoreRefused(f"{file} is not a govgis backup (pg_restore cannot read it: "
                             f"{result.stderr.strip().splitlines()[-1] if result.stderr else '?'})")
    lines = result.stdout.splitlines()
    for index, line in enumerate(lines):
        if line.startswith("COPY public.alembic_version"):
            value = lines[index + 1].strip() if index + 1 < len(lines) else "\\."
            return None if value == "\\." else value
    return None


def check_revision(revision: str | None) -> None:
    """Refuse a dump whose schema revision is not this govgis's (saying which way it differs)."""
    head = head_revision()
    if revision == head:
        return
    if revision is None:
        raise RestoreRefused("the backup has no schema revision (no alembic_version row): it is not a govgis "
                             "database backup, or it was made before `govgis db setup` ran")
    known = {script.revision for script in _scripts().walk_revisions()}
    if revision in known:
        raise RestoreRefused(
            f"the backup is at schema revision {revision}, older than this govgis (revision {head}): restore it "
            f"with the govgis release of revision {revision}, then upgrade that database with `govgis db migrate`")
    raise RestoreRefused(
        f"the backup is at schema revision {revision}, which this govgis does not know (its newest is {head}): "
        "it was made by a newer govgis — upgrade govgis before restoring it")


def restore(url: URL, file: Path, engine: Engine) -> str:
    """Replace the database's contents with a backup's, in one transaction. Returns the revision.

    ``url``/``engine``: the owner role. Run with the service stopped (the restore waits for the locks
    of every table it replaces). Grants for the application role are applied by the caller after.
    """
    file = Path(file)
    if not file.is_file():
        raise RestoreRefused(f"no backup file {file}")
    revision = dump_revision(file)
    check_revision(revision)
    before = _layer_versions(engine)
    listing = subprocess.run([_tool("pg_restore"), "-l", str(file)], capture_output=True, text=True, check=True)
    kept = [line for line in listing.stdout.splitlines() if not _SKIPPED.match(line)]
    conninfo, env = libpq_target(url)
    with tempfile.NamedTemporaryFile("w", suffix=".list", delete=False) as handle:
        handle.write("\n".join(kept) + "\n")
    try:
        result = subprocess.run(
            [_tool("pg_restore"), "--clean", "--if-exists", "--single-transaction", "--exit-on-error",
             "--no-owner", "--no-privileges", "-L", handle.name, "-d", conninfo, str(file)],
            env=env, capture_output=True, text=True)
    finally:
        os.unlink(handle.name)
    if result.returncode != 0:
        last = result.stderr.strip().splitlines()[-1] if result.stderr.strip() else "?"
        raise GisError(f"pg_restore failed and changed nothing (one transaction): {last}")
    with engine.begin() as conn:
        restored = {name: int(version) for name, version in conn.execute(
            sa.text("SELECT table_name, version FROM layer_versions"))}
        for name in set(before) | set(restored):
            conn.execute(sa.text(
                "INSERT INTO layer_versions AS lv (table_name, version) VALUES (:t, :v) "
                "ON CONFLICT (table_name) DO UPDATE SET version = EXCLUDED.version, changed_at = now()"),
                {"t": name, "v": max(before.get(name, 0), restored.get(name, 0)) + 1})
    return str(revision)


def _layer_versions(engine: Engine) -> dict[str, int]:
    with engine.connect() as conn:
        if not conn.execute(sa.text("SELECT to_regclass('layer_versions') IS NOT NULL")).scalar():
            return {}
        return {name: int(version) for name, version in conn.execute(
            sa.text("SELECT table_name, version FROM layer_versions"))}
