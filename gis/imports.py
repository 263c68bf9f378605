"""Bulk import of files into any registered layer: read, validate every row, COPY, all or nothing.

``import_file`` reads GeoPackage, Shapefile (with encoding detection for Chinese DBFs), GeoJSON, CSV
with coordinates or WKT, and DXF; reprojects to the storage CRS; validates every row (geometry,
type, city bounds, required and unknown fields); and loads with COPY into a temporary table followed
by one INSERT … SELECT, so the table's constraints and triggers apply. One audit record summarises
the import. Any bad row rejects the whole file with row numbers and reasons.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable

import numpy as np
import pandas as pd
import shapely
from sqlalchemy.engine import Connection

COPY_CHUNK_ROWS = 50_000


def _csv_values(frame: pd.DataFrame, srid: int | None) -> pd.DataFrame:
    """Values as COPY (CSV) text: geometries as hex EWKB, None/NaN as the NULL marker."""
    out = {}
    for name in frame.columns:
        column = frame[name]
        sample = column.dropna()
        if str(column.dtype) == "geometry" or (len(sample) and isinstance(sample.iloc[0], shapely.Geometry)):
            geoms = np.asarray(column.to_numpy(), dtype=object)
            if srid is not None:
                geoms = shapely.set_srid(geoms, srid)
            out[name] = shapely.to_wkb(geoms, hex=True, include_srid=True)
        else:
            out[name] = column
    return pd.DataFrame(out, index=frame.index)


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
            from gis.settings import get_settings

            srid = get_settings().storage_srid
    columns = list(frame.columns)
    quoted = ", ".join(f'"{c}"' for c in columns)
    raw = conn.connection.driver_connection
    total = 0
    with raw.cursor() as cursor:
        for start in range(0, max(len(frame), 1), COPY_CHUNK_ROWS):
            chunk = frame.iloc[start:start + COPY_CHUNK_ROWS]
            if chunk.empty:
                break
            buffer = io.StringIO()
            _csv_values(chunk, srid).to_csv(buffer, header=False, index=False, na_rep="\\N",
                                             quoting=csv.QUOTE_MINIMAL)
            buffer.seek(0)
            cursor.copy_expert(
                f"COPY {table} ({quoted}) FROM STDIN WITH (FORMAT csv, NULL '\\N')", buffer
            )
            total += len(chunk)
            if progress is not None:
                progress.update(len(chunk))  # type: ignore[attr-defined]
    return total


def _names(values: Iterable[str]) -> list[str]:
    return list(values)
