"""The one write path for every layer.

Each function works inside the caller's transaction (the request's or the CLI's unit of work — it
never commits): check the right, lock the row, check its version (optimistic concurrency), write,
bump the version, and append an audit record with before and after. Layers that keep history are
never overwritten: an edit closes the old version and inserts the new one (bitemporal: legal
valid time and record time), so every past state stays queryable.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Mapping
from typing import Any

import sqlalchemy as sa
from geoalchemy2.shape import from_shape
from shapely.geometry.base import BaseGeometry
from sqlalchemy.engine import Connection

from gis.access import Caller, require_generic_write, require_write
from gis.errors import InvalidParameter, NotFound, PreconditionRequired, StaleVersion
from gis.registry import Layer
from gis.schema import audit_log, storage_srid


def _jsonable(row: Mapping[str, Any]) -> dict[str, Any]:
    """A row as JSON-safe values for the audit record (snapshots carry geometry as EWKT text)."""
    return {
        key: value.isoformat() if isinstance(value, (dt.date, dt.datetime)) else
        json.loads(json.dumps(value, default=str))
        for key, value in row.items()
    }


def audit(conn: Connection, caller: Caller, layer_id: str, feature_id: object, action: str,
          before: Mapping[str, Any] | None, after: Mapping[str, Any] | None,
          detail: Mapping[str, Any] | None = None) -> None:
    """Append one audit record in the current transaction."""
    conn.execute(
        audit_log.insert().values(
            actor=caller.name if not caller.department else f"{caller.name} ({caller.department})",
            key_id=caller.key_id,
            layer=layer_id,
            feature_id=None if feature_id is None else str(feature_id),
            action=action,
            before=_jsonable(before) if before is not None else None,
            after=_jsonable(after) if after is not None else None,
            detail=dict(detail) if detail else None,
        )
    )


def _snapshot(conn: Connection, layer: Layer, feature_id: object, *, lock: bool) -> dict[str, Any] | None:
    table = layer.table
    geom = table.c.get(layer.geometry_column)
    columns = [c for c in table.columns if c is not geom]
    if geom is not None:
        columns.append(sa.func.ST_AsEWKT(geom).label(layer.geometry_column))
    query = sa.select(*columns).where(table.c[layer.key] == feature_id)
    if lock:
        query = query.with_for_update(of=table)
    row = conn.execute(query).mappings().first()
    return dict(row) if row is not None else None


def _check_fields(layer: Layer, properties: Mapping[str, Any]) -> dict[str, Any]:
    writable = set(layer.writable_fields())
    unknown = [name for name in properties if name not in writable]
    if unknown:
        readonly = [name for name in unknown if name in layer.table.c]
        if readonly:
            raise InvalidParameter(
                f"field(s) {', '.join(readonly)} of {layer.id!r} are set by govgis and cannot be written"
            )
        raise InvalidParameter(
            f"unknown field(s) {', '.join(unknown)} for layer {layer.id!r}; writable fields: "
            f"{', '.join(sorted(writable))}"
        )
    return dict(properties)


def _check_values(layer: Layer, values: Mapping[str, Any]) -> None:
    """The layer's value checks (``Layer.validators``: code lists and the like) on the fields written."""
    problems = layer.value_problems([values])
    if problems:
        raise InvalidParameter("; ".join(reason for _, reason in problems))


def _with_geometry(layer: Layer, values: dict[str, Any], geometry: BaseGeometry | None) -> dict[str, Any]:
    if geometry is not None:
        values[layer.geometry_column] = from_shape(geometry, srid=storage_srid())
    return values


def _check_version(layer: Layer, feature_id: object, current: Mapping[str, Any],
                   expected_version: int | None, *, require: bool) -> None:
    if expected_version is None:
        if require:
            raise PreconditionRequired(
                f"send If-Match with the feature's ETag (version {current['version']}) to edit {layer.id} "
                f"{feature_id}, so a concurrent edit is not overwritten"
            )
        return
    if int(current["version"]) != int(expected_version):
        raise StaleVersion(
            f"{layer.id} {feature_id} is at version {current['version']}, you edited version "
            f"{expected_version}: reload it, re-apply your change and send the new ETag"
        )


def _require(caller: Caller, layer: Layer, through_module: bool) -> None:
    """The write check: a module writing its own module-only layer (its rules already applied) needs
    the key's write scope; every generic path also needs a layer that may be written generically."""
    if through_module:
        require_write(caller, layer)
    else:
        require_generic_write(caller, layer)


def insert_feature(conn: Connection, layer: Layer, caller: Caller, properties: Mapping[str, Any],
                   geometry: BaseGeometry | None, *, effective_at: dt.datetime | None = None,
                   through_module: bool = False) -> dict[str, Any]:
    """Insert one feature (geometry already validated and in the storage CRS). Returns the new row.

    ``through_module``: the caller is the layer's own module service (see ``Layer.write_mode``)."""
    _require(caller, layer, through_module)
    _check_values(layer, properties)
    values = _with_geometry(layer, _check_fields(layer, properties), geometry)
    missing = [name for name in layer.required if values.get(name) in (None, "")]
    if missing:
        raise InvalidParameter(f"layer {layer.id!r} requires field(s): {', '.join(missing)}")
    if layer.valid_time:
        values[layer.valid_time[0]] = effective_at or sa.func.now()
    new_id = conn.execute(layer.table.insert().values(values).returning(layer.table.c[layer.key])).scalar_one()
    after = _snapshot(conn, layer, new_id, lock=False)
    audit(conn, caller, layer.id, new_id, "insert", None, after)
    assert after is not None
    return after


def update_feature(conn: Connection, layer: Layer, caller: Caller, feature_id: object,
                   properties: Mapping[str, Any], geometry: BaseGeometry | None, *,
                   expected_version: int | None, replace: bool = False, require_version: bool = False,
                   effective_at: dt.datetime | None = None, through_module: bool = False) -> dict[str, Any]:
    """Update (PATCH) or replace (PUT) a feature; a history layer gets a new version row instead.

    ``expected_version`` is the version the caller read (If-Match); a different current version is
    refused with StaleVersion. Returns the row as it now is (for history layers: the new version).
    """
    _require(caller, layer, through_module)
    before = _snapshot(conn, layer, feature_id, lock=True)
    if before is None or _retired(layer, before):
        raise NotFound(f"{layer.id} has no current feature {feature_id}")
    _check_version(layer, feature_id, before, expected_version, require=require_version)
    values = _check_fields(layer, properties)
    _check_values(layer, values)
    if replace:
        # PUT: every writable field not given becomes NULL/default, as the standard says
        for name in layer.writable_fields():
            values.setdefault(name, None)
    values = _with_geometry(layer, values, geometry)
    if layer.has_history:
        after = _supersede(conn, layer, before, values, effective_at)
    else:
        values["version"] = layer.table.c.version + 1
        values["updated_at"] = sa.func.now()
        conn.execute(layer.table.update().where(layer.table.c[layer.key] == feature_id).values(values))
        after = _snapshot(conn, layer, feature_id, lock=False)
    assert after is not None
    audit(conn, caller, layer.id, feature_id, "update", before, after)
    return after


def delete_feature(conn: Connection, layer: Layer, caller: Caller, feature_id: object, *,
                   expected_version: int | None, require_version: bool = False,
                   effective_at: dt.datetime | None = None, through_module: bool = False) -> None:
    """Delete a feature; a history layer's feature is retired (its versions stay)."""
    _require(caller, layer, through_module)
    before = _snapshot(conn, layer, feature_id, lock=True)
    if before is None or _retired(layer, before):
        raise NotFound(f"{layer.id} has no current feature {feature_id}")
    _check_version(layer, feature_id, before, expected_version, require=require_version)
    if layer.has_history:
        _close(conn, layer, before, effective_at)
    else:
        conn.execute(layer.table.delete().where(layer.table.c[layer.key] == feature_id))
    audit(conn, caller, layer.id, feature_id, "delete", before, None)


def _retired(layer: Layer, row: Mapping[str, Any]) -> bool:
    if layer.valid_time and row.get(layer.valid_time[1]) is not None:
        return True
    return bool(layer.record_time and row.get(layer.record_time[1]) is not None)


def _close(conn: Connection, layer: Layer, before: Mapping[str, Any], effective_at: dt.datetime | None) -> int:
    """End a current version at ``effective_at`` (legal time), keeping what the register said before.

    Bitemporal: the old row's record period is closed now, and a copy recording "valid until
    effective_at" is inserted, so "what did the register say on T about D" stays answerable.
    Returns the id of that closed copy.
    """
    table = layer.table
    valid_from, valid_to = layer.valid_time  # type: ignore[misc]
    when = effective_at or conn.execute(sa.select(sa.func.now())).scalar_one()
    if layer.record_time:
        recorded_from, recorded_to = layer.record_time
        conn.execute(table.update().where(table.c[layer.key] == before[layer.key])
                     .values({recorded_to: sa.func.now()}))
        copy = {c.name: before[c.name] for c in table.columns
                if c.name not in (layer.key, layer.geometry_column, recorded_from, recorded_to)
                and c.computed is None}
        copy[layer.geometry_column] = sa.func.ST_GeomFromEWKT(before[layer.geometry_column])
        copy[valid_to] = when
        copy[recorded_from] = sa.func.now()
        return conn.execute(table.insert().values(copy).returning(table.c[layer.key])).scalar_one()
    conn.execute(table.update().where(table.c[layer.key] == before[layer.key]).values({valid_to: when}))
    return int(before[layer.key])


def _supersede(conn: Connection, layer: Layer, before: Mapping[str, Any], changes: Mapping[str, Any],
               effective_at: dt.datetime | None) -> dict[str, Any]:
    """Close the current version and insert the next one, valid from ``effective_at``."""
    table = layer.table
    valid_from, valid_to = layer.valid_time  # type: ignore[misc]
    when = effective_at or conn.execute(sa.select(sa.func.now())).scalar_one()
    _close(conn, layer, before, when)
    skip = {layer.key, layer.geometry_column, valid_to, "created_at", "updated_at"}
    if layer.record_time:
        skip.update(layer.record_time)
    row = {c.name: before[c.name] for c in table.columns if c.name not in skip and c.computed is None}
    if layer.geometry_column not in changes:
        row[layer.geometry_column] = sa.func.ST_GeomFromEWKT(before[layer.geometry_column])
    row.update(changes)
    row[valid_from] = when
    row["version"] = int(before["version"]) + 1
    new_id = conn.execute(table.insert().values(row).returning(table.c[layer.key])).scalar_one()
    after = _snapshot(conn, layer, new_id, lock=False)
    assert after is not None
    return after
