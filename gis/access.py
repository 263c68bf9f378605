"""The access policy: who may read and write which layer, which fields and rows they see, and what
they may filter and sort on. Every path that reads or writes a layer asks this module.

A ``Caller`` is what the API makes of a request (anonymous, or a department key) and what the CLI
uses for itself (``SYSTEM``). The rules themselves are declared once per layer in the registry
(access class, ``personal`` / ``personal_when`` / ``hidden`` fields, ``owner_column``,
``write_mode``); this module turns them into SQL expressions (for items, tiles, /query, search,
export) and into Python masking (for module answers and reports), so both read alike.

The privacy rule, in one line: a caller can neither see nor *use* what it may not see. A personal
field is masked in every answer, and a caller without the personal-data scope may not filter, sort
or select on it (refused with a 400 that says why) — otherwise a masked value could be read back
digit by digit with ``LIKE``. A field that is personal only on some rows (a natural person's name
as right holder) is compared and sorted as the caller sees it, masked, so nothing can be inferred
beyond what the answer shows.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa

from gis.errors import Forbidden, InvalidParameter, NotFound, NotWritableHere, Unauthorized
from gis.registry import Access, FieldInfo, Layer, WriteMode

ALL = "*"


@dataclass(frozen=True)
class Caller:
    """The identity a request acts as. Scopes hold layer ids, family names, or '*'."""

    name: str
    department: str | None = None
    read: frozenset[str] = field(default_factory=frozenset)
    write: frozenset[str] = field(default_factory=frozenset)
    personal_data: bool = False
    key_id: int | None = None

    @property
    def anonymous(self) -> bool:
        return self.key_id is None and self.name == "anonymous"

    def _grants(self, scopes: frozenset[str], layer: Layer, *, explicit: bool) -> bool:
        if ALL in scopes or layer.id in scopes:
            return True
        return not explicit and layer.family in scopes


ANONYMOUS = Caller(name="anonymous")
SYSTEM = Caller(name="system", department="govgis", read=frozenset({ALL}), write=frozenset({ALL}),
                personal_data=True)


# ---------------------------------------------------------------- layers: read and write


def can_read(caller: Caller, layer: Layer) -> bool:
    if layer.access is Access.PUBLIC:
        return True
    if caller.anonymous:
        return False
    return caller._grants(caller.read | caller.write, layer, explicit=layer.access is Access.RESTRICTED)


def can_write(caller: Caller, layer: Layer) -> bool:
    if caller.anonymous:
        return False
    return caller._grants(caller.write, layer, explicit=layer.access is Access.RESTRICTED)


def require_read(caller: Caller, layer: Layer) -> None:
    if can_read(caller, layer):
        return
    if caller.anonymous:
        raise Unauthorized(
            f"layer {layer.id!r} is {layer.access.value}: send a department API key in the X-API-Key header"
        )
    raise Forbidden(f"your key ({caller.department}) may not read layer {layer.id!r}; ask "
                    f"{layer.department} to grant it")


def require_write(caller: Caller, layer: Layer) -> None:
    if can_write(caller, layer):
        return
    if caller.anonymous:
        raise Unauthorized(f"editing {layer.id!r} needs a department API key with write scope for it")
    raise Forbidden(f"your key ({caller.department}) may not write layer {layer.id!r}; ask "
                    f"{layer.department} to grant write access")


def require_generic_write(caller: Caller, layer: Layer) -> None:
    """The check of the generic write paths (OGC Part 4, import): the key's write scope, and a layer
    that may be written generically at all — a module-only layer keeps its rules in its module."""
    if layer.write_mode is WriteMode.MODULE:
        raise NotWritableHere(f"{layer.id} is changed only through its module, which keeps its rules"
                              f"{': ' + layer.write_via if layer.write_via else ''}")
    if layer.write_mode is WriteMode.NONE:
        raise NotWritableHere(f"{layer.id} is computed by govgis and cannot be written by clients")
    require_write(caller, layer)


def sees_personal_data(caller: Caller) -> bool:
    return caller.personal_data


# ---------------------------------------------------------------- rows


def sees_all_rows(caller: Caller, layer: Layer) -> bool:
    """Whether the caller reads every row of an owned layer: an explicit grant of the layer (not just
    its family) — otherwise only its own department's rows."""
    if layer.owner_column is None:
        return True
    return ALL in caller.read or layer.id in caller.read or ALL in caller.write or layer.id in caller.write


def row_clause(layer: Layer, caller: Caller) -> sa.ColumnElement[bool]:
    """The rows of ``layer`` the caller may read (every path adds it to its WHERE)."""
    if sees_all_rows(caller, layer):
        return sa.true()
    assert layer.owner_column is not None
    if caller.department is None:
        return sa.false()
    return layer.table.c[layer.owner_column] == sa.bindparam(None, caller.department, type_=sa.Text)


def require_row(caller: Caller, layer: Layer, row: Mapping[str, Any], what: str) -> None:
    """A module's check that one row it is about to show is the caller's to read."""
    if sees_all_rows(caller, layer) or row.get(layer.owner_column or "") == caller.department:
        return
    # the same answer as for a row that does not exist: ids must not tell other departments' work apart
    raise NotFound(f"no {what}: it does not exist or belongs to another department")


# ---------------------------------------------------------------- fields


def _personal_sql(layer: Layer, name: str) -> sa.ColumnElement[bool] | None:
    """SQL saying "this row's ``name`` is personal"; None when it is personal on every row."""
    if name not in layer.personal_when:
        return None
    column_name, values = layer.personal_when[name]
    # unknown (NULL) counts as personal: masking a company by mistake is the safe error
    column = layer.table.c[column_name]
    return sa.or_(column.is_(None), column.in_(values))


def _personal_row(layer: Layer, name: str, row: Mapping[str, Any]) -> bool:
    if name in layer.personal:
        return True
    column_name, values = layer.personal_when[name]
    value = row.get(column_name)
    return value is None or value in values


def field_expression(layer: Layer, name: str, caller: Caller) -> sa.ColumnElement[Any]:
    """The field as the caller sees it, as SQL: the column, or its masked form."""
    column = layer.table.c[name]
    if sees_personal_data(caller) or not layer.is_personal(name):
        return column
    masked = sa.func.govgis_mask(sa.cast(column, sa.Text))
    condition = _personal_sql(layer, name)
    if condition is None:
        return masked
    return sa.case((condition, masked), else_=sa.cast(column, sa.Text))


def usable_field(layer: Layer, caller: Caller, name: str, purpose: str) -> sa.ColumnElement[Any]:
    """The expression a caller may filter, sort or select ``name`` by (``purpose`` names the use for
    the message: "filter", "sortby", "properties" …). Raises InvalidParameter when the field is unknown
    or personal data the caller may not use."""
    try:
        layer.column(name)
    except NotFound as exc:
        raise InvalidParameter(f"{purpose}: {exc.detail}") from None
    if name in layer.personal and not sees_personal_data(caller):
        raise InvalidParameter(
            f"{purpose}: {name!r} of {layer.id} is personal data; using it in a filter, a sort or a property "
            "list needs a key with the personal-data scope (ask the data owner, "
            f"{layer.department})")
    return field_expression(layer, name, caller)


def queryable_fields(layer: Layer, caller: Caller) -> list[FieldInfo]:
    """The fields the caller may filter and sort on."""
    show = sees_personal_data(caller)
    return [info for info in layer.fields() if show or info.name not in layer.personal]


def mask_text(value: str | None) -> str | None:
    """Mask a personal value, keeping just enough to recognise it (identical to SQL govgis_mask).

    13812345678 → 138****5678; 350203199001011234 → 350***********1234; 张三 → 张*; 张三丰 → 张**.
    """
    if value is None:
        return None
    n = len(value)
    if n <= 1:
        return "*" * n
    if n <= 3:
        return value[0] + "*" * (n - 1)
    if n <= 6:
        return value[0] + "*" * (n - 2) + value[-1]
    if n <= 10:
        return value[:2] + "*" * (n - 4) + value[-2:]
    return value[:3] + "*" * (n - 7) + value[-4:]


MASK_FUNCTION_SQL = """
CREATE OR REPLACE FUNCTION govgis_mask(v text) RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
  SELECT CASE
    WHEN v IS NULL THEN NULL
    WHEN char_length(v) <= 1 THEN repeat('*', char_length(v))
    WHEN char_length(v) <= 3 THEN left(v, 1) || repeat('*', char_length(v) - 1)
    WHEN char_length(v) <= 6 THEN left(v, 1) || repeat('*', char_length(v) - 2) || right(v, 1)
    WHEN char_length(v) <= 10 THEN left(v, 2) || repeat('*', char_length(v) - 4) || right(v, 2)
    ELSE left(v, 3) || repeat('*', char_length(v) - 7) || right(v, 4)
  END
$$;
"""


def mask_properties(caller: Caller, layer: Layer, properties: Mapping[str, Any]) -> dict[str, Any]:
    """A row (or a row's properties) as the caller may see it: hidden fields dropped, personal ones
    masked unless the caller may see them — the Python twin of ``field_expression`` for module
    answers and stored reports. Conditional rules read their condition from the same mapping."""
    shown = {name: value for name, value in properties.items() if name not in layer.hidden}
    if sees_personal_data(caller):
        return shown
    for name in (*layer.personal, *layer.personal_when):
        if name in shown and shown[name] is not None and _personal_row(layer, name, properties):
            shown[name] = mask_text(str(shown[name]))
    return shown
