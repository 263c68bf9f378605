"""No client input gives a 500: a sweep of malformed requests over every spatial-API route."""

from __future__ import annotations

import json

import pytest

WEIRD = ["", " ", "'", "\\", "%00", "null", "-1", "1e309", "NaN", "9" * 40, "ü🙂", "a,b", "1,2,3,4,5",
         "<script>", "../../etc/passwd", "EPSG:4326", "2024-13-45T99:99:99Z", "../..", "{\"op\":1}"]
ITEM_PARAMS = ["bbox", "bbox-crs", "crs", "datetime", "filter", "filter-crs", "limit", "offset", "properties",
               "sortby", "skipGeometry", "f", "parcel_code", "registered_area", "valid_from"]


@pytest.mark.parametrize("name", ITEM_PARAMS)
def test_items_parameters_never_500(api_client, spatial_data, name: str) -> None:
    for value in WEIRD:
        for lang in ("cql2-text", "cql2-json") if name == "filter" else ("cql2-text",):
            params = {name: value, "filter-lang": lang}
            r = api_client.get("/collections/cadastre_parcels/items", params=params)
            assert r.status_code < 500, (name, value, r.status_code, r.text[:300])


def test_other_routes_never_500(api_client, api_keys, spatial_data) -> None:
    key = {"X-API-Key": api_keys.planning}
    gets = ["/collections/cadastre_parcels/items/99999999999999999999", "/collections/cadastre_parcels/items/-1",
            "/collections/%00/items", "/collections/cadastre_parcels/items/1?crs=EPSG:1",
            "/collections/cadastre_parcels/items?offset=1000000000000000000000",
            "/tiles/99999999999999999999/0/0.mvt", "/tiles/" + "9" * 5000 + "/0/0.mvt", "/tiles/1/1/1.mvt?layers=,,,", "/tiles/tilejson.json?layers=x",
            "/query/identify?x=1e309&y=0", "/query/identify?x=118.1&y=24.5&tolerance=1e309",
            "/collections/cadastre_parcels/tiles/WebMercatorQuad/1/0/x", "/tileMatrixSets/%20"]
    for url in gets:
        r = api_client.get(url, headers=key)
        assert r.status_code < 500, (url, r.status_code, r.text[:300])
    bodies = [None, [], "x", {"type": "Feature"}, {"type": "Feature", "geometry": {"type": "Point"}},
              '{"type": "Feature", "geometry": {"type": "Polygon", "coordinates": [[[1e999, 0], [0, 1e999], [1, 1], [1e999, 0]]]}, "properties": {}}',
              '{"type": "Feature", "geometry": {"type": "Point", "coordinates": [NaN, 24.5]}, "properties": {}}',
              '{"geometry": {"type": "Point", "coordinates": [118.1, 24.5]}, "distance": 1e999, "layer": "cadastre_parcels"}',
              {"type": "Feature", "geometry": {"type": "Polygon", "coordinates": "x"}, "properties": []},
              {"type": "Feature", "geometry": None, "properties": {"kind": {"a": 1}}}]
    for body in bodies:
        for method, url in (("POST", "/collections/landuse_control_lines/items"),
                            ("PUT", "/collections/landuse_control_lines/items/1"),
                            ("PATCH", "/collections/landuse_control_lines/items/1"),
                            ("POST", "/query/within"), ("POST", "/query/intersect"), ("POST", "/query/summary"),
                            ("POST", "/query/nearest")):
            raw = body if isinstance(body, str) and body.startswith("{") else json.dumps(body)
            r = api_client.request(method, url, content=raw.encode(),
                                   headers={**key, "If-Match": '"1"', "Content-Type": "application/json"})
            assert r.status_code < 500, (method, url, body, r.status_code, r.text[:300])
        r = api_client.post("/collections/landuse_control_lines/items", content=b"{not json",
                            headers={**key, "Content-Type": "application/json"})
        assert r.status_code == 400
