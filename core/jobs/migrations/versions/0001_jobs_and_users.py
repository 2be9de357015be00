"""The job index and the users table.

Revision ID: 0001
Revises:
"""

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None
ACTIVE_SQL = "state IN ('queued', 'held', 'running')"


def upgrade() -> None:
    op.create_table(
        "jobs",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column("owner", sa.String(64)),
        sa.Column("owner_id", sa.String(64)),
        sa.Column("plugin", sa.String(200), nullable=False),
        sa.Column("version", sa.String(64)),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("queue", sa.String(32)),
        sa.Column("worker", sa.String(200)),
        sa.Column("host", sa.String(200)),
        sa.Column("created", sa.Float, nullable=False),
        sa.Column("started", sa.Float),
        sa.Column("finished", sa.Float),
        sa.Column("parent_id", sa.String(32)),
        sa.Column("kind", sa.String(16), nullable=False, server_default="job"),
        sa.Column("attempt", sa.Integer, nullable=False, server_default="0"),
        sa.Column("reason", sa.Text),
        sa.Column("progress", sa.Float, nullable=False, server_default="0"),
        sa.Column("doc", sa.JSON, nullable=False),
    )
    op.create_index("ix_jobs_created", "jobs", ["created", "id"])
    op.create_index("ix_jobs_owner_id", "jobs", ["owner_id", "parent_id", "created", "id"])
    op.create_index("ix_jobs_owner", "jobs", ["owner", "created"])
    op.create_index("ix_jobs_owner_state", "jobs", ["owner_id", "state", "created"])
    op.create_index("ix_jobs_state", "jobs", ["state", "created"])
    # the reaper's rows only: its sweep stays the same size however many jobs have finished
    active = sa.text(ACTIVE_SQL)
    op.create_index("ix_jobs_active", "jobs", ["state"], sqlite_where=active, postgresql_where=active)
    op.create_index("ix_jobs_parent", "jobs", ["parent_id", "created", "id"])
    op.create_index("ix_jobs_plugin", "jobs", ["plugin", "created"])
    op.create_table(
        "users",
        sa.Column("name", sa.String(64), primary_key=True),
        sa.Column("id", sa.String(64), nullable=False, unique=True),
        sa.Column("token_sha256", sa.String(64), nullable=False, unique=True),
        sa.Column("admin", sa.Boolean, nullable=False, server_default=sa.false()),
        sa.Column("created", sa.Float, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("users")
    op.drop_table("jobs")
