"""The parcel dossier (土地交易一站式) over HTTP: one answer per parcel by code, click or address,
checked against PostGIS/shapely computed here; holders and parties masked without the personal-data
scope; pipes only for a key that may read them; bad input → 4xx problem+json; the printed page
printed to PDF in Chromium and read back with pdftotext."""

from __future__ import annotations

import datetime as dt
import re
import uuid

import pytest
import shapely
import sqlalchemy as sa
from land_print import assert_problem, printed_text
from shapely.geometry import shape
from shapely.ops import transform

from gis.access import mask_text
from gis.crs import transformer

TO_LONLAT = transformer("EPSG:4548", "OGC:CRS84")
RAW_KEYS = ("right_holder", "holder_kind", "landuse_code", "permanent_basic_farmland", "ecological_red_line",
            "urban_development_boundary", "allocation", "transfer", "illegal_occupation", "in_service", "None",
            "null", "{'")


@pytest.fixture(scope="module")
def keys(demo_city):
    from gis.keys import create_key

    with demo_city.begin() as conn:
        full = create_key(conn, department="自然资源和规划局", read=["*"], write=["landuse", "cadastre"],
                          personal_data=True).secret
        viewer = create_key(conn, department="住建局", read=["cadastre", "landuse"]).secret
    return {"full": {"X-API-Key": full}, "viewer": {"X-API-Key": viewer}}


NOW = "valid_from <= now() AND (valid_to IS NULL OR valid_to > now()) AND recorded_to IS NULL"


@pytest.fixture(scope="module")
def parcels(client, demo_city, keys):
    """A street parcel registered here over a water main (the demo city's pipes run in the streets,
    between the parcels), and a natural person's parcel (both in force)."""
    from shapely.geometry import box, mapping

    with demo_city.connect() as conn:
        mid = conn.execute(sa.text("""
            SELECT ST_X(m), ST_Y(m), (SELECT min(ST_Distance(p.geom, m)) FROM cadastre_parcels p
                                        WHERE ST_DWithin(p.geom, m, 60)) AS room
              FROM (SELECT ST_LineInterpolatePoint(geom, 0.5) AS m, diameter_mm FROM pipeline_pipes
                     WHERE ST_Length(geom) > 40 AND status = 'in_service') q
             ORDER BY room DESC NULLS LAST, diameter_mm DESC NULLS LAST LIMIT 1""")).one()
        person = conn.execute(sa.text(f"""SELECT parcel_code FROM cadastre_parcels p WHERE {NOW}
            AND holder_kind = 'person' AND holder_id_number IS NOT NULL AND address IS NOT NULL
            AND (SELECT count(*) FROM cadastre_parcels o WHERE o.address = p.address AND o.valid_to IS NULL
                 AND o.recorded_to IS NULL) = 1 ORDER BY parcel_code LIMIT 1""")).scalar_one()
    half = min(mid.room * 0.6, 15.0)
    street = box(mid[0] - half, mid[1] - half, mid[0] + half, mid[1] + half)
    prefix = "350203" + f"{uuid.uuid4().int % 10**6:06d}"
    body = {"sub_district": prefix, "ownership": "G", "parcel_type": "B", "geometry": mapping(transform(
        TO_LONLAT.transform, street)), "attributes": {"right_holder": "厦门市市政园林局", "holder_kind": "organisation",
                                                      "right_type": "国有建设用地使用权", "landuse_code": "1004",
                                                      "district": "350203", "address": f"思明区测试路{prefix[-4:]}号"}}
    r = client.post("/land/registrations/initial", json=body, headers=keys["full"])
    assert r.status_code == 201, r.text
    yield {"piped": r.json()["created"][0], "person": person}
    with demo_city.begin() as c:
        c.execute(sa.text("DELETE FROM cadastre_registrations WHERE left(parcel_codes[1], 12) = :p"), {"p": prefix})
        c.execute(sa.text("DELETE FROM cadastre_parcels WHERE left(parcel_code, 12) = :p"), {"p": prefix})


def _row(conn, code: str) -> dict:  # noqa: ANN001
    row = conn.execute(sa.text(f"""SELECT parcel_code, right_holder, holder_id_number, holder_phone, address,
        ST_AsBinary(geom) AS wkb FROM cadastre_parcels WHERE parcel_code = :c AND {NOW}"""), {"c": code}).mappings().one()
    return {**row, "geometry": shapely.from_wkb(bytes(row["wkb"]))}


def test_dossier_by_code_agrees_with_postgis_and_shapely(client, demo_city, keys, parcels):
    code = parcels["piped"]
    r = client.get(f"/land/parcels/{code}/dossier", headers=keys["full"])
    assert r.status_code == 200, r.text
    d = r.json()
    with demo_city.connect() as conn:
        row = _row(conn, code)
        g = row["geometry"]
        wkb = {"g": shapely.to_wkb(g)}
        year = conn.execute(sa.text("SELECT max(survey_year) FROM landuse_survey_years WHERE completeness = 'complete'")
                            ).scalar_one()
        by_class = dict(conn.execute(sa.text("""
            SELECT class_code, sum(ST_Area(ST_Intersection(geom, ST_GeomFromWKB(:g, 4548)))) FROM landuse_survey_patches
             WHERE survey_year = :y AND ST_Intersects(geom, ST_GeomFromWKB(:g, 4548)) GROUP BY 1"""),
            {**wkb, "y": year}).all())
        pipes = conn.execute(sa.text("""SELECT id, ST_Length(ST_Intersection(geom, ST_GeomFromWKB(:g, 4548)))
            FROM pipeline_pipes WHERE ST_Intersects(geom, ST_GeomFromWKB(:g, 4548))"""), wkb).all()
        approvals = set(conn.execute(sa.text("""SELECT approval_no FROM landuse_land_approvals
            WHERE :c = ANY(parcel_codes) OR ST_Area(ST_Intersection(geom, ST_GeomFromWKB(:g, 4548))) > 0.01"""),
            {**wkb, "c": code}).scalars())
        registrations = conn.execute(sa.text("SELECT count(*) FROM cadastre_registrations WHERE :c = ANY(parcel_codes)"),
                                     {"c": code}).scalar_one()
        controls = conn.execute(sa.text("""SELECT coalesce(sum(ST_Area(ST_Intersection(geom, ST_GeomFromWKB(:g, 4548)))), 0)
            FROM landuse_control_lines WHERE kind = 'urban_development_boundary'
             AND ST_Intersects(geom, ST_GeomFromWKB(:g, 4548))"""), wkb).scalar_one()
    assert d["parcel_code"] == code and d["parcel"]["right_holder"] == row["right_holder"]
    assert d["plane_area"] == pytest.approx(g.area, rel=1e-9)
    assert shape(d["geometry"]).area == pytest.approx(transform(TO_LONLAT.transform, g).area, rel=1e-6)
    assert d["landuse"]["survey_year"] == year
    got = {c["class_code"]: c["plane_area"] for c in d["landuse"]["classes"]}
    assert got == pytest.approx({k: v for k, v in by_class.items() if v > 0}, rel=1e-6)
    expected_pipes = {pid: length for pid, length in pipes if length >= 0.001}
    assert expected_pipes, "the chosen parcel should be crossed by pipes"
    assert {p["id"]: p["length_inside_m"] for p in d["pipelines"]["pipes"]} == pytest.approx(expected_pipes, abs=1e-3)
    assert {a["approval_no"] for a in d["approvals"]["items"]} == approvals
    assert len(d["registrations"]) == registrations >= 1
    udb = [c for c in d["control_lines"]["overlaps"] if c["kind"] == "urban_development_boundary"]
    assert sum(c["area"] for c in udb) == pytest.approx(controls, abs=0.01)
    assert d["clearances"]["available"] and "findings" in d["clearances"]
    assert d["land_price"]["available"]
    if d["land_price"]["by_use"]:
        assert sum(u["area"] for u in d["land_price"]["by_use"]) >= g.area * 0.99


def test_dossier_by_click_and_by_address_find_the_same_parcel(client, demo_city, keys, parcels):
    code = parcels["person"]
    with demo_city.connect() as conn:
        row = _row(conn, code)
        address = row["address"]
        containing = conn.execute(sa.text(f"SELECT count(*) FROM cadastre_parcels WHERE {NOW} AND address ILIKE :a"),
                                  {"a": f"%{address}%"}).scalar_one()
        same_address = conn.execute(sa.text(f"SELECT count(*) FROM cadastre_parcels WHERE {NOW} AND address = :a"),
                                    {"a": address}).scalar_one()
        street = address.rstrip("0123456789号")  # the street: many parcels
        on_street = conn.execute(sa.text(f"SELECT count(*) FROM cadastre_parcels WHERE {NOW} AND address ILIKE :a"),
                                 {"a": f"%{street}%"}).scalar_one()
    inside = row["geometry"].representative_point()
    lon, lat = TO_LONLAT.transform(inside.x, inside.y)
    r = client.get("/land/dossier", params={"x": lon, "y": lat}, headers=keys["full"])
    assert r.status_code == 200, r.text
    assert r.json()["parcel_code"] == code
    # the same point given in the storage CRS, northing first (EPSG:4548's axis order)
    r = client.get("/land/dossier", params={"x": inside.y, "y": inside.x, "crs": "EPSG:4548"}, headers=keys["full"])
    assert r.json()["parcel_code"] == code
    r = client.get("/land/dossier", params={"q": code}, headers=keys["full"])
    assert r.json()["parcel_code"] == code
    found = client.get("/land/parcels/search", params={"q": address}, headers=keys["viewer"]).json()
    assert found["count"] == min(containing, 20) and code in [p["parcel_code"] for p in found["parcels"]]
    assert all("right_holder" not in p for p in found["parcels"])
    assert same_address == 1 and on_street > 1
    r = client.get("/land/dossier", params={"q": address}, headers=keys["full"])
    assert r.status_code == 200 and r.json()["parcel_code"] == code  # the whole address: that house
    assert_problem(client.get("/land/dossier", params={"q": street}, headers=keys["full"]), 400, "parcels match")


def test_a_person_holder_and_case_parties_are_masked_without_the_personal_scope(client, demo_city, keys, parcels):
    from gis.access import SYSTEM
    from layers.landuse import service as land

    code = parcels["person"]
    party = "欧阳测试" + uuid.uuid4().hex[:2]
    with demo_city.begin() as conn:
        row = _row(conn, code)
        case = land.record_supervision_case(conn, SYSTEM, {
            "case_no": f"DOSSIER-{uuid.uuid4().hex[:6]}", "kind": "illegal_construction", "found_on": dt.date(2025, 3, 1),
            "party": party}, row["geometry"].buffer(-1))
    try:
        seen = client.get(f"/land/parcels/{code}/dossier", headers=keys["viewer"])
        assert seen.status_code == 200, seen.text
        d = seen.json()
        assert d["parcel"]["right_holder"] == mask_text(row["right_holder"]) != row["right_holder"]
        assert d["parcel"]["holder_id_number"] == mask_text(row["holder_id_number"])
        for secret in (row["right_holder"], row["holder_id_number"], party):
            assert secret not in seen.text
        [shown] = [c for c in d["supervision"]["cases"] if c["id"] == case["id"]]
        assert shown["party"] == mask_text(party)
        assert d["pipelines"]["available"] is False and "pipes" not in d["pipelines"]
        assert any(c["kind"] == "supervision" and c["severity"] == "block" for c in d["constraints"])
        full = client.get(f"/land/parcels/{code}/dossier", headers=keys["full"]).json()
        assert full["parcel"]["right_holder"] == row["right_holder"]
        assert [c["party"] for c in full["supervision"]["cases"] if c["id"] == case["id"]] == [party]
        anonymous = client.get(f"/land/parcels/{code}/dossier")
        assert anonymous.status_code == 200 and row["right_holder"] not in anonymous.text
        assert anonymous.json()["approvals"]["available"] is False
        page = client.get(f"/land/parcels/{code}/dossier.html", headers=keys["viewer"])
        assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
        for secret in (row["right_holder"], row["holder_id_number"], party):
            assert secret not in page.text
    finally:
        with demo_city.begin() as conn:
            conn.execute(sa.text("DELETE FROM landuse_supervision_cases WHERE id = :i"), {"i": case["id"]})


def test_bad_requests_are_4xx_problems_that_say_what_to_do(client, keys, parcels):
    h = keys["full"]
    assert_problem(client.get("/land/parcels/12345/dossier", headers=h), 400)
    assert_problem(client.get("/land/parcels/350203001001GB99999/dossier", headers=h), 404, "never registered")
    assert_problem(client.get("/land/parcels/350203001001GB99999/dossier.html", headers=h), 404)
    assert_problem(client.get("/land/dossier", headers=h), 400, "name the parcel")
    assert_problem(client.get("/land/dossier", params={"x": 118.1}, headers=h), 400, "both x and y")
    assert_problem(client.get("/land/dossier", params={"x": 0, "y": 0}, headers=h), 400)
    assert_problem(client.get("/land/dossier", params={"x": "east", "y": 24.5}, headers=h), 400)
    assert_problem(client.get("/land/dossier", params={"x": "nan", "y": "nan"}, headers=h), 400)
    assert_problem(client.get("/land/dossier", params={"x": "inf", "y": 24.5}, headers=h), 400)
    assert_problem(client.get("/land/dossier", params={"x": 118.1, "y": 24.5, "crs": "EPSG:99999"}, headers=h), 400)
    assert_problem(client.get("/land/dossier", params={"q": "%%"}, headers=h), 404)  # a wildcard is a character
    assert_problem(client.get("/land/dossier", params={"q": parcels["piped"], "parcel_code": parcels["piped"]},
                              headers=h), 400, "one way")
    assert_problem(client.get("/land/dossier", params={"q": "查无此地址" + uuid.uuid4().hex}, headers=h), 404)
    assert_problem(client.get("/land/parcels/search", params={"q": "x"}, headers=h), 400, "two characters")
    assert_problem(client.get("/land/parcels/search", headers=h), 400)


def test_the_printed_dossier_has_chinese_headings_local_times_and_no_raw_keys(client, demo_city, keys, parcels):
    from gis.localtime import format_datetime
    from layers.landuse import printing

    code = parcels["piped"]
    d = client.get(f"/land/parcels/{code}/dossier", headers=keys["full"]).json()
    page = client.get(f"/land/parcels/{code}/dossier.html", headers=keys["full"])
    assert page.status_code == 200
    assert "@page" in page.text and "A4" in page.text
    text = printed_text(page.text, "land-dossier")
    flat = re.sub(r"\s+", "", text)
    for heading in ("宗地一站式档案", "宗地基本信息", "使用限制与提示", "界址点坐标", "登记记录", "宗地谱系", "土地利用现状",
                    "规划用途", "三区三线控制线", "基准地价", "建设用地审批", "土地监察案件", "穿越管线"):
        assert heading in flat, heading
    assert code in flat
    assert re.sub(r"\s+", "", format_datetime(d["as_at"], "Asia/Shanghai")) in flat  # local time, not UTC
    assert not re.search(r"\d{4}-\d{2}-\d{2}T\d", text)  # no ISO instants: dates are written 年月日, local
    for raw in RAW_KEYS:
        assert raw not in text, raw
    pipe = d["pipelines"]["pipes"][0]
    assert pipe["code"] in flat
    with demo_city.connect() as conn:
        corners = len(printing.corners(_row(conn, code)["geometry"]))
    assert f"J{corners}" in flat and f"J{corners + 1}" not in flat
