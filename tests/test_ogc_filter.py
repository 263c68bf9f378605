"""CQL2 (Part 3): every supported operator, text and JSON, against SQL and shapely oracles."""

from __future__ import annotations

import json

import pytest
import shapely
import sqlalchemy as sa
from pyproj import Transformer
from shapely import wkb
from shapely.geometry import Polygon, mapping

from gis.settings import get_settings

D = "district = '359999'"
# what an anonymous caller compares when it filters on right_holder: the name as it sees it (a person's
# name masked), so a filter cannot read back what the answer masks
SEEN_HOLDER = ("(CASE WHEN holder_kind IS NULL OR holder_kind = 'person' THEN govgis_mask(right_holder) "
               "ELSE right_holder END)")


def matched(client, layer: str, filter_value: str, lang: str = "cql2-text", headers=None, **extra) -> list[int]:
    r = client.get(f"/collections/{layer}/items", params={"filter": filter_value, "filter-lang": lang,
                                                          "limit": 1000, **extra}, headers=headers or {})
    assert r.status_code == 200, r.text
    return sorted(f["id"] for f in r.json()["features"])


def sql_ids(engine, where: str, table: str = "cadastre_parcels") -> list[int]:
    current = " AND valid_to IS NULL AND recorded_to IS NULL" if table == "cadastre_parcels" else ""
    with engine.connect() as conn:
        return sorted(conn.execute(sa.text(f"SELECT id FROM {table} WHERE {where}{current}")).scalars())


@pytest.mark.parametrize("cql, sql", [
    ("landuse_code = '0701'", "landuse_code = '0701'"),
    ("landuse_code <> '0701'", "landuse_code <> '0701'"),
    ("registered_area < 4500", "registered_area < 4500"),
    ("registered_area <= 4524", "registered_area <= 4524"),
    ("registered_area > 4524", "registered_area > 4524"),
    ("registered_area >= 4524", "registered_area >= 4524"),
    ("right_holder LIKE '张三%'", f"{SEEN_HOLDER} LIKE '张三%'"),
    ("right_holder NOT LIKE '张三%'", f"{SEEN_HOLDER} NOT LIKE '张三%'"),
    ("right_holder LIKE '张*%'", f"{SEEN_HOLDER} LIKE '张*%'"),
    ("landuse_code IN ('0701', '0601')", "landuse_code IN ('0701', '0601')"),
    ("landuse_code NOT IN ('0701', '0601')", "landuse_code NOT IN ('0701', '0601')"),
    ("registered_area BETWEEN 4000 AND 5000", "registered_area BETWEEN 4000 AND 5000"),
    ("address IS NULL", "address IS NULL"),
    ("address IS NOT NULL", "address IS NOT NULL"),
    ("landuse_code = '0701' OR landuse_code = '0501'", "landuse_code IN ('0701','0501')"),
    ("NOT (landuse_code = '0701')", "landuse_code <> '0701'"),
    ("CASEI(address) LIKE CASEI('思明区测试路1%')", "lower(address) LIKE '思明区测试路1%'"),
    ("plane_area < registered_area", "plane_area < registered_area"),  # property-property
])
def test_cql2_text_operator(api_client, engine, spatial_data, cql: str, sql: str) -> None:
    ids = matched(api_client, "cadastre_parcels", f"{D} AND ({cql})")
    assert ids == sql_ids(engine, f"district = '359999' AND ({sql})")


@pytest.mark.parametrize("op, args, sql", [
    ("=", [{"property": "landuse_code"}, "0501"], "landuse_code = '0501'"),
    ("like", [{"property": "right_holder"}, "张四%"], f"{SEEN_HOLDER} LIKE '张四%'"),
    ("like", [{"property": "right_holder"}, "张%"], f"{SEEN_HOLDER} LIKE '张%'"),
    ("in", [{"property": "landuse_code"}, ["0501", "0601"]], "landuse_code IN ('0501','0601')"),
    ("between", [{"property": "registered_area"}, 0, 10], "registered_area BETWEEN 0 AND 10"),
    ("isNull", [{"property": "address"}], "address IS NULL"),
    ("<", [{"property": "plane_area"}, {"property": "registered_area"}], "plane_area < registered_area"),
])
def test_cql2_json_operator(api_client, engine, spatial_data, op: str, args: list, sql: str) -> None:
    tree = {"op": "and", "args": [{"op": "=", "args": [{"property": "district"}, "359999"]}, {"op": op, "args": args}]}
    ids = matched(api_client, "cadastre_parcels", json.dumps(tree), "cql2-json")
    assert ids == sql_ids(engine, f"district = '359999' AND ({sql})")


def test_personal_data_key_filters_on_the_real_name(api_client, engine, api_keys, spatial_data) -> None:
    """With the personal-data scope the same filter compares the unmasked name."""
    from gis.keys import create_key

    with engine.begin() as conn:
        key = create_key(conn, department="不动产登记中心", read=["cadastre"], personal_data=True).secret
    ids = matched(api_client, "cadastre_parcels", f"{D} AND right_holder LIKE '张三%'", headers={"X-API-Key": key})
    assert ids == sql_ids(engine, f"{D} AND right_holder LIKE '张三%'") and ids


def _parcels(engine) -> dict[int, shapely.Geometry]:
    with engine.connect() as conn:
        rows = conn.execute(sa.text("SELECT id, ST_AsBinary(geom) FROM cadastre_parcels WHERE district='359999' "
                                    "AND valid_to IS NULL AND recorded_to IS NULL")).all()
    return {i: wkb.loads(bytes(g)) for i, g in rows}


def _lonlat_box(spatial_data, dx0: float, dy0: float, dx1: float, dy1: float) -> tuple[Polygon, Polygon]:
    """A box given in storage metres relative to the grid origin, as (storage polygon, CRS84 polygon)."""
    x0, y0 = spatial_data.origin
    storage = Polygon([(x0 + dx0, y0 + dy0), (x0 + dx1, y0 + dy0), (x0 + dx1, y0 + dy1), (x0 + dx0, y0 + dy1)])
    to_ll = Transformer.from_crs(get_settings().spatial.storage_crs, "OGC:CRS84", always_xy=True)
    ll = Polygon([to_ll.transform(*xy) for xy in storage.exterior.coords])
    back = Transformer.from_crs("OGC:CRS84", get_settings().spatial.storage_crs, always_xy=True)
    return Polygon([back.transform(*xy) for xy in ll.exterior.coords]), ll


@pytest.mark.parametrize("op, fn", [
    ("S_INTERSECTS", shapely.intersects), ("S_WITHIN", shapely.within), ("S_CONTAINS", shapely.contains),
    ("S_DISJOINT", shapely.disjoint), ("S_OVERLAPS", shapely.overlaps), ("S_TOUCHES", shapely.touches),
    ("S_CROSSES", shapely.crosses), ("S_EQUALS", shapely.equals),
])
def test_cql2_spatial_text(api_client, engine, spatial_data, op: str, fn) -> None:
    parcels = _parcels(engine)
    storage, ll = _lonlat_box(spatial_data, -10, -10, 150, 100)  # covers 2×2 parcels, cuts others
    if op == "S_CONTAINS":  # a point inside parcel (0,0)
        storage_pt = shapely.Point(spatial_data.origin[0] + 30, spatial_data.origin[1] + 30)
        ll_geom = shapely.Point(Transformer.from_crs(get_settings().spatial.storage_crs, "OGC:CRS84",
                                                     always_xy=True).transform(storage_pt.x, storage_pt.y))
        storage_geom = storage_pt
    else:
        ll_geom, storage_geom = ll, storage
    ids = matched(api_client, "cadastre_parcels", f"{D} AND {op}(geom, {ll_geom.wkt})")
    expected = sorted(i for i, g in parcels.items() if fn(g, storage_geom))
    assert ids == expected
    if op in ("S_INTERSECTS", "S_WITHIN", "S_CONTAINS", "S_DISJOINT"):
        assert expected, "the oracle must select something for the test to mean anything"


def test_cql2_dwithin_json_and_bbox(api_client, engine, spatial_data) -> None:
    parcels = _parcels(engine)
    x0, y0 = spatial_data.origin
    to_ll = Transformer.from_crs(get_settings().spatial.storage_crs, "OGC:CRS84", always_xy=True)
    pt = shapely.Point(x0 - 50, y0 + 30)
    lon, lat = to_ll.transform(pt.x, pt.y)
    tree = {"op": "and", "args": [{"op": "=", "args": [{"property": "district"}, "359999"]},
            {"op": "s_dwithin", "args": [{"property": "geom"}, {"type": "Point", "coordinates": [lon, lat]}, 140]}]}
    ids = matched(api_client, "cadastre_parcels", json.dumps(tree), "cql2-json")
    expected = sorted(i for i, g in parcels.items() if g.distance(pt) <= 140)
    assert ids == expected and 0 < len(expected) < 12
    storage, ll = _lonlat_box(spatial_data, -10, -10, 70, 200)
    b = ll.bounds
    tree = {"op": "and", "args": [{"op": "=", "args": [{"property": "district"}, "359999"]},
            {"op": "s_intersects", "args": [{"property": "geom"}, {"bbox": list(b)}]}]}
    ids = matched(api_client, "cadastre_parcels", json.dumps(tree), "cql2-json")
    assert ids == sorted(i for i, g in parcels.items() if g.intersects(shapely.box(*_storage_bounds(b))))


def _storage_bounds(b):
    t = Transformer.from_crs("OGC:CRS84", get_settings().spatial.storage_crs, always_xy=True)
    return t.transform_bounds(*b)


@pytest.mark.parametrize("op, arg, sql", [
    ("t_after", {"timestamp": "2024-03-01T00:00:00Z"}, "reported_at > '2024-03-01T00:00:00Z'"),
    ("t_before", {"timestamp": "2024-03-01T00:00:00Z"}, "reported_at < '2024-03-01T00:00:00Z'"),
    ("t_during", {"interval": ["2024-01-20T00:00:00Z", "2024-04-20T00:00:00Z"]},
     "reported_at > '2024-01-20T00:00:00Z' AND reported_at < '2024-04-20T00:00:00Z'"),
    ("t_intersects", {"interval": ["2024-02-15T08:00:00Z", ".."]}, "reported_at >= '2024-02-15T08:00:00Z'"),
    ("t_equals", {"timestamp": "2024-02-15T08:00:00Z"}, "reported_at = '2024-02-15T08:00:00Z'"),
    ("t_disjoint", {"interval": ["2024-02-01T00:00:00Z", "2024-03-31T00:00:00Z"]},
     "NOT (reported_at BETWEEN '2024-02-01T00:00:00Z' AND '2024-03-31T00:00:00Z')"),
])
def test_cql2_temporal(api_client, engine, api_keys, spatial_data, op: str, arg: dict, sql: str) -> None:
    tree = {"op": "and", "args": [{"op": "like", "args": [{"property": "code"}, "T_"]},
                                  {"op": op, "args": [{"property": "reported_at"}, arg]}]}
    ids = matched(api_client, "emergency_incidents", json.dumps(tree), "cql2-json",
                  headers={"X-API-Key": api_keys.emergency})
    expected = sql_ids(engine, f"code LIKE 'T_' AND {sql}", "emergency_incidents")
    assert ids == expected and expected


@pytest.mark.parametrize("text, sql", [
    ("T_INTERSECTS(reported_at, INTERVAL('2024-02-15T08:00:00Z', '..'))", "reported_at >= '2024-02-15T08:00:00Z'"),
    ("T_DURING(reported_at, INTERVAL('..', '2024-02-15T08:00:00Z'))", "reported_at < '2024-02-15T08:00:00Z'"),
    ("T_DURING(reported_at, INTERVAL('2024-01-20', '2024-04-20'))",
     "reported_at > '2024-01-20T00:00:00Z' AND reported_at < '2024-04-20T00:00:00Z'"),
    ("T_INTERSECTS(reported_at, INTERVAL(DATE('2024-02-01'), TIMESTAMP('2024-03-31T00:00:00Z')))",
     "reported_at BETWEEN '2024-02-01T00:00:00Z' AND '2024-03-31T00:00:00Z'"),
])
def test_cql2_text_intervals_open_and_dated(api_client, engine, api_keys, spatial_data, text: str, sql: str) -> None:
    """CQL2-text INTERVAL with '..' open ends, quoted dates and DATE()/TIMESTAMP() ends."""
    ids = matched(api_client, "emergency_incidents", f"code LIKE 'T_' AND {text}",
                  headers={"X-API-Key": api_keys.emergency})
    expected = sql_ids(engine, f"code LIKE 'T_' AND {sql}", "emergency_incidents")
    assert ids == expected and expected


@pytest.mark.parametrize("bad", [
    "parcel_code = 'x'; DROP TABLE cadastre_parcels",
    "parcel_code = 'x'' OR 1=1 --'",
    "nosuchfield = 1",
    "S_INTERSECTS(geom, POLYGON((0 0, 1 0, 1 1)))",
    "registered_area = 'not a number'",
    "landuse_code IN ()",
    "(((",
    "geom = 3",
    "landuse_code = registered_area",
    "registered_area = TRUE",
    "registered_area > '2020-01-01'",
])
def test_cql2_bad_filters_are_400(api_client, engine, spatial_data, bad: str) -> None:
    r = api_client.get("/collections/cadastre_parcels/items", params={"filter": bad})
    assert r.status_code == 400, (bad, r.status_code, r.text)
    assert r.headers["content-type"].startswith("application/problem+json")
    assert r.json()["detail"]
    with engine.connect() as conn:  # the table is still there
        assert conn.execute(sa.text("SELECT count(*) FROM cadastre_parcels WHERE district='359999'")).scalar() == 13


def test_cql2_json_malformed(api_client, spatial_data) -> None:
    for bad in ['{"op": "=", "args": [{"property": "id"}]}', "not json", '{"op": "drop", "args": []}',
                '{"op": "s_dwithin", "args": [{"property": "geom"}, {"type": "Point", "coordinates": [1, 2]}, -1]}',
                '{"op": "t_after", "args": [{"property": "landuse_code"}, {"timestamp": "2020-01-01T00:00:00Z"}]}',
                '{"op": "=", "args": [{"property": "landuse_code"}, {"property": "registered_area"}]}',
                '{"op": "in", "args": [{"property": "registered_area"}, ["a", "b"]]}']:
        r = api_client.get("/collections/cadastre_parcels/items", params={"filter": bad, "filter-lang": "cql2-json"})
        assert r.status_code == 400, (bad, r.text)


def test_cql2_literal_coerced_to_property_type(api_client, engine, spatial_data) -> None:
    # a number compared with a text code is compared as text, not refused by the database
    assert matched(api_client, "cadastre_parcels", f"{D} AND landuse_code = 701") == []
    assert matched(api_client, "cadastre_parcels", f"{D} AND registered_area > '4000'") == sql_ids(
        engine, "district = '359999' AND registered_area > 4000")


def test_queryables_lists_fields(api_client, spatial_data) -> None:
    body = api_client.get("/collections/cadastre_parcels/queryables").json()
    assert {"parcel_code", "landuse_code", "geom"} <= set(body["properties"])
    assert body["properties"]["registered_area"]["type"] == "number"
    mapping(shapely.Point(0, 0))  # shapely.geometry import used by helpers


@pytest.mark.parametrize("text, sql", [
    ("T_AFTER(reported_at, TIMESTAMP('2024-03-01T00:00:00Z'))", "reported_at > '2024-03-01T00:00:00Z'"),
    ("T_BEFORE(reported_at, DATE('2024-03-01'))", "reported_at < '2024-03-01T00:00:00Z'"),
    ("T_DURING(reported_at, INTERVAL('2024-01-20T00:00:00Z', '2024-04-20T00:00:00Z'))",
     "reported_at > '2024-01-20T00:00:00Z' AND reported_at < '2024-04-20T00:00:00Z'"),
    ("NOT T_EQUALS(reported_at, TIMESTAMP('2024-02-15T08:00:00Z'))", "reported_at <> '2024-02-15T08:00:00Z'"),
])
def test_cql2_text_temporal_function_form(api_client, engine, api_keys, spatial_data, text: str, sql: str) -> None:
    ids = matched(api_client, "emergency_incidents", f"code LIKE 'T_' AND {text}",
                  headers={"X-API-Key": api_keys.emergency})
    expected = sql_ids(engine, f"code LIKE 'T_' AND {sql}", "emergency_incidents")
    assert ids == expected and expected


def test_cql2_text_dwithin(api_client, engine, spatial_data) -> None:
    parcels = _parcels(engine)
    x0, y0 = spatial_data.origin
    lon, lat = Transformer.from_crs(get_settings().spatial.storage_crs, "OGC:CRS84",
                                    always_xy=True).transform(x0 - 50, y0 + 30)
    ids = matched(api_client, "cadastre_parcels", f"{D} AND S_DWITHIN(geom, POINT({lon} {lat}), 140)")
    expected = sorted(i for i, g in parcels.items() if g.distance(shapely.Point(x0 - 50, y0 + 30)) <= 140)
    assert ids == expected and 0 < len(expected) < 12
