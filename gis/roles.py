"""Least-privilege database roles: who may do what in a govgis database.

Four roles (names in gis/db.py; on an existing PostgreSQL the operator creates them with the SQL that
``operator_sql`` prints — `govgis db roles-sql`):

- **admin** creates the database and its extensions (PostGIS, pgRouting are not trusted extensions:
  a superuser, or the operator by hand). Used by `govgis db setup` and the test harness only.
- **owner** owns the schema: runs the migrations, applies the grants below, bulk-loads (imports drop
  and rebuild indexes, which only an owner may) and makes backups. Never used by the service.
- **audit** owns ``audit_log`` and cannot log in. The owner is a member (migrations may alter it);
  the application role is not, so it cannot ALTER, DISABLE/DROP its triggers, TRUNCATE, UPDATE or
  DELETE it.
- **app** is what the service (and the tests) connect as: SELECT/INSERT/UPDATE/DELETE on the layer
  tables, USAGE on their sequences, only INSERT and SELECT on ``audit_log`` and ``access_log``, no
  DELETE on ``api_keys`` (revoked, never deleted), TEMPORARY for COPY staging tables, EXECUTE on
  govgis's functions. Not a superuser, so it can set
  neither ``session_replication_role`` nor run ``COPY … FROM PROGRAM``; not in
  ``pg_execute_server_program`` or the server-file roles.

The grants are idempotent SQL run by `govgis db setup` after the migrations (not a migration: role
names differ per installation), plus default privileges so tables a later migration creates are
granted too.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass

import sqlalchemy as sa
from psycopg2.extensions import encrypt_password
from sqlalchemy.engine import URL, Connection, Engine

from gis import migrate
from gis.db import (
    ADMIN_ROLE,
    APP_ROLE,
    AUDIT_ROLE,
    OWNER_ROLE,
    admin_url,
    database_url,
    ensure_database,
    make_engine,
    owner_url,
)
from gis.errors import ConfigError
from gis.settings import Settings

AUDIT_TABLE = "audit_log"
# tables the application role may only append to and read; everything else the owner owns in the schema
# gets SELECT, INSERT, UPDATE, DELETE (alembic_version: SELECT, so /healthz can show the revision)
APPEND_ONLY = ("audit_log", "access_log")
READ_ONLY = ("alembic_version",)
NO_DELETE = ("api_keys",)  # keys are revoked (an audited UPDATE), never deleted
ROW_RIGHTS = "SELECT, INSERT, UPDATE, DELETE"
# membership in these would let a role read or run things on the server's host
SERVER_ROLES = ("pg_execute_server_program", "pg_read_server_files", "pg_write_server_files")

_NAME = re.compile(r"^[a-z_][a-z0-9_$]{0,62}$")


def ident(name: str) -> str:
    """A role or database name as a quoted identifier; refuses anything but a plain lower-case name
    (they come from settings, and appear in statements that cannot take bound parameters)."""
    if not _NAME.match(name):
        raise ConfigError(f"database/role name {name!r}: use lower-case letters, digits and _ only")
    return f'"{name}"'


# --- the embedded cluster's roles -----------------------------------------------------------------


def ensure_embedded_roles(admin: URL, passwords: Mapping[str, str]) -> None:
    """Create or update the embedded cluster's roles with their passwords (stored as SCRAM verifiers
    computed here, so no clear password reaches the server or its log). Idempotent."""
    engine = make_engine(admin, pool_size=1, application_name="govgis-cluster")
    try:
        with engine.begin() as conn:
            raw = conn.connection.driver_connection

            def verifier(role: str) -> str:
                return encrypt_password(passwords[role], role, raw, "scram-sha-256")

            existing = set(conn.execute(sa.text("SELECT rolname FROM pg_roles WHERE rolname = ANY(:names)"),
                                        {"names": [OWNER_ROLE, APP_ROLE, AUDIT_ROLE]}).scalars())
            for role, attributes in ((AUDIT_ROLE, "NOLOGIN"), (OWNER_ROLE, "LOGIN"), (APP_ROLE, "LOGIN")):
                verb = "ALTER" if role in existing else "CREATE"
                conn.execute(sa.text(f"{verb} ROLE {ident(role)} {attributes} NOSUPERUSER NOCREATEDB NOCREATEROLE "
                                     "NOREPLICATION NOBYPASSRLS"))
            for role in (ADMIN_ROLE, OWNER_ROLE, APP_ROLE):
                # psycopg2 quotes the verifier into the statement (ALTER ROLE takes no server-side parameters)
                conn.exec_driver_sql(f"ALTER ROLE {ident(role)} PASSWORD %s", (verifier(role),))
            conn.execute(sa.text(f"GRANT {ident(AUDIT_ROLE)} TO {ident(OWNER_ROLE)}"))
    finally:
        engine.dispose()


# --- setting up a database ----------------------------------------------------------------------


def adopt_schema(admin_conn: Connection, database: str, owner: str, audit: str) -> list[str]:
    """Give the owner role what an older govgis left owned by someone else (its one superuser): the
    database, and every table, view, function and type of the public schema that no extension owns.
    Returns what was moved. Run as a superuser (the embedded admin); a no-op on a current database."""
    moved = []
    db_owner = admin_conn.execute(sa.text(
        "SELECT pg_get_userbyid(datdba) FROM pg_database WHERE datname = :d"), {"d": database}).scalar_one()
    if db_owner != owner:
        admin_conn.execute(sa.text(f"ALTER DATABASE {ident(database)} OWNER TO {ident(owner)}"))
        moved.append(f"database {database}")
    not_ours = "pg_get_userbyid({col}) NOT IN (:owner, :audit) AND NOT EXISTS (SELECT 1 FROM pg_depend d " \
               "WHERE d.objid = {oid} AND d.deptype = 'e')"
    names = {"owner": owner, "audit": audit}
    relations = admin_conn.execute(sa.text(
        "SELECT c.oid::regclass::text, c.relkind FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
        "WHERE n.nspname = 'public' AND c.relkind IN ('r', 'p', 'v', 'm', 'S', 'f') AND "
        + not_ours.format(col="c.relowner", oid="c.oid") +
        # a sequence that belongs to a table (identity, serial) follows its table
        " AND NOT (c.relkind = 'S' AND EXISTS (SELECT 1 FROM pg_depend d WHERE d.objid = c.oid "
        "AND d.deptype IN ('a', 'i')))"), names).all()
    kinds = {"r": "TABLE", "p": "TABLE", "v": "VIEW", "m": "MATERIALIZED VIEW", "S": "SEQUENCE",
             "f": "FOREIGN TABLE"}
    for name, kind in relations:
        # names come from the catalog, already quoted by regclass::text
        admin_conn.execute(sa.text(f"ALTER {kinds[kind]} {name} OWNER TO {ident(owner)}"))
        moved.append(name)
    functions = admin_conn.execute(sa.text(
        "SELECT p.oid::regprocedure::text FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace "
        "WHERE n.nspname = 'public' AND " + not_ours.format(col="p.proowner", oid="p.oid")), names).scalars()
    for signature in functions:
        admin_conn.execute(sa.text(f"ALTER ROUTINE {signature} OWNER TO {ident(owner)}"))
        moved.append(signature)
    types = admin_conn.execute(sa.text(
        "SELECT t.oid::regtype::text FROM pg_type t JOIN pg_namespace n ON n.oid = t.typnamespace "
        "WHERE n.nspname = 'public' AND t.typtype IN ('e', 'd', 'c') AND t.typrelid = 0 AND "
        + not_ours.format(col="t.typowner", oid="t.oid")), names).scalars()
    for type_name in types:
        admin_conn.execute(sa.text(f"ALTER TYPE {type_name} OWNER TO {ident(owner)}"))
        moved.append(type_name)
    return moved


def check_app_role(conn: Connection, app: str, owner: str, audit: str) -> None:
    """Refuse an application role with more rights than the service needs (ConfigError saying what
    to revoke): a superuser, a member of the owner or audit role, or of a server-file/program role."""
    row = conn.execute(sa.text("SELECT rolsuper, rolbypassrls, rolcreaterole FROM pg_roles WHERE rolname = :r"),
                       {"r": app}).first()
    if row is None:
        raise ConfigError(f"role {app!r} does not exist: create it (govgis db roles-sql prints the SQL)")
    problems = []
    if row.rolsuper:
        problems.append(f"ALTER ROLE {app} NOSUPERUSER")
    if row.rolbypassrls or row.rolcreaterole:
        problems.append(f"ALTER ROLE {app} NOBYPASSRLS NOCREATEROLE")
    for parent in (owner, audit, *SERVER_ROLES):
        member = conn.execute(sa.text(
            "SELECT pg_has_role(:app, oid, 'USAGE') FROM pg_roles WHERE rolname = :parent"),
            {"app": app, "parent": parent}).scalar()
        if member:
            problems.append(f"REVOKE {parent} FROM {app}")
    if problems:
        raise ConfigError(f"the application role {app!r} has more rights than the service needs; run as a "
                          f"superuser: {'; '.join(problems)}")


def apply_grants(owner_conn: Connection, database: str, app: str, audit: str) -> None:
    """The application role's rights on everything the owner owns (see the module docstring), and the
    audit table handed to the audit role. Idempotent: rights are revoked and granted again in the same
    transaction, so a grant that should not be there disappears too."""
    owner = owner_conn.execute(sa.text("SELECT current_user")).scalar_one()
    check_app_role(owner_conn, app, owner, audit)
    a, o, au = ident(app), ident(owner), ident(audit)
    run = owner_conn.execute
    run(sa.text(f"GRANT CONNECT, TEMPORARY ON DATABASE {ident(database)} TO {a}"))
    run(sa.text(f"GRANT USAGE ON SCHEMA public TO {a}"))
    if owner_conn.execute(sa.text("SELECT to_regclass(:t) IS NOT NULL"), {"t": AUDIT_TABLE}).scalar():
        # a new owner needs CREATE on the schema at the moment of the change, never after
        run(sa.text(f"GRANT USAGE, CREATE ON SCHEMA public TO {au}"))
        run(sa.text(f"ALTER TABLE {AUDIT_TABLE} OWNER TO {au}"))
        run(sa.text(f"REVOKE CREATE ON SCHEMA public FROM {au}"))
    tables = owner_conn.execute(sa.text(
        "SELECT c.relname, c.oid::regclass::text FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
        "WHERE n.nspname = 'public' AND c.relkind IN ('r', 'p', 'v', 'm') "
        "AND pg_get_userbyid(c.relowner) IN (:owner, :audit) ORDER BY 1"), {"owner": owner, "audit": audit}).all()
    for name, quoted in tables:
        rights = ("SELECT, INSERT" if name in APPEND_ONLY else "SELECT" if name in READ_ONLY
                  else "SELECT, INSERT, UPDATE" if name in NO_DELETE else ROW_RIGHTS)
        run(sa.text(f"REVOKE ALL ON {quoted} FROM {a}"))
        run(sa.text(f"GRANT {rights} ON {quoted} TO {a}"))
    sequences = owner_conn.execute(sa.text(
        "SELECT c.oid::regclass::text FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
        "WHERE n.nspname = 'public' AND c.relkind = 'S' AND pg_get_userbyid(c.relowner) IN (:owner, :audit)"),
        {"owner": owner, "audit": audit}).scalars()
    for quoted in sequences:
        run(sa.text(f"REVOKE ALL ON SEQUENCE {quoted} FROM {a}"))
        run(sa.text(f"GRANT USAGE ON SEQUENCE {quoted} TO {a}"))
    functions = owner_conn.execute(sa.text(
        "SELECT p.oid::regprocedure::text FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace "
        "WHERE n.nspname = 'public' AND pg_get_userbyid(p.proowner) = :owner"), {"owner": owner}).scalars()
    for signature in functions:
        run(sa.text(f"GRANT EXECUTE ON ROUTINE {signature} TO {a}"))
    # tables, sequences and functions a later migration creates get the same rights
    run(sa.text(f"ALTER DEFAULT PRIVILEGES FOR ROLE {o} IN SCHEMA public GRANT {ROW_RIGHTS} ON TABLES TO {a}"))
    run(sa.text(f"ALTER DEFAULT PRIVILEGES FOR ROLE {o} IN SCHEMA public GRANT USAGE ON SEQUENCES TO {a}"))
    run(sa.text(f"ALTER DEFAULT PRIVILEGES FOR ROLE {o} IN SCHEMA public GRANT EXECUTE ON ROUTINES TO {a}"))


@dataclass(frozen=True)
class RoleNames:
    """Who is who in one installation (from the URLs' user names and GOVGIS_AUDIT_ROLE)."""

    database: str
    admin: str
    owner: str
    app: str
    audit: str

    @classmethod
    def of(cls, settings: Settings) -> RoleNames:
        app, owner, admin = database_url(settings), owner_url(settings), admin_url(settings)
        return cls(str(app.database), str(admin.username), str(owner.username), str(app.username),
                   settings.database.audit_role)

    @property
    def separated(self) -> bool:
        """Whether the service runs as a role of its own (not the owner's)."""
        return self.app != self.owner


def grant_app_role(owner_engine: Engine, names: RoleNames) -> bool:
    """Apply the application role's grants (as the owner) when it is a role of its own. True if done."""
    if not names.separated:
        return False
    with owner_engine.begin() as conn:
        apply_grants(conn, names.database, names.app, names.audit)
    return True


def _check_roles_exist(admin: URL, names: RoleNames) -> None:
    engine = make_engine(admin.set(database="postgres"), pool_size=1, application_name="govgis-admin")
    try:
        with engine.connect() as conn:
            found = set(conn.execute(sa.text("SELECT rolname FROM pg_roles WHERE rolname = ANY(:n)"),
                                     {"n": [names.owner, names.app, names.audit]}).scalars())
    finally:
        engine.dispose()
    missing = sorted({names.owner, names.app, names.audit} - found)
    if missing:
        raise ConfigError(
            f"role(s) {', '.join(missing)} do not exist on the server. The embedded cluster creates them when it "
            "starts (`make db`, or `python -m gis.cluster start`, upgrades an older cluster in place); on an "
            "existing PostgreSQL run what `govgis db roles-sql` prints, as a superuser")


def setup_database(settings: Settings, say: Callable[[str], None]) -> RoleNames:
    """Everything `govgis db setup` does before the demo city, in order and idempotent: create the
    database and extensions (admin), move what an older govgis left to the owner (admin, when it is a
    superuser), migrate (owner), grant the application role its rights (owner)."""
    names = RoleNames.of(settings)
    admin, owner = admin_url(settings), owner_url(settings)
    if names.separated:
        _check_roles_exist(admin, names)
    if ensure_database(admin.set(database=names.database), settings,
                       owner=names.owner if names.owner != names.admin else None):
        say(f"created database {names.database} (owner {names.owner}) with extensions postgis and pgrouting")
    if names.admin != names.owner:
        engine = make_engine(admin.set(database=names.database), pool_size=1, application_name="govgis-admin")
        try:
            with engine.begin() as conn:
                if conn.execute(sa.text("SELECT rolsuper FROM pg_roles WHERE rolname = current_user")).scalar():
                    moved = adopt_schema(conn, names.database, names.owner, names.audit)
                    if moved:
                        say(f"gave the owner role {names.owner} {len(moved)} objects an older govgis left to "
                            f"{names.admin} (e.g. {', '.join(moved[:3])})")
        finally:
            engine.dispose()
    engine = make_engine(owner, pool_size=1, application_name="govgis-setup")
    try:
        before = migrate.current(engine)
        migrate.upgrade(engine)
        after = migrate.current(engine)
        say(f"schema at revision {after}" + ("" if before == after else f" (migrated from {before})"))
        if grant_app_role(engine, names):
            say(f"role {names.app}: rows of the layer tables, append-only audit_log (owned by {names.audit}), "
                "no DDL, not a superuser")
        else:
            say(f"WARNING: the service connects as {names.app}, the owner of the tables: it could alter or "
                "disable the audit log. Give it a role of its own (GOVGIS_OWNER_DATABASE_URL for the owner, "
                "GOVGIS_DATABASE_URL for the app role; `govgis db roles-sql` prints the SQL)")
    finally:
        engine.dispose()
    return names


def database_environment(settings: Settings, name: str) -> dict[str, str]:
    """GOVGIS_DATABASE_URL, GOVGIS_OWNER_DATABASE_URL and GOVGIS_ADMIN_DATABASE_URL for another database
    on the same server, with the same roles (for the test harness and the benchmarks)."""
    urls = {"GOVGIS_DATABASE_URL": database_url(settings), "GOVGIS_OWNER_DATABASE_URL": owner_url(settings),
            "GOVGIS_ADMIN_DATABASE_URL": admin_url(settings)}
    return {variable: url.set(database=name).render_as_string(hide_password=False) for variable, url in urls.items()}


def use_database(name: str, say: Callable[[str], None] = lambda message: None) -> Settings:
    """Point this process at database ``name`` on the configured server (environment and settings) and
    set it up as `govgis db setup` does, without the demo city. Returns the new settings."""
    import os

    from gis.settings import get_settings

    os.environ.update(database_environment(get_settings(), name))
    get_settings.cache_clear()
    settings = get_settings()
    setup_database(settings, say)
    return settings


def operator_sql(database: str = "govgis", owner: str = OWNER_ROLE, app: str = APP_ROLE,
                 audit: str = AUDIT_ROLE) -> str:
    """The SQL an operator runs once, as a superuser, on an existing PostGIS server before
    `govgis db setup` (which then creates the schema as the owner and applies the grants)."""
    d, o, a, au = ident(database), ident(owner), ident(app), ident(audit)
    return f"""-- govgis roles (run once as a superuser; replace the passwords)
SET password_encryption = 'scram-sha-256';
CREATE ROLE {au} NOLOGIN;
CREATE ROLE {o} LOGIN PASSWORD 'change-me-owner';
CREATE ROLE {a} LOGIN PASSWORD 'change-me-app' NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION NOBYPASSRLS;
GRANT {au} TO {o};   -- the owner may alter audit_log in migrations; the app role may not
CREATE DATABASE {d} OWNER {o};
\\connect {d}
CREATE EXTENSION IF NOT EXISTS postgis;
CREATE EXTENSION IF NOT EXISTS pgrouting;
-- pg_hba.conf: "host {database} {owner},{app} <network> scram-sha-256" (never trust)
-- then, as the owner: GOVGIS_OWNER_DATABASE_URL=postgresql://{owner}:…@host/{database} \\
--   GOVGIS_DATABASE_URL=postgresql://{app}:…@host/{database} govgis db setup --no-demo
"""
