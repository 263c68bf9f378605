"""cadastre family tables: parcel versions (bitemporal), registrations, lineage.

Frozen: explicit operations written from the models as they were when this revision was made (it
imports no model, so it keeps meaning what it meant). Geometry columns take the storage SRID, a
setting fixed when the database is created. Later changes go in new revisions.

Revision ID: 0002
Revises: 0001
"""

import sqlalchemy as sa
from alembic import op
from geoalchemy2 import Geometry
from sqlalchemy.dialects import postgresql

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

# every write to a layer table bumps its row in layer_versions (tile caches key on it)
VERSION_TRIGGER = (
    "CREATE TRIGGER {table}_bump_version AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON {table} "
    "FOR EACH STATEMENT EXECUTE FUNCTION govgis_bump_layer_version()"
)

TABLES = ("cadastre_parcels", "cadastre_registrations", "cadastre_lineage")


def _storage_srid() -> int:
    """The storage SRID of this database (a setting fixed when it was created)."""
    from gis.settings import get_settings

    return get_settings().storage_srid


def upgrade() -> None:
    srid = _storage_srid()
    op.create_table('cadastre_parcels',
    sa.Column('id', sa.BigInteger(), sa.Identity(always=False), nullable=False),
    sa.Column('version', sa.Integer(), server_default='1', nullable=False, comment='行版本 row version'),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.Column('parcel_code', sa.String(length=19), nullable=False, comment='宗地代码'),
    sa.Column('unit_code', sa.String(length=28), nullable=False, comment='不动产单元代码'),
    sa.Column('right_holder', sa.Text(), nullable=False, comment='权利人'),
    sa.Column('holder_kind', sa.Text(), server_default='organisation', nullable=False, comment='权利人类型 person/organisation'),
    sa.Column('holder_id_number', sa.Text(), nullable=True, comment='证件号码'),
    sa.Column('holder_phone', sa.Text(), nullable=True, comment='联系电话'),
    sa.Column('right_type', sa.Text(), nullable=False, comment='权利类型'),
    sa.Column('landuse_system', sa.Text(), server_default='GB/T 21010-2017', nullable=False, comment='用途分类体系'),
    sa.Column('landuse_code', sa.String(length=6), nullable=False, comment='土地用途代码'),
    sa.Column('address', sa.Text(), nullable=True, comment='坐落'),
    sa.Column('district', sa.String(length=6), nullable=False, comment='行政区代码'),
    sa.Column('registered_area', sa.Numeric(precision=14, scale=2), nullable=True, comment='登记面积 m²'),
    sa.Column('plane_area', sa.Float(), sa.Computed('ST_Area(geom)', persisted=True), nullable=True, comment='计算平面面积 m²'),
    sa.Column('status', sa.Text(), server_default='registered', nullable=False, comment='状态'),
    sa.Column('valid_from', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False, comment='法定生效时间'),
    sa.Column('valid_to', sa.DateTime(timezone=True), nullable=True, comment='法定失效时间'),
    sa.Column('recorded_from', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False, comment='登簿时间'),
    sa.Column('recorded_to', sa.DateTime(timezone=True), nullable=True, comment='登簿更正/注销时间'),
    sa.Column('geom', Geometry(spatial_index=False, geometry_type='MULTIPOLYGON', srid=srid, dimension=2, from_text='ST_GeomFromEWKT', name='geometry', nullable=False), nullable=False),
    sa.CheckConstraint("holder_kind IN ('person','organisation')", name=op.f('ck_cadastre_parcels_holder_kind_known')),
    sa.CheckConstraint("parcel_code ~ '^[0-9]{12}[GJZ][ABCDEFGHSWXY][0-9]{5}$'", name=op.f('ck_cadastre_parcels_parcel_code_format')),
    sa.CheckConstraint("status IN ('registered','pending','retired')", name=op.f('ck_cadastre_parcels_status_known')),
    sa.CheckConstraint("substr(unit_code, 20, 1) <> 'W' OR right(unit_code, 8) = '00000000'", name=op.f('ck_cadastre_parcels_no_attachment_zero')),
    sa.CheckConstraint("unit_code ~ '^[0-9]{12}[GJZ][ABCDEFGHSWXY][0-9]{5}[FLQW][0-9]{8}$'", name=op.f('ck_cadastre_parcels_unit_code_format')),
    sa.CheckConstraint('ST_IsValid(geom) AND NOT ST_IsEmpty(geom)', name=op.f('ck_cadastre_parcels_geom_valid')),
    sa.CheckConstraint('left(unit_code, 19) = parcel_code', name=op.f('ck_cadastre_parcels_unit_in_parcel')),
    sa.CheckConstraint('recorded_to IS NULL OR recorded_to >= recorded_from', name=op.f('ck_cadastre_parcels_record_period')),
    sa.CheckConstraint('registered_area IS NULL OR registered_area > 0', name=op.f('ck_cadastre_parcels_area_positive')),
    sa.CheckConstraint('valid_to IS NULL OR valid_to >= valid_from', name=op.f('ck_cadastre_parcels_valid_period')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_cadastre_parcels'))
    )
    op.create_index('idx_cadastre_parcels_geom', 'cadastre_parcels', ['geom'], unique=False, postgresql_using='gist')
    op.create_index('ix_cadastre_parcels_code', 'cadastre_parcels', ['parcel_code'], unique=False)
    op.create_index('ix_cadastre_parcels_holder', 'cadastre_parcels', ['right_holder'], unique=False)
    op.create_index('uq_cadastre_parcels_current', 'cadastre_parcels', ['parcel_code'], unique=True, postgresql_where=sa.text('valid_to IS NULL AND recorded_to IS NULL'))
    op.create_table('cadastre_registrations',
    sa.Column('id', sa.BigInteger(), sa.Identity(always=False), nullable=False),
    sa.Column('kind', sa.Text(), nullable=False, comment='登记类型'),
    sa.Column('parcel_codes', sa.ARRAY(sa.String(length=19)), nullable=False, comment='涉及宗地'),
    sa.Column('effective_at', sa.DateTime(timezone=True), nullable=False, comment='生效时间'),
    sa.Column('recorded_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.Column('actor', sa.Text(), nullable=False),
    sa.Column('certificate_no', sa.Text(), nullable=True, comment='不动产权证书号'),
    sa.Column('note', sa.Text(), nullable=True),
    sa.Column('detail', postgresql.JSONB(astext_type=sa.Text()), nullable=True),
    sa.CheckConstraint("kind IN ('initial','change','transfer','split','merge','boundary_adjustment','cancellation')", name=op.f('ck_cadastre_registrations_kind_known')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_cadastre_registrations'))
    )
    op.create_table('cadastre_lineage',
    sa.Column('id', sa.BigInteger(), sa.Identity(always=False), nullable=False),
    sa.Column('parent_code', sa.String(length=19), nullable=False),
    sa.Column('child_code', sa.String(length=19), nullable=False),
    sa.Column('kind', sa.Text(), nullable=False),
    sa.Column('registration_id', sa.BigInteger(), nullable=False),
    sa.CheckConstraint("kind IN ('split','merge','boundary_adjustment')", name=op.f('ck_cadastre_lineage_kind_known')),
    sa.CheckConstraint("parent_code <> child_code OR kind = 'boundary_adjustment'", name=op.f('ck_cadastre_lineage_not_self')),
    sa.ForeignKeyConstraint(['registration_id'], ['cadastre_registrations.id'], name=op.f('fk_cadastre_lineage_registration_id_cadastre_registrations')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_cadastre_lineage'))
    )
    op.create_index('ix_cadastre_lineage_child', 'cadastre_lineage', ['child_code'], unique=False)
    op.create_index('ix_cadastre_lineage_parent', 'cadastre_lineage', ['parent_code'], unique=False)
    for table in TABLES:
        op.execute(VERSION_TRIGGER.format(table=table))


def downgrade() -> None:
    for table in reversed(TABLES):
        op.drop_table(table)
