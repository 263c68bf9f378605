"""Import and export over the registry: a round trip per format (import → export → re-import: equal
counts, geometries equal within 1 mm), Chinese Shapefiles without .cpg, all-or-nothing rejection,
and a corpus of bad geometries refused with messages that name the problem.

Every test works inside one transaction that is rolled back, so the shared demo city stays as it was.
"""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pyogrio
import pytest
import shapely
from pyproj import Transformer
from sqlalchemy import text

from gis.access import SYSTEM
from gis.errors import ImportRejected
from gis.exports import export_layer
from gis.imports import detect_dbf_encoding, import_file
from gis.settings import get_settings
from layers import REGISTRY

SETTINGS = get_settings()

BBOX = (118.11, 24.47, 118.125, 24.485)  # lon/lat: a few hundred parcels of the demo city
TOLERANCE_M = 0.001


def _rows_in_bbox(conn, layer_id: str, key: str) -> dict[str, shapely.Geometry]:
    layer = REGISTRY.get(layer_id)
    rows = conn.execute(text(
        f"SELECT {key}::text AS k, ST_AsBinary(geom) AS g FROM {layer.table.name} "
        "WHERE ST_Intersects(geom, ST_Transform(ST_MakeEnvelope(:a, :b, :c, :d, 4326), ST_SRID(geom)))"
        + (" AND valid_to IS NULL AND recorded_to IS NULL" if layer.has_history else "")),
        dict(zip("abcd", BBOX, strict=True))).all()
    return {r.k: shapely.from_wkb(bytes(r.g)) for r in rows}


def _delete(conn, layer_id: str, key: str, keys) -> None:
    table = REGISTRY.get(layer_id).table.name
    conn.execute(text(f"DELETE FROM {table} WHERE {key}::text = ANY(:keys)"), {"keys": list(keys)})


def _assert_same(before: dict, after: dict) -> None:
    assert len(after) == len(before) > 0
    assert set(after) == set(before)
    for key, geom in before.items():
        assert shapely.hausdorff_distance(geom, after[key]) < TOLERANCE_M, key


def _round_trip(conn, tmp_path: Path, layer_id: str, key: str, suffix: str, **import_options) -> None:
    layer = REGISTRY.get(layer_id)
    original = _rows_in_bbox(conn, layer_id, key)
    first = tmp_path / f"first{suffix}"
    exported = export_layer(conn, layer, first, SYSTEM, settings=SETTINGS, bbox=BBOX, with_personal_data=True)
    assert exported.rows == len(original)
    _delete(conn, layer_id, key, original)
    imported = import_file(conn, layer, first, SYSTEM, settings=SETTINGS, **import_options)
    assert imported.rows == len(original)
    _assert_same(original, _rows_in_bbox(conn, layer_id, key))
    second = tmp_path / f"second{suffix}"
    assert export_layer(conn, layer, second, SYSTEM, settings=SETTINGS, bbox=BBOX, with_personal_data=True).rows == len(original)
    _delete(conn, layer_id, key, original)
    assert import_file(conn, layer, second, SYSTEM, settings=SETTINGS, **import_options).rows == len(original)
    _assert_same(original, _rows_in_bbox(conn, layer_id, key))


SURVEY_KEY = "(survey_year || '/' || patch_no)"
SURVEY_COLUMNS = ("SELECT survey_year, patch_no, class_system, class_code, class_name, settlement_code, ownership, "
                  "district, ellipsoidal_area FROM landuse_survey_patches ORDER BY survey_year, patch_no")


@pytest.mark.parametrize("suffix", [".gpkg", ".shp", ".geojson", ".csv"])
def test_round_trip_survey(conn, tmp_path, suffix) -> None:
    before = conn.execute(text(SURVEY_COLUMNS)).all()
    _round_trip(conn, tmp_path, "landuse_survey", SURVEY_KEY, suffix)
    after = conn.execute(text(SURVEY_COLUMNS)).all()
    assert after == before  # attributes survive too: Chinese text, leading zeros (0101), areas


def test_import_into_a_module_only_layer_is_refused(conn, tmp_path) -> None:
    """Cadastral parcels change only by registrations: an import is answered 405 naming them."""
    from gis.errors import NotWritableHere

    layer = REGISTRY.get("cadastre_parcels")
    path = tmp_path / "parcels.gpkg"
    assert export_layer(conn, layer, path, SYSTEM, settings=SETTINGS, bbox=BBOX).rows > 0
    before = _counts(conn)
    with pytest.raises(NotWritableHere, match="/land/registrations") as caught:
        import_file(conn, layer, path, SYSTEM, settings=SETTINGS)
    assert caught.value.status == 405 and _counts(conn) == before


def test_round_trip_csv_lonlat_points(conn, tmp_path) -> None:
    layer = REGISTRY.get("emergency_resources")
    original = _rows_in_bbox(conn, "emergency_resources", "code") or None
    if original is None:  # widen to the whole layer when the box holds no resource
        rows = conn.execute(text("SELECT code, ST_AsBinary(geom) AS g FROM emergency_resources")).all()
        original = {r.code: shapely.from_wkb(bytes(r.g)) for r in rows}
    exported = tmp_path / "resources.csv"
    export_layer(conn, layer, exported, SYSTEM, settings=SETTINGS, crs="EPSG:4326", with_personal_data=True)
    frame = pd.read_csv(exported, dtype=str)
    points = shapely.from_wkt(frame.pop("wkt").to_numpy())
    frame["lon"], frame["lat"] = shapely.get_x(points), shapely.get_y(points)
    frame = frame[frame["code"].isin(original)]
    source = tmp_path / "resources_lonlat.csv"
    frame.to_csv(source, index=False, float_format="%.12f")
    phones = dict(conn.execute(text("SELECT code, leader_phone FROM emergency_resources")).all())
    _delete(conn, "emergency_resources", "code", original)
    report = import_file(conn, layer, source, SYSTEM, settings=SETTINGS)  # lon/lat columns: EPSG:4326 by default
    assert report.rows == len(original)
    rows = conn.execute(text("SELECT code, leader_phone, ST_AsBinary(geom) AS g FROM emergency_resources")).all()
    _assert_same(original, {r.code: shapely.from_wkb(bytes(r.g)) for r in rows if r.code in original})
    # personal data exported with the scope come back as they were
    assert {r.code: r.leader_phone for r in rows if r.code in original} == {c: phones[c] for c in original}
    assert any(phones[c] for c in original)


def test_round_trip_dxf_lines_and_polygons(conn, tmp_path) -> None:
    # CAD has no attributes: required fields come from --set; geometry must survive exactly
    for layer_id, defaults in (("emergency_roads", {"road_class": "local", "speed_kmh": "30"}),
                               ("landuse_planning_zones", {"plan_name": "DXF", "plan_year": "2035",
                                                           "class_code": "0701", "district": "350203"})):
        layer = REGISTRY.get(layer_id)
        original = list(_rows_in_bbox(conn, layer_id, "id").items())
        ids = [k for k, _ in original]
        path = tmp_path / f"{layer_id}.dxf"
        assert export_layer(conn, layer, path, SYSTEM, settings=SETTINGS, bbox=BBOX).rows == len(original)
        _delete(conn, layer_id, "id", ids)
        last = conn.execute(text(f"SELECT max(id) FROM {layer.table.name}")).scalar()
        report = import_file(conn, layer, path, SYSTEM, settings=SETTINGS, defaults=defaults)
        assert report.rows == len(original)
        back = conn.execute(text(f"SELECT ST_AsBinary(geom) AS g FROM {layer.table.name} WHERE id > :last"),
                            {"last": last}).all()
        got = [shapely.from_wkb(bytes(r.g)) for r in back]
        want = [g for _, g in original]
        assert len(got) == len(want)
        # no keys in CAD: pair each geometry with its match among the originals (one-to-one)
        tree = shapely.STRtree(want)
        matched = set()
        for geom in got:
            candidates = tree.query(geom, predicate="dwithin", distance=TOLERANCE_M)
            best = min(candidates, key=lambda i: shapely.hausdorff_distance(geom, want[i]))
            assert shapely.hausdorff_distance(geom, want[best]) < TOLERANCE_M, layer_id
            matched.add(int(best))
        assert len(matched) == len(want)


def test_gbk_shapefile_without_cpg(conn, tmp_path) -> None:
    layer = REGISTRY.get("landuse_survey")
    path = tmp_path / "gbk.shp"
    original = _rows_in_bbox(conn, "landuse_survey", SURVEY_KEY)
    export_layer(conn, layer, path, SYSTEM, settings=SETTINGS, bbox=BBOX, encoding="GBK")
    path.with_suffix(".cpg").unlink(missing_ok=True)
    raw = path.with_suffix(".dbf").read_bytes()
    with pytest.raises(UnicodeDecodeError):
        raw[raw.index(b"\x20", 64):].decode("utf-8")  # really GBK bytes, not UTF-8
    assert detect_dbf_encoding(path) == "GB18030"
    names_sql = text(f"SELECT {SURVEY_KEY}, class_name FROM landuse_survey_patches WHERE {SURVEY_KEY} = ANY(:k)")
    names = dict(conn.execute(names_sql, {"k": list(original)}).all())
    _delete(conn, "landuse_survey", SURVEY_KEY, original)
    report = import_file(conn, layer, path, SYSTEM, settings=SETTINGS)
    assert report.encoding == "GB18030" and report.rows == len(original)
    again = dict(conn.execute(names_sql, {"k": list(original)}).all())
    assert again == names and any(any("\u4e00" <= ch <= "\u9fff" for ch in v or "") for v in again.values())
    # and an explicit --encoding is obeyed
    _delete(conn, "landuse_survey", SURVEY_KEY, original)
    assert import_file(conn, layer, path, SYSTEM, settings=SETTINGS, encoding="GBK").encoding == "GBK"


def _counts(conn) -> tuple[int, int, int]:
    return (conn.execute(text("SELECT count(*) FROM landuse_survey_patches")).scalar(),
            conn.execute(text("SELECT count(*) FROM cadastre_parcels")).scalar(),
            conn.execute(text("SELECT count(*) FROM audit_log")).scalar())


def test_rejected_import_leaves_table_unchanged(conn, tmp_path) -> None:
    layer = REGISTRY.get("landuse_survey")
    path = tmp_path / "survey.gpkg"
    export_layer(conn, layer, path, SYSTEM, settings=SETTINGS, bbox=BBOX)
    frame = pyogrio.read_dataframe(path)
    n = len(frame)
    assert n > 10
    frame["patch_no"] = "X" + frame["patch_no"]  # fresh patch numbers
    frame.loc[3, "class_code"] = None  # a required field empty
    frame.loc[7, "geometry"] = shapely.LineString([(618000, 2710000), (618100, 2710100)])  # wrong type
    bad = tmp_path / "bad.gpkg"
    pyogrio.write_dataframe(frame, bad)
    before = _counts(conn)
    with pytest.raises(ImportRejected) as caught:
        import_file(conn, layer, bad, SYSTEM, settings=SETTINGS)
    assert _counts(conn) == before
    rows = {e["row"]: e["reason"] for e in caught.value.extra["errors"]}
    assert "class_code" in rows[4] and "wrong geometry type LineString" in rows[8]
    assert caught.value.extra["error_count"] == 2 and caught.value.status == 400
    # the database's own rules reject too (a survey area must be positive), naming the row
    frame = pyogrio.read_dataframe(path)
    frame["patch_no"] = "X" + frame["patch_no"]
    frame.loc[n - 1, "ellipsoidal_area"] = -1.0
    pyogrio.write_dataframe(frame, bad)
    with pytest.raises(ImportRejected) as caught:
        import_file(conn, layer, bad, SYSTEM, settings=SETTINGS)
    assert "area_positive" in caught.value.detail and caught.value.extra["errors"][0]["row"] == n
    assert _counts(conn) == before
    # a good import writes exactly one audit record summarising it
    frame.loc[n - 1, "ellipsoidal_area"] = 12.5
    pyogrio.write_dataframe(frame, bad)
    import_file(conn, layer, bad, SYSTEM, settings=SETTINGS)
    assert _counts(conn) == (before[0] + n, before[1], before[2] + 1)
    detail = conn.execute(text("SELECT detail FROM audit_log WHERE action = 'import' ORDER BY id DESC LIMIT 1")).scalar()
    assert detail["rows"] == n and detail["layer"] == "landuse_survey"


def test_unknown_and_missing_columns_named(conn, tmp_path) -> None:
    layer = REGISTRY.get("emergency_shelters")
    path = tmp_path / "shelters.csv"
    pd.DataFrame({"wkt": ["POLYGON((618000 2710000,618100 2710000,618100 2710100,618000 2710000))"],
                  "code": ["X1"], "colour": ["red"]}).to_csv(path, index=False)
    with pytest.raises(ImportRejected) as caught:
        import_file(conn, layer, path, SYSTEM, settings=SETTINGS)
    reasons = " | ".join(e["reason"] for e in caught.value.extra["errors"])
    assert "unknown column(s) colour" in reasons
    assert "required field 'name' is missing" in reasons and "capacity_persons" in reasons


LONLAT_SQUARE = [(118.10, 24.48), (118.101, 24.48), (118.101, 24.481), (118.10, 24.481), (118.10, 24.48)]


def _geojson(path: Path, geometry: dict, crs: str | None = None) -> Path:
    body: dict = {"type": "FeatureCollection", "features": [
        {"type": "Feature", "properties": {"name": "x", "grade": "区级", "shelter_class": "紧急",
                                           "capacity_persons": 10, "code": "T1"}, "geometry": geometry}]}
    if crs:
        body["crs"] = {"type": "name", "properties": {"name": crs}}
    path.write_text(json.dumps(body))
    return path


def _projected(points):
    t = Transformer.from_crs("EPSG:4326", "EPSG:4548", always_xy=True)
    return [list(t.transform(x, y)) for x, y in points]


BAD_GEOMETRIES = [
    ("self_intersection", "wkt", "POLYGON((618000 2710000,618100 2710100,618100 2710000,618000 2710100,"
                                 "618000 2710000))", None, "Self-intersection"),
    ("unclosed_ring", "wkt", "POLYGON((618000 2710000,618100 2710000,618100 2710100,618000 2710050))", None,
     "closed"),
    ("nan", "wkt", "POLYGON((618000 2710000,NaN 2710000,618100 2710100,618000 2710000))", None, "NaN"),
    ("wrong_type", "wkt", "LINESTRING(618000 2710000,618100 2710100)", None, "wrong geometry type LineString"),
    ("outside_city", "geojson", {"type": "Polygon", "coordinates": [[[116.40, 39.90], [116.41, 39.90],
                                                                     [116.41, 39.91], [116.40, 39.90]]]},
     None, "outside the city"),
    ("lonlat_declared_projected", "geojson", {"type": "Polygon", "coordinates": [LONLAT_SQUARE]}, "EPSG:4548",
     "look like longitude/latitude"),
    ("swapped_axes", "wkt", "POLYGON((" + ",".join(f"{y} {x}" for x, y in _projected(LONLAT_SQUARE)) + "))",
     None, "swapped"),
]


@pytest.mark.parametrize(("name", "kind", "value", "declared", "expected"), BAD_GEOMETRIES,
                         ids=[b[0] for b in BAD_GEOMETRIES])
def test_bad_geometry_refused(conn, tmp_path, name, kind, value, declared, expected) -> None:
    layer = REGISTRY.get("emergency_shelters")
    if kind == "wkt":
        path = tmp_path / f"{name}.csv"
        pd.DataFrame({"wkt": [value], "code": ["T1"], "name": ["x"], "grade": ["区级"], "shelter_class": ["紧急"],
                      "capacity_persons": ["10"]}).to_csv(path, index=False)
    else:
        path = _geojson(tmp_path / f"{name}.geojson", value)
    before = conn.execute(text("SELECT count(*) FROM emergency_shelters")).scalar()
    with pytest.raises(ImportRejected) as caught:
        import_file(conn, layer, path, SYSTEM, settings=SETTINGS, crs=declared)
    errors = caught.value.extra["errors"]
    assert errors[0]["row"] == 1
    assert expected in errors[0]["reason"], errors[0]["reason"]
    assert conn.execute(text("SELECT count(*) FROM emergency_shelters")).scalar() == before


def test_good_geojson_in_lonlat_is_reprojected(conn, tmp_path) -> None:
    layer = REGISTRY.get("emergency_shelters")
    path = _geojson(tmp_path / "ok.geojson", {"type": "Polygon", "coordinates": [LONLAT_SQUARE]})
    assert import_file(conn, layer, path, SYSTEM, settings=SETTINGS).rows == 1
    geom = conn.execute(text("SELECT ST_AsBinary(geom) FROM emergency_shelters WHERE code = 'T1'")).scalar()
    stored = shapely.from_wkb(bytes(geom))
    expected = shapely.Polygon(_projected(LONLAT_SQUARE))
    assert stored.geom_type == "MultiPolygon"
    assert shapely.hausdorff_distance(stored, expected) < TOLERANCE_M


def test_export_masks_personal_data_by_default(conn, tmp_path) -> None:
    layer = REGISTRY.get("cadastre_parcels")
    path = tmp_path / "masked.csv"
    export_layer(conn, layer, path, SYSTEM, settings=SETTINGS, bbox=BBOX)
    frame = pd.read_csv(path, dtype=str)
    phones = frame["holder_phone"].dropna()
    assert len(phones) > 0 and phones.str.contains(r"^\d{3}\*{4}\d{4}$").all()
    numbers = frame["holder_id_number"].dropna()
    assert numbers.str.contains(r"\*{11}").all()
    # a person's name as right holder is personal, an organisation's is not (the registry's rule)
    people = frame[frame["holder_kind"] == "person"]["right_holder"]
    companies = frame[frame["holder_kind"] == "organisation"]["right_holder"]
    assert len(people) and people.str.contains(r"\*").all()
    assert len(companies) and not companies.str.contains(r"\*").any()


def _shelters_file(tmp_path: Path, count: int, *, bad_row: int | None = None, duplicate_row: int | None = None) -> Path:
    boxes = [shapely.box(618000 + 30 * i, 2710000, 618020 + 30 * i, 2710020) for i in range(count)]
    codes = [f"S{i:04d}" for i in range(count)]
    if duplicate_row is not None:
        codes[duplicate_row - 1] = codes[0]
    frame = pd.DataFrame({"code": codes, "name": [f"场所{i}" for i in range(count)], "grade": "区级",
                          "shelter_class": "紧急", "capacity_persons": [str(10 + i) for i in range(count)]})
    if bad_row is not None:
        frame.loc[bad_row - 1, "capacity_persons"] = "many"
    import geopandas as gpd

    path = tmp_path / f"shelters_{bad_row}_{duplicate_row}.gpkg"
    pyogrio.write_dataframe(gpd.GeoDataFrame(frame, geometry=boxes, crs="EPSG:4548"), path)
    return path


def _index_names(conn, table: str) -> set[str]:
    return {r[0] for r in conn.execute(text("SELECT indexname FROM pg_indexes WHERE tablename = :t"), {"t": table})}


def test_big_files_stream_in_slices(owner_conn, tmp_path, monkeypatch) -> None:
    """The streaming path (worker processes, COPY straight into the table), shrunk to small numbers.
    As the owner role, which `govgis import` uses (it refreshes the table's statistics)."""
    from gis.io import imports

    conn = owner_conn
    monkeypatch.setattr(imports, "STREAM_CHUNK_ROWS", 10)
    monkeypatch.setattr(imports, "ANALYZE_MIN_ROWS", 20)
    layer = REGISTRY.get("emergency_shelters")
    conn.execute(text("DELETE FROM emergency_shelters"))
    indexes = _index_names(conn, "emergency_shelters")
    # a bad value in a late slice: its real row number is reported and nothing is written
    with pytest.raises(ImportRejected) as caught:
        import_file(conn, layer, _shelters_file(tmp_path, 45, bad_row=37), SYSTEM, settings=SETTINGS)
    assert [e["row"] for e in caught.value.extra["errors"]] == [37]
    assert conn.execute(text("SELECT count(*) FROM emergency_shelters")).scalar() == 0
    # the database refuses a duplicate code in a late slice: the savepoint undoes the earlier slices,
    # and COPY's line number gives the row
    with pytest.raises(ImportRejected) as caught:
        import_file(conn, layer, _shelters_file(tmp_path, 45, duplicate_row=41), SYSTEM, settings=SETTINGS)
    assert "uq_emergency_shelters_code" in caught.value.detail
    assert [e["row"] for e in caught.value.extra["errors"]] == [41]
    assert conn.execute(text("SELECT count(*) FROM emergency_shelters")).scalar() == 0
    # a good file: every row, in order; the indexes were never dropped, statistics refreshed
    report = import_file(conn, layer, _shelters_file(tmp_path, 45), SYSTEM, settings=SETTINGS)
    assert report.rows == 45 and "analyze" in report.stages
    rows = conn.execute(text("SELECT code, capacity_persons FROM emergency_shelters ORDER BY code")).all()
    assert rows == [(f"S{i:04d}", 10 + i) for i in range(45)]
    assert _index_names(conn, "emergency_shelters") == indexes


def test_csv_xy_columns_in_a_declared_crs_and_geojson_is_lonlat(conn, tmp_path) -> None:
    layer = REGISTRY.get("emergency_warehouses")
    rows = conn.execute(text("SELECT code, name, agency, ST_X(geom) AS x, ST_Y(geom) AS y FROM emergency_warehouses")).all()
    exported = tmp_path / "warehouses.geojson"
    export_layer(conn, layer, exported, SYSTEM, settings=SETTINGS)
    body = json.loads(exported.read_text())
    lon, lat = body["features"][0]["geometry"]["coordinates"]
    assert 118.0 < lon < 118.3 and 24.3 < lat < 24.7  # RFC 7946 order: longitude first
    # x/y columns in CGCS2000 GK CM 117 with the zone prefix (EPSG:4527): reprojected into EPSG:4548
    to_prefixed = Transformer.from_crs("EPSG:4548", "EPSG:4527", always_xy=True)
    xs, ys = to_prefixed.transform([r.x for r in rows], [r.y for r in rows])
    source = tmp_path / "warehouses_xy.csv"
    pd.DataFrame({"code": [r.code for r in rows], "name": [r.name for r in rows], "agency": [r.agency for r in rows],
                  "X": [f"{v:.4f}" for v in xs], "Y": [f"{v:.4f}" for v in ys]}).to_csv(source, index=False)
    _delete(conn, "emergency_warehouses", "code", [r.code for r in rows])
    assert import_file(conn, layer, source, SYSTEM, settings=SETTINGS, crs="EPSG:4527").rows == len(rows)
    back = {r.code: (r.x, r.y) for r in conn.execute(text(
        "SELECT code, ST_X(geom) AS x, ST_Y(geom) AS y FROM emergency_warehouses"))}
    for r in rows:
        assert abs(back[r.code][0] - r.x) < TOLERANCE_M and abs(back[r.code][1] - r.y) < TOLERANCE_M
