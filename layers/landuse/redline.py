"""Red-line (用地红线) input: GeoJSON, zipped Shapefile, DXF, or the CGCS2000 coordinate TXT of
land submissions — parsed into one validated polygon in the storage CRS, saying which format and
CRS were understood.

The coordinate TXT (国土资源部 勘测定界 exchange format)::

    [属性描述]
    坐标系=2000国家大地坐标系
    几度分带=3
    投影类型=高斯克吕格
    计量单位=米
    带号=39
    [地块坐标]
    4,2500.00,1,某项目用地,面,,工业用地,,@
    J1,1,2711000.000,39620000.000
    ...

Rows are point no, ring no, X, Y with X the northing and Y the easting (which may carry the zone
number as prefix). A ring number above 1 within one plot is a hole; a new header line ending in @
starts another plot.
"""

from __future__ import annotations

import io
import json
import re
import tempfile
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

from shapely.geometry import MultiPolygon, Polygon
from shapely.geometry.base import BaseGeometry
from shapely.validation import explain_validity

from gis.crs import parse_crs
from gis.errors import InvalidGeometry, InvalidParameter, UnknownCRS
from gis.geometry import parse_geojson, to_storage
from gis.settings import get_settings

FORMATS = ("geojson", "shapefile", "dxf", "txt")
CGCS2000_NAMES = ("2000国家大地坐标系", "cgcs2000", "国家2000坐标系", "2000坐标系", "cgcs 2000", "中国2000国家大地坐标系")
OTHER_DATUMS = ("1980西安坐标系", "西安80", "1954北京坐标系", "北京54", "wgs84", "wgs-84")


@dataclass
class RedLine:
    """A parsed red line: the geometry in the storage CRS and what was understood of the input."""

    geometry: BaseGeometry
    input_format: str
    input_crs: str
    crs_source: str
    notes: list[str] = field(default_factory=list)

    def describe(self) -> dict[str, object]:
        return {"format": self.input_format, "crs": self.input_crs, "crs_source": self.crs_source,
                "notes": self.notes}


def detect_format(content: bytes, filename: str | None = None) -> str:
    """The red-line format from the file name, else from the content."""
    suffix = Path(filename or "").suffix.lower()
    by_suffix = {".geojson": "geojson", ".json": "geojson", ".zip": "shapefile", ".dxf": "dxf", ".txt": "txt"}
    if suffix in by_suffix:
        return by_suffix[suffix]
    if content[:2] == b"PK":
        return "shapefile"
    head = _decode(content[:4000]).lstrip()
    if head.startswith("{"):
        return "geojson"
    if "[属性描述]" in head or "[地块坐标]" in head:
        return "txt"
    if re.match(r"^0\s*\n\s*SECTION", head):
        return "dxf"
    raise InvalidParameter("red-line format not recognised: send GeoJSON, a zipped Shapefile (.zip with .shp, "
                           ".shx, .dbf, .prj), DXF, or the CGCS2000 coordinate TXT ([属性描述] … [地块坐标])")


def _decode(content: bytes) -> str:
    for encoding in ("utf-8-sig", "gb18030"):
        try:
            return content.decode(encoding)
        except UnicodeDecodeError:
            continue
    return content.decode("utf-8", errors="replace")


def _polygonal(geoms: list[BaseGeometry], what: str) -> BaseGeometry:
    polys = [g for g in geoms if g.geom_type in ("Polygon", "MultiPolygon")]
    if not polys:
        raise InvalidGeometry(f"the {what} holds no polygon: a red line is a closed area")
    if len(polys) == 1:
        return polys[0]
    parts: list[Polygon] = []
    for g in polys:
        parts.extend(g.geoms if g.geom_type == "MultiPolygon" else [g])
    return MultiPolygon(parts)


def _finish(geometry: BaseGeometry, fmt: str, crs: str, source: str, notes: list[str]) -> RedLine:
    settings = get_settings()
    storage = to_storage(geometry, crs, storage_crs=settings.spatial.storage_crs,
                         city_bounds=settings.spatial.city_bounds, expected="MultiPolygon")
    return RedLine(storage, fmt, crs, source, notes)


def parse_redline(content: bytes | str, *, filename: str | None = None, declared_format: str | None = None,
                  declared_crs: str | None = None) -> RedLine:
    """Parse a red line in any accepted format; raises a GisError (→ 400) saying what to fix."""
    if isinstance(content, str):
        content = content.encode("utf-8")
    if not content:
        raise InvalidParameter("the red line is empty")
    fmt = declared_format or detect_format(content, filename)
    if fmt not in FORMATS:
        raise InvalidParameter(f"unknown red-line format {fmt!r}: use one of {', '.join(FORMATS)}")
    return {"geojson": _geojson, "shapefile": _shapefile, "dxf": _dxf, "txt": _txt}[fmt](content, declared_crs)


def _geojson(content: bytes, declared_crs: str | None) -> RedLine:
    try:
        doc = json.loads(_decode(content))
    except json.JSONDecodeError as exc:
        raise InvalidGeometry(f"red line is not valid JSON ({exc.msg} at character {exc.pos})") from None
    notes = []
    crs, source = "OGC:CRS84", "RFC 7946 default (lon/lat)"
    named = (doc.get("crs") or {}).get("properties", {}).get("name") if isinstance(doc, dict) else None
    if named:
        crs, source = named, "GeoJSON crs member"
        parse_crs(crs)
    if declared_crs:
        parse_crs(declared_crs)
        crs, source = declared_crs, "declared by the client"
    if isinstance(doc, dict) and doc.get("type") == "FeatureCollection":
        feats = doc.get("features") or []
        if not feats:
            raise InvalidGeometry("the FeatureCollection has no features")
        geom = _polygonal([parse_geojson(f) for f in feats], "FeatureCollection")
        notes.append(f"{len(feats)} feature(s) combined into one red line")
    else:
        geom = _polygonal([parse_geojson(doc)], "GeoJSON")
    return _finish(geom, "geojson", crs, source, notes)


def _shapefile(content: bytes, declared_crs: str | None) -> RedLine:
    import pyogrio

    try:
        archive = zipfile.ZipFile(io.BytesIO(content))
    except zipfile.BadZipFile:
        raise InvalidParameter("the Shapefile upload is not a valid .zip: zip the .shp, .shx, .dbf and .prj") from None
    names = [n for n in archive.namelist() if not n.endswith("/")]
    shps = [n for n in names if n.lower().endswith(".shp")]
    if len(shps) != 1:
        raise InvalidParameter(f"the zip must hold exactly one .shp (found {len(shps)})")
    stem = shps[0][:-4]
    needed = {".shx", ".dbf"}
    present = {Path(n).suffix.lower() for n in names if n[:-4] == stem}
    if not needed <= present:
        raise InvalidParameter(f"the zip lacks {', '.join(sorted(needed - present))} next to {shps[0]}")
    with tempfile.TemporaryDirectory() as tmp:
        for name in names:
            target = Path(tmp) / Path(name).name  # flatten: never write outside tmp
            target.write_bytes(archive.read(name))
        shp = Path(tmp) / Path(shps[0]).name
        try:
            frame = pyogrio.read_dataframe(shp)
        except Exception as exc:  # pyogrio raises its own DataSourceError family
            raise InvalidParameter(f"the Shapefile cannot be read: {exc}") from None
    if frame.crs is not None:
        crs, source = frame.crs.to_wkt(), ".prj file"
        epsg = frame.crs.to_epsg(min_confidence=70)
        if epsg:
            crs = f"EPSG:{epsg}"
    elif declared_crs:
        parse_crs(declared_crs)
        crs, source = declared_crs, "declared by the client (no .prj)"
    else:
        raise UnknownCRS("the Shapefile has no .prj and no crs was declared: add the .prj or send crs=EPSG:…")
    if declared_crs and frame.crs is not None and parse_crs(declared_crs) != frame.crs:
        raise UnknownCRS(f"the declared crs {declared_crs} contradicts the .prj ({frame.crs.name}): drop one")
    geom = _polygonal(list(frame.geometry.dropna()), "Shapefile")
    return _finish(geom, "shapefile", crs, source, [f"{len(frame)} record(s) read from {Path(shps[0]).name}"])


def _dxf(content: bytes, declared_crs: str | None) -> RedLine:
    import ezdxf
    from ezdxf.lldxf.const import DXFError

    if not declared_crs:
        raise UnknownCRS("a DXF file carries no coordinate system: send crs= with it (for CGCS2000 3° zone 39 "
                         "without prefix: EPSG:4548)")
    parse_crs(declared_crs)
    try:
        doc = ezdxf.read(io.StringIO(_decode(content)))
    except (DXFError, ValueError) as exc:
        raise InvalidParameter(f"the DXF cannot be read: {exc}") from None
    polygons = []
    for entity in doc.modelspace():
        kind = entity.dxftype()
        if kind == "LWPOLYLINE":
            points = [(p[0], p[1]) for p in entity.get_points("xy")]
            closed = entity.closed
        elif kind == "POLYLINE":
            points = [(v.dxf.location.x, v.dxf.location.y) for v in entity.vertices]
            closed = entity.is_closed
        else:
            continue
        if len(points) >= 2 and points[0] == points[-1]:
            closed = True
            points = points[:-1]
        if closed and len(points) >= 3:
            polygons.append(Polygon(points))
    if not polygons:
        raise InvalidGeometry("the DXF holds no closed polyline: draw the red line as a closed LWPOLYLINE")
    # nested closed polylines are holes: even-odd by containment
    polygons.sort(key=lambda p: -p.area)
    shells: list[tuple[Polygon, list[Polygon]]] = []
    for poly in polygons:
        host = next((s for s in shells if s[0].contains(poly) and not any(h.contains(poly) for h in s[1])), None)
        if host is not None:
            host[1].append(poly)
        else:
            shells.append((poly, []))
    parts = [Polygon(s.exterior.coords, [h.exterior.coords for h in holes]) for s, holes in shells]
    geom = parts[0] if len(parts) == 1 else MultiPolygon(parts)
    return _finish(geom, "dxf", declared_crs, "declared by the client",
                   [f"{len(polygons)} closed polyline(s) read"])


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


def _txt(content: bytes, declared_crs: str | None) -> RedLine:
    text = _decode(content)
    header: dict[str, str] = {}
    section = None
    plots: list[dict[int, list[tuple[float, float]]]] = []
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
            if line.endswith("@"):
                plots.append({})
                continue
            parts = [p.strip() for p in line.split(",")]
            if len(parts) < 4:
                raise InvalidParameter(f"TXT line {number}: a point row is 点号,圈号,X,Y — got {line!r}")
            if not plots:
                plots.append({})
            try:
                ring, x, y = int(parts[1]), float(parts[2]), float(parts[3])
            except ValueError:
                raise InvalidParameter(f"TXT line {number}: ring number and X, Y must be numbers — got {line!r}") from None
            plots[-1].setdefault(ring, []).append((x, y))
    if "[地块坐标]" not in text:
        raise InvalidParameter("the TXT has no [地块坐标] section with the boundary points")
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
    if not plots or not any(plots):
        raise InvalidGeometry("the TXT [地块坐标] section holds no points")
    # the easting may carry the zone number in front (e.g. 39 620000.00)
    sample_y = next(iter(next(p for p in plots if p).values()))[0][1]
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
    polygons = []
    for plot in plots:
        if not plot:
            continue
        rings = []
        for ring_no in sorted(plot):
            points = [(y - offset, x) for x, y in plot[ring_no]]  # X north, Y east → (easting, northing)
            if len(points) >= 2 and points[0] == points[-1]:
                points = points[:-1]
            if len(points) < 3:
                raise InvalidGeometry(f"ring {ring_no} has fewer than 3 distinct points")
            rings.append(points)
        polygons.append(Polygon(rings[0], rings[1:]))
    geom = polygons[0] if len(polygons) == 1 else MultiPolygon(polygons)
    if not geom.is_valid:
        geom_problem = explain_validity(geom)
        raise InvalidGeometry(f"the TXT boundary is not a valid polygon ({geom_problem}): check the point order")
    crs = f"EPSG:{epsg}"
    notes.append(f"CGCS2000 / {width}° Gauss-Krüger zone {zone} (CM {zone * width if width == 3 else zone * 6 - 3}°E)"
                 f"{', zone prefix removed from eastings' if offset else ''}; {len(polygons)} plot(s)")
    if declared_crs and parse_crs(declared_crs) != parse_crs(crs):
        raise UnknownCRS(f"the declared crs {declared_crs} contradicts the TXT header ({crs}): drop crs=")
    return _finish(geom, "txt", crs, "TXT [属性描述] header", notes)
