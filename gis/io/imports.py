"""Bulk import of a file into any registered layer: read, validate every row, COPY — all or nothing.

``import_file`` reads any format of ``gis.io.readers`` (GeoPackage, Shapefile plain or zipped,
GeoJSON, CSV with coordinates or WKT, DXF, the CGCS2000 coordinate TXT), validates every row
(``gis.io.validate``) and COPYs the rows into the layer's table (``gis.io.copy``), in the caller's
transaction, with one audit record. Any bad row rejects the whole file, with row numbers and reasons.

Big GeoPackages and Shapefiles stream in slices: worker processes read and validate the next slices
while this process COPYs the current one, so the client's work overlaps the server's. The workers
never hold a database connection (the sockets they inherit are closed when they start) and die with
this process (``PR_SET_PDEATHSIG``), so a killed import ends its transaction: no lock, no orphan
process, no rows. The layer's indexes are kept, so readers are never blocked by a load.

Generic over the registry: it takes a ``Layer`` and never imports ``layers/``.
"""

from __future__ import annotations

import os
import signal
import stat
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy.engine import Connection

from gis.access import Caller, require_generic_write
from gis.crs import parse_crs
from gis.errors import InvalidParameter, PayloadTooLarge, UnknownCRS
from gis.io import copy as bulk
from gis.io.readers import (
    CSV,
    DXF,
    GPKG,
    TXT,
    TXT_PLOT_FIELDS,
    Features,
    Format,
    feature_count,
    gpkg_layer,
    opened,
    read_features,
)
from gis.io.uploads import UploadLimits
from gis.io.validate import Problem, check_rows, crs_label, reject
from gis.registry import Layer
from gis.settings import Settings

STREAM_CHUNK_ROWS = 100_000  # rows read, validated and COPY'd at a time from big files
IMPORT_WORKERS = 2  # processes preparing slices of a big file
PREFETCH_CHUNKS = 3  # slices prepared ahead of the COPY
WORKER_NICENESS = 10  # workers yield the CPU to the database backend they feed
ANALYZE_MIN_ROWS = 100_000  # rows from which an import refreshes the table's planner statistics
READER_COLUMNS = {DXF: ("Layer",), TXT: TXT_PLOT_FIELDS}  # what a reader adds, kept only if mapped


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
    notes: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {"layer": self.layer, "file": self.file, "format": self.format, "rows": self.rows,
                "source_crs": self.source_crs, "encoding": self.encoding,
                "ignored_columns": self.ignored_columns, "seconds": round(self.seconds, 3),
                "stages": {k: round(v, 3) for k, v in self.stages.items()}, "notes": self.notes}


def source_crs(features: Features, declared: str | None, default: str | None, name: str) -> str:
    """The CRS an import reads the file in: ``--crs`` (which overrides the file's own), else the file's,
    else the format's default (the storage CRS for CAD drawings and x/y columns)."""
    chosen = declared or features.file_crs or default
    if chosen is None:
        raise InvalidParameter(f"{name} does not say its coordinate system: pass --crs (e.g. EPSG:4548)")
    return chosen


# --- slices, prepared in worker processes -----------------------------------------------------------

@dataclass
class _Chunk:
    """One slice of a file, read and validated, ready to COPY (picklable: it may come from a worker)."""

    rows: int
    columns: list[str]
    ignored: list[str]
    errors: list[Problem]
    copy_data: str | None
    source_crs: str
    encoding: str | None
    notes: list[str]
    seconds: float


@dataclass
class _PrepareJob:
    path: Path
    shown_name: str
    fmt: Format
    layer: Layer
    layer_name: str | None
    encoding: str | None
    crs: str | None
    rename: dict[str, str]
    defaults: dict[str, Any] | None
    settings: Settings


_JOB: _PrepareJob | None = None  # the import whose slices are being prepared (inherited by forked workers)


def _prepare_slice(skip: int, max_rows: int | None) -> _Chunk:
    """Read, validate and encode one slice of the current job's file."""
    job = _JOB
    assert job is not None
    clock = time.perf_counter()
    polygonal = (job.layer.geometry_type or "").endswith("Polygon")
    features = read_features(job.path, job.fmt, layer_name=job.layer_name, encoding=job.encoding, skip=skip,
                             max_rows=max_rows, polygons=polygonal, shown_name=job.shown_name)
    data = features.data
    # what the reader adds of its own (the CAD layer name, a TXT plot's header) is kept only if mapped
    unmapped = [c for c in READER_COLUMNS.get(job.fmt, ()) if c in data.columns and c not in job.rename]
    data = data.drop(columns=unmapped)
    if job.fmt is TXT:  # the header is authoritative: a --crs may only repeat it
        crs = source_crs(features, None, None, job.shown_name)
        if job.crs:
            _same_crs(job.crs, crs, job.shown_name)
    else:
        default = job.settings.spatial.storage_crs if job.fmt in (DXF, CSV) else None  # CAD, x/y and WKT
        crs = source_crs(features, job.crs, default, job.shown_name)
    frame, ignored, errors = check_rows(job.layer, data, crs, settings=job.settings, rename=job.rename,
                                        defaults=job.defaults, first_row=skip + 1)
    copy_data = None if errors else bulk.copy_text(frame, job.settings.storage_srid)
    return _Chunk(len(data), list(frame.columns), ignored, errors, copy_data, crs, features.encoding,
                  features.notes, time.perf_counter() - clock)


def _same_crs(declared: str, found: str, name: str) -> None:
    if parse_crs(declared) != parse_crs(found):
        raise UnknownCRS(f"--crs {declared} contradicts the header of {name} ({found}): drop --crs")


def _worker_started(parent: int) -> None:
    """Initializer of a worker process: die with the importing process, and let go of every socket
    inherited from it (its database connections), so that only the importing process holds them and
    its death ends the transaction at once."""
    _die_with(parent)
    # the database is the bottleneck of a big load: let its backend have the cores first, the workers
    # run ahead of it anyway (PREFETCH_CHUNKS slices)
    os.nice(WORKER_NICENESS)
    devnull = os.open(os.devnull, os.O_RDWR)
    for name in os.listdir("/proc/self/fd") if os.path.isdir("/proc/self/fd") else []:
        fd = int(name)
        try:
            if fd > 2 and fd != devnull and stat.S_ISSOCK(os.fstat(fd).st_mode):
                os.dup2(devnull, fd)  # the number stays taken, so nothing else lands on it
        except OSError:
            continue  # the directory listing's own descriptor, gone by now


def _die_with(parent: int) -> None:
    """Ask the kernel to kill this process when its parent dies (Linux); elsewhere watch the parent."""
    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        pr_set_pdeathsig = 1
        if libc.prctl(pr_set_pdeathsig, signal.SIGKILL, 0, 0, 0) != 0:
            raise OSError(ctypes.get_errno(), "prctl")
    except (OSError, AttributeError):
        def watch() -> None:
            while os.getppid() == parent:
                time.sleep(0.5)
            os._exit(1)

        threading.Thread(target=watch, daemon=True, name="govgis-import-parent-watch").start()
    if os.getppid() != parent:  # the parent died before the signal was armed
        os._exit(1)


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
                                                 mp_context=multiprocessing.get_context("fork"),
                                                 initializer=_worker_started, initargs=(os.getpid(),))
        else:
            self.pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="govgis-import")
        return self.pool

    def __exit__(self, *exc_info: object) -> None:
        global _JOB
        self.pool.shutdown(wait=True, cancel_futures=True)
        _JOB = None


def _slices(path: Path, fmt: Format, layer_name: str | None) -> list[tuple[int, int | None]]:
    """(skip, max) slices to stream a big GeoPackage or Shapefile in; one slice for anything else."""
    count = feature_count(path, fmt, layer_name)
    if count is None or count <= STREAM_CHUNK_ROWS:
        return [(0, None)]
    return [(skip, min(STREAM_CHUNK_ROWS, count - skip)) for skip in range(0, count, STREAM_CHUNK_ROWS)]


def _too_many(name: str, limit: int) -> PayloadTooLarge:
    return PayloadTooLarge(f"{name} has more than {limit} features (GOVGIS_MAX_UPLOAD_FEATURES): split the file "
                           "or raise the limit")


# --- the import -------------------------------------------------------------------------------------

def import_file(conn: Connection, layer: Layer, path: Path | str, caller: Caller, *, settings: Settings,
                crs: str | None = None, encoding: str | None = None, layer_name: str | None = None,
                rename: dict[str, str] | None = None, defaults: dict[str, Any] | None = None,
                limits: UploadLimits | None = None, progress: bool = False) -> ImportReport:
    """Import a whole file into ``layer`` inside the caller's transaction (all or nothing, audited).

    ``limits`` default to those of a local file (no size limit; zips are checked all the same). A bad
    row anywhere rejects the whole file: ImportRejected lists row numbers and reasons, and nothing is
    written. A lock on the layer held longer than the import's lock timeout raises Conflict.
    """
    started = time.perf_counter()
    require_generic_write(caller, layer)  # a module-only layer (cadastral parcels) keeps its rules in its module
    if layer.geometry_type is None:
        raise InvalidParameter(f"layer {layer.id!r} has no geometry: import it with SQL tools, not a GIS file")
    path = Path(path)
    limits = limits or UploadLimits.for_local_files(settings)
    with opened(path, limits) as (readable, fmt):
        if fmt is GPKG:
            layer_name = gpkg_layer(readable, (layer.id, layer.table.name), layer_name)
        job = _PrepareJob(readable, path.name, fmt, layer, layer_name, encoding, crs, rename or {}, defaults,
                          settings)
        guarded = bulk.guard_session(conn, layer, settings.service.import_lock_timeout_seconds)
        report = _import(conn, job, _slices(readable, fmt, layer_name), progress)
        bulk.restore_session(conn, guarded)  # after a failure the caller's transaction ends anyway
    report.seconds = time.perf_counter() - started
    from gis.writes import audit

    audit(conn, caller, layer.id, None, "import", None, None, report.as_dict())
    return report


def _import(conn: Connection, job: _PrepareJob, slices: list[tuple[int, int | None]], progress: bool) -> ImportReport:
    """Prepare the slices (ahead, in the preparer) and COPY them in order; reject on any problem."""
    from tqdm import tqdm

    name, layer = job.shown_name, job.layer
    limit = job.settings.service.max_upload_features
    if (len(slices) - 1) * STREAM_CHUNK_ROWS > limit:
        raise _too_many(name, limit)
    stages = {"read+validate": 0.0, "copy": 0.0}
    bar = tqdm(total=sum(n for _, n in slices) if slices[0][1] else None, desc=f"import {layer.id}",
               unit="row", unit_scale=True, disable=not progress)
    errors: list[Problem] = []
    total = 0
    load: bulk.TableLoad | None = None
    first: _Chunk | None = None
    try:
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
                    raise _too_many(name, limit)
                # file-level problems (columns) are the same in every slice: report them once
                errors.extend(e for e in chunk.errors if e[0] is not None or index == 0)
                if not errors and chunk.copy_data is not None:
                    clock = time.perf_counter()
                    load = load or bulk.TableLoad(conn, layer, chunk.columns)
                    load.copy(chunk.copy_data, chunk.rows)
                    stages["copy"] += time.perf_counter() - clock
                bar.update(chunk.rows)
    except BaseException:
        if load is not None:
            load.abandon()
        raise
    finally:
        bar.close()
    if total == 0:
        raise InvalidParameter(f"{name} has no features")
    if errors:
        if load is not None:
            load.abandon()
        reject(layer, errors, total)
    assert load is not None and first is not None
    inserted = load.finish(analyze=total >= ANALYZE_MIN_ROWS, stages=stages)
    return ImportReport(layer=layer.id, file=name, format=job.fmt.label, rows=inserted,
                        source_crs=crs_label(first.source_crs), encoding=first.encoding,
                        ignored_columns=first.ignored, stages=stages, notes=first.notes)
