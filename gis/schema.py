"""Shared table machinery: the metadata every family's tables join, standard columns, and the
generic tables of the platform itself (audit log, layer versions).

Geometry columns take their SRID from the storage CRS setting, which is fixed when the database is
created; changing it later means a new database and a reload, not a setting flip.
"""

from __future__ import annotations

import sqlalchemy as sa
from geoalchemy2 import Geometry
from sqlalchemy.dialects.postgresql import JSONB

from gis.settings import get_settings

METADATA = sa.MetaData(
    naming_convention={
        "ix": "ix_%(table_name)s_%(column_0_N_name)s",
        "uq": "uq_%(table_name)s_%(column_0_N_name)s",
        "ck": "ck_%(table_name)s_%(constraint_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)


def storage_srid() -> int:
    """The storage SRID, read when the table definitions are built (at import).

    This is the one settings read that is not passed down: SQLAlchemy tables are module-level
    declarations, built before any app or CLI exists, and their geometry columns must carry the
    SRID the database was created with (a setting fixed at database creation, see the module
    docstring). Code that runs later takes the SRID from a table's column (``table.c.geom.type.srid``),
    so it always agrees with the schema.
    """
    return get_settings().storage_srid


def geometry_column(geometry_type: str, *, name: str = "geom", nullable: bool = False,
                    comment: str | None = None) -> sa.Column:
    """A typed geometry column in the storage SRID with a GiST index (GeoAlchemy2 creates it)."""
    return sa.Column(
        name,
        Geometry(geometry_type.upper(), srid=storage_srid(), spatial_index=True),
        nullable=nullable,
        comment=comment,
    )


def feature_columns() -> list[sa.Column]:
    """Columns every editable layer table has: key, row version (optimistic concurrency), times."""
    return [
        sa.Column("id", sa.BigInteger, sa.Identity(), primary_key=True),
        sa.Column("version", sa.Integer, nullable=False, server_default="1", comment="行版本 row version"),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
    ]


def one_of(column: str, values: tuple[str, ...]) -> str:
    """SQL for a CHECK that ``column`` holds one of a code list's values (the list lives in Python)."""
    return f"{column} IN (" + ",".join("'" + v.replace("'", "''") + "'" for v in values) + ")"


def valid_geometry_check(table_name: str, column: str = "geom") -> sa.CheckConstraint:
    """The database refuses invalid or empty geometries too, whatever path a row comes by."""
    return sa.CheckConstraint(f"ST_IsValid({column}) AND NOT ST_IsEmpty({column})", name=f"{column}_valid")


# Append-only record of every write: the database itself refuses UPDATE, DELETE and TRUNCATE.
audit_log = sa.Table(
    "audit_log",
    METADATA,
    sa.Column("id", sa.BigInteger, sa.Identity(), primary_key=True),
    sa.Column("at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
    sa.Column("actor", sa.Text, nullable=False, comment="key name/department or system user"),
    sa.Column("key_id", sa.BigInteger, comment="the API key that made the change (NULL: system/CLI)"),
    sa.Column("layer", sa.Text, nullable=False),
    sa.Column("feature_id", sa.Text),
    sa.Column("action", sa.Text, nullable=False),
    sa.Column("before", JSONB),
    sa.Column("after", JSONB),
    sa.Column("detail", JSONB),
    sa.Column("txid", sa.BigInteger, nullable=False, server_default=sa.text("txid_current()")),
    sa.CheckConstraint("action IN ('insert','update','delete','import','registration','workflow','other')",
                       name="action_known"),
)
sa.Index("ix_audit_log_layer_feature", audit_log.c.layer, audit_log.c.feature_id)

# One row per layer table, bumped by a statement trigger on every write: tile caches key on it.
layer_versions = sa.Table(
    "layer_versions",
    METADATA,
    sa.Column("table_name", sa.Text, primary_key=True),
    sa.Column("version", sa.BigInteger, nullable=False, server_default="0"),
    sa.Column("changed_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
)

PLATFORM_SQL = """
CREATE OR REPLACE FUNCTION govgis_audit_is_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  RAISE EXCEPTION 'audit_log is append-only: % is not allowed', TG_OP
    USING ERRCODE = 'insufficient_privilege';
END $$;
CREATE TRIGGER audit_log_append_only BEFORE UPDATE OR DELETE ON audit_log
  FOR EACH ROW EXECUTE FUNCTION govgis_audit_is_append_only();
CREATE TRIGGER audit_log_no_truncate BEFORE TRUNCATE ON audit_log
  FOR EACH STATEMENT EXECUTE FUNCTION govgis_audit_is_append_only();

CREATE OR REPLACE FUNCTION govgis_bump_layer_version() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  INSERT INTO layer_versions AS lv (table_name, version, changed_at) VALUES (TG_TABLE_NAME, 1, now())
  ON CONFLICT (table_name) DO UPDATE SET version = lv.version + 1, changed_at = now();
  RETURN NULL;
END $$;
"""

PLATFORM_DOWN_SQL = """
DROP FUNCTION IF EXISTS govgis_bump_layer_version() CASCADE;
DROP FUNCTION IF EXISTS govgis_audit_is_append_only() CASCADE;
DROP FUNCTION IF EXISTS govgis_mask(text);
"""


def layer_version_trigger_sql(table_name: str) -> str:
    """SQL attaching the version bump to a layer table (every INSERT/UPDATE/DELETE/TRUNCATE)."""
    return (
        f"CREATE TRIGGER {table_name}_bump_version AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE "
        f"ON {table_name} FOR EACH STATEMENT EXECUTE FUNCTION govgis_bump_layer_version();"
    )


def create_family(bind: sa.engine.Connection, tables: tuple[sa.Table, ...]) -> None:
    """Create a family's tables (with their GiST indexes) and attach the layer-version trigger.

    Used by the family's first migration. Later changes to a family go in new migrations with
    explicit operations, so an old migration keeps meaning what it meant when it ran.
    """
    METADATA.create_all(bind, tables=list(tables))
    for table in tables:
        bind.execute(sa.text(layer_version_trigger_sql(table.name)))


def drop_family(bind: sa.engine.Connection, tables: tuple[sa.Table, ...]) -> None:
    METADATA.drop_all(bind, tables=list(reversed(tables)))
