"""workers: which worker processes are up, in which pool with how many slots, what they
run, and drain requests

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-03
"""
from alembic import op
import sqlalchemy as sa

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "workers",
        sa.Column("name", sa.String(255), primary_key=True),
        sa.Column("host", sa.String(255), nullable=False),
        sa.Column("pool", sa.String(32), nullable=False),
        sa.Column("slots", sa.Integer(), nullable=False, server_default="1"),
        sa.Column("pid", sa.Integer(), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("seen_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("running", sa.JSON(), nullable=False, server_default="{}"),
        sa.Column("drain_requested_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("draining_since", sa.DateTime(timezone=True), nullable=True),
    )
    op.create_index("ix_workers_host", "workers", ["host"])
    op.create_index("ix_workers_pool_seen", "workers", ["pool", "seen_at"])


def downgrade() -> None:
    op.drop_index("ix_workers_pool_seen", table_name="workers")
    op.drop_index("ix_workers_host", table_name="workers")
    op.drop_table("workers")
