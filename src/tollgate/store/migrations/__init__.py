"""Alembic environment and revisions for the SQL store (run by ``store.schema.migrate``)."""

# The newest revision. Kept here so start-up can tell an up-to-date database without importing
# Alembic (a quarter of a second); tests/store/test_migrations.py checks it against Alembic's head.
HEAD = "spend_rollups"
