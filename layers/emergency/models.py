"""Emergency tables: resources (with status history), warehouses and stock, shelters, incidents,
and the road network in the shape pgRouting expects (source, target, cost, reverse_cost in seconds).
"""

from __future__ import annotations

import sqlalchemy as sa

from gis.schema import METADATA, feature_columns, geometry_column, one_of, valid_geometry_check

RESOURCE_STATUSES = ("available", "assigned", "out_of_service")
INCIDENT_LINES = ("110", "119", "120", "122", "municipal")



resources = sa.Table(
    "emergency_resources",
    METADATA,
    *feature_columns(),
    sa.Column("code", sa.Text, nullable=False, comment="编号"),
    sa.Column("name", sa.Text, nullable=False, comment="名称"),
    sa.Column("kind", sa.Text, nullable=False, comment="类别 team/vehicle/equipment/medical"),
    sa.Column("capability_type", sa.Text, nullable=False, comment="能力类型 (NIMS-style)"),
    sa.Column("capability_level", sa.SmallInteger, nullable=False, server_default="1", comment="能力等级 1–4"),
    sa.Column("status", sa.Text, nullable=False, server_default="available", comment="状态"),
    sa.Column("capacity", sa.Integer, comment="人数/载量"),
    sa.Column("agency", sa.Text, nullable=False, comment="所属单位"),
    sa.Column("duty_phone", sa.Text, comment="值班电话"),
    sa.Column("leader_phone", sa.Text, comment="负责人电话"),
    geometry_column("Point"),
    sa.CheckConstraint(one_of("status", RESOURCE_STATUSES), name="status_known"),
    sa.CheckConstraint("capability_level BETWEEN 1 AND 4", name="level_range"),
    sa.UniqueConstraint("code"),
)

resource_status_history = sa.Table(
    "emergency_resource_status",
    METADATA,
    sa.Column("id", sa.BigInteger, sa.Identity(), primary_key=True),
    sa.Column("resource_id", sa.BigInteger, sa.ForeignKey("emergency_resources.id", ondelete="CASCADE"),
              nullable=False),
    sa.Column("status", sa.Text, nullable=False),
    sa.Column("since", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
    sa.Column("incident_id", sa.BigInteger),
    sa.Column("actor", sa.Text),
    sa.CheckConstraint(one_of("status", RESOURCE_STATUSES), name="status_known"),
)

warehouses = sa.Table(
    "emergency_warehouses",
    METADATA,
    *feature_columns(),
    sa.Column("code", sa.Text, nullable=False),
    sa.Column("name", sa.Text, nullable=False, comment="储备库名称"),
    sa.Column("agency", sa.Text, nullable=False),
    sa.Column("address", sa.Text),
    sa.Column("keeper_phone", sa.Text, comment="保管员电话"),
    geometry_column("Point"),
    sa.UniqueConstraint("code"),
)

stock = sa.Table(
    "emergency_stock",
    METADATA,
    sa.Column("id", sa.BigInteger, sa.Identity(), primary_key=True),
    sa.Column("warehouse_id", sa.BigInteger, sa.ForeignKey("emergency_warehouses.id", ondelete="CASCADE"),
              nullable=False),
    sa.Column("supply_code", sa.String(7), nullable=False, comment="GB/T 38565 物资代码"),
    sa.Column("name", sa.Text, nullable=False),
    sa.Column("quantity", sa.Numeric(14, 2), nullable=False),
    sa.Column("unit", sa.Text, nullable=False),
    sa.Column("expires_on", sa.Date),
    sa.Column("version", sa.Integer, nullable=False, server_default="1"),
    sa.CheckConstraint("supply_code ~ '^[0-9]{7}$'", name="code_format"),
    sa.CheckConstraint("quantity >= 0", name="quantity_nonnegative"),
)

shelters = sa.Table(
    "emergency_shelters",
    METADATA,
    *feature_columns(),
    sa.Column("code", sa.Text, nullable=False),
    sa.Column("name", sa.Text, nullable=False, comment="避难场所名称"),
    sa.Column("grade", sa.Text, nullable=False, comment="级别 (GB/T 44013)"),
    sa.Column("shelter_class", sa.Text, nullable=False, comment="类型 (紧急/短期/长期)"),
    sa.Column("hazards", sa.Text, comment="适用灾种"),
    sa.Column("capacity_persons", sa.Integer, nullable=False, comment="容纳人数"),
    sa.Column("effective_area_m2", sa.Float, comment="有效避难面积"),
    sa.Column("service_radius_m", sa.Float),
    geometry_column("MultiPolygon"),
    sa.CheckConstraint("capacity_persons >= 0", name="capacity_nonnegative"),
    valid_geometry_check("emergency_shelters"),
    sa.UniqueConstraint("code"),
)

incidents = sa.Table(
    "emergency_incidents",
    METADATA,
    *feature_columns(),
    sa.Column("code", sa.Text, nullable=False),
    sa.Column("source_line", sa.Text, nullable=False, comment="来源 110/119/120/122/市政"),
    sa.Column("incident_type", sa.Text, nullable=False, comment="事件类型"),
    sa.Column("level", sa.SmallInteger, nullable=False, server_default="4", comment="等级 I–IV"),
    sa.Column("status", sa.Text, nullable=False, server_default="open"),
    sa.Column("reported_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
    sa.Column("closed_at", sa.DateTime(timezone=True)),
    sa.Column("description", sa.Text),
    sa.Column("reporter_phone", sa.Text, comment="报警人电话"),
    geometry_column("Point"),
    geometry_column("MultiPolygon", name="incident_area", nullable=True, comment="事发范围"),
    geometry_column("MultiPolygon", name="impact_area", nullable=True, comment="影响范围"),
    sa.CheckConstraint(one_of("source_line", INCIDENT_LINES), name="line_known"),
    sa.CheckConstraint("level BETWEEN 1 AND 4", name="level_range"),
    sa.CheckConstraint("status IN ('open','responding','closed')", name="status_known"),
    sa.UniqueConstraint("code"),
)

roads = sa.Table(
    "emergency_roads",
    METADATA,
    sa.Column("id", sa.BigInteger, sa.Identity(), primary_key=True),
    sa.Column("version", sa.Integer, nullable=False, server_default="1"),
    sa.Column("name", sa.Text, comment="道路名称"),
    sa.Column("road_class", sa.Text, nullable=False, comment="等级 arterial/secondary/local"),
    sa.Column("source", sa.BigInteger, comment="pgRouting 起点"),
    sa.Column("target", sa.BigInteger, comment="pgRouting 终点"),
    sa.Column("speed_kmh", sa.Float, nullable=False),
    sa.Column("oneway", sa.Boolean, nullable=False, server_default=sa.false()),
    sa.Column("cost", sa.Float, comment="正向通行时间 s"),
    sa.Column("reverse_cost", sa.Float, comment="反向通行时间 s (<0 禁行)"),
    geometry_column("LineString"),
    sa.CheckConstraint("speed_kmh > 0", name="speed_positive"),
    sa.CheckConstraint("road_class IN ('arterial','secondary','local')", name="class_known"),
    valid_geometry_check("emergency_roads"),
)
sa.Index("ix_emergency_roads_source", roads.c.source)
sa.Index("ix_emergency_roads_target", roads.c.target)

TABLES = (resources, resource_status_history, warehouses, stock, shelters, incidents, roads)
