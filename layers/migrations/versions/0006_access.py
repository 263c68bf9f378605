"""department API keys and the access log.

Revision ID: 0006
Revises: 0005
"""

from alembic import op

from gis.keys import TABLES
from gis.schema import METADATA

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    METADATA.create_all(op.get_bind(), tables=list(TABLES))


def downgrade() -> None:
    METADATA.drop_all(op.get_bind(), tables=list(reversed(TABLES)))
