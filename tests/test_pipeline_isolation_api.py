"""Burst isolation through the service and over HTTP on a small hand-made network with known answers.

    S ─p1─ J1 ─p2─ V1 ─p3─ J2 ─p4─ V2 ─p5─ J3 ─p6─ J4(hospital)
                               │
                               p7── V3(closed) ─p8─ J5 (no supply before the burst)

A burst on p3 isolates {p3, p4, p7}: close V1 (S feeds its far side); V2 need not be closed (nothing
feeds J3/J4 once V1 is shut) and J3/J4 lose supply (collateral); V3 is already closed. The water that
drains out at the burst is that of p3, p4, p7 and of p5, p6 behind the open V2 (not of p8 behind V3).
"""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient
from shapely.geometry import LineString, Point
from sqlalchemy import text

from gis.access import SYSTEM, Caller
from gis.crs import transformer
from gis.keys import create_key
from gis.settings import get_settings
from layers.pipeline import repository, service


@pytest.fixture(scope="module", autouse=True)
def pipeline_cleanup(engine):
    """Drop the networks a test module built (cascading to its nodes, pipes, customers, isolations and
    orders), so other modules' tests see the demo city alone. Imported by every pipeline test module."""
    with engine.connect() as conn:
        start = conn.execute(text("SELECT coalesce(max(id), 0) FROM pipeline_networks")).scalar()
    yield
    with engine.begin() as conn:
        conn.execute(text("DELETE FROM pipeline_networks WHERE id > :start AND name NOT LIKE '%演示%'"),
                     {"start": start})


X0, Y0 = transformer("EPSG:4326", get_settings().spatial.storage_crs).transform(118.40, 24.78)


def build_network(conn, name: str) -> dict[str, int]:
    nid = repository.create_network(conn, utility="water", name=name)
    coords = {"S": 0, "J1": 100, "V1": 200, "J2": 300, "V2": 400, "J3": 500, "J4": 600}
    rows = [{"code": c, "kind": "junction", "geom": Point(X0 + x, Y0)} for c, x in coords.items()]
    for row in rows:
        if row["code"] == "S":
            row["kind"] = "source"
        if row["code"].startswith("V"):
            row.update(kind="isolation_valve", valve_state="open", diameter_mm=300, access_note="人行道井内")
    rows += [{"code": "V3", "kind": "isolation_valve", "valve_state": "closed", "geom": Point(X0 + 300, Y0 - 100)},
             {"code": "J5", "kind": "junction", "geom": Point(X0 + 300, Y0 - 200)}]
    ids = repository.insert_nodes(conn, nid, rows)
    pos = {r["code"]: r["geom"] for r in rows}
    edges = [("p1", "S", "J1"), ("p2", "J1", "V1"), ("p3", "V1", "J2"), ("p4", "J2", "V2"), ("p5", "V2", "J3"),
             ("p6", "J3", "J4"), ("p7", "J2", "V3"), ("p8", "V3", "J5")]
    pipe_ids = repository.insert_pipes(conn, nid, [
        {"code": c, "from": a, "to": b, "geom": LineString([pos[a], pos[b]]), "diameter_mm": 200,
         "material": "球墨铸铁", "install_year": 1995} for c, a, b in edges], ids)
    customers = [("C-J2", "J2", "residential", "张三丰", "13812345678"), ("C-J4", "J4", "hospital", "市第一医院", "05921234567"),
                 ("C-J3", "J3", "school", "实验小学", None), ("C-J5", "J5", "residential", "李四", None),
                 ("C-J1", "J1", "commercial", "商店", None)]
    repository.insert_customers(conn, nid, [
        {"account_no": a, "node": n, "category": c, "name": nm, "contact_name": nm, "contact_phone": ph,
         "geom": pos[n]} for a, n, c, nm, ph in customers], ids)
    return {"network": nid, **ids, **pipe_ids}


@pytest.fixture(scope="module")
def net(engine):
    with engine.begin() as conn:
        return build_network(conn, "hand-made T")


@pytest.fixture(scope="module")
def api(engine):
    from api.app import create_app

    # computing an isolation stores it: both keys write the pipeline family's isolations store
    with engine.begin() as conn:
        dispatcher = create_key(conn, department="自来水公司", read=["pipeline"], write=["pipeline"]).secret
        personal = create_key(conn, department="客服中心", read=["pipeline", "pipeline_customers"],
                              write=["pipeline"], personal_data=True).secret
    with TestClient(create_app(get_settings())) as client:
        yield client, dispatcher, personal


def test_isolation_known_answer(engine, net):
    with engine.begin() as conn:
        result = service.isolate_burst(conn, net["network"], caller=SYSTEM, settings=get_settings(), pipe_id=net["p3"])
    assert [v["code"] for v in result["valves_to_close"]] == ["V1"]
    assert [v["code"] for v in result["valves_not_needed"]] == ["V2"]
    assert [v["code"] for v in result["valves_already_closed"]] == ["V3"]
    assert sorted(result["segment"]["pipe_ids"]) == sorted([net["p3"], net["p4"], net["p7"]])
    assert result["segment"]["length_m"] == pytest.approx(300.0, abs=0.01)
    assert result["segment"]["volume_m3"] == pytest.approx(3.14159265 * 0.1 ** 2 * (300 + 200), abs=0.001)
    assert result["segment"]["drained_pipe_count"] == 5 and result["segment"]["pipe_count"] == 3
    customers = result["customers"]
    assert customers["inside_segment"] == 1 and customers["collateral"] == 2
    assert [c["account_no"] for c in customers["list"]] == ["C-J4", "C-J3", "C-J2"]  # hospital, school first
    assert customers["critical"] == 2
    assert result["customers_already_without_supply"] == 1
    assert result["valves_to_close"][0]["access_note"] == "人行道井内"
    assert result["valves_to_close"][0]["distance_m"] == pytest.approx(50.0, abs=0.01)
    # second ring prepared: if V1 fails, nothing else stops S (it joins the segment), J1 is lost too
    (ring,) = result["second_ring"]
    assert ring["valve"] == net["V1"] and ring["extra_customers"] == 1 and ring["fallback_valves"] == []
    assert result["segment"]["outline"]["type"] == "Polygon"


def test_failed_valve_is_a_new_audited_version(engine, net):
    with engine.begin() as conn:
        first = service.isolate_burst(conn, net["network"], caller=SYSTEM, settings=get_settings(), pipe_id=net["p3"])
        second = service.isolate_burst(conn, net["network"], caller=SYSTEM, settings=get_settings(), failed_valves=[net["V1"]],
                                       parent_id=first["id"])
        record = service.isolation_record(conn, second["id"], caller=SYSTEM)
        audits = conn.execute(text("SELECT count(*) FROM audit_log WHERE layer = 'pipeline_isolations' "
                                   "AND feature_id IN (:a, :b)"), {"a": str(first["id"]), "b": str(second["id"])}).scalar()
    assert second["parent_id"] == first["id"] and record["earlier_versions"][0]["id"] == first["id"]
    assert set(second["segment"]["pipe_ids"]) == {net[p] for p in ("p1", "p2", "p3", "p4", "p7")}
    assert [f["code"] for f in second["segment"]["feeders_inside"]] == ["S"]
    assert second["customers"]["total"] == 4
    assert audits == 2


def test_http_snap_point_masking_and_errors(api, net):
    client, dispatcher, personal = api
    lon, lat = transformer(get_settings().spatial.storage_crs, "EPSG:4326").transform(X0 + 250, Y0 + 3)
    body = {"network_id": net["network"], "lon": lon, "lat": lat}
    assert client.post("/pipeline/isolations", json=body).status_code == 401
    r = client.post("/pipeline/isolations", json=body, headers={"X-API-Key": dispatcher})
    assert r.status_code == 200, r.text
    data = r.json()
    assert data["burst"]["pipe_id"] == net["p3"] and data["burst"]["snap_distance_m"] == pytest.approx(3.0, abs=0.05)
    assert data["customers"]["list"] is None and data["customers"]["total"] == 3  # no customer-layer grant
    r = client.post("/pipeline/isolations", json={**body, "crs": "EPSG:4326"}, headers={"X-API-Key": personal})
    listing = {c["account_no"]: c for c in r.json()["customers"]["list"]}
    assert listing["C-J2"]["contact_phone"] == "13812345678"
    # an isolation belongs to the department that ran it: another department's key sees none
    elsewhere = client.post(f"/pipeline/isolations/{r.json()['id']}/failed-valves", json={"valves": [net["V1"]]},
                            headers={"X-API-Key": dispatcher})
    assert elsewhere.status_code == 404
    assert client.get(f"/pipeline/isolations/{r.json()['id']}", headers={"X-API-Key": dispatcher}).status_code == 404
    again = client.post(f"/pipeline/isolations/{r.json()['id']}/failed-valves", json={"valves": [net["V1"]]},
                        headers={"X-API-Key": personal})
    assert again.status_code == 200 and again.json()["parent_id"] == r.json()["id"]
    bad = client.post(f"/pipeline/isolations/{r.json()['id']}/failed-valves", json={"valves": [net["J1"]]},
                      headers={"X-API-Key": personal})
    assert bad.status_code == 400 and "isolation valve" in bad.json()["detail"]
    far = client.post("/pipeline/isolations", json={"network_id": net["network"], "lon": 10.0, "lat": 10.0},
                      headers={"X-API-Key": dispatcher})
    assert far.status_code == 400 and far.headers["content-type"].startswith("application/problem+json")
    assert client.get("/pipeline/isolations/999999", headers={"X-API-Key": dispatcher}).status_code == 404
    by_utility = client.post("/pipeline/isolations", json={"utility": "water", "lon": lon, "lat": lat},
                             headers={"X-API-Key": dispatcher})
    # other test modules build the same network at the same place: any of them may be nearest
    assert by_utility.status_code == 200 and by_utility.json()["burst"]["pipe_code"] == "p3"
    assert by_utility.json()["burst"]["snap_distance_m"] == pytest.approx(3.0, abs=0.05)
    nothing = client.post("/pipeline/isolations", json={"utility": "heat", "lon": lon, "lat": lat},
                          headers={"X-API-Key": dispatcher})
    assert nothing.status_code == 404
    assert client.post("/pipeline/isolations", json={"pipe_id": net["p3"]},
                       headers={"X-API-Key": dispatcher}).status_code == 400


def test_masked_contacts_without_personal_scope(engine, net):
    caller = Caller(name="t", department="客服", read=frozenset({"pipeline", "pipeline_customers"}), key_id=1)
    with engine.begin() as conn:
        result = service.isolate_burst(conn, net["network"], caller=caller, settings=get_settings(), pipe_id=net["p3"], store=False)
    listing = {c["account_no"]: c for c in result["customers"]["list"]}
    assert listing["C-J2"]["contact_phone"] == "138****5678" and listing["C-J2"]["contact_name"] == "张**"


def test_graph_cache_follows_edits(engine):
    """An edit through the write path bumps the layer version: the next isolation sees it."""
    from gis.writes import update_feature
    from layers.pipeline.layers import NODES

    with engine.begin() as conn:
        ids = build_network(conn, "cache T")
    with engine.connect() as conn:
        before = service.network_graph(conn, ids["network"])
        assert service.network_graph(conn, ids["network"]) is before  # warm: same object
    with engine.begin() as conn:
        update_feature(conn, NODES, SYSTEM, ids["V1"], {"valve_state": "inoperable"}, None, expected_version=1)
    with engine.begin() as conn:
        after = service.network_graph(conn, ids["network"])
        result = service.isolate_burst(conn, ids["network"], caller=SYSTEM, settings=get_settings(), pipe_id=ids["p3"], store=False)
    assert after is not before
    # V1 cannot be operated any more: the source S is inside the ring now
    assert [f["code"] for f in result["segment"]["feeders_inside"]] == ["S"]
    assert result["valves_to_close"] == []
