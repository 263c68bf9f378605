"""Pooled connections: a connection the server killed while it sat idle is replaced, not handed out."""

from __future__ import annotations

import sqlalchemy as sa

from gis import db
from gis.settings import get_settings


def test_idle_dead_connection_is_replaced(engine, monkeypatch) -> None:
    pool_engine = db.make_engine(db.database_url(get_settings()), pool_size=1)
    try:
        with pool_engine.connect() as conn:
            first_pid = conn.execute(sa.text("SELECT pg_backend_pid()")).scalar()
        # the server ends that session while it sits in the pool (a restart or failover does this)
        with engine.connect() as admin:
            assert admin.execute(sa.text("SELECT pg_terminate_backend(:pid)"), {"pid": first_pid}).scalar()
        monkeypatch.setattr(db, "IDLE_PING_SECONDS", 0.0)  # the pooled connection counts as idle
        with pool_engine.connect() as conn:
            assert conn.execute(sa.text("SELECT 1")).scalar() == 1
            assert conn.execute(sa.text("SELECT pg_backend_pid()")).scalar() != first_pid
    finally:
        pool_engine.dispose()


def test_only_idle_connections_are_pinged(engine, monkeypatch) -> None:
    """A connection returned moments ago goes out without a liveness round trip; an idle one gets one."""
    pool_engine = db.make_engine(db.database_url(get_settings()), pool_size=1)
    pings: list[int] = []
    original = db._liveness_check
    monkeypatch.setattr(db, "_liveness_check", lambda dbapi: (pings.append(1), original(dbapi)))
    try:
        with pool_engine.connect() as conn:  # a new connection has never been checked in: pinged
            conn.execute(sa.text("SELECT 1"))
        assert len(pings) == 1
        for _ in range(3):
            with pool_engine.connect() as conn:
                conn.execute(sa.text("SELECT 1"))
        assert len(pings) == 1
        monkeypatch.setattr(db, "IDLE_PING_SECONDS", 0.0)
        with pool_engine.connect() as conn:
            conn.execute(sa.text("SELECT 1"))
        assert len(pings) == 2
    finally:
        pool_engine.dispose()


# --- LoopReader: reads awaited on the event loop (the cold-tile path) ---------------------------------


def _run(coroutine):  # noqa: ANN001, ANN202 — a test helper
    from loops import run_in_own_loop

    return run_in_own_loop(coroutine)


def test_loop_reader_reads_what_the_engine_reads(engine) -> None:
    statement = sa.text("SELECT id, ST_AsBinary(geom) FROM cadastre_parcels WHERE id <= :n ORDER BY id")

    async def read() -> tuple:
        reader = db.LoopReader(db.database_url(get_settings()), size=2)
        try:
            return await reader.rows(statement, {"n": 5}), await reader.scalar(sa.text("SELECT 100 % 7 + :a"), {"a": 1})
        finally:
            reader.close()

    rows, value = _run(read())
    with engine.connect() as conn:
        expected = [(gid, bytes(wkb)) for gid, wkb in conn.execute(statement, {"n": 5})]
    assert [(gid, bytes(wkb)) for gid, wkb in rows] == expected and len(expected) == 5
    assert value == 100 % 7 + 1


def test_loop_reader_replaces_a_connection_that_died_idle(engine) -> None:
    pid_sql = sa.text("SELECT pg_backend_pid()")

    async def scenario() -> tuple[int, int, int]:
        reader = db.LoopReader(db.database_url(get_settings()), size=1)
        try:
            first = await reader.scalar(pid_sql)
            with engine.connect() as admin:  # the server ends that session while it sits idle
                assert admin.execute(sa.text("SELECT pg_terminate_backend(:pid)"), {"pid": first}).scalar()
            second = await reader.scalar(pid_sql)  # no error: a new connection, the read sent again
            return first, second, len(reader._idle)
        finally:
            reader.close()

    first, second, idle = _run(scenario())
    assert first != second and idle == 1


def test_loop_reader_cancelled_read_stops_the_query(engine) -> None:
    """A read abandoned mid-statement (the client went away) is cancelled on the server, and its
    connection is not reused."""
    import asyncio

    async def scenario() -> tuple[int, int]:
        reader = db.LoopReader(db.database_url(get_settings()), size=1)
        try:
            pid = await reader.scalar(sa.text("SELECT pg_backend_pid()"))
            task = asyncio.ensure_future(reader.scalar(sa.text("SELECT pg_sleep(30)")))
            await asyncio.sleep(0.3)
            task.cancel()
            try:
                await task
            except asyncio.CancelledError:
                pass
            await asyncio.sleep(0.3)
            with engine.connect() as admin:
                still_running = admin.execute(sa.text(
                    "SELECT count(*) FROM pg_stat_activity WHERE pid = :pid AND state = 'active'"), {"pid": pid}).scalar()
            return still_running, len(reader._idle)
        finally:
            reader.close()

    still_running, idle = _run(scenario())
    assert still_running == 0 and idle == 0


def test_loop_reader_without_a_server_says_so(tmp_path) -> None:
    from gis.errors import DatabaseUnavailable

    nowhere = db.embedded_url().set(query={"host": str(tmp_path), "port": "5432"})

    async def read() -> None:
        reader = db.LoopReader(nowhere, size=1)
        await reader.scalar(sa.text("SELECT 1"))

    try:
        _run(read())
    except DatabaseUnavailable as exc:
        assert exc.status == 503 and "retry" in exc.detail
    else:
        raise AssertionError("a read without a server must fail with DatabaseUnavailable")


def test_loop_reader_prepared_statements_answer_as_plain_ones(engine) -> None:
    """A prepared read gives what the plain one gives, is prepared once per connection, and each run
    uses its own values."""
    statement = sa.text("SELECT count(*) FROM cadastre_parcels WHERE geom && ST_MakeEnvelope(:x0, :y0, :x1, :y1, "
                        "ST_SRID(geom)) AND id > :after")
    with engine.connect() as conn:
        x0, y0, x1, y1 = conn.execute(sa.text("SELECT ST_XMin(e), ST_YMin(e), ST_XMax(e), ST_YMax(e) FROM "
                                              "(SELECT ST_Extent(geom) e FROM cadastre_parcels) s")).one()
    boxes = [{"x0": x0, "y0": y0, "x1": (x0 + x1) / 2, "y1": (y0 + y1) / 2, "after": 0},
             {"x0": x0, "y0": y0, "x1": x1, "y1": y1, "after": 3}]

    async def read() -> tuple[list, list, set]:
        reader = db.LoopReader(db.database_url(get_settings()), size=1)
        try:
            prepared = [await reader.scalar(statement, box, prepare=True) for box in boxes]
            plain = [await reader.scalar(statement, box) for box in boxes]
            return prepared, plain, set(reader._idle[0].prepared)
        finally:
            reader.close()

    prepared, plain, names = _run(read())
    with engine.connect() as conn:
        expected = [conn.execute(statement, box).scalar() for box in boxes]
    assert prepared == plain == expected and expected[0] < expected[1]
    assert names == {db.prepared_form(statement).name}
