"""Longitudinal profile against a small GeoTIFF with known values."""

from __future__ import annotations

import copy

import numpy as np
import pytest
import rasterio
from rasterio.transform import from_origin
from shapely.geometry import LineString, Point
from test_pipeline_isolation_api import pipeline_cleanup  # noqa: F401  (drops this module's networks)

from gis.access import SYSTEM
from gis.crs import transformer
from gis.settings import Settings, get_settings
from layers.pipeline import profile, repository, service

X0, Y0 = transformer("EPSG:4326", get_settings().spatial.storage_crs).transform(118.46, 24.77)


def with_dem(path) -> Settings:
    """The settings with GOVGIS_DEM_PATH pointing at this module's DEM."""
    settings = copy.copy(get_settings())
    settings.paths = settings.paths.model_copy(update={"dem_path": path})
    return settings


@pytest.fixture(scope="module")
def dem(tmp_path_factory):
    """10 m cells, ground 10.0 m except a 30 m wide dip to 9.5 m for x ∈ [X0+25, X0+55)."""
    path = tmp_path_factory.mktemp("dem") / "dem.tif"
    grid = np.full((6, 14), 10.0, dtype=np.float32)
    grid[:, 3:6] = 9.5  # columns whose cells span x0-5+30 .. x0-5+60
    with rasterio.open(path, "w", driver="GTiff", width=14, height=6, count=1, dtype="float32",
                       crs=get_settings().spatial.storage_crs, transform=from_origin(X0 - 5, Y0 + 30, 10, 10),
                       nodata=-9999) as dst:
        dst.write(grid, 1)
    return path


@pytest.fixture(scope="module")
def run(engine):
    """Two pipes A–B (60 m) and B–C (40 m) along y = Y0+10, 1.0 m deep; B–C drawn backwards."""
    with engine.begin() as conn:
        nid = repository.create_network(conn, utility="water", name="profile")
        pts = {"A": (X0, Y0 + 10), "B": (X0 + 60, Y0 + 10), "C": (X0 + 100, Y0 + 10)}
        ids = repository.insert_nodes(conn, nid, [{"code": c, "kind": "junction", "geom": Point(p)}
                                                  for c, p in pts.items()])
        pipes = repository.insert_pipes(conn, nid, [
            {"code": "AB", "from": "A", "to": "B", "geom": LineString([pts["A"], pts["B"]]), "burial_depth_m": 1.0},
            {"code": "CB", "from": "C", "to": "B", "geom": LineString([pts["C"], pts["B"]]), "burial_depth_m": 1.0},
        ], ids)
    return [pipes["AB"], pipes["CB"]]


def test_profile_samples_equal_dem_and_flag_thin_cover(engine, dem, run):
    with engine.connect() as conn:
        result = service.pipe_profile(conn, run, caller=SYSTEM, settings=with_dem(dem), step_m=4.0)
    s = result["samples"]
    d = np.array([x["distance_m"] for x in s])
    assert d[0] == 0 and d[-1] == pytest.approx(100.0) and np.all(np.diff(d) > 0)
    in_dip = (d > 25) & (d < 55)
    ground = np.array([x["ground_m"] for x in s])
    assert np.allclose(ground[in_dip], 9.5) and np.allclose(ground[~in_dip], 10.0)
    # pipe ends sit on 10.0 m ground, 1.0 m deep → pipe top 9.0 everywhere; cover 0.5 in the dip
    assert np.allclose([x["pipe_top_m"] for x in s], 9.0)
    flagged = np.array([x["below_min_cover"] for x in s])
    assert np.array_equal(flagged, in_dip) and result["min_cover_m"] == 0.7
    assert result["worst_cover_m"] == pytest.approx(0.5) and result["below_min_cover"] == int(in_dip.sum())
    png = profile.profile_png(result)
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 5000


def test_profile_refuses_a_broken_run(engine, dem, run):
    from gis.errors import InvalidParameter, NotFound

    with engine.connect() as conn:
        with pytest.raises(NotFound):
            service.pipe_profile(conn, [run[0], 10**9], caller=SYSTEM, settings=with_dem(dem))
        with pytest.raises(InvalidParameter):
            service.pipe_profile(conn, run, caller=SYSTEM, settings=with_dem(dem), step_m=0.01)
