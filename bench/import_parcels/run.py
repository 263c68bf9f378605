"""Benchmark: import 1,000,000 generated polygons from a GeoPackage with `govgis import`.

One command: `.venv/bin/python bench/import_parcels/run.py [--size 100]`. Generates the demo city's
parcels at the given size (cached in bench/out/) and writes them as land-survey patches (图斑: the
same 1,052,766 polygons at size 100, the parcel code as patch number, its land-use code as class) —
cadastral parcels change only by registrations, so `govgis import` refuses them. Then it creates a
fresh database on the same server (embedded cluster unless GOVGIS_DATABASE_URL is set), runs
`govgis import landuse_survey FILE` against it (a table with a GiST index, a unique and a plain
B-tree, kept during the load so readers are never blocked), checks the row count, prints rows/second
and the ratio to the 2-minute target, and drops the database.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))
TARGET_SECONDS = 120.0


def make_file(size: float, seed: int) -> Path:
    import pyogrio

    from data import democity

    path = ROOT / "bench" / "out" / f"survey_size{size:g}_seed{seed}.gpkg"
    if path.exists():
        print(f"[bench] using cached {path.relative_to(ROOT)}")
        return path
    path.parent.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    parcels_file = path.with_name(f"parcels_size{size:g}_seed{seed}.gpkg")
    if parcels_file.exists():
        parcels = pyogrio.read_dataframe(parcels_file)
    else:
        parcels = democity.generate(size, seed, only=("cadastre_parcels",)).parcels
    survey = parcels[["geometry"]].copy()
    survey["patch_no"] = parcels["parcel_code"].to_numpy()
    survey["survey_year"] = 2025
    survey["class_code"] = parcels["landuse_code"].to_numpy()
    survey["ownership"] = parcels["right_type"].to_numpy()  # Chinese text, as in a real survey
    survey["district"] = parcels["district"].to_numpy()
    survey["ellipsoidal_area"] = (survey.geometry.area * 0.9997).round(2)  # Xiamen: plane ≈ ellipsoid + 0.03 %
    print(f"[bench] {len(survey):,} survey patches from the demo city's parcels in "
          f"{time.perf_counter() - started:.1f} s")
    started = time.perf_counter()
    partial = path.with_suffix(".partial.gpkg")
    pyogrio.write_dataframe(survey, partial, layer="landuse_survey", driver="GPKG")
    partial.rename(path)
    print(f"[bench] wrote {path.relative_to(ROOT)} in {time.perf_counter() - started:.1f} s")
    return path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=float, default=100.0, help="demo city size (100 ≈ 1,000,000 parcels)")
    parser.add_argument("--seed", type=int, default=20261122)
    parser.add_argument("--keep", action="store_true", help="keep the benchmark database")
    args = parser.parse_args()

    from sqlalchemy import text

    from gis.db import admin_url, drop_database, make_engine, owner_url
    from gis.roles import use_database

    source = make_file(args.size, args.seed)
    settings = use_database(f"govgis_bench_{uuid.uuid4().hex[:6]}")  # admin creates, owner migrates and grants
    url = admin_url(settings)
    env = dict(os.environ)  # use_database put the three URLs of the new database there
    engine = make_engine(owner_url(settings), pool_size=1)
    try:
        print(f"[bench] fresh database {url.database}; importing {source.name}")
        started = time.perf_counter()
        subprocess.run([sys.executable, "-m", "api.cli", "import", "landuse_survey", str(source)],
                       check=True, env=env, cwd=ROOT)
        seconds = time.perf_counter() - started
        with engine.connect() as conn:
            rows = conn.execute(text("SELECT count(*) FROM landuse_survey_patches")).scalar_one()
        print(f"[bench] rows imported      {rows:,}")
        print(f"[bench] total seconds      {seconds:.1f}  (whole command: read, validate, COPY with indexes kept)")
        print(f"[bench] rows per second    {rows / seconds:,.0f}")
        print(f"[bench] target             {TARGET_SECONDS:.0f} s → ratio {seconds / TARGET_SECONDS:.2f} "
              f"({'met' if seconds <= TARGET_SECONDS else 'MISSED'})")
    finally:
        engine.dispose()
        if not args.keep:
            drop_database(url)


if __name__ == "__main__":
    main()
