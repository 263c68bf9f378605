"""Emergency layers in the registry."""

from gis.registry import REGISTRY, Access, Layer, WriteMode
from layers.emergency.models import (
    incident_areas,
    incidents,
    population_cells,
    resources,
    road_closures,
    roads,
    shelters,
    warehouses,
)

DEPARTMENT = "应急管理局"
SET_BY_GOVGIS = ("id", "version", "created_at", "updated_at")

RESOURCES = REGISTRY.add(Layer(
    id="emergency_resources", title_zh="应急救援力量", title_en="Emergency resources",
    table=resources, family="emergency", department=DEPARTMENT, access=Access.INTERNAL,
    searchable=("code", "name", "agency", "capability_type"), personal=("leader_phone",),
    map_fields=("code", "name", "kind", "capability_type", "status"),
    required=("code", "name", "kind", "capability_type", "agency"),
    # the status moves only through the module (assignments, ICS history): not by a generic edit
    read_only=(*SET_BY_GOVGIS, "status"),
    style={"kind": "point", "by": "kind", "cluster": True},
))
WAREHOUSES = REGISTRY.add(Layer(
    id="emergency_warehouses", title_zh="应急物资储备库", title_en="Supply warehouses",
    table=warehouses, family="emergency", department=DEPARTMENT, access=Access.INTERNAL,
    searchable=("code", "name"), personal=("keeper_phone",), map_fields=("code", "name"),
    required=("code", "name", "agency"), style={"kind": "point", "color": "#6a3d9a"},
))
SHELTERS = REGISTRY.add(Layer(
    id="emergency_shelters", title_zh="应急避难场所", title_en="Shelters",
    table=shelters, family="emergency", department=DEPARTMENT, access=Access.PUBLIC,
    searchable=("code", "name"), map_fields=("code", "name", "capacity_persons", "shelter_class", "occupancy"),
    required=("code", "name", "grade", "shelter_class", "capacity_persons"),
    # coloured by class (webmap/legends.py SHELTER_CLASSES); a full one is outlined in red
    style={"kind": "fill", "color": "#33a02c", "fill": "shelter_class", "legend": "shelter_classes", "opacity": 0.7},
))
INCIDENTS = REGISTRY.add(Layer(
    id="emergency_incidents", title_zh="突发事件", title_en="Incidents",
    table=incidents, family="emergency", department=DEPARTMENT, access=Access.INTERNAL,
    searchable=("code", "incident_type", "type_code", "category"), personal=("reporter_phone",),
    map_fields=("code", "incident_type", "category", "level", "status"), datetime_column="reported_at",
    required=("code", "source_line", "incident_type"),
    # the workflow (timed status history, merges) and the versioned areas belong to the module
    read_only=(*SET_BY_GOVGIS, "status", "closed_at", "merged_into", "incident_area", "impact_area"),
    style={"kind": "point", "by": "status", "color": "#e31a1c"},
))
ROADS = REGISTRY.add(Layer(
    id="emergency_roads", title_zh="道路网", title_en="Road network",
    table=roads, family="emergency", department="交通运输局", access=Access.PUBLIC,
    searchable=("name",), map_fields=("name", "road_class", "oneway"),
    read_only=(*SET_BY_GOVGIS, "source", "target"), required=("road_class", "speed_kmh"),
    style={"kind": "line", "by": "road_class", "basemap": True},
    description="路网（pgRouting 结构：source/target 与 cost/reverse_cost 秒；reverse_cost<0 为单行）",
))
INCIDENT_AREAS = REGISTRY.add(Layer(
    id="emergency_incident_areas", title_zh="事发与影响范围（历史版本）", title_en="Incident and impact areas",
    table=incident_areas, family="emergency", department=DEPARTMENT, access=Access.INTERNAL,
    searchable=("kind",), map_fields=("incident_id", "kind", "version"),
    read_only=("id", "version", "valid_from", "valid_to", "incident_id", "kind", "actor"),
    valid_time=("valid_from", "valid_to"),
    write_mode=WriteMode.MODULE, write_via="PUT /emergency/incidents/{incident_id}/areas/{kind}",
    style={"kind": "fill", "by": "kind", "color": "#fb9a99"},
    description="每次修改形成新版本，旧版本保留（as of 可查）；由应急模块写入",
))
CLOSURES = REGISTRY.add(Layer(
    id="emergency_road_closures", title_zh="道路封闭", title_en="Road closures",
    table=road_closures, family="emergency", department="交通运输局", access=Access.INTERNAL,
    searchable=("reason",), map_fields=("reason", "starts_at", "ends_at"),
    required=("reason",), datetime_column="starts_at",
    style={"kind": "fill", "color": "#000000"},
    description="封闭时段内不可通行；下一次调度即生效，无需重建路网",
))
POPULATION = REGISTRY.add(Layer(
    id="emergency_population_cells", title_zh="人口估算格网", title_en="Estimated population grid",
    table=population_cells, family="emergency", department=DEPARTMENT, access=Access.INTERNAL,
    map_fields=("population", "residential_area_m2"),
    read_only=(*SET_BY_GOVGIS, "cell_m", "residential_area_m2", "population", "method"),
    style={"kind": "fill", "by": "population", "color": "#fdbf6f", "min_zoom": 13},
    description="由宗地居住用地面积×人口密度（设置）估算，非普查数据",
))
