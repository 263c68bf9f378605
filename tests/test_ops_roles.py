"""Least-privilege roles: the application role (what the service and these tests connect as) can read
and write rows but cannot touch the audit log's integrity or the server, and key creation and
revocation leave audit records."""

from __future__ import annotations

import pytest
import sqlalchemy as sa
from sqlalchemy.exc import DBAPIError

from gis.db import admin_url, database_url, make_engine
from gis.errors import ConfigError
from gis.keys import create_key, revoke_key
from gis.roles import RoleNames, apply_grants, check_app_role
from gis.settings import get_settings

# each of these would let whoever holds the app role rewrite or silence the audit trail, or run
# programs on the database host
TAMPERING = {
    "update": "UPDATE audit_log SET actor = 'someone else'",
    "delete": "DELETE FROM audit_log",
    "truncate": "TRUNCATE audit_log",
    "disable trigger": "ALTER TABLE audit_log DISABLE TRIGGER audit_log_append_only",
    "disable all triggers": "ALTER TABLE audit_log DISABLE TRIGGER ALL",
    "drop trigger": "DROP TRIGGER audit_log_append_only ON audit_log",
    "alter table": "ALTER TABLE audit_log DROP COLUMN before",
    "change owner": "ALTER TABLE audit_log OWNER TO CURRENT_USER",
    "drop table": "DROP TABLE audit_log",
    "replication role": "SET session_replication_role = replica",
    "copy from program": "COPY audit_log (actor, layer, action) FROM PROGRAM 'echo x'",
    "copy to program": "COPY audit_log TO PROGRAM 'cat > /dev/null'",
    "copy from server file": "COPY audit_log (actor, layer, action) FROM '/etc/hostname'",
    "become superuser": "ALTER ROLE CURRENT_USER SUPERUSER",
    "create table": "CREATE TABLE public.govgis_intruder (x int)",
    "alter a layer table": "ALTER TABLE cadastre_parcels DISABLE TRIGGER ALL",
    "delete keys": "DELETE FROM api_keys",
}


def _audit_state(owner_engine: sa.Engine) -> tuple[int, list[tuple[str, str]]]:
    with owner_engine.connect() as conn:
        rows = conn.execute(sa.text("SELECT count(*) FROM audit_log")).scalar_one()
        triggers = conn.execute(sa.text(
            "SELECT tgname, tgenabled FROM pg_trigger WHERE tgrelid = 'audit_log'::regclass AND NOT tgisinternal "
            "ORDER BY tgname")).all()
    return rows, [tuple(t) for t in triggers]


def test_the_service_role_is_not_a_superuser_nor_an_owner(engine) -> None:
    names = RoleNames.of(get_settings())
    assert names.separated, "the tests must run as a role of their own, not as the owner"
    with engine.connect() as conn:
        me, superuser, bypass = conn.execute(sa.text(
            "SELECT current_user, rolsuper, rolbypassrls FROM pg_roles WHERE rolname = current_user")).one()
        assert me == names.app == database_url(get_settings()).username
        assert not superuser and not bypass
        owners = conn.execute(sa.text(
            "SELECT DISTINCT pg_get_userbyid(relowner) FROM pg_class c JOIN pg_namespace n ON n.oid = relnamespace "
            "WHERE nspname = 'public' AND relkind IN ('r', 'S', 'v')")).scalars().all()
        assert me not in owners
        assert conn.execute(sa.text("SELECT pg_get_userbyid(relowner) FROM pg_class WHERE oid = 'audit_log'::regclass")
                            ).scalar() == names.audit
        for role in (names.owner, names.audit, "pg_execute_server_program", "pg_read_server_files",
                     "pg_write_server_files"):
            assert not conn.execute(sa.text("SELECT pg_has_role(current_user, :r, 'MEMBER')"), {"r": role}).scalar(), role


@pytest.mark.parametrize("what", sorted(TAMPERING))
def test_the_service_role_cannot_tamper_with_the_audit_log_or_the_server(engine, owner_engine, what) -> None:
    before = _audit_state(owner_engine)
    assert before[0] > 0 and before[1] == [("audit_log_append_only", "O"), ("audit_log_no_truncate", "O")]
    with engine.connect() as conn:
        with pytest.raises(DBAPIError) as refused:
            conn.execute(sa.text(TAMPERING[what]))
        conn.rollback()
    assert refused.value.orig.pgcode == "42501", refused.value.orig  # insufficient_privilege, not some other error
    # refused by the privilege system itself, not merely by the append-only trigger behind it
    assert "append-only" not in str(refused.value.orig)
    assert _audit_state(owner_engine) == before


def test_the_service_role_appends_and_reads_the_audit_log_and_writes_rows(engine) -> None:
    with engine.connect() as conn:
        transaction = conn.begin()
        conn.execute(sa.text("INSERT INTO audit_log (actor, layer, action) VALUES ('t', 'x', 'other')"))
        assert conn.execute(sa.text("SELECT count(*) FROM audit_log WHERE layer = 'x'")).scalar() == 1
        changed = conn.execute(sa.text("UPDATE emergency_shelters SET capacity_persons = capacity_persons + 1 "
                                       "WHERE id = (SELECT min(id) FROM emergency_shelters)")).rowcount
        assert changed == 1
        conn.execute(sa.text("CREATE TEMP TABLE staging (x int) ON COMMIT DROP"))  # COPY staging of imports
        transaction.rollback()


def test_key_creation_and_revocation_are_audited(engine) -> None:
    with engine.begin() as conn:
        issued = create_key(conn, department="审计科", read=["cadastre"], write=["cadastre_parcels"])
    with engine.begin() as conn:
        assert revoke_key(conn, str(issued.key_id)) == issued.key_id
        assert revoke_key(conn, issued.prefix) == issued.key_id  # twice: harmless, audited once
    with engine.connect() as conn:
        rows = conn.execute(sa.text(
            "SELECT action, before, after FROM audit_log WHERE layer = 'api_keys' AND feature_id = :k ORDER BY id"),
            {"k": str(issued.key_id)}).all()
    assert [r.action for r in rows] == ["insert", "update"]
    created, revoked = rows
    assert created.before is None and created.after["department"] == "审计科"
    assert created.after["write_scopes"] == ["cadastre_parcels"] and created.after["revoked_at"] is None
    assert revoked.before["revoked_at"] is None and revoked.after["revoked_at"] is not None
    assert not any(field in created.after for field in ("salt", "key_hash"))
    assert issued.secret not in str(rows)


def _privileges(conn: sa.Connection, role: str) -> set[tuple[str, str]]:
    return set(conn.execute(sa.text(
        "SELECT c.relname, a.privilege_type FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace, "
        "aclexplode(c.relacl) a WHERE n.nspname = 'public' AND a.grantee = to_regrole(:r)"), {"r": role}).all())


def test_grants_are_idempotent_and_exactly_what_the_service_needs(owner_engine) -> None:
    names = RoleNames.of(get_settings())
    with owner_engine.begin() as conn:
        first = _privileges(conn, names.app)
        apply_grants(conn, names.database, names.app, names.audit)
        apply_grants(conn, names.database, names.app, names.audit)
        assert _privileges(conn, names.app) == first
    tables = {name for name, _ in first}
    assert {"SELECT", "INSERT"} == {p for name, p in first if name == "audit_log"}
    assert {"SELECT", "INSERT"} == {p for name, p in first if name == "access_log"}
    assert {"SELECT"} == {p for name, p in first if name == "alembic_version"}
    assert {"SELECT", "INSERT", "UPDATE"} == {p for name, p in first if name == "api_keys"}
    assert {"SELECT", "INSERT", "UPDATE", "DELETE"} == {p for name, p in first if name == "cadastre_parcels"}
    assert not {p for _, p in first} & {"TRUNCATE", "REFERENCES", "TRIGGER"}
    assert "spatial_ref_sys" not in tables  # PostGIS's: readable by everyone, writable by the admin only


def test_a_role_with_too_many_rights_is_refused_as_the_app_role(owner_engine) -> None:
    names = RoleNames.of(get_settings())
    admin = admin_url(get_settings()).username  # the embedded cluster's superuser
    with owner_engine.connect() as conn:
        with pytest.raises(ConfigError, match="NOSUPERUSER"):
            check_app_role(conn, admin, names.owner, names.audit)
        with pytest.raises(ConfigError, match=f"REVOKE {names.audit}"):
            check_app_role(conn, names.owner, "nobody_owns_this", names.audit)  # the owner is in the audit role


def test_default_privileges_cover_tables_a_later_migration_creates(owner_engine) -> None:
    names = RoleNames.of(get_settings())
    with owner_engine.connect() as conn:
        transaction = conn.begin()
        conn.execute(sa.text("CREATE TABLE govgis_future_layer (id int)"))
        assert _privileges(conn, names.app) >= {("govgis_future_layer", p) for p in
                                                ("SELECT", "INSERT", "UPDATE", "DELETE")}
        transaction.rollback()


def test_the_service_role_needs_its_password(engine) -> None:
    """Password authentication, not trust: the app role's URL without its password (or password file) fails."""
    url = database_url(get_settings())
    bare = make_engine(url.set(password=None).difference_update_query(["passfile"]), pool_size=1)
    try:
        with pytest.raises(DBAPIError, match="password"):
            with bare.connect():
                pass
    finally:
        bare.dispose()
