"""The layer registry: every layer declared once, everything generic reads it.

A declaration names the table, the geometry, the key, which fields are searchable, which are
personal data, who may read and write, and which attributes the map's tiles carry. The OGC API, the
tiles, import/export, the map's layer list and the permission checks all work from this, so adding a
layer is one ``Layer(...)`` in its family's ``layers.py`` plus a migration — never a new route.
"""

from __future__ import annotations

import datetime as dt
import decimal
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum

import sqlalchemy as sa
from geoalchemy2 import Geometry

from gis.errors import NotFound

# A check of attribute values that a table constraint cannot keep (a code list the city corrects):
# given rows as field → value (only the fields a write gives), the (row index, reason) of each bad one.
Validator = Callable[[Sequence[Mapping[str, object]]], list[tuple[int, str]]]


class WriteMode(StrEnum):
    """How clients may change a layer."""

    GENERIC = "generic"  # OGC API Part 4 and `govgis import`, through gis/writes.py
    MODULE = "module"  # only through its module's endpoints (they keep the domain's rules)
    NONE = "none"  # computed by govgis; no client writes it


class Access(StrEnum):
    """Who may read a layer without a key-specific grant."""

    PUBLIC = "public"  # anyone, including anonymous callers
    INTERNAL = "internal"  # any department key with the layer (or its family) in its read scope
    RESTRICTED = "restricted"  # only keys that name this layer explicitly


@dataclass(frozen=True)
class FieldInfo:
    """One attribute of a layer as clients see it (derived from the table column)."""

    name: str
    json_type: str  # JSON Schema type: string, integer, number, boolean
    format: str | None  # JSON Schema format: date, date-time, or None
    nullable: bool
    searchable: bool
    personal: bool  # personal data on every row, or on the rows ``Layer.personal_when`` names
    title_zh: str
    title_en: str


@dataclass(frozen=True)
class Layer:
    """A declared layer. Only ``id``, titles, ``table``, ``family``, ``department`` are required."""

    id: str
    title_zh: str
    title_en: str
    table: sa.Table
    family: str
    department: str
    access: Access = Access.PUBLIC
    key: str = "id"
    geometry_column: str = "geom"
    searchable: tuple[str, ...] = ()
    # Privacy policy (enforced by gis/access.py on every path: items, html, queryables, tiles,
    # /query, search, export, module reports). ``personal`` fields are personal data on every row;
    # ``personal_when`` maps a field to the rows where it is: {"right_holder": ("holder_kind", ("person",))}
    # — a company's name is public record, a person's is not. ``hidden`` fields are never shown by
    # the generic paths (e.g. a stored report whose content depends on who reads it).
    personal: tuple[str, ...] = ()
    personal_when: dict[str, tuple[str, tuple[str, ...]]] = field(default_factory=dict)
    hidden: tuple[str, ...] = ()
    # Rows belong to a department (this column holds its name): other departments read them only
    # with the layer named explicitly in their key's read scope.
    owner_column: str | None = None
    # How clients may write the layer; ``write_via`` tells a refused caller where to go instead.
    write_mode: WriteMode = WriteMode.GENERIC
    write_via: str = ""
    # attributes carried in vector tiles (keep them few: tiles are for drawing and identify)
    map_fields: tuple[str, ...] = ()
    # columns clients may not set: computed by the database or by the write path
    read_only: tuple[str, ...] = ("id", "version", "created_at", "updated_at")
    required: tuple[str, ...] = ()
    # legal validity columns of a layer that keeps history; None = no history
    valid_time: tuple[str, str] | None = None
    # record (transaction) time columns for bitemporal layers
    record_time: tuple[str, str] | None = None
    # a datetime column for the OGC `datetime` filter on non-history layers
    datetime_column: str | None = None
    # where the map draws it and in what colour; a style dict the web map reads
    style: dict[str, object] = field(default_factory=dict)
    field_titles: dict[str, tuple[str, str]] = field(default_factory=dict)
    description: str = ""
    # value checks every write path runs before it writes (gis/writes.py for OGC writes and modules
    # that write through it, the file imports for every row): declared once here, per layer
    validators: tuple[Validator, ...] = ()

    def value_problems(self, rows: Sequence[Mapping[str, object]]) -> list[tuple[int, str]]:
        """Every (row index, reason) the layer's validators find in ``rows``, in row order."""
        problems = [problem for check in self.validators for problem in check(rows)]
        return sorted(problems, key=lambda p: p[0])

    @property
    def columns(self) -> sa.ColumnCollection:
        return self.table.c

    @property
    def geometry_type(self) -> str | None:
        """OGC/GeoJSON geometry type name of the geometry column, or None for a table without one."""
        column = self.table.c.get(self.geometry_column)
        if column is None:
            return None
        name = str(column.type.geometry_type).upper()
        return {
            "POINT": "Point",
            "LINESTRING": "LineString",
            "POLYGON": "Polygon",
            "MULTIPOINT": "MultiPoint",
            "MULTILINESTRING": "MultiLineString",
            "MULTIPOLYGON": "MultiPolygon",
        }.get(name, "Geometry")

    @property
    def has_history(self) -> bool:
        return self.valid_time is not None

    def current_clause(self) -> sa.ColumnElement[bool]:
        """The rows that make up the layer today. For a history layer: the versions valid *now* in legal
        time (started, not ended) as the register stands now (record period open). A version recorded
        with a future effective date is scheduled: it is not current until its time comes, and then it
        is, with no job having to run — the clause reads the clock of the statement."""
        if not self.valid_time:
            if self.record_time:
                return self.table.c[self.record_time[1]].is_(None)
            return sa.true()
        return self.as_of_clause(sa.func.now())

    def as_of_clause(self, valid_at: object, recorded_at: object | None = None) -> sa.ColumnElement[bool]:
        """Rows valid at legal time ``valid_at`` as the register stood at ``recorded_at`` (default: now)."""
        if not self.valid_time:
            return sa.true()
        start, end = (self.table.c[n] for n in self.valid_time)
        clause = sa.and_(start <= valid_at, sa.or_(end.is_(None), end > valid_at))
        if self.record_time:
            rstart, rend = (self.table.c[n] for n in self.record_time)
            if recorded_at is None:
                clause = sa.and_(clause, rend.is_(None))
            else:
                clause = sa.and_(clause, rstart <= recorded_at, sa.or_(rend.is_(None), rend > recorded_at))
        return clause

    def is_personal(self, name: str) -> bool:
        """Whether a field is personal data on some or all rows."""
        return name in self.personal or name in self.personal_when

    def fields(self) -> list[FieldInfo]:
        """Attributes clients may see (every column except geometries and hidden fields), in table order."""
        out = []
        for column in self.table.columns:
            if isinstance(column.type, Geometry) or column.name in self.hidden:
                continue
            json_type, fmt = json_schema_type(column.type)
            title_zh, title_en = self.field_titles.get(column.name, (column.comment or column.name, column.name))
            out.append(
                FieldInfo(
                    name=column.name,
                    json_type=json_type,
                    format=fmt,
                    nullable=bool(column.nullable),
                    searchable=column.name in self.searchable,
                    personal=column.name in self.personal or column.name in self.personal_when,
                    title_zh=title_zh,
                    title_en=title_en,
                )
            )
        return out

    def field_names(self) -> list[str]:
        return [f.name for f in self.fields()]

    def column(self, name: str) -> sa.Column:
        """A declared attribute column; raises NotFound naming the valid choices."""
        column = self.table.c.get(name)
        if column is None or isinstance(column.type, Geometry) or name in self.hidden:
            raise NotFound(
                f"layer {self.id!r} has no field {name!r}; its fields are: {', '.join(self.field_names())}"
            )
        return column

    def writable_fields(self) -> list[str]:
        skip = set(self.read_only)
        if self.valid_time:
            skip.update(self.valid_time)
        if self.record_time:
            skip.update(self.record_time)
        return [name for name in self.field_names() if name not in skip]


def json_schema_type(column_type: sa.types.TypeEngine) -> tuple[str, str | None]:
    """JSON Schema (type, format) of a SQL column type, for queryables and item schemas."""
    try:
        python_type = column_type.python_type
    except NotImplementedError:
        return "string", None
    if python_type is bool:
        return "boolean", None
    if python_type is int:
        return "integer", None
    if python_type in (float, decimal.Decimal):
        return "number", None
    if python_type is dt.datetime:
        return "string", "date-time"
    if python_type is dt.date:
        return "string", "date"
    if python_type in (dict, list):
        return "object", None
    return "string", None


class Registry:
    """Layers by id, in declaration order."""

    def __init__(self) -> None:
        self._layers: dict[str, Layer] = {}

    def add(self, layer: Layer) -> Layer:
        if layer.id in self._layers:
            raise ValueError(f"layer {layer.id!r} is declared twice")
        conditions = [column for column, _ in layer.personal_when.values()]
        for name in (*layer.searchable, *layer.personal, *layer.personal_when, *conditions, *layer.hidden,
                     *layer.map_fields, *layer.required, *([layer.owner_column] if layer.owner_column else [])):
            if name not in layer.table.c:
                raise ValueError(f"layer {layer.id!r} names unknown column {name!r}")
        if layer.has_history and layer.write_mode is WriteMode.GENERIC:
            # a plain PATCH would write a version without the module's rules (lineage, legal order…)
            raise ValueError(f"layer {layer.id!r} keeps history: declare write_mode=MODULE and its write_via")
        leaking = [name for name in layer.map_fields if layer.is_personal(name) or name in layer.hidden]
        if leaking:  # tiles are cached and served alike to every reader: no personal field may ride in them
            raise ValueError(f"layer {layer.id!r}: map_fields {leaking} are personal or hidden")
        self._layers[layer.id] = layer
        return layer

    def get(self, layer_id: str) -> Layer:
        try:
            return self._layers[layer_id]
        except KeyError:
            raise NotFound(
                f"no layer {layer_id!r}; known layers: {', '.join(self._layers)}"
            ) from None

    def __iter__(self) -> Iterator[Layer]:
        return iter(self._layers.values())

    def __len__(self) -> int:
        return len(self._layers)

    def __contains__(self, layer_id: object) -> bool:
        return layer_id in self._layers

    def by_table(self, table_name: str) -> Layer | None:
        return next((layer for layer in self if layer.table.name == table_name), None)

    def spatial(self) -> list[Layer]:
        return [layer for layer in self if layer.geometry_type is not None]


# The one registry of the process. Each family's layers.py adds to it; layers/__init__.py imports them.
REGISTRY = Registry()
