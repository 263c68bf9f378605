"""Land-use tables: survey patches (图斑), planning zones, control lines, base land-price zones.

A code is always stored with its classification system (GB/T 21010-2017, the third national land
survey's working classification, or the 2023 用地用海分类指南): the same digits mean different
things in different systems.
"""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import JSONB

from gis.schema import METADATA, feature_columns, geometry_column, one_of, valid_geometry_check

SYSTEMS = ("GB/T 21010-2017", "三调工作分类", "用地用海分类指南(2023)")
CONTROL_LINE_KINDS = ("permanent_basic_farmland", "ecological_red_line", "urban_development_boundary")

survey_patches = sa.Table(
    "landuse_survey_patches",
    METADATA,
    *feature_columns(),
    sa.Column("patch_no", sa.Text, nullable=False, comment="图斑编号"),
    sa.Column("survey_year", sa.SmallInteger, nullable=False, comment="调查年度"),
    sa.Column("class_system", sa.Text, nullable=False, server_default="三调工作分类", comment="分类体系"),
    sa.Column("class_code", sa.String(6), nullable=False, comment="地类编码"),
    sa.Column("class_name", sa.Text, comment="地类名称"),
    sa.Column("settlement_code", sa.String(3), comment="城镇村属性码 201–205"),
    sa.Column("ownership", sa.Text, comment="权属性质"),
    sa.Column("district", sa.String(6), nullable=False, comment="行政区代码"),
    sa.Column("ellipsoidal_area", sa.Float, nullable=False, comment="椭球面积 m²"),
    sa.Column("plane_area", sa.Float, sa.Computed("ST_Area(geom)", persisted=True), comment="平面面积 m²"),
    geometry_column("MultiPolygon"),
    sa.CheckConstraint(one_of("class_system", SYSTEMS), name="system_known"),
    sa.CheckConstraint("class_code ~ '^[0-9]{2}([0-9A-Z]{2})?$'", name="class_code_format"),
    sa.CheckConstraint("settlement_code IS NULL OR settlement_code IN ('201','202','203','204','205')",
                       name="settlement_known"),
    sa.CheckConstraint("survey_year BETWEEN 1980 AND 2100", name="year_sane"),
    sa.CheckConstraint("ellipsoidal_area > 0", name="area_positive"),
    valid_geometry_check("landuse_survey_patches"),
)
sa.Index("ix_landuse_survey_year_code", survey_patches.c.survey_year, survey_patches.c.class_code)
sa.Index("uq_landuse_survey_patch", survey_patches.c.survey_year, survey_patches.c.patch_no, unique=True)

planning_zones = sa.Table(
    "landuse_planning_zones",
    METADATA,
    *feature_columns(),
    sa.Column("plan_name", sa.Text, nullable=False, comment="规划名称"),
    sa.Column("plan_year", sa.SmallInteger, nullable=False, comment="规划目标年"),
    sa.Column("class_system", sa.Text, nullable=False, server_default="用地用海分类指南(2023)"),
    sa.Column("class_code", sa.String(6), nullable=False, comment="规划用地代码"),
    sa.Column("class_name", sa.Text),
    sa.Column("district", sa.String(6), nullable=False),
    geometry_column("MultiPolygon"),
    sa.CheckConstraint(one_of("class_system", SYSTEMS), name="system_known"),
    valid_geometry_check("landuse_planning_zones"),
)

control_lines = sa.Table(
    "landuse_control_lines",
    METADATA,
    *feature_columns(),
    sa.Column("kind", sa.Text, nullable=False, comment="控制线类型"),
    sa.Column("zone_type", sa.Text, comment="分区 (生态保护红线: core/general)"),
    sa.Column("name", sa.Text, nullable=False),
    sa.Column("approved_on", sa.Date, comment="批准日期"),
    sa.Column("approval_no", sa.Text, comment="批准文号"),
    geometry_column("MultiPolygon"),
    sa.CheckConstraint(one_of("kind", CONTROL_LINE_KINDS), name="kind_known"),
    sa.CheckConstraint("zone_type IS NULL OR zone_type IN ('core','general')", name="zone_type_known"),
    valid_geometry_check("landuse_control_lines"),
)

price_zones = sa.Table(
    "landuse_price_zones",
    METADATA,
    *feature_columns(),
    sa.Column("land_class", sa.Text, nullable=False, comment="用途 commercial/residential/industrial/public"),
    sa.Column("grade", sa.SmallInteger, nullable=False, comment="级别"),
    sa.Column("price_per_m2", sa.Numeric(12, 2), nullable=False, comment="基准地价 元/m²"),
    sa.Column("base_date", sa.Date, nullable=False, comment="估价期日"),
    geometry_column("MultiPolygon"),
    sa.CheckConstraint("land_class IN ('commercial','residential','industrial','public')", name="class_known"),
    sa.CheckConstraint("price_per_m2 > 0", name="price_positive"),
    valid_geometry_check("landuse_price_zones"),
)


# One row per loaded survey year: complete or partial (declared when loaded, or derived from how much of
# the reference year's land it covers). Created by migration 0009, so not in TABLES (the family's first
# migration creates those).
SURVEY_COMPLETENESS = ("complete", "partial")
survey_years = sa.Table(
    "landuse_survey_years",
    METADATA,
    sa.Column("survey_year", sa.SmallInteger, primary_key=True, autoincrement=False, comment="调查年度"),
    sa.Column("class_system", sa.Text, nullable=False),
    sa.Column("completeness", sa.Text, nullable=False, comment="完整或部分 complete or partial"),
    sa.Column("declared", sa.Boolean, nullable=False, comment="declared when loaded (true) or derived from coverage"),
    sa.Column("patches", sa.Integer, nullable=False),
    sa.Column("covered_area_m2", sa.Float, nullable=False, comment="覆盖面积 m²"),
    sa.Column("coverage", sa.Float, comment="covered share of the reference (latest complete) year"),
    sa.Column("loaded_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
    sa.Column("note", sa.Text),
    sa.CheckConstraint(one_of("completeness", SURVEY_COMPLETENESS), name="completeness_known"),
    sa.CheckConstraint("survey_year BETWEEN 1980 AND 2100", name="year_sane"),
    comment="调查年度: complete or partial, declared or derived from coverage",
)

# 变更调查: where a survey patch changed class between two survey years (computed, never edited)
change_patches = sa.Table(
    "landuse_change_patches",
    METADATA,
    *feature_columns(),
    sa.Column("from_year", sa.SmallInteger, nullable=False, comment="基期年度"),
    sa.Column("to_year", sa.SmallInteger, nullable=False, comment="变更年度"),
    sa.Column("class_system", sa.Text, nullable=False, comment="分类体系"),
    sa.Column("from_code", sa.String(6), nullable=False, comment="原地类"),
    sa.Column("to_code", sa.String(6), nullable=False, comment="现地类"),
    sa.Column("district", sa.String(6), nullable=False),
    sa.Column("ellipsoidal_area", sa.Float, nullable=False, comment="椭球面积 m²"),
    sa.Column("plane_area", sa.Float, sa.Computed("ST_Area(geom)", persisted=True), comment="平面面积 m²"),
    geometry_column("MultiPolygon"),
    sa.CheckConstraint("to_year > from_year", name="years_ordered"),
    valid_geometry_check("landuse_change_patches"),
)
sa.Index("ix_landuse_change_years", change_patches.c.from_year, change_patches.c.to_year)

# 土地监察: a violation case with the patch of land concerned; an ownership dispute (土地权属纠纷调处,
# migration 0017) also has its parties' claims (landuse_dispute_claims)
SUPERVISION_KINDS = ("illegal_occupation", "illegal_construction", "unauthorised_change", "ownership_dispute",
                     "other")
supervision_cases = sa.Table(
    "landuse_supervision_cases",
    METADATA,
    *feature_columns(),
    sa.Column("case_no", sa.Text, nullable=False, unique=True, comment="案件编号"),
    sa.Column("kind", sa.Text, nullable=False, server_default="illegal_occupation",
              comment="案件类型 illegal_occupation/illegal_construction/unauthorised_change/ownership_dispute/other"),
    sa.Column("status", sa.Text, nullable=False, server_default="reported", comment="状态"),
    sa.Column("found_on", sa.Date, nullable=False, comment="发现日期"),
    sa.Column("district", sa.String(6), comment="行政区代码"),
    sa.Column("party", sa.Text, comment="当事人"),
    sa.Column("description", sa.Text, comment="案情"),
    geometry_column("MultiPolygon"),
    sa.CheckConstraint(one_of("kind", SUPERVISION_KINDS), name="kind_known"),
    sa.CheckConstraint("status IN ('reported','investigating','penalised','rectified','closed')",
                       name="status_known"),
    valid_geometry_check("landuse_supervision_cases"),
)

# 建设用地审批: allocation (划拨) / transfer (出让) / lease (租赁) with its red line and parcels
land_approvals = sa.Table(
    "landuse_land_approvals",
    METADATA,
    *feature_columns(),
    sa.Column("approval_no", sa.Text, nullable=False, unique=True, comment="批准文号"),
    sa.Column("supply_kind", sa.Text, nullable=False, comment="供地方式 allocation/transfer/lease"),
    sa.Column("project_name", sa.Text, nullable=False, comment="项目名称"),
    sa.Column("land_user", sa.Text, nullable=False, comment="用地单位"),
    sa.Column("landuse_code", sa.String(6), nullable=False, comment="批准用途 (GB/T 21010)"),
    sa.Column("approved_on", sa.Date, nullable=False, comment="批准日期"),
    sa.Column("term_years", sa.SmallInteger, comment="使用年限"),
    sa.Column("price_total", sa.Numeric(16, 2), comment="出让/租赁价款 元"),
    sa.Column("parcel_codes", sa.ARRAY(sa.String(19)), comment="关联宗地"),
    sa.Column("plane_area", sa.Float, sa.Computed("ST_Area(geom)", persisted=True), comment="平面面积 m²"),
    geometry_column("MultiPolygon"),
    # where the approval lies, for the statistics by district (migration 0017): given, or the district
    # of most of the land its red line takes (parcels, else survey patches)
    sa.Column("district", sa.String(6), comment="行政区代码"),
    sa.CheckConstraint("supply_kind IN ('allocation','transfer','lease')", name="supply_kind_known"),
    sa.CheckConstraint("term_years IS NULL OR term_years BETWEEN 1 AND 70", name="term_sane"),
    valid_geometry_check("landuse_land_approvals"),
)
sa.Index("ix_landuse_land_approvals_district_approved_on", land_approvals.c.district, land_approvals.c.approved_on)

# 用地预审与选址: each pre-review report as computed (unmasked; masked again for whoever re-opens it)
prereview_reports = sa.Table(
    "landuse_prereview_reports",
    METADATA,
    *feature_columns(),
    sa.Column("project_name", sa.Text, nullable=False, comment="项目名称"),
    sa.Column("actor", sa.Text, nullable=False, comment="提交人"),
    sa.Column("department", sa.Text, nullable=False, server_default="govgis", comment="所属部门"),
    sa.Column("input_format", sa.Text, nullable=False, comment="红线格式"),
    sa.Column("input_crs", sa.Text, nullable=False, comment="红线坐标系"),
    sa.Column("verdict", sa.Text, nullable=False, comment="结论"),
    sa.Column("total_area", sa.Float, nullable=False, comment="红线平面面积 m²"),
    sa.Column("report", JSONB, nullable=False),
    geometry_column("MultiPolygon"),
    valid_geometry_check("landuse_prereview_reports"),
)

# 土地权属纠纷: each party's claimed land in an ownership-dispute case (migration 0017, so not in TABLES).
# A party who is a natural person is personal data (name, ID number, phone), like a parcel's holder.
PARTY_KINDS = ("person", "organisation")
dispute_claims = sa.Table(
    "landuse_dispute_claims",
    METADATA,
    *feature_columns(),
    sa.Column("case_id", sa.BigInteger, sa.ForeignKey("landuse_supervision_cases.id", ondelete="CASCADE"),
              nullable=False, comment="案件"),
    sa.Column("party", sa.Text, nullable=False, comment="当事人"),
    sa.Column("party_kind", sa.Text, nullable=False, server_default="person", comment="当事人类型 person/organisation"),
    sa.Column("party_id_number", sa.Text, comment="证件号码"),
    sa.Column("party_phone", sa.Text, comment="联系电话"),
    sa.Column("basis", sa.Text, comment="主张依据 (权属来源证明)"),
    sa.Column("claimed_area", sa.Float, sa.Computed("ST_Area(geom)", persisted=True), comment="主张面积 m² (平面)"),
    geometry_column("MultiPolygon"),
    sa.CheckConstraint(one_of("party_kind", PARTY_KINDS), name="party_kind_known"),
    valid_geometry_check("landuse_dispute_claims"),
)
sa.Index("ix_landuse_dispute_claims_case", dispute_claims.c.case_id)

TABLES = (survey_patches, planning_zones, control_lines, price_zones, change_patches, supervision_cases,
          land_approvals, prereview_reports)
