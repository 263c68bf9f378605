"""Reads from a streaming replica, with read-your-writes and a fall-back to the primary.

A replica (GOVGIS_READ_DATABASE_URL) replays the primary's WAL a little later. Three rules keep that
invisible to clients:

- **read-your-writes**: a read that carries a *read floor* — the primary's WAL position (LSN) just
  after the client's last write — goes to the replica only once the replica has replayed that far,
  else to the primary. The API sets the floor per request from the client's ``govgis_lsn`` cookie
  and from its key's last write (api/deps.py); this module only compares positions.
- **lag**: while the replica's replay is more than ``max_lag`` seconds behind, every read goes to
  the primary.
- **down**: a replica that cannot be reached is skipped (its pool dropped) until a check succeeds.

The monitor samples both positions every ``interval`` seconds on a daemon thread. Lag is measured
from those samples, not from the replica's last replayed commit time (which grows on an idle
primary): the replica is at most ``now − t`` behind, where t is the newest sample whose primary
position it has replayed.
"""

from __future__ import annotations

import contextvars
import logging
import threading
import time
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.sql.elements import TextClause

from gis.db import UNAVAILABLE_ERRORS, LoopReader, is_unavailable

log = logging.getLogger("govgis.replicas")

# The WAL position this request's reads must see (None: any). Set by the API per request.
read_floor: contextvars.ContextVar[int | None] = contextvars.ContextVar("govgis_read_floor", default=None)

PRIMARY_LSN_SQL = sa.text("SELECT (pg_current_wal_lsn() - '0/0'::pg_lsn)::bigint")
REPLICA_SQL = sa.text("SELECT pg_is_in_recovery(), (pg_last_wal_replay_lsn() - '0/0'::pg_lsn)::bigint")


def primary_lsn(engine: Engine) -> int:
    """The primary's current WAL position: every commit acknowledged so far lies at or before it."""
    with engine.connect() as conn:
        return int(conn.execute(PRIMARY_LSN_SQL).scalar_one())


@dataclass(frozen=True)
class ReplicaState:
    """The last check: reachable, how far behind, and the error when it failed."""

    reachable: bool
    lag_seconds: float | None
    replay_lsn: int | None
    primary_lsn: int | None
    checked_at: float  # time.time()
    error: str | None = None


class ReplicaMonitor:
    """Samples the primary's and the replica's WAL positions; says whether a read may use the replica."""

    def __init__(self, primary: Engine, replica: Engine, *, max_lag: float, interval: float = 1.0) -> None:
        self.primary, self.replica = primary, replica
        self.max_lag, self.interval = max_lag, interval
        self._history: deque[tuple[float, int]] = deque()  # (monotonic time, primary LSN)
        self.state = ReplicaState(False, None, None, None, time.time(), "not checked yet")
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def check(self) -> ReplicaState:
        """Sample both positions once and update the state."""
        now = time.monotonic()
        try:
            primary_at = primary_lsn(self.primary)
        except Exception as exc:  # noqa: BLE001 — the primary away: the replica's lag is unknown
            primary_at = None
            log.debug("primary position unavailable: %s", exc)
        if primary_at is not None:
            self._history.append((now, primary_at))
            horizon = now - max(4 * self.max_lag, 10 * self.interval, 30.0)
            while len(self._history) > 2 and self._history[0][0] < horizon:
                self._history.popleft()
        try:
            with self.replica.connect() as conn:
                in_recovery, replay = conn.execute(REPLICA_SQL).one()
        except Exception as exc:  # noqa: BLE001 — any failure: do not read from it
            if self.state.reachable:
                log.warning("replica unreachable, reads go to the primary: %s", exc)
            self.replica.dispose()  # its pooled connections are dead; new ones once it is back
            self.state = ReplicaState(False, None, None, primary_at, time.time(), type(exc).__name__)
            return self.state
        if not in_recovery:  # promoted, or the URL names a primary: not a replica of ours to trust
            self.state = ReplicaState(False, None, None, primary_at, time.time(), "not in recovery")
            return self.state
        replay = int(replay) if replay is not None else 0
        self.state = ReplicaState(True, self._lag(now, replay, primary_at), replay, primary_at, time.time())
        return self.state

    def _lag(self, now: float, replay: int, primary_at: int | None) -> float | None:
        if primary_at is not None and replay >= primary_at:
            return 0.0
        replayed = [t for t, position in self._history if position <= replay]
        if replayed:
            return now - max(replayed)
        if self._history:  # behind every sample we hold: at least this far
            return now - self._history[0][0]
        return None

    def usable(self, floor: int | None = None) -> bool:
        """Whether a read with this read floor may go to the replica now."""
        state = self.state
        if not state.reachable or state.lag_seconds is None or state.lag_seconds > self.max_lag:
            return False
        return floor is None or (state.replay_lsn is not None and state.replay_lsn >= floor)

    def mark_unreachable(self, exc: BaseException) -> None:
        """A read found the replica away before the next check did."""
        log.warning("replica failed a read, reads go to the primary: %s", type(exc).__name__)
        self.state = ReplicaState(False, None, None, self.state.primary_lsn, time.time(), type(exc).__name__)

    def start(self) -> None:
        self.check()
        self._thread = threading.Thread(target=self._run, name="govgis-replica-monitor", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            self.check()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)


class RoutedReads:
    """What the routes call ``read_engine``: ``connect()`` hands out a replica connection when the
    monitor allows it for this request's read floor, else a primary one."""

    def __init__(self, primary: Engine, replica: Engine, monitor: ReplicaMonitor) -> None:
        self.primary, self.replica, self.monitor = primary, replica, monitor

    def connect(self) -> Connection:
        if self.monitor.usable(read_floor.get()):
            try:
                return self.replica.connect()
            except UNAVAILABLE_ERRORS as exc:  # cannot even connect: this read, and the next ones, go primary
                self.monitor.mark_unreachable(exc)
        return self.primary.connect()

    def dispose(self) -> None:
        self.replica.dispose()


class RoutedReader:
    """The tile path's LoopReader, routed the same way; a read the replica fails is sent to the
    primary once more (a read is idempotent)."""

    def __init__(self, primary: LoopReader, replica: LoopReader, monitor: ReplicaMonitor) -> None:
        self.primary, self.replica, self.monitor = primary, replica, monitor

    async def rows(self, statement: TextClause, params: Mapping[str, Any] | None = None, *,
                   prepare: bool = False) -> list[tuple]:
        if self.monitor.usable(read_floor.get()):
            try:
                return await self.replica.rows(statement, params, prepare=prepare)
            except Exception as exc:
                if not is_unavailable(exc):
                    raise
                self.monitor.mark_unreachable(exc)
        return await self.primary.rows(statement, params, prepare=prepare)

    async def scalar(self, statement: TextClause, params: Mapping[str, Any] | None = None, *,
                     prepare: bool = False) -> Any:
        rows = await self.rows(statement, params, prepare=prepare)
        return rows[0][0] if rows else None

    async def warm(self, statement: TextClause, params: Mapping[str, Any] | None = None) -> int:
        opened = await self.primary.warm(statement, params)
        if self.monitor.usable():
            opened += await self.replica.warm(statement, params)
        return opened

    def close(self) -> None:
        self.primary.close()
        self.replica.close()
