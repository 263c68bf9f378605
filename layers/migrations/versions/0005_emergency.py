"""emergency family tables.

Revision ID: 0005
Revises: 0004
"""

from alembic import op

from gis.schema import create_family, drop_family
from layers.emergency.models import TABLES

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    create_family(op.get_bind(), TABLES)


def downgrade() -> None:
    drop_family(op.get_bind(), TABLES)
