"""department API keys and the access log.

Frozen: explicit operations written from the models as they were when this revision was made (it
imports no model, so it keeps meaning what it meant). Later changes go in new revisions.

Revision ID: 0006
Revises: 0005
"""

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

TABLES = ("api_keys", "access_log")


def upgrade() -> None:
    op.create_table('api_keys',
    sa.Column('id', sa.BigInteger(), sa.Identity(always=False), nullable=False),
    sa.Column('prefix', sa.String(length=12), nullable=False, comment='shown in listings'),
    sa.Column('salt', sa.String(length=32), nullable=False),
    sa.Column('key_hash', sa.String(length=64), nullable=False, comment='sha256(salt || key), hex'),
    sa.Column('name', sa.Text(), nullable=False),
    sa.Column('department', sa.Text(), nullable=False, comment='部门'),
    sa.Column('read_scopes', sa.ARRAY(sa.Text()), server_default='{}', nullable=False),
    sa.Column('write_scopes', sa.ARRAY(sa.Text()), server_default='{}', nullable=False),
    sa.Column('personal_data', sa.Boolean(), server_default=sa.text('false'), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.Column('revoked_at', sa.DateTime(timezone=True), nullable=True),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_api_keys')),
    sa.UniqueConstraint('prefix', name=op.f('uq_api_keys_prefix'))
    )
    op.create_table('access_log',
    sa.Column('id', sa.BigInteger(), sa.Identity(always=False), nullable=False),
    sa.Column('at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.Column('key_id', sa.BigInteger(), nullable=False),
    sa.Column('method', sa.String(length=8), nullable=False),
    sa.Column('route', sa.Text(), nullable=False),
    sa.Column('layer', sa.Text(), nullable=True),
    sa.Column('status', sa.SmallInteger(), nullable=False),
    sa.ForeignKeyConstraint(['key_id'], ['api_keys.id'], name=op.f('fk_access_log_key_id_api_keys')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_access_log'))
    )
    op.create_index('ix_access_log_key_at', 'access_log', ['key_id', 'at'], unique=False)


def downgrade() -> None:
    for table in reversed(TABLES):
        op.drop_table(table)
