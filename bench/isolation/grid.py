"""A synthetic water network of any size in the pipeline tables, for the isolation benchmark.

A square street grid of junctions 50 m apart; each grid edge is one pipe, or two pipes with an
isolation valve between them (probability ``valve_share``), so a valve segment spans a few blocks.
Sources sit on the west edge, a tank in the middle; one customer per junction (a few hospitals and
schools). Written with the same bulk loaders the INP import uses.
"""

from __future__ import annotations

import numpy as np
from shapely.geometry import LineString, Point
from sqlalchemy.engine import Connection

from gis.crs import transformer
from gis.settings import get_settings
from layers.pipeline import repository


def grid_network(conn: Connection, *, name: str, side: int, valve_share: float = 0.75, seed: int = 1) -> int:
    rng = np.random.default_rng(seed)
    x0, y0 = transformer("EPSG:4326", get_settings().spatial.storage_crs).transform(118.02, 24.45)
    spacing = 50.0
    node_rows: list[dict] = []
    pos: dict[str, tuple[float, float]] = {}
    for i in range(side):
        for j in range(side):
            code = f"J{i}_{j}"
            pos[code] = (x0 + i * spacing, y0 + j * spacing)
            kind = "source" if (i == 0 and j % max(1, side // 4) == 0) else "junction"
            if i == side // 2 and j == side // 2:
                kind = "tank"
            node_rows.append({"code": code, "kind": kind, "geom": Point(pos[code])})
    pipe_rows: list[dict] = []
    edges = [((i, j), (i + 1, j)) for i in range(side - 1) for j in range(side)] + \
            [((i, j), (i, j + 1)) for i in range(side) for j in range(side - 1)]
    valved = rng.random(len(edges)) < valve_share
    diameters = rng.choice([100, 150, 200, 300, 400], size=len(edges))
    for k, ((i, j), (a, b)) in enumerate(edges):
        u, v = f"J{i}_{j}", f"J{a}_{b}"
        common = {"diameter_mm": int(diameters[k]), "material": "球墨铸铁", "install_year": 1990 + k % 30,
                  "burial_depth_m": 1.2}
        if valved[k]:
            mid = ((pos[u][0] + pos[v][0]) / 2, (pos[u][1] + pos[v][1]) / 2)
            vc = f"V{k}"
            node_rows.append({"code": vc, "kind": "isolation_valve", "valve_state": "open", "geom": Point(mid),
                              "diameter_mm": int(diameters[k]), "access_note": "道路井"})
            pipe_rows.append({"code": f"P{k}a", "from": u, "to": vc, "geom": LineString([pos[u], mid]), **common})
            pipe_rows.append({"code": f"P{k}b", "from": vc, "to": v, "geom": LineString([mid, pos[v]]), **common})
        else:
            pipe_rows.append({"code": f"P{k}", "from": u, "to": v, "geom": LineString([pos[u], pos[v]]), **common})
    network_id = repository.create_network(conn, utility="water", name=name)
    ids = repository.insert_nodes(conn, network_id, node_rows)
    repository.insert_pipes(conn, network_id, pipe_rows, ids)
    categories = rng.choice(["residential", "commercial", "hospital", "school"], p=[0.9, 0.08, 0.01, 0.01],
                            size=side * side)
    customers = [{"account_no": f"A{c}", "name": f"用户{c}", "node": c, "category": str(categories[n]),
                  "contact_phone": "13800000000", "geom": Point(pos[c])}
                 for n, c in enumerate(pos)]
    repository.insert_customers(conn, network_id, customers, ids)
    return network_id
