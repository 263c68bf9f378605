"""The service's operational behaviour on the session database: warm start, transforms built once across
threads, session timeouts, the tile cache's byte bound, /healthz, and the CLI's shared helper."""

from __future__ import annotations

import threading

import pytest
import sqlalchemy as sa
from typer.testing import CliRunner

from gis import crs
from gis.db import database_url, service_timeouts
from gis.errors import ImportRejected
from gis.settings import ServiceSettings, Settings, get_settings
from gis.tiles import TILE_ENTRY_OVERHEAD, TileCache


def test_a_transform_is_built_once_however_many_threads_ask_at_once(monkeypatch) -> None:
    """15 request threads asking for the same new transform at the same moment build it once (each
    building its own made 15 concurrent first identify calls take 14–16 s)."""
    built = []
    original = crs.Transform

    class Counted(original):  # type: ignore[misc, valid-type]
        def __init__(self, *args, **kwargs) -> None:  # noqa: ANN002, ANN003
            built.append(threading.get_ident())
            super().__init__(*args, **kwargs)

    monkeypatch.setattr(crs, "Transform", Counted)
    pair = ("EPSG:32650", "EPSG:2385")  # a pair nothing else in the suite uses
    start = threading.Barrier(15)
    results = []

    def ask() -> None:
        start.wait()
        results.append(crs.transformer(*pair))

    threads = [threading.Thread(target=ask) for _ in range(15)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(built) == 1 and len(results) == 15 and all(r is results[0] for r in results)
    x, y = results[0].transform(600000.0, 2700000.0)
    assert 100000 < x < 1000000 and 2000000 < y < 4000000


def test_the_transform_memo_is_bounded() -> None:
    calls = []

    @crs.built_once(maxsize=3)
    def square(n: int) -> int:
        calls.append(n)
        return n * n

    assert [square(n) for n in (1, 2, 3, 1, 4, 1)] == [1, 4, 9, 1, 16, 1]
    assert calls == [1, 2, 3, 4, 1]  # 4 pushed the oldest (1) out; asking again builds it again


def test_start_up_warms_what_the_first_requests_would_build(client, monkeypatch) -> None:
    warm = client.app.state.warm
    failed = {step: result for step, result in warm.items() if isinstance(result, str) and result.startswith("failed")}
    assert not failed, failed
    assert warm["transforms"] >= 8 and warm["layers"] > 0 and warm["sessions"] == warm["tile_sessions"] > 0
    engine = client.app.state.engine
    assert engine.pool.checkedin() >= get_settings().database.pool_size  # open and waiting
    # the usual transforms exist already: building one now would be a cold start
    monkeypatch.setattr(crs, "Transform", lambda *a: (_ for _ in ()).throw(AssertionError("built on a request")))
    storage = get_settings().spatial.storage_crs
    for client_crs in ("OGC:CRS84", "EPSG:4326", "EPSG:4490", "EPSG:3857"):
        crs.transformer(client_crs, storage)
        crs.transformer(storage, client_crs)
    assert client.get("/query/identify?x=118.09&y=24.48&tolerance=20").status_code == 200


def test_service_sessions_carry_statement_lock_and_idle_timeouts(client) -> None:
    expected = service_timeouts(get_settings())
    assert expected.statement_ms > 0 and expected.lock_ms > 0 and expected.idle_in_transaction_ms > 0
    with client.app.state.engine.connect() as conn:
        shown = dict(conn.execute(sa.text(
            "SELECT name, setting::int FROM pg_settings WHERE name IN ('statement_timeout', 'lock_timeout', "
            "'idle_in_transaction_session_timeout')")).all())  # in milliseconds
    assert shown == {"statement_timeout": expected.statement_ms, "lock_timeout": expected.lock_ms,
                     "idle_in_transaction_session_timeout": expected.idle_in_transaction_ms}


def test_the_tile_cache_is_bounded_in_bytes() -> None:
    cache = TileCache(max_bytes=20_000)
    for n in range(200):
        cache.put(((f"layer{n}",), (1,), 14, n, 0), b"x" * (n % 7 * 100))
        assert cache.stats()["bytes"] <= 20_000
    stats = cache.stats()
    assert 0 < stats["tiles"] < 200 and stats["max_bytes"] == 20_000
    # empty tiles cost their entry too: a flood of them cannot outgrow the bound
    empty = TileCache(max_bytes=10 * TILE_ENTRY_OVERHEAD)
    for n in range(1000):
        empty.put(((), (), 20, n, n), b"")
    assert empty.stats()["tiles"] == 10


def test_the_tile_cache_setting_bounds_the_service_and_healthz_reports_it(demo_city) -> None:
    from fastapi.testclient import TestClient

    from api.app import create_app

    settings = Settings()
    settings.service = ServiceSettings(tile_cache_bytes=60_000)
    with TestClient(create_app(settings)) as service:
        for x in range(13440, 13456):
            assert service.get(f"/tiles/15/{x}/{7040}.mvt").status_code == 200
        cache = service.get("/healthz").json()["tile_cache"]
    assert cache["max_bytes"] == 60_000 and 0 < cache["bytes"] <= 60_000 and cache["tiles"] > 0


def test_healthz_reports_the_primary_the_replica_and_the_role(client) -> None:
    body = client.get("/healthz").json()
    assert body["status"] == "ok" and body["database"] == "ok"
    primary = body["primary"]
    assert primary["reachable"] and primary["role"] == database_url(get_settings()).username
    assert primary["superuser"] is False and primary["revision"]
    assert body["replica"] == {"configured": False} and body["reads_from"] == "primary"
    assert body["tile_cache"]["max_bytes"] == get_settings().service.tile_cache_bytes


# --- the CLI's shared helper --------------------------------------------------------------------


def test_one_failure_shape_for_every_command(capsys) -> None:
    import typer

    from api.commands._common import fail

    exit_ = fail(ImportRejected("2 problems: row 3 …", errors=[{"row": 3, "reason": "bad"},
                                                                {"row": None, "reason": "file"},
                                                                {"line": 9, "section": "PIPES"}]),
                 already_shown=1)
    assert isinstance(exit_, typer.Exit) and exit_.exit_code == 1
    err = capsys.readouterr().err.splitlines()
    assert err == ["[govgis] ERROR: 2 problems: row 3 …", "  file: file", "  line 9, section PIPES"]


def test_roles_sql_names_the_configured_roles() -> None:
    from api.cli import app as cli

    result = CliRunner().invoke(cli, ["db", "roles-sql"])
    assert result.exit_code == 0, result.output
    for needle in ("CREATE ROLE \"govgis_audit\" NOLOGIN", "NOSUPERUSER", "GRANT \"govgis_audit\" TO",
                   "CREATE EXTENSION IF NOT EXISTS postgis", "scram-sha-256"):
        assert needle in result.output, needle


@pytest.mark.parametrize("command", [["keys", "revoke", "no-such-key"], ["pipeline", "topology", "999999"]])
def test_commands_fail_with_a_message_and_status_1(command: list[str]) -> None:
    from api.cli import app as cli

    result = CliRunner().invoke(cli, command)
    assert result.exit_code == 1 and "[govgis] ERROR:" in result.output, result.output
    assert "Traceback" not in result.output
