"""Benchmark: hostile red-line uploads are refused fast, small and without writing big files.

One command: `.venv/bin/python bench/uploads/run.py [--peer /path/to/other/checkout]`. Each case runs
`layers.landuse.redline.parse_redline` in a fresh process with a private TMPDIR, and reports the
answer (status), seconds, the process's peak RSS and the peak size of its temporary files:

- zip bomb: a 510 KB zip holding a 500 MiB .dbf (the target: 413 within 1 s, no large temp file)
- 1,000,000-vertex GeoJSON red line (6 MB of text; target: 413 within 1 s)
- a normal 200-vertex red line, for scale

`--peer` runs the same cases against another checkout (e.g. the main branch before gis/io) and prints
the ratios. No database is needed.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
TARGET_SECONDS = 1.0
MiB = 1 << 20

CHILD = r"""
import json, os, resource, sys, threading, time
folder = os.environ["TMPDIR"]
peak = [0]
def sample():
    while True:
        total = 0
        for base, _, files in os.walk(folder):
            for name in files:
                try:
                    total += os.path.getsize(os.path.join(base, name))
                except OSError:
                    pass
        peak[0] = max(peak[0], total)
        time.sleep(0.01)
threading.Thread(target=sample, daemon=True).start()
from gis.errors import GisError
from layers.landuse.redline import parse_redline
content = open(sys.argv[1], "rb").read()
rss0 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
started = time.perf_counter()
try:
    parse_redline(content, filename=sys.argv[2], declared_crs=sys.argv[3] or None)
    status = 201
except GisError as exc:
    status = exc.status
except Exception as exc:
    status = f"500 ({type(exc).__name__})"
seconds = time.perf_counter() - started
time.sleep(0.05)
print(json.dumps({"status": status, "seconds": seconds,
                  "rss_mib": (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - rss0) / 1024,
                  "temp_mib": peak[0] / 2**20}))
"""


def make_cases(folder: Path) -> list[tuple[str, Path, str, str]]:
    bomb = folder / "bomb.zip"
    with zipfile.ZipFile(bomb, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as archive:
        archive.writestr("site.shp", b"\0" * 100)
        archive.writestr("site.shx", b"\0" * 100)
        with archive.open("site.dbf", "w", force_zip64=True) as member:
            block = bytes(MiB)
            for _ in range(500):
                member.write(block)
    huge = folder / "huge.geojson"
    huge.write_text('{"type":"Polygon","coordinates":[[' + ",".join(["[1,2]"] * 1_000_000) + "]]}")
    import math

    ring = [[618000 + 300 * math.cos(2 * math.pi * k / 200), 2710000 + 300 * math.sin(2 * math.pi * k / 200)]
            for k in range(200)]
    normal = folder / "normal.geojson"
    normal.write_text(json.dumps({"type": "Polygon", "coordinates": [ring + [ring[0]]]}))
    return [(f"zip bomb ({bomb.stat().st_size / 1024:.0f} KB → 500 MiB .dbf)", bomb, "site.zip", ""),
            (f"1,000,000-vertex GeoJSON ({huge.stat().st_size / MiB:.1f} MB)", huge, "huge.geojson", "EPSG:4548"),
            ("normal 200-vertex red line", normal, "normal.geojson", "EPSG:4548")]


def run_case(code: Path, path: Path, name: str, crs: str) -> dict:
    with tempfile.TemporaryDirectory(prefix="govgis-bench-tmp-") as tmp:
        env = dict(os.environ, TMPDIR=tmp, PYTHONPATH=str(code))
        done = subprocess.run([sys.executable, "-c", CHILD, str(path), name, crs], env=env, cwd=code,
                              capture_output=True, text=True, timeout=300)
    if done.returncode != 0:
        return {"status": f"crashed ({done.stderr.strip().splitlines()[-1][:60]})", "seconds": float("nan"),
                "rss_mib": float("nan"), "temp_mib": float("nan")}
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--peer", type=Path, help="another checkout to compare with (e.g. /work/main)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="govgis-bench-in-") as folder:
        cases = make_cases(Path(folder))
        print(f"{'case':44} {'code':6} {'status':>8} {'seconds':>8} {'+RSS MiB':>9} {'temp MiB':>9}")
        for label, path, name, crs in cases:
            ours = run_case(ROOT, path, name, crs)
            rows = [("this", ours)]
            if args.peer:
                rows.append(("peer", run_case(args.peer, path, name, crs)))
            for who, r in rows:
                print(f"{label:44} {who:6} {str(r['status']):>8} {r['seconds']:8.3f} {r['rss_mib']:9.1f} "
                      f"{r['temp_mib']:9.1f}")
            verdict = "met" if ours["seconds"] <= TARGET_SECONDS else "MISSED"
            line = f"{'':44} target {TARGET_SECONDS:.0f} s → ratio {ours['seconds'] / TARGET_SECONDS:.2f} ({verdict})"
            if args.peer and rows[1][1]["seconds"] == rows[1][1]["seconds"]:
                line += f"; peer ÷ this = {rows[1][1]['seconds'] / max(ours['seconds'], 1e-6):.1f}×"
            print(line)


if __name__ == "__main__":
    main()
