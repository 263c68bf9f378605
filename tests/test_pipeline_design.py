"""Design workspaces (管网辅助设计): checkout → edit → paste back, conflicts, loose ends, audit, abandon."""

from __future__ import annotations

import numpy as np
import pyogrio
import pytest
import shapely
import sqlalchemy as sa
from fastapi.testclient import TestClient
from shapely.geometry import LineString, Point, box
from test_pipeline_isolation_api import pipeline_cleanup  # noqa: F401  (drops this module's networks)

from gis.access import SYSTEM
from gis.crs import transformer
from gis.keys import create_key
from gis.settings import get_settings
from gis.writes import update_feature
from layers.pipeline import repository
from layers.pipeline.layers import PIPES

STORAGE = get_settings().spatial.storage_crs
X0, Y0 = transformer("EPSG:4326", STORAGE).transform(118.35, 24.60)
TO_LONLAT = transformer(STORAGE, "OGC:CRS84")
AREA = box(X0 + 80, Y0 - 10, X0 + 120, Y0 + 10)  # around node B, over the middle of AB and BC


def lonlat(geom) -> dict:
    moved = shapely.transform(geom, lambda xy: np.column_stack(TO_LONLAT.transform(xy[:, 0], xy[:, 1])))
    return shapely.geometry.mapping(moved)


def build(engine, name: str) -> dict[str, int]:
    """S(source)–A–B–C–D(end) along y = Y0, 50 m apart: four pipes SA, AB, BC, CD."""
    with engine.begin() as conn:
        nid = repository.create_network(conn, utility="water", name=name)
        xs = {"S": 0, "A": 50, "B": 100, "C": 150, "D": 200}
        kinds = {"S": "source", "D": "end"}
        nodes = repository.insert_nodes(conn, nid, [{"code": c, "kind": kinds.get(c, "junction"),
                                                     "geom": Point(X0 + x, Y0)} for c, x in xs.items()])
        names = list(xs)
        pipes = repository.insert_pipes(conn, nid, [
            {"code": a + b, "from": a, "to": b, "geom": LineString([(X0 + xs[a], Y0), (X0 + xs[b], Y0)]),
             "diameter_mm": 200, "burial_depth_m": 1.0} for a, b in zip(names, names[1:], strict=False)], nodes)
    return {"network": nid, **{f"node:{k}": v for k, v in nodes.items()}, **pipes}


def network_state(engine, nid: int) -> dict:
    with engine.connect() as conn:
        pipes = conn.execute(sa.text("SELECT id, version, from_node, to_node, diameter_mm, ST_AsText(geom) "
                                     "FROM pipeline_pipes WHERE network_id = :n ORDER BY id"), {"n": nid}).all()
        nodes = conn.execute(sa.text("SELECT id, version, kind, ST_AsText(geom) FROM pipeline_nodes "
                                     "WHERE network_id = :n ORDER BY id"), {"n": nid}).all()
    return {"pipes": [tuple(r) for r in pipes], "nodes": [tuple(r) for r in nodes]}


def audit_rows(engine, since: int) -> list[dict]:
    with engine.connect() as conn:
        return [dict(r) for r in conn.execute(sa.text(
            "SELECT layer, feature_id, action, before, after FROM audit_log WHERE id > :s AND layer IN "
            "('pipeline_pipes', 'pipeline_nodes') ORDER BY id"), {"s": since}).mappings()]


def last_audit(engine) -> int:
    with engine.connect() as conn:
        return conn.execute(sa.text("SELECT coalesce(max(id), 0) FROM audit_log")).scalar()


@pytest.fixture(scope="module")
def api(engine):
    from api.app import create_app

    with engine.begin() as conn:
        designer = create_key(conn, department="自来水公司", read=["pipeline"], write=["pipeline"]).secret
        reader = create_key(conn, department="规划局", read=["pipeline"]).secret
    with TestClient(create_app(get_settings())) as client:
        yield client, {"X-API-Key": designer}, {"X-API-Key": reader}


def checkout(client, headers, nid: int, name: str, area=AREA, margin: float = 0.0) -> dict:
    r = client.post("/pipeline/design/workspaces", json={"network_id": nid, "name": name, "geometry": lonlat(area),
                                                        "margin_m": margin}, headers=headers)
    assert r.status_code == 201, r.text
    return r.json()


def features_by_code(client, headers, ws: int) -> dict[str, dict]:
    r = client.get(f"/pipeline/design/workspaces/{ws}", headers=headers)
    assert r.status_code == 200, r.text
    return {f["properties"]["code"]: f for f in r.json()["features"]["features"]}


def test_checkout_edit_paste_back(engine, api, tmp_path):
    client, designer, reader = api
    net = build(engine, "design-e2e")
    nid = net["network"]
    with engine.connect() as conn:
        lines = {r.code: shapely.from_wkt(r.wkt) for r in conn.execute(sa.text(
            "SELECT code, ST_AsText(geom) AS wkt FROM pipeline_pipes WHERE network_id = :n"), {"n": nid})}
        sql_pipes = conn.execute(sa.text(
            "SELECT count(*) FROM pipeline_pipes WHERE network_id = :n AND ST_Intersects(geom, ST_GeomFromText(:a, 4548))"),
            {"n": nid, "a": AREA.wkt}).scalar()
    # the oracle: shapely picks the pipes crossing the area, their end nodes and the nodes inside it
    crossing = {code for code, line in lines.items() if line.intersects(AREA)}
    assert crossing == {"AB", "BC"} and sql_pipes == 2
    end_codes = {c for code in crossing for c in code}
    ws = checkout(client, designer, nid, "设计一")
    assert ws["pipes"] == len(crossing) and ws["nodes"] == len(end_codes) == 3 and ws["boundary_nodes"] == 2
    # a read-only key may look but not design
    assert client.post("/pipeline/design/workspaces", json={"network_id": nid, "name": "x", "geometry": lonlat(AREA)},
                       headers=reader).status_code == 403
    gpkg = tmp_path / "ws.gpkg"
    r = client.get(f"/pipeline/design/workspaces/{ws['id']}/download.gpkg", headers=designer)
    assert r.status_code == 200
    gpkg.write_bytes(r.content)
    assert pyogrio.read_info(gpkg, layer="design_pipes")["features"] == 2
    assert pyogrio.read_info(gpkg, layer="design_nodes")["features"] == 3

    feats = features_by_code(client, designer, ws["id"])
    base = f"/pipeline/design/workspaces/{ws['id']}/features"
    # a branch off B to a new end node N, and on from N to the network's node D outside the workspace
    n_point = Point(X0 + 100, Y0 + 30)
    r = client.post(base, json={"kind": "node", "properties": {"code": "N", "kind": "end"}, "geometry": lonlat(n_point)},
                    headers=designer)
    assert r.status_code == 201, r.text
    for code, coords in (("BN", [(X0 + 100, Y0), n_point.coords[0]]), ("ND", [n_point.coords[0], (X0 + 200, Y0)])):
        r = client.post(base, json={"kind": "pipe", "properties": {"code": code, "diameter_mm": 150},
                                    "geometry": lonlat(LineString(coords))}, headers=designer)
        assert r.status_code == 201, r.text
    # the main BC upsized; a field the design may not set is refused
    bc = feats["BC"]
    r = client.patch(f"{base}/{bc['id']}", json={"properties": {"diameter_mm": 400}, "version": bc["properties"]["version"]},
                     headers=designer)
    assert r.status_code == 200 and r.json()["action"] == "update", r.text
    bad = client.patch(f"{base}/{bc['id']}", json={"properties": {"from_node": 1}}, headers=designer)
    assert bad.status_code == 400 and bad.headers["content-type"] == "application/problem+json"

    before = network_state(engine, nid)
    mark = last_audit(engine)
    r = client.post(f"/pipeline/design/workspaces/{ws['id']}/paste-back", headers=designer)
    assert r.status_code == 200, r.text
    result = r.json()
    assert (result["inserted"], result["updated"], result["deleted"]) == (3, 1, 0)
    assert [e["node_id"] for e in result["reconnected"]] == [net["node:D"]]
    after = network_state(engine, nid)
    assert len(after["pipes"]) == len(before["pipes"]) + 2 and len(after["nodes"]) == len(before["nodes"]) + 1
    with engine.connect() as conn:
        rows = {r.code: r for r in conn.execute(sa.text(
            "SELECT p.code, p.diameter_mm, p.from_node, p.to_node, p.version, a.code AS a, b.code AS b "
            "FROM pipeline_pipes p JOIN pipeline_nodes a ON a.id = p.from_node JOIN pipeline_nodes b ON b.id = p.to_node "
            "WHERE p.network_id = :n"), {"n": nid})}
    assert rows["BC"].diameter_mm == 400 and rows["BC"].version == 2
    assert (rows["BN"].a, rows["BN"].b) == ("B", "N") and (rows["ND"].a, rows["ND"].b) == ("N", "D")
    # one audit row per change, each with before/after as the write path records them
    audits = audit_rows(engine, mark)
    assert len(audits) == 4
    assert sorted(a["action"] for a in audits) == ["insert", "insert", "insert", "update"]
    update = next(a for a in audits if a["action"] == "update")
    assert update["before"]["diameter_mm"] == 200 and update["after"]["diameter_mm"] == 400
    assert all(a["after"] is not None for a in audits)
    # the topology check of the result sees no dangling end
    topo = client.get(f"/pipeline/networks/{nid}/topology", headers=designer).json()
    assert topo["counts"]["dangling_end"] == 0 and topo["counts"]["missing_node"] == 0 and topo["components"] == 1
    # a merged workspace takes no more edits
    again = client.post(f"/pipeline/design/workspaces/{ws['id']}/paste-back", headers=designer)
    assert again.status_code == 409 and again.headers["content-type"] == "application/problem+json"


def test_conflicting_edit_detected_nothing_merged_then_resolved(engine, api):
    client, designer, _ = api
    net = build(engine, "design-conflict")
    nid = net["network"]
    ws = checkout(client, designer, nid, "设计冲突")
    feats = features_by_code(client, designer, ws["id"])
    base = f"/pipeline/design/workspaces/{ws['id']}"
    for code, dia in (("AB", 250), ("BC", 300)):
        assert client.patch(f"{base}/features/{feats[code]['id']}", json={"properties": {"diameter_mm": dia}},
                            headers=designer).status_code == 200
    # someone else edits AB in the network after the checkout
    with engine.begin() as conn:
        update_feature(conn, PIPES, SYSTEM, net["AB"], {"diameter_mm": 225}, None, expected_version=1)
    before = network_state(engine, nid)
    mark = last_audit(engine)
    r = client.post(f"{base}/paste-back", headers=designer)
    assert r.status_code == 409 and r.headers["content-type"] == "application/problem+json"
    problem = r.json()
    assert [c["source_id"] for c in problem["conflicts"]] == [net["AB"]]
    c = problem["conflicts"][0]
    assert c["mine"]["properties"]["diameter_mm"] == 250 and c["theirs"]["properties"]["diameter_mm"] == 225
    assert c["theirs"]["version"] == 2 and c["base_version"] == 1
    # nothing merged: not even BC, which nobody else touched
    assert network_state(engine, nid) == before and audit_rows(engine, mark) == []
    assert client.post(f"{base}/resolve", json={"resolutions": {str(feats["AB"]["id"]): "mine"}},
                       headers=designer).status_code == 200
    r = client.post(f"{base}/paste-back", headers=designer)
    assert r.status_code == 200, r.text
    with engine.connect() as conn:
        dia = dict(conn.execute(sa.text("SELECT code, diameter_mm FROM pipeline_pipes WHERE network_id = :n"), {"n": nid}).all())
    assert dia["AB"] == 250 and dia["BC"] == 300


def test_theirs_keeps_the_network_version(engine, api):
    client, designer, _ = api
    net = build(engine, "design-theirs")
    ws = checkout(client, designer, net["network"], "设计他人")
    feats = features_by_code(client, designer, ws["id"])
    base = f"/pipeline/design/workspaces/{ws['id']}"
    client.patch(f"{base}/features/{feats['AB']['id']}", json={"properties": {"diameter_mm": 250}}, headers=designer)
    with engine.begin() as conn:
        update_feature(conn, PIPES, SYSTEM, net["AB"], {"diameter_mm": 225}, None, expected_version=1)
    client.post(f"{base}/resolve", json={"resolutions": {str(feats["AB"]["id"]): "theirs"}}, headers=designer)
    r = client.post(f"{base}/paste-back", headers=designer)
    assert r.status_code == 200 and r.json()["updated"] == 0, r.text
    with engine.connect() as conn:
        assert conn.execute(sa.text("SELECT diameter_mm FROM pipeline_pipes WHERE id = :i"), {"i": net["AB"]}).scalar() == 225


def test_loose_end_refused_and_network_untouched(engine, api):
    client, designer, _ = api
    net = build(engine, "design-loose")
    ws = checkout(client, designer, net["network"], "设计断头")
    base = f"/pipeline/design/workspaces/{ws['id']}"
    # a pipe from B that ends in the open, 60 m north: no node there, none in the network either
    client.post(f"{base}/features", json={"kind": "pipe", "properties": {"code": "BX"},
                                         "geometry": lonlat(LineString([(X0 + 100, Y0), (X0 + 100, Y0 + 60)]))},
                headers=designer)
    # and node A (outside the area, where AB joins SA) deleted: SA outside the workspace, and the copy AB the
    # design left as it was, would be left hanging
    feats = features_by_code(client, designer, ws["id"])
    assert client.delete(f"{base}/features/{feats['A']['id']}", headers=designer).json()["action"] == "delete"
    before = network_state(engine, net["network"])
    mark = last_audit(engine)
    r = client.post(f"{base}/paste-back", headers=designer)
    assert r.status_code == 409 and r.headers["content-type"] == "application/problem+json"
    body = r.json()
    assert [(e["pipe"], e["end"]) for e in body["loose_ends"]] == [("BX", "end")]
    assert {p["code"] for p in body["orphaned_pipes"]} == {"SA", "AB"}
    assert "meet no node" in body["detail"]
    assert network_state(engine, net["network"]) == before and audit_rows(engine, mark) == []


def test_abandon_leaves_the_network_untouched(engine, api):
    client, designer, _ = api
    net = build(engine, "design-abandon")
    before = network_state(engine, net["network"])
    ws = checkout(client, designer, net["network"], "设计放弃", margin=5.0)
    feats = features_by_code(client, designer, ws["id"])
    base = f"/pipeline/design/workspaces/{ws['id']}"
    client.delete(f"{base}/features/{feats['BC']['id']}", headers=designer)
    r = client.post(f"{base}/abandon", headers=designer)
    assert r.status_code == 200 and r.json()["status"] == "abandoned"
    assert network_state(engine, net["network"]) == before
    assert client.post(f"{base}/paste-back", headers=designer).status_code == 409
    assert client.get("/pipeline/design/workspaces/999999999", headers=designer).status_code == 404


def test_a_design_that_unsnaps_pipes_is_refused_by_the_topology_check(engine, api):
    client, designer, _ = api
    net = build(engine, "design-unsnap")
    ws = checkout(client, designer, net["network"], "设计移点")
    feats = features_by_code(client, designer, ws["id"])
    base = f"/pipeline/design/workspaces/{ws['id']}"
    # node B moved 5 m north while AB and BC (left as they were) still end where B was
    r = client.patch(f"{base}/features/{feats['B']['id']}", json={"geometry": lonlat(Point(X0 + 100, Y0 + 5))},
                     headers=designer)
    assert r.status_code == 200, r.text
    before = network_state(engine, net["network"])
    mark = last_audit(engine)
    r = client.post(f"{base}/paste-back", headers=designer)
    assert r.status_code == 409 and r.headers["content-type"] == "application/problem+json"
    body = r.json()
    assert "topology problems" in body["detail"] and len(body["topology"]["unsnapped_endpoint"]) == 2
    # the node's update was written and then rolled back with the refusal: the network is as it was
    assert network_state(engine, net["network"]) == before and audit_rows(engine, mark) == []
