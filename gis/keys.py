"""Department API keys: issue, resolve, revoke, and the access log.

A key is shown once when it is created (``gg_<prefix>_<secret>``); the database keeps only its
prefix (to find it and to show in listings) and a salted SHA-256 of the whole key. Keys are 240-bit
random secrets, so a fast hash is enough: there is nothing to brute-force that a slow hash would
protect. The access log records the key's id, never the key.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Iterable
from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from gis.access import ALL, SYSTEM, Caller
from gis.db import database_errors
from gis.errors import InvalidParameter, NotFound
from gis.registry import REGISTRY
from gis.schema import METADATA
from gis.writes import audit

KEY_PREFIX = "gg_"

api_keys = sa.Table(
    "api_keys",
    METADATA,
    sa.Column("id", sa.BigInteger, sa.Identity(), primary_key=True),
    sa.Column("prefix", sa.String(12), nullable=False, unique=True, comment="shown in listings"),
    sa.Column("salt", sa.String(32), nullable=False),
    sa.Column("key_hash", sa.String(64), nullable=False, comment="sha256(salt || key), hex"),
    sa.Column("name", sa.Text, nullable=False),
    sa.Column("department", sa.Text, nullable=False, comment="部门"),
    sa.Column("read_scopes", sa.ARRAY(sa.Text), nullable=False, server_default="{}"),
    sa.Column("write_scopes", sa.ARRAY(sa.Text), nullable=False, server_default="{}"),
    sa.Column("personal_data", sa.Boolean, nullable=False, server_default=sa.false()),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
    sa.Column("revoked_at", sa.DateTime(timezone=True)),
)

access_log = sa.Table(
    "access_log",
    METADATA,
    sa.Column("id", sa.BigInteger, sa.Identity(), primary_key=True),
    sa.Column("at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
    sa.Column("key_id", sa.BigInteger, sa.ForeignKey("api_keys.id"), comment="NULL: anonymous or a refused key"),
    sa.Column("client_addr", sa.Text, comment="the client's address (anonymous and refused requests)"),
    sa.Column("method", sa.String(8), nullable=False),
    sa.Column("route", sa.Text, nullable=False),
    sa.Column("layer", sa.Text),
    sa.Column("status", sa.SmallInteger, nullable=False),
)
sa.Index("ix_access_log_key_at", access_log.c.key_id, access_log.c.at)
sa.Index("ix_access_log_client_addr_at", access_log.c.client_addr, access_log.c.at)

TABLES = (api_keys, access_log)


@dataclass(frozen=True)
class IssuedKey:
    key_id: int
    prefix: str
    secret: str  # the full key: shown once, never stored


def _digest(salt: str, key: str) -> str:
    return hashlib.sha256((salt + key).encode()).hexdigest()


def check_scopes(scopes: Iterable[str]) -> list[str]:
    """Scope names are layer ids, family names or '*'; anything else is refused with the choices."""
    families = {layer.family for layer in REGISTRY}
    out = []
    for raw in scopes:
        name = raw.strip()
        if not name:
            continue
        if name != ALL and name not in REGISTRY and name not in families:
            raise InvalidParameter(
                f"unknown scope {name!r}: use a layer id ({', '.join(layer.id for layer in REGISTRY)}), "
                f"a family ({', '.join(sorted(families))}) or '*'"
            )
        out.append(name)
    return out


KEYS_LAYER = "api_keys"  # the audit log's name for key records (not a map layer)
_AUDITED = ("id", "prefix", "name", "department", "read_scopes", "write_scopes", "personal_data", "created_at",
            "revoked_at")  # never the salt or the hash


def _key_record(conn: Connection, key_id: int) -> dict[str, object]:
    row = conn.execute(sa.select(*(api_keys.c[name] for name in _AUDITED)).where(api_keys.c.id == key_id))
    return dict(row.mappings().one())


def create_key(conn: Connection, *, department: str, read: Iterable[str] = (), write: Iterable[str] = (),
               personal_data: bool = False, name: str | None = None, caller: Caller = SYSTEM) -> IssuedKey:
    """Issue a key for a department; returns the clear key once. Audited (who issued which rights)."""
    if not department.strip():
        raise InvalidParameter("a key needs the department it is issued to (--department 规划局)")
    read_scopes, write_scopes = check_scopes(read), check_scopes(write)
    prefix = secrets.token_hex(4)
    secret = f"{KEY_PREFIX}{prefix}_{secrets.token_urlsafe(30)}"
    salt = secrets.token_hex(16)
    key_id = conn.execute(api_keys.insert().values(
        prefix=prefix, salt=salt, key_hash=_digest(salt, secret), name=name or department,
        department=department, read_scopes=read_scopes, write_scopes=write_scopes,
        personal_data=personal_data,
    ).returning(api_keys.c.id)).scalar_one()
    audit(conn, caller, KEYS_LAYER, key_id, "insert", None, _key_record(conn, int(key_id)))
    return IssuedKey(int(key_id), prefix, secret)


def resolve_key(conn: Connection, key: str) -> Caller | None:
    """The Caller a key stands for, or None when it is unknown, malformed or revoked."""
    if not key.startswith(KEY_PREFIX) or len(key) > 200:
        return None
    prefix = key[len(KEY_PREFIX):].split("_", 1)[0]
    row = conn.execute(sa.select(api_keys).where(api_keys.c.prefix == prefix)).mappings().first()
    if row is None or row["revoked_at"] is not None:
        return None
    if not hmac.compare_digest(row["key_hash"], _digest(row["salt"], key)):
        return None
    return Caller(name=row["name"], department=row["department"], read=frozenset(row["read_scopes"]),
                  write=frozenset(row["write_scopes"]), personal_data=bool(row["personal_data"]),
                  key_id=int(row["id"]))


def lookup_key(engine: Engine, key: str) -> tuple[Caller | None, int]:
    """For the API's access middleware: the key's caller and its requests this minute across processes,
    on one connection. Raises DatabaseUnavailable (503 with Retry-After, not a 500 and a dropped
    connection) when the database cannot be reached."""
    with database_errors(), engine.connect() as conn:
        caller = resolve_key(conn, key)
        return caller, (requests_this_minute(conn, caller.key_id) if caller and caller.key_id else 0)


def requests_this_minute(conn: Connection, key_id: int) -> int:
    """How many answered (not rate-limited) requests the access log holds for a key in the current
    clock minute, from every process serving the API (an index range on (key_id, at))."""
    return int(conn.execute(sa.select(sa.func.count()).select_from(access_log).where(
        access_log.c.key_id == key_id, access_log.c.at >= sa.func.date_trunc("minute", sa.func.now()),
        access_log.c.status != 429)).scalar_one())


def list_keys(conn: Connection) -> list[dict[str, object]]:
    """Every key without its secret: id, prefix, department, scopes, flags, times."""
    columns = [c for c in api_keys.columns if c.name not in ("salt", "key_hash")]
    return [dict(r) for r in conn.execute(sa.select(*columns).order_by(api_keys.c.id)).mappings()]


def revoke_key(conn: Connection, key_id_or_prefix: str, caller: Caller = SYSTEM) -> int:
    """Revoke by id or prefix; returns the id. Revoking twice is harmless (and audited once)."""

    where = (api_keys.c.id == int(key_id_or_prefix)) if key_id_or_prefix.isdigit() else (
        api_keys.c.prefix == key_id_or_prefix.removeprefix(KEY_PREFIX).split("_", 1)[0])
    found = conn.execute(sa.select(api_keys.c.id).where(where).with_for_update()).scalar()
    if found is None:
        raise NotFound(f"no key {key_id_or_prefix!r}: see `govgis keys list`")
    before = _key_record(conn, int(found))
    if before["revoked_at"] is None:
        conn.execute(sa.update(api_keys).where(api_keys.c.id == found).values(revoked_at=sa.func.now()))
        audit(conn, caller, KEYS_LAYER, found, "update", before, _key_record(conn, int(found)))
    return int(found)


def log_access(conn: Connection, rows: list[dict[str, object]]) -> None:
    """Append access-log rows (key_id, method, route, layer, status)."""
    if rows:
        conn.execute(access_log.insert(), rows)
