"""Bulk loading with COPY: rows as PostgreSQL COPY text, a frame COPY'd into a table, and the load of
an import straight into its layer's table.

``TableLoad`` COPYs into the live table inside a savepoint, so the table's constraints, defaults and
triggers apply to every row and its indexes are kept: readers of the layer are never blocked (a COPY
takes only ROW EXCLUSIVE, and readers keep seeing the old rows until the import commits), and a
rejection rolls the savepoint back, leaving the table as it was. The session gives up waiting for a
lock after ``lock_timeout``, and notices a vanished client within a second
(``client_connection_check_interval``), so a killed import never leaves a transaction behind.
"""

from __future__ import annotations

import io
import re
import time

import numpy as np
import pandas as pd
import shapely
import sqlalchemy as sa
from sqlalchemy.engine import Connection

from gis.errors import Conflict, ImportRejected
from gis.registry import Layer

COPY_CHUNK_ROWS = 50_000  # rows per COPY statement of copy_frame
CONNECTION_CHECK = "1s"  # how soon the server notices that an importing client has gone


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

    Geometry columns become hex EWKB in ``srid`` (default: the frame's CRS EPSG code). Works inside the
    caller's transaction. ``progress`` is a tqdm bar to advance.
    """
    if srid is None:
        crs = getattr(frame, "crs", None)
        srid = crs.to_epsg() if crs is not None else None
        if srid is None and any(_is_geometry_column(frame[name]) for name in frame.columns):
            raise ValueError(f"copy_frame into {table}: the frame has geometries but no CRS; pass srid=")
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


def db_rejection(layer: Layer, exc: Exception, rows_before: int, rows: int) -> ImportRejected:
    """ImportRejected for a row the database refused (a constraint, a trigger), with its row number
    when COPY says which line it was. ``rows_before`` rows of the file preceded this COPY."""
    orig = getattr(exc, "orig", None) or exc  # SQLAlchemy wraps driver errors; a raw COPY does not
    diag = getattr(orig, "diag", None)
    message = getattr(diag, "message_primary", None) or str(orig).splitlines()[0]
    detail = getattr(diag, "message_detail", None)
    constraint = getattr(diag, "constraint_name", None)
    line = re.search(r"COPY \S+, line (\d+)", getattr(diag, "context", None) or "")
    row = rows_before + int(line.group(1)) if line else None
    reason = (f"{message}" + (f" ({constraint})" if constraint else "") + (f": {detail}" if detail else "")).rstrip(".")
    where = f"row {row}: " if row else ""
    return ImportRejected(
        f"import into {layer.id!r} rejected by the database, nothing was written: {where}{reason}. "
        "Correct that row and import again.",
        errors=[{"row": row, "reason": reason}], error_count=1, rows=rows,
    )


def guard_session(conn: Connection, layer: Layer, lock_timeout_seconds: float) -> dict[str, str]:
    """Make the import's transaction unable to wait forever, and take its lock on the layer's table now
    (ROW EXCLUSIVE: readers go on; a schema change or index build in progress makes it wait at most
    ``lock_timeout_seconds``, then fail with Conflict). Returns the settings to put back afterwards."""
    from sqlalchemy.exc import DBAPIError

    names = ["lock_timeout"]
    if conn.connection.driver_connection.server_version >= 140000:
        names.append("client_connection_check_interval")
    before = {name: conn.execute(sa.text("SELECT current_setting(:n)"), {"n": name}).scalar_one() for name in names}
    conn.execute(sa.text("SELECT set_config('lock_timeout', :v, true)"), {"v": f"{int(lock_timeout_seconds * 1000)}ms"})
    if "client_connection_check_interval" in before:
        conn.execute(sa.text("SELECT set_config('client_connection_check_interval', :v, true)"),
                     {"v": CONNECTION_CHECK})
    savepoint = conn.begin_nested()
    try:
        conn.execute(sa.text(f"LOCK TABLE {layer.table.name} IN ROW EXCLUSIVE MODE"))  # name from the registry
    except DBAPIError as exc:
        savepoint.rollback()
        if getattr(getattr(exc, "orig", None), "pgcode", None) == "55P03":  # lock_not_available
            raise Conflict(f"layer {layer.id!r} is locked by another operation (a schema change or an index "
                           f"build) and stayed so for {lock_timeout_seconds:g} s: try the import again later") from None
        raise
    savepoint.commit()
    return before


def restore_session(conn: Connection, before: dict[str, str]) -> None:
    """Put back the settings ``guard_session`` changed (the caller's transaction goes on)."""
    for name, value in before.items():
        conn.execute(sa.text("SELECT set_config(:n, :v, true)"), {"n": name, "v": value})


class TableLoad:
    """An import's rows COPY'd straight into its layer's table, inside a savepoint (see the module)."""

    def __init__(self, conn: Connection, layer: Layer, columns: list[str]) -> None:
        self.conn, self.layer = conn, layer
        self.table = layer.table.name  # from the registry, not from the client
        self.quoted = ", ".join(f'"{layer.table.c[name].name}"' for name in columns)
        self.savepoint = conn.begin_nested()
        self.rows = 0

    def copy(self, copy_data: str, rows: int) -> None:
        """COPY one slice; a refused row rolls the whole load back and raises ImportRejected."""
        import psycopg2

        raw = self.conn.connection.driver_connection
        try:
            with raw.cursor() as cursor:
                cursor.copy_expert(f"COPY {self.table} ({self.quoted}) FROM STDIN", io.StringIO(copy_data),
                                   size=1 << 20)
        except psycopg2.Error as exc:
            self.abandon()
            if exc.pgcode == "55P03":
                raise Conflict(f"import into {self.layer.id!r} waited too long for a lock held by another write "
                               "to the layer; nothing was written: try again later") from None
            raise db_rejection(self.layer, exc, self.rows, self.rows + rows) from None
        self.rows += rows

    def finish(self, *, analyze: bool, stages: dict[str, float]) -> int:
        """Keep the rows (release the savepoint); after a big load, refresh the planner's statistics so
        the layer's queries use its indexes at once. Returns the rows loaded."""
        self.savepoint.commit()
        if analyze:
            clock = time.perf_counter()
            self.conn.execute(sa.text(f"ANALYZE {self.table}"))
            stages["analyze"] = time.perf_counter() - clock
        return self.rows

    def abandon(self) -> None:
        """Undo every slice COPY'd so far."""
        if self.savepoint.is_active:
            self.savepoint.rollback()


def load_rows(conn: Connection, layer: Layer, frame: pd.DataFrame, *, srid: int,
              stages: dict[str, float] | None = None) -> int:
    """COPY validated rows (``gis.io.validate``) into the layer's table. Returns the rows inserted."""
    stages = stages if stages is not None else {}
    clock = time.perf_counter()
    load = TableLoad(conn, layer, list(frame.columns))
    for start in range(0, len(frame), COPY_CHUNK_ROWS):
        chunk = frame.iloc[start:start + COPY_CHUNK_ROWS]
        load.copy(copy_text(chunk, srid), len(chunk))
    stages["copy"] = time.perf_counter() - clock
    return load.finish(analyze=False, stages=stages)
