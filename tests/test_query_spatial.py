"""Spatial queries: identify, within, nearest, intersect (area/length), summary — vs shapely oracles."""

from __future__ import annotations

import pytest
import sqlalchemy as sa
from pyproj import Transformer
from shapely import Point, Polygon, wkb
from shapely.geometry import mapping

from gis.settings import get_settings


def _to_ll():
    return Transformer.from_crs(get_settings().spatial.storage_crs, "OGC:CRS84", always_xy=True)


def _parcels(engine) -> dict[int, object]:
    with engine.connect() as conn:
        rows = conn.execute(sa.text("SELECT id, ST_AsBinary(geom) FROM cadastre_parcels WHERE valid_to IS NULL "
                                    "AND recorded_to IS NULL")).all()
    return {i: wkb.loads(bytes(g)) for i, g in rows}


def test_identify_point(api_client, api_keys, spatial_data) -> None:
    x0, y0 = spatial_data.origin
    lon, lat = _to_ll().transform(x0 + 30, y0 + 30)
    r = api_client.get("/query/identify", params={"x": lon, "y": lat})
    assert r.status_code == 200, r.text
    layers = r.json()["layers"]
    assert [f["id"] for f in layers["cadastre_parcels"]["features"]] == [spatial_data.parcel_ids[0]]
    assert "emergency_incidents" not in layers  # anonymous: public layers only
    assert "*" in layers["cadastre_parcels"]["features"][0]["properties"]["holder_phone"]
    # the same point in EPSG:4548 (northing first)
    r = api_client.get("/query/identify", params={"x": y0 + 30, "y": x0 + 30, "crs": "EPSG:4548",
                                                  "layers": "cadastre_parcels"})
    assert [f["id"] for f in r.json()["layers"]["cadastre_parcels"]["features"]] == [spatial_data.parcel_ids[0]]
    keyed = api_client.get("/query/identify", params={"x": lon, "y": lat, "tolerance": 50},
                           headers={"X-API-Key": api_keys.emergency}).json()["layers"]
    assert keyed["emergency_incidents"]["numberReturned"] >= 1


def test_within_nearest_intersect_summary(api_client, engine, spatial_data) -> None:
    x0, y0 = spatial_data.origin
    parcels = _parcels(engine)
    pt = Point(x0 - 40, y0 + 30)
    lonlat = _to_ll().transform(pt.x, pt.y)
    r = api_client.post("/query/within", json={"geometry": {"type": "Point", "coordinates": list(lonlat)},
                                                "distance": 130, "layers": ["cadastre_parcels"]})
    assert r.status_code == 200, r.text
    got = {f["id"]: f["properties"]["distance_m"] for f in r.json()["layers"]["cadastre_parcels"]["features"]}
    expected = {i: g.distance(pt) for i, g in parcels.items() if g.distance(pt) <= 130}
    assert set(got) == set(expected) and expected
    assert all(abs(got[i] - expected[i]) < 0.01 for i in got)

    r = api_client.post("/query/nearest", json={"geometry": {"type": "Point", "coordinates": list(lonlat)},
                                                 "layer": "cadastre_parcels", "n": 3})
    ids = [f["id"] for f in r.json()["features"]]
    oracle = sorted(parcels, key=lambda i: parcels[i].distance(pt))[:3]
    assert sorted(ids) == sorted(oracle)

    area = Polygon([(x0 + 20, y0 + 20), (x0 + 130, y0 + 20), (x0 + 130, y0 + 100), (x0 + 20, y0 + 100)])
    t = _to_ll()
    ll = Polygon([t.transform(*c) for c in area.exterior.coords])
    back = Transformer.from_crs("OGC:CRS84", get_settings().spatial.storage_crs, always_xy=True)
    area_back = Polygon([back.transform(*c) for c in ll.exterior.coords])
    r = api_client.post("/query/intersect", json={"geometry": mapping(ll), "layers": ["cadastre_parcels"]})
    got = {f["id"]: f["properties"]["intersected_area_m2"] for f in r.json()["layers"]["cadastre_parcels"]["features"]}
    expected = {i: g.intersection(area_back).area for i, g in parcels.items() if g.intersects(area_back)}
    assert set(got) == set(expected) and len(expected) == 4
    assert all(abs(got[i] - expected[i]) < 0.05 for i in got)

    r = api_client.post("/query/summary", json={"geometry": mapping(ll), "layers": ["cadastre_parcels"]})
    s = r.json()["layers"]["cadastre_parcels"]
    assert s["count"] == 4
    with engine.connect() as conn:
        regs = dict(conn.execute(sa.text("SELECT id, registered_area FROM cadastre_parcels")).all())
    assert abs(s["sums"]["registered_area"] - sum(float(regs[i]) for i in expected)) < 0.01
    assert "holder_phone" not in s["sums"] and "id" not in s["sums"]


@pytest.mark.parametrize("path, body", [
    ("/query/within", {"geometry": {"type": "Point", "coordinates": [0, 0]}, "distance": 10}),
    ("/query/within", {"geometry": {"type": "Point", "coordinates": [118.1, 24.48]}, "distance": -1}),
    ("/query/within", {"geometry": "nonsense"}),
    ("/query/within", {"geometry": {"type": "Point", "coordinates": [118.1, 24.48]}, "extra": 1}),
    ("/query/nearest", {"geometry": {"type": "Point", "coordinates": [118.1, 24.48]}, "layer": "nosuch"}),
    ("/query/nearest", {"geometry": {"type": "Point", "coordinates": [118.1, 24.48]}, "layer": "cadastre_parcels",
                        "n": 10**9}),
    ("/query/intersect", {"geometry": {"type": "Polygon", "coordinates": [[[118.1, 24.48], [118.2, 24.48]]]}}),
    ("/query/summary", {"geometry": {"type": "Point", "coordinates": [118.1, 24.48]}, "crs": "EPSG:123456"}),
])
def test_query_bad_input_is_4xx(api_client, spatial_data, path: str, body: dict) -> None:
    r = api_client.post(path, json=body)
    assert 400 <= r.status_code < 500, (path, body, r.status_code, r.text)
    assert r.headers["content-type"].startswith("application/problem+json")


def test_identify_bad_input(api_client, spatial_data) -> None:
    for params in ({"x": "a", "y": "1"}, {"y": "1"}, {"x": "118.1", "y": "24.4", "tolerance": "nan"},
                   {"x": "118.1", "y": "24.4", "bogus": "1"}, {"x": "inf", "y": "24.4"}):
        assert api_client.get("/query/identify", params=params).status_code == 400, params
    assert api_client.get("/query/identify", params={"x": 118.1, "y": 24.4, "layers": "emergency_incidents"}
                          ).status_code == 401
