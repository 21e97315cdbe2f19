"""Alembic environment: runs on the connection the gateway (or `python -m gateway.store`) passes in."""

from __future__ import annotations

from alembic import context

from gateway.store._tables import metadata

connection = context.config.attributes["connection"]
context.configure(connection=connection, target_metadata=metadata, render_as_batch=True)
with context.begin_transaction():
    if connection.dialect.name == "postgresql":
        # Replicas starting together: one migrates, the others wait and then find nothing to do.
        connection.exec_driver_sql("SELECT pg_advisory_xact_lock(4242016)")
    context.run_migrations()
