"""CQL2 filters (OGC API Features Part 3) → SQLAlchemy expressions over one layer.

Both encodings end in one translator: CQL2-JSON is walked directly; CQL2-text is parsed by
pygeofilter (parsing only) and its tree turned into the same JSON form. The translator is ours so
that every property name is checked against the layer declaration (``Layer.column``) and every
literal becomes a bound parameter — a filter can never carry SQL.

Supported: and/or/not; = <> < <= > >=; like; between; in; isNull; casei; property–property
comparisons; s_intersects, s_within, s_contains, s_disjoint, s_equals, s_touches, s_overlaps,
s_crosses, s_dwithin (distance in metres, measured in the storage CRS); t_before, t_after,
t_during, t_intersects, t_equals, t_disjoint, t_starts/t_finishes (on instants). Geometry literals are
in ``filter-crs`` (default CRS84, lon/lat) and validated before they reach the database.
"""

from __future__ import annotations

import datetime as dt
import decimal
import json
import re
from typing import Any

import sqlalchemy as sa
from geoalchemy2 import Geometry
from shapely.geometry import box

from gis import intake
from gis.access import Caller, usable_field
from gis.errors import GisError, InvalidParameter, NotFound
from gis.geometry import geometry_problem
from gis.registry import Layer

MAX_FILTER_CHARS = 20_000
MAX_DEPTH = 50
MAX_PREDICATES = 500

COMPARISON = {"=": "__eq__", "<>": "__ne__", "<": "__lt__", "<=": "__le__", ">": "__gt__", ">=": "__ge__"}
SPATIAL = {
    "s_intersects": "ST_Intersects", "s_within": "ST_Within", "s_contains": "ST_Contains",
    "s_disjoint": "ST_Disjoint", "s_equals": "ST_Equals", "s_touches": "ST_Touches",
    "s_overlaps": "ST_Overlaps", "s_crosses": "ST_Crosses",
}
TEMPORAL = {"t_before", "t_after", "t_during", "t_intersects", "t_equals", "t_disjoint", "t_starts",
            "t_finishes", "anyinteracts"}


class FilterContext:
    """What a translation needs: the layer, who asks (a personal field may only be used with the
    personal-data scope: gis.access.usable_field), the CRS of geometry literals and the storage SRID."""

    def __init__(self, layer: Layer, filter_srid: int, storage_srid: int, *, caller: Caller,
                 flip_axes: bool = False) -> None:
        self.layer = layer
        self.caller = caller
        self.filter_srid = filter_srid
        self.storage_srid = storage_srid
        self.flip_axes = flip_axes
        self.predicates = 0  # counted while translating: a filter of thousands of ORs is refused


def parse_filter(text_or_json: str, lang: str) -> dict[str, Any] | Any:
    """The filter as CQL2-JSON (a dict), from either encoding. Raises InvalidParameter."""
    if len(text_or_json) > MAX_FILTER_CHARS:
        raise InvalidParameter(f"filter is longer than {MAX_FILTER_CHARS} characters: simplify it")
    if lang == "cql2-json":
        intake.check_json_nesting(text_or_json, MAX_DEPTH * 3, "filter")
        try:
            return json.loads(text_or_json)
        except json.JSONDecodeError as exc:
            raise InvalidParameter(f"filter is not valid JSON ({exc.msg}); send CQL2-JSON or use "
                                   "filter-lang=cql2-text") from None
    if lang != "cql2-text":
        raise InvalidParameter(f"filter-lang {lang!r} is not supported: use cql2-text or cql2-json")
    from pygeofilter.parsers.cql2_text import parse as parse_text

    try:
        tree = parse_text(_function_forms(text_or_json))
    except Exception as exc:  # lark raises many kinds; all mean "malformed"
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise InvalidParameter(
            f"cannot parse the CQL2-text filter ({first}); example: landuse_code = '0701' AND "
            "S_INTERSECTS(geom, BBOX(118.0,24.4,118.2,24.6))"
        ) from None
    return _text_tree_to_json(tree)


_FUNCTION_FORM = re.compile(r"(T_[A-Za-z]+|S_DWITHIN|INTERVAL)\s*\(", re.IGNORECASE)


def _function_forms(text: str) -> str:
    """CQL2's T_AFTER(a, b) and S_DWITHIN(a, b, d) as something pygeofilter 0.4 can parse.

    Its text grammar knows only the older infix temporal form and no S_DWITHIN, and its INTERVAL
    takes two full timestamps only (CQL2 also allows dates and '..' for an open end). Outside string
    literals, each such operator call becomes ``govgis_t_after(a, b) = TRUE`` (a generic function
    compared with TRUE, which the grammar accepts) and INTERVAL(a, b) becomes ``govgis_interval(a, b)``;
    the translator turns them back into the operator and the interval.
    """
    out: list[str] = []
    i, n = 0, len(text)
    while i < n:
        if text[i] == "'":  # copy a string literal ('' escapes a quote)
            j = i + 1
            while j < n and not (text[j] == "'" and (j + 1 >= n or text[j + 1] != "'")):
                j += 2 if text[j] == "'" else 1
            out.append(text[i:j + 1])
            i = j + 1
            continue
        match = _FUNCTION_FORM.match(text, i)
        if match and (i == 0 or not (text[i - 1].isalnum() or text[i - 1] == "_")):
            depth, j = 1, match.end()
            inner_start = j
            while j < n and depth:
                if text[j] == "'":
                    j += 1
                    while j < n and text[j] != "'":
                        j += 1
                elif text[j] == "(":
                    depth += 1
                elif text[j] == ")":
                    depth -= 1
                j += 1
            inner = _function_forms(text[inner_start:j - 1]) if depth == 0 else text[inner_start:j]
            predicate = depth == 0 and match.group(1).upper() != "INTERVAL"
            out.append(f"govgis_{match.group(1).lower()}({inner}){' = TRUE' if predicate else ''}")
            i = j
            continue
        out.append(text[i])
        i += 1
    return "".join(out)


def _text_tree_to_json(node: Any) -> Any:  # noqa: C901 — one branch per AST node class
    from pygeofilter import ast, values

    if isinstance(node, ast.Attribute):
        return {"property": node.name}
    if isinstance(node, ast.Not):
        return {"op": "not", "args": [_text_tree_to_json(node.sub_node)]}
    if isinstance(node, ast.Combination):
        return {"op": node.op.value.lower(), "args": [_text_tree_to_json(node.lhs), _text_tree_to_json(node.rhs)]}
    if (isinstance(node, ast.Equal) and isinstance(node.lhs, ast.Function) and node.lhs.name.startswith("govgis_")
            and node.rhs is True):
        return _text_tree_to_json(node.lhs)
    if isinstance(node, ast.Comparison):
        return {"op": node.op.value, "args": [_text_tree_to_json(node.lhs), _text_tree_to_json(node.rhs)]}
    if isinstance(node, ast.Between):
        out = {"op": "between", "args": [_text_tree_to_json(node.lhs), _text_tree_to_json(node.low),
                                         _text_tree_to_json(node.high)]}
        return {"op": "not", "args": [out]} if node.not_ else out
    if isinstance(node, ast.Like):
        lhs = _text_tree_to_json(node.lhs)
        out = {"op": "like", "args": [{"op": "casei", "args": [lhs]} if node.nocase else lhs,
                                      _text_tree_to_json(node.pattern)]}
        return {"op": "not", "args": [out]} if node.not_ else out
    if isinstance(node, ast.In):
        out = {"op": "in", "args": [_text_tree_to_json(node.lhs), [_text_tree_to_json(v) for v in node.sub_nodes]]}
        return {"op": "not", "args": [out]} if node.not_ else out
    if isinstance(node, ast.IsNull):
        out = {"op": "isNull", "args": [_text_tree_to_json(node.lhs)]}
        return {"op": "not", "args": [out]} if node.not_ else out
    if isinstance(node, ast.SpatialComparisonPredicate):
        return {"op": "s_" + node.op.value.lower(), "args": [_text_tree_to_json(node.lhs), _text_tree_to_json(node.rhs)]}
    if isinstance(node, ast.SpatialDistancePredicate):
        return {"op": "s_dwithin", "args": [_text_tree_to_json(node.lhs), _text_tree_to_json(node.rhs), node.distance]}
    if isinstance(node, ast.TemporalPredicate):
        name = {"BEFORE": "t_before", "AFTER": "t_after", "DURING": "t_during", "TEQUALS": "t_equals",
                "DISJOINT": "t_disjoint", "INTERSECTS": "t_intersects"}.get(node.op.name, "t_" + node.op.name.lower())
        return {"op": name, "args": [_text_tree_to_json(node.lhs), _text_tree_to_json(node.rhs)]}
    if isinstance(node, ast.Function):
        if node.name.lower() == "bbox":
            return {"bbox": list(node.arguments)}
        if node.name.lower() in ("lower", "casei"):
            return {"op": "casei", "args": [_text_tree_to_json(a) for a in node.arguments]}
        if node.name == "govgis_interval":
            if len(node.arguments) != 2:
                raise InvalidParameter("INTERVAL takes two ends: INTERVAL('2024-01-01', '..') ('..' = open)")
            return {"interval": [_interval_end(a) for a in node.arguments]}
        if node.name.startswith("govgis_"):
            return {"op": node.name.removeprefix("govgis_"), "args": [_text_tree_to_json(a) for a in node.arguments]}
        raise InvalidParameter(f"function {node.name!r} is not supported in filters; use CASEI() or BBOX()")
    if isinstance(node, values.Geometry):
        return json.loads(json.dumps(node.geometry))  # tuples → lists
    if isinstance(node, values.Envelope):
        return {"bbox": [node.x1, node.y1, node.x2, node.y2]}
    if isinstance(node, values.Interval):
        return {"interval": [_instant_text(node.start), _instant_text(node.end)]}
    if isinstance(node, dt.datetime):
        return {"timestamp": node.isoformat()}
    if isinstance(node, dt.date):
        return {"date": node.isoformat()}
    if isinstance(node, (str, int, float, bool)) or node is None:
        return node
    raise InvalidParameter(f"unsupported element in the filter: {type(node).__name__}; see /conformance")


def _instant_text(value: Any) -> str:
    return ".." if value is None else value.isoformat()


def _interval_end(value: Any) -> str:
    """One end of a CQL2-text INTERVAL: '..', a quoted date or timestamp, DATE(…) or TIMESTAMP(…)."""
    if isinstance(value, (dt.date, dt.datetime)):
        return value.isoformat()
    if isinstance(value, str):
        return value
    raise InvalidParameter("an INTERVAL end is a date or timestamp in quotes, DATE(…), TIMESTAMP(…) or '..'")


def to_clause(cql: Any, ctx: FilterContext) -> sa.ColumnElement[bool]:
    """A WHERE clause for a CQL2-JSON filter on ``ctx.layer``; InvalidParameter on any problem."""
    try:
        clause = _predicate(cql, ctx, 0)
    except NotFound as exc:  # an unknown property: the client's mistake → 400
        raise InvalidParameter(exc.detail) from None
    except GisError:
        raise
    except (TypeError, ValueError, KeyError, IndexError, AttributeError) as exc:
        raise InvalidParameter(f"malformed filter ({exc}); see the CQL2 examples in the README") from None
    return clause


def _args(node: dict[str, Any], count: int | None = None) -> list[Any]:
    args = node.get("args")
    if not isinstance(args, list) or (count is not None and len(args) != count):
        want = f"{count} arguments" if count else "a list of arguments"
        raise InvalidParameter(f"operator {node.get('op')!r} needs {want} in 'args'")
    return args


def _predicate(node: Any, ctx: FilterContext, depth: int) -> sa.ColumnElement[bool]:  # noqa: C901
    if depth > MAX_DEPTH:
        raise InvalidParameter(f"filter nests deeper than {MAX_DEPTH} levels: simplify it")
    ctx.predicates += 1
    if ctx.predicates > MAX_PREDICATES:
        raise InvalidParameter(f"filter has more than {MAX_PREDICATES} conditions: use IN (…) for lists of "
                               "values, or split the request")
    if isinstance(node, bool):
        return sa.true() if node else sa.false()
    if not isinstance(node, dict) or "op" not in node:
        raise InvalidParameter("a filter must be a predicate such as {\"op\": \"=\", \"args\": [...]}")
    op = str(node["op"]).lower() if node["op"] not in ("isNull",) else "isnull"
    if op in ("and", "or"):
        parts = [_predicate(a, ctx, depth + 1) for a in _args(node)]
        if len(parts) < 2:
            raise InvalidParameter(f"{op!r} needs at least two arguments")
        return sa.and_(*parts) if op == "and" else sa.or_(*parts)
    if op == "not":
        return sa.not_(_predicate(_args(node, 1)[0], ctx, depth + 1))
    if op in COMPARISON:
        lhs, rhs = _args(node, 2)
        left, right = _scalar(lhs, ctx, depth), _scalar(rhs, ctx, depth)
        left, right = _align(left, right)
        return getattr(left, COMPARISON[op])(right)
    if op == "like":
        lhs, pattern = _args(node, 2)
        left = _scalar(lhs, ctx, depth)
        if not isinstance(pattern, str):
            if isinstance(pattern, dict) and pattern.get("op", "").lower() == "casei":
                return sa.func.lower(sa.cast(left, sa.Text)).like(sa.func.lower(_scalar(pattern["args"][0], ctx, depth)))
            raise InvalidParameter("LIKE needs a text pattern such as 'abc%'")
        return sa.cast(left, sa.Text).like(sa.bindparam(None, pattern, type_=sa.Text), escape="\\")
    if op == "between":
        lhs, low, high = _args(node, 3)
        left = _scalar(lhs, ctx, depth)
        return left.between(_bind_like(left, low, ctx, depth), _bind_like(left, high, ctx, depth))
    if op == "in":
        lhs, items = _args(node, 2)
        if not isinstance(items, list) or not items:
            raise InvalidParameter("IN needs a non-empty list of values")
        left = _scalar(lhs, ctx, depth)
        return left.in_([_bind_like(left, v, ctx, depth) for v in items])
    if op == "isnull":
        return _scalar(_args(node, 1)[0], ctx, depth).is_(None)
    if op in SPATIAL:
        lhs, rhs = _args(node, 2)
        return getattr(sa.func, SPATIAL[op])(_spatial(lhs, ctx), _spatial(rhs, ctx))
    if op == "s_dwithin":
        lhs, rhs, distance = _args(node, 3)
        if not isinstance(distance, (int, float)) or isinstance(distance, bool) or distance < 0:
            raise InvalidParameter("S_DWITHIN needs a distance in metres (a number ≥ 0) as third argument")
        return sa.func.ST_DWithin(_spatial(lhs, ctx), _spatial(rhs, ctx), sa.bindparam(None, float(distance)))
    if op in TEMPORAL:
        return _temporal(op, *_args(node, 2), ctx=ctx, depth=depth)
    raise InvalidParameter(
        f"unknown or unsupported operator {node['op']!r}; supported: and, or, not, =, <>, <, <=, >, >=, like, "
        "between, in, isNull, casei, " + ", ".join(SPATIAL) + ", s_dwithin, " + ", ".join(sorted(TEMPORAL))
    )


def _column(name: Any, ctx: FilterContext) -> sa.ColumnElement[Any]:
    if not isinstance(name, str):
        raise InvalidParameter("a property name must be text")
    # the field as this caller may use it: refused if personal, masked if personal on some rows
    return usable_field(ctx.layer, ctx.caller, name, "filter")


def _scalar(node: Any, ctx: FilterContext, depth: int) -> sa.ColumnElement[Any]:
    if isinstance(node, dict):
        if "property" in node:
            return _column(node["property"], ctx)
        if "timestamp" in node or "date" in node:
            return sa.bindparam(None, _instant(node), type_=sa.DateTime(timezone=True))
        if node.get("op", "").lower() in ("casei", "lower"):
            return sa.func.lower(sa.cast(_scalar(_args(node, 1)[0], ctx, depth + 1), sa.Text))
        if "op" in node:
            return _predicate(node, ctx, depth + 1)
        raise InvalidParameter(f"unsupported value in the filter: {json.dumps(node)[:80]}")
    if isinstance(node, list):
        raise InvalidParameter("a list is only allowed as the second argument of IN")
    if node is None or isinstance(node, (str, int, float, bool)):
        return sa.literal(node)
    raise InvalidParameter(f"unsupported value in the filter: {node!r}")


def _kind(column: Any) -> str:
    try:
        python_type = column.type.python_type
    except (NotImplementedError, AttributeError):
        return "other"
    if python_type is bool:
        return "boolean"
    if python_type in (int, float, decimal.Decimal):
        return "number"
    if python_type in (dt.datetime, dt.date):
        return "time"
    return "text" if python_type is str else "other"


def _coerce(column: sa.Column, value: Any) -> Any:
    """A literal converted to the column's kind, or InvalidParameter naming what was expected."""
    kind = _kind(column)
    if kind == "text":
        return value if isinstance(value, str) else str(value)
    if kind == "number":
        if isinstance(value, bool) or not isinstance(value, (int, float, str)):
            raise InvalidParameter(f"{column.name!r} is a number: compare it with a number, not {value!r}")
        if isinstance(value, str):
            try:
                return float(value) if any(c in value for c in ".eE") else int(value)
            except ValueError:
                raise InvalidParameter(f"{column.name!r} is a number: {value!r} is not one") from None
        return value
    if kind == "boolean" and not isinstance(value, bool):
        raise InvalidParameter(f"{column.name!r} is true/false: compare it with TRUE or FALSE")
    if kind == "time" and not isinstance(value, (str, dt.datetime, dt.date)):
        raise InvalidParameter(f"{column.name!r} is a time: compare it with TIMESTAMP('…') or DATE('…')")
    return value


def _align(left: Any, right: Any) -> tuple[Any, Any]:
    """Bind a literal with the type of the column it is compared with (so '0701' stays text), and
    refuse comparisons between properties of different kinds (they would fail in the database)."""
    if isinstance(left, sa.Column) and isinstance(right, sa.BindParameter):
        right = sa.bindparam(None, _coerce(left, right.value), type_=left.type)
    elif isinstance(right, sa.Column) and isinstance(left, sa.BindParameter):
        left = sa.bindparam(None, _coerce(right, left.value), type_=right.type)
    elif isinstance(left, sa.Column) and isinstance(right, sa.Column) and _kind(left) != _kind(right):
        raise InvalidParameter(f"cannot compare {left.name!r} ({_kind(left)}) with {right.name!r} ({_kind(right)})")
    return left, right


def _bind_like(column: Any, value: Any, ctx: FilterContext, depth: int) -> Any:
    bound = _scalar(value, ctx, depth)
    return _align(column, bound)[1]


def _instant(node: dict[str, Any]) -> dt.datetime:
    raw = node.get("timestamp") or node.get("date")
    if not isinstance(raw, str):
        raise InvalidParameter("a timestamp or date must be an ISO 8601 string")
    try:
        value = dt.datetime.fromisoformat(raw.replace("Z", "+00:00"))
    except ValueError:
        raise InvalidParameter(f"{raw!r} is not an ISO 8601 instant such as 2024-05-01T00:00:00Z") from None
    return value if value.tzinfo else value.replace(tzinfo=dt.UTC)


def _interval(node: Any) -> tuple[dt.datetime | None, dt.datetime | None]:
    if isinstance(node, dict) and "interval" in node:
        ends = node["interval"]
        if not isinstance(ends, list) or len(ends) != 2:
            raise InvalidParameter("an interval needs two ends: {\"interval\": [start, end]} ('..' = open)")
        out: list[dt.datetime | None] = []
        for end in ends:
            if end in ("..", None):
                out.append(None)
            elif isinstance(end, dict):
                out.append(_instant(end))
            else:
                out.append(_instant({"timestamp": end}))
        return out[0], out[1]
    if isinstance(node, dict) and ("timestamp" in node or "date" in node):
        instant = _instant(node)
        return instant, instant
    raise InvalidParameter("a temporal operator compares a property with a timestamp, date or interval")


def _temporal(op: str, lhs: Any, rhs: Any, *, ctx: FilterContext, depth: int) -> sa.ColumnElement[bool]:
    if not (isinstance(lhs, dict) and "property" in lhs):
        lhs, rhs = rhs, lhs
    column = _scalar(lhs, ctx, depth)
    if not isinstance(column, sa.Column) or _kind(column) != "time":
        raise InvalidParameter("temporal operators compare a date or time property with a TIMESTAMP, DATE or INTERVAL")
    start, end = _interval(rhs)
    typed = sa.DateTime(timezone=True)

    def b(v: dt.datetime) -> sa.BindParameter:
        return sa.bindparam(None, v, type_=typed)

    after_start = sa.true() if start is None else column >= b(start)
    before_end = sa.true() if end is None else column <= b(end)
    if op == "t_before":
        return column < b(start) if start else sa.false()
    if op == "t_after":
        return column > b(end) if end else sa.false()
    if op == "t_during":
        return sa.and_(sa.true() if start is None else column > b(start), sa.true() if end is None else column < b(end))
    if op in ("t_intersects", "anyinteracts"):
        return sa.and_(after_start, before_end)
    if op == "t_equals":
        return column == b(start) if start is not None and start == end else sa.false()
    if op == "t_disjoint":
        return sa.not_(sa.and_(after_start, before_end))
    if op == "t_starts":
        return column == b(start) if start else sa.false()
    return column == b(end) if end else sa.false()  # t_finishes


def _spatial(node: Any, ctx: FilterContext) -> sa.ColumnElement[Any]:
    """A geometry column (by name) or a literal geometry reprojected to the storage SRID."""
    if isinstance(node, dict) and "property" in node:
        name = node["property"]
        column = ctx.layer.table.c.get(name) if isinstance(name, str) else None
        if name in ("geometry", "geom"):
            column = ctx.layer.table.c[ctx.layer.geometry_column]
        if column is None or not isinstance(column.type, Geometry):
            raise InvalidParameter(f"{name!r} is not a geometry property of {ctx.layer.id!r}; use "
                                   f"{ctx.layer.geometry_column!r} (or 'geometry')")
        return column
    if isinstance(node, dict) and "bbox" in node:
        values = node["bbox"]
        if (not isinstance(values, list) or len(values) not in (4, 6)
                or not all(isinstance(v, (int, float)) for v in values)):
            raise InvalidParameter("a bbox needs 4 numbers: minx, miny, maxx, maxy")
        x0, y0, x1, y1 = (values[0], values[1], values[3], values[4]) if len(values) == 6 else values
        if x0 > x1 or y0 > y1:
            raise InvalidParameter("bbox minimum exceeds maximum: give minx, miny, maxx, maxy")
        geom = box(x0, y0, x1, y1)
        intake.check_coordinates(geom, geographic=ctx.filter_srid in (4326, 4490), north_first=ctx.flip_axes)
    elif isinstance(node, dict) and "type" in node:
        geom = intake.parse_client_geometry(node, limits=intake.Limits())
        intake.check_coordinates(geom, geographic=ctx.filter_srid in (4326, 4490), north_first=ctx.flip_axes)
        problem = geometry_problem(geom)
        if problem:
            raise InvalidParameter(f"filter geometry: {problem}")
    else:
        raise InvalidParameter("a spatial operator takes a geometry property and a GeoJSON geometry or bbox")
    literal = sa.func.ST_GeomFromText(sa.bindparam(None, geom.wkt, type_=sa.Text), ctx.filter_srid)
    if ctx.flip_axes:
        literal = sa.func.ST_FlipCoordinates(literal)
    if ctx.filter_srid != ctx.storage_srid:
        literal = sa.func.ST_Transform(literal, ctx.storage_srid)
    return literal
