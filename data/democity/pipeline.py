"""The demo city's water and gas networks along the streets: nodes, valves, hydrants, control valves,
a source and a tank each, pipes between them, and every built parcel as a customer of both."""

from __future__ import annotations

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from data.democity.common import BUILT, person_names, phone_numbers, random_stream, zfill
from data.democity.dem import ground_elevation
from data.democity.grid import street_segments


def pipeline_tables(g: dict, parcels: gpd.GeoDataFrame, seed: int, srid: int
               ) -> tuple[pd.DataFrame, gpd.GeoDataFrame, gpd.GeoDataFrame, gpd.GeoDataFrame]:
    """The water and gas networks: networks, nodes, pipes and customers (ids assigned here)."""
    networks = pd.DataFrame({
        "id": [1, 2], "utility": ["water", "gas"], "name": ["厦门岛供水管网（演示）", "厦门岛燃气管网（演示）"],
        "operator": ["厦门水务集团（示例）", "厦门燃气集团（示例）"], "snap_tolerance_m": [0.05, 0.05],
    })
    all_nodes, all_pipes, all_customers = [], [], []
    next_node, next_pipe = 1, 1
    for net_id, utility, offset, prefix, stream in ((1, "water", 3.0, "W", 10), (2, "gas", -3.0, "G", 20)):
        nodes, pipes, customers = _network(g, parcels, net_id, utility, offset * g["scale"], prefix,
                                           seed, stream, next_node, next_pipe, srid)
        next_node += len(nodes)
        next_pipe += len(pipes)
        all_nodes.append(nodes)
        all_pipes.append(pipes)
        all_customers.append(customers)
    crs = f"EPSG:{srid}"
    return (networks, gpd.GeoDataFrame(pd.concat(all_nodes, ignore_index=True), crs=crs),
            gpd.GeoDataFrame(pd.concat(all_pipes, ignore_index=True), crs=crs),
            gpd.GeoDataFrame(pd.concat(all_customers, ignore_index=True), crs=crs))


def _network(g: dict, parcels: gpd.GeoDataFrame, net_id: int, utility: str, offset: float, prefix: str,
             seed: int, stream: int, first_node: int, first_pipe: int, srid: int
             ) -> tuple[gpd.GeoDataFrame, gpd.GeoDataFrame, gpd.GeoDataFrame]:
    """One utility network along the streets, offset from the centrelines by ``offset`` metres.

    Nodes: every intersection (junction, or tee on the edge), then points inside street segments —
    an isolation valve near the start (60 %) and/or the end (25 %), a hydrant (water) or a control valve
    midway — and a source and a tank outside two corners. Each segment is split at its inner points,
    so every pipe runs between two node ids and its end points are exactly those nodes' points.
    """
    rng = random_stream(seed, stream)
    n = g["n"]
    water = utility == "water"
    s = street_segments(g)
    nseg = len(s["a"])
    # junctions at every intersection, a little off the centreline (water north-east, gas south-west)
    jx, jy = np.meshgrid(g["x"] + offset, g["y"] + offset)
    jx, jy = jx.ravel(), jy.ravel()
    ix, iy = np.meshgrid(np.arange(n), np.arange(n))
    border = ((ix == 0) | (iy == 0) | (ix == n - 1) | (iy == n - 1)).ravel()
    corner = (((ix == 0) | (ix == n - 1)) & ((iy == 0) | (iy == n - 1))).ravel()
    j_kind = np.where(border & ~corner, "tee", "junction")
    # points inside each segment: valve near the start, hydrant or control valve midway, valve near the end
    seg_len = np.hypot(s["bx"] - s["ax"], s["by"] - s["ay"])
    near = np.minimum(8.0 * g["scale"], 0.15 * seg_len) / seg_len
    t = np.full((nseg, 3), np.nan)
    kind = np.full((nseg, 3), "", dtype=object)
    v0 = rng.random(nseg) < 0.6
    v1 = rng.random(nseg) < 0.25
    mid = rng.random(nseg)
    hyd = (mid < 0.12) if water else np.zeros(nseg, bool)
    ctl = (mid > 0.992)
    ctl[[nseg // 3, (2 * nseg) // 3]] = True  # every network has control valves to model
    hyd &= ~ctl
    t[v0, 0], kind[v0, 0] = near[v0], "isolation_valve"
    t[hyd | ctl, 1] = 0.5
    kind[hyd, 1], kind[ctl, 1] = "hydrant", "control_valve"
    t[v1, 2], kind[v1, 2] = 1 - near[v1], "isolation_valve"
    present = ~np.isnan(t)
    inner_count = present.sum(axis=1)
    seg_of_inner = np.repeat(np.arange(nseg), 3)[present.ravel()]
    tin = t.ravel()[present.ravel()]
    kin = kind.ravel()[present.ravel()]
    ax, ay = s["ax"][seg_of_inner] + offset, s["ay"][seg_of_inner] + offset
    bx, by = s["bx"][seg_of_inner] + offset, s["by"][seg_of_inner] + offset
    inner_x, inner_y = ax + tin * (bx - ax), ay + tin * (by - ay)
    n_j = n * n
    n_in = len(tin)
    inner_ids = first_node + n_j + np.arange(n_in)
    # ordered node ids along each segment: start, inner points (t is sorted by construction), end
    ids = np.full((nseg, 5), -1, dtype=np.int64)
    ids[:, 0] = first_node + s["a"]
    col = np.cumsum(present, axis=1)
    rows_, cols_ = np.nonzero(present)
    ids[rows_, col[rows_, cols_]] = inner_ids
    ids[np.arange(nseg), inner_count + 1] = first_node + s["b"]
    pairs_from, pairs_to, pair_seg = [], [], []
    for c in range(4):
        ok = (ids[:, c] >= 0) & (ids[:, c + 1] >= 0)
        pairs_from.append(ids[ok, c])
        pairs_to.append(ids[ok, c + 1])
        pair_seg.append(np.flatnonzero(ok))
    # sources and tanks just outside two corners, joined to the corner junction by a pipe
    out = 30.0 * g["scale"]
    specials = [("source", 0, -out, -out), ("tank", n * n - 1, out, out)] if water else \
        [("source", n * (n - 1), -out, out), ("tank", n - 1, out, -out)]
    sp_ids = first_node + n_j + n_in + np.arange(len(specials))
    sp_x = np.array([jx[c] + dx for _, c, dx, _ in specials])
    sp_y = np.array([jy[c] + dy for _, c, _, dy in specials])
    node_x = np.concatenate([jx, inner_x, sp_x])
    node_y = np.concatenate([jy, inner_y, sp_y])
    node_kind = np.concatenate([j_kind, kin, [k for k, *_ in specials]]).astype(object)
    node_ids = np.concatenate([first_node + np.arange(n_j), inner_ids, sp_ids])
    p_from = np.concatenate(pairs_from + [sp_ids])
    p_to = np.concatenate(pairs_to + [first_node + np.array([c for _, c, *_ in specials])])
    p_seg = np.concatenate(pair_seg + [np.full(len(specials), -1)])
    pos = node_ids - first_node
    coords = np.stack([np.column_stack([node_x[p_from - first_node], node_y[p_from - first_node]]),
                       np.column_stack([node_x[p_to - first_node], node_y[p_to - first_node]])], axis=1)
    assert (pos == np.arange(len(node_ids))).all()
    npipe = len(p_from)
    seg_cls = np.where(p_seg >= 0, s["cls"][np.maximum(p_seg, 0)], "feeder")
    diam_table = ({"arterial": 600, "secondary": 300, "local": 200, "feeder": 800} if water else
                  {"arterial": 315, "secondary": 200, "local": 110, "feeder": 400})
    diameter = np.array([diam_table[c] for c in seg_cls])
    # materials and pressure classes are codes of the shared lists (data/codes), which the rule tables
    # (service life, clearances) key on
    materials = np.array(["球墨铸铁", "球墨铸铁", "PE", "钢"] if water else ["PE", "PE", "钢"], dtype=object)
    pressure = np.where(water, "0.4MPa", np.where(np.isin(seg_cls, ("arterial", "feeder")), "中压A", "中压B"))
    material = materials[rng.integers(0, len(materials), npipe)]
    install_year = rng.integers(1985, 2024, npipe)
    if water:  # the oldest iron mains are grey cast iron, laid before ductile iron took over
        material = np.where((material == "球墨铸铁") & (install_year < 1992), "灰口铸铁", material)
    pipes = gpd.GeoDataFrame({
        "id": first_pipe + np.arange(npipe), "network_id": net_id,
        "code": np.char.add(prefix + "P", zfill(np.arange(1, npipe + 1), 7)).astype(object),
        "from_node": p_from, "to_node": p_to,
        "material": material, "diameter_mm": diameter,
        "install_year": install_year, "burial_depth_m": np.round(rng.uniform(0.9, 2.2, npipe), 2),
        "pressure_class": pressure if np.ndim(pressure) else np.full(npipe, pressure), "status": "in_service",
    }, geometry=shapely.linestrings(coords), crs=f"EPSG:{srid}")
    # node attributes: a valve takes the diameter of its segment's pipe; a few valves cannot be turned
    nnode = len(node_ids)
    valve = node_kind == "isolation_valve"
    state = np.full(nnode, None, dtype=object)
    state[valve] = np.where(rng.random(valve.sum()) < 0.03, "inoperable", "open")
    control = np.full(nnode, None, dtype=object)
    cmask = node_kind == "control_valve"
    control[cmask] = np.array(["PRV", "check"] if water else ["PRV", "PRV"], dtype=object)[
        np.arange(cmask.sum()) % 2]
    # a control valve sits midway along its street segment and passes supply from the piece before it
    # (segments run away from the source's corner): that piece is its inlet pipe
    link_state = np.where(cmask, "active", None).astype(object)
    inlet = pd.array(np.full(nnode, pd.NA), dtype="Int64")
    into = pd.Series(first_pipe + np.arange(npipe), index=p_to - first_node)
    controls = np.flatnonzero(cmask)
    inlet[controls] = into.groupby(level=0).first().reindex(controls).to_numpy()
    node_diam = np.full(nnode, np.nan)
    first_pipe_of_node = pd.Series(diameter, index=p_to - first_node).groupby(level=0).max()
    node_diam[first_pipe_of_node.index.to_numpy()] = first_pipe_of_node.to_numpy()
    codes_prefix = {"junction": "J", "tee": "T", "isolation_valve": "V", "hydrant": "H", "control_valve": "C",
                    "source": "S", "tank": "R"}
    kind_letter = np.array([codes_prefix[k] for k in node_kind], dtype=object)
    node_code = (prefix + pd.Series(kind_letter) + pd.Series(zfill(np.arange(1, nnode + 1), 7))).to_numpy()
    exercised = pd.Series(pd.NaT, index=range(nnode), dtype="datetime64[ns]")
    exercised[valve] = (np.datetime64("2019-01-01") + rng.integers(0, 2500, valve.sum()).astype("timedelta64[D]"))
    nodes = gpd.GeoDataFrame({
        "id": node_ids, "network_id": net_id, "code": node_code, "kind": node_kind, "valve_state": state,
        "control_type": control, "link_state": link_state, "inlet_pipe": inlet, "diameter_mm": pd.array(np.where(np.isnan(node_diam), pd.NA, node_diam),
                                                         dtype="Int64"),
        "last_exercised": exercised.dt.date.where(exercised.notna(), None).to_numpy(),
        "access_note": None, "ground_elevation_m": np.round(ground_elevation(node_x, node_y, seed, g["centre"]), 2),
        "install_year": rng.integers(1985, 2024, nnode),
    }, geometry=shapely.points(node_x, node_y), crs=f"EPSG:{srid}")
    # customers: every built parcel, connected at the nearest intersection of this network
    built = parcels[parcels["use"].isin(BUILT)]
    pts = shapely.point_on_surface(built.geometry.to_numpy())
    xy = shapely.get_coordinates(pts)
    pitch = g["pitch"]
    cix = np.clip(np.rint((xy[:, 0] - g["x"][0] - offset) / pitch), 0, n - 1).astype(np.int64)
    ciy = np.clip(np.rint((xy[:, 1] - g["y"][0] - offset) / pitch), 0, n - 1).astype(np.int64)
    ncust = len(built)
    category = built["use"].map({"hospital": "hospital", "school": "school", "government": "government",
                                 "commercial": "commercial", "industrial": "industrial"}).fillna("residential")
    households = np.where(built["use"] == "residential", rng.integers(20, 300, ncust),
                          np.where(built["use"] == "village", rng.integers(1, 4, ncust), 1))
    contact = person_names(rng, ncust)
    personal_holder = (built["holder_kind"] == "person").to_numpy()
    contact[personal_holder] = built["right_holder"].to_numpy()[personal_holder]
    name = np.where(built["use"] == "residential", built["address"].to_numpy() + "住宅", built["right_holder"])
    customers = gpd.GeoDataFrame({
        "network_id": net_id,
        "account_no": np.char.add(prefix + "U", zfill(np.arange(1, ncust + 1), 8)).astype(object),
        "name": name.astype(object), "category": category.to_numpy(), "node_id": first_node + ciy * n + cix,
        "address": built["address"].to_numpy(), "contact_name": contact, "contact_phone": phone_numbers(rng, ncust),
        "households": households, "parcel_code": built["parcel_code"].to_numpy(),
    }, geometry=pts, crs=f"EPSG:{srid}")
    return nodes, pipes, customers
