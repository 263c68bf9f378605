"""Uploads that cannot hurt the service (gis/io/uploads.py and the readers' vertex limits).

Zips are judged from their central directory before anything is extracted: a 510 KB zip holding a
500 MiB .dbf is refused with 413 (by its total size, and by its compression ratio: each check alone),
and the refusal is shown to write no large file by running it in a process that may not write more
than 16 MiB to any file. Member names that point outside the archive (``x/..`` among them: a 500
before) and symlinks are 400. Red lines with more vertices than the limit are refused (413) in every
format, counted before a geometry is built. Timings are in bench/uploads (no timing in tests).
"""

from __future__ import annotations

import io
import json
import math
import stat
import subprocess
import sys
import textwrap
import zipfile
from pathlib import Path

import geopandas as gpd
import pytest
import shapely
from shapely.geometry import mapping

from gis.errors import GisError, InvalidParameter, PayloadTooLarge
from gis.io.uploads import UploadLimits, check_zip, extract_zip, spool_chunks
from gis.settings import get_settings
from layers.landuse.redline import parse_redline

MiB = 1 << 20
SETTINGS = get_settings()
SERVICE = UploadLimits.for_service(SETTINGS)
X0, Y0 = 618_000.0, 2_710_000.0  # inside the demo city (EPSG:4548)


@pytest.fixture(scope="module")
def zip_bomb(tmp_path_factory) -> Path:
    """A Shapefile zip whose .dbf is 500 MiB of zeros: about 510 KB compressed."""
    path = tmp_path_factory.mktemp("bomb") / "bomb.zip"
    block = bytes(MiB)
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as archive:
        archive.writestr("site.shp", b"\0" * 100)
        archive.writestr("site.shx", b"\0" * 100)
        with archive.open("site.dbf", "w", force_zip64=True) as member:
            for _ in range(500):
                member.write(block)
    return path


def test_zip_bomb_is_refused_from_its_directory(zip_bomb) -> None:
    assert zip_bomb.stat().st_size < 1 * MiB
    with pytest.raises(PayloadTooLarge, match="GOVGIS_MAX_UPLOAD_UNCOMPRESSED_BYTES") as caught:
        parse_redline(zip_bomb.read_bytes(), filename="红线.zip", settings=SETTINGS)
    assert caught.value.status == 413
    # each check stands on its own: without the size limit the ratio refuses it, and the other way round
    no_total = UploadLimits(max_bytes=SERVICE.max_bytes, max_uncompressed_bytes=None, max_members=100,
                            max_ratio=SERVICE.max_ratio, max_vertices=None)
    with pytest.raises(PayloadTooLarge, match="expands"):
        check_zip(zip_bomb, no_total)
    no_ratio = UploadLimits(max_bytes=None, max_uncompressed_bytes=200 * MiB, max_members=100, max_ratio=1e9,
                            max_vertices=None)
    with pytest.raises(PayloadTooLarge, match="once extracted"):
        check_zip(zip_bomb, no_ratio)


def test_zip_bomb_writes_no_large_file(zip_bomb, tmp_path) -> None:
    """In a process that may not write 16 MiB to any file, the refusal still comes as a 413."""
    script = textwrap.dedent(f"""
        import resource, sys
        resource.setrlimit(resource.RLIMIT_FSIZE, ({16 * MiB}, {16 * MiB}))
        from gis.errors import GisError
        from layers.landuse.redline import parse_redline
        try:
            parse_redline(open({str(zip_bomb)!r}, "rb").read(), filename="bomb.zip")
        except GisError as exc:
            print(exc.status, type(exc).__name__)
    """)
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["413", "PayloadTooLarge"]


def test_zip_bomb_over_http_is_413(client, planning_headers, zip_bomb) -> None:
    r = client.post("/planning/prereview", headers=planning_headers, data={"project_name": "bomb"},
                    files={"file": ("site.zip", zip_bomb.read_bytes(), "application/zip")})
    assert r.status_code == 413, r.text
    assert r.headers["content-type"].startswith("application/problem+json")
    assert "/tmp" not in r.text


def _zip_with(name: str, *, symlink: bool = False) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as archive:
        info = zipfile.ZipInfo(name)
        if symlink:
            info.external_attr = (stat.S_IFLNK | 0o777) << 16
        archive.writestr(info, "/etc/passwd" if symlink else "x")
    return buf.getvalue()


@pytest.mark.parametrize("name", ["x/..", "../site.shp", "a/../../site.shp", "/etc/site.shp", "C:\\site.shp",
                                  "a\\..\\..\\site.shp"])
def test_member_names_outside_the_archive_are_refused(tmp_path, name) -> None:
    upload = tmp_path / "up.zip"
    upload.write_bytes(_zip_with(name))
    target = tmp_path / "out"
    target.mkdir()
    with pytest.raises(InvalidParameter, match="outside the archive"):
        extract_zip(upload, target, SERVICE)
    assert not any(target.iterdir()) and sorted(p.name for p in tmp_path.iterdir()) == ["out", "up.zip"]


def test_symlink_members_are_refused(tmp_path) -> None:
    upload = tmp_path / "up.zip"
    upload.write_bytes(_zip_with("site.shp", symlink=True))
    with pytest.raises(InvalidParameter, match="symbolic link"):
        check_zip(upload, SERVICE)


def test_too_many_members_are_refused(tmp_path) -> None:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as archive:
        for i in range(SERVICE.max_members + 1):
            archive.writestr(f"f{i}.txt", "")
    upload = tmp_path / "many.zip"
    upload.write_bytes(buf.getvalue())
    with pytest.raises(PayloadTooLarge, match="GOVGIS_MAX_ZIP_MEMBERS"):
        check_zip(upload, SERVICE)


def test_a_member_longer_than_its_directory_entry_is_not_extracted_past_it(tmp_path) -> None:
    """A forged entry says 1,000 bytes for a 2 MiB stream: extraction stops at 1,000 and refuses."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("site.dbf", b"A" * (2 * MiB))
    raw = bytearray(buf.getvalue())
    real = (2 * MiB).to_bytes(4, "little")
    forged = (1000).to_bytes(4, "little")
    local, central = raw.index(b"PK\x03\x04"), raw.index(b"PK\x01\x02")
    assert raw[local + 22:local + 26] == real and raw[central + 24:central + 28] == real
    raw[local + 22:local + 26] = forged
    raw[central + 24:central + 28] = forged
    upload = tmp_path / "forged.zip"
    upload.write_bytes(bytes(raw))
    target = tmp_path / "out"
    target.mkdir()
    with pytest.raises(InvalidParameter, match="cannot be extracted"):
        extract_zip(upload, target, SERVICE)
    assert all(p.stat().st_size <= 1000 for p in target.iterdir())


def test_member_named_x_dotdot_over_http_is_400(client, planning_headers) -> None:
    r = client.post("/planning/prereview", headers=planning_headers, data={"project_name": "evil"},
                    files={"file": ("site.zip", _zip_with("x/.."), "application/zip")})
    assert r.status_code == 400, r.text
    assert "outside the archive" in r.json()["detail"]


def test_uploads_are_spooled_within_the_limit() -> None:
    limits = UploadLimits(max_bytes=3 * MiB, max_uncompressed_bytes=None, max_members=1, max_ratio=2,
                          max_vertices=None)
    produced = []

    def chunks():
        for _ in range(10):
            produced.append(1)
            yield bytes(MiB)

    with pytest.raises(PayloadTooLarge):
        spool_chunks(chunks(), limits, filename="big.bin")
    assert len(produced) == 4  # stopped at the first block past the limit, not after reading it all
    with spool_chunks([b"ab", b"cd"], limits, filename="../../etc/x.txt") as upload:
        assert upload.path.read_bytes() == b"abcd" and upload.path.suffix == ".txt"
        assert upload.path.parent == Path(__import__("tempfile").gettempdir())
        spooled = upload.path
    assert not spooled.exists()


def test_a_streamed_request_body_is_spooled_and_read_as_text() -> None:
    """The INP upload's path: request.stream() → temporary file → text (GBK accepted)."""
    from loops import run_in_own_loop

    from gis.io.uploads import spool_stream

    async def body():
        for part in ("[TITLE]\n", "厦门 演示管网\n", "[END]\n"):
            yield part.encode("gbk")

    async def spool():
        return await spool_stream(body(), SERVICE, filename="net.inp")

    with run_in_own_loop(spool()) as upload:
        assert upload.text() == "[TITLE]\n厦门 演示管网\n[END]\n" and upload.path.suffix == ".inp"

    async def endless():
        while True:
            yield bytes(MiB)

    async def too_much():
        return await spool_stream(endless(), SERVICE)

    with pytest.raises(PayloadTooLarge):
        run_in_own_loop(too_much())


def test_a_spooled_upload_parses_like_its_bytes(tmp_path) -> None:
    """A route that spools the upload hands the file, not its bytes, to parse_redline."""
    from gis.io.uploads import spool_file

    content = _as_txt(_ring(200))
    from_bytes = parse_redline(content, filename="红线.txt", settings=SETTINGS)
    with spool_file(io.BytesIO(content), SERVICE, filename="红线.txt") as upload:
        from_file = parse_redline(upload, filename="红线.txt", settings=SETTINGS)
    assert from_file.geometry.equals(from_bytes.geometry) and from_file.input_crs == "EPSG:4548"


# --- vertex limits, in every red-line format ---------------------------------------------------------

LIMIT = 1_000


def _ring(vertices: int) -> shapely.Polygon:
    """A valid polygon (a circle of 400 m radius) with ``vertices`` corners."""
    return shapely.Polygon([(X0 + 400 * math.cos(2 * math.pi * k / vertices),
                             Y0 + 400 * math.sin(2 * math.pi * k / vertices)) for k in range(vertices)])


def _as_geojson(polygon: shapely.Polygon) -> bytes:
    return json.dumps({"type": "Feature", "properties": {}, "geometry": mapping(polygon)}).encode()


def _as_txt(polygon: shapely.Polygon) -> bytes:
    rows = [f"J{k},1,{y:.3f},{39_000_000 + x:.3f}" for k, (x, y) in enumerate(polygon.exterior.coords, start=1)]
    return ("[属性描述]\n坐标系=2000国家大地坐标系\n几度分带=3\n投影类型=高斯克吕格\n带号=39\n[地块坐标]\n"
            f"{len(rows)},1,1,测试,面,,工业用地,,@\n" + "\n".join(rows) + "\n").encode()


def _as_dxf(polygon: shapely.Polygon) -> bytes:
    import ezdxf

    doc = ezdxf.new()
    doc.modelspace().add_lwpolyline(list(polygon.exterior.coords)[:-1], close=True)
    stream = io.StringIO()
    doc.write(stream)
    return stream.getvalue().encode()


def _as_zipped_shapefile(polygon: shapely.Polygon, folder: Path) -> bytes:
    gpd.GeoDataFrame({"id": [1]}, geometry=[polygon], crs="EPSG:4548").to_file(folder / "site.shp")
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as archive:
        for f in folder.iterdir():
            archive.write(f, f.name)
    return buf.getvalue()


@pytest.mark.parametrize("fmt", ["geojson", "txt", "dxf", "shapefile"])
def test_red_line_vertex_limit_in_every_format(tmp_path, fmt) -> None:
    limits = UploadLimits(max_bytes=SERVICE.max_bytes, max_uncompressed_bytes=SERVICE.max_uncompressed_bytes,
                          max_members=SERVICE.max_members, max_ratio=SERVICE.max_ratio, max_vertices=LIMIT)
    make = {"geojson": _as_geojson, "txt": _as_txt, "dxf": _as_dxf,
            "shapefile": lambda p: _as_zipped_shapefile(p, tmp_path)}[fmt]
    name = {"geojson": "r.geojson", "txt": "r.txt", "dxf": "r.dxf", "shapefile": "r.zip"}[fmt]
    crs = "EPSG:4548" if fmt in ("geojson", "dxf") else None
    within = parse_redline(make(_ring(LIMIT // 2)), filename=name, declared_crs=crs, settings=SETTINGS,
                           limits=limits)
    assert within.geometry.area == pytest.approx(_ring(LIMIT // 2).area, rel=1e-6)
    if fmt == "shapefile":
        for f in tmp_path.iterdir():
            f.unlink()
    with pytest.raises(PayloadTooLarge, match="vertices") as caught:
        parse_redline(make(_ring(LIMIT * 3)), filename=name, declared_crs=crs, settings=SETTINGS, limits=limits)
    assert caught.value.status == 413


def test_a_million_vertex_red_line_over_http_is_413(client, planning_headers) -> None:
    """1,000,000 positions in a GeoJSON small enough for the upload limit: refused by the vertex count."""
    body = ('{"type":"Polygon","coordinates":[[' + ",".join(["[1,2]"] * 1_000_000) + "]]}").encode()
    assert len(body) < SERVICE.max_bytes
    r = client.post("/planning/prereview", headers=planning_headers, data={"project_name": "huge"},
                    files={"file": ("huge.geojson", body, "application/geo+json")})
    assert r.status_code == 413, r.text
    assert "vertices" in r.json()["detail"]


def test_upload_larger_than_the_limit_is_413() -> None:
    with pytest.raises(GisError) as caught:
        parse_redline(b"{" + b" " * (SERVICE.max_bytes + 1) + b"}", filename="big.geojson", settings=SETTINGS)
    assert caught.value.status == 413


@pytest.fixture(scope="module")
def planning_headers(demo_city) -> dict[str, str]:
    from gis.keys import create_key

    with demo_city.begin() as conn:
        secret = create_key(conn, department="自然资源和规划局", read=["*"], write=["landuse"]).secret
    return {"X-API-Key": secret}


def test_a_red_line_file_over_the_upload_limit_over_http_is_413(client, planning_headers) -> None:
    """The multipart file is spooled in blocks and refused at the limit, with the setting named."""
    body = b"{" + b" " * SERVICE.max_bytes + b"}"
    r = client.post("/planning/prereview", headers=planning_headers, data={"project_name": "big"},
                    files={"file": ("big.geojson", body, "application/geo+json")})
    assert r.status_code == 413, r.text
    assert "GOVGIS_MAX_UPLOAD_BYTES" in r.json()["detail"]


def test_an_inp_body_over_the_upload_limit_is_413_and_writes_nothing(client, demo_city) -> None:
    from sqlalchemy import text

    from gis.keys import create_key

    with demo_city.begin() as conn:
        secret = create_key(conn, department="自来水公司", read=["pipeline"], write=["pipeline"]).secret
        before = conn.execute(text("SELECT count(*) FROM pipeline_networks")).scalar_one()
    body = b"[JUNCTIONS]\n" + b" " * SERVICE.max_bytes
    r = client.post("/pipeline/networks/import-inp", params={"name": "too-big", "crs": "EPSG:4548"},
                    content=body, headers={"X-API-Key": secret, "Content-Type": "text/plain"})
    assert r.status_code == 413, r.text
    assert r.headers["content-type"].startswith("application/problem+json")
    with demo_city.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM pipeline_networks")).scalar_one() == before
