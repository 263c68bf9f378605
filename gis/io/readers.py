"""One reader per file format, shared by ``govgis import`` and the pre-review red-line upload.

Each reader turns a file into ``Features``: a frame of attribute columns plus a ``geometry`` column
of shapely geometries in the file's own coordinates, the CRS the file declares (if any) and where
that came from. GeoPackage, Shapefile (plain or zipped), GeoJSON and DXF are read by GDAL (pyogrio);
CSV and the CGCS2000 coordinate TXT of land submissions by our own parsers. Validation, CRS choice
and reprojection are the caller's (``gis.io.validate``, ``gis.geometry.to_storage``).

One DXF rule for every path: a closed polyline inside another closed polyline is a hole of it (even
and odd nesting: an island inside a hole is a new polygon). Applied when the reader is asked for
polygons (a red line, an import into a polygon layer); otherwise closed polylines stay lines.

Vertex limits (red lines) are checked while reading, before geometries are built.
"""

from __future__ import annotations

import codecs
import contextlib
import io
import re
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import shapely

from gis.errors import InvalidGeometry, InvalidParameter, PayloadTooLarge, UnknownCRS
from gis.io.uploads import UploadLimits, extract_zip


@dataclass(frozen=True)
class Format:
    """A file format govgis reads: its short name and the GDAL driver behind it (None: our own parser)."""

    name: str
    driver: str | None
    label: str  # what the import report calls it


GPKG = Format("gpkg", "GPKG", "GPKG")
SHAPEFILE = Format("shapefile", "ESRI Shapefile", "ESRI Shapefile")
GEOJSON = Format("geojson", "GeoJSON", "GeoJSON")
CSV = Format("csv", None, "CSV")
DXF = Format("dxf", "DXF", "DXF")
TXT = Format("txt", None, "TXT")
BY_NAME = {f.name: f for f in (GPKG, SHAPEFILE, GEOJSON, CSV, DXF, TXT)}
BY_SUFFIX = {".gpkg": GPKG, ".shp": SHAPEFILE, ".zip": SHAPEFILE, ".geojson": GEOJSON, ".json": GEOJSON,
             ".csv": CSV, ".dxf": DXF, ".txt": TXT}
SUFFIX_HELP = ".gpkg, .shp (or a .zip holding one), .geojson/.json, .csv, .dxf or .txt (CGCS2000 coordinates)"

# CSV columns recognised as coordinates (lower case); lon/lat pairs default to EPSG:4326
LONLAT_COLUMNS = (("lon", "lat"), ("lng", "lat"), ("longitude", "latitude"), ("经度", "纬度"))
XY_COLUMNS = (("x", "y"), ("easting", "northing"), ("东坐标", "北坐标"))
WKT_COLUMNS = ("wkt", "geometry", "geom", "the_geom", "shape")
# columns GDAL's DXF driver invents; only the CAD layer name may be kept (with --map Layer=FIELD)
DXF_COLUMNS = ("SubClasses", "ExtendedEntity", "Linetype", "EntityHandle", "Text", "PaperSpace",
               "RawCodeValues", "LineWidth")
# the CGCS2000 coordinate TXT (国土资源部 勘测定界 exchange format)
CGCS2000_NAMES = ("2000国家大地坐标系", "cgcs2000", "国家2000坐标系", "2000坐标系", "cgcs 2000", "中国2000国家大地坐标系")
OTHER_DATUMS = ("1980西安坐标系", "西安80", "1954北京坐标系", "北京54", "wgs84", "wgs-84")
TXT_PLOT_FIELDS = ("地块编号", "地块名称", "地块用途", "地类编码")  # kept from a plot's header line


@dataclass
class Features:
    """What a reader found in a file: rows (attributes + ``geometry``) in the file's coordinates."""

    data: pd.DataFrame
    format: Format
    file_crs: str | None  # the CRS the file declares, None when it declares none
    crs_source: str  # where file_crs came from, for the person reading the report
    encoding: str | None = None
    notes: list[str] = field(default_factory=list)


class Unparsable:
    """Stands in for a geometry that could not be parsed, carrying the reason to the row report."""

    def __init__(self, reason: str) -> None:
        self.reason = reason


# --- which format ---------------------------------------------------------------------------------

def format_of(path: Path, declared: str | None = None) -> Format:
    """The format of a file: the declared one, else from the extension."""
    if declared:
        if declared not in BY_NAME:
            raise InvalidParameter(f"unknown format {declared!r}: use one of {', '.join(BY_NAME)}")
        return BY_NAME[declared]
    found = BY_SUFFIX.get(path.suffix.lower())
    if found is None:
        raise InvalidParameter(f"unsupported file type {path.suffix!r}: use {SUFFIX_HELP}")
    return found


def sniff_format(head: bytes) -> Format | None:
    """The format from a file's first bytes, for uploads without a usable name."""
    if head[:2] == b"PK":
        return SHAPEFILE
    text = decode_text(head).lstrip()
    if "[属性描述]" in text or "[地块坐标]" in text:  # before GeoJSON: the TXT starts with '[' too
        return TXT
    if text.startswith(("{", "[")):
        return GEOJSON
    if re.match(r"^0\s*\n\s*SECTION", text):
        return DXF
    if head[:16].startswith(b"SQLite format 3"):
        return GPKG
    return None


def decode_text(content: bytes) -> str:
    """Text of unknown encoding: UTF-8 (with or without BOM), else GB18030 (what Chinese tools write)."""
    for encoding in ("utf-8-sig", "gb18030"):
        try:
            return content.decode(encoding)
        except UnicodeDecodeError:
            continue
    return content.decode("utf-8", errors="replace")


# --- opening: zips are checked and extracted once ---------------------------------------------------

@contextlib.contextmanager
def opened(path: Path, limits: UploadLimits, fmt: Format | None = None) -> Iterator[tuple[Path, Format]]:
    """The file to read and its format. A zip is checked (``gis.io.uploads``) and its single Shapefile
    extracted into a temporary folder for as long as the block lasts."""
    path = Path(path)
    if not path.exists():
        raise InvalidParameter(f"file {path.name} does not exist")
    fmt = fmt or format_of(path)
    if fmt is not SHAPEFILE or not _is_zip(path):
        yield path, fmt
        return
    with tempfile.TemporaryDirectory(prefix="govgis-zip-") as folder:
        files = extract_zip(path, Path(folder), limits)
        shps = [f for f in files if f.suffix.lower() == ".shp"]
        if len(shps) != 1:
            raise InvalidParameter(f"the zip must hold exactly one .shp (found {len(shps)}): zip one Shapefile "
                                   "(.shp, .shx, .dbf, .prj) at a time")
        shp = shps[0]
        present = {f.suffix.lower() for f in files if f.parent == shp.parent and f.stem == shp.stem}
        missing = {".shx", ".dbf"} - present
        if missing:
            raise InvalidParameter(f"the zip lacks {', '.join(sorted(missing))} next to {shp.name}")
        yield shp, SHAPEFILE


def _is_zip(path: Path) -> bool:
    with path.open("rb") as handle:
        return handle.read(2) == b"PK"


# --- reading --------------------------------------------------------------------------------------

def read_features(path: Path, fmt: Format, *, layer_name: str | None = None, encoding: str | None = None,
                  skip: int = 0, max_rows: int | None = None, polygons: bool = False,
                  max_vertices: int | None = None, shown_name: str | None = None) -> Features:
    """Read ``path`` (already opened: see ``opened``) in format ``fmt``.

    ``skip``/``max_rows`` read a slice (GeoPackage, Shapefile) so big files can stream; ``polygons``
    applies the DXF hole rule; ``max_vertices`` refuses (413) a file with more coordinates, counted
    before geometries are built; ``shown_name`` is the name messages use (never a server path).
    """
    name = shown_name or path.name
    if max_vertices is not None:
        _check_vertices(path, fmt, max_vertices, name)
    if fmt is CSV:
        return read_csv(path, encoding=encoding, shown_name=name)
    if fmt is TXT:
        return read_coordinate_txt(path.read_bytes(), max_vertices=max_vertices, shown_name=name)
    return _read_gdal(path, fmt, layer_name=layer_name, encoding=encoding, skip=skip, max_rows=max_rows,
                      polygons=polygons, shown_name=name)


def gpkg_layer(path: Path, wanted: tuple[str, ...], layer_name: str | None) -> str | None:
    """The layer to read from a GeoPackage: the one named, the only one, or the one named like the
    target layer (``wanted``); several others → InvalidParameter asking for --layer-name."""
    import pyogrio

    if layer_name is not None:
        return layer_name
    names = [n for n, _ in pyogrio.list_layers(path)]
    if len(names) <= 1:
        return names[0] if names else None
    preferred = [n for n in names if n in wanted]
    if not preferred:
        raise InvalidParameter(f"{path.name} has {len(names)} layers ({', '.join(names)}): choose one with "
                               "--layer-name")
    return preferred[0]


def feature_count(path: Path, fmt: Format, layer_name: str | None) -> int | None:
    """Features in a GeoPackage or Shapefile layer without reading them (None: unknown here)."""
    import pyogrio

    if fmt not in (GPKG, SHAPEFILE):
        return None
    try:
        return int(pyogrio.read_info(path, layer=layer_name)["features"])
    except Exception:  # unreadable here: the full read reports it properly
        return None


def _read_gdal(path: Path, fmt: Format, *, layer_name: str | None, encoding: str | None, skip: int,
               max_rows: int | None, polygons: bool, shown_name: str) -> Features:
    import pyogrio

    used = encoding
    if fmt is SHAPEFILE and encoding is None:
        used = detect_dbf_encoding(path)
    options: dict[str, Any] = {}
    if layer_name is not None:
        options["layer"] = layer_name
    if skip or max_rows is not None:
        options.update(skip_features=skip, max_features=max_rows)
    try:
        with pyogrio_config({"OGR_GEOMETRY_ACCEPT_UNCLOSED_RING": "NO"}):
            frame = pyogrio.read_dataframe(path, encoding=used, **options)
    except Exception as exc:  # GDAL's errors are many (and GEOS's, for broken rings); each means unreadable
        raise InvalidParameter(f"cannot read {shown_name}: {_gdal_message(exc, path, shown_name)}") from None
    file_crs, source = None, ""
    if frame.crs is not None:
        epsg = frame.crs.to_epsg(min_confidence=70)
        file_crs = f"EPSG:{epsg}" if epsg else frame.crs.to_wkt()
        source = {SHAPEFILE: ".prj file", GEOJSON: "GeoJSON crs member"}.get(fmt, f"{fmt.label} metadata")
        if fmt is GEOJSON and epsg == 4326:
            file_crs, source = "OGC:CRS84", "RFC 7946 default (lon/lat)"  # GDAL's reading of "no crs member"
    elif fmt is GEOJSON:
        file_crs, source = "OGC:CRS84", "RFC 7946 default (lon/lat)"
    if fmt is DXF:
        frame = frame.drop(columns=[c for c in DXF_COLUMNS if c in frame.columns])
    geoms = np.array(frame.geometry.to_numpy(), dtype=object)
    data = pd.DataFrame(frame.drop(columns=frame.geometry.name))
    notes: list[str] = []
    if fmt is DXF and polygons:
        keep, geoms, note = dxf_polygons(geoms)
        data = data.iloc[keep].copy()
        notes.append(note)
    data["geometry"] = geoms
    return Features(data, fmt, file_crs, source, used, notes)


@contextlib.contextmanager
def pyogrio_config(options: dict[str, str]) -> Iterator[None]:
    """GDAL configuration options for the length of one read."""
    import pyogrio

    before = {key: pyogrio.get_gdal_config_option(key) for key in options}
    pyogrio.set_gdal_config_options(options)
    try:
        yield
    finally:
        pyogrio.set_gdal_config_options(before)


_PATHS = re.compile(r"(?:/vsimem/|/vsizip/)?(?<![\w.])/(?:[^\s/'\":;,()]+/)+[^\s/'\":;,()]*")


def _gdal_message(exc: Exception, path: Path, shown_name: str) -> str:
    """GDAL's first message line with server paths replaced by the name the client knows."""
    text = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    text = text.replace(str(path), shown_name)
    text = _PATHS.sub(shown_name, text)
    if "not recognized as being in a supported file format" in text:
        return "not a file of this format (or damaged)"
    return text[:300]


def detect_dbf_encoding(shp_path: Path) -> str:
    """The encoding of a Shapefile's attributes: the .cpg if there is one, else UTF-8 if the records
    decode as UTF-8, else GB18030 (a superset of GBK/GB2312, what Chinese desktop GIS writes).

    Reads the DBF in blocks, so a big file is not held in memory."""
    cpg = shp_path.with_suffix(".cpg")
    if not cpg.exists():
        cpg = shp_path.with_suffix(".CPG")
    if cpg.exists():
        declared = cpg.read_text(errors="ignore").strip()
        if declared:
            return {"936": "GB18030", "GBK": "GB18030", "GB2312": "GB18030", "CP936": "GB18030"}.get(
                declared.upper(), declared)
    dbf = next((p for p in (shp_path.with_suffix(".dbf"), shp_path.with_suffix(".DBF")) if p.exists()), None)
    if dbf is None:
        return "UTF-8"
    with dbf.open("rb") as handle:
        head = handle.read(32)
        if len(head) < 32:
            return "UTF-8"
        for candidate, name in (("utf-8", "UTF-8"), ("gb18030", "GB18030")):
            handle.seek(int.from_bytes(head[8:10], "little"))
            decoder = codecs.getincrementaldecoder(candidate)()
            try:
                while block := handle.read(1 << 20):
                    decoder.decode(block)
                decoder.decode(b"", final=True)
                return name
            except UnicodeDecodeError:
                continue
    raise InvalidParameter(f"cannot tell the text encoding of {dbf.name}: pass --encoding (e.g. GBK, UTF-8, Big5)")


def read_csv(path: Path, *, encoding: str | None, shown_name: str | None = None) -> Features:
    """A CSV with a WKT column, or x/y (no CRS: the caller's default), or lon/lat (EPSG:4326) columns.

    Every value is read as text (codes such as 0701 keep their leading zero); types are checked later."""
    name = shown_name or path.name
    raw = path.read_bytes()
    used = encoding
    if used is None:
        try:
            raw.decode("utf-8")
            used = "utf-8-sig"
        except UnicodeDecodeError:
            used = "GB18030"
    try:
        frame = pd.read_csv(io.BytesIO(raw), dtype=str, encoding=used, keep_default_na=False, na_values=[""])
    except (UnicodeDecodeError, LookupError, pd.errors.ParserError, pd.errors.EmptyDataError) as exc:
        raise InvalidParameter(f"cannot read {name} as CSV ({type(exc).__name__}: {str(exc)[:120]})") from None
    lower = {c.lower().strip(): c for c in frame.columns}
    geoms: np.ndarray | None = None
    file_crs, source = None, ""
    drop: list[str] = []
    for wkt_name in WKT_COLUMNS:
        if wkt_name in lower:
            column = lower[wkt_name]
            geoms = np.empty(len(frame), dtype=object)
            for i, value in enumerate(frame[column].to_numpy(dtype=object)):
                if value is None or (isinstance(value, float) and np.isnan(value)):
                    geoms[i] = None
                    continue
                try:
                    geoms[i] = shapely.from_wkt(value)
                except shapely.errors.GEOSException as exc:
                    geoms[i] = Unparsable(f"column {column} is not valid WKT ({exc}): {str(value)[:40]!r}")
            drop.append(column)
            break
    if geoms is None:
        for pairs, pair_crs in ((LONLAT_COLUMNS, "EPSG:4326"), (XY_COLUMNS, None)):
            found = next(((lower[a], lower[b]) for a, b in pairs if a in lower and b in lower), None)
            if found:
                xs = pd.to_numeric(frame[found[0]], errors="coerce").to_numpy(dtype=float)
                ys = pd.to_numeric(frame[found[1]], errors="coerce").to_numpy(dtype=float)
                geoms = shapely.points(xs, ys)
                geoms[np.isnan(xs) | np.isnan(ys)] = None
                drop.extend(found)
                if pair_crs:
                    file_crs, source = pair_crs, f"{found[0]}/{found[1]} columns (lon/lat)"
                break
    if geoms is None:
        raise InvalidParameter(f"{name}: no geometry columns: give a WKT column (wkt/geometry) or coordinate "
                               "columns (x,y in the declared CRS, or lon,lat)")
    data = frame.drop(columns=drop)
    data["geometry"] = geoms
    return Features(data, CSV, file_crs, source, used)


# --- DXF: closed polylines and their holes ----------------------------------------------------------

def dxf_polygons(geoms: np.ndarray) -> tuple[np.ndarray, np.ndarray, str]:
    """The hole rule: closed polylines become polygons, and a closed polyline inside another is a hole
    of it (even-odd nesting: inside a hole is a new polygon). Polygons the file already holds (HATCH)
    and open lines are kept as they are.

    Returns the rows to keep (holes are merged into their polygon's row), their geometries, and a note
    saying what was done."""
    count = len(geoms)
    closed = np.zeros(count, dtype=bool)
    present = ~shapely.is_missing(geoms)
    lines = present & (shapely.get_type_id(np.where(present, geoms, None)) == 1)
    for i in np.flatnonzero(lines):
        closed[i] = bool(shapely.is_closed(geoms[i])) and shapely.get_num_points(geoms[i]) >= 4
    rings = np.flatnonzero(closed)
    if not len(rings):
        return np.arange(count), geoms, "no closed polylines"
    shells = np.array([shapely.Polygon(shapely.get_coordinates(geoms[i])) for i in rings], dtype=object)
    areas = shapely.area(shells)
    order = np.argsort(-areas, kind="stable")  # outer before inner; equal areas keep file order
    rank = np.empty(len(order), dtype=int)
    rank[order] = np.arange(len(order))
    tree = shapely.STRtree(shells)
    depth = np.zeros(len(shells), dtype=int)
    parent = np.full(len(shells), -1)
    for k in order:
        hosts = [int(h) for h in tree.query(shells[k], predicate="within") if rank[h] < rank[k]]
        if hosts:
            host = min(hosts, key=lambda h: areas[h])  # the innermost ring around this one
            parent[k], depth[k] = host, depth[host] + 1
    holes: dict[int, list[int]] = {}
    for k in np.flatnonzero(depth % 2 == 1):
        holes.setdefault(int(parent[k]), []).append(int(k))
    out = geoms.copy()
    for k in np.flatnonzero(depth % 2 == 0):
        interiors = [shells[h].exterior for h in holes.get(int(k), [])]
        out[rings[k]] = shapely.Polygon(shells[k].exterior, interiors)
    drop = {int(rings[k]) for k in np.flatnonzero(depth % 2 == 1)}
    keep = np.array([i for i in range(count) if i not in drop], dtype=int)
    hole_count = len(drop)
    note = (f"{len(rings)} closed polyline(s) read: {len(rings) - hole_count} polygon(s)"
            + (f", {hole_count} inside another taken as hole(s)" if hole_count else ""))
    return keep, out[keep], note


# --- the CGCS2000 coordinate TXT --------------------------------------------------------------------

def gk_epsg(zone: int, width: int, prefixed: bool) -> int:
    """EPSG code of a CGCS2000 Gauss-Krüger zone (3° zones 25–45, 6° zones 13–23)."""
    if width == 3:
        if not 25 <= zone <= 45:
            raise UnknownCRS(f"3° zone {zone} is not a CGCS2000 zone in China (25–45)")
        return (4513 if prefixed else 4534) + zone - 25
    if width == 6:
        if not 13 <= zone <= 23:
            raise UnknownCRS(f"6° zone {zone} is not a CGCS2000 zone in China (13–23)")
        return (4491 if prefixed else 4502) + zone - 13
    raise UnknownCRS(f"几度分带={width}: zones are 3 or 6 degrees wide")


def read_coordinate_txt(content: bytes, *, max_vertices: int | None = None,
                        shown_name: str = "the TXT") -> Features:
    """The coordinate TXT of land submissions (国土资源部 勘测定界 exchange format)::

        [属性描述]
        坐标系=2000国家大地坐标系
        几度分带=3
        投影类型=高斯克吕格
        带号=39
        [地块坐标]
        4,2500.00,1,某项目用地,面,,工业用地,,@
        J1,1,2711000.000,39620000.000

    Point rows are 点号,圈号,X,Y with X the northing and Y the easting, which may carry the zone number
    as prefix. Ring 1 of a plot is its boundary, higher rings are holes; a header line ending in @
    starts the next plot. One row per plot; only CGCS2000 Gauss-Krüger coordinates are accepted.
    """
    text = decode_text(content)
    header: dict[str, str] = {}
    section = None
    plots: list[tuple[dict[str, str | None], dict[int, list[tuple[float, float]]]]] = []
    vertices = 0
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line:
            continue
        if line.startswith("[") and line.endswith("]"):
            section = line[1:-1]
            continue
        if section == "属性描述":
            if "=" in line:
                key, value = line.split("=", 1)
                header[key.strip()] = value.strip()
        elif section == "地块坐标":
            parts = [p.strip() for p in line.split(",")]
            if line.endswith("@"):
                fields = (parts + [""] * 9)[:9]
                plots.append(({"地块编号": fields[2] or None, "地块名称": fields[3] or None,
                               "地块用途": fields[6] or None, "地类编码": fields[7] or None}, {}))
                continue
            if len(parts) < 4:
                raise InvalidParameter(f"TXT line {number}: a point row is 点号,圈号,X,Y — got {line[:80]!r}")
            if not plots:
                plots.append(({}, {}))
            try:
                ring, x, y = int(parts[1]), float(parts[2]), float(parts[3])
            except ValueError:
                raise InvalidParameter(f"TXT line {number}: ring number and X, Y must be numbers — got "
                                       f"{line[:80]!r}") from None
            vertices += 1
            if max_vertices is not None and vertices > max_vertices:
                raise _too_many_vertices(shown_name, max_vertices)
            plots[-1][1].setdefault(ring, []).append((x, y))
    if "[地块坐标]" not in text:
        raise InvalidParameter("the TXT has no [地块坐标] section with the boundary points")
    epsg, offset, notes = _txt_crs(header, plots)
    rows, geoms = [], []
    for attributes, rings_by_no in plots:
        if not rings_by_no:
            continue
        rings = []
        for ring_no in sorted(rings_by_no):
            points = [(y - offset, x) for x, y in rings_by_no[ring_no]]  # X north, Y east → (east, north)
            if len(points) >= 2 and points[0] == points[-1]:
                points = points[:-1]
            if len(points) < 3:
                raise InvalidGeometry(f"ring {ring_no} has fewer than 3 distinct points")
            rings.append(points)
        rows.append({name: attributes.get(name) for name in TXT_PLOT_FIELDS})
        geoms.append(shapely.Polygon(rings[0], rings[1:]))
    data = pd.DataFrame(rows, columns=list(TXT_PLOT_FIELDS))
    data["geometry"] = np.array(geoms, dtype=object)
    notes[-1] += f"; {len(geoms)} plot(s)"
    return Features(data, TXT, f"EPSG:{epsg}", "TXT [属性描述] header", "GB18030/UTF-8", notes)


def _txt_crs(header: dict[str, str], plots: list) -> tuple[int, float, list[str]]:
    """EPSG code, easting offset to remove (zone prefix) and notes, from the TXT header and points."""
    notes: list[str] = []
    datum = header.get("坐标系", "").strip()
    if not datum:
        raise UnknownCRS("the coordinate TXT declares no 坐标系 in [属性描述]: add 坐标系=2000国家大地坐标系 "
                         "(only CGCS2000 coordinates are accepted)")
    if datum.lower().replace(" ", "") not in {n.replace(" ", "") for n in CGCS2000_NAMES}:
        known_other = any(o in datum.lower() for o in OTHER_DATUMS)
        raise UnknownCRS(f"the coordinate TXT is in 坐标系={datum}"
                         f"{' (not CGCS2000)' if known_other else ' (not understood)'}: submissions must use "
                         "2000国家大地坐标系; convert the coordinates to CGCS2000 first")
    projection = header.get("投影类型", "高斯克吕格")
    if "高斯" not in projection and "gauss" not in projection.lower():
        raise UnknownCRS(f"投影类型={projection} is not understood: CGCS2000 submissions use 高斯克吕格")
    try:
        width = int(header.get("几度分带", "3"))
    except ValueError:
        raise UnknownCRS(f"几度分带={header.get('几度分带')!r} is not 3 or 6") from None
    first = next((rings for _, rings in plots if rings), None)
    if first is None:
        raise InvalidGeometry("the TXT [地块坐标] section holds no points")
    sample_y = next(iter(first.values()))[0][1]  # the easting may carry the zone in front: 39 620000.00
    prefix_zone = int(sample_y // 1_000_000) if sample_y >= 1_000_000 else None
    zone_text = header.get("带号", "").strip()
    if zone_text:
        try:
            zone = int(zone_text)
        except ValueError:
            raise UnknownCRS(f"带号={zone_text!r} is not a zone number") from None
        if prefix_zone is not None and prefix_zone != zone:
            raise UnknownCRS(f"带号={zone} but the eastings carry zone prefix {prefix_zone}: correct one of them")
    elif prefix_zone is not None:
        zone = prefix_zone
        notes.append(f"带号 missing: zone {zone} taken from the easting prefix")
    else:
        raise UnknownCRS("the coordinate TXT declares no 带号 and the eastings carry no zone prefix: add 带号= "
                         "(Xiamen: 39 for 3° zones)")
    epsg = gk_epsg(zone, width, prefixed=False)
    offset = zone * 1_000_000 if prefix_zone is not None else 0
    meridian = zone * 3 if width == 3 else zone * 6 - 3
    notes.append(f"CGCS2000 / {width}° Gauss-Krüger zone {zone} (CM {meridian}°E)"
                 f"{', zone prefix removed from eastings' if offset else ''}")
    return epsg, float(offset), notes


# --- vertex limits, counted before geometries are built ---------------------------------------------

def _too_many_vertices(name: str, limit: int) -> PayloadTooLarge:
    return PayloadTooLarge(f"{name} has more than {limit:,} vertices (GOVGIS_MAX_QUERY_VERTICES): simplify the "
                           "boundary or split it")


# a GeoJSON position starts with '[' and a number; a DXF coordinate pair starts with group code 10
_GEOJSON_POSITION = re.compile(rb"\[\s*[-+0-9.]")
_DXF_X_CODE = re.compile(rb"(?m)^[ \t]*10[ \t]*\r?$")


def _check_vertices(path: Path, fmt: Format, limit: int, name: str) -> None:
    if fmt is GEOJSON:
        _count_pattern(path, _GEOJSON_POSITION, limit, name, quick=b"[")
    elif fmt is DXF:
        _count_pattern(path, _DXF_X_CODE, limit, name, quick=b"10")
    elif fmt is SHAPEFILE and path.suffix.lower() == ".shp":
        _count_shp_vertices(path, limit, name)
    # TXT counts while it parses; GeoPackage and CSV are not red-line formats


def _count_pattern(path: Path, pattern: re.Pattern[bytes], limit: int, name: str, *, quick: bytes) -> None:
    """Refuse when ``pattern`` occurs more than ``limit`` times; stops counting past the limit. (Red
    lines only, whose size the upload limit bounds, so the file is read whole.)"""
    content = path.read_bytes()
    if content.count(quick) <= limit:
        return  # fewer candidates than the limit: no need to look closer
    seen = 0
    for _ in pattern.finditer(content):
        seen += 1
        if seen > limit:
            raise _too_many_vertices(name, limit)


_POINT_TYPES = {1, 11, 21}
_MULTIPOINT_TYPES = {8, 18, 28}
_PART_TYPES = {3, 5, 13, 15, 23, 25, 31}


def _count_shp_vertices(path: Path, limit: int, name: str) -> None:
    """Sum the point counts in the .shp record headers (no geometry is read), stopping at the limit."""
    seen = 0
    with path.open("rb") as handle:
        handle.seek(100)
        while header := handle.read(8):
            if len(header) < 8:
                break
            length = int.from_bytes(header[4:8], "big") * 2
            content = handle.read(min(length, 44))
            shape_type = int.from_bytes(content[0:4], "little") if len(content) >= 4 else 0
            if shape_type in _POINT_TYPES:
                seen += 1
            elif shape_type in _MULTIPOINT_TYPES and len(content) >= 40:
                seen += int.from_bytes(content[36:40], "little")
            elif shape_type in _PART_TYPES and len(content) >= 44:
                seen += int.from_bytes(content[40:44], "little")
            if seen > limit:
                raise _too_many_vertices(name, limit)
            handle.seek(length - len(content), 1)
