"""cadastre family tables.

Revision ID: 0002
Revises: 0001
"""

from alembic import op

from gis.schema import create_family, drop_family
from layers.cadastre.models import TABLES

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    create_family(op.get_bind(), TABLES)


def downgrade() -> None:
    drop_family(op.get_bind(), TABLES)
