"""landuse family tables.

Revision ID: 0003
Revises: 0002
"""

from alembic import op

from gis.schema import create_family, drop_family
from layers.landuse.models import TABLES

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    create_family(op.get_bind(), TABLES)


def downgrade() -> None:
    drop_family(op.get_bind(), TABLES)
