"""Vector tiles decoded with mapbox-vector-tile: layer names, attributes, feature counts vs an oracle."""

from __future__ import annotations

import math

import mapbox_vector_tile
import sqlalchemy as sa
from pyproj import Transformer
from shapely import box, wkb
from shapely.ops import transform

from gis.settings import get_settings

HALF = 20037508.342789244


def tile_of(lon: float, lat: float, z: int) -> tuple[int, int]:
    n = 2**z
    x = int((lon + 180) / 360 * n)
    y = int((1 - math.asinh(math.tan(math.radians(lat))) / math.pi) / 2 * n)
    return x, y


def tile_box(z: int, x: int, y: int, buffer: float = 64 / 4096):
    size = 2 * HALF / 2**z
    minx, maxy = -HALF + x * size, HALF - y * size
    return box(minx - buffer * size, maxy - size - buffer * size, minx + size + buffer * size, maxy + buffer * size)


def _origin_lonlat(spatial_data) -> tuple[float, float]:
    t = Transformer.from_crs(get_settings().spatial.storage_crs, "OGC:CRS84", always_xy=True)
    return t.transform(spatial_data.origin[0] + 100, spatial_data.origin[1] + 90)


def _expected_ids(engine, z: int, x: int, y: int) -> set[int]:
    """Oracle: current parcels whose geometry (pyproj to 3857) meets the buffered tile box (shapely)."""
    t = Transformer.from_crs(get_settings().spatial.storage_crs, "EPSG:3857", always_xy=True)
    area = tile_box(z, x, y)
    with engine.connect() as conn:
        rows = conn.execute(sa.text("SELECT id, ST_AsBinary(geom) FROM cadastre_parcels WHERE valid_to IS NULL "
                                    "AND recorded_to IS NULL")).all()
    return {i for i, g in rows if transform(t.transform, wkb.loads(bytes(g))).intersects(area)}


def test_collection_tile_content(api_client, engine, spatial_data) -> None:
    z = 16
    x, y = tile_of(*_origin_lonlat(spatial_data), z)
    r = api_client.get(f"/collections/cadastre_parcels/tiles/WebMercatorQuad/{z}/{y}/{x}")
    assert r.status_code == 200 and r.headers["content-type"] == "application/vnd.mapbox-vector-tile"
    decoded = mapbox_vector_tile.decode(r.content)
    assert list(decoded) == ["cadastre_parcels"]
    feats = decoded["cadastre_parcels"]["features"]
    assert {f["id"] for f in feats} == _expected_ids(engine, z, x, y)
    assert len(feats) >= 6
    for f in feats:
        assert set(f["properties"]) == {"parcel_code", "landuse_code", "right_type", "status"}
    with engine.connect() as conn:
        codes = dict(conn.execute(sa.text("SELECT id, landuse_code FROM cadastre_parcels")).all())
    assert all(f["properties"]["landuse_code"] == codes[f["id"]] for f in feats)


def test_tile_etag_304_and_invalidation_by_write(api_client, api_keys, spatial_data) -> None:
    z = 15
    t = Transformer.from_crs(get_settings().spatial.storage_crs, "OGC:CRS84", always_xy=True)
    x, y = tile_of(*t.transform(spatial_data.origin[0] + 35, spatial_data.origin[1] + 325), z)
    url = f"/tiles/{z}/{x}/{y}.mvt?layers=landuse_control_lines"
    key = {"X-API-Key": api_keys.planning}
    first = api_client.get(url, headers=key)
    assert first.status_code == 200
    etag = first.headers["etag"]
    assert api_client.get(url, headers={**key, "If-None-Match": etag}).status_code == 304
    before = len(mapbox_vector_tile.decode(first.content).get("landuse_control_lines", {"features": []})["features"])
    x0, y0 = spatial_data.origin
    ring = [list(t.transform(x0 + dx, y0 + dy)) for dx, dy in ((10, 300), (60, 300), (60, 350), (10, 350), (10, 300))]
    r = api_client.post("/collections/landuse_control_lines/items", headers=key, json={
        "type": "Feature", "geometry": {"type": "Polygon", "coordinates": [ring]},
        "properties": {"kind": "ecological_red_line", "name": "瓦片失效测试"}})
    assert r.status_code == 201, r.text
    after = api_client.get(url, headers={**key, "If-None-Match": etag})
    assert after.status_code == 200 and after.headers["etag"] != etag
    assert len(mapbox_vector_tile.decode(after.content)["landuse_control_lines"]["features"]) == before + 1


def test_multi_layer_tile_default_public_and_tilejson(api_client, api_keys, spatial_data) -> None:
    z = 15
    x, y = tile_of(*_origin_lonlat(spatial_data), z)
    anon = mapbox_vector_tile.decode(api_client.get(f"/tiles/{z}/{x}/{y}.mvt").content)
    assert "cadastre_parcels" in anon and "landuse_control_lines" not in anon and "emergency_incidents" not in anon
    keyed = mapbox_vector_tile.decode(api_client.get(f"/tiles/{z}/{x}/{y}.mvt",
                                                     headers={"X-API-Key": api_keys.emergency}).content)
    assert "emergency_incidents" in keyed
    assert all("reporter_phone" not in f["properties"] for f in keyed["emergency_incidents"]["features"])
    assert api_client.get(f"/tiles/{z}/{x}/{y}.mvt?layers=emergency_incidents").status_code == 401
    tj = api_client.get("/tiles/tilejson.json?layers=cadastre_parcels").json()
    assert tj["tilejson"] == "3.0.0" and tj["vector_layers"][0]["id"] == "cadastre_parcels"
    assert set(tj["vector_layers"][0]["fields"]) == {"parcel_code", "landuse_code", "right_type", "status"}
    assert tj["tiles"][0].endswith("/tiles/{z}/{x}/{y}.mvt?layers=cadastre_parcels")


def test_tile_metadata_and_bad_tiles(api_client, spatial_data) -> None:
    tms = api_client.get("/tileMatrixSets/WebMercatorQuad").json()
    assert tms["tileMatrices"][14]["matrixWidth"] == 2**14
    sets = api_client.get("/collections/cadastre_parcels/tiles").json()["tilesets"]
    assert sets[0]["links"][-1]["href"].endswith("/tiles/WebMercatorQuad/{tileMatrix}/{tileRow}/{tileCol}")
    for bad in ("/tiles/3/8/1.mvt", "/tiles/25/0/0.mvt", "/tiles/a/0/0.mvt", "/tiles/-1/0/0.mvt",
                "/collections/cadastre_parcels/tiles/WebMercatorQuad/2/9/0"):
        r = api_client.get(bad)
        assert r.status_code == 400, (bad, r.status_code)
    assert api_client.get("/collections/cadastre_parcels/tiles/Other/1/0/0").status_code == 404
