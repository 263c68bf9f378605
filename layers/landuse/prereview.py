"""建设项目用地预审与选址: check a proposed site's red line against land use, the three control
lines, the plan, the parcels and pipelines it touches, and the base land price.

Every area in the report is a plane area (m²) of the red line's intersection in the storage CRS,
computed by PostGIS on the stored data; survey classes also carry their prorated ellipsoidal area.
The report is stored unmasked and masked again for whoever opens it, so a key without the
personal-data scope never sees a natural person's name or ID number.

Pure: the service (layers/landuse/service.py) reads what lies under the red line and passes it in;
this module applies the rules, builds the report and renders it.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from pathlib import Path
from typing import Any

from data.reference import rule_table
from gis.errors import InvalidParameter
from layers.landuse import classes
from layers.landuse.redline import RedLine

# below this an overlap is drawing noise, not land taken (0.01 m² = a 10 cm square)
OVERLAP_TOLERANCE_M2 = 0.01
SEVERITY = ("pass", "conditional", "approval", "refused")
PRICE_CLASSES = ("commercial", "residential", "industrial", "public")

# The rule behind each verdict (domain.md; 自然资源部 三区三线 rules). Text kept together so a city
# can read and correct what the software applies.
RULES = {
    "permanent_basic_farmland": (
        "永久基本农田一经划定，任何单位和个人不得擅自占用或改变用途；国家重大项目确实难以避让的，须报国务院批准。"
        " Permanent basic farmland may not be occupied; unavoidable national key projects need State Council "
        "approval."),
    "ecological_red_line_core": (
        "生态保护红线核心保护区内原则上禁止人为活动。 No human activity in the core area of the ecological "
        "protection red line."),
    "ecological_red_line_general": (
        "生态保护红线一般控制区内仅允许对生态功能不造成破坏的有限人为活动。 Outside the core area only the listed "
        "limited human activities are allowed."),
    "urban_development_boundary": (
        "城镇开发边界内可集中进行城镇开发建设；边界外不得进行城镇集中建设，仅允许必要的线性基础设施、特殊用地等。"
        " Concentrated urban construction only inside the urban development boundary."),
    "planning": (
        "建设项目用地应符合国土空间规划确定的用途。 The site's use must conform to the spatial plan's zones."),
    "survey": (
        "用地预审以最新完整年度土地利用现状调查为底数；未覆盖部分的地类与耕地面积无法核实。 The pre-review counts "
        "land use from the latest complete survey year; land it does not cover cannot be checked."),
}

VERDICT_TEXT = {
    "pass": "通过 Pass: no conflict with the control lines or the plan",
    "conditional": "有条件通过 Conditional: see the items that need a procedure or a change",
    "approval": "需报国务院批准 Needs national-level (State Council) approval",
    "refused": "不予通过 Refused",
}


def _item(domain: str, severity: str, verdict: str, rule: str, **figures: Any) -> dict[str, Any]:
    return {"domain": domain, "severity": severity, "verdict": verdict, "rule": rule, **figures}


def urban_boundary_rules(rules_dir: Path | str | None = None) -> dict[str, dict[str, str]]:
    """The rule table ``urban_boundary_uses`` (data/rules, or the rules directory setting): planning class
    (用地用海 2, 4 or 6 digits) → the verdict for that use outside the urban development boundary, its
    rule and source."""
    rows = rule_table("urban_boundary_uses", rules_dir)
    for row in rows:
        if row["outside_verdict"] not in SEVERITY:
            raise ValueError(f"urban_boundary_uses: {row['planning_code']} has verdict {row['outside_verdict']!r}; "
                             f"use one of {', '.join(SEVERITY)}")
    return {row["planning_code"]: row for row in rows}


def outside_boundary_rule(intended_use: str, rules: dict[str, dict[str, str]]) -> dict[str, str] | None:
    """The most specific row for an intended use (its longest code prefix in the table), None when the
    table has no row for its class."""
    for length in (6, 4, 2):
        row = rules.get(intended_use[:length]) if len(intended_use) >= length else None
        if row is not None:
            return row
    return None


def _urban_boundary_item(inside: float, outside: float, intended_use: str | None,
                         rules: dict[str, dict[str, str]]) -> dict[str, Any]:
    """The urban development boundary item: inside is fine; outside, the verdict depends on the intended
    use (用地用海 class) through the rule table — concentrated urban construction is refused, listed
    exceptions (linear infrastructure, utilities, special uses, village construction) are conditional,
    non-construction uses pass."""
    if outside <= OVERLAP_TOLERANCE_M2:
        return _item("urban_development_boundary", "pass", "位于城镇开发边界内 inside the urban development boundary",
                     RULES["urban_development_boundary"], inside_area=inside, outside_area=outside)
    if intended_use is None:
        return _item("urban_development_boundary", "conditional",
                     "部分位于城镇开发边界外，未给出拟建用途，须论证 partly outside the urban development boundary; "
                     "intended use not given, so it cannot be judged", RULES["urban_development_boundary"],
                     inside_area=inside, outside_area=outside, intended_use=None)
    row = outside_boundary_rule(intended_use, rules)
    if row is None:
        return _item("urban_development_boundary", "conditional",
                     f"部分位于城镇开发边界外；用途 {intended_use} 不在规则表中，须论证 partly outside the boundary; "
                     "the rule table has no row for this use", RULES["urban_development_boundary"],
                     inside_area=inside, outside_area=outside, intended_use=intended_use, use_rule=None)
    severity = row["outside_verdict"]
    verdict = {"refused": "城镇开发边界外不得进行该类城镇建设 this use may not be built outside the urban development "
                          "boundary",
               "conditional": "城镇开发边界外的允许类用途，须论证选址 an allowed exception outside the boundary: "
                              "siting to be justified",
               "approval": "城镇开发边界外，须报批 outside the boundary: needs approval",
               "pass": "非城镇建设用途，可位于城镇开发边界外 not urban construction: may lie outside the boundary"}[severity]
    return _item("urban_development_boundary", severity, f"{verdict} ({row['rule']})", RULES["urban_development_boundary"],
                 inside_area=inside, outside_area=outside, intended_use=intended_use,
                 use_rule={"planning_code": row["planning_code"], "verdict": severity, "rule": row["rule"],
                           "source": row["source"]})


def price_class_rules(rules_dir: Path | str | None = None) -> dict[str, str]:
    """The rule table ``price_class_by_use``: planning class prefix → base land-price use (the shipped
    table when the rules directory has none)."""
    try:
        rows = rule_table("price_class_by_use", rules_dir)
    except KeyError:
        rows = rule_table("price_class_by_use")
    for row in rows:
        if row["price_class"] not in PRICE_CLASSES:
            raise ValueError(f"price_class_by_use: {row['planning_code']} has {row['price_class']!r}; "
                             f"use one of {', '.join(PRICE_CLASSES)}")
    return {row["planning_code"]: row["price_class"] for row in rows}


def price_class_for_use(intended_use: str | None, rules: dict[str, str]) -> str | None:
    """The base land-price use an intended use is valued at (its longest listed prefix), None when the
    use has no base land price (farmland, water …) or no use was given."""
    if not intended_use:
        return None
    for length in (6, 4, 2):
        if len(intended_use) >= length and intended_use[:length] in rules:
            return rules[intended_use[:length]]
    return None


def _conforms(zone_code: str, intended: str) -> bool:
    """A zone conforms when one code is a prefix of the other (用地用海 codes nest 2/4/6 digits)."""
    return zone_code.startswith(intended) or intended.startswith(zone_code)


def check_request(project_name: str, price_class: str | None) -> None:
    """What a pre-review request must say before any land is looked at."""
    if not project_name.strip():
        raise InvalidParameter("give the project name (project_name)")
    if price_class is not None and price_class not in PRICE_CLASSES:
        raise InvalidParameter("price_class is commercial, residential, industrial or public")


def assess_site(*, project_name: str, red_line: RedLine, survey_year: int, intended_use: str | None,
                plan_name: str | None, price_class: str | None, landuse_rows: list[dict[str, Any]],
                control_overlaps: list[dict[str, Any]], inside_urban_boundary: float,
                zones: list[dict[str, Any]], parcels: list[dict[str, Any]], pipelines: dict[str, Any],
                price_rows: list[dict[str, Any]], survey_coverage: dict[str, Any] | None = None,
                boundary_rules: dict[str, dict[str, str]] | None = None,
                price_rules: dict[str, str] | None = None) -> dict[str, Any]:
    """The pre-review report of a red line from what lies under it (the service reads each part).

    ``landuse_rows``: survey classes inside the red line (class_system, class_code, class_name,
    plane_area, ellipsoidal_area); ``control_overlaps``: area per control-line kind and zone type;
    ``inside_urban_boundary``: m² inside the urban development boundary; ``zones``: planning classes
    with their area; ``parcels``: parcels taken from (unmasked: masked when shown); ``pipelines``: the
    pipeline family's answer; ``price_rows``: area per base land-price zone; ``survey_coverage``: the
    survey year used and the part of the red line it does not cover (survey.coverage_statement);
    ``boundary_rules``: the urban_boundary_uses rule table (default: the shipped one);
    ``price_rules``: the price_class_by_use table — without ``price_class`` the site is valued at the
    base land price of its intended use only, never at every use's price.
    """
    site = red_line.geometry
    total = site.area
    items: list[dict[str, Any]] = []

    # land use by class, arable land first
    landuse = []
    for row in landuse_rows:
        info = classes.classify(row["class_code"])
        landuse.append({"class_code": row["class_code"], "class_name": row["class_name"] or info.name,
                        "class_system": row["class_system"], "legal_group": info.group,
                        "plane_area": row["plane_area"], "ellipsoidal_area": row["ellipsoidal_area"],
                        "share": row["plane_area"] / total})
    landuse.sort(key=lambda r: (not classes.is_arable(r["class_code"]), -r["plane_area"]))
    arable = sum(r["plane_area"] for r in landuse if classes.is_arable(r["class_code"]))

    # control lines
    overlaps = {(r["kind"], r["zone_type"]): r for r in control_overlaps}
    pbf = sum(r["area"] for (k, _), r in overlaps.items() if k == "permanent_basic_farmland")
    items.append(_item("permanent_basic_farmland", "approval" if pbf > OVERLAP_TOLERANCE_M2 else "pass",
                       "占用永久基本农田，需报国务院批准 occupies permanent basic farmland: needs State Council approval"
                       if pbf > OVERLAP_TOLERANCE_M2 else "不占用永久基本农田 no permanent basic farmland taken",
                       RULES["permanent_basic_farmland"], overlap_area=pbf))
    core = overlaps.get(("ecological_red_line", "core"), {}).get("area", 0.0)
    general = sum(r["area"] for (k, z), r in overlaps.items() if k == "ecological_red_line" and z != "core")
    if core > OVERLAP_TOLERANCE_M2:
        items.append(_item("ecological_red_line", "refused", "占用生态保护红线核心保护区，不予通过 enters the core area "
                           "of the ecological red line: refused", RULES["ecological_red_line_core"],
                           overlap_area=core + general, core_area=core, general_area=general))
    elif general > OVERLAP_TOLERANCE_M2:
        items.append(_item("ecological_red_line", "conditional", "占用生态保护红线一般控制区，须论证属于允许的有限人为活动 "
                           "enters the general area: allowed only for listed limited activities",
                           RULES["ecological_red_line_general"], overlap_area=general, core_area=core,
                           general_area=general))
    else:
        items.append(_item("ecological_red_line", "pass", "不占用生态保护红线 no ecological red line taken",
                           RULES["ecological_red_line_core"], overlap_area=core + general, core_area=core,
                           general_area=general))
    inside = inside_urban_boundary
    outside = max(total - inside, 0.0)
    items.append(_urban_boundary_item(inside, outside, intended_use,
                                      boundary_rules if boundary_rules is not None else urban_boundary_rules()))

    # planning conformity
    planned = sum(z["area"] for z in zones)
    for zone in zones:
        zone["conforms"] = None if intended_use is None else _conforms(zone["class_code"], intended_use)
    if intended_use is None:
        items.append(_item("planning", "pass", "未给出拟建用途，未判定规划符合性 intended use not given: conformity "
                           "not assessed", RULES["planning"], conforming_area=None, nonconforming_area=None,
                           unplanned_area=max(total - planned, 0.0)))
    else:
        bad = sum(z["area"] for z in zones if not z["conforms"])
        unplanned = max(total - planned, 0.0)
        items.append(_item("planning", "conditional" if bad + unplanned > OVERLAP_TOLERANCE_M2 else "pass",
                           (f"与规划用途不符 {bad:,.2f} m² 需调整规划 does not conform: plan change needed"
                            if bad > OVERLAP_TOLERANCE_M2 else "符合规划用途 conforms to the plan")
                           + (f"; {unplanned:,.2f} m² 无规划分区 not covered by the plan" if unplanned > OVERLAP_TOLERANCE_M2
                              else ""), RULES["planning"], conforming_area=planned - bad, nonconforming_area=bad,
                           unplanned_area=unplanned))

    # base land price
    prices = []
    for row in price_rows:
        prices.append({**row, "price_per_m2": float(row["price_per_m2"]),
                       "value": float(row["price_per_m2"]) * row["area"]})
    by_class: dict[str, dict[str, float]] = {}
    for row in prices:
        entry = by_class.setdefault(row["land_class"], {"area": 0.0, "value": 0.0})
        entry["area"] += row["area"]
        entry["value"] += row["value"]
    for entry in by_class.values():
        entry["mean_price_per_m2"] = entry["value"] / entry["area"] if entry["area"] else 0.0
    price_basis = "given" if price_class else None
    if price_class is None:
        price_class = price_class_for_use(intended_use, price_rules if price_rules is not None
                                          else price_class_rules())
        price_basis = "intended_use" if price_class else None

    warnings = []
    if survey_coverage is not None and survey_coverage["uncovered_area_m2"] > OVERLAP_TOLERANCE_M2:
        # the land-use rows (and the arable area) leave that part out: say so, and do not pass blindly
        items.append(_item("survey_coverage", "conditional",
                           f"土地利用现状调查未覆盖红线内 {survey_coverage['uncovered_area_m2']:,.2f} m²，须补充调查 "
                           f"the {survey_year} survey does not cover that part of the red line: survey it first",
                           RULES["survey"], uncovered_area=survey_coverage["uncovered_area_m2"],
                           overlap_area=survey_coverage["uncovered_area_m2"]))
        warnings.append(survey_coverage["note"])
    severity = max((i["severity"] for i in items), key=SEVERITY.index)
    return {
        "project_name": project_name,
        "generated_at": dt.datetime.now(dt.UTC).isoformat(),
        "input": red_line.describe(),
        "area_basis": "平面面积 plane area (m²) in the storage CRS; survey classes also give ellipsoidal area",
        "total_area": total,
        "survey_year": survey_year,
        "survey_coverage": survey_coverage,
        "warnings": warnings,
        "intended_use": intended_use,
        "landuse": landuse,
        "arable_area": arable,
        "control_lines": items[:3],
        "planning": {"plan_name": plan_name, "zones": zones, "item": items[3]},
        "parcels": parcels,
        "pipelines": pipelines,
        "land_price": {"zones": prices, "by_class": by_class, "price_class": price_class,
                       "price_class_basis": price_basis,
                       "value": by_class.get(price_class, {}).get("value") if price_class else None},
        "items": items,
        "verdict": severity,
        "verdict_text": VERDICT_TEXT[severity],
    }


def for_caller(report: dict[str, Any], *, mask_parcel: Callable[[dict[str, Any]], dict[str, Any]],
               show_pipelines: bool) -> dict[str, Any]:
    """The report as one reader may see it: each parcel through ``mask_parcel`` (the cadastre's policy),
    and the pipelines section only when ``show_pipelines``."""
    out = dict(report)
    out["parcels"] = [mask_parcel(dict(parcel)) for parcel in report.get("parcels", [])]
    if not show_pipelines and "pipelines" in out:
        out["pipelines"] = {"available": False, "note": "管线不可见：您的密钥无管线图层读取权限 "
                                                        "pipelines not shown: your key may not read them"}
    return out


