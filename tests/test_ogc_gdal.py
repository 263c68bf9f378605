"""GDAL's OGC API client (ogrinfo/ogr2ogr OAPIF) and the ogctests Features Core suite, against a live
uvicorn server on a free loopback port serving the test database."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import sqlalchemy as sa

from gis.access import ANONYMOUS, can_read
from gis.registry import REGISTRY

ROOT = Path(__file__).resolve().parent.parent
OGCTESTS_VENV = ROOT / "bench" / ".venv-ogctests"
OGCTESTS_VERSION = "0.1.15"
GDAL_ENV = {**os.environ, "GDAL_HTTP_TIMEOUT": "60", "CPL_DEBUG": "OFF", "GDAL_HTTP_MAX_RETRY": "0"}


def _run(args: list[str], timeout: int = 300) -> subprocess.CompletedProcess:
    return subprocess.run(args, capture_output=True, text=True, timeout=timeout, env=GDAL_ENV)


def test_ogrinfo_lists_every_public_collection(live_server, spatial_data) -> None:
    r = _run(["ogrinfo", "-ro", "-q", f"OAPIF:{live_server}"])
    assert r.returncode == 0, r.stderr
    listed = {line.split(":", 1)[1].strip().split(" ")[0] for line in r.stdout.splitlines() if ":" in line}
    public = {layer.id for layer in REGISTRY.spatial() if can_read(ANONYMOUS, layer)}
    assert public <= listed, (public - listed, r.stdout)
    assert not any(layer.id in listed for layer in REGISTRY.spatial() if not can_read(ANONYMOUS, layer))


def test_ogr2ogr_copies_with_bbox_and_attribute_filter(live_server, engine, spatial_data, tmp_path) -> None:
    from pyproj import Transformer

    from gis.settings import get_settings

    x0, y0 = spatial_data.origin
    t = Transformer.from_crs(get_settings().spatial.storage_crs, "OGC:CRS84", always_xy=True)
    lon0, lat0 = t.transform(x0 - 5, y0 - 5)
    lon1, lat1 = t.transform(x0 + 170, y0 + 250)
    out = tmp_path / "parcels.geojson"
    r = _run(["ogr2ogr", "-f", "GeoJSON", str(out), f"OAPIF:{live_server}/collections/cadastre_parcels",
              "-spat", str(lon0), str(lat0), str(lon1), str(lat1), "-where", "landuse_code = '0701'"])
    assert r.returncode == 0, r.stderr
    copied = json.loads(out.read_text())["features"]
    with engine.connect() as conn:
        expected = conn.execute(sa.text(
            "SELECT count(*) FROM cadastre_parcels WHERE valid_to IS NULL AND recorded_to IS NULL "
            "AND landuse_code = '0701' AND ST_Intersects(geom, ST_Transform(ST_MakeEnvelope(:a, :b, :c, :d, 4326), "
            "ST_SRID(geom)))"), {"a": lon0, "b": lat0, "c": lon1, "d": lat1}).scalar()
    assert len(copied) == expected and expected > 0
    assert all(f["properties"]["landuse_code"] == "0701" for f in copied)
    # the whole public layer also copies, with the count SQL gives
    whole = tmp_path / "shelters.geojson"
    r = _run(["ogr2ogr", "-f", "GeoJSON", str(whole), f"OAPIF:{live_server}/collections/cadastre_parcels",
              "-where", "district = '359999'"])
    assert r.returncode == 0, r.stderr
    assert len(json.loads(whole.read_text())["features"]) == 12


def _ogctests_python() -> Path:
    """The ogctests venv (its pins — pytest 8, httpx 0.27 — clash with ours, so it lives apart).
    Created on first use from PyPI; `make ogctests` does the same."""
    python = OGCTESTS_VENV / "bin" / "python"
    ok = python.exists() and subprocess.run(
        [str(python), "-c", "import ogctests"], capture_output=True).returncode == 0
    if not ok:
        subprocess.run([sys.executable, "-m", "venv", str(OGCTESTS_VENV)], check=True)
        subprocess.run([str(python), "-m", "pip", "install", "-q", f"ogctests=={OGCTESTS_VERSION}"], check=True,
                       timeout=900)
    return python


def test_ogctests_features_core_suite_passes(live_server, spatial_data) -> None:
    python = _ogctests_python()
    # run_ogctests returns pytest's exit code (the CLI exits 0 even when a test fails)
    code = ("import sys; from ogctests.main import run_ogctests; "
            f"sys.exit(run_ogctests('features/core', {live_server!r}, ['-q', '-rf', '--tb=line', '-p', 'no:cacheprovider']))")
    r = subprocess.run([str(python), "-c", code], capture_output=True, text=True, timeout=600,
                       cwd=str(OGCTESTS_VENV))
    report = r.stdout + r.stderr
    failures = [line for line in report.splitlines() if line.startswith(("FAILED", "ERROR"))]
    (Path("/tmp") / "ogctests_report.txt").write_text(report)
    assert r.returncode == 0, (failures, report[-3000:])
    assert " passed" in report and " failed" not in report
