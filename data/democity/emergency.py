"""The demo city's emergency family: the road network (pgRouting costs, a few one-way streets), rescue
resources and their status, warehouses and stock, shelters and incidents."""

from __future__ import annotations

import datetime as dt

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from data.democity.common import COUNTIES, SPEED, phone_numbers, random_dates, random_stream, zfill
from data.democity.grid import street_names, street_segments
from data.reference import code_list


def road_table(g: dict, srid: int) -> gpd.GeoDataFrame:
    """The road network along the street centrelines, with pgRouting source/target and costs in seconds."""
    s = street_segments(g)
    coords = np.stack([np.column_stack([s["ax"], s["ay"]]), np.column_stack([s["bx"], s["by"]])], axis=1)
    geoms = shapely.linestrings(coords)
    speed = np.array([SPEED[c] for c in s["cls"]])
    length = shapely.length(geoms)
    cost = length / (speed / 3.6)
    names = np.empty(len(geoms), dtype=object)
    vert = s["vertical"]
    names[vert] = street_names(g, True, s["line"][vert])
    names[~vert] = street_names(g, False, s["line"][~vert])
    # a few local streets are one-way eastbound (pgRouting: negative reverse cost = no way back)
    oneway = (~vert) & (s["cls"] == "local") & (s["line"] % 7 == 2)
    return gpd.GeoDataFrame({
        "id": np.arange(1, len(geoms) + 1), "name": names, "road_class": s["cls"].astype(object),
        "source": s["a"] + 1, "target": s["b"] + 1, "speed_kmh": speed, "oneway": oneway,
        "cost": cost, "reverse_cost": np.where(oneway, -1.0, cost),
    }, geometry=geoms, crs=f"EPSG:{srid}")


def emergency_tables(g: dict, blocks: pd.DataFrame, size: float, seed: int, srid: int) -> dict[str, pd.DataFrame]:
    """Rescue resources and their status, warehouses with stock, shelters and incidents."""
    rng = random_stream(seed, 30)
    crs = f"EPSG:{srid}"
    n = g["n"]
    use = blocks["use"].to_numpy()
    centres = shapely.points((blocks["x0"] + blocks["x1"]) / 2, (blocks["y0"] + blocks["y1"]) / 2)

    def near_intersections(count: int) -> np.ndarray:
        ix = rng.integers(0, n, count)
        iy = rng.integers(0, n, count)
        off = 12.0 * g["scale"]
        return shapely.points(g["x"][ix] + off, g["y"][iy] + off)

    kinds = [("team", "消防救援", "消防救援站", "厦门市消防救援支队", 30),
             ("team", "医疗急救", "急救站", "厦门市急救中心", 12),
             ("team", "城市搜救", "蓝天救援队", "厦门市应急管理局", 25),
             ("team", "供水抢修", "供水抢修队", "厦门水务集团（示例）", 15),
             ("team", "燃气抢修", "燃气抢修队", "厦门燃气集团（示例）", 12),
             ("vehicle", "消防救援", "消防车", "厦门市消防救援支队", 6),
             ("vehicle", "医疗急救", "救护车", "厦门市急救中心", 3),
             ("vehicle", "工程抢险", "抢险车", "厦门市市政园林局", 4)]
    count = max(len(kinds) * 2, int(round(80 * size)))
    pick = np.arange(count) % len(kinds)
    status = np.where(rng.random(count) < 0.8, "available",
                      np.where(rng.random(count) < 0.75, "assigned", "out_of_service")).astype(object)
    resources = gpd.GeoDataFrame({
        "id": np.arange(1, count + 1),
        "code": np.char.add("YJ", zfill(np.arange(1, count + 1), 5)).astype(object),
        "name": [f"{COUNTIES['350203' if i % 2 else '350206']}第{i // len(kinds) + 1}{kinds[k][2]}"
                 for i, k in enumerate(pick)],
        "kind": [kinds[k][0] for k in pick], "capability_type": [kinds[k][1] for k in pick],
        "capability_level": rng.integers(1, 5, count), "status": status,
        "capacity": [kinds[k][4] for k in pick], "agency": [kinds[k][3] for k in pick],
        "duty_phone": np.char.add("0592-", zfill(rng.integers(0, 10**7, count), 7)).astype(object),
        "leader_phone": phone_numbers(rng, count),
    }, geometry=near_intersections(count), crs=crs)
    history = pd.DataFrame({"resource_id": resources["id"], "status": status,
                            "since": random_dates(rng, count, "2026-01-01", "2026-11-01"),
                            "actor": "应急指挥中心（演示数据）"})
    nw = max(3, int(round(6 * size)))
    candidates = np.flatnonzero(np.isin(use, ("industrial", "commercial", "residential")))
    wblocks = rng.choice(candidates, nw, replace=False)
    warehouses = gpd.GeoDataFrame({
        "id": np.arange(1, nw + 1), "code": np.char.add("CK", zfill(np.arange(1, nw + 1), 3)).astype(object),
        "name": [f"厦门市第{i + 1}应急物资储备库" for i in range(nw)], "agency": "厦门市应急管理局",
        "address": [f"储备路{i + 1}号" for i in range(nw)], "keeper_phone": phone_numbers(rng, nw),
    }, geometry=centres[wblocks], crs=crs)
    items = [r for r in code_list("gbt38565_supplies") if r["level"] == "4"]
    stock_rows = []
    for wid in warehouses["id"]:
        for k in rng.choice(len(items), 8, replace=False):
            item = items[k]
            perishable = item["code"].startswith("102")
            expires = dt.date(2027, 1, 1) + dt.timedelta(days=int(rng.integers(0, 900))) if perishable else None
            stock_rows.append((wid, item["code"], item["name_zh"], float(rng.integers(10, 2000)), item["unit"],
                               expires))
    stock = pd.DataFrame(stock_rows, columns=["warehouse_id", "supply_code", "name", "quantity", "unit",
                                              "expires_on"])
    shelter_blocks = np.flatnonzero(np.isin(use, ("park", "school")))
    sgeoms = shapely.box(blocks["x0"].to_numpy()[shelter_blocks], blocks["y0"].to_numpy()[shelter_blocks],
                         blocks["x1"].to_numpy()[shelter_blocks], blocks["y1"].to_numpy()[shelter_blocks])
    area = shapely.area(sgeoms)
    effective = np.round(area * np.where(use[shelter_blocks] == "park", 0.7, 0.4), 1)
    ns = len(shelter_blocks)
    shelters = gpd.GeoDataFrame({
        "code": np.char.add("BN", zfill(np.arange(1, ns + 1), 4)).astype(object),
        "name": [f"{'公园' if use[b] == 'park' else '学校'}应急避难场所{i + 1}号" for i, b in enumerate(shelter_blocks)],
        "grade": np.where(area > np.median(area) if ns else False, "市级", "区级").astype(object),
        "shelter_class": np.where(use[shelter_blocks] == "park", "短期", "紧急").astype(object),
        "hazards": "地震,台风,火灾", "capacity_persons": (effective / 2.0).astype(int),
        "effective_area_m2": effective, "service_radius_m": np.where(use[shelter_blocks] == "park", 1000.0, 500.0),
    }, geometry=shapely.multipolygons(sgeoms, indices=np.arange(ns)), crs=crs)
    spots = near_intersections(5)
    incidents = gpd.GeoDataFrame({
        "code": [f"SJ2026112200{i + 1}" for i in range(5)],
        "source_line": ["119", "122", "120", "municipal", "municipal"],
        "incident_type": ["建筑火灾", "道路交通事故", "急病救助", "供水管道爆管", "燃气泄漏"],
        "level": [3, 4, 4, 3, 2], "status": ["responding", "open", "responding", "open", "open"],
        "reported_at": pd.DatetimeIndex(["2026-11-22T08:15", "2026-11-22T08:40", "2026-11-22T09:05",
                                         "2026-11-22T09:30", "2026-11-22T10:02"]).tz_localize("UTC"),
        "description": ["居民楼火情（演示）", "两车追尾（演示）", "老人晕倒（演示）", "DN300供水管爆管（演示）",
                        "燃气管道泄漏（演示）"],
        "reporter_phone": phone_numbers(rng, 5),
        "impact_area": [shapely.MultiPolygon([p.buffer(r * g["scale"], quad_segs=8)])
                        for p, r in zip(spots, (80, 30, 10, 150, 300), strict=True)],
    }, geometry=spots, crs=crs)
    return {"emergency_resources": resources, "emergency_resource_status": history,
            "emergency_warehouses": warehouses, "emergency_stock": stock, "emergency_shelters": shelters,
            "emergency_incidents": incidents}
