"""Cross-section (横断面): crossings against shapely, depths against the DEM, clearances against the rules."""

from __future__ import annotations

import numpy as np
import pytest
import rasterio
import shapely
from fastapi.testclient import TestClient
from rasterio.transform import from_origin
from shapely.geometry import LineString, Point
from test_pipeline_isolation_api import pipeline_cleanup  # noqa: F401  (drops this module's networks)
from test_pipeline_profile import with_dem

from gis.access import SYSTEM
from gis.crs import transformer
from gis.keys import create_key
from gis.settings import get_settings
from layers.pipeline import clearance, repository, service

STORAGE = get_settings().spatial.storage_crs
X0, Y0 = transformer("EPSG:4326", STORAGE).transform(118.455, 24.765)


@pytest.fixture(scope="module")
def dem(tmp_path_factory):
    """1 m cells over a 60 m × 40 m street; ground rises 0.05 m per metre eastwards from 10.0 m."""
    path = tmp_path_factory.mktemp("xsdem") / "dem.tif"
    cols = np.arange(60)
    grid = np.tile(10.0 + 0.05 * (cols + 0.5), (40, 1)).astype(np.float32)
    with rasterio.open(path, "w", driver="GTiff", width=60, height=40, count=1, dtype="float32", crs=STORAGE,
                       transform=from_origin(X0, Y0 + 40, 1, 1), nodata=-9999) as dst:
        dst.write(grid, 1)
    return path


@pytest.fixture(scope="module")
def street(engine):
    """Four pipes along the street (north–south), a water main 0.3 m clear of a gas pipe (too close for
    the rule), power further east, and one diagonal water pipe with an unknown depth."""
    specs = [("water", "W1", [(X0 + 10, Y0), (X0 + 10, Y0 + 40)], 300, 1.2, None),
             ("gas", "G1", [(X0 + 10.5, Y0), (X0 + 10.5, Y0 + 40)], 100, 0.9, "中压A"),
             ("power", "P1", [(X0 + 30, Y0), (X0 + 30.5, Y0 + 40)], 200, 0.7, None),
             ("water", "W2", [(X0 + 40, Y0 + 5), (X0 + 55, Y0 + 35)], 150, None, None)]
    ids = {}
    with engine.begin() as conn:
        for utility, code, coords, dia, depth, pressure in specs:
            nid = repository.create_network(conn, utility=utility, name=f"xs-{code}")
            nodes = repository.insert_nodes(conn, nid, [{"code": "a", "kind": "end", "geom": Point(coords[0])},
                                                        {"code": "b", "kind": "end", "geom": Point(coords[1])}])
            pipes = repository.insert_pipes(conn, nid, [{"code": code, "from": "a", "to": "b", "geom": LineString(coords),
                                                         "diameter_mm": dia, "burial_depth_m": depth,
                                                         "pressure_class": pressure}], nodes)
            ids[code] = pipes[code]
    return ids


CUT = LineString([(X0 + 2, Y0 + 20), (X0 + 58, Y0 + 22)])


def _lonlat(line: LineString) -> dict:
    t = transformer(STORAGE, "OGC:CRS84")
    return {"type": "LineString", "coordinates": [list(t.transform(x, y)) for x, y in line.coords]}


def test_crossings_positions_and_depths_equal_shapely_and_dem(engine, dem, street):
    with engine.connect() as conn:
        result = service.cross_section(conn, CUT, caller=SYSTEM, settings=with_dem(dem))
        rows = repository.pipes_with_geometry(conn, list(street.values()))
    ours = {c["pipe_id"]: c for c in result["crossings"] if c["pipe_id"] in street.values()}
    # the oracle: shapely intersections of the cut with our pipes, positions by line.project
    expected = {pid: CUT.intersection(row["geom"]) for pid, row in rows.items() if CUT.intersects(row["geom"])}
    assert set(ours) == set(expected) == set(street.values())
    with rasterio.open(dem) as src:
        for pid, point in expected.items():
            c = ours[pid]
            assert c["position_m"] == pytest.approx(CUT.project(point), abs=1e-3)
            ground = next(src.sample([(point.x, point.y)]))[0]
            assert c["ground_m"] == pytest.approx(ground, abs=1e-3)
            depth = rows[pid]["burial_depth_m"]
            if depth is None:
                assert c["top_m"] is None and c["invert_m"] is None
            else:
                assert c["top_m"] == pytest.approx(ground - depth, abs=1e-3)
                assert c["invert_m"] == pytest.approx(ground - depth - rows[pid]["diameter_mm"] / 1000, abs=1e-3)
    positions = [c["position_m"] for c in result["crossings"]]
    assert positions == sorted(positions) and result["count"] == len(positions)
    assert [n["spacing_m"] for n in result["neighbours"]] == pytest.approx(list(np.diff(positions)), abs=2e-3)


def test_horizontal_clearance_flagged_per_gb50289(engine, dem, street):
    with engine.connect() as conn:
        result = service.cross_section(conn, CUT, caller=SYSTEM, settings=with_dem(dem))
    pair = next(n for n in result["neighbours"] if {n["from_pipe_id"], n["to_pipe_id"]} == {street["W1"], street["G1"]})
    rule = clearance.rule_for("horizontal", clearance.PipeSpec("water", 300, 1.2, None),
                              clearance.PipeSpec("gas", 100, 0.9, "中压A"))
    assert rule is not None and pair["required_m"] == rule.min_m
    # 0.5 m between axes (the cut is nearly square to the street), minus 0.15 + 0.05 radii
    assert pair["clear_m"] == pytest.approx(pair["spacing_m"] - 0.2, abs=1e-3)
    assert pair["violation"] is (pair["clear_m"] < rule.min_m)
    assert pair["violation"]
    flagged = {c["pipe_id"] for c in result["crossings"] if c["violation"]}
    assert {street["W1"], street["G1"]} <= flagged and street["W2"] not in flagged


@pytest.fixture(scope="module")
def api(engine, dem):
    from api.app import create_app

    with engine.begin() as conn:
        reader = create_key(conn, department="市政公用事业局", read=["pipeline"]).secret
    with TestClient(create_app(with_dem(dem))) as client:
        yield client, reader


def test_api_json_svg_and_problems(api, street):
    client, key = api
    headers = {"X-API-Key": key}
    r = client.post("/pipeline/cross-section", json={"geometry": _lonlat(CUT)}, headers=headers)
    assert r.status_code == 200, r.text
    ids = {c["pipe_id"] for c in r.json()["crossings"]}
    assert set(street.values()) <= ids
    # the same line in the storage CRS (EPSG:4548 lists northing first: gis.intake's axis-order rule)
    storage = {"type": "LineString", "coordinates": [[y, x] for x, y in CUT.coords]}
    r2 = client.post("/pipeline/cross-section", json={"geometry": storage, "crs": STORAGE}, headers=headers)
    assert r2.status_code == 200, r2.text
    assert [c["position_m"] for c in r2.json()["crossings"]] == \
        pytest.approx([c["position_m"] for c in r.json()["crossings"]], abs=0.01)
    svg = client.post("/pipeline/cross-section", json={"geometry": _lonlat(CUT), "f": "svg"}, headers=headers)
    assert svg.status_code == 200 and svg.headers["content-type"].startswith("image/svg+xml")
    text = svg.text
    assert text.count("<circle") == sum(1 for c in r.json()["crossings"] if c["top_m"] is not None)
    assert "地面线" in text and "给水" in text and "燃气" in text and "#ff69b4" in text and 'class="dimension violation"' in text
    assert "http://" not in text.replace("http://www.w3.org/2000/svg", "")
    # a point is not a cut line; a 5 km line is too long; anonymous callers may not read pipes
    bad = client.post("/pipeline/cross-section", json={"geometry": {"type": "Point", "coordinates": [118.455, 24.765]}},
                      headers=headers)
    assert bad.status_code == 400 and bad.headers["content-type"] == "application/problem+json"
    far = shapely.affinity.scale(CUT, xfact=120, yfact=120)
    long = client.post("/pipeline/cross-section", json={"geometry": _lonlat(far)}, headers=headers)
    assert long.status_code == 400 and "at most" in long.json()["detail"]
    anon = client.post("/pipeline/cross-section", json={"geometry": _lonlat(CUT)})
    assert anon.status_code in (401, 403) and anon.headers["content-type"] == "application/problem+json"
