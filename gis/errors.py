"""One exception family for govgis.

Every failure a client or operator can cause is a ``GisError`` subclass carrying its HTTP status and
a title; the API maps them to RFC 7807 problem+json in one place (api/errors.py). A message always
says what is wrong *and* what to do about it.
"""

from __future__ import annotations

from typing import Any


class GisError(Exception):
    """Base of every expected govgis failure."""

    status: int = 400
    title: str = "Bad request"
    slug: str = "bad-request"

    def __init__(self, detail: str, **extra: Any) -> None:
        super().__init__(detail)
        self.detail = detail
        self.extra = extra


class ConfigError(GisError):
    """A setting is missing or wrong; raised at start-up."""

    status = 500
    title = "Configuration error"
    slug = "configuration"


class InvalidParameter(GisError):
    """A query parameter or body field is malformed or unknown."""

    title = "Invalid parameter"
    slug = "invalid-parameter"


class InvalidGeometry(GisError):
    """A geometry is malformed, invalid, of the wrong type, or outside the city."""

    title = "Invalid geometry"
    slug = "invalid-geometry"


class UnknownCRS(GisError):
    """A CRS that pyproj does not know or that cannot be used here."""

    title = "Unknown coordinate reference system"
    slug = "unknown-crs"


class PayloadTooLarge(GisError):
    status = 413
    title = "Payload too large"
    slug = "payload-too-large"


class NotFound(GisError):
    status = 404
    title = "Not found"
    slug = "not-found"


class Unauthorized(GisError):
    status = 401
    title = "Authentication required"
    slug = "unauthorized"


class Forbidden(GisError):
    status = 403
    title = "Forbidden"
    slug = "forbidden"


class NotWritableHere(GisError):
    """The layer is written only through its module (its domain rules live there), or not by clients."""

    status = 405
    title = "Not writable through this path"
    slug = "write-through-module"


class Conflict(GisError):
    """The write conflicts with the data (duplicate code, overlap, rule broken)."""

    status = 409
    title = "Conflict"
    slug = "conflict"


class StaleVersion(GisError):
    """Optimistic concurrency: the caller edited an old version of the feature."""

    status = 412
    title = "Precondition failed: the feature has changed"
    slug = "stale-version"


class PreconditionRequired(GisError):
    status = 428
    title = "Precondition required"
    slug = "precondition-required"


class DatabaseUnavailable(GisError):
    """The database could not be reached or dropped the connection; retrying later may succeed."""

    status = 503
    title = "Database unavailable"
    slug = "database-unavailable"


class RateLimited(GisError):
    status = 429
    title = "Too many requests"
    slug = "rate-limited"


class ImportRejected(GisError):
    """An import found bad rows; nothing was written. ``extra['errors']`` lists row and reason."""

    status = 400
    title = "Import rejected"
    slug = "import-rejected"
