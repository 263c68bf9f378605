"""Land-use layers in the registry."""

from gis.registry import REGISTRY, Access, Layer
from layers.landuse.models import control_lines, planning_zones, price_zones, survey_patches

DEPARTMENT = "自然资源和规划局"

SURVEY = REGISTRY.add(Layer(
    id="landuse_survey", title_zh="土地利用现状图斑", title_en="Land-use survey patches",
    table=survey_patches, family="landuse", department=DEPARTMENT, access=Access.PUBLIC,
    searchable=("patch_no", "class_code", "class_name"), map_fields=("class_code", "survey_year"),
    read_only=("id", "version", "created_at", "updated_at", "plane_area"),
    required=("patch_no", "survey_year", "class_code", "district", "ellipsoidal_area"),
    style={"kind": "fill", "fill": "class_code", "legend": "landuse_classes", "min_zoom": 12},
))
PLANNING = REGISTRY.add(Layer(
    id="landuse_planning_zones", title_zh="规划用地分区", title_en="Planning zones",
    table=planning_zones, family="landuse", department=DEPARTMENT, access=Access.PUBLIC,
    searchable=("plan_name", "class_code", "class_name"), map_fields=("class_code", "plan_name"),
    required=("plan_name", "plan_year", "class_code", "district"),
    style={"kind": "fill", "fill": "class_code", "legend": "planning_classes", "min_zoom": 11},
))
CONTROL_LINES = REGISTRY.add(Layer(
    id="landuse_control_lines", title_zh="三区三线控制线", title_en="Control lines",
    table=control_lines, family="landuse", department=DEPARTMENT, access=Access.INTERNAL,
    searchable=("name", "kind"), map_fields=("kind", "zone_type", "name"),
    required=("kind", "name"),
    style={"kind": "line", "by": "kind",
           "colors": {"permanent_basic_farmland": "#f2c12e", "ecological_red_line": "#d7191c",
                      "urban_development_boundary": "#7b3294"}},
))
PRICE_ZONES = REGISTRY.add(Layer(
    id="landuse_price_zones", title_zh="基准地价级别", title_en="Base land-price zones",
    table=price_zones, family="landuse", department=DEPARTMENT, access=Access.INTERNAL,
    searchable=("land_class",), map_fields=("land_class", "grade", "price_per_m2"),
    required=("land_class", "grade", "price_per_m2", "base_date"),
    style={"kind": "fill", "fill": "grade", "opacity": 0.3},
))
