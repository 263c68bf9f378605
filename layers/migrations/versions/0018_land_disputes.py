"""Land supervision and construction land (issue 17): ownership disputes (土地权属纠纷) as a
supervision case kind with each party's claimed land, and the district of a construction-land
approval for the statistics by district (frozen DDL).

Revision ID: 0018
Revises: 0017
"""

import sqlalchemy as sa
from alembic import op
from geoalchemy2 import Geometry

revision = "0018"
down_revision = "0017"
branch_labels = None
depends_on = None

OLD_KINDS = "kind IN ('illegal_occupation','illegal_construction','unauthorised_change','other')"
NEW_KINDS = "kind IN ('illegal_occupation','illegal_construction','unauthorised_change','ownership_dispute','other')"

# an approval recorded before this revision lies in the district of most of the land it takes: its
# live parcels', else the survey patches' (latest year)
BACKFILL_DISTRICT = """
UPDATE landuse_land_approvals a SET district = (
  SELECT p.district FROM cadastre_parcels p
   WHERE p.valid_to IS NULL AND p.recorded_to IS NULL AND p.geom && a.geom AND ST_Intersects(p.geom, a.geom)
   GROUP BY p.district ORDER BY sum(ST_Area(ST_Intersection(p.geom, a.geom))) DESC, p.district LIMIT 1)
 WHERE district IS NULL;
UPDATE landuse_land_approvals a SET district = (
  SELECT s.district FROM landuse_survey_patches s
   WHERE s.survey_year = (SELECT max(survey_year) FROM landuse_survey_patches)
     AND s.geom && a.geom AND ST_Intersects(s.geom, a.geom)
   GROUP BY s.district ORDER BY sum(ST_Area(ST_Intersection(s.geom, a.geom))) DESC, s.district LIMIT 1)
 WHERE district IS NULL;
"""


def _storage_srid() -> int:
    """The storage SRID of this database (a setting fixed when it was created)."""
    from gis.settings import get_settings

    return get_settings().storage_srid


def upgrade() -> None:
    srid = _storage_srid()
    op.drop_constraint(op.f("ck_landuse_supervision_cases_kind_known"), "landuse_supervision_cases", type_="check")
    op.create_check_constraint(op.f("ck_landuse_supervision_cases_kind_known"), "landuse_supervision_cases", NEW_KINDS)
    op.alter_column("landuse_supervision_cases", "kind",
                    comment="案件类型 illegal_occupation/illegal_construction/unauthorised_change/ownership_dispute/other",
                    existing_type=sa.Text(), existing_nullable=False, existing_server_default="illegal_occupation")
    op.add_column("landuse_land_approvals", sa.Column("district", sa.String(6), nullable=True, comment="行政区代码"))
    op.create_index("ix_landuse_land_approvals_district_approved_on", "landuse_land_approvals",
                    ["district", "approved_on"], unique=False)
    op.execute(BACKFILL_DISTRICT)
    op.create_table('landuse_dispute_claims',
    sa.Column('id', sa.BigInteger(), sa.Identity(always=False), nullable=False),
    sa.Column('version', sa.Integer(), server_default='1', nullable=False, comment='行版本 row version'),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.Column('case_id', sa.BigInteger(), nullable=False, comment='案件'),
    sa.Column('party', sa.Text(), nullable=False, comment='当事人'),
    sa.Column('party_kind', sa.Text(), server_default='person', nullable=False, comment='当事人类型 person/organisation'),
    sa.Column('party_id_number', sa.Text(), nullable=True, comment='证件号码'),
    sa.Column('party_phone', sa.Text(), nullable=True, comment='联系电话'),
    sa.Column('basis', sa.Text(), nullable=True, comment='主张依据 (权属来源证明)'),
    sa.Column('claimed_area', sa.Float(), sa.Computed('ST_Area(geom)', persisted=True), nullable=True,
              comment='主张面积 m² (平面)'),
    sa.Column('geom', Geometry(spatial_index=False, geometry_type='MULTIPOLYGON', srid=srid, dimension=2,
                               from_text='ST_GeomFromEWKT', name='geometry'), nullable=False),
    sa.CheckConstraint("party_kind IN ('person','organisation')", name=op.f('ck_landuse_dispute_claims_party_kind_known')),
    sa.CheckConstraint('ST_IsValid(geom) AND NOT ST_IsEmpty(geom)', name=op.f('ck_landuse_dispute_claims_geom_valid')),
    sa.ForeignKeyConstraint(['case_id'], ['landuse_supervision_cases.id'],
                            name=op.f('fk_landuse_dispute_claims_case_id_landuse_supervision_cases'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_landuse_dispute_claims'))
    )
    op.create_index('idx_landuse_dispute_claims_geom', 'landuse_dispute_claims', ['geom'], unique=False,
                    postgresql_using='gist')
    op.create_index('ix_landuse_dispute_claims_case', 'landuse_dispute_claims', ['case_id'], unique=False)
    op.execute("CREATE TRIGGER landuse_dispute_claims_bump_version AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE "
               "ON landuse_dispute_claims FOR EACH STATEMENT EXECUTE FUNCTION govgis_bump_layer_version();")


def downgrade() -> None:
    op.drop_table('landuse_dispute_claims')
    op.drop_index("ix_landuse_land_approvals_district_approved_on", table_name="landuse_land_approvals")
    op.drop_column("landuse_land_approvals", "district")
    op.execute("DELETE FROM landuse_supervision_cases WHERE kind = 'ownership_dispute'")
    op.drop_constraint(op.f("ck_landuse_supervision_cases_kind_known"), "landuse_supervision_cases", type_="check")
    op.create_check_constraint(op.f("ck_landuse_supervision_cases_kind_known"), "landuse_supervision_cases", OLD_KINDS)
    op.alter_column("landuse_supervision_cases", "kind",
                    comment="违法类型 illegal_occupation/illegal_construction/unauthorised_change/other",
                    existing_type=sa.Text(), existing_nullable=False, existing_server_default="illegal_occupation")
