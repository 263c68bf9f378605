"""Alembic environment: migrations run on the connection gis.migrate hands over."""

from alembic import context

import layers  # noqa: F401  (declares every table on the shared metadata)
from gis.schema import METADATA

connection = context.config.attributes["connection"]
context.configure(connection=connection, target_metadata=METADATA, transaction_per_migration=True)
with context.begin_transaction():
    context.run_migrations()
