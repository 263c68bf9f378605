"""Migrations run down to base and up again on an empty throw-away database."""

from __future__ import annotations

import uuid

from sqlalchemy import inspect, text

from gis import migrate
from gis.db import admin_url, drop_database, ensure_database, make_engine, owner_url
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
