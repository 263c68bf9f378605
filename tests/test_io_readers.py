"""One reader per format for both paths: ``govgis import`` and the pre-review red-line upload read a
file into the same geometry. A DXF with a hole (and an island in the hole) gives the same polygon
through both, equal to the shapely construction of it; the coordinate TXT and a zipped Shapefile,
which only red lines could read before, now import too.

Every import runs inside a rolled-back transaction (the ``conn`` fixture).
"""

from __future__ import annotations

import io
import warnings
import zipfile
from pathlib import Path

import ezdxf
import geopandas as gpd
import pytest
import shapely
from sqlalchemy import text

from gis.access import SYSTEM
from gis.errors import InvalidParameter
from gis.io.imports import import_file
from gis.io.readers import DXF, dxf_polygons, read_features
from gis.settings import get_settings
from layers import REGISTRY
from layers.landuse.redline import parse_redline

SETTINGS = get_settings()
X, Y = 618_000.0, 2_710_000.0  # inside the demo city (EPSG:4548)
OUTER = shapely.box(X, Y, X + 400, Y + 400)
HOLE = shapely.box(X + 100, Y + 100, X + 300, Y + 300)
ISLAND = shapely.box(X + 150, Y + 150, X + 250, Y + 250)
APART = shapely.box(X + 600, Y, X + 700, Y + 100)
# the oracle: even-odd nesting, built with shapely's set operations
EXPECTED = shapely.union_all([OUTER.difference(HOLE), ISLAND, APART])


def _dxf(*polygons: shapely.Polygon, open_line: bool = False) -> bytes:
    doc = ezdxf.new()
    msp = doc.modelspace()
    for polygon in polygons:
        msp.add_lwpolyline(list(polygon.exterior.coords)[:-1], close=True)
    if open_line:  # not part of any area
        msp.add_lwpolyline([(X, Y - 50), (X + 400, Y - 50)])
    stream = io.StringIO()
    doc.write(stream)
    return stream.getvalue().encode()


def _stored(conn, table: str, codes_sql: str) -> shapely.Geometry:
    rows = conn.execute(text(f"SELECT ST_AsBinary(geom) FROM {table} WHERE {codes_sql}")).scalars().all()
    return shapely.union_all([shapely.from_wkb(bytes(r)) for r in rows])


def test_dxf_hole_rule_is_the_same_for_red_lines_and_imports(conn, tmp_path) -> None:
    content = _dxf(APART, HOLE, OUTER, ISLAND)  # file order must not matter
    red = parse_redline(content, filename="红线.dxf", declared_crs="EPSG:4548", settings=SETTINGS)
    assert red.geometry.symmetric_difference(EXPECTED).area < 1e-6
    assert red.geometry.area == pytest.approx(400 * 400 - 200 * 200 + 100 * 100 + 100 * 100)
    assert any("1 inside another taken as hole" in n for n in red.notes), red.notes

    path = tmp_path / "zones.dxf"
    path.write_bytes(content)
    layer = REGISTRY.get("landuse_planning_zones")
    report = import_file(conn, layer, path, SYSTEM, settings=SETTINGS,
                         defaults={"plan_name": "DXF-HOLE", "plan_year": "2035", "class_code": "0701",
                                   "district": "350203"})
    assert report.rows == 3  # outer-with-hole, island, apart: the hole is no feature of its own
    stored = _stored(conn, "landuse_planning_zones", "plan_name = 'DXF-HOLE'")
    assert stored.symmetric_difference(red.geometry).area < 1e-6
    assert stored.symmetric_difference(EXPECTED).area < 1e-6


def test_an_open_polyline_is_ignored_in_a_red_line_and_refused_by_a_polygon_import(conn, tmp_path) -> None:
    from gis.errors import ImportRejected

    content = _dxf(OUTER, HOLE, open_line=True)
    red = parse_redline(content, filename="红线.dxf", declared_crs="EPSG:4548", settings=SETTINGS)
    assert red.geometry.symmetric_difference(OUTER.difference(HOLE)).area < 1e-6
    path = tmp_path / "with_line.dxf"
    path.write_bytes(content)
    with pytest.raises(ImportRejected) as caught:
        import_file(conn, REGISTRY.get("emergency_shelters"), path, SYSTEM, settings=SETTINGS,
                    defaults={"code": "DXF-LINE", "name": "x", "grade": "区级", "shelter_class": "紧急",
                              "capacity_persons": "5"})
    assert "wrong geometry type LineString" in caught.value.extra["errors"][0]["reason"]


def test_unique_codes_are_enforced_for_dxf_rows_too(conn, tmp_path) -> None:
    """The same --set code for every row hits the layer's unique code: rejected, nothing written."""
    from gis.errors import ImportRejected

    path = tmp_path / "two.dxf"
    path.write_bytes(_dxf(APART, shapely.box(X + 800, Y, X + 900, Y + 100)))
    layer = REGISTRY.get("emergency_shelters")
    with pytest.raises(ImportRejected, match="uq_emergency_shelters_code") as caught:
        import_file(conn, layer, path, SYSTEM, settings=SETTINGS,
                    defaults={"code": "DXF-SAME", "name": "x", "grade": "区级", "shelter_class": "紧急",
                              "capacity_persons": "5"})
    assert caught.value.extra["errors"][0]["row"] == 2


def test_open_lines_stay_lines_for_line_layers(tmp_path) -> None:
    """The hole rule is for areas: read for a line layer, closed polylines stay lines."""
    path = tmp_path / "lines.dxf"
    path.write_bytes(_dxf(OUTER, HOLE, open_line=True))
    as_lines = read_features(path, DXF, polygons=False)
    assert set(shapely.get_type_id(as_lines.data["geometry"].to_numpy())) == {1}
    keep, geoms, note = dxf_polygons(as_lines.data["geometry"].to_numpy())
    assert len(keep) == 2 and "1 inside another" in note  # outer (with hole) + the open line


def _txt(polygon: shapely.Polygon, name: str) -> str:
    rows = []
    for ring_no, ring in enumerate([polygon.exterior, *polygon.interiors], start=1):
        for k, (e, n) in enumerate(ring.coords, start=1):
            rows.append(f"J{k},{ring_no},{n:.3f},{39_000_000 + e:.3f}")
    return ("[属性描述]\n坐标系=2000国家大地坐标系\n几度分带=3\n投影类型=高斯克吕格\n带号=39\n[地块坐标]\n"
            f"{len(rows)},{polygon.area / 10000:.4f},1,{name},面,,工业用地,,@\n" + "\n".join(rows) + "\n")


def test_coordinate_txt_imports_like_it_reads_as_a_red_line(conn, tmp_path) -> None:
    site = OUTER.difference(HOLE)
    path = tmp_path / "红线.txt"
    path.write_text(_txt(site, "某项目用地"), encoding="gb18030")
    red = parse_redline(path.read_bytes(), filename=path.name, settings=SETTINGS)
    layer = REGISTRY.get("emergency_shelters")
    report = import_file(conn, layer, path, SYSTEM, settings=SETTINGS, rename={"地块名称": "name"},
                         defaults={"code": "TXT-1", "grade": "区级", "shelter_class": "紧急",
                                   "capacity_persons": "5"})
    assert report.rows == 1 and report.source_crs == "EPSG:4548"
    stored = _stored(conn, "emergency_shelters", "code = 'TXT-1'")
    assert stored.symmetric_difference(site).area < 1e-6 and stored.symmetric_difference(red.geometry).area < 1e-6
    assert conn.execute(text("SELECT name FROM emergency_shelters WHERE code = 'TXT-1'")).scalar() == "某项目用地"
    with pytest.raises(Exception, match="contradicts"):
        import_file(conn, layer, path, SYSTEM, settings=SETTINGS, crs="EPSG:4549",
                    defaults={"code": "TXT-2", "name": "x", "grade": "区级", "shelter_class": "紧急",
                              "capacity_persons": "5"})


def _zipped_shapefile(folder: Path, frame: gpd.GeoDataFrame, *, extra: dict[str, bytes] | None = None) -> Path:
    shp = folder / "shp"
    shp.mkdir()
    with warnings.catch_warnings():  # field names cut to 10 characters: expected, matched back on import
        warnings.simplefilter("ignore")
        frame.to_file(shp / "shelters.shp")
    path = folder / "shelters.zip"
    with zipfile.ZipFile(path, "w") as archive:
        for f in shp.iterdir():
            archive.write(f, f"数据/{f.name}")
        for name, data in (extra or {}).items():
            archive.writestr(name, data)
    return path


def test_zipped_shapefile_imports(conn, tmp_path) -> None:
    frame = gpd.GeoDataFrame({"code": ["ZIP-1", "ZIP-2"], "name": ["甲", "乙"], "grade": "区级",
                              "shelter_class": "紧急", "capacity_persons": [10, 20]},
                             geometry=[APART, ISLAND], crs="EPSG:4548")
    path = _zipped_shapefile(tmp_path, frame)
    report = import_file(conn, REGISTRY.get("emergency_shelters"), path, SYSTEM, settings=SETTINGS)
    assert report.rows == 2 and report.format == "ESRI Shapefile"
    rows = conn.execute(text("SELECT code, name, capacity_persons FROM emergency_shelters WHERE code LIKE 'ZIP-%' "
                             "ORDER BY code")).all()
    assert [tuple(r) for r in rows] == [("ZIP-1", "甲", 10), ("ZIP-2", "乙", 20)]


def test_zipped_import_gets_the_same_zip_checks(conn, tmp_path) -> None:
    frame = gpd.GeoDataFrame({"code": ["ZIP-3"]}, geometry=[APART], crs="EPSG:4548")
    path = _zipped_shapefile(tmp_path, frame, extra={"../escape.txt": b"x"})
    with pytest.raises(InvalidParameter, match="outside the archive"):
        import_file(conn, REGISTRY.get("emergency_shelters"), path, SYSTEM, settings=SETTINGS)
    assert not (tmp_path.parent / "escape.txt").exists()
