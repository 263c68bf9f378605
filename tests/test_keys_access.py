"""Department keys: CLI create/list/revoke, hashed storage, access log, 401 for revoked keys, 429."""

from __future__ import annotations

import sqlalchemy as sa
from typer.testing import CliRunner

from api.access import RateLimiter
from api.cli import app as cli


def test_cli_create_list_revoke_and_hash_only(api_client, engine, spatial_data) -> None:
    runner = CliRunner()
    r = runner.invoke(cli, ["keys", "create", "--department", "规划局", "--read", "cadastre,landuse",
                            "--write", "landuse", "--personal-data"])
    assert r.exit_code == 0, r.output
    secret = [line for line in r.stdout.splitlines() if line.startswith("gg_")][0]
    with engine.connect() as conn:
        row = conn.execute(sa.text("SELECT * FROM api_keys WHERE prefix = :p"),
                           {"p": secret[3:].split("_")[0]}).mappings().one()
        stored_text = " ".join(str(v) for v in row.values())
    assert secret not in stored_text and row["department"] == "规划局" and row["personal_data"] is True
    assert list(row["read_scopes"]) == ["cadastre", "landuse"] and list(row["write_scopes"]) == ["landuse"]
    listing = runner.invoke(cli, ["keys", "list"])
    assert row["prefix"] in listing.stdout and secret not in listing.stdout
    ok = api_client.get("/collections/landuse_control_lines/items", headers={"X-API-Key": secret})
    assert ok.status_code == 200
    with engine.connect() as conn:
        logged = conn.execute(sa.text("SELECT route, layer, status, method FROM access_log WHERE key_id = :k"),
                              {"k": row["id"]}).all()
        log_text = conn.execute(sa.text("SELECT string_agg(route || coalesce(layer, ''), ' ') FROM access_log")).scalar()
    assert ("/collections/landuse_control_lines/items", "landuse_control_lines", 200, "GET") in logged
    assert secret not in (log_text or "")
    assert runner.invoke(cli, ["keys", "revoke", str(row["id"])]).exit_code == 0
    assert api_client.get("/collections/landuse_control_lines/items", headers={"X-API-Key": secret}).status_code == 401
    bad = runner.invoke(cli, ["keys", "create", "--department", "x", "--read", "nosuchlayer"])
    assert bad.exit_code == 1


def _key_and_budget(engine, per_minute: int):  # noqa: ANN001, ANN202 — a test helper
    """A new key and settings with a rate limit of ``per_minute``; returns inside one clock minute
    with at least 10 s of it left, so a test's requests share a window."""
    import os
    import time

    from gis.keys import create_key
    from gis.settings import get_settings

    with engine.begin() as conn:
        secret = create_key(conn, department="测试", read=["cadastre"]).secret
    os.environ["GOVGIS_RATE_LIMIT_PER_MINUTE"] = str(per_minute)
    get_settings.cache_clear()
    try:
        settings = get_settings()
    finally:
        del os.environ["GOVGIS_RATE_LIMIT_PER_MINUTE"]
        get_settings.cache_clear()
    if time.time() % 60 > 50:
        time.sleep(61 - time.time() % 60)
    return secret, settings


def test_rate_limit_429_with_retry_after(engine, spatial_data) -> None:
    from fastapi.testclient import TestClient

    from api.app import create_app

    secret, settings = _key_and_budget(engine, 3)
    with TestClient(create_app(settings)) as client:
        codes = [client.get("/conformance", headers={"X-API-Key": secret}).status_code for _ in range(5)]
        limited = client.get("/conformance", headers={"X-API-Key": secret})
        anonymous = client.get("/conformance")
    assert codes[:3] == [200, 200, 200] and codes[3:] == [429, 429]
    assert limited.status_code == 429 and 1 <= int(limited.headers["retry-after"]) <= 61
    assert limited.json()["status"] == 429
    assert anonymous.status_code == 200


def test_rate_limit_holds_across_processes(engine, spatial_data) -> None:
    """Two service processes (two apps) share one budget through the access log: requests spread
    over both are refused once the key's total for the minute reaches it."""
    from fastapi.testclient import TestClient

    from api.app import create_app

    secret, settings = _key_and_budget(engine, 4)
    with TestClient(create_app(settings)) as first, TestClient(create_app(settings)) as second:
        codes = [(first if i % 2 == 0 else second).get("/conformance", headers={"X-API-Key": secret}).status_code
                 for i in range(8)]
    # alone, each process would let 4 through (8 in all); together they let 4 through
    assert codes == [200] * 4 + [429] * 4


def test_rate_limiter_windows() -> None:
    limiter = RateLimiter(2)
    assert limiter.allow(1, now=60.0) == 0 and limiter.allow(1, now=61.0) == 0
    assert limiter.allow(1, now=62.0) > 0
    assert limiter.allow(2, now=62.0) == 0  # per key
    assert limiter.allow(1, now=120.5) == 0  # next minute
    assert limiter.allow(3, now=121.0, logged=2) > 0  # other processes used the budget already
