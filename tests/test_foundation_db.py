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
