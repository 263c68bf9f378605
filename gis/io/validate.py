"""Validation of imported rows against a layer's declaration: every problem found, none repaired.

``check_rows`` takes what a reader found (``gis.io.readers``) and returns the rows ready for COPY
(columns matched to the layer's fields, values converted to their column types, geometries
checked and reprojected to the storage CRS and promoted to multi parts) or the list of problems,
each with its row number. Generic over the registry: it takes a ``Layer``, never imports ``layers/``.
"""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

import numpy as np
import pandas as pd
import shapely
import sqlalchemy as sa

from gis.crs import parse_crs
from gis.errors import ImportRejected
from gis.geometry import bounds_problems, city_extent, frame_problems
from gis.io.readers import Unparsable
from gis.registry import Layer
from gis.settings import Settings

MAX_REPORTED_ERRORS = 100
Problem = tuple[int | None, str]  # (row number from 1, or None for the whole file; the reason)


def importable_fields(layer: Layer) -> list[str]:
    """Fields a file may set: the writable ones, plus the legal start date of history layers."""
    names = layer.writable_fields()
    if layer.valid_time:
        names.append(layer.valid_time[0])
    return names


def required_fields(layer: Layer) -> list[str]:
    """Fields every row must give: the declared ones and the NOT NULL columns without a default."""
    required = list(layer.required)
    for column in layer.table.columns:
        if (column.name in importable_fields(layer) and not column.nullable and column.server_default is None
                and column.default is None and column.name not in required):
            required.append(column.name)
    return required


def match_columns(layer: Layer, columns: list[str], rename: dict[str, str]
                  ) -> tuple[dict[str, str], list[str], list[str]]:
    """source column → field, ignored (read-only) columns, unknown columns.

    Matches exactly, then case-insensitively, then a Shapefile's 10-character truncation.
    """
    fields = importable_fields(layer)
    all_names = [c.name for c in layer.table.columns]
    mapping: dict[str, str] = {}
    ignored, unknown = [], []
    for column in columns:
        if column == "geometry":
            continue
        name = rename.get(column, column)
        if name in fields:
            mapping[column] = name
            continue
        folded = [f for f in fields if f.lower() == name.lower()]
        if not folded and len(name) == 10:
            folded = [f for f in fields if f.lower().startswith(name.lower())]
        if len(folded) == 1 and folded[0] not in mapping.values():
            mapping[column] = folded[0]
        elif name in all_names or name.lower() in (n.lower() for n in all_names) or (
                len(name) == 10 and any(n.lower().startswith(name.lower()) for n in all_names)):
            ignored.append(column)
        else:
            unknown.append(column)
    return mapping, ignored, unknown


def coerce_values(column: sa.Column, values: pd.Series) -> tuple[pd.Series, np.ndarray]:
    """Values converted to what COPY expects for the column's type, and a mask of unconvertible rows."""
    sql_type = column.type
    present = values.notna().to_numpy()
    if isinstance(values.dtype, pd.StringDtype) or values.dtype == object:
        present = present & (values.to_numpy(dtype=object) != "")
    bad = np.zeros(len(values), dtype=bool)
    try:
        python_type = sql_type.python_type
    except NotImplementedError:
        python_type = str
    if python_type is bool:
        truth = {"true": True, "t": True, "1": True, "yes": True, "是": True,
                 "false": False, "f": False, "0": False, "no": False, "否": False}
        mapped = values.map(lambda v: v if isinstance(v, bool) else truth.get(str(v).strip().lower()))
        bad = present & mapped.isna().to_numpy()
        return mapped.where(present, None), bad
    if python_type is int:
        numbers = pd.to_numeric(values.where(present, None), errors="coerce")
        numeric = numbers.to_numpy(dtype=float, na_value=np.nan)
        with np.errstate(invalid="ignore"):
            bad = present & (np.isnan(numeric) | (np.round(numeric) != numeric))
        out = pd.Series(np.where(bad | ~present, np.nan, numeric), index=values.index).astype("Int64")
        return out, bad
    if python_type in (float,) or type(sql_type).__name__ == "Numeric":
        numbers = pd.to_numeric(values.where(present, None), errors="coerce")
        bad = present & numbers.isna().to_numpy()
        return numbers, bad
    if python_type is dt.datetime:
        if isinstance(values.dtype, pd.DatetimeTZDtype) or pd.api.types.is_datetime64_dtype(values.dtype):
            stamps = values.dt.tz_localize("UTC") if values.dt.tz is None else values.dt.tz_convert("UTC")
        else:
            stamps = pd.to_datetime(values.where(present, None), errors="coerce", utc=True, format="mixed")
        bad = present & stamps.isna().to_numpy()
        return stamps, bad  # NaT is written as NULL
    if python_type is dt.date:
        stamps = pd.to_datetime(values.where(present, None), errors="coerce", format="mixed")
        bad = present & stamps.isna().to_numpy()
        return stamps.dt.date.astype(object).where(~stamps.isna(), None), bad
    if python_type in (dict, list) and type(sql_type).__name__ == "JSONB":
        text_values = values.map(lambda v: v if v is None or isinstance(v, str) else json.dumps(v, ensure_ascii=False))
        return text_values.where(present, None), bad
    if pd.api.types.infer_dtype(values, skipna=True) in ("string", "empty"):
        text_values = values  # already text: the common case, kept fast for million-row files
    else:
        text_values = values.map(_text_value)
    length = getattr(sql_type, "length", None)
    if length:
        with np.errstate(invalid="ignore"):
            bad = present & (text_values.str.len().fillna(0).to_numpy() > length)
    return text_values.where(present, None), bad


def _text_value(value: object) -> object:
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return None
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def _to_storage(geoms: np.ndarray, source_crs: str, settings: Settings) -> np.ndarray:
    storage_crs = settings.spatial.storage_crs
    if parse_crs(source_crs) == parse_crs(storage_crs):
        return geoms
    from pyproj import Transformer

    t = Transformer.from_crs(parse_crs(source_crs), parse_crs(storage_crs), always_xy=True)

    def project(xy: np.ndarray) -> np.ndarray:
        x, y = t.transform(xy[:, 0], xy[:, 1], errcheck=False)
        return np.column_stack([x, y])

    return shapely.transform(geoms, project)


def promote_parts(geoms: np.ndarray, expected: str) -> np.ndarray:
    """Single parts to multi parts for a multi layer (the one change made to a geometry, and a lossless
    one; DXF polylines become polygons in the reader, by the hole rule)."""
    out = geoms.copy()
    type_ids = shapely.get_type_id(out)
    singles = {"MultiPolygon": 3, "MultiLineString": 1, "MultiPoint": 0}
    if expected in singles:
        rows = np.flatnonzero(type_ids == singles[expected])
        if len(rows):
            maker = {"MultiPolygon": shapely.multipolygons, "MultiLineString": shapely.multilinestrings,
                     "MultiPoint": shapely.multipoints}[expected]
            out[rows] = maker(out[rows], indices=np.arange(len(rows)))
    return out


def validate(layer: Layer, data: pd.DataFrame, source_crs: str, *, settings: Settings,
             rename: dict[str, str] | None = None, defaults: dict[str, Any] | None = None
             ) -> tuple[pd.DataFrame, list[str]]:
    """The rows ready for COPY (storage CRS, typed), or ImportRejected listing every bad row.

    Returns the frame (columns = table columns, geometry last) and the ignored (read-only) columns.
    """
    out, ignored, errors = check_rows(layer, data, source_crs, settings=settings, rename=rename, defaults=defaults)
    if errors:
        reject(layer, errors, len(data))
    return out, ignored


def check_rows(layer: Layer, data: pd.DataFrame, source_crs: str, *, settings: Settings,
               rename: dict[str, str] | None = None, defaults: dict[str, Any] | None = None, first_row: int = 1
               ) -> tuple[pd.DataFrame, list[str], list[Problem]]:
    """Like ``validate`` but returns the problems (row number or None for the file, reason) instead of
    raising; rows are numbered from ``first_row`` (for a chunk of a bigger file)."""
    rename = rename or {}
    defaults = defaults or {}
    errors: list[Problem] = []
    mapping, ignored, unknown = match_columns(layer, list(data.columns), rename)
    for name in defaults:
        if name not in importable_fields(layer):
            errors.append((None, f"--set {name}: {layer.id!r} has no writable field {name!r}"))
    if unknown:
        errors.append((None, f"unknown column(s) {', '.join(unknown)}: {layer.id!r} has no such field; rename "
                             f"with --map SOURCE=FIELD or remove them (fields: {', '.join(importable_fields(layer))})"))
    geometry_name = layer.geometry_column
    expected = layer.geometry_type or "Geometry"
    count = len(data)
    geoms = np.array(data["geometry"].to_numpy(), dtype=object)  # a copy: reading may give read-only arrays
    unparsable = np.array([isinstance(g, Unparsable) for g in geoms], dtype=bool)
    reasons: list[str | None] = [None] * count
    for i in np.flatnonzero(unparsable):
        reasons[i] = geoms[i].reason
        geoms[i] = None
    if shapely.has_z(geoms).any():
        geoms = shapely.force_2d(geoms)
    checked = frame_problems(geoms, expected)
    for i, reason in enumerate(checked):
        if reason and not reasons[i]:
            reasons[i] = reason
    ok = np.array([r is None for r in reasons], dtype=bool)
    stored = np.empty(count, dtype=object)
    if ok.any():
        stored[ok] = _to_storage(geoms[ok], source_crs, settings)
        finite = np.ones(count, dtype=bool)
        coords, index = shapely.get_coordinates(stored[ok], return_index=True)
        bad_idx = np.unique(index[~np.isfinite(coords).all(axis=1)])
        finite[np.flatnonzero(ok)[bad_idx]] = False
        for i in np.flatnonzero(~finite):
            reasons[i] = f"coordinates cannot be transformed from {crs_label(source_crs)}: are they in that CRS?"
        ok &= finite
        outside = np.zeros(count, dtype=bool)
        if ok.any():
            outside[ok] = bounds_problems(stored[ok], settings.spatial.storage_crs, settings.spatial.city_bounds)
        if outside.any():
            hint = _outside_hint(geoms[outside], source_crs, settings)
            for i in np.flatnonzero(outside):
                reasons[i] = hint
        ok &= ~outside
    errors.extend((i + first_row, r) for i, r in enumerate(reasons) if r)
    out = pd.DataFrame(index=data.index)
    unconvertible: dict[str, np.ndarray] = {}
    for source, name in mapping.items():
        column = layer.table.c[name]
        values, bad = coerce_values(column, data[source])
        unconvertible[name] = bad
        for i in np.flatnonzero(bad):
            errors.append((int(i) + first_row, f"field {name}: {str(data[source].iloc[i])[:40]!r} is not a valid "
                                       f"{_type_label(column)}"))
        out[name] = values
    for name, value in defaults.items():
        if name in importable_fields(layer) and name not in out.columns:
            out[name] = coerce_values(layer.table.c[name], pd.Series([value] * count, index=data.index))[0]
    for name in required_fields(layer):
        if name == geometry_name:
            continue
        if name not in out.columns:
            errors.append((None, f"required field {name!r} is missing: add the column, map one to it with "
                                 f"--map SOURCE={name}, or give one value for all rows with --set {name}=VALUE"))
            continue
        empty = out[name].isna().to_numpy() & ~unconvertible.get(name, np.zeros(count, dtype=bool))
        for i in np.flatnonzero(empty):
            errors.append((int(i) + first_row, f"required field {name} is empty"))
    if layer.validators:
        # the layer's own value rules (code lists such as pipe materials), the same the write path applies
        rows = out.astype(object).where(out.notna(), None).to_dict("records")
        errors.extend((i + first_row, reason) for i, reason in layer.value_problems(rows))
    if errors:
        return out, ignored, errors
    stored = promote_parts(stored, expected)
    out[geometry_name] = stored
    return out.reset_index(drop=True), ignored, errors


def _type_label(column: sa.Column) -> str:
    try:
        python_type = column.type.python_type
    except NotImplementedError:
        return str(column.type)
    labels = {int: "integer", float: "number", bool: "boolean (true/false)", dt.date: "date (YYYY-MM-DD)",
              dt.datetime: "date-time (ISO 8601)"}
    if python_type is str and getattr(column.type, "length", None):
        return f"text of at most {column.type.length} characters"
    return labels.get(python_type, str(column.type).lower())


def crs_label(value: str) -> str:
    crs = parse_crs(value)
    epsg = crs.to_epsg(min_confidence=70)
    return f"EPSG:{epsg}" if epsg else crs.name


def _outside_hint(source_geoms: np.ndarray, source_crs: str, settings: Settings) -> str:
    extent = city_extent(settings.spatial.city_bounds, settings.spatial.storage_crs)
    lon0, lat0, lon1, lat1 = extent.lonlat
    b = shapely.total_bounds(source_geoms)
    message = (f"geometry lies outside the city (lon {lon0}–{lon1}, lat {lat0}–{lat1}) after reading it as "
               f"{crs_label(source_crs)}")
    if parse_crs(source_crs).is_projected and -180 <= b[0] and b[2] <= 180 and -90 <= b[1] and b[3] <= 90:
        return message + ": the coordinates look like longitude/latitude degrees — declare --crs EPSG:4490 " \
                         "(CGCS2000) or EPSG:4326"
    if b[0] > b[1] and parse_crs(source_crs).is_projected and b[1] < 1_000_000 < b[0]:
        return message + ": x and y look swapped (northing first?) — check the axis order of the file"
    return message + ": check the CRS you declared (--crs) and the axis order"


def reject(layer: Layer, errors: list[Problem], count: int) -> None:
    """Raise ImportRejected listing the problems (the first MAX_REPORTED_ERRORS) and their rows."""
    errors = sorted(errors, key=lambda e: (e[0] is not None, e[0] or 0))
    bad_rows = len({row for row, _ in errors if row is not None})
    shown = [{"row": row, "reason": reason} for row, reason in errors[:MAX_REPORTED_ERRORS]]
    lines = [f"row {e['row']}: {e['reason']}" if e["row"] else e["reason"] for e in shown[:10]]
    more = f" … and {len(errors) - 10} more" if len(errors) > 10 else ""
    raise ImportRejected(
        f"import into {layer.id!r} rejected, nothing was written: {len(errors)} problem(s) in {bad_rows} of "
        f"{count} row(s) — " + "; ".join(lines) + more + ". Fix the file and import it again.",
        errors=shown, error_count=len(errors), rows=count,
    )


