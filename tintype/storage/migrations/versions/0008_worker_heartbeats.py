"""worker heartbeats: which worker processes are alive, in which pool, with how many slots

Revision ID: 0008
Revises: 0007
Create Date: 2027-01-10
"""
from alembic import op
import sqlalchemy as sa

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "worker_heartbeats",
        sa.Column("name", sa.String(255), primary_key=True),
        sa.Column("pool", sa.String(16), nullable=False),
        sa.Column("slots", sa.Integer(), nullable=False),
        sa.Column("host", sa.String(255), nullable=False),
        sa.Column("pid", sa.Integer(), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("seen_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_worker_heartbeats_pool_seen", "worker_heartbeats", ["pool", "seen_at"])


def downgrade() -> None:
    op.drop_index("ix_worker_heartbeats_pool_seen", table_name="worker_heartbeats")
    op.drop_table("worker_heartbeats")
