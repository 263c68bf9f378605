"""Land-use layers in the registry."""

from gis.registry import REGISTRY, Access, Layer, WriteMode
from layers.landuse.models import (
    change_patches,
    control_lines,
    dispute_claims,
    land_approvals,
    planning_zones,
    prereview_reports,
    price_zones,
    supervision_cases,
    survey_patches,
)

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
CHANGES = REGISTRY.add(Layer(
    id="landuse_change_patches", title_zh="土地利用变更图斑", title_en="Land-use change patches",
    table=change_patches, family="landuse", department=DEPARTMENT, access=Access.PUBLIC,
    searchable=("from_code", "to_code"), map_fields=("from_code", "to_code", "to_year"),
    read_only=("id", "version", "created_at", "updated_at", "plane_area"),
    required=("from_year", "to_year", "class_system", "from_code", "to_code", "district", "ellipsoidal_area"),
    style={"kind": "fill", "color": "#e66101", "opacity": 0.5, "min_zoom": 12},
    description="两个调查年度之间地类发生变化的图斑 (from → to)",
))
SUPERVISION = REGISTRY.add(Layer(
    id="landuse_supervision_cases", title_zh="土地监察案件", title_en="Land supervision cases",
    table=supervision_cases, family="landuse", department=DEPARTMENT, access=Access.INTERNAL,
    searchable=("case_no", "status", "kind"), personal=("party",), map_fields=("case_no", "status", "kind"),
    required=("case_no", "found_on"),
    style={"kind": "fill", "color": "#ca0020", "opacity": 0.4},
))
# 土地权属纠纷: each party's claim in an ownership-dispute case; a natural person's name is personal
# data (an organisation's is public record), like a parcel's right holder
DISPUTE_CLAIMS = REGISTRY.add(Layer(
    id="landuse_dispute_claims", title_zh="权属纠纷主张范围", title_en="Ownership dispute claims",
    table=dispute_claims, family="landuse", department=DEPARTMENT, access=Access.INTERNAL,
    searchable=("basis",), personal=("party_id_number", "party_phone"),
    personal_when={"party": ("party_kind", ("person",))},
    map_fields=("case_id", "party_kind"),
    read_only=("id", "version", "created_at", "updated_at", "claimed_area"),
    required=("case_id", "party", "party_kind"),
    write_mode=WriteMode.MODULE, write_via="POST /land/supervision/disputes",
    style={"kind": "fill", "color": "#8856a7", "opacity": 0.3},
    description="权属纠纷案件中各当事人主张的土地范围",
))
APPROVALS = REGISTRY.add(Layer(
    id="landuse_land_approvals", title_zh="建设用地审批", title_en="Construction-land approvals",
    table=land_approvals, family="landuse", department=DEPARTMENT, access=Access.INTERNAL,
    searchable=("approval_no", "project_name", "land_user"), map_fields=("approval_no", "supply_kind"),
    read_only=("id", "version", "created_at", "updated_at", "plane_area"),
    required=("approval_no", "supply_kind", "project_name", "land_user", "landuse_code", "approved_on"),
    datetime_column="approved_on",
    style={"kind": "fill", "color": "#4dac26", "opacity": 0.3},
))
PREREVIEWS = REGISTRY.add(Layer(
    id="landuse_prereview_reports", title_zh="用地预审报告", title_en="Site pre-review reports",
    table=prereview_reports, family="landuse", department=DEPARTMENT, access=Access.INTERNAL,
    searchable=("project_name", "verdict"), map_fields=("project_name", "verdict"),
    read_only=("id", "version", "created_at", "updated_at", "report", "verdict", "total_area"),
    # the report's content depends on who reads it (holders, pipes): only /planning/prereview/{id} shows it
    hidden=("report",),
    # a department's reports are its own; others read them only with this layer named in their key
    owner_column="department",
    write_mode=WriteMode.MODULE, write_via="POST /planning/prereview",
    style={"kind": "line", "color": "#d7191c"},
))
