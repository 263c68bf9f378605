"""Who may read and write which layer, and how personal data is masked.

A ``Caller`` is what the API makes of a request (anonymous, or a department key) and what the CLI
uses for itself (``SYSTEM``). Rules come from the registry's access classes; the masking rule is the
same here and in the database function ``govgis_mask`` (layers/migrations), so a value masked in SQL
for GeoJSON and one masked in Python for a repair order read alike.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from gis.errors import Forbidden, Unauthorized
from gis.registry import Access, Layer

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


def sees_personal_data(caller: Caller) -> bool:
    return caller.personal_data


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


def mask_properties(caller: Caller, layer: Layer, properties: dict[str, object]) -> dict[str, object]:
    """Properties with the layer's personal fields masked unless the caller may see them."""
    if sees_personal_data(caller) or not layer.personal:
        return properties
    masked = dict(properties)
    for name in layer.personal:
        if name in masked and masked[name] is not None:
            masked[name] = mask_text(str(masked[name]))
    return masked
