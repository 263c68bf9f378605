"""Settings are validated at start-up with messages a person can act on; a city's local grid given
as PROJ text is accepted and registered in spatial_ref_sys so PostGIS can reproject it."""

from __future__ import annotations

import pytest
from pydantic import ValidationError
from pyproj import Transformer
from sqlalchemy import text

from gis.crs import register_custom_crs
from gis.errors import ConfigError
from gis.settings import CUSTOM_SRID_DEFAULT, DatabaseSettings, ServiceSettings, SpatialSettings, get_settings

LOCAL_GRID = ("+proj=tmerc +lat_0=0 +lon_0=118.1 +k=1 +x_0=50000 +y_0=-2650000 +ellps=GRS80 "
              "+towgs84=0,0,0,0,0,0,0 +units=m +no_defs +type=crs")


@pytest.fixture()
def env(monkeypatch):
    """Set GOVGIS_* variables for one test; the cached settings are rebuilt before and after."""
    get_settings.cache_clear()
    yield monkeypatch
    monkeypatch.undo()
    get_settings.cache_clear()


def test_bad_database_url_names_the_variable(env) -> None:
    env.setenv("GOVGIS_DATABASE_URL", "mysql://root@localhost/gis")
    with pytest.raises(ConfigError) as caught:
        get_settings()
    assert "GOVGIS_DATABASE_URL" in caught.value.detail and "PostgreSQL" in caught.value.detail


def test_geographic_storage_crs_refused(env) -> None:
    env.setenv("GOVGIS_STORAGE_CRS", "EPSG:4490")
    with pytest.raises(ConfigError) as caught:
        get_settings()
    assert "geographic" in caught.value.detail and "EPSG:4548" in caught.value.detail


def test_unknown_storage_crs_is_a_config_error(env) -> None:
    env.setenv("GOVGIS_STORAGE_CRS", "EPSG:999999")
    with pytest.raises(ConfigError, match="unknown CRS 'EPSG:999999'"):
        get_settings()


def test_other_settings_checked() -> None:
    with pytest.raises(ValidationError, match="lon/lat box"):
        SpatialSettings(city_bounds=(118.5, 24.2, 117.8, 24.9))
    with pytest.raises(ValidationError, match="four numbers"):
        SpatialSettings(city_bounds="118,24")
    with pytest.raises(ValidationError, match="exceeds max_items"):
        ServiceSettings(default_items=500, max_items=100)
    with pytest.raises(ValidationError, match="unknown CRS 'EPSG:999999'"):
        SpatialSettings(storage_crs="EPSG:999999")
    assert DatabaseSettings(database_url="postgres://u@h/db").database_url == "postgresql://u@h/db"


def test_local_grid_as_proj_text_accepted_and_registered(engine) -> None:
    from gis.db import admin_url, make_engine

    engine = make_engine(admin_url(get_settings()), pool_size=1)  # registering a CRS is the admin's (setup)
    spatial = SpatialSettings(storage_crs=LOCAL_GRID)
    assert spatial.storage_srid == CUSTOM_SRID_DEFAULT
    lon, lat = 118.12, 24.48
    expected = Transformer.from_crs("EPSG:4326", LOCAL_GRID, always_xy=True).transform(lon, lat)
    with engine.connect() as conn:
        transaction = conn.begin()
        register_custom_crs(conn, spatial.storage_srid, spatial.storage_crs)
        row = conn.execute(text("SELECT auth_name, proj4text FROM spatial_ref_sys WHERE srid = :s"),
                           {"s": spatial.storage_srid}).one()
        assert row.auth_name == "GOVGIS" and "+lon_0=118.1" in row.proj4text
        x, y = conn.execute(text("SELECT ST_X(g), ST_Y(g) FROM (SELECT ST_Transform(ST_SetSRID(ST_MakePoint(:x, :y), "
                                 "4326), :s) AS g) t"), {"x": lon, "y": lat, "s": spatial.storage_srid}).one()
        transaction.rollback()
    engine.dispose()
    assert abs(x - expected[0]) < 0.01 and abs(y - expected[1]) < 0.01
    # WKT works as well as PROJ text
    from pyproj import CRS

    wkt = CRS.from_proj4(LOCAL_GRID).to_wkt()
    assert SpatialSettings(storage_crs=wkt, storage_srid=990002).storage_srid == 990002


@pytest.mark.parametrize("source,target,point", [
    ("OGC:CRS84", "EPSG:4548", (118.2, 24.6)),
    ("EPSG:4548", "EPSG:4326", (600000.0, 2720000.0)),
    ("EPSG:3857", "EPSG:4548", (13149614.8, 2807990.6)),
    ("EPSG:4267", "EPSG:4269", (-100.0, 40.0)),  # PROJ still chooses an operation per point here
])
def test_transform_same_as_pyproj_on_every_thread(source, target, point) -> None:
    """gis.crs.transformer gives pyproj's own coordinates and bounds, on the creating thread and others."""
    import threading

    from gis.crs import parse_crs, transformer

    reference = Transformer.from_crs(parse_crs(source), parse_crs(target), always_xy=True)
    ours = transformer(source, target)
    results = [ours.transform(*point)]
    worker = threading.Thread(target=lambda: results.append(ours.transform(*point)))
    worker.start()
    worker.join()
    expected = reference.transform(*point)
    for got in results:
        assert got == pytest.approx(expected, abs=1e-6)
    x, y = point
    d = 0.05 if abs(x) < 400 else 5000.0
    assert ours.transform_bounds(x - d, y - d, x + d, y + d) == pytest.approx(
        reference.transform_bounds(x - d, y - d, x + d, y + d, densify_pts=21), abs=1e-6)
