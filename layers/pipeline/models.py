"""Underground pipeline tables: networks, nodes, pipes, customers, repair records.

Pipes and nodes form a topological network per utility (pipe.from_node → pipe.to_node). Isolation
valves are nodes of kind ``isolation_valve`` with a state; control valves (PRV, check valves) are a
different kind because they are not isolation barriers. Sources and tanks feed the network.
"""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import JSONB

from gis.schema import METADATA, feature_columns, geometry_column, one_of, valid_geometry_check
from layers.pipeline.codes import utilities

# the utility code list (data/codes/pipeline_utilities.csv) the rule tables key on
UTILITIES = utilities()
NODE_KINDS = ("junction", "isolation_valve", "control_valve", "hydrant", "tee", "meter", "source", "tank",
              "pump", "end")
VALVE_STATES = ("open", "closed", "inoperable")
# the INP statuses of a link: a pipe is open, closed, or has a check valve (CV: flow from from_node to
# to_node only); a pump or control valve is open, closed, or active (controlled by its setting)
PIPE_LINK_STATES = ("open", "closed", "check")
NODE_LINK_STATES = ("open", "closed", "active")
LENGTH_SOURCES = ("drawn", "recorded")
CUSTOMER_CATEGORIES = ("residential", "commercial", "industrial", "hospital", "school", "government",
                       "fire", "other")



networks = sa.Table(
    "pipeline_networks",
    METADATA,
    sa.Column("id", sa.Integer, sa.Identity(), primary_key=True),
    sa.Column("utility", sa.Text, nullable=False, comment="管线类别"),
    sa.Column("name", sa.Text, nullable=False),
    sa.Column("operator", sa.Text, comment="权属单位"),
    sa.Column("snap_tolerance_m", sa.Float, nullable=False, server_default="0.05"),
    # migration 0009: which lengths the analyses use, and the version cached graphs are keyed by
    # (triggers bump it on every change to the network's pipes, nodes and customers)
    sa.Column("length_source", sa.Text, nullable=False, server_default="drawn", comment="长度依据"),
    sa.Column("graph_version", sa.BigInteger, nullable=False, server_default="0",
              comment="bumped by every change to the network's pipes, nodes, customers"),
    sa.CheckConstraint(one_of("utility", UTILITIES), name="utility_known"),
    sa.CheckConstraint(one_of("length_source", LENGTH_SOURCES), name="length_source_known"),
    sa.UniqueConstraint("name"),
)

nodes = sa.Table(
    "pipeline_nodes",
    METADATA,
    *feature_columns(),
    sa.Column("network_id", sa.Integer, sa.ForeignKey("pipeline_networks.id", ondelete="CASCADE"),
              nullable=False),
    sa.Column("code", sa.Text, nullable=False, comment="编号"),
    sa.Column("kind", sa.Text, nullable=False, comment="节点类型"),
    sa.Column("valve_state", sa.Text, comment="阀门状态 open/closed/inoperable"),
    sa.Column("control_type", sa.Text, comment="控制阀类型 PRV/PSV/FCV/TCV/check"),
    sa.Column("diameter_mm", sa.Integer, comment="口径 mm"),
    sa.Column("last_exercised", sa.Date, comment="最近启闭检查"),
    sa.Column("access_note", sa.Text, comment="位置说明"),
    sa.Column("ground_elevation_m", sa.Float, comment="地面高程 m"),
    sa.Column("install_year", sa.SmallInteger),
    # migration 0009: a pump or control valve may be closed; pumps, PRV/PSV and check valves pass supply
    # only from their inlet pipe (deferred: a network's nodes and pipes refer to each other)
    sa.Column("link_state", sa.Text, comment="泵或控制阀状态 open/closed/active"),
    sa.Column("inlet_pipe", sa.BigInteger, sa.ForeignKey("pipeline_pipes.id", ondelete="SET NULL", deferrable=True,
                                                         initially="DEFERRED", use_alter=True), comment="进口管"),
    geometry_column("Point"),
    sa.CheckConstraint(one_of("kind", NODE_KINDS), name="kind_known"),
    sa.CheckConstraint("link_state IS NULL OR " + one_of("link_state", NODE_LINK_STATES), name="link_state_known"),
    sa.CheckConstraint("(kind = 'isolation_valve') = (valve_state IS NOT NULL)", name="valve_state_iff_valve"),
    sa.CheckConstraint("valve_state IS NULL OR " + one_of("valve_state", VALVE_STATES), name="valve_state_known"),
    sa.UniqueConstraint("network_id", "code"),
)
sa.Index("ix_pipeline_nodes_network_kind", nodes.c.network_id, nodes.c.kind)

pipes = sa.Table(
    "pipeline_pipes",
    METADATA,
    *feature_columns(),
    sa.Column("network_id", sa.Integer, sa.ForeignKey("pipeline_networks.id", ondelete="CASCADE"),
              nullable=False),
    sa.Column("code", sa.Text, nullable=False, comment="编号"),
    sa.Column("from_node", sa.BigInteger, sa.ForeignKey("pipeline_nodes.id"), comment="起点"),
    sa.Column("to_node", sa.BigInteger, sa.ForeignKey("pipeline_nodes.id"), comment="终点"),
    sa.Column("material", sa.Text, comment="材质"),
    sa.Column("diameter_mm", sa.Integer, comment="管径 mm"),
    sa.Column("install_year", sa.SmallInteger, comment="敷设年代"),
    sa.Column("burial_depth_m", sa.Float, comment="埋深 m (管顶)"),
    sa.Column("pressure_class", sa.Text, comment="压力级别"),
    sa.Column("status", sa.Text, nullable=False, server_default="in_service"),
    sa.Column("length_m", sa.Float, sa.Computed("ST_Length(geom)", persisted=True), comment="长度 m"),
    # migration 0009: INP status, the recorded length, and where an imported piece comes from
    sa.Column("link_state", sa.Text, nullable=False, server_default="open", comment="运行状态 open/closed/check"),
    sa.Column("recorded_length_m", sa.Float, comment="记录长度 m"),
    sa.Column("source_link", sa.Text, comment="源管段"),
    sa.Column("valve_stub", sa.Boolean, nullable=False, server_default=sa.false(), comment="阀门短管"),
    geometry_column("LineString"),
    sa.CheckConstraint("status IN ('in_service','abandoned','planned')", name="status_known"),
    sa.CheckConstraint(one_of("link_state", PIPE_LINK_STATES), name="link_state_known"),
    sa.CheckConstraint("recorded_length_m IS NULL OR recorded_length_m > 0", name="recorded_length_positive"),
    sa.CheckConstraint("diameter_mm IS NULL OR diameter_mm > 0", name="diameter_positive"),
    sa.CheckConstraint("burial_depth_m IS NULL OR burial_depth_m >= 0", name="depth_positive"),
    valid_geometry_check("pipeline_pipes"),
    sa.UniqueConstraint("network_id", "code"),
)
sa.Index("ix_pipeline_pipes_from", pipes.c.from_node)
sa.Index("ix_pipeline_pipes_to", pipes.c.to_node)
sa.Index("ix_pipeline_pipes_network", pipes.c.network_id)

customers = sa.Table(
    "pipeline_customers",
    METADATA,
    *feature_columns(),
    sa.Column("network_id", sa.Integer, sa.ForeignKey("pipeline_networks.id", ondelete="CASCADE"),
              nullable=False),
    sa.Column("account_no", sa.Text, nullable=False, comment="用户编号"),
    sa.Column("name", sa.Text, nullable=False, comment="用户名称"),
    sa.Column("category", sa.Text, nullable=False, server_default="residential", comment="用户类别"),
    sa.Column("node_id", sa.BigInteger, sa.ForeignKey("pipeline_nodes.id"), comment="接入点"),
    sa.Column("address", sa.Text, comment="地址"),
    sa.Column("contact_name", sa.Text, comment="联系人"),
    sa.Column("contact_phone", sa.Text, comment="联系电话"),
    sa.Column("households", sa.Integer, nullable=False, server_default="1", comment="户数"),
    sa.Column("parcel_code", sa.String(19), comment="所在宗地"),
    geometry_column("Point"),
    sa.CheckConstraint(one_of("category", CUSTOMER_CATEGORIES), name="category_known"),
    sa.UniqueConstraint("network_id", "account_no"),
)
sa.Index("ix_pipeline_customers_node", customers.c.node_id)

repairs = sa.Table(
    "pipeline_repairs",
    METADATA,
    sa.Column("id", sa.BigInteger, sa.Identity(), primary_key=True),
    sa.Column("pipe_id", sa.BigInteger, sa.ForeignKey("pipeline_pipes.id", ondelete="CASCADE"), nullable=False),
    sa.Column("repaired_on", sa.Date, nullable=False),
    sa.Column("kind", sa.Text, nullable=False, comment="burst/leak/corrosion/replacement/other"),
    sa.Column("description", sa.Text),
    sa.Column("crew", sa.Text),
    sa.Column("cost_yuan", sa.Numeric(12, 2)),
    sa.CheckConstraint("kind IN ('burst','leak','corrosion','replacement','other')", name="kind_known"),
)
sa.Index("ix_pipeline_repairs_pipe", repairs.c.pipe_id)

# One row per isolation computed for a burst, kept for the record: a failed-valve recompute is a new
# row pointing at the run it revises (parent_id), so every version the crews saw stays available.
isolations = sa.Table(
    "pipeline_isolations",
    METADATA,
    sa.Column("id", sa.BigInteger, sa.Identity(), primary_key=True),
    sa.Column("network_id", sa.Integer, sa.ForeignKey("pipeline_networks.id", ondelete="CASCADE"),
              nullable=False),
    sa.Column("pipe_id", sa.BigInteger, sa.ForeignKey("pipeline_pipes.id", ondelete="SET NULL"),
              comment="爆管管段"),
    sa.Column("parent_id", sa.BigInteger, sa.ForeignKey("pipeline_isolations.id"), comment="上一版本"),
    sa.Column("failed_valves", JSONB, nullable=False, server_default="[]", comment="无法关闭的阀门"),
    sa.Column("snap_distance_m", sa.Float),
    sa.Column("summary", JSONB, nullable=False, comment="valves, pipes, customers (ids) and counts"),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
    sa.Column("created_by", sa.Text, nullable=False),
    sa.Column("department", sa.Text, nullable=False, server_default="govgis", comment="所属部门"),
    geometry_column("Point", name="burst_geom", nullable=True, comment="爆管位置"),
)
sa.Index("ix_pipeline_isolations_network", isolations.c.network_id)

ORDER_STATUSES = ("planned", "valves_closed", "repaired", "restored", "cancelled")

repair_orders = sa.Table(
    "pipeline_repair_orders",
    METADATA,
    sa.Column("id", sa.BigInteger, sa.Identity(), primary_key=True),
    sa.Column("code", sa.Text, nullable=False, comment="抢修单号"),
    sa.Column("isolation_id", sa.BigInteger, sa.ForeignKey("pipeline_isolations.id"), nullable=False),
    sa.Column("network_id", sa.Integer, sa.ForeignKey("pipeline_networks.id", ondelete="CASCADE"),
              nullable=False),
    sa.Column("status", sa.Text, nullable=False, server_default="planned"),
    sa.Column("incident_at", sa.DateTime(timezone=True), nullable=False, comment="事故时间"),
    sa.Column("place", sa.Text, comment="事故地点"),
    sa.Column("planned_restore_at", sa.DateTime(timezone=True), nullable=False, comment="计划恢复供应时间"),
    sa.Column("valve_ids", JSONB, nullable=False, comment="需关闭阀门"),
    sa.Column("notice_text", sa.Text, nullable=False, comment="停水/停气通知"),
    sa.Column("checklist", JSONB, nullable=False, comment="抢修检查清单"),
    sa.Column("version", sa.Integer, nullable=False, server_default="1"),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
    sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
    sa.CheckConstraint(one_of("status", ORDER_STATUSES), name="status_known"),
    sa.UniqueConstraint("code"),
)

order_events = sa.Table(
    "pipeline_order_events",
    METADATA,
    sa.Column("id", sa.BigInteger, sa.Identity(), primary_key=True),
    sa.Column("order_id", sa.BigInteger, sa.ForeignKey("pipeline_repair_orders.id", ondelete="CASCADE"),
              nullable=False),
    sa.Column("at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
    sa.Column("from_status", sa.Text),
    sa.Column("to_status", sa.Text, nullable=False),
    sa.Column("actor", sa.Text, nullable=False),
    sa.Column("note", sa.Text),
)
sa.Index("ix_pipeline_order_events_order", order_events.c.order_id)

# Design workspaces (管网辅助设计, migration 0016): an area of a network checked out for a design. Each
# pipe and node of the area is copied into design_features with the version it had at checkout, so
# the paste back can tell a design edit from an edit someone made to the network meanwhile.
WORKSPACE_STATUSES = ("open", "merged", "abandoned")
DESIGN_KINDS = ("pipe", "node")
DESIGN_ACTIONS = ("keep", "insert", "update", "delete")
DESIGN_RESOLUTIONS = ("mine", "theirs")

design_workspaces = sa.Table(
    "pipeline_design_workspaces",
    METADATA,
    *feature_columns(),
    sa.Column("network_id", sa.Integer, sa.ForeignKey("pipeline_networks.id", ondelete="CASCADE"),
              nullable=False),
    sa.Column("name", sa.Text, nullable=False, comment="设计名称"),
    sa.Column("margin_m", sa.Float, nullable=False, server_default="0", comment="外扩距离 m"),
    sa.Column("status", sa.Text, nullable=False, server_default="open", comment="open/merged/abandoned"),
    sa.Column("created_by", sa.Text, nullable=False),
    sa.Column("department", sa.Text, nullable=False, server_default="govgis", comment="所属部门"),
    sa.Column("closed_at", sa.DateTime(timezone=True), comment="合并或放弃时间"),
    sa.Column("summary", JSONB, comment="what the paste back wrote"),
    geometry_column("Polygon", name="area", comment="设计范围"),
    sa.CheckConstraint(one_of("status", WORKSPACE_STATUSES), name="status_known"),
    sa.CheckConstraint("margin_m >= 0", name="margin_positive"),
)
sa.Index("ix_pipeline_design_workspaces_network", design_workspaces.c.network_id)

design_features = sa.Table(
    "pipeline_design_features",
    METADATA,
    *feature_columns(),
    sa.Column("workspace_id", sa.BigInteger, sa.ForeignKey("pipeline_design_workspaces.id", ondelete="CASCADE"),
              nullable=False),
    sa.Column("kind", sa.Text, nullable=False, comment="pipe/node"),
    sa.Column("source_id", sa.BigInteger, comment="原要素 id (新增为空)"),
    sa.Column("base_version", sa.Integer, comment="签出时版本"),
    sa.Column("base", JSONB, comment="签出时属性与几何"),
    sa.Column("properties", JSONB, nullable=False, server_default="{}", comment="设计属性"),
    sa.Column("action", sa.Text, nullable=False, server_default="keep", comment="keep/insert/update/delete"),
    sa.Column("resolution", sa.Text, comment="冲突处理 mine/theirs"),
    geometry_column("Geometry", comment="设计几何"),
    sa.CheckConstraint(one_of("kind", DESIGN_KINDS), name="kind_known"),
    sa.CheckConstraint(one_of("action", DESIGN_ACTIONS), name="action_known"),
    sa.CheckConstraint("resolution IS NULL OR " + one_of("resolution", DESIGN_RESOLUTIONS), name="resolution_known"),
    sa.CheckConstraint("(action = 'insert') = (source_id IS NULL)", name="insert_iff_new"),
    sa.UniqueConstraint("workspace_id", "kind", "source_id"),
)
sa.Index("ix_pipeline_design_features_workspace", design_features.c.workspace_id)

# The billing-system interface (用户管理, migration 0017): each import of accounts or meter readings is
# one batch row (what was received, accepted and refused, with the reasons); readings carry the batch
# that last wrote them. A reading is keyed by customer, kind and time, so importing the same rows
# again changes nothing (idempotent), and a corrected value replaces the old one (audited).
IMPORT_KINDS = ("accounts", "readings")
IMPORT_SOURCES = ("csv", "json", "demo")
# billing: the meter read of a billing period (抄表, monthly or bimonthly); interval: a smart meter's
# hourly interval (智能表). The consumption of a reading is the volume since the previous read of the
# same kind, up to ``read_at`` (interval ending), so a billing and an interval read never add up.
READING_KINDS = ("billing", "interval")

billing_imports = sa.Table(
    "pipeline_billing_imports",
    METADATA,
    sa.Column("id", sa.BigInteger, sa.Identity(), primary_key=True),
    sa.Column("kind", sa.Text, nullable=False, comment="accounts/readings"),
    sa.Column("network_id", sa.Integer, sa.ForeignKey("pipeline_networks.id", ondelete="CASCADE"), comment="管网"),
    sa.Column("source", sa.Text, nullable=False, comment="csv/json/demo"),
    sa.Column("filename", sa.Text, comment="上传文件名"),
    sa.Column("received", sa.Integer, nullable=False, comment="收到行数"),
    sa.Column("inserted", sa.Integer, nullable=False, server_default="0", comment="新增"),
    sa.Column("updated", sa.Integer, nullable=False, server_default="0", comment="更正"),
    sa.Column("unchanged", sa.Integer, nullable=False, server_default="0", comment="重复导入未变"),
    sa.Column("refused", JSONB, nullable=False, server_default="[]", comment="拒收行及原因"),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
    sa.Column("created_by", sa.Text, nullable=False),
    sa.Column("department", sa.Text, nullable=False, server_default="govgis", comment="所属部门"),
    sa.CheckConstraint(one_of("kind", IMPORT_KINDS), name="kind_known"),
    sa.CheckConstraint(one_of("source", IMPORT_SOURCES), name="source_known"),
)

# Sized for a year of readings of every customer: no surrogate key (the primary key is the idempotency
# key and the per-customer index), narrow columns, and a BRIN index on the time for period scans over
# all customers (rows arrive roughly in time order, so BRIN stays a few pages where a B-tree would be
# as big as the table).
meter_readings = sa.Table(
    "pipeline_meter_readings",
    METADATA,
    sa.Column("customer_id", sa.BigInteger, sa.ForeignKey("pipeline_customers.id", ondelete="CASCADE"),
              primary_key=True, comment="用户"),
    sa.Column("kind", sa.Text, primary_key=True, comment="billing 抄表 / interval 智能表时段"),
    sa.Column("read_at", sa.DateTime(timezone=True), primary_key=True, comment="抄表时间 (时段结束)"),
    sa.Column("consumption", sa.Numeric(14, 3), nullable=False, comment="用量 (自上次抄表)"),
    sa.Column("register_value", sa.Numeric(14, 3), comment="表底数"),
    sa.Column("import_id", sa.BigInteger, sa.ForeignKey("pipeline_billing_imports.id", ondelete="SET NULL"),
              comment="导入批次"),
    sa.CheckConstraint(one_of("kind", READING_KINDS), name="kind_known"),
    sa.CheckConstraint("consumption >= 0", name="consumption_positive"),
    sa.CheckConstraint("register_value IS NULL OR register_value >= 0", name="register_positive"),
)
sa.Index("ix_pipeline_meter_readings_read_at", meter_readings.c.read_at, postgresql_using="brin")

TABLES = (networks, nodes, pipes, customers, repairs, isolations, repair_orders, order_events, design_workspaces,
          design_features, billing_imports, meter_readings)
