"""Faults on a throw-away PostgreSQL cluster of this module's own (never the shared one): acknowledged
writes survive kill -9 of the server; a stopped database answers 503 with Retry-After on every route
that needs it, on the same connection, and the service recovers without a restart; a streaming
replica serves reads without breaking read-your-writes, and its loss sends reads to the primary.

The cluster is initialised in a temporary folder with its own socket, set up as `govgis db setup`
does (admin, owner, app roles; password authentication) and given a small demo city.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
import sqlalchemy as sa
from spatial_api_fixtures import serve_in_thread

from gis.cluster import Cluster
from gis.db import ADMIN_ROLE, APP_ROLE, OWNER_ROLE, make_engine
from gis.keys import create_key
from gis.roles import setup_database
from gis.settings import DatabaseSettings, Settings

SMALL = {"shared_buffers": "32MB", "max_connections": "80", "work_mem": "4MB", "maintenance_work_mem": "64MB",
         "effective_cache_size": "256MB", "max_wal_size": "256MB"}
LAYER = "emergency_shelters"
WAIT_SECONDS = 30  # upper bound on any wait for the server to come back (a shared, busy machine)


@dataclass
class Scratch:
    cluster: Cluster
    settings: Settings
    writer: dict[str, str]  # X-API-Key header of a key that may write LAYER
    features: list[int]

    def engine(self, role: str = OWNER_ROLE) -> sa.Engine:
        return make_engine(self.cluster.url(role), pool_size=1)


def settings_for(cluster: Cluster, replica: Cluster | None = None, **database: object) -> Settings:
    """The service's settings pointed at a throw-away cluster (and optionally its replica)."""
    settings = Settings()
    urls = {"database_url": cluster.url(APP_ROLE), "owner_database_url": cluster.url(OWNER_ROLE),
            "admin_database_url": cluster.url(ADMIN_ROLE, "govgis")}
    if replica is not None:
        urls["read_database_url"] = replica.url(APP_ROLE)
    settings.database = DatabaseSettings(**{k: v.render_as_string(hide_password=False) for k, v in urls.items()},
                                         **database)
    return settings


def _temporary_root(prefix: str) -> Path:
    # /tmp itself, not pytest's 0700 folder: the cluster runs as an unprivileged OS user when we are root
    return Path(tempfile.mkdtemp(prefix=prefix, dir="/tmp"))


@pytest.fixture(scope="module")
def scratch() -> Iterator[Scratch]:
    from data import democity

    root = _temporary_root("govgis-ops-")
    cluster = Cluster(root / "primary", SMALL)
    try:
        cluster.start(quiet=True)
        settings = settings_for(cluster)
        setup_database(settings, say=lambda message: None)
        owner = make_engine(cluster.url(OWNER_ROLE), pool_size=1)
        try:
            democity.load(owner, size=0.05, seed=7, progress=False)
            with owner.begin() as conn:
                issued = create_key(conn, department="应急办", read=["*"], write=[LAYER])
                features = conn.execute(sa.text(f"SELECT id FROM {LAYER} ORDER BY id")).scalars().all()
        finally:
            owner.dispose()
        assert features, "the small demo city has no shelters to edit"
        yield Scratch(cluster, settings, {"X-API-Key": issued.secret}, [int(f) for f in features])
    finally:
        if cluster.running():
            cluster.stop("immediate")
        shutil.rmtree(root, ignore_errors=True)


def _client(settings: Settings):  # noqa: ANN202 — a TestClient over a new app on those settings
    from fastapi.testclient import TestClient

    from api.app import create_app

    return TestClient(create_app(settings))


def _etag_of(client, fid: int, headers: dict[str, str] | None = None) -> str:  # noqa: ANN001
    response = client.get(f"/collections/{LAYER}/items/{fid}", headers=headers or {})
    assert response.status_code == 200, response.text
    return response.headers["etag"]


def _patch(client, fid: int, etag: str, headers: dict[str, str], capacity: int) -> httpx.Response:  # noqa: ANN001
    return client.patch(f"/collections/{LAYER}/items/{fid}", json={"type": "Feature", "properties": {
        "capacity_persons": capacity}}, headers={**headers, "If-Match": etag})


# --- durability ---------------------------------------------------------------------------------


def test_the_cluster_commits_durably(scratch: Scratch) -> None:
    engine = scratch.engine(APP_ROLE)
    try:
        with engine.connect() as conn:
            settings = dict(conn.execute(sa.text(
                "SELECT name, setting FROM pg_settings WHERE name IN ('synchronous_commit', 'fsync', "
                "'full_page_writes')")).all())
    finally:
        engine.dispose()
    assert settings == {"synchronous_commit": "on", "fsync": "on", "full_page_writes": "on"}


def test_acknowledged_writes_survive_kill_9_of_the_server(scratch: Scratch) -> None:
    """N PATCHes answered 200, then SIGKILL to the postmaster and all its processes at once (nothing gets
    to flush after the last answer); after recovery every one of them is there, with its audit row."""
    writes = 40
    acknowledged: dict[int, list[str]] = {fid: [] for fid in scratch.features}
    with _client(scratch.settings) as client:
        etags = {fid: _etag_of(client, fid) for fid in scratch.features}
        for n in range(writes):
            fid = scratch.features[n % len(scratch.features)]
            response = _patch(client, fid, etags[fid], scratch.writer, 1000 + n)
            assert response.status_code == 200, response.text
            etags[fid] = response.headers["etag"]
            acknowledged[fid].append(etags[fid])
        scratch.cluster.crash()  # right after the last acknowledgement
    scratch.cluster.start(quiet=True)  # crash recovery replays the WAL
    engine = scratch.engine()
    try:
        with engine.connect() as conn:
            for fid, tags in acknowledged.items():
                if not tags:
                    continue
                version, capacity = conn.execute(sa.text(f"SELECT version, capacity_persons FROM {LAYER} "
                                                         "WHERE id = :i"), {"i": fid}).one()
                assert f'"{version}"' == tags[-1], (fid, version, tags)
                last = max(n for n in range(writes) if scratch.features[n % len(scratch.features)] == fid)
                assert capacity == 1000 + last
                audited = conn.execute(sa.text(
                    "SELECT (after->>'version')::int FROM audit_log WHERE layer = :l AND feature_id = :f "
                    "AND action = 'update' ORDER BY id"), {"l": LAYER, "f": str(fid)}).scalars().all()
                assert [f'"{v}"' for v in audited[-len(tags):]] == tags
    finally:
        engine.dispose()


# --- database away → 503, then recovery without restart ------------------------------------------------


@pytest.fixture()
def live_server(scratch: Scratch) -> Iterator[str]:
    """uvicorn on a free loopback port, in a thread, serving the scratch cluster."""
    from api.app import create_app

    with serve_in_thread(lambda port: create_app(scratch.settings), wait_seconds=WAIT_SECONDS) as base:
        yield base


def _sample_routes(scratch: Scratch) -> list[tuple[str, str, dict[str, str]]]:
    """A request on each route family that needs the database: OGC items and item, spatial query, tiles,
    the land and pipeline modules, health, a keyed request (its key lookup), a write."""
    engine = scratch.engine()
    try:
        with engine.connect() as conn:
            parcel = conn.execute(sa.text("SELECT parcel_code FROM cadastre_parcels ORDER BY id LIMIT 1")).scalar()
            lon, lat = conn.execute(sa.text(f"SELECT ST_X(g), ST_Y(g) FROM (SELECT ST_Transform(ST_PointOnSurface("
                                            f"geom), 4326) g FROM {LAYER} ORDER BY id LIMIT 1) p")).one()
    finally:
        engine.dispose()
    import math

    z = 15
    x = int((lon + 180) / 360 * 2**z)
    y = int((1 - math.asinh(math.tan(math.radians(lat))) / math.pi) / 2 * 2**z)
    fid = scratch.features[0]
    anonymous: dict[str, str] = {}
    return [
        ("GET", f"/collections/{LAYER}/items?limit=5", anonymous),
        ("GET", f"/collections/{LAYER}/items/{fid}", anonymous),
        ("GET", f"/query/identify?x={lon}&y={lat}&tolerance=50", anonymous),
        ("GET", f"/tiles/{z}/{x}/{y}.mvt", anonymous),
        ("GET", f"/land/parcels/{parcel}/timeline", scratch.writer),
        ("GET", "/pipeline/networks", scratch.writer),
        ("GET", "/healthz", anonymous),
        ("GET", f"/collections/{LAYER}/items?limit=1", scratch.writer),
    ]


def _not_yet_cached(route: tuple[str, str, dict[str, str]]) -> tuple[str, str, dict[str, str]]:
    """The tile route's neighbour tile. A tile already served may come from the tile cache for up to
    versions_ttl (0.5 s) after the database stops, by design; a tile not asked before must read it."""
    method, path, headers = route
    if not path.startswith("/tiles/"):
        return route
    z, x, y = path.removeprefix("/tiles/").removesuffix(".mvt").split("/")
    return method, f"/tiles/{z}/{int(x) + 1}/{y}.mvt", headers


def test_a_stopped_database_answers_503_and_the_service_recovers_by_itself(scratch: Scratch, live_server: str
                                                                           ) -> None:
    routes = _sample_routes(scratch)
    with httpx.Client(base_url=live_server, timeout=WAIT_SECONDS) as client:
        def call(method: str, path: str, headers: dict[str, str]) -> httpx.Response:
            return client.request(method, path, headers=headers)

        def local_port(response: httpx.Response) -> int:
            return response.extensions["network_stream"].get_extra_info("client_addr")[1]

        for route in routes:
            assert call(*route).status_code == 200, route
        fid = scratch.features[0]
        etag = client.get(f"/collections/{LAYER}/items/{fid}").headers["etag"]
        first = local_port(client.get("/api"))
        scratch.cluster.stop("fast")
        try:
            for route in [*map(_not_yet_cached, routes), ("PATCH", f"/collections/{LAYER}/items/{fid}",
                                                          scratch.writer)]:
                if route[0] == "PATCH":
                    response = _patch(client, fid, etag, scratch.writer, 7)
                else:
                    response = call(*route)
                assert response.status_code == 503, (route, response.status_code, response.text)
                assert int(response.headers["retry-after"]) >= 1, route
                if route[1] != "/healthz":  # the health report keeps its own shape
                    body = response.json()
                    assert response.headers["content-type"].startswith("application/problem+json"), route
                    assert body["status"] == 503 and body["type"].endswith("database-unavailable"), body
                    assert "socket" not in body["detail"] and "/tmp" not in body["detail"], body
                # the server answered and kept the connection: no reset, no reconnect
                assert response.headers.get("connection") != "close" and local_port(response) == first, route
        finally:
            scratch.cluster.start(quiet=True)
        # the same process, never restarted, serves again as soon as PostgreSQL is back
        started = time.monotonic()
        while call(*routes[0]).status_code != 200:
            assert time.monotonic() - started < WAIT_SECONDS, "the service did not recover without a restart"
            time.sleep(0.2)
        for route in routes:
            assert call(*route).status_code == 200, route
        assert local_port(client.get("/api")) == first


def test_a_statement_stuck_behind_a_lock_gives_up_with_503(scratch: Scratch) -> None:
    """An import or a long edit holding a layer's lock makes API requests wait lock_timeout, then 503."""
    settings = settings_for(scratch.cluster, lock_timeout_ms=300)
    blocker = scratch.engine()
    try:
        with blocker.connect() as locked, _client(settings) as client:
            transaction = locked.begin()
            locked.execute(sa.text(f"LOCK TABLE {LAYER} IN ACCESS EXCLUSIVE MODE"))
            clock = time.monotonic()
            response = client.get(f"/collections/{LAYER}/items?limit=1")
            waited = time.monotonic() - clock
            transaction.rollback()
            assert response.status_code == 503 and "locked" in response.json()["detail"], response.text
            assert response.headers["retry-after"]
            assert waited < WAIT_SECONDS
            assert client.get(f"/collections/{LAYER}/items?limit=1").status_code == 200
    finally:
        blocker.dispose()


# --- a streaming replica -----------------------------------------------------------------------------


def _replay(replica: Cluster, action: str) -> None:
    engine = make_engine(replica.url(ADMIN_ROLE, "govgis"), pool_size=1)
    try:
        with engine.connect() as conn:
            conn.execute(sa.text(f"SELECT pg_wal_replay_{action}()"))  # pause / resume, our own words
    finally:
        engine.dispose()


def _wait_for(check, what: str) -> None:  # noqa: ANN001
    deadline = time.monotonic() + WAIT_SECONDS
    while not check():
        assert time.monotonic() < deadline, f"waited {WAIT_SECONDS} s for {what}"
        time.sleep(0.1)


def test_replica_serves_reads_keeps_read_your_writes_and_falls_back_to_the_primary(scratch: Scratch) -> None:
    root = _temporary_root("govgis-ops-replica-")
    replica = Cluster(root / "replica")
    try:
        replica = scratch.cluster.make_replica(root / "replica", SMALL)
        replica.start(quiet=True)
        settings = settings_for(scratch.cluster, replica, replica_check_seconds=0.2, replica_max_lag_seconds=60)
        fid = scratch.features[-1]
        with _client(settings) as writer, _client(settings) as other:
            _wait_for(lambda: other.get("/healthz").json()["reads_from"] == "replica", "the replica to serve")
            health = other.get("/healthz").json()
            assert health["status"] == "ok" and health["replica"]["reachable"] and health["replica"]["configured"]
            before = _etag_of(other, fid)
            _wait_for(lambda: _etag_of(other, fid) == _etag_of(writer, fid), "the replica to catch up")
            # with replay paused the replica is stale for sure: only the routing can give a writer its write
            _replay(replica, "pause")
            for n in range(5):
                etag = _etag_of(writer, fid, scratch.writer)
                response = _patch(writer, fid, etag, scratch.writer, 2000 + n)
                assert response.status_code == 200, response.text
                written = response.headers["etag"]
                assert "govgis_lsn" in response.headers.get("set-cookie", "")
                # the writer (its cookie and its key), at once: its own write, from the primary
                assert _etag_of(writer, fid, scratch.writer) == written
                assert _etag_of(writer, fid) == written  # the cookie alone
                from fastapi.testclient import TestClient

                same_process = TestClient(writer.app)  # the key alone: a client that keeps no cookies
                assert _etag_of(same_process, fid, scratch.writer) == written
                # anyone else reads the (paused, stale) replica: proof the replica is serving reads
                assert _etag_of(other, fid) == before
            # the position alone, as a header (another process: no cookie, no memory of the key)
            with _client(settings) as elsewhere:
                _wait_for(lambda: elsewhere.get("/healthz").json()["reads_from"] == "replica", "the replica")
                assert _etag_of(elsewhere, fid, {"X-Govgis-LSN": response.headers["x-govgis-lsn"]}) == written
                assert _etag_of(elsewhere, fid) == before
            _replay(replica, "resume")
            _wait_for(lambda: _etag_of(other, fid) == written, "the replica to replay the writes")
            # the replica goes away: reads go to the primary, and /healthz says so
            replica.stop("fast")
            _wait_for(lambda: other.get("/healthz").json()["reads_from"] == "primary", "the fallback")
            health = other.get("/healthz").json()
            assert health["status"] == "degraded" and health["replica"]["reachable"] is False
            for _ in range(10):
                assert _etag_of(other, fid) == written
            assert other.get("/query/identify?x=118.1&y=24.5").status_code == 200
    finally:
        if replica.running():
            replica.stop("immediate")
        shutil.rmtree(root, ignore_errors=True)


def test_cluster_roots_are_private(scratch: Scratch) -> None:
    assert (scratch.cluster.passfile.stat().st_mode & 0o777) == 0o600
    assert (scratch.cluster.root.stat().st_mode & 0o777) == 0o700
    assert not scratch.cluster.hba_is_trust()
    assert os.access(scratch.cluster.passfile, os.R_OK)


# --- a cluster made by an older govgis ----------------------------------------------------------------

OLD_CONF = """
listen_addresses = ''
unix_socket_directories = '{socket}'
unix_socket_permissions = 0700
port = 5432
shared_buffers = 32MB
synchronous_commit = off
jit = off
"""


def test_a_trust_cluster_made_by_an_older_govgis_is_upgraded_in_place() -> None:
    """What `make run` finds on a developer's machine: trust authentication, one superuser owning every
    table, synchronous_commit = off appended to postgresql.conf. Starting it with this govgis and
    running `govgis db setup` leaves password authentication, durable commits and the three roles,
    with the data intact."""
    import subprocess

    from gis import migrate
    from gis.cluster import as_owner, pg_bin
    from gis.db import embedded_url, ensure_database

    root = _temporary_root("govgis-ops-legacy-")
    cluster = Cluster(root / "pgdata", SMALL)
    try:
        # the old gis/cluster.py's init and start
        cluster.socket_dir.mkdir(parents=True)
        if os.geteuid() == 0:
            from gis.cluster import OS_USER, _ensure_os_user

            _ensure_os_user(cluster.root)
            for path in (cluster.root, cluster.socket_dir):
                shutil.chown(path, OS_USER, OS_USER)
        cluster.root.chmod(0o700)
        subprocess.run(as_owner([str(pg_bin() / "initdb"), "-D", str(cluster.data_dir), "-U", ADMIN_ROLE,
                                 "--auth=trust", "-E", "UTF8", "--locale=C.UTF-8"]), check=True, capture_output=True)
        with open(cluster.data_dir / "postgresql.conf", "a", encoding="utf-8") as conf:
            conf.write(OLD_CONF.format(socket=cluster.socket_dir))
        subprocess.run(cluster.pg("pg_ctl", "-D", str(cluster.data_dir), "-l", str(cluster.log_file), "-w", "start"),
                       check=True, capture_output=True)
        # the old `govgis db setup`: the superuser creates, migrates and owns everything
        superuser = embedded_url("govgis", role=ADMIN_ROLE, root=cluster.root).difference_update_query(["passfile"])
        ensure_database(superuser, Settings())
        engine = make_engine(superuser, pool_size=1)
        try:
            migrate.upgrade(engine)
            with engine.begin() as conn:
                conn.execute(sa.text("INSERT INTO audit_log (actor, layer, action) VALUES ('old', 'x', 'other')"))
                assert conn.execute(sa.text("SHOW synchronous_commit")).scalar() == "off"
        finally:
            engine.dispose()

        cluster.start(quiet=True)  # this govgis: `make run` / `make test` start the cluster like this
        assert not cluster.hba_is_trust()
        bare = make_engine(superuser, pool_size=1)
        try:
            with pytest.raises(sa.exc.OperationalError, match="password"):
                bare.connect()
        finally:
            bare.dispose()
        settings = settings_for(cluster)
        setup_database(settings, say=lambda message: None)  # then `govgis db setup`
        app = make_engine(cluster.url(APP_ROLE), pool_size=1)
        try:
            with app.connect() as conn:
                assert conn.execute(sa.text("SHOW synchronous_commit")).scalar() == "on"
                assert conn.execute(sa.text("SELECT actor FROM audit_log WHERE layer = 'x'")).scalar() == "old"
                owners = dict(conn.execute(sa.text(
                    "SELECT tablename, tableowner FROM pg_tables WHERE schemaname = 'public'")).all())
                assert owners.pop("audit_log") == "govgis_audit" and owners.pop("spatial_ref_sys") == ADMIN_ROLE
                assert set(owners.values()) == {OWNER_ROLE}
                assert conn.execute(sa.text("SELECT pg_get_userbyid(datdba) FROM pg_database WHERE datname = "
                                            "current_database()")).scalar() == OWNER_ROLE
                with pytest.raises(sa.exc.ProgrammingError, match="permission denied"):
                    conn.execute(sa.text("UPDATE audit_log SET actor = 'x'"))
        finally:
            app.dispose()
        cluster.start(quiet=True)  # and once more: nothing left to do
        assert not cluster.hba_is_trust()
    finally:
        if cluster.running():
            cluster.stop("immediate")
        shutil.rmtree(root, ignore_errors=True)
