"""the masks an inpainting job filled, kept with the job

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-22
"""
from alembic import op
import sqlalchemy as sa

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("jobs") as batch:
        batch.add_column(sa.Column("used_masks_key", sa.String(255), nullable=True))
        batch.add_column(sa.Column("mask_poster_key", sa.String(255), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("jobs") as batch:
        batch.drop_column("mask_poster_key")
        batch.drop_column("used_masks_key")
