"""Reference code lists shipped with govgis, as data a city can correct.

Each list is a CSV in ``data/codes/`` with a ``source`` column; rows whose source starts with
``verify:`` come from secondary sources and should be checked against the standard's text.

Lists: ``gbt21010_2017`` (GB/T 21010-2017 land-use classes with their legal group per Annex A),
``survey_tnls`` (the third national land survey working classification, with the GB/T 21010 codes
each class takes and the settlement attributes 201–205 at level 0), ``planning_2023`` (用地用海分类指南),
``crosswalk_planning_survey`` (planning class → survey class) and ``gbt38565_supplies`` (a sample of
GB/T 38565 emergency supply codes).
"""

from __future__ import annotations

import csv
from functools import lru_cache
from pathlib import Path

CODES_DIR = Path(__file__).resolve().parent / "codes"

# which classification system (as stored in the tables' class_system columns) each list describes
SYSTEM_LISTS = {
    "GB/T 21010-2017": "gbt21010_2017",
    "三调工作分类": "survey_tnls",
    "用地用海分类指南(2023)": "planning_2023",
}


def available() -> list[str]:
    """Names of the shipped code lists."""
    return sorted(p.stem for p in CODES_DIR.glob("*.csv"))


@lru_cache(maxsize=16)
def _read(name: str) -> tuple[dict[str, str], ...]:
    path = CODES_DIR / f"{name}.csv"
    if not path.is_file():
        raise KeyError(f"no code list {name!r}; shipped lists: {', '.join(available())}")
    with path.open(encoding="utf-8", newline="") as handle:
        return tuple(dict(row) for row in csv.DictReader(handle))


def load_code_list(name: str) -> list[dict[str, str]]:
    """The rows of one code list (a fresh copy: callers may modify it)."""
    return [dict(row) for row in _read(name)]


def code_names(name: str) -> dict[str, str]:
    """code → Chinese name of a list that has ``code`` and ``name_zh`` columns."""
    return {row["code"]: row["name_zh"] for row in _read(name)}


def list_for_system(class_system: str) -> str:
    """The code-list name for a stored ``class_system`` value."""
    try:
        return SYSTEM_LISTS[class_system]
    except KeyError:
        raise KeyError(f"unknown classification system {class_system!r}; known: {', '.join(SYSTEM_LISTS)}") from None
