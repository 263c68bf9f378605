"""Construction land (建设用地) over HTTP: statistics of approvals by period, supply kind and class for a
district or a drawn polygon (checked against pandas over the table and PostGIS intersections), the
CSV and XLSX downloads, the red line of an approval (corners against shapely and pyproj, area and
parcels against PostGIS, holders masked), its printed map read back from Chromium's PDF; bad input →
4xx problem+json."""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
import re
import uuid

import openpyxl
import pandas as pd
import pyproj
import pytest
import shapely
import sqlalchemy as sa
from land_print import assert_problem, printed_text
from shapely.geometry import box, mapping
from shapely.ops import transform

from gis.access import mask_text
from gis.crs import transformer

TO_LONLAT = transformer("EPSG:4548", "OGC:CRS84")
DISTRICT = "350299"  # a district of this module's own: only its approvals are in it
PLAN = [  # (dx, dy, w, h, kind, use, approved_on, price)
    (0, 0, 100, 80, "transfer", "0701", dt.date(2023, 2, 1), 5.0e6),
    (120, 0, 60, 60, "transfer", "0702", dt.date(2023, 5, 20), 2.0e6),
    (200, 0, 90, 50, "allocation", "0810", dt.date(2023, 5, 25), None),
    (300, 0, 40, 40, "lease", "0601", dt.date(2024, 1, 5), 3.0e5),
    (0, 120, 120, 100, "allocation", "1001", dt.date(2024, 7, 9), None),
    (140, 120, 70, 70, "transfer", "0501", dt.date(2024, 11, 30), 8.8e6),
    (230, 120, 50, 90, "lease", "0602", dt.date(2025, 3, 3), 1.2e5),
]


def lonlat(geom) -> dict:  # noqa: ANN001
    return mapping(transform(TO_LONLAT.transform, geom))


@pytest.fixture(scope="module")
def keys(demo_city):
    from gis.keys import create_key

    with demo_city.begin() as conn:
        full = create_key(conn, department="自然资源和规划局", read=["*"], write=["landuse"], personal_data=True).secret
        viewer = create_key(conn, department="发改委", read=["landuse", "cadastre"]).secret
    return {"full": {"X-API-Key": full}, "viewer": {"X-API-Key": viewer}}


@pytest.fixture(scope="module")
def approvals(client, demo_city, keys, empty_square_km):
    """This module's approvals, in an empty square, in district 350299; removed afterwards."""
    x, y = empty_square_km(("cadastre_parcels", "landuse_land_approvals"), range(601000, 655000, 2500),
                           range(2701000, 2755000, 2500))
    tag = uuid.uuid4().hex[:6]
    made = []
    for k, (dx, dy, w, h, kind, use, day, price) in enumerate(PLAN):
        body = {"approval_no": f"测试〔{tag}〕{k:03d}号", "supply_kind": kind, "project_name": f"统计测试项目{k}",
                "land_user": "厦门测试建设有限公司", "landuse_code": use, "approved_on": day.isoformat(),
                "term_years": 50, "price_total": price, "district": DISTRICT,
                "geometry": lonlat(box(x + dx, y + dy, x + dx + w, y + dy + h))}
        r = client.post("/land/approvals", json=body, headers=keys["full"])
        assert r.status_code == 201, r.text
        made.append(r.json())
    yield {"x": x, "y": y, "rows": made}
    with demo_city.begin() as c:
        c.execute(sa.text("DELETE FROM landuse_land_approvals WHERE district = :d"), {"d": DISTRICT})


def _frame(demo_city, where: str, params: dict, area_sql: str = "ST_Area(geom)") -> pd.DataFrame:  # noqa: ANN001
    with demo_city.connect() as conn:
        frame = pd.read_sql(sa.text(f"SELECT approved_on, supply_kind, landuse_code, price_total, {area_sql} AS area "
                                    f"FROM landuse_land_approvals WHERE {where}"), conn, params=params)
    frame = frame[frame["area"] > 0.01].copy()
    frame["approved_on"] = pd.to_datetime(frame["approved_on"])
    frame["class_code"] = frame["landuse_code"].str[:2]
    frame["price_total"] = frame["price_total"].fillna(0).astype(float)
    return frame


def _expected(frame: pd.DataFrame, period: str) -> dict[tuple[str, str, str], tuple[int, float, float]]:
    if period == "year":
        frame["period"] = frame["approved_on"].dt.year.astype(str)
    elif period == "quarter":
        frame["period"] = frame["approved_on"].dt.year.astype(str) + "-Q" + frame["approved_on"].dt.quarter.astype(str)
    else:
        frame["period"] = frame["approved_on"].dt.strftime("%Y-%m")
    grouped = frame.groupby(["period", "supply_kind", "class_code"]).agg(
        count=("area", "size"), area=("area", "sum"), price=("price_total", "sum"))
    return {k: (int(v["count"]), float(v["area"]), float(v["price"])) for k, v in grouped.iterrows()}


def _got(body: dict) -> dict[tuple[str, str, str], tuple[int, float, float]]:
    return {(r["period"], r["supply_kind"], r["class_code"]): (r["count"], r["area_m2"], r["price_total"])
            for r in body["rows"]}


@pytest.mark.parametrize("period", ["year", "quarter", "month"])
def test_statistics_of_a_district_agree_with_pandas(client, demo_city, keys, approvals, period):
    r = client.get("/land/approvals/statistics", params={"district": DISTRICT, "period": period}, headers=keys["viewer"])
    assert r.status_code == 200, r.text
    body = r.json()
    expected = _expected(_frame(demo_city, "district = :d", {"d": DISTRICT}), period)
    assert _got(body).keys() == expected.keys()
    for key, (count, area, price) in expected.items():
        assert _got(body)[key] == (count, pytest.approx(area, rel=1e-9), pytest.approx(price)), key
    assert body["total"]["count"] == len(PLAN)
    assert body["total"]["area_m2"] == pytest.approx(sum(w * h for _, _, w, h, *_ in PLAN), rel=1e-6)
    for name in ("by_period", "by_supply_kind", "by_class"):  # every subtotal sums to the total
        assert sum(s["count"] for s in body[name]) == body["total"]["count"]
        assert sum(s["area_m2"] for s in body[name]) == pytest.approx(body["total"]["area_m2"])
    kinds = {s["supply_kind"]: s["supply_kind_name"] for s in body["by_supply_kind"]}
    assert kinds == {"transfer": "出让", "allocation": "划拨", "lease": "租赁"}


def test_statistics_between_dates_and_of_the_city(client, demo_city, keys, approvals):
    r = client.get("/land/approvals/statistics", params={"district": DISTRICT, "since": "2023-05-20",
                                                          "until": "2024-07-09"}, headers=keys["viewer"])
    assert r.json()["total"]["count"] == 4  # both ends inclusive
    city = client.get("/land/approvals/statistics", headers=keys["viewer"]).json()
    with demo_city.connect() as conn:
        count, area = conn.execute(sa.text("SELECT count(*), sum(plane_area) FROM landuse_land_approvals")).one()
        # an approval on land of a district knows it (another module's approval on land in no district has
        # none, whatever order the modules run in)
        undistricted = conn.execute(sa.text(
            "SELECT count(*) FROM landuse_land_approvals a WHERE a.district IS NULL AND EXISTS ("
            "SELECT 1 FROM cadastre_parcels p WHERE p.district IS NOT NULL AND p.recorded_to IS NULL "
            "AND ST_Intersects(p.geom, a.geom))")).scalar()
    assert city["total"]["count"] == count and city["total"]["area_m2"] == pytest.approx(area)
    assert undistricted == 0  # every approval, the demo city's too, knows its district


def test_statistics_of_a_drawn_polygon_count_the_part_inside(client, demo_city, keys, approvals):
    x, y = approvals["x"], approvals["y"]
    area = box(x + 50, y - 10, x + 250, y + 150)  # halves some red lines, misses others
    r = client.post("/land/approvals/statistics", headers=keys["viewer"],
                    json={"geometry": lonlat(area), "period": "quarter"})
    assert r.status_code == 200, r.text
    body = r.json()
    # the oracle: PostGIS reprojects the same lon/lat square itself and intersects each red line with it
    gj = {"gj": json.dumps(lonlat(area))}
    drawn = "ST_Transform(ST_SetSRID(ST_GeomFromGeoJSON(:gj), 4326), 4548)"
    frame = _frame(demo_city, f"ST_Intersects(geom, {drawn})", gj, f"ST_Area(ST_Intersection(geom, {drawn}))")
    expected = _expected(frame, "quarter")
    assert _got(body).keys() == expected.keys()
    for key, (count, a, _) in expected.items():
        assert _got(body)[key][0] == count and _got(body)[key][1] == pytest.approx(a, rel=1e-6, abs=0.01), key
    whole = sum(w * h for _, _, w, h, *_ in PLAN)
    assert 0 < body["total"]["area_m2"] < whole
    assert body["scope"]["kind"] == "area"


def test_csv_and_xlsx_carry_the_same_table(client, keys, approvals):
    params = {"district": DISTRICT, "period": "year"}
    body = client.get("/land/approvals/statistics", params=params, headers=keys["viewer"]).json()
    r = client.get("/land/approvals/statistics", params={**params, "f": "csv"}, headers=keys["viewer"])
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/csv")
    assert r.content.startswith("\ufeff".encode())
    rows = list(csv.reader(io.StringIO(r.content.decode("utf-8-sig"))))
    assert rows[2][:5] == ["期间", "供地方式", "地类编码", "地类", "宗数"]
    total = next(row for row in rows if row and row[0] == "合计")
    assert int(total[4]) == body["total"]["count"] and float(total[5]) == pytest.approx(body["total"]["area_m2"], abs=0.01)
    groups = rows[3:3 + len(body["rows"])]
    assert sum(float(g[5]) for g in groups) == pytest.approx(body["total"]["area_m2"], abs=0.1)
    assert {g[1] for g in groups} == {"出让", "划拨", "租赁"}
    x = client.get("/land/approvals/statistics", params={**params, "f": "xlsx"}, headers=keys["viewer"])
    assert x.status_code == 200 and "spreadsheetml" in x.headers["content-type"]
    wb = openpyxl.load_workbook(io.BytesIO(x.content))
    sheet = wb["建设用地统计"]
    values = [[c.value for c in row] for row in sheet.iter_rows()]
    xtotal = next(v for v in values if v[0] == "合计")
    assert xtotal[4] == body["total"]["count"] and xtotal[5] == pytest.approx(body["total"]["area_m2"], abs=0.01)
    assert wb["审批清单"].max_row == len(PLAN) + 1


def test_the_red_line_gives_cgcs2000_corners_area_and_parcels(client, demo_city, keys, approvals):
    approval = approvals["rows"][0]
    r = client.get(f"/land/approvals/{approval['id']}/redline", headers=keys["viewer"])
    assert r.status_code == 200, r.text
    red = r.json()
    with demo_city.connect() as conn:
        g = shapely.from_wkb(bytes(conn.execute(sa.text("SELECT ST_AsBinary(geom) FROM landuse_land_approvals WHERE id = :i"),
                                                {"i": approval["id"]}).scalar_one()))
    ring = list(g.geoms[0].exterior.coords)[:-1]
    assert [v for c in red["corners"] for v in (c["y_east"], c["x_north"])] == pytest.approx([v for p in ring for v in p])
    assert [c["no"] for c in red["corners"]] == [f"J{i + 1}" for i in range(len(ring))]
    geographic = pyproj.Transformer.from_crs("EPSG:4548", "EPSG:4490", always_xy=True)
    for c, (e, n) in zip(red["corners"], ring, strict=True):
        lon, lat = geographic.transform(e, n)
        assert (c["lon"], c["lat"]) == pytest.approx((lon, lat), abs=1e-9)
    assert red["area_m2"] == pytest.approx(g.area) == pytest.approx(100 * 80)
    assert red["area_mu"] == pytest.approx(g.area / 666.6667, rel=1e-4)
    assert sum(e["length_m"] for e in red["edges"]) == pytest.approx(g.length)
    assert red["parcels"] == [] and red["crs"] == "EPSG:4548"


def test_a_person_holder_on_the_red_line_is_masked_without_the_scope(client, demo_city, keys):
    with demo_city.connect() as conn:
        row = conn.execute(sa.text("""SELECT parcel_code, right_holder, ST_AsBinary(ST_Buffer(geom, -2)) AS wkb
            FROM cadastre_parcels WHERE holder_kind = 'person' AND valid_to IS NULL AND recorded_to IS NULL
             AND valid_from <= now() ORDER BY parcel_code DESC LIMIT 1""")).mappings().one()
    site = shapely.from_wkb(bytes(row["wkb"]))
    r = client.post("/land/approvals", headers=keys["full"], json={
        "approval_no": f"掩码〔{uuid.uuid4().hex[:6]}〕号", "supply_kind": "allocation", "project_name": "掩码测试",
        "land_user": "厦门市测试局", "landuse_code": "0810", "approved_on": "2025-06-01", "geometry": lonlat(site)})
    assert r.status_code == 201, r.text
    made = r.json()
    try:
        with demo_city.connect() as conn:
            district = conn.execute(sa.text("SELECT district FROM cadastre_parcels WHERE parcel_code = :c AND "
                                            "valid_to IS NULL AND recorded_to IS NULL"), {"c": row["parcel_code"]}).scalar()
        assert made["district"] == district and made["parcel_codes"] == [row["parcel_code"]]
        seen = client.get(f"/land/approvals/{made['id']}/redline", headers=keys["viewer"])
        [parcel] = seen.json()["parcels"]
        assert parcel["right_holder"] == mask_text(row["right_holder"]) and row["right_holder"] not in seen.text
        page = client.get(f"/land/approvals/{made['id']}/redline.html", headers=keys["viewer"])
        assert page.status_code == 200 and row["right_holder"] not in page.text
        full = client.get(f"/land/approvals/{made['id']}/redline", headers=keys["full"]).json()
        assert full["parcels"][0]["right_holder"] == row["right_holder"]
        assert full["parcels"][0]["area_inside"] == pytest.approx(site.area, rel=1e-6)
    finally:
        with demo_city.begin() as conn:
            conn.execute(sa.text("DELETE FROM landuse_land_approvals WHERE id = :i"), {"i": made["id"]})


def test_the_printed_red_line_map_has_corners_scale_bar_and_chinese_headings(client, keys, approvals):
    approval = approvals["rows"][4]
    red = client.get(f"/land/approvals/{approval['id']}/redline", headers=keys["full"]).json()
    page = client.get(f"/land/approvals/{approval['id']}/redline.html", headers=keys["full"])
    assert page.status_code == 200
    bar_m = float(re.search(r'data-scale-bar-m="([\d.]+)"', page.text).group(1))
    m_per_px = float(re.search(r'data-scale-m-per-px="([\d.]+)"', page.text).group(1))
    halves = [float(w) for w in re.findall(r'<g class="scale-bar"><rect x="10" y="[\d.]+" width="([\d.]+)"', page.text)]
    assert halves and 2 * halves[0] * m_per_px == pytest.approx(bar_m, rel=0.01)  # the bar is as long as it says
    text = printed_text(page.text, "land-redline")
    flat = re.sub(r"\s+", "", text)
    for heading in ("建设用地红线图", "用地信息", "界址点坐标表", "界址边长", "涉及宗地", "比例尺", "北"):
        assert heading in flat, heading
    assert approval["approval_no"] in flat and "划拨" in flat and "2024年7月9日" in flat
    assert "EPSG:4548" in flat and "EPSG:4490" in flat
    for c in red["corners"]:
        assert c["no"] in flat and f"{c['x_north']:.3f}" in flat and f"{c['y_east']:.3f}" in flat
    assert "12,000.00" in flat  # the area (120 m × 100 m)
    for raw in ("allocation", "supply_kind", "None", "approved_on"):
        assert raw not in text, raw


def test_bad_requests_are_4xx_problems(client, keys, approvals):
    h = keys["full"]
    assert_problem(client.get("/land/approvals/statistics", params={"period": "week"}, headers=h), 400)
    assert_problem(client.get("/land/approvals/statistics", params={"district": "35"}, headers=h), 400, "6-digit")
    assert_problem(client.get("/land/approvals/statistics", params={"since": "2025-01-01", "until": "2024-01-01"},
                              headers=h), 400, "until")
    assert_problem(client.get("/land/approvals/statistics", params={"f": "pdf"}, headers=h), 400)
    assert_problem(client.get("/land/approvals/statistics", params={"since": "yesterday"}, headers=h), 400)
    assert_problem(client.post("/land/approvals/statistics", json={"geometry": {"type": "Point", "coordinates": [118.1, 24.5]}},
                               headers=h), 400)
    assert_problem(client.get("/land/approvals/statistics"), 401)
    assert_problem(client.get("/land/approvals/999999999/redline", headers=h), 404, "no construction-land approval")
    assert_problem(client.get("/land/approvals/999999999/redline.html", headers=h), 404)
    assert_problem(client.get("/land/approvals/abc/redline", headers=h), 400)


def test_revision_0018_backfills_the_district_of_approvals_recorded_before_it(conn):
    """The migration's backfill gives an old approval (no district) the district the write path would."""
    import importlib

    from layers.landuse import repository

    migration = importlib.import_module("layers.migrations.versions.0018_land_disputes")
    rows = conn.execute(sa.text("SELECT id, ST_AsBinary(geom) FROM landuse_land_approvals ORDER BY id")).all()
    assert rows
    expected = {i: repository.district_of(conn, shapely.from_wkb(bytes(w))) for i, w in rows}
    conn.execute(sa.text("UPDATE landuse_land_approvals SET district = NULL"))
    conn.execute(sa.text(migration.BACKFILL_DISTRICT))
    got = dict(conn.execute(sa.text("SELECT id, district FROM landuse_land_approvals")).all())
    # (an approval other tests drew where there is no parcel nor survey patch has none either way)
    assert got == expected and sum(v is not None for v in got.values()) >= 5  # the demo city's five at least
