"""土地利用面积平衡表 and land-use statistics by class hierarchy.

A balance table compares two states of the same land — two survey years, or a survey and a plan
(planning classes brought onto the survey classes through the shipped crosswalk) — for a district,
a drawn area or the whole city. Rows follow the hierarchy in data/codes (legal group → first-level
class → second-level class); columns give each side's area and share and the change. The total is
constant when both sides cover the same land; the table checks it and says so.

Pure: the service (layers/landuse/service.py) reads the areas by class and passes them in.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass, field
from typing import Any

from shapely.geometry.base import BaseGeometry

from gis.errors import InvalidParameter
from layers.landuse import classes

# Totals within this many m² (or this fraction of the total) count as constant: sums of a million
# floating-point areas differ in the last digits, not in land.
TOTAL_TOLERANCE_M2 = 1.0
TOTAL_TOLERANCE_REL = 1e-9


@dataclass
class Side:
    """One column pair of the table: what was measured and its areas by stored class code."""

    kind: str  # survey | plan
    label: str
    areas: dict[str, float] = field(default_factory=dict)
    unmapped: dict[str, float] = field(default_factory=dict)


def check_basis(basis: str) -> None:
    """The area basis of a table: the survey's legal (ellipsoidal) area or the plane area."""
    if basis not in ("ellipsoidal", "plane"):
        raise InvalidParameter("basis is 'ellipsoidal' (survey area, default) or 'plane'")


def check_targets(target_year: int | None, target_plan: str | None) -> None:
    """A balance table compares the base survey with exactly one target."""
    if (target_year is None) == (target_plan is None):
        raise InvalidParameter("give either target_year (a second survey) or target_plan (a plan name)")


def survey_side(year: int, areas: dict[str, tuple[float, float]], basis: str) -> Side:
    """One survey year's side from its areas by class (plane m², ellipsoidal m²)."""
    pick = 1 if basis == "ellipsoidal" else 0
    return Side("survey", f"{year}年调查", {code: v[pick] for code, v in areas.items()})


def plan_side(plan_name: str, areas: dict[str, float]) -> Side:
    """A plan's side from its plane areas by planning class, brought onto the survey classes through
    the shipped crosswalk; classes it does not map stay as their own rows and are listed as unmapped."""
    side = Side("plan", plan_name)
    for code, area in areas.items():
        survey_code = classes.survey_code_for_plan(code)
        if survey_code is None:
            side.unmapped[code] = side.unmapped.get(code, 0.0) + area
            survey_code = code  # shown as its own unclassified row
        side.areas[survey_code] = side.areas.get(survey_code, 0.0) + area
    return side


def scope_of(district: str | None, geometry: BaseGeometry | None) -> dict[str, str]:
    """What a table covers, as its heading says it."""
    return ({"district": district} if district else {"area": "drawn polygon"} if geometry is not None
            else {"city": "whole city"})


def hierarchy_rows(sides: list[Side]) -> list[dict[str, Any]]:
    """Group → first level → second level rows with each side's area, from class codes' areas."""
    tree: dict[str, dict[str, dict[str, list[float]]]] = {}
    names: dict[str, str] = {}
    for i, side in enumerate(sides):
        for code, area in side.areas.items():
            info = classes.classify(code)
            names[f"1:{info.group}:{info.level1}"] = info.level1_name
            names[f"2:{code}"] = info.name
            cell = tree.setdefault(info.group, {}).setdefault(info.level1, {}).setdefault(code, [0.0] * len(sides))
            cell[i] += area
    totals = [sum(s.areas.values()) for s in sides]
    order = {g: n for n, g in enumerate((*classes.LEGAL_GROUPS, classes.UNCLASSIFIED))}
    rows: list[dict[str, Any]] = []

    def row(level: int, code: str, name: str, group: str, areas: list[float]) -> dict[str, Any]:
        out: dict[str, Any] = {"level": level, "code": code, "name": name, "group": group}
        for i, area in enumerate(areas):
            out[f"area_{i}"] = area
            out[f"share_{i}"] = area / totals[i] if totals[i] else 0.0
        if len(areas) == 2:
            out["change"] = areas[1] - areas[0]
        return out

    for group in sorted(tree, key=lambda g: order.get(g, 99)):
        level1s = tree[group]
        group_areas = [sum(c[i] for l1 in level1s.values() for c in l1.values()) for i in range(len(sides))]
        rows.append(row(0, "", group, group, group_areas))
        for level1 in sorted(level1s):
            codes_ = level1s[level1]
            rows.append(row(1, level1, names[f"1:{group}:{level1}"], group,
                            [sum(c[i] for c in codes_.values()) for i in range(len(sides))]))
            for code in sorted(codes_):
                if code != level1:
                    rows.append(row(2, code, names[f"2:{code}"], group, codes_[code]))
    rows.append(row(-1, "", "合计", "", totals))
    return rows


def table_of(base: Side, target: Side, *, base_year: int, target_year: int | None, target_plan: str | None,
             basis: str, scope: dict[str, str]) -> dict[str, Any]:
    """The balance table of a base survey side against a target side (a second survey or a plan),
    with the check that the total stayed constant."""
    rows = hierarchy_rows([base, target])
    total_base, total_target = rows[-1]["area_0"], rows[-1]["area_1"]
    difference = total_target - total_base
    constant = abs(difference) <= max(TOTAL_TOLERANCE_M2, TOTAL_TOLERANCE_REL * max(total_base, total_target))
    return {
        "title": "土地利用面积平衡表 Land-use area balance table",
        "scope": scope,
        "base": {"kind": base.kind, "label": base.label, "year": base_year},
        "target": {"kind": target.kind, "label": target.label, "year": target_year, "plan": target_plan},
        "area_basis": basis,
        "area_basis_note": ("椭球面积 (third national land survey rule: ellipsoidal area)" if basis == "ellipsoidal"
                            else "平面面积 (plane area in the storage CRS)"),
        "unit": "m²",
        "rows": rows,
        "total_base": total_base,
        "total_target": total_target,
        "total_difference": difference,
        "total_constant": constant,
        "total_note": ("总面积不变 the total is constant: the changes sum to zero" if constant else
                       f"总面积不一致 the totals differ by {difference:.2f} m²: the two sides do not cover the same "
                       "land (survey gaps, or a plan that does not cover the area)"),
        "unmapped_plan_classes": target.unmapped,
    }


def statistics_of(side: Side, *, year: int, basis: str) -> dict[str, Any]:
    """Areas of one survey year by class hierarchy, saying which area (ellipsoidal or plane) is used."""
    rows = hierarchy_rows([side])
    return {"year": year, "area_basis": basis, "unit": "m²", "rows": rows, "total": rows[-1]["area_0"]}


# --- renderings ------------------------------------------------------------------------------------

def _header(table: dict[str, Any]) -> list[str]:
    b, t = table["base"]["label"], table["target"]["label"]
    return ["地类编码 code", "地类 class", f"{b} 面积 m²", f"{b} 比例 %", f"{t} 面积 m²", f"{t} 比例 %", "变化 m²"]


def _cells(row: dict[str, Any]) -> list[Any]:
    indent = {0: "", 1: "  ", 2: "    ", -1: ""}[row["level"]]
    return [row["code"], indent + row["name"], round(row["area_0"], 2), round(100 * row["share_0"], 4),
            round(row["area_1"], 2), round(100 * row["share_1"], 4), round(row["change"], 2)]


def balance_csv(table: dict[str, Any]) -> bytes:
    """CSV with a BOM so spreadsheet programs read the Chinese text as UTF-8."""
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow([table["title"]])
    writer.writerow([f"面积类型 area basis: {table['area_basis_note']}"])
    writer.writerow(_header(table))
    for row in table["rows"]:
        writer.writerow(_cells(row))
    writer.writerow([table["total_note"]])
    return ("\ufeff" + out.getvalue()).encode("utf-8")


def balance_xlsx(table: dict[str, Any]) -> bytes:
    """The table as an Excel workbook, group and total rows in bold."""
    from openpyxl import Workbook
    from openpyxl.styles import Font

    wb = Workbook()
    ws = wb.active
    ws.title = "平衡表"
    ws.append([table["title"]])
    ws.append([f"面积类型 area basis: {table['area_basis_note']}"])
    ws.append(_header(table))
    for cell in ws[3]:
        cell.font = Font(bold=True)
    for row in table["rows"]:
        ws.append(_cells(row))
        if row["level"] in (0, -1):
            for cell in ws[ws.max_row]:
                cell.font = Font(bold=True)
    ws.append([table["total_note"]])
    ws.column_dimensions["B"].width = 28
    for col in "CDEFG":
        ws.column_dimensions[col].width = 18
    out = io.BytesIO()
    wb.save(out)
    return out.getvalue()
