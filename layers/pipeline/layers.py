"""Pipeline layers in the registry, and the stores the pipeline module writes."""

import sqlalchemy as sa

from gis.registry import REGISTRY, Access, Layer, WriteMode
from layers.pipeline.codes import pipe_value_problems
from layers.pipeline.models import (
    billing_imports,
    customers,
    design_features,
    design_workspaces,
    isolations,
    meter_readings,
    nodes,
    pipes,
    repair_orders,
    repairs,
)

DEPARTMENT = "市政公用事业局"
# CJJ 61 survey colours per utility (domain.md says verify: kept here as data the map reads)
UTILITY_COLORS = {"water": "#00a0e9", "drainage": "#8b5a2b", "storm": "#8b5a2b", "sewer": "#8b5a2b",
                  "gas": "#ff69b4", "heat": "#ff8c00", "power": "#e60012", "telecom": "#00a651",
                  "industrial": "#000000"}

PIPES = REGISTRY.add(Layer(
    id="pipeline_pipes", title_zh="地下管线", title_en="Pipes",
    table=pipes, family="pipeline", department=DEPARTMENT, access=Access.INTERNAL,
    searchable=("code", "material"), map_fields=("code", "network_id", "diameter_mm", "material"),
    read_only=("id", "version", "created_at", "updated_at", "length_m"),
    required=("network_id", "code"),
    # material and pressure class from the shared code lists (data/codes), which the rule tables key on
    validators=(pipe_value_problems,),
    style={"kind": "line", "by": "utility", "colors": UTILITY_COLORS, "min_zoom": 13},
))
NODES = REGISTRY.add(Layer(
    id="pipeline_nodes", title_zh="管线节点与阀门", title_en="Pipe nodes and valves",
    table=nodes, family="pipeline", department=DEPARTMENT, access=Access.INTERNAL,
    searchable=("code", "kind"), map_fields=("code", "kind", "valve_state", "network_id"),
    required=("network_id", "code", "kind"),
    style={"kind": "point", "by": "kind", "min_zoom": 15},
))
CUSTOMERS = REGISTRY.add(Layer(
    id="pipeline_customers", title_zh="管网用户", title_en="Customers",
    table=customers, family="pipeline", department=DEPARTMENT, access=Access.RESTRICTED,
    searchable=("account_no", "name", "address"), personal=("contact_name", "contact_phone"),
    # a household's account carries the person's name; a company's or a school's does not
    personal_when={"name": ("category", ("residential",))},
    map_fields=("account_no", "category", "network_id"),
    required=("network_id", "account_no", "name"),
    style={"kind": "point", "by": "category", "cluster": True, "min_zoom": 15},
))


def _store(table: sa.Table, title_zh: str, title_en: str, geometry_column: str = "geom",
           owner_column: str | None = None, write_mode: WriteMode = WriteMode.GENERIC,
           write_via: str = "") -> Layer:
    """A table only the pipeline module writes (no OGC collection, so not in the registry). Writing it
    needs a write scope on the family ``pipeline`` (or on the table itself): a key with write on pipes
    alone, or a read-only key, may not store isolations, repair orders or repair records."""
    return Layer(id=table.name, title_zh=title_zh, title_en=title_en, table=table, family="pipeline",
                 department=DEPARTMENT, access=Access.INTERNAL, geometry_column=geometry_column,
                 owner_column=owner_column, write_mode=write_mode, write_via=write_via)


# an isolation (and the repair orders made from it) belongs to the department that ran it
ISOLATIONS = _store(isolations, "爆管关阀方案", "Burst isolations", geometry_column="burst_geom",
                    owner_column="department")
REPAIR_ORDERS = _store(repair_orders, "抢修单", "Repair orders")
REPAIRS = _store(repairs, "维修记录", "Repair records")
# a design workspace belongs to the department that checked it out; its features change only through
# the design endpoints (which keep the versions at checkout the paste back compares)
DESIGN_VIA = "/pipeline/design/workspaces"
DESIGN_WORKSPACES = _store(design_workspaces, "管网设计工作区", "Network design workspaces", geometry_column="area",
                           owner_column="department", write_mode=WriteMode.MODULE, write_via=DESIGN_VIA)
DESIGN_FEATURES = _store(design_features, "设计要素", "Design features", write_mode=WriteMode.MODULE,
                         write_via=DESIGN_VIA + "/{id}/features")

# the billing-system interface (用户管理): an import batch belongs to the department that sent it; the
# readings are written only by the import (which keeps the idempotency key and the batch), so
# importing needs write on the restricted customers layer too (an explicit pipeline_customers grant)
BILLING_VIA = "/pipeline/billing"
BILLING_IMPORTS = _store(billing_imports, "收费系统导入批次", "Billing-system imports", owner_column="department",
                         write_mode=WriteMode.MODULE, write_via=BILLING_VIA)
METER_READINGS = _store(meter_readings, "抄表读数", "Meter readings", write_mode=WriteMode.MODULE,
                        write_via=BILLING_VIA + "/readings")
