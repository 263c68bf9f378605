"""The land-use class hierarchy the statistics and balance tables group by — read from the shipped
code lists (data/codes), never written into code, so a city can correct a class or its legal group.

Rows go legal group (农用地 / 建设用地 / 未利用地, GB/T 21010 Annex A) → first-level class →
second-level class. A first-level class whose second-level classes fall into different legal groups
(草地, 交通运输用地, 水域及水利设施用地, 其他土地 …) appears under each group with its part.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

from data.reference import code_list

LEGAL_GROUPS = ("农用地", "建设用地", "未利用地")
UNCLASSIFIED = "未归类"
GROUP_EN = {"农用地": "Agricultural land", "建设用地": "Construction land", "未利用地": "Unused land",
            UNCLASSIFIED: "Unclassified"}


@dataclass(frozen=True)
class ClassInfo:
    """Where one stored survey code sits in the hierarchy."""

    code: str
    name: str
    group: str
    level1: str
    level1_name: str


@lru_cache(maxsize=1)
def survey_classes() -> dict[str, ClassInfo]:
    """Survey working-classification codes (and GB/T 21010 codes mapped onto them) → hierarchy info."""
    survey = [r for r in code_list("survey_tnls") if r.get("level") in ("1", "2")]
    gb = {r["code"]: r for r in code_list("gbt21010_2017")}
    names1 = {r["code"]: r["name_zh"] for r in survey if r["level"] == "1"}
    out: dict[str, ClassInfo] = {}
    for row in survey:
        if row["level"] != "2":
            continue
        group = (row.get("legal_group") or "").strip()
        if not group:  # fall back to the GB/T 21010 classes the survey class takes, then its first level
            for gb_code in (row.get("gbt21010") or "").split(";"):
                group = group or (gb.get(gb_code.strip(), {}).get("legal_group") or "").strip()
            parent = row.get("parent") or row["code"][:2]
            group = group or (gb.get(parent, {}).get("legal_group") or "").strip() or UNCLASSIFIED
        parent = (row.get("parent") or row["code"][:2]).strip()
        out[row["code"]] = ClassInfo(row["code"], row["name_zh"], group, parent, names1.get(parent, parent))
    # GB/T 21010 codes stored as such: the survey class that takes them
    for row in code_list("survey_tnls"):
        for gb_code in (row.get("gbt21010") or "").split(";"):
            gb_code = gb_code.strip()
            if gb_code and gb_code not in out and row["code"] in out:
                out[gb_code] = out[row["code"]]
    for code, row in gb.items():
        if row.get("level") == "2" and code not in out:
            group = (row.get("legal_group") or "").strip() or UNCLASSIFIED
            parent = (row.get("parent") or code[:2]).strip()
            out[code] = ClassInfo(code, row["name_zh"], group, parent,
                                  gb.get(parent, {}).get("name_zh", parent))
    return out


def classify(code: str) -> ClassInfo:
    """Hierarchy info for a stored code; a first-level-only or unknown code becomes its own row."""
    known = survey_classes().get(code)
    if known is not None:
        return known
    names = {r["code"]: r for r in code_list("survey_tnls")}
    first = names.get(code[:2], {})
    group = (first.get("legal_group") or "").strip() or UNCLASSIFIED
    return ClassInfo(code, first.get("name_zh", code) if len(code) == 2 else code, group, code[:2],
                     first.get("name_zh", code[:2]))


@lru_cache(maxsize=1)
def planning_to_survey() -> dict[str, str]:
    """Planning class (用地用海 2023) → survey class, from the shipped crosswalk."""
    return {r["planning_code"]: r["survey_code"] for r in code_list("crosswalk_planning_survey")}


def survey_code_for_plan(planning_code: str) -> str | None:
    """The survey class a planning class maps to: its own 4-digit row, else the first row of its
    first-level class (2-digit planning codes), else None."""
    crosswalk = planning_to_survey()
    code = planning_code[:4]
    if code in crosswalk:
        return crosswalk[code]
    candidates = sorted(c for c in crosswalk if c.startswith(planning_code[:2]))
    return crosswalk[candidates[0]] if candidates else None


def is_arable(code: str) -> bool:
    """耕地 (01xx) — listed first in a pre-review, it is what the control rules protect."""
    return code.startswith("01")
