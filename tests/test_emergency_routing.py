"""The road routing engine against independent oracles on the demo city's emergency_roads.

networkx shortest paths on the same graph exported from the database (points inserted by splitting
their edge at PostGIS's ST_LineLocatePoint fraction), pgRouting's pgr_dijkstraCost on vertex pairs,
and direct computations for isochrones and coverage.
"""

from __future__ import annotations

import networkx as nx
import numpy as np
import pytest
import shapely
import sqlalchemy as sa

from gis.access import SYSTEM
from gis.settings import get_settings
from layers.emergency import graph as graph_cache
from layers.emergency import routing, service


def _export(conn) -> list[tuple]:
    return conn.execute(sa.text("SELECT id, source, target, cost, reverse_cost FROM emergency_roads "
                                "WHERE source IS NOT NULL ORDER BY id")).all()


def _postgis_attach(conn, xy: np.ndarray) -> list[tuple[int, float]]:
    """Nearest road and fraction along it, by PostGIS (independent of the engine's shapely path)."""
    out = []
    for x, y in xy:
        row = conn.execute(sa.text(
            "SELECT id, ST_LineLocatePoint(geom, ST_SetSRID(ST_MakePoint(:x, :y), 4548)) FROM emergency_roads "
            "ORDER BY geom <-> ST_SetSRID(ST_MakePoint(:x, :y), 4548) LIMIT 1"), {"x": float(x), "y": float(y)}).one()
        out.append((int(row[0]), float(row[1])))
    return out


def _oracle(rows: list[tuple], points: dict[object, tuple[int, float]], closed: set[int] = frozenset()) -> nx.DiGraph:
    """The road graph in networkx with each point a node splitting its edge."""
    on_edge: dict[int, list[tuple[float, object]]] = {}
    for name, (edge, fraction) in points.items():
        on_edge.setdefault(edge, []).append((fraction, name))
    g = nx.DiGraph()

    def add(a: object, b: object, w: float) -> None:
        if not g.has_edge(a, b) or g[a][b]["weight"] > w:
            g.add_edge(a, b, weight=w)

    for edge, source, target, cost, reverse in rows:
        g.add_node(("v", source))
        g.add_node(("v", target))
        if edge in closed:
            continue
        chain = [(0.0, ("v", source)), *sorted(on_edge.get(edge, [])), (1.0, ("v", target))]
        for (fa, a), (fb, b) in zip(chain[:-1], chain[1:], strict=True):
            if cost >= 0:
                add(a, b, (fb - fa) * cost)
            if reverse is not None and reverse >= 0:
                add(b, a, (fb - fa) * reverse)
    return g


@pytest.fixture(scope="module")
def road(demo_city):
    with demo_city.connect() as conn:
        graph = graph_cache.road_graph(conn)
        rows = _export(conn)
    assert graph is not None and graph.n_edges == len(rows)
    return graph, rows


def _random_points(graph: routing.RoadGraph, rng: np.random.Generator, count: int) -> np.ndarray:
    lo, hi = graph.vertex_xy.min(axis=0), graph.vertex_xy.max(axis=0)
    return rng.uniform(lo, hi, (count, 2))


def test_attachment_is_to_the_nearest_edge_at_postgis_fraction(road, demo_city) -> None:
    graph, _ = road
    xy = _random_points(graph, np.random.default_rng(1), 60)
    located = graph.attach(xy)
    with demo_city.connect() as conn:
        expected = _postgis_attach(conn, xy)
    assert [int(graph.edge_ids[e]) for e in located.edge] == [e for e, _ in expected]
    assert np.allclose(located.fraction, [f for _, f in expected], atol=1e-9)


def test_dispatch_times_and_routes_equal_networkx(road, demo_city) -> None:
    graph, rows = road
    rng = np.random.default_rng(2)
    incidents_xy = _random_points(graph, rng, 20)
    units_xy = _random_points(graph, rng, 12)
    inc, units = graph.attach(incidents_xy), graph.attach(units_xy)
    with demo_city.connect() as conn:
        names = {("i", k): p for k, p in enumerate(_postgis_attach(conn, incidents_xy))}
        names.update({("u", k): p for k, p in enumerate(_postgis_attach(conn, units_xy))})
    oracle = _oracle(rows, names).reverse(copy=False)
    one_way_used, pairs = False, 0
    oneway_edges = {i for i, (_, _, _, _, rc) in enumerate(rows) if rc is not None and rc < 0}
    assert oneway_edges, "the demo city has one-way streets"
    turnout = np.zeros(len(units))
    for k in range(len(inc)):
        chosen, travel = routing.nearest_by_eta(graph, inc.take([k]), units, turnout, len(units), first_limit_s=30)
        expected = nx.single_source_dijkstra_path_length(oracle, ("i", k))
        want = np.array([expected.get(("u", j), np.inf) for j in range(len(units))])
        assert np.allclose(travel, want, rtol=1e-9, atol=1e-6), k
        for c in chosen:
            pairs += 1
            route = c.route
            assert route.seconds == pytest.approx(want[c.index], abs=1e-6)
            line = route.line()
            assert line.length == pytest.approx(route.metres, rel=1e-9, abs=1e-6)
            assert np.allclose(route.coords[0], units.xy[c.index]) and np.allclose(route.coords[-1], inc.xy[k])
            # the route's own cost, edge by edge, is its time (partial first and last edges)
            fwd, bwd = graph.edge_costs(None)
            walked = sum((fwd if d > 0 else bwd)[e] * graph.length[e] for e, d in route.edges[1:-1])
            assert np.isfinite(walked)
            one_way_used |= any(e in oneway_edges for e, _ in route.edges)
    assert pairs >= 200
    assert one_way_used, "some route runs along a one-way street"


def test_one_way_street_is_driven_only_forward(road) -> None:
    graph, _ = road
    e = int(np.flatnonzero(graph.reverse_cost < 0)[0])
    a, b = graph.interpolate(np.array([e, e]), np.array([0.25, 0.75]))
    pts = graph.attach(np.array([a, b]))
    assert pts.edge.tolist() == [e, e]
    forward = routing.route_between(graph, pts.take([0]), pts.take([1]))
    backward = routing.route_between(graph, pts.take([1]), pts.take([0]))
    assert forward.seconds == pytest.approx(0.5 * graph.cost[e])
    assert backward.seconds > forward.seconds  # must go round the block


def test_mid_edge_incident_is_reached_from_both_ends(road) -> None:
    graph, rows = road
    e = int(np.flatnonzero(graph.reverse_cost >= 0)[5])
    mid = graph.interpolate(np.array([e]), np.array([0.5]))
    inc = graph.attach(mid)
    assert inc.fraction[0] == pytest.approx(0.5)
    seeds = graph.seeds(inc, None, reverse=True)[0]
    assert sorted(seeds[0].tolist()) == sorted([int(graph.u[e]), int(graph.v[e])])
    assert np.allclose(sorted(seeds[1]), sorted([0.5 * graph.cost[e], 0.5 * graph.reverse_cost[e]]))
    oracle = _oracle(rows, {"inc": (int(graph.edge_ids[e]), 0.5)}).reverse(copy=False)
    expected = nx.single_source_dijkstra_path_length(oracle, "inc")
    dist, _, _ = graph.search([seeds], reverse=True)
    want = np.array([expected.get(("v", int(v)), np.inf) for v in graph.vertex_ids])
    assert np.allclose(dist[0], want)


def test_closure_applies_without_rebuilding_the_graph(road, conn) -> None:
    graph, rows = road
    x0, y0 = graph.vertex_xy.min(axis=0)
    x1, y1 = graph.vertex_xy.max(axis=0)
    box = shapely.box(x0 + (x1 - x0) * 0.35, y0 + (y1 - y0) * 0.35, x0 + (x1 - x0) * 0.6, y0 + (y1 - y0) * 0.6)
    service.add_closure(conn, caller=SYSTEM, settings=get_settings(), reason="测试封闭", area=box)
    again = graph_cache.road_graph(conn)
    assert again is graph  # a closure is not a road edit
    mask, applied = service.request_mask(conn, graph)
    assert applied and mask is not None
    closed = set(int(graph.edge_ids[e]) for e in np.flatnonzero(mask.blocked))
    assert closed == {int(r[0]) for r in conn.execute(sa.text(
        "SELECT id FROM emergency_roads WHERE ST_Intersects(geom, ST_GeomFromText(:w, 4548))"), {"w": box.wkt})}
    rng = np.random.default_rng(3)
    xy = _random_points(graph, rng, 30)
    pts = graph.attach(xy, mask)
    assert not mask.blocked[pts.edge].any()  # points on closed roads attach to the nearest open one
    names = {k: (int(graph.edge_ids[pts.edge[k]]), float(pts.fraction[k])) for k in range(len(pts))}
    oracle = _oracle(rows, names, closed=closed).reverse(copy=False)
    _, travel = routing.nearest_by_eta(graph, pts.take([0]), pts.take(np.arange(1, 30)), np.zeros(29), 29, mask=mask)
    expected = nx.single_source_dijkstra_path_length(oracle, 0)
    assert np.allclose(travel, [expected.get(k, np.inf) for k in range(1, 30)], atol=1e-6)
    _, open_travel = routing.nearest_by_eta(graph, pts.take([0]), pts.take(np.arange(1, 30)), np.zeros(29), 29)
    assert (travel >= open_travel - 1e-9).all() and (travel > open_travel + 1e-6).any()


def test_pgrouting_agrees_on_vertex_pairs(road, demo_city) -> None:
    graph, _ = road
    rng = np.random.default_rng(4)
    starts = rng.choice(graph.n_vertices, 10, replace=False)
    ends = rng.choice(graph.n_vertices, 10, replace=False)
    with demo_city.connect() as conn:
        rows = conn.execute(sa.text(
            "SELECT start_vid, end_vid, agg_cost FROM pgr_dijkstraCost('SELECT id, source, target, cost, "
            "reverse_cost FROM emergency_roads', :s, :e, directed => true)"),
            {"s": [int(graph.vertex_ids[s]) for s in starts], "e": [int(graph.vertex_ids[e]) for e in ends]}).all()
    theirs = {(int(a), int(b)): float(c) for a, b, c in rows}
    checked = 0
    for s in starts:
        dist, _, _ = graph.search([(np.array([s]), np.array([0.0]))], reverse=False)
        for e in ends:
            key = (int(graph.vertex_ids[s]), int(graph.vertex_ids[e]))
            if s == e:
                continue
            assert dist[0][e] == pytest.approx(theirs.get(key, np.inf), abs=1e-6)
            checked += 1
    assert checked >= 90


def test_isochrones_contain_reached_vertices_and_nothing_far_beyond(road, demo_city) -> None:
    graph, rows = road
    settings = get_settings().emergency
    rng = np.random.default_rng(5)
    undirected = nx.Graph()
    undirected.add_edges_from(zip(graph.u.tolist(), graph.v.tolist(), strict=True))
    vertices = shapely.points(graph.vertex_xy)
    for xy in _random_points(graph, rng, 3):
        here = graph.attach(xy[None, :])
        oracle = _oracle(rows, {"p": (int(graph.edge_ids[here.edge[0]]), float(here.fraction[0]))})
        times = nx.single_source_dijkstra_path_length(oracle, "p")
        d = np.array([times.get(("v", int(v)), np.inf) for v in graph.vertex_ids])
        cutoffs = [60.0, 120.0, 180.0]
        reach = routing.reach(graph, here, cutoffs, cell_m=settings.isochrone_cell_m,
                              buffer_m=settings.isochrone_buffer_m, hole_max_m2=settings.isochrone_hole_max_m2)
        assert np.allclose(np.where(d <= 180, reach.vertex_s, 0), np.where(d <= 180, d, 0))
        for cutoff, polygon in zip(cutoffs, reach.polygons, strict=True):
            inside = shapely.covers(polygon, vertices)
            assert inside[d <= cutoff].all()
            far = [w for w in np.flatnonzero(inside & (d > cutoff)) if not any(d[n] <= cutoff for n in undirected[w])]
            assert far == [], (cutoff, far)
        # partly reached edges are in: the polygon is larger than the fully-reached network's buffer
        full = [e for e in range(graph.n_edges) if max(d[graph.u[e]], d[graph.v[e]]) <= cutoffs[0]]
        if full:
            fully = shapely.union_all(shapely.buffer(graph.geom[full], settings.isochrone_buffer_m))
            assert reach.polygons[0].area > fully.area


def test_coverage_equals_a_direct_computation(demo_city) -> None:
    settings = get_settings()
    with demo_city.connect() as conn:  # the demo load added hospitals and the population grid
        graph = graph_cache.road_graph(conn)
        rows = _export(conn)
        result = service.fire_coverage(conn, caller=SYSTEM, settings=settings, live=False)
        stations = service._fire_stations(conn, live=False)
        cells = conn.execute(sa.text("SELECT ST_AsBinary(geom), population FROM emergency_population_cells")).all()
    assert stations and cells
    turnout = settings.emergency.turnout_seconds["消防救援"]
    located = graph.attach(np.array([[s["x"], s["y"]] for s in stations]))
    oracle = _oracle(rows, {("s", k): (int(graph.edge_ids[located.edge[k]]), float(located.fraction[k]))
                            for k in range(len(stations))})
    oracle.add_node("super")
    for k in range(len(stations)):
        oracle.add_edge("super", ("s", k), weight=turnout)
    times = nx.single_source_dijkstra_path_length(oracle, "super")
    d = np.array([times.get(("v", int(v)), np.inf) for v in graph.vertex_ids])
    cutoff = settings.emergency.coverage_minutes * 60
    reach = routing.reach(graph, located, [cutoff], offsets_s=np.full(len(stations), turnout),
                          cell_m=settings.emergency.isochrone_cell_m, buffer_m=settings.emergency.isochrone_buffer_m,
                          hole_max_m2=settings.emergency.isochrone_hole_max_m2)
    reached = d <= cutoff
    assert np.array_equal(reach.vertex_s <= cutoff, reached)
    covered = shapely.geometry.shape(result["covered"])
    # the direct figures: the study area is the grid; uncovered = grid minus the covered polygon
    geoms = shapely.from_wkb([bytes(c[0]) for c in cells])
    people = np.array([c[1] for c in cells])
    study = shapely.union_all(geoms)
    gaps = study.difference(reach.polygons[0])
    assert result["uncovered_area_km2"] == pytest.approx(gaps.area / 1e6, abs=1e-4)
    share = shapely.area(shapely.intersection(geoms, gaps)) / shapely.area(geoms)
    assert result["population_uncovered"] == pytest.approx(float((people * share).sum()), abs=1)
    assert result["population"] == pytest.approx(float(people.sum()), abs=1)
    assert covered.area > 0
