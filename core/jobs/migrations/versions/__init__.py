"""Alembic revisions of the job index."""
