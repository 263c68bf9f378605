"""Isolation against independent oracles: WNTR's valve_segments (Net3, ky4) and networkx.

Each network is imported through our INP importer with a WNTR valve layer (strategic N-1 and random
one valve per pipe, fixed seeds). INP coordinates are local units, so they are placed in the city
with a local transverse-Mercator grid centred on Xiamen whose unit is chosen per file (a "local
independent grid", as cities use): the import path is the real one, only the CRS text is ours.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import networkx as nx
import numpy as np
import pytest
import wntr
from sqlalchemy import text
from test_pipeline_isolation_api import pipeline_cleanup  # noqa: F401  (drops this module's networks)

from gis.access import SYSTEM
from gis.settings import get_settings
from layers.pipeline import service
from layers.pipeline.isolation import isolate, second_ring

NETWORKS = Path(wntr.__file__).parent / "library" / "networks"
CASES = [("Net3", "strategic"), ("Net3", "random"), ("ky4", "strategic"), ("ky4", "random")]


def local_grid(wn: wntr.network.WaterNetworkModel, unit_m: float) -> str:
    """A PROJ local grid putting the INP coordinate centre at 118.40°E 24.65°N (inside the city bounds,
    away from the demo city and the other tests' networks), ``unit_m`` metres per INP unit."""
    xy = np.array([n.coordinates for _, n in wn.nodes()])
    cx, cy = (xy.min(0) + xy.max(0)) / 2
    return (f"+proj=tmerc +lat_0=24.65 +lon_0=118.40 +k=1 +x_0={cx * unit_m} +y_0={cy * unit_m} "
            f"+to_meter={unit_m} +ellps=GRS80 +no_defs +type=crs")


def valve_layer(wn: wntr.network.WaterNetworkModel, placement: str):
    if placement == "strategic":
        return wntr.network.layer.generate_valve_layer(wn, "strategic", 1, seed=42)
    return wntr.network.layer.generate_valve_layer(wn, "random", wn.num_pipes, seed=7)


@pytest.fixture(scope="module", params=CASES, ids=[f"{n}-{p}" for n, p in CASES])
def case(request, engine):
    name, placement = request.param
    path = NETWORKS / f"{name}.inp"
    wn = wntr.network.WaterNetworkModel(str(path))
    layer = valve_layer(wn, placement)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        node_seg, link_seg, _ = wntr.metrics.valve_segments(wn.to_graph(), layer)
    unit = 100.0 if name == "Net3" else 0.3048
    with engine.begin() as conn:
        result = service.import_inp(conn, path, name=f"{name}-{placement}", crs=local_grid(wn, unit),
                                    caller=SYSTEM, settings=get_settings(),
                                    valve_layer=list(zip(layer["link"], layer["node"], strict=True)),
                                    customers_from_demand=True)
    with engine.connect() as conn:
        # WNTR's metrics are topological: every link two-way, whatever its status (the flag)
        graph = service.load_graph(conn, result.network_id, one_way=False)
    yield {"wn": wn, "layer": layer, "node_seg": node_seg, "link_seg": link_seg, "result": result,
           "graph": graph}
    _drop_network(engine, result.network_id)


def _drop_network(engine, network_id: int) -> None:
    """A parameter's network goes with its fixture: in a shuffled order the same parameter may be set up
    again later in the module, under the same (unique) network name."""
    from sqlalchemy import text

    with engine.begin() as conn:
        conn.execute(text("DELETE FROM pipeline_networks WHERE id = :id"), {"id": network_id})


def _ours(case, iso):
    g, res = case["graph"], case["result"]
    links = {res.pipe_origin[int(g.pipe_ids[p])][0] for p in iso.pipes
             if res.pipe_origin[int(g.pipe_ids[p])][1] == "body"}
    nodes = {res.node_origin[int(g.node_ids[n])] for n in iso.nodes} - {None}
    valve_of_id = {vid: key for key, vid in res.valve_ids.items()}
    boundary = {valve_of_id[int(g.node_ids[v])] for v in iso.boundary}
    return links, nodes, boundary


def _wntr_segment(case, segs: set[int]):
    link_seg, node_seg, layer = case["link_seg"], case["node_seg"], case["layer"]
    links = set(link_seg.index[link_seg.isin(segs)])
    nodes = set(node_seg.index[node_seg.isin(segs)])
    boundary = set()
    for link, node in zip(layer["link"], layer["node"], strict=True):
        sides = (int(link_seg[link]) in segs, int(node_seg[node]) in segs)
        if sides[0] != sides[1]:
            boundary.add((link, node))
    return links, nodes, boundary


def _body_index(case, link: str) -> int:
    res, g = case["result"], case["graph"]
    code = link if link in res.pipe_ids else f"{link}.1"
    return g.pipe_index[res.pipe_ids[code]]


def test_every_pipe_segment_and_boundary_equal_wntr(case):
    wn, link_seg, node_seg, layer = case["wn"], case["link_seg"], case["node_seg"], case["layer"]
    # WNTR's answer per segment number, grouped once (the oracle's own labels, nothing of ours)
    links_of = link_seg.groupby(link_seg).groups
    nodes_of = node_seg.groupby(node_seg).groups
    sides = np.column_stack([link_seg[layer["link"]].to_numpy(), node_seg[layer["node"]].to_numpy()])
    valves = list(zip(layer["link"], layer["node"], strict=True))
    boundary_of: dict[int, set] = {}
    for (a, b), valve in zip(sides.tolist(), valves, strict=True):
        if a != b:
            boundary_of.setdefault(a, set()).add(valve)
            boundary_of.setdefault(b, set()).add(valve)
    checked = 0
    for link in wn.link_name_list:
        s = int(link_seg[link])
        links, nodes, boundary = _ours(case, isolate(case["graph"], _body_index(case, link)))
        assert links == set(links_of[s]), f"links of segment of {link}"
        assert nodes == set(nodes_of.get(s, [])), f"nodes of segment of {link}"
        assert boundary == boundary_of.get(s, set()), f"boundary valves of segment of {link}"
        checked += 1
    assert checked == wn.num_links and checked > 100


def test_failed_valve_matches_merged_wntr_segments(case):
    wn, link_seg, node_seg = case["wn"], case["link_seg"], case["node_seg"]
    res, g = case["result"], case["graph"]
    rng = np.random.default_rng(3)
    tried = 0
    for link in rng.permutation(wn.link_name_list)[:60]:
        iso = isolate(g, _body_index(case, link))
        if not len(iso.boundary):
            continue
        valve_index = int(iso.boundary[0])
        key = {vid: k for k, vid in res.valve_ids.items()}[int(g.node_ids[valve_index])]
        merged = {int(link_seg[link]), int(link_seg[key[0]]), int(node_seg[key[1]])}
        failed = isolate(g, _body_index(case, link), [valve_index])
        ours = _ours(case, failed)
        expected = _wntr_segment(case, merged)
        assert ours == expected, f"failed valve {key} on the ring of {link}"
        assert len(failed.pipes) > len(iso.pipes)
        tried += 1
    assert tried >= 10


def test_collateral_outage_equals_networkx(case, engine):
    """Plain graph search on the database rows: remove the segment's pipes and closed valves, then
    every customer node with no path to a source or tank is cut off."""
    g, res = case["graph"], case["result"]
    with engine.connect() as conn:
        pipe_rows = conn.execute(text("SELECT id, from_node, to_node FROM pipeline_pipes WHERE network_id = :n"),
                                 {"n": res.network_id}).all()
        node_rows = conn.execute(text("SELECT id, kind, valve_state FROM pipeline_nodes WHERE network_id = :n"),
                                 {"n": res.network_id}).all()
        cust_rows = conn.execute(text("SELECT id, node_id FROM pipeline_customers WHERE network_id = :n"),
                                 {"n": res.network_id}).all()
    feeders = {i for i, kind, _ in node_rows if kind in ("source", "tank")}
    closed_before = {i for i, kind, state in node_rows if state == "closed"}

    def supplied(removed_pipes: set[int], closed: set[int]) -> set[int]:
        graph = nx.MultiGraph()
        graph.add_nodes_from(i for i, _, _ in node_rows if i not in closed)
        graph.add_edges_from((a, b, p) for p, a, b in pipe_rows
                             if p not in removed_pipes and a not in closed and b not in closed)
        reach: set[int] = set()
        for f in feeders:
            if f in graph and f not in reach:
                reach |= nx.node_connected_component(graph, f)
        return reach

    base = supplied(set(), closed_before)
    rng = np.random.default_rng(11)
    total_collateral = 0
    for p in rng.choice(len(g.pipe_ids), size=min(40, len(g.pipe_ids)), replace=False):
        iso = isolate(g, int(p))
        seg_pipes = {int(g.pipe_ids[i]) for i in iso.pipes}
        seg_nodes = {int(g.node_ids[i]) for i in iso.nodes}
        closed = closed_before | {int(g.node_ids[v]) for v in iso.boundary}
        after = supplied(seg_pipes, closed) - seg_nodes
        expected = {c for c, node in cust_rows if (node in base and node not in after) or node in seg_nodes}
        ours = {int(g.customer_ids[c]) for c in np.concatenate([iso.customers_inside, iso.customers_collateral])}
        assert ours == expected
        total_collateral += len(iso.customers_collateral)
    assert len(cust_rows) > 50


def test_supply_tree_cut_off_equals_whole_network_search(case):
    """The supply-tree search for collateral outage agrees with a whole-network component search for
    every pipe, with and without a failed boundary valve."""
    g = case["graph"]
    lost_somewhere = 0
    for p in range(len(g.pipe_ids)):
        iso = isolate(g, p)
        full = g._cut_off_full(iso.segments, iso.boundary)
        assert np.array_equal(iso.cut_off, full), f"pipe index {p}"
        lost_somewhere += len(full) > 0
        if len(iso.boundary) and p % 7 == 0:
            worse = isolate(g, p, [int(iso.boundary[0])])
            assert np.array_equal(worse.cut_off, g._cut_off_full(worse.segments, worse.boundary))
    assert lost_somewhere > 0  # collateral outage does occur in these networks


@pytest.mark.parametrize("tree_limit", [3000, 0], ids=["baseline-tree", "after-isolation-tree"])
def test_second_ring_equals_recomputing_with_the_failed_valve(case, tree_limit, monkeypatch):
    """The prepared fallback per valve equals a full isolation with that valve failed (through the
    baseline supply tree, and with that disabled, through the tree after the first isolation)."""
    from layers.pipeline import isolation

    monkeypatch.setattr(isolation, "TREE_LIMIT", tree_limit)
    g = case["graph"]
    compared = 0
    for p in range(0, len(g.pipe_ids), 3):
        iso = isolate(g, p)
        for ring in second_ring(g, iso):
            alt = isolate(g, p, [ring["valve"]])
            base = set(iso.to_close.tolist())
            assert ring["fallback_valves"] == sorted(int(x) for x in alt.to_close if int(x) not in base)
            assert ring["extra_pipes"] == len(alt.pipes) - len(iso.pipes)
            assert ring["extra_customers"] == (len(alt.customers_inside) + len(alt.customers_collateral)
                                               - len(iso.customers_inside) - len(iso.customers_collateral))
            compared += 1
    assert compared > 50
