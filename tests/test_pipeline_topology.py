"""Topology validation on deliberately broken data, and connectivity queries."""

from __future__ import annotations

import pytest
from shapely.geometry import LineString, Point
from test_pipeline_isolation_api import pipeline_cleanup  # noqa: F401  (drops this module's networks)

from gis.access import SYSTEM
from gis.crs import transformer
from gis.settings import get_settings
from layers.pipeline import repository, service

X0, Y0 = transformer("EPSG:4326", get_settings().spatial.storage_crs).transform(118.42, 24.76)


@pytest.fixture(scope="module")
def broken(engine):
    """S─A─B─C─G chain plus: D, a junction on a dead-end pipe D–G whose end stops 0.3 m short of A–B
    (a near miss), a duplicate of A–B, pipe C–G whose line ends 2 m from G, a valve on no pipe, an
    island E–F without a source, customers without a node and with a node of another network."""
    with engine.begin() as conn:
        nid = repository.create_network(conn, utility="water", name="broken")
        other = repository.create_network(conn, utility="gas", name="other")
        pts = {"S": (0, 0), "A": (100, 0), "B": (200, 0), "C": (300, 0), "D": (150, 0.3), "E": (0, 500),
               "F": (100, 500), "V": (50, 50), "G": (300, 100)}
        rows = [{"code": c, "kind": "junction", "geom": Point(X0 + x, Y0 + y)} for c, (x, y) in pts.items()]
        rows[0]["kind"] = "source"
        rows[7].update(kind="isolation_valve", valve_state="open")
        ids = repository.insert_nodes(conn, nid, rows)
        far_ids = repository.insert_nodes(conn, other, [{"code": "X", "kind": "junction",
                                                          "geom": Point(X0 + 5, Y0 + 5)}])
        p = {c: Point(X0 + x, Y0 + y) for c, (x, y) in pts.items()}
        pipes = [("SA", "S", "A", [p["S"], p["A"]]), ("AB", "A", "B", [p["A"], p["B"]]),
                 ("AB-dup", "B", "A", [p["B"], p["A"]]), ("BC", "B", "C", [p["B"], p["C"]]),
                 ("DG", "D", "G", [p["D"], p["G"]]),
                 ("CG", "C", "G", [p["C"], Point(X0 + 302, Y0 + 100)]),
                 ("EF", "E", "F", [p["E"], p["F"]])]
        pids = repository.insert_pipes(conn, nid, [{"code": c, "from": a, "to": b, "geom": LineString(g)}
                                                   for c, a, b, g in pipes], ids)
        repository.insert_customers(conn, nid, [
            {"account_no": "ok", "name": "ok", "node": "B", "geom": p["B"]},
            {"account_no": "no-node", "name": "n", "geom": p["C"]},
        ], ids)
        repository.insert_customers(conn, nid, [{"account_no": "wrong-net", "name": "w", "node": "X",
                                                 "geom": p["A"]}], far_ids)
    return {"network": nid, **ids, **pids}


def test_report_finds_each_planted_problem(engine, broken):
    with engine.connect() as conn:
        report = service.topology_report(conn, broken["network"], caller=SYSTEM, settings=get_settings())
    probs = report["problems"]
    assert {d["pipe"] for d in probs["duplicate_pipe"]} == {"AB-dup"}
    assert [v["node"] for v in probs["valve_not_on_pipe"]] == ["V"]
    assert {c["account_no"] for c in probs["customer_not_linked"]} == {"no-node", "wrong-net"}
    assert [(u["pipe"], u["node_id"]) for u in probs["unsnapped_endpoint"]] == [("CG", broken["G"])]
    assert probs["unsnapped_endpoint"][0]["gap_m"] == pytest.approx(2.0, abs=1e-3)
    (dangling,) = probs["dangling_end"]
    assert dangling["node"] == "D" and dangling["near_pipe"] in (broken["AB"], broken["AB-dup"])
    assert dangling["gap_m"] == pytest.approx(0.3, abs=1e-3)
    assert sorted(c["sample_node"] for c in probs["component_without_feeder"]) in (["E", "V"], ["F", "V"])
    assert report["components"] == 3
    assert report["counts"]["zero_length"] == 0 and report["counts"]["missing_node"] == 0
    assert report["ok"] is False
    assert len(report["features"]["features"]) == sum(report["counts"].values())


def test_clean_network_reports_nothing(engine):
    from test_pipeline_isolation_api import build_network

    with engine.begin() as conn:
        ids = build_network(conn, "clean T")
        report = service.topology_report(conn, ids["network"], caller=SYSTEM, settings=get_settings())
    assert report["counts"]["duplicate_pipe"] == 0 and report["counts"]["unsnapped_endpoint"] == 0
    assert report["counts"]["valve_not_on_pipe"] == 0 and report["counts"]["customer_not_linked"] == 0
    assert report["components"] == 1


def test_connectivity_and_feeders(engine):
    from test_pipeline_isolation_api import build_network

    with engine.begin() as conn:
        ids = build_network(conn, "connectivity T")
        graph = service.load_graph(conn, ids["network"])
        result = service.connectivity(conn, ids["network"], ids["J1"], ids["J4"], caller=SYSTEM)
        cut = service.connectivity(conn, ids["network"], ids["J1"], ids["J5"], caller=SYSTEM)
    assert result["connected"] is True and result["feeders_of_b"] == [ids["S"]]
    assert cut["connected"] is False and cut["feeders_of_b"] == []  # V3 is closed
    assert graph.connected(graph.node_index[ids["S"]], graph.node_index[ids["J2"]])


def test_build_topology_snaps_ends_and_splits_at_tees(engine):
    """Pipes imported without nodes: A (0,0)–(100,0), B starting 2 cm further at (100.02,0)–(200,0),
    C from (50,80) down onto A's middle at (50,0), D from (80,40) onto A at (80,0)."""
    with engine.begin() as conn:
        nid = repository.create_network(conn, utility="water", name="build")
        lines = {"A": [(0, 0), (100, 0)], "B": [(100.02, 0), (200, 0)], "C": [(50, 80), (50, 0)],
                 "D": [(80, 40), (80, 0)]}
        repository.insert_pipes(conn, nid, [{"code": c, "from": None, "to": None,
                                             "geom": LineString([(X0 + x, Y0 + y) for x, y in pts])}
                                            for c, pts in lines.items()], {})
        summary = service.build_network_topology(conn, nid, caller=SYSTEM)
        report = service.topology_report(conn, nid, caller=SYSTEM, settings=get_settings())
        graph = service.load_graph(conn, nid)
    assert summary["nodes_created"] == 7  # (0,0) (100,0)≈(100.02,0) (200,0) (50,80) (50,0) (80,40) (80,0)
    assert summary["pipes_split"] == 2  # A at x=50 and again at x=80
    assert len(graph.pipe_ids) == 6 and report["components"] == 1
    assert report["counts"]["unsnapped_endpoint"] == 0 and report["counts"]["missing_node"] == 0
    assert sorted(round(x) for x in graph.pipe_length) == [20, 30, 40, 50, 80, 100]
