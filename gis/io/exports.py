"""Export any registered layer to a GIS file (GeoPackage, Shapefile, GeoJSON, CSV with WKT, DXF).

The rows come from one PostGIS query over the registry's declaration: the current features only
(for history layers), optionally inside a bounding box, reprojected in the database to the chosen
CRS, with personal fields masked by the database's ``govgis_mask`` unless the caller may see them and
asked for them. Files are written with pyogrio (GDAL). DXF carries the geometry and the DXF layer
name only: CAD has no attribute table (see README, "Loading your own data").
"""

from __future__ import annotations

import time
import warnings
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
import sqlalchemy as sa
from geoalchemy2 import Geometry
from sqlalchemy.engine import Connection

from gis.access import Caller, field_expression, require_read, row_clause
from gis.crs import parse_crs, srid_of
from gis.errors import InvalidParameter
from gis.io.readers import BY_SUFFIX, CSV, DXF, GEOJSON, GPKG, SHAPEFILE, Format
from gis.registry import Layer
from gis.settings import Settings

WRITABLE = (GPKG, SHAPEFILE, GEOJSON, CSV, DXF)  # the formats an export writes (all read back by import)


@dataclass
class ExportReport:
    """What an export wrote (printed by the CLI; an unmasked export is also audited)."""

    layer: str
    file: str
    format: str
    rows: int
    crs: str
    personal_data: bool
    seconds: float

    def as_dict(self) -> dict[str, Any]:
        return {"layer": self.layer, "file": self.file, "format": self.format, "rows": self.rows, "crs": self.crs,
                "personal_data": self.personal_data, "seconds": round(self.seconds, 3)}


def parse_bbox(value: str) -> tuple[float, float, float, float]:
    """``minx,miny,maxx,maxy`` → four floats, or InvalidParameter saying what a bbox looks like."""
    try:
        parts = tuple(float(p) for p in value.replace(" ", "").split(","))
    except ValueError:
        parts = ()
    if len(parts) != 4 or not (parts[0] < parts[2] and parts[1] < parts[3]):
        raise InvalidParameter(f"bbox {value!r} is not minx,miny,maxx,maxy with min < max, e.g. "
                               "118.08,24.46,118.12,24.50 (lon/lat)")
    return parts  # type: ignore[return-value]


def export_query(layer: Layer, caller: Caller, *, storage_srid: int, out_srid: int,
                 bbox: tuple[float, float, float, float] | None, bbox_srid: int, masked: bool) -> sa.Select:
    """The SELECT an export runs: the rows the caller may read, every attribute it may see (personal
    fields masked by the access policy, conditional ones on the rows they apply to, unless ``masked``
    is False) and the geometry as WKB."""
    storage = storage_srid
    table = layer.table
    viewer = replace(caller, personal_data=False) if masked else caller  # masked even for a key that may see
    columns: list[sa.ColumnElement[Any]] = []
    for column in table.columns:
        if isinstance(column.type, Geometry) or column.name in layer.hidden:
            continue
        expr: sa.ColumnElement[Any] = column
        type_name = type(column.type).__name__
        if layer.is_personal(column.name):
            expr = field_expression(layer, column.name, viewer)
        elif type_name in ("JSONB", "JSON", "ARRAY"):
            expr = sa.cast(column, sa.Text)
        elif type_name == "Numeric":
            expr = sa.cast(column, sa.Float)
        columns.append(expr.label(column.name))
    geom = table.c[layer.geometry_column]
    out_geom = geom if out_srid == storage else sa.func.ST_Transform(geom, out_srid)
    columns.append(sa.func.ST_AsBinary(out_geom).label("__wkb"))
    query = sa.select(*columns).where(layer.current_clause(), row_clause(layer, caller))
    if bbox is not None:
        envelope = sa.func.ST_MakeEnvelope(*bbox, bbox_srid)
        if bbox_srid != storage:
            envelope = sa.func.ST_Transform(envelope, storage)
        query = query.where(sa.func.ST_Intersects(geom, envelope))
    return query.order_by(table.c[layer.key])


def export_layer(conn: Connection, layer: Layer, path: Path | str, caller: Caller, *, settings: Settings,
                 crs: str | None = None,
                 bbox: tuple[float, float, float, float] | None = None, bbox_crs: str = "OGC:CRS84",
                 with_personal_data: bool = False, encoding: str | None = None,
                 progress: bool = False) -> ExportReport:
    """Write the layer's current features to ``path`` (format from the extension).

    Personal fields stay masked unless ``with_personal_data`` and the caller has the personal-data
    scope; an unmasked export is itself recorded in the audit log.
    """
    import pyogrio
    from tqdm import tqdm

    started = time.perf_counter()
    require_read(caller, layer)
    if layer.geometry_type is None:
        raise InvalidParameter(f"layer {layer.id!r} has no geometry to export")
    path = Path(path)
    fmt = BY_SUFFIX.get(path.suffix.lower())
    if fmt not in WRITABLE or path.suffix.lower() == ".zip":
        raise InvalidParameter(f"unsupported file type {path.suffix!r}: use .gpkg, .shp, .geojson, .csv or .dxf")
    driver = _driver(fmt)
    if crs is None:
        crs = "EPSG:4326" if driver == "GeoJSON" else settings.spatial.storage_crs
    storage_crs, storage_srid = settings.spatial.storage_crs, settings.storage_srid
    out_srid = srid_of(crs, storage_crs, storage_srid)
    bbox_srid = srid_of(bbox_crs, storage_crs, storage_srid)
    masked = not (with_personal_data and caller.personal_data)
    if with_personal_data and not caller.personal_data:
        raise InvalidParameter("--with-personal-data needs a caller with the personal-data scope (the system "
                               "user); export without it to get masked personal fields")
    query = export_query(layer, caller, storage_srid=storage_srid, out_srid=out_srid, bbox=bbox, bbox_srid=bbox_srid, masked=masked)
    bar = tqdm(desc=f"export {layer.id}", unit="row", unit_scale=True, disable=not progress)
    parts: list[pd.DataFrame] = []
    result = conn.execute(query.execution_options(stream_results=True, yield_per=20_000))
    for partition in result.partitions():
        frame = pd.DataFrame(partition, columns=list(result.keys()))
        parts.append(frame)
        bar.update(len(frame))
    bar.close()
    frame = pd.concat(parts, ignore_index=True) if parts else pd.DataFrame(columns=list(result.keys()))
    wkb = frame.pop("__wkb").to_numpy()
    geoms = shapely.from_wkb(np.array([bytes(b) if b is not None else None for b in wkb], dtype=object))
    out_crs = parse_crs(crs) if out_srid == storage_srid else parse_crs(f"EPSG:{out_srid}")
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.exists():
        pyogrio_remove(path)
    if driver == "CSV":
        frame = frame.copy()
        frame["wkt"] = shapely.to_wkt(geoms, rounding_precision=-1)
        frame.to_csv(path, index=False, encoding=encoding or "utf-8")
    else:
        gdf = gpd.GeoDataFrame(_for_driver(frame, driver), geometry=geoms, crs=out_crs)
        options: dict[str, Any] = {}
        if driver == "DXF":
            gdf = gpd.GeoDataFrame({"Layer": [layer.id] * len(gdf)}, geometry=gdf.geometry, crs=out_crs)
        if driver == "ESRI Shapefile" and encoding:
            options["encoding"] = encoding
        with warnings.catch_warnings():
            # Shapefile field names are cut to 10 characters: expected, and undone on re-import
            warnings.simplefilter("ignore", RuntimeWarning)
            pyogrio.write_dataframe(gdf, path, driver=driver, layer=layer.id if driver == "GPKG" else None,
                                    **options)
    report = ExportReport(layer=layer.id, file=path.name, format=driver, rows=len(frame), crs=f"EPSG:{out_srid}",
                          personal_data=not masked, seconds=time.perf_counter() - started)
    if not masked and (layer.personal or layer.personal_when):
        from gis.writes import audit

        audit(conn, caller, layer.id, None, "other", None, None, {"export_with_personal_data": report.as_dict()})
    return report


def _driver(fmt: Format) -> str:
    """The GDAL driver (or "CSV", written by pandas) an export writes ``fmt`` with."""
    return fmt.driver or fmt.label


def _for_driver(frame: pd.DataFrame, driver: str) -> pd.DataFrame:
    """Attribute values every driver can store: Shapefiles have no date-time or long text types."""
    out = frame.copy()
    for name in out.columns:
        column = out[name]
        if pd.api.types.is_datetime64_any_dtype(column):
            if driver == "ESRI Shapefile":
                out[name] = column.dt.strftime("%Y-%m-%dT%H:%M:%S%z").where(column.notna(), None)
        elif column.dtype == object:
            sample = column.dropna()
            if len(sample) and hasattr(sample.iloc[0], "isoformat"):
                out[name] = column.map(lambda v: v.isoformat() if v is not None and not pd.isna(v) else None)
    return out


def pyogrio_remove(path: Path) -> None:
    """Remove an existing output file (and a Shapefile's sidecars) so a re-export starts clean."""
    if path.suffix.lower() == ".shp":
        for sidecar in path.parent.glob(path.stem + ".*"):
            if sidecar.suffix.lower() in (".shp", ".shx", ".dbf", ".prj", ".cpg", ".qix"):
                sidecar.unlink()
    else:
        path.unlink()
