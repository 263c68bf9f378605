"""Vector tiles decoded with mapbox-vector-tile: layer names, attributes, feature counts vs an oracle."""

from __future__ import annotations

import math

import mapbox_vector_tile
import sqlalchemy as sa
from pyproj import Transformer
from shapely import box, wkb
from shapely.geometry import shape
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


def _ring_area(ring: list) -> float:
    return sum(ring[i][0] * ring[i + 1][1] - ring[i + 1][0] * ring[i][1] for i in range(len(ring) - 1)) / 2


def test_fast_tile_path_matches_st_asmvtgeom(engine, spatial_data) -> None:
    """Features taking the fast path (affine straight to tile pixels) come out as ST_AsMVTGeom makes them."""
    from gis import tiles
    from gis.registry import REGISTRY

    settings = get_settings()
    layer = REGISTRY.get("cadastre_parcels")
    z = 15
    x, y = tile_of(*_origin_lonlat(spatial_data), z)
    statement, params = tiles.tile_query((layer,), z, x, y, settings.storage_srid, settings.spatial.storage_crs)
    assert "ta" in params, "zoom 15 over the city should use the affine (fast) path"
    general = {**params, "ix0": 0.0, "iy0": 0.0, "ix1": 0.0, "iy1": 0.0}  # an empty inner box: nothing is fast
    with engine.connect() as conn:
        fast_tile = bytes(conn.execute(statement, params).scalar())
        general_tile = bytes(conn.execute(statement, general).scalar())
        in_box, total = conn.execute(sa.text(
            "SELECT count(*) FILTER (WHERE geom @ ST_MakeEnvelope(:ix0, :iy0, :ix1, :iy1, :srid) "
            "AND ST_Area(geom) >= :px * ST_Perimeter(geom)), count(*) FROM cadastre_parcels "
            "WHERE geom && ST_Transform(ST_TileEnvelope(:z, :x, :y), :srid) AND valid_to IS NULL"),
            {**params, "srid": settings.storage_srid}).one()
    assert in_box >= total / 2 > 0, (in_box, total)  # most features did take the fast path
    options = {"y_coord_down": True}
    fast = {f["id"]: f for f in mapbox_vector_tile.decode(fast_tile, default_options=options)[layer.id]["features"]}
    slow = {f["id"]: f for f in mapbox_vector_tile.decode(general_tile, default_options=options)[layer.id]["features"]}
    assert set(fast) == set(slow) and len(fast) >= in_box
    for fid, feature in slow.items():
        assert fast[fid]["properties"] == feature["properties"]
        a, b = shape(fast[fid]["geometry"]), shape(feature["geometry"])
        assert a.is_valid and a.symmetric_difference(b).area <= 1.0, fid  # at most one square pixel apart
        polygons = ([fast[fid]["geometry"]["coordinates"]] if fast[fid]["geometry"]["type"] == "Polygon"
                    else fast[fid]["geometry"]["coordinates"])
        # MVT 2.1 §4.3.4.4: an exterior ring has a positive area in tile coordinates, holes negative
        assert all(_ring_area(poly[0]) > 0 and all(_ring_area(h) < 0 for h in poly[1:]) for poly in polygons)


def test_tile_pixel_map_against_pyproj() -> None:
    """The affine storage → tile-pixel map puts points within a quarter pixel of pyproj's answer, and the
    inner box lies inside the buffered tile."""
    import numpy as np

    from gis import tiles

    storage = get_settings().spatial.storage_crs
    to_merc = Transformer.from_crs(storage, "EPSG:3857", always_xy=True)
    for z, lon, lat in ((14, 118.1, 24.5), (15, 118.3, 24.8), (18, 117.9, 24.3), (21, 118.2, 24.6)):
        x, y = tile_of(lon, lat, z)
        mercator, residual = tiles.affine_to_mercator(z, x, y, storage)
        assert residual < tiles.pixel_metres(z) / 4  # what tile_query requires before it uses the affine path
        m = tiles.tile_pixel_map(z, x, y, mercator)
        minx, _, maxx, maxy = tiles.tile_bounds_3857(z, x, y)
        scale = 4096 / (maxx - minx)
        for sx, sy in ((m["ix0"], m["iy0"]), (m["ix1"], m["iy1"]), (m["ix0"], m["iy1"]), (m["ix1"], m["iy0"])):
            px = m["ta"] * sx + m["tb"] * sy + m["txo"]
            py = m["td"] * sx + m["te"] * sy + m["tyo"]
            mx, my = to_merc.transform(sx, sy)
            assert np.hypot(px - (mx - minx) * scale, py - (maxy - my) * scale) < 0.25
            assert -64 <= px <= 4160 and -64 <= py <= 4160
        assert m["ix1"] - m["ix0"] > 0.9 * (maxx - minx) and m["px"] > 0
