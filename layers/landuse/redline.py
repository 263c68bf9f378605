"""Red-line (用地红线) input for the site-selection pre-review: GeoJSON, zipped Shapefile, DXF, or the
CGCS2000 coordinate TXT of land submissions — parsed into one validated polygon in the storage CRS,
saying which format and CRS were understood.

The files are read by the same readers as ``govgis import`` (``gis.io.readers``: one reader per
format, one DXF hole rule — a closed polyline inside another is a hole), within the same upload
limits (``gis.io.uploads``: size, zip checks, vertex count). What is the red line's own is here:
which formats a red line may come in, and where its CRS may come from.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from shapely.geometry import MultiPolygon, Polygon
from shapely.geometry.base import BaseGeometry

from gis.crs import parse_crs
from gis.errors import InvalidGeometry, InvalidParameter, UnknownCRS
from gis.geometry import to_storage
from gis.io import readers
from gis.io.readers import DXF, GEOJSON, SHAPEFILE, TXT, Features, Format, gk_epsg
from gis.io.uploads import SpooledUpload, UploadLimits, spool_bytes
from gis.settings import Settings

__all__ = ["FORMATS", "RedLine", "gk_epsg", "parse_redline"]

FORMATS = ("geojson", "shapefile", "dxf", "txt")
_BY_SUFFIX = {".geojson": GEOJSON, ".json": GEOJSON, ".zip": SHAPEFILE, ".dxf": DXF, ".txt": TXT}
_FORMAT_HELP = ("send GeoJSON, a zipped Shapefile (.zip with .shp, .shx, .dbf, .prj), DXF, or the CGCS2000 "
                "coordinate TXT ([属性描述] … [地块坐标])")


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


def parse_redline(content: bytes | str | SpooledUpload, *, filename: str | None = None,
                  declared_format: str | None = None, declared_crs: str | None = None,
                  settings: Settings | None = None, limits: UploadLimits | None = None) -> RedLine:
    """Parse a red line in any accepted format; raises a GisError (→ 400, or 413 past a limit) saying
    what to fix.

    ``content`` is the upload, in memory or already spooled to disk (``gis.io.uploads``). ``limits``
    default to the service's upload limits. Pass the service's ``settings``: the fallback to the
    process settings is for callers that do not hold them yet.
    """
    if settings is None:
        from gis.settings import get_settings  # until every caller passes the app's settings

        settings = get_settings()
    limits = limits or UploadLimits.for_service(settings)
    if isinstance(content, str):
        content = content.encode("utf-8")
    if isinstance(content, bytes):
        if not content:
            raise InvalidParameter("the red line is empty")
        with spool_bytes(content, limits, filename=filename) as upload:
            return _parse(upload, filename, declared_format, declared_crs, settings, limits)
    if content.size == 0:
        raise InvalidParameter("the red line is empty")
    return _parse(content, filename, declared_format, declared_crs, settings, limits)


def _parse(upload: SpooledUpload, filename: str | None, declared_format: str | None, declared_crs: str | None,
           settings: Settings, limits: UploadLimits) -> RedLine:
    fmt = _format(upload, filename, declared_format)
    if declared_crs:
        parse_crs(declared_crs)  # an unknown CRS is refused before the file is read
    if fmt is SHAPEFILE and upload.read_head(2) != b"PK":
        raise InvalidParameter("the Shapefile upload is not a valid .zip: zip the .shp, .shx, .dbf and .prj")
    shown = Path(filename).name if filename else "the red line"
    with readers.opened(upload.path, limits, fmt) as (readable, fmt):
        features = readers.read_features(readable, fmt, polygons=True, max_vertices=limits.max_vertices,
                                         shown_name=shown)
        crs, source = _crs(features, declared_crs)
        notes = list(features.notes)
        if fmt is SHAPEFILE:
            notes.append(f"{len(features.data)} record(s) read from {readable.name}")
    geometry = _polygonal(features, fmt)
    if fmt is GEOJSON and len(features.data) > 1:
        notes.append(f"{len(features.data)} feature(s) combined into one red line")
    storage = to_storage(geometry, crs, storage_crs=settings.spatial.storage_crs,
                         city_bounds=settings.spatial.city_bounds, expected="MultiPolygon")
    return RedLine(storage, fmt.name, crs, source, notes)


def _format(upload: SpooledUpload, filename: str | None, declared: str | None) -> Format:
    """The red line's format: declared, else from the file name, else from the content."""
    if declared:
        if declared not in FORMATS:
            raise InvalidParameter(f"unknown red-line format {declared!r}: use one of {', '.join(FORMATS)}")
        return readers.BY_NAME[declared]
    found = _BY_SUFFIX.get(Path(filename or "").suffix.lower()) or readers.sniff_format(upload.read_head())
    if found not in _BY_SUFFIX.values():
        raise InvalidParameter(f"red-line format not recognised: {_FORMAT_HELP}")
    return found


def _crs(features: Features, declared: str | None) -> tuple[str, str]:
    """The CRS the red line's coordinates are in, and where that came from.

    GeoJSON: declared, else its crs member, else RFC 7946 lon/lat. Shapefile: its .prj (a declared crs
    must agree), else declared. DXF: declared (CAD carries none). TXT: its header (likewise)."""
    fmt, found = features.format, features.file_crs
    if fmt is GEOJSON:
        return (declared, "declared by the client") if declared else (found or "OGC:CRS84", features.crs_source)
    if fmt is DXF:
        if not declared:
            raise UnknownCRS("a DXF file carries no coordinate system: send crs= with it (for CGCS2000 3° zone "
                             "39 without prefix: EPSG:4548)")
        return declared, "declared by the client"
    if found is None:
        if declared:
            return declared, "declared by the client (no .prj)"
        raise UnknownCRS("the Shapefile has no .prj and no crs was declared: add the .prj or send crs=EPSG:…")
    if declared and parse_crs(declared) != parse_crs(found):
        what = "the TXT header" if fmt is TXT else "the .prj"
        raise UnknownCRS(f"the declared crs {declared} contradicts {what} ({found}): drop one")
    return found, features.crs_source


def _polygonal(features: Features, fmt: Format) -> BaseGeometry:
    """The red line as one (multi)polygon: every polygon of the file, other geometries ignored."""
    what = {GEOJSON: "GeoJSON", SHAPEFILE: "Shapefile", DXF: "DXF", TXT: "TXT"}[fmt]
    geoms = [g for g in features.data["geometry"] if g is not None and not g.is_empty]
    polys = [g for g in geoms if g.geom_type in ("Polygon", "MultiPolygon")]
    if not polys:
        if fmt is DXF:
            raise InvalidGeometry("the DXF holds no closed polyline: draw the red line as a closed LWPOLYLINE")
        raise InvalidGeometry(f"the {what} holds no polygon: a red line is a closed area")
    if len(polys) == 1:
        return polys[0]
    parts: list[Polygon] = []
    for g in polys:
        parts.extend(g.geoms if g.geom_type == "MultiPolygon" else [g])
    return MultiPolygon(parts)
