"""Legend colours the map draws classified layers with (data, not code: a city may correct them).

Land-use survey classes (GB/T 21010-2017 first level, plus 00 湿地 of the third national land
survey): colours after the third national land survey's cartographic table (TD/T 1055-2019 附录,
approximate RGB — verify against the city's own standard). Planning classes (用地用海分类指南 2023, first
level): colours after the national spatial-planning colour scheme (approximate — verify).
A layer's ``style`` names the legend (``"legend": "landuse_classes"``); a feature is coloured by the
first two characters of its class code.
"""

from __future__ import annotations

# code → (zh, en, colour)
LEGENDS: dict[str, dict[str, tuple[str, str, str]]] = {
    "landuse_classes": {
        "00": ("湿地", "Wetland", "#7fd1c8"),
        "01": ("耕地", "Cropland", "#ffff64"),
        "02": ("园地", "Orchard", "#e6c84b"),
        "03": ("林地", "Forest", "#3ca03c"),
        "04": ("草地", "Grassland", "#a0dc64"),
        "05": ("商服用地", "Commercial", "#f08c8c"),
        "06": ("工矿仓储用地", "Industrial & storage", "#c8a0c8"),
        "07": ("住宅用地", "Residential", "#ffb46e"),
        "08": ("公共管理与公共服务用地", "Public administration & services", "#f064a0"),
        "09": ("特殊用地", "Special", "#82a0a0"),
        "10": ("交通运输用地", "Transport", "#b4b4b4"),
        "11": ("水域及水利设施用地", "Water & water facilities", "#8cc8f0"),
        "12": ("其他土地", "Other land", "#e1e1c8"),
    },
    "planning_classes": {
        "01": ("耕地", "Cropland", "#f5f8dc"),
        "02": ("园地", "Orchard", "#bfe9aa"),
        "03": ("林地", "Forest", "#68b167"),
        "04": ("草地", "Grassland", "#cddc93"),
        "05": ("湿地", "Wetland", "#65cdaa"),
        "06": ("农业设施建设用地", "Agricultural facilities", "#d7e6a0"),
        "07": ("居住用地", "Residential", "#ffff2d"),
        "08": ("公共管理与公共服务用地", "Public administration & services", "#ff00ff"),
        "09": ("商业服务业用地", "Commercial & business", "#ff0000"),
        "10": ("工矿用地", "Industrial & mining", "#bb9674"),
        "11": ("仓储用地", "Storage", "#8761d3"),
        "12": ("交通运输用地", "Transport", "#b4b4b4"),
        "13": ("公用设施用地", "Public utilities", "#00a5bf"),
        "14": ("绿地与开敞空间用地", "Green & open space", "#00ff00"),
        "15": ("特殊用地", "Special", "#336633"),
        "16": ("留白用地", "Reserved", "#ffffff"),
        "17": ("陆地水域", "Inland water", "#4bb5e6"),
        "23": ("其他土地", "Other land", "#e1e1c8"),
    },
    # shelter classes by duration (GB/T 44013-2024; verify)
    "shelter_classes": {
        "紧急": ("紧急避难场所", "Immediate shelter", "#a6d96a"),
        "短期": ("短期避难场所", "Short-term shelter", "#1a9850"),
        "长期": ("长期避难场所", "Long-term shelter", "#00441b"),
    },
}

UTILITY_TITLES: dict[str, tuple[str, str]] = {
    "water": ("给水", "Water supply"), "drainage": ("排水", "Drainage"), "storm": ("雨水", "Storm water"),
    "sewer": ("污水", "Sewer"), "gas": ("燃气", "Gas"), "heat": ("热力", "Heating"),
    "power": ("电力", "Power"), "telecom": ("通信", "Telecom"), "industrial": ("工业", "Industrial"),
}

CONTROL_LINE_TITLES: dict[str, tuple[str, str]] = {
    "permanent_basic_farmland": ("永久基本农田", "Permanent basic farmland"),
    "ecological_red_line": ("生态保护红线", "Ecological red line"),
    "urban_development_boundary": ("城镇开发边界", "Urban development boundary"),
}


def legend_items(style: dict[str, object]) -> list[dict[str, object]]:
    """Legend rows [{code, zh, en, color}] for a layer style, or [] for a single-colour layer."""
    name = style.get("legend")
    if isinstance(name, str) and name in LEGENDS:
        return [{"code": code, "zh": zh, "en": en, "color": color}
                for code, (zh, en, color) in LEGENDS[name].items()]
    colors = style.get("colors")
    if isinstance(colors, dict):
        titles = {**UTILITY_TITLES, **CONTROL_LINE_TITLES}
        seen: set[tuple[str, str]] = set()
        rows = []
        for code, color in colors.items():
            zh, en = titles.get(code, (code, code))
            if (zh, color) in seen:  # storm/sewer share drainage's colour: one row is enough
                continue
            seen.add((zh, color))
            rows.append({"code": code, "zh": zh, "en": en, "color": color})
        return rows
    return []


# Pipe-node symbols, one shape per kind (the browser draws the shape in the utility's CJJ 61 colour).
# Shapes follow the usual pipeline survey map conventions: a valve is a bow-tie, a hydrant a
# triangle on a stem, a meter a square, a tee a small filled circle.
NODE_SYMBOLS: list[tuple[str, str, str, str]] = [
    # kind, zh, en, shape
    ("isolation_valve", "阀门", "Isolation valve", "bowtie"),
    ("control_valve", "控制阀（减压/止回）", "Control valve (PRV/check)", "bowtie-bar"),
    ("hydrant", "消火栓", "Hydrant", "triangle"),
    ("tee", "三通", "Tee", "dot"),
    ("meter", "计量表", "Meter", "square"),
    ("source", "水源/气源", "Source", "star"),
    ("tank", "水池/储罐", "Tank", "ring"),
    ("pump", "泵站/调压站", "Pump / station", "diamond"),
    ("junction", "连接点", "Junction", "small-dot"),
    ("end", "管线端点", "Pipe end", "small-dot"),
]


def node_symbols() -> list[dict[str, str]]:
    """Legend rows for pipe nodes: [{kind, zh, en, shape}]."""
    return [{"kind": kind, "zh": zh, "en": en, "shape": shape} for kind, zh, en, shape in NODE_SYMBOLS]


# Emergency symbols (after GB/T 35649-2017 in spirit: a shape per kind, a colour per state; the shapes
# and colours are govgis's own — verify against the city's emergency map standard). The browser draws
# the shape in the status colour with the glyph inside (the capability's first character, or the level).
EMERGENCY_SYMBOLS: dict[str, dict[str, object]] = {
    "emergency_resources": {
        "symbol_field": "kind", "status_field": "status", "glyph_field": "capability_type",
        "symbols": [
            # kind, zh, en, shape
            ("station", "站（驻地）", "Station", "house"),
            ("team", "救援队伍", "Team", "shield"),
            ("vehicle", "车辆", "Vehicle", "truck"),
            ("hospital", "医院", "Hospital", "cross"),
            ("medical", "医疗点", "Medical post", "ring"),
            ("equipment", "装备", "Equipment", "square"),
        ],
        "status": [
            ("available", "可调派", "Available", "#2e7d32"),
            ("assigned", "已出动", "Assigned", "#e65100"),
            ("out_of_service", "停用", "Out of service", "#8a8a8a"),
        ],
        "glyphs": {"消防救援": "火", "医疗急救": "急", "医疗救治": "医", "城市搜救": "搜", "供水抢修": "水",
                   "燃气抢修": "气", "工程抢险": "工"},
    },
    "emergency_incidents": {
        "symbol_field": "category", "status_field": "status", "glyph_field": "level",
        "symbols": [
            ("消防类", "消防类", "Fire", "burst"),
            ("交通类", "交通类", "Traffic", "diamond"),
            ("卫生类", "卫生类", "Public health", "cross"),
            ("市政类", "市政类", "Municipal", "square"),
            ("公安类", "公安类", "Public security", "shield"),
            ("生产安全类", "生产安全类", "Work safety", "triangle"),
            ("自然灾害类", "自然灾害类", "Natural disaster", "star"),
        ],
        "status": [
            ("reported", "已接报", "Reported", "#d7191c"),
            ("dispatched", "已调派", "Dispatched", "#ff7f00"),
            ("on_scene", "已到场", "On scene", "#8e24aa"),
            ("under_control", "已控制", "Under control", "#1f78b4"),
            ("closed", "已结案", "Closed", "#9e9e9e"),
        ],
        "glyphs": {"1": "I", "2": "II", "3": "III", "4": "IV"},
    },
}


def emergency_symbols(layer_id: str) -> dict[str, object] | None:
    """How the map draws an emergency point layer: shape by ``symbol_field``, colour by ``status_field``,
    a glyph by ``glyph_field``; rows for the legend. None for other layers."""
    spec = EMERGENCY_SYMBOLS.get(layer_id)
    if spec is None:
        return None
    return {"symbol_field": spec["symbol_field"], "status_field": spec["status_field"],
            "glyph_field": spec["glyph_field"], "glyphs": spec["glyphs"],
            "symbols": [{"kind": k, "zh": zh, "en": en, "shape": shape} for k, zh, en, shape in spec["symbols"]],
            "status_colors": [{"status": s, "zh": zh, "en": en, "color": c} for s, zh, en, c in spec["status"]]}


def shelter_legend() -> list[dict[str, str]]:
    """Legend rows of the shelter layer: one per class, plus the outline of a full shelter."""
    rows = legend_items({"legend": "shelter_classes"})
    return rows + [{"code": "full", "zh": "已满（安置人数≥容量）", "en": "Full (occupancy ≥ capacity)", "color": "#d7191c"}]
