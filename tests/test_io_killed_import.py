"""Imports that can be killed: ``kill -9`` of ``govgis import`` in the middle of a big load (the path
with worker processes) leaves no lock, no backend, no orphan process and no rows; a reader of the
layer is answered while the load runs; and the import cannot wait forever for a lock.

The import runs in a subprocess on a generated 120,000-feature GeoPackage, streamed in 20,000-row
slices so that it takes the worker-process path. The checks read ``pg_stat_activity``, ``pg_locks``
and the process table (/proc). Waits are bounded; nothing here asserts a duration.
"""

from __future__ import annotations

import copy
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import geopandas as gpd
import numpy as np
import pyogrio
import pytest
import shapely
import sqlalchemy as sa

from gis.access import SYSTEM
from gis.errors import Conflict
from gis.io.imports import import_file
from gis.settings import get_settings
from layers import REGISTRY

FEATURES = 120_000
SLICE = 20_000
LAYER = "emergency_shelters"
IMPORT = f"""
import sys
from gis.io import imports
imports.STREAM_CHUNK_ROWS = {SLICE}
from api.cli import app
app(["import", "{LAYER}", sys.argv[1]])
"""


@pytest.fixture(scope="module")
def big_file(tmp_path_factory) -> Path:
    """120,000 small shelters on a grid inside the city (storage CRS), all valid."""
    path = tmp_path_factory.mktemp("big") / "shelters.gpkg"
    k = np.arange(FEATURES)
    x0, y0 = 600_000 + (k % 400) * 30.0, 2_690_000 + (k // 400) * 30.0
    boxes = shapely.box(x0, y0, x0 + 20, y0 + 20)
    frame = gpd.GeoDataFrame({"code": [f"KILL{i:07d}" for i in k], "name": "测试场所", "grade": "区级",
                              "shelter_class": "紧急", "capacity_persons": 10}, geometry=boxes, crs="EPSG:4548")
    pyogrio.write_dataframe(frame, path, layer=LAYER)
    return path


def _children(pid: int) -> list[int]:
    """Processes whose parent is ``pid`` (from /proc)."""
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                fields = Path(f"/proc/{entry}/stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[1]) == pid:
                found.append(int(entry))
    return found


def _alive(pid: int) -> bool:
    """A process that exists and is not a zombie (a zombie holds no files and no sockets)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def _wait(condition, seconds: float, what: str):  # noqa: ANN001, ANN202 — a small polling helper
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError(f"waited {seconds} s for {what}")


def _import_backend(conn: sa.Connection, importer: subprocess.Popen) -> int | None:
    """The import's backend once it is COPYing (each poll in its own transaction: the statistics
    views are a snapshot per transaction)."""
    assert importer.poll() is None, f"the import ended early: {importer.stderr.read().decode()[-2000:]}"
    pid = conn.execute(sa.text(
        "SELECT pid FROM pg_stat_activity WHERE datname = current_database() AND application_name LIKE 'govgis-cli%' "
        "AND query LIKE :q"), {"q": f"COPY {LAYER} %"}).scalar()
    conn.commit()
    return pid


def _backend_gone(conn: sa.Connection, pid: int) -> bool:
    gone = conn.execute(sa.text("SELECT NOT EXISTS (SELECT 1 FROM pg_stat_activity WHERE pid = :p)"),
                        {"p": pid}).scalar()
    conn.commit()
    return bool(gone)


def test_killed_import_leaves_no_lock_no_orphan_no_rows(demo_city, owner_engine, big_file) -> None:
    # the watcher is the owner role, as `govgis import` is (a role sees only its own sessions' queries);
    # the reader is the service's application role
    workers: list[int] = []
    with owner_engine.connect() as watch, demo_city.connect() as reader:
        # a read that waits for a lock fails instead of waiting for the load
        reader.execute(sa.text("SET lock_timeout = '2s'"))
        reader.execute(sa.text("SET statement_timeout = '10s'"))
        before = reader.execute(sa.text(f"SELECT count(*) FROM {LAYER}")).scalar()
        reader.commit()
        importer = subprocess.Popen([sys.executable, "-c", IMPORT, str(big_file)], stdout=subprocess.DEVNULL,
                                    stderr=subprocess.PIPE)
        try:
            backend = _wait(lambda: _import_backend(watch, importer), 90, "the import to start its COPY")
            workers = _wait(lambda: _children(importer.pid), 10, "the import's worker processes")
            assert importer.poll() is None, "the import finished before it could be killed"
            # while it loads, a reader of the layer is answered, and sees the old rows
            assert reader.execute(sa.text(f"SELECT count(*) FROM {LAYER}")).scalar() == before
            assert reader.execute(sa.text(
                f"SELECT count(*) FROM {LAYER} WHERE geom && ST_MakeEnvelope(600000, 2690000, 612000, 2702000, "
                "4548)")).scalar() >= 0
            reader.commit()
            held = watch.execute(sa.text("SELECT count(*) FROM pg_locks WHERE pid = :p"), {"p": backend}).scalar()
            assert held > 0  # the check below can fail: the import does hold locks now
            importer.send_signal(signal.SIGKILL)
            importer.wait(timeout=10)
        finally:
            if importer.poll() is None:
                importer.kill()
                importer.wait()
            if importer.returncode == 0:  # it finished after all: leave the session's city as it was
                watch.rollback()
                watch.execute(sa.text(f"DELETE FROM {LAYER} WHERE code LIKE 'KILL%'"))
                watch.commit()
        try:
            _wait(lambda: not any(_alive(pid) for pid in workers), 10, f"the workers {workers} to die")
            _wait(lambda: _backend_gone(watch, backend), 15, f"backend {backend} to end")
            locks = watch.execute(sa.text(
                "SELECT count(*) FROM pg_locks l LEFT JOIN pg_class c ON c.oid = l.relation "
                "WHERE l.pid = :p OR (c.relname = :t AND l.pid <> pg_backend_pid())"), {"p": backend, "t": LAYER}).scalar()
            assert locks == 0
            assert watch.execute(sa.text(f"SELECT count(*) FROM {LAYER}")).scalar() == before
            assert watch.execute(sa.text(f"SELECT count(*) FROM {LAYER} WHERE code LIKE 'KILL%'")).scalar() == 0
            watch.commit()
        finally:  # a worker that outlived the import (the failure above) must not hang the session
            for pid in workers:
                if _alive(pid):
                    os.kill(pid, signal.SIGKILL)


def test_import_gives_up_on_a_lock_it_cannot_get(demo_city, owner_engine, tmp_path) -> None:
    """A schema change holding the layer: the import fails with Conflict after its lock timeout."""
    settings = copy.copy(get_settings())
    settings.service = settings.service.model_copy(update={"import_lock_timeout_seconds": 0.5})
    path = tmp_path / "one.gpkg"
    pyogrio.write_dataframe(gpd.GeoDataFrame({"code": ["LOCK1"], "name": "x", "grade": "区级",
                                              "shelter_class": "紧急", "capacity_persons": 1},
                                             geometry=[shapely.box(618000, 2710000, 618020, 2710020)],
                                             crs="EPSG:4548"), path)
    outcome: list[BaseException | object] = []

    def run_import() -> None:
        with demo_city.connect() as conn:
            try:
                outcome.append(import_file(conn, REGISTRY.get(LAYER), path, SYSTEM, settings=settings))
            except BaseException as exc:  # noqa: BLE001 — handed to the test thread
                outcome.append(exc)
            conn.rollback()

    with owner_engine.connect() as holder:  # the schema's owner, as a migration would
        holder.execute(sa.text(f"LOCK TABLE {LAYER} IN ACCESS EXCLUSIVE MODE"))
        worker = threading.Thread(target=run_import, daemon=True)
        worker.start()
        worker.join(timeout=20)
        waited_forever = worker.is_alive()
        holder.rollback()
    worker.join(timeout=20)
    assert not waited_forever, "the import was still waiting for the lock after 20 s"
    assert len(outcome) == 1 and isinstance(outcome[0], Conflict), outcome
    assert "locked by another operation" in outcome[0].detail and outcome[0].status == 409
