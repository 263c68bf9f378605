"""Spatial API benchmark: govgis vs tipg on the same database and table, loopback only, bounded.

1. A database of its own (govgis_bench_api) with the demo city at size 20 (≈ 200,000 parcels); built
   when empty, rebuilt with --fresh.
2. tipg (PyPI, in bench/.venv-tipg, made by run.sh) and govgis, each one uvicorn process on a free
   127.0.0.1 port, both reading cadastre_parcels.
3. For items (bbox of a random ~250 m box, limit=100) and tiles (z14–16, random tiles over the
   city): req/s, p50 and p99 at concurrency 1 and 8, with the ratios govgis ÷ tipg. Tiles are
   "cold" (each tile asked for the first time; tipg has no cache, so all of its tiles are cold) and
   "cached" (the same tiles again). Each scenario stops after --requests requests or --seconds s.
4. The floor: govgis's cold-tile latency ÷ the tile SQL's own planning + execution time in
   PostgreSQL (EXPLAIN ANALYZE of the very statement govgis runs — govgis runs it prepared, planned
   for each tile), on the same tiles: a fresh govgis process (empty tile cache) serves the tiles of
   the c=8 set one by one, then EXPLAIN takes them in the same order, so each side meets each tile
   in the same state.

Run: bench/api/run.sh [--requests 400] [--seconds 20] [--fresh]
"""

from __future__ import annotations

import argparse
import http.client
import math
import os
import random
import socket
import statistics
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

import httpx

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from gis.db import database_url, make_engine  # noqa: E402
from gis.settings import get_settings  # noqa: E402

DB_NAME = "govgis_bench_api"
TIPG_PYTHON = ROOT / "bench" / ".venv-tipg" / "bin" / "python"
LAYER = "cadastre_parcels"
MIN_PARCELS = 200_000


@dataclass
class Result:
    name: str
    count: int
    seconds: float
    latencies: list[float]
    errors: int

    @property
    def rps(self) -> float:
        return self.count / self.seconds if self.seconds else 0.0

    def pct(self, p: float) -> float:
        if not self.latencies:
            return float("nan")
        ordered = sorted(self.latencies)
        return ordered[min(len(ordered) - 1, int(round(p / 100 * (len(ordered) - 1))))] * 1000


def load(urls: list[str], concurrency: int, max_seconds: float, name: str) -> Result:
    """GET every url once (split over `concurrency` threads, each with a keep-alive client)."""
    latencies: list[float] = []
    errors = 0
    lock = threading.Lock()
    deadline = time.perf_counter() + max_seconds
    chunks = [urls[i::concurrency] for i in range(concurrency)]

    def worker(chunk: list[str]) -> None:
        # http.client with one keep-alive connection per thread: the lightest client the standard
        # library has, so on 2 shared cores the load generator takes as little CPU from the servers as
        # it can (both servers are measured with the same client)
        nonlocal errors
        if not chunk:
            return
        origin = urlsplit(chunk[0])
        conn = http.client.HTTPConnection(origin.hostname, origin.port, timeout=60)
        try:
            for url in chunk:
                if time.perf_counter() > deadline:
                    return
                parts = urlsplit(url)
                path = parts.path + ("?" + parts.query if parts.query else "")
                start = time.perf_counter()
                try:
                    conn.request("GET", path)
                    response = conn.getresponse()
                    response.read()
                    ok = response.status == 200
                except (OSError, http.client.HTTPException):
                    ok = False
                    conn.close()
                    conn = http.client.HTTPConnection(origin.hostname, origin.port, timeout=60)
                elapsed = time.perf_counter() - start
                with lock:
                    if ok:
                        latencies.append(elapsed)
                    else:
                        errors += 1
        finally:
            conn.close()

    threads = [threading.Thread(target=worker, args=(c,)) for c in chunks]
    start = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return Result(name, len(latencies), time.perf_counter() - start, latencies, errors)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_up(url: str, proc: subprocess.Popen, seconds: float = 60) -> None:
    deadline = time.time() + seconds
    while time.time() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server for {url} exited with {proc.returncode}")
        try:
            if httpx.get(url, timeout=2).status_code < 500:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.3)
    raise RuntimeError(f"{url} did not come up")


def tile_xy(lon: float, lat: float, z: int) -> tuple[int, int]:
    n = 2**z
    return (int((lon + 180) / 360 * n),
            int((1 - math.asinh(math.tan(math.radians(lat))) / math.pi) / 2 * n))


def main() -> None:  # noqa: C901 — a linear script
    parser = argparse.ArgumentParser()
    parser.add_argument("--size", type=float, default=20.0, help="demo-city size (20 ≈ 200,000 parcels)")
    parser.add_argument("--requests", type=int, default=400, help="requests per scenario (upper bound)")
    parser.add_argument("--seconds", type=float, default=20.0, help="seconds per scenario (upper bound)")
    parser.add_argument("--fresh", action="store_true", help="drop and rebuild the benchmark database")
    args = parser.parse_args()

    from gis.db import admin_url, drop_database, owner_url
    from gis.roles import use_database

    if args.fresh:
        drop_database(admin_url(get_settings()).set(database=DB_NAME))
    settings = use_database(DB_NAME)  # created by the admin, migrated and granted by the owner
    url = database_url(settings)  # the servers connect as the service's role
    # the floor below EXPLAINs tiles in sessions set up as the service's are (as the owner, which loads the city)
    engine = make_engine(owner_url(settings), pool_size=2, parallel_workers=settings.database.parallel_workers_per_query)
    import sqlalchemy as sa

    import layers  # noqa: F401
    from data import democity

    with engine.connect() as conn:
        parcels = conn.execute(sa.text("SELECT count(*) FROM cadastre_parcels")).scalar()
    if parcels < MIN_PARCELS:
        print(f"[bench] loading the demo city at size {args.size} into {DB_NAME} (once) …", flush=True)
        if parcels:
            engine.dispose()
            drop_database(admin_url(settings))
            use_database(DB_NAME)
        democity.load(engine, size=args.size)
        with engine.begin() as conn:
            conn.execute(sa.text("ANALYZE"))
            parcels = conn.execute(sa.text("SELECT count(*) FROM cadastre_parcels")).scalar()
    with engine.connect() as conn:
        current = conn.execute(sa.text("SELECT count(*) FROM cadastre_parcels WHERE valid_to IS NULL AND "
                                       "recorded_to IS NULL")).scalar()
        x0, y0, x1, y1 = conn.execute(sa.text(
            "SELECT ST_XMin(e), ST_YMin(e), ST_XMax(e), ST_YMax(e) FROM (SELECT ST_Transform(ST_SetSRID("
            "ST_Extent(geom)::geometry, ST_SRID(min(geom))), 4326) e FROM cadastre_parcels) s")).one()
    print(f"[bench] {DB_NAME}: {parcels:,} parcel rows ({current:,} current); extent {x0:.3f},{y0:.3f},"
          f"{x1:.3f},{y1:.3f}", flush=True)

    rng = random.Random(20261122)
    side = 0.0025  # ≈ 250 m
    boxes = []
    for _ in range(args.requests):
        lon = rng.uniform(x0, x1 - side)
        lat = rng.uniform(y0, y1 - side)
        boxes.append(f"{lon:.6f},{lat:.6f},{lon + side:.6f},{lat + side:.6f}")
    # every z14–16 tile over the parcels' extent, shuffled: two disjoint sets (cold c=1, cold c=8)
    tiles_all = []
    for z in (14, 15, 16):
        tx0, ty1 = tile_xy(x0, y0, z)
        tx1, ty0 = tile_xy(x1, y1, z)
        tiles_all += [(z, x, y) for x in range(tx0, tx1 + 1) for y in range(ty0, ty1 + 1)]
    rng.shuffle(tiles_all)
    per_set = min(args.requests, (len(tiles_all) - 48) // 2)  # the last 48 warm the servers
    tile_sets = [tiles_all[:per_set], tiles_all[per_set:2 * per_set]]

    # --- servers
    db_env = {**os.environ, "GOVGIS_DATABASE_URL": url.render_as_string(hide_password=False)}
    socket_dir = url.query.get("host")
    pg_user = url.username or "govgis"
    if socket_dir:
        # asyncpg takes a percent-encoded socket directory as the host (pydantic refuses an empty host)
        from urllib.parse import quote

        tipg_db = f"postgresql://{pg_user}@{quote(socket_dir, safe='')}:{url.query.get('port', '5432')}/{DB_NAME}"
    else:
        tipg_db = url.set(drivername="postgresql").render_as_string(hide_password=False)
    tipg_env = {**os.environ, "DATABASE_URL": tipg_db, "TIPG_NAME": "tipg", "PGPASSFILE": url.query.get("passfile", ""),
                "TIPG_DB_TABLES": f'["public.{LAYER}"]', "TIPG_DB_SCHEMAS": '["public"]',
                "TIPG_MAX_FEATURES_PER_QUERY": "10000", "TIPG_CATALOG_TTL": "3600"}
    ours_port, tipg_port = free_port(), free_port()
    ours_cmd = [str(ROOT / ".venv/bin/python"), "-m", "uvicorn", "api.app:create_app", "--factory", "--host",
                "127.0.0.1", "--port", str(ours_port), "--log-level", "warning", "--no-access-log"]
    ours = subprocess.Popen(ours_cmd, cwd=ROOT, env=db_env)
    tipg = subprocess.Popen([str(TIPG_PYTHON), "-m", "uvicorn", "tipg.main:app", "--host", "127.0.0.1", "--port",
                             str(tipg_port), "--log-level", "warning", "--no-access-log"], cwd=ROOT / "bench",
                            env=tipg_env)
    ours_base, tipg_base = f"http://127.0.0.1:{ours_port}", f"http://127.0.0.1:{tipg_port}"
    try:
        wait_up(f"{ours_base}/conformance", ours)
        wait_up(f"{tipg_base}/conformance", tipg)
        tipg_id = f"public.{LAYER}"
        probe = httpx.get(f"{tipg_base}/collections/{tipg_id}/items?limit=1", timeout=30)
        if probe.status_code != 200:
            raise RuntimeError(f"tipg does not serve {tipg_id}: {probe.status_code} {probe.text[:200]}")

        def ours_items(b: str) -> str:
            return f"{ours_base}/collections/{LAYER}/items?bbox={b}&limit=100"

        def tipg_items(b: str) -> str:
            return f"{tipg_base}/collections/{tipg_id}/items?bbox={b}&limit=100"

        def ours_tile(t: tuple[int, int, int]) -> str:
            z, x, y = t
            return f"{ours_base}/collections/{LAYER}/tiles/WebMercatorQuad/{z}/{y}/{x}"

        def tipg_tile(t: tuple[int, int, int]) -> str:
            z, x, y = t
            return f"{tipg_base}/collections/{tipg_id}/tiles/WebMercatorQuad/{z}/{x}/{y}"

        # warm both at the highest concurrency measured, so each has its full set of database connections
        # (a new PostgreSQL backend pays for loading PostGIS on its first query) and its catalog
        warm_boxes = [f"{118.1 + i * 1e-4:.6f},24.48,{118.1025 + i * 1e-4:.6f},24.4825" for i in range(48)]
        for c in (8, 1):  # each concurrency measured, so neither server meets it for the first time
            load([ours_items(b) for b in warm_boxes], c, 60, "warm")
            load([tipg_items(b) for b in warm_boxes], c, 60, "warm")
        load([tipg_tile(t) for t in tiles_all[-48:]], 8, 60, "warm")
        load([ours_tile(t) for t in tiles_all[-48:]], 8, 60, "warm")

        rows = []
        for c in (1, 8):
            a = load([ours_items(b) for b in boxes], c, args.seconds, "items")
            b = load([tipg_items(b) for b in boxes], c, args.seconds, "items")
            rows.append((f"items bbox limit=100 c={c}", a, b))
        cold_sets = {1: tile_sets[0], 8: tile_sets[1]}
        for c in (1, 8):
            tipg_cold = load([tipg_tile(t) for t in cold_sets[c]], c, args.seconds, "tiles")
            cold = load([ours_tile(t) for t in cold_sets[c]], c, args.seconds, "tiles cold")
            cached = load([ours_tile(t) for t in cold_sets[c][:cold.count]], c, args.seconds, "tiles cached")
            rows.append((f"tiles z14-16 cold c={c}", cold, tipg_cold))
            rows.append((f"tiles z14-16 cached c={c}", cached, tipg_cold))

        # --- the floor: a fresh govgis process (empty tile cache) and EXPLAIN ANALYZE on the same tiles
        ours.terminate()
        ours.wait(timeout=10)
        ours = subprocess.Popen(ours_cmd, cwd=ROOT, env=db_env)
        wait_up(f"{ours_base}/conformance", ours)
        load([ours_tile(t) for t in tiles_all[-48:]], 1, 60, "warm")
        from gis import tiles as gtiles
        from gis.registry import REGISTRY

        layer = REGISTRY.get(LAYER)
        floor_tiles = cold_sets[8][:min(200, len(cold_sets[8]))]
        # pass 1: each tile from govgis (cold: a fresh process); pass 2: EXPLAIN ANALYZE of each. Between
        # two touches of a tile come all the others, so both meet it in the same state: its rows in
        # shared buffers, nothing of it in a CPU cache.
        exec_ms, http_ms = [], []
        origin = urlsplit(ours_base)
        client = http.client.HTTPConnection(origin.hostname, origin.port, timeout=60)
        for tile in floor_tiles:
            start = time.perf_counter()
            client.request("GET", urlsplit(ours_tile(tile)).path)
            client.getresponse().read()
            http_ms.append((time.perf_counter() - start) * 1000)
        client.close()
        with engine.connect() as conn:
            for z, x, y in floor_tiles:
                stmt, params = gtiles.tile_query((layer,), z, x, y, settings.storage_srid, settings.spatial.storage_crs)
                plan = conn.execute(sa.text("EXPLAIN (ANALYZE, FORMAT JSON) " + stmt.text), params).scalar()
                exec_ms.append(float(plan[0]["Execution Time"]) + float(plan[0].get("Planning Time", 0)))
            plain_ms = []  # pass 3, for context: the same statements run by a plain psycopg2 client
            for z, x, y in floor_tiles:
                stmt, params = gtiles.tile_query((layer,), z, x, y, settings.storage_srid, settings.spatial.storage_crs)
                start = time.perf_counter()
                conn.execute(stmt, params).scalar()
                plain_ms.append((time.perf_counter() - start) * 1000)
        ours_mean = statistics.mean(http_ms)
        sql_mean = statistics.mean(exec_ms)

        print()
        print(f"{'scenario':32} {'govgis req/s':>12} {'p50 ms':>8} {'p99 ms':>8} | {'tipg req/s':>10} "
              f"{'p50 ms':>8} {'p99 ms':>8} | {'ratio':>6} {'p99 ok':>6}")
        for name, ours_r, tipg_r in rows:
            ratio = ours_r.rps / tipg_r.rps if tipg_r.rps else float("inf")
            print(f"{name:32} {ours_r.rps:12.1f} {ours_r.pct(50):8.1f} {ours_r.pct(99):8.1f} | {tipg_r.rps:10.1f} "
                  f"{tipg_r.pct(50):8.1f} {tipg_r.pct(99):8.1f} | {ratio:5.1f}× "
                  f"{'yes' if ours_r.pct(99) < tipg_r.pct(99) else 'NO':>6}"
                  + (f"  (errors: govgis {ours_r.errors}, tipg {tipg_r.errors})" if ours_r.errors or tipg_r.errors
                     else ""))
        print()
        print(f"floor: govgis cold tile mean {ours_mean:.1f} ms ÷ tile SQL planning+execution mean {sql_mean:.1f} ms "
              f"(EXPLAIN ANALYZE), the same {len(floor_tiles)} tiles = {ours_mean / sql_mean:.2f} (target ≤ 1.3); "
              f"the same SQL from a plain psycopg2 client: {statistics.mean(plain_ms):.1f} ms")
        print("targets: items ≥ 2× tipg; cold tiles ≥ 2×; cached tiles ≥ 20×; p99 below tipg's in every row. "
              "Cached rows compare with tipg's (uncached) tiles.")
        print("notes: tipg returns every row of the table (including retired parcel versions) and every column "
              "in tiles; govgis returns current parcels and only the map fields in tiles.")
    finally:
        for proc in (ours, tipg):
            proc.terminate()
        for proc in (ours, tipg):
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
        engine.dispose()


if __name__ == "__main__":
    main()
