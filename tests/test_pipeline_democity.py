"""The pipeline module on the demo city's water and gas networks (H1's generator)."""

from __future__ import annotations

import networkx as nx
import numpy as np
from sqlalchemy import text

from gis.access import SYSTEM
from gis.settings import get_settings
from layers.pipeline import service
from layers.pipeline.isolation import isolate


def test_demo_networks_are_clean_and_isolations_match_networkx(demo_city):
    with demo_city.connect() as conn:
        networks = conn.execute(text("SELECT id, utility FROM pipeline_networks WHERE name LIKE '%演示%'")).all()
        assert {u for _, u in networks} >= {"water", "gas"}
        for nid, _utility in networks:
            report = service.topology_report(conn, nid, caller=SYSTEM, settings=get_settings())
            for kind in ("missing_node", "unsnapped_endpoint", "duplicate_pipe", "valve_not_on_pipe", "self_loop"):
                assert report["counts"][kind] == 0, (nid, kind, report["problems"][kind][:3])
            g = service.load_graph(conn, nid)
            pipes = conn.execute(text("SELECT id, from_node, to_node FROM pipeline_pipes WHERE network_id = :n "
                                      "AND status = 'in_service'"), {"n": nid}).all()
            node_rows = conn.execute(text("SELECT id, kind, valve_state FROM pipeline_nodes WHERE network_id = :n"),
                                     {"n": nid}).all()
            cust = conn.execute(text("SELECT id, node_id FROM pipeline_customers WHERE network_id = :n"),
                                {"n": nid}).all()
            feeders = {i for i, k, _ in node_rows if k in ("source", "tank")}
            closed0 = {i for i, _, s in node_rows if s == "closed"}

            def supplied(removed: set[int], closed: set[int], node_rows=node_rows, pipes=pipes,
                         feeders=feeders) -> set[int]:
                graph = nx.MultiGraph()
                graph.add_nodes_from(i for i, _, _ in node_rows if i not in closed)
                graph.add_edges_from((a, b) for p, a, b in pipes
                                     if p not in removed and a not in closed and b not in closed)
                reach: set[int] = set()
                for f in feeders - closed:
                    if f not in reach:
                        reach |= nx.node_connected_component(graph, f)
                return reach

            base = supplied(set(), closed0)
            for p in np.random.default_rng(nid).choice(len(g.pipe_ids), size=15, replace=False):
                iso = isolate(g, int(p))
                seg_nodes = {int(g.node_ids[i]) for i in iso.nodes}
                after = supplied({int(g.pipe_ids[i]) for i in iso.pipes},
                                 closed0 | {int(g.node_ids[v]) for v in iso.boundary}) - seg_nodes
                expected = {c for c, node in cust if (node in base and node not in after) or node in seg_nodes}
                ours = {int(g.customer_ids[c]) for c in np.concatenate([iso.customers_inside,
                                                                        iso.customers_collateral])}
                assert ours == expected
            result = service.isolate_burst(conn, nid, caller=SYSTEM, settings=get_settings(), pipe_id=int(g.pipe_ids[0]), store=False)
            assert result["segment"]["pipe_count"] >= 1 and result["valves_to_close"] is not None


def test_http_endpoints_on_the_demo_city(demo_city, client):
    from gis.keys import create_key

    with demo_city.begin() as conn:
        key = create_key(conn, department="市政公用事业局", read=["pipeline"], write=["pipeline"]).secret
        water = conn.execute(text("SELECT id FROM pipeline_networks WHERE utility = 'water' AND name LIKE "
                                  "'%演示%' ORDER BY id LIMIT 1")).scalar()
        run = conn.execute(text("SELECT p.id, q.id FROM pipeline_pipes p JOIN pipeline_pipes q ON "
                                "q.from_node = p.to_node AND q.network_id = p.network_id WHERE p.network_id = :n "
                                "AND p.burial_depth_m IS NOT NULL AND q.burial_depth_m IS NOT NULL LIMIT 1"),
                           {"n": water}).one()
    h = {"X-API-Key": key}
    nets = client.get("/pipeline/networks", headers=h).json()
    assert water in [n["id"] for n in nets]
    topo = client.get(f"/pipeline/networks/{water}/topology", headers=h).json()
    assert topo["features"]["type"] == "FeatureCollection" and topo["pipes"] > 100
    crit = client.get(f"/pipeline/networks/{water}/criticality", params={"top": 5}, headers=h).json()
    assert len(crit["top"]) == 5 and crit["top"][0]["customers_lost"] == crit["max_customers_lost"]
    maint = client.get(f"/pipeline/networks/{water}/maintenance", headers=h).json()
    assert 0 < maint["pipes"] <= topo["pipes"] and "warnings" in maint
    prof = client.get("/pipeline/profile", params={"pipes": f"{run[0]},{run[1]}"}, headers=h)
    assert prof.status_code == 200, prof.text
    assert prof.json()["samples"] and all(s["ground_m"] is not None for s in prof.json()["samples"])
    png = client.get("/pipeline/profile", params={"pipes": f"{run[0]},{run[1]}", "f": "png"}, headers=h)
    assert png.headers["content-type"] == "image/png" and png.content[:4] == b"\x89PNG"
    line = {"type": "LineString", "coordinates": [[118.10, 24.48], [118.101, 24.481]]}
    clear = client.post("/pipeline/clearance", json={"geometry": line, "utility": "gas", "diameter_mm": 100,
                                                     "depth_m": 1.0, "pressure_class": "medium"}, headers=h)
    assert clear.status_code == 200 and {"violations", "findings"} <= set(clear.json())
    bad = client.post("/pipeline/clearance", json={"geometry": line}, headers=h)
    assert bad.status_code == 400 and "utility" in bad.json()["detail"]
    area = {"type": "Polygon", "coordinates": [[[118.08, 24.46], [118.12, 24.46], [118.12, 24.50],
                                                [118.08, 24.50], [118.08, 24.46]]]}
    inside = client.post("/pipeline/pipes-in-area", json={"geometry": area}, headers=h)
    assert inside.status_code == 200 and all(p["length_inside_m"] > 0 for p in inside.json())
