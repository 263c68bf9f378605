"""The demo city's land use: survey patches that tile the city exactly (blocks and street strips), the
2035 plan on them, the three control lines and the base land-price zones."""

from __future__ import annotations

import datetime as dt

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from pyproj import Geod

from data.democity.common import PLAN_YEAR, SURVEY_YEAR, USES, random_stream, union_multi, zfill
from data.democity.dem import ground_elevation
from data.democity.grid import street_pieces
from data.reference import code_list
from gis.crs import transformer


def _ellipsoidal_areas(geoms: np.ndarray, storage_crs: str) -> np.ndarray:
    """Areas on the CGCS2000/GRS80 ellipsoid (what the third land survey reports), m²."""
    lonlat = shapely.transform(geoms, lambda xy: np.column_stack(
        transformer(storage_crs, "EPSG:4490").transform(xy[:, 0], xy[:, 1])))
    geod = Geod(ellps="GRS80")
    return np.array([abs(geod.geometry_area_perimeter(g)[0]) for g in lonlat])


def survey_and_plan(g: dict, blocks: pd.DataFrame, seed: int, srid: int,
                    storage_crs: str) -> tuple[gpd.GeoDataFrame, gpd.GeoDataFrame]:
    """The survey patches (blocks and street strips, tiling the city) and the plan's zones on them."""
    rng = random_stream(seed, 4)
    block_geoms = shapely.box(blocks["x0"], blocks["y0"], blocks["x1"], blocks["y1"])
    streets = street_pieces(g)
    geoms = np.concatenate([block_geoms, streets])
    multi = shapely.multipolygons(geoms, indices=np.arange(len(geoms)))
    use = np.concatenate([blocks["use"].to_numpy(), np.full(len(streets), "street", dtype=object)])
    survey_code = np.array([USES[u][1] if u != "street" else "1004" for u in use], dtype=object)
    settlement = np.array([USES[u][3] if u != "street" else "201" for u in use], dtype=object)
    names = {r["code"]: r["name_zh"] for r in code_list("survey_tnls") if r["level"] != "0"}
    cy = shapely.get_coordinates(shapely.centroid(geoms))[:, 1]
    cy0 = (g["y"][0] + g["y"][-1]) / 2
    district = np.where(cy > cy0, "350206", "350203")
    ownership = np.where(np.isin(use, ("village", "farmland")), "集体", "国有")
    patches = gpd.GeoDataFrame({
        "patch_no": np.char.add("TB", zfill(np.arange(1, len(geoms) + 1), 7)).astype(object),
        "survey_year": SURVEY_YEAR, "class_system": "三调工作分类", "class_code": survey_code,
        "class_name": [names[c] for c in survey_code], "settlement_code": settlement,
        "ownership": ownership, "district": district.astype(object),
        "ellipsoidal_area": _ellipsoidal_areas(multi, storage_crs),
    }, geometry=multi, crs=f"EPSG:{srid}")
    # the 2035 plan: villages and some old industry redeveloped, a few blocks left white (留白)
    plan_code = np.array([USES[u][2] if u != "street" else "1207" for u in use], dtype=object)
    r = rng.random(len(use))
    plan_code[(use == "industrial") & (r < 0.3)] = "0902"
    plan_code[(use == "residential") & (r < 0.03)] = "1401"
    plan_code[(use == "residential") & (r > 0.985)] = "16"
    plan_code[(use == "village") & (r < 0.3)] = "0703"
    plan_names = {row["code"]: row["name_zh"] for row in code_list("planning_2023")}
    zones = gpd.GeoDataFrame({
        "plan_name": "厦门岛国土空间规划（演示）", "plan_year": PLAN_YEAR, "class_system": "用地用海分类指南(2023)",
        "class_code": plan_code, "class_name": [plan_names[c] for c in plan_code],
        "district": district.astype(object),
    }, geometry=multi, crs=f"EPSG:{srid}")
    return patches, zones


def control_line_table(g: dict, blocks: pd.DataFrame, seed: int, srid: int) -> gpd.GeoDataFrame:
    """The three control lines: basic farmland, ecological red line (core and general), urban boundary."""
    use = blocks["use"].to_numpy()
    geoms = shapely.box(blocks["x0"], blocks["y0"], blocks["x1"], blocks["y1"])
    # the lines are drawn generously: to the street centrelines around the blocks
    grown = shapely.box(g["x"][blocks["bx"]], g["y"][blocks["by"]], g["x"][blocks["bx"] + 1],
                        g["y"][blocks["by"] + 1])
    cx = (blocks["x0"] + blocks["x1"]).to_numpy() / 2
    cy = (blocks["y0"] + blocks["y1"]).to_numpy() / 2
    z = ground_elevation(cx, cy, seed, g["centre"])
    rows = []
    farm = union_multi(geoms[use == "farmland"])
    if farm is not None:
        rows.append(("permanent_basic_farmland", None, "禾山永久基本农田保护区", farm))
    core = union_multi(geoms[(use == "forest") & (z > 150)])
    if core is not None:
        rows.append(("ecological_red_line", "core", "仙岳山生态保护红线（核心保护区）", core))
    general = union_multi(geoms[((use == "forest") & (z <= 150)) | (use == "lake")])
    if general is not None:
        rows.append(("ecological_red_line", "general", "筼筜湖—山体生态保护红线（一般控制区）", general))
    n = g["n"]
    extent = shapely.box(g["x"][0], g["y"][0], g["x"][n - 1], g["y"][n - 1])
    outside = shapely.union_all(grown[np.isin(use, ("farmland", "forest"))])
    udb = shapely.difference(extent, outside) if not outside.is_empty else extent
    udb = union_multi(np.array([udb]))
    rows.append(("urban_development_boundary", None, "厦门岛城镇开发边界", udb))
    frame = gpd.GeoDataFrame(rows, columns=["kind", "zone_type", "name", "geometry"], geometry="geometry",
                             crs=f"EPSG:{srid}")
    frame["approved_on"] = dt.date(2023, 9, 1)
    frame["approval_no"] = "国函〔2023〕示例号"
    return frame


def price_zone_table(g: dict, srid: int) -> gpd.GeoDataFrame:
    """Base land-price zones: four rings around the centre per land class."""
    n = g["n"]
    extent = shapely.box(g["x"][0], g["y"][0], g["x"][n - 1], g["y"][n - 1])
    side = g["x"][n - 1] - g["x"][0]
    centre = shapely.Point(g["x"][0] + 0.55 * side, g["y"][0] + 0.42 * side)
    radii = [0.0, 0.15 * side, 0.3 * side, 0.5 * side]
    rings = []
    for k in range(4):
        outer = extent if k == 3 else shapely.intersection(extent, centre.buffer(radii[k + 1], quad_segs=16))
        inner = centre.buffer(radii[k], quad_segs=16) if k else None
        rings.append(outer if inner is None else shapely.difference(outer, inner))
    prices = {"commercial": [32000, 21000, 14000, 8000], "residential": [28000, 19000, 12000, 7000],
              "industrial": [2600, 2000, 1500, 1100], "public": [9000, 7000, 5000, 3500]}
    rows = []
    for land_class, values in prices.items():
        for k, ring in enumerate(rings):
            rows.append((land_class, k + 1, values[k], dt.date(2023, 1, 1), union_multi(np.array([ring]))))
    return gpd.GeoDataFrame(rows, columns=["land_class", "grade", "price_per_m2", "base_date", "geometry"],
                            geometry="geometry", crs=f"EPSG:{srid}")
