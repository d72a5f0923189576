"""Alembic environment and revisions for the SQL store (run by ``store.sql.migrate``)."""
