"""Platform tables: audit log (append-only), layer versions, masking function.

Revision ID: 0001
"""

import sqlalchemy as sa
from alembic import op

from gis.access import MASK_FUNCTION_SQL
from gis.schema import PLATFORM_DOWN_SQL, PLATFORM_SQL, audit_log, layer_versions

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    bind = op.get_bind()
    audit_log.create(bind)
    layer_versions.create(bind)
    bind.execute(sa.text(PLATFORM_SQL))
    bind.execute(sa.text(MASK_FUNCTION_SQL))


def downgrade() -> None:
    bind = op.get_bind()
    layer_versions.drop(bind)
    audit_log.drop(bind)
    bind.execute(sa.text(PLATFORM_DOWN_SQL))
