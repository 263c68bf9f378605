"""Raster basemap tiles from local GeoTIFFs (orthophoto, DEM hillshade), cut with rasterio.

Generic: any GeoTIFF in any CRS rasterio can read. A file with three or more bands is drawn as an
image (bands 1–3 = RGB); a single-band file is a terrain model drawn as a hillshade (GDAL's Horn
algorithm, light from the north-west at 45°, the same figures ``gdaldem hillshade`` gives). Tiles are
Web Mercator XYZ 256-pixel PNGs with transparency outside the data, so the city's vector layers show
through.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np
import rasterio
from rasterio.enums import Resampling
from rasterio.io import MemoryFile
from rasterio.transform import from_bounds
from rasterio.warp import reproject, transform_bounds

from gis.errors import InvalidParameter

TILE = 256
WEB_MERCATOR = "EPSG:3857"
HALF_WORLD = 20037508.342789244
SUFFIXES = (".tif", ".tiff")


@dataclass(frozen=True)
class RasterBasemap:
    """One GeoTIFF offered as a basemap."""

    name: str  # file stem: the id in URLs
    path: Path
    kind: str  # "image" or "hillshade"
    bounds: tuple[float, float, float, float]  # lon/lat


def find_basemaps(folder: str | Path) -> list[RasterBasemap]:
    """The GeoTIFFs of a folder as basemaps (sorted by name); an empty or missing folder gives []."""
    root = Path(folder) if folder else None
    if root is None or not root.is_dir():
        return []
    out = []
    for path in sorted(p for p in root.iterdir() if p.suffix.lower() in SUFFIXES and p.is_file()):
        with rasterio.open(path) as src:
            kind = "image" if src.count >= 3 else "hillshade"
            bounds = transform_bounds(src.crs, "EPSG:4326", *src.bounds)
        out.append(RasterBasemap(path.stem, path, kind, tuple(bounds)))  # type: ignore[arg-type]
    return out


def tile_bounds(z: int, x: int, y: int) -> tuple[float, float, float, float]:
    """Web Mercator bounds (minx, miny, maxx, maxy) of XYZ tile z/x/y."""
    if not (0 <= z <= 24 and 0 <= x < 2 ** z and 0 <= y < 2 ** z):
        raise InvalidParameter(f"no tile {z}/{x}/{y}: need 0 ≤ z ≤ 24 and 0 ≤ x, y < 2^z")
    size = 2 * HALF_WORLD / 2 ** z
    return (-HALF_WORLD + x * size, HALF_WORLD - (y + 1) * size, -HALF_WORLD + (x + 1) * size, HALF_WORLD - y * size)


def render_tile(basemap: RasterBasemap, z: int, x: int, y: int) -> bytes | None:
    """The PNG of one tile, or None when the tile does not touch the raster."""
    mtime = basemap.path.stat().st_mtime_ns
    return _render(str(basemap.path), mtime, basemap.kind, z, x, y)


@lru_cache(maxsize=2048)
def _render(path: str, _mtime: int, kind: str, z: int, x: int, y: int) -> bytes | None:
    bounds = tile_bounds(z, x, y)
    with rasterio.open(path) as src:
        west, south, east, north = transform_bounds(src.crs, WEB_MERCATOR, *src.bounds)
        if east <= bounds[0] or west >= bounds[2] or north <= bounds[1] or south >= bounds[3]:
            return None
        if kind == "image":
            rgba = _image(src, bounds)
        else:
            rgba = _hillshade(src, bounds, z)
    if not rgba[3].any():
        return None
    with MemoryFile() as memfile:
        with memfile.open(driver="PNG", width=TILE, height=TILE, count=4, dtype="uint8") as png:
            png.write(rgba)
        return memfile.read()


def _warp(src: rasterio.DatasetReader, band: int, bounds: tuple[float, float, float, float], size: int,
          margin: int, resampling: Resampling) -> np.ndarray:
    """One band warped to a Web Mercator grid of ``size`` + 2·``margin`` pixels; NaN where no data."""
    pixel = (bounds[2] - bounds[0]) / size
    grid = from_bounds(bounds[0] - margin * pixel, bounds[1] - margin * pixel, bounds[2] + margin * pixel,
                       bounds[3] + margin * pixel, size + 2 * margin, size + 2 * margin)
    out = np.full((size + 2 * margin, size + 2 * margin), np.nan, dtype="float32")
    reproject(rasterio.band(src, band), out, dst_transform=grid, dst_crs=WEB_MERCATOR,
              dst_nodata=np.nan, resampling=resampling)
    return out


def _image(src: rasterio.DatasetReader, bounds: tuple[float, float, float, float]) -> np.ndarray:
    bands = [_warp(src, b, bounds, TILE, 0, Resampling.nearest) for b in (1, 2, 3)]
    valid = ~np.isnan(bands[0])
    rgba = np.zeros((4, TILE, TILE), dtype="uint8")
    for i, band in enumerate(bands):
        rgba[i] = np.where(valid, np.clip(np.nan_to_num(band), 0, 255), 0).astype("uint8")
    rgba[3] = np.where(valid, 255, 0)
    return rgba


def _hillshade(src: rasterio.DatasetReader, bounds: tuple[float, float, float, float], z: int,
               azimuth: float = 315.0, altitude: float = 45.0) -> np.ndarray:
    """GDAL's Horn hillshade of the terrain warped to the tile (one pixel of margin for the kernel)."""
    dem = _warp(src, 1, bounds, TILE, 1, Resampling.bilinear)
    # Web Mercator pixels are 1/cos(lat) too large on the ground: scale to metres at the tile's centre
    pixel = (bounds[2] - bounds[0]) / TILE
    lat = math.degrees(math.atan(math.sinh(((bounds[1] + bounds[3]) / 2) / 6378137.0)))
    ground = pixel * math.cos(math.radians(lat))
    return shade(dem, ground, -ground, azimuth, altitude)


def shade(dem: np.ndarray, ewres: float, nsres: float, azimuth: float = 315.0, altitude: float = 45.0
          ) -> np.ndarray:
    """RGBA grey hillshade of a DEM with a one-pixel margin (GDAL's gdaldem formula, z factor 1)."""
    a = dem
    win = {k: a[1 + dy:a.shape[0] - 1 + dy, 1 + dx:a.shape[1] - 1 + dx]
           for k, (dy, dx) in {"a": (-1, -1), "b": (-1, 0), "c": (-1, 1), "d": (0, -1), "f": (0, 1),
                               "g": (1, -1), "h": (1, 0), "i": (1, 1)}.items()}
    # Horn's gradient exactly as gdaldem writes it (nsres negative: rows run southwards)
    x = ((win["a"] + 2 * win["d"] + win["g"]) - (win["c"] + 2 * win["f"] + win["i"])) / (8 * ewres)
    y = ((win["g"] + 2 * win["h"] + win["i"]) - (win["a"] + 2 * win["b"] + win["c"])) / (8 * nsres)
    xx_yy = x * x + y * y
    aspect = np.arctan2(y, x)
    alt, az = math.radians(altitude), math.radians(azimuth)
    cang = (math.sin(alt) - math.cos(alt) * np.sqrt(xx_yy) * np.sin(aspect - az)) / np.sqrt(1 + xx_yy)
    grey = np.where(cang <= 0, 1.0, 1 + 254 * cang)
    valid = ~np.isnan(grey)
    out = np.zeros((4, *grey.shape), dtype="uint8")
    for i in range(3):
        out[i] = np.where(valid, np.round(np.nan_to_num(grey)), 0).astype("uint8")
    out[3] = np.where(valid, 255, 0)
    return out
