"""landuse family tables: survey, planning, control lines, prices, change survey, supervision, approvals, pre-reviews.

Frozen: explicit operations written from the models as they were when this revision was made (it
imports no model, so it keeps meaning what it meant). Geometry columns take the storage SRID, a
setting fixed when the database is created. Later changes go in new revisions.

Revision ID: 0003
Revises: 0002
"""

import sqlalchemy as sa
from alembic import op
from geoalchemy2 import Geometry
from sqlalchemy.dialects import postgresql

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

# every write to a layer table bumps its row in layer_versions (tile caches key on it)
VERSION_TRIGGER = (
    "CREATE TRIGGER {table}_bump_version AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON {table} "
    "FOR EACH STATEMENT EXECUTE FUNCTION govgis_bump_layer_version()"
)

TABLES = ("landuse_change_patches", "landuse_control_lines", "landuse_land_approvals", "landuse_planning_zones", "landuse_prereview_reports", "landuse_price_zones", "landuse_supervision_cases", "landuse_survey_patches")


def _storage_srid() -> int:
    """The storage SRID of this database (a setting fixed when it was created)."""
    from gis.settings import get_settings

    return get_settings().storage_srid


def upgrade() -> None:
    srid = _storage_srid()
    op.create_table('landuse_change_patches',
    sa.Column('id', sa.BigInteger(), sa.Identity(always=False), nullable=False),
    sa.Column('version', sa.Integer(), server_default='1', nullable=False, comment='行版本 row version'),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.Column('from_year', sa.SmallInteger(), nullable=False, comment='基期年度'),
    sa.Column('to_year', sa.SmallInteger(), nullable=False, comment='变更年度'),
    sa.Column('class_system', sa.Text(), nullable=False, comment='分类体系'),
    sa.Column('from_code', sa.String(length=6), nullable=False, comment='原地类'),
    sa.Column('to_code', sa.String(length=6), nullable=False, comment='现地类'),
    sa.Column('district', sa.String(length=6), nullable=False),
    sa.Column('ellipsoidal_area', sa.Float(), nullable=False, comment='椭球面积 m²'),
    sa.Column('plane_area', sa.Float(), sa.Computed('ST_Area(geom)', persisted=True), nullable=True, comment='平面面积 m²'),
    sa.Column('geom', Geometry(spatial_index=False, geometry_type='MULTIPOLYGON', srid=srid, dimension=2, from_text='ST_GeomFromEWKT', name='geometry', nullable=False), nullable=False),
    sa.CheckConstraint('ST_IsValid(geom) AND NOT ST_IsEmpty(geom)', name=op.f('ck_landuse_change_patches_geom_valid')),
    sa.CheckConstraint('to_year > from_year', name=op.f('ck_landuse_change_patches_years_ordered')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_landuse_change_patches'))
    )
    op.create_index('idx_landuse_change_patches_geom', 'landuse_change_patches', ['geom'], unique=False, postgresql_using='gist')
    op.create_index('ix_landuse_change_years', 'landuse_change_patches', ['from_year', 'to_year'], unique=False)
    op.create_table('landuse_control_lines',
    sa.Column('id', sa.BigInteger(), sa.Identity(always=False), nullable=False),
    sa.Column('version', sa.Integer(), server_default='1', nullable=False, comment='行版本 row version'),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.Column('kind', sa.Text(), nullable=False, comment='控制线类型'),
    sa.Column('zone_type', sa.Text(), nullable=True, comment='分区 (生态保护红线: core/general)'),
    sa.Column('name', sa.Text(), nullable=False),
    sa.Column('approved_on', sa.Date(), nullable=True, comment='批准日期'),
    sa.Column('approval_no', sa.Text(), nullable=True, comment='批准文号'),
    sa.Column('geom', Geometry(spatial_index=False, geometry_type='MULTIPOLYGON', srid=srid, dimension=2, from_text='ST_GeomFromEWKT', name='geometry', nullable=False), nullable=False),
    sa.CheckConstraint("kind IN ('permanent_basic_farmland','ecological_red_line','urban_development_boundary')", name=op.f('ck_landuse_control_lines_kind_known')),
    sa.CheckConstraint("zone_type IS NULL OR zone_type IN ('core','general')", name=op.f('ck_landuse_control_lines_zone_type_known')),
    sa.CheckConstraint('ST_IsValid(geom) AND NOT ST_IsEmpty(geom)', name=op.f('ck_landuse_control_lines_geom_valid')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_landuse_control_lines'))
    )
    op.create_index('idx_landuse_control_lines_geom', 'landuse_control_lines', ['geom'], unique=False, postgresql_using='gist')
    op.create_table('landuse_land_approvals',
    sa.Column('id', sa.BigInteger(), sa.Identity(always=False), nullable=False),
    sa.Column('version', sa.Integer(), server_default='1', nullable=False, comment='行版本 row version'),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.Column('approval_no', sa.Text(), nullable=False, comment='批准文号'),
    sa.Column('supply_kind', sa.Text(), nullable=False, comment='供地方式 allocation/transfer/lease'),
    sa.Column('project_name', sa.Text(), nullable=False, comment='项目名称'),
    sa.Column('land_user', sa.Text(), nullable=False, comment='用地单位'),
    sa.Column('landuse_code', sa.String(length=6), nullable=False, comment='批准用途 (GB/T 21010)'),
    sa.Column('approved_on', sa.Date(), nullable=False, comment='批准日期'),
    sa.Column('term_years', sa.SmallInteger(), nullable=True, comment='使用年限'),
    sa.Column('price_total', sa.Numeric(precision=16, scale=2), nullable=True, comment='出让/租赁价款 元'),
    sa.Column('parcel_codes', sa.ARRAY(sa.String(length=19)), nullable=True, comment='关联宗地'),
    sa.Column('plane_area', sa.Float(), sa.Computed('ST_Area(geom)', persisted=True), nullable=True, comment='平面面积 m²'),
    sa.Column('geom', Geometry(spatial_index=False, geometry_type='MULTIPOLYGON', srid=srid, dimension=2, from_text='ST_GeomFromEWKT', name='geometry', nullable=False), nullable=False),
    sa.CheckConstraint("supply_kind IN ('allocation','transfer','lease')", name=op.f('ck_landuse_land_approvals_supply_kind_known')),
    sa.CheckConstraint('ST_IsValid(geom) AND NOT ST_IsEmpty(geom)', name=op.f('ck_landuse_land_approvals_geom_valid')),
    sa.CheckConstraint('term_years IS NULL OR term_years BETWEEN 1 AND 70', name=op.f('ck_landuse_land_approvals_term_sane')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_landuse_land_approvals')),
    sa.UniqueConstraint('approval_no', name=op.f('uq_landuse_land_approvals_approval_no'))
    )
    op.create_index('idx_landuse_land_approvals_geom', 'landuse_land_approvals', ['geom'], unique=False, postgresql_using='gist')
    op.create_table('landuse_planning_zones',
    sa.Column('id', sa.BigInteger(), sa.Identity(always=False), nullable=False),
    sa.Column('version', sa.Integer(), server_default='1', nullable=False, comment='行版本 row version'),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.Column('plan_name', sa.Text(), nullable=False, comment='规划名称'),
    sa.Column('plan_year', sa.SmallInteger(), nullable=False, comment='规划目标年'),
    sa.Column('class_system', sa.Text(), server_default='用地用海分类指南(2023)', nullable=False),
    sa.Column('class_code', sa.String(length=6), nullable=False, comment='规划用地代码'),
    sa.Column('class_name', sa.Text(), nullable=True),
    sa.Column('district', sa.String(length=6), nullable=False),
    sa.Column('geom', Geometry(spatial_index=False, geometry_type='MULTIPOLYGON', srid=srid, dimension=2, from_text='ST_GeomFromEWKT', name='geometry', nullable=False), nullable=False),
    sa.CheckConstraint("class_system IN ('GB/T 21010-2017','三调工作分类','用地用海分类指南(2023)')", name=op.f('ck_landuse_planning_zones_system_known')),
    sa.CheckConstraint('ST_IsValid(geom) AND NOT ST_IsEmpty(geom)', name=op.f('ck_landuse_planning_zones_geom_valid')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_landuse_planning_zones'))
    )
    op.create_index('idx_landuse_planning_zones_geom', 'landuse_planning_zones', ['geom'], unique=False, postgresql_using='gist')
    op.create_table('landuse_prereview_reports',
    sa.Column('id', sa.BigInteger(), sa.Identity(always=False), nullable=False),
    sa.Column('version', sa.Integer(), server_default='1', nullable=False, comment='行版本 row version'),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.Column('project_name', sa.Text(), nullable=False, comment='项目名称'),
    sa.Column('actor', sa.Text(), nullable=False, comment='提交人'),
    sa.Column('input_format', sa.Text(), nullable=False, comment='红线格式'),
    sa.Column('input_crs', sa.Text(), nullable=False, comment='红线坐标系'),
    sa.Column('verdict', sa.Text(), nullable=False, comment='结论'),
    sa.Column('total_area', sa.Float(), nullable=False, comment='红线平面面积 m²'),
    sa.Column('report', postgresql.JSONB(astext_type=sa.Text()), nullable=False),
    sa.Column('geom', Geometry(spatial_index=False, geometry_type='MULTIPOLYGON', srid=srid, dimension=2, from_text='ST_GeomFromEWKT', name='geometry', nullable=False), nullable=False),
    sa.CheckConstraint('ST_IsValid(geom) AND NOT ST_IsEmpty(geom)', name=op.f('ck_landuse_prereview_reports_geom_valid')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_landuse_prereview_reports'))
    )
    op.create_index('idx_landuse_prereview_reports_geom', 'landuse_prereview_reports', ['geom'], unique=False, postgresql_using='gist')
    op.create_table('landuse_price_zones',
    sa.Column('id', sa.BigInteger(), sa.Identity(always=False), nullable=False),
    sa.Column('version', sa.Integer(), server_default='1', nullable=False, comment='行版本 row version'),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.Column('land_class', sa.Text(), nullable=False, comment='用途 commercial/residential/industrial/public'),
    sa.Column('grade', sa.SmallInteger(), nullable=False, comment='级别'),
    sa.Column('price_per_m2', sa.Numeric(precision=12, scale=2), nullable=False, comment='基准地价 元/m²'),
    sa.Column('base_date', sa.Date(), nullable=False, comment='估价期日'),
    sa.Column('geom', Geometry(spatial_index=False, geometry_type='MULTIPOLYGON', srid=srid, dimension=2, from_text='ST_GeomFromEWKT', name='geometry', nullable=False), nullable=False),
    sa.CheckConstraint("land_class IN ('commercial','residential','industrial','public')", name=op.f('ck_landuse_price_zones_class_known')),
    sa.CheckConstraint('ST_IsValid(geom) AND NOT ST_IsEmpty(geom)', name=op.f('ck_landuse_price_zones_geom_valid')),
    sa.CheckConstraint('price_per_m2 > 0', name=op.f('ck_landuse_price_zones_price_positive')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_landuse_price_zones'))
    )
    op.create_index('idx_landuse_price_zones_geom', 'landuse_price_zones', ['geom'], unique=False, postgresql_using='gist')
    op.create_table('landuse_supervision_cases',
    sa.Column('id', sa.BigInteger(), sa.Identity(always=False), nullable=False),
    sa.Column('version', sa.Integer(), server_default='1', nullable=False, comment='行版本 row version'),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.Column('case_no', sa.Text(), nullable=False, comment='案件编号'),
    sa.Column('kind', sa.Text(), server_default='illegal_occupation', nullable=False, comment='违法类型 illegal_occupation/illegal_construction/unauthorised_change/other'),
    sa.Column('status', sa.Text(), server_default='reported', nullable=False, comment='状态'),
    sa.Column('found_on', sa.Date(), nullable=False, comment='发现日期'),
    sa.Column('district', sa.String(length=6), nullable=True, comment='行政区代码'),
    sa.Column('party', sa.Text(), nullable=True, comment='当事人'),
    sa.Column('description', sa.Text(), nullable=True, comment='案情'),
    sa.Column('geom', Geometry(spatial_index=False, geometry_type='MULTIPOLYGON', srid=srid, dimension=2, from_text='ST_GeomFromEWKT', name='geometry', nullable=False), nullable=False),
    sa.CheckConstraint("kind IN ('illegal_occupation','illegal_construction','unauthorised_change','other')", name=op.f('ck_landuse_supervision_cases_kind_known')),
    sa.CheckConstraint("status IN ('reported','investigating','penalised','rectified','closed')", name=op.f('ck_landuse_supervision_cases_status_known')),
    sa.CheckConstraint('ST_IsValid(geom) AND NOT ST_IsEmpty(geom)', name=op.f('ck_landuse_supervision_cases_geom_valid')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_landuse_supervision_cases')),
    sa.UniqueConstraint('case_no', name=op.f('uq_landuse_supervision_cases_case_no'))
    )
    op.create_index('idx_landuse_supervision_cases_geom', 'landuse_supervision_cases', ['geom'], unique=False, postgresql_using='gist')
    op.create_table('landuse_survey_patches',
    sa.Column('id', sa.BigInteger(), sa.Identity(always=False), nullable=False),
    sa.Column('version', sa.Integer(), server_default='1', nullable=False, comment='行版本 row version'),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.Column('patch_no', sa.Text(), nullable=False, comment='图斑编号'),
    sa.Column('survey_year', sa.SmallInteger(), nullable=False, comment='调查年度'),
    sa.Column('class_system', sa.Text(), server_default='三调工作分类', nullable=False, comment='分类体系'),
    sa.Column('class_code', sa.String(length=6), nullable=False, comment='地类编码'),
    sa.Column('class_name', sa.Text(), nullable=True, comment='地类名称'),
    sa.Column('settlement_code', sa.String(length=3), nullable=True, comment='城镇村属性码 201–205'),
    sa.Column('ownership', sa.Text(), nullable=True, comment='权属性质'),
    sa.Column('district', sa.String(length=6), nullable=False, comment='行政区代码'),
    sa.Column('ellipsoidal_area', sa.Float(), nullable=False, comment='椭球面积 m²'),
    sa.Column('plane_area', sa.Float(), sa.Computed('ST_Area(geom)', persisted=True), nullable=True, comment='平面面积 m²'),
    sa.Column('geom', Geometry(spatial_index=False, geometry_type='MULTIPOLYGON', srid=srid, dimension=2, from_text='ST_GeomFromEWKT', name='geometry', nullable=False), nullable=False),
    sa.CheckConstraint("class_code ~ '^[0-9]{2}([0-9A-Z]{2})?$'", name=op.f('ck_landuse_survey_patches_class_code_format')),
    sa.CheckConstraint("class_system IN ('GB/T 21010-2017','三调工作分类','用地用海分类指南(2023)')", name=op.f('ck_landuse_survey_patches_system_known')),
    sa.CheckConstraint("settlement_code IS NULL OR settlement_code IN ('201','202','203','204','205')", name=op.f('ck_landuse_survey_patches_settlement_known')),
    sa.CheckConstraint('ST_IsValid(geom) AND NOT ST_IsEmpty(geom)', name=op.f('ck_landuse_survey_patches_geom_valid')),
    sa.CheckConstraint('ellipsoidal_area > 0', name=op.f('ck_landuse_survey_patches_area_positive')),
    sa.CheckConstraint('survey_year BETWEEN 1980 AND 2100', name=op.f('ck_landuse_survey_patches_year_sane')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_landuse_survey_patches'))
    )
    op.create_index('idx_landuse_survey_patches_geom', 'landuse_survey_patches', ['geom'], unique=False, postgresql_using='gist')
    op.create_index('ix_landuse_survey_year_code', 'landuse_survey_patches', ['survey_year', 'class_code'], unique=False)
    op.create_index('uq_landuse_survey_patch', 'landuse_survey_patches', ['survey_year', 'patch_no'], unique=True)
    for table in TABLES:
        op.execute(VERSION_TRIGGER.format(table=table))


def downgrade() -> None:
    for table in reversed(TABLES):
        op.drop_table(table)
