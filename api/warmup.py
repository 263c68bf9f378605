"""Warm start: what the first requests would otherwise each build for themselves, built once at start-up.

After a restart, the first requests of a busy minute used to pay, each on its own thread and all at
once, for things that are the same for every request: pyproj transformers (15 concurrent first
identify calls took 14.5–16 s each), the SQL of each layer's feature output, new database sessions
whose PostGIS had yet to load its projection data, and the pipe and road networks' graphs. The lifespan runs
``warm_up`` before the service accepts requests, so the first minute of load looks like the tenth.
Every step is best-effort: with the database away the service still starts (and answers 503 until it
is back); a failed step is logged and the rest still run.
"""

from __future__ import annotations

import logging
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from gis.crs import prepare_transforms
from gis.settings import Settings

log = logging.getLogger("govgis.warmup")

# Every session's first ST_Transform makes PostGIS load the projections from spatial_ref_sys and PROJ
# build the operation; doing it at start-up for the output CRSs moves that off the first requests.
SESSION_WARMUP_SQL = sa.text(
    "SELECT ST_AsBinary(ST_Transform(g, 4326)), ST_AsBinary(ST_Transform(g, 4490)), "
    "ST_AsBinary(ST_Transform(g, 3857)) FROM (SELECT ST_Centroid(ST_Transform(ST_MakeEnvelope("
    ":x0, :y0, :x1, :y1, 4326), CAST(:srid AS integer))) AS g) AS city")


def warm_up(engine: Engine, settings: Settings) -> dict[str, Any]:
    """Prepare shared state before the first request; returns what was done and how long it took."""
    started = time.perf_counter()
    done: dict[str, Any] = {}
    steps = (("transforms", _transforms), ("sessions", _sessions), ("layers", _layer_queries),
             ("graphs", _graphs))
    for name, step in steps:
        clock = time.perf_counter()
        try:
            done[name] = step(engine, settings)
        except Exception as exc:  # noqa: BLE001 — a warm-up step never stops the service from starting
            log.warning("warm-up step %s failed (the first requests will do it): %s", name, exc)
            done[name] = f"failed: {type(exc).__name__}"
        done[f"{name}_seconds"] = round(time.perf_counter() - clock, 3)
    done["seconds"] = round(time.perf_counter() - started, 3)
    log.info("warm start: %s", done)
    return done


async def warm_reader(reader: Any, settings: Settings) -> int | str:
    """Open and warm the tile path's sessions (gis.db.LoopReader) the same way as the pool's."""
    x0, y0, x1, y1 = settings.spatial.city_bounds
    try:
        return await reader.warm(SESSION_WARMUP_SQL, {"x0": x0, "y0": y0, "x1": x1, "y1": y1,
                                                       "srid": settings.storage_srid})
    except Exception as exc:  # noqa: BLE001 — as in warm_up: never stops the start
        log.warning("warm-up of the tile sessions failed (the first tiles will do it): %s", exc)
        return f"failed: {type(exc).__name__}"


def _transforms(engine: Engine, settings: Settings) -> int:
    from gis.geometry import city_extent

    pairs = prepare_transforms(settings.spatial.storage_crs)
    city_extent(settings.spatial.city_bounds, settings.spatial.storage_crs)
    return len(pairs)


def _sessions(engine: Engine, settings: Settings) -> int:
    """Open the pool's connections at once (as a burst of requests would) and warm each session."""
    size = engine.pool.size()
    x0, y0, x1, y1 = settings.spatial.city_bounds
    params = {"x0": x0, "y0": y0, "x1": x1, "y1": y1, "srid": settings.storage_srid}
    connections = []
    try:
        with ThreadPoolExecutor(max_workers=size) as pool:
            connections = list(pool.map(lambda _: engine.connect(), range(size)))
            list(pool.map(lambda conn: conn.execute(SESSION_WARMUP_SQL, params).all(), connections))
    finally:
        for conn in connections:
            conn.close()  # back into the pool, warm
    return len(connections)


def _layer_queries(engine: Engine, settings: Settings) -> int:
    """Build and compile each layer's feature output once (anonymous and full views)."""
    from gis import features
    from gis.access import ANONYMOUS, SYSTEM
    from gis.registry import REGISTRY

    count = 0
    with engine.connect() as conn:
        for layer in REGISTRY:
            for caller in (ANONYMOUS, SYSTEM):
                query = features.ItemsQuery(layer=layer, caller=caller, storage_srid=settings.storage_srid,
                                            where=[layer.current_clause()], limit=1)
                features.fetch_page(conn, query)
                count += 1
    return count


def _graphs(engine: Engine, settings: Settings) -> int:
    """Load every pipe network's graph and the road network's into their packages' caches (keyed by
    layer version, so a later edit still rebuilds them)."""
    from layers.emergency.graph import road_graph
    from layers.pipeline.service import network_graph

    with engine.connect() as conn:
        networks = conn.execute(sa.text("SELECT id FROM pipeline_networks ORDER BY id")).scalars().all()
        for network_id in networks:
            network_graph(conn, int(network_id))
        roads = road_graph(conn)
    return len(networks) + (roads is not None)
