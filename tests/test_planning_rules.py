"""Survey years complete or partial (the 7-patch partial year), and the urban-development-boundary
verdict by intended use (0701 housing and 1207 road outside the boundary differ), against shapely
computations on the same data."""

from __future__ import annotations

import csv
import shutil

import pytest
import shapely
import sqlalchemy as sa
from shapely.geometry import box

from data.reference import RULES_DIR
from gis.access import Caller
from gis.settings import get_settings
from layers.landuse import service as land
from layers.landuse.redline import RedLine

OFFICER = Caller(name="planner", department="自然资源和规划局", read=frozenset({"*"}), write=frozenset({"*"}),
                 personal_data=True)


def red(geometry) -> RedLine:
    return RedLine(geometry, "geojson", "EPSG:4548", "test")


@pytest.fixture(scope="module")
def partial_year(demo_city):
    """Seven patches of a new survey year (after every loaded one) inside a 1 km² of the demo city,
    loaded without saying whether the year is complete; removed again after the module."""
    with demo_city.connect() as conn:
        latest = conn.execute(sa.text("SELECT max(survey_year) FROM landuse_survey_patches")).scalar_one()
        complete = land.survey_year_used(conn, None)[0]  # the demo city's current survey
        cx, cy = conn.execute(sa.text(
            "SELECT ST_X(c), ST_Y(c) FROM (SELECT ST_Centroid(ST_Extent(geom)) c FROM landuse_survey_patches "
            "WHERE survey_year = :y) s"), {"y": complete}).one()
    year = latest + 1
    site = box(cx - 500, cy - 500, cx + 500, cy + 500)
    patches = [box(cx - 450 + 120 * k, cy - 40, cx - 450 + 120 * k + 60, cy + 40) for k in range(7)]
    with demo_city.begin() as conn:
        loaded = land.load_survey_year(conn, OFFICER, year=year, settings=get_settings(), patches=[
            {"patch_no": f"P{year}-{k}", "class_code": "0701", "district": "350203", "geometry": g}
            for k, g in enumerate(patches)])
    yield {"year": year, "complete_year": complete, "site": site, "patches": patches, "loaded": loaded}
    with demo_city.begin() as conn:
        conn.execute(sa.text("DELETE FROM landuse_change_patches WHERE to_year = :y"), {"y": year})
        conn.execute(sa.text("DELETE FROM landuse_survey_patches WHERE survey_year = :y"), {"y": year})
        conn.execute(sa.text("DELETE FROM landuse_survey_years WHERE survey_year = :y"), {"y": year})


def test_a_seven_patch_year_is_partial_and_never_the_default(demo_city, client, partial_year):
    year, complete, site = partial_year["year"], partial_year["complete_year"], partial_year["site"]
    loaded = partial_year["loaded"]
    assert loaded["completeness"] == "partial" and loaded["completeness_declared"] is False
    assert 0 < loaded["coverage"] < 0.01
    listing = client.get("/planning/survey").json()
    assert listing["default_year"] == complete
    assert {y["survey_year"]: y["completeness"] for y in listing["years"]}[year] == "partial"

    with demo_city.connect() as conn:
        # without survey_year: the latest complete year, which covers the whole red line
        report = land.site_prereview(conn, OFFICER, red(site), project_name="默认年度", store=False)
        assert report["survey_year"] == complete and report["survey_coverage"]["year"] == complete
        assert report["survey_coverage"]["uncovered_area_m2"] == pytest.approx(0, abs=0.01)
        assert report["landuse"] and report["warnings"] == []
        assert sum(r["plane_area"] for r in report["landuse"]) == pytest.approx(site.area, abs=0.01)
        # naming the partial year: the report says how much of the red line it leaves out, and warns
        partial = land.site_prereview(conn, OFFICER, red(site), project_name="部分年度", survey_year=year,
                                      store=False)
        covered = sum(g.intersection(site).area for g in partial_year["patches"])
        assert partial["survey_coverage"]["completeness"] == "partial"
        assert partial["survey_coverage"]["covered_area_m2"] == pytest.approx(covered, abs=0.01)
        assert partial["survey_coverage"]["uncovered_area_m2"] == pytest.approx(site.area - covered, abs=0.01)
        assert partial["warnings"] and str(year) in partial["warnings"][0]
        item = next(i for i in partial["items"] if i["domain"] == "survey_coverage")
        assert item["severity"] == "conditional" and partial["verdict"] != "pass"
        # statistics and balance tables default to the complete year and state what they leave out
        stats = land.landuse_statistics(conn, OFFICER)
        assert stats["year"] == complete and stats["survey_coverage"]["uncovered_area_m2"] == pytest.approx(0, abs=1)
        area_stats = land.landuse_statistics(conn, OFFICER, year=year, geometry=site, basis="plane")
        assert area_stats["total"] == pytest.approx(covered, abs=0.01)
        assert area_stats["survey_coverage"]["uncovered_area_m2"] == pytest.approx(site.area - covered, abs=0.01)
        table = land.balance_table(conn, OFFICER, target_year=year, geometry=site, basis="plane")
        assert table["base"]["year"] == complete
        assert table["survey_coverage"]["base"]["uncovered_area_m2"] == pytest.approx(0, abs=0.01)
        assert table["survey_coverage"]["target"]["uncovered_area_m2"] == pytest.approx(site.area - covered, abs=0.01)
        assert table["total_constant"] is False
    # declared complete, it becomes the default (and declared partial again, it does not)
    with demo_city.begin() as conn:
        assert land.record_survey_year(conn, OFFICER, year=year, completeness="complete")["declared"] is True
        assert land.survey_year_used(conn, None)[0] == year
        conn.rollback()
    with demo_city.connect() as conn:
        assert land.survey_year_used(conn, None)[0] == complete


def test_completeness_declared_over_http(client, demo_city, partial_year):
    from gis.keys import create_key

    with demo_city.begin() as conn:
        key = create_key(conn, department="自然资源和规划局", read=["landuse"], write=["landuse"]).secret
    year = partial_year["year"]
    bad = client.post(f"/planning/survey/{year}/completeness", headers={"X-API-Key": key},
                      json={"completeness": "mostly"})
    assert bad.status_code == 400 and bad.headers["content-type"].startswith("application/problem+json")
    ok = client.post(f"/planning/survey/{year}/completeness", headers={"X-API-Key": key},
                     json={"completeness": "partial", "note": "局部更新调查"})
    assert ok.status_code == 200 and ok.json()["declared"] is True and ok.json()["completeness"] == "partial"
    assert client.post(f"/planning/survey/{year}/completeness", json={"completeness": "partial"}).status_code == 401


@pytest.fixture(scope="module")
def boundary_site(demo_city, empty_square_km):
    """An empty km² with an urban development boundary over its west 600 m; removed after."""
    x, y = empty_square_km(("cadastre_parcels", "landuse_survey_patches", "landuse_control_lines"),
                           range(607000, 655000, 3000), range(2693000, 2755000, 3000))
    boundary = box(x, y, x + 600, y + 1000)
    with demo_city.begin() as conn:
        conn.execute(sa.text("INSERT INTO landuse_control_lines (kind, name, geom) VALUES "
                             "('urban_development_boundary', '测试城镇开发边界', ST_Multi(ST_GeomFromText(:g, 4548)))"),
                     {"g": boundary.wkt})
    yield x, y, boundary
    with demo_city.begin() as conn:
        conn.execute(sa.text("DELETE FROM landuse_control_lines WHERE name = '测试城镇开发边界'"))


def test_outside_the_boundary_the_verdict_follows_the_intended_use(demo_city, boundary_site, tmp_path):
    x, y, boundary = boundary_site
    site = shapely.Polygon([(x + 400, y + 100), (x + 900, y + 120), (x + 880, y + 500), (x + 420, y + 480)])
    outside = site.difference(boundary).area

    def item(conn, use, rules_dir=None) -> dict:
        report = land.site_prereview(conn, OFFICER, red(site), project_name=f"use {use}", intended_use=use,
                                     store=False, rules_dir=rules_dir)
        return next(i for i in report["items"] if i["domain"] == "urban_development_boundary")

    with demo_city.connect() as conn:
        housing, road = item(conn, "0701"), item(conn, "1207")
        assert housing["outside_area"] == pytest.approx(outside, abs=0.01)
        assert housing["severity"] == "refused" and road["severity"] == "conditional"
        assert housing["use_rule"]["planning_code"] == "07" and road["use_rule"]["planning_code"] == "1207"
        assert road["use_rule"]["source"] and housing["use_rule"]["source"]
        assert item(conn, "070101")["severity"] == "refused"  # a six-digit class takes its 4/2-digit row
        assert item(conn, "0703")["severity"] == "conditional"  # rural homesteads: the village plan
        assert item(conn, "1202")["severity"] == "conditional"  # highway
        assert item(conn, "0101")["severity"] == "pass"  # farming is not urban construction
        assert item(conn, None)["severity"] == "conditional"  # no use given: cannot be judged
        # the rule is data: a city that lists housing as conditional gets that verdict
        rules = tmp_path / "rules"
        shutil.copytree(RULES_DIR, rules)
        path = rules / "urban_boundary_uses.csv"
        with path.open(encoding="utf-8") as handle:
            rows = list(csv.DictReader(handle))
        for row in rows:
            if row["planning_code"] == "07":
                row["outside_verdict"] = "conditional"
        with path.open("w", encoding="utf-8", newline="") as handle:
            writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
            writer.writeheader()
            writer.writerows(rows)
        assert item(conn, "0701", rules)["severity"] == "conditional"
        inside_only = land.site_prereview(conn, OFFICER, red(box(x + 100, y + 100, x + 500, y + 500)),
                                          project_name="inside", intended_use="0701", store=False)
        assert next(i for i in inside_only["items"] if i["domain"] == "urban_development_boundary")["severity"] == "pass"
