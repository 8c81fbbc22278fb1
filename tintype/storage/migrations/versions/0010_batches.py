"""batches: many files submitted at once, one job per item

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-03
"""
from alembic import op
import sqlalchemy as sa

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "batches",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column("owner", sa.String(64), nullable=False),
        sa.Column("source", sa.String(16), nullable=False),
        sa.Column("prefix", sa.String(1024), nullable=True),
        sa.Column("items", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_batches_owner_created", "batches", ["owner", "created_at"])
    op.create_table(
        "batch_items",
        sa.Column("batch_id", sa.String(32), sa.ForeignKey("batches.id", ondelete="CASCADE"), primary_key=True),
        sa.Column("position", sa.Integer(), primary_key=True),
        sa.Column("name", sa.String(1024), nullable=False),
        sa.Column("job_id", sa.String(32), nullable=False),
    )
    op.create_index("ix_batch_items_job", "batch_items", ["job_id"])


def downgrade() -> None:
    op.drop_index("ix_batch_items_job", table_name="batch_items")
    op.drop_table("batch_items")
    op.drop_index("ix_batches_owner_created", table_name="batches")
    op.drop_table("batches")
