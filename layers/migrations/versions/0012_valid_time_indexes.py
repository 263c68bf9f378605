"""Indexes on the legal valid time of the history layers: the tile cache asks twice a second for the
last boundary that has passed (a scheduled version coming into force changes what tiles show).

Revision ID: 0012
Revises: 0011
"""

from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None

INDEXES = (("cadastre_parcels", "valid_from"), ("cadastre_parcels", "valid_to"),
           ("emergency_incident_areas", "valid_from"), ("emergency_incident_areas", "valid_to"))


def upgrade() -> None:
    for table, column in INDEXES:
        op.create_index(f"ix_{table}_{column}", table, [column])


def downgrade() -> None:
    for table, column in INDEXES:
        op.drop_index(f"ix_{table}_{column}", table_name=table)
