"""Alembic migrations of the job index (run automatically when the index is opened)."""
