"""The pipeline code lists data and rules share: utilities, pipe materials, pressure classes.

One list each in data/codes (``pipeline_utilities``, ``pipe_materials``, ``pipe_pressure_classes``):
the demo city draws its values from them, the rule tables (service life by material, clearances by
utility and gas pressure class, minimum cover by utility) key on them, and every write of a pipe —
OGC API, ``govgis import``, an INP import — is checked against them (the registry's ``validators``
of the pipes layer), so a value a rule cannot find is refused when it comes in, with the list of
known ones, instead of silently dropping out of a rule later.

Pure: reads the shipped code lists only.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from functools import lru_cache
from typing import Any

from data.reference import code_list


@lru_cache(maxsize=1)
def utilities() -> tuple[str, ...]:
    """Utility codes (water, drainage, gas …) in list order."""
    return tuple(r["code"] for r in code_list("pipeline_utilities"))


@lru_cache(maxsize=1)
def clearance_groups() -> dict[str, str]:
    """Utility → the utility the GB 50289 tables list it under (rain and sewage count as drainage)."""
    return {r["code"]: r["clearance_group"] or r["code"] for r in code_list("pipeline_utilities")}


@lru_cache(maxsize=1)
def materials() -> dict[str, dict[str, str]]:
    """Pipe material code → its row (English name, utilities, aliases, source)."""
    return {r["code"]: r for r in code_list("pipe_materials")}


@lru_cache(maxsize=1)
def pressure_classes() -> dict[str, dict[str, str]]:
    """Pressure class code (燃气 低压 … 高压A per GB 50028; water/heat working pressures) → its row."""
    return {r["code"]: r for r in code_list("pipe_pressure_classes")}


def gas_pressure_group(value: str | None) -> str | None:
    """The GB 50289 clearance group (low / medium / subhigh / high) of a gas pressure class code, or of a
    group name given as such; None when unknown. No value counts as low pressure (the mildest rule is
    never applied to an unknown class: the caller reports unknown values)."""
    if value is None:
        return "low"
    row = pressure_classes().get(value)
    if row is not None:
        return row["clearance_group"] or None
    return value if value in {r["clearance_group"] for r in pressure_classes().values() if r["clearance_group"]} \
        else None


def _hint(value: str, known: dict[str, dict[str, str]]) -> str:
    for code, row in known.items():
        if value in (row.get("aliases") or "").split(";"):
            return f" (did you mean {code!r}?)"
    return ""


def material_problem(value: Any) -> str | None:
    """Why a pipe material is refused, or None when the code list knows it (or none is given)."""
    if value is None or value == "":
        return None
    known = materials()
    if value in known:
        return None
    return (f"material {value!r} is not in the code list data/codes/pipe_materials.csv{_hint(str(value), known)}; "
            f"known materials: {', '.join(known)}")


def pressure_problem(value: Any) -> str | None:
    """Why a pressure class is refused, or None when the code list knows it (or none is given)."""
    if value is None or value == "":
        return None
    known = pressure_classes()
    if value in known:
        return None
    return (f"pressure_class {value!r} is not in the code list data/codes/pipe_pressure_classes.csv; known "
            f"classes: {', '.join(known)}")


def pipe_value_problems(rows: Sequence[Mapping[str, Any]]) -> list[tuple[int, str]]:
    """The pipes layer's validator (gis.registry ``Layer.validators``): (row index, reason) for every
    row whose material or pressure class is not in its code list; fields a row does not give are not
    checked (a PATCH that leaves them alone)."""
    problems = []
    for i, row in enumerate(rows):
        for name, check in (("material", material_problem), ("pressure_class", pressure_problem)):
            if name in row:
                reason = check(row[name])
                if reason:
                    problems.append((i, reason))
    return problems
