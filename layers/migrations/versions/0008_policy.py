"""Access policy: who wrote (audit key id), who asked (anonymous and refused requests in the access
log, by client address), and which department owns a stored pre-review report or isolation.

Revision ID: 0008
Revises: 0007
"""

from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None

# IF NOT EXISTS: a database created before the platform migrations were frozen may have some already
UPGRADE = """
ALTER TABLE audit_log ADD COLUMN IF NOT EXISTS key_id bigint;
COMMENT ON COLUMN audit_log.key_id IS 'the API key that made the change (NULL: system/CLI)';
ALTER TABLE access_log ALTER COLUMN key_id DROP NOT NULL;
COMMENT ON COLUMN access_log.key_id IS 'NULL: anonymous or a refused key';
ALTER TABLE access_log ADD COLUMN IF NOT EXISTS client_addr text;
COMMENT ON COLUMN access_log.client_addr IS 'the client''s address (anonymous and refused requests)';
CREATE INDEX IF NOT EXISTS ix_access_log_client_addr_at ON access_log (client_addr, at);
ALTER TABLE landuse_prereview_reports ADD COLUMN IF NOT EXISTS department text NOT NULL DEFAULT 'govgis';
COMMENT ON COLUMN landuse_prereview_reports.department IS '所属部门';
ALTER TABLE pipeline_isolations ADD COLUMN IF NOT EXISTS department text NOT NULL DEFAULT 'govgis';
COMMENT ON COLUMN pipeline_isolations.department IS '所属部门';
"""

DOWNGRADE = """
ALTER TABLE pipeline_isolations DROP COLUMN department;
ALTER TABLE landuse_prereview_reports DROP COLUMN department;
DROP INDEX ix_access_log_client_addr_at;
ALTER TABLE access_log DROP COLUMN client_addr;
DELETE FROM access_log WHERE key_id IS NULL;
ALTER TABLE access_log ALTER COLUMN key_id SET NOT NULL;
ALTER TABLE audit_log DROP COLUMN key_id;
"""


def upgrade() -> None:
    op.execute(UPGRADE)


def downgrade() -> None:
    op.execute(DOWNGRADE)
