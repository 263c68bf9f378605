"""Cadastre tables: parcel versions (bitemporal), registrations, lineage.

A parcel (宗地) is identified by its 19-character 宗地代码; every state it has had is a row here.
Legal valid time (valid_from/valid_to) says when a state held in law; record time
(recorded_from/recorded_to) says when the register said so. The current register is the rows with
both ends open.
"""

from __future__ import annotations

import sqlalchemy as sa
from geoalchemy2 import Geometry
from sqlalchemy.dialects.postgresql import JSONB

from gis.schema import METADATA, feature_columns, geometry_column, one_of, storage_srid, valid_geometry_check

# GB/T 37346-2019: county(6) district(3) sub-district(3) ownership G/J/Z, type letter, sequence(5)
PARCEL_CODE_RE = r"^[0-9]{12}[GJZ][ABCDEFGHSWXY][0-9]{5}$"
# + attachment F/L/Q/W and 8 digits (building 4 + unit 4)
UNIT_CODE_RE = r"^[0-9]{12}[GJZ][ABCDEFGHSWXY][0-9]{5}[FLQW][0-9]{8}$"

REGISTRATION_KINDS = ("initial", "change", "transfer", "split", "merge", "boundary_adjustment", "cancellation")
LINEAGE_KINDS = ("split", "merge", "boundary_adjustment")

parcels = sa.Table(
    "cadastre_parcels",
    METADATA,
    *feature_columns(),
    sa.Column("parcel_code", sa.String(19), nullable=False, comment="宗地代码"),
    sa.Column("unit_code", sa.String(28), nullable=False, comment="不动产单元代码"),
    sa.Column("right_holder", sa.Text, nullable=False, comment="权利人"),
    sa.Column("holder_kind", sa.Text, nullable=False, server_default="organisation",
              comment="权利人类型 person/organisation"),
    sa.Column("holder_id_number", sa.Text, comment="证件号码"),
    sa.Column("holder_phone", sa.Text, comment="联系电话"),
    sa.Column("right_type", sa.Text, nullable=False, comment="权利类型"),
    sa.Column("landuse_system", sa.Text, nullable=False, server_default="GB/T 21010-2017",
              comment="用途分类体系"),
    sa.Column("landuse_code", sa.String(6), nullable=False, comment="土地用途代码"),
    sa.Column("address", sa.Text, comment="坐落"),
    sa.Column("district", sa.String(6), nullable=False, comment="行政区代码"),
    sa.Column("registered_area", sa.Numeric(14, 2), comment="登记面积 m²"),
    sa.Column("plane_area", sa.Float, sa.Computed("ST_Area(geom)", persisted=True), comment="计算平面面积 m²"),
    sa.Column("status", sa.Text, nullable=False, server_default="registered", comment="状态"),
    sa.Column("valid_from", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now(),
              comment="法定生效时间"),
    sa.Column("valid_to", sa.DateTime(timezone=True), comment="法定失效时间"),
    sa.Column("recorded_from", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now(),
              comment="登簿时间"),
    sa.Column("recorded_to", sa.DateTime(timezone=True), comment="登簿更正/注销时间"),
    geometry_column("MultiPolygon"),
    # where the attachment the unit code names lies (a building's position): on a split it goes to the
    # child that contains it, on a merge to the merged parcel (migration 0009)
    sa.Column("attachment_geom", Geometry("POINT", srid=storage_srid(), spatial_index=False),
              comment="定着物位置"),
    sa.CheckConstraint(f"parcel_code ~ '{PARCEL_CODE_RE}'", name="parcel_code_format"),
    sa.CheckConstraint(f"unit_code ~ '{UNIT_CODE_RE}'", name="unit_code_format"),
    sa.CheckConstraint("left(unit_code, 19) = parcel_code", name="unit_in_parcel"),
    sa.CheckConstraint("substr(unit_code, 20, 1) <> 'W' OR right(unit_code, 8) = '00000000'",
                       name="no_attachment_zero"),
    sa.CheckConstraint("holder_kind IN ('person','organisation')", name="holder_kind_known"),
    sa.CheckConstraint("status IN ('registered','pending','retired')", name="status_known"),
    sa.CheckConstraint("valid_to IS NULL OR valid_to >= valid_from", name="valid_period"),
    sa.CheckConstraint("recorded_to IS NULL OR recorded_to >= recorded_from", name="record_period"),
    sa.CheckConstraint("registered_area IS NULL OR registered_area > 0", name="area_positive"),
    valid_geometry_check("cadastre_parcels"),
)
sa.Index("ix_cadastre_parcels_code", parcels.c.parcel_code)
# the last legal boundary that has passed, asked by the tile cache twice a second (gis.tiles)
sa.Index("ix_cadastre_parcels_valid_from", parcels.c.valid_from)
sa.Index("ix_cadastre_parcels_valid_to", parcels.c.valid_to)
sa.Index("ix_cadastre_parcels_holder", parcels.c.right_holder)
# the live register: at most one current version per parcel code
sa.Index("uq_cadastre_parcels_current", parcels.c.parcel_code, unique=True,
         postgresql_where=sa.text("valid_to IS NULL AND recorded_to IS NULL"))

registrations = sa.Table(
    "cadastre_registrations",
    METADATA,
    sa.Column("id", sa.BigInteger, sa.Identity(), primary_key=True),
    sa.Column("kind", sa.Text, nullable=False, comment="登记类型"),
    sa.Column("parcel_codes", sa.ARRAY(sa.String(19)), nullable=False, comment="涉及宗地"),
    sa.Column("effective_at", sa.DateTime(timezone=True), nullable=False, comment="生效时间"),
    sa.Column("recorded_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
    sa.Column("actor", sa.Text, nullable=False),
    sa.Column("certificate_no", sa.Text, comment="不动产权证书号"),
    sa.Column("note", sa.Text),
    sa.Column("detail", JSONB),
    sa.CheckConstraint(one_of("kind", REGISTRATION_KINDS), name="kind_known"),
)

lineage = sa.Table(
    "cadastre_lineage",
    METADATA,
    sa.Column("id", sa.BigInteger, sa.Identity(), primary_key=True),
    sa.Column("parent_code", sa.String(19), nullable=False),
    sa.Column("child_code", sa.String(19), nullable=False),
    sa.Column("kind", sa.Text, nullable=False),
    sa.Column("registration_id", sa.BigInteger, sa.ForeignKey("cadastre_registrations.id"), nullable=False),
    sa.CheckConstraint(one_of("kind", LINEAGE_KINDS), name="kind_known"),
    sa.CheckConstraint("parent_code <> child_code OR kind = 'boundary_adjustment'", name="not_self"),
)
sa.Index("ix_cadastre_lineage_parent", lineage.c.parent_code)
sa.Index("ix_cadastre_lineage_child", lineage.c.child_code)

TABLES = (parcels, registrations, lineage)
