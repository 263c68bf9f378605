"""Load benchmark: 50 concurrent clients against one govgis process, right after a cold start and warm.

1. A database of its own (govgis_bench_load) with the demo city at --size (default 1, the city
   `make run` serves); loaded once, reused by later runs.
2. A fresh uvicorn process (one worker, like `govgis serve`) on a free 127.0.0.1 port. The clock of
   the cold phase starts when it accepts connections (start-up, with its warm-up, is reported apart).
3. Two phases of --seconds each (default 60), back to back, with --clients concurrent clients
   (default 50, each one keep-alive connection, asyncio): "cold" (the first minute after start) and
   "warm" (the minute after). The mix per request: 90 % reads — items in a random ~250 m bbox (25 %),
   identify at a random point (15 %), a vector tile z13–16 (30 %), a parcel's timeline (10 %), the
   pipe networks (10 %) — and 10 % writes: PATCH with If-Match of one of five shelters (a 412 is the
   optimistic lock doing its job: counted as a conflict, the client re-reads the ETag).
4. Per phase: requests, req/s, p50/p95/p99 of reads and of writes, errors (5xx, time-outs, connection
   failures, unexpected statuses) and the server's RSS before and after; then the targets: zero errors,
   read p99 < 1 s, cold read p99 ≤ 2 × warm read p99.

The rate limits are raised for the run (per key, per address, for tiles), so the figures measure the
service, not its throttle. Loopback only; bounded by --seconds per phase.

Run: bench/load/run.sh [--seconds 60] [--clients 50] [--size 1]
"""

from __future__ import annotations

import argparse
import asyncio
import math
import os
import random
import socket
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

DB_NAME = "govgis_bench_load"
SHELTERS = 5  # features the writes share (contention on purpose)
REQUEST_TIMEOUT = 30.0
TARGET_READ_P99 = 1.0
TARGET_COLD_RATIO = 2.0


@dataclass
class Phase:
    name: str
    reads: list[float] = field(default_factory=list)
    writes: list[float] = field(default_factory=list)
    by_kind: dict[str, list[float]] = field(default_factory=dict)
    conflicts: int = 0
    errors: dict[str, int] = field(default_factory=dict)
    rss_before_mb: float = 0.0
    rss_after_mb: float = 0.0
    seconds: float = 0.0

    def error(self, what: str) -> None:
        self.errors[what] = self.errors.get(what, 0) + 1


def pct(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, math.ceil(q * len(ordered)) - 1))]


def rss_mb(pid: int) -> float:
    """Resident memory of the server: the process and its workers, if any."""
    total = 0
    family = [pid]
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1]) == pid:
                    family.append(int(entry.name))
            except (OSError, ValueError, IndexError):
                continue
    for member in family:
        try:
            for line in Path(f"/proc/{member}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1])
        except OSError:
            continue
    return total / 1024


def tile_xy(lon: float, lat: float, z: int) -> tuple[int, int]:
    n = 2 ** z
    return int((lon + 180) / 360 * n), int((1 - math.asinh(math.tan(math.radians(lat))) / math.pi) / 2 * n)


def prepare(size: float) -> dict[str, object]:
    """The benchmark database (loaded once), two keys, and what the clients pick from."""
    import sqlalchemy as sa

    import layers  # noqa: F401
    from gis.db import make_engine, owner_url
    from gis.keys import create_key
    from gis.roles import use_database

    settings = use_database(DB_NAME)
    engine = make_engine(owner_url(settings), pool_size=1)
    try:
        with engine.connect() as conn:
            parcels = conn.execute(sa.text("SELECT count(*) FROM cadastre_parcels")).scalar()
        if not parcels:
            from data import democity

            print(f"[bench] loading the demo city (size {size}) into {DB_NAME} (once) …", flush=True)
            democity.load(engine, size=size)
            with engine.begin() as conn:
                conn.execute(sa.text("ANALYZE"))
        with engine.begin() as conn:
            reader = create_key(conn, department="压测", read=["*"], name="bench-load reader").secret
            writer = create_key(conn, department="压测", read=["*"], write=["emergency_shelters"],
                                name="bench-load writer").secret
            codes = conn.execute(sa.text("SELECT parcel_code FROM cadastre_parcels WHERE valid_to IS NULL "
                                         "ORDER BY id LIMIT 500")).scalars().all()
            shelters = conn.execute(sa.text("SELECT id FROM emergency_shelters ORDER BY id LIMIT :n"),
                                    {"n": SHELTERS}).scalars().all()
            x0, y0, x1, y1 = conn.execute(sa.text(
                "SELECT ST_XMin(e), ST_YMin(e), ST_XMax(e), ST_YMax(e) FROM (SELECT ST_Transform(ST_SetSRID("
                "ST_Extent(geom)::geometry, 4548), 4326) e FROM cadastre_parcels) s")).one()
            counts = {table: conn.execute(sa.text(f"SELECT count(*) FROM {table}")).scalar() for table in
                      ("cadastre_parcels", "pipeline_pipes", "emergency_roads")}
    finally:
        engine.dispose()
    return {"reader": reader, "writer": writer, "codes": codes, "shelters": [int(s) for s in shelters],
            "extent": (x0, y0, x1, y1), "counts": counts}


def request_for(rng: random.Random, data: dict[str, object]) -> tuple[str, str, str, dict[str, str]]:
    """(kind, method, path, headers) of one request of the mix."""
    x0, y0, x1, y1 = data["extent"]  # type: ignore[misc]
    reader = {"X-API-Key": str(data["reader"])}
    roll = rng.random()
    lon, lat = rng.uniform(x0, x1), rng.uniform(y0, y1)
    if roll < 0.25:
        side = 0.0025
        return "items", "GET", (f"/collections/cadastre_parcels/items?bbox={lon:.6f},{lat:.6f},"
                                f"{lon + side:.6f},{lat + side:.6f}&limit=100"), {}
    if roll < 0.40:
        return "identify", "GET", f"/query/identify?x={lon:.6f}&y={lat:.6f}&tolerance=20", {}
    if roll < 0.70:
        z = rng.randint(13, 16)
        tx, ty = tile_xy(lon, lat, z)
        return "tiles", "GET", f"/tiles/{z}/{tx}/{ty}.mvt", {}
    if roll < 0.80:
        code = rng.choice(data["codes"])  # type: ignore[arg-type]
        return "timeline", "GET", f"/land/parcels/{code}/timeline", reader
    if roll < 0.90:
        return "networks", "GET", "/pipeline/networks", reader
    return "write", "PATCH", "", {}


async def client_loop(number: int, base: str, data: dict[str, object], phases: list[Phase],
                      phase_of: list[int], stop: asyncio.Event) -> None:
    rng = random.Random(1000 + number)
    writer = {"X-API-Key": str(data["writer"])}
    etags: dict[int, str] = {}
    limits = httpx.Limits(max_connections=1, max_keepalive_connections=1)
    async with httpx.AsyncClient(base_url=base, timeout=REQUEST_TIMEOUT, limits=limits) as http:
        while not stop.is_set():
            phase = phases[phase_of[0]]
            kind, method, path, headers = request_for(rng, data)
            started = time.perf_counter()
            try:
                if kind == "write":
                    fid = rng.choice(data["shelters"])  # type: ignore[arg-type]
                    if fid not in etags:
                        got = await http.get(f"/collections/emergency_shelters/items/{fid}", headers=writer)
                        etags[fid] = got.headers.get("etag", '"0"')
                        started = time.perf_counter()  # the write's own time, not the read before it
                    response = await http.patch(
                        f"/collections/emergency_shelters/items/{fid}",
                        json={"type": "Feature", "properties": {"capacity_persons": rng.randint(100, 5000)}},
                        headers={**writer, "If-Match": etags[fid]})
                    if response.status_code == 412:
                        phase.conflicts += 1
                        etags.pop(fid, None)
                    elif response.status_code == 200:
                        etags[fid] = response.headers["etag"]
                    else:
                        phase.error(f"write {response.status_code}")
                else:
                    response = await http.request(method, path, headers=headers)
                    if response.status_code not in (200, 204, 404):  # a tile or code outside the data: 404
                        phase.error(f"{kind} {response.status_code}")
            except httpx.TimeoutException:
                phase.error(f"{kind} time-out")
                continue
            except httpx.HTTPError as exc:
                phase.error(f"{kind} {type(exc).__name__}")
                continue
            elapsed = time.perf_counter() - started
            (phase.writes if kind == "write" else phase.reads).append(elapsed)
            phase.by_kind.setdefault(kind, []).append(elapsed)


async def run_phases(base: str, data: dict[str, object], pid: int, clients: int, seconds: float) -> list[Phase]:
    phases = [Phase("cold"), Phase("warm")]
    current = [0]
    stop = asyncio.Event()
    phases[0].rss_before_mb = rss_mb(pid)
    tasks = [asyncio.create_task(client_loop(n, base, data, phases, current, stop)) for n in range(clients)]
    for index, phase in enumerate(phases):
        current[0] = index
        if index:
            phase.rss_before_mb = rss_mb(pid)
        started = time.perf_counter()
        await asyncio.sleep(seconds)
        phase.seconds = time.perf_counter() - started
        phase.rss_after_mb = rss_mb(pid)
    stop.set()
    await asyncio.gather(*tasks)
    return phases


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=60.0, help="length of each phase")
    parser.add_argument("--clients", type=int, default=50)
    parser.add_argument("--size", type=float, default=1.0, help="demo city size (1 = `make run`'s)")
    args = parser.parse_args()

    data = prepare(args.size)
    counts = data["counts"]
    print(f"[bench] {DB_NAME}: " + ", ".join(f"{t} {n:,}" for t, n in counts.items()), flush=True)  # type: ignore[union-attr]
    port = free_port()
    unlimited = "100000000"  # every client is 127.0.0.1: the per-address budgets would throttle the run
    env = {**os.environ, "GOVGIS_RATE_LIMIT_PER_MINUTE": unlimited, "GOVGIS_ANONYMOUS_RATE_LIMIT_PER_MINUTE": unlimited,
           "GOVGIS_TILE_RATE_LIMIT_PER_MINUTE": unlimited, "PYTHONPATH": str(ROOT)}
    started = time.perf_counter()
    server = subprocess.Popen([sys.executable, "-m", "uvicorn", "api.app:create_app", "--factory", "--host",
                               "127.0.0.1", "--port", str(port), "--workers", "1", "--log-level", "warning",
                               "--no-access-log"], cwd=ROOT, env=env)
    base = f"http://127.0.0.1:{port}"
    try:
        while True:
            if server.poll() is not None:
                raise SystemExit(f"[bench] the server exited with {server.returncode}")
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                break
            except OSError:
                time.sleep(0.05)
            if time.perf_counter() - started > 120:
                raise SystemExit("[bench] the server did not start within 120 s")
        startup = time.perf_counter() - started
        print(f"[bench] server accepting after {startup:.1f} s (imports + warm-up); {args.clients} clients, "
              f"2 × {args.seconds:.0f} s", flush=True)
        phases = asyncio.run(run_phases(base, data, server.pid, args.clients, args.seconds))
        warm_start = httpx.get(base + "/healthz", timeout=30).json().get("warm_start_seconds")
        cache = httpx.get(base + "/healthz", timeout=30).json().get("tile_cache")
    finally:
        server.terminate()
        server.wait(timeout=30)

    print(f"[bench] warm-up inside start-up: {warm_start} s; tile cache at the end: {cache}")
    header = (f"{'phase':6} {'requests':>8} {'req/s':>7} {'read p50':>9} {'p95':>7} {'p99':>7} {'write p50':>10} "
              f"{'p99':>7} {'412':>5} {'errors':>6} {'RSS MB before→after':>20}")
    print(header)
    for p in phases:
        total = len(p.reads) + len(p.writes)
        print(f"{p.name:6} {total:8d} {total / p.seconds:7.1f} {pct(p.reads, .5):9.3f} {pct(p.reads, .95):7.3f} "
              f"{pct(p.reads, .99):7.3f} {pct(p.writes, .5):10.3f} {pct(p.writes, .99):7.3f} {p.conflicts:5d} "
              f"{sum(p.errors.values()):6d} {p.rss_before_mb:9.0f} → {p.rss_after_mb:6.0f}")
    for p in phases:
        kinds = ", ".join(f"{k} p50 {statistics.median(v):.3f}/p99 {pct(v, .99):.3f} (n={len(v)})"
                          for k, v in sorted(p.by_kind.items()))
        print(f"  {p.name}: {kinds}")
        if p.errors:
            print(f"  {p.name} errors: {p.errors}")
    cold, warm = phases
    errors = sum(cold.errors.values()) + sum(warm.errors.values())
    ratio = pct(cold.reads, .99) / pct(warm.reads, .99)
    print(f"[bench] targets: zero errors → {errors} ({'met' if errors == 0 else 'MISSED'}); "
          f"read p99 < {TARGET_READ_P99:.0f} s → cold {pct(cold.reads, .99):.3f} s, warm {pct(warm.reads, .99):.3f} s "
          f"({'met' if max(pct(cold.reads, .99), pct(warm.reads, .99)) < TARGET_READ_P99 else 'MISSED'}); "
          f"cold p99 ÷ warm p99 ≤ {TARGET_COLD_RATIO:.0f} → {ratio:.2f} "
          f"({'met' if ratio <= TARGET_COLD_RATIO else 'MISSED'})")


if __name__ == "__main__":
    main()
