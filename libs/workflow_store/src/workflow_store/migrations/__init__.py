"""Alembic migrations of the workflow store (run them through ``workflow_store.migrate``)."""
