"""Emergency tables: resources (with status history), warehouses and stock, shelters, incidents,
and the road network in the shape pgRouting expects (source, target, cost, reverse_cost in seconds).

``TABLES`` are the tables of migration 0005; ``TABLES_0007`` (incident workflow, areas, duplicates,
assignments, the stock ledger, road closures, the population grid) come with migration 0007, which
also adds columns to the first ones. Migrations spell their DDL out; these definitions are what the
repository queries.
"""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import ARRAY, JSONB

from gis.schema import METADATA, feature_columns, geometry_column, one_of, valid_geometry_check

RESOURCE_STATUSES = ("available", "assigned", "out_of_service")
RESOURCE_KINDS = ("team", "vehicle", "station", "hospital", "equipment", "medical")
INCIDENT_LINES = ("110", "119", "120", "122", "municipal")
# the incident workflow, in order; "closed" also ends a merged duplicate
INCIDENT_STATUSES = ("reported", "dispatched", "on_scene", "under_control", "closed")
AREA_KINDS = ("incident", "impact")
LEDGER_KINDS = ("opening", "receipt", "issue", "adjustment")


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
    sa.Column("beds_total", sa.Integer, comment="床位 (医院)"),
    sa.Column("beds_available", sa.Integer, comment="空余床位 (医院)"),
    geometry_column("Point"),
    geometry_column("Point", name="home_geom", nullable=True, comment="驻地 home location"),
    sa.CheckConstraint(one_of("status", RESOURCE_STATUSES), name="status_known"),
    sa.CheckConstraint("capability_level BETWEEN 1 AND 4", name="level_range"),
    sa.CheckConstraint("beds_available IS NULL OR (beds_available >= 0 AND (beds_total IS NULL OR "
                       "beds_available <= beds_total))", name="beds_range"),
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
    sa.Column("min_quantity", sa.Numeric(14, 2), comment="最低储备量"),
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
    sa.Column("occupancy", sa.Integer, nullable=False, server_default="0", comment="当前安置人数"),
    geometry_column("MultiPolygon"),
    sa.CheckConstraint("capacity_persons >= 0", name="capacity_nonnegative"),
    sa.CheckConstraint("occupancy >= 0", name="occupancy_range"),
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
    sa.Column("type_code", sa.Text, comment="事件类型代码 (data/codes/emergency_incident_types)"),
    sa.Column("category", sa.Text, comment="事件类别 公安/交通/市政/卫生/生产安全/消防/自然灾害"),
    sa.Column("level", sa.SmallInteger, nullable=False, server_default="4", comment="等级 I–IV"),
    sa.Column("status", sa.Text, nullable=False, server_default="reported"),
    sa.Column("merged_into", sa.BigInteger, comment="并入的事件 (重复报警)"),
    sa.Column("reported_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
    sa.Column("closed_at", sa.DateTime(timezone=True)),
    sa.Column("description", sa.Text),
    sa.Column("reporter_phone", sa.Text, comment="报警人电话"),
    geometry_column("Point"),
    geometry_column("MultiPolygon", name="incident_area", nullable=True, comment="事发范围"),
    geometry_column("MultiPolygon", name="impact_area", nullable=True, comment="影响范围"),
    sa.CheckConstraint(one_of("source_line", INCIDENT_LINES), name="line_known"),
    sa.CheckConstraint("level BETWEEN 1 AND 4", name="level_range"),
    sa.CheckConstraint(one_of("status", INCIDENT_STATUSES), name="status_known"),
    sa.UniqueConstraint("code"),
)

roads = sa.Table(
    "emergency_roads",
    METADATA,
    sa.Column("id", sa.BigInteger, sa.Identity(), primary_key=True),
    sa.Column("version", sa.Integer, nullable=False, server_default="1"),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
    sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
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

# --- migration 0007 -------------------------------------------------------------------------------


def _at() -> sa.Column:
    return sa.Column("at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now())


def _incident_fk(nullable: bool = False, ondelete: str = "CASCADE") -> sa.Column:
    return sa.Column("incident_id", sa.BigInteger,
                     sa.ForeignKey("emergency_incidents.id", ondelete=ondelete), nullable=nullable)


incident_status = sa.Table(
    "emergency_incident_status",
    METADATA,
    sa.Column("id", sa.BigInteger, sa.Identity(), primary_key=True),
    _incident_fk(),
    sa.Column("status", sa.Text, nullable=False),
    _at(),
    sa.Column("actor", sa.Text),
    sa.Column("note", sa.Text),
    sa.CheckConstraint(one_of("status", INCIDENT_STATUSES), name="status_known"),
)
sa.Index("ix_emergency_incident_status_incident", incident_status.c.incident_id)

incident_log = sa.Table(
    "emergency_incident_log",
    METADATA,
    sa.Column("id", sa.BigInteger, sa.Identity(), primary_key=True),
    _incident_fk(),
    _at(),
    sa.Column("kind", sa.Text, nullable=False, comment="situation_report/dispatch/arrival/release/status/merge/"
                                                       "issue/pipeline/note"),
    sa.Column("text", sa.Text, nullable=False),
    sa.Column("actor", sa.Text),
    sa.Column("detail", JSONB),
)
sa.Index("ix_emergency_incident_log_incident", incident_log.c.incident_id)

incident_areas = sa.Table(
    "emergency_incident_areas",
    METADATA,
    sa.Column("id", sa.BigInteger, sa.Identity(), primary_key=True),
    sa.Column("version", sa.Integer, nullable=False, server_default="1"),
    _incident_fk(),
    sa.Column("kind", sa.Text, nullable=False, comment="incident 事发范围 / impact 影响范围"),
    sa.Column("valid_from", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
    sa.Column("valid_to", sa.DateTime(timezone=True)),
    sa.Column("actor", sa.Text),
    sa.Column("note", sa.Text),
    geometry_column("MultiPolygon"),
    sa.CheckConstraint(one_of("kind", AREA_KINDS), name="kind_known"),
    sa.CheckConstraint("valid_to IS NULL OR valid_to >= valid_from", name="valid_period"),
    valid_geometry_check("emergency_incident_areas"),
)
sa.Index("ix_emergency_incident_areas_valid_from", incident_areas.c.valid_from)
sa.Index("ix_emergency_incident_areas_valid_to", incident_areas.c.valid_to)
sa.Index("uq_emergency_incident_areas_current", incident_areas.c.incident_id, incident_areas.c.kind,
         unique=True, postgresql_where=sa.text("valid_to IS NULL"))

incident_duplicates = sa.Table(
    "emergency_incident_duplicates",
    METADATA,
    sa.Column("id", sa.BigInteger, sa.Identity(), primary_key=True),
    _incident_fk(),
    sa.Column("candidate_id", sa.BigInteger, sa.ForeignKey("emergency_incidents.id", ondelete="CASCADE"),
              nullable=False),
    sa.Column("distance_m", sa.Float, nullable=False),
    sa.Column("minutes_apart", sa.Float, nullable=False),
    sa.Column("state", sa.Text, nullable=False, server_default="flagged"),
    sa.Column("flagged_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
    sa.Column("resolved_at", sa.DateTime(timezone=True)),
    sa.Column("actor", sa.Text),
    sa.CheckConstraint("state IN ('flagged','merged','dismissed')", name="state_known"),
    sa.UniqueConstraint("incident_id", "candidate_id"),
)

assignments = sa.Table(
    "emergency_assignments",
    METADATA,
    sa.Column("id", sa.BigInteger, sa.Identity(), primary_key=True),
    _incident_fk(),
    sa.Column("resource_id", sa.BigInteger, sa.ForeignKey("emergency_resources.id", ondelete="CASCADE"),
              nullable=False),
    sa.Column("assigned_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
    sa.Column("travel_s", sa.Float),
    sa.Column("turnout_s", sa.Float),
    sa.Column("eta_at", sa.DateTime(timezone=True), comment="预计到达"),
    sa.Column("distance_m", sa.Float),
    sa.Column("method", sa.Text, nullable=False, comment="network 路网 / straight_line 直线估计"),
    sa.Column("arrived_at", sa.DateTime(timezone=True)),
    sa.Column("released_at", sa.DateTime(timezone=True)),
    sa.Column("actor", sa.Text),
    sa.CheckConstraint("method IN ('network','straight_line')", name="method_known"),
)
sa.Index("ix_emergency_assignments_incident", assignments.c.incident_id)
sa.Index("uq_emergency_assignments_open", assignments.c.resource_id, unique=True,
         postgresql_where=sa.text("released_at IS NULL"))

stock_ledger = sa.Table(
    "emergency_stock_ledger",
    METADATA,
    sa.Column("id", sa.BigInteger, sa.Identity(), primary_key=True),
    sa.Column("stock_id", sa.BigInteger, sa.ForeignKey("emergency_stock.id", ondelete="CASCADE"), nullable=False),
    _at(),
    sa.Column("kind", sa.Text, nullable=False),
    sa.Column("quantity_change", sa.Numeric(14, 2), nullable=False),
    sa.Column("balance_after", sa.Numeric(14, 2), nullable=False),
    _incident_fk(nullable=True, ondelete="SET NULL"),  # the ledger outlives the incident it served
    sa.Column("actor", sa.Text),
    sa.Column("note", sa.Text),
    sa.CheckConstraint(one_of("kind", LEDGER_KINDS), name="kind_known"),
    sa.CheckConstraint("balance_after >= 0", name="balance_nonnegative"),
    sa.CheckConstraint("kind <> 'issue' OR quantity_change < 0", name="issue_negative"),
    sa.CheckConstraint("kind <> 'receipt' OR quantity_change > 0", name="receipt_positive"),
)
sa.Index("ix_emergency_stock_ledger_stock", stock_ledger.c.stock_id)

road_closures = sa.Table(
    "emergency_road_closures",
    METADATA,
    *feature_columns(),
    sa.Column("reason", sa.Text, nullable=False, comment="封闭原因"),
    sa.Column("starts_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
    sa.Column("ends_at", sa.DateTime(timezone=True)),
    sa.Column("edge_ids", ARRAY(sa.BigInteger), comment="封闭路段 (空: 与范围相交的路段)"),
    sa.Column("incident_id", sa.BigInteger, sa.ForeignKey("emergency_incidents.id", ondelete="SET NULL")),
    sa.Column("actor", sa.Text),
    geometry_column("MultiPolygon"),
    sa.CheckConstraint("ends_at IS NULL OR ends_at > starts_at", name="window"),
    valid_geometry_check("emergency_road_closures"),
)

population_cells = sa.Table(
    "emergency_population_cells",
    METADATA,
    *feature_columns(),
    sa.Column("cell_m", sa.Float, nullable=False, comment="格网边长 m"),
    sa.Column("residential_area_m2", sa.Float, nullable=False, comment="居住用地面积"),
    sa.Column("population", sa.Float, nullable=False, comment="估算人口"),
    sa.Column("method", sa.Text, nullable=False, comment="估算方法"),
    geometry_column("Polygon"),
    sa.CheckConstraint("population >= 0", name="population_nonnegative"),
)

TABLES_0007 = (incident_status, incident_log, incident_areas, incident_duplicates, assignments, stock_ledger,
               road_closures, population_cells)
# the layer tables among them (the layer-version trigger is attached to these)
LAYER_TABLES_0007 = ("emergency_incident_areas", "emergency_road_closures", "emergency_population_cells")
