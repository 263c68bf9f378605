"""Alembic environment: migrations run on the connection gis.migrate hands over.

The revisions themselves import no model (they are frozen DDL). The models are loaded here only as
the target of ``alembic revision --autogenerate``, which writes a new revision from what changed.
"""

from alembic import context

import gis.keys  # noqa: F401  (the API keys tables)
import layers  # noqa: F401  (declares every family's tables on the shared metadata)
from gis.schema import METADATA

connection = context.config.attributes["connection"]
context.configure(connection=connection, target_metadata=METADATA, transaction_per_migration=True)
with context.begin_transaction():
    context.run_migrations()
