"""Reference data govgis reads at run time: code lists and rule tables, as CSV a city can correct.

Code lists (``data/codes/``): ``gbt21010_2017`` (GB/T 21010-2017 land-use classes with their legal
group per Annex A), ``survey_tnls`` (the third national land survey working classification, with the
GB/T 21010 codes each class takes and the settlement attributes 201–205 at level 0),
``planning_2023`` (用地用海分类指南), ``crosswalk_planning_survey`` (planning class → survey class) and
``gbt38565_supplies`` (a sample of GB/T 38565 emergency supply codes).

Rule tables (``data/rules/``, or the directory the ``GOVGIS_RULES_DIR`` setting names):
``gb50289_clearance``, ``service_life``, ``repair_frequency``, ``min_cover``, ``urban_boundary_uses`` (see
data/rules/README.md).

Every row of every table carries its ``source`` column; rows whose source says ``verify`` come from
secondary sources and should be checked against the standard's text. Tables are read once per
process and cached; callers get fresh copies they may modify.

This module is production code (the land-use statistics and the pipeline checks read it); the demo
city generator (``data.democity``) is not, and nothing here imports it.
"""

from __future__ import annotations

import csv
from functools import lru_cache
from pathlib import Path

REFERENCE_DIR = Path(__file__).resolve().parent
CODES_DIR = REFERENCE_DIR / "codes"
RULES_DIR = REFERENCE_DIR / "rules"


def available_code_lists() -> list[str]:
    """Names of the shipped code lists."""
    return sorted(p.stem for p in CODES_DIR.glob("*.csv"))


@lru_cache(maxsize=32)
def _read(path: Path) -> tuple[dict[str, str], ...]:
    with path.open(encoding="utf-8", newline="") as handle:
        reader = csv.DictReader(handle)
        if "source" not in (reader.fieldnames or []):
            # a row without its source cannot be checked against the standard: refuse the table
            raise ValueError(f"reference table {path.name} has no 'source' column: every row must say "
                             "where its values come from")
        return tuple(dict(row) for row in reader)


def code_list(name: str) -> list[dict[str, str]]:
    """The rows of one shipped code list (a fresh copy)."""
    path = CODES_DIR / f"{name}.csv"
    if not path.is_file():
        raise KeyError(f"no code list {name!r}; shipped lists: {', '.join(available_code_lists())}")
    return [dict(row) for row in _read(path)]


def rule_table(name: str, directory: Path | str | None = None) -> list[dict[str, str]]:
    """The rows of one rule table from ``directory`` (default: the shipped data/rules), a fresh copy."""
    folder = Path(directory) if directory is not None else RULES_DIR
    path = folder / f"{name}.csv"
    if not path.is_file():
        shipped = sorted(p.stem for p in folder.glob("*.csv")) if folder.is_dir() else []
        raise KeyError(f"no rule table {name!r} in the rules directory (GOVGIS_RULES_DIR); tables there: "
                       f"{', '.join(shipped) or 'none'}")
    return [dict(row) for row in _read(path.resolve())]
