"""/land and /planning over HTTP: registrations, history, OGC datetime as-of, pre-review uploads in
every format, stored reports, balance exports, supervision, approvals, price; bad input → 4xx
problem+json."""

from __future__ import annotations

import datetime as dt
import io
import json
import uuid
import zipfile

import openpyxl
import pytest
import sqlalchemy as sa
from shapely.geometry import Polygon, box, mapping, shape
from shapely.ops import transform

from gis.crs import transformer

TO_LONLAT = transformer("EPSG:4548", "OGC:CRS84")


@pytest.fixture(scope="module")
def keys(demo_city):
    from gis.keys import create_key

    with demo_city.begin() as conn:
        clerk = create_key(conn, department="不动产登记中心", read=["*"], write=["cadastre", "landuse"],
                           personal_data=True).secret
        viewer = create_key(conn, department="住建局", read=["cadastre", "landuse"]).secret
    return {"clerk": {"X-API-Key": clerk}, "viewer": {"X-API-Key": viewer}}


@pytest.fixture(scope="module")
def spot(demo_city, empty_square_km):
    """A 1 km square with no parcel or survey patch, and a fresh sub-district code; emptied again after."""
    x, y = empty_square_km(("cadastre_parcels", "landuse_survey_patches"), range(600000, 655000, 3000),
                           range(2700000, 2755000, 3000))
    prefix = "350298" + f"{uuid.uuid4().int % 10**6:06d}"
    yield x, y, prefix
    with demo_city.begin() as c:
        c.execute(sa.text("DELETE FROM cadastre_lineage WHERE left(child_code, 12) = :p"), {"p": prefix})
        c.execute(sa.text("DELETE FROM cadastre_registrations WHERE left(parcel_codes[1], 12) = :p"),
                  {"p": prefix})
        c.execute(sa.text("DELETE FROM cadastre_parcels WHERE left(parcel_code, 12) = :p"), {"p": prefix})
        for t in ("landuse_prereview_reports", "landuse_supervision_cases", "landuse_land_approvals"):
            c.execute(sa.text(f"DELETE FROM {t} WHERE geom && ST_MakeEnvelope(:x,:y,:x+1000,:y+1000,4548)"),
                      {"x": x, "y": y})


def north_first(geom) -> dict:
    """A storage-CRS geometry as an API body in EPSG:4548 takes it: northing (X) first, the CRS's
    authority axis order (the one rule of gis.intake)."""
    return mapping(transform(lambda x, y: (y, x), geom))


def lonlat(geom) -> dict:
    return mapping(transform(TO_LONLAT.transform, geom))


def is_problem(response, status: int) -> dict:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    body = response.json()
    assert body["status"] == status and body["detail"]
    return body


def test_registrations_and_history_over_http(client, keys, spot):
    x, y, prefix = spot
    attrs = {"right_holder": "王五", "holder_kind": "person", "holder_id_number": "350203198001011234",
             "right_type": "国有建设用地使用权", "landuse_code": "0701", "district": "350206"}
    r = client.post("/land/registrations/initial", headers=keys["clerk"], json={
        "sub_district": prefix, "ownership": "G", "parcel_type": "B", "attributes": attrs,
        "geometry": north_first(box(x, y, x + 100, y + 100)), "crs": "EPSG:4548",
        "effective_at": "2021-01-01T00:00:00+08:00"})
    assert r.status_code == 201, r.text
    code = r.json()["created"][0]
    assert code == f"{prefix}GB00001"
    # anonymous callers may not register; overlapping, malformed or unknown input is a 4xx problem
    is_problem(client.post("/land/registrations/cancellation", json={"parcel_code": code}), 401)
    is_problem(client.post("/land/registrations/initial", headers=keys["clerk"], json={
        "sub_district": prefix, "ownership": "G", "parcel_type": "B", "attributes": attrs,
        "geometry": north_first(box(x + 50, y, x + 150, y + 100)), "crs": "EPSG:4548"}), 409)
    is_problem(client.post("/land/registrations/initial", headers=keys["clerk"], json={
        "sub_district": "12345", "ownership": "G", "parcel_type": "B", "attributes": attrs,
        "geometry": north_first(box(x + 500, y, x + 600, y + 100)), "crs": "EPSG:4548"}), 400)
    is_problem(client.post("/land/registrations/split", headers=keys["clerk"], json={
        "parcel_code": code, "children": [{"geometry": {"type": "Polygon", "coordinates": [[[0, 0], [1, 1]]]}},
                                          {"geometry": north_first(box(x, y, x + 1, y + 1))}]}), 400)
    r = client.post("/land/registrations/split", headers=keys["clerk"], json={
        "parcel_code": code, "crs": "EPSG:4548", "effective_at": "2022-01-01T00:00:00+08:00",
        "children": [{"geometry": north_first(box(x, y, x + 60, y + 100))},
                     {"geometry": north_first(box(x + 60, y, x + 100, y + 100)), "attributes": {"landuse_code": "0501"}}]})
    assert r.status_code == 201, r.text
    c1, c2 = r.json()["created"]

    lineage = client.get(f"/land/parcels/{c2}/lineage", headers=keys["viewer"]).json()
    assert lineage["ancestors"] == [code]
    timeline = client.get(f"/land/parcels/{code}/timeline", headers=keys["viewer"]).json()
    assert timeline["live"] is False and [r["kind"] for r in timeline["registrations"]] == ["initial", "split"]
    assert timeline["versions"][0]["right_holder"] == "王*"  # a person's name is masked without the scope
    assert client.get(f"/land/parcels/{code}/timeline", headers=keys["clerk"]).json()["versions"][0][
        "right_holder"] == "王五"
    is_problem(client.get("/land/parcels/NOTACODE/timeline"), 400)

    bbox = ",".join(str(v) for v in TO_LONLAT.transform_bounds(x - 10, y - 10, x + 110, y + 110))
    before = client.get("/land/register", params={"valid_at": "2021-06-01T00:00:00Z", "bbox": bbox}).json()
    after = client.get("/land/register", params={"valid_at": "2022-06-01T00:00:00Z", "bbox": bbox}).json()
    assert [p["parcel_code"] for p in before["parcels"]] == [code]
    assert sorted(p["parcel_code"] for p in after["parcels"]) == [c1, c2]
    diff = client.get("/land/register/diff", params={"since": "2021-06-01", "until": "2022-06-01", "bbox": bbox}).json()
    assert diff["created"] == [c1, c2] and diff["retired"] == [code]
    # the OGC datetime parameter answers the same as-of question on the generic collection
    for when, expect in (("2021-06-01T00:00:00Z", {code}), ("2022-06-01T00:00:00Z", {c1, c2})):
        items = client.get("/collections/cadastre_parcels/items",
                           params={"bbox": bbox, "datetime": when, "limit": 100}).json()
        assert {f["properties"]["parcel_code"] for f in items["features"]} == expect
    assert client.get(f"/land/codes/{c1}W00000000").json()["parcel_type_name"] == "建设用地使用权(地表)"
    is_problem(client.get(f"/land/codes/{c1}W00010000"), 400)


def txt_for(polygon: Polygon, header: str) -> str:
    rows = [f"J{k},1,{n:.3f},{39_000_000 + e:.3f}" for k, (e, n) in enumerate(polygon.exterior.coords, start=1)]
    return header + f"[地块坐标]\n{len(rows)},1.0,1,地块,面,,,,@\n" + "\n".join(rows) + "\n"


HEADER = "[属性描述]\n坐标系=2000国家大地坐标系\n几度分带=3\n投影类型=高斯克吕格\n带号=39\n"


def test_prereview_uploads_and_reports(client, keys, spot, demo_city):
    x, y, _ = spot
    site = Polygon([(x + 100.25, y + 100), (x + 700, y + 150.5), (x + 650, y + 720), (x + 120, y + 600)])
    # the demo city's own data: a site on the island crossing real survey patches and control lines
    with demo_city.connect() as conn:
        cx, cy = conn.execute(sa.text("SELECT ST_X(c), ST_Y(c) FROM (SELECT ST_Centroid(ST_Extent(geom)) c "
                                      "FROM landuse_survey_patches) s")).one()
    island = box(cx - 500, cy - 500, cx + 500, cy + 500)
    gj = json.dumps({"type": "Feature", "properties": {}, "geometry": lonlat(island)})
    r = client.post("/planning/prereview", headers=keys["clerk"],
                    data={"project_name": "演示项目", "redline": gj, "intended_use": "1001"})
    assert r.status_code == 201, r.text
    report = r.json()
    assert report["input"]["format"] == "geojson" and report["input"]["crs"] == "OGC:CRS84"
    assert report["total_area"] == pytest.approx(shape(report_geometry(demo_city, report["id"])).area, abs=0.01)
    assert sum(row["plane_area"] for row in report["landuse"]) <= report["total_area"] + 0.01
    assert report["landuse"], "the demo city's survey covers the island"
    reopened = client.get(f"/planning/prereview/{report['id']}", headers=keys["clerk"])
    assert reopened.status_code == 200 and reopened.json()["total_area"] == pytest.approx(report["total_area"])
    # a report belongs to the department that made it: another department's key finds no such report
    is_problem(client.get(f"/planning/prereview/{report['id']}", headers=keys["viewer"]), 404)
    is_problem(client.get(f"/planning/prereview/{report['id']}/report.html", headers=keys["viewer"]), 404)
    page = client.get(f"/planning/prereview/{report['id']}/report.html", headers=keys["clerk"])
    assert page.status_code == 200 and "<svg" in page.text and "用地预审" in page.text
    assert "<script src=" not in page.text and "cdn" not in page.text.lower()
    is_problem(client.get("/planning/prereview/999999999", headers=keys["viewer"]), 404)

    # every upload format is understood and says so
    r = client.post("/planning/prereview", headers=keys["clerk"], data={"project_name": "TXT", "format": "txt"},
                    files={"file": ("红线.txt", txt_for(site, HEADER).encode("gb18030"), "text/plain")})
    assert r.status_code == 201, r.text
    assert r.json()["input"]["format"] == "txt" and r.json()["input"]["crs"] == "EPSG:4548"
    assert r.json()["total_area"] == pytest.approx(site.area, abs=0.01)
    import tempfile
    from pathlib import Path

    import geopandas as gpd

    with tempfile.TemporaryDirectory() as tmp:
        gpd.GeoDataFrame({"id": [1]}, geometry=[site], crs="EPSG:4548").to_file(Path(tmp) / "site.shp")
        buf = io.BytesIO()
        with zipfile.ZipFile(buf, "w") as zf:
            for f in Path(tmp).iterdir():
                zf.write(f, f.name)
    r = client.post("/planning/prereview", headers=keys["clerk"], data={"project_name": "SHP"},
                    files={"file": ("site.zip", buf.getvalue(), "application/zip")})
    assert r.status_code == 201, r.text
    assert r.json()["input"]["format"] == "shapefile" and r.json()["total_area"] == pytest.approx(site.area, abs=0.01)
    import ezdxf

    doc = ezdxf.new()
    doc.modelspace().add_lwpolyline(list(site.exterior.coords)[:-1], close=True)
    stream = io.StringIO()
    doc.write(stream)
    r = client.post("/planning/prereview", headers=keys["clerk"], data={"project_name": "DXF", "crs": "EPSG:4548"},
                    files={"file": ("site.dxf", stream.getvalue().encode(), "application/dxf")})
    assert r.status_code == 201, r.text
    assert r.json()["input"]["format"] == "dxf" and r.json()["total_area"] == pytest.approx(site.area, abs=0.01)

    # wrong or missing CRS: a clear 400, nothing stored
    with demo_city.connect() as conn:
        stored = conn.execute(sa.text("SELECT count(*) FROM landuse_prereview_reports")).scalar()
    for header in ("[属性描述]\n几度分带=3\n带号=39\n", HEADER.replace("2000国家大地坐标系", "1954北京坐标系")):
        body = is_problem(client.post("/planning/prereview", headers=keys["clerk"], data={"project_name": "bad"},
                                      files={"file": ("x.txt", txt_for(site, header).encode(), "text/plain")}), 400)
        assert "坐标系" in body["detail"]
    is_problem(client.post("/planning/prereview", headers=keys["clerk"], data={"project_name": "DXF"},
                           files={"file": ("site.dxf", stream.getvalue().encode(), "application/dxf")}), 400)
    is_problem(client.post("/planning/prereview", headers=keys["clerk"], data={"project_name": "none"}), 400)
    is_problem(client.post("/planning/prereview", data={"project_name": "anon", "redline": gj}), 401)
    with demo_city.connect() as conn:
        assert conn.execute(sa.text("SELECT count(*) FROM landuse_prereview_reports")).scalar() == stored


def report_geometry(engine, report_id: int) -> dict:
    with engine.connect() as conn:
        return json.loads(conn.execute(sa.text("SELECT ST_AsGeoJSON(geom) FROM landuse_prereview_reports WHERE id = :i"),
                                       {"i": report_id}).scalar())


def test_balance_and_statistics_over_http(client, keys, demo_city):
    with demo_city.connect() as conn:
        year = conn.execute(sa.text("SELECT max(survey_year) FROM landuse_survey_patches")).scalar()
        plan = conn.execute(sa.text("SELECT min(plan_name) FROM landuse_planning_zones")).scalar()
        district = conn.execute(sa.text("SELECT min(district) FROM landuse_survey_patches WHERE survey_year = :y"),
                                {"y": year}).scalar()
        expected = conn.execute(sa.text("SELECT sum(ellipsoidal_area) FROM landuse_survey_patches WHERE "
                                        "survey_year = :y AND district = :d"), {"y": year, "d": district}).scalar()
    r = client.get("/planning/balance", params={"base_year": year, "target_plan": plan, "district": district})
    assert r.status_code == 200, r.text
    table = r.json()
    assert table["area_basis"] == "plane" and table["rows"][-1]["name"] == "合计"
    csv_ = client.get("/planning/balance", params={"base_year": year, "target_plan": plan, "f": "csv"})
    assert csv_.status_code == 200 and "合计" in csv_.content.decode("utf-8-sig")
    xlsx = client.get("/planning/balance", params={"base_year": year, "target_plan": plan, "f": "xlsx"})
    assert openpyxl.load_workbook(io.BytesIO(xlsx.content)).active["A1"].value.startswith("土地利用面积平衡表")
    assert "<table class=\"data balance\">" in client.get("/planning/balance", params={"base_year": year, "target_plan": plan,
                                                                 "f": "html"}).text
    stats = client.get("/planning/statistics", params={"year": year, "district": district}).json()
    assert stats["area_basis"] == "ellipsoidal" and stats["total"] == pytest.approx(expected, rel=1e-9)
    is_problem(client.get("/planning/balance", params={"base_year": year}), 400)
    is_problem(client.get("/planning/balance", params={"base_year": 1800, "target_plan": plan}), 404)
    is_problem(client.get("/planning/balance", params={"base_year": year, "target_plan": plan, "f": "pdf"}), 400)
    is_problem(client.get("/planning/statistics", params={"year": year, "bbox": "1,2,3"}), 400)


def test_supervision_approvals_price(client, keys, spot, demo_city):
    x, y, _ = spot
    patch = box(x + 300, y + 300, x + 400, y + 400)
    r = client.post("/land/supervision/cases", headers=keys["clerk"], json={
        "case_no": f"JC-{uuid.uuid4().hex[:8]}", "found_on": "2024-03-01", "party": "赵六",
        "geometry": lonlat(patch)})
    assert r.status_code == 201, r.text
    case_id = r.json()["id"]
    cmp_ = client.get(f"/land/supervision/cases/{case_id}/compare", headers=keys["clerk"],
                      params={"first": "2020-01-01", "second": "2024-01-01"})
    assert cmp_.status_code == 200, cmp_.text
    assert cmp_.json()["patch_area"] == pytest.approx(patch.area, rel=1e-6)
    is_problem(client.get("/land/supervision/cases/999999/compare", headers=keys["clerk"],
                          params={"first": "2020-01-01", "second": "2024-01-01"}), 404)
    r = client.post("/land/approvals", headers=keys["clerk"], json={
        "approval_no": f"厦地批-{uuid.uuid4().hex[:6]}", "supply_kind": "transfer", "project_name": "测试厂房",
        "land_user": "某公司", "landuse_code": "0601", "approved_on": "2024-05-01", "term_years": 50,
        "geometry": lonlat(patch)})
    assert r.status_code == 201, r.text
    is_problem(client.post("/land/approvals", headers=keys["clerk"], json={
        "approval_no": "x", "supply_kind": "gift", "project_name": "p", "land_user": "u", "landuse_code": "0601",
        "approved_on": "2024-05-01", "geometry": lonlat(patch)}), 400)
    with demo_city.connect() as conn:
        px, py = conn.execute(sa.text("SELECT ST_X(p), ST_Y(p) FROM (SELECT ST_PointOnSurface(geom) p FROM "
                                      "landuse_price_zones ORDER BY id LIMIT 1) s")).one()
        expected = conn.execute(sa.text("SELECT count(*) FROM landuse_price_zones WHERE ST_Covers(geom, "
                                        "ST_SetSRID(ST_MakePoint(:x, :y), 4548))"), {"x": px, "y": py}).scalar()
    lon, lat = TO_LONLAT.transform(px, py)
    price = client.get("/land/price", headers=keys["clerk"], params={"lon": lon, "lat": lat})
    assert price.status_code == 200 and len(price.json()["zones"]) == expected >= 1
    is_problem(client.get("/land/price", headers=keys["clerk"], params={"lon": 10, "lat": 10}), 400)
    is_problem(client.get("/land/price", headers=keys["clerk"], params={"lon": lon}), 400)


def test_survey_years_and_change_survey_over_http(client, keys, spot, demo_city):
    x, y, _ = spot
    left, right = box(x + 800, y, x + 900, y + 100), box(x + 900, y, x + 1000, y + 100)

    def year_of(codes: tuple[str, str]) -> dict:
        return {"type": "FeatureCollection", "features": [
            {"type": "Feature", "geometry": lonlat(g), "properties": {"patch_no": f"H{i}", "class_code": c,
                                                                       "district": "350298"}}
            for i, (g, c) in enumerate(zip((left, right), codes, strict=True))]}

    try:
        r = client.post("/planning/survey/1995", headers=keys["clerk"], json={"features": year_of(("0101", "0301"))})
        assert r.status_code == 201, r.text
        assert r.json()["patches"] == 2 and r.json()["previous_year"] is None
        r = client.post("/planning/survey/1996", headers=keys["clerk"], json={"features": year_of(("0701", "0301"))})
        assert r.status_code == 201, r.text
        assert r.json()["previous_year"] == 1995 and r.json()["change_patches"] == 1
        changes = client.get("/planning/change-survey", params={"from_year": 1995, "to_year": 1996}).json()["changes"]
        assert [(c["from_code"], c["to_code"]) for c in changes] == [("0101", "0701")]
        assert changes[0]["plane_area"] == pytest.approx(left.area, rel=1e-6)
        is_problem(client.post("/planning/survey/1996", headers=keys["clerk"], json={"features": year_of(("0101", "0301"))}),
                   409)
        is_problem(client.post("/planning/survey/1997", headers=keys["clerk"], json={"features": {"type": "x"}}), 400)
        is_problem(client.post("/planning/survey/1997", json={"features": year_of(("0101", "0301"))}), 401)
    finally:
        with demo_city.begin() as conn:
            conn.execute(sa.text("DELETE FROM landuse_change_patches WHERE from_year = 1995"))
            conn.execute(sa.text("DELETE FROM landuse_survey_patches WHERE survey_year IN (1995, 1996)"))


def test_new_tables_are_ogc_collections(client, keys):
    for collection in ("landuse_change_patches", "landuse_supervision_cases", "landuse_land_approvals",
                       "landuse_prereview_reports"):
        r = client.get(f"/collections/{collection}/items", headers=keys["clerk"], params={"limit": 5})
        assert r.status_code == 200, (collection, r.text)
        assert r.json()["type"] == "FeatureCollection"
        assert client.get(f"/collections/{collection}/items", params={"limit": 5}).status_code in (
            200 if collection == "landuse_change_patches" else 401,)


def test_a_time_without_offset_is_city_local_time_on_every_land_route(client, keys, spot):
    """A clerk in Xiamen who types 2023-03-01 00:00 means Beijing time (UTC+8), not UTC: the
    registration takes effect at 2023-02-28 16:00 UTC, and the register read with a naive time agrees."""
    x, y, prefix = spot
    x += 400
    attrs = {"right_holder": "厦门市土地开发总公司", "holder_kind": "organisation", "right_type": "国有建设用地使用权",
             "landuse_code": "0701", "district": "350206"}
    r = client.post("/land/registrations/initial", headers=keys["clerk"], json={
        "sub_district": prefix, "ownership": "G", "parcel_type": "B", "attributes": attrs,
        "geometry": north_first(box(x, y, x + 50, y + 50)), "crs": "EPSG:4548",
        "effective_at": "2023-03-01T00:00:00"})
    assert r.status_code == 201, r.text
    code = r.json()["created"][0]
    timeline = client.get(f"/land/parcels/{code}/timeline", headers=keys["viewer"]).json()
    effective = dt.datetime.fromisoformat(timeline["registrations"][0]["effective_at"])
    assert effective == dt.datetime(2023, 2, 28, 16, 0, tzinfo=dt.UTC)
    bbox = ",".join(str(v) for v in TO_LONLAT.transform_bounds(x - 5, y - 5, x + 55, y + 55))

    def registered(valid_at: str) -> list[str]:
        body = client.get("/land/register", params={"valid_at": valid_at, "bbox": bbox}).json()
        return [p["parcel_code"] for p in body["parcels"]]

    assert registered("2023-02-28T23:59:00") == []  # 15:59 UTC: not yet in force
    assert registered("2023-03-01T00:00:00") == [code]
    assert registered("2023-02-28T23:59:00Z") == [code]  # an explicit offset is kept
