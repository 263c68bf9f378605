"""Module endpoints check the write scopes of the layers they write (issue 11): INP import, the
topology build, survey load, the change survey, stored pre-reviews, isolations, repair orders and
their status, repair records, parcel registrations.

For each endpoint a read-only key and a key of another family get 403 problem+json and nothing is
written (row counts of the tables it writes, and of the audit log, are the same after), and a key
with the right scopes succeeds. Where an endpoint writes several layers, a key that may write only
some of them is refused too.
"""

from __future__ import annotations

import json
import uuid

import pytest
import sqlalchemy as sa
from shapely.geometry import LineString, box, mapping
from shapely.ops import transform
from test_pipeline_inp import SMALL
from test_pipeline_isolation_api import build_network, pipeline_cleanup  # noqa: F401  (drops this module's networks)

from gis.crs import transformer
from gis.keys import create_key
from layers.pipeline import repository

TO_LONLAT = transformer("EPSG:4548", "OGC:CRS84")
SURVEY_YEARS = (1981, 1982)  # years no other test and not the demo city uses


@pytest.fixture(scope="module")
def keys(demo_city) -> dict[str, str]:
    """Department keys by what they may do."""
    specs = {
        "pipeline_reader": dict(department="自来水公司调度", read=["pipeline", "pipeline_customers"]),
        "pipeline_writer": dict(department="自来水公司", read=["pipeline"], write=["pipeline"]),
        "pipes_only": dict(department="管线普查队", read=["pipeline"], write=["pipeline_pipes"]),
        "network_importer": dict(department="供水规划", read=["pipeline", "pipeline_customers"],
                                 write=["pipeline", "pipeline_customers"]),
        "cadastre_writer": dict(department="不动产登记中心", read=["*"], write=["cadastre"]),
        "cadastre_reader": dict(department="住建局", read=["cadastre"]),
        "landuse_reader": dict(department="发改委", read=["landuse"]),
        "landuse_writer": dict(department="自然资源和规划局", read=["landuse", "cadastre"], write=["landuse"]),
        "survey_only": dict(department="调查队", read=["landuse"], write=["landuse_survey"]),
        "changes_only": dict(department="变更调查组", read=["landuse"], write=["landuse_change_patches"]),
    }
    with demo_city.begin() as conn:
        return {name: create_key(conn, **spec).secret for name, spec in specs.items()}


def counts(engine, tables: tuple[str, ...]) -> dict[str, int]:
    """Rows in each table, and in the audit log (table names come from this module)."""
    with engine.connect() as conn:
        return {t: conn.execute(sa.text(f"SELECT count(*) FROM {t}")).scalar_one() for t in (*tables, "audit_log")}


def refused(client, engine, keys: dict[str, str], who: tuple[str, ...], tables: tuple[str, ...], method: str,
            url: str, *, naming: str | None = None, **request) -> None:
    """Every key in ``who`` gets 403 problem+json (naming the layer ``naming`` when given) and no row
    of ``tables`` or of the audit log is written."""
    before = counts(engine, tables)
    headers = request.pop("headers", {})
    for name in who:
        r = client.request(method, url, headers={"X-API-Key": keys[name], **headers}, **request)
        assert r.status_code == 403, (name, r.status_code, r.text)
        assert r.headers["content-type"].startswith("application/problem+json")
        assert "may not write" in r.json()["detail"], r.json()
        if naming is not None:
            assert naming in r.json()["detail"], r.json()
    assert counts(engine, tables) == before


# --- pipeline ------------------------------------------------------------------------------------

def test_inp_import_needs_write_on_pipes_nodes_and_customers(client, engine, keys):
    tables = ("pipeline_networks", "pipeline_nodes", "pipeline_pipes", "pipeline_customers")
    url = "/pipeline/networks/import-inp"
    body = {"content": SMALL.encode(), "headers": {"Content-Type": "text/plain"}}
    with_customers = {"name": f"scope-inp-{uuid.uuid4().hex[:6]}", "crs": "EPSG:4548", "customers_from_demand": True}
    refused(client, engine, keys, ("pipeline_reader", "cadastre_writer", "pipes_only"), tables, "POST", url,
            params=with_customers, **body)
    # the pipeline family's write scope does not reach the restricted customers layer
    refused(client, engine, keys, ("pipeline_writer",), tables, "POST", url, naming="pipeline_customers",
            params=with_customers, **body)
    r = client.post(url, params=with_customers, headers={"X-API-Key": keys["network_importer"],
                                                           "Content-Type": "text/plain"}, content=SMALL.encode())
    assert r.status_code == 200, r.text
    assert r.json()["customers"] == 2 and r.json()["nodes"] > 0  # J1 and J3 have a demand
    # without customers, the family's write scope is enough
    r = client.post(url, params={"name": f"scope-inp-{uuid.uuid4().hex[:6]}", "crs": "EPSG:4548"},
                    headers={"X-API-Key": keys["pipeline_writer"], "Content-Type": "text/plain"},
                    content=SMALL.encode())
    assert r.status_code == 200, r.text


def test_build_topology_needs_write_on_pipes_and_nodes(client, engine, keys):
    x0, y0 = transformer("EPSG:4326", "EPSG:4548").transform(118.43, 24.79)
    with engine.begin() as conn:
        nid = repository.create_network(conn, utility="water", name=f"scope-build-{uuid.uuid4().hex[:6]}")
        repository.insert_pipes(conn, nid, [
            {"code": "A", "from": None, "to": None, "geom": LineString([(x0, y0), (x0 + 100, y0)])},
            {"code": "B", "from": None, "to": None, "geom": LineString([(x0 + 50, y0 + 60), (x0 + 50, y0)])}], {})
    url = f"/pipeline/networks/{nid}/build-topology"
    refused(client, engine, keys, ("pipeline_reader", "cadastre_writer", "pipes_only"),
            ("pipeline_nodes", "pipeline_pipes"), "POST", url)
    r = client.post(url, headers={"X-API-Key": keys["pipeline_writer"]})
    assert r.status_code == 200, r.text
    assert r.json()["nodes_created"] == 4 and r.json()["pipes_split"] == 1


@pytest.fixture(scope="module")
def burst_net(engine):
    with engine.begin() as conn:
        return build_network(conn, f"scope-T-{uuid.uuid4().hex[:6]}")


def test_isolation_storage_needs_write_on_the_pipeline_family(client, engine, keys, burst_net):
    body = {"network_id": burst_net["network"], "pipe_id": burst_net["p3"]}
    refused(client, engine, keys, ("pipeline_reader", "cadastre_writer", "pipes_only"), ("pipeline_isolations",),
            "POST", "/pipeline/isolations", naming="pipeline_isolations", json=body)
    r = client.post("/pipeline/isolations", json=body, headers={"X-API-Key": keys["pipeline_writer"]})
    assert r.status_code == 200, r.text
    iso = r.json()["id"]
    url = f"/pipeline/isolations/{iso}/failed-valves"
    refused(client, engine, keys, ("pipeline_reader", "cadastre_writer", "pipes_only"), ("pipeline_isolations",),
            "POST", url, json={"valves": [burst_net["V1"]]})
    r = client.post(url, json={"valves": [burst_net["V1"]]}, headers={"X-API-Key": keys["pipeline_writer"]})
    assert r.status_code == 200 and r.json()["parent_id"] == iso, r.text


def test_repair_orders_and_records_need_write_on_the_pipeline_family(client, engine, keys, burst_net):
    iso = client.post("/pipeline/isolations", json={"network_id": burst_net["network"], "pipe_id": burst_net["p4"]},
                      headers={"X-API-Key": keys["pipeline_writer"]}).json()["id"]
    order = {"isolation_id": iso, "planned_restore_at": "2026-11-22T18:00:00+08:00",
             "incident_at": "2026-11-22T08:00:00+08:00"}
    tables = ("pipeline_repair_orders", "pipeline_order_events")
    refused(client, engine, keys, ("pipeline_reader", "cadastre_writer", "pipes_only"), tables, "POST",
            "/pipeline/repair-orders", naming="pipeline_repair_orders", json=order)
    r = client.post("/pipeline/repair-orders", json=order, headers={"X-API-Key": keys["pipeline_writer"]})
    assert r.status_code == 200, r.text
    order_id = r.json()["id"]
    status = f"/pipeline/repair-orders/{order_id}/status"
    refused(client, engine, keys, ("pipeline_reader", "cadastre_writer", "pipes_only"), tables, "POST", status,
            json={"status": "valves_closed"})
    r = client.post(status, json={"status": "valves_closed"}, headers={"X-API-Key": keys["pipeline_writer"]})
    assert r.status_code == 200 and r.json()["status"] == "valves_closed", r.text
    repair = {"repaired_on": "2026-11-22", "kind": "burst", "crew": "抢修一班"}
    url = f"/pipeline/pipes/{burst_net['p4']}/repairs"
    refused(client, engine, keys, ("pipeline_reader", "cadastre_writer", "pipes_only"), ("pipeline_repairs",),
            "POST", url, naming="pipeline_repairs", json=repair)
    r = client.post(url, json=repair, headers={"X-API-Key": keys["pipeline_writer"]})
    assert r.status_code == 200 and r.json()["kind"] == "burst", r.text


# --- land use ------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def square(demo_city, empty_square_km):
    """An empty km² for this module's survey years and parcels; emptied again after."""
    x, y = empty_square_km(("cadastre_parcels", "landuse_survey_patches"), range(601000, 655000, 3000),
                           range(2701000, 2755000, 3000))
    prefix = "350297" + f"{uuid.uuid4().int % 10**6:06d}"
    yield x, y, prefix
    with demo_city.begin() as c:
        c.execute(sa.text("DELETE FROM landuse_change_patches WHERE from_year = ANY(:y)"), {"y": list(SURVEY_YEARS)})
        c.execute(sa.text("DELETE FROM landuse_survey_patches WHERE survey_year = ANY(:y)"), {"y": list(SURVEY_YEARS)})
        c.execute(sa.text("DELETE FROM cadastre_registrations WHERE left(parcel_codes[1], 12) = :p"), {"p": prefix})
        c.execute(sa.text("DELETE FROM cadastre_parcels WHERE left(parcel_code, 12) = :p"), {"p": prefix})


def north_first(geom) -> dict:
    """A storage-CRS geometry as an API body in EPSG:4548 takes it: northing (X) first (gis.intake)."""
    return mapping(transform(lambda a, b: (b, a), geom))


def survey_body(x: float, y: float, year: int, classes: list[str], cell: float) -> dict:
    """A survey year: a row of patches of ``cell`` metres, in the storage CRS."""
    features = [{"type": "Feature", "geometry": north_first(box(x + i * cell, y, x + (i + 1) * cell, y + cell)),
                 "properties": {"patch_no": f"S{year}-{i}", "class_code": code, "district": "350299"}}
                for i, code in enumerate(classes)]
    return {"features": {"type": "FeatureCollection", "features": features}, "crs": "EPSG:4548"}


def test_survey_load_and_change_survey_need_write_on_survey_and_change_patches(client, engine, keys, square):
    x, y, _ = square
    first, second = SURVEY_YEARS
    tables = ("landuse_survey_patches", "landuse_change_patches")
    r = client.post(f"/planning/survey/{first}", json=survey_body(x, y, first, ["0101", "0301"], 200),
                    headers={"X-API-Key": keys["landuse_writer"]})
    assert r.status_code == 201 and r.json()["change_patches"] == 0, r.text
    # the second year also writes change patches against the first: a survey-only key may not
    body = survey_body(x, y, second, ["0701", "0701", "0301"], 150)
    refused(client, engine, keys, ("landuse_reader", "cadastre_writer", "survey_only"), tables, "POST",
            f"/planning/survey/{second}", json=body)
    r = client.post(f"/planning/survey/{second}", json=body, headers={"X-API-Key": keys["landuse_writer"]})
    assert r.status_code == 201 and r.json()["change_patches"] > 0, r.text
    url = f"/planning/change-survey?from_year={first}&to_year={second}"
    refused(client, engine, keys, ("landuse_reader", "cadastre_writer", "survey_only"), tables, "POST", url,
            naming="landuse_change_patches")
    r = client.post(url, headers={"X-API-Key": keys["changes_only"]})
    assert r.status_code == 200 and r.json()["change_patches"] > 0, r.text


def test_stored_prereview_needs_write_on_the_reports(client, engine, keys, demo_city):
    with demo_city.connect() as conn:
        cx, cy = conn.execute(sa.text("SELECT ST_X(c), ST_Y(c) FROM (SELECT ST_Centroid(ST_Extent(geom)) c "
                                      "FROM landuse_survey_patches WHERE survey_year = 2023) s")).one()
    site = box(cx - 150, cy - 150, cx + 150, cy + 150)
    gj = json.dumps({"type": "Feature", "properties": {}, "geometry": mapping(site)})
    form = {"project_name": "权限测试", "redline": gj, "crs": "EPSG:4548"}
    refused(client, engine, keys, ("landuse_reader", "cadastre_writer"), ("landuse_prereview_reports",), "POST",
            "/planning/prereview", naming="landuse_prereview_reports", data=form)
    r = client.post("/planning/prereview", data=form, headers={"X-API-Key": keys["landuse_writer"]})
    assert r.status_code == 201 and r.json()["id"], r.text
    with demo_city.begin() as conn:
        conn.execute(sa.text("DELETE FROM landuse_prereview_reports WHERE id = :i"), {"i": r.json()["id"]})


# --- cadastre ------------------------------------------------------------------------------------

def test_registration_needs_write_on_the_cadastre(client, engine, keys, square):
    x, y, prefix = square
    body = {"sub_district": prefix, "ownership": "G", "parcel_type": "B", "crs": "EPSG:4548",
            "geometry": north_first(box(x + 600, y + 600, x + 700, y + 700)),
            "attributes": {"right_holder": "厦门某科技有限公司", "right_type": "国有建设用地使用权",
                           "landuse_code": "0601", "district": "350206"}}
    tables = ("cadastre_parcels", "cadastre_registrations", "cadastre_lineage")
    refused(client, engine, keys, ("cadastre_reader", "pipeline_writer", "landuse_writer"), tables, "POST",
            "/land/registrations/initial", naming="cadastre_parcels", json=body)
    r = client.post("/land/registrations/initial", json=body, headers={"X-API-Key": keys["cadastre_writer"]})
    assert r.status_code == 201 and r.json()["created"] == [f"{prefix}GB00001"], r.text
