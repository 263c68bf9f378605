"""Emergency layers in the registry."""

from gis.registry import REGISTRY, Access, Layer
from layers.emergency.models import incidents, resources, roads, shelters, warehouses

DEPARTMENT = "应急管理局"

RESOURCES = REGISTRY.add(Layer(
    id="emergency_resources", title_zh="应急救援力量", title_en="Emergency resources",
    table=resources, family="emergency", department=DEPARTMENT, access=Access.INTERNAL,
    searchable=("code", "name", "agency", "capability_type"), personal=("leader_phone",),
    map_fields=("code", "name", "kind", "status"), required=("code", "name", "kind", "capability_type", "agency"),
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
    searchable=("code", "name"), map_fields=("code", "name", "capacity_persons", "shelter_class"),
    required=("code", "name", "grade", "shelter_class", "capacity_persons"),
    style={"kind": "fill", "color": "#33a02c"},
))
INCIDENTS = REGISTRY.add(Layer(
    id="emergency_incidents", title_zh="突发事件", title_en="Incidents",
    table=incidents, family="emergency", department=DEPARTMENT, access=Access.INTERNAL,
    searchable=("code", "incident_type"), personal=("reporter_phone",),
    map_fields=("code", "incident_type", "level", "status"), datetime_column="reported_at",
    required=("code", "source_line", "incident_type"), style={"kind": "point", "color": "#e31a1c"},
))
ROADS = REGISTRY.add(Layer(
    id="emergency_roads", title_zh="道路网", title_en="Road network",
    table=roads, family="emergency", department="交通运输局", access=Access.PUBLIC,
    searchable=("name",), map_fields=("name", "road_class"),
    read_only=("id", "version", "source", "target"), required=("road_class", "speed_kmh"),
    style={"kind": "line", "by": "road_class", "basemap": True},
))
