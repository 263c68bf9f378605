"""Land and planning benchmark: on the demo city at ≥ 1,000,000 parcels (size 100) — a site
pre-review of a 1 km² red line (target < 1 s), a whole-city balance table (target < 3 s), and the
register as of a past date for one district. Prints figures with the data size and target ratios.

Uses its own database (govgis_bench_planning) on the embedded cluster or GOVGIS_DATABASE_URL's
server; the demo city is loaded once (a few minutes at size 100) and reused by later runs.
Run: bench/planning/run.sh [--size 100] [--repeat 5]
"""

from __future__ import annotations

import argparse
import datetime as dt
import statistics
import sys
import time
from pathlib import Path

import sqlalchemy as sa
from shapely.geometry import box

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from gis.access import SYSTEM  # noqa: E402
from gis.db import make_engine, owner_url  # noqa: E402
from gis.roles import use_database  # noqa: E402

DB_NAME = "govgis_bench_planning"


def timed(fn, repeat: int) -> tuple[float, float, object]:
    """(first call, median of the rest) in seconds, and the last result."""
    times, result = [], None
    for _ in range(repeat):
        start = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - start)
    return times[0], statistics.median(times[1:] or times), result


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--size", type=float, default=100.0, help="demo-city size (100 ≈ 1,000,000 parcels)")
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--database", default=DB_NAME, help="database to use (created and loaded when empty)")
    args = parser.parse_args()

    settings = use_database(args.database)  # created by the admin, migrated and granted by the owner
    engine = make_engine(owner_url(settings), pool_size=2)  # the owner: it bulk-loads the demo city

    import layers  # noqa: F401
    from data import democity
    from layers.cadastre import service as registry
    from layers.landuse import service as land
    from layers.landuse.redline import RedLine

    with engine.connect() as conn:
        parcels = conn.execute(sa.text("SELECT count(*) FROM cadastre_parcels")).scalar()
    if parcels == 0:
        print(f"loading the demo city at size {args.size} (once; reused by later runs) …", flush=True)
        start = time.perf_counter()
        democity.load(engine, size=args.size, progress=True)
        with engine.begin() as conn:
            conn.execute(sa.text("ANALYZE"))
        print(f"loaded in {time.perf_counter() - start:.0f} s", flush=True)

    with engine.connect() as conn:
        sizes = conn.execute(sa.text("""
            SELECT (SELECT count(*) FROM cadastre_parcels WHERE valid_to IS NULL AND recorded_to IS NULL),
                   (SELECT count(*) FROM cadastre_parcels),
                   (SELECT count(*) FROM landuse_survey_patches),
                   (SELECT count(*) FROM landuse_planning_zones),
                   (SELECT count(*) FROM landuse_control_lines),
                   (SELECT count(*) FROM pipeline_pipes)""")).one()
        year = conn.execute(sa.text("SELECT max(survey_year) FROM landuse_survey_patches")).scalar()
        plan = conn.execute(sa.text("SELECT min(plan_name) FROM landuse_planning_zones")).scalar()
        cx, cy = conn.execute(sa.text("SELECT ST_X(c), ST_Y(c) FROM (SELECT ST_Centroid(ST_Extent(geom)) c "
                                      "FROM cadastre_parcels) s")).one()
        district, in_district = conn.execute(sa.text(
            "SELECT district, count(*) FROM cadastre_parcels GROUP BY 1 ORDER BY 2 DESC LIMIT 1")).one()
        oldest = conn.execute(sa.text("SELECT min(valid_from) FROM cadastre_parcels")).scalar()
    print(f"data: {sizes[0]:,} live parcels ({sizes[1]:,} parcel versions), {sizes[2]:,} survey patches "
          f"(year {year}), {sizes[3]:,} planning zones, {sizes[4]:,} control-line features, {sizes[5]:,} pipes")
    if sizes[0] < 1_000_000:
        print(f"NOTE: fewer than 1,000,000 parcels (size {args.size}); the issue's figure needs --size 100")

    red = RedLine(box(cx - 500, cy - 500, cx + 500, cy + 500), "geojson", "EPSG:4548", "bench")

    def prereview() -> dict:
        with engine.connect() as conn:
            with conn.begin() as tx:
                report = land.site_prereview(conn, SYSTEM, red, project_name="bench", survey_year=year,
                                            intended_use="07", store=True)
                tx.rollback()
        return report

    cold, warm, report = timed(prereview, args.repeat)
    print(f"pre-review of a 1 km² red line: first {cold:.3f} s, median {warm:.3f} s "
          f"(target < 1 s: {warm / 1.0:.2f}× of target) — {len(report['landuse'])} classes, "
          f"{len(report['parcels'])} parcels, {report['pipelines'].get('count', 0)} pipes, verdict {report['verdict']}")

    def whole_city_plan() -> dict:
        with engine.connect() as conn:
            return land.balance_table(conn, SYSTEM, base_year=year, target_plan=plan)

    def whole_city_stats() -> dict:
        with engine.connect() as conn:
            return land.landuse_statistics(conn, SYSTEM, year=year)

    cold, warm, table = timed(whole_city_plan, max(3, args.repeat // 2))
    print(f"whole-city balance table (survey {year} vs plan, {sizes[2] + sizes[3]:,} polygons): first {cold:.3f} s, "
          f"median {warm:.3f} s (target < 3 s: {warm / 3.0:.2f}× of target); rows {len(table['rows'])}, "
          f"total constant: {table['total_constant']}")
    cold, warm, _ = timed(whole_city_stats, max(3, args.repeat // 2))
    print(f"whole-city land-use statistics (survey {year}, ellipsoidal): first {cold:.3f} s, median {warm:.3f} s")

    valid_at = oldest + (dt.datetime.now(dt.UTC) - oldest) / 2

    def as_of() -> dict:
        with engine.connect() as conn:
            return registry.register_as_of(conn, SYSTEM, valid_at, None, district=district, limit=10000)

    cold, warm, result = timed(as_of, args.repeat)
    print(f"register as of {valid_at:%Y-%m-%d} for district {district} ({in_district:,} parcel rows): "
          f"first {cold:.3f} s, median {warm:.3f} s — {result['count']:,} parcels valid then, first 10,000 returned")
    engine.dispose()


if __name__ == "__main__":
    main()
