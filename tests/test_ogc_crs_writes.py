"""Part 2 CRS round trips, history "as of", Part 4 writes with ETag/If-Match, masking, scopes, bad input."""

from __future__ import annotations

import numpy as np
import pytest
import sqlalchemy as sa
from pyproj import Transformer
from shapely import wkb
from shapely.geometry import shape

from gis.settings import get_settings

EPSG = "http://www.opengis.net/def/crs/EPSG/0/"


def _stored(engine, table: str, fid: int):
    with engine.connect() as conn:
        return wkb.loads(bytes(conn.execute(sa.text(f"SELECT ST_AsBinary(geom) FROM {table} WHERE id=:i"),
                                            {"i": fid}).scalar()))


def test_crs_output_axis_order_and_values(api_client, engine, spatial_data) -> None:
    fid = spatial_data.parcel_ids[0]
    stored = np.array(_stored(engine, "cadastre_parcels", fid).geoms[0].exterior.coords)
    r = api_client.get(f"/collections/cadastre_parcels/items/{fid}", params={"crs": EPSG + "4548"})
    assert r.status_code == 200 and r.headers["content-crs"] == f"<{EPSG}4548>"
    ne = np.array(r.json()["geometry"]["coordinates"][0][0])
    assert np.allclose(ne[:, ::-1], stored, atol=0.001)  # EPSG:4548 is northing first
    crs84 = np.array(api_client.get(f"/collections/cadastre_parcels/items/{fid}").json()["geometry"]["coordinates"][0][0])
    t = Transformer.from_crs(get_settings().spatial.storage_crs, "OGC:CRS84", always_xy=True)
    assert np.allclose(crs84, np.column_stack(t.transform(stored[:, 0], stored[:, 1])), atol=1e-8)
    latlon = np.array(api_client.get(f"/collections/cadastre_parcels/items/{fid}",
                                     params={"crs": EPSG + "4326"}).json()["geometry"]["coordinates"][0][0])
    assert np.allclose(latlon[:, ::-1], crs84, atol=1e-8)


def test_crs_round_trip_4548_4326_4548_within_1cm(api_client, engine, api_keys, spatial_data) -> None:
    fid = spatial_data.parcel_ids[5]
    original = _stored(engine, "cadastre_parcels", fid)
    feature = api_client.get(f"/collections/cadastre_parcels/items/{fid}", params={"crs": EPSG + "4326"}).json()
    body = {"type": "Feature", "geometry": feature["geometry"],
            "properties": {"patch_no": "RT-1", "survey_year": 2024, "class_code": "0701", "district": "359999",
                           "ellipsoidal_area": 4500.0}}
    r = api_client.post("/collections/landuse_survey/items", json=body,
                        headers={"X-API-Key": api_keys.planning, "Content-Crs": f"<{EPSG}4326>"})
    assert r.status_code == 201, r.text
    new_id = r.json()["id"]
    assert r.headers["location"].endswith(f"/collections/landuse_survey/items/{new_id}")
    back = _stored(engine, "landuse_survey_patches", new_id)
    a = np.array(original.geoms[0].exterior.coords)
    b = np.array(back.geoms[0].exterior.coords)
    assert np.abs(a - b).max() < 0.01
    ne = api_client.get(f"/collections/landuse_survey/items/{new_id}", params={"crs": EPSG + "4548"}).json()
    assert np.abs(np.array(ne["geometry"]["coordinates"][0][0])[:, ::-1] - a).max() < 0.01


def test_bbox_and_bbox_crs(api_client, engine, spatial_data) -> None:
    x0, y0 = spatial_data.origin
    # storage bbox (EPSG:4548 is northing first) covering the first parcel column only
    bbox = f"{y0 - 1},{x0 - 1},{y0 + 181},{x0 + 70}"
    r = api_client.get("/collections/cadastre_parcels/items", params={"bbox": bbox, "bbox-crs": EPSG + "4548",
                                                                        "district": "359999"})
    assert r.status_code == 200, r.text
    with engine.connect() as conn:
        expected = conn.execute(sa.text(
            "SELECT count(*) FROM cadastre_parcels WHERE district='359999' AND valid_to IS NULL AND recorded_to IS NULL "
            "AND ST_Intersects(geom, ST_MakeEnvelope(:a, :b, :c, :d, 4548))"),
            {"a": x0 - 1, "b": y0 - 1, "c": x0 + 70, "d": y0 + 181}).scalar()
    assert r.json()["numberMatched"] == expected == 3


def test_datetime_as_of_on_history_layer(api_client, spatial_data) -> None:
    code = "359999901001GB00001"
    now = api_client.get("/collections/cadastre_parcels/items", params={"parcel_code": code}).json()
    assert [f["id"] for f in now["features"]] == [spatial_data.parcel_ids[0]]
    then = api_client.get("/collections/cadastre_parcels/items",
                          params={"parcel_code": code, "datetime": "2018-06-01T00:00:00Z"}).json()
    assert [f["id"] for f in then["features"]] == [spatial_data.retired_parcel_id]
    assert then["features"][0]["properties"]["right_holder"] == "旧权利人"
    before = api_client.get("/collections/cadastre_parcels/items",
                            params={"parcel_code": code, "datetime": "2010-01-01T00:00:00Z"}).json()
    assert before["numberReturned"] == 0


def test_masking_by_personal_data_scope(api_client, api_keys, spatial_data) -> None:
    fid = spatial_data.parcel_ids[0]
    anon = api_client.get(f"/collections/cadastre_parcels/items/{fid}").json()["properties"]
    assert anon["holder_phone"] == "138****0001" and "*" in anon["holder_id_number"]
    incident = spatial_data.incident_ids[0]
    full = api_client.get(f"/collections/emergency_incidents/items/{incident}",
                          headers={"X-API-Key": api_keys.emergency}).json()["properties"]
    assert full["reporter_phone"] == "13900000000"


def test_scopes_401_403(api_client, api_keys, spatial_data) -> None:
    r = api_client.get("/collections/emergency_incidents/items")
    assert r.status_code == 401 and r.headers["content-type"].startswith("application/problem+json")
    r = api_client.get("/collections/emergency_incidents/items", headers={"X-API-Key": api_keys.planning})
    assert r.status_code == 403
    r = api_client.get("/collections/landuse_control_lines/items", headers={"X-API-Key": api_keys.planning})
    assert r.status_code == 200 and r.json()["numberReturned"] >= 2
    r = api_client.get("/collections", headers={})
    ids = {c["id"] for c in r.json()["collections"]}
    assert "cadastre_parcels" in ids and "emergency_incidents" not in ids
    assert api_client.get("/collections/cadastre_parcels", headers={"X-API-Key": "gg_nope_nope"}).status_code == 401


def test_writes_etag_if_match_412_428(api_client, engine, api_keys, spatial_data) -> None:
    key = {"X-API-Key": api_keys.planning}
    x0, y0 = spatial_data.origin
    t = Transformer.from_crs(get_settings().spatial.storage_crs, "OGC:CRS84", always_xy=True)
    ring = [list(t.transform(x0 + dx, y0 + dy)) for dx, dy in ((900, 0), (950, 0), (950, 50), (900, 50), (900, 0))]
    body = {"type": "Feature", "geometry": {"type": "Polygon", "coordinates": [ring]},
            "properties": {"kind": "urban_development_boundary", "name": "写入测试"}}
    assert api_client.post("/collections/landuse_control_lines/items", json=body).status_code == 401
    refused = api_client.post("/collections/cadastre_parcels/items", json=body, headers=key)
    assert refused.status_code == 405 and "/land/registrations" in refused.json()["detail"]
    assert api_client.post("/collections/emergency_incidents/items", json=body, headers=key).status_code == 403
    r = api_client.post("/collections/landuse_control_lines/items", json=body, headers=key)
    assert r.status_code == 201, r.text
    fid, etag = r.json()["id"], r.headers["etag"]
    assert etag == '"1"'
    got = api_client.get(f"/collections/landuse_control_lines/items/{fid}", headers=key)
    assert got.headers["etag"] == etag and shape(got.json()["geometry"]).is_valid
    patch = {"type": "Feature", "properties": {"name": "改名"}}
    assert api_client.patch(f"/collections/landuse_control_lines/items/{fid}", json=patch, headers=key).status_code == 428
    r = api_client.patch(f"/collections/landuse_control_lines/items/{fid}", json=patch, headers={**key, "If-Match": etag})
    assert r.status_code == 200 and r.headers["etag"] == '"2"'
    stale = api_client.patch(f"/collections/landuse_control_lines/items/{fid}", json=patch,
                             headers={**key, "If-Match": etag})
    assert stale.status_code == 412 and stale.json()["status"] == 412
    put = dict(body, properties={"kind": "urban_development_boundary", "name": "替换"})
    assert api_client.put(f"/collections/landuse_control_lines/items/{fid}", json=put,
                          headers={**key, "If-Match": 'W/"2"'}).status_code == 200
    assert api_client.delete(f"/collections/landuse_control_lines/items/{fid}",
                             headers={**key, "If-Match": '"2"'}).status_code == 412
    assert api_client.delete(f"/collections/landuse_control_lines/items/{fid}",
                             headers={**key, "If-Match": '"3"'}).status_code == 204
    with engine.connect() as conn:
        actions = conn.execute(sa.text("SELECT action FROM audit_log WHERE layer='landuse_control_lines' AND "
                                       "feature_id=:f ORDER BY id"), {"f": str(fid)}).scalars().all()
    assert actions == ["insert", "update", "update", "delete"]
    bad = dict(body, geometry={"type": "Polygon", "coordinates": [[[0, 0], [1, 0], [1, 1], [0, 0]]]})
    r = api_client.post("/collections/landuse_control_lines/items", json=bad, headers=key)
    assert r.status_code == 400 and "city" in r.json()["detail"]


@pytest.mark.parametrize("params", [
    {"bbox": "1,2,3"}, {"bbox": "a,b,c,d"}, {"bbox": "3,3,1,1"}, {"bbox": "nan,1,2,3"}, {"limit": "-1"},
    {"limit": "abc"}, {"offset": "-5"}, {"crs": "EPSG:99999"}, {"crs": "EPSG:2000"}, {"bbox-crs": "nonsense"},
    {"datetime": "yesterday"}, {"sortby": "nosuch"}, {"properties": "nosuch"}, {"whatever": "1"},
    {"filter-lang": "sql"}, {"f": "xml"}, {"skipGeometry": "maybe"}, {"registered_area": "abc"},
])
def test_bad_parameters_are_400_problem_json(api_client, spatial_data, params: dict) -> None:
    r = api_client.get("/collections/cadastre_parcels/items", params=params)
    assert r.status_code == 400, (params, r.status_code, r.text)
    assert r.headers["content-type"].startswith("application/problem+json") and r.json()["detail"]


def test_limit_clamped_sortby_properties_paging(api_client, engine, spatial_data) -> None:
    r = api_client.get("/collections/cadastre_parcels/items", params={"limit": 10**9, "district": "359999"})
    assert r.status_code == 200 and r.json()["numberReturned"] == 12
    r = api_client.get("/collections/cadastre_parcels/items",
                       params={"district": "359999", "sortby": "-parcel_code", "properties": "parcel_code,right_holder",
                               "limit": 5, "offset": 5})
    feats = r.json()["features"]
    codes = [f["properties"]["parcel_code"] for f in feats]
    with engine.connect() as conn:
        expected = conn.execute(sa.text("SELECT parcel_code FROM cadastre_parcels WHERE district='359999' AND "
                                        "valid_to IS NULL AND recorded_to IS NULL ORDER BY parcel_code DESC "
                                        "LIMIT 5 OFFSET 5")).scalars().all()
    assert codes == expected
    assert set(feats[0]["properties"]) == {"parcel_code", "right_holder"}
    assert "*" in feats[0]["properties"]["right_holder"]  # a person: masked for an anonymous caller
    assert api_client.get("/collections/cadastre_parcels/items/abc").status_code == 404
    assert api_client.get("/collections/nosuch/items").status_code == 404
