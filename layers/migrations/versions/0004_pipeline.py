"""pipeline family tables: networks, nodes, pipes, customers, repairs, isolations, repair orders.

Frozen: explicit operations written from the models as they were when this revision was made (it
imports no model, so it keeps meaning what it meant). Geometry columns take the storage SRID, a
setting fixed when the database is created. Later changes go in new revisions.

Revision ID: 0004
Revises: 0003
"""

import sqlalchemy as sa
from alembic import op
from geoalchemy2 import Geometry
from sqlalchemy.dialects import postgresql

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

# every write to a layer table bumps its row in layer_versions (tile caches key on it)
VERSION_TRIGGER = (
    "CREATE TRIGGER {table}_bump_version AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON {table} "
    "FOR EACH STATEMENT EXECUTE FUNCTION govgis_bump_layer_version()"
)

TABLES = ("pipeline_networks", "pipeline_nodes", "pipeline_customers", "pipeline_pipes", "pipeline_isolations", "pipeline_repairs", "pipeline_repair_orders", "pipeline_order_events")


def _storage_srid() -> int:
    """The storage SRID of this database (a setting fixed when it was created)."""
    from gis.settings import get_settings

    return get_settings().storage_srid


def upgrade() -> None:
    srid = _storage_srid()
    op.create_table('pipeline_networks',
    sa.Column('id', sa.Integer(), sa.Identity(always=False), nullable=False),
    sa.Column('utility', sa.Text(), nullable=False, comment='管线类别'),
    sa.Column('name', sa.Text(), nullable=False),
    sa.Column('operator', sa.Text(), nullable=True, comment='权属单位'),
    sa.Column('snap_tolerance_m', sa.Float(), server_default='0.05', nullable=False),
    sa.CheckConstraint("utility IN ('water','drainage','storm','sewer','gas','heat','power','telecom','industrial')", name=op.f('ck_pipeline_networks_utility_known')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_pipeline_networks')),
    sa.UniqueConstraint('name', name=op.f('uq_pipeline_networks_name'))
    )
    op.create_table('pipeline_nodes',
    sa.Column('id', sa.BigInteger(), sa.Identity(always=False), nullable=False),
    sa.Column('version', sa.Integer(), server_default='1', nullable=False, comment='行版本 row version'),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.Column('network_id', sa.Integer(), nullable=False),
    sa.Column('code', sa.Text(), nullable=False, comment='编号'),
    sa.Column('kind', sa.Text(), nullable=False, comment='节点类型'),
    sa.Column('valve_state', sa.Text(), nullable=True, comment='阀门状态 open/closed/inoperable'),
    sa.Column('control_type', sa.Text(), nullable=True, comment='控制阀类型 PRV/PSV/FCV/TCV/check'),
    sa.Column('diameter_mm', sa.Integer(), nullable=True, comment='口径 mm'),
    sa.Column('last_exercised', sa.Date(), nullable=True, comment='最近启闭检查'),
    sa.Column('access_note', sa.Text(), nullable=True, comment='位置说明'),
    sa.Column('ground_elevation_m', sa.Float(), nullable=True, comment='地面高程 m'),
    sa.Column('install_year', sa.SmallInteger(), nullable=True),
    sa.Column('geom', Geometry(spatial_index=False, geometry_type='POINT', srid=srid, dimension=2, from_text='ST_GeomFromEWKT', name='geometry', nullable=False), nullable=False),
    sa.CheckConstraint("(kind = 'isolation_valve') = (valve_state IS NOT NULL)", name=op.f('ck_pipeline_nodes_valve_state_iff_valve')),
    sa.CheckConstraint("kind IN ('junction','isolation_valve','control_valve','hydrant','tee','meter','source','tank','pump','end')", name=op.f('ck_pipeline_nodes_kind_known')),
    sa.CheckConstraint("valve_state IS NULL OR valve_state IN ('open','closed','inoperable')", name=op.f('ck_pipeline_nodes_valve_state_known')),
    sa.ForeignKeyConstraint(['network_id'], ['pipeline_networks.id'], name=op.f('fk_pipeline_nodes_network_id_pipeline_networks'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_pipeline_nodes')),
    sa.UniqueConstraint('network_id', 'code', name=op.f('uq_pipeline_nodes_network_id_code'))
    )
    op.create_index('idx_pipeline_nodes_geom', 'pipeline_nodes', ['geom'], unique=False, postgresql_using='gist')
    op.create_index('ix_pipeline_nodes_network_kind', 'pipeline_nodes', ['network_id', 'kind'], unique=False)
    op.create_table('pipeline_customers',
    sa.Column('id', sa.BigInteger(), sa.Identity(always=False), nullable=False),
    sa.Column('version', sa.Integer(), server_default='1', nullable=False, comment='行版本 row version'),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.Column('network_id', sa.Integer(), nullable=False),
    sa.Column('account_no', sa.Text(), nullable=False, comment='用户编号'),
    sa.Column('name', sa.Text(), nullable=False, comment='用户名称'),
    sa.Column('category', sa.Text(), server_default='residential', nullable=False, comment='用户类别'),
    sa.Column('node_id', sa.BigInteger(), nullable=True, comment='接入点'),
    sa.Column('address', sa.Text(), nullable=True, comment='地址'),
    sa.Column('contact_name', sa.Text(), nullable=True, comment='联系人'),
    sa.Column('contact_phone', sa.Text(), nullable=True, comment='联系电话'),
    sa.Column('households', sa.Integer(), server_default='1', nullable=False, comment='户数'),
    sa.Column('parcel_code', sa.String(length=19), nullable=True, comment='所在宗地'),
    sa.Column('geom', Geometry(spatial_index=False, geometry_type='POINT', srid=srid, dimension=2, from_text='ST_GeomFromEWKT', name='geometry', nullable=False), nullable=False),
    sa.CheckConstraint("category IN ('residential','commercial','industrial','hospital','school','government','fire','other')", name=op.f('ck_pipeline_customers_category_known')),
    sa.ForeignKeyConstraint(['network_id'], ['pipeline_networks.id'], name=op.f('fk_pipeline_customers_network_id_pipeline_networks'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['node_id'], ['pipeline_nodes.id'], name=op.f('fk_pipeline_customers_node_id_pipeline_nodes')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_pipeline_customers')),
    sa.UniqueConstraint('network_id', 'account_no', name=op.f('uq_pipeline_customers_network_id_account_no'))
    )
    op.create_index('idx_pipeline_customers_geom', 'pipeline_customers', ['geom'], unique=False, postgresql_using='gist')
    op.create_index('ix_pipeline_customers_node', 'pipeline_customers', ['node_id'], unique=False)
    op.create_table('pipeline_pipes',
    sa.Column('id', sa.BigInteger(), sa.Identity(always=False), nullable=False),
    sa.Column('version', sa.Integer(), server_default='1', nullable=False, comment='行版本 row version'),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.Column('network_id', sa.Integer(), nullable=False),
    sa.Column('code', sa.Text(), nullable=False, comment='编号'),
    sa.Column('from_node', sa.BigInteger(), nullable=True, comment='起点'),
    sa.Column('to_node', sa.BigInteger(), nullable=True, comment='终点'),
    sa.Column('material', sa.Text(), nullable=True, comment='材质'),
    sa.Column('diameter_mm', sa.Integer(), nullable=True, comment='管径 mm'),
    sa.Column('install_year', sa.SmallInteger(), nullable=True, comment='敷设年代'),
    sa.Column('burial_depth_m', sa.Float(), nullable=True, comment='埋深 m (管顶)'),
    sa.Column('pressure_class', sa.Text(), nullable=True, comment='压力级别'),
    sa.Column('status', sa.Text(), server_default='in_service', nullable=False),
    sa.Column('length_m', sa.Float(), sa.Computed('ST_Length(geom)', persisted=True), nullable=True, comment='长度 m'),
    sa.Column('geom', Geometry(spatial_index=False, geometry_type='LINESTRING', srid=srid, dimension=2, from_text='ST_GeomFromEWKT', name='geometry', nullable=False), nullable=False),
    sa.CheckConstraint("status IN ('in_service','abandoned','planned')", name=op.f('ck_pipeline_pipes_status_known')),
    sa.CheckConstraint('ST_IsValid(geom) AND NOT ST_IsEmpty(geom)', name=op.f('ck_pipeline_pipes_geom_valid')),
    sa.CheckConstraint('burial_depth_m IS NULL OR burial_depth_m >= 0', name=op.f('ck_pipeline_pipes_depth_positive')),
    sa.CheckConstraint('diameter_mm IS NULL OR diameter_mm > 0', name=op.f('ck_pipeline_pipes_diameter_positive')),
    sa.ForeignKeyConstraint(['from_node'], ['pipeline_nodes.id'], name=op.f('fk_pipeline_pipes_from_node_pipeline_nodes')),
    sa.ForeignKeyConstraint(['network_id'], ['pipeline_networks.id'], name=op.f('fk_pipeline_pipes_network_id_pipeline_networks'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['to_node'], ['pipeline_nodes.id'], name=op.f('fk_pipeline_pipes_to_node_pipeline_nodes')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_pipeline_pipes')),
    sa.UniqueConstraint('network_id', 'code', name=op.f('uq_pipeline_pipes_network_id_code'))
    )
    op.create_index('idx_pipeline_pipes_geom', 'pipeline_pipes', ['geom'], unique=False, postgresql_using='gist')
    op.create_index('ix_pipeline_pipes_from', 'pipeline_pipes', ['from_node'], unique=False)
    op.create_index('ix_pipeline_pipes_network', 'pipeline_pipes', ['network_id'], unique=False)
    op.create_index('ix_pipeline_pipes_to', 'pipeline_pipes', ['to_node'], unique=False)
    op.create_table('pipeline_isolations',
    sa.Column('id', sa.BigInteger(), sa.Identity(always=False), nullable=False),
    sa.Column('network_id', sa.Integer(), nullable=False),
    sa.Column('pipe_id', sa.BigInteger(), nullable=True, comment='爆管管段'),
    sa.Column('parent_id', sa.BigInteger(), nullable=True, comment='上一版本'),
    sa.Column('failed_valves', postgresql.JSONB(astext_type=sa.Text()), server_default='[]', nullable=False, comment='无法关闭的阀门'),
    sa.Column('snap_distance_m', sa.Float(), nullable=True),
    sa.Column('summary', postgresql.JSONB(astext_type=sa.Text()), nullable=False, comment='valves, pipes, customers (ids) and counts'),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.Column('created_by', sa.Text(), nullable=False),
    sa.Column('burst_geom', Geometry(spatial_index=False, geometry_type='POINT', srid=srid, dimension=2, from_text='ST_GeomFromEWKT', name='geometry'), nullable=True, comment='爆管位置'),
    sa.ForeignKeyConstraint(['network_id'], ['pipeline_networks.id'], name=op.f('fk_pipeline_isolations_network_id_pipeline_networks'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['parent_id'], ['pipeline_isolations.id'], name=op.f('fk_pipeline_isolations_parent_id_pipeline_isolations')),
    sa.ForeignKeyConstraint(['pipe_id'], ['pipeline_pipes.id'], name=op.f('fk_pipeline_isolations_pipe_id_pipeline_pipes'), ondelete='SET NULL'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_pipeline_isolations'))
    )
    op.create_index('idx_pipeline_isolations_burst_geom', 'pipeline_isolations', ['burst_geom'], unique=False, postgresql_using='gist')
    op.create_index('ix_pipeline_isolations_network', 'pipeline_isolations', ['network_id'], unique=False)
    op.create_table('pipeline_repairs',
    sa.Column('id', sa.BigInteger(), sa.Identity(always=False), nullable=False),
    sa.Column('pipe_id', sa.BigInteger(), nullable=False),
    sa.Column('repaired_on', sa.Date(), nullable=False),
    sa.Column('kind', sa.Text(), nullable=False, comment='burst/leak/corrosion/replacement/other'),
    sa.Column('description', sa.Text(), nullable=True),
    sa.Column('crew', sa.Text(), nullable=True),
    sa.Column('cost_yuan', sa.Numeric(precision=12, scale=2), nullable=True),
    sa.CheckConstraint("kind IN ('burst','leak','corrosion','replacement','other')", name=op.f('ck_pipeline_repairs_kind_known')),
    sa.ForeignKeyConstraint(['pipe_id'], ['pipeline_pipes.id'], name=op.f('fk_pipeline_repairs_pipe_id_pipeline_pipes'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_pipeline_repairs'))
    )
    op.create_index('ix_pipeline_repairs_pipe', 'pipeline_repairs', ['pipe_id'], unique=False)
    op.create_table('pipeline_repair_orders',
    sa.Column('id', sa.BigInteger(), sa.Identity(always=False), nullable=False),
    sa.Column('code', sa.Text(), nullable=False, comment='抢修单号'),
    sa.Column('isolation_id', sa.BigInteger(), nullable=False),
    sa.Column('network_id', sa.Integer(), nullable=False),
    sa.Column('status', sa.Text(), server_default='planned', nullable=False),
    sa.Column('incident_at', sa.DateTime(timezone=True), nullable=False, comment='事故时间'),
    sa.Column('place', sa.Text(), nullable=True, comment='事故地点'),
    sa.Column('planned_restore_at', sa.DateTime(timezone=True), nullable=False, comment='计划恢复供应时间'),
    sa.Column('valve_ids', postgresql.JSONB(astext_type=sa.Text()), nullable=False, comment='需关闭阀门'),
    sa.Column('notice_text', sa.Text(), nullable=False, comment='停水/停气通知'),
    sa.Column('checklist', postgresql.JSONB(astext_type=sa.Text()), nullable=False, comment='抢修检查清单'),
    sa.Column('version', sa.Integer(), server_default='1', nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.CheckConstraint("status IN ('planned','valves_closed','repaired','restored','cancelled')", name=op.f('ck_pipeline_repair_orders_status_known')),
    sa.ForeignKeyConstraint(['isolation_id'], ['pipeline_isolations.id'], name=op.f('fk_pipeline_repair_orders_isolation_id_pipeline_isolations')),
    sa.ForeignKeyConstraint(['network_id'], ['pipeline_networks.id'], name=op.f('fk_pipeline_repair_orders_network_id_pipeline_networks'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_pipeline_repair_orders')),
    sa.UniqueConstraint('code', name=op.f('uq_pipeline_repair_orders_code'))
    )
    op.create_table('pipeline_order_events',
    sa.Column('id', sa.BigInteger(), sa.Identity(always=False), nullable=False),
    sa.Column('order_id', sa.BigInteger(), nullable=False),
    sa.Column('at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.Column('from_status', sa.Text(), nullable=True),
    sa.Column('to_status', sa.Text(), nullable=False),
    sa.Column('actor', sa.Text(), nullable=False),
    sa.Column('note', sa.Text(), nullable=True),
    sa.ForeignKeyConstraint(['order_id'], ['pipeline_repair_orders.id'], name=op.f('fk_pipeline_order_events_order_id_pipeline_repair_orders'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_pipeline_order_events'))
    )
    op.create_index('ix_pipeline_order_events_order', 'pipeline_order_events', ['order_id'], unique=False)
    for table in TABLES:
        op.execute(VERSION_TRIGGER.format(table=table))


def downgrade() -> None:
    for table in reversed(TABLES):
        op.drop_table(table)
