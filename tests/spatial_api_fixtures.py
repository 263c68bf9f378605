"""Shared fixtures for the spatial-API tests (a pytest plugin: test_ogc_*, test_tiles_*, test_keys_* and
test_query_* name it in ``pytest_plugins``): a small, known data set inserted into the session's throw-away database, keys, the
app client, and a live uvicorn server on a free loopback port for GDAL and ogctests.

The rows sit in a made-up county (district 359999) so they never collide with the demo city when
the whole suite shares one database; every count a test checks is taken from SQL, not hard-coded.
"""

from __future__ import annotations

import copy
import socket
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import pytest
import sqlalchemy as sa
from pyproj import Transformer
from sqlalchemy.engine import Engine

from gis.settings import get_settings

DISTRICT = "359999"
ORIGIN_LONLAT = (117.930, 24.300)  # off Xiamen Island, where the demo city is not
CELL = (80.0, 60.0)  # parcel width/height in metres
GRID = (4, 3)


@dataclass(frozen=True)
class SpatialData:
    origin: tuple[float, float]  # storage-CRS easting/northing of the parcel grid's south-west corner
    parcel_ids: list[int]
    incident_ids: list[int]
    retired_parcel_id: int


def _storage_origin() -> tuple[float, float]:
    settings = get_settings()
    t = Transformer.from_crs("EPSG:4326", settings.spatial.storage_crs, always_xy=True)
    return t.transform(*ORIGIN_LONLAT)


def _square(x: float, y: float, w: float, h: float) -> str:
    return f"MULTIPOLYGON((({x} {y},{x + w} {y},{x + w} {y + h},{x} {y + h},{x} {y})))"


@pytest.fixture(scope="session")
def spatial_data(demo_city: Engine) -> SpatialData:
    """12 current parcels (3 land uses, personal holder data), one retired parcel version, 2 control
    lines (internal layer) and 5 incidents (internal, personal reporter phone, reported_at).

    Added after the demo city (which loads only into an empty register), off Xiamen Island."""
    engine = demo_city
    srid = get_settings().storage_srid
    x0, y0 = _storage_origin()
    parcel_ids: list[int] = []
    codes = ["0701", "0501", "0601"]
    with engine.begin() as conn:
        existing = conn.execute(sa.text("SELECT count(*) FROM cadastre_parcels WHERE district = :d"),
                                {"d": DISTRICT}).scalar()
        if existing:
            raise RuntimeError("spatial_data fixture ran twice in one database")
        n = 0
        for i in range(GRID[0]):
            for j in range(GRID[1]):
                n += 1
                code = f"{DISTRICT}901001GB{n:05d}"
                wkt = _square(x0 + i * CELL[0], y0 + j * CELL[1], CELL[0] - 2, CELL[1] - 2)
                parcel_ids.append(conn.execute(sa.text(
                    "INSERT INTO cadastre_parcels (parcel_code, unit_code, right_holder, holder_kind, "
                    "holder_id_number, holder_phone, right_type, landuse_code, address, district, registered_area, "
                    "valid_from, recorded_from, geom) VALUES (:code, :unit, :holder, 'person', :idno, :phone, "
                    "'国有建设用地使用权', :lu, :addr, :d, :area, '2020-01-01T00:00:00Z', '2020-01-02T00:00:00Z', "
                    "ST_GeomFromText(:wkt, :srid)) RETURNING id"),
                    {"code": code, "unit": code + "W00000000", "holder": f"张{'三四五六'[n % 4]}{n}",
                     "idno": f"35020319900101{n:04d}", "phone": f"138{n:08d}", "lu": codes[n % 3],
                     "addr": f"思明区测试路{n}号", "d": DISTRICT, "area": round((CELL[0] - 2) * (CELL[1] - 2), 2),
                     "wkt": wkt, "srid": srid}).scalar_one())
        # an older version of parcel 1: valid 2015–2020 (so datetime=2018 shows it, not the current row)
        retired = conn.execute(sa.text(
            "INSERT INTO cadastre_parcels (parcel_code, unit_code, right_holder, holder_kind, right_type, landuse_code, "
            "district, valid_from, valid_to, recorded_from, geom) VALUES (:code, :unit, '旧权利人', 'organisation', "
            "'国有建设用地使用权', '0101', :d, '2015-01-01T00:00:00Z', '2020-01-01T00:00:00Z', '2015-01-02T00:00:00Z', "
            "ST_GeomFromText(:wkt, :srid)) RETURNING id"),
            {"code": f"{DISTRICT}901001GB00001", "unit": f"{DISTRICT}901001GB00001W00000000", "d": DISTRICT,
             "wkt": _square(x0, y0, CELL[0] - 2, CELL[1] - 2), "srid": srid}).scalar_one()
        for k, kind in enumerate(("ecological_red_line", "permanent_basic_farmland")):
            conn.execute(sa.text(
                "INSERT INTO landuse_control_lines (kind, name, geom) VALUES (:k, :n, ST_GeomFromText(:wkt, :srid))"),
                {"k": kind, "n": f"测试控制线{k}", "wkt": _square(x0 + 400 + k * 300, y0, 200, 200), "srid": srid})
        incident_ids = []
        for k in range(5):
            incident_ids.append(conn.execute(sa.text(
                "INSERT INTO emergency_incidents (code, source_line, incident_type, level, reported_at, "
                "reporter_phone, geom) VALUES (:c, '119', :t, :lvl, :at, :ph, ST_SetSRID(ST_MakePoint(:x, :y), :srid)) "
                "RETURNING id"),
                {"c": f"T{k}", "t": "fire" if k % 2 else "flood", "lvl": 1 + k % 4,
                 "at": f"2024-0{k + 1}-15T08:00:00Z", "ph": f"1390000{k:04d}",
                 "x": x0 + 20 + k * 70, "y": y0 + 20, "srid": srid}).scalar_one())
        conn.execute(sa.text("ANALYZE cadastre_parcels"))
    return SpatialData((x0, y0), parcel_ids, incident_ids, retired)


@dataclass(frozen=True)
class Keys:
    planning: str  # reads cadastre + landuse, writes landuse
    emergency: str  # reads emergency, personal data
    cadastre_writer: str  # writes cadastre


@pytest.fixture(scope="session")
def api_keys(engine: Engine) -> Keys:
    from gis.keys import create_key

    with engine.begin() as conn:
        planning = create_key(conn, department="规划局", read=["cadastre", "landuse"], write=["landuse"]).secret
        emergency = create_key(conn, department="应急办", read=["emergency"], personal_data=True).secret
        writer = create_key(conn, department="不动产登记中心", read=["cadastre"], write=["cadastre"]).secret
    return Keys(planning, emergency, writer)


@pytest.fixture(scope="session")
def api_client(engine: Engine, spatial_data: SpatialData) -> Iterator:
    """A TestClient over the whole app, on the session database with spatial_data loaded."""
    from fastapi.testclient import TestClient

    from api.app import create_app

    with TestClient(create_app(get_settings())) as client:
        yield client


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="session")
def live_server(demo_city: Engine, spatial_data: SpatialData) -> Iterator[str]:
    """uvicorn serving the app on a free 127.0.0.1 port (in a thread) for GDAL and ogctests, with the
    demo city loaded so every public collection has features (ogctests requires that)."""
    from api.app import create_app
    from gis.access import ANONYMOUS, can_read
    from gis.registry import REGISTRY

    with demo_city.begin() as conn:
        # the demo city has no land-use change survey yet; one patch so the layer is not empty
        if not conn.execute(sa.text("SELECT count(*) FROM landuse_change_patches")).scalar():
            x0, y0 = spatial_data.origin
            conn.execute(sa.text(
                "INSERT INTO landuse_change_patches (from_year, to_year, class_system, from_code, to_code, "
                "district, ellipsoidal_area, geom) VALUES (2022, 2023, '三调工作分类', '0101', '0701', "
                ":d, 2400, ST_GeomFromText(:wkt, :srid))"),
                {"d": DISTRICT, "wkt": _square(x0 + 2000, y0, 60, 40), "srid": get_settings().storage_srid})
        empty = [layer.id for layer in REGISTRY.spatial() if can_read(ANONYMOUS, layer) and not conn.execute(
            sa.select(sa.func.count()).select_from(layer.table)).scalar()]
    assert not empty, f"public layers without features (ogctests needs some): {empty}"

    def app_at(port: int):  # noqa: ANN202 — the app
        settings = copy.copy(get_settings())  # links name the address clients reach this server at
        settings.service = settings.service.model_copy(update={"public_base_url": f"http://127.0.0.1:{port}"})
        return create_app(settings)

    with serve_in_thread(app_at) as base:
        yield base


@contextmanager
def serve_in_thread(app_at: Callable[[int], Any], wait_seconds: float = 30) -> Iterator[str]:
    """uvicorn in a thread of this process on a free loopback port, serving ``app_at(port)``; yields its
    base URL once started and stops it after (the way every in-process live server of the suite starts)."""
    import uvicorn

    port = _free_port()
    server = uvicorn.Server(uvicorn.Config(app_at(port), host="127.0.0.1", port=port, log_level="warning",
                                           lifespan="on"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + wait_seconds
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("uvicorn did not start")
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=wait_seconds)
