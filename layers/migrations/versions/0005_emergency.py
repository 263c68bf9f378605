"""emergency family tables: resources, warehouses and stock, shelters, incidents, roads.

Frozen: explicit operations written from the models as they were when this revision was made (it
imports no model, so it keeps meaning what it meant). Geometry columns take the storage SRID, a
setting fixed when the database is created. Later changes go in new revisions.

Revision ID: 0005
Revises: 0004
"""

import sqlalchemy as sa
from alembic import op
from geoalchemy2 import Geometry

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

# every write to a layer table bumps its row in layer_versions (tile caches key on it)
VERSION_TRIGGER = (
    "CREATE TRIGGER {table}_bump_version AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON {table} "
    "FOR EACH STATEMENT EXECUTE FUNCTION govgis_bump_layer_version()"
)

TABLES = ("emergency_incidents", "emergency_resources", "emergency_roads", "emergency_shelters", "emergency_warehouses", "emergency_resource_status", "emergency_stock")


def _storage_srid() -> int:
    """The storage SRID of this database (a setting fixed when it was created)."""
    from gis.settings import get_settings

    return get_settings().storage_srid


def upgrade() -> None:
    srid = _storage_srid()
    op.create_table('emergency_incidents',
    sa.Column('id', sa.BigInteger(), sa.Identity(always=False), nullable=False),
    sa.Column('version', sa.Integer(), server_default='1', nullable=False, comment='行版本 row version'),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.Column('code', sa.Text(), nullable=False),
    sa.Column('source_line', sa.Text(), nullable=False, comment='来源 110/119/120/122/市政'),
    sa.Column('incident_type', sa.Text(), nullable=False, comment='事件类型'),
    sa.Column('level', sa.SmallInteger(), server_default='4', nullable=False, comment='等级 I–IV'),
    sa.Column('status', sa.Text(), server_default='open', nullable=False),
    sa.Column('reported_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.Column('closed_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('description', sa.Text(), nullable=True),
    sa.Column('reporter_phone', sa.Text(), nullable=True, comment='报警人电话'),
    sa.Column('geom', Geometry(spatial_index=False, geometry_type='POINT', srid=srid, dimension=2, from_text='ST_GeomFromEWKT', name='geometry', nullable=False), nullable=False),
    sa.Column('incident_area', Geometry(spatial_index=False, geometry_type='MULTIPOLYGON', srid=srid, dimension=2, from_text='ST_GeomFromEWKT', name='geometry'), nullable=True, comment='事发范围'),
    sa.Column('impact_area', Geometry(spatial_index=False, geometry_type='MULTIPOLYGON', srid=srid, dimension=2, from_text='ST_GeomFromEWKT', name='geometry'), nullable=True, comment='影响范围'),
    sa.CheckConstraint("source_line IN ('110','119','120','122','municipal')", name=op.f('ck_emergency_incidents_line_known')),
    sa.CheckConstraint("status IN ('open','responding','closed')", name=op.f('ck_emergency_incidents_status_known')),
    sa.CheckConstraint('level BETWEEN 1 AND 4', name=op.f('ck_emergency_incidents_level_range')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_emergency_incidents')),
    sa.UniqueConstraint('code', name=op.f('uq_emergency_incidents_code'))
    )
    op.create_index('idx_emergency_incidents_geom', 'emergency_incidents', ['geom'], unique=False, postgresql_using='gist')
    op.create_index('idx_emergency_incidents_impact_area', 'emergency_incidents', ['impact_area'], unique=False, postgresql_using='gist')
    op.create_index('idx_emergency_incidents_incident_area', 'emergency_incidents', ['incident_area'], unique=False, postgresql_using='gist')
    op.create_table('emergency_resources',
    sa.Column('id', sa.BigInteger(), sa.Identity(always=False), nullable=False),
    sa.Column('version', sa.Integer(), server_default='1', nullable=False, comment='行版本 row version'),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.Column('code', sa.Text(), nullable=False, comment='编号'),
    sa.Column('name', sa.Text(), nullable=False, comment='名称'),
    sa.Column('kind', sa.Text(), nullable=False, comment='类别 team/vehicle/equipment/medical'),
    sa.Column('capability_type', sa.Text(), nullable=False, comment='能力类型 (NIMS-style)'),
    sa.Column('capability_level', sa.SmallInteger(), server_default='1', nullable=False, comment='能力等级 1–4'),
    sa.Column('status', sa.Text(), server_default='available', nullable=False, comment='状态'),
    sa.Column('capacity', sa.Integer(), nullable=True, comment='人数/载量'),
    sa.Column('agency', sa.Text(), nullable=False, comment='所属单位'),
    sa.Column('duty_phone', sa.Text(), nullable=True, comment='值班电话'),
    sa.Column('leader_phone', sa.Text(), nullable=True, comment='负责人电话'),
    sa.Column('geom', Geometry(spatial_index=False, geometry_type='POINT', srid=srid, dimension=2, from_text='ST_GeomFromEWKT', name='geometry', nullable=False), nullable=False),
    sa.CheckConstraint("status IN ('available','assigned','out_of_service')", name=op.f('ck_emergency_resources_status_known')),
    sa.CheckConstraint('capability_level BETWEEN 1 AND 4', name=op.f('ck_emergency_resources_level_range')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_emergency_resources')),
    sa.UniqueConstraint('code', name=op.f('uq_emergency_resources_code'))
    )
    op.create_index('idx_emergency_resources_geom', 'emergency_resources', ['geom'], unique=False, postgresql_using='gist')
    op.create_table('emergency_roads',
    sa.Column('id', sa.BigInteger(), sa.Identity(always=False), nullable=False),
    sa.Column('version', sa.Integer(), server_default='1', nullable=False),
    sa.Column('name', sa.Text(), nullable=True, comment='道路名称'),
    sa.Column('road_class', sa.Text(), nullable=False, comment='等级 arterial/secondary/local'),
    sa.Column('source', sa.BigInteger(), nullable=True, comment='pgRouting 起点'),
    sa.Column('target', sa.BigInteger(), nullable=True, comment='pgRouting 终点'),
    sa.Column('speed_kmh', sa.Float(), nullable=False),
    sa.Column('oneway', sa.Boolean(), server_default=sa.text('false'), nullable=False),
    sa.Column('cost', sa.Float(), nullable=True, comment='正向通行时间 s'),
    sa.Column('reverse_cost', sa.Float(), nullable=True, comment='反向通行时间 s (<0 禁行)'),
    sa.Column('geom', Geometry(spatial_index=False, geometry_type='LINESTRING', srid=srid, dimension=2, from_text='ST_GeomFromEWKT', name='geometry', nullable=False), nullable=False),
    sa.CheckConstraint("road_class IN ('arterial','secondary','local')", name=op.f('ck_emergency_roads_class_known')),
    sa.CheckConstraint('ST_IsValid(geom) AND NOT ST_IsEmpty(geom)', name=op.f('ck_emergency_roads_geom_valid')),
    sa.CheckConstraint('speed_kmh > 0', name=op.f('ck_emergency_roads_speed_positive')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_emergency_roads'))
    )
    op.create_index('idx_emergency_roads_geom', 'emergency_roads', ['geom'], unique=False, postgresql_using='gist')
    op.create_index('ix_emergency_roads_source', 'emergency_roads', ['source'], unique=False)
    op.create_index('ix_emergency_roads_target', 'emergency_roads', ['target'], unique=False)
    op.create_table('emergency_shelters',
    sa.Column('id', sa.BigInteger(), sa.Identity(always=False), nullable=False),
    sa.Column('version', sa.Integer(), server_default='1', nullable=False, comment='行版本 row version'),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.Column('code', sa.Text(), nullable=False),
    sa.Column('name', sa.Text(), nullable=False, comment='避难场所名称'),
    sa.Column('grade', sa.Text(), nullable=False, comment='级别 (GB/T 44013)'),
    sa.Column('shelter_class', sa.Text(), nullable=False, comment='类型 (紧急/短期/长期)'),
    sa.Column('hazards', sa.Text(), nullable=True, comment='适用灾种'),
    sa.Column('capacity_persons', sa.Integer(), nullable=False, comment='容纳人数'),
    sa.Column('effective_area_m2', sa.Float(), nullable=True, comment='有效避难面积'),
    sa.Column('service_radius_m', sa.Float(), nullable=True),
    sa.Column('geom', Geometry(spatial_index=False, geometry_type='MULTIPOLYGON', srid=srid, dimension=2, from_text='ST_GeomFromEWKT', name='geometry', nullable=False), nullable=False),
    sa.CheckConstraint('ST_IsValid(geom) AND NOT ST_IsEmpty(geom)', name=op.f('ck_emergency_shelters_geom_valid')),
    sa.CheckConstraint('capacity_persons >= 0', name=op.f('ck_emergency_shelters_capacity_nonnegative')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_emergency_shelters')),
    sa.UniqueConstraint('code', name=op.f('uq_emergency_shelters_code'))
    )
    op.create_index('idx_emergency_shelters_geom', 'emergency_shelters', ['geom'], unique=False, postgresql_using='gist')
    op.create_table('emergency_warehouses',
    sa.Column('id', sa.BigInteger(), sa.Identity(always=False), nullable=False),
    sa.Column('version', sa.Integer(), server_default='1', nullable=False, comment='行版本 row version'),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.Column('code', sa.Text(), nullable=False),
    sa.Column('name', sa.Text(), nullable=False, comment='储备库名称'),
    sa.Column('agency', sa.Text(), nullable=False),
    sa.Column('address', sa.Text(), nullable=True),
    sa.Column('keeper_phone', sa.Text(), nullable=True, comment='保管员电话'),
    sa.Column('geom', Geometry(spatial_index=False, geometry_type='POINT', srid=srid, dimension=2, from_text='ST_GeomFromEWKT', name='geometry', nullable=False), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_emergency_warehouses')),
    sa.UniqueConstraint('code', name=op.f('uq_emergency_warehouses_code'))
    )
    op.create_index('idx_emergency_warehouses_geom', 'emergency_warehouses', ['geom'], unique=False, postgresql_using='gist')
    op.create_table('emergency_resource_status',
    sa.Column('id', sa.BigInteger(), sa.Identity(always=False), nullable=False),
    sa.Column('resource_id', sa.BigInteger(), nullable=False),
    sa.Column('status', sa.Text(), nullable=False),
    sa.Column('since', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.Column('incident_id', sa.BigInteger(), nullable=True),
    sa.Column('actor', sa.Text(), nullable=True),
    sa.CheckConstraint("status IN ('available','assigned','out_of_service')", name=op.f('ck_emergency_resource_status_status_known')),
    sa.ForeignKeyConstraint(['resource_id'], ['emergency_resources.id'], name=op.f('fk_emergency_resource_status_resource_id_emergency_resources'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_emergency_resource_status'))
    )
    op.create_table('emergency_stock',
    sa.Column('id', sa.BigInteger(), sa.Identity(always=False), nullable=False),
    sa.Column('warehouse_id', sa.BigInteger(), nullable=False),
    sa.Column('supply_code', sa.String(length=7), nullable=False, comment='GB/T 38565 物资代码'),
    sa.Column('name', sa.Text(), nullable=False),
    sa.Column('quantity', sa.Numeric(precision=14, scale=2), nullable=False),
    sa.Column('unit', sa.Text(), nullable=False),
    sa.Column('expires_on', sa.Date(), nullable=True),
    sa.Column('version', sa.Integer(), server_default='1', nullable=False),
    sa.CheckConstraint("supply_code ~ '^[0-9]{7}$'", name=op.f('ck_emergency_stock_code_format')),
    sa.CheckConstraint('quantity >= 0', name=op.f('ck_emergency_stock_quantity_nonnegative')),
    sa.ForeignKeyConstraint(['warehouse_id'], ['emergency_warehouses.id'], name=op.f('fk_emergency_stock_warehouse_id_emergency_warehouses'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_emergency_stock'))
    )
    for table in TABLES:
        op.execute(VERSION_TRIGGER.format(table=table))


def downgrade() -> None:
    for table in reversed(TABLES):
        op.drop_table(table)
