"""`govgis db backup` and `govgis db restore`: a round trip gives back every table exactly, and a backup of
another schema revision is refused before anything changes.

Runs on a database of its own on the configured server (created like `govgis db setup` creates one),
so the session's test database is never replaced under the other tests.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from typer.testing import CliRunner

from api.cli import app as cli
from gis.db import admin_url, database_url, drop_database, make_engine, owner_url
from gis.roles import database_environment, setup_database
from gis.settings import get_settings

runner = CliRunner()


@pytest.fixture(scope="module")
def backup_db() -> Iterator[dict[str, str]]:
    """A fresh database with a small demo city; yields the environment that points `govgis` at it."""
    from data import democity

    settings = get_settings()
    environment = database_environment(settings, f"{database_url(settings).database}_bk_{uuid.uuid4().hex[:6]}")
    with pytest.MonkeyPatch.context() as patch:
        for variable, value in environment.items():
            patch.setenv(variable, value)
        get_settings.cache_clear()
        try:
            setup_database(get_settings(), say=lambda message: None)
            owner = make_engine(owner_url(get_settings()), pool_size=1)
            try:
                democity.load(owner, size=0.05, seed=11, progress=False)
            finally:
                owner.dispose()
            yield environment
        finally:
            drop_database(admin_url(get_settings()))
            get_settings.cache_clear()


def _govgis(environment: dict[str, str], *args: str) -> tuple[int, str]:
    with pytest.MonkeyPatch.context() as patch:
        for variable, value in environment.items():
            patch.setenv(variable, value)
        get_settings.cache_clear()
        try:
            result = runner.invoke(cli, list(args))
        finally:
            get_settings.cache_clear()
    return result.exit_code, result.output + (result.stderr if result.stderr_bytes else "")


def _fingerprint(environment: dict[str, str]) -> dict[str, tuple[int, str]]:
    """Rows and an md5 of every row's text form, per table of the schema (PostGIS's own excepted)."""
    engine = make_engine(sa.make_url(environment["GOVGIS_OWNER_DATABASE_URL"]), pool_size=1)
    try:
        with engine.connect() as conn:
            tables = conn.execute(sa.text(
                "SELECT tablename FROM pg_tables WHERE schemaname = 'public' AND tablename <> 'spatial_ref_sys' "
                "ORDER BY 1")).scalars().all()
            out = {}
            for table in tables:  # names from the catalog, quoted
                out[table] = tuple(conn.execute(sa.text(
                    f'SELECT count(*), coalesce(md5(string_agg(t::text, E\'\\n\' ORDER BY t::text)), \'\') '
                    f'FROM "{table}" t')).one())
            return out
    finally:
        engine.dispose()


def _owner(environment: dict[str, str]) -> sa.Engine:
    return make_engine(sa.make_url(environment["GOVGIS_OWNER_DATABASE_URL"]), pool_size=1)


def test_backup_change_restore_gives_back_every_table(backup_db: dict[str, str], tmp_path: Path) -> None:
    dump = tmp_path / "govgis.dump"
    before = _fingerprint(backup_db)
    assert before["cadastre_parcels"][0] > 0 and before["audit_log"][0] > 0 and len(before) >= 20
    code, output = _govgis(backup_db, "db", "backup", str(dump))
    assert code == 0, output
    assert dump.stat().st_size > 0 and "revision" in output
    engine = _owner(backup_db)
    try:
        with engine.begin() as conn:  # edits, deletions, new rows and new audit records after the backup
            conn.execute(sa.text("UPDATE emergency_shelters SET capacity_persons = capacity_persons + 7"))
            conn.execute(sa.text("DELETE FROM pipeline_customers WHERE id IN (SELECT id FROM pipeline_customers "
                                 "ORDER BY id LIMIT 5)"))
            conn.execute(sa.text("INSERT INTO audit_log (actor, layer, action) VALUES ('after', 'x', 'other')"))
    finally:
        engine.dispose()
    changed = _fingerprint(backup_db)
    assert changed["emergency_shelters"] != before["emergency_shelters"]
    assert changed["pipeline_customers"][0] == before["pipeline_customers"][0] - 5
    engine = _owner(backup_db)
    try:
        with engine.connect() as conn:
            versions_before = dict(conn.execute(sa.text("SELECT table_name, version FROM layer_versions")).all())
    finally:
        engine.dispose()
    code, output = _govgis(backup_db, "db", "restore", str(dump))
    assert code == 0, output
    after = _fingerprint(backup_db)
    # every table as it was at the backup; layer versions moved on so no cached tile is taken for it
    assert {t: v for t, v in after.items() if t != "layer_versions"} == \
           {t: v for t, v in before.items() if t != "layer_versions"}
    engine = _owner(backup_db)
    try:
        with engine.connect() as conn:
            versions = dict(conn.execute(sa.text("SELECT table_name, version FROM layer_versions")).all())
            audit_owner = conn.execute(sa.text(
                "SELECT pg_get_userbyid(relowner) FROM pg_class WHERE oid = 'audit_log'::regclass")).scalar()
    finally:
        engine.dispose()
    assert all(versions[t] > versions_before.get(t, 0) for t in versions_before)
    assert audit_owner == get_settings().database.audit_role  # the grants came back with the restore
    # the service's role works on the restored database, and still cannot touch the audit log
    app = make_engine(sa.make_url(backup_db["GOVGIS_DATABASE_URL"]), pool_size=1)
    try:
        with app.connect() as conn:
            assert conn.execute(sa.text("SELECT count(*) FROM cadastre_parcels")).scalar() == \
                before["cadastre_parcels"][0]
            with pytest.raises(sa.exc.ProgrammingError, match="permission denied"):
                conn.execute(sa.text("DELETE FROM audit_log"))
    finally:
        app.dispose()


@pytest.mark.parametrize("revision,expected", [
    ("0005", "older than this govgis"),
    ("9999_from_the_future", "made by a newer govgis"),
])
def test_a_backup_of_another_schema_revision_is_refused(backup_db: dict[str, str], tmp_path: Path,
                                                        revision: str, expected: str) -> None:
    engine = _owner(backup_db)
    try:
        with engine.begin() as conn:
            head = conn.execute(sa.text("SELECT version_num FROM alembic_version")).scalar_one()
            conn.execute(sa.text("UPDATE alembic_version SET version_num = :r"), {"r": revision})
        dump = tmp_path / f"{revision}.dump"
        code, output = _govgis(backup_db, "db", "backup", str(dump))
        assert code == 0, output
        with engine.begin() as conn:
            conn.execute(sa.text("UPDATE alembic_version SET version_num = :r"), {"r": head})
            conn.execute(sa.text("INSERT INTO audit_log (actor, layer, action) VALUES ('kept', 'x', 'other')"))
        before = _fingerprint(backup_db)
        code, output = _govgis(backup_db, "db", "restore", str(dump))
        assert code == 1 and expected in output and revision in output, output
        assert _fingerprint(backup_db) == before  # refused before anything changed
    finally:
        engine.dispose()


def test_restore_refuses_a_file_that_is_not_a_backup(backup_db: dict[str, str], tmp_path: Path) -> None:
    junk = tmp_path / "notes.txt"
    junk.write_text("not a dump")
    code, output = _govgis(backup_db, "db", "restore", str(junk))
    assert code == 1 and "not a govgis backup" in output, output
    code, output = _govgis(backup_db, "db", "restore", str(tmp_path / "missing.dump"))
    assert code == 1 and "no backup file" in output, output
