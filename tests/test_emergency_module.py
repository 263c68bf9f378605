"""The emergency module over HTTP and through its service: road edits, the incident workflow, dispatch
and live coverage, the stock ledger under concurrent issues, and the optimal shelter allocation.

Rows a test commits (its own units, stock lines, incidents) are removed at the end of the module, so the
demo city other modules read is unchanged.
"""

from __future__ import annotations

import itertools
import threading

import numpy as np
import pytest
import sqlalchemy as sa
from scipy.optimize import linprog

from gis.access import SYSTEM
from gis.crs import transformer
from gis.keys import create_key
from gis.settings import get_settings
from layers.emergency.shelters import allocate

TAG = "TEST-EM"


@pytest.fixture(scope="module")
def keys(engine):
    with engine.begin() as conn:
        writer = create_key(conn, department="应急办", read=["emergency"], write=["emergency"],
                            personal_data=False).secret
        reader = create_key(conn, department="120", read=["emergency_roads"]).secret
    return {"X-API-Key": writer}, {"X-API-Key": reader}


@pytest.fixture(scope="module", autouse=True)
def cleanup(engine):
    with engine.connect() as conn:
        start = conn.execute(sa.text("SELECT coalesce(max(id), 0) FROM emergency_incidents")).scalar()
    yield
    with engine.begin() as conn:
        conn.execute(sa.text("DELETE FROM emergency_incidents WHERE id > :s"), {"s": start})
        conn.execute(sa.text("DELETE FROM emergency_resources WHERE code LIKE :t"), {"t": TAG + "%"})
        conn.execute(sa.text("DELETE FROM emergency_stock WHERE name LIKE :t"), {"t": TAG + "%"})


def _lonlat(x: float, y: float) -> tuple[float, float]:
    return transformer(get_settings().spatial.storage_crs, "EPSG:4326").transform(x, y)


def _road(engine, offset: int = 0) -> dict:
    with engine.connect() as conn:
        row = conn.execute(sa.text("SELECT id, version, speed_kmh, cost, ST_X(ST_LineInterpolatePoint(geom, 0.5)) x, "
                                   "ST_Y(ST_LineInterpolatePoint(geom, 0.5)) y FROM emergency_roads "
                                   "WHERE reverse_cost >= 0 ORDER BY id OFFSET :o LIMIT 1"), {"o": offset}).mappings().one()
    return dict(row)


def test_road_patch_and_put_recompute_costs(client, keys, engine) -> None:
    writer, _ = keys
    road = _road(engine, 3)
    with engine.connect() as conn:
        original = conn.execute(sa.text("SELECT ST_AsEWKB(geom) FROM emergency_roads WHERE id = :i"),
                                {"i": road["id"]}).scalar()
    url = f"/collections/emergency_roads/items/{road['id']}"
    got = client.get(url)
    assert got.status_code == 200
    r = client.patch(url, json={"type": "Feature", "properties": {"speed_kmh": road["speed_kmh"] / 2}},
                     headers={**writer, "If-Match": got.headers["etag"]})
    assert r.status_code == 200, r.text
    with engine.connect() as conn:
        cost = conn.execute(sa.text("SELECT cost FROM emergency_roads WHERE id = :i"), {"i": road["id"]}).scalar()
    assert cost == pytest.approx(road["cost"] * 2)  # the trigger follows the new speed
    feature = client.get(url).json()
    props = {k: v for k, v in feature["properties"].items() if k not in ("id", "version", "created_at", "updated_at",
                                                                          "source", "target")}
    props.update(speed_kmh=road["speed_kmh"], cost=None, reverse_cost=None)
    r = client.put(url, json={"type": "Feature", "geometry": feature["geometry"], "properties": props},
                   headers={**writer, "If-Match": client.get(url).headers["etag"]})
    assert r.status_code == 200, r.text
    with engine.connect() as conn:
        cost = conn.execute(sa.text("SELECT cost FROM emergency_roads WHERE id = :i"), {"i": road["id"]}).scalar()
    assert cost == pytest.approx(road["cost"], rel=1e-4)  # the geometry went through lon/lat and back
    with engine.begin() as conn:  # the exact demo geometry again (its ends meet the neighbours' exactly)
        conn.execute(sa.text("UPDATE emergency_roads SET geom = ST_GeomFromEWKB(:g) WHERE id = :i"),
                     {"g": original, "i": road["id"]})
        assert conn.execute(sa.text("SELECT cost FROM emergency_roads WHERE id = :i"),
                            {"i": road["id"]}).scalar() == pytest.approx(road["cost"], rel=1e-12)


def _intake(client, headers, x: float, y: float, **extra) -> dict:
    lon, lat = _lonlat(x, y)
    body = {"source_line": "119", "type_code": "XF01", "level": 3, "lon": lon, "lat": lat,
            "reporter_phone": "13912345678", **extra}
    r = client.post("/emergency/incidents", json=body, headers=headers)
    assert r.status_code == 201, r.text
    return r.json()


def test_incident_workflow_duplicates_merge_and_areas(client, keys, engine) -> None:
    writer, reader = keys
    road = _road(engine, 10)
    first = _intake(client, writer, road["x"], road["y"])
    assert first["status"] == "reported" and first["category"] == "消防类" and first["possible_duplicates"] == []
    assert first["reporter_phone"] == "139****5678"  # personal data masked without the personal scope
    second = _intake(client, writer, road["x"] + 40, road["y"])
    assert [d["id"] for d in second["possible_duplicates"]] == [first["id"]]
    bad = client.post("/emergency/incidents", json={"source_line": "999", "type_code": "XF01", "lon": 118.1,
                                                    "lat": 24.5}, headers=writer)
    assert bad.status_code == 400 and bad.headers["content-type"].startswith("application/problem+json")
    assert client.post("/emergency/incidents", json={"source_line": "119", "type_code": "XF01", "lon": 118.1,
                                                     "lat": 24.5}, headers=reader).status_code == 403
    steps = ["dispatched", "on_scene", "under_control"]
    for status in steps:
        r = client.post(f"/emergency/incidents/{first['id']}/status", json={"status": status, "note": status},
                        headers=writer)
        assert r.status_code == 200, r.text
    back = client.post(f"/emergency/incidents/{first['id']}/status", json={"status": "dispatched"}, headers=writer)
    assert back.status_code == 409
    detail = client.get(f"/emergency/incidents/{first['id']}", headers=writer).json()
    history = [h["status"] for h in detail["status_history"]]
    assert history == ["reported", *steps] and all(h["at"].endswith("+08:00") for h in detail["status_history"])
    r = client.post(f"/emergency/incidents/{first['id']}/log", json={"text": "火势得到控制"}, headers=writer)
    assert r.status_code == 201
    merged = client.post(f"/emergency/incidents/{second['id']}/merge", json={"into": first["id"]}, headers=writer)
    assert merged.status_code == 200, merged.text
    gone = client.get(f"/emergency/incidents/{second['id']}", headers=writer).json()
    assert gone["status"] == "closed" and gone["merged_into"] == first["id"]
    # versioned areas: two versions of the impact polygon, "as of" between them shows the first
    lon, lat = _lonlat(road["x"], road["y"])
    for d in (0.001, 0.002):
        square = {"type": "Polygon", "coordinates": [[[lon - d, lat - d], [lon + d, lat - d], [lon + d, lat + d],
                                                      [lon - d, lat + d], [lon - d, lat - d]]]}
        r = client.put(f"/emergency/incidents/{first['id']}/areas/impact", json={"geometry": square}, headers=writer)
        assert r.status_code == 200, r.text
    areas = client.get(f"/emergency/incidents/{first['id']}/areas", headers=writer).json()
    assert [v["version"] for v in areas["versions"]] == [1, 2]
    first_from = areas["versions"][0]["valid_from"]
    with engine.begin() as conn:  # move version 1 back in time so "as of" can fall between the two
        conn.execute(sa.text("UPDATE emergency_incident_areas SET valid_from = valid_from - interval '1 hour', "
                             "valid_to = valid_to WHERE incident_id = :i AND version = 1"), {"i": first["id"]})
    then = client.get(f"/emergency/incidents/{first['id']}/areas",
                      params={"as_of": first_from.replace("+08:00", "")}, headers=writer).json()
    assert [a["version"] for a in then["areas"]] == [1]


def _fire_unit(conn, code: str, x: float, y: float) -> int:
    from shapely.geometry import Point

    from gis.writes import insert_feature
    from layers.emergency.layers import RESOURCES

    row = insert_feature(conn, RESOURCES, SYSTEM, {"code": code, "name": code, "kind": "vehicle",
                                                   "capability_type": "消防救援", "agency": "test"}, Point(x, y))
    return int(row["id"])


def test_dispatch_assign_and_live_coverage(client, keys, engine) -> None:
    writer, _ = keys
    with engine.begin() as conn:
        conn.execute(sa.text("UPDATE emergency_resources SET status = 'out_of_service' WHERE 1 = 0"))
    a, b, far = _road(engine, 20), _road(engine, 40), _road(engine, 200)
    with engine.begin() as conn:
        ids = [_fire_unit(conn, f"{TAG}-{k}", p["x"] + 5, p["y"] + 5) for k, p in enumerate((a, b, far))]
    incident = _intake(client, writer, a["x"], a["y"] + 30)
    r = client.get(f"/emergency/incidents/{incident['id']}/dispatch",
                   params={"capability_type": "消防救援", "n": 3}, headers=writer)
    assert r.status_code == 200, r.text
    units = r.json()["units"]
    assert len(units) == 3 and [u["rank"] for u in units] == [1, 2, 3]
    assert all(u["eta_s"] == pytest.approx(u["travel_s"] + 80, abs=0.2) for u in units if u["method"] == "network")
    assert units[0]["route"]["type"] == "LineString" and units[0]["eta_s"] <= units[-1]["eta_s"]
    before = client.post("/emergency/coverage", json={"live": True}, headers=writer).json()
    chosen = units[0]["resource"]["id"]
    assigned = client.post(f"/emergency/incidents/{incident['id']}/assignments", json={"resource_id": chosen},
                           headers=writer)
    assert assigned.status_code == 201, assigned.text
    again = client.post(f"/emergency/incidents/{incident['id']}/assignments", json={"resource_id": chosen},
                        headers=writer)
    assert again.status_code == 409
    after = client.post("/emergency/coverage", json={"live": True}, headers=writer).json()
    assert len(after["stations"]) == len(before["stations"]) - 1
    assert after["covered_area_km2"] <= before["covered_area_km2"]
    detail = client.get(f"/emergency/incidents/{incident['id']}", headers=writer).json()
    assert detail["status"] == "dispatched" and detail["assignments"][0]["method"] in ("network", "straight_line")
    assignment = detail["assignments"][0]["id"]
    assert client.post(f"/emergency/assignments/{assignment}/arrival", headers=writer).status_code == 200
    assert client.post(f"/emergency/assignments/{assignment}/release", headers=writer).status_code == 200
    back = client.post("/emergency/coverage", json={"live": True}, headers=writer).json()
    assert len(back["stations"]) == len(before["stations"])
    history = client.get(f"/emergency/resources/{chosen}", headers=writer).json()["status_history"]
    assert [h["status"] for h in history][-2:] == ["assigned", "available"]
    assert ids


def test_stock_ledger_never_negative_under_concurrent_issues(engine) -> None:
    from layers.emergency import service

    with engine.begin() as conn:
        warehouse = conn.execute(sa.text("SELECT min(id) FROM emergency_warehouses")).scalar()
        stock_id = conn.execute(sa.text(
            "INSERT INTO emergency_stock (warehouse_id, supply_code, name, quantity, unit) "
            "VALUES (:w, '1020201', :n, 100, '箱') RETURNING id"), {"w": warehouse, "n": f"{TAG} 饮用水"}).scalar()
        incident = conn.execute(sa.text("SELECT min(id) FROM emergency_incidents WHERE status <> 'closed'")).scalar()
    outcomes: list[str] = []
    lock = threading.Lock()

    def issue() -> None:
        for _ in range(5):
            try:
                with engine.begin() as conn:
                    service.post_stock_entry(conn, stock_id, "issue", 7, caller=SYSTEM, settings=get_settings(),
                                             incident_id=incident)
                result = "ok"
            except Exception as exc:  # the refusals are Conflict (service) or the database's check
                result = type(exc).__name__
            with lock:
                outcomes.append(result)

    threads = [threading.Thread(target=issue) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    with engine.connect() as conn:
        balance = float(conn.execute(sa.text("SELECT quantity FROM emergency_stock WHERE id = :i"),
                                     {"i": stock_id}).scalar())
        total, lowest = conn.execute(sa.text("SELECT sum(quantity_change), min(balance_after) FROM emergency_stock_ledger "
                                             "WHERE stock_id = :i"), {"i": stock_id}).one()
    assert outcomes.count("ok") == 14 and len(outcomes) == 40
    assert balance == pytest.approx(2.0) and float(total) == pytest.approx(balance) and float(lowest) >= 0
    with pytest.raises(sa.exc.IntegrityError):  # the quantity moves only by a ledger entry
        with engine.begin() as conn:
            conn.execute(sa.text("UPDATE emergency_stock SET quantity = 50 WHERE id = :i"), {"i": stock_id})


def _lp_optimum(population: np.ndarray, capacity: np.ndarray, seconds: np.ndarray) -> tuple[float, float]:
    """(placed persons, person-seconds) by linear programming: maximise placed, then minimise cost."""
    n, m = seconds.shape
    ok = np.isfinite(seconds)
    cost = np.where(ok, np.rint(np.where(ok, seconds, 0)), 0).ravel()
    big = cost.max() + 1
    c = np.where(ok.ravel(), cost - big, 0.0)  # every placed person earns `big`: placing comes first
    bounds = [(0, None) if ok.ravel()[k] else (0, 0) for k in range(n * m)]
    a_rows = [np.kron(np.eye(n)[i], np.ones(m)) for i in range(n)] + [np.kron(np.ones(n), np.eye(m)[j]) for j in range(m)]
    res = linprog(c, A_ub=np.array(a_rows), b_ub=np.concatenate([population, capacity]), bounds=bounds,
                  method="highs")
    x = res.x
    return float(x.sum()), float((x * cost).sum())


def test_shelter_allocation_is_optimal_within_capacity() -> None:
    rng = np.random.default_rng(8)
    for _ in range(5):
        population = rng.integers(0, 60, 6)
        capacity = rng.integers(10, 70, 4)
        seconds = rng.uniform(60, 900, (6, 4))
        seconds[rng.random((6, 4)) < 0.2] = np.inf
        result = allocate(population, capacity, seconds)
        placed = int(population.sum() - result.unplaced.sum())
        lp_placed, lp_cost = _lp_optimum(population, capacity, seconds)
        assert placed == pytest.approx(lp_placed) and result.person_seconds == pytest.approx(lp_cost)
        used = np.zeros(4)
        for i, j, persons in result.flows:
            assert np.isfinite(seconds[i, j])
            used[j] += persons
        assert (used <= capacity).all()
    # brute force on a tiny case: every way to split 3 + 2 persons over 2 shelters of 2 places
    population, capacity = np.array([3, 2]), np.array([2, 2])
    seconds = np.array([[100.0, 300.0], [200.0, 120.0]])
    best = None
    for a0, b0 in itertools.product(range(4), range(3)):
        a1, b1 = 0, 0
        for a1, b1 in itertools.product(range(4 - a0), range(3 - b0)):
            if a0 + b0 <= 2 and a1 + b1 <= 2:
                placed, cost = a0 + a1 + b0 + b1, 100 * a0 + 300 * a1 + 200 * b0 + 120 * b1
                if best is None or (placed, -cost) > (best[0], -best[1]):
                    best = (placed, cost)
    result = allocate(population, capacity, seconds)
    assert (int(population.sum() - result.unplaced.sum()), result.person_seconds) == best
