"""The four layer families. Importing this package declares every layer in gis.registry.REGISTRY.

Each family is a package with the same files: ``models.py`` (tables), ``layers.py`` (registry
declarations), ``schemas.py`` (request shapes), ``repository.py`` (all its SQL), ``service.py`` (every
use case, the caller's right checked first) and pure computation modules that touch no database. A
family calls another only through that family's ``service``.
"""

from gis.registry import REGISTRY
from layers.cadastre import layers as _cadastre  # noqa: F401
from layers.emergency import layers as _emergency  # noqa: F401
from layers.landuse import layers as _landuse  # noqa: F401
from layers.pipeline import layers as _pipeline  # noqa: F401

__all__ = ["REGISTRY"]
