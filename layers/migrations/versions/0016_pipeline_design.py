"""Design workspaces of the pipeline network (管网辅助设计): an area checked out for a design, and the
pipes and nodes copied into it with the version each had at checkout (frozen DDL).

Revision ID: 0016
Revises: 0012
"""

import sqlalchemy as sa
from alembic import op
from geoalchemy2 import Geometry
from sqlalchemy.dialects import postgresql

revision = "0016"
down_revision = "0012"
branch_labels = None
depends_on = None


def _storage_srid() -> int:
    """The storage SRID of this database (a setting fixed when it was created)."""
    from gis.settings import get_settings

    return get_settings().storage_srid


def upgrade() -> None:
    srid = _storage_srid()
    op.create_table('pipeline_design_workspaces',
    sa.Column('id', sa.BigInteger(), sa.Identity(always=False), nullable=False),
    sa.Column('version', sa.Integer(), server_default='1', nullable=False, comment='行版本 row version'),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.Column('network_id', sa.Integer(), nullable=False),
    sa.Column('name', sa.Text(), nullable=False, comment='设计名称'),
    sa.Column('margin_m', sa.Float(), server_default='0', nullable=False, comment='外扩距离 m'),
    sa.Column('status', sa.Text(), server_default='open', nullable=False, comment='open/merged/abandoned'),
    sa.Column('created_by', sa.Text(), nullable=False),
    sa.Column('department', sa.Text(), server_default='govgis', nullable=False, comment='所属部门'),
    sa.Column('closed_at', sa.DateTime(timezone=True), nullable=True, comment='合并或放弃时间'),
    sa.Column('summary', postgresql.JSONB(astext_type=sa.Text()), nullable=True, comment='what the paste back wrote'),
    sa.Column('area', Geometry(spatial_index=False, geometry_type='POLYGON', srid=srid, dimension=2, from_text='ST_GeomFromEWKT', name='geometry'), nullable=False, comment='设计范围'),
    sa.CheckConstraint("status IN ('open','merged','abandoned')", name=op.f('ck_pipeline_design_workspaces_status_known')),
    sa.CheckConstraint('margin_m >= 0', name=op.f('ck_pipeline_design_workspaces_margin_positive')),
    sa.ForeignKeyConstraint(['network_id'], ['pipeline_networks.id'], name=op.f('fk_pipeline_design_workspaces_network_id_pipeline_networks'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_pipeline_design_workspaces'))
    )
    op.create_index('idx_pipeline_design_workspaces_area', 'pipeline_design_workspaces', ['area'], unique=False, postgresql_using='gist')
    op.create_index('ix_pipeline_design_workspaces_network', 'pipeline_design_workspaces', ['network_id'], unique=False)
    op.create_table('pipeline_design_features',
    sa.Column('id', sa.BigInteger(), sa.Identity(always=False), nullable=False),
    sa.Column('version', sa.Integer(), server_default='1', nullable=False, comment='行版本 row version'),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.Column('workspace_id', sa.BigInteger(), nullable=False),
    sa.Column('kind', sa.Text(), nullable=False, comment='pipe/node'),
    sa.Column('source_id', sa.BigInteger(), nullable=True, comment='原要素 id (新增为空)'),
    sa.Column('base_version', sa.Integer(), nullable=True, comment='签出时版本'),
    sa.Column('base', postgresql.JSONB(astext_type=sa.Text()), nullable=True, comment='签出时属性与几何'),
    sa.Column('properties', postgresql.JSONB(astext_type=sa.Text()), server_default='{}', nullable=False, comment='设计属性'),
    sa.Column('action', sa.Text(), server_default='keep', nullable=False, comment='keep/insert/update/delete'),
    sa.Column('resolution', sa.Text(), nullable=True, comment='冲突处理 mine/theirs'),
    sa.Column('geom', Geometry(spatial_index=False, geometry_type='GEOMETRY', srid=srid, dimension=2, from_text='ST_GeomFromEWKT', name='geometry'), nullable=False, comment='设计几何'),
    sa.CheckConstraint("kind IN ('pipe','node')", name=op.f('ck_pipeline_design_features_kind_known')),
    sa.CheckConstraint("action IN ('keep','insert','update','delete')", name=op.f('ck_pipeline_design_features_action_known')),
    sa.CheckConstraint("resolution IS NULL OR resolution IN ('mine','theirs')", name=op.f('ck_pipeline_design_features_resolution_known')),
    sa.CheckConstraint("(action = 'insert') = (source_id IS NULL)", name=op.f('ck_pipeline_design_features_insert_iff_new')),
    sa.ForeignKeyConstraint(['workspace_id'], ['pipeline_design_workspaces.id'], name=op.f('fk_pipeline_design_features_workspace_id_pipeline_design_workspaces'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_pipeline_design_features')),
    sa.UniqueConstraint('workspace_id', 'kind', 'source_id', name=op.f('uq_pipeline_design_features_workspace_id_kind_source_id'))
    )
    op.create_index('idx_pipeline_design_features_geom', 'pipeline_design_features', ['geom'], unique=False, postgresql_using='gist')
    op.create_index('ix_pipeline_design_features_workspace', 'pipeline_design_features', ['workspace_id'], unique=False)


def downgrade() -> None:
    op.drop_table('pipeline_design_features')
    op.drop_table('pipeline_design_workspaces')
