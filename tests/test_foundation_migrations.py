"""Migrations run down to base and up again on an empty throw-away database, and the schema they
build is the one the models declare (an empty autogenerate diff, spatial indexes and geometry types
included), so a model changed without a migration fails here."""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from geoalchemy2 import Geometry, alembic_helpers
from sqlalchemy import inspect, text
from sqlalchemy.engine import Engine

from gis import migrate
from gis.db import admin_url, drop_database, ensure_database, make_engine, owner_url
from gis.schema import METADATA
from gis.settings import get_settings
from layers import REGISTRY


def test_migrations_down_to_base_and_up_again() -> None:
    settings = get_settings()
    name = f"govgis_migr_{uuid.uuid4().hex[:8]}"
    url = admin_url(settings).set(database=name)
    ensure_database(url, settings, owner=owner_url(settings).username)
    engine = make_engine(owner_url(settings).set(database=name), pool_size=1)  # migrations run as the owner
    try:
        migrate.upgrade(engine)
        head = migrate.current(engine)
        tables = set(inspect(engine).get_table_names())
        assert {layer.table.name for layer in REGISTRY} <= tables and "audit_log" in tables
        migrate.downgrade(engine, "base")
        assert migrate.current(engine) is None
        left = set(inspect(engine).get_table_names()) - {"spatial_ref_sys", "alembic_version"}
        assert left == set(), left
        with engine.connect() as conn:
            functions = conn.execute(text("SELECT count(*) FROM pg_proc WHERE proname LIKE 'govgis_%'")).scalar()
        assert functions == 0
        migrate.upgrade(engine)
        assert migrate.current(engine) == head
        assert {layer.table.name for layer in REGISTRY} <= set(inspect(engine).get_table_names())
        with engine.begin() as conn:  # the schema works after the round trip: triggers and checks are back
            conn.execute(text("INSERT INTO layer_versions (table_name) VALUES ('x')"))
            conn.execute(text("INSERT INTO audit_log (actor, layer, action) VALUES ('t', 'x', 'other')"))
    finally:
        engine.dispose()
        drop_database(url)


# --- the migrations and the models agree -------------------------------------------------------------

def _all_models() -> sa.MetaData:
    """The metadata with every table the code declares: each family's and the platform's."""
    import gis.keys  # noqa: F401  (the API keys tables)
    import layers  # noqa: F401  (every family's tables)

    return METADATA


def schema_drift(conn: sa.Connection, metadata: sa.MetaData) -> list:
    """What autogenerate would write to turn the database into the models (empty: they agree), plus
    the check constraints on one side only (autogenerate does not compare those)."""
    context = MigrationContext.configure(conn, opts={
        "compare_type": True, "compare_server_default": True,  # geometry kind and SRID included
        "include_object": alembic_helpers.include_object,  # PostGIS's own tables
    })
    drift: list = list(compare_metadata(context, metadata))
    inspector = sa.inspect(conn)
    for table in metadata.sorted_tables:
        declared = {c.name for c in table.constraints if isinstance(c, sa.CheckConstraint)}
        present = {c["name"] for c in inspector.get_check_constraints(table.name)} if inspector.has_table(
            table.name) else set()
        drift += [("check only in the models", table.name, n) for n in sorted(declared - present)]
        drift += [("check only in the database", table.name, n) for n in sorted(present - declared)]
    return drift


@pytest.fixture(scope="module")
def migrated() -> Iterator[Engine]:
    """A fresh database brought to head by the migrations alone."""
    settings = get_settings()
    name = f"govgis_drift_{uuid.uuid4().hex[:8]}"
    url = admin_url(settings).set(database=name)
    ensure_database(url, settings, owner=owner_url(settings).username)
    engine = make_engine(owner_url(settings).set(database=name), pool_size=1)  # migrations run as the owner
    try:
        migrate.upgrade(engine)
        yield engine
    finally:
        engine.dispose()
        drop_database(url)


def test_migrated_schema_matches_the_models(migrated) -> None:
    with migrated.connect() as conn:
        assert schema_drift(conn, _all_models()) == []
        # every layer table bumps its version on writes (the tile caches rely on it)
        triggers = {r[0] for r in conn.execute(text("SELECT tgname FROM pg_trigger WHERE NOT tgisinternal"))}
    missing = [layer.table.name for layer in REGISTRY if f"{layer.table.name}_bump_version" not in triggers]
    assert missing == []


def _text(difference: object) -> str:
    """A difference as text without the memory addresses of the objects in it."""
    return re.sub(r" at 0x[0-9a-f]+", "", str(difference))


def test_drift_check_sees_a_model_that_moved_on(migrated) -> None:
    """The comparison can fail: a column, a geometry type and a check added to a copy of the models
    are exactly what it finds beyond the models themselves."""
    changed = sa.MetaData(naming_convention=METADATA.naming_convention)
    for table in _all_models().sorted_tables:
        table.to_metadata(changed)
    parcels = changed.tables["cadastre_parcels"]
    parcels.append_column(sa.Column("planted_note", sa.Text))
    parcels.append_constraint(sa.CheckConstraint("planted_note <> ''", name="planted_check"))
    roads = changed.tables["emergency_roads"]
    roads.c.geom.type = Geometry("MULTILINESTRING", srid=roads.c.geom.type.srid, spatial_index=False)
    with migrated.connect() as conn:
        baseline = {_text(d) for d in schema_drift(conn, _all_models())}
        drift = [_text(d) for d in schema_drift(conn, changed) if _text(d) not in baseline]
    assert any("planted_note" in d and "add_column" in d for d in drift), drift
    assert any("ck_cadastre_parcels_planted_check" in d for d in drift), drift
    assert any("emergency_roads" in d and "modify_type" in d for d in drift), drift
    assert len(drift) == 3, drift
