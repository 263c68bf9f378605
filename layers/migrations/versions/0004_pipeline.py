"""pipeline family tables.

Revision ID: 0004
Revises: 0003
"""

from alembic import op

from gis.schema import create_family, drop_family
from layers.pipeline.models import TABLES

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    create_family(op.get_bind(), TABLES)


def downgrade() -> None:
    drop_family(op.get_bind(), TABLES)
