"""Raster basemap tiles from local GeoTIFFs (gis.raster and /map/basemap), checked against GDAL's
own command-line tools: gdalwarp for the image tiles, gdalwarp + gdaldem hillshade for the terrain."""

from __future__ import annotations

import math
import subprocess
from pathlib import Path

import numpy as np
import pyproj
import pytest
import rasterio
from rasterio.io import MemoryFile
from rasterio.transform import from_origin

from gis import raster
from gis.errors import InvalidParameter

CENTRE = (118.12, 24.48)


def make_dem(path: Path, size: int = 400, res: float = 10.0) -> Path:
    """A 4 km × 4 km terrain model in EPSG:4548 with a 300 m Gaussian hill at CENTRE."""
    cx, cy = pyproj.Transformer.from_crs("EPSG:4326", "EPSG:4548", always_xy=True).transform(*CENTRE)
    xs = cx - size / 2 * res + (np.arange(size) + 0.5) * res
    ys = cy + size / 2 * res - (np.arange(size) + 0.5) * res
    xx, yy = np.meshgrid(xs, ys)
    dem = (300 * np.exp(-(((xx - cx) ** 2 + (yy - cy) ** 2) / (2 * 800 ** 2)))).astype("float32")
    with rasterio.open(path, "w", driver="GTiff", width=size, height=size, count=1, dtype="float32",
                       crs="EPSG:4548", transform=from_origin(cx - size / 2 * res, cy + size / 2 * res, res, res),
                       nodata=-9999) as dst:
        dst.write(dem, 1)
    return path


def make_ortho(path: Path, size: int = 300, res: float = 5.0) -> Path:
    """An RGB image in EPSG:4548: a colour ramp, so every pixel says where it came from."""
    cx, cy = pyproj.Transformer.from_crs("EPSG:4326", "EPSG:4548", always_xy=True).transform(*CENTRE)
    ramp = np.arange(size, dtype="uint8")
    rgb = np.stack([np.tile(ramp, (size, 1)), np.tile(ramp[:, None], (1, size)), np.full((size, size), 90, "uint8")])
    with rasterio.open(path, "w", driver="GTiff", width=size, height=size, count=3, dtype="uint8", crs="EPSG:4548",
                       transform=from_origin(cx - size / 2 * res, cy + size / 2 * res, res, res)) as dst:
        dst.write(rgb)
    return path


def tile_of(lon: float, lat: float, z: int) -> tuple[int, int]:
    n = 2 ** z
    phi = math.radians(lat)
    return int((lon + 180) / 360 * n), int((1 - math.log(math.tan(phi) + 1 / math.cos(phi)) / math.pi) / 2 * n)


def _png(data: bytes) -> np.ndarray:
    with MemoryFile(data) as mem, mem.open() as src:
        return src.read()


def _gdalwarp(src: Path, out: Path, bounds, size: int, resampling: str) -> np.ndarray:
    subprocess.run(["gdalwarp", "-q", "-overwrite", "-t_srs", "EPSG:3857", "-te", *map(str, bounds),
                    "-ts", str(size), str(size), "-r", resampling, str(src), str(out)], check=True)
    with rasterio.open(out) as ds:
        return ds.read()


def test_image_tile_equals_gdalwarp(tmp_path):
    ortho = make_ortho(tmp_path / "ortho.tif")
    basemap = next(b for b in raster.find_basemaps(tmp_path) if b.name == "ortho")
    assert basemap.kind == "image"
    z = 16
    x, y = tile_of(*CENTRE, z)
    mine = _png(raster.render_tile(basemap, z, x, y))
    assert mine.shape == (4, 256, 256)
    oracle = _gdalwarp(ortho, tmp_path / "o.tif", raster.tile_bounds(z, x, y), 256, "near")
    valid = mine[3] == 255
    assert valid.sum() > 1000
    assert np.array_equal(mine[:3][:, valid], oracle[:3][:, valid])


def test_hillshade_tile_equals_gdaldem_on_the_warped_terrain(tmp_path):
    dem = make_dem(tmp_path / "terrain.tif")
    basemap = raster.find_basemaps(tmp_path)[0]
    assert basemap.kind == "hillshade"
    z = 15
    x, y = tile_of(*CENTRE, z)
    bounds = raster.tile_bounds(z, x, y)
    mine = _png(raster.render_tile(basemap, z, x, y))
    pixel = (bounds[2] - bounds[0]) / 256
    _gdalwarp(dem, tmp_path / "w.tif", (bounds[0] - pixel, bounds[1] - pixel, bounds[2] + pixel, bounds[3] + pixel),
              258, "bilinear")
    lat = math.degrees(math.atan(math.sinh(((bounds[1] + bounds[3]) / 2) / 6378137.0)))
    # gdaldem's scale: Web Mercator metres per ground metre is 1/cos(lat)
    subprocess.run(["gdaldem", "hillshade", "-q", "-s", str(math.cos(math.radians(lat))),
                    str(tmp_path / "w.tif"), str(tmp_path / "hs.tif")], check=True)
    with rasterio.open(tmp_path / "hs.tif") as ds:
        oracle = ds.read(1)[1:-1, 1:-1].astype(int)
    inner = (mine[0].astype(int) - oracle)[2:-2, 2:-2]
    assert np.abs(inner).max() <= 1  # rounding only
    assert mine[0].max() - mine[0].min() > 40  # the hill really is shaded


def test_tiles_outside_the_raster_and_bad_tiles(tmp_path):
    make_dem(tmp_path / "terrain.tif")
    basemap = raster.find_basemaps(tmp_path)[0]
    assert raster.render_tile(basemap, 16, *tile_of(118.4, 24.7, 16)) is None
    with pytest.raises(InvalidParameter):
        raster.tile_bounds(3, 8, 0)
    assert raster.find_basemaps(tmp_path / "missing") == [] and raster.find_basemaps("") == []


def test_basemap_routes_list_and_serve_tiles(tmp_path, monkeypatch, demo_city):
    from fastapi.testclient import TestClient

    from api.app import create_app
    from gis.settings import Settings

    make_dem(tmp_path / "terrain.tif")
    monkeypatch.setenv("GOVGIS_RASTER_BASEMAP_DIR", str(tmp_path))
    with TestClient(create_app(Settings())) as client:
        listed = client.get("/map/layers.json").json()["basemaps"]
        assert [(b["id"], b["kind"]) for b in listed] == [("terrain", "hillshade")]
        z = 15
        x, y = tile_of(*CENTRE, z)
        tile = client.get(f"/map/basemap/terrain/{z}/{x}/{y}.png")
        assert tile.status_code == 200 and tile.headers["content-type"] == "image/png"
        assert np.array_equal(_png(tile.content), _png(raster.render_tile(raster.find_basemaps(tmp_path)[0], z, x, y)))
        assert client.get(f"/map/basemap/terrain/16/{tile_of(118.4, 24.7, 16)[0]}/{tile_of(118.4, 24.7, 16)[1]}.png").status_code == 204
        missing = client.get("/map/basemap/nope/1/0/0.png")
        assert missing.status_code == 404 and "terrain" in missing.json()["detail"]
        assert client.get("/map/basemap/terrain/2/9/0.png").status_code == 400
