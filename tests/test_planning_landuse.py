"""Land-use survey, change survey, balance tables and the site pre-review, checked against
independent shapely/geopandas computations on the same data (hand-made survey years 1991/1992 on
an empty square kilometre of the city, so the demo city's own data does not interfere)."""

from __future__ import annotations

import datetime as dt
import io
import json
import tempfile
import uuid
import zipfile
from pathlib import Path

import geopandas as gpd
import openpyxl
import pytest
import shapely
import sqlalchemy as sa
from shapely.geometry import Polygon, box, mapping

from data.reference import code_list
from gis.access import Caller
from gis.crs import transformer
from gis.errors import GisError, InvalidParameter, UnknownCRS
from gis.settings import get_settings
from layers.cadastre import service as registry
from layers.landuse import balance as bal
from layers.landuse import documents, redline, survey
from layers.landuse import service as land

OFFICER = Caller(name="planner", department="自然资源和规划局", read=frozenset({"*"}), write=frozenset({"*"}),
                 personal_data=True)
VIEWER = Caller(name="viewer", department="住建局", read=frozenset({"*"}), key_id=9)
Y0, Y1 = 1991, 1992
DISTRICT = "350299"
PLAN = "测试国土空间规划"
CLASSES_0 = ["0101", "0103", "0301", "0701", "1004", "1101", "05H1", "1206", "0201", "0601", "0404", "1203",
             "0102", "0305", "0702", "1107"]
CLASSES_1 = ["0701", "0601", "0101", "0301", "05H1", "1004", "1101", "0103", "0702", "0201", "1206", "0404",
             "1003", "0102", "1203", "0305", "0810", "1107", "0101", "0601", "0701", "0103", "1001", "0301", "0404"]


@pytest.fixture(scope="module")
def site(demo_city):
    """Loads two survey years, control lines, a plan, price zones and two parcels on an empty km²."""
    with demo_city.connect() as conn:
        spot = None
        for y in range(2754000, 2682000, -3000):
            for x in range(654000, 590000, -3000):
                busy = conn.execute(sa.text(
                    "SELECT EXISTS (SELECT 1 FROM cadastre_parcels WHERE geom && ST_MakeEnvelope(:x,:y,:x+1000,"
                    ":y+1000,4548)) OR EXISTS (SELECT 1 FROM landuse_survey_patches WHERE survey_year IN (1991,1992))"),
                    {"x": x, "y": y}).scalar()
                if not busy:
                    spot = (x, y)
                    break
            if spot:
                break
    assert spot, "no empty km² in the city"
    x, y = spot
    grid0 = [box(x + i * 250, y + j * 250, x + (i + 1) * 250, y + (j + 1) * 250) for j in range(4) for i in range(4)]
    grid1 = [box(x + i * 200, y + j * 200, x + (i + 1) * 200, y + (j + 1) * 200) for j in range(5) for i in range(5)]
    with demo_city.begin() as conn:
        first = land.load_survey_year(conn, OFFICER, year=Y0, settings=get_settings(), patches=[
            {"patch_no": f"T{Y0}-{k}", "class_code": c, "district": DISTRICT, "geometry": g}
            for k, (g, c) in enumerate(zip(grid0, CLASSES_0, strict=True))])
        second = land.load_survey_year(conn, OFFICER, year=Y1, settings=get_settings(), patches=[
            {"patch_no": f"T{Y1}-{k}", "class_code": c, "district": DISTRICT, "geometry": g}
            for k, (g, c) in enumerate(zip(grid1, CLASSES_1, strict=True))])
        srid = 4548
        for kind, zone, g in [("permanent_basic_farmland", None, box(x, y, x + 300, y + 300)),
                              ("ecological_red_line", "general", box(x + 600, y + 600, x + 1000, y + 1000)),
                              ("ecological_red_line", "core", box(x + 800, y + 800, x + 1000, y + 1000)),
                              ("urban_development_boundary", None, box(x, y, x + 700, y + 1000))]:
            conn.execute(sa.text("INSERT INTO landuse_control_lines (kind, zone_type, name, geom) VALUES "
                                 "(:k, :z, :n, ST_Multi(ST_GeomFromText(:g, :s)))"),
                         {"k": kind, "z": zone, "n": f"测试{kind}", "g": g.wkt, "s": srid})
        for code, g in [("0701", box(x, y, x + 500, y + 1000)), ("1001", box(x + 500, y, x + 1000, y + 900))]:
            conn.execute(sa.text("INSERT INTO landuse_planning_zones (plan_name, plan_year, class_code, district, geom) "
                                 "VALUES (:p, 2035, :c, :d, ST_Multi(ST_GeomFromText(:g, :s)))"),
                         {"p": PLAN, "c": code, "d": DISTRICT, "g": g.wkt, "s": srid})
        for cls, grade, price, g in [("industrial", 1, 1500, box(x, y, x + 450, y + 1000)),
                                     ("industrial", 2, 900, box(x + 450, y, x + 1000, y + 1000)),
                                     ("commercial", 1, 8000, box(x, y, x + 1000, y + 400))]:
            conn.execute(sa.text("INSERT INTO landuse_price_zones (land_class, grade, price_per_m2, base_date, geom) "
                                 "VALUES (:c, :g, :p, '2024-01-01', ST_Multi(ST_GeomFromText(:w, :s)))"),
                         {"c": cls, "g": grade, "p": price, "w": g.wkt, "s": srid})
        prefix = "350299" + f"{uuid.uuid4().int % 10**6:06d}"
        attrs = {"right_type": "国有建设用地使用权", "landuse_code": "0701", "district": DISTRICT}
        registry.register_initial(conn, OFFICER, sub_district=prefix, ownership="G", parcel_type="B",
                                  attributes={**attrs, "right_holder": "李小龙", "holder_kind": "person",
                                              "holder_id_number": "350203199001011234"},
                                  geometry=box(x + 100, y + 100, x + 400, y + 300),
                                  effective_at=dt.datetime(1990, 1, 1, tzinfo=dt.UTC))
        registry.register_initial(conn, OFFICER, sub_district=prefix, ownership="G", parcel_type="B",
                                  attributes={**attrs, "right_holder": "厦门某公司"},
                                  geometry=box(x + 600, y + 300, x + 900, y + 500),
                                  effective_at=dt.datetime(1990, 1, 1, tzinfo=dt.UTC))
    yield {"x": x, "y": y, "grid0": grid0, "grid1": grid1, "first": first, "second": second}
    # take the hand-made data out again so later modules see the demo city as generated
    area = box(x - 1, y - 1, x + 1001, y + 1001).wkt
    with demo_city.begin() as conn:
        conn.execute(sa.text("DELETE FROM landuse_change_patches WHERE from_year BETWEEN 1991 AND 1993"))
        conn.execute(sa.text("DELETE FROM landuse_survey_patches WHERE survey_year BETWEEN 1991 AND 1993"))
        conn.execute(sa.text("DELETE FROM landuse_planning_zones WHERE plan_name = :p"), {"p": PLAN})
        for table in ("landuse_control_lines", "landuse_price_zones", "landuse_prereview_reports",
                      "landuse_supervision_cases", "landuse_land_approvals"):
            conn.execute(sa.text(f"DELETE FROM {table} WHERE ST_CoveredBy(geom, ST_GeomFromText(:a, 4548))"),
                         {"a": area})
        conn.execute(sa.text("DELETE FROM cadastre_registrations WHERE left(parcel_codes[1], 12) = :p"),
                     {"p": prefix})
        conn.execute(sa.text("DELETE FROM cadastre_parcels WHERE left(parcel_code, 12) = :p"), {"p": prefix})


def red_line_shape(site) -> Polygon:
    x, y = site["x"], site["y"]
    return Polygon([(x + 150.5, y + 150.25), (x + 850, y + 200), (x + 910.75, y + 880), (x + 200, y + 820.5)],
                   [[(x + 400, y + 400), (x + 450, y + 400), (x + 450, y + 450), (x + 400, y + 450)]])


def frame(engine, sql: str, **params) -> gpd.GeoDataFrame:
    with engine.connect() as conn:
        return gpd.read_postgis(sa.text(sql), conn, geom_col="geom", params=params)


# --- survey and change survey ----------------------------------------------------------------------

def test_survey_load_and_change_patches(demo_city, site):
    assert site["first"]["previous_year"] is None
    assert site["second"]["previous_year"] == Y0 and site["second"]["change_patches"] > 0
    # oracle: overlay of the two grids where the class differs
    expected: dict[tuple[str, str], float] = {}
    for g0, c0 in zip(site["grid0"], CLASSES_0, strict=True):
        for g1, c1 in zip(site["grid1"], CLASSES_1, strict=True):
            a = g0.intersection(g1).area
            if c0 != c1 and a > 1.0:
                expected[(c0, c1)] = expected.get((c0, c1), 0.0) + a
    with demo_city.connect() as conn:
        rows = conn.execute(sa.text("SELECT from_code, to_code, sum(plane_area) FROM landuse_change_patches WHERE "
                                    "from_year = :a AND to_year = :b GROUP BY 1, 2"), {"a": Y0, "b": Y1}).all()
        old = conn.execute(sa.text("SELECT count(*) FROM landuse_survey_patches WHERE survey_year = :a"),
                           {"a": Y0}).scalar()
    got = {(a, b): area for a, b, area in rows}
    assert got.keys() == expected.keys()
    for key, area in expected.items():
        assert got[key] == pytest.approx(area, abs=0.01)
    assert old == 16  # the previous year stays queryable
    # ellipsoidal area is a little below the plane area at Xiamen (≈0.03 %)
    ratio = survey.ellipsoidal_area(site["grid0"][0], get_settings().spatial.storage_crs) / site["grid0"][0].area
    assert 0.999 < ratio < 1.0


def test_survey_refuses_bad_year_and_codes(demo_city, site):
    with demo_city.begin() as conn, pytest.raises(GisError):
        land.load_survey_year(conn, OFFICER, year=Y0, settings=get_settings(), patches=[
            {"patch_no": "x", "class_code": "0101", "district": DISTRICT, "geometry": site["grid0"][0]}])
    with demo_city.begin() as conn, pytest.raises(InvalidParameter):
        land.load_survey_year(conn, OFFICER, year=1993, settings=get_settings(), patches=[
            {"patch_no": "x", "class_code": "9999", "district": DISTRICT, "geometry": site["grid0"][0]}])
    with demo_city.connect() as conn:
        assert conn.execute(sa.text("SELECT count(*) FROM landuse_survey_patches WHERE survey_year = 1993")).scalar() == 0


# --- balance tables --------------------------------------------------------------------------------

def legal_groups() -> dict[str, str]:
    return {r["code"]: r["legal_group"] for r in code_list("survey_tnls") if r.get("legal_group")}


def oracle_by_class(engine, year: int, area: Polygon | None) -> dict[str, tuple[float, float]]:
    df = frame(engine, "SELECT class_code, ellipsoidal_area, geom FROM landuse_survey_patches WHERE survey_year = :y",
               y=year)
    out: dict[str, tuple[float, float]] = {}
    for code, ell, geom in zip(df["class_code"], df["ellipsoidal_area"], df.geometry, strict=True):
        inside = geom.area if area is None else geom.intersection(area).area
        if inside <= 0:
            continue
        plane, e = out.get(code, (0.0, 0.0))
        out[code] = (plane + inside, e + ell * inside / geom.area)
    return out


@pytest.mark.parametrize("basis", ["ellipsoidal", "plane"])
def test_balance_two_years_matches_geopandas(demo_city, site, basis):
    area = red_line_shape(site)
    pick = 1 if basis == "ellipsoidal" else 0
    groups = legal_groups()
    for geometry, district in ((None, DISTRICT), (area, None)):
        with demo_city.connect() as conn:
            table = land.balance_table(conn, OFFICER, base_year=Y0, target_year=Y1, geometry=geometry, district=district,
                                      basis=basis)
        base = oracle_by_class(demo_city, Y0, geometry)
        target = oracle_by_class(demo_city, Y1, geometry)
        rows = {(r["level"], r["code"] or r["name"]): r for r in table["rows"]}
        for code in base.keys() | target.keys():
            row = rows.get((2, code))
            assert row is not None, code
            assert row["area_0"] == pytest.approx(base.get(code, (0, 0))[pick], abs=0.01)
            assert row["area_1"] == pytest.approx(target.get(code, (0, 0))[pick], abs=0.01)
            assert row["change"] == pytest.approx(row["area_1"] - row["area_0"], abs=1e-6)
        for group in ("农用地", "建设用地", "未利用地"):
            expect0 = sum(v[pick] for c, v in base.items() if groups[c] == group)
            expect1 = sum(v[pick] for c, v in target.items() if groups[c] == group)
            assert rows[(0, group)]["area_0"] == pytest.approx(expect0, abs=0.01)
            assert rows[(0, group)]["area_1"] == pytest.approx(expect1, abs=0.01)
        total = table["rows"][-1]
        assert total["area_0"] == pytest.approx(sum(v[pick] for v in base.values()), abs=0.01)
        assert table["total_constant"] is (abs(total["area_1"] - total["area_0"]) <= 1.0)
        assert table["total_constant"]  # both years cover the same land
        assert sum(r["change"] for r in table["rows"] if r["level"] == 0) == pytest.approx(0.0, abs=1.0)
        assert sum(r["share_0"] for r in table["rows"] if r["level"] == 0) == pytest.approx(1.0)
        assert table["area_basis"] == basis


def test_balance_survey_against_plan_and_exports(demo_city, site):
    with demo_city.connect() as conn:
        table = land.balance_table(conn, OFFICER, base_year=Y1, target_plan=PLAN, district=DISTRICT)
    assert table["area_basis"] == "plane"
    rows = {(r["level"], r["code"] or r["name"]): r for r in table["rows"]}
    # the plan covers 1000×1000 minus a 500×100 strip: the totals differ and the table says so
    assert table["rows"][-1]["area_1"] == pytest.approx(500 * 1000 + 500 * 900, abs=0.01)
    assert table["total_constant"] is False and "differ" in table["total_note"]
    assert rows[(2, "0701")]["area_1"] == pytest.approx(500 * 1000, abs=0.01)  # 0701 → 0701 via the crosswalk
    assert rows[(2, "0601")]["area_1"] == pytest.approx(500 * 900, abs=0.01)  # 1001 → 0601

    with demo_city.connect() as conn:
        table = land.balance_table(conn, OFFICER, base_year=Y0, target_year=Y1, district=DISTRICT)
    text = bal.balance_csv(table).decode("utf-8-sig")
    assert "合计" in text and "农用地" in text
    wb = openpyxl.load_workbook(io.BytesIO(bal.balance_xlsx(table)))
    ws = wb.active
    totals = [row for row in ws.iter_rows(values_only=True) if row and row[1] == "合计"]
    assert totals and totals[0][2] == pytest.approx(table["rows"][-1]["area_0"], abs=0.01)
    page = documents.balance_document(table, bureau="厦门市自然资源和规划局", zone="Asia/Shanghai")
    assert "<table" in page and "总面积不变" in page and "占比" in page
    with demo_city.connect() as conn, pytest.raises(InvalidParameter):
        land.balance_table(conn, OFFICER, base_year=Y0, district=DISTRICT)


def test_statistics_by_hierarchy(demo_city, site):
    with demo_city.connect() as conn:
        stats = land.landuse_statistics(conn, OFFICER, year=Y0, district=DISTRICT, basis="plane")
    assert stats["area_basis"] == "plane"
    assert stats["total"] == pytest.approx(1000 * 1000, abs=0.01)
    first_level = [r for r in stats["rows"] if r["level"] == 1 and r["code"] == "01"]
    assert first_level and first_level[0]["area_0"] == pytest.approx(3 * 250 * 250, abs=0.01)


# --- red-line parsing ------------------------------------------------------------------------------

def txt_for(polygon: Polygon, *, header: str | None = None, prefix: bool = True) -> str:
    head = header if header is not None else (
        "[属性描述]\n坐标系=2000国家大地坐标系\n几度分带=3\n投影类型=高斯克吕格\n计量单位=米\n带号=39\n精度=0.01\n")
    rows = []
    for ring_no, ring in enumerate([polygon.exterior, *polygon.interiors], start=1):
        for k, (e, n) in enumerate(ring.coords, start=1):
            rows.append(f"J{k},{ring_no},{n:.3f},{(39_000_000 if prefix else 0) + e:.3f}")
    return head + f"[地块坐标]\n{len(rows)},{polygon.area / 10000:.4f},1,测试地块,面,,工业用地,,@\n" + "\n".join(rows) + "\n"


def test_redline_formats(site, tmp_path):
    shape = red_line_shape(site)
    parsed = redline.parse_redline(txt_for(shape).encode("gb18030"), filename="红线.txt")
    assert parsed.input_format == "txt" and parsed.input_crs == "EPSG:4548"
    assert parsed.geometry.area == pytest.approx(shape.area, abs=0.01)
    assert parsed.geometry.symmetric_difference(shape).area < 0.01
    no_prefix = redline.parse_redline(txt_for(shape, prefix=False))
    assert no_prefix.geometry.symmetric_difference(shape).area < 0.01

    gj = {"type": "Feature", "properties": {}, "geometry": mapping(shape)}
    parsed = redline.parse_redline(json.dumps(gj), declared_crs="EPSG:4548")
    assert parsed.input_format == "geojson" and parsed.geometry.symmetric_difference(shape).area < 0.01
    t = transformer("EPSG:4548", "OGC:CRS84")
    lonlat = shapely.ops.transform(t.transform, shape)
    parsed = redline.parse_redline(json.dumps({"type": "FeatureCollection", "features": [
        {"type": "Feature", "properties": {}, "geometry": mapping(lonlat)}]}))
    assert parsed.crs_source.startswith("RFC 7946") and parsed.geometry.area == pytest.approx(shape.area, rel=1e-6)

    shp_dir = Path(tempfile.mkdtemp(dir=tmp_path))
    gpd.GeoDataFrame({"name": ["红线"]}, geometry=[shape], crs="EPSG:4548").to_file(shp_dir / "redline.shp")
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for f in shp_dir.iterdir():
            zf.write(f, f.name)
    parsed = redline.parse_redline(buf.getvalue(), filename="redline.zip")
    assert parsed.input_format == "shapefile" and parsed.input_crs == "EPSG:4548"
    assert parsed.geometry.symmetric_difference(shape).area < 0.01
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for f in shp_dir.iterdir():
            if f.suffix != ".prj":
                zf.write(f, f.name)
    with pytest.raises(UnknownCRS, match="no .prj"):
        redline.parse_redline(buf.getvalue(), filename="redline.zip")

    import ezdxf

    doc = ezdxf.new()
    msp = doc.modelspace()
    msp.add_lwpolyline(list(shape.exterior.coords)[:-1], close=True)
    msp.add_lwpolyline(list(shape.interiors[0].coords)[:-1], close=True)
    stream = io.StringIO()
    doc.write(stream)
    parsed = redline.parse_redline(stream.getvalue().encode(), filename="redline.dxf", declared_crs="EPSG:4548")
    assert parsed.input_format == "dxf" and parsed.geometry.symmetric_difference(shape).area < 0.01
    with pytest.raises(UnknownCRS, match="crs="):
        redline.parse_redline(stream.getvalue().encode(), filename="redline.dxf")


@pytest.mark.parametrize(("header", "message"), [
    ("[属性描述]\n几度分带=3\n投影类型=高斯克吕格\n带号=39\n", "declares no 坐标系"),
    ("[属性描述]\n坐标系=1980西安坐标系\n几度分带=3\n投影类型=高斯克吕格\n带号=39\n", "not CGCS2000"),
    ("[属性描述]\n坐标系=2000国家大地坐标系\n几度分带=3\n投影类型=高斯克吕格\n带号=38\n", "zone prefix 39"),
    ("[属性描述]\n坐标系=2000国家大地坐标系\n几度分带=3\n投影类型=UTM\n带号=39\n", "投影类型"),
])
def test_txt_with_wrong_or_missing_crs_is_refused(site, header, message):
    with pytest.raises(UnknownCRS, match=message) as info:
        redline.parse_redline(txt_for(red_line_shape(site), header=header))
    assert info.value.status == 400


def test_txt_without_zone_anywhere_is_refused(site):
    header = "[属性描述]\n坐标系=2000国家大地坐标系\n几度分带=3\n投影类型=高斯克吕格\n"
    with pytest.raises(UnknownCRS, match="带号"):
        redline.parse_redline(txt_for(red_line_shape(site), header=header, prefix=False))
    # with a prefix the zone is taken from the eastings, and the report says so
    parsed = redline.parse_redline(txt_for(red_line_shape(site), header=header, prefix=True))
    assert any("带号 missing" in n for n in parsed.notes)


# --- pre-review ------------------------------------------------------------------------------------

def test_prereview_areas_match_shapely(demo_city, site):
    parsed = redline.parse_redline(txt_for(red_line_shape(site)))
    red = parsed.geometry
    with demo_city.begin() as conn:
        report = land.site_prereview(conn, OFFICER, parsed, project_name="测试项目", intended_use="1001",
                                    survey_year=Y0, plan_name=PLAN, price_class="industrial")
    assert report["total_area"] == pytest.approx(red.area, abs=0.01)
    # land use by class
    oracle = oracle_by_class(demo_city, Y0, red)
    expected = {c: v[0] for c, v in oracle.items()}
    got = {r["class_code"]: r["plane_area"] for r in report["landuse"]}
    assert got.keys() == expected.keys()
    for code, area in expected.items():
        assert got[code] == pytest.approx(area, abs=0.01)
    for row in report["landuse"]:  # the prorated ellipsoidal part too
        assert row["ellipsoidal_area"] == pytest.approx(oracle[row["class_code"]][1], abs=0.01)
    assert classes_first_is_arable(report["landuse"])
    assert report["arable_area"] == pytest.approx(sum(v for c, v in expected.items() if c.startswith("01")), abs=0.01)
    # control lines, dissolved per kind
    lines = frame(demo_city, "SELECT kind, coalesce(zone_type, '') AS zone_type, geom FROM landuse_control_lines "
                  "WHERE ST_Intersects(geom, ST_GeomFromText(:g, 4548))", g=red.wkt)

    def inside(kind: str, zone: str | None = None) -> float:
        sel = lines[(lines.kind == kind) & ((lines.zone_type == zone) if zone is not None else True)]
        return shapely.union_all(list(sel.geometry)).intersection(red).area if len(sel) else 0.0

    items = {i["domain"]: i for i in report["items"]}
    pbf = inside("permanent_basic_farmland")
    assert items["permanent_basic_farmland"]["overlap_area"] == pytest.approx(pbf, abs=0.01)
    assert items["permanent_basic_farmland"]["severity"] == ("approval" if pbf > 0.01 else "pass")
    core, general = inside("ecological_red_line", "core"), inside("ecological_red_line", "general")
    assert items["ecological_red_line"]["core_area"] == pytest.approx(core, abs=0.01)
    assert items["ecological_red_line"]["general_area"] == pytest.approx(general, abs=0.01)
    assert items["ecological_red_line"]["severity"] == ("refused" if core > 0.01 else "conditional")
    udb = inside("urban_development_boundary")
    assert items["urban_development_boundary"]["inside_area"] == pytest.approx(udb, abs=0.01)
    assert items["urban_development_boundary"]["outside_area"] == pytest.approx(red.area - udb, abs=0.01)
    assert report["verdict"] == "refused" if core > 0.01 else True
    # planning conformity: zones 0701 (not industrial) and 1001 (conforms)
    zones = frame(demo_city, "SELECT class_code, geom FROM landuse_planning_zones WHERE plan_name = :p", p=PLAN)
    conform = sum(g.intersection(red).area for c, g in zip(zones.class_code, zones.geometry, strict=True)
                  if c.startswith("1001"))
    nonconform = sum(g.intersection(red).area for c, g in zip(zones.class_code, zones.geometry, strict=True)
                     if not c.startswith("1001"))
    assert items["planning"]["conforming_area"] == pytest.approx(conform, abs=0.01)
    assert items["planning"]["nonconforming_area"] == pytest.approx(nonconform, abs=0.01)
    # parcels and holders
    parcels = frame(demo_city, "SELECT parcel_code, right_holder, geom FROM cadastre_parcels WHERE valid_to IS NULL "
                    "AND recorded_to IS NULL AND ST_Intersects(geom, ST_GeomFromText(:g, 4548))", g=red.wkt)
    expected_parcels = {c: g.intersection(red).area for c, g in zip(parcels.parcel_code, parcels.geometry, strict=True)
                        if g.intersection(red).area > 0.01}
    got_parcels = {p["parcel_code"]: p["area_inside"] for p in report["parcels"]}
    assert got_parcels.keys() == expected_parcels.keys() and len(got_parcels) == 2
    for code, area in expected_parcels.items():
        assert got_parcels[code] == pytest.approx(area, abs=0.01)
    # base land price
    zones = frame(demo_city, "SELECT land_class, price_per_m2, geom FROM landuse_price_zones WHERE "
                  "ST_Intersects(geom, ST_GeomFromText(:g, 4548))", g=red.wkt)
    value = sum(float(p) * g.intersection(red).area for c, p, g in
                zip(zones.land_class, zones.price_per_m2, zones.geometry, strict=True) if c == "industrial")
    assert report["land_price"]["value"] == pytest.approx(value, abs=0.01 * 1500)
    assert report["pipelines"]["available"] in (True, False)

    # stored, re-opened and masked for a viewer without the personal-data scope
    with demo_city.connect() as conn:
        again, geom = land.open_report(conn, OFFICER, report["id"])
        masked, _ = land.open_report(conn, VIEWER, report["id"])
        page = documents.prereview_document(masked, geom, controls=[], parcels_around=[], roads=[], box=geom.bounds,
                                            bureau="厦门市自然资源和规划局", zone="Asia/Shanghai",
                                            storage_crs="EPSG:4548")
    assert again["total_area"] == pytest.approx(report["total_area"])
    holders = {p["right_holder"] for p in again["parcels"]}
    assert "李小龙" in holders and "李**" in {p["right_holder"] for p in masked["parcels"]}
    assert "李小龙" not in page and "<svg" in page and "http://" not in page.replace("http://www.w3.org/2000/svg", "")


def classes_first_is_arable(rows: list[dict]) -> bool:
    seen_other = False
    for row in rows:
        if not row["class_code"].startswith("01"):
            seen_other = True
        elif seen_other:
            return False
    return True


def test_supervision_comparison_and_price(demo_city, site):
    x, y = site["x"], site["y"]
    patch = box(x + 50, y + 50, x + 450, y + 350)
    with demo_city.connect() as conn:
        result = land.supervision_comparison(conn, OFFICER, geometry=patch,
                                             first=dt.datetime(1991, 6, 1, tzinfo=dt.UTC),
                                             second=dt.datetime(1992, 6, 1, tzinfo=dt.UTC))
    assert result["first"]["survey_year"] == Y0 and result["second"]["survey_year"] == Y1
    expected0 = oracle_by_class(demo_city, Y0, patch)
    expected1 = oracle_by_class(demo_city, Y1, patch)
    for code in expected0.keys() | expected1.keys():
        change = expected1.get(code, (0, 0))[0] - expected0.get(code, (0, 0))[0]
        if abs(change) > 0.01:
            assert result["changes"]["landuse"][code] == pytest.approx(change, abs=0.01)
    assert len(result["first"]["parcels"]) == 1

    with demo_city.connect() as conn:
        point = land.point_from_lonlat(*transformer("EPSG:4548", "OGC:CRS84").transform(x + 100, y + 100),
                                      get_settings())
        at = land.land_price_at(conn, OFFICER, point=point)
    assert {(z["land_class"], z["price_per_m2"]) for z in at["zones"]} >= {("industrial", 1500.0), ("commercial", 8000.0)}


def test_land_approval_links_parcels_and_is_audited(demo_city, site):
    x, y = site["x"], site["y"]
    with demo_city.begin() as conn:
        audits = conn.execute(sa.text("SELECT count(*) FROM audit_log WHERE layer = 'landuse_land_approvals'")).scalar()
        row = land.record_land_approval(conn, OFFICER, {
            "approval_no": f"厦地批-{uuid.uuid4().hex[:6]}", "supply_kind": "lease", "project_name": "仓库",
            "land_user": "某物流公司", "landuse_code": "0508", "approved_on": dt.date(1992, 3, 1)},
            box(x + 350, y + 250, x + 650, y + 350))
        linked = conn.execute(sa.text(
            "SELECT array_agg(parcel_code ORDER BY parcel_code) FROM cadastre_parcels WHERE valid_to IS NULL AND "
            "recorded_to IS NULL AND ST_Area(ST_Intersection(geom, ST_GeomFromText(:g, 4548))) > 0.01"),
            {"g": box(x + 350, y + 250, x + 650, y + 350).wkt}).scalar()
        assert sorted(row["parcel_codes"]) == linked and len(linked) == 2
        assert conn.execute(sa.text("SELECT count(*) FROM audit_log WHERE layer = 'landuse_land_approvals'")
                            ).scalar() == audits + 1
        with pytest.raises(InvalidParameter):
            land.record_land_approval(conn, OFFICER, {"approval_no": "x", "supply_kind": "gift"}, box(x, y, x + 1, y + 1))
