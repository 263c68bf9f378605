"""EPANET INP import: CRS required, control valves, bend vertices, units, refusals; pipes_in_area."""

from __future__ import annotations

import pytest
import shapely
from fastapi.testclient import TestClient
from shapely.geometry import box
from sqlalchemy import text
from test_pipeline_isolation_api import pipeline_cleanup  # noqa: F401  (drops this module's networks)

from gis.access import SYSTEM, Caller
from gis.crs import transformer
from gis.errors import Forbidden, ImportRejected, InvalidParameter, Unauthorized
from gis.keys import create_key
from gis.settings import get_settings
from layers.pipeline import service

E0, N0 = transformer("EPSG:4326", "EPSG:4548").transform(118.42, 24.80)

SMALL = f"""[TITLE]
hand-made
[JUNCTIONS]
;ID  Elev  Demand
 J1  10    1.5
 J2  11    0
 J3  12    2.0
[RESERVOIRS]
 R1  50
[TANKS]
 T1  30  3 0 6 20 0
[PIPES]
 P1  R1  J1  1000  300  100  0  Open
 P2  J2  J3  500   200  100  0  Open
 P3  J3  T1  400   150  100  0  Open
[VALVES]
 PRV1  J1  J2  250  PRV  40  0
[OPTIONS]
 Units  LPS
[COORDINATES]
 R1  {E0:.3f}  {N0:.3f}
 J1  {E0 + 100:.3f}  {N0:.3f}
 J2  {E0 + 200:.3f}  {N0:.3f}
 J3  {E0 + 300:.3f}  {N0:.3f}
 T1  {E0 + 300:.3f}  {N0 + 100:.3f}
[VERTICES]
 P3  {E0 + 350:.3f}  {N0 + 50:.3f}
[END]
"""


def test_import_maps_every_element(engine):
    with engine.begin() as conn:
        result = service.import_inp(conn, SMALL, name="inp-small", crs="EPSG:4548", caller=SYSTEM, settings=get_settings(),
                                valve_layer=[("P2", "J2")], customers_from_demand=True)
        nodes = dict(conn.execute(text("SELECT code, kind FROM pipeline_nodes WHERE network_id = :n"),
                                  {"n": result.network_id}).all())
        prv = conn.execute(text("SELECT control_type, diameter_mm FROM pipeline_nodes WHERE code = 'PRV:PRV1' "
                                "AND network_id = :n"), {"n": result.network_id}).one()
        p3 = conn.execute(text("SELECT ST_NPoints(geom), length_m, diameter_mm FROM pipeline_pipes WHERE "
                               "code = 'P3' AND network_id = :n"), {"n": result.network_id}).one()
        stub = conn.execute(text("SELECT length_m FROM pipeline_pipes WHERE code = 'P2~J2' AND network_id = :n"),
                            {"n": result.network_id}).scalar()
        customers = conn.execute(text("SELECT account_no FROM pipeline_customers WHERE network_id = :n "
                                      "ORDER BY 1"), {"n": result.network_id}).scalars().all()
    assert nodes["R1"] == "source" and nodes["T1"] == "tank" and nodes["J1"] == "junction"
    assert nodes["PRV:PRV1"] == "control_valve" and nodes["V:P2@J2"] == "isolation_valve"
    assert tuple(prv) == ("PRV", 250)  # LPS units: diameters already in mm
    assert p3[0] == 3 and p3[1] == pytest.approx(2 * (50 ** 2 + 50 ** 2) ** 0.5, abs=1e-6) and p3[2] == 150
    assert stub == pytest.approx(1.0, abs=1e-9)
    assert customers == ["JJ1", "JJ3"]  # account J<junction id>
    assert result.pipe_origin[result.pipe_ids["P2~J2"]] == ("P2", "stub:J2")
    assert result.pipe_origin[result.pipe_ids["PRV1.1"]] == ("PRV1", "body")


def test_control_valve_is_no_barrier_and_isolation_valve_is(engine):
    with engine.begin() as conn:
        result = service.import_inp(conn, SMALL, name="inp-barriers", crs="EPSG:4548", caller=SYSTEM, settings=get_settings(),
                                valve_layer=[("P2", "J2")], customers_from_demand=True)
        iso = service.isolate_burst(conn, result.network_id, caller=SYSTEM, settings=get_settings(), pipe_id=result.pipe_ids["P1"],
                                    store=False)
    seg = set(iso["segment"]["pipe_ids"])
    # the PRV passes the segment through to J2's stub; the isolation valve on P2 stops it
    assert {result.pipe_ids[c] for c in ("P1", "PRV1.1", "PRV1.2", "P2~J2")} == seg
    assert [v["code"] for v in iso["valves_to_close"]] == ["V:P2@J2"]  # T1 feeds the far side
    assert [f["code"] for f in iso["segment"]["feeders_inside"]] == ["R1"]


def test_refusals(engine):
    with engine.begin() as conn:
        with pytest.raises(InvalidParameter, match="CRS"):
            service.import_inp(conn, SMALL, name="no-crs", crs=None, caller=SYSTEM, settings=get_settings())
        with pytest.raises(ImportRejected, match="outside the city"):
            service.import_inp(conn, SMALL, name="wrong-crs", crs="EPSG:4547", caller=SYSTEM, settings=get_settings())
        with pytest.raises(ImportRejected) as bad:
            service.import_inp(conn, SMALL.replace(" P2  J2  J3", " P2  J2  J9"), name="bad", crs="EPSG:4548",
                               caller=SYSTEM, settings=get_settings(), valve_layer=[("P1", "J3")])
        reasons = " ".join(e["reason"] for e in bad.value.extra["errors"])
        assert "J9" in reasons and "not an end of link" in reasons
        with pytest.raises(ImportRejected, match="malformed"):
            service.import_inp(conn, SMALL.replace(" P1  R1  J1  1000  300", " P1  R1  J1  1000  wide"),
                               name="bad2", crs="EPSG:4548", caller=SYSTEM, settings=get_settings())


def test_us_units_and_http_upload(engine):
    us = SMALL.replace("Units  LPS", "Units  GPM")
    with engine.begin() as conn:
        key = create_key(conn, department="自来水公司", read=["pipeline"], write=["pipeline"]).secret
    from api.app import create_app

    with TestClient(create_app(get_settings())) as client:
        r = client.post("/pipeline/networks/import-inp", params={"name": "inp-http", "crs": "EPSG:4548"},
                        content=us.encode(), headers={"X-API-Key": key, "Content-Type": "text/plain"})
        assert r.status_code == 200, r.text
        assert client.post("/pipeline/networks/import-inp", params={"name": "inp-anon", "crs": "EPSG:4548"},
                           content=us.encode()).status_code == 401
        missing = client.post("/pipeline/networks/import-inp", params={"name": "inp-nocrs"}, content=us.encode(),
                              headers={"X-API-Key": key})
        assert missing.status_code == 400 and "CRS" in missing.json()["detail"]
    with engine.connect() as conn:
        d = conn.execute(text("SELECT diameter_mm FROM pipeline_pipes WHERE code = 'P1' AND network_id = :n"),
                         {"n": r.json()["network_id"]}).scalar()
    assert d == round(300 * 25.4)


def test_pipes_in_area(engine):
    with engine.begin() as conn:
        result = service.import_inp(conn, SMALL, name="inp-area", crs="EPSG:4548", caller=SYSTEM, settings=get_settings())
        area = box(E0 + 50, N0 - 10, E0 + 150, N0 + 10)
        rows = service.pipes_in_area(conn, area, caller=SYSTEM)
        mine = {r["code"]: r for r in rows if r["network"] == "inp-area"}
        with pytest.raises(Unauthorized):
            service.pipes_in_area(conn, area, caller=Caller(name="anonymous"))
        with pytest.raises(Forbidden):
            service.pipes_in_area(conn, area, caller=Caller(name="k", department="x", read=frozenset({"cadastre"}),
                                                            key_id=9))
        lines = dict(conn.execute(text("SELECT code, ST_AsBinary(geom) FROM pipeline_pipes WHERE network_id = :n"),
                                  {"n": result.network_id}).all())
    expected = {c: shapely.intersection(shapely.from_wkb(bytes(w)), area).length for c, w in lines.items()}
    expected = {c: v for c, v in expected.items() if v >= 0.001}
    assert set(mine) == set(expected) == {"P1", "PRV1.1"}
    for code, length in expected.items():
        assert mine[code]["length_inside_m"] == pytest.approx(length, abs=1e-3)
        assert mine[code]["utility"] == "water"
