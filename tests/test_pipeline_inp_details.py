"""INP import details: lengths from the INP on a schematic drawing (and which were used), pipe counts
without the valve stubs, the valve layer over HTTP, the warning and topology item for a network
without isolation valves, placing a schematic drawing by anchor and scale or by a box, material tags
checked against the code list (and OGC writes too), and graph caches invalidated per network."""

from __future__ import annotations

import io

import numpy as np
import pytest
import shapely
from fastapi.testclient import TestClient
from pyproj import Geod
from sqlalchemy import text
from test_pipeline_inp import E0, N0, SMALL
from test_pipeline_isolation_api import build_network, pipeline_cleanup  # noqa: F401  (drops this module's networks)

from gis.access import SYSTEM
from gis.crs import transformer
from gis.errors import ImportRejected, InvalidParameter
from gis.keys import create_key
from gis.settings import get_settings
from layers.pipeline import codes, service
from layers.pipeline.inp import Placement

# the same network drawn to scale: each pipe's INP length is its drawn length (P3 has a bend)
DRAWN = (SMALL.replace(" P1  R1  J1  1000  300", " P1  R1  J1  100  300")
         .replace(" P2  J2  J3  500   200", " P2  J2  J3  100   200")
         .replace(" P3  J3  T1  400   150", f" P3  J3  T1  {2 * (50 ** 2 + 50 ** 2) ** 0.5:.4f}   150"))


def imported(engine, text_: str, name: str, **kwargs):
    with engine.begin() as conn:
        return service.import_inp(conn, text_, name=name, caller=SYSTEM, settings=get_settings(),
                                  **{"crs": "EPSG:4548", **kwargs})


def test_schematic_lengths_come_from_the_inp_and_the_answer_says_so(engine):
    schematic = imported(engine, SMALL, "len-schematic", valve_layer=[("P2", "J2")])
    drawn = imported(engine, DRAWN, "len-drawn", valve_layer=[("P2", "J2")])
    assert schematic.length_source == "recorded" and drawn.length_source == "drawn"
    assert any("differ by more than 10%" in w and "P1 drawn 100.0 m, INP 1000.0 m" in w for w in schematic.warnings)
    assert not any("differ" in w for w in drawn.warnings)
    assert "lengths used: INP (recorded) — the drawing is schematic" in schematic.warnings
    forced = imported(engine, SMALL, "len-forced-drawn", lengths="drawn")
    assert forced.length_source == "drawn"
    with engine.begin() as conn:
        iso = service.isolate_burst(conn, schematic.network_id, caller=SYSTEM, settings=get_settings(),
                                    pipe_id=schematic.pipe_ids["P1"], store=False)
        stub = conn.execute(text("SELECT recorded_length_m, length_m FROM pipeline_pipes WHERE code = 'P2~J2' "
                                 "AND network_id = :n"), {"n": schematic.network_id}).one()
    # the segment: P1 (1000 m in the INP), the PRV's two halves (no INP length: drawn, 50 m each) and
    # the 1 m stub of P2, which carries its share of P2's 500 m: 500 × 1/100
    assert iso["segment"]["length_source"] == "recorded"
    assert stub.recorded_length_m == pytest.approx(500 * stub.length_m / 100, abs=1e-6)
    assert iso["segment"]["length_m"] == pytest.approx(1000 + 50 + 50 + stub.recorded_length_m, abs=0.01)
    # pipe_count: P1 and the PRV link (two halves, one link); the stub of P2 is not a pipe of its own
    assert iso["segment"]["pipe_count"] == 2 and len(iso["segment"]["pipe_ids"]) == 4
    radius = {"P1": 0.15, "P2": 0.1}
    assert iso["segment"]["volume_m3"] == pytest.approx(np.pi * (radius["P1"] ** 2 * 1000
                                                                 + radius["P2"] ** 2 * stub.recorded_length_m), abs=1e-3)
    with pytest.raises(InvalidParameter, match="lengths"):
        imported(engine, SMALL, "len-bad", lengths="guess")


def test_a_network_without_isolation_valves_says_so(engine):
    result = imported(engine, SMALL, "no-valves")
    assert any("no isolation valves" in w for w in result.warnings)
    with engine.begin() as conn:
        iso = service.isolate_burst(conn, result.network_id, caller=SYSTEM, settings=get_settings(),
                                    pipe_id=result.pipe_ids["P1"], store=False)
        report = service.topology_report(conn, result.network_id, caller=SYSTEM, settings=get_settings())
    assert any("no isolation valves" in w for w in iso["warnings"])
    assert len(iso["segment"]["pipe_ids"]) == len(result.pipe_ids)  # the whole network
    assert report["ok"] is False and report["counts"]["no_isolation_valves"] == 1
    with engine.begin() as conn:
        valved = imported(engine, SMALL, "with-valves", valve_layer=[("P2", "J2")])
        assert service.topology_report(conn, valved.network_id, caller=SYSTEM,
                                       settings=get_settings())["counts"]["no_isolation_valves"] == 0


def test_placing_a_schematic_drawing_by_anchor_or_box(engine):
    # coordinates in made-up drawing units around (0, 0): an anchor and a scale put the centre there
    local = SMALL.split("[COORDINATES]")[0] + "[COORDINATES]\n" + "".join(
        f" {code}  {x}  {y}\n" for code, (x, y) in
        {"R1": (0, 0), "J1": (1, 0), "J2": (2, 0), "J3": (3, 0), "T1": (3, 1)}.items()) + "[VERTICES]\n P3  3.5  0.5\n[END]\n"
    lon, lat = 118.45, 24.75
    anchored = imported(engine, local, "placed-anchor", crs=None, placement=Placement(anchor=(lon, lat), scale=100.0))
    assert anchored.length_source == "recorded" and "+proj=tmerc" in anchored.crs
    with engine.connect() as conn:
        xy = dict(conn.execute(text("SELECT code, ST_AsBinary(geom) FROM pipeline_nodes WHERE network_id = :n"),
                               {"n": anchored.network_id}).all())
    to_lonlat = transformer(get_settings().spatial.storage_crs, "EPSG:4326")
    r1 = to_lonlat.transform(*shapely.from_wkb(bytes(xy["R1"])).coords[0])
    j3 = to_lonlat.transform(*shapely.from_wkb(bytes(xy["J3"])).coords[0])
    centre = ((r1[0] + j3[0]) / 2, (r1[1] + j3[1]) / 2)  # R1–J3 spans the drawing's x range, y 0–1
    assert Geod(ellps="GRS80").inv(*r1, *j3)[2] == pytest.approx(300, rel=1e-3)  # 3 units × 100 m
    assert centre[0] == pytest.approx(lon, abs=1e-5)
    box = (118.44, 24.74, 118.46, 24.745)
    fitted = imported(engine, local, "placed-box", crs=None, placement=Placement(fit_bbox=box))
    with engine.connect() as conn:
        nodes = [shapely.from_wkb(bytes(w)) for (w,) in conn.execute(text(
            "SELECT ST_AsBinary(ST_Transform(geom, 4326)) FROM pipeline_nodes WHERE network_id = :n"),
            {"n": fitted.network_id}).all()]
    xs, ys = [p.x for p in nodes], [p.y for p in nodes]
    assert min(xs) >= box[0] - 1e-6 and max(xs) <= box[2] + 1e-6
    assert min(ys) >= box[1] - 1e-6 and max(ys) <= box[3] + 1e-6
    assert max(xs) - min(xs) == pytest.approx(box[2] - box[0], rel=0.02) or \
        max(ys) - min(ys) == pytest.approx(box[3] - box[1], rel=0.02)  # fills the box one way
    with pytest.raises(InvalidParameter, match="not both"):
        imported(engine, local, "placed-both", placement=Placement(anchor=(lon, lat), scale=1.0))
    with pytest.raises(InvalidParameter, match="scale"):
        imported(engine, local, "placed-noscale", crs=None, placement=Placement(anchor=(lon, lat)))


def test_material_tags_are_checked_against_the_code_list(engine, client):
    tagged = SMALL.replace("[END]", "[TAGS]\n LINK P1 球墨铸铁\n LINK P2 PE\n[END]")
    result = imported(engine, tagged, "tags-ok")
    with engine.connect() as conn:
        materials = dict(conn.execute(text("SELECT code, material FROM pipeline_pipes WHERE network_id = :n"),
                                      {"n": result.network_id}).all())
    assert materials["P1"] == "球墨铸铁" and materials["P2"] == "PE" and materials["P3"] is None
    with pytest.raises(ImportRejected) as refused:
        imported(engine, tagged.replace("LINK P1 球墨铸铁", "LINK P1 球墨铸铁管"), "tags-bad")
    reason = refused.value.extra["errors"][0]["reason"]
    assert "球墨铸铁管" in reason and "did you mean '球墨铸铁'" in reason and "known materials: " + ", ".join(
        codes.materials()) in reason
    with engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM pipeline_networks WHERE name = 'tags-bad'")).scalar() == 0
    # the generic write path runs the same check (the pipes layer's validators)
    with engine.begin() as conn:
        key = create_key(conn, department="自来水公司", read=["pipeline"], write=["pipeline"]).secret
    line = {"type": "LineString", "coordinates": [list(transformer("EPSG:4548", "OGC:CRS84").transform(E0, N0 - 50)),
                                                  list(transformer("EPSG:4548", "OGC:CRS84").transform(E0 + 50, N0 - 50))]}
    body = {"type": "Feature", "geometry": line,
            "properties": {"network_id": result.network_id, "code": "OGC-1", "material": "钢管"}}
    refused_write = client.post("/collections/pipeline_pipes/items", json=body, headers={"X-API-Key": key})
    assert refused_write.status_code == 400 and "known materials" in refused_write.json()["detail"]
    body["properties"]["material"] = "钢"
    body["properties"]["pressure_class"] = "中压C"
    assert client.post("/collections/pipeline_pipes/items", json=body,
                       headers={"X-API-Key": key}).status_code == 400
    body["properties"]["pressure_class"] = "中压A"
    accepted = client.post("/collections/pipeline_pipes/items", json=body, headers={"X-API-Key": key})
    assert accepted.status_code == 201, accepted.text


def test_valve_layer_over_http(engine):
    with engine.begin() as conn:
        key = {"X-API-Key": create_key(conn, department="自来水公司", read=["pipeline"], write=["pipeline"]).secret}
    from api.app import create_app

    with TestClient(create_app(get_settings())) as client:
        plain = client.post("/pipeline/networks/import-inp",
                            params={"name": "http-valves-q", "crs": "EPSG:4548", "valves": "P2:J2,P1:J1"},
                            content=SMALL.encode(), headers={**key, "Content-Type": "text/plain"})
        assert plain.status_code == 200, plain.text
        assert plain.json()["isolation_valves"] == 2 and plain.json()["length_source"] == "recorded"
        files = {"inp": ("small.inp", io.BytesIO(SMALL.encode()), "text/plain"),
                 "valves": ("valves.csv", io.BytesIO(b"link,node\nP2,J2\nP3,T1\nP1,R1\n"), "text/csv")}
        multipart = client.post("/pipeline/networks/import-inp", params={"name": "http-valves-f", "crs": "EPSG:4548"},
                                files=files, headers=key)
        assert multipart.status_code == 200, multipart.text
        assert multipart.json()["isolation_valves"] == 3
        with engine.connect() as conn:
            codes_ = set(conn.execute(text("SELECT code FROM pipeline_nodes WHERE network_id = :n AND "
                                           "kind = 'isolation_valve'"), {"n": multipart.json()["network_id"]}).scalars())
        assert codes_ == {"V:P2@J2", "V:P3@T1", "V:P1@R1"}
        # a parameter the endpoint does not know is refused, not ignored
        unknown = client.post("/pipeline/networks/import-inp", params={"name": "x", "crs": "EPSG:4548", "valve": "P2:J2"},
                              content=SMALL.encode(), headers=key)
        assert unknown.status_code == 400 and "valve" in unknown.json()["detail"]
        bad = client.post("/pipeline/networks/import-inp", params={"name": "y", "crs": "EPSG:4548"},
                          files={"inp": ("a.inp", io.BytesIO(SMALL.encode())), "valves": ("v.csv", io.BytesIO(b"a,b\n1,2\n"))},
                          headers=key)
        assert bad.status_code == 400 and "link,node" in bad.json()["detail"]
        placed = client.post("/pipeline/networks/import-inp",
                             params={"name": "http-placed", "fit_bbox": "118.44,24.74,118.46,24.745"},
                             content=SMALL.encode(), headers=key)
        assert placed.status_code == 200 and "+proj=tmerc" in placed.json()["crs"]


def test_graph_caches_are_per_network(engine):
    from gis.writes import update_feature
    from layers.pipeline.layers import NODES

    with engine.begin() as conn:
        a = build_network(conn, "cache A")
        b = build_network(conn, "cache B")
    with engine.connect() as conn:
        graph_a, graph_b = service.network_graph(conn, a["network"]), service.network_graph(conn, b["network"])
    with engine.begin() as conn:
        update_feature(conn, NODES, SYSTEM, a["V1"], {"valve_state": "inoperable"}, None, expected_version=1)
    with engine.connect() as conn:
        assert service.network_graph(conn, b["network"]) is graph_b  # B untouched: its graph is kept
        assert service.network_graph(conn, a["network"]) is not graph_a  # A edited: rebuilt
    with engine.begin() as conn:  # a customer of B added through SQL: the trigger bumps B only
        before = conn.execute(text("SELECT graph_version FROM pipeline_networks WHERE id = :n"),
                              {"n": b["network"]}).scalar()
        conn.execute(text("INSERT INTO pipeline_customers (network_id, account_no, name, node_id, geom) SELECT "
                          ":n, 'NEW', 'x', id, geom FROM pipeline_nodes WHERE id = :j"), {"n": b["network"], "j": b["J1"]})
        after = conn.execute(text("SELECT graph_version FROM pipeline_networks WHERE id = :n"),
                             {"n": b["network"]}).scalar()
    assert after > before
    with engine.connect() as conn:
        assert service.network_graph(conn, b["network"]) is not graph_b
