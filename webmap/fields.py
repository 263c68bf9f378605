"""How the map shows a layer's attributes to a person: titles (zh/en), units, value names, code lists.

The registry's field titles come from column comments, written for developers ("等级
arterial/secondary/local", "network_id"); the identify popup and the print legend need words a
planner or a valve crew reads. This is presentation data only: which fields exist, who may read
them and how they are masked stays with the registry and the API (the map shows values exactly as
the server masked them).

``display`` tells the browser how to format a value:
area (m² with 公顷), length (m), mm, money (元), price (元/m²), datetime (local time to the minute),
date (a calendar date as stored), legal_date (a legal instant shown as its local calendar day),
year (no thousands separator), bool (是/否), network (the network's name), list, text, number.
"""

from __future__ import annotations

import csv
from functools import lru_cache
from pathlib import Path
from typing import Any

from gis.registry import Layer
from webmap.legends import CONTROL_LINE_TITLES, UTILITY_TITLES

CODES_DIR = Path(__file__).resolve().parents[1] / "data" / "codes"

# name → (zh, en, display); a layer-specific entry (layer id, name) wins over the generic one
FIELD_TITLES: dict[str, tuple[str, str, str]] = {
    "id": ("要素号", "Feature id", "number"),
    "version": ("行版本", "Row version", "number"),
    "created_at": ("创建时间", "Created", "datetime"),
    "updated_at": ("更新时间", "Updated", "datetime"),
    "parcel_code": ("宗地代码", "Parcel code", "text"),
    "unit_code": ("不动产单元代码", "Real-estate unit code", "text"),
    "right_holder": ("权利人", "Right holder", "text"),
    "holder_kind": ("权利人类型", "Holder type", "text"),
    "holder_id_number": ("证件号码", "ID number", "text"),
    "holder_phone": ("联系电话", "Phone", "text"),
    "right_type": ("权利类型", "Right type", "text"),
    "landuse_system": ("用途分类体系", "Land-use classification", "text"),
    "landuse_code": ("土地用途", "Land use", "text"),
    "address": ("坐落", "Address", "text"),
    "district": ("行政区代码", "District code", "text"),
    "registered_area": ("登记面积", "Registered area", "area"),
    "plane_area": ("平面面积", "Plane area", "area"),
    "ellipsoidal_area": ("椭球面积", "Ellipsoidal area", "area"),
    "effective_area_m2": ("有效避难面积", "Effective shelter area", "area"),
    "total_area": ("红线面积", "Red-line area", "area"),
    "status": ("状态", "Status", "text"),
    "valid_from": ("生效日期", "Effective from", "legal_date"),
    "valid_to": ("失效日期", "Effective until", "legal_date"),
    "recorded_from": ("登簿时间", "Recorded", "datetime"),
    "recorded_to": ("登簿更正或注销时间", "Record closed", "datetime"),
    "code": ("编号", "Code", "text"),
    "name": ("名称", "Name", "text"),
    "kind": ("类型", "Type", "text"),
    "capability_type": ("能力类型", "Capability", "text"),
    "capability_level": ("能力等级", "Capability level", "number"),
    "capacity": ("人数或载量", "Capacity", "number"),
    "agency": ("所属单位", "Agency", "text"),
    "duty_phone": ("值班电话", "Duty phone", "text"),
    "leader_phone": ("负责人电话", "Leader's phone", "text"),
    "keeper_phone": ("保管员电话", "Keeper's phone", "text"),
    "grade": ("级别", "Grade", "text"),
    "shelter_class": ("场所类型", "Shelter class", "text"),
    "hazards": ("适用灾种", "Hazards", "text"),
    "capacity_persons": ("容纳人数", "Capacity (persons)", "persons"),
    "service_radius_m": ("服务半径", "Service radius", "length"),
    "source_line": ("来源", "Reported via", "text"),
    "incident_type": ("事件类型", "Incident type", "text"),
    "level": ("等级", "Level", "number"),
    "reported_at": ("报告时间", "Reported", "datetime"),
    "closed_at": ("结束时间", "Closed", "datetime"),
    "description": ("说明", "Description", "text"),
    "reporter_phone": ("报警人电话", "Reporter's phone", "text"),
    "road_class": ("道路等级", "Road class", "text"),
    "speed_kmh": ("设计车速", "Speed", "speed"),
    "oneway": ("单行", "One-way", "bool"),
    "patch_no": ("图斑编号", "Patch no.", "text"),
    "survey_year": ("调查年度", "Survey year", "year"),
    "class_system": ("分类体系", "Classification", "text"),
    "class_code": ("地类", "Class", "text"),
    "class_name": ("地类名称", "Class name", "text"),
    "settlement_code": ("城镇村属性", "Settlement attribute", "text"),
    "ownership": ("权属性质", "Ownership", "text"),
    "plan_name": ("规划名称", "Plan", "text"),
    "plan_year": ("规划目标年", "Target year", "year"),
    "zone_type": ("分区", "Zone", "text"),
    "approved_on": ("批准日期", "Approved on", "date"),
    "approval_no": ("批准文号", "Approval no.", "text"),
    "land_class": ("用途", "Land use", "text"),
    "price_per_m2": ("基准地价", "Base land price", "price"),
    "base_date": ("估价期日", "Valuation date", "date"),
    "from_year": ("基期年度", "Base year", "year"),
    "to_year": ("变更年度", "Change year", "year"),
    "from_code": ("原地类", "Former class", "text"),
    "to_code": ("现地类", "Current class", "text"),
    "case_no": ("案件编号", "Case no.", "text"),
    "found_on": ("发现日期", "Found on", "date"),
    "party": ("当事人", "Party", "text"),
    "supply_kind": ("供地方式", "Supply", "text"),
    "project_name": ("项目名称", "Project", "text"),
    "land_user": ("用地单位", "Land user", "text"),
    "term_years": ("使用年限", "Term", "years"),
    "price_total": ("价款", "Price", "money"),
    "parcel_codes": ("关联宗地", "Parcels", "list"),
    "actor": ("提交人", "Submitted by", "text"),
    "input_format": ("红线格式", "Red-line format", "text"),
    "input_crs": ("红线坐标系", "Red-line CRS", "text"),
    "verdict": ("结论", "Verdict", "text"),
    "network_id": ("所属管网", "Network", "network"),
    "from_node": ("起点节点", "From node", "number"),
    "to_node": ("终点节点", "To node", "number"),
    "material": ("材质", "Material", "text"),
    "diameter_mm": ("管径", "Diameter", "mm"),
    "install_year": ("敷设年代", "Installed", "year"),
    "burial_depth_m": ("埋深（管顶）", "Depth (top of pipe)", "length"),
    "pressure_class": ("压力级别", "Pressure class", "text"),
    "length_m": ("长度", "Length", "length"),
    "valve_state": ("阀门状态", "Valve state", "text"),
    "control_type": ("控制阀类型", "Control valve type", "text"),
    "last_exercised": ("最近启闭检查", "Last exercised", "date"),
    "access_note": ("位置说明", "Access note", "text"),
    "ground_elevation_m": ("地面高程", "Ground elevation", "length"),
    "account_no": ("用户编号", "Account no.", "text"),
    "category": ("用户类别", "Category", "text"),
    "node_id": ("接入节点", "Service node", "number"),
    "households": ("户数", "Households", "households"),
    "incident_id": ("所属事件", "Incident", "number"),
    "note": ("备注", "Note", "text"),
    "starts_at": ("开始时间", "Starts", "datetime"),
    "ends_at": ("结束时间", "Ends", "datetime"),
    "source": ("路网起点", "From vertex", "number"),
    "target": ("路网终点", "To vertex", "number"),
    "cost": ("正向通行时间", "Travel time", "seconds"),
    "reverse_cost": ("反向通行时间", "Reverse travel time", "seconds"),
}
LAYER_FIELD_TITLES: dict[tuple[str, str], tuple[str, str, str]] = {
    ("pipeline_nodes", "kind"): ("节点类型", "Node type", "text"),
    ("pipeline_nodes", "diameter_mm"): ("口径", "Size", "mm"),
    ("pipeline_nodes", "install_year"): ("安装年代", "Installed", "year"),
    ("emergency_resources", "kind"): ("类别", "Kind", "text"),
    ("landuse_control_lines", "kind"): ("控制线类型", "Control line", "text"),
    ("landuse_supervision_cases", "kind"): ("违法类型", "Violation", "text"),
    ("landuse_supervision_cases", "status"): ("案件状态", "Case status", "text"),
    ("landuse_land_approvals", "landuse_code"): ("批准用途", "Approved use", "text"),
    ("cadastre_parcels", "status"): ("登记状态", "Register status", "text"),
    ("pipeline_pipes", "status"): ("运行状态", "Status", "text"),
    ("landuse_planning_zones", "class_code"): ("规划用地", "Planned use", "text"),
    ("landuse_planning_zones", "class_name"): ("用地名称", "Class name", "text"),
    ("emergency_warehouses", "name"): ("储备库名称", "Warehouse", "text"),
    ("emergency_shelters", "name"): ("避难场所名称", "Shelter", "text"),
    ("pipeline_customers", "name"): ("用户名称", "Customer", "text"),
}
# what the popup leaves out: row bookkeeping and long internal documents
HIDDEN = frozenset({"id", "version", "created_at", "updated_at", "report"})
HIDDEN_BY_LAYER: dict[str, frozenset[str]] = {
    "emergency_roads": frozenset({"source", "target", "cost", "reverse_cost"}),
    "pipeline_pipes": frozenset({"from_node", "to_node"}),
}

# stored value → (zh, en); a layer-specific table wins over the generic one
VALUE_NAMES: dict[str, dict[str, tuple[str, str]]] = {
    "holder_kind": {"person": ("个人", "Person"), "organisation": ("单位", "Organisation")},
    "valve_state": {"open": ("开启", "Open"), "closed": ("关闭", "Closed"), "inoperable": ("无法操作", "Inoperable")},
    "category": {"residential": ("居民", "Residential"), "commercial": ("商业", "Commercial"),
                 "industrial": ("工业", "Industrial"), "hospital": ("医院", "Hospital"), "school": ("学校", "School"),
                 "government": ("机关", "Government"), "fire": ("消防", "Fire service"), "other": ("其他", "Other")},
    "road_class": {"arterial": ("主干路", "Arterial"), "secondary": ("次干路", "Secondary"), "local": ("支路", "Local")},
    "zone_type": {"core": ("核心保护区", "Core zone"), "general": ("一般控制区", "General zone")},
    "land_class": {"commercial": ("商服用地", "Commercial"), "residential": ("住宅用地", "Residential"),
                   "industrial": ("工业用地", "Industrial"), "public": ("公共服务用地", "Public services")},
    "supply_kind": {"allocation": ("划拨", "Allocation"), "transfer": ("出让", "Transfer"), "lease": ("租赁", "Lease")},
    "settlement_code": {"201": ("城市", "City"), "202": ("建制镇", "Town"), "203": ("村庄", "Village"),
                        "204": ("盐田及采矿用地", "Salt pans & mining"), "205": ("特殊用地", "Special")},
    "source_line": {"110": ("110 报警", "110 police"), "119": ("119 火警", "119 fire"), "120": ("120 急救", "120 medical"),
                    "122": ("122 交通事故", "122 traffic"), "municipal": ("市政热线", "Municipal hotline")},
    "pressure_class": {"low": ("低压", "Low"), "medium": ("中压", "Medium"), "subhigh": ("次高压", "Sub-high")},
}
LAYER_VALUE_NAMES: dict[tuple[str, str], dict[str, tuple[str, str]]] = {
    ("pipeline_nodes", "kind"): {
        "junction": ("连接点", "Junction"), "isolation_valve": ("阀门", "Isolation valve"),
        "control_valve": ("控制阀", "Control valve"), "hydrant": ("消火栓", "Hydrant"), "tee": ("三通", "Tee"),
        "meter": ("计量表", "Meter"), "source": ("水源", "Source"), "tank": ("水池/水箱", "Tank"),
        "pump": ("泵站", "Pump"), "end": ("管线端点", "Pipe end")},
    ("pipeline_pipes", "status"): {"in_service": ("在用", "In service"), "abandoned": ("废弃", "Abandoned"),
                                   "planned": ("规划", "Planned")},
    ("cadastre_parcels", "status"): {"registered": ("已登记", "Registered"), "pending": ("待登记", "Pending"),
                                     "retired": ("已注销", "Retired")},
    ("emergency_resources", "kind"): {"team": ("救援队伍", "Team"), "vehicle": ("车辆", "Vehicle"),
                                      "equipment": ("装备", "Equipment"), "medical": ("医疗", "Medical")},
    ("emergency_resources", "status"): {"available": ("可用", "Available"), "assigned": ("已调派", "Assigned"),
                                        "out_of_service": ("停用", "Out of service")},
    ("emergency_incidents", "status"): {"open": ("待处置", "Open"), "responding": ("处置中", "Responding"),
                                        "closed": ("已结束", "Closed")},
    ("landuse_control_lines", "kind"): {k: v for k, v in CONTROL_LINE_TITLES.items()},
    ("landuse_supervision_cases", "kind"): {
        "illegal_occupation": ("非法占地", "Illegal occupation"),
        "illegal_construction": ("违法建设", "Illegal construction"),
        "unauthorised_change": ("擅自改变用途", "Unauthorised change of use"), "other": ("其他", "Other")},
    ("landuse_supervision_cases", "status"): {
        "reported": ("已受理", "Reported"), "investigating": ("调查中", "Investigating"),
        "penalised": ("已处罚", "Penalised"), "rectified": ("已整改", "Rectified"), "closed": ("已结案", "Closed")},
}
# fields whose values are codes of a reference list in data/codes (code → name)
CODE_FIELDS: dict[tuple[str, str], str] = {
    ("cadastre_parcels", "landuse_code"): "gbt21010_2017",
    ("landuse_land_approvals", "landuse_code"): "gbt21010_2017",
    ("landuse_survey", "class_code"): "survey_tnls",
    ("landuse_change_patches", "from_code"): "survey_tnls",
    ("landuse_change_patches", "to_code"): "survey_tnls",
    ("landuse_planning_zones", "class_code"): "planning_2023",
}


def _clean_title(title: str) -> str:
    """A developer's column comment as a label: drop a trailing enumeration ("等级 a/b/c" → "等级")."""
    head, _, tail = title.partition(" ")
    if tail and head and not head.isascii() and ("/" in tail or tail.isascii()):
        return head
    return title


def describe_fields(layer: Layer) -> dict[str, dict[str, Any]]:
    """Every attribute of ``layer`` as the map presents it, in table order."""
    hidden = HIDDEN | HIDDEN_BY_LAYER.get(layer.id, frozenset())
    out: dict[str, dict[str, Any]] = {}
    for info in layer.fields():
        known = LAYER_FIELD_TITLES.get((layer.id, info.name)) or FIELD_TITLES.get(info.name)
        if known:
            zh, en, display = known
        else:
            zh, en = _clean_title(info.title_zh), info.title_en.replace("_", " ").capitalize()
            display = {"boolean": "bool", "integer": "number", "number": "number"}.get(info.json_type, "text")
            if info.format in ("date", "date-time"):
                display = "date" if info.format == "date" else "datetime"
        entry: dict[str, Any] = {"zh": zh, "en": en, "type": info.json_type, "format": info.format,
                                 "display": display, "personal": info.personal, "hidden": info.name in hidden}
        values = LAYER_VALUE_NAMES.get((layer.id, info.name)) or VALUE_NAMES.get(info.name)
        if values:
            entry["values"] = {code: {"zh": vzh, "en": ven} for code, (vzh, ven) in values.items()}
        if (layer.id, info.name) in CODE_FIELDS:
            entry["codes"] = CODE_FIELDS[(layer.id, info.name)]
        out[info.name] = entry
    return out


@lru_cache(maxsize=8)
def code_list(name: str) -> dict[str, dict[str, str]]:
    """A reference code list from data/codes (code → {zh, en}), for code → name in the popup."""
    with (CODES_DIR / f"{name}.csv").open(encoding="utf-8", newline="") as handle:
        return {row["code"]: {"zh": row["name_zh"], "en": row["name_en"]} for row in csv.DictReader(handle)}


def code_lists_for(layers: list[Layer]) -> dict[str, dict[str, dict[str, str]]]:
    """The code lists the given layers' fields refer to."""
    names = sorted({name for (layer_id, _), name in CODE_FIELDS.items() if layer_id in {la.id for la in layers}})
    return {name: code_list(name) for name in names}


def utility_names() -> dict[str, dict[str, str]]:
    """Utility code → {zh, en}, for the burst tool's utility choice and the node legend."""
    return {code: {"zh": zh, "en": en} for code, (zh, en) in UTILITY_TITLES.items()}
