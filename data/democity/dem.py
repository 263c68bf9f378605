"""The demo city's terrain: smooth Gaussian hills over a gently rising plain, and its DEM GeoTIFF."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from data.democity.common import ISLAND, centre_xy
from gis.crs import transformer


def _hills(seed: int) -> np.ndarray:
    """(dx, dy, sigma, peak) of the Gaussian hills, metres from the centre."""
    rng = np.random.default_rng(seed + 7)
    fixed = [(-650.0, 450.0, 260.0, 270.0), (1700.0, -1500.0, 320.0, 230.0), (-3800.0, -3200.0, 700.0, 290.0)]
    extra = np.column_stack([rng.uniform(-6500, 6500, 6), rng.uniform(-7000, 7000, 6),
                             rng.uniform(250, 700, 6), rng.uniform(15, 55, 6)])
    return np.vstack([np.array(fixed), extra])


def ground_elevation(x: np.ndarray, y: np.ndarray, seed: int, centre: tuple[float, float]) -> np.ndarray:
    """Ground height (m, 0–300) at storage-CRS points: smooth hills over a gently rising plain around
    the grid's ``centre``."""
    cx, cy = centre
    dx, dy = np.asarray(x, dtype=float) - cx, np.asarray(y, dtype=float) - cy
    z = 4.0 + 0.0006 * (dy + 8000.0)
    for hx, hy, sigma, peak in _hills(seed):
        z = z + peak * np.exp(-((dx - hx) ** 2 + (dy - hy) ** 2) / (2.0 * sigma**2))
    return np.clip(z, 0.0, 300.0)


def write_dem(out: Path, seed: int, cell: float, storage_crs: str) -> Path:
    """Write the demo DEM (float32 GeoTIFF in ``storage_crs``, ``cell`` metres) over the whole island."""
    import rasterio
    from rasterio.transform import from_origin

    out.parent.mkdir(parents=True, exist_ok=True)
    centre = centre_xy(storage_crs)
    x0, y0, x1, y1 = transformer("EPSG:4326", storage_crs).transform_bounds(*ISLAND)
    width, height = int(np.ceil((x1 - x0) / cell)), int(np.ceil((y1 - y0) / cell))
    xs = x0 + (np.arange(width) + 0.5) * cell
    ys = y1 - (np.arange(height) + 0.5) * cell
    grid = np.empty((height, width), dtype=np.float32)
    for start in range(0, height, 256):  # in strips: the full grid at once needs ~1 GB of temporaries
        yy = ys[start:start + 256][:, None]
        grid[start:start + 256] = ground_elevation(xs[None, :], yy, seed, centre)
    crs = rasterio.crs.CRS.from_user_input(storage_crs)
    with rasterio.open(out, "w", driver="GTiff", width=width, height=height, count=1, dtype="float32",
                       crs=crs, transform=from_origin(x0, y1, cell, cell), compress="deflate",
                       tiled=True, blockxsize=256, blockysize=256) as dst:
        dst.write(grid, 1)
        dst.update_tags(description="govgis demo city DEM (fictional terrain)", seed=str(seed))
    return out
