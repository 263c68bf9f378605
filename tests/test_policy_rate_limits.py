"""Rate limits for every caller: keys (data and map budgets apart), anonymous clients by address,
and clients that send bad keys (refused, then limited; every refusal in the access log)."""

from __future__ import annotations

import copy
import time
from collections.abc import Iterator
from contextlib import contextmanager

import sqlalchemy as sa
from fastapi.testclient import TestClient

TILE = "/tiles/14/13568/7013.mvt"


@contextmanager
def _app(**limits: int) -> Iterator[TestClient]:
    """A client over an app whose budgets are ``limits``, started early in a clock minute so every
    request of the test falls in one rate window."""
    from api.app import create_app
    from gis.settings import get_settings

    settings = copy.copy(get_settings())
    settings.service = settings.service.model_copy(update=limits)
    if time.time() % 60 > 45:
        time.sleep(61 - time.time() % 60)
    with TestClient(create_app(settings)) as client:
        yield client


def _key(engine, **scopes) -> dict[str, str]:  # noqa: ANN001
    from gis.keys import create_key

    with engine.begin() as conn:
        return {"X-API-Key": create_key(conn, department="测试", read=["landuse", "emergency"], **scopes).secret}


def test_anonymous_clients_are_limited_by_address(demo_city) -> None:
    with _app(anonymous_rate_limit_per_minute=4, tile_rate_limit_per_minute=1000) as client:
        codes = [client.get("/collections").status_code for _ in range(6)]
        refused = client.get("/collections")
        tiles = [client.get(TILE, params={"layers": "landuse_survey"}).status_code for _ in range(10)]
    assert codes == [200] * 4 + [429] * 2
    assert refused.status_code == 429 and 1 <= int(refused.headers["retry-after"]) <= 61
    assert "without a key" in refused.json()["detail"]
    assert set(tiles) == {200}, "map requests have their own budget"


def test_map_requests_do_not_use_up_a_keys_data_budget(demo_city) -> None:
    key = _key(demo_city)
    with _app(rate_limit_per_minute=3, tile_rate_limit_per_minute=50) as client:
        tiles = [client.get(TILE, params={"layers": "landuse_survey"}, headers=key).status_code for _ in range(40)]
        data = [client.get("/collections", headers=key).status_code for _ in range(4)]
        more_tiles = [client.get(TILE, params={"layers": "landuse_survey"}, headers=key).status_code
                      for _ in range(11)]
    assert set(tiles) == {200}
    assert data == [200, 200, 200, 429]
    assert more_tiles[:10] == [200] * 10 and more_tiles[10] == 429  # the map budget is a budget too


def test_bad_keys_are_logged_and_limited_per_address(demo_city) -> None:
    with demo_city.connect() as conn:
        before = conn.execute(sa.text("SELECT count(*) FROM access_log WHERE status = 401")).scalar()
    with _app(failed_key_limit_per_minute=3) as client:
        codes = [client.get("/collections", headers={"X-API-Key": f"gg_guess{i}_x"}).status_code for i in range(5)]
        good = client.get("/collections", headers=_key(demo_city))
    assert codes == [401, 401, 401, 429, 429]
    # a guessing address is refused before its keys are looked up, whatever key it sends next
    assert good.status_code == 429
    with demo_city.connect() as conn:
        rows = conn.execute(sa.text("SELECT key_id, client_addr, route FROM access_log WHERE status = 401 "
                                    "ORDER BY id DESC LIMIT 3")).all()
        after = conn.execute(sa.text("SELECT count(*) FROM access_log WHERE status = 401")).scalar()
    assert after - before == 3
    assert all(r.key_id is None and r.client_addr and r.route == "/collections" for r in rows)
