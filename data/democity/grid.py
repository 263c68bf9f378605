"""The demo city's streets: a grid with arterials every sixth line, the blocks between them with one
use each, street names, and the street space as segments and strips."""

from __future__ import annotations

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from data.democity.common import (
    ARTERIAL_NAMES,
    BASE_N,
    BASE_PITCH,
    HALF_WIDTH,
    ISLAND,
    centre_xy,
    random_stream,
)
from data.democity.dem import ground_elevation
from gis.crs import transformer


def _line_classes(n: int) -> np.ndarray:
    i = np.arange(n)
    cls = np.full(n, "local", dtype=object)
    cls[i % 3 == 0] = "secondary"
    cls[(i % 6 == 0) | (i == n - 1)] = "arterial"
    return cls


def city_grid(size: float, storage_crs: str) -> dict[str, object]:
    """The street grid of a city of ``size``: line positions, classes and half widths, centred on the
    island (storage CRS)."""
    n = max(4, int(round(BASE_N * np.sqrt(size))))
    x0i, y0i, x1i, y1i = transformer("EPSG:4326", storage_crs).transform_bounds(*ISLAND)
    room = 0.9 * min(x1i - x0i, y1i - y0i)
    pitch = BASE_PITCH
    scale = 1.0
    if (n - 1) * pitch + 2 * HALF_WIDTH["arterial"] > room:
        scale = room / ((n - 1) * pitch + 2 * HALF_WIDTH["arterial"])
        pitch *= scale
    cx, cy = centre_xy(storage_crs)
    side = (n - 1) * pitch
    lines = np.arange(n) * pitch
    cls = _line_classes(n)
    half = np.array([HALF_WIDTH[c] for c in cls]) * scale
    return {"n": n, "pitch": pitch, "scale": scale, "x": cx - side / 2 + lines, "y": cy - side / 2 + lines,
            "cls": cls, "half": half, "centre": (cx, cy)}


def assign_uses(g: dict, seed: int) -> np.ndarray:
    """One use per block, by position (hills, lake, north-east farmland) and by chance."""
    n = g["n"]
    nb = n - 1
    bx, by = np.meshgrid(np.arange(nb), np.arange(nb))
    bx, by = bx.ravel(), by.ravel()
    u, v = (bx + 0.5) / nb, (by + 0.5) / nb
    cxb = (g["x"][bx] + g["x"][bx + 1]) / 2
    cyb = (g["y"][by] + g["y"][by + 1]) / 2
    z = ground_elevation(cxb, cyb, seed, g["centre"])
    rng = random_stream(seed, 1)
    r = rng.random(len(bx))
    use = np.full(len(bx), "residential", dtype=object)
    cbd = (u - 0.55) ** 2 + (v - 0.42) ** 2 < 0.16**2
    on_arterial = (g["cls"][bx] == "arterial") | (g["cls"][by] == "arterial")
    use[cbd | (on_arterial & (r < 0.25))] = "commercial"
    use[(r >= 0.25) & (r < 0.28)] = "school"
    use[(r >= 0.28) & (r < 0.288)] = "hospital"
    use[(r >= 0.288) & (r < 0.298)] = "government"
    use[(r >= 0.30) & (r < 0.34)] = "park"
    use[(v > 0.80) & (u < 0.40)] = "industrial"
    use[(u > 0.72) & (v > 0.70)] = "village"
    use[(u > 0.84) & (v > 0.82)] = "farmland"
    use[(u - 0.22) ** 2 + (v - 0.62) ** 2 < 0.07**2] = "lake"
    use[z > 60.0] = "forest"
    # every city, however small, has at least one hospital, school, park, government and lake block
    for i, name in enumerate(("hospital", "school", "park", "government", "lake")):
        if not (use == name).any():
            use[np.flatnonzero(use == "residential")[i * 3]] = name
    return use


def city_blocks(g: dict, use: np.ndarray) -> gpd.GeoDataFrame:
    """Block rectangles inside the street space, with use, district and cadastral (sub-)district."""
    nb = g["n"] - 1
    bx, by = np.meshgrid(np.arange(nb), np.arange(nb))
    bx, by = bx.ravel(), by.ravel()
    x, y, half = g["x"], g["y"], g["half"]
    x0, x1 = x[bx] + half[bx], x[bx + 1] - half[bx + 1]
    y0, y1 = y[by] + half[by], y[by + 1] - half[by + 1]
    county = np.where((by + 0.5) / nb > 0.5, "350206", "350203")
    # cadastral district = 20×20 blocks, sub-district = 4×4 blocks inside it
    ntx = (nb + 19) // 20
    district = (by // 20) * ntx + bx // 20 + 1
    sub = ((by % 20) // 4) * 5 + (bx % 20) // 4 + 1
    frame = pd.DataFrame({"bx": bx, "by": by, "x0": x0, "y0": y0, "x1": x1, "y1": y1, "use": use,
                          "county": county, "cad_district": district, "cad_sub": sub})
    return frame


def street_names(g: dict, vertical: bool, index: np.ndarray) -> np.ndarray:
    """Street names: numbered 纵/横 roads, arterials named after real Xiamen roads."""
    cls = g["cls"][index]
    names = np.where(vertical, np.char.add(np.char.add("纵", index.astype(str)), "路"),
                     np.char.add(np.char.add("横", index.astype(str)), "路")).astype(object)
    art = cls == "arterial"
    k = (index[art] // 6) * 2 + (1 if vertical else 0)
    names[art] = [ARTERIAL_NAMES[i % len(ARTERIAL_NAMES)] + ("" if i < len(ARTERIAL_NAMES)
                  else f"{i // len(ARTERIAL_NAMES) + 1}段") for i in k]
    return names


def street_segments(g: dict) -> dict[str, np.ndarray]:
    """Street segments between adjacent intersections (vertex id = iy·n + ix + 1)."""
    n = g["n"]
    ix, iy = np.meshgrid(np.arange(n - 1), np.arange(n))
    hx, hy = ix.ravel(), iy.ravel()  # horizontal: (hx, hy) → (hx+1, hy)
    vx, vy = np.meshgrid(np.arange(n), np.arange(n - 1))
    vx, vy = vx.ravel(), vy.ravel()  # vertical: (vx, vy) → (vx, vy+1)
    a_ix = np.concatenate([hx, vx])
    a_iy = np.concatenate([hy, vy])
    b_ix = np.concatenate([hx + 1, vx])
    b_iy = np.concatenate([hy, vy + 1])
    vertical = np.concatenate([np.zeros(len(hx), bool), np.ones(len(vx), bool)])
    line = np.where(vertical, a_ix, a_iy)
    return {"a": a_iy * n + a_ix, "b": b_iy * n + b_ix, "ax": g["x"][a_ix], "ay": g["y"][a_iy],
            "bx": g["x"][b_ix], "by": g["y"][b_iy], "vertical": vertical, "line": line,
            "cls": g["cls"][line]}


def street_pieces(g: dict) -> np.ndarray:
    """The street space as rectangles that, with the blocks, tile the city exactly."""
    n, x, y, half = g["n"], g["x"], g["y"], g["half"]
    X0, X1 = x[0] - half[0], x[-1] + half[-1]
    horizontal = shapely.box(np.full(n, X0), y - half, np.full(n, X1), y + half)
    ix, iy = np.meshgrid(np.arange(n), np.arange(n - 1))
    ix, iy = ix.ravel(), iy.ravel()
    vertical = shapely.box(x[ix] - half[ix], y[iy] + half[iy], x[ix] + half[ix], y[iy + 1] - half[iy + 1])
    return np.concatenate([horizontal, vertical])
