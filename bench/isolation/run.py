"""Burst-isolation benchmark: warm p50/p99 in-process and over HTTP on a ≥100,000-pipe network, the
cold first call, and on ky4 our whole-network segmentation time against WNTR's valve_segments.

Uses its own database (govgis_bench_isolation) on the embedded cluster or GOVGIS_DATABASE_URL's
server; the synthetic grid is generated once and reused. Run: bench/isolation/run.sh [--side 230]
"""

from __future__ import annotations

import argparse
import os
import socket
import statistics
import subprocess
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import sqlalchemy as sa

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from gis.access import SYSTEM  # noqa: E402
from gis.db import make_engine, owner_url  # noqa: E402
from gis.roles import use_database  # noqa: E402
from gis.settings import get_settings  # noqa: E402

DB_NAME = "govgis_bench_isolation"


def pct(values: list[float], q: float) -> float:
    return float(np.percentile(np.array(values), q))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--source", choices=("democity", "grid"), default="democity",
                        help="the demo city's water network (default) or a synthetic grid")
    parser.add_argument("--size", type=float, default=20.0, help="demo city size (20 → ~107,000 water pipes)")
    parser.add_argument("--side", type=int, default=175, help="grid side (175 → ~106,000 pipes)")
    parser.add_argument("--n", type=int, default=300, help="isolations per warm loop")
    args = parser.parse_args()

    settings = use_database(DB_NAME)  # created by the admin, migrated and granted by the owner
    engine = make_engine(owner_url(settings), pool_size=2)  # the owner: it bulk-loads the network

    from grid import grid_network

    import layers  # noqa: F401
    from layers.pipeline import service

    if args.source == "democity":
        from data import democity

        water = sa.text("SELECT id, name FROM pipeline_networks WHERE utility = 'water' AND name LIKE '%演示%' "
                        "ORDER BY id DESC LIMIT 1")
        with engine.connect() as conn:
            found = conn.execute(water).first()
        if found is None:
            t = time.perf_counter()
            democity.load(engine, size=args.size, progress=True)
            print(f"loaded the demo city at size {args.size} in {time.perf_counter() - t:.0f} s")
            with engine.connect() as conn:
                found = conn.execute(water).first()
        nid, name = found
    else:
        name = f"bench-grid-{args.side}"
        with engine.begin() as conn:
            nid = conn.execute(sa.text("SELECT id FROM pipeline_networks WHERE name = :n"), {"n": name}).scalar()
            if nid is None:
                t = time.perf_counter()
                nid = grid_network(conn, name=name, side=args.side)
                print(f"generated {name} in {time.perf_counter() - t:.1f} s")
    with engine.connect() as conn:
        n_pipes = conn.execute(sa.text("SELECT count(*) FROM pipeline_pipes WHERE network_id = :n"), {"n": nid}).scalar()
        n_valves = conn.execute(sa.text("SELECT count(*) FROM pipeline_nodes WHERE network_id = :n AND "
                                        "kind = 'isolation_valve'"), {"n": nid}).scalar()
        pipe_ids = [r[0] for r in conn.execute(sa.text("SELECT id FROM pipeline_pipes WHERE network_id = :n"),
                                               {"n": nid})]
    print(f"network {name}: {n_pipes} pipes, {n_valves} isolation valves")
    rng = np.random.default_rng(5)
    sample = [int(p) for p in rng.choice(pipe_ids, size=args.n, replace=False)]

    # cold: graph built from the database on the first call
    service.clear_graph_cache()
    t = time.perf_counter()
    with engine.begin() as conn:
        first = service.isolate_burst(conn, nid, caller=SYSTEM, settings=settings, pipe_id=sample[0])
    cold = (time.perf_counter() - t) * 1000
    print(f"cold first call (graph load + isolation + store): {cold:.0f} ms; "
          f"{first['segment']['pipe_count']} pipes in segment, {len(first['valves_to_close'])} valves to close")

    times = []
    for pid in sample:
        t = time.perf_counter()
        with engine.begin() as conn:
            service.isolate_burst(conn, nid, caller=SYSTEM, settings=settings, pipe_id=pid)
        times.append((time.perf_counter() - t) * 1000)
    print(f"in-process warm isolation (stored, audited, committed), n={len(times)}: "
          f"p50 {pct(times, 50):.1f} ms  p99 {pct(times, 99):.1f} ms")

    # over HTTP: uvicorn on 127.0.0.1, one worker
    import httpx

    from gis.keys import create_key
    with engine.begin() as conn:
        # computing an isolation stores it: the key writes the pipeline family's isolations store
        key = create_key(conn, department="bench", read=["pipeline"], write=["pipeline"]).secret
    port = free_port()
    env = {**os.environ, "GOVGIS_RATE_LIMIT_PER_MINUTE": "1000000", "PYTHONPATH": str(ROOT)}
    server = subprocess.Popen([sys.executable, "-m", "uvicorn", "api.app:create_app", "--factory", "--host",
                               "127.0.0.1", "--port", str(port), "--log-level", "warning"], cwd=ROOT, env=env)
    try:
        base = f"http://127.0.0.1:{port}"
        with httpx.Client(base_url=base, headers={"X-API-Key": key}, timeout=60) as client:
            for _ in range(300):  # bounded wait for start-up
                try:
                    if client.get("/healthz").status_code in (200, 503):
                        break
                except httpx.TransportError:
                    time.sleep(0.1)
            t = time.perf_counter()
            r = client.post("/pipeline/isolations", json={"network_id": nid, "pipe_id": sample[0]})
            http_cold = (time.perf_counter() - t) * 1000
            assert r.status_code == 200, r.text
            http_times = []
            for pid in sample:
                t = time.perf_counter()
                r = client.post("/pipeline/isolations", json={"network_id": nid, "pipe_id": pid})
                http_times.append((time.perf_counter() - t) * 1000)
                assert r.status_code == 200, r.text
    finally:
        server.terminate()
        server.wait(timeout=30)
    print(f"HTTP cold first call (server's graph load): {http_cold:.0f} ms")
    print(f"HTTP warm isolation, n={len(http_times)}: p50 {pct(http_times, 50):.1f} ms  "
          f"p99 {pct(http_times, 99):.1f} ms  (target p50 < 20, p99 < 100)")

    ky4_ratio(engine)
    engine.dispose()


def ky4_ratio(engine: sa.Engine) -> None:
    import wntr

    from layers.pipeline import service
    from layers.pipeline.isolation import isolate

    path = Path(wntr.__file__).parent / "library" / "networks" / "ky4.inp"
    wn = wntr.network.WaterNetworkModel(str(path))
    layer = wntr.network.layer.generate_valve_layer(wn, "strategic", 1, seed=42)
    xy = np.array([n.coordinates for _, n in wn.nodes()])
    cx, cy = (xy.min(0) + xy.max(0)) / 2
    crs = (f"+proj=tmerc +lat_0=24.5 +lon_0=118.1 +k=1 +x_0={cx * 0.3048} +y_0={cy * 0.3048} "
           "+to_meter=0.3048 +ellps=GRS80 +no_defs +type=crs")
    with engine.begin() as conn:
        nid = conn.execute(sa.text("SELECT id FROM pipeline_networks WHERE name = 'bench-ky4'")).scalar()
        if nid is None:
            nid = service.import_inp(conn, path, name="bench-ky4", crs=crs, caller=SYSTEM, settings=get_settings(),
                                     valve_layer=list(zip(layer["link"], layer["node"], strict=True))).network_id
    with engine.connect() as conn:
        t = time.perf_counter()
        graph = service.load_graph(conn, nid)
        load = time.perf_counter() - t
    ours = []
    for _ in range(7):
        t = time.perf_counter()
        graph.segment()
        ours.append(time.perf_counter() - t)
    g = wn.to_graph()
    theirs = []
    for _ in range(3):
        t = time.perf_counter()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            wntr.metrics.valve_segments(g, layer)
        theirs.append(time.perf_counter() - t)
    t = time.perf_counter()
    for p in range(len(graph.pipe_ids)):
        isolate(graph, p)
    every = time.perf_counter() - t
    o, w = statistics.median(ours), statistics.median(theirs)
    print(f"ky4 ({wn.num_pipes} pipes, {len(layer)} valves, strategic N-1): our segmentation {o * 1000:.1f} ms "
          f"(+ {load * 1000:.0f} ms graph load from PostGIS), WNTR valve_segments {w * 1000:.0f} ms → "
          f"ratio ours/WNTR {o / w:.4f} ({w / o:.0f}× faster); isolating every one of our "
          f"{len(graph.pipe_ids)} pipes: {every * 1000:.0f} ms")


if __name__ == "__main__":
    main()
