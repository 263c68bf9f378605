"""Platform tables: audit log (append-only), layer versions, masking function.

Frozen: explicit operations written from the models as they were when this revision was made (it
imports no model, so it keeps meaning what it meant). Later changes go in new revisions.

Revision ID: 0001
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

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

MASK_FUNCTION_SQL = """
CREATE OR REPLACE FUNCTION govgis_mask(v text) RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
  SELECT CASE
    WHEN v IS NULL THEN NULL
    WHEN char_length(v) <= 1 THEN repeat('*', char_length(v))
    WHEN char_length(v) <= 3 THEN left(v, 1) || repeat('*', char_length(v) - 1)
    WHEN char_length(v) <= 6 THEN left(v, 1) || repeat('*', char_length(v) - 2) || right(v, 1)
    WHEN char_length(v) <= 10 THEN left(v, 2) || repeat('*', char_length(v) - 4) || right(v, 2)
    ELSE left(v, 3) || repeat('*', char_length(v) - 7) || right(v, 4)
  END
$$;
"""

PLATFORM_DOWN_SQL = """
DROP FUNCTION IF EXISTS govgis_bump_layer_version() CASCADE;
DROP FUNCTION IF EXISTS govgis_audit_is_append_only() CASCADE;
DROP FUNCTION IF EXISTS govgis_mask(text);
"""


def upgrade() -> None:
    op.create_table('audit_log',
    sa.Column('id', sa.BigInteger(), sa.Identity(always=False), nullable=False),
    sa.Column('at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.Column('actor', sa.Text(), nullable=False, comment='key name/department or system user'),
    sa.Column('layer', sa.Text(), nullable=False),
    sa.Column('feature_id', sa.Text(), nullable=True),
    sa.Column('action', sa.Text(), nullable=False),
    sa.Column('before', postgresql.JSONB(astext_type=sa.Text()), nullable=True),
    sa.Column('after', postgresql.JSONB(astext_type=sa.Text()), nullable=True),
    sa.Column('detail', postgresql.JSONB(astext_type=sa.Text()), nullable=True),
    sa.Column('txid', sa.BigInteger(), server_default=sa.text('txid_current()'), nullable=False),
    sa.CheckConstraint("action IN ('insert','update','delete','import','registration','workflow','other')", name=op.f('ck_audit_log_action_known')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_audit_log'))
    )
    op.create_index('ix_audit_log_layer_feature', 'audit_log', ['layer', 'feature_id'], unique=False)
    op.create_table('layer_versions',
    sa.Column('table_name', sa.Text(), nullable=False),
    sa.Column('version', sa.BigInteger(), server_default='0', nullable=False),
    sa.Column('changed_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.PrimaryKeyConstraint('table_name', name=op.f('pk_layer_versions'))
    )
    op.execute(PLATFORM_SQL)
    op.execute(MASK_FUNCTION_SQL)


def downgrade() -> None:
    op.drop_table("layer_versions")
    op.drop_table("audit_log")
    op.execute(PLATFORM_DOWN_SQL)
