"""Bulk import of files into any registered layer: read, validate every row, COPY, all or nothing.

``import_file`` reads GeoPackage, Shapefile (with encoding detection for Chinese DBFs), GeoJSON, CSV
with coordinates or WKT, and DXF; reprojects to the storage CRS; validates every row (geometry,
type, city bounds, required and unknown fields, value types); and loads with COPY into a temporary
table followed by one INSERT … SELECT, so the table's constraints and triggers apply. One audit
record summarises the import. Any bad row rejects the whole file with row numbers and reasons.

Generic over the registry: it takes a ``Layer`` and never imports ``layers/``.
"""

from __future__ import annotations

import datetime as dt
import io
import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import shapely
import sqlalchemy as sa
from sqlalchemy.engine import Connection

from gis.access import Caller, require_write
from gis.crs import parse_crs
from gis.errors import ImportRejected, InvalidParameter, PayloadTooLarge
from gis.geometry import bounds_problems, city_extent, frame_problems
from gis.registry import Layer
from gis.settings import Settings, get_settings

COPY_CHUNK_ROWS = 50_000
STREAM_CHUNK_ROWS = 100_000  # rows read, validated and COPY'd at a time from big files
IMPORT_WORKERS = 2  # processes preparing slices of a big file
PREFETCH_CHUNKS = 3  # slices prepared ahead of the COPY
BULK_REINDEX_MIN_ROWS = 100_000  # rows from which a load into an empty table rebuilds indexes
MAX_REPORTED_ERRORS = 100
FORMATS = {".gpkg": "GPKG", ".shp": "ESRI Shapefile", ".geojson": "GeoJSON", ".json": "GeoJSON",
           ".csv": "CSV", ".dxf": "DXF"}
# CSV columns recognised as coordinates (lower case); lon/lat pairs default to EPSG:4326
LONLAT_COLUMNS = (("lon", "lat"), ("lng", "lat"), ("longitude", "latitude"), ("经度", "纬度"))
XY_COLUMNS = (("x", "y"), ("easting", "northing"), ("东坐标", "北坐标"))
WKT_COLUMNS = ("wkt", "geometry", "geom", "the_geom", "shape")
# columns GDAL's DXF driver invents; they are not attributes of the drawing's features
DXF_COLUMNS = ("Layer", "SubClasses", "ExtendedEntity", "Linetype", "EntityHandle", "Text", "PaperSpace",
               "RawCodeValues", "LineWidth", "SubClasses")


@dataclass
class ImportReport:
    """What an import did (returned to the CLI and recorded in the audit log)."""

    layer: str
    file: str
    format: str
    rows: int
    source_crs: str
    encoding: str | None = None
    ignored_columns: list[str] = field(default_factory=list)
    seconds: float = 0.0
    stages: dict[str, float] = field(default_factory=dict)  # seconds spent reading, validating, loading

    def as_dict(self) -> dict[str, Any]:
        return {"layer": self.layer, "file": self.file, "format": self.format, "rows": self.rows,
                "source_crs": self.source_crs, "encoding": self.encoding,
                "ignored_columns": self.ignored_columns, "seconds": round(self.seconds, 3),
                "stages": {k: round(v, 3) for k, v in self.stages.items()}}


# --- reading ------------------------------------------------------------------------------------

def detect_dbf_encoding(shp_path: Path) -> str:
    """The encoding of a Shapefile's attributes: the .cpg if there is one, else UTF-8 if the records
    decode as UTF-8, else GB18030 (a superset of GBK/GB2312, what Chinese desktop GIS writes)."""
    cpg = shp_path.with_suffix(".cpg")
    if not cpg.exists():
        cpg = shp_path.with_suffix(".CPG")
    if cpg.exists():
        declared = cpg.read_text(errors="ignore").strip()
        if declared:
            return {"936": "GB18030", "GBK": "GB18030", "GB2312": "GB18030"}.get(declared.upper(), declared)
    dbf = next((p for p in (shp_path.with_suffix(".dbf"), shp_path.with_suffix(".DBF")) if p.exists()), None)
    if dbf is None:
        return "UTF-8"
    raw = dbf.read_bytes()
    if len(raw) < 32:
        return "UTF-8"
    header_len = int.from_bytes(raw[8:10], "little")
    records = raw[header_len:]
    try:
        records.decode("utf-8")
        return "UTF-8"
    except UnicodeDecodeError:
        pass
    try:
        records.decode("gb18030")
        return "GB18030"
    except UnicodeDecodeError:
        raise InvalidParameter(
            f"cannot tell the text encoding of {dbf.name}: pass --encoding (e.g. GBK, UTF-8, Big5)"
        ) from None


def _format_of(path: Path) -> str:
    driver = FORMATS.get(path.suffix.lower())
    if driver is None:
        raise InvalidParameter(
            f"unsupported file type {path.suffix!r}: use .gpkg, .shp, .geojson/.json, .csv or .dxf"
        )
    return driver


def read_source(path: Path, *, layer_name: str | None = None, encoding: str | None = None,
                crs: str | None = None, target: Layer | None = None, skip: int = 0,
                max_rows: int | None = None) -> tuple[pd.DataFrame, str, str | None]:
    """The file as a frame with a ``geometry`` column of shapely geometries (source CRS), the CRS the
    geometries are in (declared > file's own > format default), and the text encoding used.

    ``skip``/``max_rows`` read a slice (GeoPackage and Shapefile), so big files stream in chunks."""
    import pyogrio

    path = Path(path)
    if not path.exists():
        raise InvalidParameter(f"file {path} does not exist")
    driver = _format_of(path)
    if driver == "CSV":
        return _read_csv(path, encoding=encoding, crs=crs)
    used_encoding = encoding
    if driver == "ESRI Shapefile" and encoding is None and path.suffix.lower() == ".shp":
        used_encoding = detect_dbf_encoding(path)
    kwargs: dict[str, Any] = {}
    if layer_name is None and driver in ("GPKG",):
        names = [name for name, _ in pyogrio.list_layers(path)]
        if len(names) > 1:
            preferred = [n for n in names if target is not None and n in (target.id, target.table.name)]
            if not preferred:
                raise InvalidParameter(
                    f"{path.name} has {len(names)} layers ({', '.join(names)}): choose one with --layer-name"
                )
            layer_name = preferred[0]
    if layer_name is not None:
        kwargs["layer"] = layer_name
    if skip or max_rows is not None:
        kwargs.update(skip_features=skip, max_features=max_rows)
    try:
        frame = pyogrio.read_dataframe(path, encoding=used_encoding, **kwargs)
    except Exception as exc:  # GDAL's errors are many; each means the file could not be read
        raise InvalidParameter(f"cannot read {path.name}: {exc}") from None
    file_crs = frame.crs.to_wkt() if frame.crs is not None else None
    if driver == "DXF":
        frame = frame.drop(columns=[c for c in DXF_COLUMNS if c in frame.columns and c != "Layer"])
    geoms = frame.geometry.to_numpy()
    data = pd.DataFrame(frame.drop(columns=frame.geometry.name))
    data["geometry"] = geoms
    if crs:
        source = crs
    elif file_crs:
        source = file_crs
    elif driver == "GeoJSON":
        source = "OGC:CRS84"  # RFC 7946
    elif driver == "DXF":
        source = get_settings().spatial.storage_crs  # CAD drawings come in the city's grid
    else:
        raise InvalidParameter(f"{path.name} does not say its coordinate system: pass --crs (e.g. EPSG:4548)")
    return data, source, used_encoding


def _read_csv(path: Path, *, encoding: str | None, crs: str | None) -> tuple[pd.DataFrame, str, str | None]:
    used = encoding
    raw = path.read_bytes()
    if used is None:
        try:
            raw.decode("utf-8")
            used = "utf-8-sig"
        except UnicodeDecodeError:
            used = "GB18030"
    # every value as text: codes such as 0701 must keep their leading zero; types are checked later
    frame = pd.read_csv(io.BytesIO(raw), dtype=str, encoding=used, keep_default_na=False, na_values=[""])
    lower = {c.lower().strip(): c for c in frame.columns}
    geoms: np.ndarray | None = None
    default_crs = get_settings().spatial.storage_crs
    drop: list[str] = []
    for name in WKT_COLUMNS:
        if name in lower:
            column = lower[name]
            text_values = frame[column].to_numpy(dtype=object)
            geoms = np.empty(len(frame), dtype=object)
            for i, value in enumerate(text_values):
                if value is None or (isinstance(value, float) and np.isnan(value)):
                    geoms[i] = None
                    continue
                try:
                    geoms[i] = shapely.from_wkt(value)
                except shapely.errors.GEOSException as exc:
                    geoms[i] = _Unparsable(f"column {column} is not valid WKT ({exc}): {str(value)[:40]!r}")
            drop.append(column)
            break
    if geoms is None:
        for pairs, pair_crs in ((LONLAT_COLUMNS, "EPSG:4326"), (XY_COLUMNS, default_crs)):
            found = next(((lower[a], lower[b]) for a, b in pairs if a in lower and b in lower), None)
            if found:
                xs = pd.to_numeric(frame[found[0]], errors="coerce").to_numpy(dtype=float)
                ys = pd.to_numeric(frame[found[1]], errors="coerce").to_numpy(dtype=float)
                geoms = shapely.points(xs, ys)
                geoms[np.isnan(xs) | np.isnan(ys)] = None
                drop.extend(found)
                default_crs = pair_crs
                break
    if geoms is None:
        raise InvalidParameter(
            f"{path.name}: no geometry columns: give a WKT column (wkt/geometry) or coordinate columns "
            "(x,y in the declared CRS, or lon,lat)"
        )
    data = frame.drop(columns=drop)
    data["geometry"] = geoms
    return data, crs or default_crs, used


class _Unparsable:
    """Stands in for a geometry that could not be parsed, carrying the reason to the row report."""

    def __init__(self, reason: str) -> None:
        self.reason = reason


# --- validation ---------------------------------------------------------------------------------

def importable_fields(layer: Layer) -> list[str]:
    """Fields a file may set: the writable ones, plus the legal start date of history layers."""
    names = layer.writable_fields()
    if layer.valid_time:
        names.append(layer.valid_time[0])
    return names


def _required_fields(layer: Layer) -> list[str]:
    required = list(layer.required)
    for column in layer.table.columns:
        if (column.name in importable_fields(layer) and not column.nullable and column.server_default is None
                and column.default is None and column.name not in required):
            required.append(column.name)
    return required


def _match_columns(layer: Layer, columns: list[str], rename: dict[str, str]) -> tuple[dict[str, str], list[str],
                                                                                         list[str]]:
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


def _coerce(column: sa.Column, values: pd.Series) -> tuple[pd.Series, np.ndarray]:
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


def _promote(geoms: np.ndarray, expected: str) -> np.ndarray:
    """Single parts to multi parts for a multi layer; closed lines to polygons (DXF polylines)."""
    out = geoms.copy()
    type_ids = shapely.get_type_id(out)
    if expected in ("Polygon", "MultiPolygon"):
        closed_lines = (type_ids == 1) & shapely.is_closed(out)
        if closed_lines.any():
            polygons = np.empty(int(closed_lines.sum()), dtype=object)
            polygons[:] = [shapely.Polygon(g.coords) for g in out[closed_lines]]
            out[closed_lines] = polygons
            type_ids = shapely.get_type_id(out)
    singles = {"MultiPolygon": 3, "MultiLineString": 1, "MultiPoint": 0}
    if expected in singles:
        rows = np.flatnonzero(type_ids == singles[expected])
        if len(rows):
            maker = {"MultiPolygon": shapely.multipolygons, "MultiLineString": shapely.multilinestrings,
                     "MultiPoint": shapely.multipoints}[expected]
            out[rows] = maker(out[rows], indices=np.arange(len(rows)))
    return out


def validate(layer: Layer, data: pd.DataFrame, source_crs: str, *, rename: dict[str, str] | None = None,
             defaults: dict[str, Any] | None = None, settings: Settings | None = None
             ) -> tuple[pd.DataFrame, list[str]]:
    """The rows ready for COPY (storage CRS, typed), or ImportRejected listing every bad row.

    Returns the frame (columns = table columns, geometry last) and the ignored (read-only) columns.
    """
    out, ignored, errors = check_rows(layer, data, source_crs, rename=rename, defaults=defaults, settings=settings)
    if errors:
        _reject(layer, errors, len(data))
    return out, ignored


def check_rows(layer: Layer, data: pd.DataFrame, source_crs: str, *, rename: dict[str, str] | None = None,
               defaults: dict[str, Any] | None = None, settings: Settings | None = None, first_row: int = 1
               ) -> tuple[pd.DataFrame, list[str], list[tuple[int | None, str]]]:
    """Like ``validate`` but returns the problems (row number or None for the file, reason) instead of
    raising; rows are numbered from ``first_row`` (for a chunk of a bigger file)."""
    settings = settings or get_settings()
    rename = rename or {}
    defaults = defaults or {}
    errors: list[tuple[int | None, str]] = []
    mapping, ignored, unknown = _match_columns(layer, list(data.columns), rename)
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
    unparsable = np.array([isinstance(g, _Unparsable) for g in geoms], dtype=bool)
    reasons: list[str | None] = [None] * count
    for i in np.flatnonzero(unparsable):
        reasons[i] = geoms[i].reason
        geoms[i] = None
    if shapely.has_z(geoms).any():
        geoms = shapely.force_2d(geoms)
    if expected in ("Polygon", "MultiPolygon"):
        geoms = _promote(geoms, "Polygon")  # closed DXF polylines become polygons before the type check
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
            reasons[i] = f"coordinates cannot be transformed from {_crs_label(source_crs)}: are they in that CRS?"
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
        values, bad = _coerce(column, data[source])
        unconvertible[name] = bad
        for i in np.flatnonzero(bad):
            errors.append((int(i) + first_row, f"field {name}: {str(data[source].iloc[i])[:40]!r} is not a valid "
                                       f"{_type_label(column)}"))
        out[name] = values
    for name, value in defaults.items():
        if name in importable_fields(layer) and name not in out.columns:
            out[name] = _coerce(layer.table.c[name], pd.Series([value] * count, index=data.index))[0]
    for name in _required_fields(layer):
        if name == geometry_name:
            continue
        if name not in out.columns:
            errors.append((None, f"required field {name!r} is missing: add the column, map one to it with "
                                 f"--map SOURCE={name}, or give one value for all rows with --set {name}=VALUE"))
            continue
        empty = out[name].isna().to_numpy() & ~unconvertible.get(name, np.zeros(count, dtype=bool))
        for i in np.flatnonzero(empty):
            errors.append((int(i) + first_row, f"required field {name} is empty"))
    if errors:
        return out, ignored, errors
    stored = _promote(stored, expected)
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


def _crs_label(value: str) -> str:
    crs = parse_crs(value)
    epsg = crs.to_epsg(min_confidence=70)
    return f"EPSG:{epsg}" if epsg else crs.name


def _outside_hint(source_geoms: np.ndarray, source_crs: str, settings: Settings) -> str:
    extent = city_extent(settings.spatial.city_bounds, settings.spatial.storage_crs)
    lon0, lat0, lon1, lat1 = extent.lonlat
    b = shapely.total_bounds(source_geoms)
    message = (f"geometry lies outside the city (lon {lon0}–{lon1}, lat {lat0}–{lat1}) after reading it as "
               f"{_crs_label(source_crs)}")
    if parse_crs(source_crs).is_projected and -180 <= b[0] and b[2] <= 180 and -90 <= b[1] and b[3] <= 90:
        return message + ": the coordinates look like longitude/latitude degrees — declare --crs EPSG:4490 " \
                         "(CGCS2000) or EPSG:4326"
    if b[0] > b[1] and parse_crs(source_crs).is_projected and b[1] < 1_000_000 < b[0]:
        return message + ": x and y look swapped (northing first?) — check the axis order of the file"
    return message + ": check the CRS you declared (--crs) and the axis order"


def _reject(layer: Layer, errors: list[tuple[int | None, str]], count: int) -> None:
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


# --- loading ------------------------------------------------------------------------------------

NULL = "\\N"
_ESCAPES = str.maketrans({"\\": "\\\\", "\t": "\\t", "\n": "\\n", "\r": "\\r"})


def _is_geometry_column(column: pd.Series) -> bool:
    if str(column.dtype) == "geometry":
        return True
    if column.dtype != object:
        return False
    sample = column.dropna()
    return bool(len(sample)) and isinstance(sample.iloc[0], shapely.Geometry)


def _copy_text_column(column: pd.Series, srid: int | None) -> np.ndarray:
    """One column as COPY text-format fields (an object array of str), vectorised where it counts."""
    if _is_geometry_column(column):
        geoms = np.asarray(column.to_numpy(), dtype=object)
        if srid is not None:
            geoms = shapely.set_srid(geoms, srid)
        out = shapely.to_wkb(geoms, hex=True, include_srid=True).astype(object)
        out[shapely.is_missing(geoms)] = NULL
        return out
    missing = column.isna().to_numpy()
    dtype = column.dtype
    if isinstance(dtype, pd.DatetimeTZDtype) or pd.api.types.is_datetime64_dtype(dtype):
        values = column.dt.tz_convert("UTC").dt.tz_localize(None) if isinstance(dtype, pd.DatetimeTZDtype) \
            else column
        text_values = np.datetime_as_string(values.to_numpy(dtype="datetime64[us]"), unit="us").astype(object)
        if isinstance(dtype, pd.DatetimeTZDtype):
            text_values = text_values + "+00"
    elif pd.api.types.is_bool_dtype(dtype):
        text_values = np.where(column.to_numpy(dtype=bool, na_value=False), "t", "f").astype(object)
    elif pd.api.types.is_integer_dtype(dtype):
        text_values = column.to_numpy(dtype="int64", na_value=0).astype(str).astype(object)
    elif pd.api.types.is_float_dtype(dtype):
        text_values = column.to_numpy(dtype=float, na_value=np.nan).astype(str).astype(object)
    else:
        text_values = column.to_numpy(dtype=object).copy()
        present = ~missing
        if pd.api.types.infer_dtype(text_values[present], skipna=True) not in ("string", "empty"):
            text_values[present] = [str(v) for v in text_values[present]]
        # one C-level scan of the whole column decides whether any value needs escaping (rarely)
        joined = "\x00".join(text_values[present])
        if any(ch in joined for ch in "\\\t\n\r"):
            text_values[present] = [v.translate(_ESCAPES) for v in text_values[present]]
    text_values[missing] = NULL
    return text_values


def copy_text(frame: pd.DataFrame, srid: int | None) -> str:
    """A frame as PostgreSQL COPY text format (tab-separated, \\N for NULL, geometry as hex EWKB)."""
    if frame.empty:
        return ""
    columns = [_copy_text_column(frame[name], srid) for name in frame.columns]
    return "\n".join(map("\t".join, zip(*columns, strict=True))) + "\n"


def copy_frame(conn: Connection, table: str, frame: pd.DataFrame, *, srid: int | None = None,
               progress: object | None = None) -> int:
    """COPY a frame's columns into ``table`` (a trusted name: ours, not a client's). Returns the rows.

    Geometry columns become hex EWKB in ``srid`` (default: the frame's CRS EPSG code, else the
    storage SRID). Works inside the caller's transaction. ``progress`` is a tqdm bar to advance.
    """
    if srid is None:
        crs = getattr(frame, "crs", None)
        srid = crs.to_epsg() if crs is not None else None
        if srid is None:
            srid = get_settings().storage_srid
    quoted = ", ".join(f'"{c}"' for c in frame.columns)
    raw = conn.connection.driver_connection
    total = 0
    with raw.cursor() as cursor:
        for start in range(0, len(frame), COPY_CHUNK_ROWS):
            chunk = frame.iloc[start:start + COPY_CHUNK_ROWS]
            cursor.copy_expert(f"COPY {table} ({quoted}) FROM STDIN", io.StringIO(copy_text(chunk, srid)))
            total += len(chunk)
            if progress is not None:
                progress.update(len(chunk))  # type: ignore[attr-defined]
    return total


def _bulk_indexes(conn: Connection, table: str, rows: int) -> list[tuple[str, str]]:
    """Indexes worth dropping for this load: when a big file goes into an (almost) empty table, building
    the indexes once afterwards is several times faster than maintaining them row by row. Indexes that
    back constraints (primary key, unique constraints) stay. Returns (name, definition) to rebuild."""
    if rows < BULK_REINDEX_MIN_ROWS:
        return []
    estimate = conn.execute(sa.text("SELECT greatest(reltuples, 0) FROM pg_class WHERE oid = CAST(:t AS regclass)"),
                            {"t": table}).scalar_one()
    has_rows = conn.execute(sa.text(f"SELECT EXISTS (SELECT 1 FROM {table})")).scalar_one()
    if has_rows and estimate * 2 > rows:
        return []
    return [(name, definition) for name, definition in conn.execute(sa.text("""
        SELECT i.relname, pg_get_indexdef(ix.indexrelid) FROM pg_index ix JOIN pg_class i ON i.oid = ix.indexrelid
        WHERE ix.indrelid = CAST(:t AS regclass)
          AND NOT EXISTS (SELECT 1 FROM pg_constraint c WHERE c.conindid = ix.indexrelid)"""), {"t": table})]


def _db_rejection(layer: Layer, exc: Exception, rows: int) -> ImportRejected:
    orig = getattr(exc, "orig", None) or exc  # SQLAlchemy wraps driver errors; a raw COPY does not
    diag = getattr(orig, "diag", None)
    message = getattr(diag, "message_primary", None) or str(orig).splitlines()[0]
    detail = getattr(diag, "message_detail", None)
    constraint = getattr(diag, "constraint_name", None)
    text_message = f"{message}" + (f" ({constraint})" if constraint else "") + (f": {detail}" if detail else "")
    return ImportRejected(
        f"import into {layer.id!r} rejected by the database, nothing was written: {text_message}. "
        "Correct that row and import again.",
        errors=[{"row": None, "reason": text_message}], error_count=1, rows=rows,
    )


class _Staging:
    """The temporary table an import is COPY'd into before one INSERT … SELECT into the layer's table."""

    NAME = "govgis_import_rows"

    def __init__(self, conn: Connection, layer: Layer, columns: list[str]) -> None:
        self.conn, self.layer = conn, layer
        self.table = layer.table.name  # from the registry, not from the client
        self.quoted = ", ".join(f'"{layer.table.c[name].name}"' for name in columns)
        conn.execute(sa.text(f"DROP TABLE IF EXISTS {self.NAME}"))
        conn.execute(sa.text(
            f"CREATE TEMP TABLE {self.NAME} ON COMMIT DROP AS SELECT {self.quoted} FROM {self.table} WITH NO DATA"))
        self.rows = 0

    def copy(self, copy_data: str, rows: int) -> None:
        raw = self.conn.connection.driver_connection
        with raw.cursor() as cursor:
            cursor.copy_expert(f"COPY {self.NAME} ({self.quoted}) FROM STDIN", io.StringIO(copy_data),
                               size=1 << 20)
        self.rows += rows

    def insert(self, stages: dict[str, float]) -> int:
        """Move the staged rows into the layer's table; a big load into an (almost) empty table drops
        the plain indexes first and builds them again after (a unique index that fails rejects it)."""
        from sqlalchemy.exc import DBAPIError

        conn, table = self.conn, self.table
        clock = time.perf_counter()
        savepoint = conn.begin_nested()
        try:
            rebuild = _bulk_indexes(conn, table, self.rows)
            for name, _ in rebuild:
                conn.execute(sa.text(f'DROP INDEX "{name}"'))
            result = conn.execute(sa.text(
                f"INSERT INTO {table} ({self.quoted}) SELECT {self.quoted} FROM {self.NAME}"))
            stages["insert"] = time.perf_counter() - clock
            clock = time.perf_counter()
            if rebuild:
                conn.execute(sa.text("SET LOCAL maintenance_work_mem = '512MB'"))
                for _, definition in rebuild:
                    conn.execute(sa.text(definition))
                conn.execute(sa.text(f"ANALYZE {table}"))
                stages["indexes"] = time.perf_counter() - clock
            savepoint.commit()
        except DBAPIError as exc:
            savepoint.rollback()
            self.drop()
            raise _db_rejection(self.layer, exc, self.rows) from None
        self.drop()
        return int(result.rowcount)

    def drop(self) -> None:
        self.conn.execute(sa.text(f"DROP TABLE IF EXISTS {self.NAME}"))


class _DirectLoad:
    """The bulk path: a big file into an (almost) empty table is COPY'd straight into the table, inside a
    savepoint, with the plain indexes dropped and rebuilt at the end. COPY applies the same constraints,
    defaults and triggers as INSERT, and the server's insert work overlaps the reading of the next
    slices instead of following it. Any rejection rolls the savepoint back: the table is unchanged."""

    def __init__(self, conn: Connection, layer: Layer, columns: list[str], rebuild: list[tuple[str, str]]) -> None:
        self.conn, self.layer, self.rebuild = conn, layer, rebuild
        self.table = layer.table.name  # from the registry, not from the client
        self.quoted = ", ".join(f'"{layer.table.c[name].name}"' for name in columns)
        self.savepoint = conn.begin_nested()
        for name, _ in rebuild:
            conn.execute(sa.text(f'DROP INDEX "{name}"'))
        self.rows = 0

    def copy(self, copy_data: str, rows: int) -> None:
        import psycopg2

        raw = self.conn.connection.driver_connection
        try:
            with raw.cursor() as cursor:
                cursor.copy_expert(f"COPY {self.table} ({self.quoted}) FROM STDIN", io.StringIO(copy_data),
                                   size=1 << 20)
        except psycopg2.Error as exc:
            self.drop()
            raise _db_rejection(self.layer, exc, self.rows + rows) from None
        self.rows += rows

    def insert(self, stages: dict[str, float]) -> int:
        from sqlalchemy.exc import DBAPIError

        clock = time.perf_counter()
        try:
            self.conn.execute(sa.text("SET LOCAL maintenance_work_mem = '512MB'"))
            for _, definition in self.rebuild:
                self.conn.execute(sa.text(definition))
            self.conn.execute(sa.text(f"ANALYZE {self.table}"))
        except DBAPIError as exc:
            self.drop()
            raise _db_rejection(self.layer, exc, self.rows) from None
        stages["indexes"] = time.perf_counter() - clock
        self.savepoint.commit()
        return self.rows

    def drop(self) -> None:
        if self.savepoint.is_active:
            self.savepoint.rollback()


def load_rows(conn: Connection, layer: Layer, frame: pd.DataFrame, *, progress: object | None = None,
              stages: dict[str, float] | None = None) -> int:
    """COPY validated rows into a temporary table, then INSERT … SELECT into the layer's table, so
    every constraint, default and trigger of the real table applies. Returns the rows inserted."""
    stages = stages if stages is not None else {}
    clock = time.perf_counter()
    staging = _Staging(conn, layer, list(frame.columns))
    srid = get_settings().storage_srid
    for start in range(0, len(frame), COPY_CHUNK_ROWS):
        chunk = frame.iloc[start:start + COPY_CHUNK_ROWS]
        staging.copy(copy_text(chunk, srid), len(chunk))
        if progress is not None:
            progress.update(len(chunk))  # type: ignore[attr-defined]
    stages["copy"] = time.perf_counter() - clock
    return staging.insert(stages)


@dataclass
class _Chunk:
    """One slice of a file, read and validated, ready to COPY (picklable: it may come from a worker)."""

    rows: int
    columns: list[str]
    ignored: list[str]
    errors: list[tuple[int | None, str]]
    copy_data: str | None
    source_crs: str
    encoding: str | None
    seconds: float


@dataclass
class _PrepareJob:
    path: Path
    driver: str
    layer: Layer
    layer_name: str | None
    encoding: str | None
    crs: str | None
    rename: dict[str, str] | None
    defaults: dict[str, Any] | None
    srid: int


_JOB: _PrepareJob | None = None  # the import whose slices are being prepared (inherited by forked workers)


def _prepare_slice(skip: int, max_rows: int | None) -> _Chunk:
    """Read, validate and encode one slice of the current job's file."""
    job = _JOB
    assert job is not None
    clock = time.perf_counter()
    data, source_crs, used = read_source(job.path, layer_name=job.layer_name, encoding=job.encoding, crs=job.crs,
                                         target=job.layer, skip=skip, max_rows=max_rows)
    if job.driver == "DXF" and "Layer" in data.columns and "Layer" not in (job.rename or {}):
        data = data.drop(columns=["Layer"])  # the CAD layer name; map it with --map Layer=FIELD to keep it
    frame, ignored, errors = check_rows(job.layer, data, source_crs, rename=job.rename, defaults=job.defaults,
                                        first_row=skip + 1)
    copy_data = None if errors else copy_text(frame, job.srid)
    return _Chunk(len(data), list(frame.columns), ignored, errors, copy_data, source_crs, used,
                  time.perf_counter() - clock)


class _Preparer:
    """Where slices are prepared: forked worker processes for big files (reading and validating is CPU
    work that would otherwise leave the database waiting), one thread for a single slice."""

    def __init__(self, job: _PrepareJob, slices: int) -> None:
        self.job, self.slices = job, slices

    def __enter__(self) -> Any:
        import multiprocessing
        from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor

        global _JOB
        _JOB = self.job
        if self.slices >= 3 and "fork" in multiprocessing.get_all_start_methods():
            self.pool: Any = ProcessPoolExecutor(max_workers=IMPORT_WORKERS,
                                                 mp_context=multiprocessing.get_context("fork"))
        else:
            self.pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="govgis-import")
        return self.pool

    def __exit__(self, *exc_info: object) -> None:
        global _JOB
        self.pool.shutdown(wait=True, cancel_futures=True)
        _JOB = None


def _slices(path: Path, driver: str, layer_name: str | None) -> list[tuple[int, int | None]]:
    """(skip, max) slices to stream a big GeoPackage or Shapefile in; one slice for anything else."""
    import pyogrio

    if driver not in ("GPKG", "ESRI Shapefile"):
        return [(0, None)]
    try:
        count = int(pyogrio.read_info(path, layer=layer_name)["features"])
    except Exception:  # unreadable here: let the full read report it properly
        return [(0, None)]
    if count <= STREAM_CHUNK_ROWS:
        return [(0, None)]
    return [(skip, min(STREAM_CHUNK_ROWS, count - skip)) for skip in range(0, count, STREAM_CHUNK_ROWS)]


def _layer_in_file(path: Path, driver: str, layer: Layer, layer_name: str | None) -> str | None:
    import pyogrio

    if layer_name is not None or driver != "GPKG":
        return layer_name
    names = [name for name, _ in pyogrio.list_layers(path)]
    if len(names) <= 1:
        return names[0] if names else None
    preferred = [n for n in names if n in (layer.id, layer.table.name)]
    if not preferred:
        raise InvalidParameter(f"{path.name} has {len(names)} layers ({', '.join(names)}): choose one with "
                               "--layer-name")
    return preferred[0]


def import_file(conn: Connection, layer: Layer, path: Path | str, caller: Caller, *, crs: str | None = None,
                encoding: str | None = None, layer_name: str | None = None,
                rename: dict[str, str] | None = None, defaults: dict[str, Any] | None = None,
                progress: bool = False) -> ImportReport:
    """Import a whole file into ``layer`` inside the caller's transaction (all or nothing, audited).

    Big GeoPackages and Shapefiles stream in slices: worker processes read and validate the next
    slices while this one is COPY'd, so the client's work overlaps the server's. A bad row anywhere
    rejects the whole file: ImportRejected lists row numbers and reasons, and nothing is written.
    """
    from tqdm import tqdm

    from gis.writes import audit

    started = time.perf_counter()
    require_write(caller, layer)
    if layer.geometry_type is None:
        raise InvalidParameter(f"layer {layer.id!r} has no geometry: import it with SQL tools, not a GIS file")
    settings = get_settings()
    path = Path(path)
    if not path.exists():
        raise InvalidParameter(f"file {path} does not exist")
    driver = _format_of(path)
    layer_name = _layer_in_file(path, driver, layer, layer_name)
    slices = _slices(path, driver, layer_name)
    limit = settings.service.max_upload_features
    if (len(slices) - 1) * STREAM_CHUNK_ROWS > limit:
        raise PayloadTooLarge(f"{path.name} has more than {limit} features (GOVGIS_MAX_UPLOAD_FEATURES): split "
                              "the file or raise the limit")
    stages = {"read+validate": 0.0, "copy": 0.0}
    job = _PrepareJob(path, driver, layer, layer_name, encoding, crs, rename, defaults, settings.storage_srid)
    bar = tqdm(total=sum(n for _, n in slices) if slices[0][1] else None, desc=f"import {layer.id}",
               unit="row", unit_scale=True, disable=not progress)
    errors: list[tuple[int | None, str]] = []
    total = 0
    staging: _Staging | _DirectLoad | None = None
    first: _Chunk | None = None
    with _Preparer(job, len(slices)) as pool:
        window = [pool.submit(_prepare_slice, *piece) for piece in slices[:PREFETCH_CHUNKS]]
        for index in range(len(slices)):
            chunk = window.pop(0).result()
            if index + PREFETCH_CHUNKS < len(slices):
                window.append(pool.submit(_prepare_slice, *slices[index + PREFETCH_CHUNKS]))
            stages["read+validate"] += chunk.seconds
            first = first or chunk
            total += chunk.rows
            if total > limit:
                raise PayloadTooLarge(f"{path.name} has more than {limit} features (GOVGIS_MAX_UPLOAD_FEATURES): "
                                      "split the file or raise the limit")
            # file-level problems (columns) are the same in every slice: report them once
            errors.extend(e for e in chunk.errors if e[0] is not None or index == 0)
            if errors or chunk.copy_data is None:
                bar.update(chunk.rows)
                continue
            clock = time.perf_counter()
            if staging is None:
                rebuild = _bulk_indexes(conn, layer.table.name, len(slices) * STREAM_CHUNK_ROWS) \
                    if len(slices) >= 3 else []
                staging = _DirectLoad(conn, layer, chunk.columns, rebuild) if rebuild else \
                    _Staging(conn, layer, chunk.columns)
            staging.copy(chunk.copy_data, chunk.rows)
            stages["copy"] += time.perf_counter() - clock
            bar.update(chunk.rows)
    bar.close()
    if total == 0:
        raise InvalidParameter(f"{path.name} has no features")
    if errors:
        if staging is not None:
            staging.drop()
        _reject(layer, errors, total)
    assert staging is not None and first is not None
    inserted = staging.insert(stages)
    report = ImportReport(layer=layer.id, file=path.name, format=driver, rows=inserted,
                          source_crs=_crs_label(first.source_crs), encoding=first.encoding,
                          ignored_columns=first.ignored, seconds=time.perf_counter() - started, stages=stages)
    audit(conn, caller, layer.id, None, "import", None, None, report.as_dict())
    return report
